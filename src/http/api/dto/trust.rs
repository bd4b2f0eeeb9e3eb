//! Trusted keys, signature policies and verification reports.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::trust;

/// A trusted public key.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TrustKey {
    pub name: String,
    /// `ecdsa-p256`, `ecdsa-p384`, `ed25519` or `rsa`.
    pub kind: String,
    /// SHA-256 of the key's DER `SubjectPublicKeyInfo`, hex.
    pub fingerprint: String,
    /// RFC 3339.
    pub added: String,
    pub added_by: String,
}

impl From<trust::KeyInfo> for TrustKey {
    fn from(k: trust::KeyInfo) -> Self {
        Self {
            name: k.name,
            kind: k.kind,
            fingerprint: k.fingerprint,
            added: k.added,
            added_by: k.added_by,
        }
    }
}

/// A key to trust: its name and its PEM public key (`cosign.pub`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTrustKey {
    /// 1 to 64 of a-z 0-9 . _ -
    pub name: String,
    /// `-----BEGIN PUBLIC KEY-----` …
    pub pem: String,
}

fn yes() -> bool {
    true
}

/// What a feed requires of the images entering it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignaturePolicy {
    /// A signature by one of these trusted keys is required.
    pub keys: Vec<String>,
    /// Enforced when an image is promoted into the feed (default true).
    #[serde(default = "yes")]
    pub on_promotion: bool,
    /// Enforced when a tag is pushed into the feed: sign the digest, then tag it (default
    /// false).
    #[serde(default)]
    pub on_push: bool,
    /// Enforced when an image is pulled from the feed: `refuse` answers 403 without a
    /// passing signature, `warn` serves it with a `Warning` header (default: not enforced).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_pull: Option<PullGate>,
}

/// What a pull of an image without a passing signature gets.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PullGate {
    Refuse,
    Warn,
}

impl From<trust::PullGate> for PullGate {
    fn from(g: trust::PullGate) -> Self {
        match g {
            trust::PullGate::Refuse => Self::Refuse,
            trust::PullGate::Warn => Self::Warn,
        }
    }
}

impl From<PullGate> for trust::PullGate {
    fn from(g: PullGate) -> Self {
        match g {
            PullGate::Refuse => Self::Refuse,
            PullGate::Warn => Self::Warn,
        }
    }
}

impl From<trust::SignaturePolicy> for SignaturePolicy {
    fn from(p: trust::SignaturePolicy) -> Self {
        Self {
            keys: p.keys,
            on_promotion: p.on_promotion,
            on_push: p.on_push,
            on_pull: p.on_pull.map(Into::into),
        }
    }
}

impl From<SignaturePolicy> for trust::SignaturePolicy {
    fn from(p: SignaturePolicy) -> Self {
        Self {
            keys: p.keys,
            on_promotion: p.on_promotion,
            on_push: p.on_push,
            on_pull: p.on_pull.map(Into::into),
        }
    }
}

/// One signature found for an image.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SignatureFinding {
    /// The signature manifest's digest.
    pub manifest: String,
    /// `tag` (cosign's `sha256-<hex>.sig`) or `referrer` (OCI 1.1).
    pub form: String,
    /// The trusted key it verifies with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// With what it verifies, or why not.
    pub reason: String,
}

/// What an image's signatures say.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Verification {
    pub repository: String,
    pub digest: String,
    /// Whether a signature verifies with a trusted key.
    pub verified: bool,
    pub verified_by: Vec<String>,
    pub signatures: Vec<SignatureFinding>,
}

impl From<trust::Verification> for Verification {
    fn from(v: trust::Verification) -> Self {
        Self {
            repository: v.repository,
            digest: v.digest,
            verified: v.verified,
            verified_by: v.verified_by,
            signatures: v
                .signatures
                .into_iter()
                .map(|f| SignatureFinding {
                    manifest: f.manifest,
                    form: f.form,
                    key: f.key,
                    reason: f.reason,
                })
                .collect(),
        }
    }
}
