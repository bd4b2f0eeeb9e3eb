//! The blob seam: what the domain asks of a blob store, whatever holds the bytes. Only the
//! traits, the records they list and `BlobError` live here, never an engine: `fs` keeps blobs
//! as files under the data directory, `s3` in an object store's bucket.
//!
//! Blobs are content-addressed and immutable once published; uploads are named by the
//! session id the domain created and grow only by appending.

pub mod fs;
mod hashing;
pub mod s3;

use std::io;
use std::time::SystemTime;

pub use hashing::UploadState;

use crate::model::{Algorithm, Digest};

/// What a blob engine can fail with.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// A store behind the network did not do what was asked (down, refusing the
    /// credentials, out of space): the registry is unavailable, not the blob unknown.
    #[error("the object store failed: {0}")]
    Unavailable(String),
    /// Reading or writing the bytes failed; the kind says how (`NotFound`, `InvalidData` for
    /// bytes that do not hash to their name, `UnexpectedEof` past a blob's end, …).
    #[error(transparent)]
    Io(#[from] io::Error),
}

impl BlobError {
    /// The kind of an I/O failure; `None` when the store was unavailable.
    #[must_use]
    pub fn io_kind(&self) -> Option<io::ErrorKind> {
        match self {
            Self::Unavailable(_) => None,
            Self::Io(e) => Some(e.kind()),
        }
    }
}

/// A blob store: its published blobs here, its uploads in progress through `Uploads`.
pub trait Blobs: Uploads {
    /// The length of blob `digest`, when it is stored.
    fn stat(&self, digest: &Digest) -> Result<Option<u64>, BlobError>;

    /// Blob `digest`, for reading ranges of it.
    fn open(&self, digest: &Digest) -> Result<Box<dyn BlobRead>, BlobError>;

    /// Where a client may fetch blob `digest` itself (a presigned URL of the object store),
    /// when the store is configured to hand reads off; `None` to serve it through `open`.
    fn redirect(&self, digest: &Digest) -> Result<Option<String>, BlobError> {
        let _ = digest;
        Ok(None)
    }

    /// Makes verified upload `id` the blob `digest`, durably; when the blob exists already the
    /// upload is dropped instead (content addressing makes the two identical).
    fn publish(&self, id: &str, digest: &Digest) -> Result<(), BlobError>;

    /// A hint that blob `digest` (`len` bytes) was just published and will likely be read soon.
    fn warm(&self, digest: &Digest, len: u64);

    /// Calls `f` with every published blob, one at a time (memory does not grow with their
    /// number); stops at the first error `f` returns.
    fn each_blob(
        &self,
        f: &mut dyn FnMut(StoredBlob) -> Result<(), BlobError>,
    ) -> Result<(), BlobError>;

    /// Removes blob `digest`; a missing blob is not an error.
    fn remove_blob(&self, digest: &Digest) -> Result<(), BlobError>;

    /// Moves blob `digest` out of every reader's way, kept for inspection; says where.
    fn set_aside(&self, digest: &Digest) -> Result<String, BlobError>;

    /// Answers when the store can be reached (what a readiness check asks); cheap.
    fn probe(&self) -> Result<(), BlobError>;

    /// Copies blob `digest` of `from` into this store, hashing the bytes on the way; a blob
    /// that does not hash to its name is not copied (`InvalidData`, naming what it hashes to).
    fn import(&self, from: &dyn Blobs, digest: &Digest) -> Result<(), BlobError>;
}

/// A blob store's uploads in progress, each named by the session id the domain created.
pub trait Uploads: Send + Sync {
    /// Starts an empty upload `id`.
    fn create_upload(&self, id: &str) -> Result<(), BlobError>;

    /// How many bytes upload `id` holds, when it exists.
    fn upload_len(&self, id: &str) -> Result<Option<u64>, BlobError>;

    /// Appends to upload `id` at the end of `state` (which describes every byte it holds).
    fn append(&self, id: &str, state: UploadState) -> Result<Box<dyn UploadSink>, BlobError>;

    /// Re-reads upload `id` to rebuild its hash state by `algorithm`: after a restart, or to
    /// hash it by another algorithm than the one it streamed with.
    fn rehash_upload(&self, id: &str, algorithm: Algorithm) -> Result<UploadState, BlobError>;

    /// Opens upload `id` for appending where it ends, hashed by `algorithm` from its first
    /// byte: `rehash_upload` then `append`, in one read of the session where the store can.
    fn resume(&self, id: &str, algorithm: Algorithm) -> Result<Box<dyn UploadSink>, BlobError> {
        let state = self.rehash_upload(id, algorithm)?;
        self.append(id, state)
    }

    /// Every upload in progress.
    fn uploads(&self) -> Result<Vec<StoredUpload>, BlobError>;

    /// Removes upload `id`; a missing upload is not an error.
    fn remove_upload(&self, id: &str) -> Result<(), BlobError>;

    /// Whether other nodes write to this store too: then an upload's hash state is read
    /// back from the store (`rehash_upload`, cheap there) at each request rather than kept
    /// in memory, since another node may have appended since.
    fn shared(&self) -> bool {
        false
    }
}

/// An open blob.
pub trait BlobRead: Send + Sync {
    /// Exactly `len` bytes from `offset` (`UnexpectedEof` past the end); several readers may
    /// read one blob at once.
    fn read_at(&self, offset: u64, len: usize) -> Result<Vec<u8>, BlobError>;

    /// The blob's length as stored now (which, for a damaged blob, may not be its recorded size).
    fn stored_len(&self) -> Result<u64, BlobError>;

    /// What changes whenever the stored bytes could have changed through the store (see
    /// `Fingerprint`); `None` when this engine cannot say, and every full read is hashed.
    fn fingerprint(&self) -> Result<Option<Fingerprint>, BlobError> {
        Ok(None)
    }
}

/// The identity of a blob's stored bytes as its store reports it, without reading them: for a
/// file its device, inode, length, and modification and change times (any write, truncation,
/// replacement or `touch` through the file system moves the change time, which no user
/// program can set back); for an object its entity tag and length. Equal fingerprints mean
/// no change the store saw; they say nothing of a disk that rots under the file system,
/// which only reading the bytes finds (`semdock check`, and its scheduled scrub).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fingerprint {
    File {
        device: u64,
        inode: u64,
        len: u64,
        modified_ns: i128,
        changed_ns: i128,
    },
    Object {
        etag: String,
        len: u64,
    },
}

/// How long a file's last change must lie in the past before its fingerprint is trusted,
/// on a file system that stamps times with sub-second precision (ext4, XFS, btrfs: from a
/// clock ticking at least every 10 ms), and on one that stamps whole seconds.
const SETTLED: std::time::Duration = std::time::Duration::from_millis(100);
const SETTLED_WHOLE_SECONDS: std::time::Duration = std::time::Duration::from_secs(2);

impl Fingerprint {
    /// Whether any later change to the bytes surely moves this fingerprint. A file system
    /// stamps times from a coarse clock, so a write within the tick of the file's last
    /// change could leave every field alone: a file's fingerprint is trusted once its last
    /// change is ten ticks old — 100 ms — or 2 s where the times are whole seconds (git's
    /// rule for "racily clean" files). An object store gives every write a new entity tag.
    #[must_use]
    pub fn settled(&self, now: SystemTime) -> bool {
        match self {
            Self::File { changed_ns, .. } => {
                let margin = if changed_ns % 1_000_000_000 == 0 {
                    SETTLED_WHOLE_SECONDS
                } else {
                    SETTLED
                };
                now.duration_since(SystemTime::UNIX_EPOCH)
                    .ok()
                    .and_then(|now| now.checked_sub(margin))
                    .and_then(|then| i128::try_from(then.as_nanos()).ok())
                    .is_some_and(|then| then > *changed_ns)
            }
            Self::Object { .. } => true,
        }
    }
}

/// One request's appending to an upload. Dropped unfinished, what it wrote may or may not
/// be kept: the next request re-hashes what the upload holds.
pub trait UploadSink: Send {
    fn write(&mut self, bytes: &[u8]) -> Result<(), BlobError>;

    /// Bytes in the upload, counting this request's: where the next byte goes.
    fn offset(&self) -> u64;

    /// Returns once every byte written is stored, with the hash state of the whole upload.
    fn finish(self: Box<Self>) -> Result<UploadState, BlobError>;
}

/// A published blob as the store lists it.
#[derive(Debug, Clone)]
pub struct StoredBlob {
    pub digest: Digest,
    pub len: u64,
    /// When it was last written (published).
    pub modified: SystemTime,
}

/// An upload in progress as the store lists it.
#[derive(Debug, Clone)]
pub struct StoredUpload {
    pub id: String,
    pub modified: SystemTime,
    pub len: u64,
}

/// Reads all of `blob` front to back in 1 MiB reads, calling `f` with each; returns the
/// length read.
pub fn read_all(blob: &dyn BlobRead, mut f: impl FnMut(&[u8])) -> Result<u64, BlobError> {
    const CHUNK: u64 = 1 << 20;
    let len = blob.stored_len()?;
    let mut offset = 0u64;
    while offset < len {
        let n = (len - offset).min(CHUNK);
        let bytes = blob.read_at(offset, usize::try_from(n).unwrap_or(usize::MAX))?;
        f(&bytes);
        offset += n;
    }
    Ok(len)
}

/// A blob read front to back in 1 MiB reads, as `std::io::Read`: over a borrowed or an
/// owned `BlobRead`.
pub struct FrontToBack<B> {
    blob: B,
    offset: u64,
    len: Option<u64>,
    buffer: Vec<u8>,
    at: usize,
}

impl<B> FrontToBack<B> {
    pub fn new(blob: B) -> Self {
        Self {
            blob,
            offset: 0,
            len: None,
            buffer: Vec::new(),
            at: 0,
        }
    }
}

impl<B: std::ops::Deref> io::Read for FrontToBack<B>
where
    B::Target: BlobRead,
{
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.at == self.buffer.len() {
            let len = if let Some(l) = self.len {
                l
            } else {
                let l = self.blob.stored_len().map_err(io::Error::other)?;
                self.len = Some(l);
                l
            };
            if self.offset >= len {
                return Ok(0);
            }
            let n = (len - self.offset).min(1 << 20);
            self.buffer = self
                .blob
                .read_at(self.offset, usize::try_from(n).unwrap_or(1 << 20))
                .map_err(io::Error::other)?;
            self.offset += n;
            self.at = 0;
        }
        let n = out.len().min(self.buffer.len() - self.at);
        out[..n].copy_from_slice(&self.buffer[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn changed(at: SystemTime) -> Fingerprint {
        let ns = at
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        Fingerprint::File {
            device: 1,
            inode: 2,
            len: 3,
            modified_ns: 0,
            changed_ns: i128::try_from(ns).unwrap(),
        }
    }

    #[test]
    fn a_file_fingerprint_is_trusted_ten_ticks_after_its_last_change() {
        // A change time with a sub-second part, as ext4 and XFS stamp them.
        let at = SystemTime::UNIX_EPOCH + Duration::from_millis(1_765_000_000_004);
        let f = changed(at);
        assert!(!f.settled(at));
        assert!(!f.settled(at + Duration::from_millis(50)));
        assert!(f.settled(at + Duration::from_millis(150)));
        // Whole seconds: a file system that may stamp only those waits 2 s.
        let whole = SystemTime::UNIX_EPOCH + Duration::from_secs(1_765_000_000);
        let f = changed(whole);
        assert!(!f.settled(whole + Duration::from_millis(1_500)));
        assert!(f.settled(whole + Duration::from_millis(2_100)));
        let object = Fingerprint::Object {
            etag: "\"e\"".into(),
            len: 3,
        };
        assert!(object.settled(SystemTime::UNIX_EPOCH));
    }
}
