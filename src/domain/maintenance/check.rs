//! The integrity check: every blob file re-hashed (in parallel, optionally throttled), a
//! corrupt file set aside as `.corrupted`, every manifest's references and every tag's target
//! verified, and the tags each problem breaks named.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use serde::Serialize;

use super::gc::Progress;
use super::hashing::{Throttle, hash_blob};
use super::lock;
use super::{Error, Maintenance};
use crate::model::Digest;

/// How the check runs.
#[derive(Debug, Clone, Copy)]
pub struct CheckOptions {
    /// Files hashed at once.
    pub jobs: usize,
    /// Read at most this many bytes per second in all (to spare a serving disk).
    pub max_bytes_per_sec: Option<u64>,
}

/// A blob file whose bytes do not hash to its name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Corrupt {
    pub digest: String,
    /// Where the file was moved.
    pub moved_to: String,
}

/// What the check found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CheckReport {
    pub blobs_checked: u64,
    pub bytes_checked: u64,
    pub corrupt: Vec<Corrupt>,
    /// Each problem as a sentence.
    pub problems: Vec<String>,
    /// `repository:tag` of every tag that no longer pulls whole.
    pub broken_tags: Vec<String>,
}

impl CheckReport {
    #[must_use]
    pub fn is_clean(&self) -> bool {
        self.corrupt.is_empty() && self.problems.is_empty()
    }
}

impl Maintenance<'_> {
    /// Checks every blob and every reference. Repairs nothing but moving corrupt files aside:
    /// pushing the image again restores them.
    pub fn check(&self, opts: CheckOptions, progress: Progress<'_>) -> Result<CheckReport, Error> {
        let _one = self.one_job()?;
        // Counted first (a directory walk), then hashed as a second walk hands the files to
        // the workers through a short queue: memory does not grow with the number of blobs.
        let mut total = 0u64;
        self.state.blobs.each_blob(&mut |_| {
            total += 1;
            Ok(())
        })?;
        let throttle = Throttle {
            limit: opts.max_bytes_per_sec,
            start: Instant::now(),
            read: AtomicU64::new(0),
        };
        let done = AtomicU64::new(0);
        let checked = AtomicU64::new(0);
        let bad: Mutex<Vec<(Digest, String)>> = Mutex::default();
        let bytes = AtomicU64::new(0);
        let (queue, files) = std::sync::mpsc::sync_channel::<Digest>(256);
        let files = Mutex::new(files);
        let walked = std::thread::scope(|s| {
            for _ in 0..opts.jobs.max(1) {
                s.spawn(|| {
                    loop {
                        let next = lock(&files).recv();
                        let Ok(digest) = next else { break };
                        checked.fetch_add(1, Ordering::Relaxed);
                        match hash_blob(&*self.state.blobs, &digest, &throttle) {
                            Ok((found, len)) => {
                                bytes.fetch_add(len, Ordering::Relaxed);
                                if found != digest {
                                    lock(&bad).push((digest, format!("hashes to {found}")));
                                }
                            }
                            Err(e) => {
                                lock(&bad).push((digest, format!("cannot be read: {e}")));
                            }
                        }
                        let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                        progress("hash", n, total.max(n));
                    }
                });
            }
            let walked = self.state.blobs.each_blob(&mut |f| {
                queue
                    .send(f.digest)
                    .map_err(|_| std::io::Error::other("the hashing workers stopped").into())
            });
            drop(queue);
            walked
        });
        walked?;
        let total = checked.into_inner();
        let mut report = CheckReport {
            blobs_checked: total,
            bytes_checked: bytes.into_inner(),
            ..CheckReport::default()
        };
        let mut unusable: HashSet<String> = HashSet::new();
        let mut bad = bad
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        bad.sort();
        for (digest, why) in bad {
            let moved = self.state.blobs.set_aside(&digest)?;
            report
                .problems
                .push(format!("blob {digest} {why}: moved to {moved}"));
            report.corrupt.push(Corrupt {
                digest: digest.to_string(),
                moved_to: moved,
            });
            unusable.insert(digest.to_string());
        }
        self.check_references(&mut unusable, &mut report)?;
        if let Err(e) = crate::domain::stored_settings::check(&*self.state.meta.read()?) {
            report.problems.push(e.to_string());
        }
        Ok(report)
    }

    /// Checks every record against the others with point lookups while streaming the
    /// tables: memory grows with the problems found and the indexes (for brokenness to climb),
    /// not with the number of manifests or blobs.
    fn check_references(
        &self,
        unusable: &mut HashSet<String>,
        report: &mut CheckReport,
    ) -> Result<(), Error> {
        let r = self.state.meta.read()?;
        let mut missing = Vec::new();
        r.each_blob(&mut |digest, _| {
            let present = digest
                .parse::<Digest>()
                .is_ok_and(|d| matches!(self.state.blobs.stat(&d), Ok(Some(_))));
            if !present && !unusable.contains(digest) {
                missing.push(digest.to_owned());
            }
        })?;
        for digest in missing {
            report
                .problems
                .push(format!("blob {digest} is recorded but its file is missing"));
            unusable.insert(digest);
        }
        // A manifest is broken when a blob it needs is unusable, or a child is missing/broken.
        let mut children: HashMap<(String, String), Vec<String>> = HashMap::new();
        let mut broken: BTreeSet<(String, String)> = BTreeSet::new();
        let mut failed = Ok(());
        let mut examine = |repo: &str,
                           digest: &str,
                           m: crate::store::meta::ManifestRecord|
         -> Result<(), Error> {
            for blob in &m.blobs {
                let problem = if unusable.contains(blob) {
                    Some("is damaged or missing")
                } else if r.blob(blob)?.is_none() {
                    Some("is not recorded")
                } else if !r.is_linked(repo, blob)? {
                    Some("is not linked to the repository")
                } else {
                    None
                };
                if let Some(why) = problem {
                    report
                        .problems
                        .push(format!("{repo}@{digest} needs blob {blob}, which {why}"));
                    broken.insert((repo.to_owned(), digest.to_owned()));
                }
            }
            for child in &m.children {
                if !r.has_manifest(repo, child)? {
                    report.problems.push(format!(
                        "{repo}@{digest} lists child {child}, which is missing"
                    ));
                    broken.insert((repo.to_owned(), digest.to_owned()));
                }
            }
            if !m.children.is_empty() {
                children.insert((repo.to_owned(), digest.to_owned()), m.children);
            }
            Ok(())
        };
        r.each_manifest(&mut |repo, digest, m| {
            if failed.is_ok() {
                failed = examine(repo, digest, m);
            }
        })?;
        failed?;
        // Brokenness climbs from children to their indexes.
        loop {
            let more: Vec<(String, String)> = children
                .iter()
                .filter(|(k, kids)| {
                    !broken.contains(*k)
                        && kids
                            .iter()
                            .any(|c| broken.contains(&(k.0.clone(), c.clone())))
                })
                .map(|(k, _)| k.clone())
                .collect();
            if more.is_empty() {
                break;
            }
            broken.extend(more);
        }
        let (repos, _) = r.repositories("", None, usize::MAX, &|_| true)?;
        for repo in repos {
            for (tag, digest) in r.tag_targets(&repo)? {
                let key = (repo.clone(), digest.clone());
                if !r.has_manifest(&repo, &digest)? {
                    report.problems.push(format!(
                        "tag {repo}:{tag} points at {digest}, which is missing"
                    ));
                    report.broken_tags.push(format!("{repo}:{tag}"));
                } else if broken.contains(&key) {
                    report.broken_tags.push(format!("{repo}:{tag}"));
                }
            }
        }
        Ok(())
    }
}
