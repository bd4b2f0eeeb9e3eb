//! Signatures and the feeds that require them, in the real binary on both backends: keys
//! generated here, images signed the way cosign signs them (a simple-signing payload, its
//! signature in the layer annotation, under the `sha256-<hex>.sig` tag or as an OCI 1.1
//! referrer), pushed through the Distribution API as cosign pushes them.

use std::io::Write as _;

use base64::Engine as _;
use p256::pkcs8::EncodePublicKey as _;
use serde_json::{Value, json};
use signature::Signer as _;

use crate::common::{OCI_MANIFEST, run, run_fail};
use crate::release::{Backend, Registry};
use semdock::model::Digest;

const SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
const SIGNATURE_ARTIFACT: &str = "application/vnd.dev.cosign.artifact.sig.v1+json";

/// A signer as cosign is one: a key pair, and its public key as `cosign.pub` holds it.
struct Signer {
    key: p256::ecdsa::SigningKey,
}

impl Signer {
    fn new() -> Self {
        let mut seed = [0u8; 32];
        rand::fill(&mut seed);
        Self {
            key: p256::ecdsa::SigningKey::from_slice(&seed).unwrap(),
        }
    }

    fn public_pem(&self) -> String {
        self.key
            .verifying_key()
            .to_public_key_pem(p256::pkcs8::LineEnding::LF)
            .unwrap()
    }

    /// An ASN.1 DER ECDSA signature over SHA-256 of `payload`, base64: cosign's.
    fn sign(&self, payload: &[u8]) -> String {
        let sig: p256::ecdsa::Signature = self.key.sign(payload);
        base64::engine::general_purpose::STANDARD.encode(sig.to_der().as_bytes())
    }
}

/// Where a signature goes: cosign's tag, or an OCI 1.1 referrer.
#[derive(Clone, Copy)]
enum Form {
    Tag,
    Referrer,
}

/// cosign's simple-signing payload for `digest` in `repo`.
fn payload(r: &Registry, repo: &str, digest: &str) -> Vec<u8> {
    json!({
        "critical": {
            "identity": {"docker-reference": format!("{}/{repo}", r.server.addr)},
            "image": {"docker-manifest-digest": digest},
            "type": "cosign container image signature"
        },
        "optional": null
    })
    .to_string()
    .into_bytes()
}

fn upload(r: &Registry, repo: &str, blob: &[u8]) {
    let res = r
        .admin()
        .post(&r.url(&format!(
            "/v2/{repo}/blobs/uploads/?digest={}",
            Digest::of(blob)
        )))
        .header("Content-Type", "application/octet-stream")
        .send(blob)
        .unwrap();
    assert_eq!(res.status(), 201);
}

/// Pushes a cosign signature of `digest` into `repo`: `signed` is the payload the signature
/// was made over, `stored` the payload stored (the same, unless a test tampers with it).
/// Returns the PUT's status and the signature manifest's digest.
fn push_signature(
    r: &Registry,
    repo: &str,
    digest: &str,
    signature: &str,
    stored: &[u8],
    form: Form,
) -> (u16, String) {
    upload(r, repo, stored);
    let config = br#"{"architecture":"","os":"","rootfs":{"type":"layers","diff_ids":[]}}"#;
    upload(r, repo, config);
    let layer = json!({
        "mediaType": SIMPLE_SIGNING,
        "digest": Digest::of(stored).as_str(),
        "size": stored.len(),
        "annotations": {"dev.cosignproject.cosign/signature": signature},
    });
    let mut manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": Digest::of(config).as_str(), "size": config.len()},
        "layers": [layer],
    });
    if matches!(form, Form::Referrer) {
        manifest["artifactType"] = SIGNATURE_ARTIFACT.into();
        manifest["subject"] = json!({"mediaType": OCI_MANIFEST, "digest": digest, "size": 1});
    }
    let body = serde_json::to_vec(&manifest).unwrap();
    let sig_digest = Digest::of(&body).to_string();
    let reference = match form {
        Form::Tag => format!("{}.sig", digest.replacen(':', "-", 1)),
        Form::Referrer => sig_digest.clone(),
    };
    let res = r
        .admin()
        .put(&r.url(&format!("/v2/{repo}/manifests/{reference}")))
        .header("Content-Type", OCI_MANIFEST)
        .send(&body[..])
        .unwrap();
    (res.status().as_u16(), sig_digest)
}

/// Signs `repo@digest` with `signer` as cosign does, in `form`.
fn sign(r: &Registry, signer: &Signer, repo: &str, digest: &str, form: Form) -> String {
    let p = payload(r, repo, digest);
    let (status, sig) = push_signature(r, repo, digest, &signer.sign(&p), &p, form);
    assert_eq!(status, 201);
    sig
}

fn promote(r: &Registry, from: &str, to: &str, expected: &str) -> (u16, Value) {
    r.json(
        "POST",
        "/api/v1/promotions",
        &json!({"from": from, "to": to, "expected_digest": expected}),
    )
}

fn refusal(body: &Value) -> String {
    body["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

fn key_file(dir: &std::path::Path, name: &str, pem: &str) -> std::path::PathBuf {
    let path = dir.join(format!("{name}.pub"));
    std::fs::File::create(&path)
        .unwrap()
        .write_all(pem.as_bytes())
        .unwrap();
    path
}

#[allow(clippy::too_many_lines)]
fn signed_release(backend: Backend) {
    let r = Registry::start(backend);
    let (status, body) = r.json("POST", "/api/v1/feeds", &json!({"name": "staging"}));
    assert_eq!(status, 201, "{body}");
    let keys = tempfile::tempdir().unwrap();
    let ci = Signer::new();
    let rogue = Signer::new();

    // The CI key is trusted, and prod requires it on promotion: with the CLI.
    let file = key_file(keys.path(), "ci", &ci.public_pem());
    let out = run(&mut r.cli(&["trust", "key", "add", "ci-2026", file.to_str().unwrap()]));
    assert!(out.contains("trusted key ci-2026 (ecdsa-p256"), "{out}");
    let out = run(&mut r.cli(&["trust", "policy", "prod", "--key", "ci-2026"]));
    assert!(
        out.contains("requires a signature by ci-2026 on promotion"),
        "{out}"
    );
    let (status, body) = r.json(
        "POST",
        "/api/v1/trust/keys",
        &json!({"name": "leaked", "pem": "-----BEGIN PRIVATE KEY-----\nAA==\n-----END PRIVATE KEY-----"}),
    );
    assert_eq!(status, 400, "{body}");
    assert!(refusal(&body).contains("private key"), "{body}");

    // CI signs staging/web:5.1.0 (cosign's tag form); it is promoted, signature and all.
    let (status, signed) = r.push("staging/web", "5.1.0", "the signed build");
    assert_eq!(status, 201);
    sign(&r, &ci, "staging/web", &signed, Form::Tag);
    let (status, body) = promote(&r, "staging/web:5.1.0", "prod/web:5.1.0", &signed);
    assert_eq!(status, 200, "{body}");
    let sig_tag = format!("{}.sig", signed.replacen(':', "-", 1));
    let (status, _) = r.get(&format!("/v2/prod/web/manifests/{sig_tag}"));
    assert_eq!(status, 200, "the signature came along with the image");
    let (status, verified) = r.get("/api/v1/verify?ref=prod/web:5.1.0");
    assert_eq!(status, 200, "{verified}");
    assert_eq!(verified["verified"], true, "{verified}");
    assert_eq!(verified["verified_by"], json!(["ci-2026"]));
    let out = run(&mut r.cli(&["verify", "prod/web:5.1.0"]));
    assert!(out.contains("verified by ci-2026"), "{out}");

    // The OCI 1.1 referrer form verifies too, and comes along as a referrer.
    let (_, referred) = r.push("staging/web", "5.1.1", "signed as a referrer");
    let sig = sign(&r, &ci, "staging/web", &referred, Form::Referrer);
    let (status, body) = promote(&r, "staging/web:5.1.1", "prod/web:5.1.1", &referred);
    assert_eq!(status, 200, "{body}");
    let (_, referrers) = r.get(&format!("/v2/prod/web/referrers/{referred}"));
    assert_eq!(referrers["manifests"][0]["digest"], sig);

    // Each way of not being signed by CI is refused, with its sentence.
    let (_, unsigned) = r.push("staging/web", "5.2.0", "unsigned");
    let (status, body) = promote(&r, "staging/web:5.2.0", "prod/web:5.2.0", &unsigned);
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "signature_required", "{body}");
    assert!(refusal(&body).contains("has no signature"), "{body}");

    let (_, by_rogue) = r.push("staging/web", "5.3.0", "signed by an unknown key");
    sign(&r, &rogue, "staging/web", &by_rogue, Form::Tag);
    let (status, body) = promote(&r, "staging/web:5.3.0", "prod/web:5.3.0", &by_rogue);
    assert_eq!(status, 403, "{body}");
    assert!(
        refusal(&body).contains("a key that is not trusted"),
        "{body}"
    );

    // A real CI signature of another image, placed beside this one.
    let (_, other) = r.push("staging/web", "5.4.0", "carries another image's signature");
    let p = payload(&r, "staging/web", &signed);
    push_signature(&r, "staging/web", &other, &ci.sign(&p), &p, Form::Tag);
    let (status, body) = promote(&r, "staging/web:5.4.0", "prod/web:5.4.0", &other);
    assert_eq!(status, 403, "{body}");
    assert!(refusal(&body).contains("signs another image"), "{body}");

    // A payload changed after signing.
    let (_, tampered) = r.push("staging/web", "5.5.0", "tampered");
    let p = payload(&r, "staging/web", &tampered);
    let mut changed: Value = serde_json::from_slice(&p).unwrap();
    changed["optional"] = json!({"note": "added after signing"});
    let changed = changed.to_string().into_bytes();
    push_signature(
        &r,
        "staging/web",
        &tampered,
        &ci.sign(&p),
        &changed,
        Form::Tag,
    );
    let (status, body) = promote(&r, "staging/web:5.5.0", "prod/web:5.5.0", &tampered);
    assert_eq!(status, 403, "{body}");
    assert!(refusal(&body).contains("changed after signing"), "{body}");

    // The refusals are in the audit log as policy refusals, and nothing entered prod.
    let (_, refused) = r.get("/api/v1/audit?kind=policy-refused&feed=prod");
    assert_eq!(refused.as_array().unwrap().len(), 4, "{refused}");
    let (status, _) = r.get("/v2/prod/web/manifests/5.2.0");
    assert_eq!(status, 404);

    // Required on push too: an unsigned tag push is refused over the Distribution API;
    // pushed by digest, signed, then tagged, it is taken.
    let out = run(&mut r.cli(&["trust", "policy", "prod", "--key", "ci-2026", "--on-push"]));
    assert!(out.contains("on promotion and push"), "{out}");
    let (status, digest) = r.push("prod/web", "6.0.0", "pushed straight to prod");
    assert_eq!(status, 403);
    let (status, by_digest) = r.push("prod/web", &digest, "pushed straight to prod");
    assert_eq!((status, &by_digest), (201, &digest));
    sign(&r, &ci, "prod/web", &digest, Form::Tag);
    let (status, _) = r.push("prod/web", "6.0.0", "pushed straight to prod");
    assert_eq!(status, 201);

    // A key no longer trusted verifies nothing: the CLI says so and fails.
    let out = run(&mut r.cli(&["trust", "key", "list"]));
    assert!(
        out.contains("ci-2026") && out.contains("ecdsa-p256"),
        "{out}"
    );
    run(&mut r.cli(&["trust", "key", "remove", "ci-2026"]));
    let out = run_fail(&mut r.cli(&["verify", "prod/web:5.1.0"]));
    assert!(
        out.contains("no signature of prod/web:5.1.0 verifies"),
        "{out}"
    );
    let (_, resigned) = r.push("staging/web", "5.6.0", "signed after the key was removed");
    sign(&r, &ci, "staging/web", &resigned, Form::Tag);
    let (status, body) = promote(&r, "staging/web:5.6.0", "prod/web:5.6.0", &resigned);
    assert_eq!(status, 403, "{body}");
    assert!(refusal(&body).contains("no longer trusted"), "{body}");
    let (_, trust_log) = r.get("/api/v1/audit?kind=trust-changed");
    assert_eq!(trust_log.as_array().unwrap().len(), 2, "{trust_log}");

    // A policy names trusted keys only.
    let (status, body) = r.json(
        "PUT",
        "/api/v1/feeds/prod/signature-policy",
        &json!({"keys": ["leaked"]}),
    );
    assert_eq!(status, 400, "{body}");
    assert!(
        refusal(&body).contains("no trusted key is named leaked"),
        "{body}"
    );
}

#[test]
fn only_images_signed_by_the_trusted_key_enter_a_feed_that_requires_it_on_the_embedded_backend() {
    signed_release(Backend::Embedded);
}

#[test]
fn only_images_signed_by_the_trusted_key_enter_a_feed_that_requires_it_on_postgres_and_s3() {
    signed_release(Backend::Distributed);
}

/// The history of `tag` in `repo`, oldest first: (digest or none, comment).
fn history_of(r: &Registry, repo: &str, tag: &str) -> Vec<(Value, String)> {
    let (status, h) = r.get(&format!("/api/v1/repositories/{repo}/history?tag={tag}"));
    assert_eq!(status, 200, "{h}");
    h.as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["new"].clone(),
                e["comment"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

fn points_at(r: &Registry, repo: &str, tag: &str) -> Option<String> {
    let res = r
        .admin()
        .head(&r.url(&format!("/v2/{repo}/manifests/{tag}")))
        .header("Accept", OCI_MANIFEST)
        .call()
        .unwrap();
    (res.status() == 200).then(|| {
        res.headers()["docker-content-digest"]
            .to_str()
            .unwrap()
            .to_owned()
    })
}

fn virtual_tags_follow_signed_versions(backend: Backend) {
    let r = Registry::start(backend);
    let (status, body) = r.json("POST", "/api/v1/feeds", &json!({"name": "release"}));
    assert_eq!(status, 201, "{body}");
    let (status, body) = r.json(
        "PATCH",
        "/api/v1/feeds/release",
        &json!({"versioning": true, "permitted": ["sha256-*.sig"]}),
    );
    assert_eq!(status, 200, "{body}");
    let (ci, backup) = (Signer::new(), Signer::new());
    for (name, signer) in [("ci", &ci), ("backup", &backup)] {
        let (status, body) = r.json(
            "POST",
            "/api/v1/trust/keys",
            &json!({"name": name, "pem": signer.public_pem()}),
        );
        assert_eq!(status, 201, "{body}");
    }
    let (status, body) = r.json(
        "PUT",
        "/api/v1/feeds/release/signature-policy",
        &json!({"keys": ["ci", "backup"]}),
    );
    assert_eq!(status, 200, "{body}");

    // An unsigned version is not followed; signed (tag form), it is.
    let (status, v1) = r.push("release/app", "1.0.0", "one");
    assert_eq!(status, 201);
    assert_eq!(points_at(&r, "release/app", "latest"), None);
    sign(&r, &ci, "release/app", &v1, Form::Tag);
    sign(&r, &backup, "release/app", &v1, Form::Referrer);
    assert_eq!(
        points_at(&r, "release/app", "latest").as_deref(),
        Some(&*v1)
    );
    assert_eq!(points_at(&r, "release/app", "1").as_deref(), Some(&*v1));

    // A higher version pushed unsigned by mistake never becomes what app:1 pulls.
    let (_, v2) = r.push("release/app", "1.1.0", "two, unsigned");
    assert_eq!(
        points_at(&r, "release/app", "latest").as_deref(),
        Some(&*v1)
    );
    assert_eq!(points_at(&r, "release/app", "1").as_deref(), Some(&*v1));
    assert_eq!(points_at(&r, "release/app", "1.1").as_deref(), None);
    // Signed by CI (referrer form), the virtual tags follow it, and history says why.
    sign(&r, &ci, "release/app", &v2, Form::Referrer);
    assert_eq!(
        points_at(&r, "release/app", "latest").as_deref(),
        Some(&*v2)
    );
    assert_eq!(points_at(&r, "release/app", "1.1").as_deref(), Some(&*v2));
    let latest = history_of(&r, "release/app", "latest");
    assert_eq!(
        latest.last().unwrap().1,
        "follows 1.1.0: a signature was pushed",
        "{latest:?}"
    );

    // CI's key is removed: 1.1.0 passes no more, `latest` settles back on 1.0.0, which the
    // backup key signed, and history names the removal.
    let (status, _) = r.json("POST", "/api/v1/feeds", &json!({"name": "unrelated"}));
    assert_eq!(status, 201);
    assert_eq!(r.delete("/api/v1/trust/keys/ci"), 204);
    assert_eq!(
        points_at(&r, "release/app", "latest").as_deref(),
        Some(&*v1)
    );
    assert_eq!(points_at(&r, "release/app", "1.1").as_deref(), None);
    let latest = history_of(&r, "release/app", "latest");
    assert_eq!(
        latest.last().unwrap().1,
        "follows 1.0.0: trusted key ci removed",
        "{latest:?}"
    );
}

#[test]
fn virtual_tags_follow_only_versions_signed_as_the_policy_requires_on_the_embedded_backend() {
    virtual_tags_follow_signed_versions(Backend::Embedded);
}

#[test]
fn virtual_tags_follow_only_versions_signed_as_the_policy_requires_on_postgres_and_s3() {
    virtual_tags_follow_signed_versions(Backend::Distributed);
}

/// `docker pull` of `reference` after removing any local copy: its output, and whether it
/// succeeded.
fn docker_pull(r: &Registry, reference: &str) -> (bool, String) {
    let _ = r.server.docker().args(["rmi", "-f", reference]).output();
    let out = r
        .server
        .docker()
        .args(["pull", reference])
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Feed `edge` requires a signature by `ci` on pull, in `mode`: with the CLI.
fn set_pull_gate(r: &Registry, mode: &str) {
    let out = run(&mut r.cli(&[
        "trust",
        "policy",
        "edge",
        "--key",
        "ci",
        "--on-pull",
        mode,
        "--no-promotion",
    ]));
    assert!(out.contains(&format!("on pull ({mode})")), "{out}");
}

/// A feed that checks signatures on pull, with docker: in `refuse` mode the signed image
/// pulls and the unsigned one is refused with the sentence (and audited), while the
/// signature itself stays readable for `cosign verify`; in `warn` mode both pull, the
/// unsigned one with a `Warning` header.
fn pull_gate(backend: Backend) {
    let r = Registry::start(backend);
    let (status, body) = r.json("POST", "/api/v1/feeds", &json!({"name": "edge"}));
    assert_eq!(status, 201, "{body}");
    let ci = Signer::new();
    let keys = tempfile::tempdir().unwrap();
    let file = key_file(keys.path(), "ci", &ci.public_pem());
    run(&mut r.cli(&["trust", "key", "add", "ci", file.to_str().unwrap()]));
    r.server.docker_login();
    let host = r.server.host();
    let (signed, unsigned) = (
        format!("{host}/edge/app:1.0.0"),
        format!("{host}/edge/app:2.0.0"),
    );
    let _contexts = [
        crate::clients::build(&r.server, &signed, 1, "signed"),
        crate::clients::build(&r.server, &unsigned, 1, "unsigned"),
    ];
    run(r.server.docker().args(["push", &signed]));
    run(r.server.docker().args(["push", &unsigned]));
    let signed_digest = points_at(&r, "edge/app", "1.0.0").unwrap();
    let unsigned_digest = points_at(&r, "edge/app", "2.0.0").unwrap();
    sign(&r, &ci, "edge/app", &signed_digest, Form::Tag);

    set_pull_gate(&r, "refuse");
    let (ok, out) = docker_pull(&r, &signed);
    assert!(ok, "{out}");
    let (ok, out) = docker_pull(&r, &unsigned);
    assert!(!ok, "an unsigned image was pulled through the gate: {out}");
    assert!(
        out.contains("denied") && out.contains("requires a signature by ci"),
        "{out}"
    );
    // By digest too, and HEAD as well as GET.
    assert_eq!(points_at(&r, "edge/app", &unsigned_digest), None);
    let res = r
        .admin()
        .get(&r.url(&format!("/v2/edge/app/manifests/{unsigned_digest}")))
        .header(
            "Accept",
            "application/vnd.docker.distribution.manifest.v2+json",
        )
        .config()
        .http_status_as_error(false)
        .build()
        .call()
        .unwrap();
    assert_eq!(res.status(), 403);
    // The signature is trust material, never gated.
    let sig_tag = format!("{}.sig", signed_digest.replacen(':', "-", 1));
    assert!(points_at(&r, "edge/app", &sig_tag).is_some());
    // Refused three times at least (docker's pull, the HEAD, the GET), audited once: each
    // audit entry is a write that empties every manifest cache.
    let (_, refused) = r.get("/api/v1/audit?kind=policy-refused&feed=edge");
    let entries = refused
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["digest"] == unsigned_digest.as_str())
        .count();
    assert_eq!(entries, 1, "{refused}");

    // Warn: both pull; the unsigned one carries the sentence in a Warning header.
    set_pull_gate(&r, "warn");
    let (ok, out) = docker_pull(&r, &unsigned);
    assert!(ok, "{out}");
    let warning = |tag: &str| {
        let res = r
            .admin()
            .get(&r.url(&format!("/v2/edge/app/manifests/{tag}")))
            .header(
                "Accept",
                "application/vnd.docker.distribution.manifest.v2+json",
            )
            .call()
            .unwrap();
        assert_eq!(res.status(), 200);
        res.headers()
            .get("warning")
            .map(|v| v.to_str().unwrap().to_owned())
    };
    let w = warning("2.0.0").expect("no Warning header on an unsigned pull");
    assert!(
        w.starts_with("299 semdock \"") && w.contains("no signature of edge/app@"),
        "{w}"
    );
    assert_eq!(warning("1.0.0"), None);
    run(r.server.docker().args(["rmi", "-f", &signed, &unsigned]));
}

#[test]
fn a_pull_gate_refuses_or_warns_about_unsigned_images_with_docker_on_the_embedded_backend() {
    pull_gate(Backend::Embedded);
}

#[test]
fn a_pull_gate_refuses_or_warns_about_unsigned_images_with_docker_on_postgres_and_s3() {
    pull_gate(Backend::Distributed);
}

/// Attaches a cosign `.att` attestation of `digest` (cosign 2's `attest --key` form: a DSSE
/// envelope of an in-toto statement, under the `sha256-<hex>.att` tag) signed by `signer`.
fn attest(r: &Registry, signer: &Signer, repo: &str, digest: &str, predicate: &Value) {
    let statement = json!({
        "_type": "https://in-toto.io/Statement/v0.1",
        "subject": [{"name": repo, "digest": {"sha256": digest.strip_prefix("sha256:").unwrap()}}],
        "predicateType": "https://slsa.dev/provenance/v0.2",
        "predicate": predicate,
    })
    .to_string();
    let payload_type = "application/vnd.in-toto+json";
    let pae = format!(
        "DSSEv1 {} {payload_type} {} {statement}",
        payload_type.len(),
        statement.len()
    );
    let b64 = base64::engine::general_purpose::STANDARD;
    let envelope = json!({
        "payloadType": payload_type,
        "payload": b64.encode(&statement),
        "signatures": [{"keyid": "", "sig": signer.sign(pae.as_bytes())}],
    })
    .to_string()
    .into_bytes();
    upload(r, repo, &envelope);
    let config = br#"{"architecture":"","os":"","rootfs":{"type":"layers","diff_ids":[]}}"#;
    upload(r, repo, config);
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": Digest::of(config).as_str(), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.dsse.envelope.v1+json", "digest": Digest::of(&envelope).as_str(), "size": envelope.len(), "annotations": {"predicateType": "https://slsa.dev/provenance/v0.2"}}],
    });
    let tag = format!("{}.att", digest.replacen(':', "-", 1));
    let res = r
        .admin()
        .put(&r.url(&format!("/v2/{repo}/manifests/{tag}")))
        .header("Content-Type", OCI_MANIFEST)
        .send(&serde_json::to_vec(&manifest).unwrap()[..])
        .unwrap();
    assert_eq!(res.status(), 201);
}

/// A policy requiring SLSA provenance v0.2 from the CI's builder beside the CI key's
/// signature, met by cosign's `.att` attestations, which come along on promotion.
fn key_signed_provenance(backend: Backend) {
    let r = Registry::start(backend);
    let (status, body) = r.json("POST", "/api/v1/feeds", &json!({"name": "staging"}));
    assert_eq!(status, 201, "{body}");
    let (ci, rogue) = (Signer::new(), Signer::new());
    let (status, body) = r.json(
        "POST",
        "/api/v1/trust/keys",
        &json!({"name": "ci", "pem": ci.public_pem()}),
    );
    assert_eq!(status, 201, "{body}");
    let (status, body) = r.json(
        "PUT",
        "/api/v1/feeds/prod/signature-policy",
        &json!({"keys": ["ci"], "attestations": [{"predicate_type": "https://slsa.dev/provenance/v0.2", "matches": {"builder_id": "https://ci.acme.example/*"}}]}),
    );
    assert_eq!(status, 200, "{body}");
    let built_by = |builder: &str| json!({"builder": {"id": builder}, "buildType": "https://ci.acme.example/build"});

    let (_, digest) = r.push("staging/web", "8.0.0", "attested");
    sign(&r, &ci, "staging/web", &digest, Form::Tag);
    attest(
        &r,
        &rogue,
        "staging/web",
        &digest,
        &built_by("https://ci.acme.example/runner"),
    );
    let (status, body) = promote(&r, "staging/web:8.0.0", "prod/web:8.0.0", &digest);
    assert_eq!(status, 403, "{body}");
    assert!(
        refusal(&body).contains("it has no verified attestation"),
        "{body}"
    );
    attest(
        &r,
        &ci,
        "staging/web",
        &digest,
        &built_by("https://ci.acme.example/runner"),
    );
    let (status, body) = promote(&r, "staging/web:8.0.0", "prod/web:8.0.0", &digest);
    assert_eq!(status, 200, "{body}");
    // The attestation came along: prod verifies it by itself.
    let (_, verified) = r.get("/api/v1/verify?ref=prod/web:8.0.0");
    assert_eq!(
        verified["attestations"][0]["predicate"]["builder"]["id"], "https://ci.acme.example/runner",
        "{verified}"
    );
    assert_eq!(verified["attestations"][0]["key"], "ci", "{verified}");
}

#[test]
fn key_signed_slsa_provenance_in_cosigns_att_form_meets_the_policy_on_the_embedded_backend() {
    key_signed_provenance(Backend::Embedded);
}

#[test]
fn key_signed_slsa_provenance_in_cosigns_att_form_meets_the_policy_on_postgres_and_s3() {
    key_signed_provenance(Backend::Distributed);
}
