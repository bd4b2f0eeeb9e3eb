//! Pull-through benchmark: semdock's connector feed, Distribution 2.8.2 in proxy mode and
//! Angos (`../shared/instruments/angos`, or `ANGOS`) with an upstream, all three caching the
//! same Distribution upstream on loopback, measured in one run, alternating.
//!
//! `cargo bench --bench connector` (images of 4 and 32 MiB) or `-- --quick` (4 MiB only).
//! Rows: a cold pull (manifest and blobs fetched upstream while served), a warm pull (from
//! the cache), and eight clients pulling the same cold image at once. Each pull reads the
//! manifest and every blob to the end, as a client does. Prints a table with the ratios
//! semdock/Distribution and semdock/Angos (below 1: semdock is faster).

use std::io::Read as _;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;

mod support;

const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

/// Pushes an image with one layer of `size` pseudo-random bytes (seeded by `seed`) to
/// `repo:1.0.0` of the registry at `base`.
fn push(base: &str, repo: &str, size: usize, seed: u64) {
    support::push_image(&agent(), base, repo, "1.0.0", size, seed);
}

/// Pulls `repo:1.0.0` from `base` as a client does: the manifest, then every blob read to
/// its end; answers the bytes read.
fn pull(base: &str, repo: &str) -> u64 {
    let a = agent();
    let mut res = a
        .get(format!("{base}/v2/{repo}/manifests/1.0.0"))
        .header("Accept", MANIFEST)
        .call()
        .unwrap();
    assert_eq!(res.status(), 200, "{base}/v2/{repo}/manifests/1.0.0");
    let m: serde_json::Value =
        serde_json::from_str(&res.body_mut().read_to_string().unwrap()).unwrap();
    let mut blobs = vec![m["config"]["digest"].as_str().unwrap().to_owned()];
    blobs.extend(
        m["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["digest"].as_str().unwrap().to_owned()),
    );
    let mut total = 0;
    for d in blobs {
        let res = a.get(format!("{base}/v2/{repo}/blobs/{d}")).call().unwrap();
        assert_eq!(res.status(), 200, "{base}/v2/{repo}/blobs/{d}");
        let mut reader = res.into_body().into_reader();
        let mut buf = vec![0; 1 << 16];
        loop {
            let n = reader.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            total += n as u64;
        }
    }
    total
}

/// A pull-through cache of the upstream: its base URL and the repository name that stands
/// for upstream `library/NAME`.
struct Cache {
    name: &'static str,
    base: String,
    prefix: &'static str,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Drop for Cache {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn semdock(upstream: &str) -> Cache {
    let dir = tempfile::tempdir().unwrap();
    let port = support::free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_semdock"))
        .arg("serve")
        .env("SEMDOCK_LISTEN", format!("127.0.0.1:{port}"))
        .env("SEMDOCK_DATA_DIR", dir.path())
        .env("SEMDOCK_LOG__LEVEL", "warn")
        // The upstreams of this bench are on loopback, which connectors reach only when
        // allowed.
        .env("SEMDOCK_OUTBOUND__ALLOW", "[\"127.0.0.0/8\"]")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("semdock starts");
    support::wait_listening(port, "semdock");
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    let password = loop {
        if let Ok(p) = std::fs::read_to_string(dir.path().join("initial-admin-password")) {
            break p;
        }
        assert!(Instant::now() < deadline, "no initial admin password");
        std::thread::sleep(Duration::from_millis(50));
    };
    let basic =
        base64::engine::general_purpose::STANDARD.encode(format!("admin:{}", password.trim()));
    let res = agent()
        .post(format!("{base}/api/v1/feeds"))
        .header("Authorization", format!("Basic {basic}"))
        .header("Content-Type", "application/json")
        .send(
            serde_json::json!({"name": "hub", "anonymous_pull": true, "upstream": {"url": upstream}})
                .to_string(),
        )
        .unwrap();
    assert_eq!(res.status(), 201, "the connector feed is created");
    Cache {
        name: "semdock",
        base,
        prefix: "hub/",
        child,
        _dir: dir,
    }
}

fn distribution_proxy(upstream: &str) -> Cache {
    let dir = tempfile::tempdir().unwrap();
    let (child, port) = support::distribution_with(
        dir.path(),
        None,
        &format!("proxy:\n  remoteurl: {upstream}\n"),
    );
    Cache {
        name: "Distribution",
        base: format!("http://127.0.0.1:{port}"),
        prefix: "",
        child,
        _dir: dir,
    }
}

fn angos(upstream: &str) -> Option<Cache> {
    let bin = std::env::var("ANGOS").unwrap_or_else(|_| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/instruments/angos").to_owned()
    });
    if !std::path::Path::new(&bin).exists() {
        eprintln!("Angos not found at {bin} (set ANGOS): its column is left out");
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = support::free_port();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nbind_address = \"127.0.0.1\"\nport = {port}\n\n[blob_store.fs]\nroot_dir = \"{}\"\n\n[global.access_policy]\ndefault = \"allow\"\n\n[repository.\"hub\"]\n\n[[repository.\"hub\".upstream]]\nurl = \"{upstream}\"\n",
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let child = Command::new(&bin)
        .arg("-c")
        .arg(&config)
        .arg("server")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("angos starts");
    support::wait_listening(port, "Angos");
    Some(Cache {
        name: "Angos",
        base: format!("http://127.0.0.1:{port}"),
        prefix: "hub/",
        child,
        _dir: dir,
    })
}

/// Milliseconds until eight clients pulling `repo` from `cache` at once are all done.
fn pull_at_once(cache: &Cache, repo: &str, size: usize) -> f64 {
    let t = Instant::now();
    let pulls: Vec<_> = (0..8)
        .map(|_| {
            let (base, repo) = (cache.base.clone(), repo.to_owned());
            std::thread::spawn(move || pull(&base, &repo))
        })
        .collect();
    for p in pulls {
        assert!(p.join().unwrap() >= size as u64);
    }
    t.elapsed().as_secs_f64() * 1000.0
}

/// One table row: the values per cache, then semdock's against the second and third.
fn print_row(row: &str, values: &[f64]) {
    let ratio = |i: usize| {
        values
            .get(i)
            .map_or_else(|| "—".to_owned(), |v| format!("{:.2}", values[0] / v))
    };
    println!(
        "| {row} | {} | {} | {} |",
        values
            .iter()
            .map(|v| format!("{v:.1}"))
            .collect::<Vec<_>>()
            .join(" | "),
        ratio(1),
        ratio(2)
    );
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let sizes: &[usize] = if quick {
        &[4 << 20]
    } else {
        &[4 << 20, 32 << 20]
    };
    let images = 3;
    let up_dir = tempfile::tempdir().unwrap();
    let (mut up_child, up_port) = support::distribution(up_dir.path(), None);
    let upstream = format!("http://127.0.0.1:{up_port}");
    let mut caches = vec![semdock(&upstream), distribution_proxy(&upstream)];
    caches.extend(angos(&upstream));
    println!(
        "| row | {} | semdock/Distribution | semdock/Angos |",
        caches
            .iter()
            .map(|c| c.name)
            .collect::<Vec<_>>()
            .join(" | ")
    );
    println!("|---|{}---|---|", "---|".repeat(caches.len()));
    let mut seed = 0;
    for &size in sizes {
        let mib = size >> 20;
        let first = seed;
        for _ in 0..images {
            seed += 1;
            push(&upstream, &format!("library/img{seed}"), size, seed);
        }
        seed += 1;
        let crowd = seed;
        push(&upstream, &format!("library/img{crowd}"), size, crowd);
        let mut rows: Vec<(String, Vec<f64>)> = Vec::new();
        // Cold: each image's first pull through each cache, alternating caches per image.
        let mut cold = vec![Vec::new(); caches.len()];
        for i in first + 1..=first + images {
            for (c, cache) in caches.iter().enumerate() {
                let t = Instant::now();
                let n = pull(&cache.base, &format!("{}library/img{i}", cache.prefix));
                assert!(n >= size as u64);
                cold[c].push(t.elapsed().as_secs_f64() * 1000.0);
            }
        }
        rows.push((
            format!("cold pull, {mib} MiB (ms, median of {images})"),
            cold.into_iter().map(median).collect(),
        ));
        let mut warm = vec![Vec::new(); caches.len()];
        for _ in 0..3 {
            for i in first + 1..=first + images {
                for (c, cache) in caches.iter().enumerate() {
                    let t = Instant::now();
                    pull(&cache.base, &format!("{}library/img{i}", cache.prefix));
                    warm[c].push(t.elapsed().as_secs_f64() * 1000.0);
                }
            }
        }
        rows.push((
            format!("warm pull, {mib} MiB (ms, median of {})", images * 3),
            warm.into_iter().map(median).collect(),
        ));
        rows.push((
            format!("8 clients, one cold {mib} MiB image (ms, all done)"),
            caches
                .iter()
                .map(|c| pull_at_once(c, &format!("{}library/img{crowd}", c.prefix), size))
                .collect(),
        ));
        for (row, values) in rows {
            print_row(&row, &values);
        }
    }
    drop(caches);
    let _ = up_child.kill();
    let _ = up_child.wait();
}
