//! Retention rules per feed: untagged manifests, old pre-releases, images nobody pulls.
//!
//! A run first plans — a list of exact deletions, which a dry run returns as is — then applies
//! the plan in one write transaction through the same path as a user's delete (history,
//! tombstones, virtual tags recomputed), skipping any entry that stopped being true meanwhile.
//! Released versions of a versioned feed are deleted only when the rules say so explicitly.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::{Deserialize, Serialize};

use super::lock;
use super::registry::remove_manifest;
use super::tags::{self, Change};
use super::versioning::{is_virtual, version_of};
use super::{Error, Maintenance};
use crate::model::{FeedName, Repository};
use crate::store::meta::{ManifestRecord, MetaRead, RetentionRecord};

const DAY: u64 = 86_400;

/// A feed's retention rules; an absent rule is off.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rules {
    /// Delete manifests that no tag reaches (directly, as an index child, or as a referrer of
    /// a tagged image) after this many days.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub untagged_days: Option<u32>,
    /// Keep only this many newest pre-release versions per repository (SemVer precedence).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_prereleases: Option<u32>,
    /// Delete images neither pulled nor pushed for this many days.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unpulled_days: Option<u32>,
    /// Let the unpulled rule delete released versions of a versioned feed too.
    #[serde(default)]
    pub include_releases: bool,
}

impl Rules {
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.untagged_days.is_none()
            && self.keep_prereleases.is_none()
            && self.unpulled_days.is_none()
    }
}

impl From<RetentionRecord> for Rules {
    fn from(r: RetentionRecord) -> Self {
        Self {
            untagged_days: r.untagged_days,
            keep_prereleases: r.keep_prereleases,
            unpulled_days: r.unpulled_days,
            include_releases: r.include_releases,
        }
    }
}

impl From<&Rules> for RetentionRecord {
    fn from(r: &Rules) -> Self {
        Self {
            untagged_days: r.untagged_days,
            keep_prereleases: r.keep_prereleases,
            unpulled_days: r.unpulled_days,
            include_releases: r.include_releases,
        }
    }
}

/// One deletion a retention run makes: a tag, or (without one) a manifest.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Deletion {
    pub repository: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    pub digest: String,
    /// `untagged`, `prerelease` or `unpulled`.
    pub rule: String,
}

/// What a retention run deleted (or, dry, would delete).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetentionReport {
    pub feed: String,
    pub dry_run: bool,
    pub deletions: Vec<Deletion>,
}

/// The manifests of a repository that its tags keep: tag targets, their index children
/// (recursively) and the referrers of anything kept.
fn kept<'a>(
    manifests: &'a HashMap<String, ManifestRecord>,
    roots: impl IntoIterator<Item = &'a str>,
) -> HashSet<&'a str> {
    let mut keep: HashSet<&str> = HashSet::new();
    let mut pending: Vec<&str> = roots.into_iter().collect();
    loop {
        while let Some(d) = pending.pop() {
            if let Some((k, m)) = manifests.get_key_value(d)
                && keep.insert(k.as_str())
            {
                pending.extend(m.children.iter().map(String::as_str));
            }
        }
        for (digest, m) in manifests {
            if !keep.contains(digest.as_str())
                && m.subject.as_deref().is_some_and(|s| keep.contains(s))
            {
                pending.push(digest);
            }
        }
        if pending.is_empty() {
            return keep;
        }
    }
}

impl Maintenance<'_> {
    /// The retention rules of `feed`.
    pub fn retention(&self, feed: &str) -> Result<Rules, Error> {
        let r = self.state.meta.read()?;
        if r.feed(feed)?.is_none() {
            return Err(Error::FeedUnknown {
                feed: feed.to_owned(),
            });
        }
        Ok(r.retention(feed)?.map(Rules::from).unwrap_or_default())
    }

    /// Replaces the retention rules of `feed`; recorded in the feed's audit log.
    pub fn set_retention(&self, feed: &str, rules: &Rules, actor: &str) -> Result<(), Error> {
        self.state.meta.write(|w| {
            if w.feed(feed)?.is_none() {
                return Err(Error::FeedUnknown {
                    feed: feed.to_owned(),
                });
            }
            if rules.is_empty() {
                w.remove_retention(feed)?;
            } else {
                w.put_retention(feed, &rules.into())?;
            }
            let change = format!(
                "retention rules: {}",
                serde_json::to_string(rules).unwrap_or_default()
            );
            crate::domain::audit::append(
                w,
                &self.state.clock,
                crate::domain::audit::entry(
                    crate::domain::audit::Kind::RetentionRules,
                    actor,
                    feed,
                    change,
                ),
            )?;
            Ok(())
        })
    }

    /// Notes that a manifest was pulled. Kept in memory and written in batches by
    /// [`Maintenance::flush_pulls`]: a pull never waits for a disk write.
    pub fn record_pull(&self, repo: &Repository, digest: &str) {
        crate::metrics::get()
            .pulls
            .get_or_create(&crate::metrics::Metrics::feed(repo.feed()))
            .inc();
        let at = self.state.clock.now();
        let mut pulls = lock(&self.state.pulls);
        // The same image pulled again within the batch costs two lookups, no allocation.
        if let Some(t) = pulls.get_mut(repo.as_str()).and_then(|d| d.get_mut(digest)) {
            *t = at;
            return;
        }
        pulls
            .entry(repo.to_string())
            .or_default()
            .insert(digest.to_owned(), at);
    }

    /// Writes the pull times noted since the last flush, in one transaction.
    pub fn flush_pulls(&self) -> Result<usize, Error> {
        let batch = std::mem::take(&mut *lock(&self.state.pulls));
        if batch.is_empty() {
            return Ok(0);
        }
        self.state.meta.write(|w| {
            for (repo, digests) in &batch {
                for (digest, at) in digests {
                    if w.has_manifest(repo, digest)? {
                        w.set_pull(repo, digest, *at)?;
                    }
                }
            }
            Ok::<_, Error>(())
        })?;
        Ok(batch.values().map(HashMap::len).sum())
    }

    /// [`Maintenance::run_retention`], recorded in the audit log as run by `actor` (unless dry;
    /// each deletion is recorded too, as it commits).
    pub fn run_retention_by(
        &self,
        feed: &str,
        dry_run: bool,
        actor: &str,
    ) -> Result<RetentionReport, Error> {
        let report = self.run_retention(feed, dry_run)?;
        if !dry_run {
            let change = format!(
                "retention run deleted {} tags or images",
                report.deletions.len()
            );
            self.registry
                .feeds()
                .audit_alone(crate::domain::audit::entry(
                    crate::domain::audit::Kind::RetentionRun,
                    actor,
                    feed,
                    change,
                ))?;
        }
        Ok(report)
    }

    /// Applies (or, dry, lists) the retention rules of `feed`.
    pub fn run_retention(&self, feed: &str, dry_run: bool) -> Result<RetentionReport, Error> {
        self.run_retention_at(feed, dry_run, self.state.clock.now())
    }

    /// [`Maintenance::run_retention`] as if the time were `now` (Unix seconds): what-if runs, and
    /// tests that cannot wait days.
    pub fn run_retention_at(
        &self,
        feed: &str,
        dry_run: bool,
        now: u64,
    ) -> Result<RetentionReport, Error> {
        let _one = self.one_job()?;
        let name: FeedName = feed.parse()?;
        self.flush_pulls()?;
        let deletions = self.plan(name.as_str(), now)?;
        if !dry_run {
            lock(&self.state.last_retention)
                .insert(name.to_string(), (now, deletions.len() as u64));
        }
        if !dry_run && !deletions.is_empty() {
            self.apply(&name, &deletions)?;
            tracing::info!(feed, deletions = deletions.len(), "retention rules applied");
        }
        Ok(RetentionReport {
            feed: feed.to_owned(),
            dry_run,
            deletions,
        })
    }

    /// Each feed's last real retention run since the start: (feed, when, deletions).
    #[must_use]
    pub fn last_retention(&self) -> Vec<(String, u64, u64)> {
        lock(&self.state.last_retention)
            .iter()
            .map(|(feed, (at, n))| (feed.clone(), *at, *n))
            .collect()
    }

    /// Feeds that have retention rules.
    pub fn feeds_with_retention(&self) -> Result<Vec<String>, Error> {
        let r = self.state.meta.read()?;
        let mut out = Vec::new();
        for (name, _) in r.feeds()? {
            if r.retention(&name)?.is_some() {
                out.push(name);
            }
        }
        Ok(out)
    }

    fn plan(&self, feed: &str, now: u64) -> Result<Vec<Deletion>, Error> {
        let r = self.state.meta.read()?;
        let record = r.feed(feed)?.ok_or_else(|| Error::FeedUnknown {
            feed: feed.to_owned(),
        })?;
        let Some(rules) = r.retention(feed)?.map(Rules::from) else {
            return Ok(Vec::new());
        };
        let prefix = format!("{feed}/");
        let (repos, _) = r.repositories(&prefix, None, usize::MAX, &|_| true)?;
        let mut out = Vec::new();
        for repo in repos {
            plan_repository(&*r, &repo, record.versioning, &rules, now, &mut out)?;
        }
        Ok(out)
    }

    fn apply(&self, feed: &FeedName, deletions: &[Deletion]) -> Result<(), Error> {
        self.state.meta.write(|w| {
            let record = w.feed(feed.as_str())?.ok_or_else(|| Error::FeedUnknown {
                feed: feed.to_string(),
            })?;
            for d in deletions {
                let repo: Repository = d.repository.parse()?;
                let comment = format!("retention rule {}", d.rule);
                let change = Change {
                    actor: "retention",
                    clock: &self.state.clock,
                    method: "retention",
                    comment: Some(&comment),
                    source: None,
                };
                match &d.tag {
                    Some(tag) => {
                        if w.tag(repo.as_str(), tag)?.as_deref() == Some(d.digest.as_str()) {
                            tags::remove(w, &repo, &record, tag, &change)?;
                        }
                    }
                    None => {
                        remove_manifest(w, &repo, &record, &d.digest, &change)?;
                    }
                }
            }
            Ok(())
        })
    }
}

fn plan_repository(
    r: &dyn MetaRead,
    repo: &str,
    versioning: bool,
    rules: &Rules,
    now: u64,
    out: &mut Vec<Deletion>,
) -> Result<(), Error> {
    let manifests: HashMap<String, ManifestRecord> = r.manifests_of(repo)?.into_iter().collect();
    // Virtual tags of a versioned feed follow the versions: they never keep an image alive.
    let tags: BTreeMap<String, String> = r
        .tag_targets(repo)?
        .into_iter()
        .filter(|(t, _)| !(versioning && is_virtual(t)))
        .collect();
    let before = kept(&manifests, tags.values().map(String::as_str));
    let mut doomed_tags: BTreeMap<String, &str> = BTreeMap::new();

    if let Some(keep) = rules.keep_prereleases {
        let mut pre: Vec<_> = tags
            .iter()
            .filter_map(|(t, d)| {
                version_of(t)
                    .filter(|v| !v.pre.is_empty())
                    .map(|v| (v, t, d))
            })
            .collect();
        pre.sort_by(|a, b| b.0.cmp(&a.0));
        for (_, tag, _) in pre.into_iter().skip(keep as usize) {
            doomed_tags.insert(tag.clone(), "prerelease");
        }
    }
    if let Some(days) = rules.unpulled_days {
        let cutoff = now.saturating_sub(u64::from(days) * DAY);
        for (tag, digest) in &tags {
            let released = version_of(tag).is_some_and(|v| v.pre.is_empty());
            if versioning && released && !rules.include_releases {
                continue;
            }
            let pushed = manifests.get(digest).map_or(0, |m| m.created);
            let pulled = r.last_pull(repo, digest)?.unwrap_or(0);
            if pushed.max(pulled) < cutoff {
                doomed_tags.entry(tag.clone()).or_insert("unpulled");
            }
        }
    }
    for (tag, rule) in &doomed_tags {
        out.push(Deletion {
            repository: repo.to_owned(),
            tag: Some(tag.clone()),
            digest: tags[tag].clone(),
            rule: (*rule).to_owned(),
        });
    }

    // Manifests the deleted tags leave unreachable go with them; long-untagged ones by rule.
    let after = kept(
        &manifests,
        tags.iter()
            .filter(|(t, _)| !doomed_tags.contains_key(*t))
            .map(|(_, d)| d.as_str()),
    );
    // What each deleted tag kept, computed once: its manifests go under its rule.
    let kept_by: Vec<(HashSet<&str>, &str)> = doomed_tags
        .iter()
        .map(|(t, rule)| (kept(&manifests, [tags[t].as_str()]), *rule))
        .collect();
    let untagged_cutoff = rules
        .untagged_days
        .map(|days| now.saturating_sub(u64::from(days) * DAY));
    let mut manifest_deletions: Vec<Deletion> = manifests
        .iter()
        .filter(|(d, _)| !after.contains(d.as_str()))
        .filter_map(|(digest, m)| {
            let rule = if before.contains(digest.as_str()) {
                // Reachable before this run: goes with the tag that kept it.
                kept_by
                    .iter()
                    .find(|(closure, _)| closure.contains(digest.as_str()))
                    .map_or("unpulled", |(_, rule)| *rule)
            } else if untagged_cutoff.is_some_and(|c| m.created < c) {
                "untagged"
            } else {
                return None;
            };
            Some(Deletion {
                repository: repo.to_owned(),
                tag: None,
                digest: digest.clone(),
                rule: rule.to_owned(),
            })
        })
        .collect();
    manifest_deletions.sort();
    out.extend(manifest_deletions);
    Ok(())
}
