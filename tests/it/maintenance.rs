//! Read-only mode with the real binary: docker and the CLI against one node (and a restart
//! during maintenance), and three nodes over PostgreSQL and S3, where turning it on through
//! one node holds on the others at once and on a node restarted during it.

use crate::common;

use std::process::Command;

use common::cluster::Cluster;
use common::{Server, run, run_fail};

fn semdock(data: &std::path::Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_semdock"));
    cmd.env("SEMDOCK_DATA_DIR", data)
        .env_remove("SEMDOCK_API_KEY");
    cmd
}

/// The manifest of a new image whose blobs are uploaded to `repo` at `base`.
fn prepare(agent: &ureq::Agent, base: &str, repo: &str, seed: &str) -> Vec<u8> {
    common::push_image_over_http(agent, base, repo, seed.as_bytes()).1
}

/// A manifest PUT to `repo:tag` at `base`: its status, `Retry-After` and body.
fn put_manifest(
    agent: &ureq::Agent,
    base: &str,
    repo: &str,
    tag: &str,
    manifest: &[u8],
) -> (u16, Option<String>, String) {
    let mut res = agent
        .put(&format!("{base}/v2/{repo}/manifests/{tag}"))
        .header("Content-Type", common::OCI_MANIFEST)
        .send(manifest)
        .unwrap();
    let retry = res
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    (
        res.status().as_u16(),
        retry,
        res.body_mut().read_to_string().unwrap_or_default(),
    )
}

/// A blob upload's first request at `base`.
fn start_upload(agent: &ureq::Agent, base: &str, repo: &str) -> u16 {
    agent
        .post(&format!("{base}/v2/{repo}/blobs/uploads/"))
        .send_empty()
        .unwrap()
        .status()
        .as_u16()
}

#[test]
fn read_only_mode_refuses_docker_and_the_cli_keeps_pulls_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = Server::start_in(&data, &[]);
    server.docker_login();
    let tag = format!("{}/prod/app:1.0.0", server.host());
    let ctx = common::image_context(2, "read-only");
    run(server
        .docker()
        .args(["build", "--no-cache", "-q", "-t", &tag])
        .arg(ctx.path()));
    run(server.docker().args(["push", &tag]));
    let key = server.admin_key("ops");
    let cli = |server: &Server, args: &[&str]| {
        let mut cmd = semdock(&data);
        cmd.args(args)
            .args(["--server", &server.url("")])
            .env("SEMDOCK_API_KEY", &key);
        cmd
    };

    let agent = server.http();
    let waiting = prepare(&agent, &server.url(""), "prod/app", "1.0.1");
    let out = run(&mut cli(
        &server,
        &["maintenance", "on", "--reason", "upgrade to 2.0"],
    ));
    assert!(out.contains("read-only since"), "{out}");
    assert!(out.contains("upgrade to 2.0"), "{out}");

    // A push is refused before anything is stored: the upload's first request already.
    assert_eq!(start_upload(&agent, &server.url(""), "prod/app"), 503);
    // (docker would retry a 503 for about a minute before giving up: the wire is asked
    // directly.)
    let (status, retry, body) =
        put_manifest(&agent, &server.url(""), "prod/app", "1.0.1", &waiting);
    assert_eq!(status, 503, "{body}");
    assert_eq!(retry.as_deref(), Some("60"));
    assert!(
        body.contains("UNAVAILABLE") && body.contains("upgrade to 2.0"),
        "{body}"
    );
    let res = agent
        .delete(&server.url("/api/v1/feeds/prod"))
        .call()
        .unwrap();
    assert_eq!(res.status(), 503, "an API change is refused");
    assert_eq!(res.headers()["retry-after"], "60");

    // Pulls and logins go on.
    run(server.docker().args(["rmi", &tag]));
    run(server.docker().args(["pull", &tag]));
    server.docker_login();

    // The mode holds across a restart, and the local CLI (a cluster's database is shared)
    // refuses too while telling what it is.
    assert!(server.terminate());
    let local = run_fail(semdock(&data).args(["feed", "create", "staging"]));
    assert!(local.contains("read-only (upgrade to 2.0)"), "{local}");
    let status = run(semdock(&data).args(["maintenance", "status"]));
    assert!(status.contains("read-only since"), "{status}");
    let server = Server::start_in(&data, &[]);
    let (status, retry, body) = put_manifest(
        &server.http(),
        &server.url(""),
        "prod/app",
        "1.0.1",
        &waiting,
    );
    assert_eq!(status, 503, "{body}");
    assert_eq!(retry.as_deref(), Some("60"));
    assert!(
        body.contains("UNAVAILABLE") && body.contains("read-only"),
        "{body}"
    );

    let out = run(&mut cli(&server, &["maintenance", "off"]));
    assert!(out.contains("writable"), "{out}");
    server.docker_login();
    let retag = format!("{}/prod/app:1.0.3", server.host());
    run(server.docker().args(["tag", &tag, &retag]));
    run(server.docker().args(["push", &retag]));
    let mut res = server
        .http()
        .get(&server.url("/api/v1/audit?kind=read-only-off"))
        .call()
        .unwrap();
    let audit = res.body_mut().read_to_string().unwrap();
    assert!(audit.contains("read-only mode off"), "{audit}");
}

#[test]
fn read_only_mode_holds_on_every_node_and_on_one_restarted_during_it() {
    let mut cluster = Cluster::start(3);
    let admin = common::http_as(Some(cluster.admin()));
    let bases: Vec<String> = cluster.nodes.iter().map(|n| n.url("")).collect();
    let first = prepare(&admin, &bases[0], "prod/app", "1.0.0");
    let (status, _, body) = put_manifest(&admin, &bases[0], "prod/app", "1.0.0", &first);
    assert_eq!(status, 201, "{body}");
    let waiting = prepare(&admin, &bases[0], "prod/app", "1.0.1");

    let res = admin
        .put(&format!("{}/api/v1/maintenance", bases[0]))
        .header("Content-Type", "application/json")
        .send(r#"{"read_only": true, "reason": "moving the database"}"#)
        .unwrap();
    assert_eq!(res.status(), 200);
    // Every node refuses at once: each remembers the mode only while nothing was written.
    for base in &bases {
        let (status, retry, body) = put_manifest(&admin, base, "prod/app", "1.0.1", &waiting);
        assert_eq!(status, 503, "{base}: {body}");
        assert_eq!(retry.as_deref(), Some("60"));
        assert!(body.contains("moving the database"), "{body}");
        let res = admin
            .get(&format!("{base}/v2/prod/app/manifests/1.0.0"))
            .header("Accept", common::OCI_MANIFEST)
            .call()
            .unwrap();
        assert_eq!(res.status(), 200, "{base}: pulls go on");
    }
    // A node restarted during maintenance comes back read-only.
    assert!(cluster.nodes[2].terminate());
    cluster.nodes[2] = cluster.start_node(2);
    let restarted = cluster.nodes[2].url("");
    let (status, _, body) = put_manifest(&admin, &restarted, "prod/app", "1.0.1", &waiting);
    assert_eq!(status, 503, "{body}");
    assert_eq!(start_upload(&admin, &restarted, "prod/app"), 503);

    let res = admin
        .put(&format!("{}/api/v1/maintenance", bases[1]))
        .header("Content-Type", "application/json")
        .send(r#"{"read_only": false}"#)
        .unwrap();
    assert_eq!(res.status(), 200);
    let (status, _, body) = put_manifest(&admin, &restarted, "prod/app", "1.0.1", &waiting);
    assert_eq!(status, 201, "{body}");
}
