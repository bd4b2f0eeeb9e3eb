//! The OSV schema (<https://ossf.github.io/osv-schema/>), read as osv.dev publishes it, and
//! the two forms semdock keeps of a record: the advisory (what a report shows) and, per
//! affected package, its ranges (what matching evaluates).

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};

use super::versions::Order;

/// One OSV record as published; only the fields matching and reports use.
#[derive(Debug, Deserialize)]
pub struct Record {
    pub id: String,
    #[serde(default)]
    pub modified: String,
    #[serde(default)]
    pub published: Option<String>,
    #[serde(default)]
    pub withdrawn: Option<String>,
    #[serde(default)]
    pub aliases: Vec<String>,
    #[serde(default)]
    pub upstream: Vec<String>,
    /// Records of the same flaw elsewhere (Debian's DSAs name their CVEs here).
    #[serde(default)]
    pub related: Vec<String>,
    #[serde(default)]
    pub summary: Option<String>,
    #[serde(default)]
    pub details: Option<String>,
    #[serde(default)]
    pub severity: Vec<SeverityEntry>,
    #[serde(default)]
    pub affected: Vec<AffectedEntry>,
    #[serde(default)]
    pub references: Vec<Reference>,
    #[serde(default)]
    pub database_specific: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
pub struct SeverityEntry {
    #[serde(rename = "type")]
    pub kind: String,
    pub score: String,
}

#[derive(Debug, Deserialize)]
pub struct AffectedEntry {
    #[serde(default)]
    pub package: Option<PackageRef>,
    #[serde(default)]
    pub ranges: Vec<RangeEntry>,
    #[serde(default)]
    pub versions: Vec<String>,
    #[serde(default)]
    pub severity: Vec<SeverityEntry>,
    #[serde(default)]
    pub ecosystem_specific: Option<serde_json::Value>,
    #[serde(default)]
    pub database_specific: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
pub struct PackageRef {
    pub ecosystem: String,
    pub name: String,
}

#[derive(Debug, Deserialize)]
pub struct RangeEntry {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub events: Vec<serde_json::Map<String, serde_json::Value>>,
}

#[derive(Debug, Deserialize)]
pub struct Reference {
    #[serde(rename = "type", default)]
    pub kind: String,
    pub url: String,
}

/// How bad an advisory says it is.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    #[default]
    Unknown,
    Negligible,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    /// A severity's name as advisories and users write it (`moderate` and `important` too).
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text.trim().to_ascii_lowercase().as_str() {
            "unknown" | "unimportant" | "not yet assigned" => Self::Unknown,
            "negligible" => Self::Negligible,
            "low" => Self::Low,
            "medium" | "moderate" => Self::Medium,
            "high" | "important" => Self::High,
            "critical" => Self::Critical,
            _ => return None,
        })
    }

    /// The rating of a CVSS base score (CVSS v3.1 specification, table 14).
    #[must_use]
    pub fn of_score(score: f64) -> Self {
        match score {
            s if s >= 9.0 => Self::Critical,
            s if s >= 7.0 => Self::High,
            s if s >= 4.0 => Self::Medium,
            s if s > 0.0 => Self::Low,
            _ => Self::Negligible,
        }
    }

    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unknown => "unknown",
            Self::Negligible => "negligible",
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
            Self::Critical => "critical",
        }
    }
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a report shows of an advisory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Advisory {
    pub id: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    pub severity: Severity,
    /// The CVSS v3 base score, when the record carries a vector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    pub modified: String,
    #[serde(default)]
    pub withdrawn: bool,
    /// Where to read it (the advisory's own page, else its first reference).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
}

/// One event of a range, as OSV names them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    Introduced(String),
    Fixed(String),
    LastAffected(String),
    Limit(String),
}

impl Event {
    fn version(&self) -> &str {
        match self {
            Self::Introduced(v) | Self::Fixed(v) | Self::LastAffected(v) | Self::Limit(v) => v,
        }
    }
}

/// One advisory's say about one package: the versions it affects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Affected {
    pub advisory: String,
    /// The ecosystem exactly as the record names it (`Debian:12`).
    pub ecosystem: String,
    /// Ranges, each a list of events (ECOSYSTEM and SEMVER ranges; GIT ranges name commits,
    /// which an image's packages do not carry).
    pub ranges: Vec<Vec<Event>>,
    /// Versions named one by one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub versions: Vec<String>,
    /// The severity this package's entry gives, when it differs from the advisory's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<Severity>,
}

impl Affected {
    /// Whether `version` is affected, by the ecosystem's own order.
    #[must_use]
    pub fn affects(&self, version: &str) -> bool {
        let order = Order::of_ecosystem(&self.ecosystem);
        if self.versions.iter().any(|v| v == version) {
            return true;
        }
        self.ranges
            .iter()
            .any(|events| in_range(order, events, version))
    }

    /// The lowest fixed version above `version`, when a range names one.
    #[must_use]
    pub fn fixed_after(&self, version: &str) -> Option<String> {
        let order = Order::of_ecosystem(&self.ecosystem);
        self.ranges
            .iter()
            .flatten()
            .filter_map(|e| match e {
                Event::Fixed(v) if order.compare(v, version) == Ordering::Greater => Some(v),
                _ => None,
            })
            .min_by(|a, b| order.compare(a, b))
            .cloned()
    }
}

/// OSV's evaluation of one range: its events in version order ("0" before everything); a
/// version is affected after an `introduced` at or below it until a `fixed` at or below it
/// (or a `last_affected` below it, or a `limit`).
fn in_range(order: Order, events: &[Event], version: &str) -> bool {
    let mut sorted: Vec<&Event> = events.iter().collect();
    let rank = |e: &Event| match e {
        Event::Introduced(_) => 0,
        Event::LastAffected(_) => 1,
        Event::Fixed(_) | Event::Limit(_) => 2,
    };
    sorted.sort_by(|a, b| {
        let (va, vb) = (a.version(), b.version());
        let by_version = match (va == "0", vb == "0") {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Less,
            (false, true) => Ordering::Greater,
            (false, false) => order.compare(va, vb),
        };
        by_version.then_with(|| rank(a).cmp(&rank(b)))
    });
    let mut affected = false;
    for event in sorted {
        let v = event.version();
        let at_or_below = v == "0" || order.compare(v, version) != Ordering::Greater;
        match event {
            Event::Introduced(_) if at_or_below => affected = true,
            Event::Fixed(_) | Event::Limit(_) if at_or_below => affected = false,
            Event::LastAffected(_) if order.compare(v, version) == Ordering::Less => {
                affected = false;
            }
            _ => {}
        }
    }
    affected
}

impl Record {
    /// The advisory this record is, for reports.
    #[must_use]
    pub fn advisory(&self) -> Advisory {
        let score = self
            .severity
            .iter()
            .find(|s| s.kind.starts_with("CVSS_V3"))
            .and_then(|s| cvss3_base_score(&s.score));
        let severity = score
            .map(Severity::of_score)
            .or_else(|| text_severity(self.database_specific.as_ref()))
            .or_else(|| self.affected.iter().filter_map(affected_severity).max())
            .unwrap_or_default();
        let link = self
            .references
            .iter()
            .find(|r| r.kind == "ADVISORY")
            .or_else(|| self.references.first())
            .map(|r| r.url.clone());
        let mut aliases = self.aliases.clone();
        aliases.extend(self.upstream.iter().cloned());
        aliases.extend(self.related.iter().cloned());
        aliases.sort();
        aliases.dedup();
        Advisory {
            id: self.id.clone(),
            aliases,
            summary: self.summary.clone().or_else(|| {
                self.details
                    .as_deref()
                    .and_then(|d| d.lines().find(|l| !l.trim().is_empty()))
                    .map(|l| l.chars().take(200).collect())
            }),
            severity,
            score,
            modified: self.modified.clone(),
            withdrawn: self.withdrawn.is_some(),
            link,
        }
    }

    /// Its affected packages, keyed by `ecosystem/name` (names as the ecosystem normalises).
    #[must_use]
    pub fn affected(&self) -> Vec<(String, Affected)> {
        self.affected
            .iter()
            .filter_map(|a| {
                let package = a.package.as_ref()?;
                let ranges: Vec<Vec<Event>> = a
                    .ranges
                    .iter()
                    .filter(|r| r.kind != "GIT")
                    .map(|r| r.events.iter().filter_map(event).collect())
                    .collect();
                if ranges.is_empty() && a.versions.is_empty() {
                    return None;
                }
                let key = package_key(&package.ecosystem, &package.name);
                Some((
                    key,
                    Affected {
                        advisory: self.id.clone(),
                        ecosystem: package.ecosystem.clone(),
                        ranges,
                        versions: a.versions.clone(),
                        severity: affected_severity(a),
                    },
                ))
            })
            .collect()
    }
}

fn event(e: &serde_json::Map<String, serde_json::Value>) -> Option<Event> {
    let (kind, value) = e.iter().next()?;
    let v = value.as_str()?.to_owned();
    Some(match kind.as_str() {
        "introduced" => Event::Introduced(v),
        "fixed" => Event::Fixed(v),
        "last_affected" => Event::LastAffected(v),
        "limit" => Event::Limit(v),
        _ => return None,
    })
}

fn text_severity(specific: Option<&serde_json::Value>) -> Option<Severity> {
    let specific = specific?;
    ["severity", "urgency", "cvss_severity"]
        .iter()
        .find_map(|k| specific.get(k).and_then(serde_json::Value::as_str))
        .and_then(Severity::parse)
}

fn affected_severity(a: &AffectedEntry) -> Option<Severity> {
    a.severity
        .iter()
        .find_map(|s| {
            if s.kind.starts_with("CVSS_V3") {
                cvss3_base_score(&s.score).map(Severity::of_score)
            } else {
                Severity::parse(&s.score)
            }
        })
        .or_else(|| text_severity(a.ecosystem_specific.as_ref()))
        .or_else(|| text_severity(a.database_specific.as_ref()))
}

/// The key a package's advisories are kept under: the ecosystem as OSV names it, then the
/// name as the ecosystem compares names (PyPI's are case- and separator-insensitive).
#[must_use]
pub fn package_key(ecosystem: &str, name: &str) -> String {
    let name = if ecosystem == "PyPI" {
        pypi_name(name)
    } else {
        name.to_owned()
    };
    format!("{ecosystem}/{name}")
}

/// A PyPI name normalised as PEP 503 says.
#[must_use]
pub fn pypi_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut dash = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            dash = true;
        } else {
            if dash && !out.is_empty() {
                out.push('-');
            }
            dash = false;
            out.push(c.to_ascii_lowercase());
        }
    }
    out
}

/// The base score of a CVSS v3.0/v3.1 vector (`CVSS:3.1/AV:N/AC:L/…`), by the formulas of
/// the CVSS v3.1 specification, section 7.1; `None` for a vector it cannot read.
#[must_use]
pub fn cvss3_base_score(vector: &str) -> Option<f64> {
    let metric = |name: &str| {
        vector
            .split('/')
            .find_map(|part| part.strip_prefix(name)?.strip_prefix(':'))
    };
    let scope_changed = match metric("S")? {
        "U" => false,
        "C" => true,
        _ => return None,
    };
    let av = match metric("AV")? {
        "N" => 0.85,
        "A" => 0.62,
        "L" => 0.55,
        "P" => 0.2,
        _ => return None,
    };
    let ac = match metric("AC")? {
        "L" => 0.77,
        "H" => 0.44,
        _ => return None,
    };
    let pr = match (metric("PR")?, scope_changed) {
        ("N", _) => 0.85,
        ("L", false) => 0.62,
        ("L", true) => 0.68,
        ("H", false) => 0.27,
        ("H", true) => 0.5,
        _ => return None,
    };
    let ui = match metric("UI")? {
        "N" => 0.85,
        "R" => 0.62,
        _ => return None,
    };
    let cia = |v: &str| match v {
        "H" => Some(0.56),
        "L" => Some(0.22),
        "N" => Some(0.0),
        _ => None,
    };
    let (c, i, a) = (cia(metric("C")?)?, cia(metric("I")?)?, cia(metric("A")?)?);
    let iss = 1.0 - (1.0 - c) * (1.0 - i) * (1.0 - a);
    let impact = if scope_changed {
        7.52 * (iss - 0.029) - 3.25 * (iss - 0.02f64).powi(15)
    } else {
        6.42 * iss
    };
    let exploitability = 8.22 * av * ac * pr * ui;
    if impact <= 0.0 {
        return Some(0.0);
    }
    let raw = if scope_changed {
        (1.08 * (impact + exploitability)).min(10.0)
    } else {
        (impact + exploitability).min(10.0)
    };
    Some(round_up(raw))
}

/// CVSS v3.1's Roundup: the smallest number with one decimal at or above `x`.
fn round_up(x: f64) -> f64 {
    #[allow(clippy::cast_possible_truncation)]
    let int = (x * 100_000.0).round() as i64;
    if int % 10_000 == 0 {
        #[allow(clippy::cast_precision_loss)]
        return int as f64 / 100_000.0;
    }
    #[allow(clippy::cast_precision_loss)]
    let up = ((int / 10_000) + 1) as f64 / 10.0;
    up
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(json: &str) -> Record {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn cvss_base_scores_match_the_published_ones() {
        // Log4Shell (CVE-2021-44228): 10.0; Heartbleed's v3 vector: 7.5.
        assert_eq!(
            cvss3_base_score("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H"),
            Some(10.0)
        );
        assert_eq!(
            cvss3_base_score("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N"),
            Some(7.5)
        );
        assert_eq!(
            cvss3_base_score("CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H"),
            Some(7.8)
        );
        assert_eq!(
            cvss3_base_score("CVSS:3.1/AV:N/AC:H/PR:N/UI:R/S:U/C:L/I:N/A:N"),
            Some(3.1)
        );
        assert_eq!(cvss3_base_score("CVSS:3.1/AV:X"), None);
    }

    #[test]
    fn ranges_follow_the_osv_evaluation() {
        let a = Affected {
            advisory: "X".into(),
            ecosystem: "Debian:12".into(),
            ranges: vec![vec![
                Event::Introduced("0".into()),
                Event::Fixed("2.36-9+deb12u4".into()),
            ]],
            versions: vec![],
            severity: None,
        };
        assert!(a.affects("2.36-9"));
        assert!(a.affects("2.36-9+deb12u3"));
        assert!(!a.affects("2.36-9+deb12u4"));
        assert!(!a.affects("2.37-1"));
        assert_eq!(a.fixed_after("2.36-9").as_deref(), Some("2.36-9+deb12u4"));

        let two = Affected {
            advisory: "Y".into(),
            ecosystem: "PyPI".into(),
            ranges: vec![vec![
                Event::Introduced("1.0".into()),
                Event::Fixed("1.2.1".into()),
                Event::Introduced("2.0a1".into()),
                Event::LastAffected("2.0.3".into()),
            ]],
            versions: vec![],
            severity: None,
        };
        assert!(!two.affects("0.9"));
        assert!(two.affects("1.1"));
        assert!(!two.affects("1.2.1"));
        assert!(!two.affects("1.9"));
        assert!(two.affects("2.0rc1"));
        assert!(two.affects("2.0.3"));
        assert!(!two.affects("2.0.4"));
    }

    #[test]
    fn a_record_yields_its_advisory_and_packages() {
        let r = record(
            r#"{"id":"GHSA-j8r2-6x86-q33q","modified":"2024-01-01T00:00:00Z",
            "aliases":["CVE-2023-32681"],"summary":"Unintended leak of Proxy-Authorization header in requests",
            "severity":[{"type":"CVSS_V3","score":"CVSS:3.1/AV:N/AC:H/PR:N/UI:R/S:C/C:H/I:N/A:N"}],
            "affected":[{"package":{"ecosystem":"PyPI","name":"Requests"},
              "ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"2.3.0"},{"fixed":"2.31.0"}]}]},
              {"package":{"ecosystem":"PyPI","name":"requests"},"ranges":[{"type":"GIT","repo":"x","events":[{"introduced":"0"}]}]}],
            "references":[{"type":"WEB","url":"https://example.invalid/1"},{"type":"ADVISORY","url":"https://nvd.nist.gov/vuln/detail/CVE-2023-32681"}]}"#,
        );
        let adv = r.advisory();
        assert_eq!(adv.severity, Severity::Medium);
        assert_eq!(adv.score, Some(6.1));
        assert_eq!(
            adv.link.as_deref(),
            Some("https://nvd.nist.gov/vuln/detail/CVE-2023-32681")
        );
        let affected = r.affected();
        assert_eq!(affected.len(), 1, "the GIT-only entry names no versions");
        assert_eq!(affected[0].0, "PyPI/requests");
        assert!(affected[0].1.affects("2.28.1"));
        assert!(!affected[0].1.affects("2.31.0"));
    }

    #[test]
    fn pypi_names_normalise() {
        assert_eq!(pypi_name("Typing_Extensions"), "typing-extensions");
        assert_eq!(pypi_name("zope.interface"), "zope-interface");
        assert_eq!(pypi_name("a--b"), "a-b");
    }
}
