//! Connector feeds: semdock as a pull-through cache of another registry, tested without the
//! internet — the upstream is Distribution 2.8.2 on loopback (filled by docker), or a second
//! semdock with Bearer tokens and a private feed; docker and skopeo pull through semdock, on
//! both storage backends.

use crate::common;

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::cluster::Cluster;
use common::distribution::Distribution;
use common::{Server, image_context, run, run_fail};
use serde_json::{Value, json};

/// Builds an image with `extra` in its layer and pushes it to `registry` (`host:port`) as
/// `name` with docker; returns its digest there.
fn push_to(docker_host: &Server, registry: &str, name: &str, extra: &str) -> String {
    let tag = format!("{registry}/{name}");
    let ctx = image_context(2, extra);
    run(docker_host
        .docker()
        .args(["build", "--no-cache", "-q", "-t", &tag])
        .arg(ctx.path())
        .env("DOCKER_BUILDKIT", "0"));
    let out = run(docker_host.docker().args(["push", &tag]));
    run(docker_host.docker().args(["rmi", &tag]));
    out.split_whitespace()
        .find(|w| w.starts_with("sha256:"))
        .expect("docker push prints the digest")
        .to_owned()
}

fn json_call(server: &Server, method: &str, path: &str, body: &Value) -> (u16, Value) {
    let agent = server.http();
    let url = server.url(path);
    let req = match method {
        "POST" => agent.post(&url),
        "PATCH" => agent.patch(&url),
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

fn get(server: &Server, path: &str) -> (u16, Value, Option<String>) {
    let mut res = server.http().get(&server.url(path)).call().unwrap();
    let status = res.status().as_u16();
    let warning = res
        .headers()
        .get("warning")
        .map(|w| w.to_str().unwrap().to_owned());
    let text = res.body_mut().read_to_string().unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::Null),
        warning,
    )
}

fn skopeo_digest(server: &Server, image: &str) -> String {
    let out = run(Command::new("skopeo").args([
        "inspect",
        "--tls-verify=false",
        "--creds",
        &server.creds(),
        "--format",
        "{{.Digest}}",
        &format!("docker://{}/{image}", server.host()),
    ]));
    out.trim().to_owned()
}

#[derive(Clone, Copy)]
enum Backend {
    Embedded,
    Distributed,
}

fn semdock(backend: Backend) -> (Server, Option<Cluster>) {
    match backend {
        Backend::Embedded => (Server::start(), None),
        Backend::Distributed => {
            let mut c = Cluster::start_with(1, &[]);
            (c.nodes.remove(0), Some(c))
        }
    }
}

/// docker and skopeo pull through a connector of Distribution; the second pull asks the
/// upstream nothing; ten concurrent pulls of a cold image fetch each blob once; with the
/// upstream stopped the cached image still pulls (a mutable tag served stale, with a
/// `Warning`); a re-pushed upstream version keeps its pinned digest, the drift in history
/// and metrics, until accepted; pushes into the connector are refused.
#[allow(clippy::too_many_lines)]
fn pull_through(backend: Backend) {
    let mut upstream = Distribution::start_with(Some(("filler", "upstream-secret")));
    let (server, _cluster) = semdock(backend);
    server.docker_login();
    run(server.docker().args([
        "login",
        &upstream.addr,
        "-u",
        "filler",
        "-p",
        "upstream-secret",
    ]));
    let v1 = push_to(&server, &upstream.addr, "library/app:1.0.0", "connector v1");
    push_to(
        &server,
        &upstream.addr,
        "library/app:edge",
        "connector edge",
    );
    let cold = push_to(
        &server,
        &upstream.addr,
        "library/cold:2.0.0",
        "connector cold",
    );

    // Without credentials the upstream refuses, and the pull says why.
    let (status, feed) = json_call(
        &server,
        "POST",
        "/api/v1/feeds",
        &json!({"name": "hub", "versioning": true, "permitted": ["edge"],
            "upstream": {"url": upstream.url(), "prefix": "library", "ttl_seconds": 1}}),
    );
    assert_eq!(status, 201, "{feed}");
    assert_eq!(feed["upstream"]["url"], upstream.url());
    assert_eq!(feed["upstream"]["has_password"], false);
    let (status, body, _) = get(&server, "/v2/hub/app/manifests/1.0.0");
    assert_eq!(status, 503, "{body}");
    assert!(
        body.to_string().contains("credentials"),
        "says the upstream wants credentials: {body}"
    );
    let (status, checked) = json_call(
        &server,
        "POST",
        "/api/v1/feeds/hub/upstream/test",
        &json!({}),
    );
    assert_eq!((status, &checked["ok"]), (200, &json!(false)), "{checked}");
    assert!(
        checked["message"].as_str().unwrap().contains("credentials"),
        "{checked}"
    );
    let (status, feed) = json_call(
        &server,
        "PATCH",
        "/api/v1/feeds/hub",
        &json!({"upstream": {"url": upstream.url(), "username": "filler", "password": "upstream-secret"}}),
    );
    assert_eq!(status, 200, "{feed}");
    assert_eq!(feed["upstream"]["has_password"], true);
    assert!(!feed.to_string().contains("upstream-secret"));
    let (_, checked) = json_call(
        &server,
        "POST",
        "/api/v1/feeds/hub/upstream/test",
        &json!({}),
    );
    assert_eq!(checked["ok"], true, "{checked}");
    assert!(
        checked["message"].as_str().unwrap().contains("Basic"),
        "{checked}"
    );

    // docker pulls through semdock: byte-exact, the upstream's own digest.
    let image = format!("{}/hub/app:1.0.0", server.host());
    run(server.docker().args(["pull", &image]));
    let repo_digest =
        run(server
            .docker()
            .args(["image", "inspect", "-f", "{{index .RepoDigests 0}}", &image]));
    assert!(repo_digest.trim().ends_with(&v1), "{repo_digest} is {v1}");
    let blob_gets = upstream.requests("GET", "/v2/library/app/blobs/");
    assert!(blob_gets >= 3, "config and two layers fetched: {blob_gets}");
    let manifests = upstream.requests("GET", "/v2/library/app/manifests/");

    // The second pull is served locally: the upstream is asked nothing.
    run(server.docker().args(["rmi", &image]));
    run(server.docker().args(["pull", &image]));
    assert_eq!(
        upstream.requests("GET", "/v2/library/app/blobs/"),
        blob_gets
    );
    assert_eq!(
        upstream.requests("GET", "/v2/library/app/manifests/"),
        manifests
    );
    run(server.docker().args(["rmi", &image]));
    assert_eq!(skopeo_digest(&server, "hub/app:1.0.0"), v1, "skopeo too");

    // Ten concurrent pulls of a cold image: each blob fetched from the upstream once.
    let pulls: Vec<Child> = (0..10)
        .map(|i| {
            let dir = std::env::temp_dir().join(format!("semdock-cold-{}-{i}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            Command::new("skopeo")
                .args([
                    "copy",
                    "--src-tls-verify=false",
                    "--src-creds",
                    &server.creds(),
                    &format!("docker://{}/hub/cold:2.0.0", server.host()),
                    &format!("dir:{}", dir.display()),
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for p in pulls {
        let out = p.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let (_, manifest, _) = get(&server, &format!("/v2/hub/cold/manifests/{cold}"));
    let blobs = 1 + manifest["layers"].as_array().unwrap().len();
    assert_eq!(
        upstream.requests("GET", "/v2/library/cold/blobs/"),
        blobs,
        "one upstream fetch per blob"
    );

    // The upstream stopped: cached images still pull; a mutable tag is served stale.
    let edge = format!("{}/hub/app:edge", server.host());
    run(server.docker().args(["pull", &edge]));
    run(server.docker().args(["rmi", &edge]));
    upstream.stop();
    std::thread::sleep(Duration::from_millis(1200));
    run(server.docker().args(["pull", &image]));
    run(server.docker().args(["rmi", &image]));
    let (status, _, warning) = get(&server, "/v2/hub/app/manifests/edge");
    assert_eq!(status, 200);
    assert!(
        warning.is_some_and(|w| w.starts_with("110")),
        "a Warning on a stale copy"
    );
    let (status, body, _) = get(&server, "/v2/hub/never/manifests/1.0.0");
    assert_eq!(status, 503, "nothing cached and no upstream: {body}");

    // A re-pushed upstream version: the pinned digest stays, the drift is recorded.
    upstream.run();
    let moved = push_to(
        &server,
        &upstream.addr,
        "library/app:1.0.0",
        "connector v1 rebuilt",
    );
    assert_ne!(moved, v1);
    std::thread::sleep(Duration::from_millis(1200));
    let (status, _, _) = get(&server, "/v2/hub/app/manifests/1.0.0");
    assert_eq!(status, 200);
    assert_eq!(
        skopeo_digest(&server, "hub/app:1.0.0"),
        v1,
        "the pinned digest is served"
    );
    let (_, history, _) = get(
        &server,
        "/api/v1/repositories/hub/app/history?tag=1.0.0&method=drift",
    );
    let drift = &history.as_array().unwrap()[0];
    assert_eq!(
        (drift["old"].as_str(), drift["new"].as_str()),
        (Some(v1.as_str()), Some(moved.as_str()))
    );
    let metrics = {
        let mut res = server.http().get(&server.url("/metrics")).call().unwrap();
        res.body_mut().read_to_string().unwrap()
    };
    assert!(
        metrics.contains("semdock_upstream_drift_total{feed=\"hub\"} 1"),
        "{}",
        metrics
            .lines()
            .filter(|l| l.contains("upstream"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    let (_, audit, _) = get(&server, "/api/v1/audit?kind=upstream-drift");
    assert_eq!(audit[0]["previous"], v1);
    let (status, accepted) = json_call(
        &server,
        "POST",
        "/api/v1/repositories/hub/app/tags/1.0.0/accept-upstream",
        &json!({}),
    );
    assert_eq!(status, 200, "{accepted}");
    assert_eq!(accepted["digest"], moved);
    assert_eq!(skopeo_digest(&server, "hub/app:1.0.0"), moved);

    // Nothing is pushed into a connector feed.
    let pushed = format!("{}/hub/app:9.9.9", server.host());
    let ctx = image_context(1, "refused push");
    run(server
        .docker()
        .args(["build", "--no-cache", "-q", "-t", &pushed])
        .arg(ctx.path())
        .env("DOCKER_BUILDKIT", "0"));
    let out = run_fail(server.docker().args(["push", &pushed]));
    assert!(out.contains("is a cache of"), "{out}");
    run(server.docker().args(["rmi", &pushed]));
}

#[test]
fn a_connector_of_distribution_caches_pins_and_survives_its_upstream_on_the_embedded_backend() {
    pull_through(Backend::Embedded);
}

#[test]
fn a_connector_of_distribution_caches_pins_and_survives_its_upstream_on_postgres_and_s3() {
    pull_through(Backend::Distributed);
}

/// A second semdock as the upstream: its Bearer token flow with the connector's own
/// credentials on a private feed; the client's credentials are never sent there.
#[test]
#[allow(clippy::too_many_lines)]
fn a_connector_of_another_semdock_uses_its_token_flow_and_credentials() {
    let upstream = Server::start();
    upstream.docker_login();
    let digest = push_to(
        &upstream,
        &upstream.host(),
        "prod/team/tool:3.1.0",
        "from semdock",
    );
    let server = Server::start();
    server.docker_login();
    let secret = server.data_dir.join("upstream-password");
    std::fs::write(&secret, format!("{}\n", upstream.admin_password)).unwrap();
    let out = run(Command::new(env!("CARGO_BIN_EXE_semdock"))
        .args(["feed", "create", "mirror", "--server", &server.url("")])
        .env("SEMDOCK_API_KEY", api_key(&server)));
    assert!(out.contains("created feed mirror"), "{out}");
    let out = run(Command::new(env!("CARGO_BIN_EXE_semdock"))
        .args([
            "feed",
            "set",
            "mirror",
            "--upstream",
            &upstream.url(""),
            "--upstream-user",
            "admin",
            "--upstream-password-file",
            secret.to_str().unwrap(),
            "--upstream-prefix",
            "prod",
            "--server",
            &server.url(""),
        ])
        .env("SEMDOCK_API_KEY", api_key(&server)));
    assert!(out.contains("feed mirror"), "{out}");
    let out = run(Command::new(env!("CARGO_BIN_EXE_semdock"))
        .args([
            "feed",
            "test-upstream",
            "mirror",
            "--server",
            &server.url(""),
        ])
        .env("SEMDOCK_API_KEY", api_key(&server)));
    assert!(
        out.contains("a token for the connector's credentials"),
        "{out}"
    );
    let (_, feed, _) = get(&server, "/api/v1/feeds/mirror");
    assert_eq!(feed["upstream"]["username"], "admin");
    assert_eq!(feed["upstream"]["has_password"], true);
    assert!(
        !feed.to_string().contains(&upstream.admin_password),
        "the password is never shown"
    );
    let (_, changes, _) = get(&server, "/api/v1/feeds/mirror/changes");
    assert!(
        !changes.to_string().contains(&upstream.admin_password),
        "nor recorded"
    );

    // A sync from another semdock carries the tag's history: who pushed it there, when.
    let key = api_key(&server);
    let out = run(Command::new(env!("CARGO_BIN_EXE_semdock"))
        .args([
            "feed",
            "set",
            "mirror",
            "--upstream",
            &upstream.url(""),
            "--sync",
            "prod/team/tool@^3",
            "--server",
            &server.url(""),
        ])
        .env("SEMDOCK_API_KEY", &key));
    assert!(
        out.contains("sync [prod/team/tool@^3]") || out.contains("feed mirror"),
        "{out}"
    );
    let out = run(Command::new(env!("CARGO_BIN_EXE_semdock"))
        .args(["feed", "sync", "mirror", "--server", &server.url("")])
        .env("SEMDOCK_API_KEY", &key));
    assert!(out.contains("1 tags held"), "{out}");
    let (_, history, _) = get(
        &server,
        "/api/v1/repositories/mirror/team/tool/history?tag=3.1.0",
    );
    let carried: Vec<&Value> = history
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["actor"] == format!("admin@{}", upstream.addr))
        .collect();
    assert!(
        carried
            .iter()
            .any(|h| h["method"] == "push" && h["new"] == digest.as_str()),
        "{history}"
    );
    assert!(
        carried[0]["comment"]
            .as_str()
            .unwrap()
            .starts_with("carried from")
    );
    let newest = history.as_array().unwrap().last().unwrap();
    assert_eq!(
        newest["method"], "upstream",
        "then the connector's own record: {history}"
    );

    let image = format!("{}/mirror/team/tool:3.1.0", server.host());
    run(server.docker().args(["pull", &image]));
    let repo_digest =
        run(server
            .docker()
            .args(["image", "inspect", "-f", "{{index .RepoDigests 0}}", &image]));
    assert!(repo_digest.trim().ends_with(&digest), "{repo_digest}");
    run(server.docker().args(["rmi", &image]));
    let log = upstream.log();
    assert!(
        log.contains("/v2/_auth") || log.contains("/v2/token"),
        "the connector asked the upstream for a token"
    );
}

fn api_key(server: &Server) -> String {
    let (status, key) = json_call(
        server,
        "POST",
        "/api/v1/keys",
        &json!({"name": "cli", "admin": true, "owner_roles": true}),
    );
    assert_eq!(status, 201);
    key["key"].as_str().unwrap().to_owned()
}

/// A Docker engine of the test's own, with `--registry-mirror` pointing at semdock, stopped
/// by its PID at the end.
struct Dockerd {
    child: Child,
    dir: tempfile::TempDir,
}

impl Dockerd {
    fn start(mirror: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        let child = Command::new("dockerd")
            .args(["--iptables=false", "--bridge=none", "--storage-driver=vfs"])
            .arg(format!("--host=unix://{}", p.join("docker.sock").display()))
            .arg(format!("--pidfile={}", p.join("docker.pid").display()))
            .arg(format!("--data-root={}", p.join("data").display()))
            .arg(format!("--exec-root={}", p.join("exec").display()))
            .arg(format!("--registry-mirror={mirror}"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(p.join("log")).unwrap())
            .spawn()
            .expect("dockerd starts");
        let this = Self { child, dir };
        let deadline = Instant::now() + Duration::from_mins(1);
        while !this
            .docker()
            .arg("info")
            .output()
            .is_ok_and(|o| o.status.success())
        {
            assert!(
                Instant::now() < deadline,
                "the second Docker engine did not start"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        this
    }

    fn docker(&self) -> Command {
        let mut cmd = Command::new("docker");
        cmd.env(
            "DOCKER_HOST",
            format!("unix://{}", self.dir.path().join("docker.sock").display()),
        )
        .env("DOCKER_CONFIG", self.dir.path().join("client"));
        cmd
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let _ = self.child.wait();
    }
}

/// A Docker engine with `--registry-mirror` at semdock pulls `library/NAME:TAG` through the
/// mirror feed (the loopback Distribution standing in for Docker Hub), and containerd's
/// `ctr` with a `hosts.toml` mirror pulls `UPSTREAM/library/NAME:TAG` through semdock by
/// `?ns=` — the second with the upstream stopped, served from the cache.
#[test]
fn docker_registry_mirrors_and_containerd_ns_pull_through_semdock() {
    let mut upstream = Distribution::start();
    let dir = tempfile::tempdir().unwrap();
    // A mirror_feed must name a feed at the start: hub is created by the configuration.
    // No feed is named `library` here: it would answer Docker Hub's `library/…` names
    // itself (only names whose first segment is no feed go to the mirror).
    let server = Server::start_in(
        &dir.path().join("data"),
        &[
            ("SEMDOCK_MIRROR_FEED", "hub"),
            ("SEMDOCK_FEEDS", "[prod,hub]"),
        ],
    );
    let digest = push_to(&server, &upstream.addr, "library/app:1.0.0", "mirrored");
    let (status, body) = json_call(
        &server,
        "PATCH",
        "/api/v1/feeds/hub",
        &json!({"anonymous_pull": true, "upstream": {"url": upstream.url()}}),
    );
    assert_eq!(status, 200, "{body}");

    let engine = Dockerd::start(&format!("http://{}", server.addr));
    run(engine.docker().args(["pull", "library/app:1.0.0"]));
    let id = run(engine.docker().args([
        "image",
        "inspect",
        "-f",
        "{{index .RepoDigests 0}}",
        "app:1.0.0",
    ]));
    assert!(id.trim().ends_with(&digest), "{id}");
    assert!(
        server.log().contains("/v2/library/app/manifests/1.0.0"),
        "the engine asked semdock"
    );

    upstream.stop();
    let hosts = tempfile::tempdir().unwrap();
    let host_dir = hosts.path().join(&upstream.addr);
    std::fs::create_dir_all(&host_dir).unwrap();
    std::fs::write(
        host_dir.join("hosts.toml"),
        format!(
            "server = \"http://{}\"\n\n[host.\"http://{}\"]\n  capabilities = [\"pull\", \"resolve\"]\n",
            upstream.addr, server.addr
        ),
    )
    .unwrap();
    let containerd = common::Containerd::start();
    run(containerd.ctr().args([
        "images",
        "pull",
        "--hosts-dir",
        hosts.path().to_str().unwrap(),
        "--snapshotter",
        "native",
        &format!("{}/library/app:1.0.0", upstream.addr),
    ]));
    let listed = run(containerd.ctr().args(["images", "ls", "-q"]));
    assert!(listed.contains("library/app:1.0.0"), "{listed}");
    // The upstream is stopped: only semdock can have answered.
    assert!(std::net::TcpStream::connect(&upstream.addr).is_err());

    // podman with a registries.conf mirror naming the feed.
    let podman = tempfile::tempdir().unwrap();
    let conf = podman.path().join("registries.conf");
    std::fs::write(
        &conf,
        format!(
            "[[registry]]\nprefix = \"{up}\"\nlocation = \"{up}\"\ninsecure = true\n\n[[registry.mirror]]\nlocation = \"{}/hub\"\ninsecure = true\n",
            server.addr,
            up = upstream.addr
        ),
    )
    .unwrap();
    std::fs::write(podman.path().join("auth.json"), "{}").unwrap();
    run(Command::new("podman")
        .env("CONTAINERS_REGISTRIES_CONF", &conf)
        .env("REGISTRY_AUTH_FILE", podman.path().join("auth.json"))
        .arg("--storage-driver=vfs")
        .arg("--root")
        .arg(podman.path().join("root"))
        .arg("--runroot")
        .arg(podman.path().join("run"))
        .args([
            "pull",
            "-q",
            &format!("{}/library/app:1.0.0", upstream.addr),
        ]));
    assert!(server.log().contains("/v2/hub/library/app/manifests/1.0.0"));
}

/// What the fault-injecting proxy does with the next requests.
#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Fault {
    /// Forwards requests and answers unchanged.
    None,
    /// `429 Too Many Requests`, as Docker Hub's rate limit answers.
    TooMany,
    /// `503 Service Unavailable`.
    Down,
    /// Accepts the connection and never answers.
    Hang,
    /// Forwards, with the last byte of every blob changed.
    Corrupt,
    /// Forwards, each blob in twenty pieces a tenth of a second apart.
    Slow,
}

/// A small HTTP proxy in front of an upstream that injects `Fault`s.
struct FaultProxy {
    addr: String,
    fault: std::sync::Arc<std::sync::atomic::AtomicU8>,
}

impl FaultProxy {
    fn start(upstream: &str) -> Self {
        use std::io::{Read, Write};
        use std::sync::atomic::Ordering;
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let fault = std::sync::Arc::new(std::sync::atomic::AtomicU8::new(Fault::None as u8));
        let f = fault.clone();
        let upstream = upstream.to_owned();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let fault = f.load(Ordering::SeqCst);
                let upstream = upstream.clone();
                std::thread::spawn(move || {
                    let mut head = Vec::new();
                    let mut byte = [0u8; 1];
                    while !head.ends_with(b"\r\n\r\n") {
                        match conn.read(&mut byte) {
                            Ok(1) => head.push(byte[0]),
                            _ => return,
                        }
                    }
                    let head = String::from_utf8_lossy(&head).into_owned();
                    let blob = head.starts_with("GET ")
                        && head.lines().next().is_some_and(|l| l.contains("/blobs/"));
                    let answer = |conn: &mut std::net::TcpStream, status: &str| {
                        let _ = conn.write_all(
                            format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\nRetry-After: 60\r\nConnection: close\r\n\r\n").as_bytes(),
                        );
                    };
                    match fault {
                        f if f == Fault::TooMany as u8 => {
                            return answer(&mut conn, "429 Too Many Requests");
                        }
                        f if f == Fault::Down as u8 => {
                            return answer(&mut conn, "503 Service Unavailable");
                        }
                        f if f == Fault::Hang as u8 => {
                            std::thread::sleep(Duration::from_secs(8));
                            return;
                        }
                        _ => {}
                    }
                    let Ok(mut up) = std::net::TcpStream::connect(&upstream) else {
                        return answer(&mut conn, "502 Bad Gateway");
                    };
                    let mut request = String::new();
                    for l in head.trim_end().lines() {
                        if !l.to_ascii_lowercase().starts_with("connection:") {
                            request.push_str(l);
                            request.push_str("\r\n");
                        }
                    }
                    request.push_str("Connection: close\r\n\r\n");
                    let mut response = Vec::new();
                    if up.write_all(request.as_bytes()).is_err()
                        || up.read_to_end(&mut response).is_err()
                    {
                        return answer(&mut conn, "502 Bad Gateway");
                    }
                    let split = response
                        .windows(4)
                        .position(|w| w == b"\r\n\r\n")
                        .map_or(response.len(), |p| p + 4);
                    let ok = response.starts_with(b"HTTP/1.1 200");
                    if blob && ok && fault == Fault::Corrupt as u8 && response.len() > split {
                        let last = response.len() - 1;
                        response[last] ^= 0xff;
                    }
                    if blob && ok && fault == Fault::Slow as u8 {
                        let _ = conn.write_all(&response[..split]);
                        let body = &response[split..];
                        for piece in body.chunks(body.len().div_ceil(20).max(1)) {
                            std::thread::sleep(Duration::from_millis(100));
                            if conn.write_all(piece).is_err() {
                                return;
                            }
                        }
                        return;
                    }
                    let _ = conn.write_all(&response);
                });
            }
        });
        Self { addr, fault }
    }

    fn set(&self, fault: Fault) {
        self.fault
            .store(fault as u8, std::sync::atomic::Ordering::SeqCst);
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

fn skopeo_copy(server: &Server, image: &str) -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new("skopeo")
        .args([
            "copy",
            "--src-tls-verify=false",
            "--src-creds",
            &server.creds(),
            &format!("docker://{}/{image}", server.host()),
            &format!("dir:{}", dir.path().display()),
        ])
        .output()
        .unwrap();
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// Behind a proxy that injects faults: 429s, 503s and an upstream that never answers leave
/// cached images served (stale, with a `Warning`) and cold ones a clear 503; a corrupted
/// blob is never stored or fully served; a slow blob still arrives whole.
#[test]
fn a_connector_serves_its_cache_through_upstream_faults_and_never_stores_a_corrupt_blob() {
    let upstream = Distribution::start();
    let proxy = FaultProxy::start(&upstream.addr);
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_in(
        &dir.path().join("data"),
        &[("SEMDOCK_LIMITS__UPSTREAM_TIMEOUT_SECONDS", "1")],
    );
    server.docker_login();
    let warm = push_to(&server, &upstream.addr, "library/warm:edge", "faults warm");
    push_to(&server, &upstream.addr, "library/cold:edge", "faults cold");
    push_to(
        &server,
        &upstream.addr,
        "library/bad:1.0.0",
        "faults corrupt",
    );
    push_to(&server, &upstream.addr, "library/slow:1.0.0", "faults slow");
    let (status, body) = json_call(
        &server,
        "POST",
        "/api/v1/feeds",
        &json!({"name": "hub", "upstream": {"url": proxy.url(), "ttl_seconds": 1}}),
    );
    assert_eq!(status, 201, "{body}");
    skopeo_copy(&server, "hub/library/warm:edge").unwrap();

    for fault in [Fault::TooMany, Fault::Down, Fault::Hang] {
        proxy.set(fault);
        std::thread::sleep(Duration::from_millis(1100));
        let (status, _, warning) = get(&server, "/v2/hub/library/warm/manifests/edge");
        assert_eq!(status, 200, "the cached copy is served");
        assert!(warning.is_some_and(|w| w.starts_with("110")));
        skopeo_copy(&server, "hub/library/warm:edge").expect("a cached image pulls");
        let (status, body, _) = get(&server, "/v2/hub/library/cold/manifests/edge");
        assert_eq!(status, 503, "{body}");
        assert_eq!(body["errors"][0]["code"], "UNAVAILABLE", "{body}");
    }
    proxy.set(Fault::None);
    let (_, manifest, _) = get(&server, "/v2/hub/library/warm/manifests/edge");
    assert_eq!(
        get(&server, &format!("/v2/hub/library/warm/manifests/{warm}")).0,
        200
    );
    assert!(manifest["layers"].is_array());

    // A corrupted blob: the pull fails, and nothing was stored — with the upstream down
    // the blob is still missing, and once it serves the right bytes the pull succeeds.
    proxy.set(Fault::Corrupt);
    let err = skopeo_copy(&server, "hub/library/bad:1.0.0").unwrap_err();
    assert!(!err.is_empty());
    proxy.set(Fault::Down);
    assert!(
        skopeo_copy(&server, "hub/library/bad:1.0.0").is_err(),
        "no corrupt blob was kept to serve"
    );
    assert!(server.log().contains("a blob from upstream was not stored"));
    proxy.set(Fault::None);
    skopeo_copy(&server, "hub/library/bad:1.0.0").unwrap();

    // A slow blob (two seconds each, past the one-second answer timeout) arrives whole.
    proxy.set(Fault::Slow);
    skopeo_copy(&server, "hub/library/slow:1.0.0").unwrap();
    proxy.set(Fault::Down);
    skopeo_copy(&server, "hub/library/slow:1.0.0").expect("and was stored");

    // Offline: what is cached is served without asking (no stale Warning from a failed
    // check), and what is not is unknown rather than unavailable.
    let (status, body) = json_call(
        &server,
        "PATCH",
        "/api/v1/feeds/hub",
        &json!({"upstream": {"url": proxy.url(), "offline": true}}),
    );
    assert_eq!(status, 200, "{body}");
    std::thread::sleep(Duration::from_millis(1100));
    let (status, _, warning) = get(&server, "/v2/hub/library/warm/manifests/edge");
    assert_eq!((status, warning), (200, None));
    let (status, body, _) = get(&server, "/v2/hub/library/cold/manifests/edge");
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["errors"][0]["code"], "MANIFEST_UNKNOWN");
}

/// In a versioned connector feed, `latest`, `1` and `1.1` follow the versions seen, not the
/// upstream — unless the feed keeps the upstream's own `latest`; allow and deny globs limit
/// which upstream repositories are fetched; `?ns=` is echoed in `OCI-Namespace`.
#[test]
fn a_versioned_connector_keeps_virtual_tags_on_versions_and_mirrors_only_its_globs() {
    let upstream = Distribution::start();
    let server = Server::start();
    server.docker_login();
    let v100 = push_to(
        &server,
        &upstream.addr,
        "library/app:1.0.0",
        "virtual 1.0.0",
    );
    let v110 = push_to(
        &server,
        &upstream.addr,
        "library/app:1.1.0",
        "virtual 1.1.0",
    );
    let theirs = push_to(
        &server,
        &upstream.addr,
        "library/app:latest",
        "their latest",
    );
    push_to(&server, &upstream.addr, "library/secret:1.0.0", "denied");
    push_to(&server, &upstream.addr, "other/app:1.0.0", "not allowed");
    let (status, body) = json_call(
        &server,
        "POST",
        "/api/v1/feeds",
        &json!({"name": "hub", "versioning": true, "upstream": {"url": upstream.url(),
            "ttl_seconds": 1, "allow": ["library/*"], "deny": ["library/secret*"]}}),
    );
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["upstream"]["allow"], json!(["library/*"]));
    let digest = |tag: &str| {
        let res = server
            .http()
            .get(&server.url(&format!("/v2/hub/library/app/manifests/{tag}")))
            .header(
                "Accept",
                "application/vnd.docker.distribution.manifest.v2+json",
            )
            .call()
            .unwrap();
        assert_eq!(res.status(), 200, "{tag}");
        res.headers()["docker-content-digest"]
            .to_str()
            .unwrap()
            .to_owned()
    };
    // Before any version is seen, `latest` is the upstream's answer.
    assert_eq!(digest("latest"), theirs);
    assert_eq!(digest("1.0.0"), v100);
    assert_eq!(digest("latest"), v100, "now the highest version seen");
    assert_eq!(digest("1.1.0"), v110);
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(digest("latest"), v110);
    assert_eq!(digest("1"), v110);
    assert_eq!(digest("1.0"), v100);

    // The feed keeps the upstream's own latest instead.
    let (status, body) = json_call(
        &server,
        "PATCH",
        "/api/v1/feeds/hub",
        &json!({"upstream": {"url": upstream.url(), "upstream_latest": true}}),
    );
    assert_eq!(status, 200, "{body}");
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(digest("latest"), theirs);
    assert_eq!(
        digest("1"),
        v110,
        "the other virtual tags still follow versions"
    );

    for path in [
        "/v2/hub/library/secret/manifests/1.0.0",
        "/v2/hub/other/app/manifests/1.0.0",
    ] {
        let (status, body, _) = get(&server, path);
        assert_eq!(status, 403, "{path}: {body}");
        assert!(
            body["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains("does not mirror"),
            "{body}"
        );
    }

    // containerd's `?ns=` picks the connector by its upstream, and is echoed.
    let res = server
        .http()
        .get(&server.url(&format!(
            "/v2/library/app/manifests/1.0.0?ns={}",
            upstream.addr
        )))
        .call()
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers()["oci-namespace"].to_str().unwrap(),
        upstream.addr
    );
}

/// Sync: a connector fetches ahead of pulls what its rules name — every stable 1.x version
/// of `library/postgres` — on demand (the CLI) and on its schedule; with the upstream
/// stopped afterwards, those versions still pull, and nothing else was fetched.
#[test]
fn a_connector_syncs_the_versions_its_rules_name_on_demand_and_on_schedule() {
    let mut upstream = Distribution::start();
    let server = Server::start();
    server.docker_login();
    for tag in ["1.0.0", "1.1.0", "1.2.0-rc.1", "2.0.0", "edge"] {
        push_to(
            &server,
            &upstream.addr,
            &format!("library/postgres:{tag}"),
            &format!("sync {tag}"),
        );
    }
    let key = api_key(&server);
    let cli = |args: &[&str]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_semdock"));
        cmd.args(args)
            .args(["--server", &server.url("")])
            .env("SEMDOCK_API_KEY", &key);
        cmd
    };
    run(&mut cli(&["feed", "create", "hub"]));
    let out = run(&mut cli(&[
        "feed",
        "set",
        "hub",
        "--versioning",
        "on",
        "--upstream",
        &upstream.url(),
        "--sync",
        "library/postgres@^1",
    ]));
    assert!(out.contains("feed hub"), "{out}");
    let (_, feed, _) = get(&server, "/api/v1/feeds/hub");
    assert_eq!(feed["upstream"]["sync"], json!(["library/postgres@^1"]));
    let (status, before, _) = get(&server, "/api/v1/feeds/hub/sync");
    assert_eq!((status, before), (200, Value::Null), "never ran");

    let out = run(&mut cli(&["feed", "sync", "hub"]));
    assert!(out.contains("2 tags held"), "{out}");
    let (_, report, _) = get(&server, "/api/v1/feeds/hub/sync");
    assert_eq!(report["tags"], 2, "{report}");
    assert!(report["blobs_fetched"].as_u64().unwrap() >= 3, "{report}");
    let blob_gets = upstream.requests("GET", "/v2/library/postgres/blobs/");

    upstream.stop();
    for tag in ["1.0.0", "1.1.0"] {
        skopeo_copy(&server, &format!("hub/library/postgres:{tag}")).expect("synced");
    }
    for tag in ["2.0.0", "1.2.0-rc.1", "edge"] {
        let (status, body, _) = get(
            &server,
            &format!("/v2/hub/library/postgres/manifests/{tag}"),
        );
        assert_eq!(status, 503, "{tag} was not synced: {body}");
    }

    // On its schedule: a new stable 1.x upstream arrives without anyone pulling it.
    upstream.run();
    push_to(
        &server,
        &upstream.addr,
        "library/postgres:1.3.0",
        "sync 1.3.0",
    );
    run(&mut cli(&[
        "feed",
        "set",
        "hub",
        "--upstream",
        &upstream.url(),
        "--sync-interval",
        "1",
    ]));
    let deadline = Instant::now() + Duration::from_mins(1);
    loop {
        let (_, tags, _) = get(&server, "/v2/hub/library/postgres/tags/list");
        if tags["tags"]
            .as_array()
            .is_some_and(|t| t.contains(&json!("1.3.0")))
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the scheduled sync did not run: {tags}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(upstream.requests("GET", "/v2/library/postgres/blobs/") > blob_gets);
}

/// Retention for caches: "remove cached images not pulled for 30 days" is the feed's
/// unpulled rule (with released versions included); a pull through the connector counts as
/// a pull, and an image removed is fetched again on its next pull.
#[actix_web::test]
async fn retention_removes_cached_images_not_pulled_and_they_come_back_on_demand() {
    let upstream = Distribution::start();
    let agent = common::http();
    let base = upstream.url();
    for name in ["kept", "idle"] {
        let repo = format!("library/{name}");
        let (_, body) = common::push_image_over_http(&agent, &base, &repo, name.as_bytes());
        let res = agent
            .put(format!("{base}/v2/{repo}/manifests/1.0.0"))
            .header("Content-Type", common::OCI_MANIFEST)
            .send(&body[..])
            .unwrap();
        assert_eq!(res.status(), 201);
    }
    let app = common::TestApp::new().with_feed("hub");
    app.registry
        .feeds()
        .update(
            "hub",
            semdock::domain::FeedChange {
                versioning: Some(true),
                upstream: Some(semdock::domain::UpstreamChange {
                    url: base.clone(),
                    ..Default::default()
                }),
                ..Default::default()
            },
            "admin",
        )
        .unwrap();
    app.registry
        .maintenance()
        .set_retention(
            "hub",
            &semdock::domain::maintenance::retention::Rules {
                unpulled_days: Some(30),
                include_releases: true,
                ..Default::default()
            },
            "admin",
        )
        .unwrap();
    for name in ["kept", "idle"] {
        let res = app
            .get(&format!("/v2/hub/library/{name}/manifests/1.0.0"))
            .await;
        assert_eq!(res.status, 200, "{name} fetched through the connector");
    }
    app.registry.clock().advance(Duration::from_millis(1100));
    let before = app.registry.clock().now();
    assert_eq!(
        app.get("/v2/hub/library/kept/manifests/1.0.0").await.status,
        200
    );
    let report = app
        .registry
        .maintenance()
        .run_retention_at("hub", false, before + 30 * 86_400)
        .unwrap();
    let removed: Vec<String> = report
        .deletions
        .iter()
        .filter_map(|d| d.tag.clone().map(|t| format!("{}:{t}", d.repository)))
        .collect();
    assert_eq!(removed, ["hub/library/idle:1.0.0"]);
    let requests = upstream.requests("GET", "/v2/library/idle/manifests/");
    assert_eq!(
        app.get("/v2/hub/library/idle/manifests/1.0.0").await.status,
        200
    );
    assert!(
        upstream.requests("GET", "/v2/library/idle/manifests/") > requests,
        "fetched again"
    );
}

/// What a [`Spy`] answers to a request for a path.
#[derive(Clone)]
enum Answer {
    /// 200 with this body.
    Body(Vec<u8>),
    /// 307 to this URL.
    Redirect(String),
    /// 401 asking for Basic credentials.
    Challenge,
    /// 200 announcing this many bytes, sending 1 KiB of them, then nothing while the test
    /// runs.
    Stall(u64),
}

/// An HTTP server on loopback standing in for an internal service or a hostile upstream:
/// it answers each path as `answer` says and counts what it was asked.
struct Spy {
    addr: std::net::SocketAddr,
    asked: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Spy {
    fn start(ip: &str, answer: fn(&str) -> Answer) -> Self {
        use std::io::{BufRead as _, BufReader, Write as _};
        let listener = TcpListener::bind((ip, 0)).unwrap();
        let addr = listener.local_addr().unwrap();
        let asked = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = asked.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let log = log.clone();
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    let mut line = String::new();
                    if reader.read_line(&mut line).is_err() {
                        return;
                    }
                    let path = line.split_whitespace().nth(1).unwrap_or("").to_owned();
                    let mut head = path.clone();
                    loop {
                        let mut h = String::new();
                        if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                            break;
                        }
                        head.push('\n');
                        head.push_str(&h.to_ascii_lowercase());
                    }
                    log.lock().unwrap().push(head);
                    let _ = match answer(&path) {
                        Answer::Body(body) => stream
                            .write_all(
                                format!(
                                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n",
                                    body.len()
                                )
                                .as_bytes(),
                            )
                            .and_then(|()| stream.write_all(&body)),
                        Answer::Redirect(to) => stream.write_all(
                            format!(
                                "HTTP/1.1 307 Temporary Redirect\r\nLocation: {to}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                            )
                            .as_bytes(),
                        ),
                        Answer::Challenge => stream.write_all(
                            b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"spy\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                        ),
                        Answer::Stall(len) => stream
                            .write_all(
                                format!(
                                    "HTTP/1.1 200 OK\r\nContent-Length: {len}\r\nContent-Type: application/octet-stream\r\n\r\n"
                                )
                                .as_bytes(),
                            )
                            .and_then(|()| stream.write_all(&[7; 1024]))
                            .map(|()| std::thread::sleep(Duration::from_mins(2))),
                    };
                });
            }
        });
        Self { addr, asked }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn asked(&self, part: &str) -> usize {
        self.asked
            .lock()
            .unwrap()
            .iter()
            .filter(|p| p.contains(part))
            .count()
    }
}

const SECRET: &[u8] = b"INTERNAL-SECRET ";

fn secret_service(path: &str) -> Answer {
    let _ = path;
    Answer::Body(SECRET.repeat(512 * 1024))
}

fn get_text(server: &Server, path: &str) -> (u16, String) {
    let mut res = server.http().get(&server.url(path)).call().unwrap();
    let status = res.status().as_u16();
    (status, res.body_mut().read_to_string().unwrap_or_default())
}

fn test_upstream(server: &Server, feed: &str, url: &str) -> String {
    let (status, body) = json_call(
        server,
        "PATCH",
        &format!("/api/v1/feeds/{feed}"),
        &json!({"upstream": {"url": url}}),
    );
    assert_eq!(status, 200, "{body}");
    let (status, checked) = json_call(
        server,
        "POST",
        &format!("/api/v1/feeds/{feed}/upstream/test"),
        &json!({}),
    );
    assert_eq!((status, &checked["ok"]), (200, &json!(false)), "{checked}");
    checked["message"]
        .as_str()
        .unwrap()
        .trim_start_matches(url)
        .to_owned()
}

/// Issue 30.1: a feed administrator's connector and webhooks cannot reach loopback,
/// link-local, private or this host's own addresses unless the server's configuration
/// allows them — checked on the resolved address of every connection, redirects included —
/// and no byte of an upstream answer that fails its digest reaches the client.
#[test]
#[allow(clippy::too_many_lines)]
fn connectors_and_webhooks_reach_no_internal_address_unless_allowed() {
    let secret = Spy::start("127.0.0.1", secret_service);
    let dir = tempfile::tempdir().unwrap();
    // Only 127.0.0.2, the stand-in for an internal registry the administrator trusts.
    let server = Server::start_in(
        dir.path(),
        &[("SEMDOCK_OUTBOUND__ALLOW", "[\"127.0.0.2\"]")],
    );
    let (status, body) = json_call(
        &server,
        "POST",
        "/api/v1/feeds",
        &json!({"name": "hub", "upstream": {"url": secret.url()}}),
    );
    assert_eq!(status, 201, "{body}");

    // The internal service is never asked: open, closed and unroutable ports all get the
    // same sentence, so the check tells nothing about what listens there.
    let open = test_upstream(&server, "hub", &secret.url());
    assert!(
        open.contains("127.0.0.1 is a loopback address") && open.contains("outbound.allow"),
        "{open}"
    );
    assert_eq!(test_upstream(&server, "hub", "http://127.0.0.1:1"), open);
    for (url, what) in [
        ("http://169.254.169.254", "link-local"),
        ("http://[::1]:8080", "loopback"),
        ("http://0.0.0.0:8080", "unspecified"),
        ("http://10.0.0.1", "private"),
        ("http://192.168.1.1", "private"),
        // A name is judged by what it resolves to.
        (
            &format!("http://localhost:{}", secret.addr.port()),
            "loopback",
        ),
    ] {
        let said = test_upstream(&server, "hub", url);
        assert!(said.contains(what), "{url}: {said}");
    }
    test_upstream(&server, "hub", &secret.url());
    let digest = format!("sha256:{}", "ab".repeat(32));
    let (status, body) = get_text(&server, &format!("/v2/hub/app/blobs/{digest}"));
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("loopback"), "{body}");
    let (status, body) = get_text(&server, "/v2/hub/app/manifests/latest");
    assert_eq!(status, 503, "{body}");
    assert_eq!(secret.asked(""), 0, "the internal service was reached");

    // An allowed upstream that redirects to the internal service: the hop is refused.
    let redirect_to = format!("{}/steal", secret.url());
    let redirector = Spy::start("127.0.0.2", |path| {
        if path == "/v2/" {
            Answer::Body(b"{}".to_vec())
        } else {
            Answer::Redirect(std::env::var("SPY_REDIRECT").unwrap())
        }
    });
    // SAFETY: set before any thread of the spy reads it, and only by this test.
    unsafe { std::env::set_var("SPY_REDIRECT", &redirect_to) };
    let (status, _) = json_call(
        &server,
        "PATCH",
        "/api/v1/feeds/hub",
        &json!({"upstream": {"url": redirector.url()}}),
    );
    assert_eq!(status, 200);
    let (status, body) = get_text(&server, &format!("/v2/hub/app/blobs/{digest}"));
    assert_ne!(status, 200, "{body}");
    assert!(body.contains("loopback"), "{body}");
    assert_eq!(redirector.asked("/blobs/"), 1);
    assert_eq!(
        secret.asked(""),
        0,
        "a redirect reached the internal service"
    );

    // An allowed upstream answering a blob with other bytes: the client gets an error and
    // not one byte of them (before, all but the last megabyte arrived).
    let hostile = Spy::start("127.0.0.2", secret_service);
    let (status, _) = json_call(
        &server,
        "PATCH",
        "/api/v1/feeds/hub",
        &json!({"upstream": {"url": hostile.url()}}),
    );
    assert_eq!(status, 200);
    let (status, body) = get_text(&server, &format!("/v2/hub/app/blobs/{digest}"));
    assert_eq!(status, 503, "{body}");
    assert!(
        !body.contains("INTERNAL-SECRET"),
        "unverified bytes reached the client"
    );
    assert!(body.contains("hashes to"), "{body}");
    assert_eq!(hostile.asked("/blobs/"), 1);

    // A webhook pointed at the internal service is never delivered there.
    let (status, hook) = json_call(
        &server,
        "POST",
        "/api/v1/webhooks",
        &json!({"url": format!("{}/hook", secret.url()), "feed": "library"}),
    );
    assert_eq!(status, 201, "{hook}");
    push_manifest(&server, "library/hooked", "1.0.0", b"a layer");
    let id = hook["id"].as_str().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let log = loop {
        let (_, log, _) = get(&server, &format!("/api/v1/webhooks/{id}/deliveries"));
        if log.to_string().contains("loopback") || Instant::now() > deadline {
            break log;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(log.to_string().contains("loopback"), "{log}");
    assert_eq!(
        secret.asked(""),
        0,
        "a webhook reached the internal service"
    );
}

/// Issue 30.3: pulls of blobs whose upstream sends a little and then stalls do not take
/// the node down — the other requests keep answering, the fetch ends at the upstream
/// timeout, the waiting pulls fail with it together (not one timeout after another), and
/// the node serves normally afterwards.
#[test]
fn a_stalled_upstream_does_not_take_the_node_down() {
    let staller = Spy::start("127.0.0.2", |path| {
        if path.contains("/blobs/") {
            Answer::Stall(100 << 20)
        } else {
            Answer::Body(b"{}".to_vec())
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_in(
        dir.path(),
        &[("SEMDOCK_LIMITS__UPSTREAM_TIMEOUT_SECONDS", "3")],
    );
    let (status, body) = json_call(
        &server,
        "POST",
        "/api/v1/feeds",
        &json!({"name": "hub", "upstream": {"url": staller.url()}}),
    );
    assert_eq!(status, 201, "{body}");
    let manifest = push_manifest(&server, "library/local", "1.0.0", b"served meanwhile");
    let same = format!("sha256:{}", "cd".repeat(32));
    // More pulls than the blocking pool has threads (512), most of one blob, some of
    // blobs of their own.
    let started = Instant::now();
    let pulls: Vec<_> = (0..600)
        .map(|i| {
            let digest = if i % 6 == 0 {
                format!("sha256:{i:064x}")
            } else {
                same.clone()
            };
            let url = server.url(&format!("/v2/hub/app/blobs/{digest}"));
            let agent = server.http();
            std::thread::spawn(move || {
                agent.get(&url).call().map_or(0, |mut r| {
                    let _ = r.body_mut().read_to_vec();
                    r.status().as_u16()
                })
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    for path in [
        "/healthz".to_owned(),
        "/readyz".to_owned(),
        "/api/v1/feeds".to_owned(),
        format!("/v2/library/local/manifests/{manifest}"),
    ] {
        let t = Instant::now();
        let (status, body) = get_text(&server, &path);
        assert_eq!(status, 200, "{path} while the upstream stalls: {body}");
        assert!(
            t.elapsed() < Duration::from_secs(3),
            "{path} took {:?}",
            t.elapsed()
        );
    }
    let statuses: Vec<u16> = pulls.into_iter().map(|p| p.join().unwrap()).collect();
    assert!(
        started.elapsed() < Duration::from_mins(1),
        "the waiting pulls took {:?}",
        started.elapsed()
    );
    assert!(statuses.iter().all(|s| *s == 503), "{statuses:?}");
    // One fetch of the shared blob, not one per waiting pull.
    assert!(
        staller.asked(&same) <= 3,
        "{} fetches",
        staller.asked(&same)
    );
    for path in ["/healthz", "/readyz"] {
        assert_eq!(get_text(&server, path).0, 200);
    }
    assert_eq!(
        get_text(&server, &format!("/v2/library/local/manifests/{manifest}")).0,
        200
    );
}

/// Pushes an image of one `layer` as `repo:tag` over the API; its manifest digest.
fn push_manifest(server: &Server, repo: &str, tag: &str, layer: &[u8]) -> String {
    let (digest, body) = common::push_image_over_http(&server.http(), &server.url(""), repo, layer);
    let res = server
        .http()
        .put(&server.url(&format!("/v2/{repo}/manifests/{tag}")))
        .header("Content-Type", common::OCI_MANIFEST)
        .send(&body[..])
        .unwrap();
    assert_eq!(res.status(), 201);
    digest
}

/// Issue 30.2: stored upstream credentials belong to the origin they were given for; a
/// feed administrator who changes only the URL cannot send them to her own server, and a
/// password in a URL is refused and never shown back.
#[test]
fn upstream_credentials_do_not_follow_a_changed_url() {
    let vendor = Spy::start("127.0.0.2", |_| Answer::Body(b"{}".to_vec()));
    // It asks for credentials, as the vendor's registry would.
    let attacker = Spy::start("127.0.0.3", |_| Answer::Challenge);
    let server = Server::start();
    let (status, body) = json_call(
        &server,
        "POST",
        "/api/v1/feeds",
        &json!({"name": "hub", "upstream": {"url": vendor.url(), "username": "vendor", "password": "vendor-secret"}}),
    );
    assert_eq!(status, 201, "{body}");
    // Test it against the vendor: the credentials go there (Basic, on its challenge or
    // first).
    json_call(
        &server,
        "POST",
        "/api/v1/feeds/hub/upstream/test",
        &json!({}),
    );
    let (status, feed) = json_call(
        &server,
        "PATCH",
        "/api/v1/feeds/hub",
        &json!({"upstream": {"url": attacker.url()}}),
    );
    assert_eq!(status, 200, "{feed}");
    assert_eq!(feed["upstream"]["has_password"], false, "{feed}");
    assert_eq!(feed["upstream"]["username"], Value::Null, "{feed}");
    json_call(
        &server,
        "POST",
        "/api/v1/feeds/hub/upstream/test",
        &json!({}),
    );
    assert!(attacker.asked("") > 0, "the attacker's server was asked");
    assert_eq!(
        attacker.asked("authorization"),
        0,
        "the vendor's credentials reached another origin"
    );
    // A password in the URL: refused, and not repeated in the answer, the feed or the log.
    let url = format!("http://ci:leaked-pw@{}", vendor.addr);
    let (status, body) = json_call(
        &server,
        "PATCH",
        "/api/v1/feeds/hub",
        &json!({"upstream": {"url": url}}),
    );
    assert_eq!(status, 400, "{body}");
    assert!(!body.to_string().contains("leaked-pw"), "{body}");
    assert!(
        body.to_string().contains("user name and password"),
        "{body}"
    );
    let (_, feed, _) = get(&server, "/api/v1/feeds/hub");
    let (_, audit, _) = get(&server, "/api/v1/audit");
    for shown in [feed.to_string(), audit.to_string(), server.log()] {
        assert!(!shown.contains("leaked-pw") && !shown.contains("vendor-secret"));
    }
}

/// Issue 30.7 and 30.8: with `mirror_feed` set, only names whose first segment is no feed
/// go to the mirror. A typo of a repository in an existing feed is `NAME_UNKNOWN` and never
/// asked upstream; a typo of a feed gets a sentence saying so; and docker pushes an image
/// whose layers are already stored to a new repository (blob existence answers per
/// repository, as without the mirror).
#[test]
fn the_mirror_takes_only_names_without_a_feed_and_pushes_to_new_repositories_work() {
    let upstream = Spy::start("127.0.0.2", |path| {
        if path == "/v2/" {
            Answer::Body(b"{}".to_vec())
        } else {
            Answer::Challenge
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_in(
        &dir.path().join("data"),
        &[
            ("SEMDOCK_MIRROR_FEED", "hub"),
            ("SEMDOCK_FEEDS", "[library,prod,hub]"),
        ],
    );
    let (status, body) = json_call(
        &server,
        "PATCH",
        "/api/v1/feeds/hub",
        &json!({"upstream": {"url": upstream.url()}}),
    );
    assert_eq!(status, 200, "{body}");
    server.docker_login();
    let host = server.host();
    let ctx = image_context(2, "mirror push");
    let first = format!("{host}/prod/team/app:1.0.0");
    run(server
        .docker()
        .args(["build", "--no-cache", "-q", "-t", &first])
        .arg(ctx.path())
        .env("DOCKER_BUILDKIT", "0"));
    run(server.docker().args(["push", &first]));

    // A typo in an existing feed: NAME_UNKNOWN, as without the mirror, and the upstream is
    // never asked.
    let (status, body) = get_text(&server, "/v2/prod/tema/app/manifests/1.0.0");
    assert_eq!(status, 404, "{body}");
    assert!(
        body.contains("NAME_UNKNOWN") || body.contains("MANIFEST_UNKNOWN"),
        "{body}"
    );
    assert_eq!(upstream.asked("tema"), 0, "a typo reached the upstream");
    // The same image to a new repository of the feed: its layers exist elsewhere, and
    // docker must still upload (or mount) them here.
    let second = format!("{host}/prod/team/other:1.0.0");
    run(server.docker().args(["tag", &first, &second]));
    run(server.docker().args(["push", &second]));
    let (status, body) = get_text(&server, "/v2/prod/team/other/manifests/1.0.0");
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        upstream.asked("prod/team"),
        0,
        "a push went to the upstream"
    );
    run(server.docker().args(["rmi", &first, &second]));

    // A typo of a feed goes to the mirror (docker.io names have no feed either); what the
    // mirror cannot get is NAME_UNKNOWN with a sentence naming the feed that does not exist.
    let (status, body) = get_text(&server, "/v2/prdo/app/manifests/1.0.0");
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("NAME_UNKNOWN"), "{body}");
    assert!(
        body.contains("feed \\\"prdo\\\" does not exist") && body.contains("mirror feed"),
        "{body}"
    );
}

/// A connector feed links a blob stored for another repository only when a repository of
/// its own feed holds it; a pull from a connector feed never reads another feed's blob by
/// naming its digest (the upstream must serve the bytes).
#[test]
fn a_connector_feed_never_serves_another_feeds_blob() {
    let upstream = Spy::start("127.0.0.2", |path| {
        if path == "/v2/" {
            Answer::Body(b"{}".to_vec())
        } else {
            Answer::Challenge
        }
    });
    let server = Server::start();
    let private = b"a layer of the private feed";
    push_manifest(&server, "prod/secret", "1.0.0", private);
    let (status, body) = json_call(
        &server,
        "POST",
        "/api/v1/feeds",
        &json!({"name": "hub", "upstream": {"url": upstream.url()}}),
    );
    assert_eq!(status, 201, "{body}");
    let digest = semdock::model::Digest::of(private);
    let (status, body) = get_text(&server, &format!("/v2/hub/any/blobs/{digest}"));
    assert_ne!(status, 200, "another feed's blob was served: {body}");
    assert!(!body.contains("private feed"), "{body}");
    assert_eq!(
        upstream.asked("/blobs/"),
        1,
        "the upstream was asked for it"
    );
}
