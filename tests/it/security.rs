//! The holes of the security review, each held by a test that failed before its fix: what a
//! leaked token, a stranger, a full disk or a changed file could do (docs/SECURITY.md).

use crate::common;

use std::collections::BTreeMap;
use std::net::SocketAddr;

use actix_web::test::TestRequest;
use common::{OCI_MANIFEST, Resp, Server, TestApp, admin, basic};
use semdock::domain::auth::{Caller, Principal, Via};
use semdock::model::Digest;
use serde_json::{Value, json};

fn from(addr: &str) -> SocketAddr {
    format!("{addr}:40000").parse().unwrap()
}

/// A user with `role` on `feed`; returns its password.
fn user(app: &TestApp, name: &str, feed: &str, role: Option<&str>) -> String {
    let password = format!("{name}-password");
    app.auth
        .users()
        .create(&admin(), name, Some(&password), false)
        .unwrap();
    if role.is_some() {
        app.auth.users().grant(&admin(), name, feed, role).unwrap();
    }
    password
}

/// An API key of `owner` with `role` on `feed`: (id, key).
fn key(app: &TestApp, owner: &str, feed: &str, role: &str) -> (String, String) {
    let actor = Caller {
        principal: Principal::User {
            name: owner.into(),
            admin: false,
        },
        via: Via::Password,
    };
    let roles = BTreeMap::from([(feed.to_owned(), role.to_owned())]);
    let k = app
        .auth
        .keys()
        .create(&actor, None, "ci", &roles, false, None)
        .unwrap();
    (k.id, k.key)
}

async fn token(app: &TestApp, credentials: &str, scope: Option<&str>) -> String {
    let uri = match scope {
        Some(scope) => format!("/v2/_auth?service=semdock-test&scope={scope}"),
        None => "/v2/_auth?service=semdock-test".to_owned(),
    };
    let res = app
        .send_as(
            TestRequest::get()
                .uri(&uri)
                .insert_header(("Authorization", credentials)),
        )
        .await;
    assert_eq!(res.status, 200, "{}", String::from_utf8_lossy(&res.body));
    res.json()["token"].as_str().unwrap().to_owned()
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

async fn api_as(app: &TestApp, auth: &str, method: &str, path: &str, body: Option<Value>) -> Resp {
    let req = match method {
        "GET" => TestRequest::get(),
        "POST" => TestRequest::post(),
        "PUT" => TestRequest::put(),
        "PATCH" => TestRequest::patch(),
        "DELETE" => TestRequest::delete(),
        other => panic!("{other}"),
    }
    .uri(&format!("/api/v1{path}"))
    .insert_header(("Authorization", auth));
    let req = match body {
        Some(b) => req.set_json(b),
        None => req,
    };
    app.send_as(req).await
}

async fn login_from(app: &TestApp, addr: &str, user: &str, secret: &str) -> u16 {
    app.send_as(
        TestRequest::get()
            .uri("/v2/")
            .peer_addr(from(addr))
            .insert_header(("Authorization", basic(user, secret))),
    )
    .await
    .status
}

// 1. A registry token is not a login on the management API.
#[actix_web::test]
async fn a_registry_token_is_refused_by_the_management_api_whatever_its_scope() {
    let app = TestApp::new();
    let admin_basic = basic("admin", &app.admin_password);
    let scoped = token(&app, &admin_basic, Some("repository:library/app:pull")).await;
    let unscoped = token(&app, &admin_basic, None).await;
    for (t, scoped) in [(scoped, true), (unscoped, false)] {
        let auth = bearer(&t);
        let res = api_as(
            &app,
            &auth,
            "POST",
            "/keys",
            Some(json!({"name": "stolen", "admin": true})),
        )
        .await;
        assert_eq!(
            res.status,
            401,
            "a token minted a key: {}",
            String::from_utf8_lossy(&res.body)
        );
        assert!(
            res.json()["error"]["message"]
                .as_str()
                .unwrap()
                .contains("Distribution API")
        );
        let res = api_as(
            &app,
            &auth,
            "POST",
            "/users",
            Some(json!({"name": "mallory", "admin": true})),
        )
        .await;
        assert_eq!(res.status, 401);
        let res = api_as(
            &app,
            &auth,
            "PUT",
            "/users/admin/password",
            Some(json!({"password": "taken-over-1"})),
        )
        .await;
        assert_eq!(res.status, 401);
        // The scoped token still does what it is for.
        let res = app
            .send_as(
                TestRequest::get()
                    .uri("/v2/library/app/tags/list")
                    .insert_header(("Authorization", auth.as_str())),
            )
            .await;
        assert_eq!(res.status != 401, scoped);
    }
    // The password itself still works on the API.
    let res = api_as(
        &app,
        &admin_basic,
        "POST",
        "/keys",
        Some(json!({"name": "mine"})),
    )
    .await;
    assert_eq!(res.status, 201);
}

// 2. Failed logins of a stranger lock out nobody else.
#[actix_web::test]
async fn bad_api_key_logins_do_not_lock_out_valid_keys() {
    let app = TestApp::new();
    user(&app, "ci", "library", Some("push"));
    let (id, good) = key(&app, "ci", "library", "push");
    for _ in 0..10 {
        let status = login_from(&app, "10.0.0.66", "api", "sdk_0123456789abcdef_nosuchkey").await;
        assert!(matches!(status, 401 | 429), "{status}");
        let status = login_from(&app, "10.0.0.66", "api", &format!("sdk_{id}_wrongsecret")).await;
        assert!(matches!(status, 401 | 429), "{status}");
    }
    // The attacker's address is refused now, whatever it sends.
    assert_eq!(login_from(&app, "10.0.0.66", "api", &good).await, 429);
    // The key works from everywhere else, as api:KEY, owner:KEY and X-ApiKey.
    assert_eq!(login_from(&app, "10.0.0.7", "api", &good).await, 200);
    assert_eq!(login_from(&app, "10.0.0.7", "ci", &good).await, 200);
    let res = app
        .send_as(
            TestRequest::get()
                .uri("/api/v1/feeds")
                .peer_addr(from("10.0.0.8"))
                .insert_header(("X-ApiKey", good.as_str())),
        )
        .await;
    assert_eq!(res.status, 200);
}

#[actix_web::test]
async fn wrong_passwords_lock_out_the_address_that_sent_them_not_the_user() {
    let app = TestApp::new();
    let password = user(&app, "alice", "library", Some("pull"));
    for _ in 0..6 {
        login_from(&app, "10.1.0.1", "alice", "wrong-password").await;
    }
    let refused = app
        .send_as(
            TestRequest::get()
                .uri("/v2/")
                .peer_addr(from("10.1.0.1"))
                .insert_header(("Authorization", basic("alice", &password))),
        )
        .await;
    assert_eq!(
        (refused.status, refused.error_code().as_str()),
        (429, "TOOMANYREQUESTS")
    );
    assert!(refused.header("retry-after").is_some());
    // Alice at her own desk is not refused.
    assert_eq!(login_from(&app, "10.1.0.2", "alice", &password).await, 200);
    // Brute force from many addresses stays expensive: once the account has many failures,
    // an address that fails once is refused for it too.
    assert_eq!(login_from(&app, "10.1.0.3", "alice", "guess-1").await, 401);
    assert_eq!(login_from(&app, "10.1.0.3", "alice", &password).await, 429);
    // ... and still not a clean address.
    assert_eq!(login_from(&app, "10.1.0.4", "alice", &password).await, 200);
}

// 3. Nothing a client uploads is served as active content.
#[actix_web::test]
async fn a_manifest_with_an_active_media_type_is_refused() {
    let app = TestApp::new();
    let (_, body) = app.image("library/xss", &[b"layer"]).await;
    let text = String::from_utf8(body).unwrap();
    for active in [
        "text/html",
        "application/javascript",
        "image/svg+xml",
        "application/xhtml+xml",
    ] {
        let evil = text.replace(OCI_MANIFEST, active);
        let res = app
            .put_manifest("library/xss", "1", active, evil.as_bytes())
            .await;
        assert_eq!(
            (res.status, res.error_code().as_str()),
            (400, "MANIFEST_INVALID"),
            "{active}"
        );
        assert!(
            res.error_message().contains("not a manifest media type"),
            "{}",
            res.error_message()
        );
        let res = app.get("/v2/library/xss/manifests/1").await;
        assert_eq!(res.status, 404, "{active} was stored");
    }
}

#[actix_web::test]
async fn every_v2_and_api_response_is_inert_content() {
    let app = TestApp::new();
    let (digest, _) = app.push_image("library/app", "1", &[b"bytes"]).await;
    let layer = Digest::of(b"bytes");
    for uri in [
        "/v2/".to_owned(),
        "/v2/library/app/manifests/1".to_owned(),
        format!("/v2/library/app/manifests/{digest}"),
        format!("/v2/library/app/blobs/{layer}"),
        "/v2/library/app/tags/list".to_owned(),
        "/v2/library/nope/manifests/1".to_owned(),
        "/v2/no/such/endpoint".to_owned(),
        "/api/v1/feeds".to_owned(),
        "/api/v1/nope".to_owned(),
        "/metrics".to_owned(),
    ] {
        let res = app.get(&uri).await;
        assert_eq!(
            res.header("x-content-type-options"),
            Some("nosniff"),
            "{uri}"
        );
        assert_eq!(
            res.header("content-security-policy"),
            Some("default-src 'none'; sandbox"),
            "{uri}"
        );
    }
    let blob = app.get(&format!("/v2/library/app/blobs/{layer}")).await;
    assert_eq!(
        blob.header("content-type"),
        Some("application/octet-stream")
    );
}

// 5. A key acts within its own roles: managing keys and passwords needs the account.
#[actix_web::test]
async fn a_pull_key_cannot_list_create_or_revoke_keys_or_change_the_password() {
    let app = TestApp::new();
    let password = user(&app, "bob", "library", Some("push"));
    let (_, pull_key) = key(&app, "bob", "library", "pull");
    let (other_id, _) = key(&app, "bob", "library", "push");
    let as_key = basic("api", &pull_key);
    assert_eq!(
        api_as(&app, &as_key, "GET", "/keys", None).await.status,
        403
    );
    assert_eq!(
        api_as(
            &app,
            &as_key,
            "POST",
            "/keys",
            Some(json!({"name": "more"}))
        )
        .await
        .status,
        403
    );
    assert_eq!(
        api_as(&app, &as_key, "DELETE", &format!("/keys/{other_id}"), None)
            .await
            .status,
        403
    );
    let res = api_as(
        &app,
        &as_key,
        "PUT",
        "/users/bob/password",
        Some(json!({"password": "new-password-1"})),
    )
    .await;
    assert_eq!(res.status, 403);
    // With the password, bob manages his keys; his other key is still there.
    let with_password = basic("bob", &password);
    let res = api_as(&app, &with_password, "GET", "/keys", None).await;
    assert_eq!(res.status, 200);
    assert_eq!(res.json().as_array().unwrap().len(), 2);
    assert_eq!(
        api_as(
            &app,
            &with_password,
            "DELETE",
            &format!("/keys/{other_id}"),
            None
        )
        .await
        .status,
        204
    );
    // An administrator's key carries that right explicitly.
    assert_eq!(app.get("/api/v1/keys").await.status, 200);
}

// 6. Only administrators give or take a feed's admin role.
#[actix_web::test]
async fn a_feed_admin_cannot_grant_or_remove_the_admin_role() {
    let app = TestApp::new();
    let carol = basic("carol", &user(&app, "carol", "library", Some("admin")));
    user(&app, "dave", "library", None);
    user(&app, "erin", "library", Some("admin"));
    let res = api_as(
        &app,
        &carol,
        "PUT",
        "/users/dave/roles/library",
        Some(json!({"role": "admin"})),
    )
    .await;
    assert_eq!(res.status, 403, "{}", String::from_utf8_lossy(&res.body));
    assert!(
        res.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("only administrators")
    );
    assert_eq!(
        api_as(&app, &carol, "DELETE", "/users/erin/roles/library", None)
            .await
            .status,
        403
    );
    let res = api_as(
        &app,
        &carol,
        "PUT",
        "/users/erin/roles/library",
        Some(json!({"role": "pull"})),
    )
    .await;
    assert_eq!(res.status, 403, "a feed admin demoted another feed admin");
    // The roles below admin are the feed admin's to give.
    let res = api_as(
        &app,
        &carol,
        "PUT",
        "/users/dave/roles/library",
        Some(json!({"role": "push"})),
    )
    .await;
    assert_eq!(res.status, 204);
    let res = app
        .send(
            TestRequest::put()
                .uri("/api/v1/users/dave/roles/library")
                .set_json(json!({"role": "admin"})),
        )
        .await;
    assert_eq!(res.status, 204, "an administrator may");
}

// 7. A password or role change ends the account's tokens.
#[actix_web::test]
async fn a_password_change_or_a_removed_role_voids_existing_tokens() {
    let app = TestApp::new();
    let password = user(&app, "alice", "library", Some("push"));
    let scope = Some("repository:library/app:pull,push");
    let list = |t: String| {
        TestRequest::get()
            .uri("/v2/library/app/tags/list")
            .insert_header(("Authorization", bearer(&t)))
    };
    let t = token(&app, &basic("alice", &password), scope).await;
    assert_ne!(app.send_as(list(t.clone())).await.status, 401);
    let res = api_as(
        &app,
        &basic("alice", &password),
        "PUT",
        "/users/alice/password",
        Some(json!({"password": "changed-password"})),
    )
    .await;
    assert_eq!(res.status, 204);
    let res = app.send_as(list(t)).await;
    assert_eq!(
        res.status, 401,
        "a token from before the password change still works"
    );
    assert!(
        res.error_message().contains("log in again"),
        "{}",
        res.error_message()
    );

    let t = token(&app, &basic("alice", "changed-password"), scope).await;
    assert_ne!(app.send_as(list(t.clone())).await.status, 401);
    let res = app
        .send(TestRequest::delete().uri("/api/v1/users/alice/roles/library"))
        .await;
    assert_eq!(res.status, 204);
    assert_eq!(
        app.send_as(list(t)).await.status,
        401,
        "a token outlived the role"
    );
}

// 8. Forwarded headers count only from configured proxies; header values are validated.
#[actix_web::test]
async fn the_token_realm_ignores_forwarded_headers_from_strangers_and_never_copies_a_quote() {
    let mut app = TestApp::new();
    let realm = |res: &Resp| {
        res.header("www-authenticate")
            .unwrap_or_default()
            .to_owned()
    };
    let res = app
        .send_as(
            TestRequest::get()
                .uri("/v2/")
                .peer_addr(from("192.0.2.10"))
                .insert_header(("Host", "registry.local:5000"))
                .insert_header(("X-Forwarded-Host", "evil.example"))
                .insert_header(("X-Forwarded-Proto", "https"))
                .insert_header(("Forwarded", "host=evil.example;proto=https")),
        )
        .await;
    assert!(
        realm(&res).starts_with("Bearer realm=\"http://registry.local:5000/v2/_auth\""),
        "{}",
        realm(&res)
    );
    let res = app
        .send_as(
            TestRequest::get()
                .uri("/v2/")
                .insert_header(("Host", "a\",error=\"x")),
        )
        .await;
    assert_eq!(res.status, 401);
    assert!(!realm(&res).contains("error=\"x"), "{}", realm(&res));
    assert_eq!(realm(&res).matches('"').count(), 4, "{}", realm(&res));

    app.realm.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    let res = app
        .send_as(
            TestRequest::get()
                .uri("/v2/")
                .peer_addr(from("127.0.0.1"))
                .insert_header(("Host", "10.0.0.1:5000"))
                .insert_header(("X-Forwarded-Host", "registry.example.com"))
                .insert_header(("X-Forwarded-Proto", "https")),
        )
        .await;
    assert!(
        realm(&res).starts_with("Bearer realm=\"https://registry.example.com/v2/_auth\""),
        "{}",
        realm(&res)
    );

    // Behind the trusted proxy, failures count against the forwarded client address.
    let password = user(&app, "alice", "library", Some("pull"));
    let via_proxy = |client: &str, secret: &str| {
        TestRequest::get()
            .uri("/v2/")
            .peer_addr(from("127.0.0.1"))
            .insert_header(("X-Forwarded-For", format!("{client}, 127.0.0.1")))
            .insert_header(("Authorization", basic("alice", secret)))
    };
    for _ in 0..6 {
        app.send_as(via_proxy("203.0.113.9", "wrong-password"))
            .await;
    }
    assert_eq!(
        app.send_as(via_proxy("203.0.113.9", &password))
            .await
            .status,
        429
    );
    assert_eq!(
        app.send_as(via_proxy("203.0.113.10", &password))
            .await
            .status,
        200
    );
    // A stranger's X-Forwarded-For is ignored: its failures count against itself.
    for _ in 0..6 {
        app.send_as(
            TestRequest::get()
                .uri("/v2/")
                .peer_addr(from("198.51.100.1"))
                .insert_header(("X-Forwarded-For", "203.0.113.77"))
                .insert_header(("Authorization", basic("alice", "wrong-password"))),
        )
        .await;
    }
    assert_eq!(
        app.send_as(via_proxy("203.0.113.77", &password))
            .await
            .status,
        200
    );
}

// 10. Upload sessions are bounded per account; empty ones expire soon.
#[actix_web::test]
async fn upload_sessions_are_limited_per_account() {
    let app = TestApp::new();
    let limit = common::LIMITS.upload_sessions;
    let mut locations = Vec::new();
    for _ in 0..limit {
        let res = app
            .send(TestRequest::post().uri("/v2/library/app/blobs/uploads/"))
            .await;
        assert_eq!(res.status, 202);
        locations.push(res.header("location").unwrap().to_owned());
    }
    let res = app
        .send(TestRequest::post().uri("/v2/library/app/blobs/uploads/"))
        .await;
    assert_eq!(
        (res.status, res.error_code().as_str()),
        (429, "TOOMANYREQUESTS")
    );
    assert!(
        res.error_message().contains("upload sessions open"),
        "{}",
        res.error_message()
    );
    assert!(res.header("retry-after").is_some());
    // Another account is not affected.
    let other = user(&app, "pusher", "library", Some("push"));
    let res = app
        .send_as(
            TestRequest::post()
                .uri("/v2/library/app/blobs/uploads/")
                .insert_header(("Authorization", basic("pusher", &other))),
        )
        .await;
    assert_eq!(res.status, 202);
    // Cancelling one frees its place.
    let res = app
        .send(TestRequest::delete().uri(&locations.pop().unwrap()))
        .await;
    assert_eq!(res.status, 204);
    let res = app
        .send(TestRequest::post().uri("/v2/library/app/blobs/uploads/"))
        .await;
    assert_eq!(res.status, 202);
}

#[actix_web::test]
async fn upload_sessions_that_never_got_a_byte_expire_first() {
    let app = TestApp::new();
    let empty = app
        .send(TestRequest::post().uri("/v2/library/app/blobs/uploads/"))
        .await;
    let started = app
        .send(TestRequest::post().uri("/v2/library/app/blobs/uploads/"))
        .await;
    let (empty, started) = (
        empty.header("location").unwrap().to_owned(),
        started.header("location").unwrap().to_owned(),
    );
    let res = app
        .send(
            TestRequest::patch()
                .uri(&started)
                .insert_header(("Content-Range", "0-2"))
                .set_payload(&b"abc"[..]),
        )
        .await;
    assert_eq!(res.status, 202);
    app.registry
        .clock()
        .advance(std::time::Duration::from_millis(1100));
    let mut opts = semdock::config::Config::default().gc_options(false);
    opts.empty_upload_expiry = std::time::Duration::ZERO;
    assert_eq!(app.registry.maintenance().expire_uploads(opts).unwrap(), 1);
    assert_eq!(app.send(TestRequest::get().uri(&empty)).await.status, 404);
    assert_eq!(app.send(TestRequest::get().uri(&started)).await.status, 204);
}

// 15. Purge frees a tombstone; a live version only with a confirmation naming it.
#[actix_web::test]
async fn purging_a_live_version_needs_a_confirmation_naming_it() {
    let app = TestApp::new().versioned("prod", &[]);
    app.push_image("prod/app", "1.0.0", &[b"one"]).await;
    let purge = "/api/v1/repositories/prod/app/tags/1.0.0/purge";
    let res = app.send(TestRequest::post().uri(purge)).await;
    assert_eq!(res.status, 409, "{}", String::from_utf8_lossy(&res.body));
    assert!(
        res.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("delete it first")
    );
    assert_eq!(app.get("/v2/prod/app/manifests/1.0.0").await.status, 200);
    let res = app
        .send(
            TestRequest::post()
                .uri(purge)
                .set_json(json!({"confirm": "1.0.1"})),
        )
        .await;
    assert_eq!(res.status, 409, "a confirmation naming another version");
    let res = app
        .send(
            TestRequest::post()
                .uri(purge)
                .set_json(json!({"confirm": "1.0.0"})),
        )
        .await;
    assert_eq!(res.status, 204);
    let history = app
        .get("/api/v1/repositories/prod/app/history?tag=1.0.0")
        .await
        .json();
    let methods: Vec<&str> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["method"].as_str().unwrap())
        .collect();
    assert_eq!(methods, ["push", "delete", "purge"]);
}

// 14. Backups are independent copies, verified; a damaged blob does not sink a restore.
#[actix_web::test]
async fn a_backup_survives_damage_to_the_live_store_and_a_restore_skips_only_damaged_blobs() {
    use std::os::unix::fs::MetadataExt as _;
    let app = TestApp::new();
    app.push_image("library/app", "1", &[b"first layer"]).await;
    app.push_image("library/app", "2", &[b"second layer"]).await;
    let first = Digest::of(b"first layer");
    let second = Digest::of(b"second layer");
    let backups = tempfile::tempdir().unwrap();
    let backup = backups.path().join("b1");
    app.registry
        .maintenance()
        .backup(&backup, &|_, _, _| {})
        .unwrap();
    let blob_in = |dir: &std::path::Path, d: &Digest| {
        dir.join("blobs/sha256").join(&d.hex()[..2]).join(d.hex())
    };
    let live = blob_in(app.dir.path(), &first);
    let copy = blob_in(&backup, &first);
    assert_ne!(
        std::fs::metadata(&live).unwrap().ino(),
        std::fs::metadata(&copy).unwrap().ino(),
        "hard-linked"
    );
    // A flipped byte in the live store is not in the backup.
    flip_first_byte(&live);
    assert_eq!(std::fs::read(&copy).unwrap(), b"first layer");
    // A flipped byte in the backup: the restore restores everything else and names it.
    flip_first_byte(&blob_in(&backup, &second));
    let restored = backups.path().join("restored");
    let report =
        semdock::domain::maintenance::backup::restore(&backup, &restored, &|_, _, _| {}).unwrap();
    assert_eq!(report.damaged, [second.to_string()]);
    assert_eq!(
        std::fs::read(blob_in(&restored, &first)).unwrap(),
        b"first layer"
    );
    assert!(!blob_in(&restored, &second).exists());
    // A backup taken now leaves the damaged live blob out, names it and sets it aside.
    let backup2 = backups.path().join("b2");
    let report = app
        .registry
        .maintenance()
        .backup(&backup2, &|_, _, _| {})
        .unwrap();
    assert_eq!(report.damaged, [first.to_string()]);
    assert!(!live.exists());
    assert_eq!(
        app.get(&format!("/v2/library/app/blobs/{first}"))
            .await
            .status,
        404
    );
}

fn flip_first_byte(path: &std::path::Path) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[0] ^= 0xff;
    std::fs::write(path, bytes).unwrap();
}

// 11. A changed blob file is never delivered whole under its old digest.
#[test]
fn a_blob_changed_on_disk_is_cut_short_and_set_aside() {
    use std::io::Read as _;
    let s = Server::start();
    let bytes: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let digest = Digest::of(&bytes);
    let res = s
        .http()
        .post(s.url(&format!("/v2/library/rot/blobs/uploads/?digest={digest}")))
        .send(&bytes[..])
        .unwrap();
    assert_eq!(res.status(), 201);
    let path = s
        .data_dir
        .join("blobs/sha256")
        .join(&digest.hex()[..2])
        .join(digest.hex());
    let mut rotten = std::fs::read(&path).unwrap();
    rotten[2_999_000] ^= 0x01;
    std::fs::write(&path, rotten).unwrap();
    let mut res = s
        .http()
        .get(s.url(&format!("/v2/library/rot/blobs/{digest}")))
        .call()
        .unwrap();
    assert_eq!(res.status(), 200);
    let mut got = Vec::new();
    let read = res.body_mut().as_reader().read_to_end(&mut got);
    assert!(
        read.is_err() || got.len() < bytes.len(),
        "a complete wrong blob was delivered"
    );
    assert!(got.len() < bytes.len());
    let mut aside = path.clone().into_os_string();
    aside.push(".corrupted");
    assert!(std::path::Path::new(&aside).exists(), "not set aside");
    let res = s
        .http()
        .get(s.url(&format!("/v2/library/rot/blobs/{digest}")))
        .call()
        .unwrap();
    assert_eq!(res.status(), 404);
    assert!(s.log().contains("does not hash to its digest"));
    // A range read does not hash and is served (the client checks what it assembles).
}

// 12 and 13. The data directory is private; the initial password is only in its file.
#[test]
fn the_data_directory_and_backups_are_private_and_the_initial_password_is_never_logged() {
    use std::os::unix::fs::PermissionsExt as _;
    // SAFETY: umask only sets this process's file creation mask; nextest runs each test in
    // a process of its own, and the server started below inherits it.
    unsafe { libc::umask(0) };
    let s = Server::start();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&s.data_dir), 0o700);
    assert_eq!(mode(&s.data_dir.join("meta.redb")), 0o600);
    assert_eq!(mode(&s.data_dir.join("initial-admin-password")), 0o600);
    let bytes = b"private layer";
    let digest = Digest::of(bytes);
    let res = s
        .http()
        .post(s.url(&format!("/v2/library/p/blobs/uploads/?digest={digest}")))
        .send(&bytes[..])
        .unwrap();
    assert_eq!(res.status(), 201);
    let blob = s
        .data_dir
        .join("blobs/sha256")
        .join(&digest.hex()[..2])
        .join(digest.hex());
    assert_eq!(mode(&blob), 0o600);
    assert_eq!(mode(blob.parent().unwrap()), 0o700);
    let backups = tempfile::tempdir().unwrap();
    let dir = backups.path().join("b");
    let res = s
        .http()
        .post(s.url("/api/v1/backup"))
        .content_type("application/json")
        .send(json!({"dir": dir.display().to_string()}).to_string())
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&dir.join("meta.redb")), 0o600);
    assert_eq!(mode(&dir.join("semdock-backup.json")), 0o600);
    let copy = dir
        .join("blobs/sha256")
        .join(&digest.hex()[..2])
        .join(digest.hex());
    assert_eq!(mode(&copy), 0o600);

    let log = s.log();
    assert!(log.contains("initial-admin-password"), "{log}");
    assert!(
        !log.contains(&s.admin_password),
        "the initial password is in the log"
    );
    let res = s
        .http()
        .put(s.url("/api/v1/users/admin/password"))
        .content_type("application/json")
        .send(json!({"password": "the-new-admin-password"}).to_string())
        .unwrap();
    assert_eq!(res.status(), 204);
    assert!(
        !s.data_dir.join("initial-admin-password").exists(),
        "the file outlived the password"
    );
}

#[actix_web::test]
async fn a_login_key_carries_its_owners_roles_and_may_revoke_itself() {
    let app = TestApp::new();
    let password = user(&app, "carol", "library", Some("push"));
    let res = api_as(
        &app,
        &basic("carol", &password),
        "POST",
        "/keys",
        Some(json!({"name": "cli", "admin": true, "owner_roles": true})),
    )
    .await;
    assert_eq!(res.status, 201);
    let (id, key) = (
        res.json()["id"].as_str().unwrap().to_owned(),
        res.json()["key"].as_str().unwrap().to_owned(),
    );
    let push = app
        .send_as(
            TestRequest::post()
                .uri("/v2/library/app/blobs/uploads/")
                .insert_header(("Authorization", basic("api", &key))),
        )
        .await;
    assert_eq!(push.status, 202, "the key lacks its owner's push role");
    // Not an administrator's key although it asked: carol is none.
    assert_eq!(
        api_as(&app, &basic("api", &key), "GET", "/users", None)
            .await
            .status,
        403
    );
    // It may not revoke others, but itself.
    let (other, _) = key_of(&app, "carol");
    assert_eq!(
        api_as(
            &app,
            &basic("api", &key),
            "DELETE",
            &format!("/keys/{other}"),
            None
        )
        .await
        .status,
        403
    );
    assert_eq!(
        api_as(
            &app,
            &basic("api", &key),
            "DELETE",
            &format!("/keys/{id}"),
            None
        )
        .await
        .status,
        204
    );
    assert_eq!(login_from(&app, "10.9.0.1", "api", &key).await, 401);
}

fn key_of(app: &TestApp, owner: &str) -> (String, String) {
    key(app, owner, "library", "pull")
}

// Issue 30, 6. Deleting a feed ends every right that named it: a token issued before the
// delete grants nothing in a new feed of the same name, and no grant or key role carries over.
#[test]
fn a_token_or_a_role_on_a_deleted_feed_grants_nothing_in_a_new_feed_of_its_name() {
    let s = Server::start();
    let admin = s.http();
    let send = |method: &str, path: &str, body: Option<Value>| -> u16 {
        let req = ureq::http::Request::builder()
            .method(method)
            .uri(s.url(path))
            .header("Content-Type", "application/json")
            .body(body.map(|b| b.to_string()).unwrap_or_default())
            .unwrap();
        admin.run(req).unwrap().status().as_u16()
    };
    assert_eq!(
        send("POST", "/api/v1/feeds", Some(json!({"name": "team"}))),
        201
    );
    let body = json!({"name": "bob", "password": "bob-password-1"});
    assert_eq!(send("POST", "/api/v1/users", Some(body)), 201);
    let role = Some(json!({"role": "push"}));
    assert_eq!(send("PUT", "/api/v1/users/bob/roles/team", role), 204);
    let bob = common::http_as(Some(basic("bob", "bob-password-1")));
    let mut res = bob
        .get(s.url("/v2/_auth?service=semdock&scope=repository:team/app:pull,push"))
        .call()
        .unwrap();
    assert_eq!(res.status(), 200);
    let token: Value = serde_json::from_str(&res.body_mut().read_to_string().unwrap()).unwrap();
    let token = token["token"].as_str().unwrap().to_owned();
    let with_token = common::http_as(Some(bearer(&token)));
    let start_upload = |agent: &ureq::Agent| {
        agent
            .post(s.url("/v2/team/app/blobs/uploads/"))
            .send_empty()
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(start_upload(&with_token), 202, "the token pushes to team");

    assert_eq!(send("DELETE", "/api/v1/feeds/team", None), 204);
    assert_eq!(
        send("POST", "/api/v1/feeds", Some(json!({"name": "team"}))),
        201
    );
    let status = start_upload(&with_token);
    assert!(
        status == 401 || status == 403,
        "a push token of the deleted feed pushes to the new one: {status}"
    );
    assert_eq!(start_upload(&bob), 403, "bob's role carried over");

    // Rights given in the new feed work as usual.
    let role = Some(json!({"role": "push"}));
    assert_eq!(send("PUT", "/api/v1/users/bob/roles/team", role), 204);
    let mut res = bob
        .get(s.url("/v2/_auth?service=semdock&scope=repository:team/app:pull,push"))
        .call()
        .unwrap();
    let token: Value = serde_json::from_str(&res.body_mut().read_to_string().unwrap()).unwrap();
    let fresh = common::http_as(Some(bearer(token["token"].as_str().unwrap())));
    assert_eq!(start_upload(&fresh), 202);
}
