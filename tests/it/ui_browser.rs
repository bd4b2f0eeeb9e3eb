//! The web admin UI in a real headless Chromium (Debian's `chromium` and `chromium-driver`,
//! which scripts/test installs), driven over `WebDriver`: an administrator's first day and a
//! `pull` user's view. Screenshots of each page go to `target/ui-screenshots/`.

use crate::common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Server, image_context, run};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

/// chromedriver on a port it was given, stopped by its PID at the end.
struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver is installed (scripts/test installs chromium-driver)");
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while common::http().get(format!("{url}/status")).call().is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        Self { child, url }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn browser(driver: &Driver, profile: &std::path::Path) -> Client {
    let caps = json!({
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run", "--disable-quic",
                format!("--user-data-dir={}", profile.display()),
                "--window-size=1280,900",
            ],
        },
    });
    let serde_json::Value::Object(caps) = caps else {
        unreachable!()
    };
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("Chromium starts under chromedriver")
}

fn shots() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/ui-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn shot(c: &Client, name: &str) {
    let png = c.screenshot().await.unwrap();
    std::fs::write(shots().join(format!("{name}.png")), png).unwrap();
}

async fn text(c: &Client) -> String {
    c.find(Locator::Css("main"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The page's text, or empty while the browser is between pages.
async fn text_soon(c: &Client) -> String {
    match c.find(Locator::Css("main")).await {
        Ok(main) => main.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

async fn fill(c: &Client, css: &str, value: &str) {
    let field = c.find(Locator::Css(css)).await.unwrap();
    field.clear().await.unwrap();
    field.send_keys(value).await.unwrap();
}

async fn log_in(c: &Client, base: &str, user: &str, password: &str) {
    c.goto(&format!("{base}/ui/")).await.unwrap();
    assert!(
        c.current_url()
            .await
            .unwrap()
            .path()
            .starts_with("/ui/login")
    );
    fill(c, "#user", user).await;
    fill(c, "#password", password).await;
    c.find(Locator::Css("form[action='/ui/login'] button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    // The login page has an h1 too: wait for the browser to leave it, not for an h1.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while c
        .current_url()
        .await
        .unwrap()
        .path()
        .starts_with("/ui/login")
        && std::time::Instant::now() < deadline
    {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    c.wait().for_element(Locator::Css("h1")).await.unwrap();
    assert_eq!(c.current_url().await.unwrap().path(), "/ui/");
}

/// Presses Log out, and checks that the session is over.
async fn log_out(c: &Client, base: &str) {
    c.find(Locator::Css("form[action='/ui/logout'] button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait().for_element(Locator::Css("h1")).await.unwrap();
    c.goto(&format!("{base}/ui/")).await.unwrap();
    assert!(
        c.current_url()
            .await
            .unwrap()
            .path()
            .starts_with("/ui/login"),
        "the session outlived its logout"
    );
}

/// Whether the page is wider than the window (a layout that breaks on a phone).
/// Presses the form button of value `op` and waits for `then` on the page that follows.
/// The page before is waited out first: `then` may be on it already (a second press of the
/// same form), and reading it while the next one loads finds stale elements.
async fn press(c: &Client, op: &str, then: &str) {
    click_and_wait(c, &format!("button[value={op}]"), then).await;
}

/// Clicks the element `css` and waits for the page it loads to show `then`.
async fn click_and_wait(c: &Client, css: &str, then: &str) {
    let before = c.find(Locator::Css("html")).await.unwrap();
    c.find(Locator::Css(css))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while before.tag_name().await.is_ok() {
        assert!(Instant::now() < deadline, "clicking {css} loaded no page");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    c.wait().for_element(Locator::Css(then)).await.unwrap();
}

async fn overflows(c: &Client) -> bool {
    c.execute(
        "return document.documentElement.scrollWidth > window.innerWidth + 1;",
        vec![],
    )
    .await
    .unwrap()
        == json!(true)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::too_many_lines)]
async fn an_administrators_first_day_and_a_pull_users_view_in_chromium() {
    let server = Server::start();
    let base = server.url("");
    let driver = Driver::start();
    let profile = tempfile::tempdir().unwrap();
    let c = browser(&driver, profile.path()).await;

    // The login page points at the initial password; log in with it.
    c.goto(&format!("{base}/ui/login")).await.unwrap();
    assert!(text(&c).await.contains("initial-admin-password"));
    shot(&c, "01-login").await;
    log_in(&c, &base, "admin", &server.admin_password).await;
    shot(&c, "02-dashboard").await;

    // Create a feed, switch versioning on with a permitted tag, preview, save.
    fill(&c, "#feed-name", "rel").await;
    fill(&c, "#feed-description", "released images").await;
    c.find(Locator::XPath("//button[text()='Create feed']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait()
        .for_element(Locator::Css("#permitted"))
        .await
        .unwrap();
    assert_eq!(
        c.current_url().await.unwrap().path(),
        "/ui/feeds/rel/settings"
    );
    c.find(Locator::Css("#versioning"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    fill(&c, "#permitted", "stable").await;
    press(&c, "preview", "#preview").await;
    assert!(
        text(&c)
            .await
            .contains("Nothing is saved until you press Save")
    );
    press(&c, "save", ".notice.ok").await;
    shot(&c, "03-feed-settings").await;
    let res = server
        .http()
        .get(server.url("/api/v1/feeds/rel"))
        .call()
        .unwrap();
    let feed: serde_json::Value =
        serde_json::from_str(&res.into_body().read_to_string().unwrap()).unwrap();
    assert_eq!(feed["versioning"], true);
    assert_eq!(feed["permitted"], json!(["stable"]));

    // Push an image with docker; it shows on the repository page.
    server.docker_login();
    let image = format!("{}/rel/app:1.0.0", server.host());
    let ctx = image_context(1, "ui");
    run(server
        .docker()
        .args(["build", "--no-cache", "-q", "-t", &image])
        .arg(ctx.path()));
    run(server.docker().args(["push", "-q", &image]));
    let _ = server.docker().args(["rmi", "-f", &image]).output();
    c.goto(&format!("{base}/ui/feeds/rel")).await.unwrap();
    assert!(text(&c).await.contains("docker push"));
    shot(&c, "04-feed").await;
    c.find(Locator::LinkText("app"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait().for_element(Locator::Css("h2")).await.unwrap();
    let page = text(&c).await;
    assert!(page.contains("1.0.0") && page.contains("latest"), "{page}");
    shot(&c, "05-repository").await;

    // Promote it into library as 1.0.0; the form checks the target's policy as one types.
    c.find(Locator::Css("details summary"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let form = c.find(Locator::Css("form[data-check-tag]")).await.unwrap();
    form.find(Locator::Css("select[name=target_feed]"))
        .await
        .unwrap()
        .select_by_value("library")
        .await
        .unwrap();
    let tag = form
        .find(Locator::Css("input[name=target_tag]"))
        .await
        .unwrap();
    tag.send_keys("1.0.0").await.unwrap();
    c.wait()
        .for_element(Locator::Css(".check-msg.good"))
        .await
        .unwrap();
    // The form has a row of its own, as wide as the table, not the Actions column.
    let (_, _, form_width, _) = form.rectangle().await.unwrap();
    let (_, _, table_width, _) = c
        .find(Locator::Css("table"))
        .await
        .unwrap()
        .rectangle()
        .await
        .unwrap();
    assert!(
        form_width > table_width * 0.6,
        "form {form_width} px in a {table_width} px table"
    );
    shot(&c, "05a-promote-form").await;
    form.find(Locator::Css("input[name=comment]"))
        .await
        .unwrap()
        .send_keys("go live")
        .await
        .unwrap();
    form.find(Locator::Css("button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait().for_element(Locator::Css("h2")).await.unwrap();
    let url = c.current_url().await.unwrap();
    assert_eq!(url.query(), Some("name=library%2Fapp&done=promoted"));
    assert!(text(&c).await.contains("1.0.0"));
    // The page the promotion returns to says it worked.
    let done = c
        .find(Locator::Css("#done"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(done.starts_with("Promoted"), "{done}");
    shot(&c, "05b-promoted").await;

    // The history says who promoted what.
    c.find(Locator::LinkText("Tag history"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait().for_element(Locator::Css("table")).await.unwrap();
    let history = text(&c).await;
    assert!(
        history.contains("promote") && history.contains("go live"),
        "{history}"
    );
    shot(&c, "06-history").await;
    c.goto(&format!("{base}/ui/repository?name=rel%2Fapp"))
        .await
        .unwrap();
    c.find(Locator::Css("td a.mono"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait().for_element(Locator::Css("h1")).await.unwrap();
    assert!(text(&c).await.contains("Layers"));
    shot(&c, "07-manifest").await;
    c.goto(&format!("{base}/ui/users")).await.unwrap();
    shot(&c, "08-users").await;

    // A form POST without the CSRF token, from the page itself with its cookie, is refused.
    let status = c
        .execute_async(
            "const done = arguments[0];
             fetch('/ui/tags/delete', {method: 'POST', body: new URLSearchParams({repository: 'rel/app', tag: '1.0.0'})})
               .then(r => done(r.status));",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(status, json!(403));

    // At 390 pixels wide the pages still fit.
    c.set_window_size(390, 844).await.unwrap();
    for (name, path) in [
        ("09-narrow-dashboard", "/ui/"),
        ("10-narrow-repository", "/ui/repository?name=rel%2Fapp"),
        ("11-narrow-history", "/ui/history?name=library%2Fapp"),
    ] {
        c.goto(&format!("{base}{path}")).await.unwrap();
        assert!(!overflows(&c).await, "{path} is wider than 390 px");
        shot(&c, name).await;
    }
    c.set_window_size(1280, 900).await.unwrap();

    // A pull user sees the image but no admin controls.
    let res = server
        .http()
        .post(server.url("/api/v1/users"))
        .content_type("application/json")
        .send(r#"{"name":"viewer","password":"viewer-password-123"}"#)
        .unwrap();
    assert_eq!(res.status(), 201);
    let res = server
        .http()
        .put(server.url("/api/v1/users/viewer/roles/rel"))
        .content_type("application/json")
        .send(r#"{"role":"pull"}"#)
        .unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    c.find(Locator::Css("header form button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait().for_element(Locator::Css("#user")).await.unwrap();
    log_in(&c, &base, "viewer", "viewer-password-123").await;
    c.goto(&format!("{base}/ui/repository?name=rel%2Fapp"))
        .await
        .unwrap();
    assert!(text(&c).await.contains("1.0.0"));
    for control in [
        "form[action='/ui/promote']",
        "form[action='/ui/tags/delete']",
        "form[action='/ui/tags/purge']",
    ] {
        assert!(
            c.find_all(Locator::Css(control)).await.unwrap().is_empty(),
            "{control}"
        );
    }
    assert!(
        c.find_all(Locator::LinkText("Users & keys"))
            .await
            .unwrap()
            .is_empty()
    );
    shot(&c, "12-pull-user-repository").await;
    c.goto(&format!("{base}/ui/feeds/rel/settings"))
        .await
        .unwrap();
    assert!(text(&c).await.contains("Not allowed"));
    shot(&c, "13-pull-user-forbidden").await;
    c.close().await.unwrap();
}

/// Sends the open promote form of the repository page to `feed`:`tag`.
async fn promote_from_form(c: &Client, feed: &str, tag: &str) {
    let form = c.find(Locator::Css("form[data-check-tag]")).await.unwrap();
    form.find(Locator::Css("select[name=target_feed]"))
        .await
        .unwrap()
        .select_by_value(feed)
        .await
        .unwrap();
    form.find(Locator::Css("input[name=target_tag]"))
        .await
        .unwrap()
        .send_keys(tag)
        .await
        .unwrap();
    form.find(Locator::Css("button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

/// A release manager's day in Chromium: prod made promotion-only (with the preview's
/// sentence), a promotion from a page whose tag was moved since refused naming both digests
/// and then made from a fresh page, a webhook added (its secret shown once), and the audit
/// log filtered to the promotion.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::too_many_lines)]
async fn a_release_managers_promotion_rules_webhooks_and_audit_in_chromium() {
    let server = Server::start();
    let base = server.url("");
    let admin = server.http();
    let res = admin
        .post(&server.url("/api/v1/feeds"))
        .header("Content-Type", "application/json")
        .send(r#"{"name": "staging"}"#)
        .unwrap();
    assert_eq!(res.status(), 201);
    let push = |layer: &[u8]| {
        let (digest, body) = common::push_image_over_http(&admin, &base, "staging/web", layer);
        let res = admin
            .put(&server.url("/v2/staging/web/manifests/5.1.0"))
            .header("Content-Type", common::OCI_MANIFEST)
            .send(&body[..])
            .unwrap();
        assert_eq!(res.status(), 201);
        digest
    };
    let tested = push(b"tested");
    let driver = Driver::start();
    let profile = tempfile::tempdir().unwrap();
    let c = browser(&driver, profile.path()).await;
    log_in(&c, &base, "admin", &server.admin_password).await;

    c.goto(&format!("{base}/ui/feeds/prod/settings"))
        .await
        .unwrap();
    fill(&c, "#promotion_sources", "staging").await;
    press(&c, "preview", "#preview").await;
    let preview = text(&c).await;
    assert!(
        preview.contains(
            "Pushes of tags to prod will be refused: images enter only by promotion from staging."
        ),
        "{preview}"
    );
    press(&c, "save", ".notice.ok").await;
    shot(&c, "20-promotion-only").await;

    // The page shows the tested digest; the tag moves before the form is sent.
    c.goto(&format!("{base}/ui/repository?name=staging%2Fweb"))
        .await
        .unwrap();
    c.find(Locator::Css("details summary"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let moved = push(b"moved behind the release's back");
    let expected = c
        .find(Locator::Css("form[data-check-tag] input[name=digest]"))
        .await
        .unwrap()
        .prop("value")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        expected, tested,
        "the form carries the digest the page showed"
    );
    promote_from_form(&c, "prod", "5.1.0").await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while c.current_url().await.unwrap().path() != "/ui/promote" {
        assert!(Instant::now() < deadline, "the form was not sent");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    c.wait().for_element(Locator::Css("h1")).await.unwrap();
    let refused = text(&c).await;
    assert!(
        refused.contains(&tested) && refused.contains(&moved),
        "{refused}"
    );
    shot(&c, "21-promotion-refused").await;

    // A fresh page promotes what it shows.
    c.goto(&format!("{base}/ui/repository?name=staging%2Fweb"))
        .await
        .unwrap();
    c.find(Locator::Css("details summary"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    promote_from_form(&c, "prod", "5.1.0").await;
    c.wait()
        .for_element(Locator::Css(".notice.ok"))
        .await
        .unwrap();
    assert_eq!(c.current_url().await.unwrap().path(), "/ui/repository");

    // A webhook for promotions; its secret is on the page once.
    c.find(Locator::LinkText("Webhooks"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait()
        .for_element(Locator::Css("#hook-url"))
        .await
        .unwrap();
    fill(&c, "#hook-url", "http://127.0.0.1:9/hook").await;
    c.find(Locator::Css("input[name=event][value=Promoted]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.find(Locator::XPath("//button[text()='Add webhook']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !text_soon(&c).await.contains("signing secret of webhook") {
        assert!(Instant::now() < deadline, "no secret page");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    shot(&c, "22-webhook-secret").await;
    c.goto(&format!("{base}/ui/webhooks")).await.unwrap();
    let hooks = text(&c).await;
    assert!(
        hooks.contains("http://127.0.0.1:9/hook") && hooks.contains("Promoted"),
        "{hooks}"
    );
    shot(&c, "23-webhooks").await;

    // The audit log, filtered to promotions.
    c.find(Locator::LinkText("Audit"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait().for_element(Locator::Css("#audit")).await.unwrap();
    c.find(Locator::Css("#audit-kind"))
        .await
        .unwrap()
        .select_by_value("promoted")
        .await
        .unwrap();
    c.find(Locator::Css("#audit-filter button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !c
        .current_url()
        .await
        .unwrap()
        .query()
        .is_some_and(|q| q.contains("kind=promoted"))
    {
        assert!(Instant::now() < deadline, "the filter was not applied");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    c.wait().for_element(Locator::Css("#audit")).await.unwrap();
    let rows = c.find_all(Locator::Css("#audit tbody tr")).await.unwrap();
    assert_eq!(rows.len(), 1, "one promotion");
    let row = rows[0].text().await.unwrap();
    assert!(
        row.contains("promoted")
            && row.contains("prod/web:5.1.0")
            && row.contains("staging/web:5.1.0"),
        "{row}"
    );
    assert!(!overflows(&c).await);
    shot(&c, "24-audit").await;
    c.close().await.unwrap();
}

/// An administrator makes a feed a connector of another registry from the settings page
/// (preview first), the password is stored but never shown back, the feed page says what it
/// is, and a version the upstream moves shows as drift in the tag history.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::too_many_lines)] // one story, told in order
async fn an_administrator_sets_up_a_connector_feed_in_chromium() {
    let upstream = Server::start();
    let up = upstream.http();
    let res = up
        .post(&upstream.url("/api/v1/feeds"))
        .header("Content-Type", "application/json")
        .send(r#"{"name": "vendor"}"#)
        .unwrap();
    assert_eq!(res.status(), 201);
    let base_up = upstream.url("");
    let push = |layer: &[u8]| {
        let (digest, body) = common::push_image_over_http(&up, &base_up, "vendor/tool", layer);
        let res = up
            .put(&upstream.url("/v2/vendor/tool/manifests/1.0.0"))
            .header("Content-Type", common::OCI_MANIFEST)
            .send(&body[..])
            .unwrap();
        assert_eq!(res.status(), 201);
        digest
    };
    let first = push(b"first seen");

    let server = Server::start();
    let base = server.url("");
    let res = server
        .http()
        .post(&server.url("/api/v1/feeds"))
        .header("Content-Type", "application/json")
        .send(r#"{"name": "mirror", "versioning": true}"#)
        .unwrap();
    assert_eq!(res.status(), 201);
    let driver = Driver::start();
    let profile = tempfile::tempdir().unwrap();
    let c = browser(&driver, profile.path()).await;
    log_in(&c, &base, "admin", &server.admin_password).await;
    c.goto(&format!("{base}/ui/feeds/mirror/settings"))
        .await
        .unwrap();
    // A plain feed's connector settings are folded.
    c.find(Locator::Css("#connector summary"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    fill(&c, "#upstream_url", &base_up).await;
    fill(&c, "#upstream_user", "admin").await;
    fill(&c, "#upstream_password", &upstream.admin_password).await;
    fill(&c, "#upstream_prefix", "vendor").await;
    fill(&c, "#upstream_ttl", "1").await;
    press(&c, "preview", "#preview").await;
    let preview = text(&c).await;
    assert!(
        preview.contains("mirror will become a connector: a pull-through cache of"),
        "{preview}"
    );
    // The preview does not send the typed password back into the page either.
    assert!(!c.source().await.unwrap().contains(&upstream.admin_password));
    fill(&c, "#upstream_password", &upstream.admin_password).await;
    press(&c, "save", ".notice.ok").await;
    let page = text(&c).await;
    assert!(page.contains("one is stored"), "{page}");
    assert!(!c.source().await.unwrap().contains(&upstream.admin_password));
    press(&c, "test-upstream", "#connector-note").await;
    let note = text(&c).await;
    assert!(
        note.contains(
            "answers; the connector is admitted with a token for the connector's credentials"
        ),
        "{note}"
    );
    press(&c, "sync", "#connector-note").await;
    assert!(text(&c).await.contains("Synced: 0 tags held"));
    c.goto(&format!("{base}/ui/feeds/mirror/settings"))
        .await
        .unwrap();
    let page = text(&c).await;
    assert!(page.contains("Last sync"), "{page}");
    shot(&c, "30-connector-settings").await;

    // Pulled through, then moved upstream: the pinned digest stays, the drift is shown.
    let pull = |agent: &ureq::Agent| {
        let res = agent
            .get(&server.url("/v2/mirror/tool/manifests/1.0.0"))
            .header("Accept", common::OCI_MANIFEST)
            .call()
            .unwrap();
        assert_eq!(res.status(), 200);
        res.headers()["docker-content-digest"]
            .to_str()
            .unwrap()
            .to_owned()
    };
    let admin = server.http();
    assert_eq!(pull(&admin), first);
    let moved = push(b"moved upstream");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(pull(&admin), first, "the first digest seen is kept");
    c.goto(&format!("{base}/ui/feeds/mirror")).await.unwrap();
    let page = text(&c).await;
    assert!(
        page.contains("A connector feed: a pull-through cache of"),
        "{page}"
    );
    c.goto(&format!("{base}/ui/history?name=mirror%2Ftool"))
        .await
        .unwrap();
    let page = text(&c).await;
    assert!(page.contains("drift"), "{page}");
    assert!(
        page.contains(&moved[7..19]) || page.contains(&moved),
        "{page}"
    );
    shot(&c, "31-connector-drift").await;
    c.close().await.unwrap();
}

/// A directory user signs in to the UI with the directory's password and sees the feeds
/// their groups give them; a directory administrator sees the users page; logging out ends
/// the session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn directory_users_sign_in_to_the_ui_in_chromium() {
    let slapd = common::ldap::Slapd::start();
    let env = common::ldap::directory_env(&slapd);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_in(&dir.path().join("data"), &env);
    let base = server.url("");
    let driver = Driver::start();
    let profile = tempfile::tempdir().unwrap();
    let c = browser(&driver, profile.path()).await;
    log_in(&c, &base, "alice", "alice-pass").await;
    let page = text(&c).await;
    assert!(page.contains("prod"), "{page}");
    assert!(
        !page.contains("Users & keys") || !page.contains("Audit"),
        "{page}"
    );
    shot(&c, "40-directory-user").await;
    c.goto(&format!("{base}/ui/users")).await.unwrap();
    let page = text(&c).await;
    assert!(
        !page.contains("carol"),
        "a pull user sees no user list: {page}"
    );
    c.goto(&format!("{base}/ui/")).await.unwrap();
    log_out(&c, &base).await;
    log_in(&c, &base, "carol", "carol-pass").await;
    c.goto(&format!("{base}/ui/users")).await.unwrap();
    let page = text(&c).await;
    assert!(page.contains("alice") && page.contains("carol"), "{page}");
    c.close().await.unwrap();
}

/// The element `css` of the provider's next page; the page's source when it does not come.
async fn provider_page(c: &Client, css: &str) -> fantoccini::elements::Element {
    match c
        .wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Css(css))
        .await
    {
        Ok(f) => f,
        Err(e) => panic!(
            "no {css} on the provider's page ({e}) at {}: {}",
            c.current_url().await.unwrap(),
            c.source().await.unwrap_or_default()
        ),
    }
}

/// Signs in through the `OpenID Connect` provider's development pages as `user`, and waits
/// for the dashboard.
async fn oidc_sign_in(c: &Client, base: &str, user: &str) {
    at_the_provider(c, base, user).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while c.current_url().await.unwrap().path() != "/ui/" {
        assert!(
            Instant::now() < deadline,
            "the sign-in did not reach the dashboard: at {}",
            c.current_url().await.unwrap()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    c.wait().for_element(Locator::Css("h1")).await.unwrap();
}

/// Presses the sign-in button and goes through the provider's pages as `user`.
async fn at_the_provider(c: &Client, base: &str, user: &str) {
    c.goto(&format!("{base}/ui/")).await.unwrap();
    let button = c.find(Locator::Css("#oidc")).await.unwrap();
    assert_eq!(button.text().await.unwrap(), "Sign in with Example ID");
    button.click().await.unwrap();
    // The provider: its login form unless it knows the browser already, then its consent.
    let field = provider_page(
        c,
        "input[name=login], form input[name=prompt][value=consent]",
    )
    .await;
    if field.attr("name").await.unwrap().as_deref() == Some("login") {
        fill(c, "input[name=login]", user).await;
        fill(c, "input[name=password]", "any-password").await;
        c.find(Locator::Css("button[type=submit]"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        provider_page(c, "form input[name=prompt][value=consent]").await;
    }
    c.find(Locator::Css("button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

fn key_status(base: &str, user: &str, key: &str, path: &str) -> u16 {
    use base64::Engine as _;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{key}"));
    common::http_as(Some(format!("Basic {basic}")))
        .get(&format!("{base}{path}"))
        .call()
        .unwrap()
        .status()
        .as_u16()
}

async fn wait_for(what: &str, server: &Server, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ok() {
        assert!(
            Instant::now() < deadline,
            "{what} did not happen in time; the log of {}:\n{}",
            server.addr,
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// An `OpenID Connect` user's story, told through `base` (one node, or a load balancer in
/// front of several) with docker on `client` pushing to `host`: signs in with the
/// provider, gets roles from groups, makes an API key for docker, loses the role and then
/// the account when the provider says so; an administrator by group; logout; with the
/// provider gone the local administrator still logs in.
#[allow(clippy::too_many_lines)] // one story, told in order
async fn oidc_story(
    base: &str,
    provider: &mut common::oidc::Provider,
    client: &Server,
    host: &str,
    admin_password: &str,
) {
    provider.client(base);
    provider.user("dana", &["devs"], false);
    provider.user("erin", &["registry-admins"], false);
    let driver = Driver::start();
    let profile = tempfile::tempdir().unwrap();
    let c = browser(&driver, profile.path()).await;
    oidc_sign_in(&c, base, "dana").await;
    let bar = c
        .find(Locator::Css("header"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(bar.contains("dana") && bar.contains("API keys"), "{bar}");
    assert!(!bar.contains("Users"), "dana is no administrator: {bar}");
    assert!(text(&c).await.contains("prod"));
    shot(&c, "50-oidc-user").await;

    // Her API key for docker, made in the UI: the roles she holds now.
    c.goto(&format!("{base}/ui/keys")).await.unwrap();
    fill(&c, "#key-name", "ci").await;
    c.find(Locator::Css("form[action='/ui/keys'] button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let key = c
        .wait()
        .for_element(Locator::Css("#secret"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let out = client.docker_login_as(host, "dana", &key);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let image = format!("{host}/prod/app:4.0.0");
    let ctx = image_context(1, "oidc");
    run(client
        .docker()
        .args(["build", "--no-cache", "-q", "-t", &image])
        .arg(ctx.path())
        .env("DOCKER_BUILDKIT", "0"));
    run(client.docker().args(["push", &image]));
    c.goto(&format!("{base}/ui/keys")).await.unwrap();
    let page = text(&c).await;
    assert!(page.contains("ci") && page.contains("prod: push"), "{page}");

    // Out of the group at the provider: within the cache time the key cannot pull, and the
    // UI session (of the old roles) is over.
    provider.user("dana", &[], false);
    wait_for("the group removal", client, || {
        key_status(base, "dana", &key, "/v2/prod/app/tags/list") != 200
    })
    .await;
    c.goto(&format!("{base}/ui/")).await.unwrap();
    assert!(
        c.current_url()
            .await
            .unwrap()
            .path()
            .starts_with("/ui/login"),
        "the session outlived the roles it had"
    );
    // Disabled at the provider: the key stops altogether.
    provider.user("dana", &["devs"], true);
    wait_for("the disabling", client, || {
        key_status(base, "dana", &key, "/api/v1/keys") == 401
    })
    .await;
    c.close().await.unwrap();

    // Erin's groups make her an administrator; logout ends her session.
    let profile = tempfile::tempdir().unwrap();
    let c = browser(&driver, profile.path()).await;
    oidc_sign_in(&c, base, "erin").await;
    c.goto(&format!("{base}/ui/users")).await.unwrap();
    let page = text(&c).await;
    assert!(page.contains("dana") && page.contains("erin"), "{page}");
    assert!(page.contains("disabled"), "dana shows as disabled: {page}");
    log_out(&c, base).await;

    // A forged callback (a state this browser never got) signs no one in.
    c.goto(&format!("{base}/ui/oidc/callback?code=stolen&state=forged"))
        .await
        .unwrap();
    let page = text(&c).await;
    assert!(page.contains("not started here"), "{page}");

    c.close().await.unwrap();

    // The provider's user called admin does not become the local administrator.
    provider.user("admin", &["registry-admins"], false);
    let profile = tempfile::tempdir().unwrap();
    let c = browser(&driver, profile.path()).await;
    at_the_provider(&c, base, "admin").await;
    let error = c
        .wait()
        .for_element(Locator::Css(".notice.error"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(error.contains("local account"), "{error}");
    assert!(
        c.current_url()
            .await
            .unwrap()
            .path()
            .starts_with("/ui/oidc/callback")
    );

    // The provider gone: the local administrator still logs in with a password.
    provider.stop();
    log_in(&c, base, "admin", admin_password).await;
    c.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidc_users_sign_in_through_the_provider_in_chromium() {
    let mut provider = common::oidc::Provider::start();
    let env = common::oidc::oidc_env(&provider);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_in(&dir.path().join("data"), &env);
    // The configuration checked against the provider, as an operator would.
    let checked = std::process::Command::new(env!("CARGO_BIN_EXE_semdock"))
        .args(["directory", "test"])
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&checked.stdout);
    assert!(checked.status.success(), "{out}");
    assert!(
        out.contains(&format!("issuer {} answers", provider.issuer))
            && out.contains("1 signing key"),
        "{out}"
    );
    let wrong = format!("{}/not-the-issuer", provider.issuer);
    let failed = std::process::Command::new(env!("CARGO_BIN_EXE_semdock"))
        .args(["directory", "test"])
        .envs(env.iter().copied())
        .env("SEMDOCK_DIRECTORY__OIDC__ISSUER", &wrong)
        .output()
        .unwrap();
    assert!(!failed.status.success());
    let err = String::from_utf8_lossy(&failed.stderr);
    assert!(err.contains("404") && err.contains(&wrong), "{err}");
    let base = server.url("");
    oidc_story(
        &base,
        &mut provider,
        &server,
        &server.host(),
        &server.admin_password,
    )
    .await;
}

/// The provider's user `u-frank` named ` Frank `, then `FRANK.SMITH`: one account, `frank`,
/// the subject's, signed in to both times; an administrator disables it, and the next
/// sign-in (under the new name) is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oidc_user_renamed_at_the_provider_keeps_one_account_in_chromium() {
    let provider = common::oidc::Provider::start();
    let env = common::oidc::oidc_env(&provider);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_in(&dir.path().join("data"), &env);
    let base = server.url("");
    provider.client(&base);
    let franks = || {
        let mut res = server
            .http()
            .get(&server.url("/api/v1/users"))
            .call()
            .unwrap();
        let users: serde_json::Value =
            serde_json::from_str(&res.body_mut().read_to_string().unwrap()).unwrap();
        users
            .as_array()
            .unwrap()
            .iter()
            .filter(|u| u["name"].as_str().unwrap().contains("frank"))
            .map(|u| {
                (
                    u["name"].as_str().unwrap().to_owned(),
                    u["disabled"] == true,
                )
            })
            .collect::<Vec<_>>()
    };
    let driver = Driver::start();

    provider.user_named("u-frank", " Frank ", &["devs"]);
    let profile = tempfile::tempdir().unwrap();
    let c = browser(&driver, profile.path()).await;
    oidc_sign_in(&c, &base, "u-frank").await;
    assert_eq!(franks(), vec![("frank".to_owned(), false)]);
    log_out(&c, &base).await;

    provider.user_named("u-frank", "FRANK.SMITH", &["devs"]);
    oidc_sign_in(&c, &base, "u-frank").await;
    let bar = c
        .find(Locator::Css("header"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        bar.contains("frank") && !bar.contains("frank.smith"),
        "{bar}"
    );
    assert_eq!(franks(), vec![("frank".to_owned(), false)]);
    log_out(&c, &base).await;

    let res = server
        .http()
        .patch(&server.url("/api/v1/users/frank"))
        .header("Content-Type", "application/json")
        .send(r#"{"disabled": true}"#)
        .unwrap();
    assert_eq!(res.status(), 204);
    at_the_provider(&c, &base, "u-frank").await;
    let error = c
        .wait()
        .for_element(Locator::Css(".notice.error"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(error.contains("disabled"), "{error}");
    assert_eq!(franks(), vec![("frank".to_owned(), true)]);
    c.close().await.unwrap();
}

/// The same on two nodes over PostgreSQL and S3 behind HAProxy: the sign-in may start on
/// one node and come back to the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidc_users_sign_in_on_two_nodes_behind_haproxy() {
    let mut provider = common::oidc::Provider::start();
    let env = common::oidc::oidc_env(&provider);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let cluster = common::cluster::Cluster::start_with(2, &env);
    let lb = common::cluster::LoadBalancer::start(&cluster.nodes.iter().collect::<Vec<_>>());
    let first = &cluster.nodes[0];
    oidc_story(
        &lb.url(""),
        &mut provider,
        first,
        &lb.host(),
        &first.admin_password,
    )
    .await;
}

/// A server with a versioned feed `rel` and `library/web:5.3.0` pushed; the browser logged
/// in as the administrator.
async fn with_an_image() -> (Server, Driver, tempfile::TempDir, Client) {
    let server = Server::start();
    let base = server.url("");
    let admin = server.http();
    let res = admin
        .post(&server.url("/api/v1/feeds"))
        .header("Content-Type", "application/json")
        .send(r#"{"name": "rel", "versioning": true}"#)
        .unwrap();
    assert_eq!(res.status(), 201);
    let (_, body) = common::push_image_over_http(&admin, &base, "library/web", b"web");
    let res = admin
        .put(&server.url("/v2/library/web/manifests/5.3.0"))
        .header("Content-Type", common::OCI_MANIFEST)
        .send(&body[..])
        .unwrap();
    assert_eq!(res.status(), 201);
    let driver = Driver::start();
    let profile = tempfile::tempdir().unwrap();
    let c = browser(&driver, profile.path()).await;
    log_in(&c, &base, "admin", &server.admin_password).await;
    (server, driver, profile, c)
}

/// The promote form checks the target tag as one types, one request per keystroke. The
/// answers come back in any order (here: every one but the last held back 1.5 s); only the
/// answer to the last keystroke may count, so a valid `5.4.0` ends up allowed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_promote_check_keeps_the_answer_to_the_last_keystroke_in_chromium() {
    let (server, _driver, _profile, c) = with_an_image().await;
    c.goto(&server.url("/ui/repository?name=library%2Fweb"))
        .await
        .unwrap();
    c.find(Locator::Css("details summary"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let form = c.find(Locator::Css("form[data-check-tag]")).await.unwrap();
    form.find(Locator::Css("select[name=target_feed]"))
        .await
        .unwrap()
        .select_by_value("rel")
        .await
        .unwrap();
    // The network, slow for every answer but the one to the full tag.
    c.execute(
        "const fetch = window.fetch;
         window.fetch = (url, options) => fetch(url, options).then((res) => new Promise((done) =>
           setTimeout(() => done(res), String(url).includes('tag=5.4.0&') ? 0 : 1500)));",
        vec![],
    )
    .await
    .unwrap();
    form.find(Locator::Css("input[name=target_tag]"))
        .await
        .unwrap()
        .send_keys("5.4.0")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let out = form.find(Locator::Css(".check-msg")).await.unwrap();
    let (class, said) = (
        out.attr("class").await.unwrap().unwrap_or_default(),
        out.text().await.unwrap(),
    );
    shot(&c, "25-promote-check-last-keystroke").await;
    assert_eq!(
        (class.as_str(), said.as_str()),
        ("check-msg good", "allowed"),
        "the answer to an earlier keystroke won"
    );
    let button = form
        .find(Locator::Css("button[type=submit]"))
        .await
        .unwrap();
    assert!(button.is_enabled().await.unwrap(), "Promote stays disabled");
    c.close().await.unwrap();
}

/// The bounding box of the first `css` against the window: `Ok` when inside it.
async fn in_view(c: &Client, css: &str) -> Result<(), String> {
    let found = c
        .execute(
            "const e = document.querySelector(arguments[0]);
             if (!e) { return 'missing'; }
             const r = e.getBoundingClientRect();
             const inside = r.width > 0 && r.left >= 0 && r.right <= window.innerWidth + 1;
             return inside ? 'ok' : `${Math.round(r.left)}..${Math.round(r.right)} px in a ${window.innerWidth} px window`;",
            vec![json!(css)],
        )
        .await
        .unwrap();
    match found.as_str() {
        Some("ok") => Ok(()),
        other => Err(format!("{css}: {}", other.unwrap_or("?"))),
    }
}

/// At 390 px (a phone) the history and audit tables keep the tag, the change and where it
/// points in view, and the manifest page is no wider than the screen. At desktop size a
/// plain feed's settings show versioning and the preview button in the first screen, the
/// connector settings folded; the bar links the password page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn narrow_screens_keep_key_columns_in_view_and_feed_settings_lead_with_versioning_in_chromium()
 {
    let (server, _driver, _profile, c) = with_an_image().await;
    let base = server.url("");

    c.goto(&format!("{base}/ui/feeds/library/settings"))
        .await
        .unwrap();
    let (_, y, _, h) = c
        .find(Locator::Css("button[value=preview]"))
        .await
        .unwrap()
        .rectangle()
        .await
        .unwrap();
    let height = c
        .execute("return window.innerHeight;", vec![])
        .await
        .unwrap();
    assert!(
        y + h <= height.as_f64().unwrap(),
        "the preview button is at {y} px, below the first screen of {height} px"
    );
    assert!(
        !c.find(Locator::Css("#upstream_url"))
            .await
            .unwrap()
            .is_displayed()
            .await
            .unwrap(),
        "a plain feed's connector settings are folded"
    );
    shot(&c, "26-plain-feed-settings").await;
    c.find(Locator::Css("#change-password"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait().for_element(Locator::Css("#repeat")).await.unwrap();
    shot(&c, "27-change-password").await;

    c.set_window_size(390, 844).await.unwrap();
    let mut wrong = Vec::new();
    c.goto(&format!("{base}/ui/history?name=library%2Fweb"))
        .await
        .unwrap();
    // Tag, and the digest it points to.
    for css in [
        "#history tbody tr td:nth-child(2)",
        "#history tbody tr td:nth-child(5)",
    ] {
        wrong.extend(in_view(&c, css).await.err());
    }
    assert!(!overflows(&c).await, "the history is wider than 390 px");
    shot(&c, "28-narrow-history").await;
    c.goto(&format!("{base}/ui/audit")).await.unwrap();
    // Kind, and what changed.
    for css in [
        "#audit tbody tr td:nth-child(2)",
        "#audit tbody tr td:nth-child(5)",
    ] {
        wrong.extend(in_view(&c, css).await.err());
    }
    assert!(!overflows(&c).await, "the audit log is wider than 390 px");
    shot(&c, "29-narrow-audit").await;
    assert!(wrong.is_empty(), "key columns out of view: {wrong:?}");
    c.goto(&format!("{base}/ui/repository?name=library%2Fweb"))
        .await
        .unwrap();
    c.find(Locator::Css("td a.mono"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait().for_element(Locator::Css("h1")).await.unwrap();
    assert_eq!(c.current_url().await.unwrap().path(), "/ui/manifest");
    let widest = c
        .execute(
            "return [...document.querySelectorAll('main *')]
               .filter((e) => (e.getBoundingClientRect().right > window.innerWidth + 1
                   || e.scrollWidth > e.clientWidth + 1)
                 && !e.closest('.scroll, pre'))
               .map((e) => e.tagName + '.' + e.className).join(', ');",
            vec![],
        )
        .await
        .unwrap();
    shot(&c, "32-narrow-manifest").await;
    assert!(
        !overflows(&c).await,
        "the manifest page is wider than 390 px: {widest}"
    );
    c.close().await.unwrap();
}

/// Presses the submit button of the form posting to `action`, and waits for `then`.
async fn submit(c: &Client, action: &str, then: &str) {
    click_and_wait(
        c,
        &format!("form[action='{action}'] button[type=submit]"),
        then,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_administrator_trusts_keys_roots_and_stores_and_a_feed_requires_them_in_chromium() {
    use p256::pkcs8::EncodePublicKey as _;
    let server = Server::start();
    let base = server.url("");
    let res = server
        .http()
        .patch(&server.url("/api/v1/feeds/prod"))
        .header("Content-Type", "application/json")
        .send(r#"{"versioning": true}"#)
        .unwrap();
    assert_eq!(res.status(), 200);
    let driver = Driver::start();
    let profile = tempfile::tempdir().unwrap();
    let c = browser(&driver, profile.path()).await;
    log_in(&c, &base, "admin", &server.admin_password).await;

    // The Trust page: a key, a Sigstore trusted root and a Notation trust store.
    c.goto(&format!("{base}/ui/trust")).await.unwrap();
    assert!(text(&c).await.contains("No trusted roots."));
    let key = p256::ecdsa::SigningKey::from_slice(&[3; 32]).unwrap();
    let pem = key
        .verifying_key()
        .to_public_key_pem(p256::pkcs8::LineEnding::LF)
        .unwrap();
    fill(&c, "#trust-name", "ci").await;
    fill(&c, "#trust-pem", &pem).await;
    submit(&c, "/ui/trust", "#done").await;
    assert!(text(&c).await.contains("Key trusted"));
    let root = common::sigstore::TestSigstore::new()
        .trusted_root()
        .to_string();
    fill(&c, "#root-name", "ci-sigstore").await;
    fill(&c, "#root-json", &root).await;
    submit(&c, "/ui/trust/roots", "#done").await;
    let page = text(&c).await;
    assert!(page.contains("Trusted root added"), "{page}");
    assert!(page.contains("ci-sigstore"), "{page}");
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    fill(&c, "#store-name", "acme-ca").await;
    fill(&c, "#store-pem", &ca.self_signed(&ca_key).unwrap().pem()).await;
    submit(&c, "/ui/trust/stores", "#done").await;
    let page = text(&c).await;
    assert!(page.contains("Trust store added"), "{page}");
    shot(&c, "trust").await;

    // The feed's Signatures part: an identity and the pull gate, previewed, then saved.
    c.goto(&format!("{base}/ui/feeds/prod/settings"))
        .await
        .unwrap();
    c.find(Locator::Css("#signatures summary"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let identity = "https://token.actions.githubusercontent.com https://github.com/acme/web/*";
    fill(&c, "#signature_identities", identity).await;
    fill(&c, "#signature_stores", "acme-ca").await;
    c.find(Locator::Css("#signature_on_pull option[value=refuse]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    press(&c, "preview", "#preview").await;
    let page = text(&c).await;
    assert!(
        page.contains("Images will need a signature by https://github.com/acme/web/* from https://token.actions.githubusercontent.com or a certificate of trust store acme-ca on promotion and pull (refuse) into prod."),
        "{page}"
    );
    press(&c, "save", "#done").await;
    c.goto(&format!("{base}/ui/feeds/prod/settings"))
        .await
        .unwrap();
    let saved = c
        .find(Locator::Css("#signature_identities"))
        .await
        .unwrap()
        .prop("value")
        .await
        .unwrap();
    assert_eq!(saved.as_deref(), Some(identity));
    let gate = c
        .find(Locator::Css("#signature_on_pull"))
        .await
        .unwrap()
        .prop("value")
        .await
        .unwrap();
    assert_eq!(gate.as_deref(), Some("refuse"));
    shot(&c, "feed-signatures").await;
    c.close().await.unwrap();
}

/// A reader finds an image's vulnerabilities on the repository page (one line per version)
/// and, a click further, on its manifest page: severity, advisory, package, installed and
/// fixed versions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_sees_an_images_vulnerabilities_in_chromium() {
    use crate::vulns;
    let server = Server::start();
    let base = server.url("");
    let auth = common::basic("admin", &server.admin_password);
    let key = vulns::admin_key(&base, &auth);
    let site = vulns::Site {
        base: base.clone(),
        auth,
        key,
    };
    let (layers, _) = vulns::layers();
    let digest = site.push("library/app", "1.0.0", &layers);
    vulns::wait_scanned(&site, "library/app:1.0.0");
    // An SBOM the builder pushed (as syft or BuildKit attach one), beside semdock's.
    vulns::push_builder_sbom(&site, "library/app", &digest);
    let dir = tempfile::tempdir().unwrap();
    let (dsa, cve) = (dir.path().join("dsa.json"), dir.path().join("cve.json"));
    std::fs::write(&dsa, vulns::DSA_5514_1).unwrap();
    std::fs::write(&cve, vulns::CVE_2023_4911).unwrap();
    let driver = Driver::start();
    let profile = tempfile::tempdir().unwrap();
    let c = browser(&driver, profile.path()).await;
    log_in(&c, &base, "admin", &server.admin_password).await;
    // The administrator imports the records on the Vulnerabilities page, one file each.
    for file in [&dsa, &cve] {
        c.goto(&format!("{base}/ui/vulndb")).await.unwrap();
        c.find(Locator::Css("#vulndb-file"))
            .await
            .unwrap()
            .send_keys(file.to_str().unwrap())
            .await
            .unwrap();
        click_and_wait(&c, "form[action='/ui/vulndb'] button", "#vulndb-sources").await;
        assert!(text(&c).await.contains("Imported"), "{}", text(&c).await);
    }
    let sources = c
        .find(Locator::Css("#vulndb-sources tbody"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        sources.contains("dsa.json 1 0 Debian:11, Debian:12") && sources.contains("cve.json 1 0"),
        "{sources}"
    );
    shot(&c, "39-vulnerability-database").await;
    c.goto(&format!("{base}/ui/repository?name=library%2Fapp"))
        .await
        .unwrap();
    let cell = c
        .find(Locator::Css("td.vulns a"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(cell, "1 high");
    shot(&c, "40-repository-vulnerabilities").await;
    click_and_wait(&c, "td.vulns a", "#vuln-findings").await;
    let page = text(&c).await;
    assert!(page.contains("packages on Debian GNU/Linux 12"), "{page}");
    let row = c
        .find(Locator::Css("#vuln-findings tbody tr"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for expected in [
        "high",
        "DSA-5514-1",
        "libc6",
        "2.36-9+deb12u1",
        "2.36-9+deb12u3",
    ] {
        assert!(row.contains(expected), "{expected} in {row}");
    }
    let link = c
        .find(Locator::Css("#vuln-findings a"))
        .await
        .unwrap()
        .attr("href")
        .await
        .unwrap();
    assert_eq!(
        link.as_deref(),
        Some("https://www.debian.org/security/2023/dsa-5514")
    );
    assert!(
        page.contains("application/vnd.cyclonedx+json (generated by semdock)"),
        "{page}"
    );
    assert!(
        page.contains("application/spdx+json"),
        "the builder's SBOM is shown beside: {page}"
    );
    shot(&c, "41-manifest-vulnerabilities").await;
    c.close().await.unwrap();
}

/// An administrator adds a replication rule to a second site (Distribution) in Chromium: the
/// page lists it, the feed's image arrives at the target, and the page then shows the run
/// and no lag; the password typed is never on the page again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_administrator_replicates_a_feed_to_a_second_site_in_chromium() {
    let server = Server::start();
    let base = server.url("");
    let admin = server.http();
    let (digest, body) = common::push_image_over_http(&admin, &base, "prod/web", b"for site b");
    let res = admin
        .put(&server.url("/v2/prod/web/manifests/1.0.0"))
        .header("Content-Type", common::OCI_MANIFEST)
        .send(&body[..])
        .unwrap();
    assert_eq!(res.status(), 201);
    let dist = common::distribution::Distribution::start();
    let driver = Driver::start();
    let profile = tempfile::tempdir().unwrap();
    let c = browser(&driver, profile.path()).await;
    log_in(&c, &base, "admin", &server.admin_password).await;
    c.find(Locator::LinkText("Replication"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait()
        .for_element(Locator::Css("#rule-name"))
        .await
        .unwrap();
    fill(&c, "#rule-name", "site-b").await;
    c.find(Locator::Css("#rule-feed"))
        .await
        .unwrap()
        .select_by_value("prod")
        .await
        .unwrap();
    fill(&c, "#rule-url", &dist.url()).await;
    fill(&c, "#rule-username", "replicator").await;
    fill(&c, "#rule-password", "typed-once-secret").await;
    c.find(Locator::XPath("//button[text()='Add rule']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait()
        .for_element(Locator::Css(".notice.ok"))
        .await
        .unwrap();
    // Distribution without authentication takes the pushes whatever credentials come.
    let anon = common::http();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let res = anon
            .head(&format!("{}/v2/prod/web/manifests/1.0.0", dist.url()))
            .header("Accept", common::OCI_MANIFEST)
            .call()
            .unwrap();
        if res.status() == 200 {
            assert_eq!(res.headers()["docker-content-digest"], digest.as_str());
            break;
        }
        assert!(Instant::now() < deadline, "1.0.0 never reached site b");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        c.goto(&format!("{base}/ui/replication")).await.unwrap();
        let page = text(&c).await;
        assert!(!page.contains("typed-once-secret"), "{page}");
        if page.contains("Last run (full)") && page.contains("Lag: 0 events") {
            assert!(
                page.contains("site-b") && page.contains(&dist.url()),
                "{page}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "{page}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    shot(&c, "40-replication").await;
    let source = c.source().await.unwrap();
    assert!(!source.contains("typed-once-secret"));
}
