//! HTTPS with a certificate from a test CA (rcgen): docker logs in and pushes over TLS, and
//! skopeo refuses the server until it trusts the CA, then verifies the chain with `--cert-dir`.

use crate::common;

use std::process::Command;

use common::make_certificates;
use common::{Server, image_context, run, run_fail};

/// Removes docker's per-registry CA directory when the test ends, however it ends.
struct CertsD(std::path::PathBuf);

impl Drop for CertsD {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn docker_and_skopeo_push_and_pull_over_https() {
    let certs = tempfile::tempdir().unwrap();
    make_certificates(certs.path());
    let data = tempfile::tempdir().unwrap();
    let cert = certs.path().join("cert.pem");
    let key = certs.path().join("key.pem");
    let server = Server::start_in(
        &data.path().join("data"),
        &[
            ("SEMDOCK_TLS__CERT_FILE", cert.to_str().unwrap()),
            ("SEMDOCK_TLS__KEY_FILE", key.to_str().unwrap()),
        ],
    );
    assert!(
        server.log().contains("scheme=\"https\"") || server.log().contains("scheme=https"),
        "{}",
        server.log()
    );
    let port = server.addr.rsplit(':').next().unwrap().to_owned();
    let host = format!("127.0.0.1:{port}");

    // Plain HTTP to the TLS port gets nowhere.
    assert!(
        common::http()
            .get(format!("http://{host}/v2/"))
            .call()
            .is_err()
    );

    // Before anything trusts the test CA, a verifying client refuses the server.
    let out = run_fail(Command::new("skopeo").args([
        "inspect",
        "--creds",
        &server.creds(),
        &format!("docker://{host}/library/tls:1.0.0"),
    ]));
    assert!(out.contains("certificate"), "{out}");

    // docker trusts the CA through certs.d (docker also treats loopback addresses as
    // insecure registries, so the chain is verified below with skopeo).
    let certs_d = CertsD(std::path::PathBuf::from(format!(
        "/etc/docker/certs.d/{host}"
    )));
    std::fs::create_dir_all(&certs_d.0).unwrap();
    std::fs::copy(certs.path().join("ca.crt"), certs_d.0.join("ca.crt")).unwrap();

    let out = server.docker_login_as(&host, "admin", &server.admin_password);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let tag = format!("{host}/library/tls:1.0.0");
    let ctx = image_context(1, "tls");
    run(server
        .docker()
        .args(["build", "--no-cache", "-q", "-t", &tag])
        .arg(ctx.path())
        .env("DOCKER_BUILDKIT", "0"));
    run(server.docker().args(["push", &tag]));
    run(server.docker().args(["rmi", &tag]));
    run(server.docker().args(["pull", &tag]));
    run(server.docker().args(["rmi", &tag]));

    let image = format!("docker://{tag}");
    let ca_dir = tempfile::tempdir().unwrap();
    std::fs::copy(certs.path().join("ca.crt"), ca_dir.path().join("ca.crt")).unwrap();
    let out = run(Command::new("skopeo")
        .args(["inspect", "--creds", &server.creds(), "--cert-dir"])
        .arg(ca_dir.path())
        .arg(&image));
    assert!(out.contains("\"Digest\""), "{out}");
}

#[test]
fn unreadable_certificate_stops_the_server_with_a_clear_message() {
    let data = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_semdock"))
        .arg("serve")
        .env("SEMDOCK_LISTEN", "127.0.0.1:0")
        .env("SEMDOCK_DATA_DIR", data.path())
        .env("SEMDOCK_TLS__CERT_FILE", "/nonexistent/cert.pem")
        .env("SEMDOCK_TLS__KEY_FILE", "/nonexistent/key.pem")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot read the certificate /nonexistent/cert.pem"),
        "{err}"
    );
}
