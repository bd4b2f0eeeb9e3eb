//! The OCI distribution-spec conformance suites — the released v1.1.1 (Ginkgo) and the
//! redesigned one on the spec's main branch — against the release build with
//! authentication on and every toggle on, on a feed without versioning and again on a
//! versioned feed that permits every tag (`*`): the versioning layer changes nothing for a
//! tag its policy allows. Any failed test fails this one, naming the failures with their
//! request and response.
//!
//! The suites are prebuilt in `../shared/instruments/` (or `CONFORMANCE_INSTRUMENTS`); the
//! binary under test is `CONFORMANCE_REGISTRY_BIN` (`scripts/test` sets it to
//! `target/release/semdock`), else the test build.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::Server;

fn instruments() -> PathBuf {
    let dir = std::env::var_os("CONFORMANCE_INSTRUMENTS").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/instruments"),
        PathBuf::from,
    );
    assert!(
        dir.join("oci-conformance-v1.1.1").is_file() && dir.join("oci-conformance-main").is_file(),
        "the conformance suites are not in {}: build them from github.com/opencontainers/distribution-spec \
         (tag v1.1.1: `cd conformance && go test -c -o oci-conformance-v1.1.1`; main: \
         `cd conformance && go build -o oci-conformance-main`) and set CONFORMANCE_INSTRUMENTS to their directory",
        dir.display()
    );
    dir
}

fn binary() -> PathBuf {
    std::env::var_os("CONFORMANCE_REGISTRY_BIN").map_or_else(
        || PathBuf::from(env!("CARGO_BIN_EXE_semdock")),
        PathBuf::from,
    )
}

/// A fresh server; with `versioned`, feed `library` is versioned and permits every tag.
fn server(dir: &Path, versioned: bool) -> Server {
    let s = Server::start_bin(
        &binary(),
        &dir.join("data"),
        &[("SEMDOCK_LOG__LEVEL", "warn,semdock::server=info")],
    );
    if versioned {
        let res = s
            .http()
            .patch(s.url("/api/v1/feeds/library"))
            .content_type("application/json")
            .send(r#"{"versioning":true,"permitted":["*"]}"#)
            .unwrap();
        assert_eq!(res.status(), 200);
    }
    s
}

/// Runs the released suite with every workflow and automatic cross-mount on; returns
/// (passed, failed, skipped) and the report of each failure.
fn v1_1_1(s: &Registry, report: &Path) -> ((u32, u32, u32), String) {
    let out = Command::new(instruments().join("oci-conformance-v1.1.1"))
        .arg("-ginkgo.no-color")
        .current_dir(report)
        .env("OCI_ROOT_URL", &s.url)
        .env("OCI_NAMESPACE", "library/conf-a")
        .env("OCI_CROSSMOUNT_NAMESPACE", "library/conf-b")
        .env("OCI_USERNAME", "admin")
        .env("OCI_PASSWORD", &s.password)
        .env("OCI_TEST_PULL", "1")
        .env("OCI_TEST_PUSH", "1")
        .env("OCI_TEST_CONTENT_DISCOVERY", "1")
        .env("OCI_TEST_CONTENT_MANAGEMENT", "1")
        .env("OCI_AUTOMATIC_CROSSMOUNT", "1")
        .env("OCI_HIDE_SKIPPED_WORKFLOWS", "0")
        .env("OCI_REPORT_DIR", report)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let c = regex::Regex::new(r"(\d+) Passed \| (\d+) Failed \| \d+ Pending \| (\d+) Skipped")
        .unwrap()
        .captures(&text)
        .unwrap_or_else(|| panic!("no totals from the v1.1.1 suite:\n{text}"));
    let totals = (
        c[1].parse().unwrap(),
        c[2].parse().unwrap(),
        c[3].parse().unwrap(),
    );
    // Ginkgo prints each failure with its request and response under "[FAIL]".
    let failures = text
        .split("------------------------------")
        .filter(|part| part.contains("[FAIL]"))
        .collect::<Vec<_>>()
        .join("\n---\n");
    (totals, failures)
}

/// Runs the redesigned suite with every toggle on (`OCI_VERSION=dev`); returns (tests,
/// failures, skipped) from its junit report and each failure's name, output and exchange.
fn main_suite(s: &Registry, results: &Path) -> ((u32, u32, u32), String) {
    let out = Command::new(instruments().join("oci-conformance-main"))
        .current_dir(results)
        .env("OCI_REGISTRY", s.url.trim_start_matches("http://"))
        .env("OCI_TLS", "disabled")
        .env("OCI_USERNAME", "admin")
        .env("OCI_PASSWORD", &s.password)
        .env("OCI_REPO1", "library/conf-a")
        .env("OCI_REPO2", "library/conf-b")
        .env("OCI_VERSION", "dev")
        .env("OCI_RESULTS_DIR", results)
        .output()
        .unwrap();
    let junit = std::fs::read_to_string(results.join("junit.xml")).unwrap_or_else(|e| {
        panic!(
            "no junit.xml from the main suite ({e}):\n{}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    let attr = |name: &str| {
        regex::Regex::new(&format!(r#"<testsuites[^>]* {name}="(\d+)""#))
            .unwrap()
            .captures(&junit)
            .map_or(0, |c| c[1].parse().unwrap())
    };
    let skipped = junit.matches(r#"status="skipped""#).count();
    let failures =
        regex::Regex::new(r#"(?s)<testcase name="([^"]*)"[^>]*status="failure">(.*?)</testcase>"#)
            .unwrap()
            .captures_iter(&junit)
            .map(|c| {
                format!(
                    "{}\n{}",
                    &c[1],
                    c[2].replace("&#xA;", "\n").replace("&#34;", "\"")
                )
            })
            .collect::<Vec<_>>()
            .join("\n---\n");
    (
        (
            attr("tests"),
            attr("failures"),
            u32::try_from(skipped).unwrap(),
        ),
        failures,
    )
}

/// Where the suites send their requests, and the administrator's password.
struct Registry {
    url: String,
    password: String,
}

fn both_suites_pass(versioned: bool) {
    let dir = tempfile::tempdir().unwrap();
    let mut s = server(dir.path(), versioned);
    let registry = Registry {
        url: s.url(""),
        password: s.admin_password.clone(),
    };
    run_both(&registry, dir.path(), &format!("versioned: {versioned}"));
    assert!(s.terminate());
}

fn run_both(s: &Registry, dir: &Path, label: &str) {
    let report = dir.join("v1.1.1");
    let results = dir.join("main");
    std::fs::create_dir_all(&report).unwrap();
    std::fs::create_dir_all(&results).unwrap();
    let ((passed, failed, skipped), failures) = v1_1_1(s, &report);
    eprintln!("v1.1.1 ({label}): {passed} passed, {failed} failed, {skipped} skipped");
    assert_eq!(failed, 0, "the v1.1.1 suite failed:\n{failures}");
    assert!(passed >= 75, "only {passed} passed");
    let ((tests, failed, skipped), failures) = main_suite(s, &results);
    eprintln!("main ({label}): {tests} tests, {failed} failed, {skipped} skipped");
    assert_eq!(failed, 0, "the main suite failed:\n{failures}");
    assert!(tests >= 980, "only {tests} tests ran");
}

/// Both suites through HAProxy (round robin, no stickiness) in front of three nodes on
/// PostgreSQL and S3: every request of a push or a chunked upload may land on another node.
#[test]
fn both_conformance_suites_pass_through_a_load_balancer_over_three_nodes() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = common::cluster::Cluster::start_bin(
        &binary(),
        3,
        &common::postgres_database(),
        &common::s3_location(),
    );
    let lb = common::cluster::LoadBalancer::start(&cluster.nodes.iter().collect::<Vec<_>>());
    let registry = Registry {
        url: lb.url(""),
        password: cluster.nodes[0].admin_password.clone(),
    };
    run_both(&registry, dir.path(), "three nodes behind HAProxy");
}

#[test]
fn both_conformance_suites_pass_with_every_toggle_on() {
    both_suites_pass(false);
}

#[test]
fn both_conformance_suites_pass_on_a_versioned_feed_that_permits_every_tag() {
    both_suites_pass(true);
}
