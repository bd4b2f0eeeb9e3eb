//! Container versioning, rule by rule (DESIGN.md "Container versioning rules"), in process.

use crate::common;

use std::fmt::Write as _;

use actix_web::test::TestRequest;
use common::{OCI_INDEX, OCI_MANIFEST, TestApp, admin, basic};
use semdock::model::Digest;
use serde_json::{Value, json};

const REPO: &str = "prod/team/app";

async fn tag_of(app: &TestApp, tag: &str) -> Option<String> {
    let res = app.get(&format!("/v2/{REPO}/manifests/{tag}")).await;
    (res.status == 200).then(|| res.header("docker-content-digest").unwrap().to_owned())
}

async fn api(app: &TestApp, req: TestRequest) -> common::Resp {
    app.send(req).await
}

#[actix_web::test]
async fn rule1_only_versions_and_permitted_tags_are_accepted() {
    let app = TestApp::new().versioned("prod", &["dev", "pr-*"]);
    let (_, body) = app.image(REPO, &[b"one"]).await;
    let res = app
        .put_manifest(REPO, "v6-latest", OCI_MANIFEST, &body)
        .await;
    assert_eq!((res.status, res.error_code().as_str()), (400, "DENIED"));
    assert_eq!(
        res.error_message(),
        "tag \"v6-latest\" is not allowed in feed \"prod\": use a SemVer version like 6.0.0 or add \"v6-latest\" to the feed's permitted tags"
    );
    for tag in ["1.0.0", "2.4.1-beta.1", "dev", "pr-42"] {
        assert_eq!(
            app.put_manifest(REPO, tag, OCI_MANIFEST, &body)
                .await
                .status,
            201,
            "{tag}"
        );
    }
    for tag in ["v1.0.0", "1.0", "stable", "1.0.0-"] {
        assert_ne!(
            app.put_manifest(REPO, tag, OCI_MANIFEST, &body)
                .await
                .status,
            201,
            "{tag}"
        );
    }
}

#[actix_web::test]
async fn rule2_versions_are_immutable_retries_succeed_and_deleted_versions_stay_taken() {
    let app = TestApp::new().versioned("prod", &[]);
    let (a, body_a) = app.image(REPO, &[b"a"]).await;
    let (_, body_b) = app.image(REPO, &[b"b"]).await;
    assert_eq!(
        app.put_manifest(REPO, "1.2.3", OCI_MANIFEST, &body_a)
            .await
            .status,
        201
    );
    // CI re-runs push the same content again: that succeeds.
    assert_eq!(
        app.put_manifest(REPO, "1.2.3", OCI_MANIFEST, &body_a)
            .await
            .status,
        201
    );
    let res = app.put_manifest(REPO, "1.2.3", OCI_MANIFEST, &body_b).await;
    assert_eq!((res.status, res.error_code().as_str()), (409, "DENIED"));
    assert!(
        res.error_message().contains(a.as_str()) && res.error_message().contains("1.2.3"),
        "{}",
        res.error_message()
    );

    // Deleted: a tombstone keeps the number.
    assert_eq!(
        app.send(TestRequest::delete().uri(&format!("/v2/{REPO}/manifests/1.2.3")))
            .await
            .status,
        202
    );
    let res = app.put_manifest(REPO, "1.2.3", OCI_MANIFEST, &body_b).await;
    assert_eq!(res.status, 409);
    assert!(
        res.error_message().contains("deleted"),
        "{}",
        res.error_message()
    );
    // Only an administrator's purge frees it, and the purge is in the history.
    let res = api(
        &app,
        TestRequest::post().uri(&format!("/api/v1/repositories/{REPO}/tags/1.2.3/purge")),
    )
    .await;
    assert_eq!(res.status, 204);
    assert_eq!(
        app.put_manifest(REPO, "1.2.3", OCI_MANIFEST, &body_b)
            .await
            .status,
        201
    );
    let history = api(
        &app,
        TestRequest::get().uri(&format!("/api/v1/repositories/{REPO}/history?tag=1.2.3")),
    )
    .await
    .json();
    let methods: Vec<_> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["method"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(methods, ["push", "delete", "purge", "push"]);
}

#[actix_web::test]
async fn rule3_virtual_tags_point_at_the_highest_versions() {
    let app = TestApp::new().versioned("prod", &[]);
    let mut digests = std::collections::HashMap::new();
    for v in ["1.2.3", "1.3.0-rc.1", "1.2.10", "2.0.0-beta.1"] {
        let (d, _) = app.push_image(REPO, v, &[v.as_bytes()]).await;
        digests.insert(v, d.to_string());
    }
    for tag in ["latest", "1", "1.2"] {
        assert_eq!(
            tag_of(&app, tag).await.as_deref(),
            Some(digests["1.2.10"].as_str()),
            "{tag}"
        );
    }
    for tag in ["1.3", "2", "2.0"] {
        assert_eq!(
            tag_of(&app, tag).await,
            None,
            "pre-releases never get {tag}"
        );
    }
    // Deleting 1.2.10 moves them back to 1.2.3 and tombstones 1.2.10.
    app.send(TestRequest::delete().uri(&format!("/v2/{REPO}/manifests/1.2.10")))
        .await;
    for tag in ["latest", "1", "1.2"] {
        assert_eq!(
            tag_of(&app, tag).await.as_deref(),
            Some(digests["1.2.3"].as_str()),
            "{tag}"
        );
    }
    let groups = api(
        &app,
        TestRequest::get().uri(&format!("/api/v1/repositories/{REPO}/tags")),
    )
    .await
    .json();
    assert_eq!(groups["tombstones"][0]["tag"], "1.2.10");
    let versions: Vec<_> = groups["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["tag"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(versions, ["2.0.0-beta.1", "1.3.0-rc.1", "1.2.3"]);
    let latest = groups["virtual"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["tag"] == "latest")
        .unwrap()
        .clone();
    assert_eq!(latest["version"], "1.2.3");
}

#[actix_web::test]
async fn rule3_latest_is_the_highest_prerelease_when_nothing_is_stable() {
    let app = TestApp::new().versioned("prod", &[]);
    app.push_image(REPO, "1.0.0-rc.1", &[b"rc1"]).await;
    let (rc2, _) = app.push_image(REPO, "1.0.0-rc.2", &[b"rc2"]).await;
    assert_eq!(tag_of(&app, "latest").await.as_deref(), Some(rc2.as_str()));
    assert_eq!(tag_of(&app, "1").await, None);
    let (stable, _) = app.push_image(REPO, "0.9.0", &[b"old stable"]).await;
    assert_eq!(
        tag_of(&app, "latest").await.as_deref(),
        Some(stable.as_str()),
        "a stable version wins over pre-releases"
    );
}

#[actix_web::test]
async fn rule4_clients_cannot_push_or_delete_virtual_tags() {
    let app = TestApp::new().versioned("prod", &[]);
    let (_, body) = app.push_image(REPO, "1.0.0", &[b"x"]).await;
    for tag in ["latest", "1", "1.0"] {
        let res = app.put_manifest(REPO, tag, OCI_MANIFEST, &body).await;
        assert_eq!(res.status, 400, "{tag}");
        assert!(
            res.error_message().contains("kept by the server"),
            "{}",
            res.error_message()
        );
    }
    let res = app
        .send(TestRequest::delete().uri(&format!("/v2/{REPO}/manifests/latest")))
        .await;
    assert_eq!(res.status, 400);
}

#[actix_web::test]
async fn rule5_permitted_tags_stay_mutable() {
    let app = TestApp::new().versioned("prod", &["dev", "pr-*"]);
    app.push_image(REPO, "dev", &[b"first"]).await;
    let (second, _) = app.push_image(REPO, "dev", &[b"second"]).await;
    assert_eq!(tag_of(&app, "dev").await.as_deref(), Some(second.as_str()));
    app.push_image(REPO, "pr-7", &[b"first"]).await;
    app.push_image(REPO, "pr-7", &[b"third"]).await;
}

#[actix_web::test]
async fn rule6_switching_on_keeps_existing_tags_and_computes_virtual_tags_at_once() {
    let app = TestApp::new().with_feed("prod");
    app.push_image(REPO, "v1-old", &[b"legacy"]).await;
    let (v1, _) = app.push_image(REPO, "1.0.0", &[b"one"]).await;
    let res = api(
        &app,
        TestRequest::patch()
            .uri("/api/v1/feeds/prod")
            .set_json(json!({"versioning": true, "permitted": ["dev"]})),
    )
    .await;
    assert_eq!(res.status, 200);
    assert_eq!(res.json()["versioning"], true);
    assert!(
        tag_of(&app, "v1-old").await.is_some(),
        "a legacy tag was removed"
    );
    assert_eq!(tag_of(&app, "latest").await.as_deref(), Some(v1.as_str()));
    assert_eq!(tag_of(&app, "1.0").await.as_deref(), Some(v1.as_str()));
    let groups = api(
        &app,
        TestRequest::get().uri(&format!("/api/v1/repositories/{REPO}/tags")),
    )
    .await
    .json();
    assert_eq!(groups["legacy"][0]["tag"], "v1-old");

    // The change is recorded with who made it.
    let changes = api(&app, TestRequest::get().uri("/api/v1/feeds/prod/changes"))
        .await
        .json();
    let last = changes.as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["actor"], "admin");
    assert!(
        last["change"].as_str().unwrap().contains("versioning on"),
        "{last}"
    );

    // Switching off leaves the virtual tags as plain tags, now mutable.
    api(
        &app,
        TestRequest::patch()
            .uri("/api/v1/feeds/prod")
            .set_json(json!({"versioning": false})),
    )
    .await;
    assert_eq!(tag_of(&app, "latest").await.as_deref(), Some(v1.as_str()));
    app.push_image(REPO, "latest", &[b"anything"]).await;
}

#[actix_web::test]
async fn rule7_manifests_pushed_by_digest_are_always_allowed() {
    let app = TestApp::new().versioned("prod", &[]);
    let (child, child_body) = app.image(REPO, &[b"amd64"]).await;
    assert_eq!(
        app.put_manifest(REPO, child.as_str(), OCI_MANIFEST, &child_body)
            .await
            .status,
        201
    );
    let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": child.as_str(), "size": child_body.len(), "platform": {"architecture": "amd64", "os": "linux"}}]})
    .to_string();
    let d = Digest::of(index.as_bytes());
    assert_eq!(
        app.put_manifest(REPO, d.as_str(), OCI_INDEX, index.as_bytes())
            .await
            .status,
        201
    );
    assert_eq!(
        app.put_manifest(REPO, "1.0.0", OCI_INDEX, index.as_bytes())
            .await
            .status,
        201
    );
}

#[actix_web::test]
async fn rule8_promotion_copies_by_link_and_keeps_the_digest() {
    let app = TestApp::new().with_feed("ci").versioned("prod", &[]);
    let (rc, _) = app
        .push_image("ci/team/app", "1.4.0-rc.2", &[b"release candidate"])
        .await;
    let blob_files = || {
        std::fs::read_dir(app.dir.path().join("blobs/sha256"))
            .unwrap()
            .count()
    };
    let before = blob_files();
    let promote = |from: &str, to: &str| {
        TestRequest::post()
            .uri("/api/v1/promotions")
            .set_json(json!({"from": from, "to": to, "comment": "release"}))
    };
    let res = api(
        &app,
        promote("ci/team/app:1.4.0-rc.2", "prod/team/app:1.4.0"),
    )
    .await;
    assert_eq!(res.status, 200, "{}", String::from_utf8_lossy(&res.body));
    assert_eq!(res.json()["digest"], rc.as_str());
    assert_eq!(res.json()["changed"], true);
    assert_eq!(blob_files(), before, "promotion copied blob bytes");
    assert_eq!(tag_of(&app, "1.4.0").await.as_deref(), Some(rc.as_str()));
    assert_eq!(tag_of(&app, "latest").await.as_deref(), Some(rc.as_str()));
    // Layers are readable through the target repository.
    let manifest: Value =
        serde_json::from_slice(&app.get(&format!("/v2/{REPO}/manifests/1.4.0")).await.body)
            .unwrap();
    let layer = manifest["layers"][0]["digest"].as_str().unwrap();
    assert_eq!(
        app.get(&format!("/v2/{REPO}/blobs/{layer}")).await.body,
        b"release candidate"
    );

    // Re-running the promotion succeeds; promoting other content to the version is refused.
    let res = api(
        &app,
        promote("ci/team/app:1.4.0-rc.2", "prod/team/app:1.4.0"),
    )
    .await;
    assert_eq!(
        (res.status, res.json()["changed"].as_bool()),
        (200, Some(false))
    );
    app.push_image("ci/team/app", "other", &[b"different"])
        .await;
    let res = api(&app, promote("ci/team/app:other", "prod/team/app:1.4.0")).await;
    assert_eq!(res.status, 409);
    // The pre-release → release flow within one feed is a retag.
    app.push_image(REPO, "2.0.0-rc.1", &[b"two"]).await;
    let res = api(
        &app,
        promote("prod/team/app:2.0.0-rc.1", "prod/team/app:2.0.0"),
    )
    .await;
    assert_eq!(res.status, 200);
    let history = api(
        &app,
        TestRequest::get().uri(&format!("/api/v1/repositories/{REPO}/history?tag=2.0.0")),
    )
    .await
    .json();
    assert_eq!(history[0]["method"], "retag");
    let history = api(
        &app,
        TestRequest::get().uri(&format!("/api/v1/repositories/{REPO}/history?tag=1.4.0")),
    )
    .await
    .json();
    assert_eq!(
        (
            history[0]["method"].as_str(),
            history[0]["comment"].as_str()
        ),
        (Some("promote"), Some("release"))
    );
}

#[actix_web::test]
async fn rule8_promotion_needs_pull_on_source_and_promote_on_target() {
    let app = TestApp::new().with_feed("ci").versioned("prod", &[]);
    app.push_image("ci/app", "1.0.0", &[b"x"]).await;
    app.auth
        .users()
        .create(&admin(), "dev", Some("dev-password"), false)
        .unwrap();
    app.auth
        .users()
        .grant(&admin(), "dev", "ci", Some("pull"))
        .unwrap();
    app.auth
        .users()
        .grant(&admin(), "dev", "prod", Some("push"))
        .unwrap();
    let dev = basic("dev", "dev-password");
    let req = || {
        TestRequest::post()
            .uri("/api/v1/promotions")
            .set_json(json!({"from": "ci/app:1.0.0", "to": "prod/app:1.0.0"}))
            .insert_header(("Authorization", dev.clone()))
    };
    assert_eq!(app.send_as(req()).await.status, 403);
    app.auth
        .users()
        .grant(&admin(), "dev", "prod", Some("promote"))
        .unwrap();
    assert_eq!(app.send_as(req()).await.status, 200);
}

#[actix_web::test]
async fn rule8_index_promotes_with_children_and_referrers_when_asked() {
    let app = TestApp::new().with_feed("ci").with_feed("prod");
    let (child, child_body) = app.image("ci/app", &[b"arm64 layer"]).await;
    app.put_manifest("ci/app", child.as_str(), OCI_MANIFEST, &child_body)
        .await;
    let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": child.as_str(), "size": child_body.len(), "platform": {"architecture": "arm64", "os": "linux"}}]})
    .to_string();
    let index_digest = Digest::of(index.as_bytes());
    app.put_manifest("ci/app", "1.0.0", OCI_INDEX, index.as_bytes())
        .await;
    let empty = app.push_blob("ci/app", b"{}").await;
    let sig = json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": "application/vnd.example.sig",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty.as_str(), "size": 2}, "layers": [],
        "subject": {"mediaType": OCI_INDEX, "digest": index_digest.as_str(), "size": index.len()}})
    .to_string();
    let sig_digest = Digest::of(sig.as_bytes());
    app.put_manifest("ci/app", sig_digest.as_str(), OCI_MANIFEST, sig.as_bytes())
        .await;

    let res = api(
        &app,
        TestRequest::post().uri("/api/v1/promotions").set_json(
            json!({"from": "ci/app:1.0.0", "to": "prod/app:1.0.0", "include_referrers": true}),
        ),
    )
    .await;
    assert_eq!(res.status, 200);
    assert_eq!(res.json()["manifests"], 3);
    assert_eq!(
        app.get(&format!("/v2/prod/app/manifests/{child}"))
            .await
            .status,
        200
    );
    let refs = app
        .get(&format!("/v2/prod/app/referrers/{index_digest}"))
        .await
        .json();
    assert_eq!(refs["manifests"][0]["digest"], sig_digest.as_str());
}

#[actix_web::test]
async fn put_by_digest_with_tag_parameters_applies_all_tags_or_none() {
    let app = TestApp::new().versioned("prod", &["dev"]);
    let (d, body) = app.image(REPO, &[b"tagged"]).await;
    let res = app
        .send(
            TestRequest::put()
                .uri(&format!("/v2/{REPO}/manifests/{d}?tag=1.0.0&tag=dev"))
                .insert_header(("Content-Type", OCI_MANIFEST))
                .set_payload(body.clone()),
        )
        .await;
    assert_eq!(res.status, 201);
    let tags: Vec<_> = res
        .headers
        .get_all("oci-tag")
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    assert_eq!(tags, ["1.0.0", "dev"]);
    let (d2, body2) = app.image(REPO, &[b"other"]).await;
    let res = app
        .send(
            TestRequest::put()
                .uri(&format!("/v2/{REPO}/manifests/{d2}?tag=2.0.0&tag=nope"))
                .insert_header(("Content-Type", OCI_MANIFEST))
                .set_payload(body2),
        )
        .await;
    assert_eq!(res.status, 400);
    assert_eq!(
        tag_of(&app, "2.0.0").await,
        None,
        "a tag was applied from a refused request"
    );
}

#[actix_web::test]
async fn tag_history_answers_what_a_tag_pointed_to_at_a_time() {
    let app = TestApp::new().with_feed("prod");
    let rfc = |t: std::time::SystemTime| humantime::format_rfc3339_millis(t).to_string();
    let before = rfc(std::time::SystemTime::now() - std::time::Duration::from_secs(1));
    let (a, _) = app.push_image(REPO, "dev", &[b"a"]).await;
    std::thread::sleep(std::time::Duration::from_millis(20));
    let between = rfc(std::time::SystemTime::now());
    std::thread::sleep(std::time::Duration::from_millis(20));
    let (b, _) = app.push_image(REPO, "dev", &[b"b"]).await;
    let at = |t: &str| {
        TestRequest::get().uri(&format!(
            "/api/v1/repositories/{REPO}/history?tag=dev&at={t}"
        ))
    };
    assert_eq!(api(&app, at(&before)).await.json()["digest"], Value::Null);
    assert_eq!(api(&app, at(&between)).await.json()["digest"], a.as_str());
    assert_eq!(
        api(&app, at(&rfc(std::time::SystemTime::now())))
            .await
            .json()["digest"],
        b.as_str()
    );
    let all = api(
        &app,
        TestRequest::get().uri(&format!("/api/v1/repositories/{REPO}/history")),
    )
    .await
    .json();
    let last = all.as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        (
            last["old"].as_str(),
            last["new"].as_str(),
            last["actor"].as_str()
        ),
        (Some(a.as_str()), Some(b.as_str()), Some("admin"))
    );
    assert_eq!(api(&app, at("yesterday")).await.status, 400);
    // Any RFC 3339 offset names the same instant; a date alone is its start (UTC).
    let with_offset = between
        .parse::<jiff::Timestamp>()
        .unwrap()
        .display_with_offset(jiff::tz::offset(1))
        .to_string();
    assert!(with_offset.ends_with("+01:00"), "{with_offset}");
    let encoded: String = form_urlencoded::byte_serialize(with_offset.as_bytes()).collect();
    assert_eq!(api(&app, at(&encoded)).await.json()["digest"], a.as_str());
    assert_eq!(
        api(&app, at("2000-01-01")).await.json()["digest"],
        Value::Null
    );
}

#[actix_web::test]
async fn proget_compatible_promotion_accepts_a_form_and_x_apikey() {
    let app = TestApp::new().with_feed("ci").versioned("prod", &[]);
    let (d, _) = app.push_image("ci/team/app", "1.0.0", &[b"proget"]).await;
    let key = app
        .auth
        .keys()
        .create(
            &admin(),
            None,
            "proget",
            &std::collections::BTreeMap::new(),
            true,
            None,
        )
        .unwrap();
    let res = app
        .send_as(
            TestRequest::post()
                .uri("/api/promotions/promote")
                .insert_header(("X-ApiKey", key.key.as_str()))
                .insert_header(("Content-Type", "application/x-www-form-urlencoded"))
                .set_payload("packageName=app&groupName=team&version=1.0.0&fromFeed=ci&toFeed=prod&comments=migrated"),
        )
        .await;
    assert_eq!(res.status, 200, "{}", String::from_utf8_lossy(&res.body));
    assert_eq!(tag_of(&app, "1.0.0").await.as_deref(), Some(d.as_str()));
    // As multipart form data, what `curl -F` and PowerShell's `-Form` send.
    let (d2, _) = app.push_image("ci/team/app", "1.1.0", &[b"form"]).await;
    let boundary = "semdock-test-boundary";
    let mut body = String::new();
    for (name, value) in [
        ("packageName", "app"),
        ("groupName", "team"),
        ("version", "1.1.0"),
        ("fromFeed", "ci"),
        ("toFeed", "prod"),
    ] {
        let _ = write!(
            body,
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
        );
    }
    let _ = write!(body, "--{boundary}--\r\n");
    let multipart = |body: String| {
        TestRequest::post()
            .uri("/api/promotions/promote")
            .insert_header(("X-ApiKey", key.key.as_str()))
            .insert_header((
                "Content-Type",
                format!("multipart/form-data; boundary={boundary}"),
            ))
            .set_payload(body)
    };
    let res = app.send_as(multipart(body)).await;
    assert_eq!(res.status, 200, "{}", String::from_utf8_lossy(&res.body));
    assert_eq!(tag_of(&app, "1.1.0").await.as_deref(), Some(d2.as_str()));
    // A form without the fields is refused with a reason.
    let res = app.send_as(multipart(format!("--{boundary}--\r\n"))).await;
    assert_eq!(res.status, 400);
    assert!(String::from_utf8_lossy(&res.body).contains("invalid promotion request"));
}

#[test]
fn concurrent_pushes_of_one_new_version_let_exactly_one_win() {
    let sys = actix_web::rt::System::new();
    let app = sys.block_on(async {
        let app = TestApp::new().versioned("prod", &[]);
        let mut bodies = Vec::new();
        for i in 0..32u32 {
            bodies.push(app.image(REPO, &[&i.to_le_bytes()]).await.1);
        }
        (app, bodies)
    });
    let (app, bodies) = app;
    let repo: semdock::model::Repository = REPO.parse().unwrap();
    let reference: semdock::model::Reference = "3.0.0".parse().unwrap();
    let results: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = bodies
            .iter()
            .map(|body| {
                let (reg, repo, reference) = (&app.registry, &repo, &reference);
                s.spawn(move || {
                    reg.put_manifest(repo, reference, &[], Some(OCI_MANIFEST), body, "ci")
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let wins = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(wins, 1);
    for r in &results {
        if let Err(e) = r {
            assert!(
                matches!(e, semdock::domain::Error::VersionImmutable { .. }),
                "{e}"
            );
        }
    }
    let history = app.registry.history().list(&repo, Some("3.0.0")).unwrap();
    assert_eq!(history.len(), 1, "{history:?}");
}

#[actix_web::test]
async fn proget_promotion_list_answers_what_was_promoted_from_where_with_filters() {
    let app = TestApp::new().with_feed("ci").versioned("prod", &[]);
    let (d, _) = app.push_image("ci/team/app", "1.0.0", &[b"listed"]).await;
    app.push_image("ci/team/other", "2.0.0", &[b"other"]).await;
    for (from, to) in [
        ("ci/team/app:1.0.0", "prod/team/app:1.0.0"),
        ("ci/team/other:2.0.0", "prod/team/other:2.0.0"),
    ] {
        let res = app
            .send(
                TestRequest::post()
                    .uri("/api/v1/promotions")
                    .set_json(json!({"from": from, "to": to, "comment": "release"})),
            )
            .await;
        assert_eq!(res.status, 200);
    }
    let list = api(
        &app,
        TestRequest::get().uri("/api/promotions/list?package=app&version=1.0.0"),
    )
    .await
    .json();
    let entries = list.as_array().unwrap();
    assert_eq!(entries.len(), 1, "{list}");
    let e = &entries[0];
    assert_eq!(
        (
            e["fromFeed"].as_str(),
            e["toFeed"].as_str(),
            e["groupName"].as_str(),
            e["packageName"].as_str(),
            e["version"].as_str()
        ),
        (
            Some("ci"),
            Some("prod"),
            Some("team"),
            Some("app"),
            Some("1.0.0")
        )
    );
    assert_eq!(e["comments"], "release");
    assert_eq!(e["digest"], d.as_str());
    assert_eq!(e["userName"], "admin");
    let all = api(
        &app,
        TestRequest::get().uri("/api/promotions/list?fromFeed=ci&toFeed=prod"),
    )
    .await
    .json();
    assert_eq!(all.as_array().unwrap().len(), 2);
    let none = api(
        &app,
        TestRequest::get().uri("/api/promotions/list?toFeed=ci"),
    )
    .await
    .json();
    assert_eq!(none.as_array().unwrap().len(), 0);
}
