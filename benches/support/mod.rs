//! What more than one benchmark needs: the peer registries, started the same way.

#[allow(dead_code)] // Only the load benchmark puts HAProxy in front.
pub mod haproxy;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// An S3 bucket for Distribution's `s3` storage driver.
pub struct S3 {
    pub endpoint: String,
    pub bucket: String,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    /// Distribution's `rootdirectory` in the bucket.
    pub root: String,
}

/// A port on 127.0.0.1 that nothing listens on now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Returns once `who` accepts connections on `port` (30 s at most).
pub fn wait_listening(port: u16, who: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "{who} did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Distribution 2.8.2 (Debian's `docker-registry`) on a port it was given, no auth, logs off,
/// storage under `dir` — or in `s3` with its S3 driver (blobs proxied, not redirected, as
/// semdock serves them); returns once it accepts connections.
pub fn distribution(dir: &Path, s3: Option<&S3>) -> (Child, u16) {
    distribution_with(dir, s3, "")
}

/// The same, with `extra` (YAML at the top level of its configuration: `proxy:` for its
/// pull-through mode) added.
pub fn distribution_with(dir: &Path, s3: Option<&S3>, extra: &str) -> (Child, u16) {
    let port = free_port();
    let storage = match s3 {
        None => format!(
            "  filesystem:\n    rootdirectory: {}\n",
            dir.join("data").display()
        ),
        Some(s3) => format!(
            "  s3:\n    accesskey: {}\n    secretkey: {}\n    region: {}\n    regionendpoint: {}\n    bucket: {}\n    rootdirectory: {}\n    secure: false\n    v4auth: true\n  redirect:\n    disable: true\n",
            s3.access_key_id, s3.secret_access_key, s3.region, s3.endpoint, s3.bucket, s3.root
        ),
    };
    let config = dir.join("config.yml");
    std::fs::write(
        &config,
        format!(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n{storage}http:\n  addr: 127.0.0.1:{port}\n{extra}"
        ),
    )
    .unwrap();
    let child = Command::new("docker-registry")
        .arg("serve")
        .arg(&config)
        // Its S3 driver panics at start with this set ("LoadCustomCABundleError").
        .env_remove("AWS_CA_BUNDLE")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("docker-registry is installed (apt-get install docker-registry)");
    wait_listening(port, "Distribution");
    (child, port)
}

/// Angos (`ANGOS`, else `../shared/instruments/angos` beside the repository: the prebuilt
/// peer of this machine kind) on a port it was given, no auth, storage under `dir` — or in
/// `s3` (blobs and manifests proxied, not redirected, as semdock serves them); returns once
/// it accepts connections.
#[allow(dead_code)] // Only the load benchmark runs Angos.
pub fn angos(dir: &Path, s3: Option<&S3>) -> (Child, u16) {
    let bin = std::env::var_os("ANGOS").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/instruments/angos"),
        std::path::PathBuf::from,
    );
    let port = free_port();
    let storage = match s3 {
        None => format!(
            "[blob_store.fs]\nroot_dir = \"{}\"\n",
            dir.join("data").display()
        ),
        Some(s3) => format!(
            "[blob_store.s3]\naccess_key_id = \"{}\"\nsecret_key = \"{}\"\nendpoint = \"{}\"\nbucket = \"{}\"\nregion = \"{}\"\nkey_prefix = \"{}\"\n",
            s3.access_key_id,
            s3.secret_access_key,
            s3.endpoint,
            s3.bucket,
            s3.region,
            s3.root.trim_matches('/')
        ),
    };
    let config = dir.join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nbind_address = \"127.0.0.1\"\nport = {port}\n\n[global]\nenable_blob_redirect = false\nenable_manifest_redirect = false\n\n[global.access_policy]\ndefault = \"allow\"\n\n{storage}\n[repository.\"library\"]\n"
        ),
    )
    .unwrap();
    let child = Command::new(&bin)
        .arg("-c")
        .arg(&config)
        .arg("server")
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "Angos at {} starts ({e}); set ANGOS to its path",
                bin.display()
            )
        });
    wait_listening(port, "Angos");
    (child, port)
}

/// Pushes an image with one layer of `size` pseudo-random bytes (seeded by `seed`) to
/// `repo:tag` of the registry at `base` with `agent` (its credentials, if any): each blob
/// in a session's one PUT, as Distribution takes them. Answers the manifest's digest.
#[allow(dead_code)] // Not every benchmark pushes.
pub fn push_image(
    agent: &ureq::Agent,
    base: &str,
    repo: &str,
    tag: &str,
    size: usize,
    seed: u64,
) -> String {
    use sha2::Digest as _;
    let digest = |bytes: &[u8]| format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)));
    let mut layer = vec![0u8; size];
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    for chunk in layer.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        for (b, v) in chunk.iter_mut().zip(x.to_le_bytes()) {
            *b = v;
        }
    }
    let config = format!(r#"{{"architecture":"amd64","os":"linux","seed":{seed}}}"#).into_bytes();
    for blob in [&config, &layer] {
        let res = agent
            .post(format!("{base}/v2/{repo}/blobs/uploads/"))
            .send_empty()
            .unwrap();
        assert_eq!(res.status(), 202);
        let location = res.headers()["location"].to_str().unwrap().to_owned();
        let url = if location.starts_with('/') {
            format!("{base}{location}")
        } else {
            location
        };
        let sep = if url.contains('?') { '&' } else { '?' };
        let res = agent
            .put(format!("{url}{sep}digest={}", digest(blob)))
            .header("Content-Type", "application/octet-stream")
            .send(&blob[..])
            .unwrap();
        assert_eq!(res.status(), 201);
    }
    let manifest = serde_json::json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest(&config), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digest(&layer), "size": layer.len()}],
    })
    .to_string();
    let res = agent
        .put(format!("{base}/v2/{repo}/manifests/{tag}"))
        .header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
        .send(manifest.as_bytes())
        .unwrap();
    assert_eq!(res.status(), 201);
    digest(manifest.as_bytes())
}
