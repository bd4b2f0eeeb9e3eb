//! One backend test suite: the same behavioural tests against both metadata engines — the
//! embedded one (redb) and the distributed one (a real PostgreSQL server, `TEST_POSTGRES_URL`)
//! — and both blob engines — files, and a real S3 engine (Garage, `TEST_S3_*`) — then the
//! registry's rules with two nodes sharing one database and one bucket.

use crate::common;

use std::fmt::Write as _;
use std::sync::Arc;

use common::{OCI_MANIFEST, TestApp, postgres_database};
use semdock::model::{Algorithm, Digest};
use semdock::store::blobs::UploadState;
use semdock::store::blobs::fs::FsBlobs;
use semdock::store::blobs::s3::{PART, S3Blobs};
use semdock::store::blobs::{Blobs, read_all};
use semdock::store::meta::postgres::PgMeta;
use semdock::store::meta::precedence::Scope;
use semdock::store::meta::prelude::*;
use semdock::store::meta::redb::RedbMeta;
use semdock::store::meta::{
    BlobRecord, FeedRecord, HistoryRecord, MetaError, RepositoryRecord, Scan,
};

/// An engine under test, with what keeps its storage alive.
struct Engine {
    name: &'static str,
    meta: Arc<dyn Metadata>,
    _dir: Option<tempfile::TempDir>,
}

fn engines() -> Vec<Engine> {
    let dir = tempfile::tempdir().unwrap();
    let redb = RedbMeta::open(&dir.path().join("meta.redb")).unwrap();
    let pg = PgMeta::connect(&postgres_database(), None).unwrap();
    vec![
        Engine {
            name: "redb",
            meta: Arc::new(redb),
            _dir: Some(dir),
        },
        Engine {
            name: "postgres",
            meta: Arc::new(pg),
            _dir: None,
        },
    ]
}

/// A history record whose time, `at`, tells the records apart.
fn history(digest: &str, at: u64) -> HistoryRecord {
    HistoryRecord {
        time_ms: at,
        old: None,
        new: Some(digest.to_owned()),
        actor: "tester".into(),
        method: "push".into(),
        comment: None,
    }
}

#[test]
fn records_round_trip_and_removals_say_whether_they_removed() {
    for e in engines() {
        let feed = FeedRecord {
            created: 1,
            description: "production".into(),
            anonymous_pull: false,
            versioning: true,
            permitted: vec!["stable".into()],
            promotion_sources: vec!["staging".into()],
            required_referrer: Some("application/vnd.example.sig".into()),
            upstream: Some(semdock::store::meta::UpstreamRecord {
                url: "https://registry-1.docker.io".into(),
                username: Some("ci".into()),
                password: Some("secret".into()),
                prefix: "library/".into(),
                ttl_seconds: 300,
                offline: false,
                allow: vec!["library/*".into()],
                deny: vec!["library/private-*".into()],
                upstream_latest: true,
                sync: vec![semdock::store::meta::SyncRule {
                    repository: "library/postgres".into(),
                    tags: "*".into(),
                    versions: Some("^1".into()),
                }],
                sync_interval_seconds: 3600,
            }),
        };
        e.meta
            .write(|w| {
                w.put_feed("prod", &feed)?;
                w.put_blob(
                    "sha256:aa",
                    &BlobRecord {
                        size: 7,
                        created: 1,
                    },
                )?;
                w.link("prod/app", "sha256:aa", 5)?;
                w.set_grant("alice", "prod", "push")?;
                w.put_setting("k", b"v")?;
                Ok::<_, MetaError>(())
            })
            .unwrap();
        let r = e.meta.read().unwrap();
        assert_eq!(r.feed("prod").unwrap(), Some(feed.clone()), "{}", e.name);
        assert_eq!(r.blob("sha256:aa").unwrap().unwrap().size, 7, "{}", e.name);
        assert!(r.is_linked("prod/app", "sha256:aa").unwrap(), "{}", e.name);
        assert_eq!(r.grant("alice", "prod").unwrap().as_deref(), Some("push"));
        assert_eq!(
            r.grants_on("prod").unwrap(),
            vec![("alice".into(), "push".into())]
        );
        assert_eq!(r.setting("k").unwrap().as_deref(), Some(&b"v"[..]));
        drop(r);
        let (first, second) = e
            .meta
            .write(|w| {
                let first = w.remove_feed("prod")?;
                let second = w.remove_feed("prod")?;
                Ok::<_, MetaError>((first, second))
            })
            .unwrap();
        assert!(first && !second, "{}", e.name);
    }
}

#[test]
fn a_failed_write_leaves_nothing_and_a_snapshot_does_not_see_later_writes() {
    for e in engines() {
        let failed = e.meta.write(|w| {
            w.set_tag("prod/app", "1.0.0", "sha256:a")?;
            Err::<(), _>(MetaError::Reopening)
        });
        assert!(failed.is_err(), "{}", e.name);
        assert_eq!(
            e.meta.read().unwrap().tag("prod/app", "1.0.0").unwrap(),
            None,
            "{}",
            e.name
        );
        let before = e.meta.read().unwrap();
        let generation = e.meta.generation();
        e.meta
            .write(|w| w.set_tag("prod/app", "1.0.0", "sha256:a"))
            .unwrap();
        assert!(e.meta.generation() > generation, "{}", e.name);
        assert_eq!(
            before.tag("prod/app", "1.0.0").unwrap(),
            None,
            "{}: snapshot moved",
            e.name
        );
        assert_eq!(
            e.meta
                .read()
                .unwrap()
                .tag("prod/app", "1.0.0")
                .unwrap()
                .as_deref(),
            Some("sha256:a"),
            "{}",
            e.name
        );
    }
}

/// Versions, pre-releases and other tags in `prod/app`, `main` retagged onto `1.0.0`'s digest.
fn tag_some(e: &Engine) {
    let tags = [
        "1.0.0",
        "1.0.0-rc.1",
        "1.0.0-rc.10",
        "1.0.0-rc.2",
        "1.2.0",
        "1.10.0",
        "2.0.0-alpha",
        "0.9.9",
        "latest",
        "main",
        "stable",
    ];
    e.meta
        .write(|w| {
            for (i, t) in tags.iter().enumerate() {
                w.set_tag("prod/app", t, &format!("sha256:{i}"))?;
            }
            // A retag moves the by-digest index too.
            w.set_tag("prod/app", "main", "sha256:0")?;
            Ok::<_, MetaError>(())
        })
        .unwrap();
}

#[test]
fn versions_rank_by_semver_and_page_highest_first_with_their_indexes() {
    let tags = [
        "1.0.0",
        "1.0.0-rc.1",
        "1.0.0-rc.10",
        "1.0.0-rc.2",
        "1.2.0",
        "1.10.0",
        "2.0.0-alpha",
        "0.9.9",
        "latest",
        "main",
        "stable",
    ];
    for e in engines() {
        e.meta
            .write(|w| {
                for (i, t) in tags.iter().enumerate() {
                    w.set_tag("prod/app", t, &format!("sha256:{i}"))?;
                }
                // A retag moves the by-digest index too.
                w.set_tag("prod/app", "main", "sha256:0")?;
                Ok::<_, MetaError>(())
            })
            .unwrap();
        let r = e.meta.read().unwrap();
        let all = r.versions_page("prod/app", None, 100, &|_| true).unwrap();
        let names: Vec<&str> = all.0.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(
            names,
            [
                "2.0.0-alpha",
                "1.10.0",
                "1.2.0",
                "1.0.0",
                "1.0.0-rc.10",
                "1.0.0-rc.2",
                "1.0.0-rc.1",
                "0.9.9"
            ],
            "{}",
            e.name
        );
        // Paged by the version before which to continue, three at a time.
        let mut paged = Vec::new();
        let mut before: Option<semver::Version> = None;
        loop {
            let (page, more) = r
                .versions_page("prod/app", before.as_ref(), 3, &|_| true)
                .unwrap();
            paged.extend(page.iter().map(|(t, _)| t.clone()));
            if !more {
                break;
            }
            before = Some(page.last().unwrap().0.parse().unwrap());
        }
        assert_eq!(paged, names, "{}", e.name);
        assert_eq!(
            r.highest_version("prod/app", Scope::Stable)
                .unwrap()
                .unwrap()
                .0,
            "1.10.0",
            "{}",
            e.name
        );
        assert_eq!(
            r.highest_version("prod/app", Scope::Minor(1, 0))
                .unwrap()
                .unwrap()
                .0,
            "1.0.0"
        );
        assert_eq!(
            r.highest_version("prod/app", Scope::Major(0))
                .unwrap()
                .unwrap()
                .0,
            "0.9.9"
        );
        assert_eq!(
            r.highest_version("prod/app", Scope::Major(3)).unwrap(),
            None
        );
    }
}

#[test]
fn other_tags_page_by_name_and_tags_are_found_by_digest() {
    for e in engines() {
        tag_some(&e);
        let r = e.meta.read().unwrap();
        let others = r
            .named_tags_page("prod/app", Some("latest"), 10, &|_| true)
            .unwrap();
        assert_eq!(
            others.0.iter().map(|(t, _)| t.as_str()).collect::<Vec<_>>(),
            ["main", "stable"],
            "{}",
            e.name
        );
        assert_eq!(
            r.tags_pointing_at("prod/app", "sha256:0").unwrap(),
            ["1.0.0", "main"],
            "{}",
            e.name
        );
        let (page, more) = r.tags("prod/app", Some("1.2.0"), 2).unwrap();
        assert_eq!(
            (page, more),
            (vec!["2.0.0-alpha".to_owned(), "latest".to_owned()], true)
        );
        drop(r);
        e.meta
            .write(|w| {
                assert!(w.remove_tag("prod/app", "1.10.0")?);
                Ok::<_, MetaError>(())
            })
            .unwrap();
        let r = e.meta.read().unwrap();
        assert_eq!(
            r.highest_version("prod/app", Scope::Stable)
                .unwrap()
                .unwrap()
                .0,
            "1.2.0"
        );
        assert_eq!(r.tag("prod/app", "1.10.0").unwrap(), None, "{}", e.name);
    }
}

#[test]
fn history_pages_both_ways_by_tag_and_across_repositories() {
    for e in engines() {
        e.meta
            .write(|w| {
                for i in 0..10u64 {
                    let tag = if i % 2 == 0 { "1.0.0" } else { "latest" };
                    w.append_history("prod/app", tag, &history(&format!("sha256:{i}"), i))?;
                }
                w.append_history("prod/other", "x", &history("sha256:o", 99))?;
                Ok::<_, MetaError>(())
            })
            .unwrap();
        let r = e.meta.read().unwrap();
        let (oldest, more) = r
            .history_page("prod/app", None, None, false, 4, &|_, _| true)
            .unwrap();
        assert!(more, "{}", e.name);
        assert_eq!(
            oldest.iter().map(|(_, _, h)| h.time_ms).collect::<Vec<_>>(),
            [0, 1, 2, 3],
            "{}",
            e.name
        );
        let cursor = oldest.last().unwrap().1;
        let (next, _) = r
            .history_page("prod/app", None, Some(cursor), false, 100, &|_, _| true)
            .unwrap();
        assert_eq!(next.len(), 6, "{}", e.name);
        let (newest, _) = r
            .history_page("prod/app", Some("latest"), None, true, 2, &|_, _| true)
            .unwrap();
        assert_eq!(
            newest.iter().map(|(_, _, h)| h.time_ms).collect::<Vec<_>>(),
            [9, 7]
        );
        assert_eq!(
            r.last_history("prod/app", "1.0.0")
                .unwrap()
                .unwrap()
                .time_ms,
            8
        );
        let recent = r.recent_history(3, &|repo| repo == "prod/app").unwrap();
        assert_eq!(
            recent.iter().map(|(_, _, h)| h.time_ms).collect::<Vec<_>>(),
            [9, 8, 7]
        );
        assert_eq!(
            r.history("prod/app", Some("latest")).unwrap().len(),
            5,
            "{}",
            e.name
        );
    }
}

/// Walks read more rows than one batch of the distributed engine, and lose none.
#[test]
fn walks_over_many_records_visit_each_once_in_order() {
    for e in engines() {
        let n = 1300;
        e.meta
            .write(|w| {
                for i in 0..n {
                    let digest = format!("sha256:{i:064}");
                    w.put_blob(
                        &digest,
                        &BlobRecord {
                            size: i,
                            created: 0,
                        },
                    )?;
                    w.link(&format!("prod/r{}", i % 7), &digest, i)?;
                    w.put_repository(&format!("prod/r{i:04}"), &RepositoryRecord { created: i })?;
                }
                Ok::<_, MetaError>(())
            })
            .unwrap();
        let r = e.meta.read().unwrap();
        let mut blobs = Vec::new();
        r.each_blob(&mut |d, _| blobs.push(d.to_owned())).unwrap();
        assert_eq!(blobs.len() as u64, n, "{}", e.name);
        assert!(blobs.windows(2).all(|w| w[0] < w[1]), "{}", e.name);
        let mut links = 0;
        r.each_link(&mut |_, _, _| links += 1).unwrap();
        assert_eq!(links, n, "{}", e.name);
        let first = r.blob_digests(None, 1000).unwrap();
        let rest = r
            .blob_digests(first.last().map(String::as_str), 1000)
            .unwrap();
        assert_eq!((first.len() + rest.len()) as u64, n, "{}", e.name);
        let (page, more) = r
            .repositories("prod/r1", Some("prod/r1005"), 3, &|name| {
                name.ends_with('7') || name.ends_with('9')
            })
            .unwrap();
        assert_eq!(
            page,
            ["prod/r1007", "prod/r1009", "prod/r1017"],
            "{}",
            e.name
        );
        assert!(more, "{}", e.name);
    }
}

/// Concurrent writers that read and then write the same value lose no update: each write
/// is serialised (redb's single writer; PostgreSQL's write lock across connections).
#[test]
fn concurrent_read_modify_writes_lose_no_update() {
    for e in engines() {
        let threads = 8;
        let each = 25;
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(|| {
                    for _ in 0..each {
                        e.meta
                            .write(|w| {
                                let n = w
                                    .setting("counter")?
                                    .map_or(0, |v| u64::from_be_bytes(v.try_into().unwrap()));
                                w.put_setting("counter", &(n + 1).to_be_bytes())?;
                                w.set_pull("prod/app", "sha256:a", n)?;
                                Ok::<_, MetaError>(())
                            })
                            .unwrap();
                    }
                });
            }
        });
        let r = e.meta.read().unwrap();
        let n = u64::from_be_bytes(r.setting("counter").unwrap().unwrap().try_into().unwrap());
        assert_eq!(n, threads * each, "{}", e.name);
        assert_eq!(
            r.last_pull("prod/app", "sha256:a").unwrap(),
            Some(n - 1),
            "{}",
            e.name
        );
    }
}

/// Two nodes over one PostgreSQL database: a push on one is pulled from the other, and the
/// virtual tags either node computes agree with the versions.
#[actix_web::test]
async fn a_push_on_one_node_is_pulled_from_another_with_its_virtual_tags() {
    let a = TestApp::on_postgres().versioned("prod", &[]);
    let b = a.another_node();
    let (digest, body) = a.push_image("prod/app", "1.2.3", &[b"layer one"]).await;
    let res = b.get("/v2/prod/app/manifests/1.2.3").await;
    assert_eq!(res.status, 200);
    assert_eq!(res.body, body);
    for virtual_tag in ["latest", "1", "1.2"] {
        let res = b
            .get(&format!("/v2/prod/app/manifests/{virtual_tag}"))
            .await;
        assert_eq!(res.status, 200, "{virtual_tag}");
        assert_eq!(res.header("docker-content-digest"), Some(digest.as_str()));
    }
    let (newer, _) = b.push_image("prod/app", "1.3.0", &[b"layer two"]).await;
    let res = a.get("/v2/prod/app/manifests/latest").await;
    assert_eq!(res.header("docker-content-digest"), Some(newer.as_str()));
    let res = a.get("/v2/prod/app/tags/list").await;
    let tags = res.json()["tags"].clone();
    assert_eq!(
        tags,
        serde_json::json!(["1", "1.2", "1.2.3", "1.3", "1.3.0", "latest"])
    );
}

/// 16 pushes of one version with different content, spread over two nodes at once: exactly
/// one wins, every other is refused, and the version and `latest` point at the winner.
#[actix_web::test]
async fn racing_pushes_of_one_version_across_nodes_have_exactly_one_winner() {
    let a = TestApp::on_postgres().versioned("prod", &[]);
    let b = a.another_node();
    let mut images = Vec::new();
    for i in 0..16 {
        let node = if i % 2 == 0 { &a } else { &b };
        images.push(
            node.image("prod/app", &[format!("layer {i}").as_bytes()])
                .await,
        );
    }
    let pushes = images.iter().enumerate().map(|(i, (_, body))| {
        let node = if i % 2 == 0 { &a } else { &b };
        node.put_manifest("prod/app", "2.0.0", OCI_MANIFEST, body)
    });
    let results = futures_util::future::join_all(pushes).await;
    let winners: Vec<usize> = results
        .iter()
        .enumerate()
        .filter(|(_, r)| r.status == 201)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(
        winners.len(),
        1,
        "{:?}",
        results.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    assert!(
        results
            .iter()
            .all(|r| r.status == 201 || r.status == 400 || r.status == 409)
    );
    let winner = &images[winners[0]].0;
    for node in [&a, &b] {
        for tag in ["2.0.0", "latest"] {
            let res = node.get(&format!("/v2/prod/app/manifests/{tag}")).await;
            assert_eq!(
                res.header("docker-content-digest"),
                Some(winner.as_str()),
                "{tag}"
            );
        }
    }
}

/// What one node remembers never hides another node's write: after node A moves `latest`
/// and deletes the API key node B has just served, B answers with the new state at once.
#[actix_web::test]
async fn a_node_never_serves_what_another_node_changed() {
    let a = TestApp::on_postgres().versioned("prod", &[]);
    let b = a.another_node();
    let (first, _) = a.push_image("prod/app", "1.0.0", &[b"one"]).await;
    for _ in 0..3 {
        let res = b.get("/v2/prod/app/manifests/latest").await;
        assert_eq!(res.header("docker-content-digest"), Some(first.as_str()));
    }
    let (second, _) = a.push_image("prod/app", "1.1.0", &[b"two"]).await;
    let res = b.get("/v2/prod/app/manifests/latest").await;
    assert_eq!(res.header("docker-content-digest"), Some(second.as_str()));
    // Again and again, B's cache warm each time (announced writes, not a cache that never
    // hits): every version A pushes is B's `latest` at B's very next read.
    for minor in 2..40 {
        let (newer, _) = a
            .push_image(
                "prod/app",
                &format!("1.{minor}.0"),
                &[format!("v{minor}").as_bytes()],
            )
            .await;
        let res = b.get("/v2/prod/app/manifests/latest").await;
        assert_eq!(
            res.header("docker-content-digest"),
            Some(newer.as_str()),
            "1.{minor}.0"
        );
        let res = b.get("/v2/prod/app/manifests/latest").await;
        assert_eq!(res.header("docker-content-digest"), Some(newer.as_str()));
    }

    // A manifest deleted through A is gone through B at once, B's cache warm (the
    // conformance suite through HAProxy caught a node answering 200 here when nodes only
    // learned of writes from notifications).
    for i in 0..10 {
        let (digest, _) = a
            .push_image(
                "prod/gone",
                &format!("0.0.{i}"),
                &[format!("gone {i}").as_bytes()],
            )
            .await;
        let head = || {
            b.send(
                actix_web::test::TestRequest::default()
                    .method(actix_web::http::Method::HEAD)
                    .uri(&format!("/v2/prod/gone/manifests/{digest}"))
                    .insert_header(("Accept", OCI_MANIFEST)),
            )
        };
        assert_eq!(head().await.status, 200);
        assert_eq!(head().await.status, 200);
        let res = a
            .send(
                actix_web::test::TestRequest::delete()
                    .uri(&format!("/v2/prod/gone/manifests/{digest}")),
            )
            .await;
        assert_eq!(res.status, 202);
        assert_eq!(
            head().await.status,
            404,
            "deleted through A, still there through B"
        );
    }

    let key = a
        .auth
        .keys()
        .create(
            &common::admin(),
            None,
            "short-lived",
            &std::collections::BTreeMap::new(),
            true,
            None,
        )
        .unwrap();
    let with_key = || {
        actix_web::test::TestRequest::get()
            .uri("/v2/prod/app/manifests/latest")
            .insert_header(("Authorization", common::basic("api", &key.key)))
    };
    assert_eq!(b.send_as(with_key()).await.status, 200);
    assert_eq!(b.send_as(with_key()).await.status, 200);
    a.auth.keys().revoke(&common::admin(), &key.id).unwrap();
    assert_eq!(b.send_as(with_key()).await.status, 401);
}

/// Two `semdock serve` processes configured with `storage.metadata = "postgres"` on one
/// database and one blob directory: docker pushes through one and pulls the same image, by
/// the same digest, through the other.
#[test]
fn two_servers_over_one_postgres_serve_one_registry_to_docker() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let url = postgres_database();
    let env = [
        ("SEMDOCK_STORAGE__METADATA", "postgres"),
        ("SEMDOCK_STORAGE__POSTGRES__URL", url.as_str()),
    ];
    let a = common::Server::start_in(&data, &env);
    let b = common::Server::start_in(&data, &env);
    a.docker_login();
    b.docker_login();
    let pushed = format!("{}/prod/app:1.0.0", a.host());
    let ctx = common::image_context(2, "two-nodes");
    common::run(
        a.docker()
            .args(["build", "--no-cache", "-q", "-t", &pushed])
            .arg(ctx.path())
            .env("DOCKER_BUILDKIT", "0"),
    );
    common::run(a.docker().args(["push", &pushed]));
    let digest_at = |server: &common::Server, reference: &str| {
        let res = server
            .http()
            .get(server.url(&format!("/v2/prod/app/manifests/{reference}")))
            .header(
                "Accept",
                "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json",
            )
            .call()
            .unwrap();
        assert_eq!(res.status(), 200, "{reference} at {}", server.host());
        res.headers()["docker-content-digest"]
            .to_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(digest_at(&b, "1.0.0"), digest_at(&a, "1.0.0"));
    let pulled = format!("{}/prod/app:1.0.0", b.host());
    common::run(b.docker().args(["pull", &pulled]));
    common::run(a.docker().args(["rmi", &pushed, &pulled]));
}

/// A server whose PostgreSQL cannot be reached does not start, and says which setting.
#[test]
fn a_server_whose_database_is_unreachable_says_so_and_stops() {
    let dir = tempfile::tempdir().unwrap();
    // A port nothing listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_semdock"))
        .arg("serve")
        .env("SEMDOCK_LISTEN", "127.0.0.1:0")
        .env("SEMDOCK_DATA_DIR", dir.path().join("data"))
        .env("SEMDOCK_STORAGE__METADATA", "postgres")
        .env(
            "SEMDOCK_STORAGE__POSTGRES__URL",
            format!("host=127.0.0.1 port={port} user=semdock dbname=semdock connect_timeout=2"),
        )
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot open the metadata database (storage.postgres.url)")
            && stderr.contains("cannot be reached"),
        "{stderr}"
    );
}

/// A server whose bucket cannot be used does not start, and says which bucket: a store
/// that does not answer, then credentials it refuses.
#[test]
fn a_server_whose_bucket_is_unusable_says_so_and_stops() {
    let dir = tempfile::tempdir().unwrap();
    let s3 = common::s3_location();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let nowhere = format!("http://127.0.0.1:{port}");
    for (endpoint, secret) in [
        (nowhere.as_str(), s3.secret_access_key.as_str()),
        (s3.endpoint.as_deref().unwrap(), "not-the-secret"),
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_semdock"))
            .arg("serve")
            .env("SEMDOCK_LISTEN", "127.0.0.1:0")
            .env("SEMDOCK_DATA_DIR", dir.path().join("data"))
            .env("SEMDOCK_STORAGE__BLOBS", "s3")
            .env("SEMDOCK_STORAGE__S3__ENDPOINT", endpoint)
            .env("SEMDOCK_STORAGE__S3__BUCKET", &s3.bucket)
            .env("SEMDOCK_STORAGE__S3__REGION", &s3.region)
            .env("SEMDOCK_STORAGE__S3__ACCESS_KEY_ID", &s3.access_key_id)
            .env("SEMDOCK_STORAGE__S3__SECRET_ACCESS_KEY", secret)
            .output()
            .unwrap();
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&format!(
                "cannot reach bucket \"{}\" of the object store ({endpoint})",
                s3.bucket
            )),
            "{stderr}"
        );
        assert!(!stderr.contains("not-the-secret"), "{stderr}");
    }
}

/// The database going away under a running server (its connections cut, new ones refused):
/// requests get 503 with the OCI error JSON and `/readyz` says so; once it is back, the same
/// server answers again without a restart.
#[test]
fn a_lost_database_gives_503_and_the_server_recovers_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let url = postgres_database();
    let db = url.rsplit("dbname=").next().unwrap().to_owned();
    let server = common::Server::start_in(
        &dir.path().join("data"),
        &[
            ("SEMDOCK_STORAGE__METADATA", "postgres"),
            ("SEMDOCK_STORAGE__POSTGRES__URL", url.as_str()),
        ],
    );
    let agent = server.http();
    let tags = |agent: &ureq::Agent| {
        let res = agent
            .get(server.url("/v2/prod/app/tags/list"))
            .call()
            .unwrap();
        let status = res.status().as_u16();
        (status, res.into_body().read_to_string().unwrap())
    };
    assert_eq!(
        tags(&agent).0,
        404,
        "an empty repository, answered by the database"
    );
    common::postgres_admin(&format!(
        "ALTER DATABASE {db} ALLOW_CONNECTIONS false;
         SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{db}';"
    ));
    let (status, body) = tags(&agent);
    assert_eq!(status, 503, "{body}\n{}", server.log());
    assert!(body.contains("UNAVAILABLE"), "{body}");
    let ready = common::http().get(server.url("/readyz")).call().unwrap();
    assert_eq!(ready.status(), 503);
    common::postgres_admin(&format!("ALTER DATABASE {db} ALLOW_CONNECTIONS true;"));
    assert_eq!(tags(&agent).0, 404, "the same server answers again");
    let ready = common::http().get(server.url("/readyz")).call().unwrap();
    assert_eq!(ready.status(), 200);
}

/// `semdock migrate` applies the schema to a new PostgreSQL database and says so, then finds
/// nothing to do; with the embedded store it says there is nothing to do.
#[test]
fn migrate_applies_the_schema_once_and_then_finds_it_up_to_date() {
    let dir = tempfile::tempdir().unwrap();
    let url = postgres_database();
    let migrate = || {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_semdock"));
        cmd.arg("migrate")
            .env("SEMDOCK_DATA_DIR", dir.path().join("data"))
            .env("SEMDOCK_STORAGE__METADATA", "postgres")
            .env("SEMDOCK_STORAGE__POSTGRES__URL", &url);
        common::run(&mut cmd)
    };
    let first = migrate();
    assert!(
        first.contains("applied migration(s) 1, 2, 3, 4: the PostgreSQL schema is at version 4"),
        "{first}"
    );
    let second = migrate();
    assert!(
        second.contains("the PostgreSQL schema is up to date (version 4)"),
        "{second}"
    );
    let embedded = common::run(
        std::process::Command::new(env!("CARGO_BIN_EXE_semdock"))
            .arg("migrate")
            .env("SEMDOCK_DATA_DIR", dir.path().join("embedded")),
    );
    assert!(embedded.contains("nothing to do"), "{embedded}");
    // The migrated database serves.
    let server = common::Server::start_in(
        &dir.path().join("data"),
        &[
            ("SEMDOCK_STORAGE__METADATA", "postgres"),
            ("SEMDOCK_STORAGE__POSTGRES__URL", url.as_str()),
        ],
    );
    let res = server.http().get(server.url("/v2/")).call().unwrap();
    assert_eq!(res.status(), 200);
}

/// A blob engine under test, and a second handle on the same storage (another node's).
struct BlobEngine {
    name: &'static str,
    blobs: Arc<dyn Blobs>,
    other_node: Arc<dyn Blobs>,
    _dir: Option<tempfile::TempDir>,
}

fn blob_engines() -> Vec<BlobEngine> {
    let dir = tempfile::tempdir().unwrap();
    let s3 = common::s3_location();
    vec![
        BlobEngine {
            name: "files",
            blobs: Arc::new(FsBlobs::open(dir.path()).unwrap()),
            other_node: Arc::new(FsBlobs::open(dir.path()).unwrap()),
            _dir: Some(dir),
        },
        BlobEngine {
            name: "s3",
            blobs: Arc::new(S3Blobs::open(&s3).unwrap()),
            other_node: Arc::new(S3Blobs::open(&s3).unwrap()),
            _dir: None,
        },
    ]
}

/// Bytes that differ at every offset that matters (not one repeated byte).
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| u8::try_from((i * 31 + i / 8191 + usize::from(seed)) % 256).unwrap())
        .collect()
}

/// Appends `chunks` to upload `id` of `blobs`, one request each, continuing from what the
/// store holds (as a node that did not see the earlier requests does).
fn append_chunks(blobs: &dyn Blobs, id: &str, chunks: &[&[u8]]) -> UploadState {
    let mut state = blobs.rehash_upload(id, Algorithm::Sha256).unwrap();
    for chunk in chunks {
        let before = state.len();
        assert_eq!(blobs.upload_len(id).unwrap(), Some(before));
        let mut sink = blobs.append(id, state).unwrap();
        // In pieces, as a request body arrives.
        for piece in chunk.chunks(64 << 10) {
            sink.write(piece).unwrap();
        }
        assert_eq!(sink.offset(), before + chunk.len() as u64);
        state = sink.finish().unwrap();
    }
    state
}

#[test]
fn a_blob_published_from_an_upload_reads_back_exactly_by_any_range() {
    for e in blob_engines() {
        let bytes = pattern(3 << 20, 1);
        let digest = Digest::of(&bytes);
        e.blobs.create_upload("u1").unwrap();
        assert_eq!(e.blobs.upload_len("u1").unwrap(), Some(0), "{}", e.name);
        let state = append_chunks(e.blobs.as_ref(), "u1", &[&bytes]);
        assert_eq!(state.digest(), digest, "{}", e.name);
        assert_eq!(e.blobs.stat(&digest).unwrap(), None, "{}", e.name);
        e.blobs.publish("u1", &digest).unwrap();
        assert_eq!(e.blobs.upload_len("u1").unwrap(), None, "{}", e.name);
        assert_eq!(
            e.other_node.stat(&digest).unwrap(),
            Some(bytes.len() as u64),
            "{}",
            e.name
        );
        let blob = e.other_node.open(&digest).unwrap();
        assert_eq!(blob.stored_len().unwrap(), bytes.len() as u64);
        for (offset, len) in [
            (0, 10),
            (10, 1 << 20),
            (5, 7),
            (2 << 20, 1 << 20),
            (0, 3 << 20),
        ] {
            assert_eq!(
                blob.read_at(offset as u64, len).unwrap(),
                bytes[offset..offset + len],
                "{} at {offset}+{len}",
                e.name
            );
        }
        let past = blob.read_at((3 << 20) - 4, 5).unwrap_err();
        assert_eq!(
            past.io_kind(),
            Some(std::io::ErrorKind::UnexpectedEof),
            "{}",
            e.name
        );
        let mut listed = Vec::new();
        e.other_node
            .each_blob(&mut |b| {
                listed.push((b.digest, b.len));
                Ok(())
            })
            .unwrap();
        assert_eq!(
            listed,
            vec![(digest.clone(), bytes.len() as u64)],
            "{}",
            e.name
        );
        e.other_node.remove_blob(&digest).unwrap();
        e.other_node.remove_blob(&digest).unwrap();
        assert_eq!(e.blobs.stat(&digest).unwrap(), None, "{}", e.name);
    }
}

/// A chunked upload whose requests land on two nodes in turn, with chunks smaller and larger
/// than a multipart part: every node continues from the bytes and hash state the store holds.
#[test]
fn a_chunked_upload_continues_on_another_node_across_part_boundaries() {
    for e in blob_engines() {
        let bytes = pattern(2 * PART + (3 << 20) + 17, 2);
        let digest = Digest::of(&bytes);
        e.blobs.create_upload("u2").unwrap();
        let cuts = [0, 1000, PART - 5, PART + 3, 2 * PART + 1, bytes.len()];
        for (i, w) in cuts.windows(2).enumerate() {
            let node = if i % 2 == 0 { &e.blobs } else { &e.other_node };
            append_chunks(node.as_ref(), "u2", &[&bytes[w[0]..w[1]]]);
            assert_eq!(
                e.blobs.upload_len("u2").unwrap(),
                Some(w[1] as u64),
                "{}",
                e.name
            );
        }
        let state = e.other_node.rehash_upload("u2", Algorithm::Sha256).unwrap();
        assert_eq!(state.digest(), digest, "{}", e.name);
        assert_eq!(state.len(), bytes.len() as u64);
        let listed: Vec<_> = e
            .blobs
            .uploads()
            .unwrap()
            .into_iter()
            .map(|u| (u.id, u.len))
            .collect();
        assert_eq!(
            listed,
            vec![("u2".to_owned(), bytes.len() as u64)],
            "{}",
            e.name
        );
        e.blobs.publish("u2", &digest).unwrap();
        let mut read = Vec::new();
        read_all(e.other_node.open(&digest).unwrap().as_ref(), |b| {
            read.extend_from_slice(b);
        })
        .unwrap();
        assert!(read == bytes, "{}: the published blob differs", e.name);
        assert!(e.blobs.uploads().unwrap().is_empty(), "{}", e.name);
    }
}

/// A request cut short (its sink dropped unfinished) leaves the upload as the request before
/// it ended, so the client resumes from the offset the store reports.
#[test]
fn an_append_dropped_unfinished_leaves_the_upload_as_it_was() {
    for e in blob_engines() {
        let first = pattern(PART + 100, 3);
        e.blobs.create_upload("u3").unwrap();
        append_chunks(e.blobs.as_ref(), "u3", &[&first]);
        let state = e.blobs.rehash_upload("u3", Algorithm::Sha256).unwrap();
        let mut sink = e.blobs.append("u3", state).unwrap();
        sink.write(&pattern(PART + 5, 4)).unwrap();
        drop(sink);
        let len = e.other_node.upload_len("u3").unwrap().unwrap();
        // The files engine keeps what reached the file; S3 keeps what the last request
        // recorded. Either way the hash state matches the bytes held.
        let resumed = e.other_node.rehash_upload("u3", Algorithm::Sha256).unwrap();
        assert_eq!(resumed.len(), len, "{}", e.name);
        let rest = pattern(10, 5);
        let mut all = first.clone();
        if len > first.len() as u64 {
            all.extend_from_slice(
                &pattern(PART + 5, 4)[..(usize::try_from(len).unwrap() - first.len())],
            );
        }
        append_chunks(e.other_node.as_ref(), "u3", &[&rest]);
        all.extend_from_slice(&rest);
        let digest = Digest::of(&all);
        assert_eq!(
            e.blobs
                .rehash_upload("u3", Algorithm::Sha256)
                .unwrap()
                .digest(),
            digest,
            "{}",
            e.name
        );
        e.blobs.publish("u3", &digest).unwrap();
        assert_eq!(
            e.blobs.stat(&digest).unwrap(),
            Some(all.len() as u64),
            "{}",
            e.name
        );
    }
}

/// An upload streamed as SHA-256 but declared by a SHA-512 digest is hashed again by the
/// store; removing an upload removes every trace of it.
#[test]
fn an_upload_rehashes_by_another_algorithm_and_removal_leaves_nothing() {
    for e in blob_engines() {
        let bytes = pattern(PART + 4096, 6);
        e.blobs.create_upload("u4").unwrap();
        append_chunks(e.blobs.as_ref(), "u4", &[&bytes]);
        let sha512 = e.other_node.rehash_upload("u4", Algorithm::Sha512).unwrap();
        assert_eq!(
            sha512.digest(),
            Digest::of_with(Algorithm::Sha512, &bytes),
            "{}",
            e.name
        );
        e.other_node.publish("u4", &sha512.digest()).unwrap();
        assert_eq!(
            e.blobs.stat(&sha512.digest()).unwrap(),
            Some(bytes.len() as u64)
        );

        e.blobs.create_upload("u5").unwrap();
        append_chunks(e.blobs.as_ref(), "u5", &[&bytes, b"more"]);
        e.other_node.remove_upload("u5").unwrap();
        e.other_node.remove_upload("u5").unwrap();
        assert_eq!(e.blobs.upload_len("u5").unwrap(), None, "{}", e.name);
        assert!(e.blobs.uploads().unwrap().is_empty(), "{}", e.name);
    }
}

/// A blob copied between engines is verified on the way: one that does not hash to its name
/// is refused and leaves nothing behind. A blob set aside is out of every reader's way.
#[test]
fn import_verifies_every_blob_and_set_aside_moves_it_away() {
    let files_dir = tempfile::tempdir().unwrap();
    let source = FsBlobs::open(files_dir.path()).unwrap();
    let bytes = pattern(PART + 1, 7);
    let digest = Digest::of(&bytes);
    source.create_upload("s").unwrap();
    append_chunks(&source, "s", &[&bytes]);
    Blobs::publish(&source, "s", &digest).unwrap();
    for e in blob_engines() {
        e.blobs.import(&source, &digest).unwrap();
        e.blobs.import(&source, &digest).unwrap();
        let mut read = Vec::new();
        read_all(e.other_node.open(&digest).unwrap().as_ref(), |b| {
            read.extend_from_slice(b);
        })
        .unwrap();
        assert!(read == bytes, "{}", e.name);
        let wrong = Digest::of(b"something else");
        std::fs::create_dir_all(files_dir.path().join("blobs/sha256")).unwrap();
        // A damaged source: a file under a name it does not hash to.
        let lying = tempfile::tempdir().unwrap();
        let liar = FsBlobs::open(lying.path()).unwrap();
        liar.create_upload("l").unwrap();
        append_chunks(&liar, "l", &[b"not what the name says"]);
        Blobs::publish(&liar, "l", &wrong).unwrap();
        let refused = e.blobs.import(&liar, &wrong).unwrap_err();
        assert_eq!(
            refused.io_kind(),
            Some(std::io::ErrorKind::InvalidData),
            "{}",
            e.name
        );
        assert_eq!(e.blobs.stat(&wrong).unwrap(), None, "{}", e.name);
        assert!(e.blobs.uploads().unwrap().is_empty(), "{}", e.name);

        let aside = e.blobs.set_aside(&digest).unwrap();
        assert!(!aside.is_empty());
        assert_eq!(e.other_node.stat(&digest).unwrap(), None, "{}", e.name);
        e.blobs.probe().unwrap();
    }
}

/// The distributed registry (PostgreSQL and S3) with two nodes: a chunked upload whose
/// POST, PATCH requests and PUT land on the nodes in turn completes with the right digest, and the
/// image pushed through one node pulls from the other byte for byte.
#[actix_web::test]
async fn a_chunked_upload_spread_over_two_nodes_completes_and_pulls_anywhere() {
    let a = TestApp::distributed().versioned("prod", &[]);
    let b = a.another_node();
    let nodes = [&a, &b];
    let bytes = pattern(PART + (2 << 20), 9);
    let digest = Digest::of(&bytes);
    let res = a
        .send(actix_web::test::TestRequest::post().uri("/v2/prod/app/blobs/uploads/"))
        .await;
    assert_eq!(res.status, 202);
    let location = res.header("location").unwrap().to_owned();
    let cuts = [0, 1 << 20, PART + 1, PART + (2 << 20) - 10];
    for (i, w) in cuts.windows(2).enumerate() {
        let node = nodes[(i + 1) % 2];
        let res = node
            .send(
                actix_web::test::TestRequest::patch()
                    .uri(&location)
                    .insert_header(("Content-Type", "application/octet-stream"))
                    .insert_header(("Content-Range", format!("{}-{}", w[0], w[1] - 1)))
                    .set_payload(bytes[w[0]..w[1]].to_vec()),
            )
            .await;
        assert_eq!(
            res.status,
            202,
            "PATCH {i}: {}",
            String::from_utf8_lossy(&res.body)
        );
        assert_eq!(
            res.header("range"),
            Some(format!("0-{}", w[1] - 1).as_str())
        );
        // The other node reports the same offset.
        let status = nodes[i % 2].get(&location).await;
        assert_eq!(status.status, 204);
        assert_eq!(
            status.header("range"),
            Some(format!("0-{}", w[1] - 1).as_str())
        );
    }
    // Out of order on the other node: refused with the offset the upload has.
    let res = b
        .send(
            actix_web::test::TestRequest::patch()
                .uri(&location)
                .insert_header(("Content-Range", "5-9"))
                .set_payload(b"wrong".to_vec()),
        )
        .await;
    assert_eq!(res.status, 416);
    let last = cuts[cuts.len() - 1];
    let res = a
        .send(
            actix_web::test::TestRequest::put()
                .uri(&format!("{location}?digest={digest}"))
                .insert_header(("Content-Range", format!("{last}-{}", bytes.len() - 1)))
                .set_payload(bytes[last..].to_vec()),
        )
        .await;
    assert_eq!(res.status, 201, "{}", String::from_utf8_lossy(&res.body));
    let res = b.get(&format!("/v2/prod/app/blobs/{digest}")).await;
    assert_eq!(res.status, 200);
    assert!(
        res.body == bytes,
        "the blob read through the other node differs"
    );

    let (manifest, body) = b
        .push_image("prod/app", "1.0.0", &[b"layer", &bytes[..100]])
        .await;
    let res = a.get("/v2/prod/app/manifests/latest").await;
    assert_eq!(res.header("docker-content-digest"), Some(manifest.as_str()));
    assert_eq!(res.body, body);
}

/// One maintenance job at a time across every node on one database: the lock is refused to
/// a second holder and free again once the first lets go (the embedded engine, one process,
/// always grants it).
#[test]
fn maintenance_is_exclusive_across_nodes_and_free_once_released() {
    let url = postgres_database();
    let (a, b) = (
        PgMeta::connect(&url, None).unwrap(),
        PgMeta::connect(&url, None).unwrap(),
    );
    let held = a.try_exclusive(42).unwrap();
    assert!(held.is_some());
    assert!(b.try_exclusive(42).unwrap().is_none());
    assert!(
        b.try_exclusive(43).unwrap().is_some(),
        "another job's lock is free"
    );
    drop(held);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while b.try_exclusive(42).unwrap().is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "the lock was never let go"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let dir = tempfile::tempdir().unwrap();
    let redb = RedbMeta::open(&dir.path().join("meta.redb")).unwrap();
    assert!(redb.try_exclusive(42).unwrap().is_some());
}

/// Garbage collection on one node while another node pushes manifests over blobs that were
/// garbage a moment before (grace period zero, so only the cross-node rules protect them):
/// every manifest the other node got accepted still has every blob it references, byte for
/// byte, and what nothing references is collected.
#[actix_web::test]
async fn gc_on_one_node_loses_nothing_another_node_pushes_meanwhile() {
    let a = TestApp::distributed().versioned("prod", &[]);
    let b = a.another_node();
    let layers: Vec<Vec<u8>> = (0..12u8).map(|i| pattern(2048, 20 + i)).collect();
    let config = br#"{"architecture":"amd64","os":"linux"}"#;
    let config_digest = a.push_blob("prod/app", config).await;
    for layer in &layers {
        a.push_blob("prod/app", layer).await;
    }
    let unused = a.push_blob("prod/app", b"garbage nobody will use").await;
    // Links from an earlier second: old enough to be garbage under a zero grace period.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let gc_options = || {
        let mut opts = semdock::config::Config::default().gc_options(false);
        opts.grace = std::time::Duration::ZERO;
        opts
    };
    let registry = a.registry.clone();
    let collector = std::thread::spawn(move || {
        let mut removed = Vec::new();
        for _ in 0..6 {
            removed.extend(
                registry
                    .maintenance()
                    .gc(gc_options(), &|_, _, _| {})
                    .unwrap()
                    .removed,
            );
        }
        removed
    });
    // Manifests over the blobs as they are (no upload again): racing the collector.
    let mut accepted = Vec::new();
    for (i, layer) in layers.iter().enumerate() {
        let body = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest.as_str(), "size": config.len()},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": Digest::of(layer).as_str(), "size": layer.len()}],
        }))
        .unwrap();
        let res = b
            .put_manifest("prod/app", &format!("1.0.{i}"), OCI_MANIFEST, &body)
            .await;
        // A blob the collector took first makes the push fail as unknown, never succeed
        // with the blob missing.
        assert!(
            res.status == 201 || res.error_code() == "MANIFEST_BLOB_UNKNOWN",
            "{}",
            String::from_utf8_lossy(&res.body)
        );
        if res.status == 201 {
            accepted.push((Digest::of(&body), layer.clone()));
        }
    }
    let mut removed = collector.join().unwrap();
    removed.extend(
        b.registry
            .maintenance()
            .gc(gc_options(), &|_, _, _| {})
            .unwrap()
            .removed,
    );
    for (manifest, layer) in &accepted {
        let res = a.get(&format!("/v2/prod/app/manifests/{manifest}")).await;
        assert_eq!(res.status, 200);
        for (digest, bytes) in [
            (Digest::of(layer), &layer[..]),
            (config_digest.clone(), &config[..]),
        ] {
            let res = b.get(&format!("/v2/prod/app/blobs/{digest}")).await;
            assert_eq!(
                res.status, 200,
                "a blob of accepted manifest {manifest} is gone"
            );
            assert!(res.body == bytes);
        }
    }
    assert!(removed.contains(&unused.to_string()), "{removed:?}");
}

/// Stops a cluster started by `scripts/postgres` (the script, the directory) when dropped.
struct Stop(std::path::PathBuf, std::path::PathBuf);
impl Drop for Stop {
    fn drop(&mut self) {
        let _ = std::process::Command::new(&self.0)
            .arg("stop")
            .arg(&self.1)
            .status();
    }
}

/// `storage.postgres.ca_file`: a database server with TLS (its certificate from a test CA)
/// is used over TLS, every connection of the engine encrypted, its certificate verified
/// against that CA — and one signed by another CA is refused with a sentence.
#[test]
fn the_database_over_tls_is_verified_against_the_configured_ca() {
    let dir = tempfile::tempdir().unwrap();
    let (good, other) = (dir.path().join("good"), dir.path().join("other"));
    std::fs::create_dir_all(&good).unwrap();
    std::fs::create_dir_all(&other).unwrap();
    common::make_certificates(&good);
    common::make_certificates(&other);
    let cluster = dir.path().join("cluster");
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/postgres");
    let url = common::run(
        std::process::Command::new(&script)
            .arg("start")
            .arg(&cluster)
            .env("PG_SSL_CERT", good.join("cert.pem"))
            .env("PG_SSL_KEY", good.join("key.pem")),
    )
    .trim()
    .to_owned();
    let _stop = Stop(script, cluster);

    let meta: Arc<dyn Metadata> =
        Arc::new(PgMeta::connect_with(&url, None, Some(&good.join("ca.crt"))).unwrap());
    meta.write(|w| w.put_setting("over-tls", b"yes")).unwrap();
    assert_eq!(
        meta.read().unwrap().setting("over-tls").unwrap().as_deref(),
        Some(&b"yes"[..])
    );
    // Every connection the engine holds is encrypted. The counting connections (plaintext)
    // name themselves, so that one still closing is not taken for the engine's.
    let count = |ssl: bool| {
        common::postgres_count(
            &format!("{url} application_name=tls-test-count"),
            &format!(
                "SELECT count(*) FROM pg_stat_ssl JOIN pg_stat_activity USING (pid)
                 WHERE ssl = {ssl} AND datname = current_database()
                 AND application_name <> 'tls-test-count'"
            ),
        )
    };
    assert!(count(true) >= 1, "the pool's connections over TLS");
    assert_eq!(count(false), 0, "no plaintext connection from the engine");
    drop(meta);

    let refused = PgMeta::connect_with(&url, None, Some(&other.join("ca.crt")))
        .err()
        .expect("a certificate from another CA is refused");
    let text = refused.to_string();
    assert!(text.to_lowercase().contains("certificate"), "{text}");
}

/// Accounts, keys, grants and settings, written straight into an engine.
fn fill_accounts(meta: &dyn Metadata) {
    use semdock::store::meta::{ApiKeyRecord, UserRecord};
    meta.write(|w| {
        w.put_setting("token-signing-key", b"secret bytes")?;
        w.put_setting("epoch:alice", &3u64.to_le_bytes())?;
        w.put_user(
            "alice",
            &UserRecord {
                password_hash: "$argon2id$x".into(),
                admin: false,
                disabled: false,
                created: 1,
                last_login: Some(9),
            },
        )?;
        w.put_api_key(
            "k1",
            &ApiKeyRecord {
                name: "ci".into(),
                owner: "alice".into(),
                hash: [7; 32],
                admin: false,
                created: 2,
                expires: None,
            },
        )?;
        w.set_grant("user:alice", "prod", "push")?;
        w.set_grant("key:k1", "*", "pull")?;
        Ok::<_, MetaError>(())
    })
    .unwrap();
}

/// A registry's worth of records of every kind, written straight into an engine.
#[allow(clippy::too_many_lines)] // one of every record, written out
fn fill_every_kind(meta: &dyn Metadata) {
    use semdock::store::meta::{AuditRecord, ManifestRecord, PromotionRecord, RetentionRecord};
    let manifest = |subject: Option<&str>, created: u64| ManifestRecord {
        media_type: OCI_MANIFEST.into(),
        artifact_type: None,
        subject: subject.map(str::to_owned),
        blobs: vec!["sha256:b1".into()],
        children: Vec::new(),
        annotations: std::collections::BTreeMap::new(),
        created,
        body: format!("{{\"n\":{created}}}").into_bytes(),
    };
    fill_accounts(meta);
    meta.write(|w| {
        for feed in ["prod", "staging"] {
            w.put_feed(
                feed,
                &FeedRecord {
                    created: 1,
                    description: feed.into(),
                    anonymous_pull: feed == "staging",
                    versioning: true,
                    permitted: vec!["stable".into()],
                    promotion_sources: Vec::new(),
                    required_referrer: None,
                    upstream: None,
                },
            )?;
        }
        w.put_retention(
            "staging",
            &RetentionRecord {
                untagged_days: Some(3),
                ..RetentionRecord::default()
            },
        )?;
        w.put_blob(
            "sha256:b1",
            &BlobRecord {
                size: 4,
                created: 1,
            },
        )?;
        w.put_blob(
            "sha256:b2",
            &BlobRecord {
                size: 5,
                created: 2,
            },
        )?;
        for (n, repo) in ["prod/app", "staging/app"].into_iter().enumerate() {
            let n = n as u64;
            w.put_repository(repo, &RepositoryRecord { created: n })?;
            w.link(repo, "sha256:b1", 10 + n)?;
            w.put_manifest(repo, "sha256:m1", &manifest(None, 20 + n))?;
            w.put_manifest(repo, "sha256:m2", &manifest(Some("sha256:m1"), 30 + n))?;
            w.add_referrer(repo, "sha256:m1", "sha256:m2", 30 + n)?;
            for tag in ["1.0.0", "1.2.0", "2.0.0-rc.1", "stable"] {
                w.set_tag(repo, tag, "sha256:m1")?;
            }
            w.set_tag(repo, "1.1.0", "sha256:m2")?;
            w.set_tombstone(repo, "0.9.0", "sha256:m2")?;
            w.set_pull(repo, "sha256:m1", 40 + n)?;
        }
        // History interleaved across repositories and tags, in time order.
        for (i, (repo, tag)) in [
            ("prod/app", "1.0.0"),
            ("staging/app", "1.0.0"),
            ("prod/app", "stable"),
            ("prod/app", "1.0.0"),
        ]
        .into_iter()
        .enumerate()
        {
            w.append_history(repo, tag, &history("sha256:m1", 100 + i as u64))?;
        }
        w.append_audit(&AuditRecord {
            time_ms: 5,
            actor: "admin".into(),
            feed: "prod".into(),
            change: "versioning on".into(),
            kind: "feed-settings-changed".into(),
            ..AuditRecord::default()
        })?;
        w.append_audit(&AuditRecord {
            time_ms: 7,
            actor: "ci".into(),
            feed: "prod".into(),
            change: "prod/app:1.0.0 → sha256:m1".into(),
            kind: "added".into(),
            repository: Some("prod/app".into()),
            tag: Some("1.0.0".into()),
            digest: Some("sha256:m1".into()),
            previous: None,
            source: Some("staging/app:1.0.0".into()),
        })?;
        w.append_promotion(&PromotionRecord {
            time_ms: 6,
            actor: "admin".into(),
            from_repository: "staging/app".into(),
            from_reference: "1.0.0".into(),
            to_repository: "prod/app".into(),
            to_tag: "1.0.0".into(),
            digest: "sha256:m1".into(),
            comment: None,
        })?;
        Ok::<_, MetaError>(())
    })
    .unwrap();
}

/// Everything an engine answers about the records `fill_every_kind` writes, as text.
fn dump(meta: &dyn Metadata) -> String {
    let r = meta.read().unwrap();
    let mut out = format!(
        "settings {:?}\nusers {:?}\nkeys {:?}\ngrants {:?} {:?}\nfeeds {:?}\nretention {:?}\nblobs {:?}\nlinks {:?}\naudit {:?}\npromotions {:?}\n",
        r.settings().unwrap(),
        r.users().unwrap(),
        r.api_keys().unwrap(),
        r.grants_of("user:alice").unwrap(),
        r.grants_on("*").unwrap(),
        r.feeds().unwrap(),
        r.retention("staging").unwrap(),
        r.blobs().unwrap(),
        r.links().unwrap(),
        r.audit_page(None, false, &[], 100, &|_| Scan::Keep)
            .unwrap(),
        r.promotions().unwrap(),
    );
    let (repos, _) = r.repositories("", None, 100, &|_| true).unwrap();
    for repo in &repos {
        let history = r.history(repo, None).unwrap();
        write!(
            out,
            "{repo} {:?}\n manifests {:?}\n tags {:?}\n highest {:?} {:?}\n versions {:?}\n at m1 {:?}\n referrers {:?}\n tombstones {:?}\n pulls {:?}\n history {history:?}\n",
            r.repository(repo).unwrap(),
            r.manifests_of(repo).unwrap(),
            r.tag_targets(repo).unwrap(),
            r.highest_version(repo, Scope::Stable).unwrap(),
            r.highest_version(repo, Scope::PreRelease).unwrap(),
            r.versions_page(repo, None, 10, &|_| true).unwrap(),
            r.tags_pointing_at(repo, "sha256:m1").unwrap(),
            r.referrers(repo, "sha256:m1").unwrap(),
            r.tombstones(repo).unwrap(),
            r.last_pull(repo, "sha256:m1").unwrap(),
        )
        .unwrap();
    }
    let recent: Vec<_> = r
        .recent_history(10, &|_| true)
        .unwrap()
        .into_iter()
        .map(|(repo, tag, h)| (repo, tag, h.time_ms))
        .collect();
    out + &format!("recent {recent:?}\n")
}

/// `storage migrate` and a backup of a PostgreSQL registry are one record copier through the
/// seam: embedded → PostgreSQL → embedded again answers every question as the original did,
/// derived indexes (versions, tags by digest, history across tags) included.
#[test]
fn every_record_copies_between_the_engines_both_ways() {
    let dir = tempfile::tempdir().unwrap();
    let source = RedbMeta::open(&dir.path().join("meta.redb")).unwrap();
    let source: &dyn Metadata = &source;
    fill_every_kind(source);
    let expected = dump(source);
    assert!(expected.contains("2.0.0-rc.1") && expected.contains("versioning on"));

    let pg: Arc<dyn Metadata> = Arc::new(PgMeta::connect(&postgres_database(), None).unwrap());
    let read = source.read().unwrap();
    let counts = pg
        .write(|w| semdock::store::meta::copy::copy_records(&*read, w))
        .unwrap();
    drop(read);
    assert_eq!(
        (
            counts.repositories,
            counts.manifests,
            counts.tags,
            counts.history
        ),
        (2, 4, 10, 4)
    );
    assert_eq!((counts.referrers, counts.pulls, counts.grants), (2, 2, 2));
    assert_eq!(dump(&*pg), expected, "embedded → PostgreSQL");

    let back = dir.path().join("back.redb");
    assert_eq!(pg.snapshot_to(&back).unwrap(), 2, "it records two blobs");
    let back = RedbMeta::open(&back).unwrap();
    assert_eq!(dump(&back), expected, "PostgreSQL → embedded");
    // The copy goes on numbering after its source.
    let back: &dyn Metadata = &back;
    back.write(|w| w.append_history("prod/app", "2.0.0", &history("sha256:m2", 200)))
        .unwrap();
    let last = back.read().unwrap().history("prod/app", None).unwrap();
    assert_eq!(last.last().unwrap().2.time_ms, 200);
    assert_eq!(last.last().unwrap().1, 5, "after the four copied");
}

/// `storage migrate`, resumed: a blob an interrupted run copied whole is hashed again and
/// kept, one it left torn is copied again; then every record follows in one transaction and
/// the tag pulls from the new stores with its digest. A second run refuses to copy twice.
#[actix_web::test]
async fn storage_migrate_resumes_verifies_and_refuses_to_run_twice() {
    use semdock::model::{Reference, Repository};
    let app = TestApp::new();
    let (first, second) = (pattern(3000, 1), pattern(1 << 20, 2));
    let (digest, _) = app
        .push_image("library/app", "1.0.0", &[&first, &second])
        .await;
    let files = FsBlobs::open(app.dir.path()).unwrap();
    let pg: Arc<dyn Metadata> = Arc::new(PgMeta::connect(&postgres_database(), None).unwrap());
    let s3: Arc<dyn Blobs> = Arc::new(S3Blobs::open(&common::s3_location()).unwrap());
    // What an interrupted run left: one blob whole, one torn (its name, other bytes).
    let (whole, torn) = (Digest::of(&first), Digest::of(&second));
    s3.import(&files, &whole).unwrap();
    s3.create_upload("torn").unwrap();
    append_chunks(&*s3, "torn", &[&second[..100]]);
    s3.publish("torn", &torn).unwrap();

    let report = app
        .registry
        .maintenance()
        .migrate_to("the test registry", &*pg, &*s3, &|_, _, _| {})
        .unwrap();
    assert_eq!(
        (report.blobs_present, report.blobs_copied),
        (1, 2),
        "the whole one kept; the torn one and the config copied"
    );
    assert_eq!(report.bytes_copied, second.len() as u64 + 37);
    assert!(report.missing.is_empty() && report.damaged.is_empty());
    assert_eq!((report.records.manifests, report.records.tags), (1, 1));
    let mut read = Vec::new();
    read_all(s3.open(&torn).unwrap().as_ref(), |b| {
        read.extend_from_slice(b);
    })
    .unwrap();
    assert!(read == second, "the torn copy was replaced");

    let moved = semdock::domain::Registry::with_stores(pg.clone(), s3.clone(), common::LIMITS);
    let repo: Repository = "library/app".parse().unwrap();
    let found = moved
        .manifest(&repo, &Reference::Tag("1.0.0".parse().unwrap()))
        .unwrap();
    assert_eq!(found.digest, digest);

    let again = app
        .registry
        .maintenance()
        .migrate_to("the test registry", &*pg, &*s3, &|_, _, _| {})
        .unwrap_err();
    assert!(
        again
            .to_string()
            .contains("already holds a completed migration (from the test registry"),
        "{again}"
    );
}

/// Records written before they carried their encoding version — a redb file and a
/// PostgreSQL database at schema 2, as the previous release left them — read after the
/// upgrade, each rewritten once: the redb file at its first open, PostgreSQL by migration 3.
#[test]
#[allow(clippy::too_many_lines)]
fn records_from_before_encoding_versions_read_after_the_upgrade() {
    /// An audit record as the previous release wrote it (feed settings and retention rules).
    #[derive(serde::Serialize)]
    struct FirstAudit<'a> {
        time_ms: u64,
        actor: &'a str,
        feed: &'a str,
        change: &'a str,
    }
    /// The feed record as the previous release wrote it.
    #[derive(serde::Serialize)]
    struct FirstFeed {
        created: u64,
        description: String,
        anonymous_pull: bool,
        versioning: bool,
        permitted: Vec<String>,
    }
    let feed = FeedRecord {
        created: 5,
        description: "from the previous release".into(),
        anonymous_pull: true,
        versioning: true,
        permitted: vec!["stable".into()],
        promotion_sources: Vec::new(),
        required_referrer: None,
        upstream: None,
    };
    let unversioned = postcard::to_stdvec(&FirstFeed {
        created: feed.created,
        description: feed.description.clone(),
        anonymous_pull: feed.anonymous_pull,
        versioning: feed.versioning,
        permitted: feed.permitted.clone(),
    })
    .unwrap();
    let old_audit = |change| {
        postcard::to_stdvec(&FirstAudit {
            time_ms: 1,
            actor: "admin",
            feed: "old",
            change,
        })
        .unwrap()
    };
    let (settings, rules) = (old_audit("versioning on"), old_audit("retention rules: {}"));
    // Read through the index of kinds the upgrade builds: each old entry under its kind.
    let kinds_of = |meta: &dyn Metadata| {
        let r = meta.read().unwrap();
        let of = |kind| {
            r.audit_page(None, false, &[kind], 10, &|_| Scan::Keep)
                .unwrap()
                .0
                .into_iter()
                .map(|(seq, a)| (seq, a.change))
                .collect::<Vec<_>>()
        };
        (of("feed-settings-changed"), of("retention-rules"))
    };
    let expected_kinds = (
        vec![(1, "versioning on".to_owned())],
        vec![(2, "retention rules: {}".to_owned())],
    );

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("meta.redb");
    {
        let db = redb::Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(semdock::store::meta::redb::tables::FEEDS)
            .unwrap()
            .insert("old", unversioned.as_slice())
            .unwrap();
        {
            let mut audit = txn
                .open_table(semdock::store::meta::redb::tables::AUDIT)
                .unwrap();
            audit.insert(1, settings.as_slice()).unwrap();
            audit.insert(2, rules.as_slice()).unwrap();
        }
        txn.commit().unwrap();
    }
    for _ in 0..2 {
        let store = RedbMeta::open(&path).unwrap();
        let store: &dyn Metadata = &store;
        assert_eq!(
            store.read().unwrap().feed("old").unwrap(),
            Some(feed.clone())
        );
        assert_eq!(kinds_of(store), expected_kinds);
    }

    let url = postgres_database();
    let hex = hex::encode(&unversioned);
    let (settings_hex, rules_hex) = (hex::encode(&settings), hex::encode(&rules));
    common::postgres_exec(
        &url,
        &format!(
            "CREATE TABLE semdock_schema (version integer PRIMARY KEY, applied timestamptz NOT NULL DEFAULT now());
             {}
             {}
             INSERT INTO semdock_schema (version) VALUES (1), (2);
             INSERT INTO feeds (name, record) VALUES ('old', '\\x{hex}');
             INSERT INTO audit (seq, record) VALUES (1, '\\x{settings_hex}'), (2, '\\x{rules_hex}');",
            semdock::store::meta::postgres::MIGRATIONS[0].1,
            semdock::store::meta::postgres::MIGRATIONS[1].1,
        ),
    );
    let pg = PgMeta::connect(&url, None).unwrap();
    let pg: &dyn Metadata = &pg;
    assert_eq!(pg.read().unwrap().feed("old").unwrap(), Some(feed.clone()));
    assert_eq!(kinds_of(pg), expected_kinds);
    let again = PgMeta::connect(&url, None).unwrap();
    let again: &dyn Metadata = &again;
    assert_eq!(again.read().unwrap().feed("old").unwrap(), Some(feed));
}

/// UI sessions live in the metadata store: a session started on one node is known to the
/// other, a logout on either ends it on both, and eight idle hours end it (the clock
/// advanced rather than waited for); the store keeps no session id.
#[test]
fn ui_sessions_are_shared_by_the_nodes_and_end_everywhere() {
    let a = TestApp::distributed();
    let b = a.another_node();
    let caller = a
        .auth
        .login("admin", &a.admin_password, "127.0.0.1".parse().unwrap())
        .unwrap();
    let epoch = a.auth.epoch(&caller.principal).unwrap();
    let id = a.auth.sessions().start(&caller.principal, epoch).unwrap();
    let on_b = b
        .auth
        .sessions()
        .get(&id)
        .unwrap()
        .expect("node b knows the session");
    assert_eq!(on_b.subject, "user:admin");
    assert_eq!(a.auth.sessions().get(&id).unwrap(), Some(on_b));
    let url = a.postgres.clone().unwrap();
    let stored = common::postgres_count(
        &url,
        &format!(
            "SELECT count(*) FROM settings WHERE name LIKE 'ui-session:%' AND position('{id}' IN name) = 0"
        ),
    );
    assert_eq!(stored, 1, "one record, named by a hash of the id");
    b.auth.sessions().end(&id).unwrap();
    assert_eq!(
        a.auth.sessions().get(&id).unwrap(),
        None,
        "logged out on b, out on a"
    );

    let id = b.auth.sessions().start(&caller.principal, epoch).unwrap();
    a.registry
        .clock()
        .advance(std::time::Duration::from_hours(8));
    assert_eq!(
        a.auth.sessions().get(&id).unwrap(),
        None,
        "idle for eight hours"
    );
    assert_eq!(
        b.auth.sessions().get(&id).unwrap(),
        None,
        "and so gone on b too"
    );
}

/// The audit log read by kind (through each engine's index), merged in sequence order either
/// way, a time bound ending the walk, and expiry removing entries from the index too.
#[test]
fn the_audit_log_pages_by_kind_and_expires_in_both_engines() {
    use semdock::store::meta::AuditRecord;
    for e in engines() {
        let kinds = ["added", "promoted", "login", "added", "promoted", "added"];
        e.meta
            .write(|w| {
                for (i, kind) in kinds.iter().enumerate() {
                    w.append_audit(&AuditRecord {
                        time_ms: 100 + i as u64,
                        kind: (*kind).into(),
                        change: format!("{kind} {i}"),
                        ..AuditRecord::default()
                    })?;
                }
                Ok::<_, MetaError>(())
            })
            .unwrap();
        let r = e.meta.read().unwrap();
        let seqs = |cursor, newest, wanted: &[&str], limit| {
            let (page, more) = r
                .audit_page(cursor, newest, wanted, limit, &|_| Scan::Keep)
                .unwrap();
            (page.into_iter().map(|(s, _)| s).collect::<Vec<u64>>(), more)
        };
        assert_eq!(
            seqs(None, false, &["added", "promoted"], 10),
            (vec![1, 2, 4, 5, 6], false),
            "{}",
            e.name
        );
        assert_eq!(
            seqs(None, true, &["added", "promoted"], 3),
            (vec![6, 5, 4], true),
            "{}",
            e.name
        );
        assert_eq!(
            seqs(Some(4), true, &["added", "promoted"], 3),
            (vec![2, 1], false),
            "{}",
            e.name
        );
        assert_eq!(
            seqs(None, false, &["login"], 10),
            (vec![3], false),
            "{}",
            e.name
        );
        assert_eq!(seqs(None, false, &[], 10).0.len(), 6, "{}", e.name);
        let (page, more) = r
            .audit_page(None, true, &[], 10, &|a| {
                if a.time_ms < 103 {
                    Scan::Stop
                } else {
                    Scan::Keep
                }
            })
            .unwrap();
        assert_eq!(
            (page.len(), more),
            (3, false),
            "{}: a time bound ends the walk",
            e.name
        );
        drop(r);
        let removed = e.meta.write(|w| w.remove_audit_before(103, 1000)).unwrap();
        assert_eq!(removed, 3, "{}", e.name);
        let r = e.meta.read().unwrap();
        let (left, _) = r
            .audit_page(None, false, &["added", "promoted"], 10, &|_| Scan::Keep)
            .unwrap();
        assert_eq!(
            left.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
            vec![4, 5, 6],
            "{}: expired entries are gone from the index",
            e.name
        );
    }
}
