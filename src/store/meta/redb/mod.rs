//! The embedded metadata engine (behind the `api` traits): one redb file holding feeds,
//! repositories, manifests (bodies included), tags, blob records and links, referrers and
//! upload sessions; its tables are declared in `tables`.
//!
//! `MetaStore::read` gives a snapshot; `MetaStore::write` runs a closure in one write
//! transaction and commits only if it returns `Ok`, so a change is visible whole or not at all.
//! redb calls block: callers run them off the async executor.

pub mod tables;

use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError, RwLock};

use redb::{Database, Durability, ReadOnlyTable, ReadableDatabase, ReadableTable, Table};

use super::codec::{self, decode, encode};
use super::{
    Aborted, ApiKeyRecord, AuditRecord, BlobRecord, Failure, FeedRecord, HistoryRecord,
    ManifestRecord, MetaError, MetaRead, MetaWrite, Metadata, PromotionRecord, RepositoryRecord,
    RetentionRecord, Scan, UploadRecord, UserRecord,
};
use super::{api, precedence};
use tables::{
    API_KEYS, AUDIT, AUDIT_KINDS, BLOB_LINKS, BLOBS, FEEDS, GRANTS, MANIFESTS, PROMOTIONS, PULLS,
    RANKED_TAGS, REFERRERS, REPO_HISTORY, REPOSITORIES, RETENTION, SETTINGS, TAG_HISTORY, TAGS,
    TAGS_BY_DIGEST, TOMBSTONES, UPLOADS, USERS,
};

/// The open metadata database.
pub struct MetaStore {
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

/// The tables of one transaction, opened once. `Reader` and `Writer` are its two forms.
pub struct Tables<
    Fe,
    Re,
    Ma,
    Ta,
    Bl,
    Li,
    Rf,
    Up,
    Us,
    Ak,
    Gr,
    Se,
    Tb,
    Hi,
    Au,
    Rt,
    Pl,
    Pr,
    Ve,
    Td,
    Rh,
    Ai,
> {
    feeds: Fe,
    repositories: Re,
    manifests: Ma,
    tags: Ta,
    blobs: Bl,
    links: Li,
    referrers: Rf,
    uploads: Up,
    users: Us,
    api_keys: Ak,
    grants: Gr,
    settings: Se,
    tombstones: Tb,
    history: Hi,
    audit: Au,
    retention: Rt,
    pulls: Pl,
    promotions: Pr,
    ranked: Ve,
    digest_tags: Td,
    repo_history: Rh,
    /// (audit kind, sequence): the audit log by kind
    audit_kinds: Ai,
}

type Str = &'static str;
type Bytes = &'static [u8];
type Pair = (&'static str, &'static str);
type Triple = (&'static str, &'static str, &'static str);
type Seq = (&'static str, &'static str, u64);
type Ranked = (&'static str, &'static [u8]);
type Numbered = (&'static str, u64);

/// One change of a tag's history: (tag, sequence number, record).
pub type HistoryRow = (String, u64, HistoryRecord);

/// A read snapshot.
pub type Reader = Tables<
    ReadOnlyTable<Str, Bytes>,
    ReadOnlyTable<Str, Bytes>,
    ReadOnlyTable<Pair, Bytes>,
    ReadOnlyTable<Pair, Str>,
    ReadOnlyTable<Str, Bytes>,
    ReadOnlyTable<Pair, u64>,
    ReadOnlyTable<Triple, u64>,
    ReadOnlyTable<Str, Bytes>,
    ReadOnlyTable<Str, Bytes>,
    ReadOnlyTable<Str, Bytes>,
    ReadOnlyTable<Pair, Str>,
    ReadOnlyTable<Str, Bytes>,
    ReadOnlyTable<Pair, Str>,
    ReadOnlyTable<Seq, Bytes>,
    ReadOnlyTable<u64, Bytes>,
    ReadOnlyTable<Str, Bytes>,
    ReadOnlyTable<Pair, u64>,
    ReadOnlyTable<u64, Bytes>,
    ReadOnlyTable<Ranked, Pair>,
    ReadOnlyTable<Triple, ()>,
    ReadOnlyTable<Numbered, Str>,
    ReadOnlyTable<Numbered, ()>,
>;

/// The tables of a write transaction.
pub type Writer<'t> = Tables<
    Table<'t, Str, Bytes>,
    Table<'t, Str, Bytes>,
    Table<'t, Pair, Bytes>,
    Table<'t, Pair, Str>,
    Table<'t, Str, Bytes>,
    Table<'t, Pair, u64>,
    Table<'t, Triple, u64>,
    Table<'t, Str, Bytes>,
    Table<'t, Str, Bytes>,
    Table<'t, Str, Bytes>,
    Table<'t, Pair, Str>,
    Table<'t, Str, Bytes>,
    Table<'t, Pair, Str>,
    Table<'t, Seq, Bytes>,
    Table<'t, u64, Bytes>,
    Table<'t, Str, Bytes>,
    Table<'t, Pair, u64>,
    Table<'t, u64, Bytes>,
    Table<'t, Ranked, Pair>,
    Table<'t, Triple, ()>,
    Table<'t, Numbered, Str>,
    Table<'t, Numbered, ()>,
>;

impl MetaStore {
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
        Ok(Tables {
            feeds: txn.open_table(FEEDS)?,
            repositories: txn.open_table(REPOSITORIES)?,
            manifests: txn.open_table(MANIFESTS)?,
            tags: txn.open_table(TAGS)?,
            blobs: txn.open_table(BLOBS)?,
            links: txn.open_table(BLOB_LINKS)?,
            referrers: txn.open_table(REFERRERS)?,
            uploads: txn.open_table(UPLOADS)?,
            users: txn.open_table(USERS)?,
            api_keys: txn.open_table(API_KEYS)?,
            grants: txn.open_table(GRANTS)?,
            settings: txn.open_table(SETTINGS)?,
            tombstones: txn.open_table(TOMBSTONES)?,
            history: txn.open_table(TAG_HISTORY)?,
            audit: txn.open_table(AUDIT)?,
            retention: txn.open_table(RETENTION)?,
            pulls: txn.open_table(PULLS)?,
            promotions: txn.open_table(PROMOTIONS)?,
            ranked: txn.open_table(RANKED_TAGS)?,
            digest_tags: txn.open_table(TAGS_BY_DIGEST)?,
            repo_history: txn.open_table(REPO_HISTORY)?,
            audit_kinds: txn.open_table(AUDIT_KINDS)?,
        })
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
            let mut tables = Tables {
                feeds: txn.open_table(FEEDS).map_err(MetaError::from)?,
                repositories: txn.open_table(REPOSITORIES).map_err(MetaError::from)?,
                manifests: txn.open_table(MANIFESTS).map_err(MetaError::from)?,
                tags: txn.open_table(TAGS).map_err(MetaError::from)?,
                blobs: txn.open_table(BLOBS).map_err(MetaError::from)?,
                links: txn.open_table(BLOB_LINKS).map_err(MetaError::from)?,
                referrers: txn.open_table(REFERRERS).map_err(MetaError::from)?,
                uploads: txn.open_table(UPLOADS).map_err(MetaError::from)?,
                users: txn.open_table(USERS).map_err(MetaError::from)?,
                api_keys: txn.open_table(API_KEYS).map_err(MetaError::from)?,
                grants: txn.open_table(GRANTS).map_err(MetaError::from)?,
                settings: txn.open_table(SETTINGS).map_err(MetaError::from)?,
                tombstones: txn.open_table(TOMBSTONES).map_err(MetaError::from)?,
                history: txn.open_table(TAG_HISTORY).map_err(MetaError::from)?,
                audit: txn.open_table(AUDIT).map_err(MetaError::from)?,
                retention: txn.open_table(RETENTION).map_err(MetaError::from)?,
                pulls: txn.open_table(PULLS).map_err(MetaError::from)?,
                promotions: txn.open_table(PROMOTIONS).map_err(MetaError::from)?,
                ranked: txn.open_table(RANKED_TAGS).map_err(MetaError::from)?,
                digest_tags: txn.open_table(TAGS_BY_DIGEST).map_err(MetaError::from)?,
                repo_history: txn.open_table(REPO_HISTORY).map_err(MetaError::from)?,
                audit_kinds: txn.open_table(AUDIT_KINDS).map_err(MetaError::from)?,
            };
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

impl Metadata for MetaStore {
    fn read(&self) -> Result<Box<dyn MetaRead + '_>, MetaError> {
        Ok(Box::new(MetaStore::read(self)?))
    }

    fn write_dyn(
        &self,
        f: &mut dyn FnMut(&mut dyn MetaWrite) -> Result<(), Aborted>,
    ) -> Result<bool, MetaError> {
        match MetaStore::write(self, |w| f(w).map_err(Step::Aborted)) {
            Ok(()) => Ok(true),
            Err(Step::Aborted(_)) => Ok(false),
            Err(Step::Failed(e)) => Err(e),
        }
    }

    fn generation(&self) -> u64 {
        MetaStore::generation(self)
    }

    fn snapshot_to(&self, path: &Path) -> Result<u64, MetaError> {
        MetaStore::snapshot_to(self, path)
    }
}

/// The settings that number the append-only tables.
const HISTORY_SEQ: &str = super::settings::HISTORY_SEQ.name();
const PROMOTION_SEQ: &str = super::settings::PROMOTION_SEQ.name();
const AUDIT_SEQ: &str = super::settings::AUDIT_SEQ.name();

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

/// Rows written per commit of a copy: what a write transaction holds in memory is bounded
/// by this, not by the size of the database.
const COPY_BATCH: usize = 20_000;

/// A new database file written by a sequence of bounded, durable transactions: consistency
/// comes from the one read transaction it copies.
struct Copy {
    db: Database,
    txn: Option<redb::WriteTransaction>,
    rows: usize,
}

impl Copy {
    fn create(path: &Path) -> Result<Self, MetaError> {
        let db = Database::create(path).map_err(|e| MetaError::from(redb::Error::from(e)))?;
        let mut copy = Self {
            db,
            txn: None,
            rows: 0,
        };
        copy.begin()?;
        Ok(copy)
    }

    fn begin(&mut self) -> Result<(), MetaError> {
        // Durable commits: redb keeps the pages of non-durable ones in memory until a
        // durable commit (a million-manifest backup peaked at 589 MiB that way).
        self.txn = Some(self.db.begin_write()?);
        Ok(())
    }

    fn txn(&self) -> &redb::WriteTransaction {
        // Set by `create` and after every commit.
        self.txn.as_ref().expect("an open transaction")
    }

    /// Copies every row of one table.
    fn table<K: redb::Key + 'static, V: redb::Value + 'static>(
        &mut self,
        from: &redb::ReadTransaction,
        def: redb::TableDefinition<K, V>,
    ) -> Result<(), MetaError> {
        let source = from.open_table(def)?;
        let mut rows = source.iter()?;
        loop {
            let mut more = false;
            let mut written = self.rows;
            {
                let mut target = self.txn().open_table(def)?;
                for entry in rows.by_ref() {
                    let (k, v) = entry?;
                    target.insert(k.value(), v.value())?;
                    written += 1;
                    if written.is_multiple_of(COPY_BATCH) {
                        more = true;
                        break;
                    }
                }
            }
            self.rows = written;
            if !more {
                return Ok(());
            }
            if let Some(txn) = self.txn.take() {
                txn.commit()?;
            }
            self.begin()?;
        }
    }

    /// Commits what is left.
    fn finish(mut self) -> Result<(), MetaError> {
        if let Some(txn) = self.txn.take() {
            txn.commit()?;
        }
        Ok(())
    }
}

impl MetaStore {
    /// Writes a consistent copy of the database, from one read transaction, to a new file at
    /// `path`, leaving out upload sessions (their bytes are not part of a copy), in commits of
    /// bounded size. Returns how many blobs that copy records.
    pub fn snapshot_to(&self, path: &Path) -> Result<u64, MetaError> {
        let from = self.db().begin_read()?;
        let mut to = Copy::create(path)?;
        to.table(&from, FEEDS)?;
        to.table(&from, REPOSITORIES)?;
        to.table(&from, MANIFESTS)?;
        to.table(&from, TAGS)?;
        to.table(&from, BLOBS)?;
        to.table(&from, BLOB_LINKS)?;
        to.table(&from, REFERRERS)?;
        to.txn().open_table(UPLOADS)?;
        to.table(&from, USERS)?;
        to.table(&from, API_KEYS)?;
        to.table(&from, GRANTS)?;
        to.table(&from, SETTINGS)?;
        to.table(&from, TOMBSTONES)?;
        to.table(&from, TAG_HISTORY)?;
        to.table(&from, AUDIT)?;
        to.table(&from, RETENTION)?;
        to.table(&from, PULLS)?;
        to.table(&from, PROMOTIONS)?;
        to.table(&from, RANKED_TAGS)?;
        to.table(&from, TAGS_BY_DIGEST)?;
        to.table(&from, REPO_HISTORY)?;
        to.table(&from, AUDIT_KINDS)?;
        to.finish()?;
        Ok(redb::ReadableTableMetadata::len(&from.open_table(BLOBS)?)?)
    }
}

fn get<K, T>(
    table: &impl ReadableTable<K, Bytes>,
    key: K::SelfType<'_>,
) -> Result<Option<T>, MetaError>
where
    K: redb::Key + 'static,
    T: codec::Record,
{
    table
        .get(key)?
        .map(|guard| decode(guard.value()))
        .transpose()
}

/// Every record of a table keyed by name.
fn all<T: codec::Record>(
    table: &impl ReadableTable<Str, Bytes>,
) -> Result<Vec<(String, T)>, MetaError> {
    let mut out = Vec::new();
    for entry in table.iter()? {
        let (k, v) = entry?;
        out.push((k.value().to_owned(), decode(v.value())?));
    }
    Ok(out)
}

/// `it` forwards, or backwards when `backwards`.
/// Walks of ascending (or, `newest_first`, descending) sequence numbers merged into one.
struct Merged<I: Iterator<Item = Result<u64, MetaError>>> {
    walks: Vec<std::iter::Peekable<I>>,
    newest_first: bool,
}

impl<I: Iterator<Item = Result<u64, MetaError>>> Iterator for Merged<I> {
    type Item = Result<u64, MetaError>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut best: Option<(usize, u64)> = None;
        for (i, walk) in self.walks.iter_mut().enumerate() {
            match walk.peek() {
                Some(Err(_)) => return walk.next(),
                Some(Ok(seq)) => {
                    let better = best.is_none_or(|(_, b)| {
                        if self.newest_first {
                            *seq > b
                        } else {
                            *seq < b
                        }
                    });
                    if better {
                        best = Some((i, *seq));
                    }
                }
                None => {}
            }
        }
        let (i, _) = best?;
        self.walks[i].next()
    }
}

fn ordered<'a, T>(
    it: impl DoubleEndedIterator<Item = T> + 'a,
    backwards: bool,
) -> Box<dyn Iterator<Item = T> + 'a> {
    if backwards {
        Box::new(it.rev())
    } else {
        Box::new(it)
    }
}

/// Every (second component, value) of keys `(first, *)` in a table of strings.
fn pairs_under(
    table: &impl ReadableTable<Pair, Str>,
    first: &str,
) -> Result<Vec<(String, String)>, MetaError> {
    Ok(pairs_page(table, first, None, usize::MAX, |_| true)?.0)
}

/// Up to `limit` (second component, value) of keys `(first, *)` after `after` that `keep`
/// accepts, and whether more follow.
fn pairs_page(
    table: &impl ReadableTable<Pair, Str>,
    first: &str,
    after: Option<&str>,
    limit: usize,
    keep: impl Fn(&str) -> bool,
) -> Result<(Vec<(String, String)>, bool), MetaError> {
    let start = match after {
        Some(after) => Bound::Excluded((first, after)),
        None => Bound::Included((first, "")),
    };
    let mut out = Vec::new();
    for entry in table.range::<(&str, &str)>((start, Bound::Unbounded))? {
        let (k, v) = entry?;
        let (f, second) = k.value();
        if f != first {
            break;
        }
        if !keep(second) {
            continue;
        }
        if out.len() == limit {
            return Ok((out, true));
        }
        out.push((second.to_owned(), v.value().to_owned()));
    }
    Ok((out, false))
}

/// Up to `limit` second components of keys `(first, *)` after `after`, and whether more follow.
fn page_of_pairs<V: redb::Value + 'static>(
    table: &impl ReadableTable<Pair, V>,
    first: &str,
    after: Option<&str>,
    limit: usize,
) -> Result<(Vec<String>, bool), MetaError> {
    let start = match after {
        Some(after) => Bound::Excluded((first, after)),
        None => Bound::Included((first, "")),
    };
    let mut out = Vec::new();
    for entry in table.range::<(&str, &str)>((start, Bound::Unbounded))? {
        let (key, _) = entry?;
        let (f, second) = key.value();
        if f != first {
            break;
        }
        if out.len() == limit {
            return Ok((out, true));
        }
        out.push(second.to_owned());
    }
    Ok((out, false))
}

impl<Fe, Re, Ma, Ta, Bl, Li, Rf, Up, Us, Ak, Gr, Se, Tb, Hi, Au, Rt, Pl, Pr, Ve, Td, Rh, Ai>
    api::MetaRead
    for Tables<
        Fe,
        Re,
        Ma,
        Ta,
        Bl,
        Li,
        Rf,
        Up,
        Us,
        Ak,
        Gr,
        Se,
        Tb,
        Hi,
        Au,
        Rt,
        Pl,
        Pr,
        Ve,
        Td,
        Rh,
        Ai,
    >
where
    Fe: ReadableTable<Str, Bytes>,
    Re: ReadableTable<Str, Bytes>,
    Ma: ReadableTable<Pair, Bytes>,
    Ta: ReadableTable<Pair, Str>,
    Bl: ReadableTable<Str, Bytes>,
    Li: ReadableTable<Pair, u64>,
    Rf: ReadableTable<Triple, u64>,
    Up: ReadableTable<Str, Bytes>,
    Us: ReadableTable<Str, Bytes>,
    Ak: ReadableTable<Str, Bytes>,
    Gr: ReadableTable<Pair, Str>,
    Se: ReadableTable<Str, Bytes>,
    Tb: ReadableTable<Pair, Str>,
    Hi: ReadableTable<Seq, Bytes>,
    Au: ReadableTable<u64, Bytes>,
    Rt: ReadableTable<Str, Bytes>,
    Pl: ReadableTable<Pair, u64>,
    Pr: ReadableTable<u64, Bytes>,
    Ve: ReadableTable<Ranked, Pair>,
    Td: ReadableTable<Triple, ()>,
    Rh: ReadableTable<Numbered, Str>,
    Ai: ReadableTable<Numbered, ()>,
{
    fn feed(&self, name: &str) -> Result<Option<FeedRecord>, MetaError> {
        get(&self.feeds, name)
    }

    fn feeds(&self) -> Result<Vec<(String, FeedRecord)>, MetaError> {
        all(&self.feeds)
    }

    fn repository(&self, name: &str) -> Result<Option<RepositoryRecord>, MetaError> {
        get(&self.repositories, name)
    }

    fn repositories(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
        keep: &dyn Fn(&str) -> bool,
    ) -> Result<(Vec<String>, bool), MetaError> {
        let start = after.map_or(Bound::Included(prefix), Bound::Excluded);
        let mut out = Vec::new();
        for entry in self.repositories.range::<&str>((start, Bound::Unbounded))? {
            let (k, _) = entry?;
            let name = k.value();
            if !name.starts_with(prefix) {
                break;
            }
            if !keep(name) {
                continue;
            }
            if out.len() == limit {
                return Ok((out, true));
            }
            out.push(name.to_owned());
        }
        Ok((out, false))
    }

    fn manifest(&self, repo: &str, digest: &str) -> Result<Option<ManifestRecord>, MetaError> {
        get(&self.manifests, (repo, digest))
    }

    fn has_manifest(&self, repo: &str, digest: &str) -> Result<bool, MetaError> {
        Ok(self.manifests.get((repo, digest))?.is_some())
    }

    fn tag(&self, repo: &str, tag: &str) -> Result<Option<String>, MetaError> {
        Ok(self.tags.get((repo, tag))?.map(|g| g.value().to_owned()))
    }

    fn tags(
        &self,
        repo: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<String>, bool), MetaError> {
        page_of_pairs(&self.tags, repo, after, limit)
    }

    fn tag_targets(&self, repo: &str) -> Result<Vec<(String, String)>, MetaError> {
        pairs_under(&self.tags, repo)
    }

    fn highest_version(
        &self,
        repo: &str,
        scope: precedence::Scope,
    ) -> Result<Option<(String, String)>, MetaError> {
        let (low, high) = precedence::bounds(scope);
        let last = self
            .ranked
            .range::<(&str, &[u8])>((repo, low.as_slice())..=(repo, high.as_slice()))?
            .next_back()
            .transpose()?;
        Ok(last.map(|(_, v)| {
            let (tag, digest) = v.value();
            (tag.to_owned(), digest.to_owned())
        }))
    }

    fn versions_page(
        &self,
        repo: &str,
        before: Option<&semver::Version>,
        limit: usize,
        keep: &dyn Fn(&str) -> bool,
    ) -> Result<(Vec<(String, String)>, bool), MetaError> {
        let [stable, pre] = precedence::version_ranges(before).map(|(low, high)| {
            let high = match &high {
                Bound::Included(k) => Bound::Included((repo, k.as_slice())),
                Bound::Excluded(k) => Bound::Excluded((repo, k.as_slice())),
                Bound::Unbounded => Bound::Unbounded,
            };
            self.ranked
                .range::<(&str, &[u8])>((Bound::Included((repo, low.as_slice())), high))
                .map(|range| {
                    range.rev().map(|e| {
                        e.map(|(_, v)| {
                            let (tag, digest) = v.value();
                            (tag.to_owned(), digest.to_owned())
                        })
                        .map_err(MetaError::from)
                    })
                })
        });
        precedence::merge_versions(stable?, pre?, limit, keep)
    }

    fn named_tags_page(
        &self,
        repo: &str,
        after: Option<&str>,
        limit: usize,
        keep: &dyn Fn(&str) -> bool,
    ) -> Result<(Vec<(String, String)>, bool), MetaError> {
        let (low, high) = precedence::bounds(precedence::Scope::Named);
        let start = after.map(|a| {
            let mut k = vec![precedence::NAMED];
            k.extend_from_slice(a.as_bytes());
            k
        });
        let low = match &start {
            Some(k) => Bound::Excluded((repo, k.as_slice())),
            None => Bound::Included((repo, low.as_slice())),
        };
        let mut out = Vec::new();
        for entry in self
            .ranked
            .range::<(&str, &[u8])>((low, Bound::Included((repo, high.as_slice()))))?
        {
            let (_, v) = entry?;
            let (tag, digest) = v.value();
            if !keep(tag) {
                continue;
            }
            if out.len() == limit {
                return Ok((out, true));
            }
            out.push((tag.to_owned(), digest.to_owned()));
        }
        Ok((out, false))
    }

    fn tombstones_page(
        &self,
        repo: &str,
        after: Option<&str>,
        limit: usize,
        keep: &dyn Fn(&str) -> bool,
    ) -> Result<(Vec<(String, String)>, bool), MetaError> {
        pairs_page(&self.tombstones, repo, after, limit, keep)
    }

    fn history_page(
        &self,
        repo: &str,
        tag: Option<&str>,
        cursor: Option<u64>,
        newest_first: bool,
        limit: usize,
        keep: &dyn Fn(&str, &HistoryRecord) -> bool,
    ) -> Result<(Vec<HistoryRow>, bool), MetaError> {
        let (low, high) = match (cursor, newest_first) {
            (None, _) => (Bound::Included(0), Bound::Included(u64::MAX)),
            (Some(c), true) => (Bound::Included(0), Bound::Excluded(c)),
            (Some(c), false) => (Bound::Excluded(c), Bound::Included(u64::MAX)),
        };
        let sequences: Box<dyn Iterator<Item = Result<(String, u64), MetaError>> + '_> =
            if let Some(tag) = tag {
                let range = self.history.range::<(&str, &str, u64)>((
                    low.map(|s| (repo, tag, s)),
                    high.map(|s| (repo, tag, s)),
                ))?;
                ordered(
                    range.map(move |e| {
                        e.map(|(k, _)| (tag.to_owned(), k.value().2))
                            .map_err(MetaError::from)
                    }),
                    newest_first,
                )
            } else {
                let range = self
                    .repo_history
                    .range::<(&str, u64)>((low.map(|s| (repo, s)), high.map(|s| (repo, s))))?;
                ordered(
                    range.map(|e| {
                        e.map(|(k, v)| (v.value().to_owned(), k.value().1))
                            .map_err(MetaError::from)
                    }),
                    newest_first,
                )
            };
        let mut out = Vec::new();
        for entry in sequences {
            let (tag, seq) = entry?;
            let Some(record) = self.history.get((repo, tag.as_str(), seq))? else {
                continue;
            };
            let record: HistoryRecord = decode(record.value())?;
            if !keep(&tag, &record) {
                continue;
            }
            if out.len() == limit {
                return Ok((out, true));
            }
            out.push((tag, seq, record));
        }
        Ok((out, false))
    }

    fn tags_pointing_at(&self, repo: &str, digest: &str) -> Result<Vec<String>, MetaError> {
        let mut out = Vec::new();
        for entry in self
            .digest_tags
            .range::<(&str, &str, &str)>((Bound::Included((repo, digest, "")), Bound::Unbounded))?
        {
            let (k, ()) = (entry?.0, ());
            let (r, d, tag) = k.value();
            if r != repo || d != digest {
                break;
            }
            out.push(tag.to_owned());
        }
        Ok(out)
    }

    fn last_history(&self, repo: &str, tag: &str) -> Result<Option<HistoryRecord>, MetaError> {
        self.history
            .range::<(&str, &str, u64)>((repo, tag, 0)..=(repo, tag, u64::MAX))?
            .next_back()
            .transpose()?
            .map(|(_, v)| decode(v.value()))
            .transpose()
    }

    fn manifest_digests(&self, repo: &str) -> Result<Vec<String>, MetaError> {
        Ok(page_of_pairs(&self.manifests, repo, None, usize::MAX)?.0)
    }

    fn linked_blobs(&self, repo: &str) -> Result<Vec<String>, MetaError> {
        Ok(page_of_pairs(&self.links, repo, None, usize::MAX)?.0)
    }

    fn blob(&self, digest: &str) -> Result<Option<BlobRecord>, MetaError> {
        get(&self.blobs, digest)
    }

    fn is_linked(&self, repo: &str, digest: &str) -> Result<bool, MetaError> {
        Ok(self.links.get((repo, digest))?.is_some())
    }

    fn linked_at(&self, repo: &str, digest: &str) -> Result<Option<u64>, MetaError> {
        Ok(self.links.get((repo, digest))?.map(|at| at.value()))
    }

    fn referrers(&self, repo: &str, subject: &str) -> Result<Vec<String>, MetaError> {
        let mut out = Vec::new();
        let start = Bound::Included((repo, subject, ""));
        for entry in self
            .referrers
            .range::<(&str, &str, &str)>((start, Bound::Unbounded))?
        {
            let (k, _) = entry?;
            let (r, s, referrer) = k.value();
            if r != repo || s != subject {
                break;
            }
            out.push(referrer.to_owned());
        }
        Ok(out)
    }

    fn upload(&self, id: &str) -> Result<Option<UploadRecord>, MetaError> {
        get(&self.uploads, id)
    }

    fn user(&self, name: &str) -> Result<Option<UserRecord>, MetaError> {
        get(&self.users, name)
    }

    fn users(&self) -> Result<Vec<(String, UserRecord)>, MetaError> {
        all(&self.users)
    }

    fn api_key(&self, id: &str) -> Result<Option<ApiKeyRecord>, MetaError> {
        get(&self.api_keys, id)
    }

    fn api_keys(&self) -> Result<Vec<(String, ApiKeyRecord)>, MetaError> {
        all(&self.api_keys)
    }

    fn grant(&self, principal: &str, feed: &str) -> Result<Option<String>, MetaError> {
        Ok(self
            .grants
            .get((principal, feed))?
            .map(|g| g.value().to_owned()))
    }

    fn grants_of(&self, principal: &str) -> Result<Vec<(String, String)>, MetaError> {
        pairs_under(&self.grants, principal)
    }

    fn tombstone(&self, repo: &str, tag: &str) -> Result<Option<String>, MetaError> {
        Ok(self
            .tombstones
            .get((repo, tag))?
            .map(|g| g.value().to_owned()))
    }

    fn tombstones(&self, repo: &str) -> Result<Vec<(String, String)>, MetaError> {
        pairs_under(&self.tombstones, repo)
    }

    fn history(
        &self,
        repo: &str,
        tag: Option<&str>,
    ) -> Result<Vec<(String, u64, HistoryRecord)>, MetaError> {
        let mut out = Vec::new();
        let start = Bound::Included((repo, tag.unwrap_or(""), 0));
        for entry in self
            .history
            .range::<(&str, &str, u64)>((start, Bound::Unbounded))?
        {
            let (k, v) = entry?;
            let (r, t, seq) = k.value();
            if r != repo || tag.is_some_and(|tag| tag != t) {
                break;
            }
            out.push((t.to_owned(), seq, decode(v.value())?));
        }
        out.sort_by_key(|(_, seq, _)| *seq);
        Ok(out)
    }

    fn audit_page(
        &self,
        cursor: Option<u64>,
        newest_first: bool,
        kinds: &[&str],
        limit: usize,
        keep: &dyn Fn(&AuditRecord) -> Scan,
    ) -> Result<(Vec<(u64, AuditRecord)>, bool), MetaError> {
        let bounds = |c: Option<u64>| match (c, newest_first) {
            (None, _) => (Bound::Included(0), Bound::Included(u64::MAX)),
            (Some(c), true) => (Bound::Included(0), Bound::Excluded(c)),
            (Some(c), false) => (Bound::Excluded(c), Bound::Included(u64::MAX)),
        };
        let (low, high) = bounds(cursor);
        let sequences: Box<dyn Iterator<Item = Result<u64, MetaError>> + '_> = if kinds.is_empty() {
            let range = self.audit.range::<u64>((low, high))?;
            ordered(range.map(|e| Ok(e?.0.value())), newest_first)
        } else {
            // One ordered walk per kind, merged by sequence.
            let mut walks = Vec::new();
            for kind in kinds {
                let range = self
                    .audit_kinds
                    .range::<(&str, u64)>((low.map(|s| (*kind, s)), high.map(|s| (*kind, s))))?;
                walks.push(ordered(range.map(|e| Ok(e?.0.value().1)), newest_first).peekable());
            }
            Box::new(Merged {
                walks,
                newest_first,
            })
        };
        let records = sequences.map(|seq| {
            let seq = seq?;
            let bytes = self
                .audit
                .get(seq)?
                .ok_or(MetaError::Codec(postcard::Error::DeserializeUnexpectedEnd))?;
            Ok((seq, decode::<AuditRecord>(bytes.value())?))
        });
        api::scan_page(records, limit, keep)
    }

    fn promotions(&self) -> Result<Vec<PromotionRecord>, MetaError> {
        let mut out = Vec::new();
        for entry in self.promotions.iter()? {
            let (_, v) = entry?;
            out.push(decode(v.value())?);
        }
        Ok(out)
    }

    fn setting(&self, name: &str) -> Result<Option<Vec<u8>>, MetaError> {
        Ok(self.settings.get(name)?.map(|g| g.value().to_vec()))
    }

    fn settings(&self) -> Result<Vec<(String, Vec<u8>)>, MetaError> {
        let mut out = Vec::new();
        for entry in self.settings.iter()? {
            let (k, v) = entry?;
            out.push((k.value().to_owned(), v.value().to_vec()));
        }
        Ok(out)
    }

    fn settings_under(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>, MetaError> {
        let mut out = Vec::new();
        for entry in self.settings.range::<&str>(prefix..)? {
            let (k, v) = entry?;
            if !k.value().starts_with(prefix) {
                break;
            }
            out.push((k.value().to_owned(), v.value().to_vec()));
        }
        Ok(out)
    }

    fn uploads(&self) -> Result<Vec<(String, UploadRecord)>, MetaError> {
        all(&self.uploads)
    }

    fn each_manifest(
        &self,
        f: &mut dyn FnMut(&str, &str, ManifestRecord),
    ) -> Result<(), MetaError> {
        for entry in self.manifests.iter()? {
            let (k, v) = entry?;
            let (repo, digest) = k.value();
            f(repo, digest, decode(v.value())?);
        }
        Ok(())
    }

    fn manifests_of(&self, repo: &str) -> Result<Vec<(String, ManifestRecord)>, MetaError> {
        let mut out = Vec::new();
        let start = Bound::Included((repo, ""));
        for entry in self
            .manifests
            .range::<(&str, &str)>((start, Bound::Unbounded))?
        {
            let (k, v) = entry?;
            let (r, digest) = k.value();
            if r != repo {
                break;
            }
            out.push((digest.to_owned(), decode(v.value())?));
        }
        Ok(out)
    }

    fn recent_history(
        &self,
        limit: usize,
        keep: &dyn Fn(&str) -> bool,
    ) -> Result<Vec<(String, String, HistoryRecord)>, MetaError> {
        let mut newest: std::collections::BTreeMap<u64, (String, String, HistoryRecord)> =
            std::collections::BTreeMap::new();
        for entry in self.history.iter()? {
            let (k, v) = entry?;
            let (repo, tag, seq) = k.value();
            if !keep(repo) {
                continue;
            }
            if newest.len() == limit {
                match newest.first_key_value() {
                    Some((oldest, _)) if *oldest < seq => {
                        newest.pop_first();
                    }
                    _ => continue,
                }
            }
            newest.insert(seq, (repo.to_owned(), tag.to_owned(), decode(v.value())?));
        }
        Ok(newest.into_values().rev().collect())
    }

    fn grants_on(&self, feed: &str) -> Result<Vec<(String, String)>, MetaError> {
        let mut out = Vec::new();
        for entry in self.grants.iter()? {
            let (k, v) = entry?;
            let (principal, f) = k.value();
            if f == feed {
                out.push((principal.to_owned(), v.value().to_owned()));
            }
        }
        Ok(out)
    }

    fn blobs(&self) -> Result<Vec<(String, BlobRecord)>, MetaError> {
        all(&self.blobs)
    }

    fn blob_digests(&self, after: Option<&str>, limit: usize) -> Result<Vec<String>, MetaError> {
        let start = after.map_or(Bound::Unbounded, Bound::Excluded);
        let mut out = Vec::new();
        for entry in self.blobs.range::<&str>((start, Bound::Unbounded))? {
            if out.len() == limit {
                break;
            }
            out.push(entry?.0.value().to_owned());
        }
        Ok(out)
    }

    fn each_blob(&self, f: &mut dyn FnMut(&str, BlobRecord)) -> Result<(), MetaError> {
        for entry in self.blobs.iter()? {
            let (k, v) = entry?;
            f(k.value(), decode(v.value())?);
        }
        Ok(())
    }

    fn each_link(&self, f: &mut dyn FnMut(&str, &str, u64)) -> Result<(), MetaError> {
        for entry in self.links.iter()? {
            let (k, v) = entry?;
            let (repo, digest) = k.value();
            f(repo, digest, v.value());
        }
        Ok(())
    }

    fn repositories_linking(&self, digest: &str) -> Result<Vec<String>, MetaError> {
        let mut out = Vec::new();
        for entry in self.links.iter()? {
            let (k, _) = entry?;
            let (repo, linked) = k.value();
            if linked == digest {
                out.push(repo.to_owned());
            }
        }
        Ok(out)
    }

    fn links(&self) -> Result<Vec<(String, String, u64)>, MetaError> {
        let mut out = Vec::new();
        for entry in self.links.iter()? {
            let (k, v) = entry?;
            let (repo, digest) = k.value();
            out.push((repo.to_owned(), digest.to_owned(), v.value()));
        }
        Ok(out)
    }

    fn retention(&self, feed: &str) -> Result<Option<RetentionRecord>, MetaError> {
        get(&self.retention, feed)
    }

    fn last_pull(&self, repo: &str, digest: &str) -> Result<Option<u64>, MetaError> {
        Ok(self.pulls.get((repo, digest))?.map(|g| g.value()))
    }
}

impl MetaWrite for Writer<'_> {
    fn put_feed(&mut self, name: &str, record: &FeedRecord) -> Result<(), MetaError> {
        self.feeds.insert(name, encode(record)?.as_slice())?;
        Ok(())
    }

    fn remove_feed(&mut self, name: &str) -> Result<bool, MetaError> {
        Ok(self.feeds.remove(name)?.is_some())
    }

    fn put_repository(&mut self, name: &str, record: &RepositoryRecord) -> Result<(), MetaError> {
        self.repositories.insert(name, encode(record)?.as_slice())?;
        Ok(())
    }

    fn remove_repository(&mut self, name: &str) -> Result<(), MetaError> {
        self.repositories.remove(name)?;
        Ok(())
    }

    fn put_manifest(
        &mut self,
        repo: &str,
        digest: &str,
        record: &ManifestRecord,
    ) -> Result<(), MetaError> {
        self.manifests
            .insert((repo, digest), encode(record)?.as_slice())?;
        Ok(())
    }

    fn remove_manifest(&mut self, repo: &str, digest: &str) -> Result<(), MetaError> {
        self.manifests.remove((repo, digest))?;
        Ok(())
    }

    fn set_tag(&mut self, repo: &str, tag: &str, digest: &str) -> Result<(), MetaError> {
        let old = self
            .tags
            .insert((repo, tag), digest)?
            .map(|g| g.value().to_owned());
        if let Some(old) = old {
            self.digest_tags.remove((repo, old.as_str(), tag))?;
        }
        self.index_tag(repo, tag, digest)
    }

    fn remove_tag(&mut self, repo: &str, tag: &str) -> Result<bool, MetaError> {
        let Some(old) = self.tags.remove((repo, tag))?.map(|g| g.value().to_owned()) else {
            return Ok(false);
        };
        self.digest_tags.remove((repo, old.as_str(), tag))?;
        self.ranked
            .remove((repo, precedence::rank(tag).as_slice()))?;
        Ok(true)
    }

    fn put_blob(&mut self, digest: &str, record: &BlobRecord) -> Result<(), MetaError> {
        self.blobs.insert(digest, encode(record)?.as_slice())?;
        Ok(())
    }

    fn link(&mut self, repo: &str, digest: &str, at: u64) -> Result<(), MetaError> {
        self.links.insert((repo, digest), at)?;
        Ok(())
    }

    fn unlink(&mut self, repo: &str, digest: &str) -> Result<bool, MetaError> {
        Ok(self.links.remove((repo, digest))?.is_some())
    }

    fn add_referrer(
        &mut self,
        repo: &str,
        subject: &str,
        referrer: &str,
        at: u64,
    ) -> Result<(), MetaError> {
        self.referrers.insert((repo, subject, referrer), at)?;
        Ok(())
    }

    fn remove_referrer(
        &mut self,
        repo: &str,
        subject: &str,
        referrer: &str,
    ) -> Result<(), MetaError> {
        self.referrers.remove((repo, subject, referrer))?;
        Ok(())
    }

    fn put_upload(&mut self, id: &str, record: &UploadRecord) -> Result<(), MetaError> {
        self.uploads.insert(id, encode(record)?.as_slice())?;
        Ok(())
    }

    fn remove_upload(&mut self, id: &str) -> Result<(), MetaError> {
        self.uploads.remove(id)?;
        Ok(())
    }

    fn put_user(&mut self, name: &str, record: &UserRecord) -> Result<(), MetaError> {
        self.users.insert(name, encode(record)?.as_slice())?;
        Ok(())
    }

    fn put_api_key(&mut self, id: &str, record: &ApiKeyRecord) -> Result<(), MetaError> {
        self.api_keys.insert(id, encode(record)?.as_slice())?;
        Ok(())
    }

    fn remove_api_key(&mut self, id: &str) -> Result<bool, MetaError> {
        Ok(self.api_keys.remove(id)?.is_some())
    }

    fn set_grant(&mut self, principal: &str, feed: &str, role: &str) -> Result<(), MetaError> {
        self.grants.insert((principal, feed), role)?;
        Ok(())
    }

    fn remove_grant(&mut self, principal: &str, feed: &str) -> Result<bool, MetaError> {
        Ok(self.grants.remove((principal, feed))?.is_some())
    }

    fn remove_grants_on(&mut self, feed: &str) -> Result<(), MetaError> {
        let mut doomed = Vec::new();
        for entry in self.grants.iter()? {
            let (k, _) = entry?;
            let (principal, f) = k.value();
            if f == feed {
                doomed.push(principal.to_owned());
            }
        }
        for principal in doomed {
            self.grants.remove((principal.as_str(), feed))?;
        }
        Ok(())
    }

    fn set_tombstone(&mut self, repo: &str, tag: &str, digest: &str) -> Result<(), MetaError> {
        self.tombstones.insert((repo, tag), digest)?;
        Ok(())
    }

    fn remove_tombstone(&mut self, repo: &str, tag: &str) -> Result<bool, MetaError> {
        Ok(self.tombstones.remove((repo, tag))?.is_some())
    }

    fn append_history(
        &mut self,
        repo: &str,
        tag: &str,
        record: &HistoryRecord,
    ) -> Result<(), MetaError> {
        let seq = self.next_seq(HISTORY_SEQ)?;
        self.put_history(repo, tag, seq, record)
    }

    fn put_history(
        &mut self,
        repo: &str,
        tag: &str,
        seq: u64,
        record: &HistoryRecord,
    ) -> Result<(), MetaError> {
        self.history
            .insert((repo, tag, seq), encode(record)?.as_slice())?;
        self.repo_history.insert((repo, seq), tag)?;
        Ok(())
    }

    fn append_promotion(&mut self, record: &PromotionRecord) -> Result<(), MetaError> {
        let seq = self.next_seq(PROMOTION_SEQ)?;
        self.promotions.insert(seq, encode(record)?.as_slice())?;
        Ok(())
    }

    fn append_audit(&mut self, record: &AuditRecord) -> Result<u64, MetaError> {
        let seq = self.next_seq(AUDIT_SEQ)?;
        self.put_audit(seq, record)?;
        Ok(seq)
    }

    fn put_audit(&mut self, seq: u64, record: &AuditRecord) -> Result<(), MetaError> {
        self.audit.insert(seq, encode(record)?.as_slice())?;
        self.audit_kinds.insert((record.kind.as_str(), seq), ())?;
        Ok(())
    }

    fn remove_audit_before(&mut self, time_ms: u64, limit: usize) -> Result<u64, MetaError> {
        let mut old = Vec::new();
        for entry in self.audit.iter()? {
            let (k, v) = entry?;
            let record: AuditRecord = decode(v.value())?;
            if record.time_ms >= time_ms || old.len() == limit {
                break;
            }
            old.push((k.value(), record.kind));
        }
        for (seq, kind) in &old {
            self.audit.remove(*seq)?;
            self.audit_kinds.remove((kind.as_str(), *seq))?;
        }
        Ok(old.len() as u64)
    }

    fn remove_blob(&mut self, digest: &str) -> Result<bool, MetaError> {
        Ok(self.blobs.remove(digest)?.is_some())
    }

    fn put_retention(&mut self, feed: &str, record: &RetentionRecord) -> Result<(), MetaError> {
        self.retention.insert(feed, encode(record)?.as_slice())?;
        Ok(())
    }

    fn remove_retention(&mut self, feed: &str) -> Result<(), MetaError> {
        self.retention.remove(feed)?;
        Ok(())
    }

    fn set_pull(&mut self, repo: &str, digest: &str, at: u64) -> Result<(), MetaError> {
        let newer = self
            .pulls
            .get((repo, digest))?
            .is_none_or(|g| g.value() < at);
        if newer {
            self.pulls.insert((repo, digest), at)?;
        }
        Ok(())
    }

    fn remove_pull(&mut self, repo: &str, digest: &str) -> Result<(), MetaError> {
        self.pulls.remove((repo, digest))?;
        Ok(())
    }

    fn put_setting(&mut self, name: &str, value: &[u8]) -> Result<(), MetaError> {
        self.settings.insert(name, value)?;
        Ok(())
    }

    fn remove_setting(&mut self, name: &str) -> Result<(), MetaError> {
        self.settings.remove(name)?;
        Ok(())
    }
}

impl Writer<'_> {
    fn index_tag(&mut self, repo: &str, tag: &str, digest: &str) -> Result<(), MetaError> {
        self.digest_tags.insert((repo, digest, tag), ())?;
        self.ranked
            .insert((repo, precedence::rank(tag).as_slice()), (tag, digest))?;
        Ok(())
    }

    /// Builds the ranked, by-digest and repository-history indexes from the tags and their
    /// history, once per database (the first open by a release that keeps them); says
    /// whether it did.
    fn build_tag_indexes(&mut self) -> Result<bool, MetaError> {
        const BUILT: &str = super::settings::TAG_INDEXES.name();
        if self.settings.get(BUILT)?.is_some() {
            return Ok(false);
        }
        let mut all = Vec::new();
        for entry in self.tags.iter()? {
            let (k, v) = entry?;
            let (repo, tag) = k.value();
            all.push((repo.to_owned(), tag.to_owned(), v.value().to_owned()));
        }
        for (repo, tag, digest) in &all {
            self.index_tag(repo, tag, digest)?;
        }
        let mut changes = Vec::new();
        for entry in self.history.iter()? {
            let (k, _) = entry?;
            let (repo, tag, seq) = k.value();
            changes.push((repo.to_owned(), tag.to_owned(), seq));
        }
        for (repo, tag, seq) in &changes {
            self.repo_history
                .insert((repo.as_str(), *seq), tag.as_str())?;
        }
        self.settings.insert(BUILT, [1u8].as_slice())?;
        Ok(true)
    }

    /// Indexes the audit log by kind, once per database (marker `audit-kinds-1`): entries
    /// written before the index were feed settings and retention rules only.
    fn index_audit_kinds(&mut self) -> Result<u64, MetaError> {
        const DONE: &str = super::settings::AUDIT_KINDS.name();
        if self.settings.get(DONE)?.is_some() {
            return Ok(0);
        }
        let mut rows = Vec::new();
        for entry in self.audit.iter()? {
            let (k, v) = entry?;
            let record: AuditRecord = decode(v.value())?;
            rows.push((record.kind, k.value()));
        }
        for (kind, seq) in &rows {
            self.audit_kinds.insert((kind.as_str(), *seq), ())?;
        }
        self.settings.insert(DONE, [1u8].as_slice())?;
        Ok(rows.len() as u64)
    }

    /// Prefixes every record written before records carried their encoding version with
    /// version 1 (what they all were), once per database (marker `record-versions-1`);
    /// says how many it rewrote. Bounded memory: a table is rewritten a batch at a time.
    fn version_records(&mut self) -> Result<u64, MetaError> {
        const DONE: &str = super::settings::RECORD_VERSIONS.name();
        if self.settings.get(DONE)?.is_some() {
            return Ok(0);
        }
        let n = version_table(&mut self.feeds)?
            + version_table(&mut self.repositories)?
            + version_table(&mut self.manifests)?
            + version_table(&mut self.blobs)?
            + version_table(&mut self.uploads)?
            + version_table(&mut self.users)?
            + version_table(&mut self.api_keys)?
            + version_table(&mut self.history)?
            + version_table(&mut self.audit)?
            + version_table(&mut self.retention)?
            + version_table(&mut self.promotions)?;
        self.settings.insert(DONE, [1u8].as_slice())?;
        Ok(n)
    }

    /// The next number of a sequence kept in the settings table.
    fn next_seq(&mut self, name: &str) -> Result<u64, MetaError> {
        let current = {
            let stored = self.settings.get(name)?;
            super::settings::counter_from(name, stored.as_ref().map(redb::AccessGuard::value))?
        };
        let next = current + 1;
        self.settings
            .insert(name, super::settings::counter_bytes(next).as_slice())?;
        Ok(next)
    }
}

/// Rewrites every value of `table` as version 1 of its record (the first byte), a batch of
/// keys at a time; returns how many.
fn version_table<K: redb::Key + 'static>(
    table: &mut Table<'_, K, Bytes>,
) -> Result<u64, MetaError> {
    const BATCH: usize = 4096;
    let mut after: Option<Vec<u8>> = None;
    let mut n = 0;
    loop {
        let mut rows: Vec<(Vec<u8>, Vec<u8>)> = Vec::with_capacity(BATCH);
        {
            let range = match &after {
                Some(last) => table.range::<K::SelfType<'_>>((
                    Bound::Excluded(K::from_bytes(last)),
                    Bound::Unbounded,
                ))?,
                None => table.range::<K::SelfType<'_>>(..)?,
            };
            for entry in range.take(BATCH) {
                let (k, v) = entry?;
                let mut value = Vec::with_capacity(v.value().len() + 1);
                value.push(1);
                value.extend_from_slice(v.value());
                rows.push((K::as_bytes(&k.value()).as_ref().to_vec(), value));
            }
        }
        let Some((last, _)) = rows.last() else {
            return Ok(n);
        };
        let last = last.clone();
        for (key, value) in &rows {
            table.insert(K::from_bytes(key), value.as_slice())?;
        }
        n += rows.len() as u64;
        after = Some(last);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A copy larger than one batch is written by several commits and loses no row.
    #[test]
    fn a_snapshot_larger_than_a_batch_copies_every_row() {
        let dir = tempfile::tempdir().unwrap();
        let store = MetaStore::open(&dir.path().join("meta.redb")).unwrap();
        let n = COPY_BATCH * 2 + 7;
        store
            .write(|w| {
                for i in 0..n {
                    w.set_tag("prod/app", &format!("t{i}"), "sha256:x")?;
                    w.put_blob(
                        &format!("sha256:{i:064}"),
                        &BlobRecord {
                            size: 1,
                            created: 0,
                        },
                    )?;
                }
                Ok::<_, MetaError>(())
            })
            .unwrap();
        let copy = dir.path().join("copy.redb");
        assert_eq!(store.snapshot_to(&copy).unwrap(), n as u64);
        let copied = MetaStore::open(&copy).unwrap();
        let r = copied.read().unwrap();
        assert_eq!(r.tag_targets("prod/app").unwrap().len(), n);
        assert_eq!(r.tags_pointing_at("prod/app", "sha256:x").unwrap().len(), n);
        let mut after = None;
        let mut blobs = 0;
        loop {
            let page = r.blob_digests(after.as_deref(), 1000).unwrap();
            let Some(last) = page.last().cloned() else {
                break;
            };
            blobs += page.len();
            after = Some(last);
        }
        assert_eq!(blobs, n);
    }

    /// A database written before the tag indexes existed gets them at its first open.
    #[test]
    fn tags_of_an_older_database_are_indexed_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("meta.redb");
        {
            let db = Database::create(&path).unwrap();
            let txn = db.begin_write().unwrap();
            {
                let mut tags = txn.open_table(TAGS).unwrap();
                for (tag, digest) in [
                    ("1.2.0", "a"),
                    ("1.10.0", "b"),
                    ("2.0.0-rc.1", "c"),
                    ("dev", "b"),
                ] {
                    tags.insert(("prod/app", tag), digest).unwrap();
                }
            }
            txn.commit().unwrap();
        }
        let store = MetaStore::open(&path).unwrap();
        let r = store.read().unwrap();
        let highest = |scope| r.highest_version("prod/app", scope).unwrap();
        assert_eq!(
            highest(precedence::Scope::Stable),
            Some(("1.10.0".into(), "b".into()))
        );
        assert_eq!(
            highest(precedence::Scope::Minor(1, 2)),
            Some(("1.2.0".into(), "a".into()))
        );
        assert_eq!(highest(precedence::Scope::Major(2)), None);
        assert_eq!(
            highest(precedence::Scope::PreRelease),
            Some(("2.0.0-rc.1".into(), "c".into()))
        );
        assert_eq!(
            r.tags_pointing_at("prod/app", "b").unwrap(),
            ["1.10.0", "dev"]
        );
        drop(r);
        // Moving and removing tags keeps both indexes in step.
        store
            .write(|w| {
                w.set_tag("prod/app", "dev", "a")?;
                w.remove_tag("prod/app", "1.10.0")?;
                Ok::<_, MetaError>(())
            })
            .unwrap();
        let r = store.read().unwrap();
        assert_eq!(
            r.tags_pointing_at("prod/app", "b").unwrap(),
            Vec::<String>::new()
        );
        assert_eq!(
            r.tags_pointing_at("prod/app", "a").unwrap(),
            ["1.2.0", "dev"]
        );
        assert_eq!(
            r.highest_version("prod/app", precedence::Scope::Stable)
                .unwrap(),
            Some(("1.2.0".into(), "a".into()))
        );
    }

    /// What a killed process leaves is the file as it stands: every write that has returned
    /// must be in it, though most were committed without an fsync of their own.
    #[test]
    fn every_write_that_returned_is_in_the_file_with_eight_writers_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("meta.redb");
        let store = MetaStore::open(&path).unwrap();
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
        let reopened = MetaStore::open(&copy).unwrap();
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
        let store = MetaStore::open(&dir.path().join("meta.redb")).unwrap();
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
        let store = MetaStore::open(&path).unwrap();
        let mut txn = store.db().begin_write().unwrap();
        txn.set_durability(Durability::None).unwrap();
        txn.open_table(SETTINGS)
            .unwrap()
            .insert("k", &b"v"[..])
            .unwrap();
        txn.commit().unwrap();
        let copy = dir.path().join("copy.redb");
        std::fs::copy(&path, &copy).unwrap();
        let reopened = MetaStore::open(&copy).unwrap();
        assert_eq!(reopened.read().unwrap().setting("k").unwrap(), None);
        drop(reopened);
        // The next write's flush carries it.
        store.write(|w| w.put_setting("l", b"w")).unwrap();
        std::fs::copy(&path, &copy).unwrap();
        let reopened = MetaStore::open(&copy).unwrap();
        assert_eq!(
            reopened.read().unwrap().setting("k").unwrap().as_deref(),
            Some(&b"v"[..])
        );
    }
}
