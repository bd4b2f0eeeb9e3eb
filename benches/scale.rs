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
//! - `maintenance`: a generated registry of `--manifests N` (a million by default): serve's
//!   start, retention (dry and real), GC (dry and real), check and backup (`--no-backup`
//!   leaves it out: an fsync per blob file makes it the long one), time and peak RSS each;
//!
//! Every row prints what it measured and how it grows. `--quick` divides the counts by ten.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;

mod support;
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
        if res.status() == 202 {
            // Distribution opens a session for a POST with a digest: finish it with a PUT.
            let location = res.headers()["location"].to_str().unwrap().to_owned();
            let url = if location.starts_with('/') {
                format!("{}{location}", self.base)
            } else {
                location
            };
            let sep = if url.contains('?') { '&' } else { '?' };
            let res = a
                .put(format!("{url}{sep}digest={digest}"))
                .header("Authorization", &self.basic)
                .header("Content-Type", "application/octet-stream")
                .send(bytes)
                .unwrap();
            assert_eq!(res.status(), 201, "blob upload");
            return digest;
        }
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
    println!(
        "| versions already there | semdock, versioned feed | semdock, feed without versioning | Distribution | versioned / Distribution |"
    );
    println!("| ---: | ---: | ---: | ---: | ---: |");
    // Distribution, on the same workload (no auth, no versioning: its tags are files).
    let peer_dir = tempfile::tempdir().unwrap();
    let (peer, port) = support::distribution(peer_dir.path(), None);
    let peer = Server {
        base: format!("http://127.0.0.1:{port}"),
        basic: "Basic eDp4".into(),
        child: peer,
        dir: peer_dir,
    };
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
    let peer_config = peer.blob(&a, "ci/app", b"{}");
    for mark in marks {
        // Fill every repository to the mark, then time one window each.
        for (repo, config) in ["prod/app", "ci/app"].iter().zip(&configs) {
            push_range(&s, &a, repo, config, filled, mark);
        }
        push_range(&peer, &a, "ci/app", &peer_config, filled, mark);
        let versioned = push_range(&s, &a, "prod/app", &configs[0], mark, mark + window);
        let plain = push_range(&s, &a, "ci/app", &configs[1], mark, mark + window);
        let theirs = push_range(&peer, &a, "ci/app", &peer_config, mark, mark + window);
        filled = mark + window;
        println!(
            "| {mark} | {versioned:.0} | {plain:.0} | {theirs:.0} | {:.2}× |",
            versioned / theirs
        );
        rates.push((mark, versioned, plain, theirs));
    }
    let (first, last) = (rates[0], rates[rates.len() - 1]);
    println!(
        "\npush rate at {} versions / at {} versions: semdock versioned {:.2}, semdock without versioning {:.2}, Distribution {:.2} (target ≥ 0.80)",
        last.0,
        first.0,
        last.1 / first.1,
        last.2 / first.2,
        last.3 / first.3
    );
    let tags = filled;
    println!("\n## lists at {tags} tags (median of 20 GETs, server and loopback)");
    let (theirs, size) = timed_get(&peer, &a, "/v2/ci/app/tags/list", "", 5);
    println!(
        "Distribution's tag list at the same size, which it does not page unless asked: {theirs:.1} ms, {size} bytes; first 100 (`?n=100`): {:.1} ms\n",
        timed_get(&peer, &a, "/v2/ci/app/tags/list?n=100", "", 5).0
    );
    drop(peer);
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

/// One soak client: push a new small image, pull an earlier one, until told to stop.
fn soak_client(
    s: &Server,
    pushed: &std::sync::atomic::AtomicU64,
    ops: &std::sync::atomic::AtomicU64,
    stop: &std::sync::atomic::AtomicBool,
    config: &str,
) {
    use std::sync::atomic::Ordering;
    let a = agent();
    while !stop.load(Ordering::Relaxed) {
        let i = pushed.fetch_add(1, Ordering::Relaxed);
        let bytes = format!("layer {i}");
        let layer = s.blob(&a, "soak/app", bytes.as_bytes());
        let body = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": 2},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer, "size": bytes.len()}],
        })
        .to_string();
        let res = a
            .put(format!("{}/v2/soak/app/manifests/t{i}", s.base))
            .header("Authorization", &s.basic)
            .header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
            .send(body)
            .unwrap();
        assert_eq!(res.status(), 201);
        let res = a
            .get(format!("{}/v2/soak/app/manifests/t{}", s.base, i / 2))
            .header("Authorization", &s.basic)
            .header("Accept", "application/vnd.oci.image.manifest.v1+json")
            .call()
            .unwrap();
        assert!(matches!(res.status().as_u16(), 200 | 404));
        ops.fetch_add(3, Ordering::Relaxed);
    }
}

fn soak(minutes: u64, cache_mib: Option<&str>, arena_max: Option<&str>) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    let mut settings = Vec::new();
    if let Some(mib) = cache_mib {
        settings.push(("SEMDOCK_STORAGE__METADATA_CACHE_MIB", mib));
    }
    if let Some(n) = arena_max {
        // glibc's malloc arenas (an experiment: the server sets its own at start).
        settings.push(("MALLOC_ARENA_MAX", n));
    }
    let s = Arc::new(start(tempfile::tempdir().unwrap(), &settings));
    let a = agent();
    assert_eq!(
        s.api(&a, "POST", "/api/v1/feeds", r#"{"name":"soak"}"#),
        201
    );
    let config = s.blob(&a, "soak/app", b"{}");
    println!(
        "## soak: 8 clients pushing small images to new tags and pulling earlier ones, GC every 20 s, {minutes} min, metadata cache {} MiB, MALLOC_ARENA_MAX {}",
        cache_mib.unwrap_or("32 (default)"),
        arena_max.unwrap_or("unset")
    );
    println!("| time | operations | tags | RSS MiB | meta.redb MiB |");
    println!("| ---: | ---: | ---: | ---: | ---: |");
    let pushed = Arc::new(AtomicU64::new(0));
    let ops = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..8)
        .map(|_| {
            let (s, pushed, ops, stop, config) = (
                s.clone(),
                pushed.clone(),
                ops.clone(),
                stop.clone(),
                config.clone(),
            );
            std::thread::spawn(move || soak_client(&s, &pushed, &ops, &stop, &config))
        })
        .collect();
    let started = Instant::now();
    let mut last_gc = Instant::now();
    let mut samples = Vec::new();
    let end = Duration::from_secs(minutes * 60);
    while started.elapsed() < end {
        std::thread::sleep(Duration::from_secs(5));
        if last_gc.elapsed() >= Duration::from_secs(20) {
            assert_eq!(s.api(&a, "POST", "/api/v1/gc", r#"{"dry_run":false}"#), 200);
            last_gc = Instant::now();
        }
        let secs = started.elapsed().as_secs();
        if secs % 30 < 5 {
            let rss = s.rss_kib() / 1024;
            let db = std::fs::metadata(s.dir.path().join("meta.redb")).map_or(0, |m| m.len()) >> 20;
            println!(
                "| {}:{:02} | {} | {} | {rss} | {db} |",
                secs / 60,
                secs % 60,
                ops.load(Ordering::Relaxed),
                pushed.load(Ordering::Relaxed),
            );
            samples.push(rss);
        }
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
    let peak = samples.iter().max().copied().unwrap_or(0);
    let half = samples.get(samples.len() / 2).copied().unwrap_or(0);
    println!(
        "\nRSS: at half time {half} MiB, at the end {} MiB, peak {peak} MiB, over {} operations",
        samples.last().copied().unwrap_or(0),
        ops.load(Ordering::Relaxed)
    );
}

/// A registry in `dir` with the feed `feed`, its administrator's password where `serve`
/// leaves it.
fn new_registry(dir: &std::path::Path, feed: &str) {
    let s = semdock::server::open_embedded(
        dir,
        semdock::domain::Limits {
            manifest_bytes: 4 << 20,
            upload_bytes: 1 << 30,
            upload_sessions: 1 << 20,
            metadata_cache_bytes: 32 << 20,
            upstream_timeout_seconds: 30,
        },
        semdock::domain::auth::TokenSettings {
            service: "bench".into(),
            ttl_seconds: 300,
        },
        true,
    )
    .unwrap();
    std::fs::write(
        dir.join("initial-admin-password"),
        s.initial_password.clone().unwrap(),
    )
    .unwrap();
    s.registry.feeds().ensure(&feed.parse().unwrap()).unwrap();
}

/// Fills `dir` with `manifests` manifests in `manifests / 1000` repositories of feed `bulk`,
/// each with one blob of its own (a file and a record) and the shared config; one in ten is
/// untagged and ten days old, for a retention run to delete. Written in large transactions
/// straight into the store, as the same records a push writes.
fn generate(dir: &std::path::Path, manifests: u64) {
    use semdock::store::meta::prelude::*;
    use semdock::store::meta::redb::RedbMeta;
    use semdock::store::meta::{BlobRecord, ManifestRecord, MetaError, RepositoryRecord};
    new_registry(dir, "bulk");
    let meta = RedbMeta::open(&dir.join("meta.redb")).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let config = digest_of(b"{}");
    let blob_file = |digest: &str| {
        let hex = &digest["sha256:".len()..];
        dir.join("blobs/sha256").join(&hex[..2]).join(hex)
    };
    for prefix in 0..256 {
        std::fs::create_dir_all(dir.join(format!("blobs/sha256/{prefix:02x}"))).unwrap();
    }
    std::fs::write(blob_file(&config), b"{}").unwrap();
    let per_repo = 1000;
    for r in 0..manifests.div_ceil(per_repo) {
        let repo = format!("bulk/app{r:04}");
        let mut rows = Vec::new();
        for m in 0..per_repo.min(manifests - r * per_repo) {
            let i = r * per_repo + m;
            let layer = format!("layer {i}");
            let layer_digest = digest_of(layer.as_bytes());
            std::fs::write(blob_file(&layer_digest), layer.as_bytes()).unwrap();
            let body = serde_json::json!({
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": 2},
                "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest, "size": layer.len()}],
            })
            .to_string();
            rows.push((
                i,
                layer_digest,
                layer.len() as u64,
                digest_of(body.as_bytes()),
                body,
            ));
        }
        meta.write(|w| {
            w.put_repository(&repo, &RepositoryRecord { created: now })?;
            w.put_blob(
                &config,
                &BlobRecord {
                    size: 2,
                    created: now,
                },
            )?;
            w.link(&repo, &config, now)?;
            for (i, layer, size, digest, body) in &rows {
                let untagged = i % 10 == 9;
                let created = if untagged { now - 10 * 86_400 } else { now };
                w.put_blob(
                    layer,
                    &BlobRecord {
                        size: *size,
                        created,
                    },
                )?;
                w.link(&repo, layer, created)?;
                w.put_manifest(
                    &repo,
                    digest,
                    &ManifestRecord {
                        media_type: "application/vnd.oci.image.manifest.v1+json".into(),
                        artifact_type: None,
                        subject: None,
                        blobs: vec![config.clone(), layer.clone()],
                        children: Vec::new(),
                        annotations: std::collections::BTreeMap::new(),
                        created,
                        body: body.clone().into_bytes(),
                    },
                )?;
                if !untagged {
                    w.set_tag(&repo, &format!("t{i}"), digest)?;
                }
            }
            Ok::<_, MetaError>(())
        })
        .unwrap();
    }
}

/// Runs `cmd` to its end: seconds, peak resident memory (MiB) and whether it succeeded.
fn measured(cmd: &mut Command) -> (f64, u64, bool) {
    let started = Instant::now();
    // Reaped by wait4 below, which also gives its resource usage.
    #[allow(clippy::zombie_processes)]
    let child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = libc::pid_t::try_from(child.id()).unwrap();
    let mut status = 0;
    // SAFETY: `rusage` is plain data that wait4 fills; the pid is our own child's.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above; `status` and `usage` outlive the call.
    let waited = unsafe { libc::wait4(pid, &raw mut status, 0, &raw mut usage) };
    assert_eq!(waited, pid);
    let ok = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
    (
        started.elapsed().as_secs_f64(),
        u64::try_from(usage.ru_maxrss).unwrap_or(0) / 1024,
        ok,
    )
}

fn maintenance(manifests: u64, backup: bool) {
    let dir = tempfile::tempdir_in("/var/tmp").unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let started = Instant::now();
    generate(&data, manifests);
    // What the generator wrote reaches the disk before anything is timed.
    let _ = Command::new("sync").status();
    let db = std::fs::metadata(data.join("meta.redb")).unwrap().len() >> 20;
    println!(
        "## maintenance at {manifests} manifests and {manifests} blob records ({} repositories; meta.redb {db} MiB; generated in {:.0} s)",
        manifests.div_ceil(1000),
        started.elapsed().as_secs_f64()
    );
    println!("| job | seconds | peak RSS MiB | µs per manifest |");
    println!("| --- | ---: | ---: | ---: |");
    #[allow(clippy::cast_precision_loss)]
    let row = |name: &str, (secs, rss, ok): (f64, u64, bool)| {
        assert!(ok, "{name} failed");
        println!(
            "| {name} | {secs:.2} | {rss} | {:.1} |",
            secs * 1e6 / manifests as f64
        );
    };
    let semdock = |args: &[&str]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_semdock"));
        cmd.args(args)
            .env("SEMDOCK_DATA_DIR", &data)
            .env("SEMDOCK_STORAGE__GC_GRACE_SECONDS", "0");
        cmd
    };
    // Startup: until the server says where it listens.
    let begun = Instant::now();
    let mut serve = semdock(&["serve", "--listen", "127.0.0.1:0"]);
    let mut child = serve
        .env("SEMDOCK_LOG__LEVEL", "warn,semdock::server=info")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let ready = BufReader::new(stderr)
        .lines()
        .map_while(Result::ok)
        .any(|l| l.contains("addr="));
    assert!(ready, "serve started");
    println!(
        "| serve: start until listening | {:.2} | {} | - |",
        begun.elapsed().as_secs_f64(),
        std::fs::read_to_string(format!("/proc/{}/status", child.id()))
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<u64>().ok())
            .unwrap_or(0)
            / 1024
    );
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        semdock(&["feed", "retention", "bulk", "--untagged-days", "1"])
            .status()
            .unwrap()
            .success()
    );
    row(
        "retention dry run",
        measured(&mut semdock(&["retention", "bulk", "--dry-run"])),
    );
    row(
        "retention run (deletes the untagged tenth)",
        measured(&mut semdock(&["retention", "bulk"])),
    );
    row(
        "gc dry run (the mark alone)",
        measured(&mut semdock(&["gc", "--dry-run"])),
    );
    row(
        "gc (mark and sweep; sweeps the tenth's blobs)",
        measured(&mut semdock(&["gc"])),
    );
    row(
        "check (re-hashes every blob)",
        measured(&mut semdock(&["check"])),
    );
    if backup {
        let backup = dir.path().join("backup");
        row(
            "backup",
            measured(&mut semdock(&["backup", backup.to_str().unwrap()])),
        );
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let scale = if args.iter().any(|a| a == "--quick") {
        10
    } else {
        1
    };
    let wanted = |name: &str| args.iter().any(|a| a == name);
    let all = !["versions", "maintenance", "soak"]
        .iter()
        .any(|s| wanted(s));
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
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .map(String::as_str)
    };
    if all || wanted("versions") {
        versions(scale);
    }
    if all || wanted("maintenance") {
        let manifests = value("--manifests")
            .and_then(|m| m.parse().ok())
            .unwrap_or(1_000_000 / scale);
        maintenance(manifests, !args.iter().any(|a| a == "--no-backup"));
    }
    if all || wanted("soak") {
        let minutes = value("--minutes")
            .and_then(|m| m.parse().ok())
            .unwrap_or(10);
        soak(minutes, value("--cache-mib"), value("--arena-max"));
    }
}
