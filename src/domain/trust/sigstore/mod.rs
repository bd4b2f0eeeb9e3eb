//! Offline verification of Sigstore bundles (cosign, sigstore-python, sigstore-js,
//! GitHub attestations) against a trusted root: the signature over the artifact (a message
//! signature or a DSSE envelope), the signer (a Fulcio certificate chained to a trusted
//! CA with the expected OIDC identity and embedded SCTs, or a key the caller trusts), the
//! transparency log entry (body, signed entry timestamp, inclusion proof, checkpoint) and
//! RFC 3161 timestamps, which together prove when the signature existed.
//!
//! Pure functions over bytes: no I/O, no network, no clock except the caller's "now" for
//! refusing times in the future. The registry decides where bundles and roots come from.

mod bundle;
mod checkpoint;
pub(crate) mod crypto;
mod der;
mod root;
mod timestamp;
mod tlog;
pub(crate) mod x509;

use bundle::{Bundle, Content, Material, Version};
pub use root::TrustedRoot;
pub(crate) use root::{Authority, Window};
pub(crate) use tlog::pae;
use tlog::{Claim, Signer};

use crate::domain::trust::PublicKey;

/// Who must have signed.
#[derive(Debug, Clone, Copy)]
pub enum Expect<'a> {
    /// A key the verifier trusts (the bundle holds only a hint of it).
    Key(&'a PublicKey),
    /// A Fulcio certificate for this OIDC issuer (exact) and subject (exact, or a glob
    /// where `*` matches any run of characters).
    Identity { issuer: &'a str, subject: &'a str },
    /// A Fulcio certificate for any identity: the caller matches the identity reported
    /// (a verdict recorded once serves every policy's identity rules).
    AnyIdentity,
}

/// What was signed: the artifact, or its SHA-256.
#[derive(Debug, Clone, Copy)]
pub enum Artifact<'a> {
    Bytes(&'a [u8]),
    Sha256([u8; 32]),
}

/// What a verified bundle proves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// Unix seconds at which the signature is proven to have existed (the earliest
    /// verified log integration or timestamp).
    pub signed_at: u64,
    /// The OIDC issuer of the signing certificate, for certificate signatures.
    pub issuer: Option<String>,
    /// The subject (SAN) of the signing certificate that matched.
    pub subject: Option<String>,
    /// For DSSE envelopes: the payload type and payload (an in-toto statement).
    pub statement: Option<(String, Vec<u8>)>,
}

/// Verifies `bundle` over `artifact`, signed as `expect` says, against `root`, now.
pub fn verify_bundle(
    bundle: &[u8],
    artifact: Artifact<'_>,
    expect: &Expect<'_>,
    root: &TrustedRoot,
) -> Result<Verified, String> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    verify_bundle_at(bundle, artifact, expect, root, now)
}

/// [`verify_bundle`] with an explicit "now" (unix seconds): times after it are refused.
pub fn verify_bundle_at(
    bundle: &[u8],
    artifact: Artifact<'_>,
    expect: &Expect<'_>,
    root: &TrustedRoot,
    now: i64,
) -> Result<Verified, String> {
    let b = Bundle::from_json(bundle)?;
    let digest = match artifact {
        Artifact::Bytes(bytes) => crypto::sha256(bytes),
        Artifact::Sha256(d) => d,
    };
    let statement = check_content(&b.content, digest)?;

    // The signer, and that its key made the signature.
    let (leaf_der, key, identity) = match (expect, &b.material) {
        (Expect::Key(k), Material::PublicKey) => (None, (*k).clone(), None),
        (Expect::Key(_), Material::Certificate { .. }) => {
            return Err("the bundle is signed with a certificate, where a signature by the given key is expected".into());
        }
        (Expect::Identity { .. } | Expect::AnyIdentity, Material::PublicKey) => {
            return Err("the bundle is signed with a key, where a certificate for an identity is expected: give the key to verify with".into());
        }
        (
            expect @ (Expect::Identity { .. } | Expect::AnyIdentity),
            Material::Certificate { leaf, rest },
        ) => {
            let (issuer, subject) = match expect {
                Expect::Identity { issuer, subject } => (Some(*issuer), *subject),
                _ => (None, "*"),
            };
            if rest
                .iter()
                .any(|c| x509::Cert::parse(c).is_ok_and(|c| c.self_signed()))
            {
                return Err("the bundle's certificate chain contains a root certificate: roots come from the trusted root only".into());
            }
            let cert = x509::Cert::parse(leaf)?;
            let found = check_identity(&cert, issuer, subject)?;
            let key = crypto::key_from_spki(cert.spki)?;
            (Some(leaf.as_slice()), key, Some(found))
        }
    };
    check_signature(&b.content, &key, artifact, digest)?;

    let claim = Claim {
        signature: b.content.signature(),
        digest: Some(digest),
        dsse: match &b.content {
            Content::Dsse {
                payload_type,
                payload,
                ..
            } => Some((payload_type.as_str(), payload.as_slice())),
            Content::Message { .. } => None,
        },
    };
    let signer = match leaf_der {
        Some(der) => Signer::Certificate(der),
        None => Signer::Key(&key),
    };
    let (mut times, unstamped_logs) = check_entries(&b, &claim, &signer, root)?;
    for t in &b.timestamps {
        let at = timestamp::verify(t, b.content.signature(), root)?;
        // A log entry without a SET (Rekor v2) is dated by the timestamps: the log must be
        // trusted then.
        if let Some(log) = unstamped_logs.iter().find(|l| !l.valid.contains(at)) {
            return Err(format!(
                "the signature was timestamped at unix time {at}, outside the window in which the trusted root trusts {}",
                log.base_url
            ));
        }
        times.push(at);
    }
    if times.is_empty() {
        return Err("nothing proves when the signature was made: the bundle has neither a signed entry timestamp nor an RFC 3161 timestamp".into());
    }
    if let Some(t) = times.iter().find(|&&t| t > now) {
        return Err(format!(
            "the signature is claimed to exist at unix time {t}, which is in the future"
        ));
    }
    if let Some(leaf) = leaf_der {
        let cert = x509::Cert::parse(leaf)?;
        let mut issuer = Vec::new();
        for &t in &times {
            issuer = x509::chain_to(&cert, &[], &root.cas, t, "signing")?;
        }
        x509::verify_scts(&cert, &issuer, root)?;
    }
    let signed_at = times.iter().copied().min().unwrap_or_default();
    let (issuer, subject) = identity.unzip();
    Ok(Verified {
        signed_at: u64::try_from(signed_at).unwrap_or_default(),
        issuer,
        subject,
        statement,
    })
}

/// Checks what the bundle claims was signed against the artifact's digest.
fn check_content(content: &Content, digest: [u8; 32]) -> Result<Option<(String, Vec<u8>)>, String> {
    match content {
        Content::Message { digest: hint, .. } => {
            if hint.as_ref().is_some_and(|h| h.as_slice() != digest) {
                return Err("the bundle's message digest is not the artifact's SHA-256: it was signed over another artifact".into());
            }
            Ok(None)
        }
        Content::Dsse {
            payload_type,
            payload,
            ..
        } => {
            if payload_type != "application/vnd.in-toto+json" {
                return Err(format!(
                    "the DSSE envelope holds {payload_type:?}, not an in-toto statement"
                ));
            }
            let statement: serde_json::Value = serde_json::from_slice(payload)
                .map_err(|e| format!("the in-toto statement is not JSON: {e}"))?;
            let wanted = hex::encode(digest);
            let names_artifact = statement
                .get("subject")
                .and_then(serde_json::Value::as_array)
                .is_some_and(|subjects| {
                    subjects.iter().any(|s| {
                        s.pointer("/digest/sha256")
                            .and_then(serde_json::Value::as_str)
                            == Some(wanted.as_str())
                    })
                });
            if !names_artifact {
                return Err(
                    "the in-toto statement has no subject with the artifact's SHA-256".into(),
                );
            }
            Ok(Some((payload_type.clone(), payload.clone())))
        }
    }
}

fn check_signature(
    content: &Content,
    key: &PublicKey,
    artifact: Artifact<'_>,
    digest: [u8; 32],
) -> Result<(), String> {
    let ok = match content {
        Content::Message { signature, .. } => match (key, artifact) {
            (PublicKey::Ed25519(_), Artifact::Bytes(bytes)) => {
                crypto::verify(key, crypto::Hash::Sha512, bytes, signature)
            }
            (PublicKey::Ed25519(_), Artifact::Sha256(_)) => {
                return Err("an Ed25519 signature is over the whole artifact: give its bytes, not its digest".into());
            }
            // A P-384 signer may hash with its curve's own SHA-384 when the bytes are at hand.
            (PublicKey::P384(_), Artifact::Bytes(bytes)) => {
                crypto::verify_prehashed(key, crypto::Hash::Sha256, &digest, signature)
                    || crypto::verify(key, crypto::Hash::Sha384, bytes, signature)
            }
            _ => crypto::verify_prehashed(key, crypto::Hash::Sha256, &digest, signature),
        },
        Content::Dsse {
            payload_type,
            payload,
            signature,
        } => {
            let pae = tlog::pae(payload_type, payload);
            crypto::verify(key, crypto::Hash::Sha256, &pae, signature)
                || (matches!(key, PublicKey::P384(_))
                    && crypto::verify(key, crypto::Hash::Sha384, &pae, signature))
        }
    };
    if ok {
        Ok(())
    } else {
        Err("the signature does not verify with the signer's key over the artifact".into())
    }
}

/// Verifies the bundle's log entries; returns the integration times their SETs prove, and
/// the logs of the entries that have no SET.
fn check_entries<'r>(
    b: &Bundle,
    claim: &Claim<'_>,
    signer: &Signer<'_>,
    root: &'r TrustedRoot,
) -> Result<(Vec<i64>, Vec<&'r root::Log>), String> {
    if b.entries.is_empty() {
        return Err("the bundle has no transparency log entry".into());
    }
    let mut times = Vec::new();
    let mut unstamped = Vec::new();
    for e in &b.entries {
        let log = root
            .tlogs
            .iter()
            .find(|l| l.key_id == e.log_id)
            .ok_or("the log entry is from a transparency log the trusted root does not hold")?;
        tlog::verify_body(e, claim, signer)?;
        if e.set.is_some() {
            let t = tlog::verify_set(e, log)?;
            if !log.valid.contains(t) {
                return Err(format!(
                    "the entry was integrated at unix time {t}, outside the window in which the trusted root trusts {}",
                    log.base_url
                ));
            }
            times.push(t);
        } else if b.version == Version::V01 {
            return Err("a v0.1 bundle's log entry needs a signed entry timestamp".into());
        } else {
            unstamped.push(log);
        }
        match &e.proof {
            Some(p) => tlog::verify_inclusion(e, p, log)?,
            None if b.version >= Version::V02 || e.set.is_none() => {
                return Err(
                    "the log entry has no inclusion proof: offline verification needs one".into(),
                );
            }
            None => {}
        }
    }
    Ok((times, unstamped))
}

/// Checks the certificate's OIDC issuer (any, when `None`) and subject; returns (issuer,
/// matched subject).
fn check_identity(
    cert: &x509::Cert<'_>,
    issuer: Option<&str>,
    subject: &str,
) -> Result<(String, String), String> {
    if !x509::allows_code_signing(cert)? {
        return Err(
            "the signing certificate is not for code signing (no code signing extended key usage)"
                .into(),
        );
    }
    let found = x509::oidc_issuer(cert)
        .ok_or("the signing certificate names no OIDC issuer: it is not a Fulcio certificate")?;
    if let Some(issuer) = issuer
        && found != issuer
    {
        return Err(format!(
            "the signing certificate was issued for an identity from {found:?}, not from {issuer:?}"
        ));
    }
    let names = x509::subjects(cert)?;
    names
        .iter()
        .find(|n| glob(subject, n))
        .map(|n| (found, n.clone()))
        .ok_or_else(|| {
            format!(
                "the signing certificate is for {}, not for {subject:?}",
                names.join(", ")
            )
        })
}

/// Whether `text` matches `pattern`, where `*` matches any run of characters: the same
/// glob as a feed's permitted tags.
pub use crate::domain::versioning::glob_matches as glob;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_subject_matches_exactly_or_by_glob() {
        let s = "https://github.com/o/r/.github/workflows/w.yml@refs/heads/main";
        assert!(glob(s, s));
        assert!(glob("https://github.com/o/r/*", s));
        assert!(glob(
            "https://github.com/o/*/.github/workflows/*@refs/heads/main",
            s
        ));
        assert!(glob("*", s));
        assert!(!glob("https://github.com/o/other/*", s));
        assert!(!glob("https://github.com/o/r", s));
        assert!(!glob("*@refs/heads/dev", s));
        assert!(glob("a*a", "aa"));
        assert!(!glob("ab*ba", "aba"));
    }
}
