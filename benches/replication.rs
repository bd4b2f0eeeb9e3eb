//! Replication benchmark: semdock replicating a feed to Distribution 2.8.2 against
//! `skopeo sync` copying the same repository from semdock to another Distribution, measured
//! in one run, alternating who goes first; then the on-push lag (a push at the source to the
//! tag visible at the target).
//!
//! `cargo bench --bench replication` (8 images of 128 MiB: 1 GiB) or `-- --quick` (4 images
//! of 16 MiB). Prints a table: seconds, MB/s, and the ratio semdock/skopeo (below 1: semdock
//! is faster). semdock's time is its run's own (the report's start to finish, from the
//! moment the rule's first run begins); skopeo's is the process, start to exit.

#![allow(clippy::cast_precision_loss)] // figures for people

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;

mod support;

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

/// The source: semdock with feed `prod`, its administrator's Basic header and password.
struct Source {
    base: String,
    basic: String,
    password: String,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Drop for Source {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn source() -> Source {
    let dir = tempfile::tempdir().unwrap();
    let port = support::free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_semdock"))
        .arg("serve")
        .env("SEMDOCK_LISTEN", format!("127.0.0.1:{port}"))
        .env("SEMDOCK_DATA_DIR", dir.path())
        .env("SEMDOCK_FEEDS", "[prod]")
        .env("SEMDOCK_LOG__LEVEL", "warn")
        // The targets of this bench are on loopback.
        .env("SEMDOCK_OUTBOUND__ALLOW", "[\"127.0.0.0/8\"]")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("semdock starts");
    support::wait_listening(port, "semdock");
    let deadline = Instant::now() + Duration::from_secs(30);
    let password = loop {
        if let Ok(p) = std::fs::read_to_string(dir.path().join("initial-admin-password")) {
            break p.trim().to_owned();
        }
        assert!(Instant::now() < deadline, "no initial admin password");
        std::thread::sleep(Duration::from_millis(50));
    };
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("admin:{password}"))
    );
    Source {
        base: format!("http://127.0.0.1:{port}"),
        basic,
        password,
        child,
        _dir: dir,
    }
}

impl Source {
    fn call(&self, method: &str, path: &str, body: Option<serde_json::Value>) -> serde_json::Value {
        let url = format!("{}{path}", self.base);
        let a = agent();
        let mut res = match (method, body) {
            ("GET", _) => a.get(&url).header("Authorization", &self.basic).call(),
            (_, Some(b)) => a
                .post(&url)
                .header("Authorization", &self.basic)
                .header("Content-Type", "application/json")
                .send(b.to_string()),
            (_, None) => a
                .post(&url)
                .header("Authorization", &self.basic)
                .send_empty(),
        }
        .unwrap();
        let text = res.body_mut().read_to_string().unwrap();
        assert!(res.status().is_success(), "{method} {path}: {text}");
        serde_json::from_str(&text).unwrap_or_default()
    }

    /// An agent that logs in as the administrator (Basic).
    fn admin(&self) -> ureq::Agent {
        let basic = self.basic.clone();
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .middleware(
                move |mut req: ureq::http::Request<ureq::SendBody>,
                      next: ureq::middleware::MiddlewareNext| {
                    req.headers_mut()
                        .insert("authorization", basic.parse().unwrap());
                    next.handle(req)
                },
            )
            .build()
            .into()
    }
}

/// Seconds semdock's replication of `prod` to the Distribution at `target` takes: a rule
/// created, its first full run's own duration once it is done.
fn semdock_run(source: &Source, target: &str, name: &str) -> f64 {
    source.call(
        "POST",
        "/api/v1/replication",
        Some(serde_json::json!({"name": name, "feed": "prod", "url": target})),
    );
    let deadline = Instant::now() + Duration::from_mins(10);
    loop {
        let r = source.call("GET", &format!("/api/v1/replication/{name}"), None);
        let s = &r["status"];
        if s["full_run_pending"] == false && s["last_run"].is_object() {
            let run = &s["last_run"];
            assert_eq!(run["errors"], serde_json::json!([]), "{r:#}");
            let ms = run["finished_ms"].as_u64().unwrap() - run["started_ms"].as_u64().unwrap();
            return ms as f64 / 1000.0;
        }
        assert!(Instant::now() < deadline, "the run never ended: {r:#}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Seconds `skopeo sync` takes to copy `prod/set` (every tag) to the Distribution at
/// `target`.
fn skopeo_run(source: &Source, target: &str) -> f64 {
    let t = Instant::now();
    let out = Command::new("skopeo")
        .args(["sync", "--src", "docker", "--dest", "docker"])
        .args(["--src-tls-verify=false", "--dest-tls-verify=false"])
        .args(["--src-creds", &format!("admin:{}", source.password)])
        .arg(format!(
            "{}/prod/set",
            source.base.trim_start_matches("http://")
        ))
        .arg(format!("{}/prod", target.trim_start_matches("http://")))
        .output()
        .expect("skopeo is installed");
    assert!(
        out.status.success(),
        "skopeo sync: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    t.elapsed().as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let (images, size) = if quick { (4, 16 << 20) } else { (8, 128 << 20) };
    let total = images * size;
    let source = source();
    let admin = source.admin();
    for i in 0..images {
        support::push_image(
            &admin,
            &source.base,
            "prod/set",
            &format!("1.0.{i}"),
            size,
            i as u64 + 1,
        );
    }
    // Two rounds, each to fresh targets, alternating who goes first.
    let mut semdock = Vec::new();
    let mut skopeo = Vec::new();
    let mut targets = Vec::new();
    for round in 0..2 {
        let mut start = || {
            let dir = tempfile::tempdir().unwrap();
            let (child, port) = support::distribution(dir.path(), None);
            targets.push((child, dir));
            format!("http://127.0.0.1:{port}")
        };
        let (a, b) = (start(), start());
        if round == 0 {
            skopeo.push(skopeo_run(&source, &b));
            semdock.push(semdock_run(&source, &a, &format!("bench-{round}")));
        } else {
            semdock.push(semdock_run(&source, &a, &format!("bench-{round}")));
            skopeo.push(skopeo_run(&source, &b));
        }
    }
    let (s, k) = (median(semdock), median(skopeo));
    let mb = total as f64 / 1e6;
    println!("| row | semdock | skopeo sync | semdock/skopeo |");
    println!("|---|---|---|---|");
    println!(
        "| replicate {images} images, {} MiB (s, median of 2) | {s:.2} | {k:.2} | {:.2} |",
        total >> 20,
        s / k
    );
    println!(
        "| throughput (MB/s) | {:.0} | {:.0} | {:.2} |",
        mb / s,
        mb / k,
        k / s
    );
    // On-push lag: a new 4 MiB version at the source until its tag answers at the target
    // (rule bench-1 follows pushes).
    let target = {
        let r = source.call("GET", "/api/v1/replication/bench-1", None);
        r["url"].as_str().unwrap().to_owned()
    };
    let mut lags = Vec::new();
    for i in 0..5 {
        let tag = format!("2.0.{i}");
        let pushed = Instant::now();
        let digest = support::push_image(&admin, &source.base, "prod/set", &tag, 4 << 20, 100 + i);
        let pushed_ms = pushed.elapsed().as_secs_f64() * 1000.0;
        loop {
            let res = agent()
                .head(format!("{target}/v2/prod/set/manifests/{tag}"))
                .header("Accept", "application/vnd.oci.image.manifest.v1+json")
                .call()
                .unwrap();
            if res.status() == 200 && res.headers()["docker-content-digest"] == digest.as_str() {
                break;
            }
            assert!(
                pushed.elapsed() < Duration::from_mins(1),
                "{tag} never arrived"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        lags.push(pushed.elapsed().as_secs_f64() * 1000.0 - pushed_ms);
    }
    println!(
        "| on-push lag, 4 MiB version: its manifest pushed to its tag at the target (ms, median of 5) | {:.0} | — | — |",
        median(lags)
    );
    drop(targets);
}
