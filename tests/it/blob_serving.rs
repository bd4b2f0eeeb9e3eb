//! Serving blobs whole: a blob is hashed the first time it is read whole, then served on its
//! file's fingerprint (device, inode, length, modification and change times). Every change
//! through the file system is still caught at read time — before the read, and during it —
//! and the scheduled scrub finds what leaves the fingerprint alone.

use std::io::Read as _;
use std::os::unix::fs::FileExt as _;
use std::path::PathBuf;
use std::time::Duration;

use semdock::model::Digest;

use crate::common::Server;
use crate::common::cluster::Cluster;

/// Past the two seconds after which a file's fingerprint is trusted.
const SETTLED: Duration = Duration::from_millis(2_100);

/// Pushes a blob to a server on files: its digest and its file.
fn upload(s: &Server, repo: &str, bytes: &[u8]) -> (Digest, PathBuf) {
    let digest = s.push_blob(repo, bytes);
    let path = s
        .data_dir
        .join("blobs/sha256")
        .join(&digest.hex()[..2])
        .join(digest.hex());
    assert!(path.exists());
    (digest, path)
}

/// Whole-blob reads delivered so far, (hashed, on the fingerprint), from `/metrics`.
fn full_reads(s: &Server) -> (u64, u64) {
    let mut res = s.http().get(s.url("/metrics")).call().unwrap();
    let text = res.body_mut().read_to_string().unwrap();
    let count = |check: &str| {
        text.lines()
            .find(|l| {
                l.starts_with(&format!(
                    "semdock_blob_full_reads_total{{check=\"{check}\"}}"
                ))
            })
            .and_then(|l| l.rsplit(' ').next())
            .map_or(0, |n| n.parse().unwrap())
    };
    (count("hashed"), count("fingerprint"))
}

/// GETs the blob whole: its status and the bytes that arrived before the body ended or broke.
fn get(s: &Server, repo: &str, digest: &Digest) -> (u16, Vec<u8>) {
    let mut res = s
        .http()
        .get(s.url(&format!("/v2/{repo}/blobs/{digest}")))
        .call()
        .unwrap();
    let mut got = Vec::new();
    let _ = res.body_mut().as_reader().read_to_end(&mut got);
    (res.status().as_u16(), got)
}

/// Waits for `text` in the server's log: a line is written after the act it reports (a
/// file moved aside, a read cut short) and reaches the log through a reader thread.
fn wait_for_log(s: &Server, text: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !s.log().contains(text) {
        assert!(
            std::time::Instant::now() < deadline,
            "{text:?} not in the log:\n{}",
            s.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn aside(path: &std::path::Path) -> PathBuf {
    let mut aside = path.to_owned().into_os_string();
    aside.push(".corrupted");
    aside.into()
}

#[test]
fn a_blob_is_hashed_once_then_served_on_its_fingerprint_until_its_file_changes() {
    let s = Server::start();
    let bytes: Vec<u8> = (0..3_000_000u32).map(|i| (i % 253) as u8).collect();
    let (digest, path) = upload(&s, "library/fp", &bytes);
    // A file's fingerprint is trusted once its last change is two seconds old.
    assert_eq!(get(&s, "library/fp", &digest), (200, bytes.clone()));
    std::thread::sleep(SETTLED);
    let before = full_reads(&s);
    assert_eq!(get(&s, "library/fp", &digest), (200, bytes.clone()));
    assert_eq!(
        full_reads(&s),
        (before.0 + 1, before.1),
        "the first read hashes"
    );
    for _ in 0..3 {
        assert_eq!(get(&s, "library/fp", &digest), (200, bytes.clone()));
    }
    assert_eq!(
        full_reads(&s),
        (before.0 + 1, before.1 + 3),
        "later reads go out on the fingerprint"
    );
    // A range is served as before (the client checks what it assembles).
    let mut res = s
        .http()
        .get(s.url(&format!("/v2/library/fp/blobs/{digest}")))
        .header("Range", "bytes=10-19")
        .call()
        .unwrap();
    assert_eq!(res.status(), 206);
    assert_eq!(res.body_mut().read_to_vec().unwrap(), &bytes[10..20]);

    // One byte changed in place (same inode, same length), the modification time put back
    // as it was: the change time still moved, so the next read hashes again, finds the
    // damage, cuts the body short and moves the file aside.
    let modified = std::fs::metadata(&path).unwrap().modified().unwrap();
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    file.write_all_at(&[bytes[2_999_000] ^ 0x01], 2_999_000)
        .unwrap();
    file.set_modified(modified).unwrap();
    drop(file);
    assert_eq!(
        std::fs::metadata(&path).unwrap().modified().unwrap(),
        modified
    );
    let (status, got) = get(&s, "library/fp", &digest);
    assert_eq!(status, 200);
    assert!(
        got.len() < bytes.len(),
        "a changed blob was delivered whole"
    );
    assert!(aside(&path).exists(), "not set aside");
    wait_for_log(&s, "does not hash to its digest");
    assert_eq!(get(&s, "library/fp", &digest).0, 404);
}

#[test]
fn a_blob_changed_while_it_is_served_on_its_fingerprint_is_cut_short() {
    let s = Server::start();
    // Larger than every buffer between the server and this client, so the read is still
    // under way when the file changes.
    let bytes: Vec<u8> = (0..64u32 << 20).map(|i| (i % 241) as u8).collect();
    let (digest, path) = upload(&s, "library/mid", &bytes);
    std::thread::sleep(SETTLED);
    assert_eq!(get(&s, "library/mid", &digest).1.len(), bytes.len());
    let verified = full_reads(&s);
    let mut res = s
        .http()
        .get(s.url(&format!("/v2/library/mid/blobs/{digest}")))
        .call()
        .unwrap();
    let mut reader = res.body_mut().as_reader();
    let mut first = vec![0u8; 1 << 20];
    reader.read_exact(&mut first).unwrap();
    // The byte changed was sent already: only the fingerprint can tell.
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    file.write_all_at(&[bytes[0] ^ 0xff], 0).unwrap();
    drop(file);
    let mut rest = Vec::new();
    let _ = reader.read_to_end(&mut rest);
    assert!(
        first.len() + rest.len() < bytes.len(),
        "a blob changed under its read was delivered whole"
    );
    wait_for_log(&s, "changed while it was served");
    assert_eq!(full_reads(&s), verified, "nothing delivered whole");
    // Not moved aside on a change alone: the next read hashes it, and that finds the damage.
    let (status, got) = get(&s, "library/mid", &digest);
    assert_eq!(status, 200);
    assert!(got.len() < bytes.len());
    assert!(aside(&path).exists());
}

#[test]
fn the_scheduled_scrub_finds_a_rotten_blob_nobody_reads() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_in(
        &dir.path().join("data"),
        &[("SEMDOCK_STORAGE__SCRUB_INTERVAL_SECONDS", "1")],
    );
    let bytes = b"a layer nobody pulls".to_vec();
    let (digest, path) = upload(&s, "library/scrub", &bytes);
    let (good, _) = upload(&s, "library/scrub", b"a healthy layer");
    let mut rotten = std::fs::read(&path).unwrap();
    rotten[0] ^= 0x20;
    std::fs::write(&path, rotten).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !aside(&path).exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the scrub did not run:\n{}",
            s.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    wait_for_log(&s, "scrub found a problem");
    wait_for_log(&s, &digest.to_string());
    assert_eq!(get(&s, "library/scrub", &digest).0, 404);
    assert_eq!(
        get(&s, "library/scrub", &good),
        (200, b"a healthy layer".to_vec())
    );
}

#[test]
fn on_the_object_store_a_blob_is_served_on_its_entity_tag_and_a_replaced_object_is_caught() {
    let s3 = crate::common::s3_location();
    let cluster = Cluster::start_on(1, &crate::common::postgres_database(), &s3);
    let s = &cluster.nodes[0];
    let bytes: Vec<u8> = (0..3_000_000u32).map(|i| (i % 239) as u8).collect();
    let digest = s.push_blob("library/obj", &bytes);
    let before = full_reads(s);
    assert_eq!(get(s, "library/obj", &digest), (200, bytes.clone()));
    assert_eq!(get(s, "library/obj", &digest), (200, bytes.clone()));
    assert_eq!(
        full_reads(s),
        (before.0 + 1, before.1 + 1),
        "hashed once, then served on the object's entity tag"
    );
    // The object replaced in the bucket behind the registry's back: a new entity tag, so the
    // next read hashes, is cut short and the object is moved aside.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let store = object_store::aws::AmazonS3Builder::new()
        .with_endpoint(s3.endpoint.clone().unwrap())
        .with_bucket_name(&s3.bucket)
        .with_region(&s3.region)
        .with_access_key_id(&s3.access_key_id)
        .with_secret_access_key(&s3.secret_access_key)
        .with_allow_http(true)
        .build()
        .unwrap();
    let key = object_store::path::Path::from(format!(
        "{}/blobs/sha256/{}",
        s3.prefix.trim_matches('/'),
        digest.hex()
    ));
    let mut tampered = bytes.clone();
    tampered[1_000] ^= 0x04;
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(object_store::ObjectStoreExt::put(
            &store,
            &key,
            object_store::PutPayload::from(tampered),
        ))
        .unwrap();
    let (status, got) = get(s, "library/obj", &digest);
    assert_eq!(status, 200);
    assert!(
        got.len() < bytes.len(),
        "a replaced object was delivered whole"
    );
    wait_for_log(s, "does not hash to its digest");
    assert_eq!(get(s, "library/obj", &digest).0, 404);
}
