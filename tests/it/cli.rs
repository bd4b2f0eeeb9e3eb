//! The administration CLI, against a running server with an API key and offline on the data
//! directory.

use crate::common;

use std::io::Write as _;
use std::process::{Command, Stdio};

use common::{Server, basic, http_as, run, run_fail};

fn semdock(data: &std::path::Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_semdock"));
    cmd.env("SEMDOCK_DATA_DIR", data)
        .env_remove("SEMDOCK_API_KEY");
    cmd
}

fn with_stdin(cmd: &mut Command, input: &str) -> String {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .as_mut()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    text
}

/// The CLI against `server`, with an administrator's key that the initial admin creates
/// through the API (the first key comes from there).
fn admin_cli(server: &Server, data: &std::path::Path) -> impl Fn(&[&str]) -> Command {
    let key = server.admin_key("ops");
    let (url, data) = (server.url(""), data.to_owned());
    move |args: &[&str]| {
        let mut cmd = semdock(&data);
        cmd.args(args)
            .args(["--server", &url])
            .env("SEMDOCK_API_KEY", &key);
        cmd
    }
}

#[test]
fn cli_administers_a_running_server_with_an_api_key() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start_in(&data, &[]);
    let url = server.url("");
    let remote = admin_cli(&server, &data);

    run(&mut remote(&["feed", "create", "ci"]));
    let feeds = run(&mut remote(&["feed", "list"]));
    let names: Vec<&str> = feeds
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(names, ["ci", "library", "prod"], "{feeds}");
    let json: serde_json::Value =
        serde_json::from_str(&run(&mut remote(&["feed", "list", "--output", "json"]))).unwrap();
    let names: Vec<&str> = json
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["ci", "library", "prod"], "{json}");
    let out = run(&mut remote(&["user", "create", "bob"]));
    let password = out.trim().rsplit(' ').next().unwrap().to_owned();
    run(&mut remote(&["user", "grant", "bob", "ci", "push"]));
    let users = run(&mut remote(&["user", "list"]));
    let mut lines = users.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["USER", "FLAGS", "ROLES"], "{users}");
    assert!(
        lines.any(|l| l.starts_with("bob ") && l.ends_with("ci=push")),
        "{users}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&run(&mut remote(&["user", "list", "--output", "json"]))).unwrap();
    let bob = json
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == "bob")
        .unwrap();
    assert_eq!(bob["roles"]["ci"], "push");
    let res = http_as(Some(basic("bob", &password)))
        .post(server.url("/v2/ci/app/blobs/uploads/"))
        .send_empty()
        .unwrap();
    assert_eq!(res.status(), 202);

    let out = run(&mut remote(&[
        "key", "create", "--name", "deploy", "--role", "ci=pull",
    ]));
    let new_key = out.lines().last().unwrap().to_owned();
    let id = out
        .split_whitespace()
        .nth(3)
        .unwrap()
        .trim_end_matches(';')
        .to_owned();
    let keys = run(&mut remote(&["key", "list"]));
    assert!(keys.starts_with("ID "), "{keys}");
    assert!(keys.contains(&id));
    let json: serde_json::Value =
        serde_json::from_str(&run(&mut remote(&["key", "list", "--output", "json"]))).unwrap();
    assert!(
        json.as_array()
            .unwrap()
            .iter()
            .any(|k| k["id"] == id.as_str())
    );
    run(&mut remote(&["key", "revoke", &id]));
    let res = http_as(Some(basic("api", &new_key)))
        .get(server.url("/v2/"))
        .call()
        .unwrap();
    assert_eq!(res.status(), 401);

    run(&mut remote(&["user", "disable", "bob"]));
    let out = run_fail(&mut remote(&["user", "disable", "admin"]));
    assert!(
        out.contains("admin is the last enabled administrator"),
        "{out}"
    );
    let res = http_as(Some(basic("bob", &password)))
        .get(server.url("/v2/"))
        .call()
        .unwrap();
    assert_eq!(res.status(), 401);

    // Errors from the server come back as readable sentences.
    let out = run_fail(&mut remote(&["feed", "create", "ci"]));
    assert!(out.contains("already exists"), "{out}");
    let out = run_fail(semdock(&data).args(["feed", "list", "--server", &url]));
    assert!(out.contains("SEMDOCK_API_KEY"), "{out}");
    // Without --server, the data directory is in use by the server.
    let out = run_fail(semdock(&data).args(["user", "list"]));
    assert!(out.contains("in use by another semdock process"), "{out}");
}

#[test]
fn offline_reset_password_recovers_the_admin() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let first = Server::start_in(&data, &[]);
    let initial = first.admin_password.clone();
    assert!(!initial.is_empty());
    drop(first);
    with_stdin(
        semdock(&data).args(["user", "reset-password", "admin", "--password-stdin"]),
        "recovered-password\n",
    );
    assert!(
        !data.join("initial-admin-password").exists(),
        "the initial password file outlived the password"
    );
    let server = Server::start_in(&data, &[]);
    let res = http_as(Some(basic("admin", "recovered-password")))
        .get(server.url("/v2/"))
        .call()
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = http_as(Some(basic("admin", &initial)))
        .get(server.url("/v2/"))
        .call()
        .unwrap();
    assert_eq!(res.status(), 401, "the old password still works");
}

#[test]
fn purge_frees_deleted_versions_and_a_live_one_only_with_live() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start_in(&data, &[]);
    let remote = admin_cli(&server, &data);
    run(&mut remote(&["feed", "set", "prod", "--versioning", "on"]));
    push_version(&server, "prod/app", "1.0.0");
    let out = run_fail(&mut remote(&["purge", "prod/app:1.0.0"]));
    assert!(out.contains("delete it first"), "{out}");
    let out = run(&mut remote(&["purge", "prod/app:1.0.0", "--live"]));
    assert!(out.contains("purged prod/app:1.0.0"), "{out}");
    let history = run(&mut remote(&["history", "prod/app", "--tag", "1.0.0"]));
    assert!(
        history.contains("delete") && history.contains("purge"),
        "{history}"
    );
}

/// Pushes a small image of its own content to `repo:tag` as the administrator; returns its
/// digest.
fn push_version(server: &Server, repo: &str, tag: &str) -> String {
    let config = format!(r#"{{"architecture":"amd64","os":"linux","tag":"{tag}"}}"#);
    let digest = semdock::model::Digest::of(config.as_bytes());
    let res = server
        .http()
        .post(server.url(&format!("/v2/{repo}/blobs/uploads/?digest={digest}")))
        .send(config.as_bytes())
        .unwrap();
    assert_eq!(res.status(), 201);
    let manifest = serde_json::json!({"schemaVersion": 2, "mediaType": common::OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest.as_str(), "size": config.len()},
        "layers": []});
    let body = manifest.to_string();
    let res = server
        .http()
        .put(server.url(&format!("/v2/{repo}/manifests/{tag}")))
        .content_type(common::OCI_MANIFEST)
        .send(&body)
        .unwrap();
    assert_eq!(res.status(), 201);
    semdock::model::Digest::of(body.as_bytes()).to_string()
}

#[test]
fn login_keeps_a_key_that_server_commands_use_and_logout_revokes_it() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let home = dir.path().join("config");
    let server = Server::start_in(&data, &[]);
    let url = server.url("");
    let cli = |args: &[&str]| {
        let mut cmd = semdock(&data);
        cmd.args(args).env("XDG_CONFIG_HOME", &home);
        cmd
    };
    let out = with_stdin(
        &mut cli(&["login", &url, "-u", "admin", "--password-stdin"]),
        &format!("{}\n", server.admin_password),
    );
    assert!(out.contains("logged in"), "{out}");
    let file = home.join("semdock/credentials.json");
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // No SEMDOCK_API_KEY: the stored key answers.
    run(&mut cli(&["feed", "create", "fromlogin", "--server", &url]));
    assert!(run(&mut cli(&["feed", "list", "--server", &url])).contains("fromlogin"));
    let stored: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let key = stored["servers"][url.trim_end_matches('/')]["key"]
        .as_str()
        .unwrap()
        .to_owned();
    run(&mut cli(&["logout", &url]));
    let res = http_as(Some(basic("api", &key)))
        .get(server.url("/v2/"))
        .call()
        .unwrap();
    assert_eq!(res.status(), 401, "the key outlived the logout");
    let out = run_fail(&mut cli(&["feed", "list", "--server", &url]));
    assert!(out.contains("semdock login"), "{out}");
    // A wrong password says so and stores nothing.
    let out =
        run_fail(cli(&["login", &url, "-u", "admin", "--password-stdin"]).stdin(Stdio::null()));
    assert!(out.contains("login to"), "{out}");
}

/// `semdock retention` prints each deletion and the count, against a server and offline.
#[test]
fn retention_lists_what_it_deletes() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = Server::start_in(&data, &[]);
    let agent = server.http();
    let res = agent
        .patch(server.url("/api/v1/feeds/prod"))
        .content_type("application/json")
        .send(r#"{"versioning":true}"#)
        .unwrap();
    assert_eq!(res.status(), 200);
    let config = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";
    let res = agent
        .post(server.url(&format!("/v2/prod/app/blobs/uploads/?digest={config}")))
        .send("{}")
        .unwrap();
    assert_eq!(res.status(), 201);
    for (i, tag) in ["1.0.0-rc.1", "1.0.0-rc.2", "1.0.0-rc.3"]
        .iter()
        .enumerate()
    {
        let body = serde_json::json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": 2},
            "layers": [], "annotations": {"n": i.to_string()}});
        let res = agent
            .put(server.url(&format!("/v2/prod/app/manifests/{tag}")))
            .content_type("application/vnd.oci.image.manifest.v1+json")
            .send(body.to_string())
            .unwrap();
        assert_eq!(res.status(), 201);
    }
    let remote = admin_cli(&server, &data);
    run(&mut remote(&[
        "feed",
        "retention",
        "prod",
        "--keep-prereleases",
        "1",
    ]));
    let dry = run(&mut remote(&["retention", "prod", "--dry-run"]));
    let lines: Vec<&str> = dry.lines().collect();
    // The two older pre-release tags, then the manifests they leave untagged.
    assert_eq!(lines.len(), 5, "{dry}");
    assert_eq!(
        lines[..2],
        [
            "prod/app:1.0.0-rc.1\tprerelease",
            "prod/app:1.0.0-rc.2\tprerelease"
        ]
    );
    assert!(
        lines[2..4]
            .iter()
            .all(|l| l.starts_with("prod/app@sha256:") && l.ends_with("\tprerelease")),
        "{dry}"
    );
    assert_eq!(lines[4], "would delete 4 tags and manifests in feed prod");
    drop(remote);
    assert!(server.terminate());
    let offline = run(semdock(&data).args(["retention", "prod"]));
    assert!(
        offline.contains("\ndeleted 4 tags and manifests in feed prod\n"),
        "{offline}"
    );
}

/// `SEMDOCK_CONFIG_FILE` is the file, as `--config` (not a configuration key); `semdock
/// config` and the start-up log say which file was read, or that none was; `listen` may be
/// a name.
#[test]
fn the_config_file_variable_names_the_file_and_serve_says_which_it_read() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let file = dir.path().join("semdock.toml");
    std::fs::write(
        &file,
        "listen = \"localhost:0\"\nfeeds = [\"library\", \"fromfile\"]\n[auth]\nservice = \"fromfile\"\n",
    )
    .unwrap();
    let file_text = file.display().to_string();
    let printed = run(semdock(&data)
        .arg("config")
        .env("SEMDOCK_CONFIG_FILE", &file));
    assert!(
        printed.starts_with(&format!("# configuration file: {file_text}\n")),
        "{printed}"
    );
    assert!(printed.contains("\"fromfile\""), "{printed}");
    let listen = printed
        .lines()
        .find(|l| l.starts_with("listen = "))
        .unwrap();
    assert!(
        listen == "listen = \"127.0.0.1:0\"" || listen == "listen = \"[::1]:0\"",
        "{printed}"
    );
    if !std::path::Path::new(semdock::config::DEFAULT_CONFIG_PATH).exists() {
        let printed = run(semdock(&data)
            .arg("config")
            .env_remove("SEMDOCK_CONFIG_FILE"));
        assert!(printed.starts_with("# no configuration file"), "{printed}");
    }
    // The name in the setting (the environment's wins over the file's) is resolved.
    let server = Server::start_in(
        &data,
        &[
            ("SEMDOCK_CONFIG_FILE", file_text.as_str()),
            ("SEMDOCK_LISTEN", "localhost:0"),
        ],
    );
    assert!(
        server
            .log()
            .contains(&format!("configuration file: {file_text}")),
        "{}",
        server.log()
    );
    // The file's settings apply (the test's environment overrides its feeds).
    let res = common::http().get(server.url("/v2/")).call().unwrap();
    let challenge = res
        .headers()
        .get("www-authenticate")
        .unwrap()
        .to_str()
        .unwrap();
    assert!(challenge.contains("service=\"fromfile\""), "{challenge}");
    let out = run_fail(
        semdock(&data)
            .args(["serve", "--listen", "no-such-host.invalid:5000"])
            .env("SEMDOCK_CONFIG_FILE", &file),
    );
    assert!(out.contains("cannot be resolved"), "{out}");
}

/// The start says that `mirror_feed` is on and which feed it names; one naming no feed
/// stops the start with a sentence.
#[test]
fn a_mirror_feed_is_named_at_the_start_and_one_naming_no_feed_stops_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = run_fail(
        semdock(&data)
            .arg("serve")
            .env("SEMDOCK_LISTEN", "127.0.0.1:0")
            .env("SEMDOCK_MIRROR_FEED", "hub"),
    );
    assert!(
        out.contains("semdock: mirror_feed = \"hub\" names no feed of this registry"),
        "{out}"
    );
    let printed = run(semdock(&data)
        .arg("config")
        .env("SEMDOCK_MIRROR_FEED", "hub"));
    assert!(printed.contains("# mirror_feed is on"), "{printed}");
    assert!(printed.contains("go to feed hub"), "{printed}");
    let server = Server::start_in(
        &data,
        &[
            ("SEMDOCK_MIRROR_FEED", "hub"),
            ("SEMDOCK_FEEDS", "[library,prod,hub]"),
        ],
    );
    let log = server.log();
    assert!(log.contains("mirror_feed is on"), "{log}");
    assert!(log.contains("go to feed hub"), "{log}");
}

/// The access log is off unless `log.access` is on.
#[test]
fn the_access_log_is_off_unless_log_access_is_on() {
    for access in ["false", "true"] {
        let dir = tempfile::tempdir().unwrap();
        let server = Server::start_in(&dir.path().join("data"), &[("SEMDOCK_LOG__ACCESS", access)]);
        let res = common::http()
            .get(server.url("/v2/library/none/tags/list"))
            .call()
            .unwrap();
        assert_eq!(res.status(), 401);
        std::thread::sleep(std::time::Duration::from_millis(300));
        let log = server.log();
        assert_eq!(
            log.contains("/v2/library/none/tags/list"),
            access == "true",
            "log.access = {access}:\n{log}"
        );
    }
}

/// A data directory semdock cannot create or write is named with the reason, not an
/// "internal error".
#[test]
fn an_unusable_data_dir_is_named_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    let data = file.join("data");
    let out = run_fail(
        semdock(&data)
            .arg("serve")
            .env("SEMDOCK_LISTEN", "127.0.0.1:0"),
    );
    assert!(!out.contains("internal error"), "{out}");
    assert!(
        out.contains(&format!(
            "the data directory {} cannot be created",
            data.display()
        )),
        "{out}"
    );
}

/// `semdock tag delete` (against a server and offline), and `purge` of a live tag saying
/// to use --live rather than the API's JSON.
#[test]
fn tags_are_deleted_from_the_cli_and_purge_of_a_live_tag_says_live() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = Server::start_in(&data, &[]);
    let remote = admin_cli(&server, &data);
    run(&mut remote(&["feed", "set", "prod", "--versioning", "on"]));
    push_version(&server, "prod/app", "1.0.0");
    push_version(&server, "prod/app", "1.1.0");
    let out = run_fail(&mut remote(&["purge", "prod/app:1.0.0"]));
    assert!(out.contains("--live"), "{out}");
    assert!(!out.contains("{\"confirm\""), "{out}");
    let out = run(&mut remote(&["tag", "delete", "prod/app:1.0.0"]));
    assert!(out.contains("deleted prod/app:1.0.0"), "{out}");
    let res = server
        .http()
        .get(server.url("/v2/prod/app/manifests/1.0.0"))
        .call()
        .unwrap();
    assert_eq!(res.status(), 404);
    run(&mut remote(&["purge", "prod/app:1.0.0"]));
    let out = run_fail(&mut remote(&["tag", "delete", "prod/app:9.9.9"]));
    assert!(out.contains("9.9.9"), "{out}");
    drop(remote);
    assert!(server.terminate());
    let out = run(semdock(&data).args(["tag", "delete", "prod/app:1.1.0"]));
    assert!(out.contains("deleted prod/app:1.1.0"), "{out}");
    let history = run(semdock(&data).args(["history", "prod/app", "--tag", "1.1.0"]));
    assert!(
        history.lines().last().unwrap().contains("delete"),
        "{history}"
    );
}

/// `history`: `--output json`, the newest changes with `--limit`, an unknown repository
/// refused, `--at` of a virtual tag naming its version, and CLI words in its errors.
#[test]
fn history_has_json_the_newest_with_limit_and_refuses_unknown_repositories() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = Server::start_in(&data, &[]);
    let remote = admin_cli(&server, &data);
    run(&mut remote(&["feed", "set", "prod", "--versioning", "on"]));
    for v in ["1.0.0", "1.1.0"] {
        push_version(&server, "prod/app", v);
    }
    let newest = push_version(&server, "prod/app", "2.0.0");
    let check = |cli: &dyn Fn(&[&str]) -> Command| {
        let json: serde_json::Value = serde_json::from_str(&run(&mut cli(&[
            "history", "prod/app", "--tag", "latest", "--output", "json",
        ])))
        .unwrap();
        let changes = json.as_array().unwrap();
        assert_eq!(changes.len(), 3, "{json}");
        assert_eq!(changes[2]["new"], newest.as_str(), "{json}");
        let out = run(&mut cli(&[
            "history", "prod/app", "--tag", "latest", "--limit", "1",
        ]));
        assert_eq!(out.lines().count(), 1, "{out}");
        assert!(
            out.contains(&format!("-> {newest}")),
            "the oldest came back: {out}"
        );
        let out = run_fail(&mut cli(&["history", "prod/apq"]));
        assert!(out.contains("\"prod/apq\" is not known"), "{out}");
        let out = run(&mut cli(&[
            "history", "prod/app", "--tag", "latest", "--at", "1 second",
        ]));
        assert_eq!(out.trim(), format!("{newest} (version 2.0.0)"));
        let out = run_fail(&mut cli(&["history", "prod/app", "--at", "1 hour ago"]));
        assert!(out.contains("--tag"), "{out}");
        assert!(!out.contains("tag="), "{out}");
    };
    // The clock of the history moves in milliseconds: make "1 second ago" after the pushes.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    check(&remote);
    drop(remote);
    assert!(server.terminate());
    let local = |args: &[&str]| {
        let mut cmd = semdock(&data);
        cmd.args(args);
        cmd
    };
    check(&local);
}

/// `--server` takes HOST:PORT (http), drops a `/ui/…` path, finds the key `semdock login`
/// kept whichever of localhost, 127.0.0.1 and a trailing slash it was given, and a wrong
/// port says the server cannot be reached rather than asking for a key.
#[test]
fn server_addresses_are_normalised_and_a_wrong_port_cannot_be_reached() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let home = dir.path().join("config");
    let server = Server::start_in(&data, &[]);
    let port = server.addr.rsplit(':').next().unwrap().to_owned();
    let cli = |args: &[&str]| {
        let mut cmd = semdock(&data);
        cmd.args(args).env("XDG_CONFIG_HOME", &home);
        cmd
    };
    with_stdin(
        &mut cli(&[
            "login",
            &format!("http://127.0.0.1:{port}/"),
            "-u",
            "admin",
            "--password-stdin",
        ]),
        &format!("{}\n", server.admin_password),
    );
    for address in [
        format!("localhost:{port}"),
        format!("http://localhost:{port}/"),
        format!("http://127.0.0.1:{port}/ui/feeds"),
    ] {
        let out = run(&mut cli(&["feed", "list", "--server", &address]));
        assert!(out.contains("library"), "{address}: {out}");
    }
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed = listener.local_addr().unwrap().port();
    drop(listener);
    let out = run_fail(&mut cli(&[
        "feed",
        "list",
        "--server",
        &format!("localhost:{closed}"),
    ]));
    assert!(out.contains("cannot reach a server at"), "{out}");
    assert!(!out.contains("API key"), "{out}");
    let out = run_fail(&mut cli(&["feed", "list", "--server", "ftp://localhost"]));
    assert!(out.contains("is not a server address"), "{out}");
}

/// `key create --expires-days`; `feed list` as a table of the useful columns; `feed set` of a
/// connector says so, and changes its TTL without repeating --upstream.
#[test]
fn keys_expire_feed_list_shows_settings_and_a_connector_is_set_without_its_url() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start_in(&data, &[]);
    let remote = admin_cli(&server, &data);
    let out = run(&mut remote(&[
        "key",
        "create",
        "--name",
        "ci",
        "--role",
        "prod=pull",
        "--expires-days",
        "30",
    ]));
    assert!(out.contains("valid until"), "{out}");
    let keys: serde_json::Value =
        serde_json::from_str(&run(&mut remote(&["key", "list", "--output", "json"]))).unwrap();
    let expires = keys
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "ci")
        .unwrap()["expires"]
        .as_u64()
        .expect("the key has an expiry");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(expires.abs_diff(now + 30 * 86_400) < 600, "{expires}");

    run(&mut remote(&["feed", "create", "hub"]));
    let out = run(&mut remote(&[
        "feed",
        "set",
        "hub",
        "--upstream",
        "https://registry.example.com",
    ]));
    assert!(
        out.contains("connector of https://registry.example.com"),
        "{out}"
    );
    assert!(!out.contains("accepts pushes"), "{out}");
    let out = run(&mut remote(&["feed", "set", "hub", "--upstream-ttl", "60"]));
    assert!(out.contains("checked again after 60 s"), "{out}");
    let out = run_fail(&mut remote(&[
        "feed",
        "set",
        "prod",
        "--upstream-ttl",
        "60",
    ]));
    assert!(out.contains("prod is not a connector"), "{out}");
    run(&mut remote(&["feed", "set", "prod", "--versioning", "on"]));
    let table = run(&mut remote(&["feed", "list"]));
    let header: Vec<&str> = table
        .lines()
        .next()
        .unwrap()
        .split("  ")
        .filter(|c| !c.is_empty())
        .map(str::trim)
        .collect();
    assert_eq!(
        header,
        [
            "FEED",
            "VERSIONING",
            "ANONYMOUS PULL",
            "CONNECTOR UPSTREAM",
            "ENTRY",
            "DESCRIPTION"
        ],
        "{table}"
    );
    let row = |feed: &str| {
        table
            .lines()
            .find(|l| l.starts_with(&format!("{feed} ")))
            .unwrap_or_else(|| panic!("{table}"))
            .to_owned()
    };
    assert!(
        row("hub").contains("https://registry.example.com"),
        "{table}"
    );
    assert!(
        row("prod").split_whitespace().nth(1) == Some("on"),
        "{table}"
    );
}
