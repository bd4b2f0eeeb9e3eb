//! SBOMs, vulnerability reports, the vulnerability database and feeds' vulnerability
//! policies, as the API sends them.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::audit::rfc3339;
use crate::domain::vulns::{self, db};

/// One package at a version an advisory names.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Finding {
    pub advisory: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// `critical`, `high`, `medium`, `low`, `negligible` or `unknown`.
    pub severity: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    pub package: String,
    /// `deb`, `apk`, `python`, `npm`, `cargo`, `maven`, …
    pub kind: String,
    pub installed: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fixed: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
}

impl From<vulns::Finding> for Finding {
    fn from(f: vulns::Finding) -> Self {
        Self {
            advisory: f.advisory,
            aliases: f.aliases,
            severity: f.severity.to_string(),
            summary: f.summary,
            package: f.package,
            kind: f.kind.as_str().to_owned(),
            installed: f.installed,
            fixed: f.fixed,
            link: f.link,
        }
    }
}

/// An image's vulnerabilities now: its SBOM matched against the database.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct VulnReport {
    pub digest: String,
    /// `pending` (queued or being read), `scanned`, `failed`, or `not-scanned` (an artifact).
    pub state: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The OS its `os-release` names (`debian 12`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os: Option<String>,
    pub packages: usize,
    /// The database epoch the findings come from.
    pub database: u64,
    pub findings: Vec<Finding>,
}

impl From<vulns::Report> for VulnReport {
    fn from(r: vulns::Report) -> Self {
        Self {
            digest: r.digest,
            state: match r.state {
                vulns::ScanState::Pending => "pending",
                vulns::ScanState::Scanned => "scanned",
                vulns::ScanState::Failed => "failed",
                vulns::ScanState::NotScanned => "not-scanned",
            }
            .to_owned(),
            error: r.error,
            os: r.os.map(|o| format!("{} {}", o.id, o.version_id)),
            packages: r.packages,
            database: r.database,
            findings: super::all(r.findings),
        }
    }
}

/// What an import did.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct VulnImport {
    pub records: usize,
    pub withdrawn: usize,
    /// Distinct packages the records name.
    pub packages: usize,
    /// Entries that were not OSV records, with why.
    pub skipped: Vec<String>,
    /// The database epoch after it.
    pub epoch: u64,
}

impl From<db::Imported> for VulnImport {
    fn from(i: db::Imported) -> Self {
        Self {
            records: i.records,
            withdrawn: i.withdrawn,
            packages: i.packages,
            skipped: i.skipped,
            epoch: i.epoch,
        }
    }
}

/// One imported file.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct VulnSource {
    pub name: String,
    pub records: usize,
    pub withdrawn: usize,
    pub ecosystems: Vec<String>,
    /// RFC 3339.
    pub imported: String,
    pub imported_by: String,
}

/// The vulnerability database.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct VulnDb {
    pub epoch: u64,
    pub sources: Vec<VulnSource>,
}

impl From<(u64, Vec<db::Source>)> for VulnDb {
    fn from((epoch, sources): (u64, Vec<db::Source>)) -> Self {
        Self {
            epoch,
            sources: sources
                .into_iter()
                .map(|s| VulnSource {
                    name: s.name,
                    records: s.records,
                    withdrawn: s.withdrawn,
                    ecosystems: s.ecosystems,
                    imported: rfc3339(s.imported_ms),
                    imported_by: s.imported_by,
                })
                .collect(),
        }
    }
}

/// An accepted advisory of a feed.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct VulnException {
    /// The advisory id or an alias (`CVE-2024-…`).
    pub advisory: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package: Option<String>,
    /// The last day it holds, `YYYY-MM-DD` (UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
    pub reason: String,
    #[serde(default)]
    pub added_by: String,
    /// RFC 3339.
    #[serde(default)]
    pub added: String,
}

impl From<vulns::Exception> for VulnException {
    fn from(e: vulns::Exception) -> Self {
        Self {
            advisory: e.advisory,
            package: e.package,
            expires: e.expires,
            reason: e.reason,
            added_by: e.added_by,
            added: rfc3339(e.added_ms),
        }
    }
}

impl From<VulnException> for vulns::Exception {
    fn from(e: VulnException) -> Self {
        Self {
            advisory: e.advisory,
            package: e.package,
            expires: e.expires,
            reason: e.reason,
            added_by: String::new(),
            added_ms: 0,
        }
    }
}

/// A feed's vulnerability policy: promotions of images with a finding at or above
/// `refuse_at` are refused, except the accepted advisories.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct VulnPolicy {
    /// `critical`, `high`, `medium`, `low` or `negligible`.
    pub refuse_at: String,
    /// Count only findings that have a fixed version.
    #[serde(default)]
    pub fixable_only: bool,
    /// What a tag push of an image the policy refuses gets (the image is read during the
    /// push); absent: pushes are not gated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_push: Option<super::PullGate>,
    /// What a pull of an image the policy refuses gets; absent: pulls are not gated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_pull: Option<super::PullGate>,
    /// Virtual tags (`latest`, `3`, `3.4`) follow only versions read and passing.
    #[serde(default)]
    pub virtual_tags: bool,
    /// Read only: exceptions change through `/exceptions`.
    #[serde(default)]
    pub exceptions: Vec<VulnException>,
}

impl VulnPolicy {
    /// The policy as the domain keeps it (without exceptions, which are kept apart).
    pub fn to_domain(&self) -> Result<vulns::VulnPolicy, crate::domain::Error> {
        let refuse_at = vulns::Severity::parse(&self.refuse_at).ok_or_else(|| {
            crate::domain::Error::Invalid(format!(
                "refuse_at {:?} is not a severity: use critical, high, medium, low or negligible",
                self.refuse_at
            ))
        })?;
        Ok(vulns::VulnPolicy {
            refuse_at,
            fixable_only: self.fixable_only,
            on_push: self.on_push.map(Into::into),
            on_pull: self.on_pull.map(Into::into),
            virtual_tags: self.virtual_tags,
            exceptions: Vec::new(),
        })
    }
}

impl From<vulns::VulnPolicy> for VulnPolicy {
    fn from(p: vulns::VulnPolicy) -> Self {
        Self {
            refuse_at: p.refuse_at.to_string(),
            fixable_only: p.fixable_only,
            on_push: p.on_push.map(Into::into),
            on_pull: p.on_pull.map(Into::into),
            virtual_tags: p.virtual_tags,
            exceptions: super::all(p.exceptions),
        }
    }
}

/// One repository where an advisory is.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AffectedRepository {
    pub repository: String,
    /// Its version tags whose images the advisory affects, lowest first.
    pub versions: Vec<String>,
    /// Other tags pointing at affected images.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// The lowest higher version of the same name (in any visible feed) that was read and is
    /// not affected: `FEED/NAME:VERSION`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fixed_in: Option<String>,
}

/// Where an advisory is: every affected version the caller may see, and what fixes it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AffectedReport {
    pub advisory: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    pub severity: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    pub repositories: Vec<AffectedRepository>,
}

impl From<vulns::affected::Affected> for AffectedReport {
    fn from(a: vulns::affected::Affected) -> Self {
        Self {
            advisory: a.advisory.id,
            aliases: a.advisory.aliases,
            severity: a.advisory.severity.to_string(),
            summary: a.advisory.summary,
            repositories: a
                .repositories
                .into_iter()
                .map(|r| AffectedRepository {
                    repository: r.repository,
                    versions: r.versions,
                    tags: r.tags,
                    fixed_in: r.fixed_in.map(|(repo, v)| format!("{repo}:{v}")),
                })
                .collect(),
        }
    }
}
