//! Sync: a connector feed fetching ahead of pulls — the tags of upstream repositories that
//! its rules name (a glob, or a SemVer requirement such as `^1` for every stable 1.x), with
//! their index children and blobs, through the same path a pull takes (digests checked,
//! versions pinned, drift recorded). This is how an air-gapped site is filled before it is
//! cut off. Runs on demand and every `sync_interval_seconds` on the node holding the sync
//! lock; the last run's report is a setting (`connector-sync:FEED`), so every node and
//! every backup sees it.

use crate::store::meta::settings::{Family, Json};
use serde::{Deserialize, Serialize};

use crate::domain::Error;
use crate::domain::versioning::{glob_matches, version_of};
use crate::model::manifest::Manifest;
use crate::model::{Digest, Reference, Repository};
use crate::store::meta::{FeedRecord, SyncRule, UpstreamRecord};

use super::{Connector, Registry, StoredManifest};

/// feed → the last sync report of a connector feed, in the settings table.
pub(crate) const REPORTS: Family<Json<SyncReport>> =
    Family::keyed("connector-sync:", "connector sync report");
/// Held by the node running scheduled syncs.
const SYNC_LOCK: i64 = 0x5e3d_0c05;
/// Errors kept in a report.
const MAX_ERRORS: usize = 50;

/// What one sync of a connector feed did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncReport {
    /// Unix milliseconds.
    pub started_ms: u64,
    pub finished_ms: u64,
    /// Tags that matched a rule and are now held.
    pub tags: usize,
    /// Blobs fetched from the upstream (the others were held already).
    pub blobs_fetched: usize,
    /// Tag history records carried from an upstream semdock, for tags first seen.
    #[serde(default)]
    pub history_carried: usize,
    /// What could not be fetched, one sentence each (the first 50).
    pub errors: Vec<String>,
}

/// A selector as connector syncs and replication filters write it — `REPOSITORY`,
/// `REPOSITORY:TAG-GLOB` or `REPOSITORY@SEMVER-REQUIREMENT` — split into the repository, the
/// tag glob (`*` for a requirement) and the requirement; `globs` lets the repository hold
/// `*`. The error is why it is not one.
pub(crate) fn split_selector(
    text: &str,
    globs: bool,
) -> Result<(&str, &str, Option<semver::VersionReq>), String> {
    let (repository, tags, versions) = if let Some((r, req)) = text.split_once('@') {
        let req = semver::VersionReq::parse(req).map_err(|e| e.to_string())?;
        (r, "*", Some(req))
    } else if let Some((r, glob)) = text.split_once(':') {
        (r, glob, None)
    } else {
        (text, "*", None)
    };
    let allowed = if globs { "._-*" } else { "._-" };
    let component = |c: &str| {
        !c.is_empty()
            && c.chars()
                .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || allowed.contains(ch))
    };
    if tags.is_empty() || !repository.split('/').all(component) {
        return Err("not a repository name".to_owned());
    }
    Ok((repository, tags, versions))
}

/// `REPOSITORY`, `REPOSITORY:GLOB` or `REPOSITORY@REQUIREMENT`, as the API, CLI and UI write
/// a rule.
pub fn parse_rule(text: &str) -> Result<SyncRule, Error> {
    let text = text.trim();
    let (repository, tags, versions) = split_selector(text, false).map_err(|why| {
        Error::Invalid(format!(
            "sync rule {text:?}: {why}; write REPOSITORY, REPOSITORY:GLOB or REPOSITORY@SEMVER-REQUIREMENT (library/postgres@^16)"
        ))
    })?;
    Ok(SyncRule {
        repository: repository.to_owned(),
        tags: tags.to_owned(),
        versions: versions.map(|_| text.split_once('@').map_or("", |(_, r)| r).to_owned()),
    })
}

/// A rule as `parse_rule` reads it.
#[must_use]
pub fn format_rule(r: &SyncRule) -> String {
    match &r.versions {
        Some(req) => format!("{}@{req}", r.repository),
        None if r.tags == "*" => r.repository.clone(),
        None => format!("{}:{}", r.repository, r.tags),
    }
}

fn selects(rule: &SyncRule, tag: &str) -> bool {
    if !glob_matches(&rule.tags, tag) {
        return false;
    }
    match &rule.versions {
        None => true,
        Some(req) => match (semver::VersionReq::parse(req), version_of(tag)) {
            (Ok(req), Some(v)) => req.matches(&v),
            _ => false,
        },
    }
}

impl Registry {
    /// Feed `feed`'s record, or `FeedUnknown`.
    pub(super) fn feed_record(&self, feed: &str) -> Result<FeedRecord, Error> {
        self.meta
            .read()?
            .feed(feed)?
            .ok_or_else(|| Error::FeedUnknown {
                feed: feed.to_owned(),
            })
    }

    fn sync_rule(
        &self,
        feed: &str,
        record: &FeedRecord,
        up: &UpstreamRecord,
        rule: &SyncRule,
        report: &mut SyncReport,
    ) {
        let image = rule
            .repository
            .strip_prefix(&up.prefix)
            .unwrap_or(&rule.repository);
        let repo: Repository = match format!("{feed}/{image}").parse() {
            Ok(r) => r,
            Err(e) => return report.errors.push(format!("{}: {e}", rule.repository)),
        };
        let client = self.upstream_client(feed, up);
        let tags = match client.tags(&rule.repository) {
            Ok(Some(tags)) => tags,
            Ok(None) => {
                return report.errors.push(format!(
                    "{}: the upstream has no such repository",
                    rule.repository
                ));
            }
            Err(e) => return report.errors.push(format!("{}: {e}", rule.repository)),
        };
        for tag in tags.iter().filter(|t| selects(rule, t)) {
            let Ok(reference) = tag.parse::<Reference>() else {
                continue;
            };
            let held = self
                .meta
                .read()
                .and_then(|r| r.tag(repo.as_str(), tag))
                .is_ok_and(|t| t.is_some());
            if !held {
                report.history_carried += self.carry_history(&repo, tag, &client, rule, &up.url);
            }
            match super::after_flights(|| self.connector_manifest(&repo, &reference, record, up))
                .and_then(|m| self.sync_content(&repo, &m, record, up, report, 0))
            {
                Ok(()) => report.tags += 1,
                Err(e) => report.errors.push(format!("{repo}:{tag}: {e}")),
            }
        }
    }

    /// Copies the history of `tag` from an upstream semdock into `repo`'s, oldest first,
    /// before the tag is first set here: who pushed and promoted it there, and when.
    /// Answers how many records were carried (none from other registries).
    fn carry_history(
        &self,
        repo: &Repository,
        tag: &str,
        client: &crate::clients::registry::Upstream,
        rule: &SyncRule,
        url: &str,
    ) -> usize {
        let Some(entries) = client.history(&rule.repository, tag) else {
            return 0;
        };
        let host = url.split_once("://").map_or(url, |(_, h)| h);
        let records: Vec<crate::store::meta::HistoryRecord> = entries
            .iter()
            .rev()
            .filter_map(|e| {
                let time = humantime::parse_rfc3339(e["time"].as_str()?).ok()?;
                let text = |k: &str| e[k].as_str().map(str::to_owned);
                Some(crate::store::meta::HistoryRecord {
                    time_ms: time
                        .duration_since(std::time::UNIX_EPOCH)
                        .ok()
                        .and_then(|d| u64::try_from(d.as_millis()).ok())?,
                    old: text("old"),
                    new: text("new"),
                    actor: format!("{}@{host}", e["actor"].as_str()?),
                    method: e["method"].as_str()?.to_owned(),
                    comment: Some(match text("comment") {
                        Some(c) => format!("carried from {url}: {c}"),
                        None => format!("carried from {url}"),
                    }),
                })
            })
            .collect();
        let written = self.meta.write(|w| {
            for r in &records {
                w.append_history(repo.as_str(), tag, r)?;
            }
            Ok::<_, Error>(records.len())
        });
        written.unwrap_or_else(|e| {
            tracing::warn!(repository = %repo, tag, error = %e, "could not carry the upstream's tag history");
            0
        })
    }

    /// Fetches the index children and blobs of manifest `m` that `repo` lacks.
    fn sync_content(
        &self,
        repo: &Repository,
        m: &StoredManifest,
        record: &FeedRecord,
        up: &UpstreamRecord,
        report: &mut SyncReport,
        depth: usize,
    ) -> Result<(), Error> {
        let parsed = Manifest::parse(&m.body, Some(&m.media_type))?;
        if depth < 4 {
            for child in &parsed.children {
                let child = Reference::Digest(child.clone());
                let c = super::after_flights(|| self.connector_manifest(repo, &child, record, up))?;
                self.sync_content(repo, &c, record, up, report, depth + 1)?;
            }
        }
        for blob in &parsed.blobs {
            report.blobs_fetched += usize::from(self.sync_blob(repo, blob)?);
        }
        Ok(())
    }

    /// Whether blob `digest` had to be fetched for `repo`.
    fn sync_blob(&self, repo: &Repository, digest: &Digest) -> Result<bool, Error> {
        if self
            .meta
            .read()?
            .is_linked(repo.as_str(), digest.as_str())?
        {
            return Ok(false);
        }
        match super::after_flights(|| self.connector().blob(repo, digest))? {
            Some(fetch) => {
                self.connector().fetch_blob(fetch, digest)?;
                Ok(true)
            }
            None => Ok(false),
        }
    }
}

impl Connector<'_> {
    /// Fetches what the sync rules of connector feed `feed` name, now; records and answers
    /// the report. Callers authorize (feed admin) or schedule.
    pub fn sync(&self, feed: &str) -> Result<SyncReport, Error> {
        let record = self.registry.feed_record(feed)?;
        let up = record.upstream.clone().ok_or_else(|| {
            Error::Invalid(format!(
                "feed {feed:?} is not a connector feed: nothing to sync"
            ))
        })?;
        if up.offline {
            return Err(Error::Invalid(format!(
                "connector feed {feed:?} is offline: it asks its upstream nothing"
            )));
        }
        let mut report = SyncReport {
            started_ms: self.registry.clock.now_ms(),
            ..SyncReport::default()
        };
        for rule in &up.sync {
            self.registry
                .sync_rule(feed, &record, &up, rule, &mut report);
        }
        report.finished_ms = self.registry.clock.now_ms();
        report.errors.truncate(MAX_ERRORS);
        self.registry
            .meta
            .write(|w| REPORTS.put(w, feed, &report))?;
        tracing::info!(
            feed,
            tags = report.tags,
            blobs = report.blobs_fetched,
            errors = report.errors.len(),
            "connector sync done"
        );
        Ok(report)
    }

    /// The last sync report of connector feed `feed`, if it ever ran.
    pub fn sync_status(&self, feed: &str) -> Result<Option<SyncReport>, Error> {
        self.registry.feed_record(feed)?;
        Ok(REPORTS.get(&*self.registry.meta.read()?, feed)?)
    }

    /// Runs the syncs that are due (their interval passed since the last run), on the node
    /// holding the sync lock; the others return at once. Answers how many ran.
    pub fn sync_due(&self) -> Result<usize, Error> {
        let Some(_lock) = self.registry.meta.try_exclusive(SYNC_LOCK)? else {
            return Ok(0);
        };
        let due: Vec<String> = self
            .registry
            .meta
            .read()?
            .feeds()?
            .into_iter()
            .filter_map(|(name, f)| {
                let up = f.upstream?;
                (!up.sync.is_empty() && up.sync_interval_seconds > 0 && !up.offline)
                    .then_some((name, up.sync_interval_seconds))
            })
            .filter(|(name, interval)| {
                let last = self.sync_status(name).ok().flatten();
                last.is_none_or(|l| {
                    self.registry.clock.now_ms().saturating_sub(l.started_ms) >= interval * 1000
                })
            })
            .map(|(name, _)| name)
            .collect();
        for feed in &due {
            if let Err(e) = self.sync(feed) {
                tracing::warn!(feed, error = %e, "connector sync failed");
            }
        }
        Ok(due.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_read_as_they_are_written() {
        for text in [
            "library/postgres",
            "library/postgres:16.*",
            "library/postgres@^16",
        ] {
            assert_eq!(format_rule(&parse_rule(text).unwrap()), text);
        }
        assert!(parse_rule("library/postgres@not a req").is_err());
        assert!(parse_rule("library/*").is_err());
        assert!(parse_rule("").is_err());
        let stable_one = parse_rule("library/postgres@^1").unwrap();
        assert!(selects(&stable_one, "1.4.2"));
        assert!(!selects(&stable_one, "1.5.0-rc.1"));
        assert!(!selects(&stable_one, "2.0.0"));
        assert!(!selects(&stable_one, "latest"));
        let glob = parse_rule("library/postgres:1.*").unwrap();
        assert!(selects(&glob, "1.5.0-rc.1"));
        assert!(!selects(&glob, "edge"));
    }
}
