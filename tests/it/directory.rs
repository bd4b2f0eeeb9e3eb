//! Sign-in with the company directory: `OpenLDAP` (Debian's `slapd`) on loopback with a tree
//! the test writes (users, groups, a disabled account), `StartTLS` with a test CA; docker logs
//! in and pushes with a directory password, groups map to roles, a removal from a group or a
//! disabled account takes effect within the cache time (tokens and API keys included), and
//! with slapd stopped the local administrator still logs in while directory users get a
//! clear error.

use crate::common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::cluster::Cluster;
use common::ldap::{SUFFIX, Slapd, directory_env};
use common::{Server, image_context, run};

fn push(server: &Server, tag: &str) -> std::process::Output {
    let image = format!("{}/prod/app:{tag}", server.host());
    let ctx = image_context(1, tag);
    run(server
        .docker()
        .args(["build", "--no-cache", "-q", "-t", &image])
        .arg(ctx.path())
        .env("DOCKER_BUILDKIT", "0"));
    let out = server.docker().args(["push", &image]).output().unwrap();
    let _ = server.docker().args(["rmi", &image]).output();
    out
}

fn status_as(server: &Server, user: &str, secret: &str, method: &str, path: &str) -> u16 {
    let agent = common::http_as(Some(format!(
        "Basic {}",
        base64_encode(&format!("{user}:{secret}"))
    )));
    let url = server.url(path);
    let res = match method {
        "POST" => agent
            .post(&url)
            .header("Content-Type", "application/json")
            .send(r#"{"name": "ci", "owner_roles": true}"#),
        _ => agent.get(&url).call(),
    };
    res.unwrap().status().as_u16()
}

fn base64_encode(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn wait_until(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ok() {
        assert!(Instant::now() < deadline, "{what} did not happen in time");
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[allow(clippy::too_many_lines)] // one story, told in order
fn directory_story(server: &Server, slapd: &mut Slapd) {
    // docker logs in and pushes with a directory password: devs push to prod.
    let out = server.docker_login_as(&server.host(), "alice", "alice-pass");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = push(server, "1.0.0");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A wrong password and a disabled account are refused; an administrator by group.
    assert!(
        !server
            .docker_login_as(&server.host(), "alice", "wrong")
            .status
            .success()
    );
    assert!(
        !server
            .docker_login_as(&server.host(), "bob", "bob-pass")
            .status
            .success()
    );
    assert!(
        !server
            .docker_login_as(&server.host(), "alice", "")
            .status
            .success()
    );
    assert_eq!(
        status_as(server, "carol", "carol-pass", "GET", "/api/v1/users"),
        200
    );
    assert_eq!(
        status_as(server, "alice", "alice-pass", "GET", "/api/v1/users"),
        403
    );
    // skopeo and podman with the same directory password.
    let image = format!("docker://{}/prod/app:1.0.0", server.host());
    run(Command::new("skopeo").args([
        "inspect",
        "--tls-verify=false",
        "--creds",
        "alice:alice-pass",
        &image,
    ]));
    let podman = tempfile::tempdir().unwrap();
    std::fs::write(podman.path().join("auth.json"), "{}").unwrap();
    let mut login = Command::new("podman")
        .env("REGISTRY_AUTH_FILE", podman.path().join("auth.json"))
        .args([
            "login",
            "--tls-verify=false",
            "-u",
            "alice",
            "--password-stdin",
        ])
        .arg(server.host())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(login.stdin.as_mut().unwrap(), b"alice-pass").unwrap();
    drop(login.stdin.take());
    let out = login.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Its password is the directory's: semdock does not set one.
    let res = common::http_as(Some(format!("Basic {}", base64_encode("carol:carol-pass"))))
        .put(&server.url("/api/v1/users/alice/password"))
        .header("Content-Type", "application/json")
        .send(r#"{"password": "a-local-password-now-1"}"#)
        .unwrap();
    assert_eq!(res.status(), 400);

    // Alice's API key for CI: it works while she is in the group.
    let agent = common::http_as(Some(format!("Basic {}", base64_encode("alice:alice-pass"))));
    let mut res = agent
        .post(&server.url("/api/v1/keys"))
        .header("Content-Type", "application/json")
        .send(r#"{"name": "ci", "owner_roles": true}"#)
        .unwrap();
    assert_eq!(res.status(), 201);
    let key: serde_json::Value =
        serde_json::from_str(&res.body_mut().read_to_string().unwrap()).unwrap();
    let key = key["key"].as_str().unwrap().to_owned();
    assert_eq!(
        status_as(server, "alice", &key, "GET", "/v2/prod/app/tags/list"),
        200
    );

    // Removed from devs: within the cache time she can no longer push, by token or key.
    slapd.modify(
        "ldapmodify",
        &format!("dn: cn=devs,ou=groups,{SUFFIX}\nchangetype: modify\ndelete: member\nmember: uid=alice,ou=people,{SUFFIX}\n"),
    );
    wait_until("the group removal", || {
        status_as(server, "alice", &key, "GET", "/v2/prod/app/tags/list") != 200
    });
    let out = push(server, "1.0.1");
    assert!(!out.status.success(), "pushed after leaving the group");
    // Disabled in the directory: the key stops altogether.
    slapd.modify(
        "ldapmodify",
        &format!("dn: uid=alice,ou=people,{SUFFIX}\nchangetype: modify\nadd: description\ndescription: disabled\n"),
    );
    wait_until("the disabling", || {
        status_as(server, "alice", &key, "GET", "/api/v1/keys") == 401
    });

    // An administrator disables a directory account here: the directory does not undo it.
    let admin = server.http();
    let patch = |disabled: bool| {
        admin
            .patch(&server.url("/api/v1/users/carol"))
            .header("Content-Type", "application/json")
            .send(format!(r#"{{"disabled": {disabled}}}"#))
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(patch(true), 204);
    assert_eq!(
        status_as(server, "carol", "carol-pass", "GET", "/api/v1/users"),
        401
    );
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        status_as(server, "carol", "carol-pass", "GET", "/api/v1/users"),
        401
    );
    assert_eq!(patch(false), 204);
    assert_eq!(
        status_as(server, "carol", "carol-pass", "GET", "/api/v1/users"),
        200
    );

    // The directory stopped: the local administrator still logs in; directory users are
    // told why they cannot.
    slapd.stop();
    server.docker_login();
    let res = common::http_as(Some(format!("Basic {}", base64_encode("carol:carol-pass"))))
        .get(&server.url("/api/v1/users"))
        .call()
        .unwrap();
    let status = res.status().as_u16();
    let body = res.into_body().read_to_string().unwrap_or_default();
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("directory is unavailable"), "{body}");
    assert!(body.contains("local accounts can"), "{body}");
}

#[test]
fn directory_users_log_in_push_and_lose_rights_on_the_embedded_backend() {
    let mut slapd = Slapd::start();
    let env = directory_env(&slapd);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_in(&dir.path().join("data"), &env);

    // The configuration checked against the server, as an operator would.
    let out = run(Command::new(env!("CARGO_BIN_EXE_semdock"))
        .args(["directory", "test", "alice"])
        .envs(env.iter().copied()));
    assert!(out.contains("with StartTLS"), "{out}");
    assert!(
        out.contains("uid=alice,ou=people,dc=example,dc=com"),
        "{out}"
    );
    assert!(out.contains("cn=devs,ou=groups"), "{out}");
    assert!(out.contains("prod push"), "{out}");
    let out = run(Command::new(env!("CARGO_BIN_EXE_semdock"))
        .args(["directory", "test", "carol"])
        .envs(env.iter().copied()));
    assert!(out.contains("administrator: yes"), "{out}");
    let failed = Command::new(env!("CARGO_BIN_EXE_semdock"))
        .args(["directory", "test", "bob"])
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert!(!failed.status.success());
    assert!(String::from_utf8_lossy(&failed.stderr).contains("disabled accounts are"));

    directory_story(&server, &mut slapd);
}

#[test]
fn directory_users_log_in_push_and_lose_rights_on_postgres_and_s3() {
    let mut slapd = Slapd::start();
    let env = directory_env(&slapd);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut cluster = Cluster::start_with(1, &env);
    let server = cluster.nodes.remove(0);
    directory_story(&server, &mut slapd);
}

fn users_named(server: &Server, like: &str) -> Vec<serde_json::Value> {
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
        .filter(|u| {
            u["name"]
                .as_str()
                .is_some_and(|n| n.trim().eq_ignore_ascii_case(like))
        })
        .cloned()
        .collect()
}

/// The directory matches `ALICE`, ` alice` and `Alice` to one entry: they are one semdock
/// account (`alice`, the directory's spelling), with one disabled state, one set of group
/// roles and API keys; a local account's name is not taken over in any spelling.
#[test]
fn every_spelling_the_directory_matches_is_one_account() {
    let slapd = Slapd::start();
    let env = directory_env(&slapd);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_in(&dir.path().join("data"), &env);

    // A local account `carol`: the directory's Carol cannot take it in another spelling.
    let res = server
        .http()
        .post(&server.url("/api/v1/users"))
        .header("Content-Type", "application/json")
        .send(r#"{"name": "carol"}"#)
        .unwrap();
    assert_eq!(res.status(), 201);
    for spelling in ["carol", "CAROL", " carol", "Carol "] {
        assert_eq!(
            status_as(&server, spelling, "carol-pass", "GET", "/api/v1/keys"),
            401,
            "{spelling:?} took over the local account"
        );
    }
    assert_eq!(users_named(&server, "carol").len(), 1);

    // docker logs in and pushes as `ALICE` and as `Alice`: devs push to prod either way.
    for (spelling, tag) in [("ALICE", "1.0.0"), ("Alice", "1.0.1")] {
        let out = server.docker_login_as(&server.host(), spelling, "alice-pass");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = push(&server, tag);
        assert!(
            out.status.success(),
            "{spelling}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(
        status_as(&server, " alice", "alice-pass", "GET", "/api/v1/keys"),
        200
    );
    let alice = users_named(&server, "alice");
    assert_eq!(alice.len(), 1, "{alice:?}");
    assert_eq!(alice[0]["name"], "alice");

    // An API key made as `ALICE` is alice's, used with any spelling.
    let agent = common::http_as(Some(format!("Basic {}", base64_encode("ALICE:alice-pass"))));
    let mut res = agent
        .post(&server.url("/api/v1/keys"))
        .header("Content-Type", "application/json")
        .send(r#"{"name": "ci", "owner_roles": true}"#)
        .unwrap();
    assert_eq!(res.status(), 201);
    let key: serde_json::Value =
        serde_json::from_str(&res.body_mut().read_to_string().unwrap()).unwrap();
    let key = key["key"].as_str().unwrap().to_owned();
    for user in ["alice", "Alice", "api"] {
        assert_eq!(
            status_as(&server, user, &key, "GET", "/v2/prod/app/tags/list"),
            200,
            "{user}"
        );
    }

    // The administrator disables alice: no spelling gets in, nor her key.
    let res = server
        .http()
        .patch(&server.url("/api/v1/users/alice"))
        .header("Content-Type", "application/json")
        .send(r#"{"disabled": true}"#)
        .unwrap();
    assert_eq!(res.status(), 204);
    for spelling in ["alice", "aLiCe", " alice", "ALICE "] {
        assert_eq!(
            status_as(&server, spelling, "alice-pass", "GET", "/api/v1/keys"),
            401,
            "{spelling:?} got in although alice is disabled"
        );
    }
    assert!(
        !server
            .docker_login_as(&server.host(), "aLiCe", "alice-pass")
            .status
            .success()
    );
    assert_eq!(
        status_as(&server, "api", &key, "GET", "/v2/prod/app/tags/list"),
        401
    );
    let alice = users_named(&server, "alice");
    assert_eq!(alice.len(), 1, "{alice:?}");
    assert_eq!(alice[0]["disabled"], true);
}

/// Accounts stored before names were normalised (`ALICE` and `Alice` beside the entry's
/// `alice`): a spelling an administrator disabled keeps the person out; an enabled one is
/// disabled by the next refresh (its keys and sessions end), logins land on `alice`.
#[test]
fn accounts_stored_under_other_spellings_are_retired_and_a_disabled_one_keeps_the_person_out() {
    use semdock::store::meta::redb::RedbMeta;
    use semdock::store::meta::{Metadata, UserRecord};
    let slapd = Slapd::start();
    let env = directory_env(&slapd);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = Server::start_in(&data, &env);
    server.terminate();
    drop(server);

    // What the old code stored for logins as `ALICE` (then disabled by an administrator)
    // and as `Alice`.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let stored = |disabled: bool| {
        (
            UserRecord {
                password_hash: "!directory".into(),
                admin: false,
                disabled,
                created: now.as_secs(),
                last_login: Some(now.as_secs()),
            },
            serde_json::json!({
                "checked_ms": u64::try_from(now.as_millis()).unwrap(),
                "admin": false,
                "feeds": {"prod": "push"},
                "dn": format!("uid=alice,ou=people,{SUFFIX}"),
                "groups": [format!("cn=devs,ou=groups,{SUFFIX}")],
            })
            .to_string(),
        )
    };
    {
        let meta: std::sync::Arc<dyn Metadata> =
            std::sync::Arc::new(RedbMeta::open(&data.join("meta.redb")).unwrap());
        meta.write(|w| {
            for (name, disabled) in [("ALICE", true), ("Alice", false)] {
                let (record, roles) = stored(disabled);
                w.put_user(name, &record)?;
                // Settings carry their encoding version first (1: JSON).
                let versioned = [&[1u8][..], roles.as_bytes()].concat();
                w.put_setting(&format!("directory:{name}"), &versioned)?;
            }
            Ok::<_, semdock::store::meta::MetaError>(())
        })
        .unwrap();
    }
    let server = Server::start_in(&data, &env);

    // ALICE was disabled by an administrator: alice stays out in every spelling.
    for spelling in ["alice", "Alice", "ALICE"] {
        assert_eq!(
            status_as(&server, spelling, "alice-pass", "GET", "/api/v1/keys"),
            401,
            "{spelling:?}"
        );
    }
    // The stale `Alice` is disabled by the refresh: the directory's name is `alice`.
    wait_until("the stale spelling's disabling", || {
        users_named(&server, "alice")
            .iter()
            .any(|u| u["name"] == "Alice" && u["disabled"] == true)
    });
    assert!(
        users_named(&server, "alice")
            .iter()
            .all(|u| u["name"] != "alice"),
        "a new account was made for a locked-out person"
    );

    // The administrator enables ALICE again: the person logs in, as `alice`.
    let res = server
        .http()
        .patch(&server.url("/api/v1/users/ALICE"))
        .header("Content-Type", "application/json")
        .send(r#"{"disabled": false}"#)
        .unwrap();
    assert_eq!(res.status(), 204);
    assert_eq!(
        status_as(&server, "ALICE", "alice-pass", "GET", "/api/v1/keys"),
        200
    );
    assert!(
        users_named(&server, "alice")
            .iter()
            .any(|u| u["name"] == "alice" && u["disabled"] == false)
    );
    wait_until("the stale ALICE's disabling", || {
        users_named(&server, "alice")
            .iter()
            .any(|u| u["name"] == "ALICE" && u["disabled"] == true)
    });
    assert_eq!(
        status_as(&server, "aLiCe", "alice-pass", "GET", "/api/v1/keys"),
        200
    );
}
