//! Sigstore bundles stored as OCI referrers of an image — cosign 3's signatures
//! (`cosign sign`, a DSSE envelope of an in-toto statement of predicate type
//! `https://sigstore.dev/cosign/sign/v1` whose subject is the image digest) and the
//! attestations cosign 3 and GitHub attach the same way — verified offline under the
//! registry's trusted roots, as a trusted key's or as a keyless signer's identity.

use serde_json::Value;

use super::sigstore::{self, Artifact, Expect, TrustedRoot};
use super::{Attestation, Identity, PublicKey, Trust};
use crate::model::{Algorithm, Digest};

/// The artifact type of a Sigstore bundle referrer (cosign's bundle specification).
pub const BUNDLE_ARTIFACT: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
/// The predicate type of cosign 3's image signatures.
pub const SIGN_PREDICATE: &str = "https://sigstore.dev/cosign/sign/v1";
/// Bundles larger than this are not read: a signature's is a few KiB.
pub const BUNDLE_LIMIT: u64 = 256 * 1024;

/// What verifying one bundle found.
pub(super) struct Checked {
    pub key: Option<String>,
    pub identity: Option<Identity>,
    /// A verified attestation (a DSSE statement of another predicate than a signature's).
    pub attestation: Option<Attestation>,
    pub reason: String,
}

/// Predicates larger than this are not kept in a verdict (SLSA provenance is a few KiB).
const PREDICATE_LIMIT: usize = 64 * 1024;

impl Checked {
    fn not(reason: impl Into<String>) -> Self {
        Self {
            key: None,
            identity: None,
            attestation: None,
            reason: reason.into(),
        }
    }
}

/// The bundle layer of a bundle manifest: (digest, size).
fn bundle_layer(manifest: &[u8]) -> Result<(Digest, u64), String> {
    let v: Value = serde_json::from_slice(manifest)
        .map_err(|e| format!("the bundle manifest cannot be read: {e}"))?;
    let layer = v
        .get("layers")
        .and_then(Value::as_array)
        .and_then(|l| {
            l.iter().find(|l| {
                l.get("mediaType")
                    .and_then(Value::as_str)
                    .is_some_and(|t| t.starts_with("application/vnd.dev.sigstore.bundle"))
            })
        })
        .ok_or("the bundle manifest has no Sigstore bundle layer")?;
    let digest = layer
        .get("digest")
        .and_then(Value::as_str)
        .and_then(|d| d.parse::<Digest>().ok())
        .ok_or("the bundle layer's digest is invalid")?;
    let size = layer
        .get("size")
        .and_then(Value::as_u64)
        .ok_or("the bundle layer has no size")?;
    Ok((digest, size))
}

impl Trust {
    /// Verifies the bundle a bundle manifest holds over image `digest`, with the trusted
    /// keys and under the trusted roots.
    pub(super) fn check_bundle(
        &self,
        manifest: &[u8],
        digest: &str,
        keys: &[(&String, PublicKey)],
        roots: &[(String, TrustedRoot)],
    ) -> Checked {
        let bytes = match bundle_layer(manifest)
            .and_then(|(d, size)| self.small_blob(&d, size, BUNDLE_LIMIT, "bundle"))
        {
            Ok(b) => b,
            Err(e) => return Checked::not(e),
        };
        let image: [u8; 32] = match digest.parse::<Digest>() {
            Ok(d) if d.algorithm() == Algorithm::Sha256 => {
                match hex::decode(d.hex()).ok().and_then(|h| h.try_into().ok()) {
                    Some(h) => h,
                    None => return Checked::not("the image digest is malformed"),
                }
            }
            _ => {
                return Checked::not(
                    "a Sigstore bundle signs a SHA-256 image digest; this image is addressed otherwise",
                );
            }
        };
        if roots.is_empty() {
            return Checked::not(
                "a Sigstore bundle: no trusted root to verify it under (semdock trust root add)",
            );
        }
        let keyed = serde_json::from_slice::<Value>(&bytes)
            .ok()
            .is_some_and(|b| b.pointer("/verificationMaterial/publicKey").is_some());
        let mut reasons = Vec::new();
        for (root_name, root) in roots {
            let attempts: Vec<(Option<&String>, Expect<'_>)> = if keyed {
                keys.iter()
                    .map(|(n, k)| (Some(*n), Expect::Key(k)))
                    .collect()
            } else {
                vec![(None, Expect::AnyIdentity)]
            };
            for (key, expect) in attempts {
                match sigstore::verify_bundle(&bytes, Artifact::Sha256(image), &expect, root) {
                    Ok(v) => return verified(&v, key, root_name),
                    Err(e) => reasons.push(format!("under trusted root {root_name}: {e}")),
                }
            }
        }
        if keyed && keys.is_empty() {
            return Checked::not(
                "a Sigstore bundle signed with a key: no trusted key to verify it with",
            );
        }
        reasons.dedup();
        Checked::not(format!(
            "a Sigstore bundle that does not verify: {}",
            reasons.join("; ")
        ))
    }
}

/// What a bundle that verified (`v`, with trusted key `key` if a key's) proves: a signature
/// by the key or identity, or an attestation.
fn verified(v: &sigstore::Verified, key: Option<&String>, root_name: &str) -> Checked {
    let identity = v.issuer.clone().map(|issuer| Identity {
        issuer,
        subject: v.subject.clone().unwrap_or_default(),
    });
    let signer = match (key, &identity) {
        (Some(name), _) => format!("key {name}"),
        (None, Some(i)) => i.to_string(),
        (None, None) => "an unknown signer".to_owned(),
    };
    if let Some((_, statement)) = &v.statement {
        let statement: Value = serde_json::from_slice(statement).unwrap_or(Value::Null);
        let predicate_type = statement
            .get("predicateType")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        if predicate_type != SIGN_PREDICATE {
            let mut predicate = statement.get("predicate").cloned().unwrap_or(Value::Null);
            if predicate.to_string().len() > PREDICATE_LIMIT {
                predicate = Value::Null;
            }
            return Checked {
                reason: format!(
                    "an attestation of type {predicate_type} by {signer}, under trusted root {root_name}"
                ),
                key: None,
                identity: None,
                attestation: Some(Attestation {
                    predicate_type,
                    key: key.cloned(),
                    identity,
                    predicate,
                }),
            };
        }
    }
    Checked {
        reason: match key {
            Some(_) => format!(
                "a Sigstore bundle that verifies with {signer} under trusted root {root_name}"
            ),
            None => format!(
                "a keyless signature that verifies as {signer} under trusted root {root_name}"
            ),
        },
        key: key.cloned(),
        identity: if key.is_some() { None } else { identity },
        attestation: None,
    }
}
