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
use crate::store::meta::{ManifestRecord, MetaRead, MetaWrite, Metadata};

mod bundles;
pub mod cosign;
pub mod keys;
mod notation;
mod preview;
mod roots;
pub mod sigstore;
pub(crate) mod verdicts;

pub use bundles::BUNDLE_ARTIFACT;
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
        Self { meta, blobs, clock }
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
                let change = super::tags::Change {
                    actor,
                    method: "settings",
                    comment: Some("a signature was pushed"),
                    source: None,
                    clock: &self.clock,
                };
                super::tags::recompute_virtual(w, repo.as_str(), &change)?;
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
    /// refused.
    pub fn audit_refused_pull(
        &self,
        repo: &Repository,
        digest: &str,
        actor: &str,
        why: &str,
    ) -> Result<(), Error> {
        let mut entry = audit::entry(Kind::PolicyRefused, actor, repo.feed(), why.to_owned());
        entry.repository = Some(repo.to_string());
        entry.digest = Some(digest.to_owned());
        audit::append_alone(&*self.meta, &self.clock, entry).map(drop)
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

    /// What the signatures of `repo@digest` say under every trusted key, read through `r`
    /// (a write transaction sees the signature it is storing).
    pub(crate) fn verify_in(
        &self,
        r: &dyn MetaRead,
        repo: &Repository,
        digest: &str,
    ) -> Result<Verification, Error> {
        let keys = KEYS.all(r)?;
        let parsed: Vec<(&String, PublicKey)> = keys
            .iter()
            .filter_map(|(n, k)| PublicKey::from_pem(&k.pem).ok().map(|p| (n, p)))
            .collect();
        let manifests = signature_manifests(r, repo, digest)?;
        // Read when a bundle or a keyless signature needs them.
        let mut roots_read = manifests.iter().any(|(form, _, _)| *form == "bundle");
        let mut roots = if roots_read {
            roots::trusted_roots(r)?
        } else {
            Vec::new()
        };
        let stores = if manifests.iter().any(|(form, _, _)| *form == "notation") {
            roots::trust_stores(r)?
        } else {
            Vec::new()
        };
        let mut signatures = Vec::new();
        let mut attestations = Vec::new();
        for (form, manifest, body) in manifests {
            if form == "bundle" {
                let c = self.check_bundle(&body, digest, &parsed, &roots);
                attestations.extend(c.attestation);
                signatures.push(Finding {
                    manifest,
                    form: form.to_owned(),
                    key: c.key,
                    identity: c.identity,
                    store: None,
                    reason: c.reason,
                });
                continue;
            }
            if form == "notation" {
                signatures.push(self.notation_finding(manifest, &body, digest, &stores));
                continue;
            }
            if form == "att" {
                for (reason, attestation) in self.check_att(&body, digest, &parsed) {
                    attestations.extend(attestation);
                    signatures.push(finding(&manifest, form, None, &reason));
                }
                continue;
            }
            let layers = match cosign::layers(&body) {
                Ok(l) if l.is_empty() => {
                    signatures.push(finding(
                        &manifest,
                        form,
                        None,
                        "it holds no signature layer",
                    ));
                    continue;
                }
                Ok(l) => l,
                Err(e) => {
                    signatures.push(finding(&manifest, form, None, &e));
                    continue;
                }
            };
            for layer in layers {
                if layer.keyless() && roots.is_empty() && !roots_read {
                    roots = roots::trusted_roots(r)?;
                    roots_read = true;
                }
                let (key, identity, reason) = self.check_layer(&layer, digest, &parsed, &roots);
                let mut f = finding(&manifest, form, key, &reason);
                f.identity = identity;
                signatures.push(f);
            }
        }
        let mut verified_by: Vec<String> =
            signatures.iter().filter_map(|s| s.key.clone()).collect();
        verified_by.sort();
        verified_by.dedup();
        let mut verified_identities: Vec<Identity> = Vec::new();
        for i in signatures.iter().filter_map(|s| s.identity.clone()) {
            if !verified_identities.contains(&i) {
                verified_identities.push(i);
            }
        }
        let mut verified_stores: Vec<String> =
            signatures.iter().filter_map(|s| s.store.clone()).collect();
        verified_stores.sort();
        verified_stores.dedup();
        Ok(Verification {
            repository: repo.to_string(),
            digest: digest.to_owned(),
            verified: !verified_by.is_empty()
                || !verified_identities.is_empty()
                || !verified_stores.is_empty(),
            verified_by,
            verified_identities,
            verified_stores,
            attestations,
            signatures,
        })
    }

    /// The key a signature layer verifies with, or none and why.
    fn check_layer(
        &self,
        layer: &cosign::SignatureLayer,
        digest: &str,
        keys: &[(&String, PublicKey)],
        roots: &[(String, sigstore::TrustedRoot)],
    ) -> (Option<String>, Option<Identity>, String) {
        let signature = match &layer.signature {
            Ok(s) => s,
            Err(e) => return (None, None, e.clone()),
        };
        let payload = match self.payload(layer) {
            Ok(p) => p,
            Err(e) => return (None, None, e),
        };
        if let Err(e) = cosign::check_payload(&payload, digest) {
            return (None, None, e);
        }
        if layer.keyless() {
            let (identity, reason) = keyless_layer(layer, &payload, signature, roots);
            return (None, identity, reason);
        }
        if let Some((name, _)) = keys.iter().find(|(_, k)| k.verifies(&payload, signature)) {
            return (
                Some((*name).clone()),
                None,
                format!("verifies with key {name}"),
            );
        }
        let reason = if keys.is_empty() {
            "no trusted key to verify it with"
        } else {
            "signed by a key that is not trusted, or its payload was changed after signing"
        };
        (None, None, reason.to_owned())
    }

    /// What each DSSE envelope of a cosign `.att` manifest says: a sentence, and the
    /// attestation when its signature verifies with a trusted key.
    fn check_att(
        &self,
        body: &[u8],
        digest: &str,
        keys: &[(&String, PublicKey)],
    ) -> Vec<(String, Option<Attestation>)> {
        let layers = match cosign::attestation_layers(body) {
            Ok(l) if l.is_empty() => return vec![("it holds no DSSE envelope".to_owned(), None)],
            Ok(l) => l,
            Err(e) => return vec![(e, None)],
        };
        layers
            .into_iter()
            .map(|(d, size)| {
                let checked = self
                    .small_blob(&d, size, cosign::ENVELOPE_LIMIT, "envelope")
                    .and_then(|e| cosign::check_envelope(&e, digest, keys));
                match checked {
                    Ok((key, predicate_type, predicate)) => (
                        format!("an attestation of type {predicate_type} by key {key}"),
                        Some(Attestation {
                            predicate_type,
                            key: Some(key),
                            identity: None,
                            predicate,
                        }),
                    ),
                    Err(e) => (format!("an attestation that does not verify: {e}"), None),
                }
            })
            .collect()
    }

    /// What a Notation signature manifest's envelope says.
    fn notation_finding(
        &self,
        manifest: String,
        body: &[u8],
        digest: &str,
        stores: &[notation::Store],
    ) -> Finding {
        let (store, reason) = match self.check_notation(body, digest, stores) {
            Ok(store) => (
                Some(store.clone()),
                format!("a Notation signature whose certificate chains to trust store {store}"),
            ),
            Err(e) => (
                None,
                format!("a Notation signature that does not verify: {e}"),
            ),
        };
        Finding {
            manifest,
            form: "notation".to_owned(),
            key: None,
            identity: None,
            store,
            reason,
        }
    }

    /// The trust store a Notation signature manifest's envelope verifies under.
    fn check_notation(
        &self,
        manifest: &[u8],
        digest: &str,
        stores: &[notation::Store],
    ) -> Result<String, String> {
        let (media_type, d, size) = notation::envelope_layer(manifest)?;
        let envelope = self.small_blob(&d, size, notation::ENVELOPE_LIMIT, "envelope")?;
        let now = i64::try_from(self.clock.now()).unwrap_or(i64::MAX);
        notation::verify_envelope(&media_type, &envelope, digest, stores, now)
    }

    /// The payload blob of a signature layer, checked against its digest.
    fn payload(&self, layer: &cosign::SignatureLayer) -> Result<Vec<u8>, String> {
        self.small_blob(&layer.payload, layer.size, cosign::PAYLOAD_LIMIT, "payload")
    }

    /// A small blob (`what`: a payload, a bundle) of at most `limit` bytes, checked against
    /// its digest.
    fn small_blob(
        &self,
        digest: &Digest,
        size: u64,
        limit: u64,
        what: &str,
    ) -> Result<Vec<u8>, String> {
        if size > limit {
            return Err(format!(
                "its {what} is {size} bytes, more than the {limit} a signature's {what} may be"
            ));
        }
        let len = usize::try_from(size).unwrap_or(usize::MAX);
        let bytes = self
            .blobs
            .open(digest)
            .and_then(|b| b.read_at(0, len))
            .map_err(|e| format!("its {what} {digest} cannot be read: {e}"))?;
        if Digest::of_with(digest.algorithm(), &bytes) != *digest {
            return Err(format!("its {what} {digest} is damaged"));
        }
        Ok(bytes)
    }
}

/// The signature manifests of `repo@digest`: cosign's tag, then OCI 1.1 referrers of
/// cosign's signature artifact type, Sigstore bundles and Notation signatures.
fn signature_manifests(
    r: &dyn MetaRead,
    repo: &Repository,
    digest: &str,
) -> Result<Vec<SignatureManifest>, Error> {
    let name = repo.as_str();
    let mut out = Vec::new();
    if let Some(tag) = cosign::signature_tag(digest)
        && let Some(d) = r.tag(name, &tag)?
        && let Some(m) = r.manifest(name, &d)?
    {
        out.push(("tag", d, m.body));
    }
    if let Some(tag) = cosign::signature_tag(digest)
        .and_then(|t| t.strip_suffix(".sig").map(|base| format!("{base}.att")))
        && let Some(d) = r.tag(name, &tag)?
        && let Some(m) = r.manifest(name, &d)?
    {
        out.push(("att", d, m.body));
    }
    for d in r.referrers(name, digest)? {
        let Some(m) = r.manifest(name, &d)? else {
            continue;
        };
        if out.iter().any(|(_, seen, _)| *seen == d) {
            continue;
        }
        match m.artifact_type.as_deref() {
            Some(cosign::SIGNATURE_ARTIFACT) => out.push(("referrer", d, m.body)),
            Some(bundles::BUNDLE_ARTIFACT) => out.push(("bundle", d, m.body)),
            Some(notation::SIGNATURE_ARTIFACT) => out.push(("notation", d, m.body)),
            _ => {}
        }
    }
    Ok(out)
}

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

/// A signature manifest found for an image: its form (`tag`, `referrer`), digest and body.
type SignatureManifest = (&'static str, String, Vec<u8>);

fn finding(manifest: &str, form: &str, key: Option<String>, reason: &str) -> Finding {
    Finding {
        manifest: manifest.to_owned(),
        form: form.to_owned(),
        key,
        identity: None,
        store: None,
        reason: reason.to_owned(),
    }
}

fn short(digest: &str) -> &str {
    digest.get(..19).unwrap_or(digest)
}

/// What a keyless cosign signature layer (certificate and Rekor bundle in its annotations)
/// verifies as under the trusted roots: the identity, or none and why.
fn keyless_layer(
    layer: &cosign::SignatureLayer,
    payload: &[u8],
    signature: &[u8],
    roots: &[(String, sigstore::TrustedRoot)],
) -> (Option<Identity>, String) {
    if roots.is_empty() {
        return (
            None,
            "a keyless (certificate) signature: no trusted root to verify it under (semdock trust root add)".to_owned(),
        );
    }
    let bundle = match cosign::legacy_bundle(layer, payload, signature) {
        Ok(b) => b,
        Err(e) => return (None, e),
    };
    let mut reasons = Vec::new();
    for (name, root) in roots {
        match sigstore::verify_bundle(
            &bundle,
            sigstore::Artifact::Bytes(payload),
            &sigstore::Expect::AnyIdentity,
            root,
        ) {
            Ok(v) => {
                let identity = Identity {
                    issuer: v.issuer.unwrap_or_default(),
                    subject: v.subject.unwrap_or_default(),
                };
                let reason = format!(
                    "a keyless signature that verifies as {identity} under trusted root {name}"
                );
                return (Some(identity), reason);
            }
            Err(e) => reasons.push(format!("under trusted root {name}: {e}")),
        }
    }
    (
        None,
        format!(
            "a keyless signature that does not verify: {}",
            reasons.join("; ")
        ),
    )
}

/// A verification as a recorded verdict `v` of `repo@digest` tells it.
fn recorded(repo: &Repository, digest: &str, v: &Verdict) -> Verification {
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
