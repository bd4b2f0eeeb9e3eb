//! Hot paths of the domain, in process: a manifest read by tag (what every `docker pull` and
//! Kubernetes node does first), and a version tag write in a versioned feed, which recomputes
//! the virtual tags and appends history in the same transaction.

use std::sync::atomic::{AtomicU64, Ordering};

use criterion::{Criterion, criterion_group, criterion_main};
use semdock::domain::auth::TokenSettings;
use semdock::domain::{FeedChange, Limits, Services};
use semdock::model::{Digest, Reference, Repository};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

fn services() -> (tempfile::TempDir, Services, Repository, String) {
    let dir = tempfile::tempdir().unwrap();
    let s = semdock::server::open_embedded(
        dir.path(),
        Limits {
            manifest_bytes: 4 << 20,
            upload_bytes: 1 << 30,
            upload_sessions: 1 << 20,
            metadata_cache_bytes: 32 << 20,
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
    s.registry
        .feeds()
        .update(
            "prod",
            FeedChange {
                versioning: Some(true),
                ..FeedChange::default()
            },
            "bench",
        )
        .unwrap();
    let repo: Repository = "prod/app".parse().unwrap();
    let config = b"{}";
    let id = s
        .registry
        .uploads()
        .start(&repo, "bench", semdock::model::Algorithm::Sha256)
        .unwrap();
    let mut a = s.registry.uploads().append(&repo, &id, None).unwrap();
    a.write(config).unwrap();
    let config = Digest::of(config);
    s.registry.uploads().complete(a, &config).unwrap();
    (dir, s, repo, config.to_string())
}

fn manifest(config: &str, n: u64) -> Vec<u8> {
    format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config}","size":2}},"layers":[],"annotations":{{"n":"{n}"}}}}"#
    )
    .into_bytes()
}

fn hot_paths(c: &mut Criterion) {
    let (_dir, s, repo, config) = services();
    // A repository with some history: 200 versions across majors and minors.
    for i in 0..200u64 {
        let tag: Reference = format!("{}.{}.{}", i / 50, (i / 10) % 5, i % 10)
            .parse()
            .unwrap();
        s.registry
            .put_manifest(
                &repo,
                &tag,
                &[],
                Some(OCI_MANIFEST),
                &manifest(&config, i),
                "bench",
            )
            .unwrap();
    }
    let latest: Reference = "latest".parse().unwrap();
    c.bench_function("manifest_get_by_tag", |b| {
        b.iter(|| s.registry.manifest(&repo, &latest).unwrap());
    });
    // The pull path's first try: a read remembered since the last metadata write.
    c.bench_function("manifest_get_by_tag_remembered", |b| {
        b.iter(|| s.registry.cached_manifest(&repo, &latest).unwrap());
    });
    let next = AtomicU64::new(1000);
    c.bench_function("version_push_with_virtual_recompute", |b| {
        b.iter(|| {
            let n = next.fetch_add(1, Ordering::Relaxed);
            let tag: Reference = format!("9.{n}.0").parse().unwrap();
            s.registry
                .put_manifest(
                    &repo,
                    &tag,
                    &[],
                    Some(OCI_MANIFEST),
                    &manifest(&config, n),
                    "bench",
                )
                .unwrap()
        });
    });
}

criterion_group!(benches, hot_paths);
criterion_main!(benches);
