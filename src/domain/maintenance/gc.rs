//! Online garbage collection: blob files no manifest references, and abandoned uploads.
//!
//! Marking reads one snapshot; the sweep removes blob records and links in one write
//! transaction, and blob files only after that commit. A push racing the sweep is safe twice
//! over: blobs younger than the grace period are never candidates, and every digest an upload,
//! mount or manifest push touches while a collection runs is taken out of its hands.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::MutexGuard;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::{Error, Maintenance, lock};
use crate::model::Digest;

/// The database lock that lets one node at a time run a maintenance job.
const MAINTENANCE_LOCK: i64 = 0x5e3d_0c03;

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
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
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

impl Maintenance<'_> {
    /// The report of the last collection that changed something.
    #[must_use]
    pub fn last_gc(&self) -> Option<GcReport> {
        lock(&self.state.last_gc).clone()
    }

    /// One maintenance job at a time: in this process, and across every node on the same
    /// metadata (a lock the database holds for the node that runs one).
    pub(super) fn one_job(&self) -> Result<(MutexGuard<'_, ()>, Box<dyn Send>), Error> {
        let local = lock(&self.state.one_job);
        let cluster = self.state.meta.try_exclusive(MAINTENANCE_LOCK)?.ok_or_else(|| {
            Error::Conflict(
                "another node is running a maintenance job (garbage collection, retention, check or backup): this one was not started; try again when it has finished".into(),
            )
        })?;
        Ok((local, cluster))
    }

    /// [`Maintenance::gc`], recorded in the audit log as run by `actor` (unless dry).
    pub fn gc_by(
        &self,
        opts: GcOptions,
        progress: Progress<'_>,
        actor: &str,
    ) -> Result<GcReport, Error> {
        let report = self.gc(opts, progress)?;
        if !report.dry_run {
            let change = format!(
                "garbage collection removed {} blobs ({} bytes), {} orphan files, {} uploads",
                report.blobs_removed,
                report.bytes_freed,
                report.orphan_files,
                report.uploads_expired
            );
            self.registry.feeds().audit_alone(super::audit::entry(
                super::audit::Kind::GcRun,
                actor,
                "",
                change,
            ))?;
        }
        Ok(report)
    }

    /// Collects garbage while the registry serves. One maintenance job runs at a time.
    pub fn gc(&self, opts: GcOptions, progress: Progress<'_>) -> Result<GcReport, Error> {
        let _one = self.one_job()?;
        let started = Instant::now();
        {
            let mut watch = self.registry.gc_watch();
            watch.running = true;
            watch.touched.clear();
        }
        let result = self.collect(opts, progress);
        {
            let mut watch = self.registry.gc_watch();
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
            *lock(&self.state.last_gc) = Some(report.clone());
        }
        Ok(report)
    }

    /// The mark phase: the blob records the sweep may remove (unreferenced, older than
    /// `cutoff` and not linked since), and the files older than `grace` seconds that have no
    /// record. Streams the tables and the directory.
    fn mark(&self, cutoff: u64, grace: u64) -> Result<Marked, Error> {
        // Mark: a fingerprint of every blob a manifest references (16 bytes each, not the
        // digest string: the one set that grows with the registry). A collision only keeps a
        // blob that could have gone, never the reverse.
        let r = self.state.meta.read()?;
        let mut referenced: HashSet<u128> = HashSet::new();
        r.each_manifest(&mut |_, _, m| referenced.extend(m.blobs.iter().map(|d| fingerprint(d))))?;
        // Candidates, streamed: unreferenced records older than the grace period (garbage
        // only, so small), then their links in one pass.
        let mut candidates: BTreeMap<String, Candidate> = BTreeMap::new();
        r.each_blob(&mut |digest, record| {
            if record.created < cutoff && !referenced.contains(&fingerprint(digest)) {
                candidates.insert(
                    digest.to_owned(),
                    Candidate {
                        size: record.size,
                        linked: 0,
                        repos: Vec::new(),
                    },
                );
            }
        })?;
        r.each_link(&mut |repo, digest, at| {
            if let Some(c) = candidates.get_mut(digest) {
                c.linked = c.linked.max(at);
                c.repos.push(repo.to_owned());
            }
        })?;
        candidates.retain(|_, c| c.linked < cutoff);
        // Files without a record, walked one directory entry at a time.
        let mut orphans: Vec<(Digest, u64)> = Vec::new();
        let mut lookup = Ok(());
        self.state.blobs.each_blob(&mut |f| {
            if self.state.clock.age_secs(f.modified) > grace
                && !referenced.contains(&fingerprint(f.digest.as_str()))
            {
                match r.blob(f.digest.as_str()) {
                    Ok(None) => orphans.push((f.digest, f.len)),
                    Ok(Some(_)) => {}
                    Err(e) => lookup = Err(e),
                }
            }
            Ok(())
        })?;
        lookup?;
        Ok((candidates, orphans))
    }

    fn collect(&self, opts: GcOptions, progress: Progress<'_>) -> Result<GcReport, Error> {
        let started = self.state.clock.now();
        let cutoff = started.saturating_sub(opts.grace.as_secs());
        let mut report = GcReport {
            dry_run: opts.dry_run,
            started,
            ..GcReport::default()
        };
        report.uploads_expired = self.expire_uploads(opts)?;

        progress("mark", 0, 0);
        let (candidates, orphans) = self.mark(cutoff, opts.grace.as_secs())?;
        let doomed: Vec<String> = candidates.keys().cloned().collect();
        if opts.dry_run {
            report.blobs_removed = doomed.len() as u64;
            report.bytes_freed = candidates.values().map(|c| c.size).sum::<u64>()
                + orphans.iter().map(|(_, len)| len).sum::<u64>();
            report.orphan_files = orphans.len() as u64;
            report.removed = doomed;
            return Ok(report);
        }

        // Sweep the metadata in commits of SWEEP_BATCH blobs, leaving whatever a push touched
        // meanwhile: each removal stands alone, and a bounded transaction keeps the time
        // pushes wait for the write lock bounded whatever the amount of garbage.
        let mut removed = Vec::new();
        for batch in doomed.chunks(SWEEP_BATCH) {
            let swept = self.state.meta.write(|w| {
                let touched = self.registry.gc_watch().touched.clone();
                let mut swept = Vec::new();
                'blobs: for digest in batch {
                    if touched.contains(digest) {
                        continue;
                    }
                    // Linked since the mark, on any node (an upload, a mount, or a manifest
                    // pushed over it: `put_manifest` refreshes old links): no longer garbage.
                    // Writes are serialised, so a later push finds the record gone instead.
                    let repos = w.repositories_linking(digest)?;
                    for repo in &repos {
                        if w.linked_at(repo, digest)?.unwrap_or(0) >= cutoff {
                            continue 'blobs;
                        }
                    }
                    for repo in &repos {
                        crate::domain::quota::unlink(w, repo, digest)?;
                    }
                    if w.remove_blob(digest)? {
                        swept.push(digest.clone());
                    }
                }
                Ok::<_, Error>(swept)
            })?;
            removed.extend(swept);
        }

        // Then the files, each inside a write transaction that finds no record for it: an
        // upload publishing the same blob again commits its record only after checking,
        // inside its own write, that the file is there (`complete_upload`), so on any node
        // either the record stops the removal or the removal makes that upload fail cleanly.
        // And under the watch lock, so that on this node an upload cannot republish one
        // meanwhile.
        let total = (removed.len() + orphans.len()) as u64;
        let doomed: Vec<(&str, u64, bool)> = removed
            .iter()
            .map(|d| {
                (
                    d.as_str(),
                    candidates.get(d.as_str()).map_or(0, |c| c.size),
                    false,
                )
            })
            .chain(orphans.iter().map(|(d, len)| (d.as_str(), *len, true)))
            .collect();
        let mut files = Vec::new();
        // In batches, as the sweep: pushes wait for the write lock a bounded time.
        for batch in doomed.chunks(SWEEP_BATCH) {
            let gone = self.state.meta.write(|w| {
                let watch = self.registry.gc_watch();
                let mut gone = Vec::new();
                for &(digest, len, orphan) in batch {
                    if watch.touched.contains(digest) || w.blob(digest)?.is_some() {
                        continue;
                    }
                    let parsed: Digest = digest.parse()?;
                    self.state.blobs.remove_blob(&parsed)?;
                    gone.push((parsed, len, orphan));
                }
                Ok::<_, Error>(gone)
            })?;
            files.extend(gone);
            progress("sweep", files.len() as u64, total);
        }
        for (digest, len, orphan) in files {
            report.bytes_freed += len;
            if orphan {
                report.orphan_files += 1;
            } else {
                report.blobs_removed += 1;
                report.removed.push(digest.to_string());
            }
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
            .state
            .meta
            .read()?
            .uploads()?
            .into_iter()
            .map(|(id, u)| (id, u.started))
            .collect();
        let mut expired = 0;
        let files = self.state.blobs.uploads()?;
        for upload in &files {
            let id = upload.id.as_str();
            let modified = upload.modified;
            let len = &upload.len;
            let idle = self.state.clock.age_secs(modified);
            // A session that never got a byte is what opening thousands costs an attacker
            // nothing but files: those go much sooner.
            let expiry = if *len == 0 {
                empty_expiry.min(expiry)
            } else {
                expiry
            };
            let stale = match sessions.get(id) {
                Some(started) => {
                    self.state.clock.now().saturating_sub(*started) > expiry
                        && idle > expiry
                        && !self.registry.upload_busy(id)
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
                self.registry.discard_upload(id)?;
            } else {
                self.state.blobs.remove_upload(id)?;
            }
        }
        // Sessions whose file is gone cannot continue either.
        for id in sessions.keys() {
            let had_file = files.iter().any(|u| u.id == *id);
            if !had_file
                && self.state.blobs.upload_len(id)?.is_none()
                && !self.registry.upload_busy(id)
            {
                expired += 1;
                if !opts.dry_run {
                    self.registry.discard_upload(id)?;
                }
            }
        }
        Ok(expired)
    }
}

/// Storage used, in all and per feed (a blob shared by feeds counts in each).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct StorageStats {
    pub blobs: u64,
    pub bytes: u64,
    pub feeds: Vec<FeedStorage>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FeedStorage {
    pub feed: String,
    pub repositories: u64,
    pub blobs: u64,
    pub bytes: u64,
}

/// Blob records removed per commit of the sweep.
const SWEEP_BATCH: usize = 5_000;

/// What the mark phase found: removable records by digest, and record-less files with their
/// sizes.
type Marked = (BTreeMap<String, Candidate>, Vec<(Digest, u64)>);

/// A blob record the sweep may remove: its size, when it was last linked, and where.
struct Candidate {
    size: u64,
    linked: u64,
    repos: Vec<String>,
}

/// 128 bits of a digest string's BLAKE3 hash: what the mark phase remembers per blob.
fn fingerprint(digest: &str) -> u128 {
    let hash = blake3::hash(digest.as_bytes());
    let mut first = [0u8; 16];
    first.copy_from_slice(&hash.as_bytes()[..16]);
    u128::from_le_bytes(first)
}

impl Maintenance<'_> {
    /// Blob counts and bytes, from one snapshot, streaming the tables: what it holds is a
    /// 16-byte fingerprint per distinct blob of each feed, not the records.
    pub fn storage(&self) -> Result<StorageStats, Error> {
        let r = self.state.meta.read()?;
        let (mut blobs, mut bytes) = (0u64, 0u64);
        r.each_blob(&mut |_, record| {
            blobs += 1;
            bytes += record.size;
        })?;
        let mut per_feed: BTreeMap<String, FeedStorage> = r
            .feeds()?
            .into_iter()
            .map(|(feed, _)| {
                let stats = FeedStorage {
                    feed: feed.clone(),
                    ..FeedStorage::default()
                };
                (feed, stats)
            })
            .collect();
        let mut seen: HashMap<String, HashSet<u128>> = HashMap::new();
        let mut failed = Ok(());
        r.each_link(&mut |repo, digest, _| {
            let feed = repo.split('/').next().unwrap_or_default();
            if let Some(stats) = per_feed.get_mut(feed)
                && seen
                    .entry(feed.to_owned())
                    .or_default()
                    .insert(fingerprint(digest))
            {
                stats.blobs += 1;
                match r.blob(digest) {
                    Ok(record) => stats.bytes += record.map_or(0, |b| b.size),
                    Err(e) => failed = Err(e),
                }
            }
        })?;
        failed?;
        let (all_repos, _) = r.repositories("", None, usize::MAX, &|_| true)?;
        for repo in all_repos {
            let feed = repo.split('/').next().unwrap_or_default();
            if let Some(stats) = per_feed.get_mut(feed) {
                stats.repositories += 1;
            }
        }
        Ok(StorageStats {
            blobs,
            bytes,
            feeds: per_feed.into_values().collect(),
        })
    }
}
