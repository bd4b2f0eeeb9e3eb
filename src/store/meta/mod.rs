//! The metadata seam: what the domain asks of a metadata store, whatever engine holds it.
//!
//! `Metadata` is an engine: it opens read snapshots (`MetaRead`) and runs write
//! transactions (`MetaWrite`, which reads its own writes). Both are unions of small traits,
//! one per aggregate (`FeedsRead`, `TagsRead`, … and their `…Write`): an engine implements
//! each, and the union follows. Every rule the domain keeps is written once against these
//! traits, so each engine keeps them by answering the same calls: `redb` (embedded, one file)
//! and `postgres` (a cluster's shared database), side by side below. The versioned records
//! are in `codec`; policy lives in the domain layer.
//!
//! Callers take every trait with one import: `use crate::store::meta::prelude::*`.

pub mod codec;
pub mod copy;
pub mod migrations;
pub mod postgres;
pub mod precedence;
pub mod redb;
pub mod settings;

use std::path::{Path, PathBuf};

pub use codec::{
    ApiKeyRecord, AuditRecord, BlobRecord, FeedRecord, HistoryRecord, ManifestRecord,
    PromotionRecord, RepositoryRecord, RetentionRecord, SyncRule, UploadRecord, UpstreamRecord,
    UserRecord,
};

/// The traits of the seam, for callers to import at once.
pub mod prelude {
    pub use super::{
        AccountsRead, AccountsWrite, AuditRead, AuditWrite, BlobsRead, BlobsWrite, FeedsRead,
        FeedsWrite, HistoryRead, HistoryWrite, ManifestsRead, ManifestsWrite, MetaRead, MetaWrite,
        Metadata, SettingsRead, SettingsWrite, TagsRead, TagsWrite,
    };
}

/// A metadata engine.
pub trait Metadata: Send + Sync {
    /// A consistent snapshot of everything.
    fn read(&self) -> Result<Box<dyn MetaRead + '_>, MetaError>;

    /// Runs `f` in one write transaction and returns once it is durable; `f` returning
    /// `Err(aborted)` rolls it back (`aborted.poisons` when the error it saw was an I/O failure
    /// of the engine). Says whether it committed. Callers use `<dyn Metadata>::write`.
    fn write_dyn(
        &self,
        f: &mut dyn FnMut(&mut dyn MetaWrite) -> Result<(), Aborted>,
    ) -> Result<bool, MetaError>;

    /// How many writes have been committed since the engine was opened. A value read in a
    /// transaction begun after reading generation `g` is current for as long as the
    /// generation is still `g`: read it *before* `read()`.
    fn generation(&self) -> u64;

    /// Whether `generation()` answers from memory. When it does not (it asks a database),
    /// callers on an async executor take a cached answer on a blocking thread instead, so a
    /// wait for the database never holds an executor thread.
    fn generation_is_local(&self) -> bool {
        true
    }

    /// Writes a consistent copy of every record except upload sessions, as an embedded
    /// database at `path` (the portable backup format); returns how many blobs it records.
    fn snapshot_to(&self, path: &Path) -> Result<u64, MetaError>;

    /// Makes this process the only one of every process on this metadata that holds the
    /// lock `job` (maintenance across nodes), until the guard is dropped; `None` while
    /// another holds it. A process that dies lets go. The embedded engine has one process.
    fn try_exclusive(&self, job: i64) -> Result<Option<Box<dyn Send>>, MetaError> {
        let _ = job;
        Ok(Some(Box::new(())))
    }
}

/// Why a write's closure gave up: the transaction is rolled back.
#[derive(Debug, Clone, Copy)]
pub struct Aborted {
    /// The closure met an I/O failure of the engine (which may then need reopening).
    pub poisons: bool,
}

impl dyn Metadata + '_ {
    /// Runs `f` in one write transaction, committed only when `f` succeeds; returns once the
    /// commit is durable.
    pub fn write<T, E: From<MetaError> + Failure>(
        &self,
        f: impl FnOnce(&mut dyn MetaWrite) -> Result<T, E>,
    ) -> Result<T, E> {
        let mut f = Some(f);
        let mut outcome: Option<Result<T, E>> = None;
        let committed = self.write_dyn(&mut |w| {
            let Some(f) = f.take() else {
                return Err(Aborted { poisons: false });
            };
            let result = f(w);
            let aborted = result.as_ref().err().map(|e| Aborted {
                poisons: e.poisons_store(),
            });
            outcome = Some(result);
            aborted.map_or(Ok(()), Err)
        })?;
        match outcome {
            Some(Ok(value)) if committed => Ok(value),
            Some(Err(e)) => Err(e),
            // The engine neither ran the closure nor failed: it cannot happen, but is no panic.
            _ => Err(MetaError::Reopening.into()),
        }
    }
}

/// What a read snapshot answers (a write transaction answers it too, with its own writes):
/// every aggregate's reads.
pub trait MetaRead:
    FeedsRead
    + TagsRead
    + ManifestsRead
    + BlobsRead
    + HistoryRead
    + AccountsRead
    + AuditRead
    + SettingsRead
{
}

impl<
    T: FeedsRead
        + TagsRead
        + ManifestsRead
        + BlobsRead
        + HistoryRead
        + AccountsRead
        + AuditRead
        + SettingsRead
        + ?Sized,
> MetaRead for T
{
}

/// What a write transaction changes; committed whole or not at all.
pub trait MetaWrite:
    MetaRead
    + FeedsWrite
    + TagsWrite
    + ManifestsWrite
    + BlobsWrite
    + HistoryWrite
    + AccountsWrite
    + AuditWrite
    + SettingsWrite
{
}

impl<
    T: MetaRead
        + FeedsWrite
        + TagsWrite
        + ManifestsWrite
        + BlobsWrite
        + HistoryWrite
        + AccountsWrite
        + AuditWrite
        + SettingsWrite
        + ?Sized,
> MetaWrite for T
{
}

/// Reads of feeds, the repositories in them and their retention rules.
pub trait FeedsRead {
    fn feed(&self, name: &str) -> Result<Option<FeedRecord>, MetaError>;

    fn feeds(&self) -> Result<Vec<(String, FeedRecord)>, MetaError>;

    fn repository(&self, name: &str) -> Result<Option<RepositoryRecord>, MetaError>;

    /// Up to `limit` repository names starting with `prefix` that `keep` accepts, sorted after
    /// `after`, and whether more follow.
    fn repositories(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
        keep: &dyn Fn(&str) -> bool,
    ) -> Result<(Vec<String>, bool), MetaError>;

    /// The retention rules of `feed`, when it has any.
    fn retention(&self, feed: &str) -> Result<Option<RetentionRecord>, MetaError>;
}

/// Reads of tags (indexed by SemVer precedence and by digest) and the tombstones of deleted
/// versions.
pub trait TagsRead {
    fn tag(&self, repo: &str, tag: &str) -> Result<Option<String>, MetaError>;

    /// Up to `limit` tags of `repo` sorted after `after`, and whether more follow.
    fn tags(
        &self,
        repo: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<String>, bool), MetaError>;

    /// Every (tag, digest) of `repo`.
    fn tag_targets(&self, repo: &str) -> Result<Vec<(String, String)>, MetaError>;

    /// The highest version of `repo` in `scope`, as (tag, digest).
    fn highest_version(
        &self,
        repo: &str,
        scope: precedence::Scope,
    ) -> Result<Option<(String, String)>, MetaError>;

    /// Up to `limit` version tags of `repo` that `keep` accepts below `before` in SemVer precedence (from the
    /// highest when `None`), highest first, as (tag, digest), and whether more follow: a merge
    /// of the pre-release and stable ranges, O(limit · log n).
    fn versions_page(
        &self,
        repo: &str,
        before: Option<&semver::Version>,
        limit: usize,
        keep: &dyn Fn(&str) -> bool,
    ) -> Result<(Vec<(String, String)>, bool), MetaError>;

    /// Up to `limit` tags of `repo` that are not versions and that `keep` accepts, by name after `after`, as (tag,
    /// digest), and whether more follow.
    fn named_tags_page(
        &self,
        repo: &str,
        after: Option<&str>,
        limit: usize,
        keep: &dyn Fn(&str) -> bool,
    ) -> Result<(Vec<(String, String)>, bool), MetaError>;

    /// Up to `limit` tombstones of `repo` that `keep` accepts, by tag after `after`, as (tag, digest), and
    /// whether more follow.
    fn tombstones_page(
        &self,
        repo: &str,
        after: Option<&str>,
        limit: usize,
        keep: &dyn Fn(&str) -> bool,
    ) -> Result<(Vec<(String, String)>, bool), MetaError>;

    /// The tags of `repo` pointing at `digest`.
    fn tags_pointing_at(&self, repo: &str, digest: &str) -> Result<Vec<String>, MetaError>;

    fn tombstone(&self, repo: &str, tag: &str) -> Result<Option<String>, MetaError>;

    /// Every (tag, digest) tombstone of `repo`.
    fn tombstones(&self, repo: &str) -> Result<Vec<(String, String)>, MetaError>;
}

/// Reads of manifests, their referrers and when they were last pulled.
pub trait ManifestsRead {
    fn manifest(&self, repo: &str, digest: &str) -> Result<Option<ManifestRecord>, MetaError>;

    fn has_manifest(&self, repo: &str, digest: &str) -> Result<bool, MetaError>;

    /// Every manifest (digest, record) of `repo`.
    fn manifests_of(&self, repo: &str) -> Result<Vec<(String, ManifestRecord)>, MetaError>;

    /// Every manifest digest stored in `repo`.
    fn manifest_digests(&self, repo: &str) -> Result<Vec<String>, MetaError>;

    /// Calls `f` with every (repository, digest, record) of every manifest.
    fn each_manifest(&self, f: &mut dyn FnMut(&str, &str, ManifestRecord))
    -> Result<(), MetaError>;

    /// Digests of the manifests in `repo` whose subject is `subject`.
    fn referrers(&self, repo: &str, subject: &str) -> Result<Vec<String>, MetaError>;

    /// When a manifest of `repo` was last pulled, as last written.
    fn last_pull(&self, repo: &str, digest: &str) -> Result<Option<u64>, MetaError>;
}

/// Reads of blob records, their links into repositories and upload sessions.
pub trait BlobsRead {
    fn blob(&self, digest: &str) -> Result<Option<BlobRecord>, MetaError>;

    /// Every blob record.
    fn blobs(&self) -> Result<Vec<(String, BlobRecord)>, MetaError>;

    /// Up to `limit` blob digests after `after`, in order: a table walked a page at a time.
    fn blob_digests(&self, after: Option<&str>, limit: usize) -> Result<Vec<String>, MetaError>;

    /// Calls `f` with every blob record, in digest order, holding none of them.
    fn each_blob(&self, f: &mut dyn FnMut(&str, BlobRecord)) -> Result<(), MetaError>;

    fn is_linked(&self, repo: &str, digest: &str) -> Result<bool, MetaError>;

    /// When blob `digest` was last linked into `repo` (uploaded, mounted, or referenced by
    /// a manifest pushed there), if it is linked.
    fn linked_at(&self, repo: &str, digest: &str) -> Result<Option<u64>, MetaError>;

    /// Every blob digest linked to `repo`.
    fn linked_blobs(&self, repo: &str) -> Result<Vec<String>, MetaError>;

    /// Calls `f` with every (repository, blob digest, time linked).
    fn each_link(&self, f: &mut dyn FnMut(&str, &str, u64)) -> Result<(), MetaError>;

    /// The repositories blob `digest` is linked into (a scan of every link: for the rare
    /// mount that names no source).
    fn repositories_linking(&self, digest: &str) -> Result<Vec<String>, MetaError>;

    /// Every (repository, blob digest, time linked).
    fn links(&self) -> Result<Vec<(String, String, u64)>, MetaError>;

    fn upload(&self, id: &str) -> Result<Option<UploadRecord>, MetaError>;

    /// Every upload session.
    fn uploads(&self) -> Result<Vec<(String, UploadRecord)>, MetaError>;
}

/// Reads of the history of every tag and the promotions.
pub trait HistoryRead {
    /// Up to `limit` history records of `repo` (of one tag when given) that `keep` accepts,
    /// after the sequence number `cursor` (exclusive) in the order asked for, as (tag,
    /// sequence, record), and whether more may follow. Reads only what it returns plus what
    /// `keep` refuses.
    fn history_page(
        &self,
        repo: &str,
        tag: Option<&str>,
        cursor: Option<u64>,
        newest_first: bool,
        limit: usize,
        keep: &dyn Fn(&str, &HistoryRecord) -> bool,
    ) -> Result<(Vec<HistoryRow>, bool), MetaError>;

    /// The newest history record of one tag.
    fn last_history(&self, repo: &str, tag: &str) -> Result<Option<HistoryRecord>, MetaError>;

    /// History of `repo` (of one tag when given), oldest first, as (tag, sequence, record).
    fn history(
        &self,
        repo: &str,
        tag: Option<&str>,
    ) -> Result<Vec<(String, u64, HistoryRecord)>, MetaError>;

    /// The newest `limit` history records of every repository that `keep` accepts, newest
    /// first, as (repository, tag, record). Scans the table: for dashboards, not hot paths.
    fn recent_history(
        &self,
        limit: usize,
        keep: &dyn Fn(&str) -> bool,
    ) -> Result<Vec<(String, String, HistoryRecord)>, MetaError>;

    /// Every promotion, oldest first.
    fn promotions(&self) -> Result<Vec<PromotionRecord>, MetaError>;
}

/// Reads of users, API keys and the roles granted to them.
pub trait AccountsRead {
    fn user(&self, name: &str) -> Result<Option<UserRecord>, MetaError>;

    fn users(&self) -> Result<Vec<(String, UserRecord)>, MetaError>;

    fn api_key(&self, id: &str) -> Result<Option<ApiKeyRecord>, MetaError>;

    fn api_keys(&self) -> Result<Vec<(String, ApiKeyRecord)>, MetaError>;

    /// The role granted to `principal` on `feed`, as stored.
    fn grant(&self, principal: &str, feed: &str) -> Result<Option<String>, MetaError>;

    /// Every (feed, role) granted to `principal`.
    fn grants_of(&self, principal: &str) -> Result<Vec<(String, String)>, MetaError>;

    /// Every (principal, role) granted on `feed`.
    fn grants_on(&self, feed: &str) -> Result<Vec<(String, String)>, MetaError>;
}

/// Reads of the audit log.
pub trait AuditRead {
    /// Up to `limit` audit records after the sequence number `cursor` (exclusive) in the
    /// order asked for, of one of `kinds` (any kind when empty: an index walks only those), as
    /// (sequence, record), that `keep` accepts, and whether more may
    /// follow; `keep` answering `Scan::Stop` ends the walk there (a time bound). Reads only
    /// what it returns plus what `keep` refuses.
    fn audit_page(
        &self,
        cursor: Option<u64>,
        newest_first: bool,
        kinds: &[&str],
        limit: usize,
        keep: &dyn Fn(&AuditRecord) -> Scan,
    ) -> Result<(Vec<(u64, AuditRecord)>, bool), MetaError>;
}

/// Reads of named settings (keys, epochs, counters).
pub trait SettingsRead {
    fn setting(&self, name: &str) -> Result<Option<Vec<u8>>, MetaError>;

    /// Every setting (keys, epochs, the counters of the append-only tables), by name.
    fn settings(&self) -> Result<Vec<(String, Vec<u8>)>, MetaError>;

    /// The settings whose names start with `prefix`, by name.
    fn settings_under(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>, MetaError>;

    /// The first `limit` settings whose names start with `prefix` and sort after `after`,
    /// by name: a range read that costs what it returns (an index kept as settings).
    fn settings_under_after(
        &self,
        prefix: &str,
        after: &str,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, MetaError>;
}

/// Writes of feeds, repositories and retention rules.
pub trait FeedsWrite: FeedsRead {
    fn put_feed(&mut self, name: &str, record: &FeedRecord) -> Result<(), MetaError>;

    fn remove_feed(&mut self, name: &str) -> Result<bool, MetaError>;

    fn put_repository(&mut self, name: &str, record: &RepositoryRecord) -> Result<(), MetaError>;

    fn remove_repository(&mut self, name: &str) -> Result<(), MetaError>;

    fn put_retention(&mut self, feed: &str, record: &RetentionRecord) -> Result<(), MetaError>;

    fn remove_retention(&mut self, feed: &str) -> Result<(), MetaError>;
}

/// Writes of tags and tombstones.
pub trait TagsWrite: TagsRead {
    /// Points `tag` at `digest`, keeping the version and by-digest indexes in step.
    fn set_tag(&mut self, repo: &str, tag: &str, digest: &str) -> Result<(), MetaError>;

    fn remove_tag(&mut self, repo: &str, tag: &str) -> Result<bool, MetaError>;

    fn set_tombstone(&mut self, repo: &str, tag: &str, digest: &str) -> Result<(), MetaError>;

    fn remove_tombstone(&mut self, repo: &str, tag: &str) -> Result<bool, MetaError>;
}

/// Writes of manifests, referrers and pull times.
pub trait ManifestsWrite: ManifestsRead {
    fn put_manifest(
        &mut self,
        repo: &str,
        digest: &str,
        record: &ManifestRecord,
    ) -> Result<(), MetaError>;

    fn remove_manifest(&mut self, repo: &str, digest: &str) -> Result<(), MetaError>;

    fn add_referrer(
        &mut self,
        repo: &str,
        subject: &str,
        referrer: &str,
        at: u64,
    ) -> Result<(), MetaError>;

    fn remove_referrer(
        &mut self,
        repo: &str,
        subject: &str,
        referrer: &str,
    ) -> Result<(), MetaError>;

    /// Records a pull time, never moving it backwards.
    fn set_pull(&mut self, repo: &str, digest: &str, at: u64) -> Result<(), MetaError>;

    fn remove_pull(&mut self, repo: &str, digest: &str) -> Result<(), MetaError>;
}

/// Writes of blob records, links and upload sessions.
pub trait BlobsWrite: BlobsRead {
    fn put_blob(&mut self, digest: &str, record: &BlobRecord) -> Result<(), MetaError>;

    fn remove_blob(&mut self, digest: &str) -> Result<bool, MetaError>;

    fn link(&mut self, repo: &str, digest: &str, at: u64) -> Result<(), MetaError>;

    fn unlink(&mut self, repo: &str, digest: &str) -> Result<bool, MetaError>;

    fn put_upload(&mut self, id: &str, record: &UploadRecord) -> Result<(), MetaError>;

    fn remove_upload(&mut self, id: &str) -> Result<(), MetaError>;
}

/// Writes of the history of tags and the promotions.
pub trait HistoryWrite: HistoryRead {
    fn append_history(
        &mut self,
        repo: &str,
        tag: &str,
        record: &HistoryRecord,
    ) -> Result<(), MetaError>;

    /// Writes one history record under the sequence number `seq` without moving the
    /// engine's counter (what a copy does, numbering as its source did; it copies the
    /// counter too).
    fn put_history(
        &mut self,
        repo: &str,
        tag: &str,
        seq: u64,
        record: &HistoryRecord,
    ) -> Result<(), MetaError>;

    fn append_promotion(&mut self, record: &PromotionRecord) -> Result<(), MetaError>;
}

/// Writes of users, API keys and grants.
pub trait AccountsWrite: AccountsRead {
    fn put_user(&mut self, name: &str, record: &UserRecord) -> Result<(), MetaError>;

    fn put_api_key(&mut self, id: &str, record: &ApiKeyRecord) -> Result<(), MetaError>;

    fn remove_api_key(&mut self, id: &str) -> Result<bool, MetaError>;

    fn set_grant(&mut self, principal: &str, feed: &str, role: &str) -> Result<(), MetaError>;

    fn remove_grant(&mut self, principal: &str, feed: &str) -> Result<bool, MetaError>;

    /// Removes every grant on `feed`.
    fn remove_grants_on(&mut self, feed: &str) -> Result<(), MetaError>;
}

/// Writes of the audit log.
pub trait AuditWrite: AuditRead {
    /// Appends to the audit log; returns the record's sequence number, which orders the
    /// log (writes are serialized, so numbers are committed in order).
    fn append_audit(&mut self, record: &AuditRecord) -> Result<u64, MetaError>;

    /// Writes one audit record under `seq` without moving the counter (a copy's write).
    fn put_audit(&mut self, seq: u64, record: &AuditRecord) -> Result<(), MetaError>;

    /// Removes up to `limit` of the oldest audit records older than `time_ms`; returns how
    /// many it removed.
    fn remove_audit_before(&mut self, time_ms: u64, limit: usize) -> Result<u64, MetaError>;
}

/// Writes of named settings.
pub trait SettingsWrite: SettingsRead {
    fn put_setting(&mut self, name: &str, value: &[u8]) -> Result<(), MetaError>;

    fn remove_setting(&mut self, name: &str) -> Result<(), MetaError>;
}

/// One change of a tag's history: (tag, sequence number, record).
pub type HistoryRow = (String, u64, HistoryRecord);

/// What a filter of a walk says of one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scan {
    Keep,
    Skip,
    /// Nothing further can match: end the walk.
    Stop,
}

impl Scan {
    /// `Keep` when `keep`, else `Skip`.
    #[must_use]
    pub fn keep_if(keep: bool) -> Self {
        if keep { Self::Keep } else { Self::Skip }
    }
}

/// Up to `limit` of `items` that `scan` keeps (until it says stop), each made owned by `take`,
/// and whether more may follow: the page loop of every engine, written once.
pub fn page<I, T, E: Into<MetaError>>(
    items: impl IntoIterator<Item = Result<I, E>>,
    limit: usize,
    mut scan: impl FnMut(&I) -> Scan,
    mut take: impl FnMut(I) -> Result<T, MetaError>,
) -> Result<(Vec<T>, bool), MetaError> {
    let mut out = Vec::new();
    for item in items {
        let item = item.map_err(Into::into)?;
        match scan(&item) {
            Scan::Skip => continue,
            Scan::Stop => return Ok((out, false)),
            Scan::Keep => {}
        }
        if out.len() == limit {
            return Ok((out, true));
        }
        out.push(take(item)?);
    }
    Ok((out, false))
}

/// A failure of the metadata store.
#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    #[error(
        "the database {0} is in use by another semdock process (a running server?): stop it, or use the server's API"
    )]
    InUse(PathBuf),
    #[error("the disk holding the database is full")]
    StorageFull,
    #[error("the database is being reopened after an I/O error: try again in a moment")]
    Reopening,
    #[error("database error: {0}")]
    Database(::redb::Error),
    /// A stored record (of a table) that cannot be read as its type.
    #[error("a stored {record} cannot be decoded: {cause}")]
    Codec {
        record: &'static str,
        cause: postcard::Error,
    },
    /// A record of an encoding this release does not know.
    #[error(
        "a stored {record} has encoding version {found}, which this semdock (versions 1 to {known}) cannot read: a newer semdock wrote it; upgrade this one"
    )]
    RecordVersion {
        record: &'static str,
        found: u8,
        known: u8,
    },
    /// The database server cannot be reached (down, restarting, refusing connections).
    #[error("the metadata database cannot be reached: {0}")]
    Unreachable(String),
    #[error("metadata database error: {0}")]
    Server(String),
    /// A setting whose value cannot be read as its family's record.
    #[error("the stored setting {name:?} (a {what}) cannot be decoded: {cause}")]
    Setting {
        name: String,
        what: &'static str,
        cause: String,
    },
}

/// An error a write transaction's closure may return: whether it says the database handle
/// met an I/O failure, after which redb refuses every write until the file is reopened.
pub trait Failure {
    fn poisons_store(&self) -> bool;
}

impl Failure for MetaError {
    fn poisons_store(&self) -> bool {
        matches!(
            self,
            Self::StorageFull | Self::Database(::redb::Error::Io(_) | ::redb::Error::PreviousIo)
        )
    }
}
