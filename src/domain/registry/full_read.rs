//! Full reads of a blob, checked before their last byte goes out. A blob is hashed the first
//! time it is read whole; afterwards, while its store reports the same fingerprint, it goes
//! out unhashed — the fingerprint is read again before the last byte, so a change through
//! the store at any moment of the read still cuts the read short (decision 0043; ARCHITECTURE,
//! "The request path").

use std::collections::HashMap;
use std::sync::Mutex;

use crate::domain::lock;
use crate::model::Digest;
use crate::store::blobs::{Fingerprint, UploadState};

use super::{BlobHandle, Blobs};

/// Blobs remembered as verified: 100,000 entries of about 150 bytes. When full it starts
/// again empty (each blob is then hashed once more at its next full read).
const VERIFIED_ENTRIES: usize = 100_000;

/// Blobs whose stored bytes hashed to their digest, with the fingerprint they had then.
#[derive(Default)]
pub(super) struct Verified(Mutex<HashMap<Digest, Fingerprint>>);

impl Verified {
    fn knows(&self, digest: &Digest, now: &Fingerprint) -> bool {
        lock(&self.0).get(digest) == Some(now)
    }

    fn remember(&self, digest: &Digest, fingerprint: Fingerprint) {
        let mut known = lock(&self.0);
        if known.len() >= VERIFIED_ENTRIES {
            known.clear();
        }
        known.insert(digest.clone(), fingerprint);
    }

    fn forget(&self, digest: &Digest) {
        lock(&self.0).remove(digest);
    }
}

/// One full read of a blob, front to back.
pub struct FullRead {
    /// The hash of the bytes read so far; `None` when the blob was verified before with the
    /// fingerprint it has now.
    hasher: Option<UploadState>,
    /// The fingerprint when the read began; `None` when the store gives none.
    at_start: Option<Fingerprint>,
}

impl FullRead {
    /// Takes the next bytes of the blob.
    pub fn update(&mut self, bytes: &[u8]) {
        if let Some(h) = self.hasher.as_mut() {
            h.update(bytes);
        }
    }
}

impl Blobs<'_> {
    /// Starts a full read of `blob` (blocking: asks the store for its fingerprint).
    #[must_use]
    pub fn full_read(&self, blob: &BlobHandle) -> FullRead {
        let at_start = fingerprint(blob);
        let verified = at_start
            .as_ref()
            .is_some_and(|f| self.registry.verified.knows(&blob.digest, f));
        FullRead {
            hasher: (!verified).then(|| UploadState::new(blob.digest.algorithm())),
            at_start,
        }
    }

    /// Whether the last bytes of a full read may go out: the hash matched (and the blob is
    /// remembered as verified while its fingerprint stays), or it was verified before and
    /// its fingerprint has not moved since the read began. A blob that does not hash to its
    /// digest is moved aside (`corrupt`); one that changed under a read is hashed again at
    /// its next.
    #[must_use]
    pub fn settle(&self, blob: &BlobHandle, read: FullRead) -> bool {
        let now = fingerprint(blob);
        let unchanged = now.is_some() && now == read.at_start;
        let check = if read.hasher.is_some() {
            "hashed"
        } else {
            "fingerprint"
        };
        let delivered = match read.hasher {
            None if unchanged => true,
            None => {
                self.registry.verified.forget(&blob.digest);
                tracing::warn!(
                    digest = %blob.digest,
                    "blob file changed while it was served: the read was cut short, and its next read hashes it again"
                );
                false
            }
            Some(hasher) if hasher.digest() != blob.digest => {
                self.registry.verified.forget(&blob.digest);
                self.corrupt(&blob.digest);
                false
            }
            Some(_) => {
                if unchanged
                    && let Some(f) = now
                    && f.settled(std::time::SystemTime::now())
                {
                    self.registry.verified.remember(&blob.digest, f);
                }
                true
            }
        };
        if delivered {
            crate::metrics::get()
                .blob_full_reads
                .get_or_create(&crate::metrics::CheckLabels { check })
                .inc();
        }
        delivered
    }
}

fn fingerprint(blob: &BlobHandle) -> Option<Fingerprint> {
    blob.blob.fingerprint().unwrap_or_else(|e| {
        tracing::warn!(digest = %blob.digest, error = %e, "could not read a blob's fingerprint");
        None
    })
}
