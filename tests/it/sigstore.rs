//! Sigstore bundle verification against the real Sigstore conformance suite
//! (`sigstore-conformance`'s `bundle-verify` cases, kept under the shared instruments):
//! every case must get the verdict its name promises — `_fail` cases fail, others verify —
//! except the few listed in `UNSUPPORTED`, each with the feature it needs.

use std::path::{Path, PathBuf};

use sha2_10::Digest as _;

use semdock::domain::trust::PublicKey;
use semdock::domain::trust::sigstore::{
    Artifact, Expect, TrustedRoot, verify_bundle, verify_bundle_at,
};

const DEFAULT_IDENTITY: &str = "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main";
const DEFAULT_ISSUER: &str = "https://token.actions.githubusercontent.com";

/// Cases whose verdict this verifier does not reach, and the feature each needs. The test
/// asserts that each of them really disagrees, so a case fixed stays off this list.
const UNSUPPORTED: &[(&str, &str)] = &[];

/// For failing cases whose README names a reason: words the refusal must contain, so a
/// case that fails for another reason (a broken parser, say) is noticed.
const REASONS: &[(&str, &str)] = &[
    ("bundle-empty-certificate-chain_fail", "chain is empty"),
    (
        "bundle-from-wrong-instance_fail",
        "trusted root does not hold",
    ),
    ("bundle-invalid-base64-signature_fail", "base64"),
    ("bundle-malformed-json_fail", "not a Sigstore bundle"),
    (
        "bundle-negative-log-index_fail",
        "not a non-negative integer",
    ),
    ("bundle-unknown-version_fail", "media type"),
    ("bundle-with-root-cert_fail", "root certificate"),
    ("checkpoint-bad-keyhint_fail", "checkpoint"),
    ("checkpoint-wrong-roothash_fail", "checkpoint"),
    ("dsse-invalid-sig_fail", "signature does not verify"),
    ("dsse-mismatch-envelope_fail", "does not match"),
    ("dsse-mismatch-sig_fail", "does not match"),
    ("inclusion-proof-corrupted-hash_fail", "inclusion proof"),
    ("incorrect-public-key_fail", "another certificate or key"),
    ("integrated-time-in-future_fail", "not at"),
    ("intoto-log-entry-mismatch_fail", "does not match"),
    ("intoto-missing-inclusion-proof_fail", "no inclusion proof"),
    ("intoto-set-outside-signing-cert-validity_fail", "not at"),
    ("intoto-tsa-timestamp-outside-cert-validity_fail", "not at"),
    ("invalid-checkpoint-signature_fail", "checkpoint"),
    ("invalid-ct-key_fail", "SCT"),
    ("invalid-inclusion-proof_fail", "inclusion proof"),
    ("managed-key-no-key_fail", "signed with a key"),
    ("message-digest-mismatch_fail", "message digest"),
    ("rekor2-checkpoint-missing-log-signature_fail", "checkpoint"),
    ("rekor2-checkpoint-missing-origin_fail", "checkpoint"),
    ("rekor2-checkpoint-missing-root-hash_fail", "root hash"),
    ("rekor2-checkpoint-missing-size_fail", "checkpoint"),
    ("rekor2-checkpoint-no-matching-signature_fail", "checkpoint"),
    ("rekor2-dsse-invalid-sig_fail", "signature does not verify"),
    ("rekor2-dsse-mismatch-envelope_fail", "does not match"),
    ("rekor2-dsse-mismatch-sig_fail", "does not match"),
    ("rekor2-no-inclusion-proof_fail", "no inclusion proof"),
    ("rekor2-no-timestamp_fail", "RFC 3161 timestamp"),
    (
        "rekor2-timestamp-outside-trust-root-tsa-validity_fail",
        "timestamp",
    ),
    (
        "rekor2-timestamp-outside-tsa-cert-validity_fail",
        "timestamp",
    ),
    ("rekor2-timestamp-payload-mismatch_fail", "timestamp"),
    (
        "rekor2-timestamp-untrusted-tsa-with-embedded-cert_fail",
        "timestamp",
    ),
    (
        "rekor2-timestamp-untrusted-tsa-without-embedded-cert_fail",
        "timestamp",
    ),
    ("rekor2-timestamp-with-incorrect-time_fail", "not at"),
    ("set-invalid-signature_fail", "signed entry timestamp"),
    ("signature-mismatch_fail", "signature does not verify"),
    ("trust-root-tlog-missing-validity-start_fail", "validFor"),
    ("wrong-hashedrekord-artifact_fail", "does not match"),
    ("wrong-hashedrekord-cert-and-sig_fail", "does not match"),
    ("wrong-hashedrekord-entry_fail", "does not match"),
    ("wrong-material_fail", "digest"),
];

fn assets() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/instruments/sigstore-conformance-assets")
}

/// Verifies one case as the conformance suite's client would.
fn verify_case(dir: &Path) -> Result<u64, String> {
    let read = |name: &str| std::fs::read(dir.join(name)).ok();
    let text = |name: &str, default: &str| {
        read(name).map_or_else(
            || default.to_owned(),
            |b| String::from_utf8_lossy(&b).trim().to_owned(),
        )
    };
    let bundle = read("bundle.sigstore.json").ok_or("the case has no bundle")?;
    let artifact = read("artifact")
        .or_else(|| std::fs::read(dir.join("../a.txt")).ok())
        .ok_or("the case has no artifact")?;
    let root = read("trusted_root.json")
        .or_else(|| std::fs::read(assets().join("trusted_root.production.json")).ok())
        .ok_or("no trusted root")?;
    let root = TrustedRoot::from_json(&root)?;
    let key = read("key.pub")
        .map(|pem| PublicKey::from_pem(&String::from_utf8_lossy(&pem)))
        .transpose()?;
    let (issuer, subject) = (
        text("issuer", DEFAULT_ISSUER),
        text("identity", DEFAULT_IDENTITY),
    );
    let expect = match &key {
        Some(k) => Expect::Key(k),
        None => Expect::Identity {
            issuer: &issuer,
            subject: &subject,
        },
    };
    verify_bundle(&bundle, Artifact::Bytes(&artifact), &expect, &root).map(|v| v.signed_at)
}

#[test]
fn every_conformance_bundle_gets_its_expected_verdict() {
    let dir = assets().join("bundle-verify");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{} cannot be read: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    let mut agree = 0;
    let mut wrong = Vec::new();
    for case in &cases {
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        let should_verify = !name.ends_with("_fail");
        let got = verify_case(case);
        let agrees = got.is_ok() == should_verify;
        println!(
            "{} {name}: {}",
            if agrees { "ok  " } else { "DIFF" },
            match &got {
                Ok(t) => format!("verified, signed at {t}"),
                Err(e) => format!("refused: {e}"),
            }
        );
        if let (Err(e), Some((_, words))) = (&got, REASONS.iter().find(|(n, _)| *n == name))
            && !e.contains(words)
        {
            wrong.push(format!(
                "{name} fails, but not for its reason ({words:?}): {e}"
            ));
        }
        let unsupported = UNSUPPORTED.iter().any(|(n, _)| *n == name);
        if agrees {
            agree += 1;
        }
        if agrees == unsupported {
            wrong.push(if agrees {
                format!("{name} is listed as unsupported but now agrees: take it off UNSUPPORTED")
            } else {
                format!(
                    "{name} should {} but {got:?}",
                    if should_verify { "verify" } else { "fail" }
                )
            });
        }
    }
    println!("{agree} of {} cases agree", cases.len());
    for (name, _) in UNSUPPORTED {
        assert!(
            cases.iter().any(|c| c.ends_with(name)),
            "UNSUPPORTED names {name}, which is no case"
        );
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

fn case(name: &str) -> (Vec<u8>, TrustedRoot) {
    let dir = assets().join("bundle-verify").join(name);
    let root = std::fs::read(assets().join("trusted_root.production.json")).unwrap();
    (
        std::fs::read(dir.join("bundle.sigstore.json")).unwrap(),
        TrustedRoot::from_json(&root).unwrap(),
    )
}

#[test]
fn an_artifact_is_verified_by_its_digest_alone_and_its_identity_is_reported() {
    let (bundle, root) = case("happy-path-v0.3");
    let artifact = std::fs::read(assets().join("bundle-verify/a.txt")).unwrap();
    let digest: [u8; 32] = sha2_10::Sha256::digest(&artifact).into();
    let expect = Expect::Identity {
        issuer: DEFAULT_ISSUER,
        subject: "https://github.com/sigstore-conformance/*@refs/heads/main",
    };
    let v = verify_bundle(&bundle, Artifact::Sha256(digest), &expect, &root).unwrap();
    assert_eq!(v.signed_at, 1_710_869_186);
    assert_eq!(v.issuer.as_deref(), Some(DEFAULT_ISSUER));
    assert_eq!(v.subject.as_deref(), Some(DEFAULT_IDENTITY));
    assert_eq!(v.statement, None);

    let other = Expect::Identity {
        issuer: DEFAULT_ISSUER,
        subject: "https://github.com/someone-else/*",
    };
    let e = verify_bundle(&bundle, Artifact::Sha256(digest), &other, &root).unwrap_err();
    assert!(e.contains("not for"), "{e}");
}

#[test]
fn a_signature_proven_only_after_now_is_refused() {
    let (bundle, root) = case("happy-path-v0.3");
    let artifact = std::fs::read(assets().join("bundle-verify/a.txt")).unwrap();
    let expect = Expect::Identity {
        issuer: DEFAULT_ISSUER,
        subject: DEFAULT_IDENTITY,
    };
    let e = verify_bundle_at(
        &bundle,
        Artifact::Bytes(&artifact),
        &expect,
        &root,
        1_700_000_000,
    )
    .unwrap_err();
    assert!(e.contains("in the future"), "{e}");
}

#[test]
fn a_dsse_bundle_reports_its_in_toto_statement() {
    let (bundle, root) = case("happy-path-intoto-in-dsse-v3");
    let artifact = std::fs::read(assets().join("bundle-verify/a.txt")).unwrap();
    let expect = Expect::Identity {
        issuer: DEFAULT_ISSUER,
        subject: DEFAULT_IDENTITY,
    };
    let v = verify_bundle(&bundle, Artifact::Bytes(&artifact), &expect, &root).unwrap();
    let (payload_type, payload) = v.statement.unwrap();
    assert_eq!(payload_type, "application/vnd.in-toto+json");
    assert!(String::from_utf8(payload).unwrap().contains("\"subject\""));
}
