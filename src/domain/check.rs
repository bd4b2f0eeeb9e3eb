//! The integrity check: every blob file re-hashed (in parallel, optionally throttled), a
//! corrupt file set aside as `.corrupted`, every manifest's references and every tag's target
//! verified, and the tags each problem breaks named.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::io::Read;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::gc::{Progress, lock};
use super::{Error, Registry};
use crate::model::{Algorithm, Digest};

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

/// Shared read budget of all workers.
struct Throttle {
    limit: Option<u64>,
    start: Instant,
    read: AtomicU64,
}

impl Throttle {
    fn take(&self, n: usize) {
        let total = self.read.fetch_add(n as u64, Ordering::Relaxed) + n as u64;
        if let Some(limit) = self.limit.filter(|l| *l > 0) {
            #[allow(clippy::cast_precision_loss)]
            let due = Duration::from_secs_f64(total as f64 / limit as f64);
            if let Some(wait) = due.checked_sub(self.start.elapsed()) {
                std::thread::sleep(wait);
            }
        }
    }
}

fn hash_file(
    path: &std::path::Path,
    algorithm: Algorithm,
    throttle: &Throttle,
) -> std::io::Result<(Digest, u64)> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = algorithm.hasher();
    let mut buf = vec![0; 1 << 20];
    let mut len = 0;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            return Ok((hasher.finish(), len));
        }
        throttle.take(n);
        hasher.update(&buf[..n]);
        len += n as u64;
    }
}

impl Registry {
    /// Checks every blob and every reference. Repairs nothing but moving corrupt files aside:
    /// pushing the image again restores them.
    pub fn check(&self, opts: CheckOptions, progress: Progress<'_>) -> Result<CheckReport, Error> {
        let _one = lock(&self.maintenance);
        let files = self.blobs.blob_files()?;
        let total = files.len() as u64;
        let throttle = Throttle {
            limit: opts.max_bytes_per_sec,
            start: Instant::now(),
            read: AtomicU64::new(0),
        };
        let next = AtomicUsize::new(0);
        let done = AtomicU64::new(0);
        let bad: Mutex<Vec<(Digest, String)>> = Mutex::default();
        let bytes = AtomicU64::new(0);
        std::thread::scope(|s| {
            for _ in 0..opts.jobs.max(1) {
                s.spawn(|| {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(f) = files.get(i) else { break };
                        let path = self.blobs.blob_path(&f.digest);
                        match hash_file(&path, f.digest.algorithm(), &throttle) {
                            Ok((found, len)) => {
                                bytes.fetch_add(len, Ordering::Relaxed);
                                if found != f.digest {
                                    lock(&bad)
                                        .push((f.digest.clone(), format!("hashes to {found}")));
                                }
                            }
                            Err(e) => {
                                lock(&bad).push((f.digest.clone(), format!("cannot be read: {e}")));
                            }
                        }
                        let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                        progress("hash", n, total);
                    }
                });
            }
        });
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
            let moved = self.blobs.set_aside(&digest)?;
            report
                .problems
                .push(format!("blob {digest} {why}: moved to {}", moved.display()));
            report.corrupt.push(Corrupt {
                digest: digest.to_string(),
                moved_to: moved.display().to_string(),
            });
            unusable.insert(digest.to_string());
        }
        let on_disk: HashSet<String> = files.iter().map(|f| f.digest.to_string()).collect();
        self.check_references(&on_disk, &mut unusable, &mut report)?;
        Ok(report)
    }

    fn check_references(
        &self,
        on_disk: &HashSet<String>,
        unusable: &mut HashSet<String>,
        report: &mut CheckReport,
    ) -> Result<(), Error> {
        let r = self.meta.read()?;
        for (digest, _) in r.blobs()? {
            if !on_disk.contains(&digest) && !unusable.contains(&digest) {
                report
                    .problems
                    .push(format!("blob {digest} is recorded but its file is missing"));
                unusable.insert(digest);
            }
        }
        // A manifest is broken when a blob it needs is unusable, or a child is missing/broken.
        let mut manifests: HashMap<(String, String), Vec<String>> = HashMap::new();
        let mut children: HashMap<(String, String), Vec<String>> = HashMap::new();
        let mut missing_record = Vec::new();
        r.each_manifest(|repo, digest, m| {
            let key = (repo.to_owned(), digest.to_owned());
            for b in &m.blobs {
                missing_record.push((key.clone(), b.clone()));
            }
            manifests.insert(key.clone(), m.blobs);
            children.insert(key, m.children);
        })?;
        let mut broken: BTreeSet<(String, String)> = BTreeSet::new();
        for ((repo, digest), blob) in missing_record {
            let problem = if unusable.contains(&blob) {
                Some("is damaged or missing")
            } else if r.blob(&blob)?.is_none() {
                Some("is not recorded")
            } else if !r.is_linked(&repo, &blob)? {
                Some("is not linked to the repository")
            } else {
                None
            };
            if let Some(why) = problem {
                report
                    .problems
                    .push(format!("{repo}@{digest} needs blob {blob}, which {why}"));
                broken.insert((repo, digest));
            }
        }
        for ((repo, digest), kids) in &children {
            for child in kids {
                if !manifests.contains_key(&(repo.clone(), child.clone())) {
                    report.problems.push(format!(
                        "{repo}@{digest} lists child {child}, which is missing"
                    ));
                    broken.insert((repo.clone(), digest.clone()));
                }
            }
        }
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
        let (repos, _) = r.repositories("", None, usize::MAX, |_| true)?;
        for repo in repos {
            for (tag, digest) in r.tag_targets(&repo)? {
                let key = (repo.clone(), digest.clone());
                if !manifests.contains_key(&key) {
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
