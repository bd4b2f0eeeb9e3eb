//! Hot paths of the domain, in process: a manifest read by tag (what every `docker pull` and
//! Kubernetes node does first), and a version tag write in a versioned feed, which recomputes
//! the virtual tags and appends history in the same transaction. Then what a signature
//! policy adds: a promotion into a gated feed (the first check, which reads the signature,
//! and a later one, which finds the recorded verdict) and a manifest read through a pull
//! gate, each beside the same operation without a policy (`cargo bench --bench registry --
//! gate` for those alone).

use std::sync::atomic::{AtomicU64, Ordering};

use criterion::{Criterion, criterion_group, criterion_main};
use semdock::domain::auth::TokenSettings;
use semdock::domain::{FeedChange, Limits, Services};
use semdock::model::{Digest, Reference, Repository, Tag};

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
    let config = upload(&s, &repo, b"{}");
    (dir, s, repo, config.to_string())
}

/// Uploads `bytes` into `repo` as one blob.
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

/// Pushes image `n` (its config uploaded before) as `repo:tag`; returns its digest.
fn push(s: &Services, repo: &Repository, tag: &str, config: &str, n: u64) -> String {
    s.registry
        .put_manifest(
            repo,
            &tag.parse().unwrap(),
            &[],
            Some(OCI_MANIFEST),
            &manifest(config, n),
            "bench",
        )
        .unwrap()
        .digest
        .to_string()
}

/// Signs `repo@digest` as cosign does: a simple-signing payload, its ECDSA signature in the
/// layer's annotation, the signature manifest under cosign's `sha256-<hex>.sig` tag.
fn sign(s: &Services, repo: &Repository, digest: &str, key: &p256::ecdsa::SigningKey) {
    use base64::Engine as _;
    use signature::Signer as _;
    let payload = format!(
        r#"{{"critical":{{"identity":{{"docker-reference":"bench/{repo}"}},"image":{{"docker-manifest-digest":"{digest}"}},"type":"cosign container image signature"}},"optional":null}}"#
    );
    let blob = upload(s, repo, payload.as_bytes());
    let config = upload(s, repo, b"{\"sig\":1}");
    let sig: p256::ecdsa::Signature = key.sign(payload.as_bytes());
    let b64 = base64::engine::general_purpose::STANDARD.encode(sig.to_der().as_bytes());
    let body = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config}","size":9}},"layers":[{{"mediaType":"application/vnd.dev.cosign.simplesigning.v1+json","digest":"{blob}","size":{},"annotations":{{"dev.cosignproject.cosign/signature":"{b64}"}}}}]}}"#,
        payload.len()
    );
    let tag: Reference = format!("{}.sig", digest.replacen(':', "-", 1))
        .parse()
        .unwrap();
    s.registry
        .put_manifest(
            repo,
            &tag,
            &[],
            Some(OCI_MANIFEST),
            body.as_bytes(),
            "bench",
        )
        .unwrap();
}

/// Trusts key `ci` (returned) and gives feed `gate` a policy requiring it on promotion and
/// checking it on pull.
fn trust_ci(s: &Services) -> p256::ecdsa::SigningKey {
    let key = p256::ecdsa::SigningKey::from_slice(&[7; 32]).unwrap();
    let pem = p256::pkcs8::EncodePublicKey::to_public_key_pem(
        key.verifying_key(),
        p256::pkcs8::LineEnding::LF,
    )
    .unwrap();
    s.registry.trust().add_key("ci", &pem, "bench").unwrap();
    s.registry
        .trust()
        .set_policy(
            "gate",
            Some(&semdock::domain::trust::SignaturePolicy {
                keys: vec!["ci".into()],
                identities: Vec::new(),
                stores: Vec::new(),
                attestations: Vec::new(),
                on_promotion: true,
                on_push: false,
                on_pull: Some(semdock::domain::trust::PullGate::Warn),
            }),
            "bench",
        )
        .unwrap();
    key
}

/// What a signature policy costs: promotions into a feed without a policy (`open`) and into
/// one that requires a signature on promotion and checks it on pull (`gate`), and manifest
/// reads from each.
fn signature_gates(c: &mut Criterion) {
    let (_dir, s, _, _) = services();
    // Names of equal length, so that the cache keys cost the same to hash.
    for feed in ["staging", "open", "gate"] {
        s.registry.feeds().ensure(&feed.parse().unwrap()).unwrap();
    }
    let key = trust_ci(&s);
    let (staging, open, gated): (Repository, Repository, Repository) = (
        "staging/app".parse().unwrap(),
        "open/app".parse().unwrap(),
        "gate/app".parse().unwrap(),
    );
    let config = upload(&s, &staging, b"{}").to_string();
    let signed = push(&s, &staging, "1.0.0", &config, 0);
    sign(&s, &staging, &signed, &key);
    let signed: Digest = signed.parse().unwrap();
    let next = AtomicU64::new(1);
    let promote_as = |to: &Repository, digest: &Digest, tag: &Tag| {
        let from = Reference::Digest(digest.clone());
        s.registry
            .history()
            .promote(&semdock::domain::Promotion {
                from: &staging,
                from_ref: &from,
                to,
                to_tag: tag,
                expected: Some(digest),
                include_referrers: false,
                actor: "bench",
                comment: None,
            })
            .unwrap();
    };
    let promote = |to: &Repository, digest: &Digest| {
        let n = next.fetch_add(1, Ordering::Relaxed);
        promote_as(to, digest, &format!("t{n}").parse().unwrap());
    };
    c.bench_function("gate: promotion, no policy", |b| {
        b.iter(|| promote(&open, &signed));
    });
    // The first promotion of each image reads its signature; setup (untimed) pushes and
    // signs a new one each time.
    c.bench_function("gate: promotion, first check", |b| {
        b.iter_batched(
            || {
                let n = next.fetch_add(1, Ordering::Relaxed);
                let d = push(&s, &staging, &format!("2.0.{n}"), &config, n);
                sign(&s, &staging, &d, &key);
                d.parse::<Digest>().unwrap()
            },
            |d| promote(&gated, &d),
            criterion::BatchSize::PerIteration,
        );
    });
    c.bench_function("gate: promotion, recorded verdict", |b| {
        b.iter(|| promote(&gated, &signed));
    });
    // The same image under the same tag in both feeds.
    let pulled: Tag = "pulled".parse().unwrap();
    promote_as(&open, &signed, &pulled);
    promote_as(&gated, &signed, &pulled);
    let tag = Reference::Tag(pulled);
    let first_gated = tag.clone();
    c.bench_function("gate: manifest read, no policy", |b| {
        b.iter(|| s.registry.manifest(&open, &tag).unwrap());
    });
    c.bench_function("gate: manifest read, pull gate", |b| {
        b.iter(|| {
            let m = s.registry.manifest(&gated, &first_gated).unwrap();
            assert!(m.unsigned.is_none());
            m
        });
    });
    // A background write (the registry's own housekeeping) empties the cache now and then:
    // the next read fills it again, as a pull would.
    let remembered = |repo: &Repository, tag: &Reference| {
        s.registry
            .cached_manifest(repo, tag)
            .unwrap_or_else(|| s.registry.manifest(repo, tag).unwrap())
    };
    c.bench_function("gate: manifest read remembered, no policy", |b| {
        b.iter(|| remembered(&open, &tag));
    });
    c.bench_function("gate: manifest read remembered, pull gate", |b| {
        b.iter(|| remembered(&gated, &first_gated));
    });
}

criterion_group!(benches, hot_paths, signature_gates);
criterion_main!(benches);
