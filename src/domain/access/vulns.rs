//! The vulnerability handles: the database (administrators import it), an image's SBOM and
//! report (whoever may pull it), and a feed's vulnerability policy (its administrators set
//! it and its exceptions, its readers see it).

use super::{Admin, Feed, FeedAdmin, Pull};
use crate::domain::Error;
use crate::domain::vulns::affected::Affected;
use crate::domain::vulns::db::{Imported, Source};
use crate::domain::vulns::{Exception, Report, Sbom, VulnPolicy};
use crate::model::{Digest, Repository};

/// The vulnerability database, for an administrator (`admin.vulndb()`).
pub struct VulnDb<'a> {
    admin: &'a Admin<'a>,
}

impl<'a> Admin<'a> {
    #[must_use]
    pub fn vulndb(&'a self) -> VulnDb<'a> {
        VulnDb { admin: self }
    }
}

impl VulnDb<'_> {
    /// Imports the OSV file `name` (a record, an array of records, or a zip of them).
    pub fn import(
        &self,
        name: &str,
        file: impl std::io::Read + std::io::Seek,
    ) -> Result<Imported, Error> {
        self.admin
            .registry()
            .vulns()
            .import(name, file, self.admin.caller.user())
    }

    /// The database's epoch and the files imported.
    pub fn sources(&self) -> Result<(u64, Vec<Source>), Error> {
        self.admin.registry().vulns().sources()
    }
}

impl super::Access {
    /// Where advisory `id` is among the repositories the caller may pull from (any
    /// authenticated caller).
    pub fn vulnerable(&self, id: &str) -> Result<Affected, Error> {
        if self.caller.is_none() {
            return Err(Error::Unauthenticated);
        }
        let visible = self.visible()?;
        self.registry
            .vulns()
            .affected(id, &|feed| visible.contains(feed))
    }
}

/// A feed's vulnerabilities (`feed.vulnerabilities()`).
pub struct Vulnerabilities<'a, L> {
    feed: &'a Feed<'a, L>,
}

impl<'a, L> Feed<'a, L> {
    #[must_use]
    pub fn vulnerabilities(&'a self) -> Vulnerabilities<'a, L> {
        Vulnerabilities { feed: self }
    }
}

impl Vulnerabilities<'_, Pull> {
    /// What semdock found in image `repo@digest` (`None` until it has been read).
    pub fn sbom(&self, repo: &Repository, digest: &Digest) -> Result<Option<Sbom>, Error> {
        self.feed.own(repo)?;
        self.feed.registry().vulns().sbom(digest.as_str())
    }

    /// Image `repo@digest`'s vulnerabilities now.
    pub fn report(&self, repo: &Repository, digest: &Digest) -> Result<Report, Error> {
        let repo = self.feed.own(repo)?;
        self.feed
            .registry()
            .vulns()
            .report(repo.as_str(), digest.as_str())
    }

    pub fn policy(&self) -> Result<Option<VulnPolicy>, Error> {
        self.feed.registry().vulns().policy(&self.feed.name)
    }

    /// The reports of images `digests` of `repo` (a page of tags), by digest.
    pub fn reports(
        &self,
        repo: &Repository,
        digests: &[String],
    ) -> Result<std::collections::BTreeMap<String, Report>, Error> {
        let repo = self.feed.own(repo)?;
        self.feed.registry().vulns().reports(repo.as_str(), digests)
    }
}

impl Vulnerabilities<'_, FeedAdmin> {
    /// Sets the feed's policy (its exceptions kept) or removes it.
    pub fn set_policy(&self, policy: Option<VulnPolicy>) -> Result<Option<VulnPolicy>, Error> {
        self.feed
            .registry()
            .vulns()
            .set_policy(&self.feed.name, policy, self.feed.access.actor())
    }

    pub fn add_exception(&self, exception: Exception) -> Result<Option<VulnPolicy>, Error> {
        self.feed.registry().vulns().add_exception(
            &self.feed.name,
            exception,
            self.feed.access.actor(),
        )
    }

    pub fn remove_exception(&self, advisory: &str) -> Result<Option<VulnPolicy>, Error> {
        self.feed.registry().vulns().remove_exception(
            &self.feed.name,
            advisory,
            self.feed.access.actor(),
        )
    }
}
