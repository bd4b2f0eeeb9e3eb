//! Storage hygiene with the real binary: online garbage collection under load, the grace
//! period, upload expiry, retention, the integrity check, backup and restore, a full disk.

use crate::common;

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{OCI_MANIFEST, Server, TestApp, image_context, run, run_fail};
use semdock::model::Digest;
use serde_json::{Value, json};

fn random(n: usize) -> Vec<u8> {
    let mut b = vec![0u8; n];
    rand::fill(&mut b[..]);
    b
}

/// Pushes a config and one layer of `layer` bytes, then the manifest as `tag`.
fn push_image(s: &Server, repo: &str, tag: &str, layer: &[u8]) -> Result<Digest, String> {
    let config = format!(r#"{{"architecture":"amd64","os":"linux","tag":"{tag}"}}"#);
    let c = s.push_blob(repo, config.as_bytes());
    let l = s.push_blob(repo, layer);
    let body = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": c.as_str(), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": l.as_str(), "size": layer.len()}],
    }))
    .unwrap();
    let mut res = s
        .http()
        .put(s.url(&format!("/v2/{repo}/manifests/{tag}")))
        .content_type(OCI_MANIFEST)
        .send(&body[..])
        .unwrap();
    if res.status() != 201 {
        return Err(res.body_mut().read_to_string().unwrap_or_default());
    }
    Ok(Digest::of(&body))
}

/// Pulls `repo:tag` and every blob it names, checking each digest; returns the manifest's.
fn pull_verify(s: &Server, repo: &str, tag: &str) -> Result<Digest, String> {
    let mut res = s
        .http()
        .get(s.url(&format!("/v2/{repo}/manifests/{tag}")))
        .header("Accept", OCI_MANIFEST)
        .call()
        .unwrap();
    if res.status() != 200 {
        return Err(format!("{repo}:{tag}: HTTP {}", res.status()));
    }
    let body = res.body_mut().read_to_vec().unwrap();
    let m: Value = serde_json::from_slice(&body).unwrap();
    let mut digests = vec![m["config"]["digest"].as_str().unwrap().to_owned()];
    for l in m["layers"].as_array().unwrap() {
        digests.push(l["digest"].as_str().unwrap().to_owned());
    }
    for d in digests {
        let mut res = s
            .http()
            .get(s.url(&format!("/v2/{repo}/blobs/{d}")))
            .call()
            .unwrap();
        if res.status() != 200 {
            return Err(format!("{repo}:{tag} blob {d}: HTTP {}", res.status()));
        }
        let bytes = res
            .body_mut()
            .with_config()
            .limit(1 << 30)
            .read_to_vec()
            .unwrap();
        if Digest::of(&bytes).as_str() != d {
            return Err(format!("{repo}:{tag} blob {d} does not hash to its digest"));
        }
    }
    Ok(Digest::of(&body))
}

fn api(s: &Server, method: &str, path: &str, body: &Value) -> (u16, Value) {
    let url = s.url(&format!("/api/v1{path}"));
    let mut res = match method {
        "GET" => s.http().get(&url).call(),
        "PUT" => s
            .http()
            .put(&url)
            .content_type("application/json")
            .send(body.to_string()),
        _ => s
            .http()
            .post(&url)
            .content_type("application/json")
            .send(body.to_string()),
    }
    .unwrap();
    let status = res.status().as_u16();
    let text = res.body_mut().read_to_string().unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn blob_file(s: &Server, d: &Digest) -> std::path::PathBuf {
    s.data_dir
        .join("blobs/sha256")
        .join(&d.hex()[..2])
        .join(d.hex())
}

/// Ten blobs no manifest names, the two blobs of a deleted image, and a blob file without a
/// record (as a crash between publish and commit leaves one), two hours old.
fn make_garbage(s: &Server) -> (Vec<Digest>, std::path::PathBuf) {
    // Garbage: ten blobs no manifest names, and the two blobs of a deleted image.
    let mut garbage: Vec<Digest> = (0..10)
        .map(|_| s.push_blob("library/junk", &random(10_000)))
        .collect();
    let layer = random(20_000);
    let gone = push_image(s, "library/junk", "tmp", &layer).unwrap();
    let res = s
        .http()
        .delete(s.url(&format!("/v2/library/junk/manifests/{gone}")))
        .call()
        .unwrap();
    assert_eq!(res.status(), 202);
    garbage.push(Digest::of(&layer));
    garbage.push(Digest::of(
        br#"{"architecture":"amd64","os":"linux","tag":"tmp"}"#,
    ));
    // A blob file without a record, as a crash between publish and commit leaves one.
    let orphan_bytes = random(5_000);
    let orphan = Digest::of(&orphan_bytes);
    let orphan_path = blob_file(s, &orphan);
    std::fs::create_dir_all(orphan_path.parent().unwrap()).unwrap();
    std::fs::write(&orphan_path, &orphan_bytes).unwrap();
    run(Command::new("touch")
        .args(["-d", "2 hours ago"])
        .arg(&orphan_path));
    (garbage, orphan_path)
}

#[test]
fn gc_while_eight_clients_push_and_pull_removes_exactly_the_old_garbage() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_in(
        &dir.path().join("data"),
        &[
            ("SEMDOCK_STORAGE__GC_GRACE_SECONDS", "3"),
            ("SEMDOCK_STORAGE__GC_INTERVAL_SECONDS", "0"),
        ],
    );
    let mut kept = Vec::new();
    for i in 0..3 {
        push_image(&s, "library/base", &format!("v{i}"), &random(40_000)).unwrap();
        kept.push(("library/base".to_owned(), format!("v{i}")));
    }
    let (garbage, orphan_path) = make_garbage(&s);
    std::thread::sleep(Duration::from_secs(4));

    let stop = Arc::new(AtomicBool::new(false));
    let pushed = Arc::new(Mutex::new(Vec::new()));
    let errors = Arc::new(Mutex::new(Vec::<String>::new()));
    std::thread::scope(|scope| {
        for c in 0..8 {
            let (stop, pushed, errors, s) = (stop.clone(), pushed.clone(), errors.clone(), &s);
            scope.spawn(move || {
                let repo = format!("library/client{c}");
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    let tag = format!("t{n}");
                    let result = push_image(s, &repo, &tag, &random(30_000))
                        .and_then(|_| pull_verify(s, &repo, &tag))
                        .and_then(|_| pull_verify(s, "library/base", "v0"));
                    match result {
                        Ok(_) => pushed.lock().unwrap().push((repo.clone(), tag)),
                        Err(e) => errors.lock().unwrap().push(e),
                    }
                    n += 1;
                }
            });
        }
        let mut removed = Vec::new();
        let mut orphans = 0;
        for _ in 0..4 {
            std::thread::sleep(Duration::from_millis(300));
            let (status, report) = api(&s, "POST", "/gc", &json!({}));
            assert_eq!(status, 200, "{report}");
            removed.extend(
                report["removed"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|d| d.as_str().unwrap().to_owned()),
            );
            orphans += report["orphan_files"].as_u64().unwrap();
        }
        stop.store(true, Ordering::Relaxed);
        removed.sort();
        let mut expected: Vec<String> = garbage.iter().map(ToString::to_string).collect();
        expected.sort();
        assert_eq!(removed, expected, "GC removes exactly the old garbage");
        assert_eq!(orphans, 1, "the orphan file is swept");
    });
    assert!(
        errors.lock().unwrap().is_empty(),
        "clients failed during GC: {:?}",
        errors.lock().unwrap()
    );
    for d in &garbage {
        assert!(!blob_file(&s, d).exists(), "{d} still on disk");
    }
    assert!(!orphan_path.exists());
    let pushed = pushed.lock().unwrap().clone();
    assert!(pushed.len() >= 8, "clients pushed {} images", pushed.len());
    for (repo, tag) in kept.iter().chain(pushed.iter()) {
        pull_verify(&s, repo, tag).unwrap();
    }

    // The storage metrics and the last run's outcome, for administrators only.
    let mut res = s.http().get(s.url("/metrics")).call().unwrap();
    assert_eq!(res.status(), 200);
    let text = res.body_mut().read_to_string().unwrap();
    assert!(text.contains("semdock_storage_bytes"), "{text}");
    assert!(
        text.contains("semdock_feed_bytes{feed=\"library\"}"),
        "{text}"
    );
    assert!(text.contains("semdock_gc_last_run_blobs_removed"), "{text}");
    let res = common::http().get(s.url("/metrics")).call().unwrap();
    assert_eq!(res.status(), 401);
}

#[test]
fn a_fresh_unreferenced_blob_survives_gc_and_abandoned_uploads_expire() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_in(
        &dir.path().join("data"),
        &[("SEMDOCK_STORAGE__UPLOAD_EXPIRY_SECONDS", "1")],
    );
    let layer = random(50_000);
    let digest = s.push_blob("library/app", &layer);
    // An upload left open, and one whose client is still sending within the expiry.
    let res = s
        .http()
        .post(s.url("/v2/library/app/blobs/uploads/"))
        .send_empty()
        .unwrap();
    let stale = s.url(res.headers()["location"].to_str().unwrap());
    let res = s
        .http()
        .patch(&stale)
        .content_type("application/octet-stream")
        .send(&random(1000)[..])
        .unwrap();
    assert_eq!(res.status(), 202);
    std::thread::sleep(Duration::from_millis(2500));

    let (status, dry) = api(&s, "POST", "/gc", &json!({"dry_run": true}));
    assert_eq!(status, 200);
    assert_eq!(dry["uploads_expired"], 1, "{dry}");
    let (_, report) = api(&s, "POST", "/gc", &json!({}));
    assert_eq!(report["blobs_removed"], 0, "{report}");
    assert_eq!(report["uploads_expired"], 1, "{report}");
    assert!(blob_file(&s, &digest).exists());
    let res = s.http().patch(&stale).send(&b"more"[..]).unwrap();
    assert_eq!(res.status(), 404, "an expired upload is gone");
    // The blob uploaded inside the grace period is still there for its manifest.
    push_image(&s, "library/app", "1.0.0", &layer).unwrap();
    pull_verify(&s, "library/app", "1.0.0").unwrap();
}

#[actix_web::test]
async fn retention_dry_run_lists_exactly_what_the_run_deletes() {
    let app = TestApp::new().versioned("rel", &["stable"]);
    let repo = "rel/app";
    let mut digests = std::collections::BTreeMap::new();
    for (i, tag) in [
        "1.0.0",
        "1.1.0",
        "2.0.0-rc.1",
        "2.0.0-rc.2",
        "2.0.0-rc.3",
        "stable",
    ]
    .iter()
    .enumerate()
    {
        let layer = format!("layer {i}");
        let (d, _) = app.push_image(repo, tag, &[layer.as_bytes()]).await;
        digests.insert(*tag, d);
    }
    // An untagged manifest, pushed by digest.
    let (untagged, body) = app.image(repo, &[b"untagged"]).await;
    let res = app
        .put_manifest(repo, untagged.as_str(), OCI_MANIFEST, &body)
        .await;
    assert_eq!(res.status, 201);
    let rules = json!({"untagged_days": 0, "keep_prereleases": 1, "unpulled_days": 0});
    let res = app
        .send(
            actix_web::test::TestRequest::put()
                .uri("/api/v1/feeds/rel/retention")
                .set_json(&rules),
        )
        .await;
    assert_eq!(res.status, 200, "{}", String::from_utf8_lossy(&res.body));
    app.registry.clock().advance(Duration::from_millis(1100));

    let run = |dry: bool| {
        actix_web::test::TestRequest::post()
            .uri("/api/v1/feeds/rel/retention/run")
            .set_json(json!({"dry_run": dry}))
    };
    let dry = app.send(run(true)).await.json();
    let real = app.send(run(false)).await.json();
    assert_eq!(dry["deletions"], real["deletions"], "dry run == real run");
    let listed: Vec<String> = real["deletions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            format!(
                "{}|{}",
                d["tag"].as_str().unwrap_or(d["digest"].as_str().unwrap()),
                d["rule"].as_str().unwrap()
            )
        })
        .collect();
    // Pre-releases are not released versions: past the newest one, the prerelease rule takes
    // them; the newest one and the mutable tag were never pulled, so the unpulled rule takes
    // them; released versions stay. Each image goes with its tag.
    let mut expected = vec![
        "2.0.0-rc.1|prerelease".to_owned(),
        "2.0.0-rc.2|prerelease".to_owned(),
        "2.0.0-rc.3|unpulled".to_owned(),
        "stable|unpulled".to_owned(),
        format!("{}|prerelease", digests["2.0.0-rc.1"]),
        format!("{}|prerelease", digests["2.0.0-rc.2"]),
        format!("{}|unpulled", digests["2.0.0-rc.3"]),
        format!("{}|unpulled", digests["stable"]),
        format!("{untagged}|untagged"),
    ];
    expected[4..].sort();
    assert_eq!(listed, expected);

    // What is left, and where the virtual tags point.
    let groups = app
        .registry
        .history()
        .tag_groups(
            &repo.parse().unwrap(),
            &semdock::domain::TagQuery::default(),
        )
        .unwrap();
    let versions: Vec<&str> = groups.versions.iter().map(|t| t.tag.as_str()).collect();
    assert_eq!(versions, ["1.1.0", "1.0.0"]);
    let virtuals: Vec<(String, String)> = groups
        .virtual_tags
        .iter()
        .map(|t| (t.tag.clone(), t.digest.clone()))
        .collect();
    let v110 = digests["1.1.0"].to_string();
    for (tag, want) in [("latest", &v110), ("1", &v110), ("1.1", &v110)] {
        assert!(
            virtuals.contains(&(tag.to_owned(), want.clone())),
            "{tag} → {want} in {virtuals:?}"
        );
    }
    let tombstones: Vec<&str> = groups.tombstones.iter().map(|t| t.tag.as_str()).collect();
    assert!(tombstones.contains(&"2.0.0-rc.1"), "{tombstones:?}");
    let res = app
        .get(&format!("/v2/{repo}/manifests/{}", digests["2.0.0-rc.1"]))
        .await;
    assert_eq!(res.status, 404);
    let history = app
        .registry
        .history()
        .list(&repo.parse().unwrap(), Some("2.0.0-rc.2"))
        .unwrap();
    assert_eq!(history.last().unwrap().actor, "retention");
    // Nothing is left for a second run.
    let again = app.send(run(true)).await.json();
    assert_eq!(again["deletions"], json!([]));
    // The outcome of the real run is in the metrics.
    let metrics = app.get("/metrics").await;
    let text = String::from_utf8_lossy(&metrics.body);
    assert!(
        text.contains("semdock_retention_last_run_deletions{feed=\"rel\"} 9"),
        "{text}"
    );
}

#[actix_web::test]
async fn a_pulled_image_survives_the_unpulled_rule_and_a_pushed_one_does_not() {
    let app = TestApp::new().with_feed("ci");
    let (kept, _) = app.push_image("ci/app", "pulled", &[b"one"]).await;
    let (gone, _) = app.push_image("ci/app", "ignored", &[b"two"]).await;
    app.registry
        .maintenance()
        .set_retention(
            "ci",
            &semdock::domain::maintenance::retention::Rules {
                unpulled_days: Some(30),
                ..Default::default()
            },
            "admin",
        )
        .unwrap();
    app.registry.clock().advance(Duration::from_millis(1100));
    let before_pull = app.registry.clock().now();
    // A HEAD is not a pull; a GET is.
    let head = app
        .send(
            actix_web::test::TestRequest::default()
                .method(actix_web::http::Method::HEAD)
                .uri("/v2/ci/app/manifests/ignored"),
        )
        .await;
    assert_eq!(head.status, 200);
    assert_eq!(app.get("/v2/ci/app/manifests/pulled").await.status, 200);
    // Thirty days after the pull's second: the pushed-only image is older than the cutoff.
    let report = app
        .registry
        .maintenance()
        .run_retention_at("ci", false, before_pull + 30 * 86_400)
        .unwrap();
    let deleted: Vec<(Option<String>, String)> = report
        .deletions
        .iter()
        .map(|d| (d.tag.clone(), d.digest.clone()))
        .collect();
    assert_eq!(
        deleted,
        [
            (Some("ignored".to_owned()), gone.to_string()),
            (None, gone.to_string())
        ]
    );
    assert_eq!(app.get("/v2/ci/app/manifests/pulled").await.status, 200);
    assert_eq!(
        app.get(&format!("/v2/ci/app/manifests/{kept}"))
            .await
            .status,
        200
    );
    assert_eq!(app.get("/v2/ci/app/manifests/ignored").await.status, 404);
}

#[test]
fn check_finds_a_flipped_byte_names_the_broken_tags_and_a_push_repairs_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut s = Server::start_in(&data, &[]);
    let bad_layer = random(100_000);
    push_image(&s, "library/app", "1", &bad_layer).unwrap();
    push_image(&s, "library/app", "2", &random(100_000)).unwrap();
    assert!(s.terminate());
    let semdock = || {
        let mut c = Command::new(env!("CARGO_BIN_EXE_semdock"));
        c.env("SEMDOCK_DATA_DIR", &data);
        c
    };
    run(semdock().arg("check"));

    let victim = blob_file(&s, &Digest::of(&bad_layer));
    let mut bytes = std::fs::read(&victim).unwrap();
    bytes[4242] ^= 0x01;
    std::fs::write(&victim, &bytes).unwrap();
    let out = run_fail(semdock().args(["check", "--jobs", "2"]));
    assert!(out.contains("broken tag: library/app:1"), "{out}");
    assert!(!out.contains("library/app:2"), "{out}");
    assert!(out.contains("1 corrupt"), "{out}");
    assert!(!victim.exists());
    // Blob files have no extension: the corrupt copy is `<hex>.corrupted` beside it.
    assert!(victim.with_extension("corrupted").exists());
    // Offline gc sees nothing to do (the record still names the blob).
    let out = run(semdock().args(["gc", "--dry-run"]));
    assert!(out.contains("would remove 0 blobs"), "{out}");

    // Pushing the layer again repairs the image.
    let s = Server::start_in(&data, &[]);
    let res = s
        .http()
        .head(s.url(&format!("/v2/library/app/blobs/{}", Digest::of(&bad_layer))))
        .call()
        .unwrap();
    assert_eq!(res.status(), 404, "a damaged blob is not served");
    push_image(&s, "library/app", "1", &bad_layer).unwrap();
    pull_verify(&s, "library/app", "1").unwrap();
    drop(s);
    run(semdock().arg("check"));
}

#[test]
fn backup_during_pushes_restores_to_a_registry_that_pulls_every_tag() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_in(&dir.path().join("data"), &[]);
    s.docker_login();
    let image = |tag: &str| format!("{}/library/app:{tag}", s.host());
    let build_push = |tag: &str| {
        let ctx = image_context(2, tag);
        run(s
            .docker()
            .args(["build", "--no-cache", "-q", "-t", &image(tag)])
            .arg(ctx.path()));
        run(s.docker().args(["push", "-q", &image(tag)]));
    };
    for tag in ["a", "b"] {
        build_push(tag);
    }
    let backup_dir = dir.path().join("backup");
    let (status, e) = api(&s, "POST", "/backup", &json!({"dir": "relative/dir"}));
    assert_eq!(status, 400, "{e}");
    let (status, e) = api(
        &s,
        "POST",
        "/backup",
        &json!({"dir": s.data_dir.display().to_string()}),
    );
    assert_eq!(status, 409, "{e}");
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not empty"),
        "{e}"
    );
    let key = s.data_dir.join("..").join("key");
    std::fs::write(&key, create_admin_key(&s)).unwrap();
    std::thread::scope(|scope| {
        let pusher = scope.spawn(|| {
            for tag in ["c", "d"] {
                build_push(tag);
            }
        });
        std::thread::sleep(Duration::from_millis(300));
        let out = run(Command::new(env!("CARGO_BIN_EXE_semdock"))
            .args(["backup", "--server", &s.url(""), "--api-key-file"])
            .arg(&key)
            .arg(&backup_dir));
        assert!(out.contains("backed up"), "{out}");
        pusher.join().unwrap();
    });
    let restored = dir.path().join("restored");
    let out = run(Command::new(env!("CARGO_BIN_EXE_semdock"))
        .env("SEMDOCK_DATA_DIR", &restored)
        .arg("restore")
        .arg(&backup_dir));
    assert!(out.contains("restored"), "{out}");
    let again = run_fail(
        Command::new(env!("CARGO_BIN_EXE_semdock"))
            .env("SEMDOCK_DATA_DIR", &restored)
            .arg("restore")
            .arg(&backup_dir),
    );
    assert!(again.contains("already holds a registry"), "{again}");
    // The operator still knows the administrator's password; the new server reads it here.
    std::fs::copy(
        s.data_dir.join("initial-admin-password"),
        restored.join("initial-admin-password"),
    )
    .unwrap();
    let r = Server::start_in(&restored, &[]);
    r.docker_login();
    let mut pulled = 0;
    for tag in ["a", "b", "c", "d"] {
        let original = digest_of(&s, tag).unwrap();
        match digest_of(&r, tag) {
            Some(d) => {
                assert_eq!(d, original, "{tag}");
                let name = format!("{}/library/app:{tag}", r.host());
                run(r.docker().args(["pull", "-q", &name]));
                let _ = r.docker().args(["rmi", "-f", &name]).output();
                pulled += 1;
            }
            None => assert!(
                ["c", "d"].contains(&tag),
                "{tag} was pushed before the backup"
            ),
        }
    }
    assert!(pulled >= 2);
    for tag in ["a", "b", "c", "d"] {
        let _ = s.docker().args(["rmi", "-f", &image(tag)]).output();
    }
}

/// The digest `library/app:TAG` resolves to on `server`, if it has the tag.
fn digest_of(server: &Server, tag: &str) -> Option<String> {
    let res = server
        .http()
        .head(server.url(&format!("/v2/library/app/manifests/{tag}")))
        .header(
            "Accept",
            "application/vnd.docker.distribution.manifest.v2+json",
        )
        .call()
        .unwrap();
    (res.status() == 200).then(|| {
        res.headers()["docker-content-digest"]
            .to_str()
            .unwrap()
            .to_owned()
    })
}

fn create_admin_key(s: &Server) -> String {
    let (status, key) = api(
        s,
        "POST",
        "/keys",
        &json!({"name": "backup", "admin": true}),
    );
    assert_eq!(status, 201, "{key}");
    key["key"].as_str().unwrap().to_owned()
}

/// Mounts a small tmpfs; unmounted on drop.
struct SmallDisk(tempfile::TempDir);

impl SmallDisk {
    fn new(size: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        run(Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path()));
        Self(dir)
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.0.path()).status();
    }
}

#[test]
fn a_full_disk_fails_the_upload_clearly_keeps_nothing_partial_and_keeps_serving() {
    let disk = SmallDisk::new("24m");
    let data = disk.0.path().join("data");
    let mut s = Server::start_in(&data, &[]);
    push_image(&s, "library/small", "1", &random(100_000)).unwrap();
    let big = random(40 << 20);
    let digest = Digest::of(&big);
    let mut res = s
        .http()
        .post(s.url(&format!("/v2/library/big/blobs/uploads/?digest={digest}")))
        .send(&big[..])
        .unwrap();
    assert_eq!(res.status(), 507);
    let body: Value = serde_json::from_str(&res.body_mut().read_to_string().unwrap()).unwrap();
    let message = body["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("disk"), "{body}");
    assert!(!blob_file(&s, &digest).exists());
    let uploads: Vec<_> = std::fs::read_dir(data.join("uploads")).unwrap().collect();
    assert!(uploads.is_empty(), "partial upload left: {uploads:?}");
    pull_verify(&s, "library/small", "1").unwrap();
    // With the space back, pushes work again.
    push_image(&s, "library/small", "2", &random(100_000)).unwrap();
    pull_verify(&s, "library/small", "2").unwrap();
    assert!(s.terminate());
}

/// Writes `path` until the file system is full.
fn fill(path: &std::path::Path) {
    use std::io::Write as _;
    let mut f = std::fs::File::create(path).unwrap();
    let chunk = vec![0x5a; 1 << 16];
    while f.write_all(&chunk).is_ok() {}
    let _ = f.sync_all();
}

#[test]
fn a_full_disk_under_the_database_answers_507_and_writes_work_again_once_space_is_back() {
    let disk = SmallDisk::new("24m");
    let data = disk.0.path().join("data");
    let mut s = Server::start_in(&data, &[]);
    push_image(&s, "library/small", "1", &random(100_000)).unwrap();
    let filler = disk.0.path().join("filler");
    fill(&filler);
    // Metadata writes (feeds with large descriptions) until one meets the full disk: 507,
    // never 500. The file may have had room for the first few.
    let description = "d".repeat(60_000);
    let mut created = Vec::new();
    // A feed with a large description: true when created, false on 507, never 500.
    let mut create = |feed: String| {
        let (status, body) = api(
            &s,
            "POST",
            "/feeds",
            &json!({"name": feed, "description": description}),
        );
        match status {
            201 => {
                created.push(feed);
                true
            }
            507 => false,
            other => panic!("feed create answered {other}: {body}"),
        }
    };
    let full = (0..400).any(|i| !create(format!("full{i}")));
    assert!(full, "the database never met the full disk");
    // While it stays full, writes answer 507 (or succeed where the database file still has
    // room), never 500.
    for i in 0..5 {
        create(format!("stillfull{i}"));
    }
    // Reads go on.
    pull_verify(&s, "library/small", "1").unwrap();
    std::fs::remove_file(&filler).unwrap();
    // Space is back: every kind of write works, with no restart, and nothing acknowledged
    // is lost.
    let (status, body) = api(&s, "POST", "/feeds", &json!({"name": "afterwards"}));
    assert_eq!(status, 201, "{body}");
    push_image(&s, "library/small", "2", &random(100_000)).unwrap();
    pull_verify(&s, "library/small", "2").unwrap();
    let res = s
        .http()
        .delete(s.url("/v2/library/small/manifests/1"))
        .call()
        .unwrap();
    assert_eq!(res.status(), 202);
    let (status, feeds) = api(&s, "GET", "/feeds", &Value::Null);
    assert_eq!(status, 200);
    let names: Vec<&str> = feeds
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["name"].as_str())
        .collect();
    for feed in created.iter().map(String::as_str).chain(["afterwards"]) {
        assert!(names.contains(&feed), "{feed} lost: {names:?}");
    }
    assert!(s.terminate());
}
