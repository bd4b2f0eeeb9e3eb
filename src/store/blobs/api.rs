//! The blob seam: what the domain asks of a blob store, whatever holds the bytes.
//!
//! Blobs are content-addressed and immutable once published; uploads are named by the
//! session id the domain created and grow only by appending. The embedded store is
//! `BlobStore` (files under the data directory).

use std::io;
use std::time::SystemTime;

use super::UploadState;
use crate::model::{Algorithm, Digest};

/// A blob store.
pub trait Blobs: Send + Sync {
    /// The length of blob `digest`, when it is stored.
    fn stat(&self, digest: &Digest) -> io::Result<Option<u64>>;

    /// Blob `digest`, for reading ranges of it.
    fn open(&self, digest: &Digest) -> io::Result<Box<dyn BlobRead>>;

    /// Where a client may fetch blob `digest` itself (a presigned URL of the object store),
    /// when the store is configured to hand reads off; `None` to serve it through `open`.
    fn redirect(&self, digest: &Digest) -> io::Result<Option<String>> {
        let _ = digest;
        Ok(None)
    }

    /// Starts an empty upload `id`.
    fn create_upload(&self, id: &str) -> io::Result<()>;

    /// How many bytes upload `id` holds, when it exists.
    fn upload_len(&self, id: &str) -> io::Result<Option<u64>>;

    /// Appends to upload `id` at the end of `state` (which describes every byte it holds).
    fn append(&self, id: &str, state: UploadState) -> io::Result<Box<dyn UploadSink>>;

    /// Re-reads upload `id` to rebuild its hash state by `algorithm`: after a restart, or to
    /// hash it by another algorithm than the one it streamed with.
    fn rehash_upload(&self, id: &str, algorithm: Algorithm) -> io::Result<UploadState>;

    /// Makes verified upload `id` the blob `digest`, durably; when the blob exists already the
    /// upload is dropped instead (content addressing makes the two identical).
    fn publish(&self, id: &str, digest: &Digest) -> io::Result<()>;

    /// A hint that blob `digest` (`len` bytes) was just published and will likely be read soon.
    fn warm(&self, digest: &Digest, len: u64);

    /// Calls `f` with every published blob, one at a time (memory does not grow with their
    /// number); stops at the first error `f` returns.
    fn each_blob(&self, f: &mut dyn FnMut(StoredBlob) -> io::Result<()>) -> io::Result<()>;

    /// Removes blob `digest`; a missing blob is not an error.
    fn remove_blob(&self, digest: &Digest) -> io::Result<()>;

    /// Moves blob `digest` out of every reader's way, kept for inspection; says where.
    fn set_aside(&self, digest: &Digest) -> io::Result<String>;

    /// Every upload in progress.
    fn uploads(&self) -> io::Result<Vec<StoredUpload>>;

    /// Removes upload `id`; a missing upload is not an error.
    fn remove_upload(&self, id: &str) -> io::Result<()>;

    /// Answers when the store can be reached (what a readiness check asks); cheap.
    fn probe(&self) -> io::Result<()>;

    /// Copies blob `digest` of `from` into this store, hashing the bytes on the way; a blob
    /// that does not hash to its name is not copied (`InvalidData`, naming what it hashes to).
    fn import(&self, from: &dyn Blobs, digest: &Digest) -> io::Result<()>;

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
    fn read_at(&self, offset: u64, len: usize) -> io::Result<Vec<u8>>;

    /// The blob's length as stored now (which, for a damaged blob, may not be its recorded size).
    fn stored_len(&self) -> io::Result<u64>;
}

/// One request's appending to an upload. Dropped unfinished, what it wrote may or may not
/// be kept: the next request re-hashes what the upload holds.
pub trait UploadSink: Send {
    fn write(&mut self, bytes: &[u8]) -> io::Result<()>;

    /// Bytes in the upload, counting this request's: where the next byte goes.
    fn offset(&self) -> u64;

    /// Returns once every byte written is stored, with the hash state of the whole upload.
    fn finish(self: Box<Self>) -> io::Result<UploadState>;
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
pub fn read_all(blob: &dyn BlobRead, mut f: impl FnMut(&[u8])) -> io::Result<u64> {
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
