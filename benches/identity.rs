//! Costs of the machine identities and search (issue 34), measured with the domain services
//! in process (`cargo bench --bench identity`):
//!
//! - `exchange/*`: a registry token for a repository scope, from Basic credentials — an
//!   administrator's password (verified once, then remembered, as every request after the
//!   first pays), a robot's secret, and a workload identity token (a fresh token each time,
//!   so it is verified every time; its issuer's keys cached). `verify/*`: the token check
//!   alone, with the issuer's keys fetched through discovery from a loopback HTTP server
//!   (`first_jwks`) and already cached (`cached_jwks`).
//! - `search/*`: one query against a registry of `SEMDOCK_BENCH_REPOS` repositories (10,000
//!   and then 100,000 by default), each with a tagged index manifest and an annotation.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use semdock::domain::auth::{Credentials, FederationRule, Surface, TokenSettings};
use semdock::domain::{Limits, Services};
use semdock::model::{Reference, Repository, Scope};

const INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// A P-256 key for the bench's issuer, and its public half.
const KEY: &str = "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgXwRxHCX6n3HOFrXEqoqb5/7r4dYee3oAGNV1jLp/lt6hRANCAASusylC9izn+PAsnHMV8yKX+z6/kKtCJ4e06wlSbeSGKRWjlLl85AiIbcS0y9iuKN1sa8fIC7QlDJ4/8NYOUCAl";
const JWKS: &str = r#"{"keys":[{"kty":"EC","crv":"P-256","kid":"bench","use":"sig","alg":"ES256","x":"rrMpQvYs5_jwLJxzFfMil_s-v5CrQieHtOsJUm3khik","y":"FaOUuXzkCIhtxLTL2K4o3Wxrx8gLtCUMnj_w1g5QICU"}]}"#;

fn services() -> (tempfile::TempDir, Services, String) {
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
    let password = std::fs::read_to_string(dir.path().join("initial-admin-password"))
        .unwrap()
        .trim()
        .to_owned();
    (dir, s, password)
}

/// A loopback issuer serving its discovery document and JWKS (for `first_jwks`).
fn issuer() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let me = base.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 4096];
            let n = stream.read(&mut buf).unwrap_or(0);
            let head = String::from_utf8_lossy(&buf[..n]);
            let body = if head.starts_with("GET /.well-known/openid-configuration") {
                format!(r#"{{"issuer":"{me}","jwks_uri":"{me}/jwks"}}"#)
            } else {
                JWKS.to_owned()
            };
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    base
}

fn token(issuer: &str, n: u64) -> String {
    use base64::Engine as _;
    let der = base64::engine::general_purpose::STANDARD
        .decode(KEY)
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.kid = Some("bench".into());
    jsonwebtoken::encode(
        &header,
        &serde_json::json!({"iss": issuer, "aud": "semdock", "sub": format!("repo:acme/web:run:{n}"),
            "repository": "acme/web", "ref": "refs/tags/v1.0.0", "iat": now, "exp": now + 3600}),
        &jsonwebtoken::EncodingKey::from_ec_der(&der),
    )
    .unwrap()
}

fn exchange(c: &mut Criterion) {
    let (_dir, s, password) = services();
    let admin = semdock::domain::auth::Caller {
        principal: semdock::domain::auth::Principal::User {
            name: "admin".into(),
            admin: true,
        },
        via: semdock::domain::auth::Via::Password,
    };
    let roles = std::collections::BTreeMap::from([("prod".to_owned(), "push".to_owned())]);
    let robot = s
        .auth
        .robots()
        .create(&admin, Some("prod"), "ci", "", &roles, None)
        .unwrap();
    let base = issuer();
    for (iss, jwks) in [("https://ci.example", Some(JWKS)), (base.as_str(), None)] {
        s.auth
            .federation()
            .add(
                &admin,
                FederationRule {
                    issuer: iss.into(),
                    audience: "semdock".into(),
                    claims: [("repository".to_owned(), "acme/*".to_owned())].into(),
                    robot: robot.name.clone(),
                    jwks: jwks.map(str::to_owned),
                    created: 0,
                    created_by: String::new(),
                },
            )
            .unwrap();
    }
    let scope = [Scope::parse("repository:prod/app:pull,push").unwrap()];
    let client: std::net::IpAddr = "127.0.0.1".parse().unwrap();
    let exchange = |credentials: &Credentials| {
        let caller = s
            .auth
            .caller(credentials, client, Surface::Registry)
            .unwrap()
            .unwrap();
        s.auth.issue_token(Some(&caller.principal), &scope).unwrap()
    };
    let mut g = c.benchmark_group("exchange");
    let basic = Credentials::Basic {
        user: "admin".into(),
        secret: password,
    };
    exchange(&basic);
    g.bench_function("password_remembered", |b| b.iter(|| exchange(&basic)));
    let secret = Credentials::Basic {
        user: robot.name.clone(),
        secret: robot.secret.clone(),
    };
    g.bench_function("robot_secret", |b| b.iter(|| exchange(&secret)));
    let mut n = 0;
    g.bench_function("workload_token_cached_jwks", |b| {
        b.iter_batched(
            || {
                n += 1;
                Credentials::Basic {
                    user: "oidc".into(),
                    secret: token(&base, n),
                }
            },
            |c| exchange(&c),
            criterion::BatchSize::SmallInput,
        );
    });
    g.finish();

    let mut g = c.benchmark_group("verify");
    let cached = semdock::clients::workload::Issuers::default();
    cached
        .verify(&token(&base, 0), &base, "semdock", None)
        .unwrap();
    g.bench_function("cached_jwks", |b| {
        b.iter_batched(
            || token(&base, 1),
            |t| cached.verify(&t, &base, "semdock", None).unwrap(),
            criterion::BatchSize::SmallInput,
        );
    });
    g.bench_function("first_jwks", |b| {
        b.iter_batched(
            || {
                (
                    semdock::clients::workload::Issuers::default(),
                    token(&base, 2),
                )
            },
            |(fresh, t)| fresh.verify(&t, &base, "semdock", None).unwrap(),
            criterion::BatchSize::SmallInput,
        );
    });
    g.finish();
}

/// Pushes repositories `from..to` (an index manifest with an annotation, tagged), on 16
/// threads so that their commits share fsyncs.
fn fill(s: &Arc<Services>, from: usize, to: usize) {
    let threads: Vec<_> = (0..16)
        .map(|t| {
            let s = s.clone();
            std::thread::spawn(move || {
                for i in (from + t..to).step_by(16) {
                    let repo: Repository = format!("prod/team{}/app-{i:06}", i % 100).parse().unwrap();
                    let body = format!(
                        r#"{{"schemaVersion":2,"mediaType":"{INDEX}","manifests":[],"annotations":{{"org.example.build":"b{i:06}"}}}}"#
                    );
                    let tag = Reference::Tag(format!("1.{}.{}", i % 10, i % 7).parse().unwrap());
                    s.registry
                        .put_manifest(&repo, &tag, &[], Some(INDEX), body.as_bytes(), "bench")
                        .unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

fn search(c: &mut Criterion) {
    let (_dir, s, _) = services();
    let s = Arc::new(s);
    let sizes: Vec<usize> = std::env::var("SEMDOCK_BENCH_REPOS").ok().map_or_else(
        || vec![10_000, 100_000],
        |v| v.split(',').filter_map(|n| n.parse().ok()).collect(),
    );
    let mut have = 0;
    let visible = |_: &str| true;
    for size in sizes {
        let started = std::time::Instant::now();
        fill(&s, have, size);
        have = size;
        eprintln!(
            "{size} repositories pushed in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        let mut g = c.benchmark_group(format!("search_{size}"));
        for (name, q, limit) in [
            ("one_repository_by_name", "app-004321", 50),
            ("fifty_of_many_tags", "1.3.", 50),
            ("one_annotation", "org.example.build=b004321", 50),
            ("nothing", "no-such-thing", 50),
        ] {
            let hits = s.registry.search(q, &visible, limit).unwrap();
            eprintln!("{name}: {} hits", hits.len());
            g.bench_function(name, |b| {
                b.iter(|| s.registry.search(q, &visible, limit).unwrap());
            });
        }
        g.finish();
    }
}

criterion_group!(benches, exchange, search);
criterion_main!(benches);
