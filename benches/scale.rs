//! Scale benchmark: how semdock's costs grow with the size of its data, on the release build.
//!
//! `cargo bench --bench scale -- SECTION...` with sections
//! - `versions`: pushes/s into a versioned feed at 100, 10,000 and 100,000 versions already in
//!   the repository (one client, Basic auth, small manifests one after another, as the issue
//!   measured), and the same for a feed without versioning; then the first page of the tag
//!   list and the UI's repository page at 100,000 tags;
//! - `soak`: 8 clients pushing small images to new tags and pulling earlier ones, GC every
//!   20 s, for `--minutes M` (10 by default), printing the server's resident memory;
//!
//! Every row prints what it measured and how it grows. `--quick` divides the counts by ten.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use sha2::{Digest as _, Sha256};

struct Server {
    base: String,
    basic: String,
    child: Child,
    dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_idle_connections_per_host(64)
        .build()
        .into()
}

fn start(dir: tempfile::TempDir, settings: &[(&str, &str)]) -> Server {
    let mut command = Command::new(env!("CARGO_BIN_EXE_semdock"));
    command
        .arg("serve")
        .env("SEMDOCK_LISTEN", "127.0.0.1:0")
        .env("SEMDOCK_DATA_DIR", dir.path())
        .env("SEMDOCK_LOG__LEVEL", "warn,semdock::server=info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in settings {
        command.env(k, v);
    }
    let mut child = command.spawn().expect("semdock starts");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(i) = line.find("addr=") {
                let addr = line[i + 5..].split_whitespace().next().unwrap_or_default();
                let _ = tx.send(addr.to_owned());
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_mins(1))
        .expect("semdock reports its address");
    let password = std::fs::read_to_string(dir.path().join("initial-admin-password")).unwrap();
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("admin:{}", password.trim()))
    );
    Server {
        base: format!("http://{addr}"),
        basic,
        child,
        dir,
    }
}

impl Server {
    fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
            .unwrap_or(0)
    }

    fn api(&self, a: &ureq::Agent, method: &str, path: &str, body: &str) -> u16 {
        let url = format!("{}{path}", self.base);
        let res = match method {
            "POST" => a
                .post(&url)
                .header("Authorization", &self.basic)
                .header("Content-Type", "application/json")
                .send(body),
            "PATCH" => a
                .patch(&url)
                .header("Authorization", &self.basic)
                .header("Content-Type", "application/json")
                .send(body),
            _ => a.get(&url).header("Authorization", &self.basic).call(),
        };
        res.map_or(0, |r| r.status().as_u16())
    }

    fn blob(&self, a: &ureq::Agent, repo: &str, bytes: &[u8]) -> String {
        let digest = digest_of(bytes);
        let res = a
            .post(format!(
                "{}/v2/{repo}/blobs/uploads/?digest={digest}",
                self.base
            ))
            .header("Authorization", &self.basic)
            .header("Content-Type", "application/octet-stream")
            .send(bytes)
            .unwrap();
        assert_eq!(res.status(), 201, "blob upload");
        digest
    }

    /// Pushes a small manifest over `config`, made unique by `n`, to `reference`.
    fn push(&self, a: &ureq::Agent, repo: &str, reference: &str, config: &str, n: u64) -> u16 {
        a.put(format!("{}/v2/{repo}/manifests/{reference}", self.base))
            .header("Authorization", &self.basic)
            .header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
            .send(manifest(config, n))
            .map_or(0, |r| r.status().as_u16())
    }
}

fn manifest(config: &str, n: u64) -> String {
    serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": 2},
        "layers": [],
        "annotations": {"n": n.to_string()},
    })
    .to_string()
}

fn digest_of(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// The tag of the `i`-th version of a CI-style history: nine pre-releases per release.
fn version(i: u64) -> String {
    if i % 10 == 9 {
        format!("3.{}.{}", i / 10_000, (i / 10) % 1000)
    } else {
        format!("3.{}.{}-ci.{i}", i / 10_000, (i / 10) % 1000)
    }
}

/// Pushes versions `from..to`, returning pushes per second.
fn push_range(s: &Server, a: &ureq::Agent, repo: &str, config: &str, from: u64, to: u64) -> f64 {
    let started = Instant::now();
    for i in from..to {
        let status = s.push(a, repo, &version(i), config, i);
        assert_eq!(status, 201, "push of {}", version(i));
    }
    #[allow(clippy::cast_precision_loss)]
    let rate = (to - from) as f64 / started.elapsed().as_secs_f64();
    rate
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// A UI session cookie for the administrator, logged in through the form.
fn ui_session(s: &Server) -> String {
    let a: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .into();
    let cookies = |res: &ureq::http::Response<ureq::Body>| -> Vec<String> {
        res.headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or_default().to_owned())
            .collect()
    };
    let mut page = a.get(format!("{}/ui/login", s.base)).call().unwrap();
    let login_cookie = cookies(&page).join("; ");
    let html = page.body_mut().read_to_string().unwrap();
    let csrf = html
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the login form has a CSRF field")
        .to_owned();
    let password = std::fs::read_to_string(s.dir.path().join("initial-admin-password")).unwrap();
    let form = serde_urlencoded::to_string([
        ("user", "admin"),
        ("password", password.trim()),
        ("csrf", csrf.as_str()),
        ("next", "/ui/"),
    ])
    .unwrap();
    let res = a
        .post(format!("{}/ui/login", s.base))
        .header("Cookie", &login_cookie)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .send(form)
        .unwrap();
    assert_eq!(res.status(), 303, "UI login");
    cookies(&res)
        .into_iter()
        .find(|c| c.starts_with("semdock_session="))
        .expect("a session cookie")
}

/// The median of `runs` timed GETs of `path`, in milliseconds, and the body's size.
fn timed_get(s: &Server, a: &ureq::Agent, path: &str, cookie: &str, runs: usize) -> (f64, usize) {
    let mut times = Vec::new();
    let mut size = 0;
    for _ in 0..runs {
        let started = Instant::now();
        let request = a.get(format!("{}{path}", s.base));
        let request = if path.starts_with("/ui/") {
            request.header("Cookie", cookie)
        } else {
            request.header("Authorization", &s.basic)
        };
        let mut res = request.call().unwrap();
        assert_eq!(res.status(), 200, "GET {path}");
        size = res.body_mut().read_to_vec().unwrap().len();
        times.push(started.elapsed());
    }
    times.sort();
    (ms(times[times.len() / 2]), size)
}

fn versions(scale: u64) {
    let marks = [100, 10_000 / scale, 100_000 / scale];
    let window = 1000 / scale.min(10);
    println!(
        "## versions: pushes/s with N versions already in the repository ({window} pushes per row)"
    );
    println!("| versions already there | versioned feed | feed without versioning |");
    println!("| ---: | ---: | ---: |");
    let s = start(tempfile::tempdir().unwrap(), &[]);
    let a = agent();
    assert_eq!(
        s.api(
            &a,
            "POST",
            "/api/v1/feeds",
            r#"{"name":"prod","versioning":true}"#
        ),
        201
    );
    assert_eq!(s.api(&a, "POST", "/api/v1/feeds", r#"{"name":"ci"}"#), 201);
    let mut rates = Vec::new();
    let mut filled = 0;
    let configs: Vec<String> = ["prod/app", "ci/app"]
        .iter()
        .map(|r| s.blob(&a, r, b"{}"))
        .collect();
    for mark in marks {
        // Fill both repositories to the mark, then time one window each.
        for (repo, config) in ["prod/app", "ci/app"].iter().zip(&configs) {
            push_range(&s, &a, repo, config, filled, mark);
        }
        let versioned = push_range(&s, &a, "prod/app", &configs[0], mark, mark + window);
        let plain = push_range(&s, &a, "ci/app", &configs[1], mark, mark + window);
        filled = mark + window;
        println!("| {mark} | {versioned:.0} | {plain:.0} |");
        rates.push((mark, versioned, plain));
    }
    let (first, last) = (rates[0], rates[rates.len() - 1]);
    println!(
        "\npush rate at {} versions / at {} versions: versioned {:.2}, without versioning {:.2} (target ≥ 0.80)",
        last.0,
        first.0,
        last.1 / first.1,
        last.2 / first.2
    );
    let tags = filled;
    println!("\n## lists at {tags} tags (median of 20 GETs, server and loopback)");
    println!("| request | ms | bytes |");
    let cookie = ui_session(&s);
    println!("| --- | ---: | ---: |");
    for (name, path) in [
        (
            "API tag groups, first page",
            "/api/v1/repositories/prod/app/tags",
        ),
        (
            "API tag history, first page",
            "/api/v1/repositories/prod/app/history",
        ),
        ("OCI tag list, first page", "/v2/prod/app/tags/list?n=100"),
        ("UI repository page", "/ui/repository?name=prod/app"),
        (
            "UI repository page, search \"ci.99\"",
            "/ui/repository?name=prod/app&q=ci.99",
        ),
        ("UI repository history", "/ui/history?name=prod/app"),
    ] {
        let (t, size) = timed_get(&s, &a, path, &cookie, 20);
        println!("| {name} | {t:.1} | {size} |");
    }
    println!("\nserver RSS after the run: {} MiB", s.rss_kib() / 1024);
    drop(s);
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let scale = if args.iter().any(|a| a == "--quick") {
        10
    } else {
        1
    };
    let wanted = |name: &str| args.iter().any(|a| a == name);
    let all = !["versions", "soak"].iter().any(|s| wanted(s));
    println!(
        "scale benchmark, semdock {} ({}), {}",
        env!("CARGO_PKG_VERSION"),
        if scale == 1 { "full" } else { "quick" },
        std::process::Command::new("date")
            .arg("-u")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default()
    );
    if all || wanted("versions") {
        versions(scale);
    }
}
