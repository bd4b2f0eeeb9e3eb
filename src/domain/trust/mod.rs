//! Trust: the public keys the registry verifies signatures with, each feed's signature
//! policy, and the verification of an image's signatures from what the registry stores.
//!
//! Keys are registry-wide (administrators manage them); a feed's policy names the keys one
//! of whose signatures an image must carry, and where the feed enforces it: on promotion
//! into the feed, on a tag push into it. Verification reads the signatures the registry
//! holds itself (cosign's `.sig` tag and referrers), never the client's word.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::Error;
use super::audit::{self, Kind};
use super::clock::Clock;
use crate::model::{Digest, Repository};
use crate::store::blobs::Blobs;
use crate::store::meta::settings::{Family, Json};
use crate::store::meta::{MetaWrite, Metadata};

mod bundles;
pub mod cosign;
mod gates;
pub mod keys;
mod notation;
mod preview;
mod roots;
pub mod sigstore;
pub(crate) mod verdicts;
mod verify;

pub use bundles::BUNDLE_ARTIFACT;
pub(crate) use gates::{AtPull, Pushed};
pub use keys::PublicKey;
pub use notation::SIGNATURE_ARTIFACT as NOTATION_ARTIFACT;
pub(crate) use roots::{ROOTS, STORES};
pub use roots::{RootInfo, StoreInfo, StoredRoot, StoredStore};
use verdicts::verdict_key;
pub use verdicts::{
    Attestation, AttestationRule, Gate, Identity, PullGate, SignaturePolicy, Verdict,
};
pub(crate) use verdicts::{POLICIES, TRUST_EPOCH, VERDICTS, applies, remove_feed_policy};

/// name → a trusted public key, in the settings table.
pub(crate) const KEYS: Family<Json<StoredKey>> = Family::keyed("trust-key:", "trusted key");
/// A trusted key as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredKey {
    pub pem: String,
    pub added_ms: u64,
    pub added_by: String,
}

/// A trusted key as the API shows it (never the key material's secret: there is none, but
/// the PEM is shown only by fingerprint to keep listings short).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyInfo {
    pub name: String,
    /// `ecdsa-p256`, `ecdsa-p384`, `ed25519` or `rsa`.
    pub kind: String,
    /// SHA-256 of the key's DER `SubjectPublicKeyInfo`, hex.
    pub fingerprint: String,
    pub added: String,
    pub added_by: String,
}

/// One signature found for an image, and what verifying it said.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The signature manifest's digest.
    pub manifest: String,
    /// `tag` (cosign's `sha256-<hex>.sig`) or `referrer` (OCI 1.1).
    pub form: String,
    /// The trusted key it verifies with, if any.
    pub key: Option<String>,
    /// The certificate identity a keyless signature verifies as, if any.
    pub identity: Option<Identity>,
    /// The trust store a Notation signature's certificate chains to, if any.
    pub store: Option<String>,
    /// Why it does not verify, or with what it does.
    pub reason: String,
}

/// Everything known of an image's signatures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verification {
    pub repository: String,
    pub digest: String,
    /// Whether at least one signature verifies with a trusted key or under a trusted root.
    pub verified: bool,
    /// The trusted keys with which a signature verifies.
    pub verified_by: Vec<String>,
    /// The identities a keyless signature verifies as, under a trusted root.
    pub verified_identities: Vec<Identity>,
    /// The trust stores a Notation signature's certificate chains to.
    pub verified_stores: Vec<String>,
    /// The attestations that verify (whoever signed them: a policy says whom it accepts).
    pub attestations: Vec<Attestation>,
    pub signatures: Vec<Finding>,
}

/// The trust service (`registry.trust()`).
#[derive(Clone)]
pub struct Trust {
    meta: Arc<dyn Metadata>,
    blobs: Arc<dyn Blobs>,
    clock: Clock,
    /// When each (caller, image) refused at a pull gate was last audited, in seconds.
    refusals_audited: Arc<std::sync::Mutex<std::collections::HashMap<String, u64>>>,
}

fn check_key_name(name: &str) -> Result<(), Error> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "{name:?} is not a key name: use 1 to 64 of a-z 0-9 . _ -"
        )))
    }
}

fn info(name: String, k: &StoredKey) -> KeyInfo {
    KeyInfo {
        kind: PublicKey::from_pem(&k.pem)
            .map_or("unreadable", |p| p.kind())
            .to_owned(),
        fingerprint: PublicKey::fingerprint(&k.pem),
        added: audit::rfc3339(k.added_ms),
        added_by: k.added_by.clone(),
        name,
    }
}

impl Trust {
    pub(crate) fn new(meta: Arc<dyn Metadata>, blobs: Arc<dyn Blobs>, clock: Clock) -> Self {
        Self {
            meta,
            blobs,
            clock,
            refusals_audited: Arc::default(),
        }
    }

    /// The trusted keys, by name.
    pub fn keys(&self) -> Result<Vec<KeyInfo>, Error> {
        Ok(KEYS
            .all(&*self.meta.read()?)?
            .into_iter()
            .map(|(name, k)| info(name, &k))
            .collect())
    }

    /// Trusts `pem` (a PEM public key) under `name`.
    pub fn add_key(&self, name: &str, pem: &str, actor: &str) -> Result<KeyInfo, Error> {
        check_key_name(name)?;
        let key =
            PublicKey::from_pem(pem).map_err(|e| Error::Invalid(format!("key {name}: {e}")))?;
        let stored = StoredKey {
            pem: pem.trim().to_owned(),
            added_ms: self.clock.now_ms(),
            added_by: actor.to_owned(),
        };
        let change = format!(
            "trusted key {name} added ({}, fingerprint {})",
            key.kind(),
            PublicKey::fingerprint(pem)
        );
        self.add_material(&KEYS, "trusted key", name, &stored, change, actor)?;
        Ok(info(name.to_owned(), &stored))
    }

    /// No longer trusts key `name`: signatures by it verify no more, wherever a policy names it.
    pub fn remove_key(&self, name: &str, actor: &str) -> Result<(), Error> {
        self.remove_material(&KEYS, "trusted key", name, actor)
    }

    /// The signature policy of `feed`, if it has one.
    pub fn policy(&self, feed: &str) -> Result<Option<SignaturePolicy>, Error> {
        let r = self.meta.read()?;
        if r.feed(feed)?.is_none() {
            return Err(Error::FeedUnknown {
                feed: feed.to_owned(),
            });
        }
        Ok(POLICIES.get(&*r, feed)?)
    }

    /// Sets (or, with `None`, removes) the signature policy of `feed`.
    pub fn set_policy(
        &self,
        feed: &str,
        policy: Option<&SignaturePolicy>,
        actor: &str,
    ) -> Result<(), Error> {
        if let Some(p) = policy {
            if p.keys.is_empty() && p.identities.is_empty() && p.stores.is_empty() {
                return Err(Error::Invalid(
                    "a signature policy names at least one trusted key (semdock trust key add), keyless identity or trust store"
                        .into(),
                ));
            }
            for rule in &p.attestations {
                rule.check().map_err(Error::Invalid)?;
            }
            if !p.attestations.is_empty() && p.keys.is_empty() && p.identities.is_empty() {
                return Err(Error::Invalid(
                    "an attestation rule needs the keys or identities whose attestations count"
                        .into(),
                ));
            }
            if let Some(i) = p
                .identities
                .iter()
                .find(|i| i.issuer.trim().is_empty() || i.subject.trim().is_empty())
            {
                return Err(Error::Invalid(format!(
                    "identity {i} names no issuer or no subject: give both (the subject may be a glob)"
                )));
            }
            if !p.on_promotion && !p.on_push && p.on_pull.is_none() {
                return Err(Error::Invalid(
                    "a signature policy is enforced somewhere: on promotion, on push, on pull, or several"
                        .into(),
                ));
            }
        }
        self.meta.write(|w| {
            if w.feed(feed)?.is_none() {
                return Err(Error::FeedUnknown {
                    feed: feed.to_owned(),
                });
            }
            if POLICIES.get(&*w, feed)?.as_ref() == policy {
                return Ok(()); // unchanged: nothing to record
            }
            let change = if let Some(p) = policy {
                    for k in &p.keys {
                        if !KEYS.exists(w, k)? {
                            return Err(Error::Invalid(format!(
                                "no trusted key is named {k}: add it first (semdock trust key add {k} FILE)"
                            )));
                        }
                    }
                    for st in &p.stores {
                        if !STORES.exists(w, st)? {
                            return Err(Error::Invalid(format!(
                                "no trust store is named {st}: add it first (semdock trust store add {st} CA.pem)"
                            )));
                        }
                    }
                    if !p.identities.is_empty() && ROOTS.all(&*w)?.is_empty() {
                        return Err(Error::Invalid(
                            "keyless identities verify under a trusted root, and none is trusted: add one first (semdock trust root add NAME trusted_root.json)".into(),
                        ));
                    }
                    POLICIES.put(w, feed, p)?;
                    format!(
                        "signature policy: {} required on {}",
                        p.requirement(),
                        p.enforced_where()
                    )
            } else {
                    POLICIES.remove(w, feed)?;
                    "signature policy removed".to_owned()
            };
            audit::append(
                w,
                &self.clock,
                audit::entry(Kind::FeedSettingsChanged, actor, feed, change),
            )?;
            Ok(())
        })
    }

    /// What the signatures of `repo@digest` say, checked against every trusted key.
    pub fn verify(&self, repo: &Repository, digest: &Digest) -> Result<Verification, Error> {
        self.verify_in(&*self.meta.read()?, repo, digest.as_str())
    }

    /// Verifies `repo@digest` again, records the verdict, and — in a versioned feed with a
    /// signature policy — settles the repository's virtual tags on what now passes. Called
    /// when a signature arrives and when the trusted keys change; `actor` caused it.
    pub(crate) fn reassess(
        &self,
        repo: &Repository,
        digests: &[String],
        actor: &str,
        why: &str,
    ) -> Result<(), Error> {
        let mut found = Vec::new();
        {
            let r = self.meta.read()?;
            for digest in digests {
                found.push(self.verify_in(&*r, repo, digest)?);
            }
        }
        let change = super::tags::Change {
            actor,
            method: "settings",
            comment: Some(why),
            source: None,
            clock: &self.clock,
        };
        self.meta.write(|w| {
            for f in &found {
                record_verdict(w, f)?;
            }
            let Some(feed) = w.feed(repo.feed())? else {
                return Ok(());
            };
            if feed.versioning && POLICIES.exists(&*w, repo.feed())? {
                super::tags::recompute_virtual(w, repo.as_str(), &change)?;
            }
            Ok(())
        })
    }

    /// [`Trust::reassess`] of one image when its feed has a signature policy; a failure is
    /// logged (what called it is done).
    pub(crate) fn reassess_if_gated(
        &self,
        repo: &Repository,
        digest: &str,
        actor: &str,
        why: &str,
    ) {
        let gated = self
            .meta
            .read()
            .ok()
            .and_then(|r| POLICIES.exists(&*r, repo.feed()).ok())
            .unwrap_or(false);
        if gated && let Err(e) = self.reassess(repo, &[digest.to_owned()], actor, why) {
            tracing::warn!(repository = %repo, error = %e, "signatures could not be verified");
        }
    }

    /// After the trusted keys changed: every version of every repository of the feeds with
    /// a policy is verified again, and their virtual tags settle on what passes now.
    /// O(versions × signatures) reads; runs in the call that changed the keys.
    fn reassess_all(&self, actor: &str, why: &str) -> Result<(), Error> {
        let feeds: Vec<String> = POLICIES
            .all(&*self.meta.read()?)?
            .into_iter()
            .map(|(f, _)| f)
            .collect();
        for feed in feeds {
            let prefix = format!("{feed}/");
            let mut after: Option<String> = None;
            loop {
                let (names, more) =
                    self.meta
                        .read()?
                        .repositories(&prefix, after.as_deref(), 500, &|_| true)?;
                for name in &names {
                    let Ok(repo) = name.parse::<Repository>() else {
                        continue;
                    };
                    let mut digests: Vec<String> = self
                        .meta
                        .read()?
                        .tag_targets(repo.as_str())?
                        .into_iter()
                        .filter(|(t, _)| super::versioning::version_of(t).is_some())
                        .map(|(_, d)| d)
                        .collect();
                    digests.sort();
                    digests.dedup();
                    self.reassess(&repo, &digests, actor, why)?;
                }
                after = names.last().cloned();
                if !more || after.is_none() {
                    break;
                }
            }
        }
        Ok(())
    }
}

pub(super) fn short(digest: &str) -> &str {
    digest.get(..19).unwrap_or(digest)
}

/// A verification as a recorded verdict `v` of `repo@digest` tells it.
pub(super) fn recorded(repo: &Repository, digest: &str, v: &Verdict) -> Verification {
    Verification {
        repository: repo.to_string(),
        digest: digest.to_owned(),
        verified: true,
        verified_by: v.keys.clone(),
        verified_identities: v.identities.clone(),
        verified_stores: v.stores.clone(),
        attestations: v.attestations.clone(),
        signatures: v
            .signatures
            .iter()
            .map(|m| Finding {
                manifest: m.clone(),
                form: "recorded".to_owned(),
                key: v.keys.first().cloned(),
                identity: v.identities.first().cloned(),
                store: v.stores.first().cloned(),
                reason: format!("verified at trust epoch {}", v.epoch),
            })
            .collect(),
    }
}

/// Records `found` as the verdict on its image, at the current trust epoch.
pub(crate) fn record_verdict(w: &mut dyn MetaWrite, found: &Verification) -> Result<(), Error> {
    let verdict = Verdict {
        keys: found.verified_by.clone(),
        identities: found.verified_identities.clone(),
        stores: found.verified_stores.clone(),
        attestations: found.attestations.clone(),
        signatures: found
            .signatures
            .iter()
            .filter(|s| s.key.is_some() || s.identity.is_some() || s.store.is_some())
            .map(|s| s.manifest.clone())
            .collect(),
        epoch: TRUST_EPOCH.get(&*w, "")?.unwrap_or(0),
    };
    VERDICTS.put(w, &verdict_key(&found.repository, &found.digest), &verdict)?;
    Ok(())
}
