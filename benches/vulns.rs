//! What knowing an image's vulnerabilities costs (`cargo bench --bench vulns`):
//!
//! - `sbom/*`: the SBOM pass over one gzip layer (a real dpkg status file among 64 MiB of
//!   other files), beside `zcat` of the same bytes to /dev/null and a bare gzip decode with
//!   the same decoder: the pass's cost over just reading the layer.
//! - `matching/*`: reports of 10,000 Debian images (`SEMDOCK_BENCH_IMAGES` for fewer) (300 packages each, from 1,500 source
//!   packages) against a database the size of osv.dev's Debian export (60,000 records over
//!   the same 1,500 packages: synthetic, in the export's shape, since osv.dev cannot be
//!   reached from the machines this runs on): the whole set with one `Matcher` (what an
//!   import's re-match does), and one image alone (what a report or a gate asks).
//! - `push/*`: pushing image manifests (each enqueued for reading) while the queue's worker
//!   reads them, beside pushing artifact manifests of the same size (never enqueued).

#![allow(clippy::many_single_char_names, clippy::cast_possible_truncation)]

use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use semdock::domain::auth::TokenSettings;
use semdock::domain::vulns::sbom::layers::Tree;
use semdock::domain::{Limits, Services};
use semdock::model::{Digest, Reference, Repository};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

fn services() -> (tempfile::TempDir, Services) {
    let dir = tempfile::tempdir().unwrap();
    let s = semdock::server::open_embedded(
        dir.path(),
        Limits {
            manifest_bytes: 4 << 20,
            upload_bytes: 1 << 30,
            upload_sessions: 1 << 20,
            metadata_cache_bytes: 256 << 20,
            upstream_timeout_seconds: 30,
        },
        TokenSettings {
            service: "bench".into(),
            ttl_seconds: 300,
        },
        true,
    )
    .unwrap();
    s.registry.feeds().ensure(&"prod".parse().unwrap()).unwrap();
    (dir, s)
}

fn upload(s: &Services, repo: &Repository, bytes: &[u8]) -> Digest {
    let id = s
        .registry
        .uploads()
        .start(repo, "bench", semdock::model::Algorithm::Sha256)
        .unwrap();
    let mut a = s.registry.uploads().append(repo, &id, None).unwrap();
    a.write(bytes).unwrap();
    let digest = Digest::of(bytes);
    s.registry.uploads().complete(a, &digest).unwrap();
    digest
}

fn tar_gz(files: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, body) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(body.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        builder.append_data(&mut h, path, &body[..]).unwrap();
    }
    let tar = builder.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&tar).unwrap();
    gz.finish().unwrap()
}

/// Bytes that compress like program files do (about 3:1), from a fixed seed.
fn filler(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|i| {
            if i % 3 == 0 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x & 0xff) as u8
            } else {
                b'a' + (i % 26) as u8
            }
        })
        .collect()
}

fn sbom(c: &mut Criterion) {
    let mut files: Vec<(String, Vec<u8>)> = (0..64)
        .map(|i| (format!("usr/lib/x/file{i}.so"), filler(1 << 20, i)))
        .collect();
    files.push((
        "var/lib/dpkg/status".into(),
        std::fs::read("/var/lib/dpkg/status").unwrap(),
    ));
    let layer = tar_gz(&files);
    let raw: u64 = files.iter().map(|(_, b)| b.len() as u64 + 512).sum();
    let mut g = c.benchmark_group("sbom");
    g.throughput(Throughput::Bytes(raw));
    g.sample_size(10);
    g.bench_function("zcat", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let started = Instant::now();
                let mut child = std::process::Command::new("zcat")
                    .stdin(std::process::Stdio::piped())
                    .stdout(std::process::Stdio::null())
                    .spawn()
                    .unwrap();
                child.stdin.take().unwrap().write_all(&layer).unwrap();
                assert!(child.wait().unwrap().success());
                total += started.elapsed();
            }
            total
        });
    });
    g.bench_function("gunzip_only", |b| {
        b.iter(|| {
            std::io::copy(
                &mut flate2::read::MultiGzDecoder::new(&layer[..]),
                &mut std::io::sink(),
            )
            .unwrap()
        });
    });
    g.bench_function("sbom_pass", |b| {
        b.iter(|| {
            let mut tree = Tree::default();
            tree.apply(&layer[..]).unwrap();
            let (_, packages) = tree.finish();
            assert!(packages.len() > 100);
        });
    });
    g.finish();
}

const SOURCES: usize = 1_500;
const RECORDS: usize = 60_000;
/// Images of the matching rows: 10,000, or `SEMDOCK_BENCH_IMAGES` (each costs ~170 ms of
/// setup on a VM whose fsync is slow: upload, push, read, referrer).
fn images() -> usize {
    std::env::var("SEMDOCK_BENCH_IMAGES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(10_000)
}
const PACKAGES: usize = 300;

/// A Debian-export-shaped database: every record names one source package of Debian 12,
/// fixed at a revision some images have and some do not.
fn database() -> Vec<u8> {
    let records: Vec<serde_json::Value> = (0..RECORDS)
        .map(|i| {
            serde_json::json!({
                "id": format!("DEBIAN-CVE-2099-{i:05}"),
                "modified": "2026-01-01T00:00:00Z",
                "related": [format!("CVE-2099-{i:05}")],
                "affected": [{
                    "package": {"ecosystem": "Debian:12", "name": format!("src{}", i % SOURCES)},
                    "ranges": [{"type": "ECOSYSTEM", "events": [
                        {"introduced": "0"},
                        {"fixed": format!("1.{}-{}+deb12u1", i % 7, i % 5)},
                    ]}],
                }],
            })
        })
        .collect();
    serde_json::to_vec(&records).unwrap()
}

/// Image `n`'s dpkg status: 300 packages of the 1,500 sources, at versions that vary; about
/// 15 of them old enough to carry most of their package's ~40 advisories.
fn status(n: usize) -> Vec<u8> {
    let mut out = String::new();
    for k in 0..PACKAGES {
        let source = (n * 7 + k * 5) % SOURCES;
        let _ = write!(
            out,
            "Package: bin{source}\nStatus: install ok installed\nArchitecture: amd64\nSource: src{source}\nVersion: {}.{}-{}\n\n",
            // One package in twenty is old enough for most of its advisories.
            if (n + k).is_multiple_of(20) { 1 } else { 2 },
            (n + k) % 7,
            (n + 2 * k) % 6
        );
    }
    out.into_bytes()
}

fn matching(c: &mut Criterion) {
    let (_dir, s) = services();
    let repo: Repository = "prod/debian".parse().unwrap();
    let started = Instant::now();
    let imported = s
        .registry
        .vulns()
        .import("debian.json", std::io::Cursor::new(database()), "bench")
        .unwrap();
    eprintln!(
        "matching: imported {} records in {:.1} s",
        imported.records,
        started.elapsed().as_secs_f64()
    );
    let config = upload(&s, &repo, br#"{"architecture":"amd64","os":"linux"}"#);
    let os = b"ID=debian\nVERSION_ID=\"12\"\n".to_vec();
    let started = Instant::now();
    let mut digests = Vec::with_capacity(images());
    for n in 0..images() {
        let layer = tar_gz(&[
            ("var/lib/dpkg/status".into(), status(n)),
            ("etc/os-release".into(), os.clone()),
        ]);
        let digest = upload(&s, &repo, &layer);
        let body = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config}","size":37}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{digest}","size":{}}}]}}"#,
            layer.len()
        );
        let put = s
            .registry
            .put_manifest(
                &repo,
                &Reference::Tag(format!("1.0.{n}").parse().unwrap()),
                &[],
                Some(OCI_MANIFEST),
                body.as_bytes(),
                "bench",
            )
            .unwrap();
        digests.push(put.digest.to_string());
    }
    let read = s.registry.scan_queued().unwrap();
    assert_eq!(read, images());
    eprintln!(
        "matching: pushed and read {} images in {:.1} s",
        images(),
        started.elapsed().as_secs_f64()
    );
    let mut g = c.benchmark_group("matching");
    g.sample_size(10);
    g.bench_function("all_images_one_matcher", |b| {
        b.iter(|| {
            let reports = s.registry.vulns().reports(repo.as_str(), &digests).unwrap();
            assert_eq!(reports.len(), images());
        });
    });
    g.bench_function("one_image", |b| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) % images();
            let r = s
                .registry
                .vulns()
                .report(repo.as_str(), &digests[i])
                .unwrap();
            assert!(!r.findings.is_empty());
        });
    });
    g.finish();
}

fn push(c: &mut Criterion) {
    let (_dir, s) = services();
    let s = Arc::new(s);
    let repo: Repository = "prod/app".parse().unwrap();
    let config = upload(&s, &repo, br#"{"architecture":"amd64","os":"linux"}"#);
    let layer = tar_gz(&[(
        "var/lib/dpkg/status".into(),
        std::fs::read("/var/lib/dpkg/status").unwrap(),
    )]);
    let layer_digest = upload(&s, &repo, &layer);
    let next = AtomicU64::new(0);
    let manifest = |artifact: bool, n: u64| {
        // Only the config's media type differs.
        let kind = if artifact {
            "application/vnd.semdock.bench.v1+json"
        } else {
            "application/vnd.oci.image.config.v1+json"
        };
        format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"{kind}","digest":"{config}","size":37}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{layer_digest}","size":{}}}],"annotations":{{"n":"{n:012}"}}}}"#,
            layer.len()
        )
    };
    let stop = Arc::new(AtomicBool::new(false));
    let worker = {
        let (s, stop) = (s.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let _ = s.registry.scan_queued();
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    let mut g = c.benchmark_group("push");
    for (name, artifact) in [
        ("artifact_not_enqueued", true),
        ("image_enqueued_and_read", false),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| {
                let n = next.fetch_add(1, Ordering::Relaxed);
                let body = manifest(artifact, n);
                s.registry
                    .put_manifest(
                        &repo,
                        &Reference::Digest(Digest::of(body.as_bytes())),
                        &[],
                        Some(OCI_MANIFEST),
                        body.as_bytes(),
                        "bench",
                    )
                    .unwrap()
            });
        });
    }
    g.finish();
    stop.store(true, Ordering::Relaxed);
    worker.join().unwrap();
}

criterion_group!(benches, sbom, matching, push);
criterion_main!(benches);
