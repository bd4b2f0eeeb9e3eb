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
pub mod osv;
pub mod queue;
pub mod sbom;
pub mod versions;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::domain::Error;
use crate::domain::clock::Clock;
use crate::store::meta::settings::{Family, Json};
use crate::store::meta::{MetaRead, Metadata};

pub use gate::{Exception, VulnPolicy};
pub use osv::{Advisory, Severity};
pub use sbom::Sbom;

/// image digest → what semdock found in it.
pub(crate) const SBOMS: Family<Json<Sbom>> = Family::keyed("sbom:", "image SBOM");

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

/// Matches `sbom` against the advisories in `r`: one index read per package.
pub fn findings(r: &(impl MetaRead + ?Sized), sbom: &Sbom) -> Result<Vec<Finding>, Error> {
    let mut out: Vec<Finding> = Vec::new();
    let mut advisories: BTreeMap<String, Option<Advisory>> = BTreeMap::new();
    for package in &sbom.packages {
        for (key, version) in package.lookups(sbom.os.as_ref()) {
            for affected in db::BY_PACKAGE.get(r, &key)?.unwrap_or_default() {
                if !affected.affects(&version) {
                    continue;
                }
                let advisory = if let Some(a) = advisories.get(&affected.advisory) {
                    a.clone()
                } else {
                    let a = db::ADVISORIES
                        .get(r, &affected.advisory)?
                        .map(|s| s.advisory);
                    advisories.insert(affected.advisory.clone(), a.clone());
                    a
                };
                let Some(mut advisory) = advisory.filter(|a| !a.withdrawn) else {
                    continue;
                };
                if advisory.severity == Severity::Unknown {
                    // A distribution's advisory often rates nothing itself: its CVE's record does.
                    for alias in &advisory.aliases {
                        if let Some(a) = db::ADVISORIES.get(r, alias)? {
                            advisory.severity = advisory.severity.max(a.severity);
                        }
                    }
                }
                if out
                    .iter()
                    .any(|f| f.advisory == advisory.id && f.package == package.name)
                {
                    continue;
                }
                out.push(Finding {
                    severity: affected.severity.unwrap_or(advisory.severity),
                    fixed: affected.fixed_after(&version),
                    advisory: advisory.id,
                    aliases: advisory.aliases,
                    summary: advisory.summary,
                    package: package.name.clone(),
                    kind: package.kind,
                    installed: package.version.clone(),
                    link: advisory.link,
                });
            }
        }
    }
    out.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| a.package.cmp(&b.package))
            .then_with(|| a.advisory.cmp(&b.advisory))
    });
    Ok(out)
}

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

    /// What semdock found in image `digest`, once read.
    pub fn sbom(&self, digest: &str) -> Result<Option<Sbom>, Error> {
        Ok(SBOMS.get(&*self.meta.read()?, digest)?)
    }

    /// Image `digest`'s report (for an index, its platforms' findings together).
    pub fn report(&self, repository: &str, digest: &str) -> Result<Report, Error> {
        let r = self.meta.read()?;
        report_in(&*r, repository, digest)
    }
}

/// The report of `digest` in `repository`, read in `r`.
pub fn report_in(
    r: &(impl MetaRead + ?Sized),
    repository: &str,
    digest: &str,
) -> Result<Report, Error> {
    let database = db::EPOCH.get(r, "")?.unwrap_or(0);
    let mut report = Report {
        digest: digest.to_owned(),
        state: ScanState::NotScanned,
        error: None,
        os: None,
        packages: 0,
        database,
        findings: Vec::new(),
    };
    let Some(manifest) = r.manifest(repository, digest)? else {
        return Err(Error::ManifestUnknown {
            repository: repository.to_owned(),
            reference: digest.to_owned(),
        });
    };
    let images = if manifest.children.is_empty() {
        vec![digest.to_owned()]
    } else {
        manifest.children.clone()
    };
    for image in images {
        if let Some(sbom) = SBOMS.get(r, &image)? {
            report.state = ScanState::Scanned;
            report.os = report.os.or_else(|| sbom.os.clone());
            report.packages += sbom.packages.len();
            for f in findings(r, &sbom)? {
                if !report
                    .findings
                    .iter()
                    .any(|g| g.advisory == f.advisory && g.package == f.package)
                {
                    report.findings.push(f);
                }
            }
        } else if let Some(item) = queue::QUEUE.get(r, &queue::key(repository, &image))? {
            if let Some(error) = item.failed {
                report.state = ScanState::Failed;
                report.error = Some(error);
            } else if report.state != ScanState::Failed {
                report.state = ScanState::Pending;
            }
        }
    }
    report.findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| a.package.cmp(&b.package))
    });
    Ok(report)
}
