//! A feed's vulnerability policy: promotions into the feed are refused while the image has a
//! finding at or above a severity (optionally: only findings with a fix), except for the
//! advisories the feed's administrators accepted — each with a reason, optionally for one
//! package, and until a date, after which it no longer counts (Harbor's CVE allowlist,
//! with an expiry).

use serde::{Deserialize, Serialize};

use super::{Finding, ScanState, Severity, Vulns};
use crate::domain::Error;
use crate::domain::audit::{self, Kind};
use crate::domain::trust::PullGate;
use crate::store::meta::MetaRead;
use crate::store::meta::settings::{Family, Json};

/// feed → its vulnerability policy.
pub(crate) const POLICIES: Family<Json<VulnPolicy>> =
    Family::keyed("vuln-policy:", "feed vulnerability policy");

/// What a feed refuses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VulnPolicy {
    /// Promotions of images with a finding at or above this are refused.
    pub refuse_at: Severity,
    /// Count only findings with a fixed version.
    #[serde(default)]
    pub fixable_only: bool,
    /// What a tag push of an image the policy refuses gets (refused, or accepted with a
    /// `Warning`): the image is read during the push; `None`: pushes are not gated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_push: Option<PullGate>,
    /// What a pull of an image the policy refuses gets (refused, or served with a
    /// `Warning`); `None`: pulls are not gated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_pull: Option<PullGate>,
    /// Virtual tags (`latest`, `3`, `3.4`) follow only versions read and passing the
    /// policy.
    #[serde(default)]
    pub virtual_tags: bool,
    #[serde(default)]
    pub exceptions: Vec<Exception>,
}

/// An accepted advisory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exception {
    /// The advisory id or an alias of it (`CVE-2024-…`).
    pub advisory: String,
    /// Only for this package, when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package: Option<String>,
    /// The last day it holds (`YYYY-MM-DD`, UTC), when it expires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
    pub reason: String,
    #[serde(default)]
    pub added_by: String,
    #[serde(default)]
    pub added_ms: u64,
}

impl Exception {
    /// Whether it accepts `finding` on day `today` (`YYYY-MM-DD`).
    #[must_use]
    pub fn accepts(&self, finding: &Finding, today: &str) -> bool {
        finding.named(&self.advisory)
            && self.package.as_deref().is_none_or(|p| p == finding.package)
            && self.expires.as_deref().is_none_or(|e| today <= e)
    }
}

/// Today's date (UTC) at `now_ms`.
fn day(now_ms: u64) -> String {
    audit::rfc3339(now_ms).chars().take(10).collect()
}

fn check_date(date: &str) -> Result<(), Error> {
    let ok = date.len() == 10
        && date.bytes().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "{date:?} is not a date: write YYYY-MM-DD"
        )))
    }
}

/// The findings `policy` refuses, on `today`.
#[must_use]
pub fn refused<'a>(policy: &VulnPolicy, findings: &'a [Finding], today: &str) -> Vec<&'a Finding> {
    findings
        .iter()
        .filter(|f| f.severity >= policy.refuse_at)
        .filter(|f| !policy.fixable_only || f.fixed.is_some())
        .filter(|f| !policy.exceptions.iter().any(|e| e.accepts(f, today)))
        .collect()
}

/// Refuses a promotion of `digest` from `from` into `feed` when the feed's policy says so;
/// read in the promotion's own transaction.
pub fn check_promotion(
    r: &(impl MetaRead + ?Sized),
    feed: &str,
    from: &str,
    digest: &str,
    now_ms: u64,
) -> Result<(), Error> {
    let Some(policy) = POLICIES.get(r, feed)? else {
        return Ok(());
    };
    let report = super::report_in(r, from, digest)?;
    match report.state {
        ScanState::Scanned => {}
        ScanState::NotScanned | ScanState::Pending => {
            return Err(Error::PolicyRefused(format!(
                "feed {feed:?} accepts only images whose packages semdock has read, and {from}@{digest} has not been read yet: wait for its SBOM (`semdock vuln {from}@{digest}`) and promote again"
            )));
        }
        ScanState::Failed => {
            return Err(Error::PolicyRefused(format!(
                "feed {feed:?} accepts only images whose packages semdock has read, and reading {from}@{digest} failed: {}",
                report.error.unwrap_or_default()
            )));
        }
    }
    match refusal(
        &policy,
        &report.findings,
        feed,
        &format!("{from}@{digest}"),
        now_ms,
    ) {
        Some(why) => Err(Error::PolicyRefused(why)),
        None => Ok(()),
    }
}

impl crate::domain::Registry {
    /// The push gate: for a tag push of an image (or an index) into a feed whose policy
    /// gates pushes, reads the layers now (the images an SBOM is known for are not read
    /// again) and refuses, or answers the warning, when the policy refuses what it finds.
    pub(crate) fn vulnerability_push_gate(
        &self,
        repo: &crate::model::Repository,
        digest: &str,
        manifest: &crate::model::Manifest,
        tagged: bool,
    ) -> Result<Option<String>, Error> {
        if !tagged {
            return Ok(None);
        }
        let r = self.meta.read()?;
        let Some(policy) = POLICIES.get(&*r, repo.feed())? else {
            return Ok(None);
        };
        let Some(gate) = policy.on_push else {
            return Ok(None);
        };
        let mut images: Vec<(String, Vec<String>)> = Vec::new();
        if manifest.children.is_empty() {
            if super::queue::is_image(manifest) {
                let layers = manifest.blobs[1..]
                    .iter()
                    .map(ToString::to_string)
                    .collect();
                images.push((digest.to_owned(), layers));
            }
        } else {
            for child in &manifest.children {
                if let Some(m) = r.manifest(repo.as_str(), child.as_str())?
                    && m.children.is_empty()
                    && m.blobs.len() > 1
                {
                    images.push((child.to_string(), m.blobs[1..].to_vec()));
                }
            }
        }
        let mut findings = Vec::new();
        for (image, layers) in images {
            let sbom = match super::SBOMS.get(&*r, &image)? {
                Some(known) => known,
                None => self.read_layers(&image, &layers, &format!("{repo}@{image}"))?,
            };
            findings.extend(super::Matcher::new(&*r).findings(&sbom)?);
        }
        match refusal(
            &policy,
            &findings,
            repo.feed(),
            &format!("{repo}@{digest}"),
            self.clock.now_ms(),
        ) {
            None => Ok(None),
            Some(why) if gate == PullGate::Refuse => Err(Error::PolicyRefused(why)),
            Some(why) => Ok(Some(why)),
        }
    }
}

/// Feed `feed`'s policy when its virtual tags follow only versions that pass it.
pub(crate) fn skipping(
    r: &(impl MetaRead + ?Sized),
    feed: &str,
) -> Result<Option<VulnPolicy>, Error> {
    Ok(POLICIES.get(r, feed)?.filter(|p| p.virtual_tags))
}

/// Whether virtual tags may follow `repo@digest` under `policy`: read, and nothing it
/// finds refused (an image not read yet is not followed until it is).
pub(crate) fn admits(
    r: &(impl MetaRead + ?Sized),
    policy: &VulnPolicy,
    feed: &str,
    repo: &str,
    digest: &str,
    now_ms: u64,
) -> Result<bool, Error> {
    let report = super::report_in(r, repo, digest)?;
    Ok(report.state == ScanState::Scanned
        && refusal(policy, &report.findings, feed, digest, now_ms).is_none())
}

/// Settles the virtual tags of every repository of `feed` (after its policy, its
/// exceptions or the database changed), in `w`.
pub(crate) fn resettle_feed(
    w: &mut dyn crate::store::meta::MetaWrite,
    feed: &str,
    cause: &crate::domain::tags::Change<'_>,
) -> Result<(), Error> {
    let mut after: Option<String> = None;
    loop {
        let prefix = format!("{feed}/");
        let (page, more) = w.repositories(&prefix, after.as_deref(), 1_000, &|_| true)?;
        for repo in &page {
            crate::domain::tags::recompute_virtual(w, repo, cause)?;
        }
        after = page.last().cloned();
        if !more || after.is_none() {
            return Ok(());
        }
    }
}

/// What a pull of `repo@digest` meets at its feed's vulnerability policy, read in `r`:
/// `None` when it passes, has not been read yet, or the feed does not gate pulls.
pub fn at_pull(
    r: &(impl MetaRead + ?Sized),
    repo: &str,
    feed: &str,
    digest: &str,
    now_ms: u64,
) -> Result<Option<(PullGate, String)>, Error> {
    let Some(policy) = POLICIES.get(r, feed)? else {
        return Ok(None);
    };
    let Some(gate) = policy.on_pull else {
        return Ok(None);
    };
    let report = super::report_in(r, repo, digest)?;
    Ok(refusal(
        &policy,
        &report.findings,
        feed,
        &format!("{repo}@{digest}"),
        now_ms,
    )
    .map(|why| (gate, why)))
}

/// The sentence of a refusal of `image` by `policy`, naming its worst findings; `None`
/// when the policy refuses none of `findings`.
fn refusal(
    policy: &VulnPolicy,
    findings: &[Finding],
    feed: &str,
    image: &str,
    now_ms: u64,
) -> Option<String> {
    let today = day(now_ms);
    let refused = refused(policy, findings, &today);
    if refused.is_empty() {
        return None;
    }
    let worst: Vec<String> = refused.iter().take(3).map(ToString::to_string).collect();
    Some(format!(
        "feed {feed:?} refuses images with {} vulnerabilities{}, and {image} has {}: {}{}; fix them, or accept one with `semdock vuln exception add {feed} ADVISORY --reason … [--expires YYYY-MM-DD]`",
        policy.refuse_at,
        if policy.fixable_only {
            " that have a fix"
        } else {
            " or worse"
        },
        refused.len(),
        worst.join("; "),
        if refused.len() > 3 { " …" } else { "" }
    ))
}

impl Vulns {
    /// Feed `feed`'s vulnerability policy.
    pub fn policy(&self, feed: &str) -> Result<Option<VulnPolicy>, Error> {
        Ok(POLICIES.get(&*self.meta.read()?, feed)?)
    }

    /// Sets (`Some`) or removes feed `feed`'s policy; a policy set keeps the feed's
    /// exceptions (they change one by one); audited.
    pub fn set_policy(
        &self,
        feed: &str,
        wanted: Option<VulnPolicy>,
        actor: &str,
    ) -> Result<Option<VulnPolicy>, Error> {
        self.change(feed, actor, |policy| {
            let Some(mut wanted) = wanted else {
                *policy = None;
                return Ok("vulnerability policy removed".to_owned());
            };
            wanted.exceptions = policy.take().map(|p| p.exceptions).unwrap_or_default();
            let said = format!(
                "vulnerability policy: refuse promotions with {}{}{}",
                wanted.refuse_at,
                if wanted.fixable_only {
                    " with a fix"
                } else {
                    " or worse"
                },
                match wanted.on_pull {
                    Some(PullGate::Refuse) => ", and pulls",
                    Some(PullGate::Warn) => ", and warn at pulls",
                    None => "",
                }
            );
            *policy = Some(wanted);
            Ok(said)
        })
    }

    /// Adds an exception to feed `feed`'s policy; audited.
    pub fn add_exception(
        &self,
        feed: &str,
        mut exception: Exception,
        actor: &str,
    ) -> Result<Option<VulnPolicy>, Error> {
        if exception.reason.trim().is_empty() {
            return Err(Error::Invalid(
                "an exception needs a reason: say why the advisory is accepted".to_owned(),
            ));
        }
        if exception.advisory.trim().is_empty() {
            return Err(Error::Invalid("an exception names an advisory".to_owned()));
        }
        if let Some(e) = &exception.expires {
            check_date(e)?;
        }
        actor.clone_into(&mut exception.added_by);
        exception.added_ms = self.clock.now_ms();
        self.change(feed, actor, |policy| {
            let Some(p) = policy else {
                return Err(Error::Invalid(format!(
                    "feed {feed:?} has no vulnerability policy: set one first (`semdock vuln policy {feed} --refuse-at high`)"
                )));
            };
            p.exceptions.retain(|e| {
                !(e.advisory.eq_ignore_ascii_case(&exception.advisory)
                    && e.package == exception.package)
            });
            let said = format!(
                "vulnerability exception {}{} until {}: {}",
                exception.advisory,
                exception
                    .package
                    .as_deref()
                    .map(|p| format!(" for {p}"))
                    .unwrap_or_default(),
                exception.expires.as_deref().unwrap_or("removed"),
                exception.reason
            );
            p.exceptions.push(exception.clone());
            Ok(said)
        })
    }

    /// Removes feed `feed`'s exceptions for `advisory`; audited.
    pub fn remove_exception(
        &self,
        feed: &str,
        advisory: &str,
        actor: &str,
    ) -> Result<Option<VulnPolicy>, Error> {
        self.change(feed, actor, |policy| {
            let before = policy.as_ref().map_or(0, |p| p.exceptions.len());
            if let Some(p) = policy {
                p.exceptions
                    .retain(|e| !e.advisory.eq_ignore_ascii_case(advisory));
            }
            if policy.as_ref().map_or(0, |p| p.exceptions.len()) == before {
                return Err(Error::NotFound(format!(
                    "feed {feed:?} has no exception for {advisory}"
                )));
            }
            Ok(format!("vulnerability exception {advisory} removed"))
        })
    }

    fn change(
        &self,
        feed: &str,
        actor: &str,
        f: impl FnOnce(&mut Option<VulnPolicy>) -> Result<String, Error>,
    ) -> Result<Option<VulnPolicy>, Error> {
        self.meta.write(|w| {
            if w.feed(feed)?.is_none() {
                return Err(Error::FeedUnknown {
                    feed: feed.to_owned(),
                });
            }
            let mut policy = POLICIES.get(w, feed)?;
            let said = f(&mut policy)?;
            let before = POLICIES.get(w, feed)?.is_some_and(|p| p.virtual_tags);
            match &policy {
                Some(p) => POLICIES.put(w, feed, p)?,
                None => POLICIES.remove(w, feed)?,
            }
            if before || policy.as_ref().is_some_and(|p| p.virtual_tags) {
                let cause = crate::domain::tags::Change {
                    actor,
                    method: "settings",
                    comment: Some(&said),
                    source: None,
                    clock: &self.clock,
                };
                resettle_feed(w, feed, &cause)?;
            }
            audit::append(
                w,
                &self.clock,
                audit::entry(Kind::VulnPolicyChanged, actor, feed, said),
            )?;
            Ok(policy)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(id: &str, severity: Severity, fixed: Option<&str>) -> Finding {
        Finding {
            advisory: id.into(),
            aliases: vec![format!("CVE-{id}")],
            severity,
            summary: None,
            package: "libc6".into(),
            kind: super::super::sbom::Kind::Deb,
            installed: "1".into(),
            fixed: fixed.map(str::to_owned),
            link: None,
        }
    }

    #[test]
    fn exceptions_count_until_they_expire() {
        let mut policy = VulnPolicy {
            refuse_at: Severity::High,
            fixable_only: false,
            on_push: None,
            on_pull: None,
            virtual_tags: false,
            exceptions: vec![],
        };
        let findings = [
            finding("A", Severity::Critical, Some("2")),
            finding("B", Severity::Medium, Some("2")),
            finding("C", Severity::High, None),
        ];
        assert_eq!(refused(&policy, &findings, "2026-12-07").len(), 2);
        policy.fixable_only = true;
        assert_eq!(refused(&policy, &findings, "2026-12-07").len(), 1);
        policy.exceptions.push(Exception {
            advisory: "cve-A".into(),
            package: None,
            expires: Some("2026-12-31".into()),
            reason: "not reachable".into(),
            added_by: "a".into(),
            added_ms: 0,
        });
        assert!(refused(&policy, &findings, "2026-12-31").is_empty());
        assert_eq!(refused(&policy, &findings, "2027-01-01").len(), 1);
        assert!(check_date("2026-1-01").is_err());
    }
}
