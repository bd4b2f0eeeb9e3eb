//! Workload identity federation with a real OpenID Connect issuer (the `oidc-provider` the
//! suite runs, its discovery document and JWKS) handing out tokens with the claims GitHub
//! Actions and Kubernetes put in theirs: docker logs in as `oidc` with one and pushes as the
//! robot a rule maps it to; every wrong token is refused with its reason and audited; a
//! rotated signing key is picked up; on both storage engines.

use crate::common;

use std::process::Command;

use common::cluster::Cluster;
use common::oidc::Provider;
use common::{Server, basic, http_as, run};

const AUDIENCE: &str = "https://registry.example";

fn github_claims(reference: &str) -> serde_json::Value {
    serde_json::json!({
        "sub": format!("repo:acme/web:ref:{reference}"),
        "repository": "acme/web",
        "repository_owner": "acme",
        "ref": reference,
        "environment": "release",
        "workflow": "release",
        "job_workflow_ref": "acme/web/.github/workflows/release.yml@refs/tags/v5.2.0",
        "run_id": "4242",
        "event_name": "push",
    })
}

fn kubernetes_claims(namespace: &str) -> serde_json::Value {
    serde_json::json!({
        "sub": format!("system:serviceaccount:{namespace}:builder"),
        "kubernetes.io": {
            "namespace": namespace,
            "serviceaccount": {"name": "builder", "uid": "0b5c1e0e-6f6e-4a57-9d59-5f8f0b3c9e11"},
        },
    })
}

fn post(agent: &ureq::Agent, url: &str, body: &serde_json::Value) -> (u16, String) {
    let mut res = agent
        .post(url)
        .header("Content-Type", "application/json")
        .send(body.to_string())
        .unwrap();
    (
        res.status().as_u16(),
        res.body_mut().read_to_string().unwrap_or_default(),
    )
}

/// `GET /v2/` with `oidc:TOKEN`: the status and the error's sentence.
fn knock(server: &Server, token: &str) -> (u16, String) {
    let mut res = http_as(Some(basic("oidc", token)))
        .get(&server.url("/v2/"))
        .call()
        .unwrap();
    (
        res.status().as_u16(),
        res.body_mut().read_to_string().unwrap_or_default(),
    )
}

/// Two robots, and the rules that map GitHub's release tags and a cluster's namespace to
/// them, made through `base` as its administrator.
fn trust(server: &Server, issuer: &str) {
    let admin = server.http();
    let base = server.url("");
    let (status, body) = post(
        &admin,
        &format!("{base}/api/v1/feeds"),
        &serde_json::json!({"name": "prod"}),
    );
    assert!(status == 201 || status == 409, "{body}");
    for (name, role) in [("web-release", "push"), ("cluster", "pull")] {
        let (status, body) = post(
            &admin,
            &format!("{base}/api/v1/robots"),
            &serde_json::json!({"name": name, "feed": "prod", "roles": {"prod": role}}),
        );
        assert_eq!(status, 201, "{body}");
    }
    // A rule without a claim would let every repository on the issuer in: refused.
    let (status, body) = post(
        &admin,
        &format!("{base}/api/v1/federation"),
        &serde_json::json!({"issuer": issuer, "audience": AUDIENCE, "claims": {}, "robot": "robot$prod+web-release"}),
    );
    assert_eq!(status, 400, "{body}");
    let (status, body) = post(
        &admin,
        &format!("{base}/api/v1/federation"),
        &serde_json::json!({
            "issuer": issuer, "audience": AUDIENCE, "robot": "robot$prod+web-release",
            "claims": {"repository": "acme/web", "ref": "refs/tags/v*", "environment": "release"},
        }),
    );
    assert_eq!(status, 201, "{body}");
    let (status, body) = post(
        &admin,
        &format!("{base}/api/v1/federation"),
        &serde_json::json!({
            "issuer": issuer, "audience": AUDIENCE, "robot": "robot$prod+cluster",
            "claims": {"kubernetes.io/namespace": "ci", "sub": "system:serviceaccount:ci:*"},
        }),
    );
    assert_eq!(status, 201, "{body}");
}

fn federated_story(server: &Server, provider: &Provider) {
    trust(server, &provider.issuer);
    // A release job logs in with its token and pushes as the robot.
    let token = provider.workload_token(AUDIENCE, &github_claims("refs/tags/v5.2.0"), 300);
    let out = server.docker_login_as(&server.host(), "oidc", &token);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tag = format!("{}/prod/web:5.2.0", server.host());
    let ctx = common::image_context(1, "federated");
    run(server
        .docker()
        .args(["build", "--no-cache", "-q", "-t", &tag])
        .arg(ctx.path()));
    run(server.docker().args(["push", &tag]));
    run(server.docker().args(["rmi", &tag]));
    run(server.docker().args(["pull", &tag]));
    let mut res = server
        .http()
        .get(&server.url("/api/v1/audit?kind=added"))
        .call()
        .unwrap();
    let audit = res.body_mut().read_to_string().unwrap();
    assert!(
        audit.contains(r#""actor":"robot$prod+web-release""#),
        "{audit}"
    );

    // The token endpoint takes it too (what docker asks after login).
    let mut res = http_as(Some(basic("oidc", &token)))
        .get(&server.url("/v2/_auth?scope=repository:prod/web:pull,push"))
        .call()
        .unwrap();
    assert_eq!(res.status(), 200);
    let granted: serde_json::Value =
        serde_json::from_str(&res.body_mut().read_to_string().unwrap()).unwrap();
    assert!(granted["token"].as_str().is_some_and(|t| !t.is_empty()));

    // A cluster's service account pulls, and may not push.
    let k8s = provider.workload_token(AUDIENCE, &kubernetes_claims("ci"), 300);
    let puller = http_as(Some(basic("oidc", &k8s)));
    let res = puller
        .get(&server.url("/v2/prod/web/manifests/5.2.0"))
        .header("Accept", "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json")
        .call()
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = puller
        .post(&server.url("/v2/prod/web/blobs/uploads/"))
        .send_empty()
        .unwrap();
    assert!(
        matches!(res.status().as_u16(), 401 | 403),
        "{}",
        res.status()
    );

    // Each wrong token is refused with its reason.
    let refusals = [
        (
            provider.workload_token(
                "https://elsewhere.example",
                &github_claims("refs/tags/v5.2.0"),
                300,
            ),
            "not for audience",
        ),
        (
            provider.workload_token(AUDIENCE, &github_claims("refs/tags/v5.2.0"), -120),
            "expired",
        ),
        (
            provider.workload_token(AUDIENCE, &github_claims("refs/heads/main"), 300),
            "ref",
        ),
        (
            provider.workload_token(AUDIENCE, &kubernetes_claims("default"), 300),
            "kubernetes.io/namespace",
        ),
        ("not-a-jwt".to_owned(), "ID token"),
    ];
    for (token, why) in &refusals {
        let (status, body) = knock(server, token);
        assert_eq!(status, 401, "{why}: {body}");
        assert!(body.contains(why), "{why}: {body}");
    }
    let mut res = server
        .http()
        .get(&server.url("/api/v1/audit?kind=login-failed"))
        .call()
        .unwrap();
    let audit = res.body_mut().read_to_string().unwrap();
    assert!(audit.contains("workload identity token refused"), "{audit}");
    assert!(audit.contains("not for audience"), "{audit}");

    // The issuer rotates its key: new tokens are signed by a key semdock has not seen, and
    // its JWKS is fetched again.
    provider.rotate();
    std::thread::sleep(std::time::Duration::from_secs(6));
    let fresh = provider.workload_token(AUDIENCE, &github_claims("refs/tags/v5.2.1"), 300);
    let (status, body) = knock(server, &fresh);
    assert_eq!(status, 200, "{body}");
}

#[test]
fn ci_jobs_and_clusters_log_in_with_their_id_tokens_and_act_as_robots() {
    let provider = Provider::start();
    let server = Server::start();
    federated_story(&server, &provider);

    // Another issuer's tokens are not trusted, whatever they claim.
    let stranger = Provider::start();
    let token = stranger.workload_token(AUDIENCE, &github_claims("refs/tags/v5.2.0"), 300);
    let (status, body) = knock(&server, &token);
    assert_eq!(status, 401);
    assert!(body.contains("are not trusted here"), "{body}");
}

#[test]
fn federation_works_the_same_on_postgresql_and_s3() {
    let provider = Provider::start();
    let cluster = Cluster::start(1);
    federated_story(&cluster.nodes[0], &provider);
}

#[test]
fn the_cli_keeps_the_rules() {
    let provider = Provider::start();
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
    let (status, _) = post(
        &server.http(),
        &server.url("/api/v1/feeds"),
        &serde_json::json!({"name": "prod"}),
    );
    assert!(status == 201 || status == 409);
    cli(&[
        "robot",
        "create",
        "ci",
        "--feed",
        "prod",
        "--role",
        "prod=push",
    ]);
    let out = cli(&[
        "federation",
        "add",
        "--issuer",
        &provider.issuer,
        "--audience",
        AUDIENCE,
        "--claim",
        "repository=acme/*",
        "--robot",
        "robot$prod+ci",
    ]);
    let id = out
        .split_whitespace()
        .nth(1)
        .unwrap()
        .trim_end_matches(':')
        .to_owned();
    let listed = cli(&["federation", "list"]);
    assert!(
        listed.contains(&id) && listed.contains("repository=acme/*"),
        "{listed}"
    );
    let token = provider.workload_token(AUDIENCE, &github_claims("refs/tags/v1.0.0"), 300);
    assert_eq!(knock(&server, &token).0, 200);
    cli(&["federation", "remove", &id]);
    let other = provider.workload_token(AUDIENCE, &github_claims("refs/tags/v1.0.1"), 300);
    let (status, body) = knock(&server, &other);
    assert_eq!(status, 401, "{body}");
}
