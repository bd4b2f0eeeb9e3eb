//! What is inside an image, and whether any of it is known to be vulnerable.
//!
//! - `sbom`: the packages an image's layers hold, read once after the push by a durable
//!   queue (`queue`) and kept per image digest, and stored beside the image as a CycloneDX
//!   referrer;
//! - `osv` and `db`: advisories imported from OSV files (no service, no network), indexed by
//!   package;
//! - `versions`: each ecosystem's version order, which matching compares by;
//! - a report is the SBOM matched against the advisories when asked: a new database changes
//!   every report at once, no layer is read again;
//! - `gate`: a feed's vulnerability policy (refuse promotions of images with findings at or
//!   above a severity, with exceptions that expire).

pub mod affected;
pub mod db;
pub mod gate;
mod matching;
pub mod osv;
pub mod queue;
pub mod sbom;
pub mod versions;
pub mod watch;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::domain::Error;
use crate::domain::clock::Clock;
use crate::store::meta::Metadata;
use crate::store::meta::settings::{Family, ZstdJson};

pub use gate::{Exception, VulnPolicy};
pub use matching::{Matcher, findings, report_in};
pub use osv::{Advisory, Severity};
pub use sbom::Sbom;

/// image digest → what semdock found in it.
pub(crate) const SBOMS: Family<ZstdJson<Sbom>> = Family::keyed("sbom:", "image SBOM");

/// One finding of a report: a package at a version an advisory names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    pub advisory: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    pub severity: Severity,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// The package as installed (a Debian binary package; the advisory names its source).
    pub package: String,
    pub kind: sbom::Kind,
    pub installed: String,
    /// The lowest fixed version above the installed one, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fixed: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
}

impl Finding {
    /// Whether `id` names this finding (its advisory id or an alias).
    #[must_use]
    pub fn named(&self, id: &str) -> bool {
        self.advisory.eq_ignore_ascii_case(id)
            || self.aliases.iter().any(|a| a.eq_ignore_ascii_case(id))
    }
}

/// `DSA-5514-1 (high) in libc6 2.36-9+deb12u1, fixed in 2.36-9+deb12u3`.
impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({}) in {} {}",
            self.advisory, self.severity, self.package, self.installed
        )?;
        if let Some(v) = &self.fixed {
            write!(f, ", fixed in {v}")?;
        }
        Ok(())
    }
}

/// Where an image's scan stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScanState {
    /// Queued, or being read now.
    Pending,
    /// Read: the report is the SBOM matched against the database.
    Scanned,
    /// Reading failed after every retry; the reason is in `error`.
    Failed,
    /// Not an image semdock reads (an artifact, a signature, an SBOM).
    NotScanned,
}

/// An image's vulnerabilities now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub digest: String,
    pub state: ScanState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os: Option<sbom::Os>,
    pub packages: usize,
    /// The database the findings come from (moves with every import).
    pub database: u64,
    pub findings: Vec<Finding>,
}

impl Report {
    /// Findings per severity, worst first.
    #[must_use]
    pub fn counts(&self) -> BTreeMap<Severity, usize> {
        let mut out = BTreeMap::new();
        for f in &self.findings {
            *out.entry(f.severity).or_insert(0) += 1;
        }
        out
    }
}

/// The lock of the scheduled vulnerability database fetch (`[vulndb] urls`).
const FETCH_LOCK: i64 = 0x5e3d_0c06;

/// The vulnerability service (`registry.vulns()`).
#[derive(Clone)]
pub struct Vulns {
    meta: Arc<dyn Metadata>,
    clock: Clock,
}

impl Vulns {
    pub(crate) fn new(meta: Arc<dyn Metadata>, clock: Clock) -> Self {
        Self { meta, clock }
    }

    /// Holds the cluster-wide lock of the scheduled database fetch (one node fetches);
    /// `None` while another node holds it.
    pub fn exclusive(&self) -> Result<Option<Box<dyn Send>>, Error> {
        Ok(self.meta.try_exclusive(FETCH_LOCK)?)
    }

    /// What semdock found in image `digest`, once read.
    pub fn sbom(&self, digest: &str) -> Result<Option<Sbom>, Error> {
        Ok(SBOMS.get(&*self.meta.read()?, digest)?)
    }

    /// The reports of images `digests` of `repository` (a page of tags), reading each
    /// package's advisories once for all of them.
    pub fn reports(
        &self,
        repository: &str,
        digests: &[String],
    ) -> Result<BTreeMap<String, Report>, Error> {
        let r = self.meta.read()?;
        let mut matcher = Matcher::new(&*r);
        let mut out = BTreeMap::new();
        for d in digests {
            if !out.contains_key(d) {
                out.insert(d.clone(), matcher.report(repository, d)?);
            }
        }
        Ok(out)
    }

    /// Image `digest`'s report (for an index, its platforms' findings together).
    pub fn report(&self, repository: &str, digest: &str) -> Result<Report, Error> {
        let r = self.meta.read()?;
        report_in(&*r, repository, digest)
    }
}
