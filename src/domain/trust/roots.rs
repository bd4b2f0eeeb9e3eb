//! Trust material beside the keys: Sigstore trusted roots (`trusted_root.json`: the Fulcio
//! CAs, Rekor logs, CT logs and timestamp authorities keyless signatures and Sigstore
//! bundles are verified against — the public-good instance's, or a private one's) and
//! Notation trust stores (the CA certificates Notary Project signing certificates chain
//! to). Registry-wide, managed by administrators, audited; a change moves the trust epoch
//! and re-verifies the gated feeds, as a key change does.

use serde::{Deserialize, Serialize};

use super::sigstore::TrustedRoot;
use super::verdicts::bump_epoch;
use super::{Error, Trust, check_key_name, notation};
use crate::domain::audit::{self, Kind};
use crate::store::meta::MetaRead;
use crate::store::meta::settings::{Codec, Family, Json};

/// name → a Notation trust store: the PEM CA certificates signing certificates chain to.
pub(crate) const STORES: Family<Json<StoredStore>> = Family::keyed("trust-store:", "trust store");

/// A trust store as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredStore {
    pub pem: String,
    pub added_ms: u64,
    pub added_by: String,
}

/// A trust store as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoreInfo {
    pub name: String,
    /// How many CA certificates it holds.
    pub certificates: usize,
    pub added: String,
    pub added_by: String,
}

fn store_info(name: String, stored: &StoredStore) -> StoreInfo {
    StoreInfo {
        certificates: notation::ca_certificates(&stored.pem).map_or(0, |c| c.len()),
        added: audit::rfc3339(stored.added_ms),
        added_by: stored.added_by.clone(),
        name,
    }
}

/// Every trust store that parses, by name, with its CA certificates (DER).
pub(super) fn trust_stores(r: &dyn MetaRead) -> Result<Vec<notation::Store>, Error> {
    Ok(STORES
        .all(r)?
        .into_iter()
        .filter_map(|(name, s)| notation::ca_certificates(&s.pem).ok().map(|c| (name, c)))
        .collect())
}

/// name → a trusted root, in the settings table.
pub(crate) const ROOTS: Family<Json<StoredRoot>> = Family::keyed("trust-root:", "trusted root");

/// A trusted root as stored: the JSON as given (parsed again when used).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredRoot {
    pub json: String,
    pub added_ms: u64,
    pub added_by: String,
}

/// A trusted root as the API shows it: what it holds, not its bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RootInfo {
    pub name: String,
    /// Transparency logs (Rekor), CT logs, certificate authorities (Fulcio), timestamp
    /// authorities: how many of each.
    pub tlogs: usize,
    pub ctlogs: usize,
    pub certificate_authorities: usize,
    pub timestamp_authorities: usize,
    pub added: String,
    pub added_by: String,
}

/// The largest trusted root taken: the public-good one is about 10 KiB.
const ROOT_LIMIT: usize = 1 << 20;

fn root_info(name: String, stored: &StoredRoot) -> RootInfo {
    let parsed = TrustedRoot::from_json(stored.json.as_bytes()).ok();
    let count = |f: fn(&TrustedRoot) -> usize| parsed.as_ref().map_or(0, f);
    RootInfo {
        tlogs: count(|r| r.tlogs.len()),
        ctlogs: count(|r| r.ctlogs.len()),
        certificate_authorities: count(|r| r.cas.len()),
        timestamp_authorities: count(|r| r.tsas.len()),
        added: audit::rfc3339(stored.added_ms),
        added_by: stored.added_by.clone(),
        name,
    }
}

/// Every trusted root that parses, by name (one that no longer parses verifies nothing).
pub(super) fn trusted_roots(r: &dyn MetaRead) -> Result<Vec<(String, TrustedRoot)>, Error> {
    Ok(ROOTS
        .all(r)?
        .into_iter()
        .filter_map(|(name, s)| {
            TrustedRoot::from_json(s.json.as_bytes())
                .ok()
                .map(|t| (name, t))
        })
        .collect())
}

impl Trust {
    /// The trusted roots, by name.
    pub fn roots(&self) -> Result<Vec<RootInfo>, Error> {
        Ok(ROOTS
            .all(&*self.meta.read()?)?
            .into_iter()
            .map(|(name, r)| root_info(name, &r))
            .collect())
    }

    /// Trusts `json` (a Sigstore `trusted_root.json`) under `name`.
    pub fn add_root(&self, name: &str, json: &str, actor: &str) -> Result<RootInfo, Error> {
        check_key_name(name)?;
        if json.len() > ROOT_LIMIT {
            return Err(Error::Invalid(format!(
                "trusted root {name} is {} bytes, more than the {ROOT_LIMIT} a trusted root may be",
                json.len()
            )));
        }
        let parsed = TrustedRoot::from_json(json.as_bytes())
            .map_err(|e| Error::Invalid(format!("trusted root {name}: {e}")))?;
        if parsed.tlogs.is_empty() || parsed.cas.is_empty() {
            return Err(Error::Invalid(format!(
                "trusted root {name} holds {} transparency logs and {} certificate authorities: a keyless signature needs at least one of each",
                parsed.tlogs.len(),
                parsed.cas.len()
            )));
        }
        let stored = StoredRoot {
            json: json.to_owned(),
            added_ms: self.clock.now_ms(),
            added_by: actor.to_owned(),
        };
        let change = format!(
            "trusted root {name} added ({} transparency logs, {} CT logs, {} certificate authorities, {} timestamp authorities)",
            parsed.tlogs.len(),
            parsed.ctlogs.len(),
            parsed.cas.len(),
            parsed.tsas.len()
        );
        self.add_material(&ROOTS, "trusted root", name, &stored, change, actor)?;
        Ok(root_info(name.to_owned(), &stored))
    }

    /// No longer trusts root `name`: keyless signatures that only it verified verify no more.
    pub fn remove_root(&self, name: &str, actor: &str) -> Result<(), Error> {
        self.remove_material(&ROOTS, "trusted root", name, actor)
    }

    /// The Notation trust stores, by name.
    pub fn stores(&self) -> Result<Vec<StoreInfo>, Error> {
        Ok(STORES
            .all(&*self.meta.read()?)?
            .into_iter()
            .map(|(name, s)| store_info(name, &s))
            .collect())
    }

    /// Trusts the CA certificates of `pem` as Notation trust store `name`.
    pub fn add_store(&self, name: &str, pem: &str, actor: &str) -> Result<StoreInfo, Error> {
        check_key_name(name)?;
        let cas = notation::ca_certificates(pem)
            .map_err(|e| Error::Invalid(format!("trust store {name}: {e}")))?;
        let stored = StoredStore {
            pem: pem.trim().to_owned(),
            added_ms: self.clock.now_ms(),
            added_by: actor.to_owned(),
        };
        let change = format!("trust store {name} added ({} CA certificates)", cas.len());
        self.add_material(&STORES, "trust store", name, &stored, change, actor)?;
        Ok(store_info(name.to_owned(), &stored))
    }

    /// No longer trusts store `name`: Notation signatures only it verified verify no more.
    pub fn remove_store(&self, name: &str, actor: &str) -> Result<(), Error> {
        self.remove_material(&STORES, "trust store", name, actor)
    }

    /// Stores `value` as trust material `name` of `family` (`what` it is, in words), audited,
    /// and re-verifies the gated feeds under it.
    pub(super) fn add_material<C: Codec>(
        &self,
        family: &Family<C>,
        what: &str,
        name: &str,
        value: &C::Value,
        change: String,
        actor: &str,
    ) -> Result<(), Error> {
        self.meta.write(|w| {
            if family.exists(w, name)? {
                return Err(Error::Conflict(format!(
                    "a {what} named {name} exists: remove it first, or choose another name"
                )));
            }
            family.put(w, name, value)?;
            bump_epoch(w)?;
            audit::append(
                w,
                &self.clock,
                audit::entry(Kind::TrustChanged, actor, "", change),
            )?;
            Ok(())
        })?;
        self.reassess_all(actor, &format!("{what} {name} added"))
    }

    /// Removes trust material `name` of `family`, audited, and re-verifies the gated feeds.
    pub(super) fn remove_material<C: Codec>(
        &self,
        family: &Family<C>,
        what: &str,
        name: &str,
        actor: &str,
    ) -> Result<(), Error> {
        self.meta.write(|w| {
            if !family.exists(w, name)? {
                return Err(Error::NotFound(format!("no {what} is named {name}")));
            }
            family.remove(w, name)?;
            bump_epoch(w)?;
            audit::append(
                w,
                &self.clock,
                audit::entry(
                    Kind::TrustChanged,
                    actor,
                    "",
                    format!("{what} {name} removed"),
                ),
            )?;
            Ok(())
        })?;
        self.reassess_all(actor, &format!("{what} {name} removed"))
    }
}
