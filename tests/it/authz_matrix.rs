//! The authorization matrix: every endpoint of the Distribution API, the management API and
//! the UI, asked by every kind of caller — anonymous, a user of each role in feed `library`,
//! an administrator, a pull API key and an administrator's key — and the answer compared with
//! what the endpoint's rights say. The routes are read from the sources that mount them, so
//! an endpoint added without a row here fails `every_mounted_route_has_a_row`.

use crate::common;

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use actix_web::test::TestRequest;
use common::{OCI_MANIFEST, Resp, TestApp, admin, basic, form, ui_login};
use semdock::domain::auth::{Caller, Principal, Via};
use semdock::model::{Action, Role};
use serde_json::json;

/// What an endpoint needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Needs {
    /// Anyone, logged in or not.
    Anyone,
    /// Any authenticated caller.
    Login,
    /// This action in feed `library`.
    Feed(Action),
    /// A global administrator.
    Admin,
    /// The account itself: a password or UI session (any user), or an administrator's key.
    Account,
    /// The login form itself: authentication, not authorization.
    Authentication,
    /// This action in feed `library`, with proof of the account (not a key or a robot,
    /// unless an administrator's key): managing the feed's robots.
    FeedAccount(Action),
}

/// Where a request goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Area {
    Registry,
    Api,
    Ui,
}

struct Row {
    method: &'static str,
    /// The route as mounted.
    route: &'static str,
    /// The request sent: the route with its parameters filled in; `{me}` is the caller.
    uri: &'static str,
    body: Option<Body>,
    needs: Needs,
}

enum Body {
    Json(serde_json::Value),
    Form(&'static [(&'static str, &'static str)]),
    Manifest,
    Bytes(&'static [u8]),
}

use Body::{Bytes, Form, Json, Manifest};

const DIGEST: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
const UPLOAD: &str = "00000000-0000-4000-8000-000000000000";

/// One row per mounted endpoint: what it is asked, and what it needs.
#[rustfmt::skip]
#[allow(clippy::too_many_lines)]
fn rows() -> Vec<Row> {
    use Needs::{Account, Admin, Anyone, Authentication, Feed, FeedAccount, Login};
    let r = |method, route, uri, body, needs| Row { method, route, uri, body, needs };
    vec![
        // ops
        r("GET", "/healthz", "/healthz", None, Anyone),
        r("GET", "/readyz", "/readyz", None, Anyone),
        // the Distribution API
        r("GET", "/v2/", "/v2/", None, Login),
        r("GET", "/v2/_auth", "/v2/_auth?service=semdock-test&scope=repository:library/app:pull", None, Anyone),
        r("GET", "/v2/_catalog", "/v2/_catalog", None, Anyone),
        r("GET", "/v2/{name}/tags/list", "/v2/library/app/tags/list", None, Feed(Action::Pull)),
        r("GET", "/v2/{name}/referrers/{digest}", "/v2/library/app/referrers/{digest}", None, Feed(Action::Pull)),
        r("GET", "/v2/{name}/manifests/{reference}", "/v2/library/app/manifests/1", None, Feed(Action::Pull)),
        r("HEAD", "/v2/{name}/manifests/{reference}", "/v2/library/app/manifests/1", None, Feed(Action::Pull)),
        r("PUT", "/v2/{name}/manifests/{reference}", "/v2/library/app/manifests/1", Some(Manifest), Feed(Action::Push)),
        r("DELETE", "/v2/{name}/manifests/{reference}", "/v2/library/app/manifests/no-such-tag", None, Feed(Action::Delete)),
        r("POST", "/v2/{name}/blobs/uploads/", "/v2/library/app/blobs/uploads/", None, Feed(Action::Push)),
        r("GET", "/v2/{name}/blobs/uploads/{id}", "/v2/library/app/blobs/uploads/{upload}", None, Feed(Action::Push)),
        r("PATCH", "/v2/{name}/blobs/uploads/{id}", "/v2/library/app/blobs/uploads/{upload}", Some(Bytes(b"abc")), Feed(Action::Push)),
        r("PUT", "/v2/{name}/blobs/uploads/{id}", "/v2/library/app/blobs/uploads/{upload}?digest={digest}", None, Feed(Action::Push)),
        r("DELETE", "/v2/{name}/blobs/uploads/{id}", "/v2/library/app/blobs/uploads/{upload}", None, Feed(Action::Push)),
        r("GET", "/v2/{name}/blobs/{digest}", "/v2/library/app/blobs/{digest}", None, Feed(Action::Pull)),
        r("HEAD", "/v2/{name}/blobs/{digest}", "/v2/library/app/blobs/{digest}", None, Feed(Action::Pull)),
        r("DELETE", "/v2/{name}/blobs/{digest}", "/v2/library/app/blobs/{digest}", None, Feed(Action::Delete)),
        // the management API
        r("GET", "/metrics", "/metrics", None, Admin),
        r("POST", "/api/promotions/promote", "/api/promotions/promote", Some(Json(json!({"packageName": "app", "version": "1", "fromFeed": "library", "toFeed": "library"}))), Feed(Action::Promote)),
        r("GET", "/api/promotions/list", "/api/promotions/list?toFeed=library", None, Login),
        r("GET", "/api/v1/openapi.json", "/api/v1/openapi.json", None, Anyone),
        r("GET", "/api/v1/feeds", "/api/v1/feeds", None, Login),
        r("POST", "/api/v1/feeds", "/api/v1/feeds", Some(Json(json!({"name": "Bad Name"}))), Admin),
        r("GET", "/api/v1/feeds/{feed}", "/api/v1/feeds/library", None, Feed(Action::Pull)),
        r("PATCH", "/api/v1/feeds/{feed}", "/api/v1/feeds/library", Some(Json(json!({}))), Feed(Action::Admin)),
        r("DELETE", "/api/v1/feeds/{feed}", "/api/v1/feeds/nosuchfeed", None, Admin),
        r("GET", "/api/v1/users", "/api/v1/users", None, Admin),
        r("POST", "/api/v1/users", "/api/v1/users", Some(Json(json!({"name": "Bad Name"}))), Admin),
        r("PATCH", "/api/v1/users/{name}", "/api/v1/users/dummy", Some(Json(json!({"disabled": false}))), Admin),
        r("PUT", "/api/v1/users/{name}/password", "/api/v1/users/{me}/password", Some(Json(json!({"password": "short"}))), Account),
        r("PUT", "/api/v1/users/{name}/roles/{feed}", "/api/v1/users/dummy/roles/library", Some(Json(json!({"role": "pull"}))), Feed(Action::Admin)),
        r("DELETE", "/api/v1/users/{name}/roles/{feed}", "/api/v1/users/dummy/roles/library", None, Feed(Action::Admin)),
        r("GET", "/api/v1/keys", "/api/v1/keys", None, Account),
        r("POST", "/api/v1/keys", "/api/v1/keys", Some(Json(json!({"name": ""}))), Account),
        r("DELETE", "/api/v1/keys/{id}", "/api/v1/keys/0000000000000000", None, Account),
        r("GET", "/api/v1/search", "/api/v1/search?q=app", None, Login),
        r("GET", "/api/v1/federation", "/api/v1/federation", None, Admin),
        r("POST", "/api/v1/federation", "/api/v1/federation", Some(Json(json!({"issuer": "https://ci.example", "audience": "a", "claims": {"sub": "x"}, "robot": "robot$library+target"}))), Admin),
        r("DELETE", "/api/v1/federation/{id}", "/api/v1/federation/000000000000", None, Admin),
        r("GET", "/api/v1/robots", "/api/v1/robots?feed=library", None, Feed(Action::Admin)),
        r("POST", "/api/v1/robots", "/api/v1/robots", Some(Json(json!({"name": "matrix", "feed": "library"}))), FeedAccount(Action::Admin)),
        r("PATCH", "/api/v1/robots/{name}", "/api/v1/robots/robot%24library%2Btarget", Some(Json(json!({"description": "changed"}))), FeedAccount(Action::Admin)),
        r("POST", "/api/v1/robots/{name}/rotate", "/api/v1/robots/robot%24library%2Btarget/rotate", None, FeedAccount(Action::Admin)),
        r("DELETE", "/api/v1/robots/{name}", "/api/v1/robots/robot%24library%2Bmatrix", None, FeedAccount(Action::Admin)),
        r("GET", "/api/v1/feeds/{feed}/changes", "/api/v1/feeds/library/changes", None, Feed(Action::Admin)),
        r("GET", "/api/v1/feeds/{feed}/retention", "/api/v1/feeds/library/retention", None, Feed(Action::Admin)),
        r("PUT", "/api/v1/feeds/{feed}/retention", "/api/v1/feeds/library/retention", Some(Json(json!({}))), Feed(Action::Admin)),
        r("POST", "/api/v1/feeds/{feed}/retention/run", "/api/v1/feeds/library/retention/run", Some(Json(json!({"dry_run": true}))), Feed(Action::Admin)),
        r("GET", "/api/v1/feeds/{feed}/sync", "/api/v1/feeds/library/sync", None, Feed(Action::Admin)),
        r("POST", "/api/v1/feeds/{feed}/sync", "/api/v1/feeds/library/sync", None, Feed(Action::Admin)),
        r("POST", "/api/v1/feeds/{feed}/upstream/test", "/api/v1/feeds/library/upstream/test", None, Feed(Action::Admin)),
        r("POST", "/api/v1/gc", "/api/v1/gc", Some(Json(json!({"dry_run": true}))), Admin),
        r("POST", "/api/v1/backup", "/api/v1/backup", Some(Json(json!({"dir": "relative"}))), Admin),
        r("GET", "/api/v1/storage", "/api/v1/storage", None, Admin),
        r("POST", "/api/v1/promotions", "/api/v1/promotions", Some(Json(json!({"from": "library/app:1", "to": "library/app:1"}))), Feed(Action::Promote)),
        r("GET", "/api/v1/resolve", "/api/v1/resolve?ref=library/app:1", None, Feed(Action::Pull)),
        r("GET", "/api/v1/audit", "/api/v1/audit", None, Admin),
        r("GET", "/api/v1/trust/keys", "/api/v1/trust/keys", None, Admin),
        r("POST", "/api/v1/trust/keys", "/api/v1/trust/keys", Some(Json(json!({"name": "Bad Name", "pem": "x"}))), Admin),
        r("DELETE", "/api/v1/trust/keys/{name}", "/api/v1/trust/keys/nosuchkey", None, Admin),
        r("GET", "/api/v1/trust/roots", "/api/v1/trust/roots", None, Admin),
        r("POST", "/api/v1/trust/roots", "/api/v1/trust/roots", Some(Json(json!({"name": "Bad Name", "root": {}}))), Admin),
        r("DELETE", "/api/v1/trust/roots/{name}", "/api/v1/trust/roots/nosuchroot", None, Admin),
        r("GET", "/api/v1/trust/stores", "/api/v1/trust/stores", None, Admin),
        r("POST", "/api/v1/trust/stores", "/api/v1/trust/stores", Some(Json(json!({"name": "Bad Name", "pem": "x"}))), Admin),
        r("DELETE", "/api/v1/trust/stores/{name}", "/api/v1/trust/stores/nosuchstore", None, Admin),
        r("GET", "/api/v1/feeds/{feed}/signature-policy", "/api/v1/feeds/library/signature-policy", None, Feed(Action::Pull)),
        r("PUT", "/api/v1/feeds/{feed}/signature-policy", "/api/v1/feeds/library/signature-policy", Some(Json(json!({"keys": []}))), Feed(Action::Admin)),
        r("DELETE", "/api/v1/feeds/{feed}/signature-policy", "/api/v1/feeds/library/signature-policy", None, Feed(Action::Admin)),
        r("GET", "/api/v1/verify", "/api/v1/verify?ref=library/app:1", None, Feed(Action::Pull)),
        r("GET", "/api/v1/feeds/{feed}/quota", "/api/v1/feeds/library/quota", None, Feed(Action::Pull)),
        // Removing it (the matrix must not leave a quota for later rows).
        r("PUT", "/api/v1/feeds/{feed}/quota", "/api/v1/feeds/library/quota", Some(Json(json!({"bytes": null}))), Admin),
        r("GET", "/api/v1/maintenance", "/api/v1/maintenance", None, Login),
        // Turning it off (the matrix must not leave the registry read-only for later rows).
        r("PUT", "/api/v1/maintenance", "/api/v1/maintenance", Some(Json(json!({"read_only": false}))), Admin),
        r("GET", "/api/v1/vulndb", "/api/v1/vulndb", None, Admin),
        r("POST", "/api/v1/vulndb", "/api/v1/vulndb?name=none.json", Some(Bytes(b"{}")), Admin),
        r("GET", "/api/v1/vulnerabilities", "/api/v1/vulnerabilities?ref=library/app:1", None, Feed(Action::Pull)),
        r("GET", "/api/v1/vulnerabilities/affected", "/api/v1/vulnerabilities/affected?id=CVE-0-0", None, Login),
        r("GET", "/api/v1/sbom", "/api/v1/sbom?ref=library/app:1", None, Feed(Action::Pull)),
        r("GET", "/api/v1/feeds/{feed}/vuln-policy", "/api/v1/feeds/library/vuln-policy", None, Feed(Action::Pull)),
        r("PUT", "/api/v1/feeds/{feed}/vuln-policy", "/api/v1/feeds/library/vuln-policy", Some(Json(json!({"refuse_at": "critical"}))), Feed(Action::Admin)),
        r("DELETE", "/api/v1/feeds/{feed}/vuln-policy", "/api/v1/feeds/library/vuln-policy", None, Feed(Action::Admin)),
        r("POST", "/api/v1/feeds/{feed}/vuln-policy/exceptions", "/api/v1/feeds/library/vuln-policy/exceptions", Some(Json(json!({"advisory": "CVE-1", "reason": "r"}))), Feed(Action::Admin)),
        r("DELETE", "/api/v1/feeds/{feed}/vuln-policy/exceptions/{advisory}", "/api/v1/feeds/library/vuln-policy/exceptions/CVE-1", None, Feed(Action::Admin)),
        r("GET", "/api/v1/webhooks", "/api/v1/webhooks", None, Admin),
        r("POST", "/api/v1/webhooks", "/api/v1/webhooks", Some(Json(json!({"url": "not a url", "feed": "library"}))), Feed(Action::Admin)),
        r("PATCH", "/api/v1/webhooks/{id}", "/api/v1/webhooks/000000000000", Some(Json(json!({}))), Admin),
        r("DELETE", "/api/v1/webhooks/{id}", "/api/v1/webhooks/000000000000", None, Admin),
        r("GET", "/api/v1/webhooks/{id}/deliveries", "/api/v1/webhooks/000000000000/deliveries", None, Admin),
        r("POST", "/api/v1/webhooks/{id}/deliveries/{event}/redeliver", "/api/v1/webhooks/000000000000/deliveries/1/redeliver", None, Admin),
        r("GET", "/api/v1/replication", "/api/v1/replication", None, Admin),
        r("GET", "/api/v1/feeds/{feed}/replica", "/api/v1/feeds/library/replica", None, Feed(Action::Pull)),
        r("PUT", "/api/v1/feeds/{feed}/replica", "/api/v1/feeds/library/replica", Some(Json(json!({"source": "not a url", "writers": []}))), Feed(Action::Admin)),
        r("DELETE", "/api/v1/feeds/{feed}/replica", "/api/v1/feeds/library/replica", None, Feed(Action::Admin)),
        r("POST", "/api/v1/replication", "/api/v1/replication", Some(Json(json!({"name": "x", "url": "not a url", "feed": "library"}))), Feed(Action::Admin)),
        r("GET", "/api/v1/replication/{name}", "/api/v1/replication/none", None, Admin),
        r("PATCH", "/api/v1/replication/{name}", "/api/v1/replication/none", Some(Json(json!({}))), Admin),
        r("DELETE", "/api/v1/replication/{name}", "/api/v1/replication/none", None, Admin),
        r("POST", "/api/v1/replication/{name}/run", "/api/v1/replication/none/run", None, Admin),
        r("POST", "/api/v1/repositories/{repo}/history/carried", "/api/v1/repositories/library/app/history/carried", Some(Json(json!({"tag": "1.0.0", "origin": "not a url", "entries": []}))), Feed(Action::Admin)),
        r("POST", "/api/v1/repositories/{repo}/tags/{tag}/accept-upstream", "/api/v1/repositories/library/app/tags/9.9.9/accept-upstream", None, Feed(Action::Admin)),
        r("DELETE", "/api/v1/repositories/{repo}/tags/{tag}", "/api/v1/repositories/library/app/tags/9.9.9", None, Feed(Action::Delete)),
        r("POST", "/api/v1/repositories/{repo}/tags/{tag}/purge", "/api/v1/repositories/library/app/tags/9.9.9/purge", None, Feed(Action::Admin)),
        r("GET", "/api/v1/repositories/{repo}/tags", "/api/v1/repositories/library/app/tags", None, Feed(Action::Pull)),
        r("GET", "/api/v1/repositories/{repo}/history", "/api/v1/repositories/library/app/history", None, Feed(Action::Pull)),
        // the UI
        r("GET", "/", "/", None, Anyone),
        r("GET", "/favicon.ico", "/favicon.ico", None, Anyone),
        r("GET", "/ui/static/{file}", "/ui/static/app.css", None, Anyone),
        r("GET", "/ui/login", "/ui/login", None, Anyone),
        r("POST", "/ui/login", "/ui/login", None, Authentication),
        // Without a provider configured: a page saying so, to anyone.
        r("GET", "/ui/oidc/start", "/ui/oidc/start", None, Anyone),
        r("GET", "/ui/oidc/callback", "/ui/oidc/callback?code=x&state=y", None, Anyone),
        r("GET", "/ui/", "/ui/", None, Login),
        r("GET", "/ui", "/ui", None, Login),
        r("POST", "/ui/feeds", "/ui/feeds", Some(Form(&[("name", "Bad Name")])), Admin),
        r("GET", "/ui/feeds/{feed}", "/ui/feeds/library", None, Feed(Action::Pull)),
        r("GET", "/ui/feeds/{feed}/settings", "/ui/feeds/library/settings", None, Feed(Action::Admin)),
        r("POST", "/ui/feeds/{feed}/settings", "/ui/feeds/library/settings", Some(Form(&[("op", "preview")])), Feed(Action::Admin)),
        r("POST", "/ui/roles", "/ui/roles", Some(Form(&[ ("user", "dummy"), ("feed", "library"), ("role", "pull"), ])), Feed(Action::Admin)),
        r("GET", "/ui/repository", "/ui/repository?name=library/app", None, Feed(Action::Pull)),
        r("GET", "/ui/manifest", "/ui/manifest?name=library/app&digest={digest}", None, Feed(Action::Pull)),
        r("GET", "/ui/history", "/ui/history?name=library/app", None, Feed(Action::Pull)),
        r("GET", "/ui/check-tag", "/ui/check-tag?repository=library/app&tag=x&digest={digest}", None, Feed(Action::Promote)),
        r("POST", "/ui/promote", "/ui/promote", Some(Form(&[ ("from", "library/app"), ("digest", DIGEST), ("target_feed", "library"), ("target_name", "app"), ("target_tag", "x"), ])), Feed(Action::Promote)),
        r("POST", "/ui/tags/delete", "/ui/tags/delete", Some(Form(&[ ("repository", "library/app"), ("tag", "no-such-tag"), ])), Feed(Action::Delete)),
        r("POST", "/ui/tags/purge", "/ui/tags/purge", Some(Form(&[("repository", "library/app"), ("tag", "9.9.9")])), Feed(Action::Admin)),
        r("GET", "/ui/audit", "/ui/audit?kind=login", None, Admin),
        r("GET", "/ui/audit.jsonl", "/ui/audit.jsonl", None, Admin),
        r("GET", "/ui/webhooks", "/ui/webhooks", None, Admin),
        r("POST", "/ui/webhooks", "/ui/webhooks", Some(Form(&[("url", "not a url")])), Admin),
        r("POST", "/ui/webhooks/{id}/delete", "/ui/webhooks/000000000000/delete", Some(Form(&[])), Admin),
        r("POST", "/ui/webhooks/{id}/redeliver", "/ui/webhooks/000000000000/redeliver", Some(Form(&[("event", "1")])), Admin),
        r("GET", "/ui/replication", "/ui/replication", None, Admin),
        r("POST", "/ui/replication", "/ui/replication", Some(Form(&[("name", "x"), ("feed", "library"), ("url", "not a url")])), Admin),
        r("POST", "/ui/replication/{name}/run", "/ui/replication/none/run", Some(Form(&[])), Admin),
        r("POST", "/ui/replication/{name}/delete", "/ui/replication/none/delete", Some(Form(&[])), Admin),
        r("GET", "/ui/users", "/ui/users", None, Admin),
        r("POST", "/ui/users", "/ui/users", Some(Form(&[("name", "Bad Name")])), Admin),
        r("POST", "/ui/users/{name}/state", "/ui/users/dummy/state", Some(Form(&[("state", "enable")])), Admin),
        r("POST", "/ui/users/{name}/password", "/ui/users/dummy/password", Some(Form(&[])), Admin),
        r("GET", "/ui/password", "/ui/password", None, Login),
        r("POST", "/ui/password", "/ui/password", Some(Form(&[("password", "a"), ("repeat", "b")])), Account),
        r("GET", "/ui/trust", "/ui/trust", None, Admin),
        r("POST", "/ui/maintenance", "/ui/maintenance", Some(Form(&[("read_only", "off")])), Admin),
        r("POST", "/ui/feeds/{feed}/quota", "/ui/feeds/library/quota", Some(Form(&[("gib", "")])), Admin),
        r("GET", "/ui/search", "/ui/search?q=app", None, Login),
        r("GET", "/ui/robots", "/ui/robots?feed=library", None, Feed(Action::Admin)),
        r("POST", "/ui/robots", "/ui/robots", Some(Form(&[("feed", "library"), ("name", "uimatrix")])), FeedAccount(Action::Admin)),
        r("POST", "/ui/robots/action", "/ui/robots/action", Some(Form(&[("name", "robot$library+target"), ("action", "enable")])), FeedAccount(Action::Admin)),
        r("GET", "/ui/vulndb", "/ui/vulndb", None, Admin),
        r("POST", "/ui/vulndb", "/ui/vulndb", Some(Form(&[("file", "x")])), Admin),
        r("POST", "/ui/trust", "/ui/trust", Some(Form(&[("name", "Bad Name"), ("pem", "x")])), Admin),
        r("POST", "/ui/trust/{name}/remove", "/ui/trust/nosuchkey/remove", Some(Form(&[])), Admin),
        r("POST", "/ui/trust/roots", "/ui/trust/roots", Some(Form(&[("name", "Bad Name"), ("json", "{}")])), Admin),
        r("POST", "/ui/trust/roots/{name}/remove", "/ui/trust/roots/nosuchroot/remove", Some(Form(&[])), Admin),
        r("POST", "/ui/trust/stores", "/ui/trust/stores", Some(Form(&[("name", "Bad Name"), ("pem", "x")])), Admin),
        r("POST", "/ui/trust/stores/{name}/remove", "/ui/trust/stores/nosuchstore/remove", Some(Form(&[])), Admin),
        r("GET", "/ui/keys", "/ui/keys", None, Login),
        r("POST", "/ui/keys", "/ui/keys", Some(Form(&[("name", "")])), Account),
        r("POST", "/ui/keys/{id}/revoke", "/ui/keys/0000000000000000/revoke", Some(Form(&[])), Account),
        // Last: it ends the session it is sent with.
        r("POST", "/ui/logout", "/ui/logout", Some(Form(&[])), Login),
    ]
}

fn area(route: &str) -> Area {
    if route.starts_with("/v2") {
        Area::Registry
    } else if route == "/" || route.starts_with("/ui") {
        Area::Ui
    } else {
        Area::Api
    }
}

/// The routes the sources mount, as (method, path): `.route("P", web::M()` and the methods of
/// `web::resource(P)`, under the scope each file mounts them in.
fn mounted_routes() -> BTreeSet<(String, String)> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/http");
    let route =
        regex::Regex::new(r#"\.route\(\s*"([^"]*)",\s*web::(get|post|put|patch|delete|head)\(\)"#)
            .unwrap();
    let resource = regex::Regex::new(r#"web::resource\((?:format!\()?"([^"]*)""#).unwrap();
    let method = regex::Regex::new(r"\.(get|head|put|post|patch|delete)\([a-z_:]+\)").unwrap();
    let mut out = BTreeSet::new();
    for (file, scope) in [
        ("ops.rs", ""),
        ("api/mod.rs", "/api/v1"),
        ("ui/mod.rs", "/ui"),
        ("oci/mod.rs", "/v2"),
    ] {
        let text = std::fs::read_to_string(src.join(file)).unwrap();
        for c in route.captures_iter(&text) {
            // Routes on `cfg` itself are outside the file's scope.
            let before = &text[..c.get(0).unwrap().start()];
            let on_cfg = before.trim_end().ends_with("cfg");
            let prefix = if on_cfg { "" } else { scope };
            let path = c[1].replace(":[^{}]+", "");
            out.insert((c[2].to_uppercase(), format!("{prefix}{path}")));
        }
        let starts: Vec<_> = resource.captures_iter(&text).collect();
        for (i, c) in starts.iter().enumerate() {
            let begin = c.get(0).unwrap().end();
            let end = starts
                .get(i + 1)
                .map_or(text.len(), |n| n.get(0).unwrap().start());
            let block = &text[begin..end];
            let block = &block[..block.find(".default_service").unwrap_or(block.len())];
            let block = &block[..block.find(".route(").unwrap_or(block.len())];
            let path = c[1]
                .replace("{NAME}", "{name}")
                .replace("{{", "{")
                .replace("}}", "}");
            let prefix = if path.starts_with("/api") || path.starts_with("/metrics") {
                ""
            } else {
                scope
            };
            for m in method.captures_iter(block) {
                out.insert((m[1].to_uppercase(), format!("{prefix}{path}")));
            }
        }
    }
    out
}

#[test]
fn every_mounted_route_has_a_row() {
    let mounted = mounted_routes();
    assert!(
        mounted.len() > 60,
        "the route reader found only {mounted:?}"
    );
    let rows: BTreeSet<(String, String)> = rows()
        .iter()
        .map(|r| (r.method.to_owned(), r.route.to_owned()))
        .collect();
    let missing: Vec<_> = mounted.difference(&rows).collect();
    assert!(
        missing.is_empty(),
        "endpoints without a row in the authorization matrix: {missing:?}"
    );
    let stale: Vec<_> = rows.difference(&mounted).collect();
    assert!(
        stale.is_empty(),
        "rows for endpoints that are not mounted: {stale:?}"
    );
}

/// A kind of caller, with what it sends.
struct Who {
    name: &'static str,
    /// `Authorization` for the registry and the API; `None`: anonymous.
    authorization: Option<String>,
    /// Session cookie and CSRF token for the UI; `None`: the UI is not tried (API keys).
    session: Option<(String, String)>,
    /// The user acting (for `{me}`).
    user: &'static str,
    role: Option<Role>,
    admin: bool,
    key: bool,
}

impl Who {
    fn may(&self, needs: Needs) -> bool {
        let is_known = self.authorization.is_some();
        match needs {
            Needs::Anyone | Needs::Authentication => true,
            Needs::Login => is_known,
            Needs::Admin => self.admin,
            Needs::Account => is_known && (!self.key || self.admin),
            Needs::Feed(action) => self.admin || self.role.is_some_and(|r| r.caps().allows(action)),
            Needs::FeedAccount(action) => {
                is_known
                    && (!self.key || self.admin)
                    && (self.admin || self.role.is_some_and(|r| r.caps().allows(action)))
            }
        }
    }
}

fn denied(area: Area, res: &Resp) -> bool {
    match area {
        Area::Ui => {
            res.status == 403
                || res.status == 401
                // To the login form, to come back here (a logout goes there too, without).
                || (res.status == 303
                    && res
                        .header("location")
                        .is_some_and(|l| l.starts_with("/ui/login?next=")))
                // The live policy check answers in JSON, always 200.
                || (res.header("content-type").is_some_and(|c| c.contains("json"))
                    && String::from_utf8_lossy(&res.body).contains("access denied"))
        }
        _ => res.status == 401 || res.status == 403,
    }
}

async fn callers(app: &TestApp) -> Vec<Who> {
    let mut out = vec![Who {
        name: "anonymous",
        authorization: None,
        session: None,
        user: "anonymous",
        role: None,
        admin: false,
        key: false,
    }];
    app.auth
        .users()
        .create(&admin(), "dummy", Some("dummy-password"), false)
        .unwrap();
    for (name, role) in [
        ("puller", "pull"),
        ("pusher", "push"),
        ("promoter", "promote"),
        ("deleter", "delete"),
        ("feedadmin", "admin"),
    ] {
        let password = format!("{name}-password");
        app.auth
            .users()
            .create(&admin(), name, Some(&password), false)
            .unwrap();
        app.auth
            .users()
            .grant(&admin(), name, "library", Some(role))
            .unwrap();
        out.push(Who {
            name,
            authorization: Some(basic(name, &password)),
            session: Some(
                ui_login(app, name, &password)
                    .await
                    .unwrap_or_else(|r| panic!("{name}: {}", r.status)),
            ),
            user: name,
            role: Some(role.parse().unwrap()),
            admin: false,
            key: false,
        });
    }
    out.push(Who {
        name: "administrator",
        authorization: Some(basic("admin", &app.admin_password)),
        session: Some(
            ui_login(app, "admin", &app.admin_password)
                .await
                .unwrap_or_else(|r| panic!("admin: {}", r.status)),
        ),
        user: "admin",
        role: None,
        admin: true,
        key: false,
    });
    let puller = Caller {
        principal: Principal::User {
            name: "puller".into(),
            admin: false,
        },
        via: Via::Password,
    };
    let pull_key = app
        .auth
        .keys()
        .create(
            &puller,
            None,
            "ci",
            &std::collections::BTreeMap::from([("library".to_owned(), "pull".to_owned())]),
            false,
            None,
        )
        .unwrap();
    out.push(Who {
        name: "pull key",
        authorization: Some(basic("api", &pull_key.key)),
        session: None,
        user: "puller",
        role: Some(Role::Pull),
        admin: false,
        key: true,
    });
    out.extend(robot_callers(app));
    out.push(Who {
        name: "admin key",
        authorization: Some(app.admin_auth.clone()),
        session: None,
        user: "admin",
        role: None,
        admin: true,
        key: true,
    });
    out
}

/// A test issuer's signing key (P-256), and its public half as the JWKS a rule names.
const ISSUER_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgXwRxHCX6n3HOFrXE
qoqb5/7r4dYee3oAGNV1jLp/lt6hRANCAASusylC9izn+PAsnHMV8yKX+z6/kKtC
J4e06wlSbeSGKRWjlLl85AiIbcS0y9iuKN1sa8fIC7QlDJ4/8NYOUCAl
-----END PRIVATE KEY-----
";
const ISSUER_JWKS: &str = r#"{"keys":[{"kty":"EC","crv":"P-256","kid":"matrix","use":"sig","alg":"ES256","x":"rrMpQvYs5_jwLJxzFfMil_s-v5CrQieHtOsJUm3khik","y":"FaOUuXzkCIhtxLTL2K4o3Wxrx8gLtCUMnj_w1g5QICU"}]}"#;

/// The DER of a PKCS #8 PEM.
fn pkcs8_der(pem: &str) -> Vec<u8> {
    use base64::Engine as _;
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .unwrap()
}

/// A CI job with a workload identity token that a rule maps to the push robot of `library`.
fn federated_caller(app: &TestApp) -> Who {
    let issuer = "https://ci.example";
    app.auth
        .federation()
        .add(
            &admin(),
            semdock::domain::auth::FederationRule {
                issuer: issuer.into(),
                audience: "semdock".into(),
                claims: [("sub".to_owned(), "repo:acme/*".to_owned())].into(),
                robot: "robot$library+ci".into(),
                jwks: Some(ISSUER_JWKS.into()),
                created: 0,
                created_by: String::new(),
            },
        )
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.kid = Some("matrix".into());
    let token = jsonwebtoken::encode(
        &header,
        &json!({"iss": issuer, "aud": "semdock", "sub": "repo:acme/web:ref:refs/tags/v1", "iat": now, "exp": now + 3600}),
        &jsonwebtoken::EncodingKey::from_ec_der(&pkcs8_der(ISSUER_KEY)),
    )
    .unwrap();
    Who {
        name: "federated CI job",
        authorization: Some(basic("oidc", &token)),
        session: None,
        user: "robot$library+ci",
        role: Some(Role::Push),
        admin: false,
        key: true,
    }
}

/// Robots of feed `library`: one that pushes, one that administers the feed; and the robot
/// every robot route acts on.
fn robot_callers(app: &TestApp) -> Vec<Who> {
    let mut out = Vec::new();
    for (short, role) in [("ci", "push"), ("boss", "admin"), ("target", "pull")] {
        let made = app
            .auth
            .robots()
            .create(
                &admin(),
                Some("library"),
                short,
                "",
                &std::collections::BTreeMap::from([("library".to_owned(), role.to_owned())]),
                None,
            )
            .unwrap();
        if short == "target" {
            continue;
        }
        if short == "ci" {
            out.push(federated_caller(app));
        }
        out.push(Who {
            name: if short == "ci" {
                "push robot"
            } else {
                "feed-admin robot"
            },
            authorization: Some(basic(&made.name, &made.secret)),
            session: None,
            user: if short == "ci" {
                "robot$library+ci"
            } else {
                "robot$library+boss"
            },
            role: Some(role.parse().unwrap()),
            admin: false,
            key: true,
        });
    }
    out
}

fn request(row: &Row, who: &Who, area: Area) -> TestRequest {
    let uri = row
        .uri
        .replace("{digest}", DIGEST)
        .replace("{upload}", UPLOAD)
        .replace("{me}", who.user);
    let mut req = match row.method {
        "GET" => TestRequest::get(),
        "HEAD" => TestRequest::default().method(actix_web::http::Method::HEAD),
        "POST" => TestRequest::post(),
        "PUT" => TestRequest::put(),
        "PATCH" => TestRequest::patch(),
        "DELETE" => TestRequest::delete(),
        other => panic!("{other}"),
    }
    .uri(&uri);
    let mut csrf = String::new();
    match area {
        Area::Ui => {
            if let Some((cookie, token)) = &who.session {
                req = req.insert_header(("Cookie", cookie.as_str()));
                csrf.clone_from(token);
            }
        }
        _ => {
            if let Some(a) = &who.authorization {
                req = req.insert_header(("Authorization", a.as_str()));
            }
        }
    }
    match &row.body {
        None => req,
        Some(Json(v)) => req.set_json(v),
        Some(Form(pairs)) => {
            let mut all = pairs.to_vec();
            all.push(("csrf", &csrf));
            req.insert_header(("Content-Type", "application/x-www-form-urlencoded"))
                .set_payload(form(&all))
        }
        Some(Manifest) => req
            .insert_header(("Content-Type", OCI_MANIFEST))
            .set_payload(
                json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": DIGEST, "size": 1},
                    "layers": []})
                .to_string(),
            ),
        Some(Bytes(b)) => req.insert_header(("Content-Range", "0-2")).set_payload(b.to_vec()),
    }
}

#[actix_web::test]
async fn every_endpoint_answers_every_caller_as_its_rights_say() {
    let app = TestApp::new();
    let (_, _) = app.push_image("library/app", "1", &[b"matrix"]).await;
    let callers = callers(&app).await;
    let mut wrong = Vec::new();
    let mut asked = HashMap::new();
    for row in rows() {
        let area = area(row.route);
        if row.needs == Needs::Authentication {
            // The login form: reachable by anyone; what it accepts is tested in tests/it/ui.rs.
            let res = app
                .send_as(
                    TestRequest::post()
                        .uri(row.uri)
                        .insert_header(("Content-Type", "application/x-www-form-urlencoded"))
                        .set_payload(form(&[("user", "x"), ("password", "y")])),
                )
                .await;
            assert!(
                res.status < 500 && res.status != 404,
                "{} {}: {}",
                row.method,
                row.uri,
                res.status
            );
            continue;
        }
        for who in &callers {
            if area == Area::Ui && who.authorization.is_some() && who.session.is_none() {
                continue; // API keys do not open UI sessions.
            }
            let res = app.send_as(request(&row, who, area)).await;
            assert!(
                res.status < 500,
                "{} {} as {}: {} {}",
                row.method,
                row.uri,
                who.name,
                res.status,
                String::from_utf8_lossy(&res.body)
            );
            let expected = who.may(row.needs);
            if denied(area, &res) == expected {
                wrong.push(format!(
                    "{} {} as {}: {} ({}), expected {}",
                    row.method,
                    row.uri,
                    who.name,
                    res.status,
                    String::from_utf8_lossy(&res.body)
                        .chars()
                        .take(160)
                        .collect::<String>(),
                    if expected { "allowed" } else { "denied" }
                ));
            }
            *asked.entry(who.name).or_insert(0) += 1;
        }
    }
    assert!(
        wrong.is_empty(),
        "{} cells disagree:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    // Every kind of caller was asked something.
    assert_eq!(asked.len(), callers.len(), "{asked:?}");
}
