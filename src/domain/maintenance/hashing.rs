//! Re-hashing a stored blob, within a read budget shared by the workers: what the integrity
//! check and backup's verification of its copies both do.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::model::Digest;
use crate::store::blobs::{BlobError, Blobs, read_all};

/// Shared read budget of all workers.
pub(super) struct Throttle {
    pub(super) limit: Option<u64>,
    pub(super) start: Instant,
    pub(super) read: AtomicU64,
}

impl Throttle {
    /// No budget: read as fast as the store answers.
    pub(super) fn unlimited() -> Self {
        Self {
            limit: None,
            start: Instant::now(),
            read: AtomicU64::new(0),
        }
    }

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

/// What blob `digest` of `blobs` hashes to, and its length.
pub(super) fn hash_blob(
    blobs: &dyn Blobs,
    digest: &Digest,
    throttle: &Throttle,
) -> Result<(Digest, u64), BlobError> {
    let blob = blobs.open(digest)?;
    let mut hasher = digest.algorithm().hasher();
    let len = read_all(&*blob, |bytes| {
        throttle.take(bytes.len());
        hasher.update(bytes);
    })?;
    Ok((hasher.finish(), len))
}
