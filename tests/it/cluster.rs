//! Three `semdock serve` nodes over one PostgreSQL database and one S3 bucket (Garage),
//! behind a real HAProxy (round robin, no sticky sessions), used by docker, podman and skopeo
//! as a user would: through the load balancer, then against each node directly.

use crate::common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::cluster::{Cluster, LoadBalancer};
use common::{Server, run};

fn digest_of_manifest(agent: &ureq::Agent, base: &str, reference: &str) -> String {
    digest_at(agent, base, "prod/app", reference)
}

/// The digest `repo:reference` names at `base`, by a HEAD as docker sends it.
fn digest_at(agent: &ureq::Agent, base: &str, repo: &str, reference: &str) -> String {
    let res = agent
        .head(&format!("{base}/v2/{repo}/manifests/{reference}"))
        .header(
            "Accept",
            "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json",
        )
        .call()
        .unwrap();
    assert_eq!(res.status(), 200, "{repo}:{reference} at {base}");
    res.headers()["docker-content-digest"]
        .to_str()
        .unwrap()
        .to_owned()
}

/// `docker login` as the administrator (`password`) to the load balancer, from `node`'s
/// client config.
fn login_through(lb: &LoadBalancer, node: &Server, password: &str) {
    let out = node.docker_login_as(&lb.host(), "admin", password);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `podman pull` of `image` with `creds`, into a storage of its own.
fn podman_pull(creds: &str, image: &str) {
    let root = tempfile::tempdir().unwrap();
    run(Command::new("podman")
        .args(["--root"])
        .arg(root.path().join("root"))
        .args(["--runroot"])
        .arg(root.path().join("run"))
        .args(["pull", "--tls-verify=false", "--creds", creds, image]));
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
    login_through(&lb, first, &first.admin_password);
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
    podman_pull(&creds, &format!("{}/prod/copy:1.0.0", lb.host()));
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
    login_through(&lb, &cluster.nodes[0], &cluster.nodes[0].admin_password);
    let tag = format!("{}/prod/app:2.0.0", lb.host());
    let ctx = common::image_context_sized(4, 8 << 20, "killed-node");
    build_image(&cluster.nodes[0], &tag, ctx.path());
    let mut push = cluster.nodes[0].push_in_background(&tag);
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

/// A PostgreSQL cluster and a Garage of this test's own (`scripts/postgres`,
/// `scripts/garage`), so that it can restart and stop them without disturbing other tests;
/// both stopped when dropped.
struct OwnStores {
    pg: tempfile::TempDir,
    s3: tempfile::TempDir,
    url: String,
    location: semdock::store::blobs::s3::S3Location,
}

fn script(name: &str) -> Command {
    Command::new(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("scripts")
            .join(name),
    )
}

impl OwnStores {
    fn start() -> Self {
        let pg = tempfile::tempdir().unwrap();
        let s3 = tempfile::tempdir().unwrap();
        let url = run(script("postgres").arg("start").arg(pg.path().join("c")))
            .trim()
            .to_owned();
        let exports = run(script("garage").arg("start").arg(s3.path().join("g")));
        let value = |name: &str| {
            exports
                .lines()
                .find_map(|l| l.strip_prefix(&format!("export {name}=")))
                .unwrap()
                .to_owned()
        };
        let location = semdock::store::blobs::s3::S3Location {
            endpoint: Some(value("TEST_S3_ENDPOINT")),
            bucket: value("TEST_S3_BUCKET"),
            region: value("TEST_S3_REGION"),
            path_style: true,
            access_key_id: value("TEST_S3_ACCESS_KEY_ID"),
            secret_access_key: value("TEST_S3_SECRET_ACCESS_KEY"),
            prefix: String::new(),
        };
        Self {
            pg,
            s3,
            url,
            location,
        }
    }

    fn postgres(&self, what: &str) {
        run(script("postgres").arg(what).arg(self.pg.path().join("c")));
    }

    fn garage(&self, what: &str) {
        run(script("garage").arg(what).arg(self.s3.path().join("g")));
    }
}

impl Drop for OwnStores {
    fn drop(&mut self) {
        let _ = script("postgres")
            .arg("stop")
            .arg(self.pg.path().join("c"))
            .status();
        let _ = script("garage")
            .arg("stop")
            .arg(self.s3.path().join("g"))
            .status();
    }
}

/// Polls `url` until it answers `status` (30 s at most).
fn wait_for(agent: &ureq::Agent, url: &str, status: u16) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got = agent.get(url).call().map(|r| r.status().as_u16());
        if got.as_ref().is_ok_and(|s| *s == status) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{url} answers {got:?}, not {status}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// PostgreSQL restarted during a docker push through the load balancer, then the object
/// store stopped and started: while a store is away the nodes answer 503 with the OCI error
/// JSON (never 500) and `/readyz` says which store; once it is back they serve again without
/// a restart, and the push, retried, completes and pulls from every node.
#[test]
fn the_stores_restarting_under_the_nodes_cost_503s_and_no_data() {
    let stores = OwnStores::start();
    let cluster = Cluster::start_on(2, &stores.url, &stores.location);
    let lb = LoadBalancer::start(&cluster.nodes.iter().collect::<Vec<_>>());
    let node = &cluster.nodes[0];
    login_through(&lb, node, &node.admin_password);
    let tag = format!("{}/prod/app:1.0.0", lb.host());
    let ctx = common::image_context_sized(4, 8 << 20, "stores-restart");
    build_image(node, &tag, ctx.path());
    let mut push = node.push_in_background(&tag);
    std::thread::sleep(Duration::from_millis(500));
    stores.postgres("restart");
    let _ = push.wait();
    // The pool replaces the cut connections: the retried push completes.
    run(node.docker().args(["push", &tag]));
    let admin = common::http_as(Some(cluster.admin()));
    let digest = digest_of_manifest(&admin, &lb.url(""), "1.0.0");
    for n in &cluster.nodes {
        assert_eq!(digest_of_manifest(&admin, &n.url(""), "1.0.0"), digest);
    }

    stores.garage("halt");
    let res = admin
        .get(&format!("{}/v2/prod/app/manifests/1.0.0", node.url("")))
        .header("Accept", common::OCI_MANIFEST)
        .call()
        .unwrap();
    let manifest: serde_json::Value =
        serde_json::from_str(&res.into_body().read_to_string().unwrap()).unwrap();
    let layer = manifest["layers"][0]["digest"].as_str().unwrap().to_owned();
    for n in &cluster.nodes {
        let mut res = admin
            .get(&n.url(&format!("/v2/prod/app/blobs/{layer}")))
            .call()
            .unwrap();
        assert_eq!(res.status(), 503, "a blob GET with the object store away");
        let body: serde_json::Value =
            serde_json::from_str(&res.body_mut().read_to_string().unwrap()).unwrap();
        assert_eq!(body["errors"][0]["code"], "UNAVAILABLE", "{body}");
        let mut ready = common::http().get(&n.url("/readyz")).call().unwrap();
        assert_eq!(ready.status(), 503);
        let text = ready.body_mut().read_to_string().unwrap();
        assert!(
            text.contains("object store") || text.contains("blob"),
            "{text}"
        );
    }
    stores.garage("resume");
    for n in &cluster.nodes {
        wait_for(&common::http(), &n.url("/readyz"), 200);
    }
    // HAProxy takes a node back at its next health check (every 300 ms here): until one is
    // back it answers 503 itself, so the pull waits for the balancer to see a ready node.
    wait_for(&common::http(), &lb.url("/readyz"), 200);
    run(node.docker().args(["rmi", &tag]));
    run(node.docker().args(["pull", &tag]));
    run(node.docker().args(["rmi", &tag]));
}

/// Every (repository:tag, digest) a registry serves, read through its tag lists.
fn tag_digests(agent: &ureq::Agent, base: &str, repos: &[&str]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for repo in repos {
        let res = agent
            .get(&format!("{base}/v2/{repo}/tags/list"))
            .call()
            .unwrap();
        let list: serde_json::Value =
            serde_json::from_str(&res.into_body().read_to_string().unwrap()).unwrap();
        for tag in list["tags"].as_array().unwrap() {
            let tag = tag.as_str().unwrap();
            out.push((format!("{repo}:{tag}"), digest_at(agent, base, repo, tag)));
        }
    }
    out
}

/// A configuration file for PostgreSQL database `db` and the S3 place `s3` (the secret key
/// in a file next to it).
fn distributed_config(
    path: &Path,
    data_dir: &Path,
    db: &str,
    s3: &semdock::store::blobs::s3::S3Location,
) {
    let secret = path.with_extension("s3-secret");
    std::fs::write(&secret, &s3.secret_access_key).unwrap();
    write_config(
        path,
        data_dir,
        &format!(
            "[storage]\nmetadata = \"postgres\"\nblobs = \"s3\"\n[storage.postgres]\nurl = {db:?}\n[storage.s3]\nendpoint = {:?}\nbucket = {:?}\nregion = {:?}\nprefix = {:?}\naccess_key_id = {:?}\nsecret_access_key_file = {:?}\n",
            s3.endpoint.as_deref().unwrap(),
            s3.bucket,
            s3.region,
            s3.prefix,
            s3.access_key_id,
            secret.display().to_string(),
        ),
    );
}

fn write_config(path: &Path, data_dir: &Path, storage: &str) {
    std::fs::write(
        path,
        format!("data_dir = {:?}\n{storage}", data_dir.display().to_string()),
    )
    .unwrap();
}

/// Versioning on for `prod`, three images pushed by docker and an API key made, in the
/// registry `source`; returns every (repository:tag, digest) it serves and the key.
fn fill_for_migration(source: &Server) -> (Vec<(String, String)>, String) {
    source.docker_login();
    let admin = source.http();
    let res = admin
        .patch(&source.url("/api/v1/feeds/prod"))
        .header("Content-Type", "application/json")
        .send(r#"{"versioning": true}"#)
        .unwrap();
    assert_eq!(res.status(), 200);
    for (i, name) in ["prod/app:1.0.0", "prod/app:1.1.0", "library/tool:edge"]
        .into_iter()
        .enumerate()
    {
        let tag = format!("{}/{name}", source.host());
        let ctx = common::image_context_sized(2, 1 << 20, &format!("migrate {i}"));
        build_image(source, &tag, ctx.path());
        run(source.docker().args(["push", &tag]));
        run(source.docker().args(["rmi", &tag]));
    }
    let res = admin
        .post(&source.url("/api/v1/keys"))
        .header("Content-Type", "application/json")
        .send(r#"{"name": "ci", "roles": {"prod": "pull"}}"#)
        .unwrap();
    let key: serde_json::Value =
        serde_json::from_str(&res.into_body().read_to_string().unwrap()).unwrap();
    let key = common::basic("api", key["key"].as_str().unwrap());
    let repos = ["prod/app", "library/tool"];
    let expected = tag_digests(&admin, &source.url(""), &repos);
    assert_eq!(
        expected.len(),
        7,
        "1.0.0, 1.1.0, 1, 1.0, 1.1, latest, edge: {expected:?}"
    );
    (expected, key)
}

/// Waits until every image of `expected` has been read (its SBOM referrer stored), so that
/// what a copy holds does not depend on how far the queue got.
fn wait_until_read(source: &Server, expected: &[(String, String)]) {
    let admin = source.http();
    for (image, _) in expected {
        let started = Instant::now();
        loop {
            let body = admin
                .get(&source.url(&format!("/api/v1/vulnerabilities?ref={image}")))
                .call()
                .unwrap()
                .into_body()
                .read_to_string()
                .unwrap();
            if !body.contains("\"pending\"") {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_mins(1),
                "{image}: {body}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// An embedded registry, filled by docker, moves to PostgreSQL and S3 with `semdock storage
/// migrate`; three nodes behind HAProxy then serve every tag with its digest (docker pulls
/// through the load balancer, the administrator's password and an API key still work); a
/// backup of the distributed registry, restored into an embedded one, serves them too.
#[test]
fn storage_migrate_moves_a_registry_to_postgres_and_s3_and_a_backup_brings_it_back() {
    let work = tempfile::tempdir().unwrap();
    let bin = env!("CARGO_BIN_EXE_semdock");
    let mut source = Server::start_in(&work.path().join("source"), &[]);
    let (expected, key) = fill_for_migration(&source);
    let repos = ["prod/app", "library/tool"];
    wait_until_read(&source, &expected);
    let password = source.admin_password.clone();
    assert!(source.terminate());

    let db = common::postgres_database();
    let s3 = common::s3_location();
    let (source_toml, target_toml) = (
        work.path().join("source.toml"),
        work.path().join("target.toml"),
    );
    write_config(&source_toml, &source.data_dir, "");
    distributed_config(&target_toml, &work.path().join("node-data"), &db, &s3);
    let migrate = || {
        let mut cmd = Command::new(bin);
        cmd.arg("--config")
            .arg(&source_toml)
            .args(["storage", "migrate", "--to"])
            .arg(&target_toml);
        cmd
    };
    let said = run(&mut migrate());
    // 12 of the images, 3 CycloneDX documents and their empty config; 3 images and their
    // 3 SBOM referrers.
    assert!(said.contains("copied 16 blobs"), "{said}");
    assert!(
        said.contains("wrote 2 feeds, 2 repositories, 6 manifests, 7 tags"),
        "{said}"
    );
    let again = common::run_fail(&mut migrate());
    assert!(
        again.contains("already holds a completed migration"),
        "{again}"
    );

    let cluster = Cluster::start_existing(3, &db, &s3, &password);
    let lb = LoadBalancer::start(&cluster.nodes.iter().collect::<Vec<_>>());
    let admin = common::http_as(Some(cluster.admin()));
    for node in &cluster.nodes {
        assert_eq!(tag_digests(&admin, &node.url(""), &repos), expected);
    }
    let by_key = common::http_as(Some(key));
    let res = by_key
        .get(&lb.url("/v2/prod/app/tags/list"))
        .call()
        .unwrap();
    assert_eq!(
        res.status(),
        200,
        "the API key made before the move still works"
    );
    let first = &cluster.nodes[0];
    login_through(&lb, first, &password);
    for (name, digest) in expected
        .iter()
        .filter(|(n, _)| n.ends_with(":1.1.0") || n.ends_with(":edge"))
    {
        let tag = format!("{}/{name}", lb.host());
        run(first.docker().args(["pull", &tag]));
        let pulled =
            run(first
                .docker()
                .args(["inspect", "--format", "{{index .RepoDigests 0}}", &tag]));
        assert!(pulled.trim().ends_with(digest.as_str()), "{name}: {pulled}");
        run(first.docker().args(["rmi", &tag]));
    }

    let backup = work.path().join("backup");
    let said = run(Command::new(bin)
        .arg("--config")
        .arg(&target_toml)
        .arg("backup")
        .arg(&backup));
    assert!(said.contains("backed up 16 blobs"), "{said}");
    let restored = work.path().join("restored");
    let restored_toml = work.path().join("restored.toml");
    write_config(&restored_toml, &restored, "");
    run(Command::new(bin)
        .arg("--config")
        .arg(&restored_toml)
        .arg("restore")
        .arg(&backup));
    let back = Server::start_in(&restored, &[]);
    let admin = common::http_as(Some(common::basic("admin", &password)));
    assert_eq!(tag_digests(&admin, &back.url(""), &repos), expected);
}

/// What a client without redirects sees of blob `layer` (`size` bytes) at `blob_url` when
/// reads are handed to the object store, with `admin` credentials and without.
fn check_redirected_blob(blob_url: &str, admin: &str, layer: &str, size: u64) {
    let not_following = ureq::Agent::config_builder()
        .max_redirects(0)
        .http_status_as_error(false)
        .build()
        .new_agent();
    let res = not_following
        .get(blob_url)
        .header("Authorization", admin)
        .call()
        .unwrap();
    assert_eq!(res.status(), 307);
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    let endpoint = std::env::var("TEST_S3_ENDPOINT").unwrap();
    assert!(location.starts_with(&endpoint), "{location}");
    assert!(location.contains("X-Amz-Signature="), "{location}");
    let res = not_following.get(blob_url).call().unwrap();
    assert_eq!(res.status(), 401, "no credentials, no URL");
    let res = not_following
        .head(blob_url)
        .header("Authorization", admin)
        .call()
        .unwrap();
    assert_eq!(res.status(), 200, "a HEAD is answered by the node");
    assert_eq!(
        res.headers()["content-length"].to_str().unwrap(),
        size.to_string()
    );

    let res = not_following.get(&location).call().unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers()["content-type"].to_str().unwrap(),
        "application/octet-stream"
    );
    assert!(
        res.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment")
    );
    let bytes = res.into_body().read_to_vec().unwrap();
    assert_eq!(semdock::model::Digest::of(&bytes).as_str(), layer);
    let res = not_following
        .get(&location)
        .header("Range", "bytes=10-19")
        .call()
        .unwrap();
    assert_eq!(res.status(), 206);
    assert_eq!(res.into_body().read_to_vec().unwrap(), &bytes[10..20]);
}

/// With `storage.s3.redirect_seconds`, a blob GET is a 307 to a presigned URL of the object
/// store, which serves the bytes (and a Range) itself as an inert attachment; a HEAD and an
/// unauthorised GET stay with the node. docker, podman and containerd's `ctr` follow it:
/// every layer they pull comes from the store, none through a node.
#[test]
fn presigned_redirects_are_followed_by_docker_podman_and_ctr() {
    let cluster = Cluster::start_with(2, &[("SEMDOCK_STORAGE__S3__REDIRECT_SECONDS", "300")]);
    cluster.versioned("prod");
    let first = &cluster.nodes[0];
    let lb = LoadBalancer::start(&cluster.nodes.iter().collect::<Vec<_>>());
    let password = first.admin_password.clone();
    login_through(&lb, first, &password);
    let tag = format!("{}/prod/app:1.0.0", lb.host());
    let ctx = common::image_context_sized(2, 2 << 20, "redirected");
    build_image(first, &tag, ctx.path());
    run(first.docker().args(["push", &tag]));
    run(first.docker().args(["rmi", &tag]));

    let admin = common::http_as(Some(cluster.admin()));
    let res = admin
        .get(&lb.url("/v2/prod/app/manifests/1.0.0"))
        .header(
            "Accept",
            "application/vnd.docker.distribution.manifest.v2+json",
        )
        .call()
        .unwrap();
    let manifest: serde_json::Value =
        serde_json::from_str(&res.into_body().read_to_string().unwrap()).unwrap();
    let layer = manifest["layers"][0]["digest"].as_str().unwrap().to_owned();
    let size = manifest["layers"][0]["size"].as_u64().unwrap();
    let blob_url = lb.url(&format!("/v2/prod/app/blobs/{layer}"));
    check_redirected_blob(&blob_url, &cluster.admin(), &layer, size);

    run(first.docker().args(["pull", &tag]));
    podman_pull(&first.creds(), &tag);
    let containerd = common::Containerd::start();
    run(containerd.ctr().args([
        "images",
        "pull",
        "--plain-http",
        "--snapshotter",
        "native",
        "--user",
        &first.creds(),
        &tag,
    ]));
    run(first.docker().args(["rmi", &tag]));
    // Every layer GET of the three clients was answered with a redirect, none with bytes.
    let logs: String = cluster.nodes.iter().map(Server::log).collect();
    let blob_gets: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("method=GET") && l.contains("/blobs/sha256:"))
        .collect();
    assert!(blob_gets.len() >= 4, "{logs}");
    assert!(
        blob_gets
            .iter()
            .all(|l| l.contains("status=307") || l.contains("status=401")),
        "{blob_gets:#?}"
    );
}

/// The value of cookie `name` that `res` sets.
fn set_cookie(res: &ureq::http::Response<ureq::Body>, name: &str) -> String {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix(&format!("{name}=")))
        .and_then(|v| v.split(';').next())
        .unwrap_or_else(|| panic!("no {name} cookie"))
        .to_owned()
}

/// A UI login through HAProxy (round robin, no stickiness) holds on every page, whichever
/// node answers it, and a logout through one node ends it on all of them.
#[test]
fn a_ui_session_through_the_load_balancer_holds_on_every_node() {
    let cluster = Cluster::start(3);
    let lb = LoadBalancer::start(&cluster.nodes.iter().collect::<Vec<_>>());
    let browser = ureq::Agent::config_builder()
        .max_redirects(0)
        .http_status_as_error(false)
        .build()
        .new_agent();
    let res = browser.get(&lb.url("/ui/login")).call().unwrap();
    let login_cookie = set_cookie(&res, "semdock_login");
    let csrf = common::csrf_of(&res.into_body().read_to_string().unwrap());
    let res = browser
        .post(&lb.url("/ui/login"))
        .header("Cookie", &format!("semdock_login={login_cookie}"))
        .content_type("application/x-www-form-urlencoded")
        .send(common::form(&[
            ("user", "admin"),
            ("password", &cluster.nodes[0].admin_password),
            ("csrf", &csrf),
            ("next", "/ui/"),
        ]))
        .unwrap();
    assert!(res.status().is_redirection(), "{}", res.status());
    let session = format!("semdock_session={}", set_cookie(&res, "semdock_session"));
    let page = |base: String| {
        browser
            .get(&format!("{base}/ui/"))
            .header("Cookie", &session)
            .call()
            .unwrap()
    };
    let mut csrf = String::new();
    for _ in 0..6 {
        let res = page(lb.url(""));
        assert_eq!(res.status(), 200, "a page through the load balancer");
        csrf = common::csrf_of(&res.into_body().read_to_string().unwrap());
    }
    for node in &cluster.nodes {
        assert_eq!(page(node.url("")).status(), 200, "node {}", node.addr);
    }
    let res = browser
        .post(&cluster.nodes[1].url("/ui/logout"))
        .header("Cookie", &session)
        .content_type("application/x-www-form-urlencoded")
        .send(common::form(&[("csrf", &csrf)]))
        .unwrap();
    assert!(res.status().is_redirection(), "{}", res.status());
    for node in &cluster.nodes {
        let res = page(node.url(""));
        assert!(
            res.status().is_redirection(),
            "logged out on node {}",
            node.addr
        );
    }
}
