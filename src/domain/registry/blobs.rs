//! Blobs and uploads: reading a blob linked to a repository, mounting, and uploads from
//! the first byte to the verified, published blob.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::domain::Error;
use crate::domain::lock;
use crate::model::{Algorithm, Digest, Repository};
use crate::store::blobs::{BlobError, BlobRead, UploadSink, UploadState};
use crate::store::meta::{BlobRecord, UploadRecord};

use super::{Registry, feed_unknown, link_into};

/// Who opened which upload session, to bound the sessions of each account. Counted in
/// memory: sessions from before a restart are not counted (they expire as usual).
#[derive(Default)]
pub(super) struct UploadOwners {
    owner_of: HashMap<String, String>,
    open: HashMap<String, usize>,
}

impl UploadOwners {
    fn open(&mut self, id: &str, owner: &str, limit: usize) -> Result<(), Error> {
        let count = self.open.entry(owner.to_owned()).or_default();
        if *count >= limit {
            return Err(Error::TooManyUploads { limit });
        }
        *count += 1;
        self.owner_of.insert(id.to_owned(), owner.to_owned());
        crate::metrics::get().open_uploads.inc();
        Ok(())
    }

    fn close(&mut self, id: &str) {
        if let Some(owner) = self.owner_of.remove(id)
            && let Some(count) = self.open.get_mut(&owner)
        {
            crate::metrics::get().open_uploads.dec();
            *count -= 1;
            if *count == 0 {
                self.open.remove(&owner);
            }
        }
    }
}

/// In-memory hash state of uploads between requests. An upload absent here but present in the
/// metadata is re-hashed from its file (after a restart, or after a failed request).
#[derive(Clone, Default)]
pub(super) struct Sessions(Arc<Mutex<HashMap<String, Slot>>>);

// An idle slot holds the hash state (SHA-512's is the larger); boxing it would cost an
// allocation per request for a map of a few entries.
#[allow(clippy::large_enum_variant)]
enum Slot {
    Idle(UploadState),
    /// A request is writing; the number is the offset it started at.
    Busy(u64),
}

impl Sessions {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Slot>> {
        // A panic while holding the lock cannot leave the map half-updated: every critical
        // section is a single insert or remove.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn forget(&self, id: &str) {
        self.lock().remove(id);
    }
}

/// An open blob, readable through the repository that asked.
/// Where a GET finds a blob.
pub enum BlobAt {
    /// Served by this node.
    Here(BlobHandle),
    /// At this URL (presigned, short-lived), which the client fetches itself.
    Elsewhere(String),
}

pub struct BlobHandle {
    pub blob: Box<dyn BlobRead>,
    pub size: u64,
    pub digest: Digest,
}

impl BlobHandle {
    /// `len` bytes from `offset`; blocking, positional (several readers may share the file).
    pub fn read_at(&self, offset: u64, len: usize) -> Result<Vec<u8>, Error> {
        Ok(self.blob.read_at(offset, len)?)
    }
}

/// A request appending to an upload. Finish it with `Uploads::finish_chunk` or
/// `Uploads::complete`; dropped unfinished (a failed request), its in-memory state is
/// discarded and the next request re-hashes what reached the file.
pub struct Append {
    id: String,
    repository: Repository,
    writer: Option<Box<dyn UploadSink>>,
    limit: u64,
    sessions: Sessions,
}

impl Append {
    pub fn write(&mut self, bytes: &[u8]) -> Result<(), Error> {
        let writer = self.writer.as_mut().ok_or_else(|| Error::UploadUnknown {
            id: self.id.clone(),
        })?;
        if writer.offset() + bytes.len() as u64 > self.limit {
            return Err(Error::UploadTooLarge { limit: self.limit });
        }
        writer.write(bytes)?;
        Ok(())
    }

    /// Bytes in the upload, counting this request's.
    #[must_use]
    pub fn offset(&self) -> u64 {
        self.writer.as_ref().map_or(0, |w| w.offset())
    }

    #[must_use]
    pub fn id(&self) -> &str {
        &self.id
    }

    fn finish(&mut self) -> Result<UploadState, Error> {
        let writer = self.writer.take().ok_or_else(|| Error::UploadUnknown {
            id: self.id.clone(),
        })?;
        match writer.finish() {
            Ok(state) => Ok(state),
            Err(e) => {
                self.sessions.forget(&self.id);
                Err(e.into())
            }
        }
    }
}

impl Drop for Append {
    fn drop(&mut self) {
        if self.writer.is_some() {
            self.sessions.forget(&self.id);
        }
    }
}

/// The id prefix of an upload hashed with SHA-512: the algorithm travels with the id, so a
/// session resumed on another request, or after a restart, is hashed the same way.
const SHA512_UPLOAD: &str = "sha512-";

fn upload_id(id: &str) -> Result<String, Error> {
    let (prefix, uuid) = id
        .strip_prefix(SHA512_UPLOAD)
        .map_or(("", id), |rest| (SHA512_UPLOAD, rest));
    uuid::Uuid::parse_str(uuid)
        .map(|u| format!("{prefix}{}", u.hyphenated()))
        .map_err(|_| Error::UploadUnknown { id: id.to_owned() })
}

/// The algorithm upload `id` is hashed with while it streams.
fn upload_algorithm(id: &str) -> Algorithm {
    if id.starts_with(SHA512_UPLOAD) {
        Algorithm::Sha512
    } else {
        Algorithm::Sha256
    }
}

impl Registry {
    // ---- blobs ----

    fn open_blob(&self, digest: &Digest, size: u64) -> Result<BlobHandle, Error> {
        let unknown = || Error::BlobUnknown {
            digest: digest.to_string(),
        };
        let blob = self.blobs.open(digest).map_err(|e| {
            if let BlobError::Unavailable(_) = e {
                // The object store is away: the blob is not unknown, the store is unavailable.
                return Error::from(e);
            }
            tracing::error!(%digest, error = %e, "blob is recorded but its file cannot be opened");
            unknown()
        })?;
        Ok(BlobHandle {
            blob,
            size,
            digest: digest.clone(),
        })
    }

    /// The record of blob `digest` when `repo` may read it.
    fn blob_record(&self, repo: &Repository, digest: &Digest) -> Result<BlobRecord, Error> {
        let unknown = || Error::BlobUnknown {
            digest: digest.to_string(),
        };
        let r = self.meta.read()?;
        if r.feed(repo.feed())?.is_none() {
            return Err(feed_unknown(repo));
        }
        if !r.is_linked(repo.as_str(), digest.as_str())? {
            return Err(unknown());
        }
        r.blob(digest.as_str())?.ok_or_else(unknown)
    }

    // ---- uploads ----

    /// `start_upload`; `from_upstream` for a connector's own fetch, the one upload a
    /// connector feed takes.
    pub(super) fn start_upload_as(
        &self,
        repo: &Repository,
        owner: &str,
        algorithm: Algorithm,
        from_upstream: bool,
    ) -> Result<String, Error> {
        if !from_upstream && let Some(feed) = self.meta.read()?.feed(repo.feed())? {
            super::manifests::refuse_push_to_connector(&feed, repo)?;
        }
        let prefix = match algorithm {
            Algorithm::Sha256 => "",
            Algorithm::Sha512 => SHA512_UPLOAD,
        };
        let id = format!("{prefix}{}", uuid::Uuid::new_v4().hyphenated());
        lock(&self.upload_owners).open(&id, owner, self.limits.upload_sessions)?;
        if let Err(e) = self.blobs.create_upload(&id) {
            lock(&self.upload_owners).close(&id);
            return Err(e.into());
        }
        let stored = self.meta.write(|w| {
            if w.feed(repo.feed())?.is_none() {
                return Err(feed_unknown(repo));
            }
            w.put_upload(
                &id,
                &UploadRecord {
                    repository: repo.to_string(),
                    started: self.clock.now(),
                },
            )?;
            Ok(())
        });
        if let Err(e) = stored {
            let _ = self.blobs.remove_upload(&id);
            lock(&self.upload_owners).close(&id);
            return Err(e);
        }
        self.sessions
            .lock()
            .insert(id.clone(), Slot::Idle(UploadState::new(algorithm)));
        Ok(id)
    }

    fn session(&self, repo: &Repository, id: &str) -> Result<String, Error> {
        let id = upload_id(id)?;
        let record = self.meta.read()?.upload(&id)?;
        match record {
            Some(r) if r.repository == repo.as_str() => Ok(id),
            _ => Err(Error::UploadUnknown { id }),
        }
    }

    /// Whether a request is writing to upload `id` right now.
    pub(in crate::domain) fn upload_busy(&self, id: &str) -> bool {
        matches!(self.sessions.lock().get(id), Some(Slot::Busy(_)))
    }

    /// Removes an upload: its bytes first, so that on a full disk the space comes back
    /// before the metadata write needs some; a record left by a failing write has no bytes
    /// and expires with the abandoned uploads.
    pub(in crate::domain) fn discard_upload(&self, id: &str) -> Result<(), Error> {
        self.sessions.forget(id);
        self.blobs.remove_upload(id)?;
        self.meta
            .write(|w| w.remove_upload(id).map_err(Error::from))?;
        lock(&self.upload_owners).close(id);
        Ok(())
    }
}

/// Digests a running collection must leave alone.
#[derive(Debug, Default)]
pub(in crate::domain) struct GcWatch {
    pub(in crate::domain) running: bool,
    pub(in crate::domain) touched: HashSet<String>,
}

impl Registry {
    /// What uploads and pushes noted while a collection runs: the collection starts and ends
    /// the watch and leaves alone what it holds.
    pub(in crate::domain) fn gc_watch(&self) -> MutexGuard<'_, GcWatch> {
        lock(&self.gc_watch)
    }

    /// Notes digests a push is about to use, so that a running collection keeps them.
    pub(super) fn gc_touch<'a>(&self, digests: impl IntoIterator<Item = &'a str>) {
        let mut watch = lock(&self.gc_watch);
        if watch.running {
            watch.touched.extend(digests.into_iter().map(str::to_owned));
        }
    }
}

/// The blobs of a registry's repositories (`registry.blobs()`): read, serve, unlink, set aside.
#[derive(Clone, Copy)]
pub struct Blobs<'a> {
    pub(super) registry: &'a Registry,
}

impl Blobs<'_> {
    /// Opens a blob linked to `repo`.
    pub fn open(&self, repo: &Repository, digest: &Digest) -> Result<BlobHandle, Error> {
        let record = self.registry.blob_record(repo, digest)?;
        self.registry.open_blob(digest, record.size)
    }

    /// Blob `digest` of `repo` for a GET: where the client may fetch it itself (a presigned
    /// URL of the object store, when reads are handed off), else the blob to serve; the same
    /// checks as `blob` either way.
    pub fn for_get(&self, repo: &Repository, digest: &Digest) -> Result<BlobAt, Error> {
        let record = self.registry.blob_record(repo, digest)?;
        if let Some(url) = self.registry.blobs.redirect(digest)? {
            return Ok(BlobAt::Elsewhere(url));
        }
        self.registry
            .open_blob(digest, record.size)
            .map(BlobAt::Here)
    }

    /// A blob whose file no longer hashes to its name (found by a read): moves the file aside
    /// as `semdock check` does, so it is never served again; pushing the image repairs it.
    pub fn corrupt(&self, digest: &Digest) {
        match self.registry.blobs.set_aside(digest) {
            Ok(moved) => tracing::error!(
                %digest,
                moved_to = %moved,
                "blob file does not hash to its digest (a changed disk or file): moved aside, the read was cut short; push the image again to repair it"
            ),
            Err(e) => tracing::error!(
                %digest,
                error = %e,
                "blob file does not hash to its digest, and moving it aside failed"
            ),
        }
    }

    /// Unlinks a blob from `repo`; the file stays for other repositories and for GC.
    pub fn delete(&self, repo: &Repository, digest: &Digest) -> Result<(), Error> {
        self.registry.meta.write(|w| {
            if w.feed(repo.feed())?.is_none() {
                return Err(feed_unknown(repo));
            }
            if crate::domain::quota::unlink(w, repo.as_str(), digest.as_str())? {
                Ok(())
            } else {
                Err(Error::BlobUnknown {
                    digest: digest.to_string(),
                })
            }
        })
    }
}

/// Uploads in progress (`registry.uploads()`): start, mount, append, complete, cancel.
#[derive(Clone, Copy)]
pub struct Uploads<'a> {
    pub(super) registry: &'a Registry,
}

impl Uploads<'_> {
    /// Opens an upload session in `repo` for `owner` (a principal's subject, or the client's
    /// address); returns its id. An owner with `Limits::upload_sessions` open is refused.
    pub fn start(
        &self,
        repo: &Repository,
        owner: &str,
        algorithm: Algorithm,
    ) -> Result<String, Error> {
        self.registry.start_upload_as(repo, owner, algorithm, false)
    }

    /// Links blob `digest` from `from` into `repo` when `from` has it; says whether it did.
    pub fn mount(
        &self,
        repo: &Repository,
        digest: &Digest,
        from: &Repository,
    ) -> Result<bool, Error> {
        if self.registry.blobs.stat(digest)?.is_none() {
            return Ok(false);
        }
        self.registry.gc_touch([digest.as_str()]);
        self.registry.meta.write(|w| {
            if w.feed(repo.feed())?.is_none() {
                return Err(feed_unknown(repo));
            }
            if !w.is_linked(from.as_str(), digest.as_str())? || w.blob(digest.as_str())?.is_none() {
                return Ok(false);
            }
            link_into(w, repo, digest, self.registry.clock.now())?;
            Ok(true)
        })
    }

    /// Mounts blob `digest` into `repo` from any repository that has it and whose feed
    /// `readable` allows (a mount without `from`); says whether it did. A blob only in
    /// repositories the caller cannot read is never mounted, so its existence stays hidden.
    pub fn mount_any(
        &self,
        repo: &Repository,
        digest: &Digest,
        readable: impl Fn(&str) -> bool,
    ) -> Result<bool, Error> {
        if self.registry.blobs.stat(digest)?.is_none() {
            return Ok(false);
        }
        let sources = self
            .registry
            .meta
            .read()?
            .repositories_linking(digest.as_str())?;
        for source in sources {
            let Ok(from) = source.parse::<Repository>() else {
                continue;
            };
            if readable(from.feed()) && self.mount(repo, digest, &from)? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Bytes received so far by an upload.
    pub fn offset(&self, repo: &Repository, id: &str) -> Result<u64, Error> {
        let id = self.registry.session(repo, id)?;
        let known = match self.registry.sessions.lock().get(&id) {
            // Another node may have appended since (see `Blobs::shared`).
            Some(Slot::Idle(_)) if self.registry.blobs.shared() => None,
            Some(Slot::Idle(state)) => Some(state.len()),
            Some(Slot::Busy(offset)) => Some(*offset),
            None => None,
        };
        match known {
            Some(len) => Ok(len),
            None => self
                .registry
                .blobs
                .upload_len(&id)?
                .ok_or_else(|| Error::UploadUnknown { id: id.clone() }),
        }
    }

    /// Starts appending to an upload. `start`, from a `Content-Range`, must equal the bytes
    /// received so far.
    pub fn append(&self, repo: &Repository, id: &str, start: Option<u64>) -> Result<Append, Error> {
        let id = self.registry.session(repo, id)?;
        let taken = {
            let mut sessions = self.registry.sessions.lock();
            match sessions.get(&id) {
                Some(Slot::Busy(offset)) => {
                    return Err(Error::UploadBusy {
                        id,
                        offset: *offset,
                    });
                }
                Some(Slot::Idle(_)) if self.registry.blobs.shared() => {
                    sessions.insert(id.clone(), Slot::Busy(0));
                    None
                }
                Some(Slot::Idle(state)) => {
                    let state = state.clone();
                    sessions.insert(id.clone(), Slot::Busy(state.len()));
                    Some(state)
                }
                None => {
                    sessions.insert(id.clone(), Slot::Busy(0));
                    None
                }
            }
        };
        // Resumed from the store when this node holds no state: one read where it can.
        let opened = match taken {
            Some(state) => self.registry.blobs.append(&id, state),
            None => self.registry.blobs.resume(&id, upload_algorithm(&id)),
        };
        let writer = match opened {
            Ok(w) => w,
            Err(e) => {
                self.registry.sessions.forget(&id);
                return Err(e.into());
            }
        };
        if let Some(start) = start
            && start != writer.offset()
        {
            let expected = writer.offset();
            // Nothing was written: the next request resumes from the store.
            drop(writer);
            self.registry.sessions.forget(&id);
            return Err(Error::UploadOutOfOrder {
                expected,
                got: start,
            });
        }
        Ok(Append {
            id,
            repository: repo.clone(),
            writer: Some(writer),
            limit: self.registry.limits.upload_bytes,
            sessions: self.registry.sessions.clone(),
        })
    }

    /// Ends a chunk request, keeping the hash state for the next; returns the upload's length.
    pub fn finish_chunk(&self, mut append: Append) -> Result<u64, Error> {
        let state = self.finished(&mut append)?;
        let len = state.len();
        self.registry
            .sessions
            .lock()
            .insert(append.id.clone(), Slot::Idle(state));
        Ok(len)
    }

    /// Completes an upload: checks the digest, publishes the blob and links it to the
    /// repository, all or nothing.
    pub fn complete(&self, mut append: Append, declared: &Digest) -> Result<(), Error> {
        let state = self.finished(&mut append)?;
        let id = append.id.clone();
        let repo = append.repository.clone();
        self.registry.sessions.forget(&id);
        let mut computed = state.digest();
        if computed.algorithm() != declared.algorithm() {
            // Declared by another algorithm than the session streamed with (no
            // `digest-algorithm` on the POST): one more pass over the file.
            computed = self
                .registry
                .blobs
                .rehash_upload(&id, declared.algorithm())?
                .digest();
        }
        if computed != *declared {
            self.registry.discard_upload(&id)?;
            return Err(Error::DigestMismatch {
                declared: declared.to_string(),
                computed: computed.to_string(),
            });
        }
        self.registry.gc_touch([declared.as_str()]);
        self.registry.blobs.publish(&id, declared)?;
        self.registry.meta.write(|w| -> Result<(), Error> {
            // A collection on another node may have removed this very blob (an old, unused
            // copy) between the publish above and this write; it removes files only inside
            // a write of its own, so checking here, under the write lock, is decisive.
            if self.registry.blobs.stat(declared)?.is_none() {
                return Err(Error::Unavailable(format!(
                    "blob {declared} was removed by garbage collection while this upload published it: push it again"
                )));
            }
            if w.blob(declared.as_str())?.is_none() {
                w.put_blob(
                    declared.as_str(),
                    &BlobRecord {
                        size: state.len(),
                        created: self.registry.clock.now(),
                    },
                )?;
            }
            link_into(w, &repo, declared, self.registry.clock.now())?;
            w.remove_upload(&id)?;
            Ok(())
        })?;
        lock(&self.registry.upload_owners).close(&id);
        self.registry.blobs.warm(declared, state.len());
        Ok(())
    }

    /// The bytes `append` wrote; when the last of them met a full disk (the file is written
    /// a block behind the request), the upload is discarded as `abandon` does.
    fn finished(self, append: &mut Append) -> Result<UploadState, Error> {
        append.finish().inspect_err(|e| {
            if matches!(e, Error::StorageFull) {
                let _ = self.registry.discard_upload(&append.id);
            }
        })
    }

    /// Ends an upload whose request failed beyond repair (a full disk), removing its bytes.
    pub fn abandon(&self, mut append: Append) -> Result<(), Error> {
        append.writer = None;
        let id = std::mem::take(&mut append.id);
        self.registry.discard_upload(&id)
    }

    /// Cancels an upload and removes its bytes.
    pub fn cancel(&self, repo: &Repository, id: &str) -> Result<(), Error> {
        let id = self.registry.session(repo, id)?;
        if let Some(Slot::Busy(offset)) = self.registry.sessions.lock().get(&id) {
            return Err(Error::UploadBusy {
                id,
                offset: *offset,
            });
        }
        self.registry.discard_upload(&id)
    }
}
