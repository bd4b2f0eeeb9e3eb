//! schemathesis (from `PyPI`) fuzzes the management API from its own `OpenAPI` document: no generated
//! request may get a 5xx. scripts/test installs it.

use crate::common;

use std::process::Command;

use common::Server;

#[test]
fn schemathesis_finds_no_server_errors_in_the_management_api() {
    use base64::Engine as _;
    let server = Server::start();
    let auth = base64::engine::general_purpose::STANDARD
        .encode(format!("api:{}", server.admin_key("fuzz")));
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
        // Read-only mode, once a generated request turns it on, answers every later write
        // with 503 by design: tests/it/maintenance.rs and ui.rs cover that endpoint.
        .args(["--exclude-path", "/api/v1/maintenance"])
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
