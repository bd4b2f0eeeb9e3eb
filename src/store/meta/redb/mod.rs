//! The embedded metadata engine (behind the seam's traits): one redb file holding feeds,
//! repositories, manifests (bodies included), tags, blob records and links, referrers and
//! upload sessions; its tables are declared once, in `tables`, and each aggregate's reads and
//! writes are in a file of its own (`feeds`, `tags`, `manifests`, `blobs`, `history`,
//! `accounts`, `audit`, `settings`). `migrate` holds what earlier releases left to do at open;
//! `copy` writes a snapshot.
//!
//! `RedbMeta::read` gives a snapshot; `RedbMeta::write` runs a closure in one write
//! transaction and commits only if it returns `Ok`, so a change is visible whole or not at all.
//! redb calls block: callers run them off the async executor.

mod accounts;
mod audit;
mod blobs;
mod copy;
mod feeds;
mod history;
mod manifests;
mod migrate;
mod settings;
pub mod tables;
mod tags;
mod walk;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError, RwLock};

use redb::{Database, Durability, ReadableDatabase};

use crate::store::meta::{Aborted, Failure, MetaError, MetaRead, MetaWrite, Metadata};
pub use tables::{Reader, Tables, Writer};

/// The open metadata database.
pub struct RedbMeta {
    path: PathBuf,
    /// redb's page cache (its default, 1 GiB, is more than an appliance should hold).
    cache_bytes: usize,
    /// Replaced by a fresh open after an I/O error (a full disk): redb then refuses every
    /// write of the handle that saw it ("previous I/O error"), until it is reopened.
    db: RwLock<Arc<Database>>,
    /// Set when a write failed on I/O: the next write reopens the file first.
    poisoned: std::sync::atomic::AtomicBool,
    /// Bumped after every committed write: caches of reads compare it (see `generation`), and
    /// the group commit counts writes by it (see `write`).
    generation: AtomicU64,
    /// Durable commits made by `make_durable`.
    flushes: AtomicU64,
    flush: Mutex<Flush>,
    flushed: Condvar,
}

/// The state of the shared flush: writes up to generation `durable` are on disk; `running` while one
/// writer flushes for all.
#[derive(Default)]
struct Flush {
    durable: u64,
    running: bool,
}

impl RedbMeta {
    /// Opens (or creates) the database at `path` with a 32 MiB page cache; fails with
    /// `InUse` while another process has it.
    pub fn open(path: &Path) -> Result<Self, MetaError> {
        Self::open_with_cache(path, 32 << 20)
    }

    /// Opens (or creates) the database at `path` with a page cache of `cache_bytes`.
    pub fn open_with_cache(path: &Path, cache_bytes: usize) -> Result<Self, MetaError> {
        let db = Self::open_file(path, cache_bytes)?;
        // It holds the token signing key and password hashes.
        crate::store::owner_only::restrict(path)
            .map_err(|e| MetaError::from(redb::Error::Io(e)))?;
        let store = Self {
            path: path.to_owned(),
            cache_bytes,
            db: RwLock::new(Arc::new(db)),
            poisoned: std::sync::atomic::AtomicBool::new(false),
            generation: AtomicU64::new(0),
            flushes: AtomicU64::new(0),
            flush: Mutex::new(Flush::default()),
            flushed: Condvar::new(),
        };
        // Creating every table up front lets readers open them without a missing-table case.
        // One write at start-up (one durable commit): what earlier releases left to do.
        let (built, versioned, _) = store.write(|w| {
            Ok::<_, MetaError>((
                w.build_tag_indexes()?,
                w.version_records()?,
                w.index_audit_kinds()?,
            ))
        })?;
        if built {
            tracing::info!(path = %store.path.display(), "indexed the tags by version and by digest");
        }
        if versioned > 0 {
            tracing::info!(path = %store.path.display(), records = versioned, "gave every record its encoding version");
        }
        super::migrations::apply(&store)?;
        Ok(store)
    }

    fn open_file(path: &Path, cache_bytes: usize) -> Result<Database, MetaError> {
        Database::builder()
            .set_cache_size(cache_bytes)
            .create(path)
            .map_err(|e| match e {
                redb::DatabaseError::DatabaseAlreadyOpen => MetaError::InUse(path.to_owned()),
                other => redb::Error::from(other).into(),
            })
    }

    fn db(&self) -> Arc<Database> {
        self.db
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// After a write failed on I/O: closes the handle and opens the file again, which rolls
    /// back to the last durable commit (every write that returned `Ok`). Readers that still
    /// hold a snapshot of the old handle keep its file open for a moment: retried briefly.
    /// While the disk is still full this fails, and the next write tries again.
    fn recover(&self) -> Result<(), MetaError> {
        let mut slot = self.db.write().unwrap_or_else(PoisonError::into_inner);
        if !self.poisoned.load(Ordering::Acquire) {
            return Ok(());
        }
        // Drop our handle first: the file lock goes with the last one.
        let placeholder = Arc::new(
            Database::builder()
                .create_with_backend(redb::backends::InMemoryBackend::new())
                .map_err(|e| MetaError::from(redb::Error::from(e)))?,
        );
        drop(std::mem::replace(&mut *slot, placeholder));
        for _ in 0..50 {
            match Self::open_file(&self.path, self.cache_bytes) {
                Ok(db) => {
                    *slot = Arc::new(db);
                    self.poisoned.store(false, Ordering::Release);
                    // Writes that committed without becoming durable are gone: every cache
                    // of a read must be dropped.
                    self.generation.fetch_add(1, Ordering::AcqRel);
                    tracing::warn!(path = %self.path.display(), "reopened the database after an I/O error");
                    return Ok(());
                }
                Err(MetaError::InUse(_)) => {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(e) => return Err(e),
            }
        }
        Err(MetaError::Reopening)
    }

    /// A consistent snapshot of everything.
    pub fn read(&self) -> Result<Reader, MetaError> {
        match self.read_once() {
            Err(e) if e.poisons_store() => {
                // The handle met an I/O error in a write: reopen it and read again.
                self.poisoned.store(true, Ordering::Release);
                self.recover()?;
                self.read_once()
            }
            other => other,
        }
    }

    fn read_once(&self) -> Result<Reader, MetaError> {
        let txn = self.db().begin_read()?;
        Reader::open(&txn)
    }

    /// Runs `f` in one write transaction, committed only when `f` succeeds; returns once the
    /// commit is on disk.
    ///
    /// Group commit: the transaction commits without an fsync, then one durable commit makes
    /// it and every write committed before it durable at once, so concurrent writers share
    /// fsyncs instead of queueing one each behind redb's single writer lock.
    pub fn write<T, E: From<MetaError> + Failure>(
        &self,
        f: impl FnOnce(&mut Writer<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        if self.poisoned.load(Ordering::Acquire) {
            self.recover()?;
        }
        let started = std::time::Instant::now();
        let mut txn = self.db().begin_write().map_err(|e| self.failed(e))?;
        txn.set_durability(Durability::None)
            .map_err(|e| MetaError::from(redb::Error::from(e)))?;
        let value = {
            let mut tables = Writer::open(&txn)?;
            f(&mut tables).inspect_err(|e| {
                if e.poisons_store() {
                    self.poisoned.store(true, Ordering::Release);
                }
            })?
        };
        txn.commit().map_err(|e| self.failed(e))?;
        let seq = self.generation.fetch_add(1, Ordering::AcqRel) + 1;
        self.make_durable(seq).inspect_err(|e| {
            if e.poisons_store() {
                self.poisoned.store(true, Ordering::Release);
            }
        })?;
        crate::metrics::get()
            .commit_seconds
            .observe(started.elapsed().as_secs_f64());
        Ok(value)
    }

    /// Notes an error of the write path; one that poisons the handle makes the next write
    /// reopen the file.
    fn failed(&self, e: impl Into<redb::Error>) -> MetaError {
        let e = MetaError::from(e.into());
        if e.poisons_store() {
            self.poisoned.store(true, Ordering::Release);
        }
        e
    }

    /// Returns once write `seq` is durable: flushes for every write committed so far, or
    /// waits for the flush running now and then, if that one began too early, flushes again.
    /// A failed flush fails the writers waiting on it; the next writer tries again.
    fn make_durable(&self, seq: u64) -> Result<(), MetaError> {
        let lock = || self.flush.lock().unwrap_or_else(PoisonError::into_inner);
        let mut flush = lock();
        loop {
            if flush.durable >= seq {
                return Ok(());
            }
            if flush.running {
                flush = self
                    .flushed
                    .wait(flush)
                    .unwrap_or_else(PoisonError::into_inner);
                continue;
            }
            flush.running = true;
            // Every write counted by now committed before the durable commit below begins.
            let upto = self.generation.load(Ordering::Acquire);
            drop(flush);
            let done = self
                .db()
                .begin_write()
                .map_err(MetaError::from)
                .and_then(|txn| txn.commit().map_err(MetaError::from));
            flush = lock();
            flush.running = false;
            if done.is_ok() {
                flush.durable = flush.durable.max(upto);
                self.flushes.fetch_add(1, Ordering::Relaxed);
            }
            self.flushed.notify_all();
            done?;
        }
    }

    /// How many writes have been committed since the store was opened. A value read in a
    /// transaction begun after reading generation `g` is current for as long as the
    /// generation is still `g`: read it *before* `read()`.
    #[must_use]
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }
}

impl Metadata for RedbMeta {
    fn read(&self) -> Result<Box<dyn MetaRead + '_>, MetaError> {
        Ok(Box::new(RedbMeta::read(self)?))
    }

    fn write_dyn(
        &self,
        f: &mut dyn FnMut(&mut dyn MetaWrite) -> Result<(), Aborted>,
    ) -> Result<bool, MetaError> {
        match RedbMeta::write(self, |w| f(w).map_err(Step::Aborted)) {
            Ok(()) => Ok(true),
            Err(Step::Aborted(_)) => Ok(false),
            Err(Step::Failed(e)) => Err(e),
        }
    }

    fn generation(&self) -> u64 {
        RedbMeta::generation(self)
    }

    fn snapshot_to(&self, path: &Path) -> Result<u64, MetaError> {
        RedbMeta::snapshot_to(self, path)
    }
}

/// How a write through the seam ended when it did not commit.
enum Step {
    Aborted(Aborted),
    Failed(MetaError),
}

impl From<MetaError> for Step {
    fn from(e: MetaError) -> Self {
        Self::Failed(e)
    }
}

impl Failure for Step {
    fn poisons_store(&self) -> bool {
        match self {
            Self::Aborted(a) => a.poisons,
            Self::Failed(e) => e.poisons_store(),
        }
    }
}

impl From<::redb::Error> for MetaError {
    fn from(e: ::redb::Error) -> Self {
        match e {
            ::redb::Error::Io(io) if io.kind() == std::io::ErrorKind::StorageFull => {
                Self::StorageFull
            }
            other => Self::Database(other),
        }
    }
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for MetaError {
            fn from(e: $t) -> Self {
                ::redb::Error::from(e).into()
            }
        }
    )*};
}
from_redb!(
    ::redb::TransactionError,
    ::redb::TableError,
    ::redb::StorageError,
    ::redb::CommitError
);

#[cfg(test)]
mod tests {
    use super::tables::SETTINGS;
    use super::*;
    use crate::store::meta::prelude::*;

    /// What a killed process leaves is the file as it stands: every write that has returned
    /// must be in it, though most were committed without an fsync of their own.
    #[test]
    fn every_write_that_returned_is_in_the_file_with_eight_writers_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("meta.redb");
        let store = RedbMeta::open(&path).unwrap();
        std::thread::scope(|scope| {
            for t in 0..8 {
                let store = &store;
                scope.spawn(move || {
                    for i in 0..25 {
                        let key = format!("t{t}-{i}");
                        store
                            .write(|w| w.put_setting(&key, key.as_bytes()))
                            .unwrap();
                    }
                });
            }
        });
        // A copy taken now, with the store still open, is what a crash here would leave.
        let copy = dir.path().join("copy.redb");
        std::fs::copy(&path, &copy).unwrap();
        let reopened = RedbMeta::open(&copy).unwrap();
        let read = reopened.read().unwrap();
        for t in 0..8 {
            for i in 0..25 {
                let key = format!("t{t}-{i}");
                assert_eq!(read.setting(&key).unwrap().as_deref(), Some(key.as_bytes()));
            }
        }
    }

    #[test]
    fn writes_committed_while_a_flush_runs_share_the_next_flush() {
        let dir = tempfile::tempdir().unwrap();
        let store = RedbMeta::open(&dir.path().join("meta.redb")).unwrap();
        let before = store.flushes.load(Ordering::Relaxed);
        // As if a flush were running: the writers commit, then wait for it.
        store.flush.lock().unwrap().running = true;
        let committed = store.generation();
        std::thread::scope(|scope| {
            for t in 0..8 {
                let store = &store;
                scope.spawn(move || {
                    let key = format!("t{t}");
                    store
                        .write(|w| w.put_setting(&key, key.as_bytes()))
                        .unwrap();
                });
            }
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
            while store.generation() < committed + 8 {
                assert!(
                    std::time::Instant::now() < deadline,
                    "writers did not commit"
                );
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            // The flush "ends" without having covered them: the first writer to wake
            // flushes for all eight.
            store.flush.lock().unwrap().running = false;
            store.flushed.notify_all();
        });
        assert_eq!(store.flushes.load(Ordering::Relaxed) - before, 1);
    }

    /// The copy check above holds only if it can fail: a commit left without a flush is not
    /// in a copy of the file, and the next write's flush puts it there.
    #[test]
    fn a_write_committed_without_a_flush_is_not_in_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("meta.redb");
        let store = RedbMeta::open(&path).unwrap();
        let mut txn = store.db().begin_write().unwrap();
        txn.set_durability(Durability::None).unwrap();
        txn.open_table(SETTINGS)
            .unwrap()
            .insert("k", &b"v"[..])
            .unwrap();
        txn.commit().unwrap();
        let copy = dir.path().join("copy.redb");
        std::fs::copy(&path, &copy).unwrap();
        let reopened = RedbMeta::open(&copy).unwrap();
        assert_eq!(reopened.read().unwrap().setting("k").unwrap(), None);
        drop(reopened);
        // The next write's flush carries it.
        store.write(|w| w.put_setting("l", b"w")).unwrap();
        std::fs::copy(&path, &copy).unwrap();
        let reopened = RedbMeta::open(&copy).unwrap();
        assert_eq!(
            reopened.read().unwrap().setting("k").unwrap().as_deref(),
            Some(&b"v"[..])
        );
    }
}
