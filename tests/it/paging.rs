//! Every list pages: the management API's tag lists, tag history, feed changes, users and
//! keys (`n`/`last` with a `Link: rel="next"` header), the UI's repository page and history
//! (server-side paging and search), and the CLI (`--limit`, following pages).

use crate::common;

use actix_web::test::TestRequest;
use common::{Server, TestApp, run};
use semver::Version;

/// Every `(link target)` of the `Link` headers of `res` with `rel="next"`, by `title`.
fn next_links(res: &common::Resp) -> Vec<(String, String)> {
    res.headers
        .get_all("link")
        .filter_map(|v| v.to_str().ok())
        .filter(|v| v.contains("rel=\"next\""))
        .map(|v| {
            let target = v[1..v.find('>').unwrap()].to_owned();
            let title = v
                .split("title=\"")
                .nth(1)
                .map(|t| t.trim_end_matches('"').to_owned())
                .unwrap_or_default();
            (title, target)
        })
        .collect()
}

/// Follows the `Link` titled `title` (or untitled) from `first`, collecting `pick` of each page.
async fn follow(
    app: &TestApp,
    first: &str,
    title: &str,
    pick: impl Fn(&serde_json::Value) -> Vec<serde_json::Value>,
) -> (Vec<serde_json::Value>, usize) {
    let mut items = Vec::new();
    let mut pages = 0;
    let mut next = Some(first.to_owned());
    while let Some(uri) = next.take() {
        let res = app.get(&uri).await;
        assert_eq!(
            res.status,
            200,
            "{uri}: {}",
            String::from_utf8_lossy(&res.body)
        );
        items.extend(pick(&res.json()));
        pages += 1;
        next = next_links(&res)
            .into_iter()
            .find(|(t, _)| t == title)
            .map(|(_, target)| target);
        assert!(pages < 100, "pages never end");
    }
    (items, pages)
}

const VERSIONS: &[&str] = &[
    "1.0.0",
    "1.0.1",
    "1.0.10",
    "1.0.2",
    "1.1.0-rc.1",
    "1.1.0-rc.2",
    "1.1.0-rc.10",
    "1.1.0",
    "1.1.0-alpha",
    "2.0.0-beta.1",
    "2.0.0-beta.1.1",
    "2.0.0",
    "0.9.0",
    "0.9.0-rc.1",
    "3.0.0-rc.1",
    "10.0.0",
    "2.10.0",
    "2.9.0",
    "1.2.3",
    "1.2.3-x.7.z.92",
];

async fn repository_with_tags() -> TestApp {
    let app = TestApp::new().versioned("prod", &["pr-*"]);
    // Two images, alternating, so that the virtual tags move back and forth.
    let images = [
        app.image("prod/app", &[b"layer a"]).await.1,
        app.image("prod/app", &[b"layer b"]).await.1,
    ];
    let permitted: Vec<String> = (0..7).map(|i| format!("pr-{i}")).collect();
    for (i, tag) in VERSIONS
        .iter()
        .copied()
        .chain(permitted.iter().map(String::as_str))
        .enumerate()
    {
        let res = app
            .put_manifest("prod/app", tag, common::OCI_MANIFEST, &images[i % 2])
            .await;
        assert_eq!(
            res.status,
            201,
            "{tag}: {}",
            String::from_utf8_lossy(&res.body)
        );
    }
    for gone in ["1.0.1", "0.9.0-rc.1", "2.9.0"] {
        let res = app
            .send(TestRequest::delete().uri(&format!("/v2/prod/app/manifests/{gone}")))
            .await;
        assert_eq!(res.status, 202);
    }
    app
}

#[actix_web::test]
async fn tag_lists_page_through_versions_in_semver_order_and_other_tags_by_name() {
    let app = repository_with_tags().await;
    let mut live: Vec<Version> = VERSIONS
        .iter()
        .filter(|v| !["1.0.1", "0.9.0-rc.1", "2.9.0"].contains(v))
        .map(|v| Version::parse(v).unwrap())
        .collect();
    live.sort_by(|a, b| b.cmp(a));
    let tags_of = |key: &'static str| {
        move |page: &serde_json::Value| page[key].as_array().cloned().unwrap_or_default()
    };
    let first = "/api/v1/repositories/prod/app/tags?n=4";
    let (versions, pages) = follow(&app, first, "versions", tags_of("versions")).await;
    let got: Vec<&str> = versions
        .iter()
        .map(|v| v["tag"].as_str().unwrap())
        .collect();
    let want: Vec<String> = live.iter().map(ToString::to_string).collect();
    assert_eq!(got, want, "versions, highest first, across pages");
    assert_eq!(pages, want.len().div_ceil(4));

    // Other tags by name: the virtual tags (each naming the version it follows) and the
    // permitted ones, four at a time.
    let (others, _) = follow(&app, first, "tags", |page| {
        ["virtual", "permitted"]
            .iter()
            .flat_map(|k| page[*k].as_array().cloned().unwrap_or_default())
            .collect()
    })
    .await;
    let mut names: Vec<&str> = others.iter().map(|v| v["tag"].as_str().unwrap()).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "0", "0.9", "1", "1.0", "1.1", "1.2", "10", "10.0", "2", "2.0", "2.10", "latest",
            "pr-0", "pr-1", "pr-2", "pr-3", "pr-4", "pr-5", "pr-6"
        ]
    );
    let latest = others.iter().find(|v| v["tag"] == "latest").unwrap();
    assert_eq!(latest["version"], "10.0.0");

    let (tombstones, _) = follow(
        &app,
        "/api/v1/repositories/prod/app/tags?list=tombstones&n=2",
        "tombstones",
        tags_of("tombstones"),
    )
    .await;
    let gone: Vec<&str> = tombstones
        .iter()
        .map(|v| v["tag"].as_str().unwrap())
        .collect();
    assert_eq!(gone, ["0.9.0-rc.1", "1.0.1", "2.9.0"]);

    // A search reads until its page is full.
    let found = app
        .get("/api/v1/repositories/prod/app/tags?q=RC&n=2")
        .await
        .json();
    let hits: Vec<&str> = found["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["tag"].as_str().unwrap())
        .collect();
    assert_eq!(hits, ["3.0.0-rc.1", "1.1.0-rc.10"]);
    assert_eq!(found["next"]["versions"], "1.1.0-rc.10");

    for (uri, says) in [
        (
            "/api/v1/repositories/prod/app/tags?last=1.0.0",
            "needs list=",
        ),
        (
            "/api/v1/repositories/prod/app/tags?list=versions&last=dev",
            "is not a version",
        ),
        (
            "/api/v1/repositories/prod/app/tags?list=nope",
            "expected one of",
        ),
    ] {
        let res = app.get(uri).await;
        assert_eq!(res.status, 400, "{uri}");
        assert!(
            res.json()["error"]["message"]
                .as_str()
                .unwrap()
                .contains(says),
            "{uri}: {}",
            res.json()["error"]["message"]
        );
    }
}

#[actix_web::test]
async fn history_pages_oldest_or_newest_first_and_filters_by_kind() {
    let app = repository_with_tags().await;
    let all = app
        .registry
        .history()
        .list(&"prod/app".parse().unwrap(), None)
        .unwrap();
    let seqs = |items: &[serde_json::Value]| -> Vec<u64> {
        items.iter().map(|h| h["seq"].as_u64().unwrap()).collect()
    };
    let array = |page: &serde_json::Value| page.as_array().cloned().unwrap();
    let (oldest, pages) =
        follow(&app, "/api/v1/repositories/prod/app/history?n=9", "", array).await;
    assert_eq!(seqs(&oldest), all.iter().map(|h| h.seq).collect::<Vec<_>>());
    assert_eq!(pages, all.len().div_ceil(9));
    let (newest, _) = follow(
        &app,
        "/api/v1/repositories/prod/app/history?n=9&order=newest",
        "",
        array,
    )
    .await;
    let mut reversed = seqs(&oldest);
    reversed.reverse();
    assert_eq!(seqs(&newest), reversed);
    let (virtual_moves, _) = follow(
        &app,
        "/api/v1/repositories/prod/app/history?n=5&method=virtual",
        "",
        array,
    )
    .await;
    assert_eq!(
        virtual_moves.len(),
        all.iter().filter(|h| h.method == "virtual").count()
    );
    assert!(virtual_moves.iter().all(|h| h["method"] == "virtual"));
    let (latest, _) = follow(
        &app,
        "/api/v1/repositories/prod/app/history?n=2&tag=latest",
        "",
        array,
    )
    .await;
    assert_eq!(
        latest.len(),
        all.iter().filter(|h| h.tag == "latest").count()
    );
    assert!(latest.len() > 2);
    let res = app
        .get("/api/v1/repositories/prod/app/history?order=sideways")
        .await;
    assert_eq!(res.status, 400);
}

#[actix_web::test]
async fn users_keys_and_feed_changes_page_with_links() {
    let app = TestApp::new().with_feed("prod");
    for i in 0..5 {
        let res = app
            .send(
                TestRequest::post()
                    .uri("/api/v1/users")
                    .set_json(serde_json::json!({"name": format!("user{i}")})),
            )
            .await;
        assert_eq!(res.status, 201);
        let res = app
            .send(
                TestRequest::post()
                    .uri("/api/v1/keys")
                    .set_json(serde_json::json!({"name": format!("key{i}"), "admin": true})),
            )
            .await;
        assert_eq!(res.status, 201);
        let res = app
            .send(
                TestRequest::patch()
                    .uri("/api/v1/feeds/prod")
                    .set_json(serde_json::json!({"anonymous_pull": i % 2 == 0})),
            )
            .await;
        assert_eq!(res.status, 200);
    }
    let array = |page: &serde_json::Value| page.as_array().cloned().unwrap();
    let (users, pages) = follow(&app, "/api/v1/users?n=2", "", array).await;
    let names: Vec<&str> = users.iter().map(|u| u["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        ["admin", "user0", "user1", "user2", "user3", "user4"]
    );
    assert_eq!(pages, 3);
    let (keys, _) = follow(&app, "/api/v1/keys?n=4", "", array).await;
    let all_keys = app.get("/api/v1/keys?n=1000").await.json();
    assert_eq!(keys, *all_keys.as_array().unwrap());
    assert_eq!(keys.len(), 6, "five and the tests' own");
    let (changes, pages) = follow(&app, "/api/v1/feeds/prod/changes?n=2", "", array).await;
    assert_eq!(changes.len(), 5);
    assert_eq!(pages, 3);
    let res = app.get("/api/v1/feeds/prod/changes?last=x").await;
    assert_eq!(res.status, 400);
}

#[actix_web::test]
async fn the_repository_page_and_history_page_on_the_server_and_search() {
    let app = TestApp::new().versioned("prod", &[]);
    let (_, body) = app.image("prod/app", &[b"layer"]).await;
    for i in 0..130 {
        let res = app
            .put_manifest("prod/app", &format!("1.0.{i}"), common::OCI_MANIFEST, &body)
            .await;
        assert_eq!(res.status, 201);
    }
    let Ok((cookie, _)) = common::ui_login(&app, "admin", &app.admin_password).await else {
        panic!("UI login");
    };
    let page = |uri: String| {
        let cookie = cookie.clone();
        let app = &app;
        async move {
            let res = app
                .send_as(
                    TestRequest::get()
                        .uri(&uri)
                        .insert_header(("Cookie", cookie)),
                )
                .await;
            assert_eq!(res.status, 200, "{uri}");
            String::from_utf8(res.body).unwrap()
        }
    };
    let rows = |html: &str| html.matches("<td><strong>1.0.").count();
    let first = page("/ui/repository?name=prod/app".into()).await;
    assert_eq!(rows(&first), 100, "the first hundred versions");
    assert!(
        first.contains("<strong>1.0.129</strong>") && !first.contains("<strong>1.0.29</strong>")
    );
    let more = first
        .split("class=\"next\" href=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .replace("&amp;", "&")
        .replace("&#38;", "&");
    assert!(more.contains("list=versions"), "{more}");
    let second = page(more).await;
    assert_eq!(rows(&second), 30);
    assert!(
        second.contains("<strong>1.0.0</strong>") && !second.contains("<strong>1.0.129</strong>")
    );
    assert!(!second.contains("class=\"next\""));
    let found = page("/ui/repository?name=prod/app&q=1.0.12".into()).await;
    assert_eq!(rows(&found), 11, "1.0.12 and 1.0.120–1.0.129");
    let nothing = page("/ui/repository?name=prod/app&q=zzz".into()).await;
    assert!(nothing.contains("No tags contain"));

    let history = page("/ui/history?name=prod/app".into()).await;
    let older = history
        .split("id=\"older\" href=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .replace("&amp;", "&")
        .replace("&#38;", "&");
    let earlier = page(older).await;
    assert!(
        earlier.contains("1.0.0"),
        "the oldest changes are on a later page"
    );
    assert!(!history.contains("<td>1.0.0</td>"));
}

#[test]
fn the_cli_follows_pages_and_stops_at_its_limit() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start_in(&data, &[]);
    let agent = server.http();
    let config = agent
        .post(server.url("/v2/library/app/blobs/uploads/?digest=sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"))
        .send("{}")
        .unwrap();
    assert_eq!(config.status(), 201);
    for i in 0..120 {
        let body = serde_json::json!({"schemaVersion": 2, "mediaType": common::OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a", "size": 2},
            "layers": [], "annotations": {"n": i.to_string()}});
        let res = agent
            .put(server.url(&format!("/v2/library/app/manifests/t{i}")))
            .content_type(common::OCI_MANIFEST)
            .send(body.to_string())
            .unwrap();
        assert_eq!(res.status(), 201);
    }
    let key = server.admin_key("ops");
    let cli = |args: &[&str]| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_semdock"));
        cmd.args(args)
            .args(["--server", &server.url("")])
            .env("SEMDOCK_API_KEY", &key)
            .env("SEMDOCK_DATA_DIR", &data);
        run(&mut cmd)
    };
    let all = cli(&["history", "library/app"]);
    assert_eq!(
        all.lines().count(),
        120,
        "every page of a history longer than one page"
    );
    let limited = cli(&["history", "library/app", "--limit", "7"]);
    assert_eq!(limited.lines().count(), 7);
    // The newest seven, oldest of them first.
    assert!(
        limited.lines().next().unwrap().contains("\tt113\t"),
        "{limited}"
    );
    assert!(
        limited.lines().last().unwrap().contains("\tt119\t"),
        "{limited}"
    );
    let users: serde_json::Value =
        serde_json::from_str(&cli(&["user", "list", "--output", "json", "--limit", "1"])).unwrap();
    assert_eq!(users.as_array().unwrap().len(), 1);
    let keys: serde_json::Value =
        serde_json::from_str(&cli(&["key", "list", "--output", "json", "--limit", "1"])).unwrap();
    assert_eq!(keys.as_array().unwrap().len(), 1);
}
