//! Replication to real targets on loopback: Distribution 2.8.2, Angos 1.6 and a second
//! semdock. A versioned feed with versions, a multi-platform index, a cosign-style signature
//! and an SBOM referrer; digests, referrers, tags last; conflicts left alone; deletions on
//! and off; a `kill -9` mid-run and a target gone mid-run, then resumed.

use crate::common;

use std::time::{Duration, Instant};

use common::distribution::Distribution;
use common::{OCI_INDEX, OCI_MANIFEST, Server, support};
use semdock::model::Digest;
use serde_json::{Value, json};

/// Versioned, taking cosign's tag-named signatures besides versions.
fn versioned(server: &Server, feed: &str) {
    let res = server
        .http()
        .patch(server.url(&format!("/api/v1/feeds/{feed}")))
        .header("Content-Type", "application/json")
        .send(r#"{"versioning": true, "permitted": ["sha256-*"]}"#)
        .unwrap();
    assert_eq!(res.status(), 200);
}

/// Pushes an image whose layer is `layer` to `repo` of `server` as `tag`; its digest.
fn push(server: &Server, repo: &str, tag: &str, layer: &[u8]) -> String {
    let (digest, body) = common::push_image_over_http(&server.http(), &server.url(""), repo, layer);
    put_manifest(server, repo, tag, OCI_MANIFEST, &body);
    digest
}

fn put_manifest(server: &Server, repo: &str, reference: &str, media_type: &str, body: &[u8]) {
    let res = server
        .http()
        .put(server.url(&format!("/v2/{repo}/manifests/{reference}")))
        .header("Content-Type", media_type)
        .send(body)
        .unwrap();
    assert_eq!(res.status(), 201, "{repo}:{reference}");
}

/// The digest `reference` of `repo` has at the registry `base`, if any.
fn digest_at(agent: &ureq::Agent, base: &str, repo: &str, reference: &str) -> Option<String> {
    let res = agent
        .head(&format!("{base}/v2/{repo}/manifests/{reference}"))
        .header("Accept", &format!("{OCI_MANIFEST}, {OCI_INDEX}"))
        .call()
        .unwrap();
    (res.status() == 200).then(|| {
        res.headers()["docker-content-digest"]
            .to_str()
            .unwrap()
            .to_owned()
    })
}

fn body_at(agent: &ureq::Agent, base: &str, repo: &str, reference: &str) -> Vec<u8> {
    let mut res = agent
        .get(&format!("{base}/v2/{repo}/manifests/{reference}"))
        .header("Accept", &format!("{OCI_MANIFEST}, {OCI_INDEX}"))
        .call()
        .unwrap();
    assert_eq!(res.status(), 200, "{repo}:{reference} at {base}");
    res.body_mut().read_to_vec().unwrap()
}

fn rule(server: &Server, name: &str) -> Value {
    let mut res = server
        .http()
        .get(server.url(&format!("/api/v1/replication/{name}")))
        .call()
        .unwrap();
    assert_eq!(res.status(), 200);
    serde_json::from_str(&res.body_mut().read_to_string().unwrap()).unwrap()
}

fn create_rule(server: &Server, body: &Value) -> Value {
    let mut res = server
        .http()
        .post(server.url("/api/v1/replication"))
        .header("Content-Type", "application/json")
        .send(body.to_string())
        .unwrap();
    let text = res.body_mut().read_to_string().unwrap();
    assert_eq!(res.status(), 201, "{text}");
    serde_json::from_str(&text).unwrap()
}

/// Waits until `done` holds of rule `name`'s status; the rule then.
fn wait_rule(server: &Server, name: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_mins(1);
    loop {
        let r = rule(server, name);
        if done(&r) {
            return r;
        }
        assert!(Instant::now() < deadline, "{what}: {r:#}\n{}", server.log());
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn caught_up(r: &Value) -> bool {
    let s = &r["status"];
    s["full_run_pending"] == false && s["lag_events"] == 0 && s["last_run"].is_object()
}

/// What the source feed holds: versions, an index of two platforms, a cosign-style
/// signature and an SBOM referrer. Answers (1.0.0, 1.1.0, the index, the referrer) digests.
fn fill(source: &Server) -> (String, String, String, String) {
    let v1 = push(source, "prod/app", "1.0.0", b"layer of 1.0.0");
    let v11 = push(source, "prod/app", "1.1.0", b"layer of 1.1.0");
    let (arm, arm_body) =
        common::push_image_over_http(&source.http(), &source.url(""), "prod/app", b"arm64 layer");
    put_manifest(source, "prod/app", &arm, OCI_MANIFEST, &arm_body);
    let (amd, amd_body) =
        common::push_image_over_http(&source.http(), &source.url(""), "prod/app", b"amd64 layer");
    put_manifest(source, "prod/app", &amd, OCI_MANIFEST, &amd_body);
    let index = json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": amd, "size": amd_body.len(), "platform": {"architecture": "amd64", "os": "linux"}},
            {"mediaType": OCI_MANIFEST, "digest": arm, "size": arm_body.len(), "platform": {"architecture": "arm64", "os": "linux"}},
        ],
    })
    .to_string();
    put_manifest(source, "prod/app", "2.0.0", OCI_INDEX, index.as_bytes());
    // cosign's tag scheme: the signature of 1.1.0 under `sha256-HEX.sig`.
    let (_, sig) = common::push_image_over_http(
        &source.http(),
        &source.url(""),
        "prod/app",
        b"cosign signature payload",
    );
    let sig_tag = format!("{}.sig", v11.replacen(':', "-", 1));
    put_manifest(source, "prod/app", &sig_tag, OCI_MANIFEST, &sig);
    // An SBOM referrer of 1.0.0 (OCI 1.1 subject).
    let sbom = br#"{"bomFormat":"CycloneDX","specVersion":"1.6"}"#;
    let sbom_digest = source.push_blob("prod/app", sbom);
    let empty = source.push_blob("prod/app", b"{}");
    let referrer = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": "application/vnd.cyclonedx+json",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty.to_string(), "size": 2},
        "layers": [{"mediaType": "application/vnd.cyclonedx+json", "digest": sbom_digest.to_string(), "size": sbom.len()}],
        "subject": {"mediaType": OCI_MANIFEST, "digest": v1, "size": body_at(&source.http(), &source.url(""), "prod/app", &v1).len()},
    })
    .to_string();
    let referrer_digest = Digest::of(referrer.as_bytes()).to_string();
    put_manifest(
        source,
        "prod/app",
        &referrer_digest,
        OCI_MANIFEST,
        referrer.as_bytes(),
    );
    (
        v1,
        v11,
        Digest::of(index.as_bytes()).to_string(),
        referrer_digest,
    )
}

/// Everything `fill` pushed is at the target `base` byte for byte, with the virtual tags
/// when `virtual_tags`, and the referrer listed by the referrers API or the tag fallback.
fn assert_replicated(
    source: &Server,
    agent: &ureq::Agent,
    base: &str,
    repo: &str,
    digests: &(String, String, String, String),
) {
    let (v1, v11, index, referrer) = digests;
    let here = source.http();
    for (tag, digest) in [("1.0.0", v1), ("1.1.0", v11), ("2.0.0", index)] {
        assert_eq!(
            digest_at(agent, base, repo, tag).as_deref(),
            Some(digest.as_str()),
            "{tag} at {base}"
        );
        assert_eq!(
            body_at(agent, base, repo, tag),
            body_at(&here, &source.url(""), "prod/app", tag),
            "{tag} byte for byte"
        );
    }
    // Every platform of the index.
    let parsed: Value = serde_json::from_slice(&body_at(agent, base, repo, index)).unwrap();
    for child in parsed["manifests"].as_array().unwrap() {
        let d = child["digest"].as_str().unwrap();
        assert_eq!(digest_at(agent, base, repo, d).as_deref(), Some(d));
    }
    let sig_tag = format!("{}.sig", v11.replacen(':', "-", 1));
    assert_eq!(
        digest_at(agent, base, repo, &sig_tag),
        digest_at(&here, &source.url(""), "prod/app", &sig_tag),
        "the cosign signature"
    );
    // The referrer: by the referrers API where the target has one, else the fallback tag.
    let mut res = agent
        .get(&format!("{base}/v2/{repo}/referrers/{v1}"))
        .call()
        .unwrap();
    let listed = if res.status() == 200 {
        res.body_mut().read_to_string().unwrap()
    } else {
        String::from_utf8(body_at(agent, base, repo, &v1.replacen(':', "-", 1))).unwrap()
    };
    assert!(
        listed.contains(referrer.as_str()),
        "referrer at {base}: {listed}"
    );
    assert_eq!(
        digest_at(agent, base, repo, referrer).as_deref(),
        Some(referrer.as_str())
    );
}

#[test]
#[allow(clippy::too_many_lines)] // one story: a run, pushes, a conflict, deletions off and on
fn a_versioned_feed_replicates_to_distribution_with_digests_referrers_conflicts_and_deletions() {
    let source = Server::start();
    versioned(&source, "prod");
    let dist = Distribution::start();
    let anon = common::http();
    let digests = fill(&source);
    create_rule(
        &source,
        &json!({"name": "dr", "feed": "prod", "url": dist.url()}),
    );
    let r = wait_rule(&source, "dr", "the first full run", caught_up);
    assert_eq!(r["status"]["last_run"]["errors"], json!([]), "{r:#}");
    assert_replicated(&source, &anon, &dist.url(), "prod/app", &digests);
    // Distribution has no virtual tags of its own: they are carried, on the same images.
    for (tag, version) in [
        ("latest", "2.0.0"),
        ("1", "1.1.0"),
        ("1.1", "1.1.0"),
        ("2.0", "2.0.0"),
    ] {
        assert_eq!(
            digest_at(&anon, &dist.url(), "prod/app", tag),
            digest_at(&anon, &dist.url(), "prod/app", version),
            "{tag}"
        );
    }
    // A second full run sends nothing again.
    let mut res = source
        .http()
        .post(source.url("/api/v1/replication/dr/run"))
        .send_empty()
        .unwrap();
    assert_eq!(res.status(), 200);
    let again: Value = serde_json::from_str(&res.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(
        (
            again["blobs_uploaded"].as_u64(),
            again["manifests_pushed"].as_u64()
        ),
        (Some(0), Some(0)),
        "{again:#}"
    );

    // On push: a new version is at the target a moment later.
    let pushed = Instant::now();
    let v12 = push(&source, "prod/app", "1.2.0", b"layer of 1.2.0");
    while digest_at(&anon, &dist.url(), "prod/app", "1.2.0").as_deref() != Some(v12.as_str()) {
        assert!(
            pushed.elapsed() < Duration::from_secs(30),
            "1.2.0 never reached the target"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    eprintln!(
        "on-push lag to Distribution: {} ms",
        pushed.elapsed().as_millis()
    );

    // Another feed's pushes are not replicated, and the cursor moves past them.
    let before = rule(&source, "dr")["status"]["cursor"].as_u64().unwrap();
    push(&source, "library/other", "1.0.0", b"another feed");
    wait_rule(&source, "dr", "the cursor past another feed's event", |r| {
        r["status"]["cursor"].as_u64() > Some(before)
    });
    assert_eq!(
        digest_at(&anon, &dist.url(), "library/other", "1.0.0"),
        None
    );
    assert_eq!(digest_at(&anon, &dist.url(), "prod/other", "1.0.0"), None);

    // A version the target holds with another digest is a conflict, left alone.
    let theirs = {
        let (d, body) = common::push_image_over_http(&anon, &dist.url(), "prod/app", b"theirs");
        let res = anon
            .put(&format!("{}/v2/prod/app/manifests/3.0.0", dist.url()))
            .header("Content-Type", OCI_MANIFEST)
            .send(&body)
            .unwrap();
        assert_eq!(res.status(), 201);
        d
    };
    let ours = push(&source, "prod/app", "3.0.0", b"ours");
    let r = wait_rule(&source, "dr", "the conflict", |r| {
        r["status"]["conflicts"]
            .as_array()
            .is_some_and(|c| !c.is_empty())
    });
    let c = &r["status"]["conflicts"][0];
    assert_eq!(
        (
            c["tag"].as_str(),
            c["digest"].as_str(),
            c["target_digest"].as_str()
        ),
        (Some("3.0.0"), Some(ours.as_str()), Some(theirs.as_str()))
    );
    assert_eq!(
        digest_at(&anon, &dist.url(), "prod/app", "3.0.0"),
        Some(theirs)
    );
    let metrics = source
        .http()
        .get(source.url("/metrics"))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    assert!(
        metrics.contains("semdock_replication_conflicts{rule=\"dr\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("semdock_replication_lag_seconds{rule=\"dr\"}"),
        "{metrics}"
    );

    // Deletions off: a version deleted here stays there.
    let delete = |tag: &str| {
        let res = source
            .http()
            .delete(source.url(&format!("/v2/prod/app/manifests/{tag}")))
            .call()
            .unwrap();
        assert_eq!(res.status(), 202, "delete {tag}");
    };
    delete("1.0.0");
    wait_rule(&source, "dr", "the deletion handled", caught_up);
    assert_eq!(
        digest_at(&anon, &dist.url(), "prod/app", "1.0.0"),
        Some(digests.0.clone())
    );
    // Deletions on: Distribution deletes only digests, so the image goes once no tag here
    // points at it.
    let res = source
        .http()
        .patch(source.url("/api/v1/replication/dr"))
        .header("Content-Type", "application/json")
        .send(r#"{"deletions": true}"#)
        .unwrap();
    assert_eq!(res.status(), 200);
    delete("1.2.0");
    let deadline = Instant::now() + Duration::from_secs(30);
    while digest_at(&anon, &dist.url(), "prod/app", "1.2.0").is_some() {
        assert!(
            Instant::now() < deadline,
            "1.2.0 was not deleted at the target: {:#}",
            rule(&source, "dr")
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        digest_at(&anon, &dist.url(), "prod/app", "1.1.0"),
        Some(digests.1.clone())
    );
}

#[test]
fn replication_to_angos_carries_the_same_images() {
    let source = Server::start();
    versioned(&source, "prod");
    let dir = tempfile::tempdir().unwrap();
    let (mut angos, port) = support::angos(dir.path(), None);
    let base = format!("http://127.0.0.1:{port}");
    let digests = fill(&source);
    // The CLI, against the running server with an administrator's key. Angos serves the
    // repositories its configuration names: `library/…`.
    let key = source.admin_key("ops");
    let cli = |args: &[&str]| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_semdock"));
        cmd.args(args)
            .args(["--server", &source.url("")])
            .env("SEMDOCK_API_KEY", &key)
            .env_remove("SEMDOCK_DATA_DIR");
        common::run(&mut cmd)
    };
    let out = cli(&[
        "replication",
        "add",
        "angos",
        "--feed",
        "prod",
        "--url",
        &base,
        "--prefix",
        "library/",
    ]);
    assert!(out.contains("created replication rule angos"), "{out}");
    let r = wait_rule(&source, "angos", "the first full run", caught_up);
    assert_eq!(r["status"]["last_run"]["errors"], json!([]), "{r:#}");
    assert_replicated(&source, &common::http(), &base, "library/app", &digests);
    let out = cli(&["replication", "list"]);
    assert!(out.contains("angos") && out.contains("library/"), "{out}");
    // Run again on demand: everything is there, nothing is sent.
    let out = cli(&["replication", "run", "angos"]);
    assert!(
        out.contains("0 manifests and 0 blobs (0 bytes) sent"),
        "{out}"
    );
    let _ = angos.kill();
    let _ = angos.wait();
}

/// semdock to semdock: the target keeps its own virtual tags; a `kill -9` of the source
/// mid-run leaves no tag on an incomplete image and the run, resumed after the restart,
/// completes; a target gone when an event comes is retried until it is back.
#[test]
#[allow(clippy::too_many_lines)] // one story: a replica fed, cut, resumed, then failed over
fn semdock_to_semdock_resumes_after_kill_9_and_a_target_gone() {
    let dir = tempfile::tempdir().unwrap();
    let mut source = Server::start_in(&dir.path().join("a"), &[]);
    versioned(&source, "prod");
    let mut target = Server::start_in(&dir.path().join("b"), &[]);
    versioned(&target, "prod");
    let target_addr = target.addr.clone();
    // Site B's feed is a replica: changed only by the replication's account (admin here);
    // alice, who may push to prod there, may not while it is one.
    let res = target
        .http()
        .put(target.url("/api/v1/feeds/prod/replica"))
        .header("Content-Type", "application/json")
        .send(json!({"source": source.url(""), "writers": ["admin"]}).to_string())
        .unwrap();
    assert_eq!(res.status(), 200);
    let alice_password = "alice-password-123456";
    let res = target
        .http()
        .post(target.url("/api/v1/users"))
        .header("Content-Type", "application/json")
        .send(json!({"name": "alice", "password": alice_password}).to_string())
        .unwrap();
    assert_eq!(res.status(), 201);
    let res = target
        .http()
        .put(target.url("/api/v1/users/alice/roles/prod"))
        .header("Content-Type", "application/json")
        .send(r#"{"role": "push"}"#)
        .unwrap();
    assert_eq!(res.status(), 204);
    let digests = fill(&source);
    // A large layer in a repository the run reaches after prod/app, so that the run is
    // under way when it is cut.
    let big: Vec<u8> = (0..(96u32 << 20))
        .map(|i| i.wrapping_mul(2_654_435_761).to_le_bytes()[1])
        .collect();
    let big_digest = push(&source, "prod/big", "1.0.0", &big);
    create_rule(
        &source,
        &json!({"name": "site-b", "feed": "prod", "url": target.url(""), "username": "admin", "password": target.admin_password}),
    );
    let (b, bbase) = (target.http(), target.url(""));
    let deadline = Instant::now() + Duration::from_secs(30);
    while digest_at(&b, &bbase, "prod/app", "1.0.0").is_none() {
        assert!(
            Instant::now() < deadline,
            "the run never started: {}",
            source.log()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    source.kill9();
    // Tags last: no tag at the target on an image it does not hold whole.
    if let Some(d) = digest_at(&b, &bbase, "prod/big", "1.0.0") {
        assert_eq!(d, big_digest);
    }
    // The CLI on the data directory (no server holds it now) says the run was cut.
    let out = common::run(
        std::process::Command::new(env!("CARGO_BIN_EXE_semdock"))
            .args(["replication", "show", "site-b"])
            .env("SEMDOCK_DATA_DIR", dir.path().join("a"))
            .env_remove("SEMDOCK_API_KEY"),
    );
    let cut: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        cut["status"]["full_run_pending"], true,
        "the run was cut: {cut:#}"
    );
    source = Server::start_in(&dir.path().join("a"), &[]);
    let cut = rule(&source, "site-b");
    // The target's password is stored, never shown back or written to the audit log.
    assert_eq!(cut["has_password"], true);
    assert!(!cut.to_string().contains(&target.admin_password));
    let audit = source
        .http()
        .get(source.url("/api/v1/audit"))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    assert!(audit.contains("replication rule site-b"), "{audit}");
    assert!(!audit.contains(&target.admin_password));
    assert!(!source.log().contains(&target.admin_password));
    let r = wait_rule(&source, "site-b", "the resumed run", |r| {
        caught_up(r) && r["status"]["last_error"].is_null()
    });
    assert_eq!(r["status"]["last_run"]["errors"], json!([]), "{r:#}");
    assert_replicated(&source, &b, &bbase, "prod/app", &digests);
    assert_eq!(digest_at(&b, &bbase, "prod/big", "1.0.0"), Some(big_digest));
    let blob = b
        .get(&format!("{bbase}/v2/prod/big/blobs/{}", Digest::of(&big)))
        .call()
        .unwrap();
    assert_eq!(blob.status(), 200);
    // The target keeps its own virtual tags, on its versions.
    assert_eq!(
        digest_at(&b, &bbase, "prod/app", "latest"),
        Some(digests.2.clone())
    );
    // The history came along: who pushed 1.0.0 at the source, named with its host, then the
    // replication's own push.
    let mut res = b
        .get(&format!(
            "{bbase}/api/v1/repositories/prod/app/history?tag=1.0.0"
        ))
        .call()
        .unwrap();
    let history: Value = serde_json::from_str(&res.body_mut().read_to_string().unwrap()).unwrap();
    let entries = history.as_array().unwrap();
    // (The source listened elsewhere before its restart: the actor names either address.)
    assert!(
        entries.iter().any(|e| e["actor"]
            .as_str()
            .is_some_and(|a| a.starts_with("admin@127.0.0.1:"))
            && e["comment"]
                .as_str()
                .is_some_and(|c| c.starts_with("carried from http://"))),
        "{history:#}"
    );
    assert!(
        r["status"]["last_run"]["history_carried"].as_u64() > Some(0),
        "{r:#}"
    );

    // The target gone when a version is pushed: the failure is recorded and retried with
    // backoff, and the version arrives once the target is back on its address.
    target.kill9();
    let v13 = push(&source, "prod/app", "1.3.0", b"layer of 1.3.0");
    let r = wait_rule(&source, "site-b", "the failure recorded", |r| {
        r["status"]["last_error"].is_string()
    });
    assert!(r["status"]["lag_events"].as_u64() > Some(0), "{r:#}");
    target = Server::start_in(&dir.path().join("b"), &[("SEMDOCK_LISTEN", &target_addr)]);
    let b = target.http();
    wait_rule(&source, "site-b", "the event retried", |r| {
        caught_up(r) && r["status"]["last_error"].is_null()
    });
    assert_eq!(digest_at(&b, &bbase, "prod/app", "1.3.0"), Some(v13));

    // The target stopped mid-blob: killed while a new large version's layer streams into it.
    // The event fails and is retried; once the target is back the blob is sent again whole,
    // the tag set last, and the target holds no torn blob.
    let next_big: Vec<u8> = big.iter().map(|b| b ^ 0x5a).collect();
    let next_digest = push(&source, "prod/big", "1.1.0", &next_big);
    let uploads = dir.path().join("b").join("uploads");
    let deadline = Instant::now() + Duration::from_secs(30);
    let streaming = || {
        std::fs::read_dir(&uploads)
            .into_iter()
            .flatten()
            .flatten()
            .any(|f| {
                f.metadata()
                    .is_ok_and(|m| m.is_file() && m.len() > (1 << 20))
            })
    };
    while !streaming() {
        assert!(
            Instant::now() < deadline,
            "the layer never streamed to the target"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    target.kill9();
    wait_rule(&source, "site-b", "the cut upload recorded", |r| {
        r["status"]["last_error"].is_string()
    });
    target = Server::start_in(&dir.path().join("b"), &[("SEMDOCK_LISTEN", &target_addr)]);
    let b = target.http();
    wait_rule(&source, "site-b", "the upload sent again", |r| {
        caught_up(r) && r["status"]["last_error"].is_null()
    });
    assert_eq!(
        digest_at(&b, &bbase, "prod/big", "1.1.0"),
        Some(next_digest)
    );
    let mut blob = b
        .get(&format!(
            "{bbase}/v2/prod/big/blobs/{}",
            Digest::of(&next_big)
        ))
        .call()
        .unwrap();
    assert_eq!(blob.status(), 200);
    assert_eq!(
        blob.body_mut()
            .with_config()
            .limit(1 << 30)
            .read_to_vec()
            .unwrap()
            .len(),
        next_big.len()
    );
    common::assert_no_torn_blobs(&dir.path().join("b"));

    // While a replica, alice's push is refused; once made the primary (the failover, with
    // the CLI), it is taken.
    let alice = common::http_as(Some(common::basic("alice", alice_password)));
    let alice_push = || {
        alice
            .post(&format!(
                "{bbase}/v2/prod/app/blobs/uploads/?digest={}",
                Digest::of(b"alice")
            ))
            .send(&b"alice"[..])
            .unwrap()
            .status()
            .as_u16()
    };
    assert!(
        [401, 403].contains(&alice_push()),
        "a replica takes no push but its replication's"
    );
    let key = target.admin_key("ops");
    let out = common::run(
        std::process::Command::new(env!("CARGO_BIN_EXE_semdock"))
            .args(["replication", "primary", "prod", "--server", &bbase])
            .env("SEMDOCK_API_KEY", &key)
            .env_remove("SEMDOCK_DATA_DIR"),
    );
    assert!(out.contains("feed prod is the primary"), "{out}");
    assert_eq!(alice_push(), 201);
}

/// On PostgreSQL and S3, two nodes: either node's push is replicated (the blobs read from
/// the bucket), a run asked of one node while the other runs the rule is refused with 409,
/// and the rule's state is one for both.
#[test]
fn a_cluster_on_postgres_and_s3_replicates_with_one_node_per_rule() {
    let cluster = common::cluster::Cluster::start(2);
    let admin = common::http_as(Some(cluster.admin()));
    let res = admin
        .patch(&cluster.nodes[0].url("/api/v1/feeds/prod"))
        .header("Content-Type", "application/json")
        .send(r#"{"versioning": true, "permitted": ["sha256-*"]}"#)
        .unwrap();
    assert_eq!(res.status(), 200);
    let dist = Distribution::start();
    let anon = common::http();
    let (n0, n1) = (&cluster.nodes[0], &cluster.nodes[1]);
    let v1 = {
        let (d, body) =
            common::push_image_over_http(&admin, &n0.url(""), "prod/app", b"node 0 layer");
        let res = admin
            .put(&n0.url("/v2/prod/app/manifests/1.0.0"))
            .header("Content-Type", OCI_MANIFEST)
            .send(&body)
            .unwrap();
        assert_eq!(res.status(), 201);
        d
    };
    let res = admin
        .post(&n1.url("/api/v1/replication"))
        .header("Content-Type", "application/json")
        .send(json!({"name": "dr", "feed": "prod", "url": dist.url()}).to_string())
        .unwrap();
    assert_eq!(res.status(), 201);
    let deadline = Instant::now() + Duration::from_mins(1);
    while digest_at(&anon, &dist.url(), "prod/app", "1.0.0").as_deref() != Some(v1.as_str()) {
        assert!(
            Instant::now() < deadline,
            "1.0.0 never replicated: {}",
            n0.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // A push through the other node follows.
    let v2 = {
        let (d, body) =
            common::push_image_over_http(&admin, &n1.url(""), "prod/app", b"node 1 layer");
        let res = admin
            .put(&n1.url("/v2/prod/app/manifests/2.0.0"))
            .header("Content-Type", OCI_MANIFEST)
            .send(&body)
            .unwrap();
        assert_eq!(res.status(), 201);
        d
    };
    while digest_at(&anon, &dist.url(), "prod/app", "2.0.0").as_deref() != Some(v2.as_str()) {
        assert!(Instant::now() < deadline, "2.0.0 never replicated");
        std::thread::sleep(Duration::from_millis(50));
    }
    // `latest` moved by an event of its own, carried right after.
    while digest_at(&anon, &dist.url(), "prod/app", "latest").as_deref() != Some(v2.as_str()) {
        assert!(Instant::now() < deadline, "latest never followed 2.0.0");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Runs asked of both nodes at once: a node that finds the rule running elsewhere says
    // 409 (asked again, it runs); never an error, never two at a time.
    let runs: Vec<_> = [
        n0.url("/api/v1/replication/dr/run"),
        n1.url("/api/v1/replication/dr/run"),
    ]
    .into_iter()
    .map(|url| {
        let admin = admin.clone();
        std::thread::spawn(move || {
            let mut seen = Vec::new();
            while seen.last() != Some(&200) && seen.len() < 100 {
                seen.push(admin.post(&url).send_empty().unwrap().status().as_u16());
                std::thread::sleep(Duration::from_millis(20));
            }
            seen
        })
    })
    .collect();
    for seen in runs.into_iter().map(|t| t.join().unwrap()) {
        assert_eq!(seen.last(), Some(&200), "{seen:?}");
        assert!(seen.iter().all(|s| [200, 409].contains(s)), "{seen:?}");
    }
    // Both nodes report the same state.
    let state = |node: &Server| {
        let mut res = admin
            .get(&node.url("/api/v1/replication/dr"))
            .call()
            .unwrap();
        let v: Value = serde_json::from_str(&res.body_mut().read_to_string().unwrap()).unwrap();
        v["status"]["cursor"].clone()
    };
    assert_eq!(state(n0), state(n1));

    // The other way: an embedded semdock replicating into the cluster, the target then on
    // PostgreSQL and S3; what one node took, the other serves.
    let edge = Server::start();
    versioned(&edge, "prod");
    let digests = fill(&edge);
    create_rule(
        &edge,
        &json!({"name": "to-cluster", "feed": "prod", "url": n0.url(""), "prefix": "prod/edge/", "username": "admin", "password": n0.admin_password}),
    );
    let r = wait_rule(&edge, "to-cluster", "the run into the cluster", caught_up);
    assert_eq!(r["status"]["last_run"]["errors"], json!([]), "{r:#}");
    assert_replicated(&edge, &admin, &n1.url(""), "prod/edge/app", &digests);
}
