//! The gates: what a push, a promotion and a pull of an image meet under its feed's
//! signature policy, and the sentence a refusal says.

use super::verdicts::{self, POLICIES};
use super::{
    Error, Gate, KEYS, PullGate, SignaturePolicy, Trust, Verification, audit, cosign,
    record_verdict, recorded, short,
};
use crate::domain::audit::Kind;
use crate::model::Repository;
use crate::store::meta::{ManifestRecord, MetaRead, MetaWrite};

impl Trust {
    /// Refuses, with a sentence naming what is missing or wrong, an image `repo@digest`
    /// entering `feed` at `gate` without a signature the feed's policy requires; answers
    /// what verified. `Ok(None)` when the feed has no policy for that gate.
    pub(crate) fn require(
        &self,
        feed: &str,
        gate: Gate,
        repo: &Repository,
        digest: &str,
    ) -> Result<Option<Verification>, Error> {
        let r = self.meta.read()?;
        let Some(policy) = POLICIES.get(&*r, feed)? else {
            return Ok(None);
        };
        if !policy.enforced_at(gate) {
            return Ok(None);
        }
        // A verdict recorded at the current trust epoch is the cache: a lookup, no blob read.
        if let Some(v) = verdicts::passing(&*r, &policy, repo.as_str(), digest)? {
            return Ok(Some(recorded(repo, digest, &v)));
        }
        let found = self.verify_in(&*r, repo, digest)?;
        refuse_unless_passing(&*r, feed, &policy, &found).map(|()| Some(found))
    }

    /// What a manifest push changes, inside the push's write transaction, after the
    /// manifest is stored and before its tags are set — so the gate's refusal rolls the push
    /// back, and the virtual tags settle on the verdict recorded here. Under a feed's
    /// signature policy: a signature's image is verified again, and the virtual tags settle;
    /// a tag push is refused without a passing signature when the policy says so; a version's
    /// verdict is recorded. Without a policy, one settings read.
    pub(crate) fn on_push(
        &self,
        w: &mut dyn MetaWrite,
        repo: &Repository,
        pushed: &Pushed<'_>,
        actor: &str,
    ) -> Result<(), Error> {
        let Some(policy) = POLICIES.get(&*w, repo.feed())? else {
            return Ok(());
        };
        if let Some(subject) = &pushed.signs {
            let found = self.verify_in(&*w, repo, subject)?;
            record_verdict(w, &found)?;
            if w.feed(repo.feed())?.is_some_and(|f| f.versioning) {
                let change = crate::domain::tags::Change {
                    actor,
                    method: "settings",
                    comment: Some("a signature was pushed"),
                    source: None,
                    clock: &self.clock,
                };
                crate::domain::tags::recompute_virtual(w, repo.as_str(), &change)?;
            }
            return Ok(());
        }
        let gated = policy.on_push && pushed.tag.is_some_and(|t| !cosign::is_cosign_tag(t));
        if !gated && !pushed.version {
            return Ok(());
        }
        let found = self.verify_in(&*w, repo, pushed.digest)?;
        if gated {
            refuse_unless_passing(&*w, repo.feed(), &policy, &found)?;
        }
        record_verdict(w, &found)
    }

    /// What a pull of `repo@digest` (stored as `record`) meets at its feed's pull gate,
    /// read through `r`. Trust material (signatures, attestations, SBOMs: anything with a
    /// subject, or whose layers are not image layers) is never gated, so that `cosign verify`
    /// can read it. An image passes by its own verdict, or as a child of an index in the
    /// repository that passes (cosign signs what the tag names: the index); without a
    /// recorded verdict that passes, its signatures are verified now — O(tags) manifest
    /// reads for the index check, paid when the manifest cache fills, not per pull.
    pub(crate) fn at_pull(
        &self,
        r: &dyn MetaRead,
        repo: &Repository,
        digest: &str,
        record: &ManifestRecord,
    ) -> Result<AtPull, Error> {
        let Some(policy) = POLICIES.get(r, repo.feed())? else {
            return Ok(AtPull::Open);
        };
        let Some(gate) = policy.on_pull else {
            return Ok(AtPull::Open);
        };
        if !runnable(record) || verdicts::passes(r, &policy, repo.as_str(), digest)? {
            return Ok(AtPull::Open);
        }
        let mut parents: Vec<String> = r
            .tag_targets(repo.as_str())?
            .into_iter()
            .map(|(_, d)| d)
            .collect();
        parents.sort();
        parents.dedup();
        for parent in parents {
            if let Some(m) = r.manifest(repo.as_str(), &parent)?
                && m.children.iter().any(|c| c == digest)
                && verdicts::passes(r, &policy, repo.as_str(), &parent)?
            {
                return Ok(AtPull::Open);
            }
        }
        let found = self.verify_in(r, repo, digest)?;
        match refuse_unless_passing(r, repo.feed(), &policy, &found) {
            Ok(()) => Ok(AtPull::Verified(found)),
            Err(Error::SignatureRefused(why)) => Ok(AtPull::Refused(gate, why)),
            Err(e) => Err(e),
        }
    }

    /// Records a verdict reached at a pull (see [`AtPull::Verified`]).
    pub(crate) fn record(&self, found: &Verification) -> Result<(), Error> {
        self.meta.write(|w| record_verdict(w, found))
    }

    /// Records in the audit log (and so as a `PolicyRefused` event) a pull the feed's gate
    /// refused — once a minute per caller and image on this node: each audit entry is a
    /// metadata write, which empties every manifest cache, so a client retrying a refused
    /// pull must not turn every pull of the registry into a cache miss.
    pub fn audit_refused_pull(
        &self,
        repo: &Repository,
        digest: &str,
        actor: &str,
        why: &str,
    ) -> Result<(), Error> {
        let now = self.clock.now();
        {
            let mut seen = self
                .refusals_audited
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let key = format!("{actor}\n{repo}@{digest}");
            if seen
                .get(&key)
                .is_some_and(|&at| now < at + REFUSAL_AUDIT_SECONDS)
            {
                return Ok(());
            }
            if seen.len() >= REFUSALS_REMEMBERED {
                seen.retain(|_, at| now < *at + REFUSAL_AUDIT_SECONDS);
            }
            seen.insert(key, now);
        }
        let mut entry = audit::entry(Kind::PolicyRefused, actor, repo.feed(), why.to_owned());
        entry.repository = Some(repo.to_string());
        entry.digest = Some(digest.to_owned());
        audit::append_alone(&*self.meta, &self.clock, entry).map(drop)
    }
}

/// A refused pull of the same image by the same caller is audited at most this often.
const REFUSAL_AUDIT_SECONDS: u64 = 60;
/// Beyond this many remembered refusals, the expired ones are forgotten.
const REFUSALS_REMEMBERED: usize = 10_000;

/// What a pull meets at a feed's pull gate.
#[derive(Debug)]
pub(crate) enum AtPull {
    /// No gate, trust material, or a passing verdict: served.
    Open,
    /// Verified just now: served, and the caller records the verdict.
    Verified(Verification),
    /// No passing signature: what the gate does, and why.
    Refused(PullGate, String),
}

/// Whether a manifest is something that runs — an index, or an image whose config is an
/// image configuration and whose layers are all image layers — rather than trust material
/// about one.
fn runnable(record: &ManifestRecord) -> bool {
    if record.subject.is_some() {
        return false;
    }
    if !record.children.is_empty() {
        return true;
    }
    let image_config = matches!(
        record.artifact_type.as_deref(),
        Some(
            "application/vnd.oci.image.config.v1+json"
                | "application/vnd.docker.container.image.v1+json"
        )
    );
    let layers_are_images = serde_json::from_slice::<serde_json::Value>(&record.body)
        .ok()
        .and_then(|v| {
            let layers = v.get("layers")?.as_array()?.clone();
            Some(layers.iter().all(|l| {
                l.get("mediaType")
                    .and_then(serde_json::Value::as_str)
                    .is_some_and(|t| t.contains(".image.layer.") || t.contains(".image.rootfs."))
            }))
        })
        .unwrap_or(true);
    image_config && layers_are_images
}

/// A manifest push as trust sees it (see [`Trust::on_push`]).
pub(crate) struct Pushed<'a> {
    /// The first tag pushed, if any.
    pub tag: Option<&'a str>,
    pub digest: &'a str,
    /// The image a signature manifest signs (cosign's tag or a signature referrer).
    pub signs: Option<String>,
    /// Whether a version tag is pushed.
    pub version: bool,
}

/// `Ok` when a signature in `found` verifies with a key `policy` names; else the refusal,
/// with a sentence naming what is missing or wrong.
fn refuse_unless_passing(
    r: &dyn MetaRead,
    feed: &str,
    policy: &SignaturePolicy,
    found: &Verification,
) -> Result<(), Error> {
    let signed = policy.admits(
        &found.verified_by,
        &found.verified_identities,
        &found.verified_stores,
    );
    let missing = policy.missing_attestations(&found.attestations);
    if signed && missing.is_empty() {
        return Ok(());
    }
    if signed {
        let seen: Vec<String> = found
            .attestations
            .iter()
            .map(|a| a.predicate_type.clone())
            .collect();
        let missing: Vec<String> = missing.iter().map(ToString::to_string).collect();
        return Err(Error::SignatureRefused(format!(
            "feed {feed:?} requires {} by {}, and {}@{} has none that matches: {}",
            missing.join(" and "),
            policy.signers(),
            found.repository,
            found.digest,
            if seen.is_empty() {
                "it has no verified attestation".to_owned()
            } else {
                format!(
                    "its verified attestations are of type {}, or by other signers or with other fields",
                    seen.join(", ")
                )
            }
        )));
    }
    let repo = &found.repository;
    let digest = &found.digest;
    let wanted = policy.signers();
    let mut untrusted = Vec::new();
    for k in &policy.keys {
        if !KEYS.exists(r, k)? {
            untrusted.push(k.as_str());
        }
    }
    let mut why = if found.signatures.is_empty() {
        format!("it has no signature (sign it: cosign sign {repo}@{digest})")
    } else {
        let reasons: Vec<String> = found
            .signatures
            .iter()
            .map(|s| {
                let reason = match (&s.key, &s.identity) {
                    (Some(k), _) => {
                        format!("verifies with key {k}, which the policy does not name")
                    }
                    _ if s.store.is_some() => {
                        format!("{}, which the policy does not name", s.reason)
                    }
                    (None, Some(i)) => format!(
                        "a certificate for {} from {}, not matching the policy's {}",
                        i.subject,
                        i.issuer,
                        policy
                            .identities
                            .iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join(" or ")
                    ),
                    (None, None) => s.reason.clone(),
                };
                format!("{} {}: {reason}", s.form, short(&s.manifest))
            })
            .collect();
        format!(
            "{} signature{} found, none verifies: {}",
            found.signatures.len(),
            if found.signatures.len() == 1 { "" } else { "s" },
            reasons.join("; ")
        )
    };
    if !untrusted.is_empty() {
        why += "; key ";
        why += &untrusted.join(", ");
        why += " is no longer trusted";
    }
    Err(Error::SignatureRefused(format!(
        "feed {feed:?} requires a signature by {wanted}, and no signature of {repo}@{digest} verifies with it: {why}"
    )))
}
