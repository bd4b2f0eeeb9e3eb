//! SBOMs and vulnerabilities with the real binary on both storage engines: an image whose
//! layers hold this machine's real package databases (dpkg's status file, pip's installed
//! `METADATA`, npm's lockfile) is pushed; its SBOM appears as a CycloneDX referrer; real OSV
//! records imported with the CLI change its report without a rescan; a feed's
//! vulnerability policy refuses its promotion until an exception (which expires) accepts it.

use crate::common;

use std::io::Write as _;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{OCI_MANIFEST, basic, http_as, run, run_fail};
use semdock::model::Digest;
use serde_json::{Value, json};

/// Debian 12.1's glibc: the version DSA-5514-1 (Looney Tunables, CVE-2023-4911) fixed.
const OLD_GLIBC: &str = "2.36-9+deb12u1";

/// DSA-5514-1 as osv.dev publishes it in its Debian export (fields matching reads).
const DSA_5514_1: &str = r#"{"id":"DSA-5514-1","summary":"glibc - security update","modified":"2023-10-03T00:00:00Z","published":"2023-10-03T00:00:00Z","related":["CVE-2023-4527","CVE-2023-4806","CVE-2023-4911"],"affected":[{"package":{"ecosystem":"Debian:12","name":"glibc"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"2.36-9+deb12u3"}]}]},{"package":{"ecosystem":"Debian:11","name":"glibc"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"2.31-13+deb11u7"}]}]}],"references":[{"type":"ADVISORY","url":"https://www.debian.org/security/2023/dsa-5514"}]}"#;

/// CVE-2023-4911 with the CVSS v3.1 vector NVD published (7.8, high).
const CVE_2023_4911: &str = r#"{"id":"CVE-2023-4911","modified":"2024-01-01T00:00:00Z","summary":"A buffer overflow in the GNU C Library's dynamic loader processing GLIBC_TUNABLES","severity":[{"type":"CVSS_V3","score":"CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H"}],"affected":[]}"#;

/// GHSA-j8r2-6x86-q33q (requests leaking Proxy-Authorization), fixed in 2.31.0.
const GHSA_REQUESTS: &str = r#"{"id":"GHSA-j8r2-6x86-q33q","modified":"2023-11-08T00:00:00Z","aliases":["CVE-2023-32681","PYSEC-2023-74"],"summary":"Unintended leak of Proxy-Authorization header in requests","severity":[{"type":"CVSS_V3","score":"CVSS:3.1/AV:N/AC:H/PR:N/UI:R/S:C/C:H/I:N/A:N"}],"affected":[{"package":{"ecosystem":"PyPI","name":"requests"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"2.3.0"},{"fixed":"2.31.0"}]}]}]}"#;

fn tar(files: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut builder = ::tar::Builder::new(Vec::new());
    for (path, body) in files {
        let mut header = ::tar::Header::new_gnu();
        header.set_size(body.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder.append_data(&mut header, path, &body[..]).unwrap();
    }
    builder.into_inner().unwrap()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// Where pip installed `requests` (scripts/test installs schemathesis, which needs it):
/// its `.dist-info` directory, and the version pip recorded.
fn pip_requests() -> (std::path::PathBuf, String) {
    let out = run(Command::new("python3").args([
        "-c",
        "import importlib.metadata as m; d = m.distribution('requests'); print(d._path); print(d.version)",
    ]));
    let mut lines = out.lines();
    let path = lines.next().unwrap().trim().into();
    let version = lines.next().unwrap().trim().to_owned();
    (path, version)
}

/// The layers: this machine's dpkg status and os-release, pip's `requests` and `idna`
/// metadata, and npm's lockfile of the OIDC provider scripts/test installs (gzip); then a
/// layer (zstd) that removes `idna` with a whiteout and rewrites dpkg's status with Debian
/// 12.1's glibc.
fn layers() -> (Vec<Vec<u8>>, Value) {
    let status = std::fs::read_to_string("/var/lib/dpkg/status").unwrap();
    let installed = status
        .split("\n\n")
        .filter(|p| p.contains("Status: install ok installed"))
        .count();
    let (requests, requests_version) = pip_requests();
    let site = requests.parent().unwrap();
    let idna = std::fs::read_dir(site)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.starts_with("idna-") && name.ends_with(".dist-info")
        })
        .expect("pip installed idna with requests");
    let lock = std::path::Path::new(
        &std::env::var("OIDC_PROVIDER_MODULES")
            .unwrap_or_else(|_| "/var/cache/semdock-tools/oidc/node_modules".into()),
    )
    .parent()
    .unwrap()
    .join("package-lock.json");
    let lock_json: Value = serde_json::from_slice(&std::fs::read(&lock).unwrap()).unwrap();
    let jose = lock_json["packages"]["node_modules/jose"]["version"]
        .as_str()
        .unwrap()
        .to_owned();
    let file = |p: &std::path::Path| std::fs::read(p).unwrap();
    let base = gzip(&tar(&[
        ("var/lib/dpkg/status".into(), status.clone().into_bytes()),
        ("etc/os-release".into(), file("/etc/os-release".as_ref())),
        (
            "usr/lib/python3/site-packages/requests.dist-info/METADATA".into(),
            file(&requests.join("METADATA")),
        ),
        (
            "usr/lib/python3/site-packages/idna.dist-info/METADATA".into(),
            file(&idna.join("METADATA")),
        ),
        ("srv/app/package-lock.json".into(), file(&lock)),
    ]));
    let libc = status
        .split("\n\n")
        .find(|p| p.starts_with("Package: libc6\n"))
        .unwrap();
    let version_line = libc.lines().find(|l| l.starts_with("Version: ")).unwrap();
    let old = status.replacen(
        libc,
        &libc.replace(version_line, &format!("Version: {OLD_GLIBC}")),
        1,
    );
    let upper = zstd::encode_all(
        &tar(&[
            (
                "usr/lib/python3/site-packages/.wh.idna.dist-info".into(),
                Vec::new(),
            ),
            ("var/lib/dpkg/status".into(), old.into_bytes()),
        ])[..],
        3,
    )
    .unwrap();
    let expected = json!({"debs": installed, "requests": requests_version, "jose": jose});
    (vec![base, upper], expected)
}

/// A running registry, as the story needs it.
struct Site {
    base: String,
    auth: String,
    key: String,
}

impl Site {
    fn http(&self) -> ureq::Agent {
        http_as(Some(self.auth.clone()))
    }

    fn get(&self, path: &str) -> (u16, Value) {
        let mut res = self
            .http()
            .get(&format!("{}{path}", self.base))
            .call()
            .unwrap();
        let status = res.status().as_u16();
        let body = res.body_mut().read_to_string().unwrap_or_default();
        (status, serde_json::from_str(&body).unwrap_or(Value::Null))
    }

    fn send(&self, method: &str, path: &str, body: &Value) -> (u16, Value) {
        let url = format!("{}{path}", self.base);
        let agent = self.http();
        let text = body.to_string();
        let mut res = match method {
            "POST" => agent
                .post(&url)
                .header("Content-Type", "application/json")
                .send(&text),
            "PUT" => agent
                .put(&url)
                .header("Content-Type", "application/json")
                .send(&text),
            _ => agent.delete(&url).call(),
        }
        .unwrap();
        let status = res.status().as_u16();
        let body = res.body_mut().read_to_string().unwrap_or_default();
        (status, serde_json::from_str(&body).unwrap_or(Value::Null))
    }

    fn push(&self, repo: &str, tag: &str, layers: &[Vec<u8>]) -> String {
        let config =
            br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
        for blob in layers.iter().map(Vec::as_slice).chain([&config[..]]) {
            let res = self
                .http()
                .post(&format!(
                    "{}/v2/{repo}/blobs/uploads/?digest={}",
                    self.base,
                    Digest::of(blob)
                ))
                .header("Content-Type", "application/octet-stream")
                .send(blob)
                .unwrap();
            assert_eq!(res.status(), 201);
        }
        let types = [
            "application/vnd.oci.image.layer.v1.tar+gzip",
            "application/vnd.oci.image.layer.v1.tar+zstd",
        ];
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": Digest::of(config).as_str(), "size": config.len()},
            "layers": layers.iter().zip(types).map(|(l, t)| json!({"mediaType": t, "digest": Digest::of(l).as_str(), "size": l.len()})).collect::<Vec<_>>(),
        });
        let body = serde_json::to_vec(&manifest).unwrap();
        let res = self
            .http()
            .put(&format!("{}/v2/{repo}/manifests/{tag}", self.base))
            .header("Content-Type", OCI_MANIFEST)
            .send(&body[..])
            .unwrap();
        assert_eq!(res.status(), 201);
        Digest::of(&body).to_string()
    }

    fn cli(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_semdock"));
        cmd.args(args)
            .args(["--server", &self.base])
            .env("SEMDOCK_API_KEY", &self.key);
        cmd
    }
}

fn admin_key(base: &str, auth: &str) -> String {
    let mut res = http_as(Some(auth.to_owned()))
        .post(&format!("{base}/api/v1/keys"))
        .header("Content-Type", "application/json")
        .send(json!({"name": "cli", "admin": true, "owner_roles": true}).to_string())
        .unwrap();
    assert_eq!(res.status(), 201);
    let v: Value = serde_json::from_str(&res.body_mut().read_to_string().unwrap()).unwrap();
    v["key"].as_str().unwrap().to_owned()
}

/// The whole story on one registry.
#[allow(clippy::too_many_lines)]
fn story(site: &Site) {
    let (layers, expected) = layers();
    let digest = site.push("library/app", "1.0.0", &layers);

    // The SBOM appears shortly after the push, read by the queue.
    let started = Instant::now();
    let sbom = loop {
        let (status, body) = site.get(&format!("/api/v1/sbom?ref=library/app@{digest}"));
        if status == 200 {
            break body;
        }
        assert_eq!(status, 404, "{body}");
        assert!(
            started.elapsed() < Duration::from_mins(1),
            "no SBOM after a minute"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(sbom["bomFormat"], "CycloneDX");
    assert_eq!(sbom["specVersion"], "1.6");
    let components = sbom["components"].as_array().unwrap();
    let named = |kind: &str, name: &str| {
        components.iter().find(|c| {
            c["name"] == name
                && c["properties"]
                    .as_array()
                    .is_some_and(|p| p.iter().any(|p| p["value"] == kind))
        })
    };
    let debs = components
        .iter()
        .filter(|c| {
            c["purl"]
                .as_str()
                .is_some_and(|p| p.starts_with("pkg:deb/debian/"))
        })
        .count();
    assert_eq!(Some(debs as u64), expected["debs"].as_u64());
    assert_eq!(
        named("deb", "libc6").unwrap()["version"],
        OLD_GLIBC,
        "the upper layer's status replaced the lower's"
    );
    assert_eq!(
        named("python", "requests").unwrap()["version"],
        expected["requests"]
    );
    assert!(
        named("python", "idna").is_none(),
        "the whiteout removed idna"
    );
    assert_eq!(named("npm", "jose").unwrap()["version"], expected["jose"]);
    assert!(
        components
            .iter()
            .any(|c| c["type"] == "operating-system" && c["name"] == "debian")
    );

    // The referrers API lists it, as `oras discover` would ask.
    let (status, referrers) = site.get(&format!("/v2/library/app/referrers/{digest}"));
    assert_eq!(status, 200);
    let sboms: Vec<&Value> = referrers["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["artifactType"] == "application/vnd.cyclonedx+json")
        .collect();
    assert_eq!(sboms.len(), 1, "{referrers}");
    let (status, spdx) = site.get("/api/v1/sbom?ref=library/app:1.0.0&format=spdx");
    assert_eq!(status, 200);
    assert_eq!(spdx["spdxVersion"], "SPDX-2.3");

    // No database yet: scanned, nothing known.
    let (_, report) = site.get("/api/v1/vulnerabilities?ref=library/app:1.0.0");
    assert_eq!(report["state"], "scanned");
    assert_eq!(report["findings"].as_array().unwrap().len(), 0);

    // Real records, as a zip like osv.dev's exports and as one JSON file, through the CLI.
    let dir = tempfile::tempdir().unwrap();
    let zip_path = dir.path().join("Debian-all.zip");
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&zip_path).unwrap());
    for (name, body) in [
        ("DSA-5514-1.json", DSA_5514_1),
        ("CVE-2023-4911.json", CVE_2023_4911),
    ] {
        zip.start_file(name, zip::write::SimpleFileOptions::default())
            .unwrap();
        zip.write_all(body.as_bytes()).unwrap();
    }
    zip.finish().unwrap();
    let pypi = dir.path().join("GHSA-j8r2-6x86-q33q.json");
    std::fs::write(&pypi, GHSA_REQUESTS).unwrap();
    let out = run(&mut site.cli(&[
        "vulndb",
        "import",
        zip_path.to_str().unwrap(),
        pypi.to_str().unwrap(),
    ]));
    assert!(out.contains("Debian-all.zip: 2 records"), "{out}");
    let bad = dir.path().join("not-osv.json");
    std::fs::write(&bad, "{\"hello\": 1}").unwrap();
    let out = run_fail(&mut site.cli(&["vulndb", "import", bad.to_str().unwrap()]));
    assert!(
        out.contains("not-osv.json is neither an OSV record"),
        "{out}"
    );

    // The report changed without a rescan: the same SBOM referrer, a new finding.
    let (_, report) = site.get("/api/v1/vulnerabilities?ref=library/app:1.0.0");
    let findings = report["findings"].as_array().unwrap();
    let glibc = findings
        .iter()
        .find(|f| f["advisory"] == "DSA-5514-1")
        .unwrap_or_else(|| panic!("{report}"));
    assert_eq!(glibc["package"], "libc6");
    assert_eq!(glibc["installed"], OLD_GLIBC);
    assert_eq!(glibc["fixed"], "2.36-9+deb12u3");
    assert_eq!(glibc["severity"], "high", "rated by its CVE's record");
    assert!(
        !findings.iter().any(|f| f["package"] == "requests"),
        "pip's requests is newer than 2.31.0: {report}"
    );
    let (_, again) = site.get(&format!("/v2/library/app/referrers/{digest}"));
    assert_eq!(again["manifests"], referrers["manifests"]);
    let out = run_fail(&mut site.cli(&["vuln", "library/app:1.0.0", "--fail-at", "high"]));
    assert!(
        out.contains("DSA-5514-1") && out.contains("fixed in 2.36-9+deb12u3"),
        "{out}"
    );

    // A gated feed refuses the promotion, naming the finding and the way out.
    run(&mut site.cli(&["vuln", "policy", "prod", "--refuse-at", "high"]));
    let promote = json!({"from": "library/app:1.0.0", "to": "prod/app:1.0.0"});
    let (status, refused) = site.send("POST", "/api/v1/promotions", &promote);
    assert_eq!(status, 403, "{refused}");
    let message = refused["error"]["message"].as_str().unwrap().to_owned();
    assert!(
        message.contains("DSA-5514-1") && message.contains("vuln exception add"),
        "{message}"
    );
    // An exception that has expired does not count.
    run(&mut site.cli(&[
        "vuln",
        "exception",
        "add",
        "prod",
        "CVE-2023-4911",
        "--reason",
        "setuid binaries removed",
        "--expires",
        "2024-01-31",
    ]));
    let (status, _) = site.send("POST", "/api/v1/promotions", &promote);
    assert_eq!(status, 403);
    let (status, policy) = site.send(
        "POST",
        "/api/v1/feeds/prod/vuln-policy/exceptions",
        &json!({"advisory": "CVE-2023-4911", "reason": "setuid binaries removed", "expires": "2099-12-31"}),
    );
    assert_eq!(status, 200, "{policy}");
    let (status, promoted) = site.send("POST", "/api/v1/promotions", &promote);
    assert_eq!(status, 200, "{promoted}");
    let (status, bad) = site.send(
        "POST",
        "/api/v1/feeds/prod/vuln-policy/exceptions",
        &json!({"advisory": "CVE-1", "reason": "x", "expires": "next week"}),
    );
    assert_eq!(status, 400, "{bad}");
    let (_, audit) = site.get("/api/v1/audit?kind=vuln-policy-changed");
    assert!(
        audit.to_string().contains("setuid binaries removed"),
        "{audit}"
    );
}

#[test]
fn sboms_reports_and_the_promotion_gate_on_the_embedded_engine() {
    let server = common::Server::start();
    let auth = basic("admin", &server.admin_password);
    let base = server.url("");
    let key = admin_key(&base, &auth);
    story(&Site { base, auth, key });
}

#[test]
fn sboms_reports_and_the_promotion_gate_on_postgres_and_s3() {
    let cluster = common::cluster::Cluster::start(1);
    let auth = cluster.admin();
    let base = cluster.nodes[0].url("");
    let key = admin_key(&base, &auth);
    story(&Site { base, auth, key });
}
