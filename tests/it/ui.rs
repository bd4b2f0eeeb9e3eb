//! The web admin UI, in process: every page, each permission case, sessions and CSRF.
//! (`tests/it/ui_browser.rs` drives the same pages in a real Chromium.)

use crate::common;

use actix_web::test::TestRequest;
use common::{Resp, TestApp, csrf_of, form, set_cookies, ui_login};
use regex::Regex;

/// A logged-in browser: the session cookie and the CSRF token of its forms.
struct Browser<'a> {
    app: &'a TestApp,
    cookie: String,
    csrf: String,
}

fn body(res: &Resp) -> String {
    String::from_utf8_lossy(&res.body).into_owned()
}

/// Logs in through the login form; returns the login response when it fails.
async fn login<'a>(app: &'a TestApp, user: &str, password: &str) -> Result<Browser<'a>, Resp> {
    let (cookie, csrf) = ui_login(app, user, password).await?;
    Ok(Browser { app, cookie, csrf })
}

impl Browser<'_> {
    async fn get(&self, uri: &str) -> Resp {
        self.app
            .send_as(
                TestRequest::get()
                    .uri(uri)
                    .insert_header(("Cookie", self.cookie.as_str())),
            )
            .await
    }

    /// Posts a form with this session's CSRF token.
    async fn post(&self, uri: &str, pairs: &[(&str, &str)]) -> Resp {
        let mut all = pairs.to_vec();
        all.push(("csrf", &self.csrf));
        self.post_raw(uri, &all).await
    }

    async fn post_raw(&self, uri: &str, pairs: &[(&str, &str)]) -> Resp {
        self.app
            .send_as(
                TestRequest::post()
                    .uri(uri)
                    .insert_header(("Cookie", self.cookie.as_str()))
                    .insert_header(("Content-Type", "application/x-www-form-urlencoded"))
                    .set_payload(form(pairs)),
            )
            .await
    }
}

async fn admin(app: &TestApp) -> Browser<'_> {
    login(app, "admin", &app.admin_password.clone())
        .await
        .unwrap_or_else(|r| panic!("admin login failed: {}", body(&r)))
}

/// A user with `role` on feed `library`, logged in.
async fn user_with<'a>(app: &'a TestApp, name: &str, role: &str) -> Browser<'a> {
    let a = admin(app).await;
    let res = a
        .post(
            "/ui/users",
            &[("name", name), ("password", "a-long-enough-password-1")],
        )
        .await;
    assert_eq!(res.status, 303, "{}", body(&res));
    let res = a
        .post(
            "/ui/roles",
            &[
                ("user", name),
                ("feed", "library"),
                ("role", role),
                ("back", "/ui/users"),
            ],
        )
        .await;
    assert_eq!(res.status, 303, "{}", body(&res));
    login(app, name, "a-long-enough-password-1")
        .await
        .unwrap_or_else(|r| panic!("login failed: {}", body(&r)))
}

#[actix_web::test]
async fn the_root_and_every_page_without_a_session_lead_to_the_login() {
    let app = TestApp::new();
    let res = app.send_as(TestRequest::get().uri("/")).await;
    assert_eq!(res.status, 303);
    assert_eq!(res.header("location"), Some("/ui/"));
    for page in [
        "/ui/",
        "/ui/users",
        "/ui/feeds/library",
        "/ui/history?name=library/app",
    ] {
        let res = app.send_as(TestRequest::get().uri(page)).await;
        assert_eq!(res.status, 303, "{page}");
        assert!(
            res.header("location")
                .unwrap()
                .starts_with("/ui/login?next="),
            "{page}"
        );
    }
    let res = app
        .send_as(TestRequest::get().uri("/ui/static/style.css"))
        .await;
    assert_eq!(res.status, 200);
    assert!(res.header("content-type").unwrap().starts_with("text/css"));
    let res = app.send_as(TestRequest::get().uri("/ui/login")).await;
    let csp = res.header("content-security-policy").unwrap();
    assert!(csp.contains("default-src 'self'"), "{csp}");
    let cookie = res.header("set-cookie").unwrap();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
}

#[actix_web::test]
async fn login_hints_at_the_initial_password_until_first_login_and_refuses_bad_ones() {
    let app = TestApp::new();
    let page = body(&app.send_as(TestRequest::get().uri("/ui/login")).await);
    assert!(page.contains("initial-admin-password"), "{page}");
    let refused = login(&app, "admin", "wrong").await.err().unwrap();
    assert_eq!(refused.status, 401);
    // The UI says what it accepts, and keeps the name that was tried.
    assert!(
        body(&refused).contains("Invalid user name or password."),
        "{}",
        body(&refused)
    );
    assert!(!body(&refused).contains("password or API key"));
    assert!(
        body(&refused).contains(r#"name="user" value="admin""#),
        "{}",
        body(&refused)
    );
    // A form from another site (no login cookie) is refused before any password check.
    let res = app
        .send_as(
            TestRequest::post()
                .uri("/ui/login")
                .insert_header(("Content-Type", "application/x-www-form-urlencoded"))
                .set_payload(form(&[
                    ("user", "admin"),
                    ("password", "x"),
                    ("csrf", "00"),
                ])),
        )
        .await;
    assert_eq!(res.status, 403);
    let b = admin(&app).await;
    let page = body(&app.send_as(TestRequest::get().uri("/ui/login")).await);
    assert!(!page.contains("initial-admin-password"), "{page}");
    // Logging out ends the session.
    let res = b.post("/ui/logout", &[]).await;
    assert_eq!(res.status, 303);
    assert_eq!(b.get("/ui/").await.status, 303);
}

#[actix_web::test]
async fn an_admin_sees_every_page_with_its_controls() {
    let app = TestApp::new().versioned("library", &["stable"]);
    let (digest, _) = app.push_image("library/app", "1.2.0", &[b"layer-a"]).await;
    let b = admin(&app).await;
    let manifest_page = format!("/ui/manifest?name=library/app&digest={digest}");
    let pin = format!("docker pull localhost:8080/library/app@{digest}");
    let pages: Vec<(&str, Vec<&str>)> = vec![
        ("/ui/", vec!["library", "Create feed", "1.2.0", "push"]),
        (
            "/ui/feeds/library",
            vec!["app", "docker push", "Settings and roles"],
        ),
        (
            "/ui/feeds/library/settings",
            vec!["Permitted tags", "stable", "Grant"],
        ),
        (
            "/ui/repository?name=library/app",
            vec![
                "Versions",
                "Virtual tags",
                "latest",
                "1.2.0",
                "Promote",
                "Delete",
                "Pin by digest",
                &pin,
            ],
        ),
        (
            &manifest_page,
            vec![
                "Layers",
                "application/vnd.oci.image.manifest.v1+json",
                "Referrers",
            ],
        ),
        (
            "/ui/history?name=library/app&tag=1.2.0",
            vec!["1.2.0", "push", "admin"],
        ),
        (
            "/ui/users",
            vec!["admin", "Create user", "Create API key", "tests"],
        ),
    ];
    for (page, wanted) in pages {
        let res = b.get(page).await;
        assert_eq!(res.status, 200, "{page}: {}", body(&res));
        let html = body(&res);
        for w in wanted {
            assert!(html.contains(w), "{page} lacks {w:?}");
        }
    }
    // A 404 and a 403 are distinct pages.
    let res = b.get("/ui/feeds/nope").await;
    assert_eq!(res.status, 404);
    assert!(body(&res).contains("does not exist"));
    assert_eq!(b.get("/ui/no-such-page").await.status, 404);
}

#[actix_web::test]
async fn a_pull_user_sees_no_buttons_it_cannot_use_and_the_server_refuses_anyway() {
    let app = TestApp::new();
    app.push_image("library/app", "v1", &[b"layer"]).await;
    let b = user_with(&app, "reader", "pull").await;
    let html = body(&b.get("/ui/repository?name=library/app").await);
    assert!(html.contains("v1"));
    for absent in ["Delete", "Promote", "Purge"] {
        assert!(!html.contains(absent), "a pull user sees {absent}");
    }
    let dash = body(&b.get("/ui/").await);
    assert!(!dash.contains("Users &amp; keys") && !dash.contains("Create feed"));
    let feed = body(&b.get("/ui/feeds/library").await);
    assert!(!feed.contains("Settings and roles"));
    for page in ["/ui/feeds/library/settings", "/ui/users"] {
        let res = b.get(page).await;
        assert_eq!(res.status, 403, "{page}");
        assert!(body(&res).contains("Not allowed"));
    }
    let res = b
        .post(
            "/ui/tags/delete",
            &[("repository", "library/app"), ("tag", "v1")],
        )
        .await;
    assert_eq!(res.status, 403);
    let res = b.post("/ui/feeds", &[("name", "sneaky")]).await;
    assert_eq!(res.status, 403);
    assert_eq!(app.get("/v2/library/app/manifests/v1").await.status, 200);
}

#[actix_web::test]
async fn a_form_without_the_csrf_token_is_refused() {
    let app = TestApp::new();
    app.push_image("library/app", "v1", &[b"layer"]).await;
    let b = admin(&app).await;
    for token in [None, Some("0".repeat(64))] {
        let mut pairs = vec![("repository", "library/app"), ("tag", "v1")];
        if let Some(t) = &token {
            pairs.push(("csrf", t));
        }
        let res = b.post_raw("/ui/tags/delete", &pairs).await;
        assert_eq!(res.status, 403, "{token:?}");
        assert!(body(&res).contains("Form refused"));
    }
    assert_eq!(app.get("/v2/library/app/manifests/v1").await.status, 200);
    let res = b
        .post(
            "/ui/tags/delete",
            &[("repository", "library/app"), ("tag", "v1")],
        )
        .await;
    assert_eq!(res.status, 303);
    assert_eq!(app.get("/v2/library/app/manifests/v1").await.status, 404);
}

#[actix_web::test]
async fn settings_preview_shows_what_changes_before_saving() {
    let app = TestApp::new();
    app.push_image("library/app", "1.0.0", &[b"a"]).await;
    app.push_image("library/app", "nightly", &[b"b"]).await;
    let b = admin(&app).await;
    let res = b
        .post(
            "/ui/feeds/library/settings",
            &[("versioning", "on"), ("permitted", ""), ("op", "preview")],
        )
        .await;
    assert_eq!(res.status, 200);
    let html = body(&res);
    assert!(html.contains("library/app:nightly"), "legacy shown: {html}");
    assert!(
        html.contains("library/app:latest → 1.0.0"),
        "virtual shown: {html}"
    );
    assert!(
        !app.registry.feeds().get("library").unwrap().versioning,
        "preview saves nothing"
    );
    let res = b
        .post(
            "/ui/feeds/library/settings",
            &[
                ("versioning", "on"),
                ("permitted", "nightly\nrc-*"),
                ("op", "save"),
            ],
        )
        .await;
    assert_eq!(res.status, 303);
    let feed = app.registry.feeds().get("library").unwrap();
    assert!(feed.versioning);
    assert_eq!(feed.permitted, ["nightly", "rc-*"]);
    let res = b
        .post(
            "/ui/feeds/library/settings",
            &[("permitted", "bad tag!"), ("op", "save")],
        )
        .await;
    assert_eq!(res.status, 400);
    assert!(body(&res).contains("invalid"));
}

#[actix_web::test]
async fn promote_from_the_repository_page_and_find_it_in_the_history() {
    let app = TestApp::new().versioned("prod", &[]);
    let (digest, _) = app.push_image("library/app", "1.0.0-rc.1", &[b"x"]).await;
    let b = admin(&app).await;
    let check = b
        .get(&format!(
            "/ui/check-tag?repository=prod/app&tag=candidate&digest={digest}"
        ))
        .await;
    let verdict: serde_json::Value = serde_json::from_slice(&check.body).unwrap();
    assert_eq!(verdict["ok"], false, "{verdict}");
    let check = b
        .get(&format!(
            "/ui/check-tag?repository=prod/app&tag=1.0.0&digest={digest}"
        ))
        .await;
    let verdict: serde_json::Value = serde_json::from_slice(&check.body).unwrap();
    assert_eq!(verdict["ok"], true, "{verdict}");
    let res = b
        .post(
            "/ui/promote",
            &[
                ("from", "library/app"),
                ("digest", digest.as_str()),
                ("target_feed", "prod"),
                ("target_name", "app"),
                ("target_tag", "1.0.0"),
                ("comment", "release"),
            ],
        )
        .await;
    assert_eq!(res.status, 303, "{}", body(&res));
    assert_eq!(
        res.header("location"),
        Some("/ui/repository?name=prod%2Fapp&done=promoted")
    );
    let history = body(&b.get("/ui/history?name=prod/app&tag=1.0.0").await);
    assert!(
        history.contains("promote") && history.contains("release"),
        "{history}"
    );
    // The promotion is refused with a page when the policy says no.
    let res = b
        .post(
            "/ui/promote",
            &[
                ("from", "library/app"),
                ("digest", digest.as_str()),
                ("target_feed", "prod"),
                ("target_name", "app"),
                ("target_tag", "candidate"),
            ],
        )
        .await;
    assert_eq!(res.status, 400);
    assert!(body(&res).contains("not allowed"));
}

#[actix_web::test]
async fn users_and_keys_created_in_the_ui_show_their_secret_once_and_work() {
    let app = TestApp::new();
    let b = admin(&app).await;
    let res = b
        .post("/ui/users", &[("name", "ci"), ("password", "")])
        .await;
    assert_eq!(res.status, 200);
    let html = body(&res);
    let password = Regex::new(r#"<p class="secret" id="secret">([^<]+)</p>"#)
        .unwrap()
        .captures(&html)
        .unwrap()[1]
        .to_owned();
    assert!(login(&app, "ci", &password).await.is_ok());
    let res = b
        .post(
            "/ui/keys",
            &[
                ("name", "deploy"),
                ("owner", "ci"),
                ("roles", "library=pull"),
            ],
        )
        .await;
    let html = body(&res);
    let key = Regex::new(r"(sdk_[A-Za-z0-9_-]+)")
        .unwrap()
        .captures(&html)
        .unwrap()[1]
        .to_owned();
    let res = app
        .send_as(
            TestRequest::get()
                .uri("/v2/_catalog")
                .insert_header(("Authorization", common::basic("api", &key))),
        )
        .await;
    assert_eq!(res.status, 200);
    // Disabling a user ends its session at once.
    let ci = login(&app, "ci", &password)
        .await
        .unwrap_or_else(|r| panic!("login failed: {}", body(&r)));
    assert_eq!(
        b.post("/ui/users/ci/state", &[("state", "disable")])
            .await
            .status,
        303
    );
    assert_eq!(ci.get("/ui/").await.status, 303);
    assert!(body(&b.get("/ui/users").await).contains("disabled"));
}

#[actix_web::test]
async fn the_feed_page_searches_and_pages_through_many_repositories() {
    let app = TestApp::new();
    for i in 0..60 {
        app.push_blob(&format!("library/svc-{i:03}"), b"x").await;
    }
    app.push_blob("library/other", b"x").await;
    let b = admin(&app).await;
    let first = body(&b.get("/ui/feeds/library").await);
    assert_eq!(first.matches("/ui/repository?name=").count(), 50);
    let next = Regex::new(r#"<a href="(/ui/feeds/library\?q=[^"]+)">Next page"#)
        .unwrap()
        .captures(&first)
        .unwrap_or_else(|| panic!("a next-page link in {}", &first[first.len() - 1500..]))[1]
        .replace("&#38;", "&")
        .replace("&amp;", "&");
    let second = body(&b.get(&next).await);
    assert_eq!(second.matches("/ui/repository?name=").count(), 11);
    assert!(!second.contains("Next page"));
    let found = body(&b.get("/ui/feeds/library?q=SVC-05").await);
    assert_eq!(found.matches("/ui/repository?name=").count(), 10, "{found}");
}

#[actix_web::test]
async fn repeated_failed_logins_in_the_ui_are_rate_limited() {
    let app = TestApp::new();
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(
            login(&app, "admin", "wrong-password")
                .await
                .err()
                .unwrap()
                .status,
        );
    }
    assert_eq!(statuses[..5], [401; 5]);
    assert_eq!(statuses[5], 429);
    let refused = login(&app, "admin", &app.admin_password.clone())
        .await
        .err()
        .unwrap();
    assert_eq!(refused.status, 429, "even the right password waits");
    assert!(body(&refused).contains("too many failed logins"));
}

#[actix_web::test]
async fn a_password_reset_or_a_role_change_ends_the_users_other_sessions() {
    let app = TestApp::new();
    let alice = user_with(&app, "alice", "push").await;
    let bob = user_with(&app, "bob", "pull").await;
    let a = admin(&app).await;
    let other = admin(&app).await;
    assert_eq!(alice.get("/ui/").await.status, 200);
    let res = a.post("/ui/users/alice/password", &[]).await;
    assert_eq!(res.status, 200, "{}", body(&res));
    let res = alice.get("/ui/").await;
    assert_eq!(res.status, 303, "alice's session outlived her password");
    assert!(res.header("location").unwrap().starts_with("/ui/login"));
    // A role removed ends the session too.
    assert_eq!(bob.get("/ui/").await.status, 200);
    app.auth
        .users()
        .grant(&common::admin(), "bob", "library", None)
        .unwrap();
    assert_eq!(bob.get("/ui/").await.status, 303);
    // An administrator resetting their own password keeps the session that did it; their
    // other sessions end.
    let res = a.post("/ui/users/admin/password", &[]).await;
    assert_eq!(res.status, 200, "{}", body(&res));
    assert_eq!(a.get("/ui/").await.status, 200);
    assert_eq!(other.get("/ui/").await.status, 303);
}

#[actix_web::test]
async fn a_login_next_that_cannot_be_a_location_falls_back_to_the_dashboard() {
    let app = TestApp::new();
    for next in [
        "/ui/feeds\r\nSet-Cookie: stolen=1",
        "/ui/\u{7f}",
        "/ui/ space",
        "https://evil.example/ui/",
        "//evil.example/ui/",
    ] {
        let page = app.send_as(TestRequest::get().uri("/ui/login")).await;
        let login_cookie = set_cookies(&page).join("; ");
        let csrf = csrf_of(&body(&page));
        let res = app
            .send_as(
                TestRequest::post()
                    .uri("/ui/login")
                    .insert_header(("Cookie", login_cookie))
                    .insert_header(("Content-Type", "application/x-www-form-urlencoded"))
                    .set_payload(form(&[
                        ("user", "admin"),
                        ("password", &app.admin_password),
                        ("csrf", &csrf),
                        ("next", next),
                    ])),
            )
            .await;
        assert_eq!(res.status, 303, "{next:?}: {}", body(&res));
        assert_eq!(res.header("location"), Some("/ui/"), "{next:?}");
    }
}

#[actix_web::test]
async fn purge_is_offered_on_deleted_versions_only() {
    let app = TestApp::new().versioned("prod", &[]);
    app.push_image("prod/app", "1.0.0", &[b"one"]).await;
    app.push_image("prod/app", "1.1.0", &[b"two"]).await;
    let a = admin(&app).await;
    let page = body(&a.get("/ui/repository?name=prod/app").await);
    assert!(
        !page.contains("/ui/tags/purge"),
        "purge offered on a live version"
    );
    let res = a
        .post(
            "/ui/tags/delete",
            &[("repository", "prod/app"), ("tag", "1.0.0")],
        )
        .await;
    assert_eq!(res.status, 303, "{}", body(&res));
    let page = body(&a.get("/ui/repository?name=prod/app").await);
    assert_eq!(
        page.matches("action=\"/ui/tags/purge\"").count(),
        1,
        "{page}"
    );
    // A purge form posted for the live version anyway is refused with the reason.
    let res = a
        .post(
            "/ui/tags/purge",
            &[("repository", "prod/app"), ("tag", "1.1.0")],
        )
        .await;
    assert_eq!(res.status, 409, "{}", body(&res));
    assert!(body(&res).contains("delete it first"));
}

#[actix_web::test]
async fn every_page_has_an_icon_and_favicon_ico_answers() {
    let app = TestApp::new();
    let res = app.send_as(TestRequest::get().uri("/favicon.ico")).await;
    assert_eq!(res.status, 200);
    assert_eq!(res.header("content-type"), Some("image/svg+xml"));
    assert!(String::from_utf8_lossy(&res.body).starts_with("<svg"));
    let page = body(&app.send_as(TestRequest::get().uri("/ui/login")).await);
    assert!(
        page.contains(r#"rel="icon" href="/ui/static/favicon.svg""#),
        "{page}"
    );
}

#[actix_web::test]
async fn a_missing_repository_or_feed_is_a_404_page_that_names_it() {
    let app = TestApp::new();
    let b = admin(&app).await;
    let res = b.get("/ui/repository?name=library/nope").await;
    assert_eq!(res.status, 404, "{}", body(&res));
    assert!(body(&res).contains("library/nope"), "{}", body(&res));
    let res = b.get("/ui/repository?name=nofeed/app").await;
    assert_eq!(res.status, 404);
    assert!(body(&res).contains("nofeed"), "{}", body(&res));
}

#[actix_web::test]
async fn history_rows_of_virtual_tags_show_the_version_they_follow() {
    let app = TestApp::new().versioned("prod", &[]);
    app.push_image("prod/app", "3.4.0", &[b"one"]).await;
    app.push_image("prod/app", "3.4.1", &[b"two"]).await;
    let b = admin(&app).await;
    let page = body(&b.get("/ui/history?name=prod/app&tag=latest").await);
    assert!(page.contains("→ 3.4.1"), "{page}");
    assert!(page.contains("→ 3.4.0"), "{page}");
    let api = app
        .get("/api/v1/repositories/prod/app/history?tag=3.4")
        .await
        .json();
    let last = api.as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["comment"], "follows 3.4.1");
}

#[actix_web::test]
async fn every_action_returns_to_a_page_that_says_it_worked() {
    let app = TestApp::new().versioned("prod", &[]);
    let (digest, _) = app.push_image("prod/app", "1.0.0", &[b"one"]).await;
    app.push_image("prod/app", "1.1.0", &[b"two"]).await;
    let b = admin(&app).await;
    let follow = |res: &Resp| res.header("location").unwrap().to_owned();
    let res = b
        .post(
            "/ui/promote",
            &[
                ("from", "prod/app"),
                ("digest", digest.as_str()),
                ("target_feed", "prod"),
                ("target_name", "app"),
                ("target_tag", "1.0.1"),
            ],
        )
        .await;
    assert_eq!(res.status, 303, "{}", body(&res));
    assert!(body(&b.get(&follow(&res)).await).contains("Promoted:"));
    let res = b
        .post(
            "/ui/tags/delete",
            &[("repository", "prod/app"), ("tag", "1.0.1")],
        )
        .await;
    assert!(body(&b.get(&follow(&res)).await).contains("Deleted."));
    let res = b
        .post(
            "/ui/tags/purge",
            &[("repository", "prod/app"), ("tag", "1.0.1")],
        )
        .await;
    assert!(body(&b.get(&follow(&res)).await).contains("Purged:"));
    let res = b
        .post(
            "/ui/feeds/prod/settings",
            &[("op", "save"), ("versioning", "on")],
        )
        .await;
    assert!(body(&b.get(&follow(&res)).await).contains("Settings saved."));
    let res = b.post("/ui/feeds", &[("name", "fresh")]).await;
    assert!(body(&b.get(&follow(&res)).await).contains("Feed created."));
    // Only the fixed sentences: nothing from the query reaches the page.
    let page = body(&b.get("/ui/?done=%3Cscript%3Ealert(1)%3C/script%3E").await);
    assert!(!page.contains("<script>alert"), "{page}");
    assert!(!page.contains(r#"id="done""#));
}

#[actix_web::test]
async fn the_last_administrator_cannot_disable_themselves_and_the_page_says_why() {
    let app = TestApp::new();
    let a = admin(&app).await;
    let res = a
        .post("/ui/users/admin/state", &[("state", "disable")])
        .await;
    assert_eq!(res.status, 409, "{}", body(&res));
    assert!(
        body(&res).contains(
            "admin is the last enabled administrator: make another user an administrator first"
        ),
        "{}",
        body(&res)
    );
    assert_eq!(a.get("/ui/users").await.status, 200, "still logged in");
    // With a second administrator, the first may step down.
    let res = a
        .post(
            "/ui/users",
            &[
                ("name", "root2"),
                ("password", "a-long-enough-password-2"),
                ("admin", "on"),
            ],
        )
        .await;
    assert_eq!(res.status, 303, "{}", body(&res));
    let res = a
        .post("/ui/users/admin/state", &[("state", "disable")])
        .await;
    assert_eq!(res.status, 303, "{}", body(&res));
    assert_eq!(a.get("/ui/").await.status, 303, "a disabled admin is out");
}

#[actix_web::test]
async fn a_user_changes_their_own_password_in_the_ui() {
    let app = TestApp::new();
    let initial_file = app.dir.path().join("initial-admin-password");
    assert!(initial_file.exists());
    let a = admin(&app).await;
    let other = admin(&app).await;
    let dashboard = body(&a.get("/ui/").await);
    assert!(
        dashboard.contains(r#"<a href="/ui/password" id="change-password">Change password</a>"#),
        "the bar links the page: {dashboard}"
    );
    let page = a.get("/ui/password").await;
    assert_eq!(page.status, 200);
    let html = body(&page);
    for field in [
        r#"name="current""#,
        r#"name="password""#,
        r#"name="repeat""#,
    ] {
        assert!(html.contains(field), "{field}: {html}");
    }
    assert_eq!(csrf_of(&html), a.csrf, "the form carries the CSRF token");
    let new = "my-own-chosen-password";
    let current = app.admin_password.clone();
    let current = current.as_str();
    let change = async |current, password, repeat| {
        a.post(
            "/ui/password",
            &[
                ("current", current),
                ("password", password),
                ("repeat", repeat),
            ],
        )
        .await
    };
    // Without the token, with a wrong current password, or two different new ones: refused.
    let res = a
        .post_raw(
            "/ui/password",
            &[("current", current), ("password", new), ("repeat", new)],
        )
        .await;
    assert_eq!(res.status, 403);
    let res = change("not-my-password", new, new).await;
    assert_eq!(res.status, 400);
    assert!(
        body(&res).contains("The current password is not right"),
        "{}",
        body(&res)
    );
    let res = change(current, new, "my-own-chosen-passwort").await;
    assert_eq!(res.status, 400);
    assert!(body(&res).contains("The two new passwords differ"));
    let res = change(current, "short", "short").await;
    assert_eq!(res.status, 400);
    assert!(
        body(&res).contains("at least 8 characters"),
        "{}",
        body(&res)
    );
    assert!(initial_file.exists(), "nothing changed yet");

    let res = change(current, new, new).await;
    assert_eq!(res.status, 303, "{}", body(&res));
    assert_eq!(res.header("location"), Some("/ui/password?done=password"));
    assert!(
        body(&a.get("/ui/password?done=password").await).contains("Password changed."),
        "this session stays and says so"
    );
    assert_eq!(other.get("/ui/").await.status, 303, "other sessions end");
    assert!(!initial_file.exists(), "the initial password file is gone");
    assert!(login(&app, "admin", current).await.is_err());
    assert!(login(&app, "admin", new).await.is_ok());
}

#[actix_web::test]
async fn the_users_page_says_utc_once_per_time() {
    let app = TestApp::new();
    let a = admin(&app).await;
    let html = body(&a.get("/ui/users").await);
    assert!(
        html.contains(" UTC<"),
        "the last login is shown in UTC: {html}"
    );
    assert!(!html.contains("UTC UTC"), "{html}");
}

#[actix_web::test]
async fn feed_settings_show_versioning_first_and_fold_the_connector_of_a_plain_feed() {
    let app = TestApp::new();
    let a = admin(&app).await;
    let html = body(&a.get("/ui/feeds/library/settings").await);
    let versioning = html.find(r#"id="versioning""#).unwrap();
    let preview = html.find(r#"value="preview""#).unwrap();
    let connector = html
        .find(r#"<details id="connector" class="connector">"#)
        .unwrap_or_else(|| panic!("a plain feed's connector settings are folded: {html}"));
    assert!(versioning < connector && connector < preview);
    // Typing an upstream (and previewing it) shows them open; so does a connector feed.
    let res = a
        .post(
            "/ui/feeds/library/settings",
            &[
                ("upstream_url", "https://registry.example.com"),
                ("op", "preview"),
            ],
        )
        .await;
    assert_eq!(res.status, 200, "{}", body(&res));
    assert!(
        body(&res).contains(r#"<details id="connector" class="connector" open>"#),
        "{}",
        body(&res)
    );
}

/// Signs `repo@digest` with `key` as cosign does (its tag form); the signature PUT's answer.
async fn cosign_sign(
    app: &TestApp,
    key: &p256::ecdsa::SigningKey,
    repo: &str,
    digest: &str,
) -> Resp {
    use base64::Engine as _;
    use signature::Signer as _;
    let payload = semdock::domain::trust::cosign::payload_for(&format!("localhost/{repo}"), digest);
    let sig: p256::ecdsa::Signature = key.sign(&payload);
    let sig = base64::engine::general_purpose::STANDARD.encode(sig.to_der().as_bytes());
    let payload_digest = app.push_blob(repo, &payload).await;
    let config = app.push_blob(repo, b"{}").await;
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": common::OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config.as_str(), "size": 2},
        "layers": [{"mediaType": "application/vnd.dev.cosign.simplesigning.v1+json",
            "digest": payload_digest.as_str(), "size": payload.len(),
            "annotations": {"dev.cosignproject.cosign/signature": sig}}],
    });
    let tag = format!("{}.sig", digest.replacen(':', "-", 1));
    app.put_manifest(
        repo,
        &tag,
        common::OCI_MANIFEST,
        &serde_json::to_vec(&manifest).unwrap(),
    )
    .await
}

#[actix_web::test]
async fn the_settings_preview_says_where_latest_would_follow_under_a_signature_policy() {
    use p256::pkcs8::EncodePublicKey as _;
    let app = TestApp::new().versioned("library", &["sha256-*.sig"]);
    let key = p256::ecdsa::SigningKey::from_slice(&[6; 32]).unwrap();
    let pem = key
        .verifying_key()
        .to_public_key_pem(p256::pkcs8::LineEnding::LF)
        .unwrap();
    app.registry.trust().add_key("ci", &pem, "admin").unwrap();
    let (signed, _) = app.push_image("library/app", "1.0.0", &[b"signed"]).await;
    app.push_image("library/app", "2.0.0", &[b"not signed"])
        .await;
    assert_eq!(
        cosign_sign(&app, &key, "library/app", signed.as_str())
            .await
            .status,
        201
    );
    let b = admin(&app).await;
    let res = b
        .post(
            "/ui/feeds/library/settings",
            &[
                ("versioning", "on"),
                ("permitted", "sha256-*.sig"),
                ("signature_keys", "ci"),
                ("signature_on_promotion", "on"),
                ("op", "preview"),
            ],
        )
        .await;
    assert_eq!(res.status, 200, "{}", body(&res));
    let html = body(&res);
    assert!(
        html.contains("Images will need a signature by ci on promotion into library."),
        "{html}"
    );
    assert!(
        html.contains("library/app:latest would follow 1.0.0 (it follows 2.0.0 now)."),
        "{html}"
    );
    // A preview saves nothing.
    assert!(app.registry.trust().policy("library").unwrap().is_none());
}

#[actix_web::test]
async fn a_feed_administrator_requires_signatures_and_the_manifest_page_says_what_verified() {
    use p256::pkcs8::EncodePublicKey as _;
    let app = TestApp::new();
    let key = p256::ecdsa::SigningKey::from_slice(&[5; 32]).unwrap();
    let pem = key
        .verifying_key()
        .to_public_key_pem(p256::pkcs8::LineEnding::LF)
        .unwrap();
    let (digest, _) = app.push_image("library/app", "1.0.0", &[b"signed"]).await;
    let b = admin(&app).await;

    // The administrator trusts the key on the Trust page; a private key is refused there.
    let res = b
        .post(
            "/ui/trust",
            &[
                ("name", "leaked"),
                (
                    "pem",
                    "-----BEGIN PRIVATE KEY-----\nAA==\n-----END PRIVATE KEY-----",
                ),
            ],
        )
        .await;
    assert_eq!(res.status, 400);
    assert!(body(&res).contains("private key"), "{}", body(&res));
    let res = b.post("/ui/trust", &[("name", "ci"), ("pem", &pem)]).await;
    assert_eq!(res.status, 303, "{}", body(&res));
    let html = body(&b.get(res.header("location").unwrap()).await);
    assert!(html.contains("Key trusted"), "{html}");
    assert!(html.contains("ecdsa-p256"), "{html}");

    // The policy is set in the settings form, and shown there again.
    let res = b
        .post(
            "/ui/feeds/library/settings",
            &[
                ("signature_keys", "ci"),
                ("signature_on_promotion", "on"),
                ("op", "save"),
            ],
        )
        .await;
    assert_eq!(res.status, 303, "{}", body(&res));
    let policy = app.registry.trust().policy("library").unwrap().unwrap();
    assert_eq!(
        (policy.keys, policy.on_push),
        (vec!["ci".to_owned()], false)
    );
    let html = body(&b.get("/ui/feeds/library/settings").await);
    assert!(
        html.contains(r#"name="signature_keys" value="ci""#),
        "{html}"
    );

    // Unsigned, the manifest page says so; signed as cosign does, it names the key.
    let page = format!("/ui/manifest?name=library/app&digest={digest}");
    let html = body(&b.get(&page).await);
    assert!(html.contains("Not verified"), "{html}");
    assert!(html.contains("requires a signature by ci"), "{html}");
    let res = cosign_sign(&app, &key, "library/app", digest.as_str()).await;
    assert_eq!(res.status, 201);
    let html = body(&b.get(&page).await);
    assert!(html.contains("Verified"), "{html}");
    assert!(html.contains("Signed by ci."), "{html}");
    assert!(html.contains("verifies with key ci"), "{html}");

    // Emptying the keys removes the policy.
    let res = b
        .post(
            "/ui/feeds/library/settings",
            &[("signature_keys", ""), ("op", "save")],
        )
        .await;
    assert_eq!(res.status, 303);
    assert!(app.registry.trust().policy("library").unwrap().is_none());

    // Removed, the key verifies nothing more.
    let res = b.post("/ui/trust/ci/remove", &[]).await;
    assert_eq!(res.status, 303);
    assert!(body(&b.get(res.header("location").unwrap()).await).contains("No trusted keys."));
    assert!(body(&b.get(&page).await).contains("Not verified"));
}

#[actix_web::test]
async fn an_administrator_trusts_a_sigstore_root_and_a_feed_requires_an_identity_on_pull() {
    let app = TestApp::new();
    let b = admin(&app).await;
    let root = common::sigstore::TestSigstore::new()
        .trusted_root()
        .to_string();
    let res = b
        .post(
            "/ui/trust/roots",
            &[("name", "ci-sigstore"), ("json", "{}")],
        )
        .await;
    assert_eq!(res.status, 400);
    assert!(
        body(&res).contains("not a Sigstore TrustedRoot"),
        "{}",
        body(&res)
    );
    let res = b
        .post(
            "/ui/trust/roots",
            &[("name", "ci-sigstore"), ("json", &root)],
        )
        .await;
    assert_eq!(res.status, 303, "{}", body(&res));
    let html = body(&b.get(res.header("location").unwrap()).await);
    assert!(html.contains("Trusted root added"), "{html}");
    assert!(
        html.contains("<td>ci-sigstore</td><td>1</td><td>1</td><td>1</td>"),
        "{html}"
    );

    // An identity per line, and the pull gate, in the feed's settings.
    let issuer = "https://token.actions.githubusercontent.com";
    let subject = "https://github.com/acme/web/.github/workflows/release.yml@refs/tags/*";
    let res = b
        .post(
            "/ui/feeds/library/settings",
            &[("signature_identities", "not-an-identity"), ("op", "save")],
        )
        .await;
    assert_eq!(res.status, 400);
    assert!(body(&res).contains("is not an identity"), "{}", body(&res));
    let res = b
        .post(
            "/ui/feeds/library/settings",
            &[
                ("signature_identities", &format!("{issuer} {subject}")),
                (
                    "signature_attestations",
                    "https://slsa.dev/provenance/v1 source_repository=https://github.com/acme/web",
                ),
                ("signature_on_promotion", "on"),
                ("signature_on_pull", "warn"),
                ("op", "save"),
            ],
        )
        .await;
    assert_eq!(res.status, 303, "{}", body(&res));
    let policy = app.registry.trust().policy("library").unwrap().unwrap();
    assert_eq!(policy.identities[0].subject, subject);
    assert_eq!(
        policy.attestations[0].matches["source_repository"],
        "https://github.com/acme/web"
    );
    assert_eq!(policy.on_pull, Some(semdock::domain::trust::PullGate::Warn));
    let html = body(&b.get("/ui/feeds/library/settings").await);
    assert!(
        html.contains(&format!("{issuer} {subject}</textarea>")),
        "{html}"
    );
    assert!(html.contains(r#"<option value="warn" selected>"#), "{html}");
    assert!(
        html.contains("https://slsa.dev/provenance/v1 source_repository=https://github.com/acme/web</textarea>"),
        "{html}"
    );

    // Removed, the root is gone from the page.
    let res = b.post("/ui/trust/roots/ci-sigstore/remove", &[]).await;
    assert_eq!(res.status, 303);
    assert!(body(&b.get(res.header("location").unwrap()).await).contains("No trusted roots."));
}

#[actix_web::test]
async fn an_administrator_turns_read_only_mode_on_and_off_and_every_page_says_it() {
    let app = TestApp::new().with_feed("library");
    let a = admin(&app).await;
    let dash = body(&a.get("/ui/").await);
    assert!(dash.contains(r#"id="read-only-on""#), "{dash}");
    assert!(!dash.contains(r#"id="read-only""#));

    let res = a
        .post(
            "/ui/maintenance",
            &[("read_only", "on"), ("reason", "upgrade to 2.0")],
        )
        .await;
    assert_eq!(res.status, 303, "{}", body(&res));
    assert_eq!(res.header("location"), Some("/ui/?done=read-only-on"));
    let page = body(&a.get("/ui/feeds/library").await);
    assert!(page.contains(r#"id="read-only""#), "{page}");
    assert!(
        page.contains("(turned on by admin): upgrade to 2.0"),
        "{page}"
    );
    assert!(
        page.contains(r#"id="read-only-off""#),
        "an administrator may turn it off"
    );

    // A change through the UI is refused with a page, and nothing changes.
    let refused = a
        .post("/ui/feeds", &[("name", "staging"), ("description", "")])
        .await;
    assert_eq!(refused.status, 503);
    assert!(
        body(&refused).contains("read-only (upgrade to 2.0)"),
        "{}",
        body(&refused)
    );
    assert_eq!(a.get("/ui/feeds/staging").await.status, 404);
    // So is one through the API and one through the registry API, each in its own shape.
    let api = app
        .send(
            TestRequest::post()
                .uri("/api/v1/feeds")
                .insert_header(("Content-Type", "application/json"))
                .set_payload(r#"{"name":"staging"}"#),
        )
        .await;
    assert_eq!(api.status, 503);
    assert_eq!(api.json()["error"]["code"], "read_only", "{}", body(&api));
    assert_eq!(api.header("retry-after"), Some("60"));
    let oci = app
        .send(TestRequest::post().uri("/v2/library/app/blobs/uploads/"))
        .await;
    assert_eq!(oci.status, 503);
    assert_eq!(oci.error_code(), "UNAVAILABLE");
    assert_eq!(oci.header("retry-after"), Some("60"));
    // Reading goes on.
    assert_eq!(
        app.send(TestRequest::get().uri("/v2/_catalog"))
            .await
            .status,
        200
    );

    let res = a.post("/ui/maintenance", &[("read_only", "off")]).await;
    assert_eq!(res.status, 303, "{}", body(&res));
    let dash = body(&a.get("/ui/").await);
    assert!(!dash.contains(r#"id="read-only""#), "{dash}");
    let res = a
        .post("/ui/feeds", &[("name", "staging"), ("description", "")])
        .await;
    assert_eq!(res.status, 303, "{}", body(&res));
    let audit = app
        .send(TestRequest::get().uri("/api/v1/audit?kind=read-only-on"))
        .await;
    assert!(
        body(&audit).contains("read-only mode on: upgrade to 2.0"),
        "{}",
        body(&audit)
    );
}

#[actix_web::test]
async fn only_an_administrator_may_turn_read_only_mode_on() {
    let app = TestApp::new().with_feed("library");
    let u = user_with(&app, "carol", "admin").await;
    let res = u.post("/ui/maintenance", &[("read_only", "on")]).await;
    assert_eq!(res.status, 403, "{}", body(&res));
    let mode = app
        .send(TestRequest::get().uri("/api/v1/maintenance"))
        .await;
    assert_eq!(mode.json()["read_only"], false);
}

#[actix_web::test]
async fn a_feed_administrator_manages_her_feeds_robots_in_the_ui() {
    let app = TestApp::new().with_feed("library").with_feed("other");
    let boss = user_with(&app, "boss", "admin").await;
    let settings = body(&boss.get("/ui/feeds/library/settings").await);
    assert!(
        settings.contains(r#"href="/ui/robots?feed=library""#),
        "{settings}"
    );
    let res = boss
        .post(
            "/ui/robots",
            &[
                ("feed", "library"),
                ("name", "ci"),
                ("roles", "library=push"),
                ("description", "pipeline"),
            ],
        )
        .await;
    assert_eq!(res.status, 200, "{}", body(&res));
    let page = body(&res);
    let secret = Regex::new(r#"<p class="secret" id="secret">([^<]+)</p>"#)
        .unwrap()
        .captures(&page)
        .unwrap()[1]
        .to_owned();
    assert!(secret.starts_with("sdr_"), "{page}");
    assert!(
        page.contains(r#"href="/ui/robots?feed=library""#),
        "back to the robots: {page}"
    );
    let robot_basic = common::basic("robot$library+ci", &secret);
    let catalog = app
        .send_as(
            TestRequest::get()
                .uri("/v2/_catalog")
                .insert_header(("Authorization", robot_basic.as_str())),
        )
        .await;
    assert_eq!(catalog.status, 200);

    let list = body(&boss.get("/ui/robots?feed=library").await);
    assert!(
        list.contains("robot$library+ci") && list.contains("library=push"),
        "{list}"
    );
    // The feed's settings list the robot's role under its own name, not its record key.
    let settings = body(&boss.get("/ui/feeds/library/settings").await);
    assert!(
        settings.contains("robot$library+ci <span class=\"muted\">(robot)</span>"),
        "{settings}"
    );
    assert!(!settings.contains("robot:robot$"), "{settings}");
    assert!(list.contains("pipeline"));
    // Her reach ends at her feed.
    assert_eq!(boss.get("/ui/robots").await.status, 403);
    assert_eq!(boss.get("/ui/robots?feed=other").await.status, 403);
    let res = boss
        .post("/ui/robots", &[("feed", "other"), ("name", "x")])
        .await;
    assert_eq!(res.status, 403, "{}", body(&res));

    let res = boss
        .post(
            "/ui/robots/action",
            &[("name", "robot$library+ci"), ("action", "disable")],
        )
        .await;
    assert_eq!(res.status, 303, "{}", body(&res));
    let refused = app
        .send_as(
            TestRequest::get()
                .uri("/v2/_catalog")
                .insert_header(("Authorization", robot_basic.as_str())),
        )
        .await;
    assert_eq!(refused.status, 401, "a disabled robot is refused");
    assert!(body(&boss.get("/ui/robots?feed=library").await).contains(">disabled<"));
    let res = boss
        .post(
            "/ui/robots/action",
            &[("name", "robot$library+ci"), ("action", "delete")],
        )
        .await;
    assert_eq!(res.status, 303);
    assert!(!body(&boss.get("/ui/robots?feed=library").await).contains("robot$library+ci"));
}

#[actix_web::test]
async fn the_search_box_finds_names_tags_digests_and_annotations_the_viewer_may_pull() {
    let app = TestApp::new().with_feed("library").with_feed("secret");
    let (digest, _) = app
        .push_image("library/web-api", "1.0.7", &[b"search layer"])
        .await;
    app.push_image("secret/web-internal", "1.0.7", &[b"hidden layer"])
        .await;
    let reader = user_with(&app, "reader", "pull").await;
    let dash = body(&reader.get("/ui/").await);
    assert!(dash.contains(r#"id="bar-search""#), "the bar holds the box");

    for (query, expect) in [
        ("web", "library/web-api"),
        ("api", "library/web-api"),
        ("1.0.", "library/web-api"),
        (
            &digest.as_str()["sha256:".len().."sha256:".len() + 10],
            "library/web-api",
        ),
    ] {
        let page = body(
            &reader
                .get(&format!(
                    "/ui/search?q={}",
                    form_urlencoded::byte_serialize(query.as_bytes()).collect::<String>()
                ))
                .await,
        );
        assert!(page.contains(expect), "{query}: {page}");
        assert!(
            !page.contains("secret/web-internal"),
            "{query}: a feed she may not pull"
        );
    }
    let res = app
        .send(TestRequest::get().uri("/api/v1/search?q=web"))
        .await;
    let hits = res.json();
    let repos: Vec<&str> = hits
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["repository"].as_str().unwrap())
        .collect();
    assert!(
        repos.contains(&"secret/web-internal") && repos.contains(&"library/web-api"),
        "{hits}"
    );
}

#[actix_web::test]
async fn an_administrator_sets_a_feeds_quota_and_its_page_shows_the_usage() {
    let app = TestApp::new().with_feed("library");
    app.push_image("library/app", "1.0.0", &[b"quota layer"])
        .await;
    let a = admin(&app).await;
    let page = body(&a.get("/ui/feeds/library/settings").await);
    assert!(page.contains("(no quota)"), "{page}");
    let res = a.post("/ui/feeds/library/quota", &[("gib", "2")]).await;
    assert_eq!(res.status, 303, "{}", body(&res));
    let page = body(&a.get("/ui/feeds/library/settings").await);
    assert!(page.contains("of a quota of 2.00 GiB"), "{page}");
    assert!(page.contains("<progress"), "{page}");
    let boss = user_with(&app, "boss", "admin").await;
    let res = boss
        .post("/ui/feeds/library/quota", &[("gib", "200")])
        .await;
    assert_eq!(
        res.status, 403,
        "a feed's administrator cannot raise her own quota"
    );
}
