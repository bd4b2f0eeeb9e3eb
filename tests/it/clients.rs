//! End-to-end: docker, podman and skopeo push to and pull from the real binary, and skopeo
//! copies between semdock and Distribution 2.8.2 (Debian's `docker-registry`).

use crate::common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::distribution::Distribution;
use common::{Server, assert_no_torn_blobs, image_context, image_context_sized, run, run_fail};

fn image_id(server: &Server, reference: &str) -> String {
    run(server
        .docker()
        .args(["image", "inspect", "-f", "{{.Id}}", reference]))
    .trim()
    .to_owned()
}

pub(crate) fn build(server: &Server, tag: &str, layers: usize, extra: &str) -> tempfile::TempDir {
    let ctx = image_context(layers, extra);
    run(server
        .docker()
        // No cache: the legacy builder's cache lookup races with other tests' `docker rmi`
        // ("unable to find image"), and every test's layers are unique anyway.
        .args(["build", "--no-cache", "-q", "-t", tag])
        .arg(ctx.path())
        .env("DOCKER_BUILDKIT", "0"));
    ctx
}

#[test]
fn docker_push_pull_dedupe_and_mount() {
    let server = Server::start();
    server.docker_login();
    let host = server.host();
    let hello = format!("{host}/library/hello:1.0.0");
    let world = format!("{host}/library/world:2.0.0");
    let _a = build(&server, &hello, 3, "hello");
    let _b = build(&server, &world, 2, "world");
    let (hello_id, world_id) = (image_id(&server, &hello), image_id(&server, &world));

    let out = run(server.docker().args(["push", &hello]));
    assert!(out.contains("Pushed"), "{out}");
    run(server.docker().args(["push", &world]));

    // A second push uploads nothing.
    let out = run(server.docker().args(["push", &hello]));
    assert!(out.contains("Layer already exists"), "{out}");
    assert!(!out.contains("Pushed"), "{out}");

    // Another repository of the same feed mounts the layers instead of uploading them.
    let copy = format!("{host}/library/copy:1.0.0");
    run(server.docker().args(["tag", &hello, &copy]));
    let out = run(server.docker().args(["push", &copy]));
    assert!(out.contains("Mounted from library/hello"), "{out}");

    run(server.docker().args(["rmi", &hello, &world, &copy]));
    run(server.docker().args(["pull", &hello]));
    run(server.docker().args(["pull", &world]));
    assert_eq!(image_id(&server, &hello), hello_id);
    assert_eq!(image_id(&server, &world), world_id);
    run(server.docker().args(["rmi", &hello, &world]));
}

#[test]
fn docker_push_to_a_repository_without_feed_prints_the_reason() {
    let server = Server::start();
    server.docker_login();
    let host = server.host();
    let tag = format!("{host}/app:1.0.0");
    let _ctx = build(&server, &tag, 1, "nofeed");
    let out = run_fail(server.docker().args(["push", &tag]));
    assert!(out.contains("first path segment must be a feed"), "{out}");
    let tag2 = format!("{host}/nosuch/app:1.0.0");
    run(server.docker().args(["tag", &tag, &tag2]));
    let out = run_fail(server.docker().args(["push", &tag2]));
    assert!(out.contains("feed \"nosuch\" does not exist"), "{out}");
    run(server.docker().args(["rmi", &tag, &tag2]));
}

/// The release pipeline with docker: push to staging, take the `RepoDigest` docker prints,
/// promote exactly that into a promotion-only prod — where docker's own push is refused with
/// the sentence saying how to promote — and pull it from prod by tag.
#[test]
fn docker_promotes_by_repo_digest_into_a_promotion_only_feed() {
    let server = Server::start();
    server.docker_login();
    let admin = server.http();
    let res = admin
        .post(&server.url("/api/v1/feeds"))
        .header("Content-Type", "application/json")
        .send(r#"{"name": "staging"}"#)
        .unwrap();
    assert_eq!(res.status(), 201);
    let res = admin
        .patch(&server.url("/api/v1/feeds/prod"))
        .header("Content-Type", "application/json")
        .send(r#"{"promotion_sources": ["staging"]}"#)
        .unwrap();
    assert_eq!(res.status(), 200);
    let host = server.host();
    let staged = format!("{host}/staging/web:5.1.0");
    let _ctx = build(&server, &staged, 1, "release pipeline");
    run(server.docker().args(["push", &staged]));
    let repo_digest = run(server.docker().args([
        "image",
        "inspect",
        "-f",
        "{{index .RepoDigests 0}}",
        &staged,
    ]))
    .trim()
    .to_owned();
    assert!(
        repo_digest.starts_with(&format!("{host}/staging/web@sha256:")),
        "{repo_digest}"
    );

    let direct = format!("{host}/prod/web:5.1.0");
    run(server.docker().args(["tag", &staged, &direct]));
    let out = run_fail(server.docker().args(["push", &direct]));
    assert!(
        out.contains("accepts images only by promotion from staging")
            && out.contains("semdock promote staging/web:5.1.0 prod/web:5.1.0"),
        "{out}"
    );

    let res = admin
        .post(&server.url("/api/v1/promotions"))
        .header("Content-Type", "application/json")
        .send(serde_json::json!({"from": repo_digest, "to": "prod/web:5.1.0"}).to_string())
        .unwrap();
    assert_eq!(res.status(), 200);
    run(server.docker().args(["rmi", &staged, &direct]));
    run(server.docker().args(["pull", &direct]));
    let pulled = run(server.docker().args([
        "image",
        "inspect",
        "-f",
        "{{index .RepoDigests 0}}",
        &direct,
    ]))
    .trim()
    .to_owned();
    assert_eq!(
        pulled.rsplit_once('@').unwrap().1,
        repo_digest.rsplit_once('@').unwrap().1,
        "prod serves exactly what staging was tested with"
    );
    run(server.docker().args(["rmi", &direct]));
}

/// podman with its own image store in `dir`.
fn podman_in(server: &Server, dir: &tempfile::TempDir) -> Command {
    let mut cmd = Command::new("podman");
    cmd.env("REGISTRY_AUTH_FILE", server.containers_auth());
    cmd.arg("--storage-driver=vfs")
        .arg("--root")
        .arg(dir.path().join("root"))
        .arg("--runroot")
        .arg(dir.path().join("run"));
    cmd
}

#[test]
fn podman_push_pull_and_multi_arch_index() {
    let server = Server::start();
    let host = server.host();
    let store = tempfile::tempdir().unwrap();
    let mut ids = Vec::new();
    for arch in ["amd64", "arm64"] {
        let ctx = image_context(2, arch);
        let tag = format!("{host}/library/multi:{arch}");
        run(podman_in(&server, &store)
            .args([
                "build",
                "-q",
                "--platform",
                &format!("linux/{arch}"),
                "-t",
                &tag,
            ])
            .arg(ctx.path()));
        ids.push(
            run(podman_in(&server, &store).args(["image", "inspect", "--format", "{{.Id}}", &tag]))
                .trim()
                .to_owned(),
        );
        run(podman_in(&server, &store).args(["push", "--tls-verify=false", &tag]));
    }
    let list = format!("{host}/library/multi:1.0.0");
    run(podman_in(&server, &store).args(["manifest", "create", &list]));
    for arch in ["amd64", "arm64"] {
        run(podman_in(&server, &store).args([
            "manifest",
            "add",
            &list,
            &format!("containers-storage:{host}/library/multi:{arch}"),
        ]));
    }
    run(podman_in(&server, &store).args([
        "manifest",
        "push",
        "--all",
        "--tls-verify=false",
        &list,
        &format!("docker://{list}"),
    ]));

    let raw = run(Command::new("skopeo")
        .env("REGISTRY_AUTH_FILE", server.containers_auth())
        .args([
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{list}"),
        ]));
    let index: serde_json::Value = serde_json::from_str(&raw).unwrap();
    let archs: Vec<_> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["platform"]["architecture"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(archs.len(), 2, "{raw}");
    assert!(
        archs.contains(&"amd64".into()) && archs.contains(&"arm64".into()),
        "{raw}"
    );

    // A fresh store pulls each platform from the index.
    let fresh = tempfile::tempdir().unwrap();
    for (arch, id) in ["amd64", "arm64"].iter().zip(&ids) {
        run(podman_in(&server, &fresh).args([
            "pull",
            "--tls-verify=false",
            "--platform",
            &format!("linux/{arch}"),
            &list,
        ]));
        let got = run(podman_in(&server, &fresh).args([
            "image",
            "inspect",
            "--format",
            "{{.Id}} {{.Architecture}}",
            &list,
        ]));
        assert_eq!(got.trim(), format!("{id} {arch}"));
    }
}

fn skopeo(server: &Server, args: &[&str]) -> String {
    run(Command::new("skopeo")
        .env("REGISTRY_AUTH_FILE", server.containers_auth())
        .args(args))
}

#[test]
fn skopeo_copies_to_distribution_and_back_with_identical_digests() {
    let server = Server::start();
    server.docker_login();
    let dist = Distribution::start();
    let host = server.host();
    let tag = format!("{host}/library/roundtrip:1.0.0");
    let _ctx = build(&server, &tag, 2, "roundtrip");
    run(server.docker().args(["push", &tag]));
    run(server.docker().args(["rmi", &tag]));

    let digest_of = |reference: &str| {
        skopeo(
            &server,
            &[
                "inspect",
                "--tls-verify=false",
                "--format",
                "{{.Digest}}",
                reference,
            ],
        )
        .trim()
        .to_owned()
    };
    let original = digest_of(&format!("docker://{tag}"));
    skopeo(
        &server,
        &[
            "copy",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
            &format!("docker://{tag}"),
            &format!("docker://{}/library/roundtrip:1.0.0", dist.addr),
        ],
    );
    assert_eq!(
        digest_of(&format!("docker://{}/library/roundtrip:1.0.0", dist.addr)),
        original
    );
    let back = format!("docker://{host}/prod/roundtrip:1.0.0");
    skopeo(
        &server,
        &[
            "copy",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
            &format!("docker://{}/library/roundtrip:1.0.0", dist.addr),
            &back,
        ],
    );
    assert_eq!(digest_of(&back), original);

    let tags = skopeo(
        &server,
        &[
            "list-tags",
            "--tls-verify=false",
            &format!("docker://{host}/prod/roundtrip"),
        ],
    );
    let tags: serde_json::Value = serde_json::from_str(&tags).unwrap();
    assert_eq!(tags["Tags"], serde_json::json!(["1.0.0"]));

    skopeo(&server, &["delete", "--tls-verify=false", &back]);
    let out = run_fail(
        Command::new("skopeo")
            .env("REGISTRY_AUTH_FILE", server.containers_auth())
            .args(["inspect", "--tls-verify=false", &back]),
    );
    assert!(out.contains("manifest unknown"), "{out}");
    // The original repository is untouched by the delete in another feed.
    assert_eq!(digest_of(&format!("docker://{tag}")), original);
}

#[test]
fn kill_9_during_docker_push_leaves_a_consistent_registry_and_the_push_can_be_repeated() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = Server::start_in(&data, &[]);
    server.docker_login();
    let host = server.host();
    let tag = format!("{host}/library/crashy:1.0.0");
    let ctx = image_context_sized(3, 8 << 20, "crashy");
    run(server
        .docker()
        .args(["build", "--no-cache", "-q", "-t", &tag])
        .arg(ctx.path())
        .env("DOCKER_BUILDKIT", "0"));
    let id = image_id(&server, &tag);
    let mut push = server.push_in_background(&tag);
    // Kill as soon as the first layer upload has started.
    let deadline = Instant::now() + Duration::from_mins(1);
    while !server.log().contains("/blobs/uploads/") {
        assert!(
            Instant::now() < deadline,
            "push never started:\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(100));
    server.kill9();
    // docker would retry against a dead server for a minute; the client has nothing to add.
    let _ = push.kill();
    let _ = push.wait();
    let log = server.log();
    assert!(
        !log.lines()
            .any(|l| l.contains("method=PUT") && l.contains("/manifests/")),
        "the push finished before the crash; nothing was tested:\n{log}"
    );
    assert_no_torn_blobs(&data);

    // Same data directory, same port name for docker: a new server, and the push repeated.
    let server = Server::start_in(&data, &[]);
    server.docker_login();
    let tag2 = format!("{}/library/crashy:1.0.0", server.host());
    run(server.docker().args(["tag", &tag, &tag2]));
    run(server.docker().args(["push", &tag2]));
    assert_no_torn_blobs(&data);
    run(server.docker().args(["rmi", &tag, &tag2]));
    run(server.docker().args(["pull", &tag2]));
    assert_eq!(image_id(&server, &tag2), id);
    run(server.docker().args(["rmi", &tag2]));
}

fn api(server: &Server, method: &str, path: &str, body: &serde_json::Value) -> serde_json::Value {
    let agent = server.http();
    let url = server.url(path);
    let mut res = match method {
        "POST" => agent
            .post(&url)
            .content_type("application/json")
            .send(body.to_string())
            .unwrap(),
        "PUT" => agent
            .put(&url)
            .content_type("application/json")
            .send(body.to_string())
            .unwrap(),
        "PATCH" => agent
            .patch(&url)
            .content_type("application/json")
            .send(body.to_string())
            .unwrap(),
        _ => agent.get(&url).call().unwrap(),
    };
    let status = res.status();
    let text = res.body_mut().read_to_string().unwrap();
    assert!(status.is_success(), "{method} {path}: {status} {text}");
    serde_json::from_str(&text).unwrap_or(serde_json::Value::Null)
}

#[test]
fn docker_login_flows_private_and_public_feeds() {
    let server = Server::start();
    let host = server.host();

    let out = server.docker_login_as(&server.host(), "admin", "wrong-password");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("invalid user name, password or API key"),
        "{err}"
    );

    let out = server.docker_login_as(&server.host(), "admin", &server.admin_password);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let private = format!("{host}/library/private:1.0.0");
    let public = format!("{host}/public/app:1.0.0");
    api(
        &server,
        "POST",
        "/api/v1/feeds",
        &serde_json::json!({"name": "public", "anonymous_pull": true}),
    );
    let _a = build(&server, &private, 1, "private");
    let _b = build(&server, &public, 1, "public");
    run(server.docker().args(["push", &private]));
    run(server.docker().args(["push", &public]));
    run(server.docker().args(["logout", &host]));
    run(server.docker().args(["rmi", &private, &public]));

    let out = run_fail(server.docker().args(["pull", &private]));
    assert!(
        out.contains("unauthorized") || out.contains("denied"),
        "{out}"
    );
    run(server.docker().args(["pull", &public]));

    // CI logs in with an API key as ProGet clients do: user `api`.
    let key = api(
        &server,
        "POST",
        "/api/v1/keys",
        &serde_json::json!({"name": "ci", "roles": {"library": "push"}}),
    );
    let out = server.docker_login_as(&server.host(), "api", key["key"].as_str().unwrap());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    run(server.docker().args(["pull", &private]));
    run(server.docker().args(["rmi", &private, &public]));

    let log = server.log();
    // The initial password is only in its file, never in the log.
    assert_eq!(log.matches(&server.admin_password).count(), 0, "{log}");
    assert!(
        !log.contains(key["key"].as_str().unwrap()),
        "an API key reached the log"
    );
    assert!(
        !log.contains("wrong-password"),
        "a tried password reached the log"
    );
}

#[test]
fn skopeo_and_podman_with_creds() {
    let server = Server::start();
    let host = server.host();
    let tag = format!("{host}/library/creds:1.0.0");
    server.docker_login();
    let _ctx = build(&server, &tag, 1, "creds");
    run(server.docker().args(["push", &tag]));
    run(server.docker().args(["rmi", &tag]));
    let image = format!("docker://{tag}");
    let out = run_fail(Command::new("skopeo").args([
        "inspect",
        "--tls-verify=false",
        "--creds",
        "admin:nope",
        &image,
    ]));
    assert!(
        out.contains("invalid user name, password or API key") || out.contains("unauthorized"),
        "{out}"
    );
    run(Command::new("skopeo").args([
        "inspect",
        "--tls-verify=false",
        "--creds",
        &server.creds(),
        &image,
    ]));

    let store = tempfile::tempdir().unwrap();
    let mut podman = podman_plain(&store);
    let out = run_fail(podman.args(["pull", "--tls-verify=false", &tag]));
    assert!(
        out.contains("unauthorized") || out.contains("authentication required"),
        "{out}"
    );
    run(podman_plain(&store).args([
        "pull",
        "--tls-verify=false",
        "--creds",
        &server.creds(),
        &tag,
    ]));
    let pushed = format!("{host}/library/creds:podman");
    run(podman_plain(&store).args(["tag", &tag, &pushed]));
    run(podman_plain(&store).args([
        "push",
        "--tls-verify=false",
        "--creds",
        &server.creds(),
        &pushed,
    ]));
}

/// podman with its own store and no stored credentials.
fn podman_plain(dir: &tempfile::TempDir) -> Command {
    let auth = dir.path().join("auth.json");
    if !auth.exists() {
        std::fs::write(&auth, "{}").unwrap();
    }
    let mut cmd = Command::new("podman");
    cmd.env("REGISTRY_AUTH_FILE", dir.path().join("auth.json"))
        .arg("--storage-driver=vfs")
        .arg("--root")
        .arg(dir.path().join("root"))
        .arg("--runroot")
        .arg(dir.path().join("run"));
    cmd
}

#[test]
// One user's story from push to release reads best whole.
#[allow(clippy::too_many_lines)]
fn docker_in_a_versioned_feed_and_the_release_flow_with_skopeo_and_promote() {
    let server = Server::start();
    server.docker_login();
    let host = server.host();
    let key = api(
        &server,
        "POST",
        "/api/v1/keys",
        &serde_json::json!({"name": "ops", "admin": true}),
    );
    let key = key["key"].as_str().unwrap().to_owned();
    let semdock = |args: &[&str]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_semdock"));
        cmd.args(args)
            .args(["--server", &server.url("")])
            .env("SEMDOCK_API_KEY", &key);
        run(&mut cmd)
    };
    semdock(&["feed", "create", "ci"]);
    let out = semdock(&[
        "feed",
        "set",
        "prod",
        "--versioning",
        "on",
        "--permit",
        "dev",
        "--permit",
        "pr-*",
    ]);
    assert!(
        out.contains("versioning on, permitted [dev, pr-*]"),
        "{out}"
    );

    let app = |tag: &str| format!("{host}/prod/team/app:{tag}");
    let _a = build(&server, &app("1.2.3"), 1, "first");
    let out = run(server.docker().args(["push", &app("1.2.3")]));
    assert!(out.contains("1.2.3: digest:"), "{out}");
    // A re-run of the same push succeeds.
    run(server.docker().args(["push", &app("1.2.3")]));

    for (tag, expect) in [
        ("latest", "\"latest\" is kept by the server"),
        (
            "v6-latest",
            "tag \"v6-latest\" is not allowed in feed \"prod\": use a SemVer version like 6.0.0 or add \"v6-latest\" to the feed's permitted tags",
        ),
    ] {
        run(server.docker().args(["tag", &app("1.2.3"), &app(tag)]));
        let out = run_fail(server.docker().args(["push", &app(tag)]));
        assert!(out.contains(expect), "docker printed:\n{out}");
        run(server.docker().args(["rmi", &app(tag)]));
    }
    let _b = build(&server, &app("1.2.3"), 1, "different content");
    let out = run_fail(server.docker().args(["push", &app("1.2.3")]));
    assert!(
        out.contains("version 1.2.3 is released as sha256:"),
        "docker printed:\n{out}"
    );

    // The release flow: a pre-release in ci, promoted to prod without re-uploading a byte.
    let rc = format!("{host}/ci/team/app:1.4.0-rc.2");
    let _c = build(&server, &rc, 2, "release candidate");
    let rc_id = image_id(&server, &rc);
    run(server.docker().args(["push", &rc]));
    let rc_digest = skopeo(
        &server,
        &[
            "inspect",
            "--tls-verify=false",
            "--format",
            "{{.Digest}}",
            &format!("docker://{rc}"),
        ],
    )
    .trim()
    .to_owned();
    let uploads_to_prod = || {
        server
            .log()
            .lines()
            .filter(|l| {
                l.contains("method=POST")
                    && l.contains("/v2/prod/")
                    && l.contains("/blobs/uploads/")
            })
            .count()
    };
    let before = uploads_to_prod();
    let out = semdock(&[
        "promote",
        "ci/team/app:1.4.0-rc.2",
        "prod/team/app:1.4.0",
        "--comment",
        "release 1.4.0",
    ]);
    assert!(out.contains(&rc_digest), "{out}");
    run(server.docker().args(["rmi", &rc, &app("1.2.3")]));
    run(server.docker().args(["pull", &app("1.4.0")]));
    run(server.docker().args(["pull", &app("latest")]));
    assert_eq!(image_id(&server, &app("1.4.0")), rc_id);
    assert_eq!(image_id(&server, &app("latest")), rc_id);
    for tag in ["1.4.0", "latest", "1", "1.4"] {
        let d = skopeo(
            &server,
            &[
                "inspect",
                "--tls-verify=false",
                "--format",
                "{{.Digest}}",
                &format!("docker://{}", app(tag)),
            ],
        );
        assert_eq!(d.trim(), rc_digest, "{tag}");
    }
    assert_eq!(uploads_to_prod(), before, "the promotion uploaded blobs");
    let history = semdock(&["history", "prod/team/app", "--tag", "1.4.0"]);
    assert!(
        history.contains("promote") && history.contains("admin"),
        "{history}"
    );
    run(server.docker().args(["rmi", &app("1.4.0"), &app("latest")]));
}
