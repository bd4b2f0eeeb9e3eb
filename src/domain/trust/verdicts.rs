//! What the registry keeps of its verdicts on signatures, and what a feed requires: the
//! records the tags read when they settle (so that settling needs nothing else of trust).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::domain::Error;
use crate::store::meta::MetaWrite;
use crate::store::meta::settings::{Counter, Family, Json};

/// feed → its signature policy.
pub(crate) const POLICIES: Family<Json<SignaturePolicy>> =
    Family::keyed("signature-policy:", "feed signature policy");

/// `repo@digest` → what its signatures said when last verified.
pub(crate) const VERDICTS: Family<Json<Verdict>> =
    Family::keyed("signature-verdict:", "signature verdict");
/// Moves with every change of the trusted keys: a verdict of an older epoch is stale.
pub(crate) const TRUST_EPOCH: Family<Counter> = Family::single("trust-epoch", "trust epoch");

/// What the signatures of one image said, under the trusted keys of one epoch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    /// The trusted keys a signature verified with.
    pub keys: Vec<String>,
    /// The certificate identities a keyless signature verified as (under a trusted root).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub identities: Vec<Identity>,
    /// The trust stores a Notation signature's certificate chains to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stores: Vec<String>,
    /// The attestations that verified.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attestations: Vec<Attestation>,
    /// The signature manifests that verified: a verdict holds while one of them is stored.
    pub signatures: Vec<String>,
    /// The trust epoch it was reached at.
    pub epoch: u64,
}

/// A keyless signer: the OIDC issuer (exact) and subject of a Fulcio certificate. In a
/// policy the subject may be a glob (`*` matches any run of characters), as cosign's
/// `--certificate-identity-regexp` would be used for; in a verdict it is what the
/// certificate says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    pub issuer: String,
    pub subject: String,
}

impl Identity {
    /// Whether `found` (a certificate's identity) is one this rule names.
    #[must_use]
    pub fn admits(&self, found: &Identity) -> bool {
        self.issuer == found.issuer
            && crate::domain::versioning::glob_matches(&self.subject, &found.subject)
    }
}

impl std::fmt::Display for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} from {}", self.subject, self.issuer)
    }
}

/// A verified in-toto attestation of an image: its predicate type, who signed it (a
/// trusted key's name or a keyless identity), and its predicate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attestation {
    pub predicate_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<Identity>,
    pub predicate: serde_json::Value,
}

/// The SLSA provenance fields a rule may name by a short name, per predicate version:
/// (name, JSON pointer).
const SLSA_FIELDS: [(&str, &str, &str); 6] = [
    (
        "https://slsa.dev/provenance/v1",
        "builder_id",
        "/runDetails/builder/id",
    ),
    (
        "https://slsa.dev/provenance/v1",
        "source_repository",
        "/buildDefinition/externalParameters/workflow/repository",
    ),
    (
        "https://slsa.dev/provenance/v1",
        "source_ref",
        "/buildDefinition/externalParameters/workflow/ref",
    ),
    (
        "https://slsa.dev/provenance/v0.2",
        "builder_id",
        "/builder/id",
    ),
    (
        "https://slsa.dev/provenance/v0.2",
        "source_repository",
        "/invocation/configSource/uri",
    ),
    (
        "https://slsa.dev/provenance/v0.2",
        "source_ref",
        "/invocation/configSource/entryPoint",
    ),
];

/// An attestation a policy requires: of this predicate type, whose predicate has these
/// fields matching these globs. A field is a JSON pointer into the predicate
/// (`/runDetails/builder/id`) or, for SLSA provenance v1 and v0.2, `builder_id`,
/// `source_repository` or `source_ref`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttestationRule {
    pub predicate_type: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub matches: BTreeMap<String, String>,
}

impl AttestationRule {
    /// The JSON pointer `field` names in a predicate of this rule's type.
    fn pointer<'a>(&self, field: &'a str) -> Option<&'a str> {
        if field.starts_with('/') {
            return Some(field);
        }
        SLSA_FIELDS
            .iter()
            .find(|(t, name, _)| *t == self.predicate_type && *name == field)
            .map(|(_, _, pointer)| *pointer)
    }

    /// Checks that every field names something: a pointer, or a known SLSA field.
    pub fn check(&self) -> Result<(), String> {
        match self.matches.keys().find(|f| self.pointer(f).is_none()) {
            Some(f) => Err(format!(
                "{f:?} is not a field of {}: use a JSON pointer into the predicate (/runDetails/builder/id), or for SLSA provenance builder_id, source_repository, source_ref",
                self.predicate_type
            )),
            None => Ok(()),
        }
    }

    /// Whether `a`'s predicate is of this type and every field matches its glob.
    #[must_use]
    pub fn admits(&self, a: &Attestation) -> bool {
        a.predicate_type == self.predicate_type
            && self.matches.iter().all(|(field, glob)| {
                self.pointer(field)
                    .and_then(|p| a.predicate.pointer(p))
                    .and_then(serde_json::Value::as_str)
                    .is_some_and(|v| crate::domain::versioning::glob_matches(glob, v))
            })
    }
}

impl std::fmt::Display for AttestationRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "an attestation of type {}", self.predicate_type)?;
        if !self.matches.is_empty() {
            let fields: Vec<String> = self
                .matches
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            write!(f, " with {}", fields.join(", "))?;
        }
        Ok(())
    }
}

/// What a feed requires of the images that enter it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignaturePolicy {
    /// A signature by one of these trusted keys is required…
    pub keys: Vec<String>,
    /// …or a keyless signature by one of these identities, verified under a trusted root…
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub identities: Vec<Identity>,
    /// …or a Notation signature whose certificate chains to one of these trust stores.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stores: Vec<String>,
    /// And, for each rule, an attestation by one of those signers that it admits.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attestations: Vec<AttestationRule>,
    /// Enforced when an image is promoted into the feed.
    pub on_promotion: bool,
    /// Enforced when a tag is pushed into the feed (sign the digest, then tag it).
    pub on_push: bool,
    /// Enforced when an image is pulled from the feed, and how.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_pull: Option<PullGate>,
}

/// What a pull of an image without a passing signature gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PullGate {
    /// 403 `DENIED`, with the sentence a refused push gets.
    Refuse,
    /// The manifest, with a `Warning` header carrying that sentence.
    Warn,
}

impl PullGate {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Refuse => "refuse",
            Self::Warn => "warn",
        }
    }
}

impl std::str::FromStr for PullGate {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "refuse" => Ok(Self::Refuse),
            "warn" => Ok(Self::Warn),
            other => Err(Error::Invalid(format!(
                "{other:?} is not a pull gate: use refuse (403 without a passing signature) or warn (served with a Warning header)"
            ))),
        }
    }
}

impl SignaturePolicy {
    /// Whether what verified — trusted keys, certificate identities, trust stores —
    /// satisfies the policy.
    #[must_use]
    pub fn admits(&self, keys: &[String], identities: &[Identity], stores: &[String]) -> bool {
        keys.iter().any(|k| self.keys.contains(k))
            || identities
                .iter()
                .any(|found| self.identities.iter().any(|rule| rule.admits(found)))
            || stores.iter().any(|s| self.stores.contains(s))
    }

    /// Whether an attestation was signed by a signer this policy accepts.
    fn signed_as_required(&self, a: &Attestation) -> bool {
        a.key.as_ref().is_some_and(|k| self.keys.contains(k))
            || a.identity
                .as_ref()
                .is_some_and(|found| self.identities.iter().any(|rule| rule.admits(found)))
    }

    /// The attestation rules no attestation in `found` satisfies (signed as required).
    #[must_use]
    pub fn missing_attestations(&self, found: &[Attestation]) -> Vec<&AttestationRule> {
        self.attestations
            .iter()
            .filter(|rule| {
                !found
                    .iter()
                    .any(|a| self.signed_as_required(a) && rule.admits(a))
            })
            .collect()
    }

    /// What the policy requires, in words: "a signature by ci and an attestation of type …".
    #[must_use]
    pub fn requirement(&self) -> String {
        let mut out = format!("a signature by {}", self.signers());
        for rule in &self.attestations {
            out.push_str(" and ");
            out.push_str(&rule.to_string());
        }
        out
    }

    /// Who must have signed, in words: key names, identities (`SUBJECT from ISSUER`) and
    /// trust stores, joined by "or".
    #[must_use]
    pub fn signers(&self) -> String {
        self.keys
            .iter()
            .cloned()
            .chain(self.identities.iter().map(ToString::to_string))
            .chain(
                self.stores
                    .iter()
                    .map(|s| format!("a certificate of trust store {s}")),
            )
            .collect::<Vec<_>>()
            .join(" or ")
    }

    /// Whether the policy is enforced at `gate`.
    #[must_use]
    pub fn enforced_at(&self, gate: Gate) -> bool {
        match gate {
            Gate::Promotion => self.on_promotion,
            Gate::Push => self.on_push,
            Gate::Pull => self.on_pull.is_some(),
        }
    }

    /// Where the policy is enforced, in words: "promotion and push", "pull (warn)".
    #[must_use]
    pub fn enforced_where(&self) -> String {
        let mut on = Vec::new();
        if self.on_promotion {
            on.push("promotion".to_owned());
        }
        if self.on_push {
            on.push("push".to_owned());
        }
        if let Some(g) = self.on_pull {
            on.push(format!("pull ({})", g.as_str()));
        }
        on.join(" and ")
    }
}

/// Where a policy is enforced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    Promotion,
    Push,
    Pull,
}

pub(super) fn bump_epoch(w: &mut dyn MetaWrite) -> Result<(), Error> {
    let next = TRUST_EPOCH.get(&*w, "")?.unwrap_or(0) + 1;
    TRUST_EPOCH.put(w, "", &next)?;
    Ok(())
}

pub(super) fn verdict_key(repo: &str, digest: &str) -> String {
    format!("{repo}@{digest}")
}

/// Whether `repo@digest` passes `policy` by its recorded verdict: reached at the current
/// trust epoch, by one of the policy's keys, with a signature that verified still stored.
/// No verdict, or a stale one, does not pass (it is reached again by [`super::Trust::reassess`]).
pub(crate) fn passes(
    r: &(impl crate::store::meta::MetaRead + ?Sized),
    policy: &SignaturePolicy,
    repo: &str,
    digest: &str,
) -> Result<bool, Error> {
    Ok(passing(r, policy, repo, digest)?.is_some())
}

/// The recorded verdict by which `repo@digest` passes `policy` (see [`passes`]).
pub(crate) fn passing(
    r: &(impl crate::store::meta::MetaRead + ?Sized),
    policy: &SignaturePolicy,
    repo: &str,
    digest: &str,
) -> Result<Option<Verdict>, Error> {
    let Some(v) = VERDICTS.get(r, &verdict_key(repo, digest))? else {
        return Ok(None);
    };
    if v.epoch != TRUST_EPOCH.get(r, "")?.unwrap_or(0)
        || !policy.admits(&v.keys, &v.identities, &v.stores)
        || !policy.missing_attestations(&v.attestations).is_empty()
    {
        return Ok(None);
    }
    for s in &v.signatures {
        if r.has_manifest(repo, s)? {
            return Ok(Some(v));
        }
    }
    Ok(None)
}

/// The signature policy of `feed`, if it has one.
pub(crate) fn policy_of(
    r: &(impl crate::store::meta::MetaRead + ?Sized),
    feed: &str,
) -> Result<Option<SignaturePolicy>, Error> {
    Ok(POLICIES.get(r, feed)?)
}

/// Whether `feed` has a signature policy enforced at `gate`.
pub(crate) fn applies(
    r: &(impl crate::store::meta::MetaRead + ?Sized),
    feed: &str,
    gate: Gate,
) -> Result<bool, Error> {
    Ok(POLICIES.get(r, feed)?.is_some_and(|p| p.enforced_at(gate)))
}

/// Removes the signature policy of `feed`: called in the transaction that deletes the feed.
pub(crate) fn remove_feed_policy(w: &mut dyn MetaWrite, feed: &str) -> Result<(), Error> {
    POLICIES.remove(w, feed)?;
    let prefix = format!("{feed}/");
    for (key, _) in VERDICTS.all(&*w)? {
        if key.starts_with(&prefix) {
            VERDICTS.remove(w, &key)?;
        }
    }
    Ok(())
}
