//! Matching: an image's SBOM against the advisories of its packages, each by its
//! ecosystem's version order.

use std::collections::{HashMap, HashSet};

use super::osv::{Advisory, Affected};
use super::{Finding, Report, SBOMS, Sbom, ScanState, Severity, db, queue};
use crate::domain::Error;
use crate::store::meta::MetaRead;

/// Matches `sbom` against the advisories in `r`: one index read per package.
pub fn findings(r: &(impl MetaRead + ?Sized), sbom: &Sbom) -> Result<Vec<Finding>, Error> {
    Matcher::new(r).findings(sbom)
}

/// Matching with what it read remembered: the images of one page share most packages, so
/// the index is read once per distinct package, not once per image.
pub struct Matcher<'r, R: MetaRead + ?Sized> {
    r: &'r R,
    packages: HashMap<String, Vec<Affected>>,
    /// Advisories (not withdrawn), rated by their aliases where they rate nothing.
    advisories: HashMap<String, Option<Advisory>>,
}

impl<'r, R: MetaRead + ?Sized> Matcher<'r, R> {
    pub fn new(r: &'r R) -> Self {
        Self {
            r,
            packages: HashMap::new(),
            advisories: HashMap::new(),
        }
    }

    fn package(&mut self, key: &str) -> Result<&[Affected], Error> {
        if !self.packages.contains_key(key) {
            let found = db::BY_PACKAGE.get(self.r, key)?.unwrap_or_default();
            self.packages.insert(key.to_owned(), found);
        }
        Ok(self.packages.get(key).map_or(&[], Vec::as_slice))
    }

    fn advisory(&mut self, id: &str) -> Result<Option<Advisory>, Error> {
        if let Some(a) = self.advisories.get(id) {
            return Ok(a.clone());
        }
        let mut found = db::ADVISORIES
            .get(self.r, id)?
            .map(|s| s.advisory)
            .filter(|a| !a.withdrawn);
        if let Some(advisory) = &mut found
            && advisory.severity == Severity::Unknown
        {
            // A distribution's advisory often rates nothing itself: its CVE's record does.
            for alias in &advisory.aliases.clone() {
                if let Some(a) = db::ADVISORIES.get(self.r, alias)? {
                    advisory.severity = advisory.severity.max(a.severity);
                }
            }
        }
        self.advisories.insert(id.to_owned(), found.clone());
        Ok(found)
    }

    /// The findings of `sbom`, worst first.
    pub fn findings(&mut self, sbom: &Sbom) -> Result<Vec<Finding>, Error> {
        let mut out: Vec<Finding> = Vec::new();
        // (advisory, package) already found: a set, since an old image has thousands.
        let mut seen: HashSet<(String, String)> = HashSet::new();
        for package in &sbom.packages {
            for (key, version) in package.lookups(sbom.os.as_ref()) {
                let hits: Vec<(String, Option<Severity>, Option<String>)> = self
                    .package(&key)?
                    .iter()
                    .filter(|a| a.affects(&version))
                    .map(|a| (a.advisory.clone(), a.severity, a.fixed_after(&version)))
                    .collect();
                for (id, severity, fixed) in hits {
                    if seen.contains(&(id.clone(), package.name.clone())) {
                        continue;
                    }
                    let Some(advisory) = self.advisory(&id)? else {
                        continue;
                    };
                    seen.insert((id, package.name.clone()));
                    out.push(Finding {
                        severity: severity.unwrap_or(advisory.severity),
                        fixed,
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
}

/// The report of `digest` in `repository`, read in `r`.
pub fn report_in(
    r: &(impl MetaRead + ?Sized),
    repository: &str,
    digest: &str,
) -> Result<Report, Error> {
    Matcher::new(r).report(repository, digest)
}

impl<R: MetaRead + ?Sized> Matcher<'_, R> {
    /// The report of `digest` in `repository` (for an index, its platforms' together).
    pub fn report(&mut self, repository: &str, digest: &str) -> Result<Report, Error> {
        let r = self.r;
        let matcher = self;
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
        let mut seen: HashSet<(String, String)> = HashSet::new();
        for image in images {
            if let Some(sbom) = SBOMS.get(r, &image)? {
                report.state = ScanState::Scanned;
                report.os = report.os.or_else(|| sbom.os.clone());
                report.packages += sbom.packages.len();
                for f in matcher.findings(&sbom)? {
                    if seen.insert((f.advisory.clone(), f.package.clone())) {
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
}
