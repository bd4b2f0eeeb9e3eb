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
pub(crate) const DSA_5514_1: &str = r#"{"id":"DSA-5514-1","summary":"glibc - security update","modified":"2023-10-03T00:00:00Z","published":"2023-10-03T00:00:00Z","related":["CVE-2023-4527","CVE-2023-4806","CVE-2023-4911"],"affected":[{"package":{"ecosystem":"Debian:12","name":"glibc"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"2.36-9+deb12u3"}]}]},{"package":{"ecosystem":"Debian:11","name":"glibc"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"2.31-13+deb11u7"}]}]}],"references":[{"type":"ADVISORY","url":"https://www.debian.org/security/2023/dsa-5514"}]}"#;

/// DSA-5611-1 (glibc: CVE-2023-6246, CVE-2023-6779, CVE-2023-6780), fixed in 2.36-9+deb12u4.
pub(crate) const DSA_5611_1: &str = r#"{"id":"DSA-5611-1","summary":"glibc - security update","modified":"2024-01-31T00:00:00Z","published":"2024-01-31T00:00:00Z","related":["CVE-2023-6246","CVE-2023-6779","CVE-2023-6780"],"affected":[{"package":{"ecosystem":"Debian:12","name":"glibc"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"2.36-9+deb12u4"}]}]}],"references":[{"type":"ADVISORY","url":"https://www.debian.org/security/2024/dsa-5611"}]}"#;

/// GO-2023-1878 (net/http Host header sanitisation; CVE-2023-29406) from the Go
/// vulnerability database, fixed in 1.19.11 and 1.20.6.
pub(crate) const GO_2023_1878: &str = r#"{"id":"GO-2023-1878","modified":"2024-05-20T20:15:12Z","published":"2023-07-11T19:51:00Z","aliases":["CVE-2023-29406","GHSA-f8f7-69v5-w4vx"],"summary":"Insufficient sanitization of Host header in net/http","affected":[{"package":{"name":"stdlib","ecosystem":"Go"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"1.19.11"},{"introduced":"1.20.0-0"},{"fixed":"1.20.6"}]}],"ecosystem_specific":{"imports":[{"path":"net/http","symbols":["Client.Do"]}]}}],"references":[{"type":"REPORT","url":"https://go.dev/issue/60374"}],"database_specific":{"url":"https://pkg.go.dev/vuln/GO-2023-1878"}}"#;

/// GHSA-j288-q9x7-2f5v (Apache Commons Lang's uncontrolled recursion; CVE-2025-48924),
/// fixed in commons-lang3 3.18.0.
pub(crate) const GHSA_COMMONS_LANG: &str = r#"{"id":"GHSA-j288-q9x7-2f5v","modified":"2025-07-14T00:00:00Z","published":"2025-07-11T18:31:00Z","aliases":["CVE-2025-48924"],"summary":"Apache Commons Lang is vulnerable to Uncontrolled Recursion when processing long inputs","affected":[{"package":{"ecosystem":"Maven","name":"org.apache.commons:commons-lang3"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"3.0"},{"fixed":"3.18.0"}]}]},{"package":{"ecosystem":"Maven","name":"commons-lang:commons-lang"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"2.0"},{"last_affected":"2.6"}]}]}],"database_specific":{"severity":"MODERATE"}}"#;

/// CVE-2023-4911 with the CVSS v3.1 vector NVD published (7.8, high).
pub(crate) const CVE_2023_4911: &str = r#"{"id":"CVE-2023-4911","modified":"2024-01-01T00:00:00Z","summary":"A buffer overflow in the GNU C Library's dynamic loader processing GLIBC_TUNABLES","severity":[{"type":"CVSS_V3","score":"CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H"}],"affected":[]}"#;

/// GHSA-j8r2-6x86-q33q (requests leaking Proxy-Authorization), fixed in 2.31.0.
const GHSA_REQUESTS: &str = r#"{"id":"GHSA-j8r2-6x86-q33q","modified":"2023-11-08T00:00:00Z","aliases":["CVE-2023-32681","PYSEC-2023-74"],"summary":"Unintended leak of Proxy-Authorization header in requests","severity":[{"type":"CVSS_V3","score":"CVSS:3.1/AV:N/AC:H/PR:N/UI:R/S:C/C:H/I:N/A:N"}],"affected":[{"package":{"ecosystem":"PyPI","name":"requests"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"2.3.0"},{"fixed":"2.31.0"}]}]}]}"#;

pub(crate) fn tar(files: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut builder = ::tar::Builder::new(Vec::new());
    for (path, body) in files {
        let mut header = ::tar::Header::new_gnu();
        header.set_size(body.len() as u64);
        header.set_mode(if path.contains("/bin/") { 0o755 } else { 0o644 });
        header.set_cksum();
        builder.append_data(&mut header, path, &body[..]).unwrap();
    }
    builder.into_inner().unwrap()
}

pub(crate) fn gzip(bytes: &[u8]) -> Vec<u8> {
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
pub(crate) fn layers() -> (Vec<Vec<u8>>, Value) {
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
        // A real Go program, as Debian built it (its build information names the Go version).
        (
            "usr/local/bin/skopeo".into(),
            file("/usr/bin/skopeo".as_ref()),
        ),
        // A real Java archive, as Debian built it with Maven.
        (
            "opt/app/lib/commons-lang3.jar".into(),
            file("/usr/share/java/commons-lang3.jar".as_ref()),
        ),
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
pub(crate) struct Site {
    pub base: String,
    pub auth: String,
    pub key: String,
}

impl Site {
    /// The administrator of `server`, without an API key.
    fn of(server: &common::Server) -> Self {
        Self {
            base: server.url(""),
            key: String::new(),
            auth: basic("admin", &server.admin_password),
        }
    }

    pub fn http(&self) -> ureq::Agent {
        http_as(Some(self.auth.clone()))
    }

    pub fn get(&self, path: &str) -> (u16, Value) {
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

    pub fn push(&self, repo: &str, tag: &str, layers: &[Vec<u8>]) -> String {
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

    pub fn cli(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_semdock"));
        cmd.args(args)
            .args(["--server", &self.base])
            .env("SEMDOCK_API_KEY", &self.key);
        cmd
    }
}

pub(crate) fn admin_key(base: &str, auth: &str) -> String {
    let mut res = http_as(Some(auth.to_owned()))
        .post(&format!("{base}/api/v1/keys"))
        .header("Content-Type", "application/json")
        .send(json!({"name": "cli", "admin": true, "owner_roles": true}).to_string())
        .unwrap();
    assert_eq!(res.status(), 201);
    let v: Value = serde_json::from_str(&res.body_mut().read_to_string().unwrap()).unwrap();
    v["key"].as_str().unwrap().to_owned()
}

/// Waits until image `reference` has been read.
pub(crate) fn wait_scanned(site: &Site, reference: &str) {
    let started = Instant::now();
    loop {
        let (_, report) = site.get(&format!("/api/v1/vulnerabilities?ref={reference}"));
        if report["state"] == "scanned" {
            return;
        }
        assert!(started.elapsed() < Duration::from_mins(1), "{report}");
        std::thread::sleep(Duration::from_millis(100));
    }
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
    let lang = named("maven", "org.apache.commons:commons-lang3").expect("the jar's coordinates");
    let lang_version = lang["version"].as_str().unwrap().to_owned();
    let go = named("go", "stdlib").expect("skopeo's Go version");
    let go_version = go["version"].as_str().unwrap().to_owned();
    assert!(go_version.starts_with("1."), "{go}");

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
    std::fs::write(
        &pypi,
        format!("[{GHSA_REQUESTS}, {GO_2023_1878}, {GHSA_COMMONS_LANG}]"),
    )
    .unwrap();
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
    let old_go = semver::Version::parse(&go_version).unwrap() < semver::Version::new(1, 19, 11);
    assert_eq!(
        findings
            .iter()
            .any(|f| f["advisory"] == "GO-2023-1878" && f["package"] == "stdlib"),
        old_go,
        "Go {go_version} and GO-2023-1878 (fixed in 1.19.11): {report}"
    );
    let lang = findings
        .iter()
        .find(|f| f["advisory"] == "GHSA-j288-q9x7-2f5v")
        .unwrap_or_else(|| panic!("commons-lang3 {lang_version} < 3.18.0: {report}"));
    assert_eq!(lang["severity"], "medium");
    assert_eq!(lang["fixed"], "3.18.0");
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
    let (_, carried) = site.get(&format!("/v2/prod/app/referrers/{digest}"));
    assert_eq!(
        carried["manifests"][0]["artifactType"], "application/vnd.cyclonedx+json",
        "semdock's SBOM went with the image: {carried}"
    );

    // Which released versions carry it, and which version fixes it: 1.1.0 has this
    // machine's own (current) glibc.
    let fixed = gzip(&tar(&[
        (
            "var/lib/dpkg/status".into(),
            std::fs::read("/var/lib/dpkg/status").unwrap(),
        ),
        (
            "etc/os-release".into(),
            std::fs::read("/etc/os-release").unwrap(),
        ),
    ]));
    site.push("library/app", "1.1.0", &[fixed]);
    wait_scanned(site, "library/app:1.1.0");
    let out = run(&mut site.cli(&["vuln", "affected", "CVE-2023-4911"]));
    assert!(
        out.contains("CVE-2023-4911 (high), also DSA-5514-1"),
        "{out}"
    );
    assert!(
        out.contains("library/app 1.0.0 — fixed in library/app:1.1.0"),
        "{out}"
    );
    assert!(
        out.contains("prod/app 1.0.0 — fixed in library/app:1.1.0"),
        "{out}"
    );
    let (status, _) = site.get("/api/v1/vulnerabilities/affected?id=CVE-1999-0001");
    assert_eq!(status, 404);
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

    // A pull gate: refused, then served with a warning; the SBOM itself is never gated.
    run(&mut site.cli(&[
        "vuln",
        "policy",
        "library",
        "--refuse-at",
        "high",
        "--on-pull",
        "refuse",
    ]));
    let pull = |reference: &str| {
        site.http()
            .get(&format!(
                "{}/v2/library/app/manifests/{reference}",
                site.base
            ))
            .header("Accept", OCI_MANIFEST)
            .call()
            .unwrap()
    };
    let mut refused = pull("1.0.0");
    assert_eq!(refused.status(), 403);
    let body = refused.body_mut().read_to_string().unwrap();
    assert!(
        body.contains("DENIED") && body.contains("DSA-5514-1"),
        "{body}"
    );
    let sbom_manifest = sboms[0]["digest"].as_str().unwrap();
    assert_eq!(pull(sbom_manifest).status(), 200);
    run(&mut site.cli(&[
        "vuln",
        "policy",
        "library",
        "--refuse-at",
        "high",
        "--on-pull",
        "warn",
    ]));
    let warned = pull("1.0.0");
    assert_eq!(warned.status(), 200);
    let warning = warned.headers()["warning"].to_str().unwrap().to_owned();
    assert!(warning.contains("DSA-5514-1"), "{warning}");
    run(&mut site.cli(&["vuln", "policy", "library", "--remove"]));
    assert!(pull("1.0.0").headers().get("warning").is_none());

    // A new advisory makes a released version of a watched feed (one with a policy)
    // vulnerable: a VulnerabilityFound event, which webhooks can subscribe to.
    let dir = tempfile::tempdir().unwrap();
    let newer = dir.path().join("DSA-5611-1.json");
    std::fs::write(&newer, DSA_5611_1).unwrap();
    run(&mut site.cli(&["vulndb", "import", newer.to_str().unwrap()]));
    let (_, found) = site.get("/api/v1/audit?kind=vulnerability-found");
    let entries = found.as_array().unwrap();
    assert_eq!(
        entries.len(),
        1,
        "prod is watched, library (no policy) is not: {found}"
    );
    let change = entries[0]["change"].as_str().unwrap_or_default();
    assert!(
        change.contains("prod/app:1.0.0 is affected by DSA-5611-1")
            && change.contains("fixed in 2.36-9+deb12u4"),
        "{found}"
    );
    // Importing it again finds nothing new.
    run(&mut site.cli(&["vulndb", "import", newer.to_str().unwrap()]));
    let (_, again) = site.get("/api/v1/audit?kind=vulnerability-found");
    assert_eq!(again.as_array().unwrap().len(), 1);

    // A record withdrawn upstream, imported again, takes its findings with it.
    let withdrawn = dir.path().join("withdrawn.json");
    std::fs::write(
        &withdrawn,
        GHSA_COMMONS_LANG.replacen(
            r#""modified":"2025-07-14T00:00:00Z""#,
            r#""modified":"2025-08-01T00:00:00Z","withdrawn":"2025-08-01T00:00:00Z""#,
            1,
        ),
    )
    .unwrap();
    let out = run(&mut site.cli(&["vulndb", "import", withdrawn.to_str().unwrap()]));
    assert!(out.contains("1 records (1 withdrawn)"), "{out}");
    let (_, report) = site.get("/api/v1/vulnerabilities?ref=library/app:1.0.0");
    assert!(
        !report.to_string().contains("GHSA-j288-q9x7-2f5v"),
        "{report}"
    );
}

/// An OCI index over `children` (manifest digests and sizes), for linux/amd64 and arm64.
fn index(children: &[(String, usize)]) -> Vec<u8> {
    let platforms = ["amd64", "arm64"];
    serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": children.iter().zip(platforms).map(|((d, size), arch)| json!({
            "mediaType": OCI_MANIFEST, "digest": d, "size": size,
            "platform": {"os": "linux", "architecture": arch},
        })).collect::<Vec<_>>(),
    }))
    .unwrap()
}

fn installed_debs() -> usize {
    std::fs::read_to_string("/var/lib/dpkg/status")
        .unwrap()
        .split("\n\n")
        .filter(|p| p.contains("Status: install ok installed"))
        .count()
}

#[test]
fn the_queue_survives_kill_9_and_every_platform_of_an_index_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = common::Server::start_in(&data, &[]);
    let auth = basic("admin", &server.admin_password);
    let site = Site {
        base: server.url(""),
        key: String::new(),
        auth,
    };
    let status = std::fs::read("/var/lib/dpkg/status").unwrap();
    let amd64 = vec![gzip(&tar(&[
        ("var/lib/dpkg/status".into(), status),
        (
            "etc/os-release".into(),
            std::fs::read("/etc/os-release").unwrap(),
        ),
    ]))];
    let lock =
        br#"{"lockfileVersion":3,"packages":{"":{},"node_modules/jose":{"version":"4.15.9"}}}"#;
    let arm64 = vec![gzip(&tar(&[(
        "app/package-lock.json".into(),
        lock.to_vec(),
    )]))];
    let a = site.push("library/multi", "amd64", &amd64);
    let b = site.push("library/multi", "arm64", &arm64);
    let length_of = |d: &str| {
        let mut res = site
            .http()
            .get(&format!("{}/v2/library/multi/manifests/{d}", site.base))
            .header("Accept", OCI_MANIFEST)
            .call()
            .unwrap();
        res.body_mut().read_to_vec().unwrap().len()
    };
    let body = index(&[(a.clone(), length_of(&a)), (b.clone(), length_of(&b))]);
    let res = site
        .http()
        .put(&format!("{}/v2/library/multi/manifests/1.0.0", site.base))
        .header("Content-Type", "application/vnd.oci.image.index.v1+json")
        .send(&body[..])
        .unwrap();
    assert_eq!(res.status(), 201);
    // Killed right after the pushes were acknowledged: the queue is in the metadata store.
    server.kill9();
    let server = common::Server::start_in(&data, &[]);
    let site = Site {
        base: server.url(""),
        key: String::new(),
        auth: site.auth,
    };
    let started = Instant::now();
    let report = loop {
        let (status, report) = site.get("/api/v1/vulnerabilities?ref=library/multi:1.0.0");
        assert_eq!(status, 200, "{report}");
        if report["state"] == "scanned" && report["packages"].as_u64() > Some(1) {
            break report;
        }
        assert!(started.elapsed() < Duration::from_mins(1), "{report}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(
        report["packages"].as_u64(),
        Some(installed_debs() as u64 + 1),
        "both platforms: {report}"
    );
    for (child, wanted) in [(&a, "libc6"), (&b, "jose")] {
        let (status, sbom) = site.get(&format!("/api/v1/sbom?ref=library/multi@{child}"));
        assert_eq!(status, 200);
        assert!(sbom.to_string().contains(wanted));
        let (_, referrers) = site.get(&format!("/v2/library/multi/referrers/{child}"));
        assert_eq!(
            referrers["manifests"].as_array().unwrap().len(),
            1,
            "one SBOM, even if read twice"
        );
    }
}

/// The resident memory of process `pid`, in KiB.
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// Uploads `parts` (in order) as one blob of `repo` in `PATCH` requests, to be published as `digest`.
fn upload_in_patches<'a>(
    site: &Site,
    repo: &str,
    parts: impl Iterator<Item = &'a [u8]>,
    digest: &Digest,
) {
    let mut res = site
        .http()
        .post(&format!("{}/v2/{repo}/blobs/uploads/", site.base))
        .send_empty()
        .unwrap();
    assert_eq!(res.status(), 202);
    let _ = res.body_mut().read_to_string();
    let mut location = res.headers()["location"].to_str().unwrap().to_owned();
    let mut offset = 0u64;
    for bytes in parts {
        let res = site
            .http()
            .patch(&format!("{}{location}", site.base))
            .header("Content-Type", "application/octet-stream")
            .header(
                "Content-Range",
                &format!("{offset}-{}", offset + bytes.len() as u64 - 1),
            )
            .send(bytes)
            .unwrap();
        assert_eq!(res.status(), 202);
        offset += bytes.len() as u64;
        res.headers()["location"]
            .to_str()
            .unwrap()
            .clone_into(&mut location);
    }
    let sep = if location.contains('?') { '&' } else { '?' };
    let res = site
        .http()
        .put(&format!("{}{location}{sep}digest={digest}", site.base))
        .send_empty()
        .unwrap();
    assert_eq!(res.status(), 201);
}

#[test]
fn a_two_gib_layer_is_read_in_bounded_memory() {
    const SIZE: u64 = 2 << 30;
    let server = common::Server::start();
    let site = Site::of(&server);
    // One uncompressed layer: a 2 GiB file, then dpkg's status (read only at the end).
    let status = std::fs::read("/var/lib/dpkg/status").unwrap();
    let mut head = ::tar::Header::new_gnu();
    head.set_path("srv/big.bin").unwrap();
    head.set_size(SIZE);
    head.set_mode(0o644);
    head.set_cksum();
    let mut tail = ::tar::Builder::new(Vec::new());
    let mut h = ::tar::Header::new_gnu();
    h.set_size(status.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    tail.append_data(&mut h, "var/lib/dpkg/status", &status[..])
        .unwrap();
    let tail = tail.into_inner().unwrap();
    let chunk = vec![0x5au8; 16 << 20];
    let chunks = usize::try_from(SIZE / chunk.len() as u64).unwrap();
    let parts = || {
        std::iter::once(head.as_bytes().as_slice())
            .chain(std::iter::repeat_n(chunk.as_slice(), chunks))
            .chain(std::iter::once(tail.as_slice()))
    };
    let mut hasher = semdock::model::Algorithm::Sha256.hasher();
    for part in parts() {
        hasher.update(part);
    }
    let digest = hasher.finish();
    let len: u64 = parts().map(|p| p.len() as u64).sum();
    upload_in_patches(&site, "library/big", parts(), &digest);
    let config = br#"{"architecture":"amd64","os":"linux"}"#;
    let res = site
        .http()
        .post(&format!(
            "{}/v2/library/big/blobs/uploads/?digest={}",
            site.base,
            Digest::of(config)
        ))
        .send(&config[..])
        .unwrap();
    assert_eq!(res.status(), 201);
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": Digest::of(config).as_str(), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digest.as_str(), "size": len}],
    }))
    .unwrap();
    let pid = server.child.id();
    let before = rss_kib(pid);
    let res = site
        .http()
        .put(&format!("{}/v2/library/big/manifests/1", site.base))
        .header("Content-Type", OCI_MANIFEST)
        .send(&manifest[..])
        .unwrap();
    assert_eq!(res.status(), 201);
    let mut peak = before;
    let started = Instant::now();
    let sbom = loop {
        peak = peak.max(rss_kib(pid));
        let (status, body) = site.get("/api/v1/sbom?ref=library/big:1");
        if status == 200 {
            break body;
        }
        assert!(
            started.elapsed() < Duration::from_mins(5),
            "no SBOM for the 2 GiB layer"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        sbom.to_string().contains("libc6"),
        "the status file after 2 GiB was read"
    );
    let grew = peak.saturating_sub(before);
    eprintln!("RSS before the read {before} KiB, peak during it {peak} KiB (+{grew} KiB)");
    assert!(
        grew < 24 << 10,
        "reading a 2 GiB layer raised RSS by {grew} KiB"
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

/// A real RPM database: `rpmbuild` makes two packages (one with an epoch) and `rpm
/// --justdb` installs them into a fresh `rpmdb.sqlite` (rpm 4.18's SQLite backend, the
/// one RHEL 9, Rocky 9 and Fedora use), which an image's layer then holds.
fn rpm_database(dir: &std::path::Path) -> Vec<u8> {
    let db = dir.join("db");
    std::fs::create_dir_all(dir.join("SPECS")).unwrap();
    std::fs::create_dir_all(&db).unwrap();
    for (name, epoch, version, release) in [
        ("openssl-libs", "1", "3.0.7", "24.el9"),
        ("bash", "0", "5.1.8", "6.el9_1"),
    ] {
        let spec = dir.join("SPECS").join(format!("{name}.spec"));
        std::fs::write(
            &spec,
            format!("Name: {name}\nEpoch: {epoch}\nVersion: {version}\nRelease: {release}\nSummary: s\nLicense: MIT\nBuildArch: noarch\n%description\nd\n%files\n"),
        )
        .unwrap();
        run(Command::new("rpmbuild")
            .arg("--define")
            .arg(format!("_topdir {}", dir.display()))
            .args(["-bb", "--quiet"])
            .arg(&spec));
    }
    run(Command::new("rpm").arg("--dbpath").arg(&db).arg("--initdb"));
    let rpms: Vec<std::path::PathBuf> = std::fs::read_dir(dir.join("RPMS/noarch"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    run(Command::new("rpm")
        .arg("--dbpath")
        .arg(&db)
        .args(["-i", "--justdb", "--nodeps", "--ignoreos", "--ignorearch"])
        .args(&rpms));
    std::fs::read(db.join("rpmdb.sqlite")).unwrap()
}

#[test]
fn an_rpm_database_is_read_from_a_layer() {
    let server = common::Server::start();
    let site = Site::of(&server);
    let dir = tempfile::tempdir().unwrap();
    let rpmdb = rpm_database(dir.path());
    let layer = gzip(&tar(&[
        ("var/lib/rpm/rpmdb.sqlite".into(), rpmdb),
        (
            "etc/os-release".into(),
            b"NAME=\"Rocky Linux\"\nID=\"rocky\"\nVERSION_ID=\"9.3\"\n".to_vec(),
        ),
    ]));
    site.push("library/rocky", "1", &[layer]);
    wait_scanned(&site, "library/rocky:1");
    let (status, sbom) = site.get("/api/v1/sbom?ref=library/rocky:1");
    assert_eq!(status, 200);
    let rpms: Vec<(String, String, String)> = sbom["components"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| {
            c["purl"]
                .as_str()
                .is_some_and(|p| p.starts_with("pkg:rpm/"))
        })
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_owned(),
                c["version"].as_str().unwrap().to_owned(),
                c["purl"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(rpms.len(), 2, "{sbom}");
    assert_eq!(
        (rpms[0].0.as_str(), rpms[0].1.as_str()),
        ("bash", "5.1.8-6.el9_1")
    );
    assert_eq!(
        (rpms[1].0.as_str(), rpms[1].1.as_str()),
        ("openssl-libs", "1:3.0.7-24.el9")
    );
    assert!(
        rpms[1].2.starts_with(
            "pkg:rpm/rocky/openssl-libs@3.0.7-24.el9?arch=noarch&distro=rocky-9.3&epoch=1"
        ),
        "{}",
        rpms[1].2
    );
}

/// `python3 -m http.server` serving `dir` on loopback, stopped by its PID.
struct Mirror {
    child: std::process::Child,
    port: u16,
}

impl Mirror {
    fn start(dir: &std::path::Path) -> Self {
        use std::io::BufRead as _;
        let mut child = Command::new("python3")
            .args([
                "-u",
                "-m",
                "http.server",
                "0",
                "--bind",
                "127.0.0.1",
                "--directory",
            ])
            .arg(dir)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        // "Serving HTTP on 127.0.0.1 port 41234 (http://127.0.0.1:41234/) ..."
        let port = line
            .split_whitespace()
            .skip_while(|w| *w != "port")
            .nth(1)
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no port in {line:?}"));
        Self { child, port }
    }
}

impl Drop for Mirror {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_configured_mirror_is_fetched_and_imported_at_start() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("Debian")).unwrap();
    let mut zip =
        zip::ZipWriter::new(std::fs::File::create(dir.path().join("Debian/all.zip")).unwrap());
    for (name, body) in [
        ("DSA-5514-1.json", DSA_5514_1),
        ("DSA-5611-1.json", DSA_5611_1),
    ] {
        zip.start_file(name, zip::write::SimpleFileOptions::default())
            .unwrap();
        zip.write_all(body.as_bytes()).unwrap();
    }
    zip.finish().unwrap();
    let mirror = Mirror::start(dir.path());
    let urls = format!(
        "[\"http://127.0.0.1:{}/Debian/all.zip\", \"http://127.0.0.1:{}/missing.zip\"]",
        mirror.port, mirror.port
    );
    let data = dir.path().join("data");
    let server = common::Server::start_in(&data, &[("SEMDOCK_VULNDB__URLS", &urls)]);
    let site = Site::of(&server);
    let started = Instant::now();
    let db = loop {
        let (status, db) = site.get("/api/v1/vulndb");
        assert_eq!(status, 200);
        if db["sources"].as_array().is_some_and(|s| !s.is_empty()) {
            break db;
        }
        assert!(
            started.elapsed() < Duration::from_mins(1),
            "nothing fetched: {db}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let source = &db["sources"][0];
    assert_eq!(source["name"], "all.zip");
    assert_eq!(source["records"], 2);
    assert_eq!(source["imported_by"], "scheduler");
    let started = Instant::now();
    while !server.log().contains("the mirror answered 404") {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_connector_feeds_cached_image_is_read_once_its_layers_are_pulled() {
    let upstream = common::Server::start();
    let up = Site {
        base: upstream.url(""),
        key: String::new(),
        auth: basic("admin", &upstream.admin_password),
    };
    let layer = gzip(&tar(&[
        (
            "var/lib/dpkg/status".into(),
            std::fs::read("/var/lib/dpkg/status").unwrap(),
        ),
        (
            "etc/os-release".into(),
            std::fs::read("/etc/os-release").unwrap(),
        ),
    ]));
    let digest = up.push("prod/base", "1.0.0", std::slice::from_ref(&layer));
    let server = common::Server::start();
    let site = Site::of(&server);
    let (status, body) = site.send(
        "POST",
        "/api/v1/feeds",
        &json!({"name": "hub", "upstream": {
            "url": upstream.url(""), "username": "admin",
            "password": upstream.admin_password, "prefix": "prod",
        }}),
    );
    assert_eq!(status, 201, "{body}");
    let res = site
        .http()
        .get(&format!("{}/v2/hub/base/manifests/1.0.0", site.base))
        .header("Accept", OCI_MANIFEST)
        .call()
        .unwrap();
    assert_eq!(res.status(), 200);
    // Cached, queued, and waiting: nobody pulled its layer yet.
    std::thread::sleep(Duration::from_secs(3));
    let (_, report) = site.get("/api/v1/vulnerabilities?ref=hub/base:1.0.0");
    assert_eq!(report["state"], "pending", "{report}");
    let res = site
        .http()
        .get(&format!(
            "{}/v2/hub/base/blobs/{}",
            site.base,
            Digest::of(&layer)
        ))
        .call()
        .unwrap();
    assert_eq!(res.status(), 200);
    // Looked at again within 10 s of the last try.
    let started = Instant::now();
    let report = loop {
        let (_, report) = site.get("/api/v1/vulnerabilities?ref=hub/base:1.0.0");
        if report["state"] == "scanned" {
            break report;
        }
        assert!(started.elapsed() < Duration::from_secs(90), "{report}");
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(
        report["packages"].as_u64(),
        Some(installed_debs() as u64),
        "{report}"
    );
    let (_, referrers) = site.get(&format!("/v2/hub/base/referrers/{digest}"));
    assert_eq!(
        referrers["manifests"].as_array().map(Vec::len),
        Some(0),
        "a connector feed holds only its upstream's manifests"
    );
}

/// Pushes an SPDX SBOM as a builder attaches one (a referrer of `repo@subject`).
pub(crate) fn push_builder_sbom(site: &Site, repo: &str, subject: &str) {
    let document = br#"{"spdxVersion":"SPDX-2.3","dataLicense":"CC0-1.0","SPDXID":"SPDXRef-DOCUMENT","name":"built","documentNamespace":"https://example.invalid/built","creationInfo":{"created":"2026-01-01T00:00:00Z","creators":["Tool: syft-1.0.0"]},"packages":[]}"#;
    let empty = b"{}";
    for blob in [&document[..], &empty[..]] {
        let res = site
            .http()
            .post(&format!(
                "{}/v2/{repo}/blobs/uploads/?digest={}",
                site.base,
                Digest::of(blob)
            ))
            .send(blob)
            .unwrap();
        assert_eq!(res.status(), 201);
    }
    let image = site
        .http()
        .get(&format!("{}/v2/{repo}/manifests/{subject}", site.base))
        .header("Accept", OCI_MANIFEST)
        .call()
        .unwrap()
        .body_mut()
        .read_to_vec()
        .unwrap();
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "artifactType": "application/spdx+json",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": Digest::of(empty).as_str(), "size": 2},
        "layers": [{"mediaType": "application/spdx+json", "digest": Digest::of(document).as_str(), "size": document.len()}],
        "subject": {"mediaType": OCI_MANIFEST, "digest": subject, "size": image.len()},
    }))
    .unwrap();
    let res = site
        .http()
        .put(&format!(
            "{}/v2/{repo}/manifests/{}",
            site.base,
            Digest::of(&manifest)
        ))
        .header("Content-Type", OCI_MANIFEST)
        .send(&manifest[..])
        .unwrap();
    assert_eq!(res.status(), 201);
}

/// CVE-2023-6246 (glibc's syslog heap overflow) with NVD's CVSS v3.1 vector (7.8, high).
const CVE_2023_6246: &str = r#"{"id":"CVE-2023-6246","modified":"2024-02-01T00:00:00Z","summary":"A heap-based buffer overflow in the __vsyslog_internal function of the GNU C Library","severity":[{"type":"CVSS_V3","score":"CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H"}],"affected":[]}"#;

#[test]
fn virtual_tags_follow_only_versions_that_pass_the_vulnerability_policy() {
    let server = common::Server::start();
    let auth = basic("admin", &server.admin_password);
    let base = server.url("");
    let key = admin_key(&base, &auth);
    let site = Site { base, auth, key };
    let (status, body) = site.send(
        "POST",
        "/api/v1/feeds",
        &json!({"name": "rel", "versioning": true}),
    );
    assert_eq!(status, 201, "{body}");
    let dir = tempfile::tempdir().unwrap();
    let import = |name: &str, records: &[&str]| {
        let file = dir.path().join(name);
        std::fs::write(&file, format!("[{}]", records.join(","))).unwrap();
        run(&mut site.cli(&["vulndb", "import", file.to_str().unwrap()]));
    };
    import("debian.json", &[DSA_5514_1, CVE_2023_4911]);
    run(&mut site.cli(&[
        "vuln",
        "policy",
        "rel",
        "--refuse-at",
        "high",
        "--virtual-tags",
    ]));
    let status = std::fs::read_to_string("/var/lib/dpkg/status").unwrap();
    let os = std::fs::read("/etc/os-release").unwrap();
    let image = |status: &str| {
        gzip(&tar(&[
            ("var/lib/dpkg/status".into(), status.as_bytes().to_vec()),
            ("etc/os-release".into(), os.clone()),
        ]))
    };
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
    let latest = || {
        let res = site
            .http()
            .head(&format!("{}/v2/rel/app/manifests/latest", site.base))
            .header("Accept", OCI_MANIFEST)
            .call()
            .unwrap();
        (res.status() == 200).then(|| {
            res.headers()["docker-content-digest"]
                .to_str()
                .unwrap()
                .to_owned()
        })
    };
    let until = |want: Option<&str>, why: &str| {
        let started = Instant::now();
        while latest().as_deref() != want {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "{why}: latest is {:?}",
                latest()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    // Current glibc: followed once read.
    let clean = site.push("rel/app", "1.0.0", &[image(&status)]);
    until(Some(&clean), "1.0.0 is read and passes");
    // Debian 12.1's glibc (DSA-5514-1, high): read, and skipped.
    let vulnerable = site.push("rel/app", "1.1.0", &[image(&old)]);
    wait_scanned(&site, "rel/app:1.1.0");
    assert_eq!(
        latest().as_deref(),
        Some(clean.as_str()),
        "1.1.0 fails the policy"
    );
    // An exception for its CVE: now it passes, and latest follows it.
    run(&mut site.cli(&[
        "vuln",
        "exception",
        "add",
        "rel",
        "CVE-2023-4911",
        "--reason",
        "tunables disabled",
    ]));
    until(Some(&vulnerable), "the exception lets 1.1.0 pass");
    // A new advisory against it: latest goes back.
    import("more.json", &[DSA_5611_1, CVE_2023_6246]);
    until(
        Some(&clean),
        "DSA-5611-1 (high, by CVE-2023-6246) fails 1.1.0",
    );
    push_gate(&site, &old, &os);
}

/// A push gate reads the image during the tag push: refused, or accepted with a warning.
fn push_gate(site: &Site, status: &str, os: &[u8]) {
    run(&mut site.cli(&[
        "vuln",
        "policy",
        "library",
        "--refuse-at",
        "high",
        "--on-push",
        "refuse",
    ]));
    let layer = gzip(&tar(&[
        ("var/lib/dpkg/status".into(), status.as_bytes().to_vec()),
        ("etc/os-release".into(), os.to_vec()),
    ]));
    let config = br#"{"architecture":"amd64","os":"linux"}"#;
    for blob in [&layer[..], &config[..]] {
        let res = site
            .http()
            .post(&format!(
                "{}/v2/library/gated/blobs/uploads/?digest={}",
                site.base,
                Digest::of(blob)
            ))
            .send(blob)
            .unwrap();
        assert_eq!(res.status(), 201);
    }
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": Digest::of(config).as_str(), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": Digest::of(&layer).as_str(), "size": layer.len()}],
    }))
    .unwrap();
    let put = || {
        site.http()
            .put(&format!("{}/v2/library/gated/manifests/1.0.0", site.base))
            .header("Content-Type", OCI_MANIFEST)
            .send(&manifest[..])
            .unwrap()
    };
    let mut refused = put();
    assert_eq!(refused.status(), 403);
    let body = refused.body_mut().read_to_string().unwrap();
    assert!(
        body.contains("DENIED") && body.contains("DSA-5514-1"),
        "{body}"
    );
    run(&mut site.cli(&[
        "vuln",
        "policy",
        "library",
        "--refuse-at",
        "high",
        "--on-push",
        "warn",
    ]));
    let warned = put();
    assert_eq!(warned.status(), 201);
    let warning = warned.headers()["warning"].to_str().unwrap();
    assert!(warning.contains("DSA-5514-1"), "{warning}");
}

/// A Rust program built with `cargo auditable` (scripts/test installs it): a tiny crate
/// depending on `semver` 1.0.28 from the local registry cache, built offline.
fn auditable_binary(dir: &std::path::Path) -> Vec<u8> {
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(
        dir.join("Cargo.toml"),
        "[package]\nname = \"hello-audit\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\nsemver = \"=1.0.28\"\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("src/main.rs"),
        "fn main() { println!(\"{}\", semver::Version::new(1, 2, 3)); }\n",
    )
    .unwrap();
    run(Command::new("cargo")
        .args(["auditable", "build", "--offline", "--quiet"])
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", dir.join("target"))
        .env_remove("RUSTFLAGS"));
    std::fs::read(dir.join("target/debug/hello-audit")).unwrap()
}

#[test]
fn a_rust_program_built_with_cargo_auditable_names_its_crates() {
    let server = common::Server::start();
    let site = Site::of(&server);
    let dir = tempfile::tempdir().unwrap();
    let binary = auditable_binary(dir.path());
    let layer = gzip(&tar(&[("usr/local/bin/hello-audit".into(), binary)]));
    site.push("library/rusty", "1", &[layer]);
    wait_scanned(&site, "library/rusty:1");
    let (status, sbom) = site.get("/api/v1/sbom?ref=library/rusty:1");
    assert_eq!(status, 200);
    let crates: Vec<String> = sbom["components"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["purl"].as_str())
        .filter(|p| p.starts_with("pkg:cargo/"))
        .map(str::to_owned)
        .collect();
    assert_eq!(crates, ["pkg:cargo/semver@1.0.28"], "{sbom}");
}
