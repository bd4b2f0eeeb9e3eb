//! The real binary over real sockets: headers only the wire shows, restarts, crashes, the CLI.

use crate::common;

use std::process::Command;

use common::{Server, assert_no_torn_blobs, http, run, run_fail};
use semdock::model::Digest;

fn start_upload(server: &Server, repo: &str) -> String {
    let res = server
        .http()
        .post(server.url(&format!("/v2/{repo}/blobs/uploads/")))
        .send_empty()
        .unwrap();
    assert_eq!(res.status(), 202);
    let location = res
        .headers()
        .get("location")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    server.url(&location)
}

fn header(res: &ureq::http::Response<ureq::Body>, name: &str) -> String {
    res.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

#[test]
fn head_requests_carry_content_length_and_digest() {
    let server = Server::start();
    let blob = b"0123456789".repeat(100);
    let digest = Digest::of(&blob);
    let res = server
        .http()
        .post(server.url(&format!("/v2/library/app/blobs/uploads/?digest={digest}")))
        .send(&blob[..])
        .unwrap();
    assert_eq!(res.status(), 201);
    let res = server
        .http()
        .head(server.url(&format!("/v2/library/app/blobs/{digest}")))
        .call()
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(header(&res, "content-length"), "1000");
    assert_eq!(header(&res, "docker-content-digest"), digest.as_str());
}

#[test]
fn chunked_upload_resumes_after_a_graceful_restart_and_after_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = Server::start_in(&data, &[]);
    let mut body = vec![0u8; 3 << 20];
    rand::fill(&mut body[..]);
    let third = body.len() / 3;
    let location = start_upload(&server, "library/big");
    let path = location.trim_start_matches(&server.url(""));
    let res = server
        .http()
        .patch(&location)
        .header("Content-Range", format!("0-{}", third - 1))
        .send(&body[..third])
        .unwrap();
    assert_eq!(res.status(), 202);
    assert!(
        server.terminate(),
        "graceful shutdown failed:\n{}",
        server.log()
    );
    assert!(
        server.log().contains("database closed cleanly"),
        "{}",
        server.log()
    );

    let mut server = Server::start_in(&data, &[]);
    let location = server.url(path);
    let res = server.http().get(&location).call().unwrap();
    assert_eq!(header(&res, "range"), format!("0-{}", third - 1));
    let res = server
        .http()
        .patch(&location)
        .header("Content-Range", format!("{third}-{}", 2 * third - 1))
        .send(&body[third..2 * third])
        .unwrap();
    assert_eq!(res.status(), 202);
    server.kill9();

    let server = Server::start_in(&data, &[]);
    let location = server.url(path);
    let res = server.http().get(&location).call().unwrap();
    assert_eq!(header(&res, "range"), format!("0-{}", 2 * third - 1));
    let digest = Digest::of(&body);
    let res = server
        .http()
        .put(format!("{location}?digest={digest}"))
        .header("Content-Range", format!("{}-{}", 2 * third, body.len() - 1))
        .send(&body[2 * third..])
        .unwrap();
    assert_eq!(res.status(), 201);
    let mut res = server
        .http()
        .get(server.url(&format!("/v2/library/big/blobs/{digest}")))
        .call()
        .unwrap();
    assert_eq!(
        res.body_mut()
            .with_config()
            .limit(u64::MAX)
            .read_to_vec()
            .unwrap(),
        body
    );
}

#[test]
fn kill_9_during_uploads_leaves_no_torn_blob_and_uploads_can_be_repeated() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut blobs = Vec::new();
    for round in 0..3u64 {
        let mut server = Server::start_in(&data, &[]);
        let url = server.url("");
        let handles: Vec<_> = (0..4)
            .map(|i| {
                let url = url.clone();
                let agent = server.http();
                std::thread::spawn(move || {
                    let mut blob = vec![0u8; 4 << 20];
                    rand::fill(&mut blob[..]);
                    let digest = Digest::of(&blob);
                    let res = agent
                        .post(format!(
                            "{url}/v2/library/crash{i}/blobs/uploads/?digest={digest}"
                        ))
                        .send(&blob[..]);
                    (digest, blob, res.map(|r| r.status().as_u16()).ok())
                })
            })
            .collect();
        std::thread::sleep(std::time::Duration::from_millis(20 + round * 40));
        server.kill9();
        for h in handles {
            blobs.push(h.join().unwrap());
        }
        assert_no_torn_blobs(&data);
    }
    assert!(
        blobs.iter().any(|(_, _, status)| *status != Some(201)),
        "no upload was interrupted: the test did not crash the server mid-upload"
    );
    // After the crashes, the registry starts, and every upload can be repeated and read back.
    let server = Server::start_in(&data, &[]);
    for (i, (digest, blob, _)) in blobs.iter().enumerate() {
        let repo = format!("library/crash{}", i % 4);
        let res = server
            .http()
            .post(server.url(&format!("/v2/{repo}/blobs/uploads/?digest={digest}")))
            .send(&blob[..])
            .unwrap();
        assert_eq!(res.status(), 201);
        let mut res = server
            .http()
            .get(server.url(&format!("/v2/{repo}/blobs/{digest}")))
            .call()
            .unwrap();
        let back = res
            .body_mut()
            .with_config()
            .limit(u64::MAX)
            .read_to_vec()
            .unwrap();
        assert!(back == *blob, "blob {digest} differs after crash and retry");
    }
    assert_no_torn_blobs(&data);
}

fn semdock(data: &std::path::Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_semdock"));
    cmd.env("SEMDOCK_DATA_DIR", data);
    cmd
}

#[test]
fn feed_commands_work_offline_and_refuse_while_a_server_holds_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // Only `serve` and `restore` create a registry: an offline command where there is none
    // refuses, naming the directory it looked at, and creates nothing.
    let out = run_fail(semdock(&data).args(["feed", "create", "ci"]));
    assert!(
        out.contains("there is no registry in") && out.contains(&data.display().to_string()),
        "{out}"
    );
    assert!(
        !data.exists(),
        "an offline command created {}",
        data.display()
    );
    drop(Server::start_in(&data, &[]));
    run(semdock(&data).args(["feed", "create", "ci"]));
    let out = run_fail(semdock(&data).args(["feed", "create", "ci"]));
    assert!(out.contains("already exists"), "{out}");
    let out = run_fail(semdock(&data).args(["feed", "create", "Bad Name"]));
    assert!(out.contains("invalid"), "{out}");
    assert_eq!(
        run(semdock(&data).args(["feed", "list"]))
            .lines()
            .map(|l| l.split_whitespace().next().unwrap_or_default().to_owned())
            .collect::<Vec<_>>(),
        ["FEED", "ci", "library", "prod"]
    );

    let server = Server::start_in(&data, &[]);
    let out = run_fail(semdock(&data).args(["feed", "create", "other"]));
    assert!(out.contains("in use by another semdock process"), "{out}");
    // The server made its configured feeds too, and serves pushes to them.
    let res = server
        .http()
        .post(server.url("/v2/ci/app/blobs/uploads/"))
        .send_empty()
        .unwrap();
    assert_eq!(res.status(), 202);
    drop(server);

    let list = run(semdock(&data).args(["feed", "list"]));
    assert_eq!(
        list.lines()
            .map(|l| l.split_whitespace().next().unwrap_or_default())
            .collect::<Vec<_>>(),
        ["FEED", "ci", "library", "prod"]
    );
    run(semdock(&data).args(["feed", "delete", "ci"]));
    assert!(!run(semdock(&data).args(["feed", "list"])).contains("ci"));
}

#[test]
fn config_command_prints_the_effective_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("semdock.toml");
    std::fs::write(
        &file,
        "listen = \"127.0.0.1:5001\"\n[limits]\nmanifest_bytes = 1000\n",
    )
    .unwrap();
    let out = run(Command::new(env!("CARGO_BIN_EXE_semdock"))
        .args(["--config", file.to_str().unwrap(), "config"])
        .env("SEMDOCK_DATA_DIR", "/tmp/reg")
        .env("SEMDOCK_LOG__FORMAT", "json"));
    assert!(out.contains("listen = \"127.0.0.1:5001\""), "{out}");
    assert!(out.contains("data_dir = \"/tmp/reg\""), "{out}");
    assert!(out.contains("manifest_bytes = 1000"), "{out}");
    assert!(out.contains("format = \"json\""), "{out}");

    std::fs::write(&file, "listn = \"127.0.0.1:5001\"\n").unwrap();
    let out = run_fail(Command::new(env!("CARGO_BIN_EXE_semdock")).args([
        "--config",
        file.to_str().unwrap(),
        "serve",
    ]));
    assert!(out.contains("listn"), "{out}");
}

#[test]
fn every_request_is_logged_once_with_status_and_duration() {
    let server = Server::start();
    server
        .http()
        .get(server.url("/v2/library/none/tags/list"))
        .call()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(200));
    let log = server.log();
    let line = log
        .lines()
        .find(|l| l.contains("/v2/library/none/tags/list"))
        .unwrap_or_else(|| panic!("{log}"));
    for field in ["method=GET", "status=404", "bytes=", "micros="] {
        assert!(line.contains(field), "{line}");
    }
}

#[test]
fn with_a_log_dir_the_log_goes_to_a_daily_file_instead_of_standard_error() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    let mut child = Command::new(env!("CARGO_BIN_EXE_semdock"))
        .arg("serve")
        .env("SEMDOCK_LISTEN", "127.0.0.1:0")
        .env("SEMDOCK_DATA_DIR", dir.path().join("data"))
        .env("SEMDOCK_LOG__DIR", &logs)
        .env("SEMDOCK_LOG__ACCESS", "true")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let read_log = || -> String {
        std::fs::read_dir(&logs)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
            .collect()
    };
    let addr_re = regex::Regex::new(r"addr=(\S+)").unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let addr = loop {
        if let Some(c) = addr_re.captures(&read_log()) {
            break c[1].to_owned();
        }
        assert!(std::time::Instant::now() < deadline, "no address logged");
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let res = common::http()
        .get(format!("http://{addr}/v2/library/none/tags/list"))
        .call()
        .unwrap();
    assert_eq!(res.status(), 401);
    std::thread::sleep(std::time::Duration::from_millis(200));
    let _ = child.kill();
    let _ = child.wait();
    let names: Vec<String> = std::fs::read_dir(&logs)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let file_re = regex::Regex::new(r"^semdock\.\d{4}-\d{2}-\d{2}\.log$").unwrap();
    assert!(names.len() == 1 && file_re.is_match(&names[0]), "{names:?}");
    let log = read_log();
    assert!(
        log.contains("/v2/library/none/tags/list") && log.contains("status=401"),
        "{log}"
    );
    assert!(!log.contains("\u{1b}["), "no colour codes in a file: {log}");
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(!stderr.contains("semdock listening"), "{stderr}");
}

/// Generates `len` pseudo-random bytes and hashes them as they are read.
struct HashingSource {
    left: u64,
    state: u64,
    hasher: sha2::Sha256,
}

impl std::io::Read for HashingSource {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        use sha2::Digest as _;
        let n = usize::try_from(self.left.min(buf.len() as u64)).unwrap();
        for b in &mut buf[..n] {
            self.state ^= self.state << 13;
            self.state ^= self.state >> 7;
            self.state ^= self.state << 17;
            *b = self.state.to_le_bytes()[0];
        }
        self.hasher.update(&buf[..n]);
        self.left -= n as u64;
        Ok(n)
    }
}

fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn streaming_upload_memory_does_not_grow_with_blob_size() {
    use sha2::Digest as _;
    let server = Server::start();
    let before = peak_rss_kib(server.child.id());
    let location = start_upload(&server, "library/huge");
    let mut source = HashingSource {
        left: 256 << 20,
        state: 0x9E37_79B9_7F4A_7C15,
        hasher: sha2::Sha256::new(),
    };
    let res = server
        .http()
        .patch(&location)
        .send(ureq::SendBody::from_reader(&mut source))
        .unwrap();
    assert_eq!(res.status(), 202);
    assert_eq!(header(&res, "range"), format!("0-{}", (256 << 20) - 1));
    let digest = Digest::from_sha256(&source.hasher.finalize());
    let res = server
        .http()
        .put(format!("{location}?digest={digest}"))
        .send_empty()
        .unwrap();
    assert_eq!(res.status(), 201);
    let grown_mib = (peak_rss_kib(server.child.id()) - before) / 1024;
    assert!(
        grown_mib < 48,
        "peak RSS grew by {grown_mib} MiB for a 256 MiB upload"
    );
}

#[test]
fn serve_takes_listen_and_data_dir_flags_and_its_help_names_the_environment() {
    let out = run(Command::new(env!("CARGO_BIN_EXE_semdock")).args(["serve", "--help"]));
    for wanted in [
        "--listen",
        "--data-dir",
        "SEMDOCK_LISTEN",
        "SEMDOCK_DATA_DIR",
        "/etc/semdock/semdock.toml",
    ] {
        assert!(out.contains(wanted), "serve --help lacks {wanted}: {out}");
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("flagged");
    let mut child = Command::new(env!("CARGO_BIN_EXE_semdock"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .env_remove("SEMDOCK_DATA_DIR")
        .env_remove("SEMDOCK_LISTEN")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !data.join("meta.redb").exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(data.join("meta.redb").exists(), "--data-dir was not used");
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn a_start_that_cannot_serve_creates_nothing_and_says_what_failed_once() {
    let running = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("never");
    let out = run_fail(
        Command::new(env!("CARGO_BIN_EXE_semdock"))
            .args(["serve", "--listen", &running.addr, "--data-dir"])
            .arg(&data),
    );
    assert!(
        out.contains(&format!("cannot listen on {}", running.addr)),
        "{out}"
    );
    assert!(
        !data.exists(),
        "a start on a busy port created {}",
        data.display()
    );
    // A data directory that is a file: the path, the operation, the cause, once.
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"not a directory").unwrap();
    let out = run_fail(
        Command::new(env!("CARGO_BIN_EXE_semdock"))
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(&file),
    );
    assert!(out.contains(&file.display().to_string()), "{out}");
    assert!(
        out.contains("data directory") && out.contains("cannot be created"),
        "{out}"
    );
    assert_eq!(out.matches("os error").count(), 1, "{out}");
}

#[test]
fn a_tls_handshake_on_the_plain_port_logs_no_error() {
    use std::io::{Read as _, Write as _};
    let server = Server::start();
    // The first bytes of a TLS ClientHello, as docker and skopeo send when probing.
    let hello: &[u8] = &[
        0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00, 0x00, 0xa1, 0x03, 0x03,
    ];
    for _ in 0..3 {
        let mut s = std::net::TcpStream::connect(&server.addr).unwrap();
        s.write_all(hello).unwrap();
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf);
    }
    // A request afterwards is logged, so the log is current.
    let res = server.http().get(server.url("/v2/")).call().unwrap();
    assert_eq!(res.status(), 200);
    std::thread::sleep(std::time::Duration::from_millis(200));
    let log = server.log();
    assert!(!log.contains("ERROR"), "{log}");
}

/// `/readyz` answers 200 while both stores answer, 503 with the OCI error JSON naming the
/// blob store while its directory is gone (a lost mount), and 200 again once it is back,
/// without a restart; `/healthz` stays 200 throughout (the process itself is fine).
#[test]
fn readiness_follows_the_stores_and_recovers_without_a_restart() {
    let server = Server::start();
    let get = |path: &str| {
        let res = http().get(server.url(path)).call().unwrap();
        let status = res.status().as_u16();
        (status, res.into_body().read_to_string().unwrap())
    };
    assert_eq!(get("/readyz"), (200, "ready\n".to_owned()));
    let blobs = server.data_dir.join("blobs");
    let away = server.data_dir.join("blobs-unmounted");
    std::fs::rename(&blobs, &away).unwrap();
    let (status, body) = get("/readyz");
    assert_eq!(status, 503, "{body}");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["errors"][0]["code"], "UNAVAILABLE", "{body}");
    let message = json["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("blob store"), "{message}");
    assert_eq!(get("/healthz").0, 200);
    std::fs::rename(&away, &blobs).unwrap();
    assert_eq!(get("/readyz"), (200, "ready\n".to_owned()));
}

/// A kept-alive connection idle longer than actix's 5 s default still answers: a load
/// balancer's pooled connection to a node is closed by the balancer, never by the node under
/// a request the balancer has just sent (which HAProxy answers by dropping the client).
#[test]
fn an_idle_kept_alive_connection_outlives_a_proxys_idle_pool() {
    use std::io::{BufRead as _, BufReader, Write as _};
    let server = Server::start();
    let stream = std::net::TcpStream::connect(&server.addr).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut ask = |mut stream: &std::net::TcpStream| {
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: registry\r\n\r\n")
            .unwrap();
        let mut status = String::new();
        reader.read_line(&mut status).unwrap();
        // The headers, then the body its length names.
        let mut length = 0;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap();
            }
            if line == "\r\n" {
                break;
            }
        }
        std::io::Read::read_exact(&mut reader, &mut vec![0; length]).unwrap();
        status
    };
    assert!(ask(&stream).starts_with("HTTP/1.1 200"));
    std::thread::sleep(std::time::Duration::from_secs(7));
    let again = ask(&stream);
    assert!(again.starts_with("HTTP/1.1 200"), "{again:?}");
}
