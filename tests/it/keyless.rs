//! Keyless signatures as cosign 3 and GitHub Actions make them — a Sigstore bundle stored as
//! an OCI referrer, signed with a short-lived Fulcio certificate for the CI's OIDC identity
//! and logged in Rekor — verified offline under a trusted root, and required by a feed's
//! policy that names the identity: in the real binary, on both backends, with a Sigstore
//! instance the test runs itself (`common::sigstore`).

use serde_json::{Value, json};

use crate::common::sigstore::{Options, SIGN_PREDICATE, TestSigstore};
use crate::common::{OCI_MANIFEST, run, run_fail};
use crate::release::{Backend, Registry};
use semdock::model::Digest;

const GITHUB: &str = "https://token.actions.githubusercontent.com";
const RELEASE: &str = "https://github.com/acme/web/.github/workflows/release.yml@refs/tags/v5.1.0";
const BUNDLE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
const EMPTY: &str = "application/vnd.oci.empty.v1+json";

fn upload(r: &Registry, repo: &str, blob: &[u8]) -> Digest {
    let digest = Digest::of(blob);
    let res = r
        .admin()
        .post(&r.url(&format!("/v2/{repo}/blobs/uploads/?digest={digest}")))
        .header("Content-Type", "application/octet-stream")
        .send(blob)
        .unwrap();
    assert_eq!(res.status(), 201);
    digest
}

/// Attaches `bundle` to `repo@digest` as cosign 3 does: the bundle as a blob, an artifact
/// manifest of the bundle's type with the image as its subject. Returns its digest.
fn attach(r: &Registry, repo: &str, digest: &str, bundle: &[u8]) -> String {
    let layer = upload(r, repo, bundle);
    let config = upload(r, repo, b"{}");
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": BUNDLE,
        "config": {"mediaType": EMPTY, "digest": config.as_str(), "size": 2},
        "layers": [{"mediaType": BUNDLE, "digest": layer.as_str(), "size": bundle.len()}],
        "subject": {"mediaType": OCI_MANIFEST, "digest": digest, "size": 1},
    });
    let body = serde_json::to_vec(&manifest).unwrap();
    let at = Digest::of(&body);
    let res = r
        .admin()
        .put(&r.url(&format!("/v2/{repo}/manifests/{at}")))
        .header("Content-Type", OCI_MANIFEST)
        .send(&body[..])
        .unwrap();
    assert_eq!(res.status(), 201);
    at.to_string()
}

fn promote(r: &Registry, tag: &str, digest: &str) -> (u16, Value) {
    r.json(
        "POST",
        "/api/v1/promotions",
        &json!({"from": format!("staging/web:{tag}"), "to": format!("prod/web:{tag}"), "expected_digest": digest}),
    )
}

fn message(body: &Value) -> String {
    body["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

fn keyless_release(backend: Backend) {
    let r = Registry::start(backend);
    for feed in ["staging", "prod"] {
        let (status, body) = r.json("POST", "/api/v1/feeds", &json!({"name": feed}));
        assert!(status == 201 || status == 409, "{body}");
    }
    let sigstore = TestSigstore::new();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("trusted_root.json");
    std::fs::write(&root, sigstore.trusted_root().to_string()).unwrap();

    // Identities verify under a trusted root: none yet, so the policy is refused.
    let identity =
        format!("{GITHUB}=https://github.com/acme/web/.github/workflows/release.yml@refs/tags/*");
    let out = run_fail(&mut r.cli(&["trust", "policy", "prod", "--identity", &identity]));
    assert!(out.contains("none is trusted"), "{out}");
    let out = run(&mut r.cli(&[
        "trust",
        "root",
        "add",
        "ci-sigstore",
        root.to_str().unwrap(),
    ]));
    assert!(
        out.contains(
            "trusted root ci-sigstore (1 transparency logs, 1 CT logs, 1 certificate authorities"
        ),
        "{out}"
    );
    let (status, body) = r.json(
        "POST",
        "/api/v1/trust/roots",
        &json!({"name": "broken", "root": {"mediaType": "application/json"}}),
    );
    assert_eq!(status, 400, "{body}");
    let out = run(&mut r.cli(&["trust", "policy", "prod", "--identity", &identity]));
    assert!(
        out.contains("release.yml@refs/tags/* from https://token.actions"),
        "{out}"
    );

    // CI signs staging/web:5.1.0 keyless; the promotion verifies it and carries the bundle.
    let (_, signed) = r.push("staging/web", "5.1.0", "built by the release workflow");
    let bundle = sigstore.sign(&signed, GITHUB, RELEASE, SIGN_PREDICATE, Options::default());
    let attached = attach(&r, "staging/web", &signed, &bundle);
    let (status, body) = promote(&r, "5.1.0", &signed);
    assert_eq!(status, 200, "{body}");
    let (_, referrers) = r.get(&format!("/v2/prod/web/referrers/{signed}"));
    assert_eq!(referrers["manifests"][0]["digest"], attached.as_str());
    let (_, verified) = r.get("/api/v1/verify?ref=prod/web:5.1.0");
    assert_eq!(verified["verified"], true, "{verified}");
    assert_eq!(
        verified["verified_identities"][0]["subject"], RELEASE,
        "{verified}"
    );
    assert_eq!(verified["signatures"][0]["form"], "bundle", "{verified}");

    // Each way of not being the release workflow's signature is refused, with its sentence.
    let refused = |tag: &str, bundle_of: &dyn Fn(&str) -> Vec<u8>| {
        let (_, digest) = r.push("staging/web", tag, &format!("build {tag}"));
        attach(&r, "staging/web", &digest, &bundle_of(&digest));
        let (status, body) = promote(&r, tag, &digest);
        assert_eq!(status, 403, "{tag}: {body}");
        message(&body)
    };
    let nightly = "https://github.com/acme/web/.github/workflows/nightly.yml@refs/heads/main";
    let why = refused("5.2.0", &|d| {
        sigstore.sign(d, GITHUB, nightly, SIGN_PREDICATE, Options::default())
    });
    assert!(
        why.contains(&format!(
            "a certificate for {nightly} from {GITHUB}, not matching"
        )),
        "{why}"
    );
    let why = refused("5.3.0", &|d| {
        let expired = Options {
            valid: (-7200, -6600),
            ..Options::default()
        };
        sigstore.sign(d, GITHUB, RELEASE, SIGN_PREDICATE, expired)
    });
    assert!(why.contains("certificate is valid from"), "{why}");
    let why = refused("5.4.0", &|_| {
        sigstore.sign(&signed, GITHUB, RELEASE, SIGN_PREDICATE, Options::default())
    });
    assert!(
        why.contains("no subject with the artifact's SHA-256"),
        "{why}"
    );
    let stranger = TestSigstore::new();
    let why = refused("5.5.0", &|d| {
        stranger.sign(d, GITHUB, RELEASE, SIGN_PREDICATE, Options::default())
    });
    assert!(why.contains("the trusted root does not hold"), "{why}");
    let why = refused("5.6.0", &|d| {
        sigstore.sign(
            d,
            GITHUB,
            RELEASE,
            "https://slsa.dev/provenance/v1",
            Options::default(),
        )
    });
    assert!(
        why.contains("an attestation of type https://slsa.dev/provenance/v1 by"),
        "{why}"
    );
    let genuine = sigstore.sign(&signed, GITHUB, RELEASE, SIGN_PREDICATE, Options::default());
    let why = refused("5.7.0", &|d| {
        // The release workflow's bundle of another image, its statement edited to name this one.
        let mut b: Value = serde_json::from_slice(&genuine).unwrap();
        let hex = d.strip_prefix("sha256:").unwrap();
        let statement = json!({"_type": "https://in-toto.io/Statement/v1", "subject": [{"name": "image", "digest": {"sha256": hex}}], "predicateType": SIGN_PREDICATE, "predicate": {}});
        b["dsseEnvelope"]["payload"] = base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            statement.to_string(),
        )
        .into();
        b.to_string().into_bytes()
    });
    assert!(why.contains("does not verify"), "{why}");

    // Without the root, the verified image verifies no more.
    let out = run(&mut r.cli(&["trust", "root", "list"]));
    assert!(out.contains("ci-sigstore"), "{out}");
    run(&mut r.cli(&["trust", "root", "remove", "ci-sigstore"]));
    let (_, after) = r.get("/api/v1/verify?ref=prod/web:5.1.0");
    assert_eq!(after["verified"], false, "{after}");
    assert!(
        after["signatures"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("no trusted root"),
        "{after}"
    );
    let (_, log) = r.get("/api/v1/audit?kind=trust-changed");
    assert_eq!(log.as_array().unwrap().len(), 2, "{log}");
}

#[test]
fn keyless_signatures_from_the_release_workflow_enter_prod_and_others_are_refused_on_the_embedded_backend()
 {
    keyless_release(Backend::Embedded);
}

#[test]
fn keyless_signatures_from_the_release_workflow_enter_prod_and_others_are_refused_on_postgres_and_s3()
 {
    keyless_release(Backend::Distributed);
}

/// SLSA provenance v1 as GitHub's build provenance action writes it, for `repository`.
fn provenance(repository: &str) -> Value {
    json!({
        "buildDefinition": {
            "buildType": "https://actions.github.io/buildtypes/workflow/v1",
            "externalParameters": {"workflow": {"ref": "refs/tags/v5.1.0", "repository": repository, "path": ".github/workflows/release.yml"}},
        },
        "runDetails": {"builder": {"id": "https://github.com/actions/runner/github-hosted"}},
    })
}

/// A feed that requires, beside the release workflow's signature, SLSA provenance from
/// GitHub's hosted runners for its own repository.
fn provenance_required(backend: Backend) {
    const SLSA: &str = "https://slsa.dev/provenance/v1";
    let r = Registry::start(backend);
    for feed in ["staging", "prod"] {
        let (status, body) = r.json("POST", "/api/v1/feeds", &json!({"name": feed}));
        assert!(status == 201 || status == 409, "{body}");
    }
    let sigstore = TestSigstore::new();
    let (status, body) = r.json(
        "POST",
        "/api/v1/trust/roots",
        &json!({"name": "ci", "root": sigstore.trusted_root()}),
    );
    assert_eq!(status, 201, "{body}");
    let identity = format!("{GITHUB}=https://github.com/acme/web/*");
    let out = run_fail(&mut r.cli(&[
        "trust",
        "policy",
        "prod",
        "--identity",
        &identity,
        "--attestation",
        &format!("{SLSA} bogus=1"),
    ]));
    assert!(out.contains("\"bogus\" is not a field"), "{out}");
    let rule = format!(
        "{SLSA} source_repository=https://github.com/acme/web builder_id=https://github.com/actions/runner/*"
    );
    let out = run(&mut r.cli(&[
        "trust",
        "policy",
        "prod",
        "--identity",
        &identity,
        "--attestation",
        &rule,
    ]));
    assert!(
        out.contains(&format!("and an attestation of type {SLSA} with builder_id=https://github.com/actions/runner/*, source_repository=https://github.com/acme/web")),
        "{out}"
    );

    // Signed, without provenance: refused.
    let (_, digest) = r.push("staging/web", "5.1.0", "with provenance");
    let sign = sigstore.sign(&digest, GITHUB, RELEASE, SIGN_PREDICATE, Options::default());
    attach(&r, "staging/web", &digest, &sign);
    let (status, body) = promote(&r, "5.1.0", &digest);
    assert_eq!(status, 403, "{body}");
    assert!(
        message(&body).contains("it has no verified attestation"),
        "{body}"
    );
    // Provenance of a fork: refused, saying what it found.
    let fork = sigstore.attest(
        &digest,
        GITHUB,
        RELEASE,
        SLSA,
        &provenance("https://github.com/eve/web"),
        Options::default(),
    );
    attach(&r, "staging/web", &digest, &fork);
    let (status, body) = promote(&r, "5.1.0", &digest);
    assert_eq!(status, 403, "{body}");
    assert!(
        message(&body).contains(&format!("its verified attestations are of type {SLSA}")),
        "{body}"
    );
    // The repository's own provenance: admitted, and readable in the verification.
    let own = sigstore.attest(
        &digest,
        GITHUB,
        RELEASE,
        SLSA,
        &provenance("https://github.com/acme/web"),
        Options::default(),
    );
    attach(&r, "staging/web", &digest, &own);
    let (status, body) = promote(&r, "5.1.0", &digest);
    assert_eq!(status, 200, "{body}");
    let (_, verified) = r.get("/api/v1/verify?ref=prod/web:5.1.0");
    let repos: Vec<&str> = verified["attestations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            a["predicate"]["buildDefinition"]["externalParameters"]["workflow"]["repository"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert!(repos.contains(&"https://github.com/acme/web"), "{verified}");
}

#[test]
fn slsa_provenance_from_the_right_repository_is_required_beside_the_signature_on_the_embedded_backend()
 {
    provenance_required(Backend::Embedded);
}

#[test]
fn slsa_provenance_from_the_right_repository_is_required_beside_the_signature_on_postgres_and_s3() {
    provenance_required(Backend::Distributed);
}

/// Pushes cosign 2's keyless signature of `repo@digest` by the identity `subject` (from
/// GitHub): a `.sig` tag whose layer carries the certificate, chain and Rekor bundle.
fn push_legacy_signature(
    r: &Registry,
    sigstore: &TestSigstore,
    repo: &str,
    digest: &str,
    subject: &str,
) {
    let payload =
        semdock::domain::trust::cosign::payload_for(&format!("{}/{repo}", r.server.addr), digest);
    let (signature, cert, chain, bundle) =
        sigstore.sign_legacy(&payload, GITHUB, subject, Options::default());
    let layer = upload(r, repo, &payload);
    let config = upload(
        r,
        repo,
        br#"{"architecture":"","os":"","rootfs":{"type":"layers","diff_ids":[]}}"#,
    );
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config.as_str(), "size": 61},
        "layers": [{"mediaType": "application/vnd.dev.cosign.simplesigning.v1+json", "digest": layer.as_str(), "size": payload.len(),
            "annotations": {
                "dev.cosignproject.cosign/signature": signature,
                "dev.sigstore.cosign/certificate": cert,
                "dev.sigstore.cosign/chain": chain,
                "dev.sigstore.cosign/bundle": bundle,
            }}],
    });
    put_cosign_tag(r, repo, digest, "sig", &manifest);
}

/// PUTs `manifest` under cosign's `sha256-<hex>.KIND` tag of `digest` in `repo`.
fn put_cosign_tag(r: &Registry, repo: &str, digest: &str, kind: &str, manifest: &Value) {
    let tag = format!("{}.{kind}", digest.replacen(':', "-", 1));
    let res = r
        .admin()
        .put(&r.url(&format!("/v2/{repo}/manifests/{tag}")))
        .header("Content-Type", OCI_MANIFEST)
        .send(&serde_json::to_vec(manifest).unwrap()[..])
        .unwrap();
    assert_eq!(res.status(), 201);
}

/// cosign 2's keyless form (a `.sig` tag with the certificate and Rekor's bundle in its
/// annotations) verifies under the trusted root as the same identity a bundle would.
#[allow(clippy::too_many_lines)] // one story, told in order
fn legacy_keyless(backend: Backend) {
    let r = Registry::start(backend);
    let (status, body) = r.json("POST", "/api/v1/feeds", &json!({"name": "staging"}));
    assert_eq!(status, 201, "{body}");
    let sigstore = TestSigstore::new();
    let (status, body) = r.json(
        "POST",
        "/api/v1/trust/roots",
        &json!({"name": "ci", "root": sigstore.trusted_root()}),
    );
    assert_eq!(status, 201, "{body}");
    let identity = format!("{GITHUB}=https://github.com/acme/web/.github/workflows/release.yml@*");
    run(&mut r.cli(&["trust", "policy", "prod", "--identity", &identity]));
    let (_, released) = r.push("staging/web", "6.0.0", "signed by cosign 2, keyless");
    push_legacy_signature(&r, &sigstore, "staging/web", &released, RELEASE);
    let (status, body) = promote(&r, "6.0.0", &released);
    assert_eq!(status, 200, "{body}");
    let (_, verified) = r.get("/api/v1/verify?ref=prod/web:6.0.0");
    assert_eq!(
        verified["verified_identities"][0]["subject"], RELEASE,
        "{verified}"
    );
    let nightly = "https://github.com/acme/web/.github/workflows/nightly.yml@refs/heads/main";
    let (_, other) = r.push("staging/web", "6.1.0", "signed by the nightly workflow");
    push_legacy_signature(&r, &sigstore, "staging/web", &other, nightly);
    let (status, body) = promote(&r, "6.1.0", &other);
    assert_eq!(status, 403, "{body}");
    assert!(
        message(&body).contains(&format!("a certificate for {nightly}")),
        "{body}"
    );

    // cosign 2's keyless attestation (an `.att` tag) meets an attestation rule.
    let rule = "https://slsa.dev/provenance/v1 source_repository=https://github.com/acme/web";
    run(&mut r.cli(&[
        "trust",
        "policy",
        "prod",
        "--identity",
        &identity,
        "--attestation",
        rule,
    ]));
    let (_, attested) = r.push("staging/web", "6.2.0", "attested by cosign 2, keyless");
    push_legacy_signature(&r, &sigstore, "staging/web", &attested, RELEASE);
    let (status, body) = promote(&r, "6.2.0", &attested);
    assert_eq!(status, 403, "{body}");
    let (envelope, cert, chain, bundle) = sigstore.attest_legacy(
        &attested,
        GITHUB,
        RELEASE,
        "https://slsa.dev/provenance/v1",
        &provenance("https://github.com/acme/web"),
    );
    let layer = upload(&r, "staging/web", &envelope);
    let config = upload(&r, "staging/web", b"{}");
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config.as_str(), "size": 2},
        "layers": [{"mediaType": "application/vnd.dsse.envelope.v1+json", "digest": layer.as_str(), "size": envelope.len(),
            "annotations": {"dev.sigstore.cosign/certificate": cert, "dev.sigstore.cosign/chain": chain, "dev.sigstore.cosign/bundle": bundle}}],
    });
    put_cosign_tag(&r, "staging/web", &attested, "att", &manifest);
    let (status, body) = promote(&r, "6.2.0", &attested);
    assert_eq!(status, 200, "{body}");
    let (_, verified) = r.get("/api/v1/verify?ref=prod/web:6.2.0");
    assert_eq!(
        verified["attestations"][0]["identity"]["subject"], RELEASE,
        "{verified}"
    );
}

#[test]
fn cosign_2_keyless_signatures_verify_under_the_trusted_root_on_the_embedded_backend() {
    legacy_keyless(Backend::Embedded);
}

#[test]
fn cosign_2_keyless_signatures_verify_under_the_trusted_root_on_postgres_and_s3() {
    legacy_keyless(Backend::Distributed);
}
