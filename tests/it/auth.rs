//! Access control, in process: challenges, tokens, roles, keys, rate limits — each security
//! case of the access-control issue is a test.

use crate::common;

use std::collections::BTreeMap;

use actix_web::test::TestRequest;
use common::{OCI_MANIFEST, TestApp, admin, basic};

fn upload(uri: &str) -> TestRequest {
    TestRequest::post().uri(uri)
}

/// A user with `role` on `feed` (none when `None`); returns its Basic credentials.
fn user(app: &TestApp, name: &str, feed: &str, role: Option<&str>) -> String {
    let password = format!("{name}-password");
    app.auth
        .users()
        .create(&admin(), name, Some(&password), false)
        .unwrap();
    if role.is_some() {
        app.auth.users().grant(&admin(), name, feed, role).unwrap();
    }
    basic(name, &password)
}

async fn token(app: &TestApp, credentials: Option<&str>, scope: &str) -> String {
    let mut req = TestRequest::get().uri(&format!("/v2/_auth?service=semdock-test&scope={scope}"));
    if let Some(c) = credentials {
        req = req.insert_header(("Authorization", c));
    }
    let res = app.send_as(req).await;
    assert_eq!(res.status, 200, "{}", String::from_utf8_lossy(&res.body));
    res.json()["token"].as_str().unwrap().to_owned()
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

#[actix_web::test]
async fn unauthenticated_request_gets_a_challenge_naming_the_exact_scope() {
    let app = TestApp::new();
    let res = app.send_as(upload("/v2/library/app/blobs/uploads/")).await;
    assert_eq!(
        (res.status, res.error_code().as_str()),
        (401, "UNAUTHORIZED")
    );
    assert_eq!(
        res.header("www-authenticate"),
        Some(
            "Bearer realm=\"http://localhost:8080/v2/_auth\",service=\"semdock-test\",scope=\"repository:library/app:pull,push\""
        )
    );
    let res = app.send_as(TestRequest::get().uri("/v2/")).await;
    assert_eq!(res.status, 401);
    assert!(
        res.header("www-authenticate")
            .unwrap()
            .starts_with("Bearer realm=")
    );
    let res = app.send(TestRequest::get().uri("/v2/")).await;
    assert_eq!(res.status, 200);
}

#[actix_web::test]
async fn token_endpoint_issues_a_token_that_works_for_its_scope_only() {
    let app = TestApp::new();
    let admin_basic = basic("admin", &app.admin_password);
    let res = app
        .send_as(
            TestRequest::get()
                .uri("/v2/_auth?service=semdock-test&scope=repository:library/a:pull,push")
                .insert_header(("Authorization", admin_basic.as_str())),
        )
        .await;
    let body = res.json();
    assert_eq!(body["token"], body["access_token"]);
    assert_eq!(body["expires_in"], 300);
    assert!(body["issued_at"].as_str().unwrap().ends_with('Z'));
    let t = body["token"].as_str().unwrap();

    let res = app
        .send_as(upload("/v2/library/a/blobs/uploads/").insert_header(("Authorization", bearer(t))))
        .await;
    assert_eq!(res.status, 202);
    // The same token on another repository: the admin may, so the client is told to get a
    // token with that scope.
    let res = app
        .send_as(upload("/v2/library/b/blobs/uploads/").insert_header(("Authorization", bearer(t))))
        .await;
    assert_eq!(res.status, 401);
    assert!(
        res.header("www-authenticate")
            .unwrap()
            .contains("error=\"insufficient_scope\"")
    );
}

#[actix_web::test]
async fn token_for_repository_a_used_on_b_is_refused_for_a_user_without_rights_on_b() {
    let app = TestApp::new().with_feed("prod");
    let alice = user(&app, "alice", "library", Some("push"));
    let t = token(&app, Some(&alice), "repository:library/a:pull,push").await;
    let res = app
        .send_as(upload("/v2/prod/a/blobs/uploads/").insert_header(("Authorization", bearer(&t))))
        .await;
    assert_eq!((res.status, res.error_code().as_str()), (403, "DENIED"));
    // Asking for prod in the token grants nothing there.
    let t = token(&app, Some(&alice), "repository:prod/a:pull,push").await;
    let res = app
        .send_as(upload("/v2/prod/a/blobs/uploads/").insert_header(("Authorization", bearer(&t))))
        .await;
    assert_eq!(res.status, 403);
}

#[actix_web::test]
async fn expired_token_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let services = semdock::server::open_embedded(
        dir.path(),
        common::LIMITS,
        semdock::domain::auth::TokenSettings {
            service: "semdock-test".into(),
            ttl_seconds: 1,
        },
        true,
    )
    .unwrap();
    services
        .registry
        .feeds()
        .ensure(&"library".parse().unwrap())
        .unwrap();
    let issued = services
        .auth
        .issue_token(
            Some(&admin()),
            &[semdock::model::Scope::parse("repository:library/a:pull").unwrap()],
        )
        .unwrap();
    let credentials = semdock::domain::auth::Credentials::Bearer(issued.token.clone());
    let pull = |c: &semdock::domain::auth::Credentials| {
        services.auth.authorize(
            c,
            "127.0.0.1".parse().unwrap(),
            "library/a",
            "library",
            semdock::model::Action::Pull,
        )
    };
    let fresh = pull(&credentials);
    assert!(fresh.is_ok(), "valid when issued: {fresh:?}");
    // One second of validity plus five of leeway for clock skew.
    services
        .registry
        .clock()
        .advance(std::time::Duration::from_secs(7));
    let err = pull(&credentials).unwrap_err();
    assert!(err.to_string().contains("it has expired"), "{err}");
}

#[actix_web::test]
async fn token_signed_with_another_key_is_refused() {
    let app = TestApp::new();
    let claims = serde_json::json!({"iss": "semdock", "sub": "user:admin", "aud": "semdock-test",
        "exp": 4_000_000_000u64, "nbf": 0, "iat": 0, "jti": "x",
        "access": [{"type": "repository", "name": "library/a", "actions": ["pull", "push"]}]});
    let forged = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(b"not the registry's key"),
    )
    .unwrap();
    let res = app
        .send_as(
            upload("/v2/library/a/blobs/uploads/")
                .insert_header(("Authorization", bearer(&forged))),
        )
        .await;
    assert_eq!(
        (res.status, res.error_code().as_str()),
        (401, "UNAUTHORIZED")
    );
}

#[actix_web::test]
async fn pull_user_cannot_put_patch_or_delete() {
    let app = TestApp::new();
    let (digest, body) = app.push_image("library/app", "1.0.0", &[b"layer"]).await;
    let reader = user(&app, "reader", "library", Some("pull"));
    let as_reader = |req: TestRequest| req.insert_header(("Authorization", reader.as_str()));

    assert_eq!(
        app.send_as(as_reader(
            TestRequest::get().uri("/v2/library/app/manifests/1.0.0")
        ))
        .await
        .status,
        200
    );
    let location = app
        .send(upload("/v2/library/app/blobs/uploads/"))
        .await
        .header("location")
        .unwrap()
        .to_owned();
    for req in [
        TestRequest::put()
            .uri("/v2/library/app/manifests/2.0.0")
            .insert_header(("Content-Type", OCI_MANIFEST))
            .set_payload(body.clone()),
        TestRequest::patch().uri(&location).set_payload("x"),
        TestRequest::delete().uri(&format!("/v2/library/app/manifests/{digest}")),
        TestRequest::delete().uri("/v2/library/app/manifests/1.0.0"),
        upload("/v2/library/app/blobs/uploads/"),
    ] {
        let res = app.send_as(as_reader(req)).await;
        assert_eq!((res.status, res.error_code().as_str()), (403, "DENIED"));
        assert!(
            res.error_message().contains("reader"),
            "{}",
            res.error_message()
        );
    }
    assert_eq!(app.get("/v2/library/app/manifests/1.0.0").await.status, 200);
}

#[actix_web::test]
async fn blob_of_another_feed_is_not_readable_by_digest() {
    let app = TestApp::new().with_feed("prod");
    let digest = app.push_blob("prod/app", b"prod-only layer").await;
    let reader = user(&app, "reader", "library", Some("pull"));
    let res = app
        .send_as(
            TestRequest::get()
                .uri(&format!("/v2/prod/app/blobs/{digest}"))
                .insert_header(("Authorization", reader.as_str())),
        )
        .await;
    assert_eq!(res.status, 403);
    let res = app
        .send_as(
            TestRequest::get()
                .uri(&format!("/v2/library/app/blobs/{digest}"))
                .insert_header(("Authorization", reader.as_str())),
        )
        .await;
    assert_eq!(
        (res.status, res.error_code().as_str()),
        (404, "BLOB_UNKNOWN")
    );
}

#[actix_web::test]
async fn mount_from_an_unreadable_repository_falls_back_to_an_upload() {
    let app = TestApp::new().with_feed("prod");
    let digest = app.push_blob("prod/secret", b"secret layer").await;
    let pusher = user(&app, "pusher", "library", Some("push"));
    let res = app
        .send_as(
            upload(&format!(
                "/v2/library/x/blobs/uploads/?mount={digest}&from=prod/secret"
            ))
            .insert_header(("Authorization", pusher.as_str())),
        )
        .await;
    assert_eq!(res.status, 202, "mounted a blob the caller may not read");
    let res = app
        .send_as(
            TestRequest::get()
                .uri(&format!("/v2/library/x/blobs/{digest}"))
                .insert_header(("Authorization", pusher.as_str())),
        )
        .await;
    assert_eq!(res.status, 404);
    // With pull on the source, the same mount links the blob.
    app.auth
        .users()
        .grant(&admin(), "pusher", "prod", Some("pull"))
        .unwrap();
    let res = app
        .send_as(
            upload(&format!(
                "/v2/library/x/blobs/uploads/?mount={digest}&from=prod/secret"
            ))
            .insert_header(("Authorization", pusher.as_str())),
        )
        .await;
    assert_eq!(res.status, 201);
}

fn key(app: &TestApp, owner: &str, feed: &str, role: &str) -> (String, String) {
    let actor = semdock::domain::auth::Caller {
        principal: semdock::domain::auth::Principal::User {
            name: owner.into(),
            admin: false,
        },
        via: semdock::domain::auth::Via::Password,
    };
    let roles = BTreeMap::from([(feed.to_owned(), role.to_owned())]);
    let k = app
        .auth
        .keys()
        .create(&actor, None, "ci", &roles, false, None)
        .unwrap();
    (k.id, k.key)
}

#[actix_web::test]
async fn api_keys_work_as_api_user_and_as_owner_and_stop_when_revoked() {
    let app = TestApp::new();
    user(&app, "ci", "library", Some("push"));
    let (id, secret) = key(&app, "ci", "library", "push");
    for credentials in [basic("api", &secret), basic("ci", &secret)] {
        let res = app
            .send_as(
                upload("/v2/library/app/blobs/uploads/")
                    .insert_header(("Authorization", credentials.as_str())),
            )
            .await;
        assert_eq!(res.status, 202);
    }
    let t = token(
        &app,
        Some(&basic("api", &secret)),
        "repository:library/app:push,pull",
    )
    .await;
    app.auth.keys().revoke(&admin(), &id).unwrap();
    let res = app
        .send_as(
            upload("/v2/library/app/blobs/uploads/")
                .insert_header(("Authorization", basic("api", &secret))),
        )
        .await;
    assert_eq!(res.status, 401);
    let res = app
        .send_as(
            upload("/v2/library/app/blobs/uploads/").insert_header(("Authorization", bearer(&t))),
        )
        .await;
    assert_eq!(res.status, 401, "a revoked key's token kept working");
}

#[actix_web::test]
async fn key_never_holds_more_than_its_owner() {
    let app = TestApp::new();
    user(&app, "ci", "library", Some("push"));
    let (_, secret) = key(&app, "ci", "library", "admin");
    let creds = basic("api", &secret);
    // Granted admin on the key, but the owner has push: delete is refused.
    let (digest, _) = app.push_image("library/app", "1.0.0", &[]).await;
    let res = app
        .send_as(
            TestRequest::delete()
                .uri(&format!("/v2/library/app/manifests/{digest}"))
                .insert_header(("Authorization", creds.as_str())),
        )
        .await;
    assert_eq!(res.status, 403);
    // The owner loses the role: the key loses it too.
    app.auth
        .users()
        .grant(&admin(), "ci", "library", None)
        .unwrap();
    let res = app
        .send_as(
            upload("/v2/library/app/blobs/uploads/")
                .insert_header(("Authorization", creds.as_str())),
        )
        .await;
    assert_eq!(res.status, 403);
}

#[actix_web::test]
async fn disabled_user_is_refused_at_once() {
    let app = TestApp::new();
    let alice = user(&app, "alice", "library", Some("push"));
    let t = token(&app, Some(&alice), "repository:library/app:push,pull").await;
    app.auth
        .users()
        .update(&admin(), "alice", Some(true), None)
        .unwrap();
    for credentials in [alice.clone(), bearer(&t)] {
        let res = app
            .send_as(
                upload("/v2/library/app/blobs/uploads/")
                    .insert_header(("Authorization", credentials.as_str())),
            )
            .await;
        assert_eq!(res.status, 401);
    }
}

/// Pulls answer a token verified since the last metadata write from memory; disabling the
/// user must still refuse the very next pull.
#[actix_web::test]
async fn a_remembered_token_is_refused_once_its_user_is_disabled() {
    let app = TestApp::new();
    app.push_image("library/app", "1.0.0", &[]).await;
    let alice = user(&app, "alice", "library", Some("pull"));
    let t = token(&app, Some(&alice), "repository:library/app:pull").await;
    let pull = || {
        app.send_as(
            TestRequest::get()
                .uri("/v2/library/app/manifests/1.0.0")
                .insert_header(("Authorization", bearer(&t))),
        )
    };
    assert_eq!(pull().await.status, 200);
    assert_eq!(pull().await.status, 200, "served again, from memory");
    app.auth
        .users()
        .update(&admin(), "alice", Some(true), None)
        .unwrap();
    assert_eq!(pull().await.status, 401, "a disabled user's token");
}

#[actix_web::test]
async fn catalog_hides_feeds_the_caller_cannot_pull() {
    let app = TestApp::new().with_feed("prod");
    app.push_image("library/app", "1.0.0", &[]).await;
    app.push_image("prod/app", "1.0.0", &[]).await;
    let reader = user(&app, "reader", "library", Some("pull"));
    let res = app
        .send_as(
            TestRequest::get()
                .uri("/v2/_catalog")
                .insert_header(("Authorization", reader.as_str())),
        )
        .await;
    assert_eq!(
        res.json()["repositories"],
        serde_json::json!(["library/app"])
    );
    let res = app.send_as(TestRequest::get().uri("/v2/_catalog")).await;
    assert_eq!(res.json()["repositories"], serde_json::json!([]));
    let res = app.get("/v2/_catalog").await;
    assert_eq!(
        res.json()["repositories"],
        serde_json::json!(["library/app", "prod/app"])
    );
}

#[actix_web::test]
async fn anonymous_pull_works_only_where_the_feed_allows_it() {
    let app = TestApp::new().with_feed("public");
    app.push_image("public/app", "1.0.0", &[]).await;
    app.push_image("library/app", "1.0.0", &[]).await;
    app.registry
        .feeds()
        .update(
            "public",
            semdock::domain::FeedChange {
                anonymous_pull: Some(true),
                ..Default::default()
            },
            "admin",
        )
        .unwrap();
    assert_eq!(
        app.send_as(TestRequest::get().uri("/v2/public/app/manifests/1.0.0"))
            .await
            .status,
        200
    );
    assert_eq!(
        app.send_as(TestRequest::get().uri("/v2/library/app/manifests/1.0.0"))
            .await
            .status,
        401
    );
    let t = token(&app, None, "repository:public/app:pull,push").await;
    let res = app
        .send_as(
            TestRequest::get()
                .uri("/v2/public/app/manifests/1.0.0")
                .insert_header(("Authorization", bearer(&t))),
        )
        .await;
    assert_eq!(res.status, 200);
    let res = app
        .send_as(
            upload("/v2/public/app/blobs/uploads/").insert_header(("Authorization", bearer(&t))),
        )
        .await;
    assert_eq!(res.status, 401, "an anonymous token granted push");

    // Anonymous answers are remembered only until the feed changes.
    let anonymous = || app.send_as(TestRequest::get().uri("/v2/public/app/manifests/1.0.0"));
    assert_eq!(anonymous().await.status, 200);
    app.registry
        .feeds()
        .update(
            "public",
            semdock::domain::FeedChange {
                anonymous_pull: Some(false),
                ..Default::default()
            },
            "admin",
        )
        .unwrap();
    assert_eq!(anonymous().await.status, 401, "anonymous pull switched off");
}

#[actix_web::test]
async fn failed_logins_are_rate_limited_per_user() {
    let app = TestApp::new();
    let good = user(&app, "alice", "library", Some("pull"));
    for _ in 0..5 {
        let res = app
            .send_as(
                TestRequest::get()
                    .uri("/v2/")
                    .insert_header(("Authorization", basic("alice", "wrong-password"))),
            )
            .await;
        assert_eq!(res.status, 401);
    }
    let res = app
        .send_as(
            TestRequest::get()
                .uri("/v2/")
                .insert_header(("Authorization", good.as_str())),
        )
        .await;
    assert_eq!(
        (res.status, res.error_code().as_str()),
        (429, "TOOMANYREQUESTS")
    );
    let retry: u64 = res.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=300).contains(&retry));
    // Another user from elsewhere is not affected.
    assert_eq!(app.send(TestRequest::get().uri("/v2/")).await.status, 200);
}

#[actix_web::test]
async fn malformed_authorization_headers_are_401_not_500() {
    let app = TestApp::new();
    for value in [
        "Basic !!!notbase64",
        "Basic bm9jb2xvbg==",
        "Digest abc",
        "Bearer",
        "Bearer not.a.jwt",
    ] {
        let res = app
            .send_as(
                TestRequest::get()
                    .uri("/v2/library/app/tags/list")
                    .insert_header(("Authorization", value)),
            )
            .await;
        assert_eq!(res.status, 401, "{value}");
    }
}

#[actix_web::test]
async fn initial_admin_password_file_is_private() {
    use std::os::unix::fs::PermissionsExt as _;
    let app = TestApp::new();
    let path = app.dir.path().join("initial-admin-password");
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(
        std::fs::read_to_string(&path).unwrap().trim(),
        app.admin_password
    );
    assert!(app.admin_password.len() >= 20);
}

/// The last enabled administrator can be neither disabled nor demoted, by anyone: nobody
/// could manage the registry afterwards. With another enabled administrator, an
/// administrator may step down (themselves included).
#[actix_web::test]
async fn the_last_enabled_administrator_cannot_be_disabled_or_demoted() {
    let app = TestApp::new();
    let last = |r: Result<(), semdock::domain::Error>| {
        let e = r.expect_err("the last administrator was switched off");
        assert!(matches!(e, semdock::domain::Error::Conflict(_)), "{e:?}");
        assert_eq!(
            e.to_string(),
            "admin is the last enabled administrator: make another user an administrator first, or nobody could manage this registry"
        );
    };
    last(app.auth.users().update(&admin(), "admin", Some(true), None));
    last(
        app.auth
            .users()
            .update(&admin(), "admin", None, Some(false)),
    );
    // A disabled administrator does not count.
    app.auth
        .users()
        .create(&admin(), "bob", Some("bob-password"), true)
        .unwrap();
    app.auth
        .users()
        .update(&admin(), "bob", Some(true), None)
        .unwrap();
    last(app.auth.users().update(&admin(), "admin", Some(true), None));
    let res = app
        .send_as(
            TestRequest::get()
                .uri("/api/v1/users")
                .insert_header(("Authorization", basic("admin", &app.admin_password))),
        )
        .await;
    assert_eq!(res.status, 200, "the administrator still works");

    // Two enabled administrators: either may go, then the other is the last.
    app.auth
        .users()
        .update(&admin(), "bob", Some(false), None)
        .unwrap();
    app.auth
        .users()
        .update(&admin(), "admin", None, Some(false))
        .unwrap();
    let bob = semdock::domain::auth::Caller {
        principal: semdock::domain::auth::Principal::User {
            name: "bob".into(),
            admin: true,
        },
        via: semdock::domain::auth::Via::Password,
    };
    let e = app
        .auth
        .users()
        .update(&bob, "bob", Some(true), None)
        .unwrap_err();
    assert!(
        e.to_string()
            .starts_with("bob is the last enabled administrator"),
        "{e}"
    );
    // Making someone else an administrator again frees the way.
    app.auth
        .users()
        .update(&bob, "admin", None, Some(true))
        .unwrap();
    app.auth
        .users()
        .update(&bob, "bob", None, Some(false))
        .unwrap();
}

/// An `OpenID Connect` account is the provider user's (issuer, `sub`): a name claim that
/// differs in case or spaces, or a renamed user, lands on the same account (and its
/// disabling); another subject never takes an account over, nor a local one in any spelling.
#[test]
fn oidc_accounts_are_keyed_by_issuer_and_subject_not_by_the_name_claim() {
    use semdock::clients::oidc::{Oidc, OidcSettings, OidcUser};
    use semdock::domain::Error;
    use semdock::domain::directory::Directory;
    let app = TestApp::new();
    let oidc = Oidc::new(OidcSettings {
        issuer: "http://127.0.0.1:9/realms/corp".into(),
        client_id: "semdock".into(),
        client_secret: String::new().into(),
        scopes: vec!["openid".into()],
        prompt: None,
        username_claim: "preferred_username".into(),
        groups_claim: "groups".into(),
        ca_pem: None,
        timeout: std::time::Duration::from_secs(1),
        label: "Sign in".into(),
    })
    .unwrap();
    app.auth.set_directory(std::sync::Arc::new(
        Directory::new(
            None,
            Some(oidc),
            Vec::new(),
            std::time::Duration::from_mins(5),
        )
        .unwrap(),
    ));
    let sign_in = |subject: &str, name: &str| {
        app.auth
            .directory()
            .oidc_sign_in(&OidcUser {
                subject: subject.into(),
                name: name.into(),
                groups: Vec::new(),
                refresh_token: None,
            })
            .map(|p| p.user().to_owned())
    };
    let oidc_accounts = || {
        app.auth
            .users()
            .list(&admin().principal)
            .unwrap()
            .into_iter()
            .filter(|u| u.name != "admin")
            .map(|u| (u.name, u.disabled))
            .collect::<Vec<_>>()
    };

    // The claim's spelling does not matter: ` dana ` is dana.
    assert_eq!(sign_in("sub-1", " dana ").unwrap(), "dana");
    assert_eq!(sign_in("sub-1", "dana").unwrap(), "dana");
    // Renamed at the provider: still the subject's account, not a second one.
    assert_eq!(sign_in("sub-1", "dana.smith").unwrap(), "dana");
    assert_eq!(oidc_accounts(), vec![("dana".to_owned(), false)]);
    // Another subject claiming the name in any spelling is refused.
    for spelling in ["dana", " dana", "dana "] {
        assert!(
            matches!(sign_in("sub-2", spelling), Err(Error::Invalid(_))),
            "{spelling:?}"
        );
    }
    // An administrator disables dana: the subject stays out under every name it claims.
    app.auth
        .users()
        .update(&admin().principal, "dana", Some(true), None)
        .unwrap();
    for name in ["dana", "dana.smith", "someone-new"] {
        assert!(
            matches!(sign_in("sub-1", name), Err(Error::InvalidCredentials)),
            "{name}"
        );
    }
    assert_eq!(oidc_accounts(), vec![("dana".to_owned(), true)]);
    // A local account is never taken over, whatever the claim's spacing.
    app.auth
        .users()
        .create(&admin(), "erin", Some("erin-password-1"), false)
        .unwrap();
    for spelling in ["erin", " erin", "erin "] {
        assert!(
            matches!(sign_in("sub-3", spelling), Err(Error::Invalid(_))),
            "{spelling:?}"
        );
    }
}
