//! Load benchmark: semdock, Distribution 2.8.2 (Debian's `docker-registry`) and Angos 1.6
//! (`ANGOS`, else `../shared/instruments/angos`) on loopback, fresh data directories, the
//! same workloads against each, in rotating order, in one run.
//!
//! `cargo bench --bench load` (full: 3 rounds, 15 s read phases) or
//! `cargo bench --bench load -- --quick` (1 round, 5 s, smaller counts). Prints a table with
//! the ratios semdock/Distribution and semdock/Angos per row and writes
//! `target/load-bench.json`. semdock runs with authentication on (Bearer tokens, as docker
//! uses it); the peers without.
//! `-- --only 64,push` measures only the rows whose names contain one of those words.
//!
//! `-- --distributed` runs semdock on PostgreSQL and S3 (`TEST_POSTGRES_URL`, `TEST_S3_*`,
//! as `scripts/postgres` and `scripts/garage` print them) against Distribution with its S3
//! driver and Angos with its S3 store on the same bucket (no redirects for either);
//! `-- --distributed --nodes 3` puts three semdock nodes behind
//! HAProxy (`packaging/haproxy.cfg`), and their CPU and memory are summed.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;

mod support;
use sha2::{Digest as _, Sha256};

struct Target {
    name: &'static str,
    base: String,
    auth: Option<String>,
    /// The server's processes: whose CPU and memory are measured (summed), then any that
    /// only pass requests on (HAProxy), killed too.
    children: Vec<Child>,
    measured: usize,
    _dir: tempfile::TempDir,
}

impl Drop for Target {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Where the registries keep their data.
#[derive(Clone, Copy, PartialEq)]
enum Storage {
    /// semdock's embedded stores, Distribution's filesystem driver.
    Local,
    /// semdock on PostgreSQL and S3 with this many nodes (behind HAProxy when more than
    /// one), Distribution on the same S3 store.
    Distributed { nodes: usize },
}

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: --distributed needs scripts/postgres and scripts/garage running")
    })
}

/// The environment that puts a semdock node on the test PostgreSQL database `db` and the
/// test bucket under `prefix`.
fn distributed_env(db: &str, prefix: &str) -> Vec<(String, String)> {
    vec![
        ("SEMDOCK_STORAGE__METADATA".into(), "postgres".into()),
        ("SEMDOCK_STORAGE__POSTGRES__URL".into(), db.to_owned()),
        ("SEMDOCK_STORAGE__BLOBS".into(), "s3".into()),
        (
            "SEMDOCK_STORAGE__S3__ENDPOINT".into(),
            var("TEST_S3_ENDPOINT"),
        ),
        ("SEMDOCK_STORAGE__S3__BUCKET".into(), var("TEST_S3_BUCKET")),
        ("SEMDOCK_STORAGE__S3__REGION".into(), var("TEST_S3_REGION")),
        ("SEMDOCK_STORAGE__S3__PREFIX".into(), prefix.to_owned()),
        (
            "SEMDOCK_STORAGE__S3__ACCESS_KEY_ID".into(),
            var("TEST_S3_ACCESS_KEY_ID"),
        ),
        (
            "SEMDOCK_STORAGE__S3__SECRET_ACCESS_KEY".into(),
            var("TEST_S3_SECRET_ACCESS_KEY"),
        ),
    ]
}

/// A new database on the test PostgreSQL server, as a connection string.
fn new_database() -> String {
    let base = var("TEST_POSTGRES_URL");
    let name = format!("bench_{}", std::process::id() ^ rand_suffix());
    let out = Command::new("psql")
        .arg(&base)
        .args(["-q", "-c", &format!("CREATE DATABASE {name}")])
        .output()
        .expect("psql runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    format!("{base} dbname={name}")
}

fn rand_suffix() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos())
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_idle_connections_per_host(64)
        .build()
        .into()
}

/// A `semdock serve` on `data_dir` with `env`; returns it and its address.
fn spawn_semdock(data_dir: &std::path::Path, env: &[(String, String)]) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_semdock"))
        .arg("serve")
        .env("SEMDOCK_LISTEN", "127.0.0.1:0")
        .env("SEMDOCK_DATA_DIR", data_dir)
        .env("SEMDOCK_AUTH__TOKEN_TTL_SECONDS", "7200")
        .env("SEMDOCK_LOG__LEVEL", "warn,semdock::server=info")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("semdock starts");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(i) = line.find("addr=") {
                let addr = line[i + 5..]
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_owned();
                let _ = tx.send(addr);
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("semdock reports its address");
    (child, addr)
}

/// HAProxy with `packaging/haproxy.cfg` in front of `nodes`; returns it and its address.
fn spawn_haproxy(dir: &std::path::Path, nodes: &[String]) -> (Child, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = support::haproxy::spawn(dir, &format!("127.0.0.1:{port}"), nodes, "1s");
    let addr = format!("127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while agent()
        .get(format!("http://{addr}/readyz"))
        .call()
        .map_or(true, |r| r.status() != 200)
    {
        assert!(Instant::now() < deadline, "HAProxy did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    (child, addr)
}

fn start_semdock(storage: Storage) -> Target {
    let dir = tempfile::tempdir().unwrap();
    let (children, addr) = match storage {
        Storage::Local => {
            let (child, addr) = spawn_semdock(dir.path(), &[]);
            (vec![child], addr)
        }
        Storage::Distributed { nodes } => {
            let prefix = format!("bench-semdock-{}", rand_suffix());
            let env = distributed_env(&new_database(), &prefix);
            let mut children = Vec::new();
            let mut addrs = Vec::new();
            for i in 0..nodes {
                // The first node creates the administrator (its password in its directory).
                let data = if i == 0 {
                    dir.path().to_owned()
                } else {
                    dir.path().join(format!("node{i}"))
                };
                let (child, addr) = spawn_semdock(&data, &env);
                children.push(child);
                addrs.push(addr);
            }
            if nodes == 1 {
                (children, addrs.remove(0))
            } else {
                let (proxy, addr) = spawn_haproxy(dir.path(), &addrs);
                children.push(proxy);
                (children, addr)
            }
        }
    };
    let measured = match storage {
        Storage::Distributed { nodes } => nodes,
        Storage::Local => 1,
    };
    let base = format!("http://{addr}");
    let password = std::fs::read_to_string(dir.path().join("initial-admin-password")).unwrap();
    let basic =
        base64::engine::general_purpose::STANDARD.encode(format!("admin:{}", password.trim()));
    let mut res = agent()
        .get(format!(
            "{base}/v2/_auth?service=semdock&scope=repository:library/bench:pull,push"
        ))
        .header("Authorization", format!("Basic {basic}"))
        .call()
        .unwrap();
    let token: serde_json::Value =
        serde_json::from_str(&res.body_mut().read_to_string().unwrap()).unwrap();
    // Anonymous pull on, for the "authentication off" row of the read path.
    let res = agent()
        .patch(format!("{base}/api/v1/feeds/library"))
        .header("Authorization", format!("Basic {basic}"))
        .header("Content-Type", "application/json")
        .send(r#"{"anonymous_pull":true}"#)
        .unwrap();
    assert_eq!(res.status(), 200, "anonymous pull switched on");
    Target {
        name: "semdock",
        base,
        auth: Some(format!("Bearer {}", token["token"].as_str().unwrap())),
        children,
        measured,
        _dir: dir,
    }
}

/// A new place in the test bucket for a peer, named after it.
fn peer_bucket(peer: &str) -> support::S3 {
    support::S3 {
        endpoint: var("TEST_S3_ENDPOINT"),
        bucket: var("TEST_S3_BUCKET"),
        region: var("TEST_S3_REGION"),
        access_key_id: var("TEST_S3_ACCESS_KEY_ID"),
        secret_access_key: var("TEST_S3_SECRET_ACCESS_KEY"),
        root: format!("/bench-{peer}-{}", rand_suffix()),
    }
}

/// A peer registry (no authentication), on files or on the test bucket.
fn start_peer(name: &'static str, storage: Storage) -> Target {
    let dir = tempfile::tempdir().unwrap();
    let s3 = match storage {
        Storage::Local => None,
        Storage::Distributed { .. } => Some(peer_bucket(name)),
    };
    let (child, port) = match name {
        "distribution" => support::distribution(dir.path(), s3.as_ref()),
        _ => support::angos(dir.path(), s3.as_ref()),
    };
    Target {
        name,
        base: format!("http://127.0.0.1:{port}"),
        auth: None,
        children: vec![child],
        measured: 1,
        _dir: dir,
    }
}

struct RawRequest {
    host: String,
    head: Vec<u8>,
    expects_body: bool,
}

struct RawResponse {
    status: u16,
    location: Option<String>,
    length: u64,
}

thread_local! {
    /// Each load thread's keep-alive connection for raw requests (threads live for one
    /// workload, so a connection never outlives its server).
    static CONN: std::cell::RefCell<Option<BufReader<std::net::TcpStream>>> =
        const { std::cell::RefCell::new(None) };
}

impl Target {
    fn req(
        &self,
        a: &ureq::Agent,
        method: &str,
        path: &str,
    ) -> ureq::RequestBuilder<ureq::typestate::WithoutBody> {
        let url = format!("{}{path}", self.base);
        let r = match method {
            "HEAD" => a.head(&url),
            "DELETE" => a.delete(&url),
            _ => a.get(&url),
        };
        match &self.auth {
            Some(v) => r.header("Authorization", v),
            None => r,
        }
    }

    fn req_body(
        &self,
        a: &ureq::Agent,
        method: &str,
        url_or_path: &str,
    ) -> ureq::RequestBuilder<ureq::typestate::WithBody> {
        let url = if url_or_path.starts_with("http") {
            url_or_path.to_owned()
        } else {
            format!("{}{url_or_path}", self.base)
        };
        let r = match method {
            "POST" => a.post(&url),
            "PATCH" => a.patch(&url),
            _ => a.put(&url),
        };
        match &self.auth {
            Some(v) => r.header("Authorization", v),
            None => r,
        }
    }

    fn location(&self, res: &ureq::http::Response<ureq::Body>) -> String {
        let loc = res
            .headers()
            .get("location")
            .expect("Location")
            .to_str()
            .unwrap();
        if loc.starts_with("http") {
            loc.to_owned()
        } else {
            format!("{}{loc}", self.base)
        }
    }

    /// One request on `conn` (kept alive between the requests of one upload or one load
    /// thread, as docker and wrk do), the head and then the body each in a single
    /// `write_all`: the cheapest client there is, so that the workloads measure the servers
    /// rather than the client sharing their two cores. The response body is read and dropped.
    fn raw(
        &self,
        conn: &mut Option<BufReader<std::net::TcpStream>>,
        method: &str,
        url_or_path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        authenticate: bool,
    ) -> RawResponse {
        let request = self.request(method, url_or_path, headers, body.len(), authenticate);
        self.exchange(conn, &request, body)
    }

    /// A request's head, built once so that a read workload can send it again and again.
    fn request(
        &self,
        method: &str,
        url_or_path: &str,
        headers: &[(&str, &str)],
        body_len: usize,
        authenticate: bool,
    ) -> RawRequest {
        let url = if url_or_path.starts_with("http") {
            url_or_path.to_owned()
        } else {
            format!("{}{url_or_path}", self.base)
        };
        let rest = url.strip_prefix("http://").expect("plain HTTP on loopback");
        let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let mut head =
            format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {body_len}\r\n");
        if let Some(auth) = self.auth.as_ref().filter(|_| authenticate) {
            let _ = write!(head, "Authorization: {auth}\r\n");
        }
        for (k, v) in headers {
            let _ = write!(head, "{k}: {v}\r\n");
        }
        head.push_str("\r\n");
        RawRequest {
            host: host.to_owned(),
            head: head.into_bytes(),
            expects_body: method != "HEAD",
        }
    }

    /// Sends `request` and `body` on `conn` (connecting first if need be), reads the response.
    fn exchange(
        &self,
        conn: &mut Option<BufReader<std::net::TcpStream>>,
        request: &RawRequest,
        body: &[u8],
    ) -> RawResponse {
        let reader = conn.get_or_insert_with(|| {
            let stream = std::net::TcpStream::connect(&request.host).expect("connects");
            stream.set_nodelay(true).unwrap();
            BufReader::with_capacity(1 << 20, stream)
        });
        reader.get_mut().write_all(&request.head).unwrap();
        reader.get_mut().write_all(body).unwrap();
        let (mut status, mut location, mut length, mut chunked) = (0, None, 0u64, false);
        let mut line = String::new();
        loop {
            line.clear();
            reader.read_line(&mut line).unwrap();
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if status == 0 {
                status = l
                    .split_whitespace()
                    .nth(1)
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0);
            } else if let Some((k, v)) = l.split_once(':') {
                if k.eq_ignore_ascii_case("location") {
                    let v = v.trim();
                    location = Some(if v.starts_with("http") {
                        v.to_owned()
                    } else {
                        format!("{}{v}", self.base)
                    });
                } else if k.eq_ignore_ascii_case("content-length") {
                    length = v.trim().parse().unwrap_or(0);
                } else if k.eq_ignore_ascii_case("transfer-encoding") {
                    chunked = v.trim().eq_ignore_ascii_case("chunked");
                }
            }
        }
        if request.expects_body && chunked {
            // A chunked body (Angos answers some requests so): sizes in hex, then the data.
            loop {
                line.clear();
                reader.read_line(&mut line).unwrap();
                let size = u64::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)
                    .expect("a chunk size");
                skip(reader, size);
                line.clear();
                reader.read_line(&mut line).unwrap();
                length += size;
                if size == 0 {
                    break;
                }
            }
        } else if request.expects_body {
            // Read into the connection's 1 MiB buffer and drop it: no copy beyond the socket's.
            skip(reader, length);
        }
        RawResponse {
            status,
            location,
            length,
        }
    }

    /// Opens an upload on `conn`; returns its location.
    fn start_upload(&self, conn: &mut Option<BufReader<std::net::TcpStream>>) -> String {
        let r = self.raw(
            conn,
            "POST",
            "/v2/library/bench/blobs/uploads/",
            &[],
            &[],
            true,
        );
        assert_eq!(r.status, 202, "{}", self.name);
        r.location.expect("Location")
    }

    /// Ends an upload at `loc` with a PUT of `body` (empty after the chunks) as `digest`.
    fn finish_upload(
        &self,
        conn: &mut Option<BufReader<std::net::TcpStream>>,
        loc: &str,
        digest: &str,
        body: &[u8],
    ) {
        let sep = if loc.contains('?') { '&' } else { '?' };
        let url = format!("{loc}{sep}digest={digest}");
        let headers = [("Content-Type", "application/octet-stream")];
        let r = self.raw(conn, "PUT", &url, &headers, body, true);
        assert_eq!(r.status, 201, "{}", self.name);
    }

    /// Monolithic upload of a blob whose digest the caller computed: POST, then PUT with the
    /// whole body.
    fn upload_big(&self, bytes: &[u8], digest: &str) {
        let conn = &mut None;
        let loc = self.start_upload(conn);
        self.finish_upload(conn, &loc, digest, bytes);
    }

    /// Chunked upload: a PATCH per `chunk` bytes, then an empty PUT.
    fn upload_chunked(&self, bytes: &[u8], digest: &str, chunk: usize) {
        let conn = &mut None;
        let mut loc = self.start_upload(conn);
        for (i, part) in bytes.chunks(chunk).enumerate() {
            let start = i * chunk;
            let range = format!("{start}-{}", start + part.len() - 1);
            let headers = [
                ("Content-Range", range.as_str()),
                ("Content-Type", "application/octet-stream"),
            ];
            let r = self.raw(conn, "PATCH", &loc, &headers, part, true);
            assert_eq!(r.status, 202, "{}", self.name);
            loc = r.location.expect("Location");
        }
        self.finish_upload(conn, &loc, digest, &[]);
    }

    /// Monolithic upload of a small blob: POST, then PUT with the whole body.
    fn upload(&self, a: &ureq::Agent, bytes: &[u8]) -> String {
        let digest = digest_of(bytes);
        let res = self
            .req_body(a, "POST", "/v2/library/bench/blobs/uploads/")
            .send_empty()
            .unwrap();
        assert_eq!(res.status(), 202, "{}", self.name);
        let loc = self.location(&res);
        let sep = if loc.contains('?') { '&' } else { '?' };
        let res = self
            .req_body(a, "PUT", &format!("{loc}{sep}digest={digest}"))
            .content_type("application/octet-stream")
            .send(bytes)
            .unwrap();
        assert_eq!(res.status(), 201, "{}", self.name);
        digest
    }

    fn pids(&self) -> impl Iterator<Item = u32> + '_ {
        self.children[..self.measured].iter().map(Child::id)
    }

    /// (CPU seconds, peak RSS in KiB) of the server since the last reset, summed over its
    /// processes.
    fn usage(&self) -> (f64, u64) {
        let (mut ticks, mut hwm) = (0u64, 0u64);
        for pid in self.pids() {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let fields: Vec<&str> = stat
                .rsplit(") ")
                .next()
                .unwrap_or_default()
                .split_whitespace()
                .collect();
            ticks += fields
                .get(11)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
                + fields
                    .get(12)
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0);
            hwm += status_kib(pid, "VmHWM:");
        }
        #[allow(clippy::cast_precision_loss)]
        (ticks as f64 / 100.0, hwm)
    }

    /// Resident memory now, in KiB, summed over the server's processes.
    fn rss_now(&self) -> u64 {
        self.pids().map(|pid| status_kib(pid, "VmRSS:")).sum()
    }

    /// Resets the peak RSS counters (Linux: `clear_refs` 5).
    fn reset_peak(&self) {
        for pid in self.pids() {
            let _ = std::fs::write(format!("/proc/{pid}/clear_refs"), "5");
        }
    }
}

/// Reads `len` bytes of a response body into the connection's buffer and drops them.
fn skip(reader: &mut BufReader<std::net::TcpStream>, len: u64) {
    let mut left = len;
    while left > 0 {
        let got = reader.fill_buf().unwrap().len() as u64;
        assert!(got > 0, "the body ended {left} bytes early");
        let n = got.min(left);
        reader.consume(usize::try_from(n).unwrap());
        left -= n;
    }
}

/// A `/proc/PID/status` field in KiB.
fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// The OCI digest of `bytes`, as the client computes it.
fn digest_of(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

fn random(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[0]
        })
        .collect()
}

#[derive(Default, Clone, serde::Serialize)]
struct Row {
    value: f64,
    unit: &'static str,
    p50_ms: Option<f64>,
    p99_ms: Option<f64>,
    p999_ms: Option<f64>,
    cpu_s: f64,
    peak_rss_mib: f64,
    requests: u64,
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

/// Runs `op` on `threads` threads, `total` times in all or until `for_time` passes.
fn load(
    threads: usize,
    total: Option<u64>,
    for_time: Option<Duration>,
    op: &(dyn Fn(&ureq::Agent, u64) + Sync),
) -> (Duration, Vec<Duration>) {
    let next = std::sync::atomic::AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let start = Instant::now();
    let mut latencies: Vec<Duration> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let a = agent();
                    let mut lat = Vec::new();
                    loop {
                        if stop.load(Ordering::Relaxed)
                            || for_time.is_some_and(|t| start.elapsed() >= t)
                        {
                            break;
                        }
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if total.is_some_and(|t| i >= t) {
                            break;
                        }
                        let t0 = Instant::now();
                        op(&a, i);
                        lat.push(t0.elapsed());
                    }
                    lat
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    stop.store(true, Ordering::Relaxed);
    let elapsed = start.elapsed();
    latencies.sort();
    (elapsed, latencies)
}

#[allow(clippy::cast_precision_loss)]
fn measure(
    t: &Target,
    threads: usize,
    total: Option<u64>,
    for_time: Option<Duration>,
    per_request_bytes: Option<u64>,
    op: &(dyn Fn(&ureq::Agent, u64) + Sync),
) -> Row {
    t.reset_peak();
    let (cpu0, _) = t.usage();
    let (elapsed, lat) = load(threads, total, for_time, op);
    let (cpu1, peak) = t.usage();
    let n = lat.len() as u64;
    let secs = elapsed.as_secs_f64();
    let (value, unit) = match per_request_bytes {
        Some(b) => ((b * n) as f64 / secs / 1e6, "MB/s"),
        None => (n as f64 / secs, "req/s"),
    };
    Row {
        value,
        unit,
        p50_ms: Some(percentile(&lat, 0.50)),
        p99_ms: Some(percentile(&lat, 0.99)),
        p999_ms: Some(percentile(&lat, 0.999)),
        cpu_s: cpu1 - cpu0,
        peak_rss_mib: peak as f64 / 1024.0,
        requests: n,
    }
}

struct Sizes {
    big: usize,
    small_count: u64,
    manifest_count: u64,
    read_time: Duration,
    rounds: usize,
    /// `--only WORDS`: measure only the rows whose name contains one of these
    /// comma-separated words (what the others need is still set up, untimed).
    only: Vec<String>,
}

impl Sizes {
    fn wants(&self, row: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|w| row.contains(w.as_str()))
    }
}

/// Manifest HEAD and GET by tag, and GET without credentials (semdock's anonymous pull,
/// Distribution as always): the path of every `docker pull` and Kubernetes node.
fn manifest_reads(t: &Target, s: &Sizes, tag: &str, rows: &mut BTreeMap<&'static str, Row>) {
    let path = format!("/v2/library/bench/manifests/{tag}");
    let accept = [("Accept", "application/vnd.oci.image.manifest.v1+json")];
    let read = |request: &RawRequest| {
        CONN.with_borrow_mut(|conn| {
            assert_eq!(t.exchange(conn, request, &[]).status, 200);
        });
    };
    // The last row sends no credentials but a header as long as semdock's Authorization
    // header: it separates what checking a token costs from what carrying its bytes costs.
    let padding = "x".repeat(t.auth.as_ref().map_or(0, |a| a.len() - "Bearer ".len()));
    let padded = [accept[0], ("X-Padding", padding.as_str())];
    for (row, method, with_auth, headers) in [
        ("manifest HEAD by tag, c=32", "HEAD", true, &accept[..]),
        ("manifest GET by tag, c=32", "GET", true, &accept[..]),
        (
            "manifest GET by tag, no auth, c=32",
            "GET",
            false,
            &accept[..],
        ),
        (
            "manifest GET, no auth, token-sized header, c=32",
            "GET",
            false,
            &padded[..],
        ),
    ] {
        if !s.wants(row) {
            continue;
        }
        // Built once, as wrk does: the client's work is the same for every request.
        let request = t.request(method, &path, headers, 0, with_auth);
        rows.insert(
            row,
            measure(t, 32, None, Some(s.read_time), None, &|_, _| {
                read(&request);
            }),
        );
    }
}

/// Big uploads of each kind per round and registry.
const UPLOADS_PER_ROUND: u64 = 3;

type Rows = BTreeMap<&'static str, Row>;

/// Measures `row` unless `--only` leaves it out.
fn run(rows: &mut Rows, s: &Sizes, row: &'static str, measured: &dyn Fn() -> Row) {
    if s.wants(row) {
        rows.insert(row, measured());
    }
}

fn workloads(t: &Target, s: &Sizes, round: usize) -> Rows {
    let mut rows = BTreeMap::new();
    let big_digests = big_uploads(t, s, round, &mut rows);
    small_writes(t, s, round, &mut rows);
    manifest_reads(t, s, &format!("r{round}-0"), &mut rows);
    let big_bytes = s.big as u64;
    let get_big = |digest: &str| {
        CONN.with_borrow_mut(|conn| {
            let path = format!("/v2/library/bench/blobs/{digest}");
            let r = t.raw(conn, "GET", &path, &[], &[], true);
            assert_eq!((r.status, r.length), (200, big_bytes));
        });
    };
    // Each monolithic upload's blob read once, all at once: a layer's first pull, which
    // semdock hashes as it sends (decision 0043).
    let first = "blob GET 256 MiB, first read of each, c=3";
    run(&mut rows, s, first, &|| {
        let n = big_digests.len();
        measure(t, n, Some(n as u64), None, Some(big_bytes), &|_, i| {
            get_big(&big_digests[usize::try_from(i).unwrap()]);
        })
    });
    if !s.wants(first) {
        get_big(&big_digests[0]);
    }
    let big_digest = &big_digests[0];
    // A blob read before: every later pull of a layer (more nodes, more pods).
    run(&mut rows, s, "blob GET 256 MiB, c=4", &|| {
        measure(t, 4, Some(8), None, Some(big_bytes), &|_, _| {
            get_big(big_digest);
        })
    });
    run(&mut rows, s, "tag list (manifest-push tags), c=8", &|| {
        measure(t, 8, None, Some(s.read_time / 3), None, &|a, _| {
            let mut res = t
                .req(a, "GET", "/v2/library/bench/tags/list")
                .call()
                .unwrap();
            assert_eq!(res.status(), 200);
            let _ = res.body_mut().read_to_vec();
        })
    });
    rows
}

/// The 256 MiB uploads, monolithic and chunked; returns the digests of the monolithic ones.
fn big_uploads(t: &Target, s: &Sizes, round: usize, rows: &mut Rows) -> Vec<String> {
    // Distinct random blobs, digests computed before the clock starts (the client's
    // business). Several uploads of each kind per round: one upload is too noisy a sample.
    let blobs = |salt: u64| -> Vec<(Vec<u8>, String)> {
        (0..UPLOADS_PER_ROUND)
            .map(|k| {
                let bytes = random(
                    s.big,
                    salt + round as u64 * 7 + k * 131 + t.name.len() as u64,
                );
                let digest = digest_of(&bytes);
                (bytes, digest)
            })
            .collect()
    };
    let big_bytes = s.big as u64;
    let big_digests = {
        let monolithic = blobs(0xB16);
        let row = "upload monolithic 256 MiB";
        run(rows, s, row, &|| {
            measure(
                t,
                1,
                Some(UPLOADS_PER_ROUND),
                None,
                Some(big_bytes),
                &|_, i| {
                    let (bytes, digest) = &monolithic[usize::try_from(i).unwrap()];
                    t.upload_big(bytes, digest);
                },
            )
        });
        if !s.wants(row) && s.wants("blob GET") {
            for (bytes, digest) in &monolithic {
                t.upload_big(bytes, digest);
            }
        }
        monolithic.into_iter().map(|(_, d)| d).collect::<Vec<_>>()
    };
    if s.wants("upload chunked") {
        let chunked = blobs(0xC4);
        run(rows, s, "upload chunked 16 MiB PATCHes", &|| {
            measure(
                t,
                1,
                Some(UPLOADS_PER_ROUND),
                None,
                Some(big_bytes),
                &|_, i| {
                    let (bytes, digest) = &chunked[usize::try_from(i).unwrap()];
                    t.upload_chunked(bytes, digest, 16 << 20);
                },
            )
        });
    }
    big_digests
}

/// 64 KiB blob uploads (POST, then PUT with the body) and manifest pushes, each at
/// concurrency 16 on keep-alive connections, bodies and digests prepared before the clock.
fn small_writes(t: &Target, s: &Sizes, round: usize, rows: &mut Rows) {
    let small = "upload 64 KiB blobs, c=16";
    if s.wants(small) {
        let seed = (round as u64 + 1) << 40 | (t.name.len() as u64) << 32;
        let blobs: Vec<(Vec<u8>, String)> = (0..s.small_count)
            .map(|i| {
                let bytes = random(64 << 10, seed + i);
                let digest = digest_of(&bytes);
                (bytes, digest)
            })
            .collect();
        run(rows, s, small, &|| {
            measure(t, 16, Some(s.small_count), None, None, &|_, i| {
                let (bytes, digest) = &blobs[usize::try_from(i).unwrap()];
                CONN.with_borrow_mut(|conn| {
                    let loc = t.start_upload(conn);
                    t.finish_upload(conn, &loc, digest, bytes);
                });
            })
        });
    }
    // Manifests over one config blob.
    let config = t.upload(
        &agent(),
        format!("{{\"round\":{round},\"target\":\"{}\"}}", t.name).as_bytes(),
    );
    let pushes = "manifest push, c=16";
    let count = if s.wants(pushes) { s.manifest_count } else { 1 };
    let manifests: Vec<(String, String)> = (0..count)
        .map(|i| {
            let body = format!(
                r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config}","size":30}},"layers":[],"annotations":{{"n":"{i}"}}}}"#
            );
            (format!("/v2/library/bench/manifests/r{round}-{i}"), body)
        })
        .collect();
    let push = |conn: &mut Option<_>, i: u64| {
        let (path, body) = &manifests[usize::try_from(i).unwrap()];
        let headers = [("Content-Type", "application/vnd.oci.image.manifest.v1+json")];
        let r = t.raw(conn, "PUT", path, &headers, body.as_bytes(), true);
        assert_eq!(r.status, 201, "{}: {path}", t.name);
    };
    run(rows, s, pushes, &|| {
        measure(t, 16, Some(count), None, None, &|_, i| {
            CONN.with_borrow_mut(|conn| push(conn, i));
        })
    });
    if !s.wants(pushes) {
        // The manifest reads need one tag (on a connection of its own: this thread's
        // `CONN` would outlive the server).
        push(&mut None, 0);
    }
}

type Results = BTreeMap<&'static str, BTreeMap<&'static str, Vec<Row>>>;

/// Prints the table (medians over rounds) and returns it as JSON.
fn report(results: &Results, sha: f64) -> serde_json::Map<String, serde_json::Value> {
    let median = |rows: &Vec<Row>| {
        let mut r = rows.clone();
        r.sort_by(|a, b| a.value.total_cmp(&b.value));
        r[r.len() / 2].clone()
    };
    println!(
        "\n{:<48} {:>14} {:>14} {:>14} {:>8} {:>8}  {:>15} {:>15} {:>15}",
        "workload",
        "semdock",
        "distribution",
        "angos",
        "vs D",
        "vs A",
        "semdock p50/p99",
        "D p50/p99 ms",
        "A p50/p99 ms"
    );
    let mut json = serde_json::Map::new();
    for (k, rows) in &results["semdock"] {
        let a = median(rows);
        let peer = |name: &str| results.get(name).and_then(|r| r.get(k)).map(median);
        let (d, g) = (peer("distribution"), peer("angos"));
        let value = |r: &Option<Row>| r.as_ref().map_or(f64::NAN, |r| r.value);
        let lat = |r: &Option<Row>| {
            r.as_ref().map_or_else(String::new, |r| {
                format!(
                    "{:.2}/{:.2}",
                    r.p50_ms.unwrap_or(0.0),
                    r.p99_ms.unwrap_or(0.0)
                )
            })
        };
        println!(
            "{k:<48} {:>9.1} {:<4} {:>9.1} {:<4} {:>9.1} {:<4} {:>7.2}x {:>7.2}x  {:>15} {:>15} {:>15}",
            a.value,
            a.unit,
            value(&d),
            a.unit,
            value(&g),
            a.unit,
            a.value / value(&d),
            a.value / value(&g),
            lat(&Some(a.clone())),
            lat(&d),
            lat(&g),
        );
        #[allow(clippy::cast_precision_loss)]
        let usage = |r: &Option<Row>| {
            r.as_ref().map_or_else(String::new, |r| {
                format!(
                    "cpu {:>6.2}s ({:.3} ms/req) rss {:>6.1} MiB",
                    r.cpu_s,
                    r.cpu_s * 1e3 / r.requests.max(1) as f64,
                    r.peak_rss_mib
                )
            })
        };
        println!(
            "{:<48} {}   D {}   A {}",
            "",
            usage(&Some(a.clone())),
            usage(&d),
            usage(&g)
        );
        json.insert(
            (*k).to_owned(),
            serde_json::json!({
                "semdock": a,
                "distribution": d,
                "angos": g,
                "ratio": a.value / value(&d),
                "ratio_angos": a.value / value(&g),
            }),
        );
    }
    json.insert("sha256_single_core_mb_s".into(), serde_json::json!(sha));
    // What authentication costs semdock on the hot read path, in the same run.
    let rate = |row: &str| results["semdock"].get(row).map(|rows| median(rows).value);
    let (Some(with_token), Some(without), Some(padded)) = (
        rate("manifest GET by tag, c=32"),
        rate("manifest GET by tag, no auth, c=32"),
        rate("manifest GET, no auth, token-sized header, c=32"),
    ) else {
        return json;
    };
    println!(
        "\nsemdock manifest GET with a Bearer token: {:.1}% of the rate without authentication, \
         {:.1}% of the rate without authentication but with a header of the same size",
        with_token / without * 100.0,
        with_token / padded * 100.0
    );
    json.insert(
        "semdock_bearer_vs_no_auth_same_size".into(),
        serde_json::json!(with_token / padded),
    );
    json.insert(
        "semdock_bearer_vs_no_auth".into(),
        serde_json::json!(with_token / without),
    );
    json
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let only: Vec<String> = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1))
        .map(|words| words.split(',').map(str::to_owned).collect())
        .unwrap_or_default();
    let storage = if args.iter().any(|a| a == "--distributed") {
        let nodes = args
            .iter()
            .position(|a| a == "--nodes")
            .and_then(|i| args.get(i + 1))
            .map_or(1, |n| n.parse().expect("--nodes N"));
        Storage::Distributed { nodes }
    } else {
        Storage::Local
    };
    let s = if quick {
        Sizes {
            big: 64 << 20,
            small_count: 500,
            manifest_count: 2000,
            read_time: Duration::from_secs(5),
            rounds: 1,
            only,
        }
    } else {
        Sizes {
            big: 256 << 20,
            small_count: 2000,
            manifest_count: 2000,
            read_time: Duration::from_secs(15),
            rounds: 3,
            only,
        }
    };
    // The ceiling for uploads: SHA-256 on one core, measured now.
    let data = random(256 << 20, 42);
    let t0 = Instant::now();
    let _ = Sha256::digest(&data);
    #[allow(clippy::cast_precision_loss)]
    let sha = data.len() as f64 / t0.elapsed().as_secs_f64() / 1e6;
    drop(data);
    println!("SHA-256 single core: {sha:.0} MB/s (upload ceiling)");

    let mut results: Results = BTreeMap::new();
    let mut idle_rss: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    for round in 0..s.rounds {
        for which in 0..3 {
            // Rotate who goes first, so none always gets the cooler machine.
            let target = match (round + which) % 3 {
                0 => start_semdock(storage),
                1 => start_peer("distribution", storage),
                _ => start_peer("angos", storage),
            };
            // Idle: resident now, a second after start (the start's own peak, e.g. the
            // login's Argon2 hash, is not idle memory).
            std::thread::sleep(Duration::from_secs(1));
            let idle = target.rss_now();
            eprintln!("round {round}: {} (idle RSS {idle} KiB)", target.name);
            idle_rss.entry(target.name).or_default().push(idle);
            for (k, row) in workloads(&target, &s, round) {
                results
                    .entry(target.name)
                    .or_default()
                    .entry(k)
                    .or_default()
                    .push(row);
            }
            // Removing the data directory frees thousands of inodes, and ext4 then steps over
            // recently freed inodes one by one whenever it allocates one, for 35 s while
            // their inode table blocks are dirty and 5 s once they are written:
            // `recently_deleted` was 40% of semdock's CPU in the small-upload row when it
            // started right after the other server's directory went. So the next server
            // starts on a synced disk, past that window.
            drop(target);
            let synced = Command::new("sync").status();
            assert!(synced.is_ok_and(|s| s.success()), "sync failed");
            std::thread::sleep(Duration::from_secs(6));
        }
    }
    let mut json = report(&results, sha);
    for (name, mut kib) in idle_rss {
        kib.sort_unstable();
        let median = kib[kib.len() / 2];
        println!("idle RSS {name}: {median} KiB");
        json.insert(format!("idle_rss_kib_{name}"), serde_json::json!(median));
    }
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/load-bench.json");
    std::fs::write(&out, serde_json::to_string_pretty(&json).unwrap()).unwrap();
    println!("\nwritten {}", out.display());
}
