//! Sigstore bundle verification against the real Sigstore conformance suite
//! (`sigstore-conformance`'s `bundle-verify` cases, kept under the shared instruments):
//! every case must get the verdict its name promises — `_fail` cases fail, others verify —
//! except the few listed in `UNSUPPORTED`, each with the feature it needs.

use std::path::{Path, PathBuf};

use semdock::domain::trust::PublicKey;
use semdock::domain::trust::sigstore::{Artifact, Expect, TrustedRoot, verify_bundle};

const DEFAULT_IDENTITY: &str = "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main";
const DEFAULT_ISSUER: &str = "https://token.actions.githubusercontent.com";

/// Cases whose verdict this verifier does not reach, and the feature each needs. The test
/// asserts that each of them really disagrees, so a case fixed stays off this list.
const UNSUPPORTED: &[(&str, &str)] = &[];

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
