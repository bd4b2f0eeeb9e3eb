//! Online garbage collection: blob files no manifest references, and abandoned uploads.
//!
//! Marking reads one snapshot; the sweep removes blob records and links in one write
//! transaction, and blob files only after that commit. A push racing the sweep is safe twice
//! over: blobs younger than the grace period are never candidates, and every digest an upload,
//! mount or manifest push touches while a collection runs is taken out of its hands.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;

use super::{Error, Registry};
use crate::model::Digest;
use crate::store::now;

/// Digests a running collection must leave alone.
#[derive(Debug, Default)]
pub struct Watch {
    running: bool,
    touched: HashSet<String>,
}

/// How a collection runs.
#[derive(Debug, Clone, Copy)]
pub struct GcOptions {
    /// Unreferenced blobs younger than this are kept: a push may be about to reference them.
    pub grace: Duration,
    /// Upload sessions without a byte for this long are abandoned.
    pub upload_expiry: Duration,
    /// Upload sessions that never received a byte are abandoned after this long.
    pub empty_upload_expiry: Duration,
    /// Report what would go, change nothing.
    pub dry_run: bool,
}

/// What a collection removed (or, in a dry run, would remove).
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct GcReport {
    pub dry_run: bool,
    /// Unix seconds.
    pub started: u64,
    pub seconds: f64,
    /// Blobs no manifest references, older than the grace period.
    pub blobs_removed: u64,
    pub bytes_freed: u64,
    /// Blob files without a record (left by a crash between publish and commit).
    pub orphan_files: u64,
    /// Abandoned upload sessions and upload files without a session.
    pub uploads_expired: u64,
    /// The digests of the blobs removed.
    pub removed: Vec<String>,
}

/// Progress of a long job: phase, done, total.
pub type Progress<'a> = &'a (dyn Fn(&str, u64, u64) + Sync);

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section is a few inserts or a swap: a panic cannot leave it half done.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn age_secs(t: SystemTime) -> u64 {
    SystemTime::now()
        .duration_since(t)
        .map_or(0, |d| d.as_secs())
}

impl Registry {
    /// Notes digests a push is about to use, so that a running collection keeps them.
    pub(super) fn gc_touch<'a>(&self, digests: impl IntoIterator<Item = &'a str>) {
        let mut watch = lock(&self.gc_watch);
        if watch.running {
            watch.touched.extend(digests.into_iter().map(str::to_owned));
        }
    }

    /// The report of the last collection that changed something.
    #[must_use]
    pub fn last_gc(&self) -> Option<GcReport> {
        lock(&self.last_gc).clone()
    }

    /// Collects garbage while the registry serves. One maintenance job runs at a time.
    pub fn gc(&self, opts: GcOptions, progress: Progress<'_>) -> Result<GcReport, Error> {
        let _one = lock(&self.maintenance);
        let started = Instant::now();
        {
            let mut watch = lock(&self.gc_watch);
            watch.running = true;
            watch.touched.clear();
        }
        let result = self.collect(opts, progress);
        {
            let mut watch = lock(&self.gc_watch);
            watch.running = false;
            watch.touched.clear();
        }
        let mut report = result?;
        report.seconds = started.elapsed().as_secs_f64();
        tracing::info!(
            dry_run = report.dry_run,
            blobs = report.blobs_removed,
            bytes = report.bytes_freed,
            orphans = report.orphan_files,
            uploads = report.uploads_expired,
            seconds = report.seconds,
            "garbage collection finished"
        );
        if !opts.dry_run {
            *lock(&self.last_gc) = Some(report.clone());
        }
        Ok(report)
    }

    fn collect(&self, opts: GcOptions, progress: Progress<'_>) -> Result<GcReport, Error> {
        let started = now();
        let cutoff = started.saturating_sub(opts.grace.as_secs());
        let mut report = GcReport {
            dry_run: opts.dry_run,
            started,
            ..GcReport::default()
        };
        report.uploads_expired = self.expire_uploads(opts)?;

        // Mark: every blob a manifest references, and when each blob was last linked.
        progress("mark", 0, 0);
        let r = self.meta.read()?;
        let mut referenced = HashSet::new();
        r.each_manifest(|_, _, m| referenced.extend(m.blobs))?;
        let mut links: HashMap<String, (u64, Vec<String>)> = HashMap::new();
        for (repo, digest, at) in r.links()? {
            let entry = links.entry(digest).or_default();
            entry.0 = entry.0.max(at);
            entry.1.push(repo);
        }
        let records: HashMap<String, u64> = r
            .blobs()?
            .into_iter()
            .map(|(d, b)| (d, b.created))
            .collect();
        drop(r);
        let mut doomed: Vec<String> = records
            .iter()
            .filter(|(digest, created)| {
                !referenced.contains(*digest)
                    && **created < cutoff
                    && links.get(*digest).is_none_or(|(at, _)| *at < cutoff)
            })
            .map(|(d, _)| d.clone())
            .collect();
        doomed.sort();
        let files = self.blobs.blob_files()?;
        let sizes: HashMap<String, u64> = files
            .iter()
            .map(|f| (f.digest.to_string(), f.len))
            .collect();
        let orphans: Vec<Digest> = files
            .into_iter()
            .filter(|f| {
                let name = f.digest.as_str();
                !records.contains_key(name)
                    && !referenced.contains(name)
                    && age_secs(f.modified) > opts.grace.as_secs()
            })
            .map(|f| f.digest)
            .collect();
        if opts.dry_run {
            report.blobs_removed = doomed.len() as u64;
            report.bytes_freed = doomed.iter().filter_map(|d| sizes.get(d)).sum::<u64>()
                + orphans
                    .iter()
                    .filter_map(|d| sizes.get(d.as_str()))
                    .sum::<u64>();
            report.orphan_files = orphans.len() as u64;
            report.removed = doomed;
            return Ok(report);
        }

        // Sweep the metadata in one commit, leaving whatever a push touched meanwhile.
        let removed = self.meta.write(|w| {
            let touched = lock(&self.gc_watch).touched.clone();
            let mut removed = Vec::new();
            for digest in &doomed {
                if touched.contains(digest) {
                    continue;
                }
                for repo in links.get(digest).map_or(&[][..], |(_, r)| r.as_slice()) {
                    w.unlink(repo, digest)?;
                }
                if w.remove_blob(digest)? {
                    removed.push(digest.clone());
                }
            }
            Ok::<_, Error>(removed)
        })?;

        // Then the files, under the watch lock so an upload cannot republish one meanwhile.
        let total = (removed.len() + orphans.len()) as u64;
        let watch = lock(&self.gc_watch);
        for (i, digest) in removed.iter().enumerate() {
            if watch.touched.contains(digest) {
                continue;
            }
            let digest: Digest = digest.parse()?;
            self.blobs.remove_blob(&digest)?;
            report.blobs_removed += 1;
            report.bytes_freed += sizes.get(digest.as_str()).copied().unwrap_or(0);
            report.removed.push(digest.to_string());
            progress("sweep", i as u64 + 1, total);
        }
        let r = self.meta.read()?;
        for digest in &orphans {
            if watch.touched.contains(digest.as_str()) || r.blob(digest.as_str())?.is_some() {
                continue;
            }
            self.blobs.remove_blob(digest)?;
            report.orphan_files += 1;
            report.bytes_freed += sizes.get(digest.as_str()).copied().unwrap_or(0);
        }
        progress("sweep", total, total);
        Ok(report)
    }

    /// Ends upload sessions idle longer than the expiry, and removes upload files that have
    /// no session; returns how many.
    pub fn expire_uploads(&self, opts: GcOptions) -> Result<u64, Error> {
        let expiry = opts.upload_expiry.as_secs();
        let empty_expiry = opts.empty_upload_expiry.as_secs();
        let sessions: HashMap<String, u64> = self
            .meta
            .read()?
            .uploads()?
            .into_iter()
            .map(|(id, u)| (id, u.started))
            .collect();
        let mut expired = 0;
        let files = self.blobs.upload_files()?;
        for (id, modified, len) in &files {
            let id = id.as_str();
            let modified = *modified;
            let idle = age_secs(modified);
            // A session that never got a byte is what opening thousands costs an attacker
            // nothing but files: those go much sooner.
            let expiry = if *len == 0 {
                empty_expiry.min(expiry)
            } else {
                expiry
            };
            let stale = match sessions.get(id) {
                Some(started) => {
                    now().saturating_sub(*started) > expiry
                        && idle > expiry
                        && !self.upload_busy(id)
                }
                None => idle > expiry,
            };
            if !stale {
                continue;
            }
            expired += 1;
            if opts.dry_run {
                continue;
            }
            if sessions.contains_key(id) {
                self.discard_upload(id)?;
            } else {
                self.blobs.remove_upload(id)?;
            }
        }
        // Sessions whose file is gone cannot continue either.
        for id in sessions.keys() {
            let had_file = files.iter().any(|(f, _, _)| f == id);
            if !had_file && !self.blobs.upload_path(id).exists() && !self.upload_busy(id) {
                expired += 1;
                if !opts.dry_run {
                    self.discard_upload(id)?;
                }
            }
        }
        Ok(expired)
    }
}

/// Storage used, in all and per feed (a blob shared by feeds counts in each).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct StorageStats {
    pub blobs: u64,
    pub bytes: u64,
    pub feeds: Vec<FeedStorage>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FeedStorage {
    pub feed: String,
    pub repositories: u64,
    pub blobs: u64,
    pub bytes: u64,
}

impl Registry {
    /// Blob counts and bytes, from one snapshot.
    pub fn storage(&self) -> Result<StorageStats, Error> {
        let r = self.meta.read()?;
        let sizes: HashMap<String, u64> =
            r.blobs()?.into_iter().map(|(d, b)| (d, b.size)).collect();
        let mut per_feed: std::collections::BTreeMap<String, (HashSet<String>, HashSet<String>)> =
            r.feeds()?
                .into_iter()
                .map(|(name, _)| (name, Default::default()))
                .collect();
        for (repo, digest, _) in r.links()? {
            let feed = repo.split('/').next().unwrap_or_default();
            if let Some((repos, blobs)) = per_feed.get_mut(feed) {
                repos.insert(repo.clone());
                blobs.insert(digest);
            }
        }
        let (all_repos, _) = r.repositories("", None, usize::MAX, |_| true)?;
        for repo in all_repos {
            let feed = repo.split('/').next().unwrap_or_default().to_owned();
            if let Some((repos, _)) = per_feed.get_mut(&feed) {
                repos.insert(repo);
            }
        }
        Ok(StorageStats {
            blobs: sizes.len() as u64,
            bytes: sizes.values().sum(),
            feeds: per_feed
                .into_iter()
                .map(|(feed, (repos, blobs))| FeedStorage {
                    feed,
                    repositories: repos.len() as u64,
                    bytes: blobs.iter().filter_map(|d| sizes.get(d)).sum(),
                    blobs: blobs.len() as u64,
                })
                .collect(),
        })
    }
}
