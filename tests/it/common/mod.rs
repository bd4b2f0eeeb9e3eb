//! Test fixtures: `TestApp` for in-process HTTP tests, `Server` for the real binary, and
//! helpers for the real clients (docker, podman, skopeo).
#![allow(dead_code)]

pub mod cluster;
pub mod distribution;
pub mod ldap;
pub mod oidc;
pub mod sigstore;
/// The benchmarks' helpers (HAProxy's configuration, Angos), shared with the tests.
#[path = "../../../benches/support/mod.rs"]
#[allow(dead_code)]
pub mod support;

use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::http::header::HeaderMap;
use actix_web::{App, test};
use semdock::domain::auth::{Auth, Caller, Principal, TokenSettings, Via};
use semdock::domain::{Limits, Registry, Services};
use semdock::model::{Digest, FeedName};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// An in-process registry over a temporary data directory.
pub struct TestApp {
    pub registry: Arc<Registry>,
    pub auth: Arc<Auth>,
    pub dir: tempfile::TempDir,
    /// `Authorization` sent by `send`: an administrator's API key.
    pub admin_auth: String,
    pub admin_password: String,
    /// `external_url` and trusted proxies, as configured.
    pub realm: semdock::http::Realm,
    /// The PostgreSQL database holding the metadata, when not the embedded store.
    pub postgres: Option<String>,
    /// The S3 bucket and prefix holding the blobs, when not the data directory.
    pub s3: Option<semdock::store::blobs::s3::S3Location>,
}

/// A response, read whole.
pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// The OCI error code of an error response.
    pub fn error_code(&self) -> String {
        self.json()["errors"][0]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    pub fn error_message(&self) -> String {
        self.json()["errors"][0]["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
}

pub const LIMITS: Limits = Limits {
    manifest_bytes: 64 * 1024,
    upload_bytes: 8 << 20,
    upload_sessions: 20,
    metadata_cache_bytes: 16 << 20,
    upstream_timeout_seconds: 30,
};

/// The same, with room for blobs of several S3 multipart parts.
const DISTRIBUTED_LIMITS: Limits = Limits {
    upload_bytes: 64 << 20,
    ..LIMITS
};

pub fn tokens() -> TokenSettings {
    TokenSettings {
        service: "semdock-test".into(),
        ttl_seconds: 300,
    }
}

/// The administrator, as if logged in with the password.
pub fn admin() -> Caller {
    Caller {
        principal: Principal::User {
            name: "admin".into(),
            admin: true,
        },
        via: Via::Password,
    }
}

/// `Basic` credentials for `user:secret`.
pub fn basic(user: &str, secret: &str) -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{secret}"))
    )
}

/// A new, empty database on the PostgreSQL server the tests use (`TEST_POSTGRES_URL`, a
/// libpq connection string; `./scripts/test` starts a throwaway cluster and sets it).
pub fn postgres_database() -> String {
    let base = std::env::var("TEST_POSTGRES_URL").expect(
        "TEST_POSTGRES_URL names the PostgreSQL server these tests use: run ./scripts/test, or `scripts/postgres start DIR` and export what it prints",
    );
    let name = format!("t_{}", uuid::Uuid::new_v4().simple());
    postgres_admin(&format!("CREATE DATABASE {name}"));
    format!("{base} dbname={name}")
}

/// Runs `sql` on the test PostgreSQL server's `postgres` database (as its superuser).
pub fn postgres_admin(sql: &str) {
    let base = std::env::var("TEST_POSTGRES_URL").expect("TEST_POSTGRES_URL is set");
    simple_query(&base, sql);
}

/// Runs `sql` (any statements) on the database `url`.
pub fn postgres_exec(url: &str, sql: &str) {
    simple_query(url, sql);
}

/// Runs the query `sql` (one `bigint` in its first row) on the database `url` over a
/// plaintext connection; returns that number.
pub fn postgres_count(url: &str, sql: &str) -> i64 {
    simple_query(url, sql)
        .iter()
        .find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(row) => row.get(0)?.parse().ok(),
            _ => None,
        })
        .expect("the query returns a number")
}

/// Runs `sql` on the database `url` with the simple query protocol (so that statements such
/// as `CREATE DATABASE` run outside a transaction); returns what the server sent back.
fn simple_query(url: &str, sql: &str) -> Vec<tokio_postgres::SimpleQueryMessage> {
    let (url, sql) = (url.to_owned(), sql.to_owned());
    // On a thread of its own: callers may be async tests, where no runtime may block.
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                .await
                .expect("the test PostgreSQL server answers");
            let driver = tokio::spawn(connection);
            let messages = client.simple_query(&sql).await.unwrap();
            drop(client);
            let _ = driver.await;
            messages
        })
    })
    .join()
    .unwrap()
}

/// A new, empty place in the test object store (`TEST_S3_*`, from `scripts/garage`): the
/// bucket with a prefix of its own.
pub fn s3_location() -> semdock::store::blobs::s3::S3Location {
    let var = |name: &str| {
        std::env::var(name).unwrap_or_else(|_| panic!("{name} names the object store these tests use: run ./scripts/test, or `scripts/garage start DIR` and eval what it prints"))
    };
    semdock::store::blobs::s3::S3Location {
        endpoint: Some(var("TEST_S3_ENDPOINT")),
        bucket: var("TEST_S3_BUCKET"),
        region: var("TEST_S3_REGION"),
        path_style: true,
        access_key_id: var("TEST_S3_ACCESS_KEY_ID"),
        secret_access_key: var("TEST_S3_SECRET_ACCESS_KEY"),
        prefix: format!("t-{}", uuid::Uuid::new_v4().simple()),
    }
}

/// The services of one node over PostgreSQL database `url`, with blobs in `s3` when given,
/// else in `dir`.
fn node_services(
    dir: &Path,
    url: &str,
    s3: Option<&semdock::store::blobs::s3::S3Location>,
) -> Services {
    let meta = Arc::new(semdock::store::meta::postgres::PgMeta::connect(url, None).unwrap());
    match s3 {
        Some(location) => Services::with_stores(
            meta,
            Arc::new(semdock::store::blobs::s3::S3Blobs::open(location).unwrap()),
            dir,
            DISTRIBUTED_LIMITS,
            tokens(),
        ),
        None => Services::with_stores(
            meta,
            Arc::new(semdock::store::blobs::fs::FsBlobs::open(dir).unwrap()),
            dir,
            LIMITS,
            tokens(),
        ),
    }
    .unwrap()
}

impl TestApp {
    /// A registry with the feed `library`; requests authenticate as an administrator.
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let services = semdock::server::open_embedded(dir.path(), LIMITS, tokens(), true).unwrap();
        Self::from_services(services, dir, None, None)
    }

    /// The same, with its metadata in a new PostgreSQL database.
    pub fn on_postgres() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let url = postgres_database();
        let services = node_services(dir.path(), &url, None);
        Self::from_services(services, dir, Some(url), None)
    }

    /// The distributed registry: metadata in a new PostgreSQL database, blobs in a new place
    /// in the object store.
    pub fn distributed() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let url = postgres_database();
        let s3 = s3_location();
        let services = node_services(dir.path(), &url, Some(&s3));
        Self::from_services(services, dir, Some(url), Some(s3))
    }

    /// Another node of this registry: its own services over the same PostgreSQL database
    /// and the same blob directory (shared storage), as a second machine would have.
    pub fn another_node(&self) -> Self {
        let url = self
            .postgres
            .clone()
            .expect("only a PostgreSQL registry has other nodes");
        let services = node_services(self.dir.path(), &url, self.s3.as_ref());
        Self {
            registry: services.registry,
            auth: services.auth,
            dir: tempfile::tempdir_in(self.dir.path()).unwrap(),
            admin_auth: self.admin_auth.clone(),
            admin_password: self.admin_password.clone(),
            realm: semdock::http::Realm::default(),
            postgres: Some(url),
            s3: self.s3.clone(),
        }
    }

    fn from_services(
        services: Services,
        dir: tempfile::TempDir,
        postgres: Option<String>,
        s3: Option<semdock::store::blobs::s3::S3Location>,
    ) -> Self {
        let admin_password = services
            .initial_password
            .clone()
            .expect("first start makes admin");
        let key = services
            .auth
            .keys()
            .create(
                &admin(),
                None,
                "tests",
                &std::collections::BTreeMap::new(),
                true,
                None,
            )
            .unwrap();
        // The upstreams of the tests are servers on loopback, which connectors reach only
        // where allowed (as `Server` allows it by its environment).
        services.registry.connector().set_outbound(Arc::new(
            semdock::clients::outbound::Outbound::new(&["127.0.0.0/8".to_owned()], Vec::new())
                .unwrap(),
        ));
        let app = Self {
            registry: services.registry,
            auth: services.auth,
            dir,
            admin_auth: basic("api", &key.key),
            admin_password,
            realm: semdock::http::Realm::default(),
            postgres,
            s3,
        };
        app.with_feed("library")
    }

    pub fn with_feed(self, feed: &str) -> Self {
        self.registry
            .feeds()
            .ensure(&feed.parse::<FeedName>().unwrap())
            .unwrap();
        self
    }

    /// Closes the registry and opens it again on the same directory, as a restart does.
    pub fn restart(self) -> Self {
        let Self {
            registry,
            auth,
            dir,
            admin_auth,
            admin_password,
            realm,
            postgres,
            s3,
        } = self;
        drop(auth);
        drop(Arc::into_inner(registry).expect("no other handle"));
        let services = match &postgres {
            Some(url) => node_services(dir.path(), url, s3.as_ref()),
            None => semdock::server::open_embedded(dir.path(), LIMITS, tokens(), true).unwrap(),
        };
        Self {
            registry: services.registry,
            auth: services.auth,
            dir,
            admin_auth,
            admin_password,
            realm,
            postgres,
            s3,
        }
    }

    /// Sends `req` as the administrator.
    pub async fn send(&self, req: test::TestRequest) -> Resp {
        self.send_as(req.insert_header(("Authorization", self.admin_auth.as_str())))
            .await
    }

    /// Sends `req` with whatever credentials it carries (none: anonymous).
    pub async fn send_as(&self, req: test::TestRequest) -> Resp {
        // As the server composes it: read-only mode at the door, the request log (and its
        // metrics) around every area.
        let app = test::init_service(
            App::new()
                .wrap(actix_web::middleware::from_fn(
                    semdock::http::read_only::refuse_writes,
                ))
                .wrap(actix_web::middleware::from_fn(
                    semdock::http::access_log::log_request,
                ))
                .configure(semdock::http::configure(
                    self.registry.clone(),
                    self.auth.clone(),
                    self.realm.clone(),
                    semdock::config::Config::default().gc_options(false),
                )),
        )
        .await;
        let res = test::call_service(&app, req.to_request()).await;
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let body = test::read_body(res).await.to_vec();
        Resp {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, uri: &str) -> Resp {
        self.send(test::TestRequest::get().uri(uri)).await
    }

    /// Uploads `bytes` as a blob of `repo` in one request; returns its digest.
    pub async fn push_blob(&self, repo: &str, bytes: &[u8]) -> Digest {
        let digest = Digest::of(bytes);
        let res = self
            .send(
                test::TestRequest::post()
                    .uri(&format!("/v2/{repo}/blobs/uploads/?digest={digest}"))
                    .set_payload(bytes.to_vec()),
            )
            .await;
        assert_eq!(res.status, 201, "{}", String::from_utf8_lossy(&res.body));
        digest
    }

    /// Uploads a config and `layers` to `repo` and returns an image manifest over them
    /// (not pushed) with its digest.
    pub async fn image(&self, repo: &str, layers: &[&[u8]]) -> (Digest, Vec<u8>) {
        let config = self
            .push_blob(repo, br#"{"architecture":"amd64","os":"linux"}"#)
            .await;
        let mut descs = Vec::new();
        for layer in layers {
            let d = self.push_blob(repo, layer).await;
            descs.push(serde_json::json!({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d.as_str(), "size": layer.len()}));
        }
        let body = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config.as_str(), "size": 37},
            "layers": descs,
        }))
        .unwrap();
        (Digest::of(&body), body)
    }

    /// Pushes an image of `layers` under `reference`.
    pub async fn push_image(
        &self,
        repo: &str,
        reference: &str,
        layers: &[&[u8]],
    ) -> (Digest, Vec<u8>) {
        let (digest, body) = self.image(repo, layers).await;
        let res = self
            .put_manifest(repo, reference, OCI_MANIFEST, &body)
            .await;
        assert_eq!(res.status, 201, "{}", String::from_utf8_lossy(&res.body));
        (digest, body)
    }

    /// Switches versioning on for `feed` with `permitted` tags.
    pub fn versioned(self, feed: &str, permitted: &[&str]) -> Self {
        let app = self.with_feed(feed);
        app.registry
            .feeds()
            .update(
                feed,
                semdock::domain::FeedChange {
                    versioning: Some(true),
                    permitted: Some(permitted.iter().map(|p| (*p).to_owned()).collect()),
                    ..Default::default()
                },
                "admin",
            )
            .unwrap();
        app
    }

    pub async fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        body: &[u8],
    ) -> Resp {
        self.send(
            test::TestRequest::put()
                .uri(&format!("/v2/{repo}/manifests/{reference}"))
                .insert_header(("Content-Type", media_type))
                .set_payload(body.to_vec()),
        )
        .await
    }
}

/// The real `semdock` binary serving on a port it picked, with a temporary data directory.
pub struct Server {
    pub child: Child,
    pub addr: String,
    pub data_dir: PathBuf,
    pub log: Arc<Mutex<String>>,
    pub admin_password: String,
    /// docker's client config (`DOCKER_CONFIG`), so logins stay inside the test.
    pub docker_config: tempfile::TempDir,
    owned_dir: Option<tempfile::TempDir>,
}

impl Server {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().join("data");
        let mut server = Self::start_in(&data_dir, &[]);
        server.owned_dir = Some(dir);
        server
    }

    /// Starts on `data_dir` (kept by the caller) with extra environment.
    pub fn start_in(data_dir: &Path, env: &[(&str, &str)]) -> Self {
        Self::start_bin(Path::new(env!("CARGO_BIN_EXE_semdock")), data_dir, env)
    }

    /// Starts the binary `bin` (a release build, say) on `data_dir` with extra environment.
    pub fn start_bin(bin: &Path, data_dir: &Path, env: &[(&str, &str)]) -> Self {
        let mut cmd = Command::new(bin);
        cmd.arg("serve")
            .env("SEMDOCK_LISTEN", "127.0.0.1:0")
            .env("SEMDOCK_DATA_DIR", data_dir)
            .env("SEMDOCK_FEEDS", "[library,prod]")
            // The upstreams and webhook receivers of the tests are servers on loopback, which
            // connectors and webhooks reach only where allowed; the tests of that policy
            // override it.
            .env("SEMDOCK_OUTBOUND__ALLOW", "[\"127.0.0.0/8\"]")
            // Tests read the request lines of the log.
            .env("SEMDOCK_LOG__ACCESS", "true")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("semdock binary starts");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = log.clone();
        std::thread::spawn(move || {
            let re = regex::Regex::new(r"addr=(\S+)").unwrap();
            let mut sent = false;
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                {
                    let mut log = sink.lock().unwrap();
                    log.push_str(&line);
                    log.push('\n');
                }
                // Reported only once the line is in the log, so callers can read it.
                if !sent
                    && line.contains("semdock listening")
                    && let Some(c) = re.captures(&line)
                {
                    let _ = tx.send(c[1].to_owned());
                    sent = true;
                }
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| {
                panic!(
                    "semdock did not report its address; log:\n{}",
                    log.lock().unwrap()
                )
            });
        // Gone once the administrator changed the password (a restart of such a directory).
        let admin_password = std::fs::read_to_string(data_dir.join("initial-admin-password"))
            .unwrap_or_default()
            .trim()
            .to_owned();
        Self {
            child,
            addr,
            data_dir: data_dir.to_owned(),
            log,
            admin_password,
            docker_config: tempfile::tempdir().unwrap(),
            owned_dir: None,
        }
    }

    /// `admin:PASSWORD`, for skopeo's and podman's `--creds`.
    pub fn creds(&self) -> String {
        format!("admin:{}", self.admin_password)
    }

    /// Pushes `bytes` as a blob of `repo` in one POST; its digest.
    pub fn push_blob(&self, repo: &str, bytes: &[u8]) -> Digest {
        let digest = Digest::of(bytes);
        let res = self
            .http()
            .post(self.url(&format!("/v2/{repo}/blobs/uploads/?digest={digest}")))
            .send(bytes)
            .unwrap();
        assert_eq!(res.status(), 201, "blob push to {repo}");
        digest
    }

    /// A new administrator's API key named `name`, created through the API (the first key
    /// comes from there).
    pub fn admin_key(&self, name: &str) -> String {
        let mut res = self
            .http()
            .post(self.url("/api/v1/keys"))
            .content_type("application/json")
            .send(serde_json::json!({"name": name, "admin": true}).to_string())
            .unwrap();
        assert_eq!(res.status(), 201, "an administrator's key");
        let key: serde_json::Value =
            serde_json::from_str(&res.body_mut().read_to_string().unwrap()).unwrap();
        key["key"].as_str().unwrap().to_owned()
    }

    /// An HTTP client that authenticates as the administrator.
    pub fn http(&self) -> ureq::Agent {
        http_as(Some(basic("admin", &self.admin_password)))
    }

    /// `docker` with this server's own client config.
    pub fn docker(&self) -> Command {
        let mut cmd = docker();
        cmd.env("DOCKER_CONFIG", self.docker_config.path());
        cmd
    }

    /// `docker push TAG` with this server's client config, started in the background with
    /// its output discarded: a push for a test to interrupt.
    pub fn push_in_background(&self, tag: &str) -> Child {
        self.docker()
            .args(["push", tag])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    }

    /// A containers auth file (for skopeo and podman, via `REGISTRY_AUTH_FILE`) holding the
    /// administrator's credentials for this server.
    pub fn containers_auth(&self) -> PathBuf {
        use base64::Engine as _;
        let path = self.docker_config.path().join("containers-auth.json");
        let auth = base64::engine::general_purpose::STANDARD.encode(self.creds());
        let body = serde_json::json!({"auths": {self.host(): {"auth": auth}}});
        std::fs::write(&path, body.to_string()).unwrap();
        path
    }

    /// `docker login` to `host` as `user`, the secret on standard input.
    pub fn docker_login_as(&self, host: &str, user: &str, secret: &str) -> std::process::Output {
        let mut child = self
            .docker()
            .args(["login", "-u", user, "--password-stdin", host])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(child.stdin.as_mut().unwrap(), secret.as_bytes()).unwrap();
        drop(child.stdin.take());
        child.wait_with_output().unwrap()
    }

    /// `docker login` as the administrator.
    pub fn docker_login(&self) {
        let out = self.docker_login_as(&self.host(), "admin", &self.admin_password);
        assert!(
            out.status.success(),
            "docker login failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `localhost:PORT`, the name docker treats as an insecure registry.
    pub fn host(&self) -> String {
        let port = self.addr.rsplit(':').next().unwrap();
        format!("localhost:{port}")
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Sends SIGTERM and waits for a clean exit; returns whether it exited successfully.
    pub fn terminate(&mut self) -> bool {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// SIGKILL, as a crash.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An anonymous HTTP client that returns 4xx/5xx as responses.
pub fn http() -> ureq::Agent {
    http_as(None)
}

/// An HTTP client sending `authorization` with every request.
pub fn http_as(authorization: Option<String>) -> ureq::Agent {
    let mut config = ureq::Agent::config_builder().http_status_as_error(false);
    if let Some(value) = authorization {
        config = config.middleware(
            move |mut req: ureq::http::Request<ureq::SendBody>,
                  next: ureq::middleware::MiddlewareNext| {
                req.headers_mut()
                    .insert("authorization", value.parse().unwrap());
                next.handle(req)
            },
        );
    }
    config.build().into()
}

/// Runs a command; panics with its output when it fails. Returns stdout+stderr.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{cmd:?} failed:\n{text}");
    text
}

/// Runs a command expected to fail; returns its output.
pub fn run_fail(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !out.status.success(),
        "{cmd:?} succeeded unexpectedly:\n{text}"
    );
    text
}

/// `docker` talking to the engine in `DOCKER_HOST` (scripts/test starts one).
pub fn docker() -> Command {
    let mut cmd = Command::new("docker");
    if std::env::var_os("DOCKER_HOST").is_none() {
        cmd.env("DOCKER_HOST", "unix:///tmp/semdock-dockerd.sock");
    }
    cmd
}

/// A build context for a `FROM scratch` image with `layers` files of distinct random bytes.
pub fn image_context(layers: usize, extra: &str) -> tempfile::TempDir {
    image_context_sized(layers, 50_000, extra)
}

/// Like `image_context`, with layers of about `bytes` each.
pub fn image_context_sized(layers: usize, bytes: usize, extra: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let mut dockerfile = String::from("FROM scratch\n");
    for i in 0..layers {
        let mut bytes = vec![0u8; bytes + i * 1000];
        rand::fill(&mut bytes[..]);
        std::fs::write(dir.path().join(format!("f{i}.bin")), &bytes).unwrap();
        writeln!(dockerfile, "COPY f{i}.bin /f{i}.bin").unwrap();
    }
    std::fs::write(dir.path().join("extra.txt"), extra).unwrap();
    dockerfile.push_str("COPY extra.txt /extra.txt\n");
    std::fs::write(dir.path().join("Dockerfile"), dockerfile).unwrap();
    dir
}

/// Every published blob file hashes to its name: nothing torn.
pub fn assert_no_torn_blobs(data: &Path) {
    use sha2::{Digest as _, Sha256};
    let root = data.join("blobs").join("sha256");
    for prefix in std::fs::read_dir(&root).unwrap() {
        for file in std::fs::read_dir(prefix.unwrap().path()).unwrap() {
            let path = file.unwrap().path();
            let bytes = std::fs::read(&path).unwrap();
            let name = path.file_name().unwrap().to_str().unwrap().to_owned();
            assert_eq!(
                hex::encode(Sha256::digest(&bytes)),
                name,
                "torn blob {}",
                path.display()
            );
        }
    }
}

/// The cookies a response sets, as `name=value`.
pub fn set_cookies(res: &Resp) -> Vec<String> {
    res.headers
        .get_all("set-cookie")
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned())
        .collect()
}

/// The CSRF token of the first form in a page.
pub fn csrf_of(html: &str) -> String {
    regex::Regex::new(r#"name="csrf" value="([0-9a-f]+)""#)
        .unwrap()
        .captures(html)
        .map(|c| c[1].to_owned())
        .unwrap_or_default()
}

/// An urlencoded form body.
pub fn form(pairs: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

/// Logs in to the UI through its form: the session cookie and the session's CSRF token, or
/// the login response when it fails.
pub async fn ui_login(app: &TestApp, user: &str, password: &str) -> Result<(String, String), Resp> {
    let page = app.send_as(test::TestRequest::get().uri("/ui/login")).await;
    assert_eq!(page.status, 200);
    let login_cookie = set_cookies(&page).join("; ");
    let csrf = csrf_of(&String::from_utf8_lossy(&page.body));
    let res = app
        .send_as(
            test::TestRequest::post()
                .uri("/ui/login")
                .insert_header(("Cookie", login_cookie))
                .insert_header(("Content-Type", "application/x-www-form-urlencoded"))
                .set_payload(form(&[
                    ("user", user),
                    ("password", password),
                    ("csrf", &csrf),
                    ("next", "/ui/"),
                ])),
        )
        .await;
    if res.status != 303 {
        return Err(res);
    }
    let cookie = set_cookies(&res)
        .into_iter()
        .find(|c| c.starts_with("semdock_session="))
        .unwrap();
    let dash = app
        .send_as(
            test::TestRequest::get()
                .uri("/ui/")
                .insert_header(("Cookie", cookie.as_str())),
        )
        .await;
    assert_eq!(dash.status, 200, "{}", String::from_utf8_lossy(&dash.body));
    let csrf = csrf_of(&String::from_utf8_lossy(&dash.body));
    assert!(!csrf.is_empty());
    Ok((cookie, csrf))
}

/// Uploads a config and `layer` to `repo` of the registry at `base` (monolithic POSTs, or a
/// session where the registry has none) and
/// returns an image manifest over them (not pushed): its digest and bytes.
pub fn push_image_over_http(
    agent: &ureq::Agent,
    base: &str,
    repo: &str,
    layer: &[u8],
) -> (String, Vec<u8>) {
    let config = br#"{"architecture":"amd64","os":"linux"}"#;
    for blob in [&config[..], layer] {
        let res = agent
            .post(&format!(
                "{base}/v2/{repo}/blobs/uploads/?digest={}",
                Digest::of(blob)
            ))
            .header("Content-Type", "application/octet-stream")
            .send(blob)
            .unwrap();
        // A registry without monolithic POSTs (Distribution) opens a session instead.
        let status = if res.status() == 202 {
            let location = res.headers()["location"].to_str().unwrap();
            let url = if location.starts_with('/') {
                format!("{base}{location}")
            } else {
                location.to_owned()
            };
            let sep = if url.contains('?') { '&' } else { '?' };
            agent
                .put(&format!("{url}{sep}digest={}", Digest::of(blob)))
                .header("Content-Type", "application/octet-stream")
                .send(blob)
                .unwrap()
                .status()
        } else {
            res.status()
        };
        assert_eq!(status, 201, "blob upload to {base}");
    }
    let body = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": Digest::of(config).as_str(), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": Digest::of(layer).as_str(), "size": layer.len()}],
    }))
    .unwrap();
    (Digest::of(&body).to_string(), body)
}

/// Writes `ca.crt`, `cert.pem` and `key.pem` for 127.0.0.1 and `localhost` into `dir`.
pub fn make_certificates(dir: &std::path::Path) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, SanType};
    use std::net::{IpAddr, Ipv4Addr};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "semdock test CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::from_params(&ca, &ca_key);

    let key = KeyPair::generate().unwrap();
    let mut server = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    server
        .subject_alt_names
        .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    server
        .distinguished_name
        .push(DnType::CommonName, "semdock");
    let cert = server.signed_by(&key, &issuer).unwrap();

    std::fs::write(dir.join("ca.crt"), ca_cert.pem()).unwrap();
    std::fs::write(dir.join("cert.pem"), cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), key.serialize_pem()).unwrap();
}

/// A containerd of the test's own (socket, root and state in a temporary directory, the CRI
/// plugin off), for `ctr`; stopped by its PID when dropped.
pub struct Containerd {
    child: Child,
    dir: tempfile::TempDir,
}

impl Containerd {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("containerd.sock");
        let config = dir.path().join("config.toml");
        std::fs::write(
            &config,
            "version = 2\ndisabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n",
        )
        .unwrap();
        let child = Command::new("containerd")
            .arg("--config")
            .arg(&config)
            .arg("--address")
            .arg(&sock)
            .arg("--root")
            .arg(dir.path().join("root"))
            .arg("--state")
            .arg(dir.path().join("state"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("log")).unwrap())
            .spawn()
            .expect("containerd starts");
        let deadline = Instant::now() + Duration::from_secs(30);
        let this = Self { child, dir };
        while Instant::now() < deadline {
            if this
                .ctr()
                .arg("version")
                .output()
                .is_ok_and(|o| o.status.success())
            {
                return this;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "containerd did not answer: {}",
            std::fs::read_to_string(this.dir.path().join("log")).unwrap_or_default()
        );
    }

    /// `ctr` on this containerd.
    pub fn ctr(&self) -> Command {
        let mut cmd = Command::new("ctr");
        cmd.arg("--address")
            .arg(self.dir.path().join("containerd.sock"));
        cmd
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let _ = self.child.wait();
    }
}
