//! The release pipeline as a release engineer runs it, against the real binary on both
//! storage backends (the embedded default, and PostgreSQL with S3): push, resolve, promote with
//! the expected digest, promotion-only feeds, required referrers, the audit log, and webhooks
//! delivered to a real HTTP receiver on loopback — through the receiver being down and a
//! `kill -9` of the registry.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::cluster::Cluster;
use common::{OCI_MANIFEST, Server, http_as, push_image_over_http, run, run_fail};
use hmac::{KeyInit, Mac};
use serde_json::{Value, json};

/// Quick retries, so that "down for a while" is seconds.
const FAST_RETRIES: [(&str, &str); 3] = [
    ("SEMDOCK_WEBHOOKS__FIRST_BACKOFF_MS", "200"),
    ("SEMDOCK_WEBHOOKS__MAX_BACKOFF_SECONDS", "1"),
    ("SEMDOCK_WEBHOOKS__POLL_MS", "100"),
];

#[derive(Clone, Copy, Debug)]
pub(crate) enum Backend {
    Embedded,
    Distributed,
}

/// One registry node on a backend, restartable on the same storage.
pub(crate) struct Registry {
    pub(crate) server: Server,
    cluster: Option<Cluster>,
    dir: tempfile::TempDir,
    env: Vec<(&'static str, &'static str)>,
}

impl Registry {
    pub(crate) fn start(backend: Backend) -> Self {
        Self::start_with(backend, &[])
    }

    /// A start with settings beyond the quick retries.
    pub(crate) fn start_with(backend: Backend, more: &[(&'static str, &'static str)]) -> Self {
        let mut env = FAST_RETRIES.to_vec();
        env.extend_from_slice(more);
        let dir = tempfile::tempdir().unwrap();
        let (server, cluster) = match backend {
            Backend::Embedded => (Server::start_in(&dir.path().join("data"), &env), None),
            Backend::Distributed => {
                let mut cluster = Cluster::start_with(1, &env);
                (cluster.nodes.remove(0), Some(cluster))
            }
        };
        Self {
            server,
            cluster,
            dir,
            env,
        }
    }

    pub(crate) fn admin(&self) -> ureq::Agent {
        self.server.http()
    }

    pub(crate) fn url(&self, path: &str) -> String {
        self.server.url(path)
    }

    /// `kill -9`, then a start on the same storage.
    fn crash_and_restart(&mut self) {
        let password = self.server.admin_password.clone();
        self.server.kill9();
        self.server = match &self.cluster {
            Some(c) => c.start_node(0),
            None => Server::start_in(&self.dir.path().join("data"), &self.env),
        };
        self.server.admin_password = password;
    }

    pub(crate) fn json(&self, method: &str, path: &str, body: &Value) -> (u16, Value) {
        let agent = self.admin();
        let url = self.url(path);
        let req = match method {
            "POST" => agent.post(&url),
            "PATCH" => agent.patch(&url),
            "PUT" => agent.put(&url),
            _ => unreachable!(),
        };
        let mut res = req
            .header("Content-Type", "application/json")
            .send(body.to_string())
            .unwrap();
        let status = res.status().as_u16();
        let text = res.body_mut().read_to_string().unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub(crate) fn delete(&self, path: &str) -> u16 {
        self.admin()
            .delete(&self.url(path))
            .call()
            .unwrap()
            .status()
            .as_u16()
    }

    pub(crate) fn get(&self, path: &str) -> (u16, Value) {
        let mut res = self.admin().get(&self.url(path)).call().unwrap();
        let status = res.status().as_u16();
        let text = res.body_mut().read_to_string().unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Pushes an image whose layer is `layer` as `repo:tag`; returns the status and digest.
    pub(crate) fn push(&self, repo: &str, tag: &str, layer: &str) -> (u16, String) {
        let agent = self.admin();
        let base = self.url("");
        let (digest, body) = push_image_over_http(&agent, &base, repo, layer.as_bytes());
        let res = agent
            .put(&format!("{base}/v2/{repo}/manifests/{tag}"))
            .header("Content-Type", OCI_MANIFEST)
            .send(&body[..])
            .unwrap();
        (res.status().as_u16(), digest)
    }

    /// `semdock ARGS --server URL` with the administrator's key.
    pub(crate) fn cli(&self, args: &[&str]) -> std::process::Command {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_semdock"));
        cmd.args(args)
            .args(["--server", &self.url("")])
            .env("SEMDOCK_API_KEY", self.admin_key());
        cmd
    }

    pub(crate) fn admin_key(&self) -> String {
        let (status, key) = self.json(
            "POST",
            "/api/v1/keys",
            &json!({"name": "release-cli", "admin": true, "owner_roles": true}),
        );
        assert_eq!(status, 201, "{key}");
        key["key"].as_str().unwrap().to_owned()
    }
}

/// One request the receiver was sent.
#[derive(Debug, Clone)]
struct Received {
    headers: BTreeMap<String, String>,
    body: Vec<u8>,
}

impl Received {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    fn signed_by(&self, secret: &str) -> bool {
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(&self.body);
        let want = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        self.headers.get("x-semdock-signature") == Some(&want)
    }
}

/// A real HTTP receiver on loopback: answers every POST with `status` (503 while "down"),
/// keeping the requests it answered 2xx. Stopped (its port closed) with `stop`.
struct Receiver {
    port: u16,
    status: Arc<AtomicU16>,
    got: Arc<Mutex<Vec<Received>>>,
    stopped: Arc<AtomicBool>,
}

impl Receiver {
    fn start() -> Self {
        Self::on(0)
    }

    fn on(port: u16) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let status = Arc::new(AtomicU16::new(200));
        let got = Arc::new(Mutex::new(Vec::new()));
        let stopped = Arc::new(AtomicBool::new(false));
        let (s, g, stop) = (status.clone(), got.clone(), stopped.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                if stop.load(Ordering::SeqCst) {
                    return; // the listener closes with this thread
                }
                let (s, g, stop) = (s.clone(), g.clone(), stop.clone());
                std::thread::spawn(move || serve(&stream, &s, &g, &stop));
            }
        });
        Self {
            port,
            status,
            got,
            stopped,
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hook", self.port)
    }

    /// Closes the port: connections are refused until a receiver starts on it again.
    fn stop(&mut self) {
        self.stopped.store(true, Ordering::SeqCst);
        // Wakes the accept loop, which then returns and closes the port.
        let _ = std::net::TcpStream::connect(("127.0.0.1", self.port));
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
            assert!(Instant::now() < deadline, "the receiver did not stop");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn received(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    /// Waits until `done` holds for what arrived.
    fn wait_for(&self, what: &str, done: impl Fn(&[Received]) -> bool) -> Vec<Received> {
        let deadline = Instant::now() + Duration::from_mins(1);
        loop {
            let got = self.received();
            if done(&got) {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "{what} never arrived; got {:#?}",
                got.iter().map(Received::json).collect::<Vec<_>>()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn serve(
    stream: &std::net::TcpStream,
    status: &AtomicU16,
    got: &Mutex<Vec<Received>>,
    stopped: &AtomicBool,
) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || !line.starts_with("POST") {
            return;
        }
        let mut headers = BTreeMap::new();
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
            }
        }
        let len: usize = headers
            .get("content-length")
            .and_then(|l| l.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; len];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        if stopped.load(Ordering::SeqCst) {
            return; // a stopped receiver answers nothing, even on an open connection
        }
        let code = status.load(Ordering::SeqCst);
        if (200..300).contains(&code) {
            got.lock().unwrap().push(Received { headers, body });
        }
        let reply = format!("HTTP/1.1 {code} X\r\nContent-Length: 0\r\n\r\n");
        if { stream }.write_all(reply.as_bytes()).is_err() {
            return;
        }
    }
}

fn events(got: &[Received]) -> BTreeSet<String> {
    got.iter()
        .map(|r| r.json()["event"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// A webhook to `url`; returns (id, secret).
fn webhook(r: &Registry, body: &Value) -> (String, String) {
    let (status, hook) = r.json("POST", "/api/v1/webhooks", body);
    assert_eq!(status, 201, "{hook}");
    (
        hook["id"].as_str().unwrap().to_owned(),
        hook["secret"].as_str().unwrap().to_owned(),
    )
}

#[allow(clippy::too_many_lines)]
fn pipeline(backend: Backend) {
    let r = Registry::start(backend);
    for feed in ["staging", "other"] {
        let (status, body) = r.json("POST", "/api/v1/feeds", &json!({"name": feed}));
        assert_eq!(status, 201, "{body}");
    }
    let (status, _) = r.json("PATCH", "/api/v1/feeds/prod", &json!({"versioning": true}));
    assert_eq!(status, 200);

    // A tested image, then the staging tag moved to another one behind the release's back.
    let (status, tested) = r.push("staging/web", "5.1.0", "the tested build");
    assert_eq!(status, 201);
    let pinned = run(&mut r.cli(&["resolve", "staging/web:5.1.0"]));
    assert_eq!(
        pinned.trim(),
        format!("{}/staging/web@{tested}", r.server.addr),
        "resolve prints the pinned reference"
    );
    let (status, moved) = r.push("staging/web", "5.1.0", "an untested build");
    assert_eq!(status, 201);

    // Every promotion form refuses when the source no longer points at the expected digest.
    let (status, refused) = r.json(
        "POST",
        "/api/v1/promotions",
        &json!({"from": "staging/web:5.1.0", "to": "prod/web:5.1.0", "expected_digest": tested}),
    );
    assert_eq!(status, 409, "{refused}");
    let message = refused["error"]["message"].as_str().unwrap();
    assert!(
        message.contains(&tested) && message.contains(&moved),
        "{message}"
    );
    let refused = run_fail(&mut r.cli(&[
        "promote",
        &format!("staging/web:5.1.0@{tested}"),
        "prod/web:5.1.0",
    ]));
    assert!(
        refused.contains(&tested) && refused.contains(&moved),
        "{refused}"
    );
    let (status, body) = r.json(
        "POST",
        "/api/promotions/promote",
        &json!({"packageName": "web", "version": "5.1.0", "fromFeed": "staging", "toFeed": "prod", "expectedDigest": tested}),
    );
    assert_eq!(status, 409, "{body}");
    let (status, _) = r.get("/api/v1/repositories/prod/web/tags");
    assert_eq!(status, 404, "nothing reached prod");

    // The RepoDigest docker prints promotes exactly what was tested; another host is refused.
    let repo_digest = format!("{}/staging/web@{tested}", r.server.addr);
    let out = run(&mut r.cli(&[
        "promote",
        &repo_digest,
        "prod/web:5.1.0",
        "--comment",
        "passed staging",
    ]));
    assert!(out.contains(&tested), "{out}");
    let other_host = run_fail(&mut r.cli(&[
        "promote",
        &format!("registry.example.com/staging/web@{tested}"),
        "prod/web:5.1.1",
    ]));
    assert!(other_host.contains("registry.example.com"), "{other_host}");
    let (_, resolved) = r.get("/api/v1/resolve?ref=prod/web:5.1.0");
    assert_eq!(resolved["digest"], tested);
    assert_eq!(
        resolved["pinned"],
        format!("{}/prod/web@{tested}", r.server.addr)
    );

    // Promotion only: pushes of tags into prod are refused with how to promote; by digest,
    // and from the permitted source, they get in; from another feed they do not.
    let (status, _) = r.json(
        "PATCH",
        "/api/v1/feeds/prod",
        &json!({"promotion_sources": ["staging"]}),
    );
    assert_eq!(status, 200);
    let (status, _) = r.push("prod/web", "5.2.0", "pushed straight to prod");
    assert_eq!(status, 403);
    let agent = r.admin();
    let mut res = agent
        .put(&r.url("/v2/prod/web/manifests/5.2.0"))
        .header("Content-Type", OCI_MANIFEST)
        .send(&push_image_over_http(&agent, &r.url(""), "prod/web", b"again").1[..])
        .unwrap();
    let text = res.body_mut().read_to_string().unwrap();
    assert!(
        text.contains("only by promotion from staging") && text.contains("semdock promote"),
        "{text}"
    );
    let (digest, body) = push_image_over_http(&agent, &r.url(""), "prod/web", b"by digest");
    let res = agent
        .put(&r.url(&format!("/v2/prod/web/manifests/{digest}")))
        .header("Content-Type", OCI_MANIFEST)
        .send(&body[..])
        .unwrap();
    assert_eq!(res.status(), 201, "a push by digest is not a tag");
    let (_, from_other) = r.push("other/web", "6.0.0", "elsewhere");
    let (status, body) = r.json(
        "POST",
        "/api/v1/promotions",
        &json!({"from": format!("other/web@{from_other}"), "to": "prod/web:6.0.0"}),
    );
    assert_eq!(status, 403, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("only from staging")
    );

    // Required referrer: an unsigned image stays out; signed, with its signature, it gets in.
    let sig_type = "application/vnd.example.signature.v1";
    let (status, _) = r.json(
        "PATCH",
        "/api/v1/feeds/prod",
        &json!({"required_referrer": sig_type}),
    );
    assert_eq!(status, 200);
    let (_, unsigned) = r.push("staging/web", "5.3.0", "unsigned");
    let (status, body) = r.json(
        "POST",
        "/api/v1/promotions",
        &json!({"from": "staging/web:5.3.0", "to": "prod/web:5.3.0", "expected_digest": unsigned}),
    );
    assert_eq!(status, 403, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains(sig_type)
    );
    let sig = attach_referrer(&r, "staging/web", &unsigned, sig_type);
    let (status, body) = r.json(
        "POST",
        "/api/v1/promotions",
        &json!({"from": "staging/web:5.3.0", "to": "prod/web:5.3.0", "expected_digest": unsigned, "include_referrers": true}),
    );
    assert_eq!(status, 200, "{body}");
    let (status, referrers) = r.get(&format!("/v2/prod/web/referrers/{unsigned}"));
    assert_eq!(status, 200);
    assert_eq!(referrers["manifests"][0]["digest"], sig);

    // The audit log saw all of it: who promoted what from where, and the refusals.
    let (status, promoted) = r.get("/api/v1/audit?kind=promoted&feed=prod");
    assert_eq!(status, 200);
    let first = promoted
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["tag"] == "5.1.0")
        .expect("the promotion of 5.1.0 is in the log");
    assert_eq!(first["actor"], "admin");
    assert_eq!(first["digest"], tested);
    assert_eq!(first["source"], format!("staging/web@{tested}"));
    let (_, refusals) = r.get("/api/v1/audit?kind=push-refused");
    let refusals = refusals.as_array().unwrap();
    assert!(refusals.iter().any(|e| e["tag"] == "5.2.0"), "{refusals:?}");
    assert!(
        refusals
            .iter()
            .any(|e| e["change"].as_str().unwrap().contains(sig_type))
    );
    let (_, settings) = r.get("/api/v1/feeds/prod/changes");
    assert!(
        settings.as_array().unwrap().iter().any(|c| c["change"]
            .as_str()
            .unwrap()
            .contains("promotion only, from [staging]")),
        "{settings}"
    );
}

/// Pushes a referrer of `artifact_type` for `subject` into `repo`; returns its digest.
pub(crate) fn attach_referrer(
    r: &Registry,
    repo: &str,
    subject: &str,
    artifact_type: &str,
) -> String {
    let agent = r.admin();
    let empty = b"{}";
    let res = agent
        .post(&r.url(&format!(
            "/v2/{repo}/blobs/uploads/?digest={}",
            semdock::model::Digest::of(empty)
        )))
        .header("Content-Type", "application/octet-stream")
        .send(&empty[..])
        .unwrap();
    assert_eq!(res.status(), 201);
    let body = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": semdock::model::Digest::of(empty).as_str(), "size": 2},
        "layers": [{"mediaType": "application/vnd.oci.empty.v1+json", "digest": semdock::model::Digest::of(empty).as_str(), "size": 2}],
        "subject": {"mediaType": OCI_MANIFEST, "digest": subject, "size": 1},
    }))
    .unwrap();
    let digest = semdock::model::Digest::of(&body).to_string();
    let res = agent
        .put(&r.url(&format!("/v2/{repo}/manifests/{digest}")))
        .header("Content-Type", OCI_MANIFEST)
        .send(&body[..])
        .unwrap();
    assert_eq!(res.status(), 201);
    digest
}

#[test]
fn promotion_verifies_digests_and_promotion_only_feeds_hold_on_the_embedded_backend() {
    pipeline(Backend::Embedded);
}

#[test]
fn promotion_verifies_digests_and_promotion_only_feeds_hold_on_postgres_and_s3() {
    pipeline(Backend::Distributed);
}

/// Every kind of event reaches a real receiver, signed; a `CloudEvents` endpoint filtered to one
/// feed and one event gets only those; the receiver answering 503 for a while gets the event
/// once it is back; redelivery sends an event again under its id.
#[allow(clippy::too_many_lines)]
fn every_event(backend: Backend) {
    let r = Registry::start(backend);
    let receiver = Receiver::start();
    let cloud = Receiver::start();
    let (hook, secret) = webhook(&r, &json!({"url": receiver.url()}));
    let (_, cloud_secret) = webhook(
        &r,
        &json!({"url": cloud.url(), "feed": "prod", "events": ["Promoted"], "format": "cloudevents"}),
    );
    let (status, _) = r.json("POST", "/api/v1/feeds", &json!({"name": "staging"}));
    assert_eq!(status, 201);
    let (status, _) = r.json(
        "PATCH",
        "/api/v1/feeds/prod",
        &json!({"versioning": true, "permitted": ["stable"]}),
    );
    assert_eq!(status, 200, "FeedSettingsChanged");
    let (_, v1) = r.push("prod/web", "1.0.0", "one"); // Added, VirtualTagMoved
    r.push("prod/web", "stable", "stable one"); // Added
    r.push("prod/web", "stable", "stable two"); // TagMoved
    let (status, _) = r.push("prod/web", "1.0.0", "a rewrite");
    assert_eq!(status, 409, "PushRefused");
    let (_, staged) = r.push("staging/web", "2.0.0", "staged");
    let (status, _) = r.json(
        "POST",
        "/api/v1/promotions",
        &json!({"from": "staging/web:2.0.0", "to": "prod/web:2.0.0", "expected_digest": staged}),
    );
    assert_eq!(status, 200, "Promoted");
    let res = r
        .admin()
        .delete(&r.url("/v2/prod/web/manifests/2.0.0"))
        .call()
        .unwrap();
    assert_eq!(res.status(), 202, "Deleted");
    let (status, body) = r.json(
        "POST",
        "/api/v1/repositories/prod/web/tags/2.0.0/purge",
        &json!({}),
    );
    assert_eq!(status, 204, "Purged {body}");
    r.push("prod/web", "3.0.0-rc.1", "a pre-release");
    let (status, _) = r.json(
        "PUT",
        "/api/v1/feeds/prod/retention",
        &json!({"keep_prereleases": 0}),
    );
    assert_eq!(status, 200);
    let (status, body) = r.json(
        "POST",
        "/api/v1/feeds/prod/retention/run",
        &json!({"dry_run": false}),
    );
    assert_eq!(status, 200, "RetentionDeleted {body}");

    let wanted: BTreeSet<String> = [
        "Added",
        "TagMoved",
        "VirtualTagMoved",
        "Promoted",
        "Deleted",
        "Purged",
        "RetentionDeleted",
        "PushRefused",
        "FeedSettingsChanged",
    ]
    .map(str::to_owned)
    .into();
    let got = receiver.wait_for("every event kind", |got| events(got).is_superset(&wanted));
    for g in &got {
        assert!(g.signed_by(&secret), "a valid signature on {:?}", g.json());
        assert_eq!(g.headers["content-type"], "application/json");
        assert_eq!(g.headers["x-semdock-delivery"], g.json()["id"]);
    }
    let ids: Vec<u64> = got
        .iter()
        .map(|g| g.json()["id"].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "in order, once each: {ids:?}"
    );
    let added = got
        .iter()
        .map(Received::json)
        .find(|e| e["event"] == "Added" && e["tag"] == "1.0.0")
        .unwrap();
    assert_eq!(added["digest"], v1);
    assert_eq!(added["repository"], "prod/web");
    assert_eq!(added["actor"], "admin");
    assert_eq!(added["pinned"], format!("{}/prod/web@{v1}", r.server.addr));
    let moved = got
        .iter()
        .map(Received::json)
        .find(|e| e["event"] == "TagMoved")
        .unwrap();
    assert!(
        moved["previous_digest"]
            .as_str()
            .unwrap()
            .starts_with("sha256:")
    );

    let cloud_got = cloud.wait_for("the CloudEvent", |got| !got.is_empty());
    let ce = cloud_got[0].json();
    assert!(cloud_got[0].signed_by(&cloud_secret));
    assert_eq!(
        cloud_got[0].headers["content-type"],
        "application/cloudevents+json"
    );
    assert_eq!(ce["specversion"], "1.0");
    assert_eq!(ce["type"], "dev.semdock.Promoted");
    assert_eq!(ce["subject"], "prod/web:2.0.0");
    assert_eq!(ce["data"]["source"], "staging/web:2.0.0");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        cloud.received().len(),
        1,
        "only the one event of its feed and kind"
    );

    // The receiver down (503) for a while: retried with backoff, delivered once it is back.
    receiver.status.store(503, Ordering::SeqCst);
    let before = receiver.received().len();
    let (_, late) = r.push("prod/web", "4.0.0", "while the receiver is down");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, log) = r.get(&format!("/api/v1/webhooks/{hook}/deliveries"));
        let retrying = log
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["status"] == "retrying" && d["response_code"] == 503);
        if retrying {
            break;
        }
        assert!(Instant::now() < deadline, "no retry logged: {log}");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        receiver.received().len(),
        before,
        "nothing accepted while down"
    );
    receiver.status.store(200, Ordering::SeqCst);
    let got = receiver.wait_for("the event sent while down", |got| {
        got.iter().any(|g| g.json()["digest"] == late)
    });
    let late_event = got
        .iter()
        .find(|g| g.json()["digest"] == late)
        .unwrap()
        .json();
    // The receiver has the request before the sender has written down its answer: the
    // log says "delivered" a moment later.
    let event_id: Option<u64> = late_event["id"].as_str().and_then(|i| i.parse().ok());
    let deadline = Instant::now() + Duration::from_secs(30);
    let delivered = loop {
        let (_, log) = r.get(&format!("/api/v1/webhooks/{hook}/deliveries"));
        let line = log
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["event_id"].as_u64() == event_id)
            .cloned()
            .unwrap();
        if line["status"] == "delivered" || Instant::now() > deadline {
            break line;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(delivered["status"], "delivered", "{delivered}");
    assert!(delivered["attempts"].as_u64().unwrap() >= 2, "{delivered}");

    // Redelivery sends the same event, under the same id, again.
    let id = late_event["id"].as_str().unwrap();
    let res = r
        .admin()
        .post(&r.url(&format!(
            "/api/v1/webhooks/{hook}/deliveries/{id}/redeliver"
        )))
        .send_empty()
        .unwrap();
    assert_eq!(res.status(), 202);
    receiver.wait_for("the redelivery", |got| {
        got.iter().filter(|g| g.json()["id"] == id).count() == 2
    });
    let out = run(&mut r.cli(&["webhook", "deliveries", &hook]));
    assert!(
        out.contains("redelivery") || out.contains("delivered"),
        "{out}"
    );
}

#[test]
fn every_event_reaches_a_real_receiver_signed_on_the_embedded_backend() {
    every_event(Backend::Embedded);
}

#[test]
fn every_event_reaches_a_real_receiver_signed_on_postgres_and_s3() {
    every_event(Backend::Distributed);
}

/// The registry killed (`kill -9`) after a change committed and before its delivery: the
/// event is delivered after the restart, once per id.
fn survives_kill9(backend: Backend) {
    let mut r = Registry::start(backend);
    let mut receiver = Receiver::start();
    let port = receiver.port;
    let (_, secret) = webhook(&r, &json!({"url": receiver.url(), "events": ["Added"]}));
    receiver.stop();
    let (status, digest) = r.push("prod/web", "1.0.0", "before the crash");
    assert_eq!(status, 201);
    std::thread::sleep(Duration::from_millis(300));
    r.crash_and_restart();
    let receiver = Receiver::on(port);
    receiver.wait_for("the event after the restart", |got| {
        got.iter().any(|g| g.json()["digest"] == digest)
    });
    std::thread::sleep(Duration::from_secs(1));
    let got: Vec<Received> = receiver.received();
    let mut per_id: BTreeMap<String, usize> = BTreeMap::new();
    for g in &got {
        assert!(g.signed_by(&secret));
        *per_id
            .entry(g.json()["id"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    assert!(per_id.values().all(|n| *n == 1), "once per id: {per_id:?}");
    assert_eq!(
        got.len(),
        1,
        "{:?}",
        got.iter().map(Received::json).collect::<Vec<_>>()
    );
}

#[test]
fn an_event_survives_kill9_on_the_embedded_backend() {
    survives_kill9(Backend::Embedded);
}

#[test]
fn an_event_survives_kill9_on_postgres_and_s3() {
    survives_kill9(Backend::Distributed);
}

/// The audit log through the API, the CLI and its export: filters, paging, a feed
/// administrator's view, failed logins with the address and no secret.
#[test]
#[allow(clippy::too_many_lines)]
fn the_audit_log_answers_who_did_what_when() {
    let r = Registry::start(Backend::Embedded);
    r.push("prod/app", "1.0.0", "audited");
    let res = http_as(Some(common::basic("admin", "wrong-password-123")))
        .get(&r.url("/api/v1/feeds"))
        .call()
        .unwrap();
    assert_eq!(res.status(), 401);
    let (status, _) = r.json(
        "POST",
        "/api/v1/users",
        &json!({"name": "ops", "password": "correct-horse-battery-9"}),
    );
    assert_eq!(status, 201);
    let res = r
        .admin()
        .put(&r.url("/api/v1/users/ops/roles/prod"))
        .header("Content-Type", "application/json")
        .send(r#"{"role": "admin"}"#)
        .unwrap();
    assert_eq!(res.status(), 204);

    let (_, failed) = r.get("/api/v1/audit?kind=login-failed");
    let failed = &failed.as_array().unwrap()[0];
    assert_eq!(failed["actor"], "admin");
    assert_eq!(failed["source"], "127.0.0.1");
    assert!(
        !failed.to_string().contains("wrong-password"),
        "no secret in the log"
    );
    let (_, roles) = r.get("/api/v1/audit?kind=role-granted&actor=admin");
    assert!(
        roles[0]["change"]
            .as_str()
            .unwrap()
            .contains("ops given the admin role on prod")
    );
    let (_, none) = r.get("/api/v1/audit?kind=role-granted&actor=nobody");
    assert_eq!(none, json!([]));
    let (status, body) = r.get("/api/v1/audit?since=yesterday");
    assert_eq!(status, 400, "{body}");

    // Paged by id, newest first, with a Link to the next page.
    let res = r.admin().get(&r.url("/api/v1/audit?n=2")).call().unwrap();
    let link = res
        .headers()
        .get("link")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert!(link.contains("last=") && link.contains("n=2"), "{link}");
    let (_, everything) = r.get("/api/v1/audit?n=1000");
    let all = everything.as_array().unwrap();
    let kinds: BTreeSet<&str> = all.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    for k in [
        "feed-created",
        "added",
        "login",
        "login-failed",
        "user-created",
        "role-granted",
    ] {
        assert!(kinds.contains(k), "{k} in {kinds:?}");
    }
    let ids: Vec<u64> = all.iter().map(|e| e["id"].as_u64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first: {ids:?}");

    // A feed administrator reads the feed's entries, and only with the feed named.
    let ops = http_as(Some(common::basic("ops", "correct-horse-battery-9")));
    let res = ops.get(&r.url("/api/v1/audit")).call().unwrap();
    assert_eq!(res.status(), 403);
    let mut res = ops.get(&r.url("/api/v1/audit?feed=prod")).call().unwrap();
    assert_eq!(res.status(), 200);
    let feed_view: Value = serde_json::from_str(&res.body_mut().read_to_string().unwrap()).unwrap();
    assert!(
        feed_view
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["feed"] == "prod")
    );

    // JSON lines, oldest first, every entry; and the CLI's table and export.
    let mut res = r
        .admin()
        .get(&r.url("/api/v1/audit?format=jsonl"))
        .call()
        .unwrap();
    assert_eq!(
        res.headers().get("content-type").unwrap(),
        "application/x-ndjson"
    );
    let lines: Vec<Value> = res
        .body_mut()
        .read_to_string()
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(lines.len() >= all.len());
    assert!(
        lines
            .windows(2)
            .all(|w| w[0]["id"].as_u64() < w[1]["id"].as_u64())
    );
    let table = run(&mut r.cli(&["audit", "--kind", "login-failed", "--since", "1 hour ago"]));
    assert!(
        table.contains("login-failed") && table.contains("admin"),
        "{table}"
    );
    let jsonl = run(&mut r.cli(&["audit", "--jsonl", "--feed", "prod"]));
    assert!(jsonl.lines().count() >= 3, "{jsonl}");
    assert!(
        jsonl
            .lines()
            .all(|l| serde_json::from_str::<Value>(l).unwrap()["feed"] == "prod")
    );
}

/// A receiver on loopback that answers each request as `reply` says from its request line
/// (`POST /hook HTTP/1.1`) and port: `Some(response)`, or `None` to keep the connection open
/// and never answer. Keeps the request lines it was sent.
struct Scripted {
    port: u16,
    requests: Arc<Mutex<Vec<String>>>,
}

impl Scripted {
    fn start(reply: fn(&str, u16) -> Option<String>) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let seen = seen.clone();
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        let mut len = 0;
                        loop {
                            let mut h = String::new();
                            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                                return;
                            }
                            if h.trim_end().is_empty() {
                                break;
                            }
                            if let Some((k, v)) = h.split_once(':')
                                && k.eq_ignore_ascii_case("content-length")
                            {
                                len = v.trim().parse().unwrap_or(0);
                            }
                        }
                        let mut body = vec![0; len];
                        if reader.read_exact(&mut body).is_err() {
                            return;
                        }
                        let line = line.trim_end().to_owned();
                        seen.lock().unwrap().push(line.clone());
                        let Some(answer) = reply(&line, port) else {
                            // Holds the connection, answering nothing, until the test ends.
                            std::thread::sleep(Duration::from_hours(1));
                            return;
                        };
                        if stream.write_all(answer.as_bytes()).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Self { port, requests }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hook", self.port)
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

/// Waits up to `limit` for `receiver` to be sent the event of `digest`; says how long it took.
fn arrival(receiver: &Receiver, digest: &str, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    while started.elapsed() < limit {
        if receiver
            .received()
            .iter()
            .any(|g| g.json()["digest"] == digest)
        {
            return Some(started.elapsed());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

/// Issue 30, 5: receivers that accept a connection and never answer (each attempt waits out a
/// 30 s timeout) delay no other endpoint's events, before or after them; a feed holds at most
/// 20 webhooks, and the 21st is refused with a sentence.
#[test]
fn receivers_that_never_answer_delay_no_other_endpoint_and_a_feed_holds_at_most_20() {
    let r = Registry::start_with(
        Backend::Embedded,
        &[("SEMDOCK_WEBHOOKS__TIMEOUT_SECONDS", "30")],
    );
    let dead = Scripted::start(|_, _| None);
    let good = Receiver::start();
    for _ in 0..4 {
        webhook(&r, &json!({"url": dead.url(), "feed": "prod"}));
    }
    webhook(
        &r,
        &json!({"url": good.url(), "feed": "prod", "events": ["Added"]}),
    );
    for _ in 0..4 {
        webhook(&r, &json!({"url": dead.url(), "feed": "prod"}));
    }
    for tag in ["1.0.0", "1.0.1", "1.0.2"] {
        let (status, digest) = r.push("prod/web", tag, tag);
        assert_eq!(status, 201);
        let took = arrival(&good, &digest, Duration::from_secs(8));
        assert!(
            took.is_some(),
            "{tag} did not reach the answering receiver in 8 s while others never answer"
        );
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while dead.requests().len() < 8 {
        assert!(
            Instant::now() < deadline,
            "every silent receiver is tried at once: {:?}",
            dead.requests()
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    // 9 webhooks on prod; 11 more make 20, the most a feed may have.
    for _ in 0..11 {
        webhook(
            &r,
            &json!({"url": good.url(), "feed": "prod", "events": ["Purged"]}),
        );
    }
    let (status, body) = r.json(
        "POST",
        "/api/v1/webhooks",
        &json!({"url": good.url(), "feed": "prod"}),
    );
    assert_eq!(status, 400, "a 21st webhook on prod: {body}");
    let message = body.to_string();
    assert!(message.contains("20 webhooks"), "{message}");
    // Another feed's count is its own.
    webhook(&r, &json!({"url": good.url(), "feed": "library"}));
}

/// Issue 30, 5: a receiver answering 302 has not received the event: the redirect is not
/// followed, and the attempt is logged as failed with the 302 and retried.
#[test]
fn a_redirect_from_a_receiver_is_a_failed_attempt_and_never_followed() {
    let r = Registry::start(Backend::Embedded);
    let redirecting = Scripted::start(|line, port| {
        Some(if line.starts_with("POST /hook ") {
            format!(
                "HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:{port}/landing\r\n\
                 Content-Length: 0\r\n\r\n"
            )
        } else {
            "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n".to_owned()
        })
    });
    let (hook, _) = webhook(&r, &json!({"url": redirecting.url(), "events": ["Added"]}));
    let (status, _) = r.push("prod/web", "1.0.0", "redirected");
    assert_eq!(status, 201);
    let deadline = Instant::now() + Duration::from_secs(30);
    let log = loop {
        let (_, log) = r.get(&format!("/api/v1/webhooks/{hook}/deliveries"));
        if log
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["response_code"] == 302 && d["attempts"].as_u64() >= Some(2))
        {
            break log;
        }
        assert!(
            Instant::now() < deadline,
            "no failed 302 attempt logged: {log}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        log.as_array()
            .unwrap()
            .iter()
            .all(|d| d["status"] != "delivered"),
        "a 302 counted as delivered: {log}"
    );
    let requests = redirecting.requests();
    assert!(
        requests.iter().all(|l| l.starts_with("POST /hook ")),
        "the redirect was followed: {requests:?}"
    );
}

/// Issue 30, 5: a feed's webhooks go with it: a new feed of the same name is not sent to them.
#[test]
fn a_deleted_feeds_webhooks_go_with_it() {
    let r = Registry::start(Backend::Embedded);
    let (status, _) = r.json("POST", "/api/v1/feeds", &json!({"name": "team"}));
    assert_eq!(status, 201);
    let old = Receiver::start();
    let (hook, _) = webhook(
        &r,
        &json!({"url": old.url(), "feed": "team", "events": ["Added"]}),
    );
    // A global endpoint, to know when deliveries have passed the new feed's push.
    let witness = Receiver::start();
    webhook(&r, &json!({"url": witness.url(), "events": ["Added"]}));

    assert_eq!(r.delete("/api/v1/feeds/team"), 204);
    let (status, _) = r.json("POST", "/api/v1/feeds", &json!({"name": "team"}));
    assert_eq!(status, 201);
    let (status, digest) = r.push("team/web", "1.0.0", "in the new team");
    assert_eq!(status, 201);
    witness.wait_for("the new feed's push", |got| {
        got.iter().any(|g| g.json()["digest"] == digest)
    });
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        old.received().is_empty(),
        "the deleted feed's webhook was sent the new feed's event"
    );
    let (_, hooks) = r.get("/api/v1/webhooks");
    assert!(
        hooks
            .as_array()
            .unwrap()
            .iter()
            .all(|h| h["id"] != hook.as_str()),
        "{hooks}"
    );
    let (status, _) = r.get(&format!("/api/v1/webhooks/{hook}/deliveries"));
    assert_eq!(status, 404);
}

/// Issue 30, 9: `semdock webhook redeliver` sends the event once more (retried while the
/// receiver fails), then never again — not after a restart either — and new events still
/// flow.
#[test]
fn a_redelivery_is_one_more_delivery_then_done() {
    let mut r = Registry::start(Backend::Embedded);
    let receiver = Receiver::start();
    let (hook, _) = webhook(&r, &json!({"url": receiver.url(), "events": ["Added"]}));
    let (_, first) = r.push("prod/web", "1.0.0", "first");
    let got = receiver.wait_for("the first event", |got| {
        got.iter().any(|g| g.json()["digest"] == first)
    });
    let id = got[0].json()["id"].as_str().unwrap().to_owned();
    let copies = || {
        receiver
            .received()
            .iter()
            .filter(|g| g.json()["id"] == id.as_str())
            .count()
    };

    receiver.status.store(503, Ordering::SeqCst);
    run(&mut r.cli(&["webhook", "redeliver", &hook, &id]));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, log) = r.get(&format!("/api/v1/webhooks/{hook}/deliveries"));
        if log.as_array().unwrap().iter().any(|d| {
            d["redelivery"] == true && d["status"] == "retrying" && d["response_code"] == 503
        }) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the failed redelivery is not retried: {log}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    receiver.status.store(200, Ordering::SeqCst);
    receiver.wait_for("the redelivery", |_| copies() == 2);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(copies(), 2, "redelivered more than once");
    let (_, log) = r.get(&format!("/api/v1/webhooks/{hook}/deliveries"));
    let redelivered: Vec<&Value> = log
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["redelivery"] == true)
        .collect();
    assert_eq!(redelivered.len(), 1, "{log}");
    assert_eq!(redelivered[0]["status"], "delivered");
    assert!(redelivered[0]["attempts"].as_u64().unwrap() >= 2, "{log}");

    let (_, second) = r.push("prod/web", "1.0.1", "second");
    receiver.wait_for("a new event after the redelivery", |got| {
        got.iter().any(|g| g.json()["digest"] == second)
    });
    r.crash_and_restart();
    let (_, third) = r.push("prod/web", "1.0.2", "third");
    receiver.wait_for("a new event after the restart", |got| {
        got.iter().any(|g| g.json()["digest"] == third)
    });
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(copies(), 2, "redelivered again after the restart");
}
