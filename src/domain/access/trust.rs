//! The trust handles: the registry's trusted keys (administrators), a feed's signature
//! policy (its administrators set it, its readers see it), and the verification of an
//! image's signatures (whoever may pull it).

use super::{Admin, Feed, FeedAdmin, Pull};
use crate::domain::Error;
use crate::domain::trust::{KeyInfo, RootInfo, SignaturePolicy, StoreInfo, Verification};
use crate::model::{Digest, Repository};

/// The trusted keys, for an administrator (`admin.trust()`).
pub struct TrustedKeys<'a> {
    admin: &'a Admin<'a>,
}

impl<'a> Admin<'a> {
    /// The keys signatures are verified with.
    #[must_use]
    pub fn trust(&'a self) -> TrustedKeys<'a> {
        TrustedKeys { admin: self }
    }
}

impl TrustedKeys<'_> {
    pub fn list(&self) -> Result<Vec<KeyInfo>, Error> {
        self.admin.registry().trust().keys()
    }

    /// Trusts the PEM public key `pem` under `name`.
    pub fn add(&self, name: &str, pem: &str) -> Result<KeyInfo, Error> {
        self.admin
            .registry()
            .trust()
            .add_key(name, pem, self.admin.caller.user())
    }

    /// Stops trusting key `name`.
    pub fn remove(&self, name: &str) -> Result<(), Error> {
        self.admin
            .registry()
            .trust()
            .remove_key(name, self.admin.caller.user())
    }

    /// The Sigstore trusted roots keyless signatures are verified under.
    pub fn roots(&self) -> Result<Vec<RootInfo>, Error> {
        self.admin.registry().trust().roots()
    }

    /// Trusts the Sigstore trusted root `json` (`trusted_root.json`) under `name`.
    pub fn add_root(&self, name: &str, json: &str) -> Result<RootInfo, Error> {
        self.admin
            .registry()
            .trust()
            .add_root(name, json, self.admin.caller.user())
    }

    /// Stops trusting root `name`.
    pub fn remove_root(&self, name: &str) -> Result<(), Error> {
        self.admin
            .registry()
            .trust()
            .remove_root(name, self.admin.caller.user())
    }

    /// The Notation trust stores signing certificates chain to.
    pub fn stores(&self) -> Result<Vec<StoreInfo>, Error> {
        self.admin.registry().trust().stores()
    }

    /// Trusts the CA certificates of `pem` as trust store `name`.
    pub fn add_store(&self, name: &str, pem: &str) -> Result<StoreInfo, Error> {
        self.admin
            .registry()
            .trust()
            .add_store(name, pem, self.admin.caller.user())
    }

    /// Stops trusting store `name`.
    pub fn remove_store(&self, name: &str) -> Result<(), Error> {
        self.admin
            .registry()
            .trust()
            .remove_store(name, self.admin.caller.user())
    }
}

/// A feed's signatures (`feed.signatures()`): what its policy requires, and what an image's
/// signatures say.
pub struct Signatures<'a, L> {
    feed: &'a Feed<'a, L>,
}

impl<'a, L> Feed<'a, L> {
    #[must_use]
    pub fn signatures(&'a self) -> Signatures<'a, L> {
        Signatures { feed: self }
    }
}

impl Signatures<'_, Pull> {
    /// The feed's signature policy, if it has one.
    pub fn policy(&self) -> Result<Option<SignaturePolicy>, Error> {
        self.feed.registry().trust().policy(&self.feed.name)
    }

    /// Which signatures of `repo@digest` exist, and which verify with which trusted key.
    pub fn verify(&self, repo: &Repository, digest: &Digest) -> Result<Verification, Error> {
        self.feed
            .registry()
            .trust()
            .verify(self.feed.own(repo)?, digest)
    }
}

impl Signatures<'_, FeedAdmin> {
    /// What setting `policy` (or removing it, with `None`) would do, in sentences.
    pub fn preview_policy(&self, policy: Option<&SignaturePolicy>) -> Result<Vec<String>, Error> {
        self.feed
            .registry()
            .trust()
            .preview_policy(&self.feed.name, policy)
    }

    /// Sets the feed's signature policy, or removes it with `None`.
    pub fn set_policy(&self, policy: Option<&SignaturePolicy>) -> Result<(), Error> {
        self.feed
            .registry()
            .trust()
            .set_policy(&self.feed.name, policy, self.feed.access.actor())
    }
}
