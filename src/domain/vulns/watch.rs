//! `VulnerabilityFound`: after an import, every released version is matched again, and in a
//! watched feed (one with a vulnerability policy) an advisory that now affects it and did
//! not before is recorded in the audit log — so webhooks subscribed to the event hear
//! of it. What each image was known to carry is kept per digest (`vuln-known:`), set when
//! the image is first read and after every import; an image without that record (read
//! before this was kept) gets one without an event.

use std::collections::BTreeSet;

use super::{Matcher, Vulns};
use crate::domain::Error;
use crate::domain::audit::{self, Kind};
use crate::domain::versioning::version_of;
use crate::store::meta::MetaRead;
use crate::store::meta::settings::{Family, Json};

/// image digest → the advisories it was last known to carry.
pub(crate) const KNOWN: Family<Json<Vec<String>>> =
    Family::keyed("vuln-known:", "advisories an image was known to carry");

/// One released version the latest import found newly affected.
struct Found {
    repository: String,
    version: String,
    digest: String,
    advisories: Vec<String>,
    sentence: String,
    known: Vec<String>,
}

impl Vulns {
    /// Matches every released version of the watched feeds again after an import; records
    /// a `VulnerabilityFound` audit entry per version newly affected. Answers how many.
    pub(crate) fn watch(&self, actor: &str) -> Result<usize, Error> {
        let r = self.meta.read()?;
        let mut matcher = Matcher::new(&*r);
        let mut found: Vec<Found> = Vec::new();
        let mut baselines: Vec<(String, Vec<String>)> = Vec::new();
        let mut seen = BTreeSet::new();
        // Every feed's versions keep what they are known to carry current; the watched
        // feeds' are told.
        for (feed, _) in r.feeds()? {
            let watched = super::gate::POLICIES.exists(&*r, &feed)?;
            let mut after: Option<String> = None;
            loop {
                let prefix = format!("{feed}/");
                let (page, more) = r.repositories(&prefix, after.as_deref(), 1_000, &|_| true)?;
                for repo in &page {
                    for (tag, digest) in r.tag_targets(repo)? {
                        if version_of(&tag).is_none() {
                            continue;
                        }
                        let report = matcher.report(repo, &digest)?;
                        if report.state != super::ScanState::Scanned {
                            continue;
                        }
                        let now: Vec<String> = report
                            .findings
                            .iter()
                            .map(|f| f.advisory.clone())
                            .collect::<BTreeSet<_>>()
                            .into_iter()
                            .collect();
                        let Some(known) = KNOWN.get(&*r, &digest)? else {
                            if seen.insert(digest.clone()) {
                                baselines.push((digest, now));
                            }
                            continue;
                        };
                        let new: Vec<&super::Finding> = report
                            .findings
                            .iter()
                            .filter(|f| !known.contains(&f.advisory))
                            .collect();
                        if new.is_empty() || !seen.insert(digest.clone()) && !watched {
                            continue;
                        }
                        if !watched {
                            baselines.push((digest, now));
                            continue;
                        }
                        let sentence = sentence(&new);
                        found.push(Found {
                            repository: repo.clone(),
                            version: tag,
                            digest,
                            advisories: new.iter().map(|f| f.advisory.clone()).collect(),
                            sentence,
                            known: now,
                        });
                    }
                }
                after = page.last().cloned();
                if !more || after.is_none() {
                    break;
                }
            }
        }
        drop(matcher);
        drop(r);
        let skipping: Vec<String> = super::gate::POLICIES
            .all(&*self.meta.read()?)?
            .into_iter()
            .filter(|(_, p)| p.virtual_tags)
            .map(|(feed, _)| feed)
            .collect();
        if found.is_empty() && baselines.is_empty() && skipping.is_empty() {
            return Ok(0);
        }
        let n = found.len();
        self.record(&found, &baselines, &skipping, actor)?;
        Ok(n)
    }
}

impl Vulns {
    fn record(
        &self,
        found: &[Found],
        baselines: &[(String, Vec<String>)],
        skipping: &[String],
        actor: &str,
    ) -> Result<(), Error> {
        self.meta.write(|w| -> Result<(), Error> {
            // Virtual tags that follow only vetted versions leave the newly affected ones.
            let cause = crate::domain::tags::Change {
                actor,
                method: "settings",
                comment: Some("the vulnerability database changed"),
                source: None,
                clock: &self.clock,
            };
            for feed in skipping {
                super::gate::resettle_feed(w, feed, &cause)?;
            }
            for (digest, now) in baselines {
                KNOWN.put(w, digest, now)?;
            }
            for f in found {
                KNOWN.put(w, &f.digest, &f.known)?;
                let feed = f.repository.split('/').next().unwrap_or_default();
                let mut entry = audit::entry(
                    Kind::VulnerabilityFound,
                    actor,
                    feed,
                    format!(
                        "{}:{} is affected by {}: {}",
                        f.repository,
                        f.version,
                        f.advisories.join(", "),
                        f.sentence
                    ),
                );
                entry.repository = Some(f.repository.clone());
                entry.tag = Some(f.version.clone());
                entry.digest = Some(f.digest.clone());
                audit::append(w, &self.clock, entry)?;
            }
            Ok(())
        })
    }
}

/// The findings `new`, in a sentence.
fn sentence(new: &[&super::Finding]) -> String {
    new.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// What `digest` carries now, as its first known state: written when it is first read.
pub(crate) fn baseline(
    r: &(impl MetaRead + ?Sized),
    sbom: &super::Sbom,
) -> Result<Vec<String>, Error> {
    Ok(Matcher::new(r)
        .findings(sbom)?
        .into_iter()
        .map(|f| f.advisory)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect())
}
