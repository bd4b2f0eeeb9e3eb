//! What the UI shows of an image's vulnerabilities: the manifest page's report, and one
//! line per version on the repository page.

use crate::domain::vulns::{Report, ScanState, Severity};

/// One finding, as the manifest page lists it.
pub struct FindingRow {
    pub severity: String,
    /// Whether it is high or critical (drawn as a warning).
    pub grave: bool,
    pub advisory: String,
    pub link: String,
    pub aliases: String,
    pub package: String,
    pub installed: String,
    pub fixed: String,
    pub summary: String,
}

/// The manifest page's vulnerability section.
pub struct VulnView {
    /// One sentence: read or not, what was found.
    pub state: String,
    pub findings: Vec<FindingRow>,
}

/// Findings by severity, worst first (`2 critical, 1 high`), or why there are none.
#[must_use]
pub fn summary(report: &Report) -> (String, bool) {
    match report.state {
        ScanState::NotScanned => (String::new(), false),
        ScanState::Pending => ("not read yet".to_owned(), false),
        ScanState::Failed => ("could not be read".to_owned(), true),
        ScanState::Scanned if report.findings.is_empty() => ("none known".to_owned(), false),
        ScanState::Scanned => {
            let counts = report.counts();
            let text: Vec<String> = counts
                .iter()
                .rev()
                .map(|(s, n)| format!("{n} {s}"))
                .collect();
            let grave = counts.keys().any(|s| *s >= Severity::High);
            (text.join(", "), grave)
        }
    }
}

impl VulnView {
    #[must_use]
    pub fn of(report: Report) -> Self {
        let (counts, _) = summary(&report);
        let state = match report.state {
            ScanState::NotScanned => {
                "Not an image semdock reads (an artifact, a signature or an SBOM).".to_owned()
            }
            ScanState::Pending => {
                "Its layers have not been read yet: semdock reads an image shortly after its push."
                    .to_owned()
            }
            ScanState::Failed => format!(
                "Its layers could not be read: {}",
                report.error.unwrap_or_default()
            ),
            ScanState::Scanned => format!(
                "{} packages{}; known vulnerabilities: {counts} (vulnerability database #{}).",
                report.packages,
                report
                    .os
                    .as_ref()
                    .map(|o| format!(
                        " on {}",
                        o.pretty_name
                            .clone()
                            .unwrap_or_else(|| format!("{} {}", o.id, o.version_id))
                    ))
                    .unwrap_or_default(),
                report.database
            ),
        };
        Self {
            state,
            findings: report
                .findings
                .into_iter()
                .map(|f| FindingRow {
                    grave: f.severity >= Severity::High,
                    severity: f.severity.to_string(),
                    link: f.link.unwrap_or_default(),
                    aliases: f.aliases.join(", "),
                    package: f.package,
                    installed: f.installed,
                    fixed: f.fixed.unwrap_or_else(|| "no fix yet".to_owned()),
                    summary: f.summary.unwrap_or_default(),
                    advisory: f.advisory,
                })
                .collect(),
        }
    }
}
