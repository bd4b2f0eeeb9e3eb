//! Three `semdock serve` nodes over one PostgreSQL database and one S3 bucket (Garage),
//! behind a real HAProxy (round robin, no sticky sessions), used by docker, podman and skopeo
//! as a user would: through the load balancer, then against each node directly.

mod common;

use std::fmt::Write as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Server, basic, run};

/// HAProxy in front of the nodes, stopped by its PID when dropped.
struct LoadBalancer {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl LoadBalancer {
    fn start(nodes: &[&Server]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        // The shipped configuration, with this test's address and nodes.
        let mut config = String::new();
        for line in include_str!("../packaging/haproxy.cfg").lines() {
            if line.starts_with("  bind ") {
                writeln!(config, "  bind 127.0.0.1:{port}").unwrap();
            } else if !line.starts_with("  server ") {
                writeln!(config, "{line}").unwrap();
            }
        }
        for (i, node) in nodes.iter().enumerate() {
            writeln!(
                config,
                "  server node{i} {} check inter 300ms fall 2 rise 1",
                node.addr
            )
            .unwrap();
        }
        let path = dir.path().join("haproxy.cfg");
        std::fs::write(&path, config).unwrap();
        let check = Command::new("haproxy")
            .arg("-c")
            .arg("-f")
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            check.status.success(),
            "haproxy refuses the configuration: {}",
            String::from_utf8_lossy(&check.stderr)
        );
        // -db: in the foreground, so that the child's PID is HAProxy's own.
        let child = Command::new("haproxy")
            .arg("-db")
            .arg("-f")
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("haproxy starts");
        let lb = Self {
            child,
            port,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !common::http()
            .get(&lb.url("/readyz"))
            .call()
            .is_ok_and(|r| r.status() == 200)
        {
            assert!(
                Instant::now() < deadline,
                "the load balancer never answered"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        lb
    }

    fn host(&self) -> String {
        format!("localhost:{}", self.port)
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for LoadBalancer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Nodes over one database and one bucket prefix, each with a data directory of its own.
struct Cluster {
    nodes: Vec<Server>,
    env: Vec<(String, String)>,
    dir: tempfile::TempDir,
}

impl Cluster {
    fn start(n: usize) -> Self {
        let s3 = common::s3_location();
        let env = vec![
            ("SEMDOCK_STORAGE__METADATA".into(), "postgres".into()),
            (
                "SEMDOCK_STORAGE__POSTGRES__URL".into(),
                common::postgres_database(),
            ),
            ("SEMDOCK_STORAGE__BLOBS".into(), "s3".into()),
            (
                "SEMDOCK_STORAGE__S3__ENDPOINT".into(),
                s3.endpoint.clone().unwrap(),
            ),
            ("SEMDOCK_STORAGE__S3__BUCKET".into(), s3.bucket.clone()),
            ("SEMDOCK_STORAGE__S3__REGION".into(), s3.region.clone()),
            ("SEMDOCK_STORAGE__S3__PREFIX".into(), s3.prefix.clone()),
            (
                "SEMDOCK_STORAGE__S3__ACCESS_KEY_ID".into(),
                s3.access_key_id.clone(),
            ),
            (
                "SEMDOCK_STORAGE__S3__SECRET_ACCESS_KEY".into(),
                s3.secret_access_key.clone(),
            ),
        ];
        let mut cluster = Self {
            nodes: Vec::new(),
            env,
            dir: tempfile::tempdir().unwrap(),
        };
        for i in 0..n {
            let node = cluster.start_node(i);
            cluster.nodes.push(node);
        }
        cluster
    }

    /// Starts node `i` (again, after a crash: same data directory).
    fn start_node(&self, i: usize) -> Server {
        let env: Vec<(&str, &str)> = self
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let mut node = Server::start_in(&self.dir.path().join(format!("node{i}")), &env);
        // The first node created the administrator; the others share it through the database.
        if let Some(first) = self.nodes.first() {
            node.admin_password.clone_from(&first.admin_password);
        }
        assert!(!node.admin_password.is_empty());
        node
    }

    /// Switches versioning on for `feed`, through the first node.
    fn versioned(&self, feed: &str) {
        let res = common::http_as(Some(self.admin()))
            .patch(&self.nodes[0].url(&format!("/api/v1/feeds/{feed}")))
            .header("Content-Type", "application/json")
            .send(r#"{"versioning": true}"#)
            .unwrap();
        assert_eq!(res.status(), 200);
    }

    fn admin(&self) -> String {
        basic("admin", &self.nodes[0].admin_password)
    }
}

fn digest_of_manifest(agent: &ureq::Agent, base: &str, reference: &str) -> String {
    let res = agent
        .get(&format!("{base}/v2/prod/app/manifests/{reference}"))
        .header(
            "Accept",
            "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json",
        )
        .call()
        .unwrap();
    assert_eq!(res.status(), 200, "{reference} at {base}");
    res.headers()["docker-content-digest"]
        .to_str()
        .unwrap()
        .to_owned()
}

fn build_image(server: &Server, tag: &str, ctx: &Path) {
    run(server
        .docker()
        .args(["build", "--no-cache", "-q", "-t", tag])
        .arg(ctx)
        .env("DOCKER_BUILDKIT", "0"));
}

/// docker logs in, pushes and pulls through the load balancer; every node then serves the
/// image by the same digest; skopeo copies it and podman pulls the copy, all through the
/// load balancer.
#[test]
fn three_nodes_behind_haproxy_serve_docker_podman_and_skopeo() {
    let cluster = Cluster::start(3);
    cluster.versioned("prod");
    let first = &cluster.nodes[0];
    let lb = LoadBalancer::start(&cluster.nodes.iter().collect::<Vec<_>>());
    let out = first.docker_login_as(&lb.host(), "admin", &first.admin_password);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tag = format!("{}/prod/app:1.0.0", lb.host());
    let ctx = common::image_context_sized(3, 3 << 20, "cluster");
    build_image(first, &tag, ctx.path());
    run(first.docker().args(["push", &tag]));

    let admin = common::http_as(Some(cluster.admin()));
    let through_lb = digest_of_manifest(&admin, &lb.url(""), "1.0.0");
    for node in &cluster.nodes {
        assert_eq!(
            digest_of_manifest(&admin, &node.url(""), "1.0.0"),
            through_lb,
            "node {}",
            node.addr
        );
        assert_eq!(
            digest_of_manifest(&admin, &node.url(""), "latest"),
            through_lb
        );
    }
    run(first.docker().args(["rmi", &tag]));
    run(first.docker().args(["pull", &tag]));

    let creds = first.creds();
    let copy = format!("docker://{}/prod/copy:1.0.0", lb.host());
    run(Command::new("skopeo").args([
        "copy",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        "--src-creds",
        &creds,
        "--dest-creds",
        &creds,
        &format!("docker://{tag}"),
        &copy,
    ]));
    let podman_root = tempfile::tempdir().unwrap();
    run(Command::new("podman")
        .args(["--root"])
        .arg(podman_root.path().join("root"))
        .args(["--runroot"])
        .arg(podman_root.path().join("run"))
        .args([
            "pull",
            "--tls-verify=false",
            "--creds",
            &creds,
            &format!("{}/prod/copy:1.0.0", lb.host()),
        ]));
    run(first.docker().args(["rmi", &tag]));
}

/// 32 pushes of one version with different content, at once through the load balancer:
/// exactly one wins, and every node then serves the winner under the version and `latest`.
#[test]
fn racing_pushes_of_one_version_through_the_load_balancer_have_one_winner() {
    let cluster = Cluster::start(3);
    let lb = LoadBalancer::start(&cluster.nodes.iter().collect::<Vec<_>>());
    let admin = common::http_as(Some(cluster.admin()));
    cluster.versioned("prod");
    let base = lb.url("");
    let pushes: Vec<_> = (0..32)
        .map(|i| {
            let (admin, base) = (admin.clone(), base.clone());
            std::thread::spawn(move || {
                let layer = format!("racing layer {i}").into_bytes();
                let manifest = common::push_image_over_http(&admin, &base, "prod/app", &layer);
                let res = admin
                    .put(&format!("{base}/v2/prod/app/manifests/3.0.0"))
                    .header("Content-Type", common::OCI_MANIFEST)
                    .send(&manifest.1)
                    .unwrap();
                (res.status().as_u16(), manifest.0)
            })
        })
        .collect();
    let results: Vec<(u16, String)> = pushes.into_iter().map(|t| t.join().unwrap()).collect();
    let winners: Vec<&String> = results
        .iter()
        .filter(|(s, _)| *s == 201)
        .map(|(_, d)| d)
        .collect();
    assert_eq!(
        winners.len(),
        1,
        "{:?}",
        results.iter().map(|r| r.0).collect::<Vec<_>>()
    );
    assert!(results.iter().all(|(s, _)| [201, 400, 409].contains(s)));
    for node in &cluster.nodes {
        for tag in ["3.0.0", "latest", "3", "3.0"] {
            assert_eq!(
                &digest_of_manifest(&admin, &node.url(""), tag),
                winners[0],
                "{tag} at {}",
                node.addr
            );
        }
    }
}

/// A chunked upload whose POST, each PATCH and the PUT go to a different node, then a node
/// killed with SIGKILL during a docker push through the load balancer: the push, retried,
/// completes on the nodes left, and the killed node, restarted, serves the image.
#[test]
fn uploads_move_between_nodes_and_survive_a_killed_node() {
    let mut cluster = Cluster::start(3);
    let admin = common::http_as(Some(cluster.admin()));
    let bytes: Vec<u8> = (0..(9u32 << 20)).map(|i| (i % 251) as u8).collect();
    let digest = semdock::model::Digest::of(&bytes);
    let node_url = |i: usize, path: &str| cluster.nodes[i % 3].url(path);
    let res = admin
        .post(&node_url(0, "/v2/prod/app/blobs/uploads/"))
        .send_empty()
        .unwrap();
    assert_eq!(res.status(), 202);
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    let cuts = [0usize, 1 << 20, (8 << 20) + 5, bytes.len() - 3];
    for (i, w) in cuts.windows(2).enumerate() {
        let res = admin
            .patch(&node_url(i + 1, &location))
            .header("Content-Type", "application/octet-stream")
            .header("Content-Range", &format!("{}-{}", w[0], w[1] - 1))
            .send(&bytes[w[0]..w[1]])
            .unwrap();
        assert_eq!(res.status(), 202, "PATCH {i}");
        assert_eq!(
            res.headers()["range"].to_str().unwrap(),
            format!("0-{}", w[1] - 1)
        );
    }
    let last = cuts[cuts.len() - 1];
    let res = admin
        .put(&node_url(1, &format!("{location}?digest={digest}")))
        .header("Content-Type", "application/octet-stream")
        .send(&bytes[last..])
        .unwrap();
    assert_eq!(res.status(), 201);
    for i in 0..3 {
        let res = admin
            .get(&node_url(i, &format!("/v2/prod/app/blobs/{digest}")))
            .call()
            .unwrap();
        assert_eq!(res.status(), 200);
        let body = res.into_body().read_to_vec().unwrap();
        assert!(body == bytes, "node {i} serves other bytes");
    }

    let lb = LoadBalancer::start(&cluster.nodes.iter().collect::<Vec<_>>());
    let out =
        cluster.nodes[0].docker_login_as(&lb.host(), "admin", &cluster.nodes[0].admin_password);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tag = format!("{}/prod/app:2.0.0", lb.host());
    let ctx = common::image_context_sized(4, 8 << 20, "killed-node");
    build_image(&cluster.nodes[0], &tag, ctx.path());
    let mut push = cluster.nodes[0]
        .docker()
        .args(["push", &tag])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(700));
    cluster.nodes[2].kill9();
    let _ = push.wait();
    // docker retries each layer a few times itself; a user whose push still failed runs it
    // again, and it completes on the nodes left.
    run(cluster.nodes[0].docker().args(["push", &tag]));
    let restarted = cluster.start_node(2);
    cluster.nodes[2] = restarted;
    let at_lb = digest_of_manifest(&admin, &lb.url(""), "2.0.0");
    assert_eq!(
        digest_of_manifest(&admin, &cluster.nodes[2].url(""), "2.0.0"),
        at_lb
    );
    run(cluster.nodes[0].docker().args(["rmi", &tag]));
    run(cluster.nodes[0].docker().args(["pull", &tag]));
    run(cluster.nodes[0].docker().args(["rmi", &tag]));
}
