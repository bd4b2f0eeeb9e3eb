//! Robot accounts with the real binary and docker, on both storage engines: a feed's
//! administrator makes a robot for her feed, CI pushes with it, and it outlives the person;
//! its reach ends at its feed; rotation and disabling void its secret and tokens at once.

use crate::common;

use std::process::Command;

use common::cluster::Cluster;
use common::{Server, basic, http_as, run};

fn json(res: &mut ureq::http::Response<ureq::Body>) -> serde_json::Value {
    serde_json::from_str(&res.body_mut().read_to_string().unwrap()).unwrap_or_default()
}

fn send(
    agent: &ureq::Agent,
    method: &str,
    url: &str,
    body: &serde_json::Value,
) -> (u16, serde_json::Value) {
    let req = ureq::http::Request::builder()
        .method(method)
        .uri(url)
        .header("Content-Type", "application/json")
        .body(body.to_string())
        .unwrap();
    let mut res = agent.run(req).unwrap();
    (res.status().as_u16(), json(&mut res))
}

/// The status of a catalog request with `agent`'s credentials.
fn catalog(server: &Server, agent: &ureq::Agent) -> u16 {
    agent
        .get(&server.url("/v2/_catalog"))
        .call()
        .unwrap()
        .status()
        .as_u16()
}

/// A registry token for `scope` with Basic credentials.
fn token(server: &Server, authorization: &str, scope: &str) -> String {
    let mut res = http_as(Some(authorization.to_owned()))
        .get(&server.url(&format!("/v2/_auth?scope={scope}")))
        .call()
        .unwrap();
    assert_eq!(res.status(), 200);
    json(&mut res)["token"].as_str().unwrap().to_owned()
}

/// The whole story on `server` (its administrator's password known).
fn robot_story(server: &Server) {
    let admin = server.http();
    let base = server.url("");
    for feed in ["prod", "staging"] {
        let (status, body) = send(
            &admin,
            "POST",
            &format!("{base}/api/v1/feeds"),
            &serde_json::json!({"name": feed}),
        );
        // The test server may have made it already.
        assert!(status == 201 || status == 409, "{body}");
    }
    let (status, body) = send(
        &admin,
        "POST",
        &format!("{base}/api/v1/users"),
        &serde_json::json!({"name": "alice", "password": "alice-password-1"}),
    );
    assert_eq!(status, 201, "{body}");
    let (status, _) = send(
        &admin,
        "PUT",
        &format!("{base}/api/v1/users/alice/roles/prod"),
        &serde_json::json!({"role": "admin"}),
    );
    assert!(status == 200 || status == 204, "{status}");
    let alice = http_as(Some(basic("alice", "alice-password-1")));

    // Her reach ends at her feed: no registry robots, no other feed's, no roles elsewhere.
    let (status, _) = send(
        &alice,
        "POST",
        &format!("{base}/api/v1/robots"),
        &serde_json::json!({"name": "ci", "roles": {"prod": "push"}}),
    );
    assert_eq!(status, 403, "a registry robot needs an administrator");
    let (status, _) = send(
        &alice,
        "POST",
        &format!("{base}/api/v1/robots"),
        &serde_json::json!({"name": "ci", "feed": "staging"}),
    );
    assert_eq!(status, 403);
    let (status, body) = send(
        &alice,
        "POST",
        &format!("{base}/api/v1/robots"),
        &serde_json::json!({"name": "ci", "feed": "prod", "roles": {"staging": "push"}}),
    );
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("that feed only"),
        "{body}"
    );

    let secret = create_and_push(server, &alice);
    outlives_its_maker(server, &admin);
    dies_when_rotated_or_disabled(server, &admin, &secret);
}

/// Alice makes robot `ci` of `prod`; CI pushes with it, and it reaches nothing else.
fn create_and_push(server: &Server, alice: &ureq::Agent) -> String {
    let base = server.url("");
    let admin = server.http();
    let (status, made) = send(
        alice,
        "POST",
        &format!("{base}/api/v1/robots"),
        &serde_json::json!({"name": "ci", "feed": "prod", "description": "release pipeline", "roles": {"prod": "push"}}),
    );
    assert_eq!(status, 201, "{made}");
    assert_eq!(made["name"], "robot$prod+ci");
    let secret = made["secret"].as_str().unwrap().to_owned();

    // CI logs in and pushes with it, as docker does.
    let out = server.docker_login_as(&server.host(), "robot$prod+ci", &secret);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tag = format!("{}/prod/app:1.0.0", server.host());
    let ctx = common::image_context(1, "robot");
    run(server
        .docker()
        .args(["build", "--no-cache", "-q", "-t", &tag])
        .arg(ctx.path()));
    run(server.docker().args(["push", &tag]));
    // Nowhere else, and never the UI or the account's keys.
    let robot = http_as(Some(basic("robot$prod+ci", &secret)));
    let res = robot
        .post(&server.url("/v2/staging/app/blobs/uploads/"))
        .send_empty()
        .unwrap();
    assert!(
        matches!(res.status().as_u16(), 401 | 403),
        "{}",
        res.status()
    );
    let (status, _) = send(
        &robot,
        "POST",
        &format!("{base}/api/v1/keys"),
        &serde_json::json!({"name": "escape"}),
    );
    assert_eq!(status, 403, "a robot mints no keys");
    let (status, _) = send(
        &robot,
        "POST",
        &format!("{base}/api/v1/robots"),
        &serde_json::json!({"name": "twin", "feed": "prod"}),
    );
    assert_eq!(status, 403, "a robot makes no robots");
    let login = admin_less_login(server, "robot$prod+ci", &secret);
    assert_eq!(login, 401, "robots cannot log in to the UI");

    // The audit log names the robot as the actor.
    let mut res = admin
        .get(&server.url("/api/v1/audit?kind=added"))
        .call()
        .unwrap();
    let audit = res.body_mut().read_to_string().unwrap();
    assert!(audit.contains(r#""actor":"robot$prod+ci""#), "{audit}");

    secret
}

/// Disabling the person who made it leaves it alone.
fn outlives_its_maker(server: &Server, admin: &ureq::Agent) {
    let base = server.url("");
    let tag = format!("{}/prod/app:1.0.0", server.host());
    let (status, _) = send(
        admin,
        "PATCH",
        &format!("{base}/api/v1/users/alice"),
        &serde_json::json!({"disabled": true}),
    );
    assert!(status == 200 || status == 204, "{status}");
    let retag = format!("{}/prod/app:1.0.1", server.host());
    run(server.docker().args(["tag", &tag, &retag]));
    run(server.docker().args(["push", &retag]));

    // Listed with when and from where it was last used.
    let mut res = admin
        .get(&server.url("/api/v1/robots?feed=prod"))
        .call()
        .unwrap();
    let listed = json(&mut res);
    assert_eq!(listed[0]["name"], "robot$prod+ci", "{listed}");
    assert_eq!(listed[0]["roles"]["prod"], "push");
    assert!(listed[0]["last_used"].as_u64().is_some(), "{listed}");
    assert_eq!(listed[0]["last_address"], "127.0.0.1");
}

/// Rotation: the old secret and a token it got stop at once; disabled, then deleted.
fn dies_when_rotated_or_disabled(server: &Server, admin: &ureq::Agent, secret: &str) {
    let base = server.url("");
    let robot_auth = basic("robot$prod+ci", secret);
    let old_token = token(server, &robot_auth, "repository:prod/app:pull");
    let pull_with = |bearer: &str| {
        http_as(Some(format!("Bearer {bearer}")))
            .get(&server.url("/v2/prod/app/manifests/1.0.0"))
            .header("Accept", common::OCI_MANIFEST)
            .call()
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(pull_with(&old_token), 200);
    let encoded = "robot%24prod%2Bci";
    let (status, rotated) = send(
        admin,
        "POST",
        &format!("{base}/api/v1/robots/{encoded}/rotate"),
        &serde_json::json!({}),
    );
    assert_eq!(status, 200, "{rotated}");
    let new_secret = rotated["secret"].as_str().unwrap().to_owned();
    assert_ne!(new_secret, secret);
    assert_eq!(
        pull_with(&old_token),
        401,
        "the old token died with the old secret"
    );
    let out = server.docker_login_as(&server.host(), "robot$prod+ci", secret);
    assert!(!out.status.success(), "the old secret is refused");
    let out = server.docker_login_as(&server.host(), "robot$prod+ci", &new_secret);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Disabled: refused at once; deleted: gone.
    let (status, _) = send(
        admin,
        "PATCH",
        &format!("{base}/api/v1/robots/{encoded}"),
        &serde_json::json!({"disabled": true}),
    );
    assert_eq!(status, 204);
    let out = server.docker_login_as(&server.host(), "robot$prod+ci", &new_secret);
    assert!(!out.status.success(), "a disabled robot is refused");
    let (status, _) = send(
        admin,
        "DELETE",
        &format!("{base}/api/v1/robots/{encoded}"),
        &serde_json::json!({}),
    );
    assert_eq!(status, 204);
    let mut res = admin.get(&server.url("/api/v1/robots")).call().unwrap();
    assert_eq!(json(&mut res), serde_json::json!([]));
    let mut res = admin
        .get(&server.url("/api/v1/audit?kind=robot-changed"))
        .call()
        .unwrap();
    let audit = res.body_mut().read_to_string().unwrap();
    for said in [
        "robot robot$prod+ci created: [prod=push]",
        "secret rotated",
        "disabled",
        "deleted",
    ] {
        assert!(audit.contains(said), "{said}: {audit}");
    }
}

/// The UI login form's answer for `user`.
fn admin_less_login(server: &Server, user: &str, secret: &str) -> u16 {
    let agent = common::http();
    let mut page = agent.get(&server.url("/ui/login")).call().unwrap();
    let cookie = page
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|c| c.to_str().unwrap().split(';').next().unwrap().to_owned())
        .collect::<Vec<_>>()
        .join("; ");
    let csrf = common::csrf_of(&page.body_mut().read_to_string().unwrap());
    agent
        .post(&server.url("/ui/login"))
        .header("Cookie", &cookie)
        .content_type("application/x-www-form-urlencoded")
        .send(common::form(&[
            ("user", user),
            ("password", secret),
            ("csrf", &csrf),
            ("next", "/ui/"),
        ]))
        .unwrap()
        .status()
        .as_u16()
}

#[test]
fn a_feed_robot_pushes_with_docker_outlives_its_maker_and_dies_when_rotated() {
    let server = Server::start();
    robot_story(&server);
}

#[test]
fn robots_work_the_same_on_postgresql_and_s3() {
    let cluster = Cluster::start(1);
    robot_story(&cluster.nodes[0]);
}

#[test]
fn the_cli_manages_robots_of_the_registry() {
    let server = Server::start();
    let key = server.admin_key("ops");
    let dir = tempfile::tempdir().unwrap();
    let cli = |args: &[&str]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_semdock"));
        cmd.args(args)
            .args(["--server", &server.url("")])
            .env("SEMDOCK_API_KEY", &key)
            .env("SEMDOCK_DATA_DIR", dir.path());
        run(&mut cmd)
    };
    let (status, _) = send(
        &server.http(),
        "POST",
        &server.url("/api/v1/feeds"),
        &serde_json::json!({"name": "prod"}),
    );
    assert!(status == 201 || status == 409, "{status}");
    let out = cli(&[
        "robot",
        "create",
        "deploy",
        "--role",
        "prod=pull",
        "--description",
        "k8s pulls",
    ]);
    assert!(out.contains("created robot robot$deploy"), "{out}");
    let secret = out.lines().last().unwrap().trim().to_owned();
    assert!(secret.starts_with("sdr_"), "{out}");
    let puller = http_as(Some(basic("robot$deploy", &secret)));
    assert_eq!(catalog(&server, &puller), 200);
    let listed = cli(&["robot", "list"]);
    assert!(
        listed.contains("robot$deploy") && listed.contains("prod=pull"),
        "{listed}"
    );
    assert!(cli(&["robot", "disable", "robot$deploy"]).contains("disabled robot robot$deploy"));
    assert_eq!(catalog(&server, &puller), 401);
    cli(&["robot", "enable", "robot$deploy"]);
    let rotated = cli(&["robot", "rotate", "robot$deploy"]);
    let fresh = rotated.lines().last().unwrap().trim().to_owned();
    assert_eq!(catalog(&server, &puller), 401);
    let puller = http_as(Some(basic("robot$deploy", &fresh)));
    assert_eq!(catalog(&server, &puller), 200);
    cli(&["robot", "delete", "robot$deploy"]);
    assert!(!cli(&["robot", "list"]).contains("robot$deploy"));
}
