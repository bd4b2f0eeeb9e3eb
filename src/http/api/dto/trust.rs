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

/// A keyless signer: the OIDC issuer (exact) and the certificate subject (in a policy, `*`
/// matches any run of characters).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Identity {
    /// e.g. `https://token.actions.githubusercontent.com`
    pub issuer: String,
    /// e.g. `https://github.com/acme/web/.github/workflows/release.yml@refs/tags/*`
    pub subject: String,
}

impl From<trust::Identity> for Identity {
    fn from(i: trust::Identity) -> Self {
        Self {
            issuer: i.issuer,
            subject: i.subject,
        }
    }
}

impl From<Identity> for trust::Identity {
    fn from(i: Identity) -> Self {
        Self {
            issuer: i.issuer,
            subject: i.subject,
        }
    }
}

/// A trusted root (`trusted_root.json`): what it holds.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TrustRoot {
    pub name: String,
    pub tlogs: usize,
    pub ctlogs: usize,
    pub certificate_authorities: usize,
    pub timestamp_authorities: usize,
    /// RFC 3339.
    pub added: String,
    pub added_by: String,
}

impl From<trust::RootInfo> for TrustRoot {
    fn from(r: trust::RootInfo) -> Self {
        Self {
            name: r.name,
            tlogs: r.tlogs,
            ctlogs: r.ctlogs,
            certificate_authorities: r.certificate_authorities,
            timestamp_authorities: r.timestamp_authorities,
            added: r.added,
            added_by: r.added_by,
        }
    }
}

/// A Sigstore trusted root to trust: its name and its `trusted_root.json`, as a JSON value.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTrustRoot {
    /// 1 to 64 of a-z 0-9 . _ -
    pub name: String,
    #[schema(value_type = Object)]
    pub root: serde_json::Value,
}

/// An attestation a policy requires: of this predicate type, whose predicate's fields
/// match these globs (a JSON pointer, or for SLSA provenance `builder_id`,
/// `source_repository`, `source_ref`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AttestationRule {
    /// e.g. `https://slsa.dev/provenance/v1`
    pub predicate_type: String,
    #[serde(default)]
    pub matches: std::collections::BTreeMap<String, String>,
}

impl From<trust::AttestationRule> for AttestationRule {
    fn from(r: trust::AttestationRule) -> Self {
        Self {
            predicate_type: r.predicate_type,
            matches: r.matches,
        }
    }
}

impl From<AttestationRule> for trust::AttestationRule {
    fn from(r: AttestationRule) -> Self {
        Self {
            predicate_type: r.predicate_type,
            matches: r.matches,
        }
    }
}

/// A verified attestation of an image.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Attestation {
    pub predicate_type: String,
    /// The trusted key that signed it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The keyless identity that signed it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity: Option<Identity>,
    #[schema(value_type = Object)]
    pub predicate: serde_json::Value,
}

impl From<trust::Attestation> for Attestation {
    fn from(a: trust::Attestation) -> Self {
        Self {
            predicate_type: a.predicate_type,
            key: a.key,
            identity: a.identity.map(Into::into),
            predicate: a.predicate,
        }
    }
}

/// A Notation trust store: the CA certificates signing certificates chain to.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TrustStore {
    pub name: String,
    /// How many CA certificates it holds.
    pub certificates: usize,
    /// RFC 3339.
    pub added: String,
    pub added_by: String,
}

impl From<trust::StoreInfo> for TrustStore {
    fn from(s: trust::StoreInfo) -> Self {
        Self {
            name: s.name,
            certificates: s.certificates,
            added: s.added,
            added_by: s.added_by,
        }
    }
}

/// A Notation trust store to trust: its name and its CA certificates (PEM).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTrustStore {
    /// 1 to 64 of a-z 0-9 . _ -
    pub name: String,
    /// `-----BEGIN CERTIFICATE-----` … (one or more CA certificates)
    pub pem: String,
}

/// What a feed requires of the images entering it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignaturePolicy {
    /// A signature by one of these trusted keys is required…
    #[serde(default)]
    pub keys: Vec<String>,
    /// …or a keyless signature by one of these identities, under a trusted root…
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub identities: Vec<Identity>,
    /// …or a Notation signature whose certificate chains to one of these trust stores.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stores: Vec<String>,
    /// And, for each rule, an attestation by one of the keys or identities that it admits.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attestations: Vec<AttestationRule>,
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
            identities: p.identities.into_iter().map(Into::into).collect(),
            stores: p.stores,
            attestations: p.attestations.into_iter().map(Into::into).collect(),
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
            identities: p.identities.into_iter().map(Into::into).collect(),
            stores: p.stores,
            attestations: p.attestations.into_iter().map(Into::into).collect(),
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
    /// `tag` (cosign's `sha256-<hex>.sig`), `referrer` (OCI 1.1), `bundle` (a Sigstore bundle referrer) or `notation`.
    pub form: String,
    /// The trusted key it verifies with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The identity a keyless signature verifies as.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity: Option<Identity>,
    /// The trust store a Notation signature's certificate chains to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub store: Option<String>,
    /// With what it verifies, or why not.
    pub reason: String,
}

/// What an image's signatures say.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Verification {
    pub repository: String,
    pub digest: String,
    /// Whether a signature verifies with a trusted key or under a trusted root.
    pub verified: bool,
    pub verified_by: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub verified_identities: Vec<Identity>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub verified_stores: Vec<String>,
    /// The attestations that verify, whoever signed them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attestations: Vec<Attestation>,
    pub signatures: Vec<SignatureFinding>,
}

impl From<trust::Verification> for Verification {
    fn from(v: trust::Verification) -> Self {
        Self {
            repository: v.repository,
            digest: v.digest,
            verified: v.verified,
            verified_by: v.verified_by,
            verified_identities: v.verified_identities.into_iter().map(Into::into).collect(),
            verified_stores: v.verified_stores,
            attestations: v.attestations.into_iter().map(Into::into).collect(),
            signatures: v
                .signatures
                .into_iter()
                .map(|f| SignatureFinding {
                    manifest: f.manifest,
                    form: f.form,
                    key: f.key,
                    identity: f.identity.map(Into::into),
                    store: f.store,
                    reason: f.reason,
                })
                .collect(),
        }
    }
}
