//! Search across feeds on both engines: annotations, whole and partial digests, tags and
//! names; a deleted tag is not answered; the index survives a restart; docker's image labels.

use crate::common;

use std::time::Duration;

use actix_web::test::TestRequest;
use common::{OCI_MANIFEST, TestApp};
use semdock::model::Digest;

async fn hits(app: &TestApp, q: &str) -> Vec<serde_json::Value> {
    let q: String = form_urlencoded::byte_serialize(q.as_bytes()).collect();
    let res = app
        .send(TestRequest::get().uri(&format!("/api/v1/search?q={q}")))
        .await;
    assert_eq!(res.status, 200, "{}", String::from_utf8_lossy(&res.body));
    res.json().as_array().unwrap().clone()
}

async fn story(app: TestApp) {
    let app = app.with_feed("prod");
    let (_, body) = app.image("prod/web", &[b"annotated layer"]).await;
    let mut manifest: serde_json::Value = serde_json::from_slice(&body).unwrap();
    manifest["annotations"] = serde_json::json!({
        "org.opencontainers.image.source": "https://github.com/acme/web",
        "org.opencontainers.image.revision": "4f2a9c1",
    });
    let body = serde_json::to_vec(&manifest).unwrap();
    let digest = Digest::of(&body).to_string();
    let res = app
        .put_manifest("prod/web", "2.0.0", OCI_MANIFEST, &body)
        .await;
    assert_eq!(res.status, 201);

    let found = hits(
        &app,
        "org.opencontainers.image.source=https://github.com/acme",
    )
    .await;
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["kind"], "annotation");
    assert_eq!(found[0]["digest"], digest.as_str());
    for q in [
        digest.clone(),
        digest["sha256:".len().."sha256:".len() + 8].to_owned(),
    ] {
        let found = hits(&app, &q).await;
        assert!(
            found
                .iter()
                .any(|h| h["kind"] == "digest" && h["repository"] == "prod/web"),
            "{q}: {found:?}"
        );
    }
    let found = hits(&app, "2.0").await;
    assert!(found.iter().any(|h| h["tag"] == "2.0.0"), "{found:?}");
    let found = hits(&app, "WEB").await;
    assert!(
        found.iter().any(|h| h["kind"] == "repository"),
        "names ignore case: {found:?}"
    );
    assert!(hits(&app, "nothing-like-it").await.is_empty());

    let res = app
        .send(TestRequest::delete().uri("/v2/prod/web/manifests/2.0.0"))
        .await;
    assert!(res.status == 202 || res.status == 204, "{}", res.status);
    let found = hits(&app, "2.0.0").await;
    assert!(
        !found.iter().any(|h| h["tag"] == "2.0.0"),
        "a deleted tag is not answered: {found:?}"
    );

    let app = app.restart();
    let found = hits(&app, "org.opencontainers.image.revision=4f2a").await;
    assert_eq!(found.len(), 1, "{found:?}");
    let res = app.send(TestRequest::get().uri("/api/v1/search?q=")).await;
    assert_eq!(res.status, 400);
}

#[actix_web::test]
async fn search_finds_annotations_digests_tags_and_names_on_redb() {
    story(TestApp::new()).await;
}

#[actix_web::test]
async fn search_finds_annotations_digests_tags_and_names_on_postgresql() {
    story(TestApp::on_postgres()).await;
}

/// An image built by docker with `LABEL`s is found by its labels once its layers are read.
#[test]
fn docker_labels_are_found_once_the_image_is_read() {
    let server = common::Server::start();
    server.docker_login();
    let ctx = common::image_context(1, "labelled");
    let dockerfile = ctx.path().join("Dockerfile");
    let mut text = std::fs::read_to_string(&dockerfile).unwrap();
    text.push_str("LABEL org.opencontainers.image.title=\"semdock labels\" team=platform\n");
    std::fs::write(&dockerfile, text).unwrap();
    let tag = format!("{}/prod/labelled:1.0.0", server.host());
    common::run(
        server
            .docker()
            .args(["build", "--no-cache", "-q", "-t", &tag])
            .arg(ctx.path()),
    );
    common::run(server.docker().args(["push", &tag]));
    let agent = server.http();
    let deadline = std::time::Instant::now() + Duration::from_mins(1);
    let found = loop {
        let mut res = agent
            .get(&server.url("/api/v1/search?q=team%3Dplat"))
            .call()
            .unwrap();
        let hits: serde_json::Value =
            serde_json::from_str(&res.body_mut().read_to_string().unwrap()).unwrap();
        if hits.as_array().is_some_and(|h| !h.is_empty()) || std::time::Instant::now() > deadline {
            break hits;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(found[0]["repository"], "prod/labelled", "{found}");
    assert_eq!(found[0]["matched"], "team=platform", "{found}");
    let mut res = agent
        .get(&server.url("/api/v1/search?q=org.opencontainers.image.title%3Dsemdock"))
        .call()
        .unwrap();
    let hits = res.body_mut().read_to_string().unwrap();
    assert!(hits.contains("semdock labels"), "{hits}");
}
