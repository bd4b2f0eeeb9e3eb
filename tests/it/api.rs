//! The management API in process: each endpoint and its permission checks.

use crate::common;

use actix_web::test::TestRequest;
use common::{TestApp, basic};
use serde_json::{Value, json};

async fn call(app: &TestApp, auth: Option<&str>, req: TestRequest) -> common::Resp {
    match auth {
        Some(a) => app.send_as(req.insert_header(("Authorization", a))).await,
        None => app.send_as(req).await,
    }
}

fn post(uri: &str, body: &Value) -> TestRequest {
    TestRequest::post().uri(uri).set_json(body)
}

#[actix_web::test]
async fn openapi_document_describes_every_endpoint() {
    let app = TestApp::new();
    let doc = app.get("/api/v1/openapi.json").await.json();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for path in [
        "/api/v1/feeds",
        "/api/v1/feeds/{feed}",
        "/api/v1/users",
        "/api/v1/users/{name}",
        "/api/v1/users/{name}/password",
        "/api/v1/users/{name}/roles/{feed}",
        "/api/v1/keys",
        "/api/v1/keys/{id}",
    ] {
        assert!(paths.contains_key(path), "{path} missing");
    }
    assert!(doc["components"]["securitySchemes"]["basic"].is_object());
}

#[actix_web::test]
async fn feeds_crud_with_permission_checks() {
    let app = TestApp::new();
    let admin = app.admin_auth.clone();
    let res = call(
        &app,
        Some(&admin),
        post(
            "/api/v1/feeds",
            &json!({"name": "prod", "description": "production"}),
        ),
    )
    .await;
    assert_eq!(res.status, 201);
    assert_eq!(res.json()["name"], "prod");
    let res = call(
        &app,
        Some(&admin),
        post("/api/v1/feeds", &json!({"name": "prod"})),
    )
    .await;
    assert_eq!(
        (res.status, res.json()["error"]["code"].as_str()),
        (409, Some("conflict"))
    );
    let res = call(
        &app,
        Some(&admin),
        post("/api/v1/feeds", &json!({"name": "Bad Feed"})),
    )
    .await;
    assert_eq!(res.status, 400);
    let res = call(&app, None, post("/api/v1/feeds", &json!({"name": "x"}))).await;
    assert_eq!(res.status, 401);
    assert!(res.header("www-authenticate").is_some());

    let res = call(
        &app,
        Some(&admin),
        TestRequest::patch()
            .uri("/api/v1/feeds/prod")
            .set_json(json!({"anonymous_pull": true})),
    )
    .await;
    assert_eq!(
        (res.status, res.json()["anonymous_pull"].as_bool()),
        (200, Some(true))
    );
    let res = call(
        &app,
        Some(&admin),
        TestRequest::get().uri("/api/v1/feeds/prod"),
    )
    .await;
    assert_eq!(res.json()["description"], "production");
    let names: Vec<_> = call(&app, Some(&admin), TestRequest::get().uri("/api/v1/feeds"))
        .await
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["library", "prod"]);

    // A user with pull on library sees library and the public prod, may not change either.
    app.auth
        .users()
        .create(&common::admin(), "reader", Some("reader-password"), false)
        .unwrap();
    app.auth
        .users()
        .grant(&common::admin(), "reader", "library", Some("pull"))
        .unwrap();
    let reader = basic("reader", "reader-password");
    let names: Vec<_> = call(&app, Some(&reader), TestRequest::get().uri("/api/v1/feeds"))
        .await
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["library", "prod"]);
    let res = call(
        &app,
        Some(&reader),
        TestRequest::patch()
            .uri("/api/v1/feeds/library")
            .set_json(json!({"description": "x"})),
    )
    .await;
    assert_eq!(res.status, 403);
    let res = call(
        &app,
        Some(&reader),
        TestRequest::delete().uri("/api/v1/feeds/prod"),
    )
    .await;
    assert_eq!(res.status, 403);

    assert_eq!(
        call(
            &app,
            Some(&admin),
            TestRequest::delete().uri("/api/v1/feeds/prod")
        )
        .await
        .status,
        204
    );
    assert_eq!(
        call(
            &app,
            Some(&admin),
            TestRequest::get().uri("/api/v1/feeds/prod")
        )
        .await
        .status,
        404
    );
}

#[actix_web::test]
async fn users_create_disable_reset_and_grant() {
    let app = TestApp::new();
    let admin = app.admin_auth.clone();
    let res = call(
        &app,
        Some(&admin),
        post("/api/v1/users", &json!({"name": "bob"})),
    )
    .await;
    assert_eq!(res.status, 201);
    let password = res.json()["password"].as_str().unwrap().to_owned();
    let bob = basic("bob", &password);
    assert_eq!(
        call(&app, Some(&bob), TestRequest::get().uri("/v2/"))
            .await
            .status,
        200
    );
    assert_eq!(
        call(&app, Some(&bob), TestRequest::get().uri("/api/v1/users"))
            .await
            .status,
        403
    );

    let res = call(
        &app,
        Some(&admin),
        TestRequest::put()
            .uri("/api/v1/users/bob/roles/library")
            .set_json(json!({"role": "push"})),
    )
    .await;
    assert_eq!(res.status, 204);
    let res = call(
        &app,
        Some(&admin),
        TestRequest::put()
            .uri("/api/v1/users/bob/roles/library")
            .set_json(json!({"role": "owner"})),
    )
    .await;
    assert_eq!(res.status, 400);
    let users = call(&app, Some(&admin), TestRequest::get().uri("/api/v1/users"))
        .await
        .json();
    let bob_info = users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == "bob")
        .unwrap()
        .clone();
    assert_eq!(bob_info["roles"], json!({"library": "push"}));
    assert!(
        !users.to_string().contains("argon2"),
        "password hashes leaked"
    );

    // Users change their own password; not someone else's.
    let res = call(
        &app,
        Some(&bob),
        TestRequest::put()
            .uri("/api/v1/users/bob/password")
            .set_json(json!({"password": "a-new-password"})),
    )
    .await;
    assert_eq!(res.status, 204);
    let bob = basic("bob", "a-new-password");
    let res = call(
        &app,
        Some(&bob),
        TestRequest::put()
            .uri("/api/v1/users/admin/password")
            .set_json(json!({"password": "hijacked!!"})),
    )
    .await;
    assert_eq!(res.status, 403);
    let res = call(
        &app,
        Some(&bob),
        TestRequest::put()
            .uri("/api/v1/users/bob/password")
            .set_json(json!({"password": "short"})),
    )
    .await;
    assert_eq!(res.status, 400);

    let res = call(
        &app,
        Some(&admin),
        TestRequest::patch()
            .uri("/api/v1/users/bob")
            .set_json(json!({"disabled": true})),
    )
    .await;
    assert_eq!(res.status, 204);
    assert_eq!(
        call(&app, Some(&bob), TestRequest::get().uri("/v2/"))
            .await
            .status,
        401
    );
    let res = call(
        &app,
        Some(&admin),
        TestRequest::patch()
            .uri("/api/v1/users/nobody")
            .set_json(json!({"disabled": true})),
    )
    .await;
    assert_eq!(res.status, 404);

    // The last enabled administrator stays one: 409 with the sentence.
    for change in [json!({"disabled": true}), json!({"admin": false})] {
        let res = call(
            &app,
            Some(&admin),
            TestRequest::patch()
                .uri("/api/v1/users/admin")
                .set_json(change),
        )
        .await;
        assert_eq!(res.status, 409);
        assert!(
            res.json()["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with("admin is the last enabled administrator"),
            "{}",
            res.json()
        );
    }
}

#[actix_web::test]
async fn keys_are_shown_once_listed_without_secret_and_revocable() {
    let app = TestApp::new();
    let admin = app.admin_auth.clone();
    let res = call(
        &app,
        Some(&admin),
        post(
            "/api/v1/keys",
            &json!({"name": "ci", "roles": {"library": "push"}}),
        ),
    )
    .await;
    assert_eq!(res.status, 201);
    let created = res.json();
    let key = created["key"].as_str().unwrap().to_owned();
    assert!(key.len() > 64);
    let list = call(&app, Some(&admin), TestRequest::get().uri("/api/v1/keys"))
        .await
        .json();
    assert!(
        !list.to_string().contains(&key[20..]),
        "the secret is listed"
    );
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .any(|k| k["id"] == created["id"] && k["roles"]["library"] == "push")
    );

    let res = call(
        &app,
        Some(&admin),
        post(
            "/api/v1/keys",
            &json!({"name": "x", "roles": {"nosuch": "pull"}}),
        ),
    )
    .await;
    assert_eq!(res.status, 404);
    let res = call(
        &app,
        Some(&admin),
        post("/api/v1/keys", &json!({"name": "x", "expires_at": 1})),
    )
    .await;
    assert_eq!(res.status, 400);

    let uri = format!("/api/v1/keys/{}", created["id"].as_str().unwrap());
    assert_eq!(
        call(&app, Some(&admin), TestRequest::delete().uri(&uri))
            .await
            .status,
        204
    );
    assert_eq!(
        call(
            &app,
            Some(&basic("api", &key)),
            TestRequest::get().uri("/v2/")
        )
        .await
        .status,
        401
    );
    assert_eq!(
        call(&app, Some(&admin), TestRequest::delete().uri(&uri))
            .await
            .status,
        404
    );
}

#[actix_web::test]
async fn bad_requests_get_json_errors_not_500() {
    let app = TestApp::new();
    let admin = app.admin_auth.clone();
    for req in [
        TestRequest::post()
            .uri("/api/v1/feeds")
            .insert_header(("Content-Type", "application/json"))
            .set_payload("{not json"),
        post("/api/v1/feeds", &json!({"name": "x", "surprise": 1})),
        post("/api/v1/users", &json!({"name": "Not Valid"})),
        post("/api/v1/users", &json!({"name": "api"})),
    ] {
        let res = call(&app, Some(&admin), req).await;
        assert_eq!(res.status, 400, "{}", String::from_utf8_lossy(&res.body));
        assert!(res.json()["error"]["message"].is_string());
    }
    let res = call(
        &app,
        Some(&admin),
        TestRequest::get().uri("/api/v1/nothing"),
    )
    .await;
    assert_eq!(
        (res.status, res.json()["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
}

#[actix_web::test]
async fn metrics_count_requests_pushes_pulls_promotions_and_failures_and_the_dashboard_uses_only_them()
 {
    let app = TestApp::new().with_feed("prod");
    app.push_image("library/app", "1", &[b"metrics"]).await;
    assert_eq!(app.get("/v2/library/app/manifests/1").await.status, 200);
    let res = app
        .send(
            TestRequest::post()
                .uri("/api/v1/promotions")
                .set_json(json!({"from": "library/app:1", "to": "prod/app:1"})),
        )
        .await;
    assert_eq!(res.status, 200);
    let res = app
        .send_as(
            TestRequest::get()
                .uri("/v2/")
                .insert_header(("Authorization", common::basic("admin", "wrong-password"))),
        )
        .await;
    assert_eq!(res.status, 401);
    // A collection and a retention run, so that their gauges exist.
    let res = app
        .send(
            TestRequest::post()
                .uri("/api/v1/gc")
                .set_json(json!({"dry_run": false})),
        )
        .await;
    assert_eq!(res.status, 200);
    let res = app
        .send(
            TestRequest::put()
                .uri("/api/v1/feeds/library/retention")
                .set_json(json!({"untagged_days": 30})),
        )
        .await;
    assert_eq!(res.status, 200);
    let res = app
        .send(
            TestRequest::post()
                .uri("/api/v1/feeds/library/retention/run")
                .set_json(json!({"dry_run": false})),
        )
        .await;
    assert_eq!(res.status, 200);
    let res = app.get("/metrics").await;
    assert_eq!(res.status, 200);
    let text = String::from_utf8(res.body).unwrap();
    let value = |line_start: &str| -> f64 {
        text.lines()
            .find(|l| l.starts_with(line_start))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {line_start} in\n{text}"))
    };
    assert!(value(r#"semdock_manifest_pushes_total{feed="library"}"#) >= 1.0);
    assert!(value(r#"semdock_manifest_pulls_total{feed="library"}"#) >= 1.0);
    assert!(value(r#"semdock_promotions_total{feed="prod"}"#) >= 1.0);
    assert!(value(r#"semdock_auth_failures_total{kind="password"}"#) >= 1.0);
    assert!(value("semdock_metadata_commit_duration_seconds_count") >= 1.0);
    assert!(text.contains("semdock_upload_sessions_open"));
    assert!(text.contains("process_resident_memory_bytes"));
    assert!(text.trim_end().ends_with("# EOF"));
    assert_eq!(text.matches("# EOF").count(), 1);

    // Every metric the Grafana dashboard queries is one /metrics exports.
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/packaging/grafana/semdock-dashboard.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let names = regex::Regex::new(r"\b((?:semdock|process)_[a-z_]+)").unwrap();
    let mut queried = 0;
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            for c in names.captures_iter(expr) {
                let name = c[1].trim_end_matches("_bucket");
                queried += 1;
                assert!(
                    text.lines()
                        .any(|l| l.starts_with(&format!("# TYPE {name} "))
                            || l.starts_with(&format!(
                                "# TYPE {} ",
                                name.trim_end_matches("_total")
                            ))),
                    "the dashboard queries {name}, which /metrics does not export"
                );
            }
        }
    }
    assert!(queried >= 10);
}
