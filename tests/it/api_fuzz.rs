//! schemathesis (from `PyPI`) fuzzes the management API from its own `OpenAPI` document: no generated
//! request may get a 5xx. scripts/test installs it.

use crate::common;

use std::process::Command;

use common::Server;

#[test]
fn schemathesis_finds_no_server_errors_in_the_management_api() {
    use base64::Engine as _;
    let server = Server::start();
    let mut res = server
        .http()
        .post(server.url("/api/v1/keys"))
        .content_type("application/json")
        .send(r#"{"name":"fuzz","admin":true}"#)
        .unwrap();
    let key: serde_json::Value =
        serde_json::from_str(&res.body_mut().read_to_string().unwrap()).unwrap();
    let auth = base64::engine::general_purpose::STANDARD
        .encode(format!("api:{}", key["key"].as_str().unwrap()));
    let reports = tempfile::tempdir().unwrap();
    let out = Command::new("python3")
        .args(["-m", "schemathesis.cli", "run"])
        .arg(server.url("/api/v1/openapi.json"))
        .args(["--url", &server.url("")])
        .args(["--header", &format!("Authorization: Basic {auth}")])
        .args([
            "--checks",
            "not_a_server_error",
            "--max-examples",
            "25",
            "--request-timeout",
            "10",
        ])
        // A generated backup directory would be written on this machine: tests/it/hygiene.rs
        // covers that endpoint's bad input instead.
        .args(["--exclude-path", "/api/v1/backup"])
        .arg("--report-dir")
        .arg(reports.path())
        .current_dir(reports.path())
        .output()
        .expect("schemathesis is installed (scripts/test installs it from PyPI)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains(" passed"), "{text}");
    assert!(!server.log().contains("internal error"), "{}", server.log());
}
