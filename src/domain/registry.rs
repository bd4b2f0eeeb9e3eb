//! The registry service: feeds, blobs, uploads, manifests, tags and referrers.
//!
//! Rules enforced here: a repository belongs to an existing feed; a repository reads only blobs
//! linked to it; an upload publishes its blob only when the bytes hash to the declared digest;
//! a manifest is stored only when every blob and child it references is in its repository; a
//! tag moves only by committed transaction.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::model::manifest::Manifest;
use crate::model::{Algorithm, Digest, FeedName, Reference, Repository, Tag};
use crate::store::blobs::{BlobRead, BlobStore, Blobs, UploadSink, UploadState};
use crate::store::meta::{
    AuditRecord, BlobRecord, FeedRecord, HistoryRecord, ManifestRecord, MetaStore, MetaWrite,
    Metadata, RepositoryRecord, UploadRecord,
};

use super::Error;
use super::cache::GenCache;
use super::gc::lock;
use super::tags::{self, Change};
use super::versioning::{self, TagKind, is_virtual};

/// Size limits, from configuration.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub manifest_bytes: u64,
    pub upload_bytes: u64,
    /// Upload sessions one account may have open at once.
    pub upload_sessions: usize,
    /// The metadata database's page cache, in bytes.
    pub metadata_cache_bytes: usize,
}

/// Who opened which upload session, to bound the sessions of each account. Counted in
/// memory: sessions from before a restart are not counted (they expire as usual).
#[derive(Default)]
struct UploadOwners {
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

/// Largest page of tags or repositories one request returns.
pub const MAX_PAGE: usize = 10_000;

/// The registry: metadata, blob files and the hash state of uploads in progress.
pub struct Registry {
    pub(super) meta: Arc<dyn Metadata>,
    pub(super) blobs: Arc<dyn Blobs>,
    /// Every time the registry records or compares.
    pub(super) clock: super::clock::Clock,
    limits: Limits,
    sessions: Sessions,
    upload_owners: Mutex<UploadOwners>,
    /// What a garbage collection running now must not take (see `gc`).
    pub(super) gc_watch: Mutex<super::gc::Watch>,
    /// One maintenance job (GC, retention, backup) at a time.
    pub(super) maintenance: Mutex<()>,
    pub(super) last_gc: Mutex<Option<super::gc::GcReport>>,
    /// feed → (when, deletions) of its last real retention run.
    pub(super) last_retention: Mutex<BTreeMap<String, (u64, u64)>>,
    /// Last pull times not yet written (see `record_pull`).
    /// repository → manifest digest → last pull (seconds).
    pub(super) pulls: Mutex<HashMap<String, HashMap<String, u64>>>,
    /// "repository\nreference" → the manifest, while the metadata is unchanged.
    manifest_cache: GenCache<StoredManifest>,
}

/// Manifests remembered in memory: enough entries for the images a busy cluster pulls, small
/// enough not to matter next to the page cache (bodies over 256 KiB are not cached).
const MANIFEST_CACHE_ENTRIES: usize = 4096;
const MANIFEST_CACHE_BYTES: usize = 16 << 20;
const MANIFEST_CACHE_MAX_BODY: usize = 256 << 10;

/// In-memory hash state of uploads between requests. An upload absent here but present in the
/// metadata is re-hashed from its file (after a restart, or after a failed request).
#[derive(Clone, Default)]
struct Sessions(Arc<Mutex<HashMap<String, Slot>>>);

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

/// A change of feed settings; `None` leaves a setting as it is.
#[derive(Debug, Clone, Default)]
pub struct FeedChange {
    pub description: Option<String>,
    pub anonymous_pull: Option<bool>,
    pub versioning: Option<bool>,
    pub permitted: Option<Vec<String>>,
}

fn describe_feed_change(before: &FeedRecord, after: &FeedRecord) -> String {
    let mut parts = Vec::new();
    if before.versioning != after.versioning {
        parts.push(format!(
            "versioning {}",
            if after.versioning { "on" } else { "off" }
        ));
    }
    if before.permitted != after.permitted {
        parts.push(format!("permitted tags [{}]", after.permitted.join(", ")));
    }
    if before.anonymous_pull != after.anonymous_pull {
        parts.push(format!(
            "anonymous pull {}",
            if after.anonymous_pull { "on" } else { "off" }
        ));
    }
    if before.description != after.description {
        parts.push("description".to_owned());
    }
    parts.join("; ")
}

/// One tag in a grouped listing.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct TagEntry {
    pub tag: String,
    pub digest: String,
    /// For a virtual tag: the version it points to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// A repository's tags by kind; versions by SemVer precedence, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct TagGroups {
    pub versions: Vec<TagEntry>,
    #[serde(rename = "virtual")]
    pub virtual_tags: Vec<TagEntry>,
    pub permitted: Vec<TagEntry>,
    /// Tags a versioned feed would refuse today, from before versioning was switched on.
    pub legacy: Vec<TagEntry>,
    /// Non-version tags of a feed without versioning.
    pub other: Vec<TagEntry>,
    /// Deleted versions whose numbers stay taken until purged.
    pub tombstones: Vec<TagEntry>,
    /// Where each list continues, for those with more: pass as `last` with its `list`.
    #[serde(skip_serializing_if = "TagCursors::is_empty")]
    pub next: TagCursors,
}

/// The three ordered lists a repository's tags page through: versions by SemVer precedence,
/// highest first; every other tag by name (shown grouped by kind); tombstones by name.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum TagList {
    Versions,
    Tags,
    Tombstones,
}

/// Which page of a repository's tags to read: the first `n` of every list, or with `list`
/// the `n` of that list after `last`.
#[derive(Debug, Clone, Default)]
pub struct TagQuery {
    pub list: Option<TagList>,
    pub last: Option<String>,
    pub n: Option<usize>,
    /// Only tags containing this text (case-insensitive): a search reads the lists until
    /// its page is full.
    pub contains: Option<String>,
}

/// The tag a list continues after, per list that has more.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct TagCursors {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub versions: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tombstones: Option<String>,
}

impl TagCursors {
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.versions.is_none() && self.tags.is_none() && self.tombstones.is_none()
    }
}

/// Which page of a repository's history to read.
#[derive(Debug, Clone, Default)]
pub struct HistoryQuery {
    pub tag: Option<String>,
    /// Only changes made this way (`push`, `virtual`, `promote`, …).
    pub method: Option<String>,
    /// Continue after this sequence number.
    pub last: Option<u64>,
    pub newest_first: bool,
    pub n: Option<usize>,
}

/// Tags and history entries per page unless asked otherwise, and at most.
pub const DEFAULT_LIST_PAGE: usize = 100;
pub const MAX_LIST_PAGE: usize = 1000;

#[must_use]
pub fn list_page_size(n: Option<usize>) -> usize {
    n.unwrap_or(DEFAULT_LIST_PAGE).clamp(1, MAX_LIST_PAGE)
}

/// What a feed settings change would do (see `Registry::preview_feed_change`).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct FeedPreview {
    /// `repo:tag` a versioned feed would refuse from now on (kept, shown as legacy).
    pub become_legacy: Vec<String>,
    /// `repo:tag` that were legacy and would become permitted (or the feed unversioned).
    pub stop_being_legacy: Vec<String>,
    /// `repo:tag → version` the server would set on switching versioning on.
    pub virtual_appear: Vec<String>,
    /// `repo:tag` virtual tags that would stop following versions on switching it off.
    pub virtual_frozen: Vec<String>,
}

/// One change of a tag.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct HistoryEntry {
    /// The change's sequence number: what `last` continues after.
    pub seq: u64,
    pub tag: String,
    /// RFC 3339.
    pub time: String,
    pub old: Option<String>,
    pub new: Option<String>,
    pub actor: String,
    pub method: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

fn history_entry(seq: u64, tag: String, r: HistoryRecord) -> HistoryEntry {
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_millis(r.time_ms);
    HistoryEntry {
        seq,
        tag,
        time: humantime::format_rfc3339_millis(time).to_string(),
        old: r.old,
        new: r.new,
        actor: r.actor,
        method: r.method,
        comment: r.comment,
    }
}

/// What to promote where: `from`/`from_ref` to `to:to_tag`, by whom and why.
#[derive(Debug, Clone, Copy)]
pub struct Promotion<'a> {
    pub from: &'a Repository,
    pub from_ref: &'a Reference,
    pub to: &'a Repository,
    pub to_tag: &'a Tag,
    /// Copy the image's referrers (signatures, SBOMs) too.
    pub include_referrers: bool,
    pub actor: &'a str,
    pub comment: Option<&'a str>,
}

/// The outcome of a promotion or retag.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct Promoted {
    pub digest: String,
    /// Manifests copied into the target repository (the image, index children, referrers).
    pub manifests: usize,
    /// Whether the target tag moved (false: it already pointed there).
    pub changed: bool,
}

/// One page of a sorted listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub items: Vec<String>,
    /// Whether items follow the last one returned.
    pub more: bool,
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

    /// A hasher for reading the whole blob in order: what a full GET checks before it sends
    /// the last byte.
    #[must_use]
    pub fn verifier(&self) -> BlobVerifier {
        BlobVerifier(UploadState::new(self.digest.algorithm()))
    }
}

/// Hashes a blob's bytes as they are read, front to back.
#[derive(Clone)]
pub struct BlobVerifier(UploadState);

impl BlobVerifier {
    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    /// Whether the bytes read hash to `digest`.
    #[must_use]
    pub fn matches(&self, digest: &Digest) -> bool {
        self.0.digest() == *digest
    }
}

fn manifest_cache_key(repo: &Repository, reference: &Reference) -> String {
    format!("{repo}\n{reference}")
}

/// A stored manifest as clients fetch it.
#[derive(Debug, Clone)]
pub struct StoredManifest {
    pub digest: Digest,
    pub media_type: String,
    /// Shared, so a cached manifest is handed out without copying it.
    pub body: bytes::Bytes,
    pub subject: Option<String>,
}

/// The outcome of storing a manifest.
#[derive(Debug, Clone)]
pub struct ManifestPut {
    pub digest: Digest,
    pub subject: Option<Digest>,
    /// The tags now pointing at it.
    pub tags: Vec<String>,
}

/// A manifest that refers to a subject, as the referrers API lists it.
#[derive(Debug, Clone)]
pub struct Referrer {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    pub artifact_type: Option<String>,
    pub annotations: BTreeMap<String, String>,
}

/// A request appending to an upload. Finish it with `Registry::finish_chunk` or
/// `Registry::complete_upload`; dropped unfinished (a failed request), its in-memory state is
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

fn feed_unknown(repo: &Repository) -> Error {
    Error::FeedUnknown {
        feed: repo.feed().to_owned(),
    }
}

fn manifest_unknown(repo: &Repository, reference: &impl ToString) -> Error {
    Error::ManifestUnknown {
        repository: repo.to_string(),
        reference: reference.to_string(),
    }
}

impl Registry {
    /// Opens the registry in `data_dir` (`meta.redb`, `blobs/`, `uploads/`).
    pub fn open(data_dir: &Path, limits: Limits) -> Result<Self, Error> {
        std::fs::create_dir_all(data_dir)?;
        let meta = Arc::new(MetaStore::open_with_cache(
            &data_dir.join(super::META_FILE),
            limits.metadata_cache_bytes,
        )?);
        Self::with_meta(meta, data_dir, limits)
    }

    /// The registry over an already open metadata store, with the blob files of `data_dir`.
    pub fn with_meta(
        meta: Arc<dyn Metadata>,
        data_dir: &Path,
        limits: Limits,
    ) -> Result<Self, Error> {
        let blobs = BlobStore::open(data_dir)
            .map_err(|e| Error::io("create the blob directories in", data_dir, &e))?;
        Ok(Self::with_stores(meta, Arc::new(blobs), limits))
    }

    /// The clock the registry (and the services sharing it) reads.
    #[must_use]
    pub fn clock(&self) -> &super::clock::Clock {
        &self.clock
    }

    /// The registry over already open stores.
    #[must_use]
    pub fn with_stores(meta: Arc<dyn Metadata>, blobs: Arc<dyn Blobs>, limits: Limits) -> Self {
        Self {
            meta,
            blobs,
            clock: super::clock::Clock::default(),
            limits,
            sessions: Sessions::default(),
            upload_owners: Mutex::default(),
            gc_watch: Mutex::default(),
            maintenance: Mutex::default(),
            last_gc: Mutex::default(),
            last_retention: Mutex::default(),
            pulls: Mutex::default(),
            manifest_cache: GenCache::new(MANIFEST_CACHE_ENTRIES, MANIFEST_CACHE_BYTES),
        }
    }

    #[must_use]
    pub fn limits(&self) -> Limits {
        self.limits
    }

    // ---- feeds ----

    /// Creates `feed` unless it exists; says whether it was created.
    pub fn ensure_feed(&self, feed: &FeedName) -> Result<bool, Error> {
        self.meta.write(|w| {
            if w.feed(feed.as_str())?.is_some() {
                return Ok(false);
            }
            w.put_feed(
                feed.as_str(),
                &FeedRecord {
                    created: self.clock.now(),
                    description: String::new(),
                    anonymous_pull: false,
                    versioning: false,
                    permitted: Vec::new(),
                },
            )?;
            Ok(true)
        })
    }

    pub fn create_feed(&self, feed: &FeedName) -> Result<(), Error> {
        if self.ensure_feed(feed)? {
            Ok(())
        } else {
            Err(Error::FeedExists {
                feed: feed.to_string(),
            })
        }
    }

    /// Changes a feed's settings; `None` leaves one as it is. Callers authorize first
    /// (feed admin).
    pub fn update_feed(
        &self,
        feed: &str,
        change: FeedChange,
        actor: &str,
    ) -> Result<FeedRecord, Error> {
        if let Some(patterns) = &change.permitted {
            for p in patterns {
                versioning::check_pattern(p)?;
            }
        }
        self.meta.write(|w| {
            let mut record = w.feed(feed)?.ok_or_else(|| Error::FeedUnknown {
                feed: feed.to_owned(),
            })?;
            let before = record.clone();
            if let Some(d) = change.description {
                record.description = d;
            }
            if let Some(a) = change.anonymous_pull {
                record.anonymous_pull = a;
            }
            if let Some(v) = change.versioning {
                record.versioning = v;
            }
            if let Some(p) = change.permitted {
                record.permitted = p;
            }
            if record == before {
                return Ok(record);
            }
            w.put_feed(feed, &record)?;
            w.append_audit(&AuditRecord {
                time_ms: self.clock.now_ms(),
                actor: actor.to_owned(),
                feed: feed.to_owned(),
                change: describe_feed_change(&before, &record),
            })?;
            if record.versioning && !before.versioning {
                // Switching on computes the virtual tags at once; existing tags stay.
                let cause = Change {
                    actor,
                    clock: &self.clock,
                    method: "settings",
                    comment: None,
                };
                let (repos, _) =
                    w.repositories(&format!("{feed}/"), None, usize::MAX, &|_| true)?;
                for repo in repos {
                    tags::recompute_virtual(w, &repo, &cause)?;
                }
            }
            Ok(record)
        })
    }

    /// What a settings change would do to the feed's tags, without changing anything: the tags
    /// that would become legacy and the virtual tags that would appear or go.
    pub fn preview_feed_change(
        &self,
        feed: &str,
        change: &FeedChange,
    ) -> Result<FeedPreview, Error> {
        let r = self.meta.read()?;
        let current = r.feed(feed)?.ok_or_else(|| Error::FeedUnknown {
            feed: feed.to_owned(),
        })?;
        let mut next = current.clone();
        if let Some(v) = change.versioning {
            next.versioning = v;
        }
        if let Some(p) = &change.permitted {
            for pattern in p {
                versioning::check_pattern(pattern)?;
            }
            next.permitted.clone_from(p);
        }
        let (before, after) = (tags::policy_of(&current), tags::policy_of(&next));
        let mut preview = FeedPreview::default();
        let (repos, _) = r.repositories(&format!("{feed}/"), None, usize::MAX, &|_| true)?;
        for repo in repos {
            let all = r.tag_targets(&repo)?;
            let legacy =
                |p: &versioning::Policy, tag: &str| p.enabled && p.classify(tag) == TagKind::Other;
            for (tag, _) in &all {
                if legacy(&after, tag) && !legacy(&before, tag) {
                    preview.become_legacy.push(format!("{repo}:{tag}"));
                }
                if legacy(&before, tag) && !legacy(&after, tag) {
                    preview.stop_being_legacy.push(format!("{repo}:{tag}"));
                }
            }
            let versions: Vec<(semver::Version, &str)> = all
                .iter()
                .filter_map(|(t, d)| versioning::version_of(t).map(|v| (v, d.as_str())))
                .collect();
            let desired = versioning::virtual_tags(versions.iter().map(|(v, d)| (v, *d)));
            if next.versioning && !current.versioning {
                for (tag, digest) in &desired {
                    let version = versions
                        .iter()
                        .filter(|(_, d)| d == digest)
                        .map(|(v, _)| v)
                        .max()
                        .map(ToString::to_string)
                        .unwrap_or_default();
                    preview
                        .virtual_appear
                        .push(format!("{repo}:{tag} → {version}"));
                }
            }
            if !next.versioning && current.versioning {
                for tag in desired.keys() {
                    preview.virtual_frozen.push(format!("{repo}:{tag}"));
                }
            }
        }
        Ok(preview)
    }

    /// Feed setting changes, oldest first.
    pub fn audit(&self, feed: &str) -> Result<Vec<AuditRecord>, Error> {
        Ok(self
            .meta
            .read()?
            .audit()?
            .into_iter()
            .filter(|a| a.feed == feed)
            .collect())
    }

    pub fn feed(&self, feed: &str) -> Result<FeedRecord, Error> {
        self.meta
            .read()?
            .feed(feed)?
            .ok_or_else(|| Error::FeedUnknown {
                feed: feed.to_owned(),
            })
    }

    pub fn feeds(&self) -> Result<Vec<(String, FeedRecord)>, Error> {
        Ok(self.meta.read()?.feeds()?)
    }

    /// Deletes a feed with every repository, manifest, tag and link in it. Blob files stay
    /// until garbage collection finds them unreferenced.
    pub fn delete_feed(&self, feed: &FeedName) -> Result<(), Error> {
        self.meta.write(|w| {
            if !w.remove_feed(feed.as_str())? {
                return Err(Error::FeedUnknown {
                    feed: feed.to_string(),
                });
            }
            let prefix = format!("{feed}/");
            let (repos, _) = w.repositories(&prefix, None, usize::MAX, &|_| true)?;
            for repo in repos {
                for (tag, _) in w.tag_targets(&repo)? {
                    w.remove_tag(&repo, &tag)?;
                }
                for digest in w.manifest_digests(&repo)? {
                    if let Some(subject) = w.manifest(&repo, &digest)?.and_then(|m| m.subject) {
                        w.remove_referrer(&repo, &subject, &digest)?;
                    }
                    w.remove_manifest(&repo, &digest)?;
                }
                for digest in w.linked_blobs(&repo)? {
                    w.unlink(&repo, &digest)?;
                }
                w.remove_repository(&repo)?;
            }
            w.remove_grants_on(feed.as_str())?;
            Ok(())
        })
    }

    /// Whether both stores answer: a metadata snapshot opens and the blob store can be
    /// reached. `Unavailable`, naming which failed and why, when not.
    pub fn ready(&self) -> Result<(), Error> {
        self.meta
            .read()
            .map_err(|e| Error::Unavailable(format!("the metadata store cannot be read: {e}")))?;
        self.blobs
            .probe()
            .map_err(|e| Error::Unavailable(format!("the blob store cannot be reached: {e}")))
    }

    // ---- blobs ----

    /// Opens a blob linked to `repo`.
    pub fn blob(&self, repo: &Repository, digest: &Digest) -> Result<BlobHandle, Error> {
        let record = self.blob_record(repo, digest)?;
        self.open_blob(digest, record.size)
    }

    fn open_blob(&self, digest: &Digest, size: u64) -> Result<BlobHandle, Error> {
        let unknown = || Error::BlobUnknown {
            digest: digest.to_string(),
        };
        let blob = self.blobs.open(digest).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotConnected {
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

    /// Blob `digest` of `repo` for a GET: where the client may fetch it itself (a presigned
    /// URL of the object store, when reads are handed off), else the blob to serve; the same
    /// checks as `blob` either way.
    pub fn blob_for_get(&self, repo: &Repository, digest: &Digest) -> Result<BlobAt, Error> {
        let record = self.blob_record(repo, digest)?;
        if let Some(url) = self.blobs.redirect(digest)? {
            return Ok(BlobAt::Elsewhere(url));
        }
        self.open_blob(digest, record.size).map(BlobAt::Here)
    }

    /// A blob whose file no longer hashes to its name (found by a read): moves the file aside
    /// as `semdock check` does, so it is never served again; pushing the image repairs it.
    pub fn blob_corrupt(&self, digest: &Digest) {
        match self.blobs.set_aside(digest) {
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
    pub fn delete_blob(&self, repo: &Repository, digest: &Digest) -> Result<(), Error> {
        self.meta.write(|w| {
            if w.feed(repo.feed())?.is_none() {
                return Err(feed_unknown(repo));
            }
            if w.unlink(repo.as_str(), digest.as_str())? {
                Ok(())
            } else {
                Err(Error::BlobUnknown {
                    digest: digest.to_string(),
                })
            }
        })
    }

    // ---- uploads ----

    /// Opens an upload session in `repo` for `owner` (a principal's subject, or the client's
    /// address); returns its id. An owner with `Limits::upload_sessions` open is refused.
    pub fn start_upload(
        &self,
        repo: &Repository,
        owner: &str,
        algorithm: Algorithm,
    ) -> Result<String, Error> {
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

    /// Links blob `digest` from `from` into `repo` when `from` has it; says whether it did.
    pub fn mount(
        &self,
        repo: &Repository,
        digest: &Digest,
        from: &Repository,
    ) -> Result<bool, Error> {
        if self.blobs.stat(digest)?.is_none() {
            return Ok(false);
        }
        self.gc_touch([digest.as_str()]);
        self.meta.write(|w| {
            if w.feed(repo.feed())?.is_none() {
                return Err(feed_unknown(repo));
            }
            if !w.is_linked(from.as_str(), digest.as_str())? || w.blob(digest.as_str())?.is_none() {
                return Ok(false);
            }
            link_into(w, repo, digest, self.clock.now())?;
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
        if self.blobs.stat(digest)?.is_none() {
            return Ok(false);
        }
        let sources = self.meta.read()?.repositories_linking(digest.as_str())?;
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

    fn session(&self, repo: &Repository, id: &str) -> Result<String, Error> {
        let id = upload_id(id)?;
        let record = self.meta.read()?.upload(&id)?;
        match record {
            Some(r) if r.repository == repo.as_str() => Ok(id),
            _ => Err(Error::UploadUnknown { id }),
        }
    }

    /// Bytes received so far by an upload.
    pub fn upload_offset(&self, repo: &Repository, id: &str) -> Result<u64, Error> {
        let id = self.session(repo, id)?;
        let known = match self.sessions.lock().get(&id) {
            // Another node may have appended since (see `Blobs::shared`).
            Some(Slot::Idle(_)) if self.blobs.shared() => None,
            Some(Slot::Idle(state)) => Some(state.len()),
            Some(Slot::Busy(offset)) => Some(*offset),
            None => None,
        };
        match known {
            Some(len) => Ok(len),
            None => self
                .blobs
                .upload_len(&id)?
                .ok_or_else(|| Error::UploadUnknown { id: id.clone() }),
        }
    }

    /// Starts appending to an upload. `start`, from a `Content-Range`, must equal the bytes
    /// received so far.
    pub fn append(&self, repo: &Repository, id: &str, start: Option<u64>) -> Result<Append, Error> {
        let id = self.session(repo, id)?;
        let taken = {
            let mut sessions = self.sessions.lock();
            match sessions.get(&id) {
                Some(Slot::Busy(offset)) => {
                    return Err(Error::UploadBusy {
                        id,
                        offset: *offset,
                    });
                }
                Some(Slot::Idle(_)) if self.blobs.shared() => {
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
        let state = match taken {
            Some(state) => state,
            None => match self.blobs.rehash_upload(&id, upload_algorithm(&id)) {
                Ok(state) => state,
                Err(e) => {
                    self.sessions.forget(&id);
                    return Err(e.into());
                }
            },
        };
        if let Some(start) = start
            && start != state.len()
        {
            let expected = state.len();
            self.sessions.lock().insert(id, Slot::Idle(state));
            return Err(Error::UploadOutOfOrder {
                expected,
                got: start,
            });
        }
        let writer = match self.blobs.append(&id, state) {
            Ok(w) => w,
            Err(e) => {
                self.sessions.forget(&id);
                return Err(e.into());
            }
        };
        Ok(Append {
            id,
            repository: repo.clone(),
            writer: Some(writer),
            limit: self.limits.upload_bytes,
            sessions: self.sessions.clone(),
        })
    }

    /// Ends a chunk request, keeping the hash state for the next; returns the upload's length.
    pub fn finish_chunk(&self, mut append: Append) -> Result<u64, Error> {
        let state = append.finish()?;
        let len = state.len();
        self.sessions
            .lock()
            .insert(append.id.clone(), Slot::Idle(state));
        Ok(len)
    }

    /// Completes an upload: checks the digest, publishes the blob and links it to the
    /// repository, all or nothing.
    pub fn complete_upload(&self, mut append: Append, declared: &Digest) -> Result<(), Error> {
        let state = append.finish()?;
        let id = append.id.clone();
        let repo = append.repository.clone();
        self.sessions.forget(&id);
        let mut computed = state.digest();
        if computed.algorithm() != declared.algorithm() {
            // Declared by another algorithm than the session streamed with (no
            // `digest-algorithm` on the POST): one more pass over the file.
            computed = self
                .blobs
                .rehash_upload(&id, declared.algorithm())?
                .digest();
        }
        if computed != *declared {
            self.discard_upload(&id)?;
            return Err(Error::DigestMismatch {
                declared: declared.to_string(),
                computed: computed.to_string(),
            });
        }
        self.gc_touch([declared.as_str()]);
        self.blobs.publish(&id, declared)?;
        self.meta.write(|w| -> Result<(), Error> {
            // A collection on another node may have removed this very blob (an old, unused
            // copy) between the publish above and this write; it removes files only inside
            // a write of its own, so checking here, under the write lock, is decisive.
            if self.blobs.stat(declared)?.is_none() {
                return Err(Error::Unavailable(format!(
                    "blob {declared} was removed by garbage collection while this upload published it: push it again"
                )));
            }
            if w.blob(declared.as_str())?.is_none() {
                w.put_blob(
                    declared.as_str(),
                    &BlobRecord {
                        size: state.len(),
                        created: self.clock.now(),
                    },
                )?;
            }
            link_into(w, &repo, declared, self.clock.now())?;
            w.remove_upload(&id)?;
            Ok(())
        })?;
        lock(&self.upload_owners).close(&id);
        self.blobs.warm(declared, state.len());
        Ok(())
    }

    /// Ends an upload whose request failed beyond repair (a full disk), removing its bytes.
    pub fn abandon_upload(&self, mut append: Append) -> Result<(), Error> {
        append.writer = None;
        let id = std::mem::take(&mut append.id);
        self.discard_upload(&id)
    }

    /// Cancels an upload and removes its bytes.
    pub fn cancel_upload(&self, repo: &Repository, id: &str) -> Result<(), Error> {
        let id = self.session(repo, id)?;
        if let Some(Slot::Busy(offset)) = self.sessions.lock().get(&id) {
            return Err(Error::UploadBusy {
                id,
                offset: *offset,
            });
        }
        self.discard_upload(&id)
    }

    /// Whether a request is writing to upload `id` right now.
    pub(super) fn upload_busy(&self, id: &str) -> bool {
        matches!(self.sessions.lock().get(id), Some(Slot::Busy(_)))
    }

    pub(super) fn discard_upload(&self, id: &str) -> Result<(), Error> {
        self.sessions.forget(id);
        self.meta
            .write(|w| w.remove_upload(id).map_err(Error::from))?;
        lock(&self.upload_owners).close(id);
        self.blobs.remove_upload(id)?;
        Ok(())
    }

    // ---- manifests ----

    /// Stores a manifest under `reference` (a tag, or the digest it must hash to).
    pub fn put_manifest(
        &self,
        repo: &Repository,
        reference: &Reference,
        extra_tags: &[Tag],
        content_type: Option<&str>,
        body: &[u8],
        actor: &str,
    ) -> Result<ManifestPut, Error> {
        let limit = self.limits.manifest_bytes;
        if body.len() as u64 > limit {
            return Err(Error::ManifestTooLarge { limit });
        }
        let manifest = Manifest::parse(body, content_type)?;
        // By the algorithm of the digest it is pushed by (sha512 too); by tag, sha256.
        let digest = match reference {
            Reference::Digest(declared) => Digest::of_with(declared.algorithm(), body),
            Reference::Tag(_) => Digest::of(body),
        };
        if let Reference::Digest(declared) = reference
            && *declared != digest
        {
            return Err(Error::DigestMismatch {
                declared: declared.to_string(),
                computed: digest.to_string(),
            });
        }
        let record = ManifestRecord {
            media_type: manifest.media_type.clone(),
            artifact_type: manifest.artifact_type.clone(),
            subject: manifest.subject.as_ref().map(ToString::to_string),
            blobs: manifest.blobs.iter().map(ToString::to_string).collect(),
            children: manifest.children.iter().map(ToString::to_string).collect(),
            annotations: manifest.annotations.clone(),
            created: self.clock.now(),
            body: body.to_vec(),
        };
        let name = repo.as_str();
        let mut tags: Vec<&Tag> = extra_tags.iter().collect();
        if let Reference::Tag(tag) = reference {
            tags.insert(0, tag);
        }
        let change = Change {
            actor,
            clock: &self.clock,
            method: "push",
            comment: None,
        };
        self.gc_touch(record.blobs.iter().map(String::as_str));
        self.meta.write(|w| {
            let feed = w.feed(repo.feed())?.ok_or_else(|| feed_unknown(repo))?;
            let pushed = self.clock.now();
            for blob in &manifest.blobs {
                match w.linked_at(name, blob.as_str())? {
                    None => {
                        return Err(Error::ManifestBlobUnknown {
                            digest: blob.to_string(),
                        });
                    }
                    // Renewed (unless from this very second, as when the blob was just
                    // uploaded), so that a collection that marked the blob as garbage
                    // before this push, on any node, sees it used again (`gc`).
                    Some(at) if at < pushed => w.link(name, blob.as_str(), pushed)?,
                    Some(_) => {}
                }
            }
            for child in &manifest.children {
                if !w.has_manifest(name, child.as_str())? {
                    return Err(Error::ManifestBlobUnknown {
                        digest: child.to_string(),
                    });
                }
            }
            ensure_repository(w, name, self.clock.now())?;
            w.put_manifest(name, digest.as_str(), &record)?;
            for tag in &tags {
                tags::set(w, repo, &feed, tag.as_str(), digest.as_str(), &change)?;
            }
            if let Some(subject) = &manifest.subject {
                w.add_referrer(name, subject.as_str(), digest.as_str(), self.clock.now())?;
            }
            Ok(())
        })?;
        crate::metrics::get()
            .pushes
            .get_or_create(&crate::metrics::Metrics::feed(repo.feed()))
            .inc();
        Ok(ManifestPut {
            digest,
            subject: manifest.subject,
            tags: tags.iter().map(ToString::to_string).collect(),
        })
    }

    /// The manifest `reference` points at in `repo`.
    pub fn manifest(
        &self,
        repo: &Repository,
        reference: &Reference,
    ) -> Result<StoredManifest, Error> {
        let generation = self.meta.generation();
        let r = self.meta.read()?;
        if r.feed(repo.feed())?.is_none() {
            return Err(feed_unknown(repo));
        }
        let digest = match reference {
            Reference::Digest(d) => d.clone(),
            Reference::Tag(tag) => r
                .tag(repo.as_str(), tag.as_str())?
                .ok_or_else(|| manifest_unknown(repo, reference))?
                .parse()?,
        };
        let record = r
            .manifest(repo.as_str(), digest.as_str())?
            .ok_or_else(|| manifest_unknown(repo, reference))?;
        let stored = StoredManifest {
            digest,
            media_type: record.media_type,
            body: record.body.into(),
            subject: record.subject,
        };
        if stored.body.len() <= MANIFEST_CACHE_MAX_BODY {
            let weight = stored.body.len() + stored.media_type.len() + 128;
            let key = manifest_cache_key(repo, reference);
            self.manifest_cache
                .put(key, generation, stored.clone(), weight);
        }
        Ok(stored)
    }

    /// Whether `cached_manifest` answers from memory alone (see
    /// `Metadata::generation_is_local`): then the executor may call it.
    #[must_use]
    pub fn caches_locally(&self) -> bool {
        self.meta.generation_is_local()
    }

    /// The manifest `manifest` would return, if an earlier read of it is still current;
    /// `None` means "read it". Touches no database when `caches_locally`, so it may then
    /// run on an async executor.
    #[must_use]
    pub fn cached_manifest(
        &self,
        repo: &Repository,
        reference: &Reference,
    ) -> Option<StoredManifest> {
        self.manifest_cache
            .get(&manifest_cache_key(repo, reference), self.meta.generation())
    }

    /// Deletes a tag, or a manifest by digest together with the tags pointing at it.
    pub fn delete_manifest(
        &self,
        repo: &Repository,
        reference: &Reference,
        actor: &str,
    ) -> Result<(), Error> {
        let change = Change {
            actor,
            clock: &self.clock,
            method: "delete",
            comment: None,
        };
        self.meta.write(|w| {
            let feed = w.feed(repo.feed())?.ok_or_else(|| feed_unknown(repo))?;
            match reference {
                Reference::Tag(tag) => tags::remove(w, repo, &feed, tag.as_str(), &change)?,
                Reference::Digest(digest) => {
                    if !remove_manifest(w, repo, &feed, digest.as_str(), &change)? {
                        return Err(manifest_unknown(repo, reference));
                    }
                }
            }
            Ok(())
        })
    }

    /// Frees a version number: removes the tag and its tombstone. Callers check that the
    /// actor is an administrator.
    /// Frees a deleted version's number: removes its tombstone. A tag that is still live is
    /// purged only when `confirm` names it exactly — it is then deleted and purged in one
    /// transaction, both in the history — since purging a live version lets its number be
    /// reused for other content, the one thing versioning promises never happens by accident.
    pub fn purge(
        &self,
        repo: &Repository,
        tag: &Tag,
        actor: &str,
        confirm: Option<&str>,
    ) -> Result<(), Error> {
        let change = |method| Change {
            actor,
            clock: &self.clock,
            method,
            comment: None,
        };
        self.meta.write(|w| {
            let feed = w.feed(repo.feed())?.ok_or_else(|| feed_unknown(repo))?;
            if w.tag(repo.as_str(), tag.as_str())?.is_some() {
                if confirm != Some(tag.as_str()) {
                    return Err(Error::Conflict(format!(
                        "{repo}:{tag} is live: delete it first (a deleted version keeps its number as a tombstone, which purge then frees), or confirm purging the live tag by naming it: {{\"confirm\": \"{tag}\"}}"
                    )));
                }
                tags::remove(w, repo, &feed, tag.as_str(), &change("delete"))?;
            }
            tags::purge(w, repo, &feed, tag.as_str(), &change("purge"))
        })
    }

    /// The history of `repo`, or of one tag, oldest first.
    pub fn history(
        &self,
        repo: &Repository,
        tag: Option<&str>,
    ) -> Result<Vec<HistoryEntry>, Error> {
        let r = self.meta.read()?;
        if r.feed(repo.feed())?.is_none() {
            return Err(feed_unknown(repo));
        }
        Ok(r.history(repo.as_str(), tag)?
            .into_iter()
            .map(|(t, seq, rec)| history_entry(seq, t, rec))
            .collect())
    }

    /// One page of the history of `repo` (or of one tag, or of one kind of change), and the
    /// sequence number the next page continues after when there is one.
    pub fn history_page(
        &self,
        repo: &Repository,
        q: &HistoryQuery,
    ) -> Result<(Vec<HistoryEntry>, Option<u64>), Error> {
        let r = self.meta.read()?;
        if r.feed(repo.feed())?.is_none() {
            return Err(feed_unknown(repo));
        }
        let (records, more) = r.history_page(
            repo.as_str(),
            q.tag.as_deref(),
            q.last,
            q.newest_first,
            list_page_size(q.n),
            &|_, rec| q.method.as_ref().is_none_or(|m| *m == rec.method),
        )?;
        let next = if more {
            records.last().map(|(_, seq, _)| *seq)
        } else {
            None
        };
        let entries = records
            .into_iter()
            .map(|(t, seq, rec)| history_entry(seq, t, rec))
            .collect();
        Ok((entries, next))
    }

    /// The newest `limit` tag changes in the feeds `visible` accepts, newest first, as
    /// (repository, entry).
    pub fn recent_history(
        &self,
        limit: usize,
        visible: impl Fn(&str) -> bool,
    ) -> Result<Vec<(String, HistoryEntry)>, Error> {
        Ok(self
            .meta
            .read()?
            .recent_history(limit, &|repo| {
                visible(repo.split('/').next().unwrap_or_default())
            })?
            .into_iter()
            .map(|(repo, tag, rec)| (repo, history_entry(0, tag, rec)))
            .collect())
    }

    /// Repository names of `feed` containing `query`, `limit` at most after `after`, and
    /// whether more follow.
    pub fn search_repositories(
        &self,
        feed: &str,
        query: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<String>, bool), Error> {
        let prefix = format!("{feed}/");
        let query = query.to_lowercase();
        Ok(self
            .meta
            .read()?
            .repositories(&prefix, after, limit, &|name| {
                query.is_empty() || name[prefix.len()..].to_lowercase().contains(&query)
            })?)
    }

    /// The digest `tag` pointed to at `at_ms` (Unix milliseconds), if any.
    pub fn tag_at(
        &self,
        repo: &Repository,
        tag: &str,
        at_ms: u64,
    ) -> Result<Option<String>, Error> {
        // The newest change at or before the time: read backwards from now.
        let r = self.meta.read()?;
        let (found, _) = r.history_page(repo.as_str(), Some(tag), None, true, 1, &|_, rec| {
            rec.time_ms <= at_ms
        })?;
        Ok(found.into_iter().next().and_then(|(_, _, rec)| rec.new))
    }

    /// One page of the tags of `repo` grouped by kind (see `TagQuery`): O(page · log n)
    /// whatever the number of tags.
    pub fn tag_groups(&self, repo: &Repository, q: &TagQuery) -> Result<TagGroups, Error> {
        let r = self.meta.read()?;
        let feed = r.feed(repo.feed())?.ok_or_else(|| feed_unknown(repo))?;
        let policy = tags::policy_of(&feed);
        let name = repo.as_str();
        let n = list_page_size(q.n);
        let wants = |list| q.list.is_none_or(|l| l == list);
        let needle = q.contains.as_deref().unwrap_or_default().to_lowercase();
        let keep = |tag: &str| needle.is_empty() || tag.to_lowercase().contains(&needle);
        let after = |list| q.list.filter(|l| *l == list).and(q.last.as_deref());
        let entry = |(tag, digest): (String, String)| TagEntry {
            tag,
            digest,
            version: None,
        };
        let cursor = |more: bool, page: &[TagEntry]| {
            if more {
                page.last().map(|e| e.tag.clone())
            } else {
                None
            }
        };
        let mut groups = TagGroups::default();
        if wants(TagList::Versions) {
            let before =
                match after(TagList::Versions) {
                    Some(last) => Some(versioning::version_of(last).ok_or_else(|| {
                        Error::Invalid(format!("last: {last:?} is not a version"))
                    })?),
                    None => None,
                };
            let (page, more) = r.versions_page(name, before.as_ref(), n, &keep)?;
            groups.versions = page.into_iter().map(entry).collect();
            groups.next.versions = cursor(more, &groups.versions);
        }
        if wants(TagList::Tags) {
            let (page, more) = r.named_tags_page(name, after(TagList::Tags), n, &keep)?;
            let page: Vec<TagEntry> = page.into_iter().map(entry).collect();
            groups.next.tags = cursor(more, &page);
            for mut e in page {
                match policy.classify(&e.tag) {
                    TagKind::Virtual if policy.enabled => {
                        e.version =
                            tags::followed(&e.tag, |scope| Ok(r.highest_version(name, scope)?))?
                                .filter(|(_, digest)| *digest == e.digest)
                                .map(|(version, _)| version);
                        groups.virtual_tags.push(e);
                    }
                    TagKind::Permitted if policy.enabled => groups.permitted.push(e),
                    _ if policy.enabled => groups.legacy.push(e),
                    _ => groups.other.push(e),
                }
            }
        }
        if wants(TagList::Tombstones) {
            let (page, more) = r.tombstones_page(name, after(TagList::Tombstones), n, &keep)?;
            groups.tombstones = page.into_iter().map(entry).collect();
            groups.next.tombstones = cursor(more, &groups.tombstones);
        }
        Ok(groups)
    }

    /// Checks, without changing anything, whether a client could point `tag` at `digest`.
    pub fn check_tag(&self, repo: &Repository, tag: &str, digest: &str) -> Result<(), Error> {
        let r = self.meta.read()?;
        let feed = r.feed(repo.feed())?.ok_or_else(|| feed_unknown(repo))?;
        let current = r.tag(repo.as_str(), tag)?;
        let tombstone = r.tombstone(repo.as_str(), tag)?;
        tags::policy_of(&feed).check_write(
            repo.feed(),
            tag,
            digest,
            current.as_deref(),
            tombstone.as_deref(),
        )
    }

    /// Copies an image (with index children, and referrers when asked) from one repository to
    /// another by link, never by bytes, and points `to_tag` at it: one transaction. Callers
    /// check pull on the source and promote on the target.
    pub fn promote(&self, p: &Promotion<'_>) -> Result<Promoted, Error> {
        let Promotion {
            from,
            from_ref,
            to,
            to_tag,
            include_referrers,
            actor,
            comment,
        } = *p;
        let method = if from == to || from.feed() == to.feed() {
            "retag"
        } else {
            "promote"
        };
        let change = Change {
            actor,
            clock: &self.clock,
            method,
            comment,
        };
        self.meta.write(|w| {
            w.feed(from.feed())?.ok_or_else(|| feed_unknown(from))?;
            let feed = w.feed(to.feed())?.ok_or_else(|| feed_unknown(to))?;
            let digest = match from_ref {
                Reference::Digest(d) => d.to_string(),
                Reference::Tag(t) => w
                    .tag(from.as_str(), t.as_str())?
                    .ok_or_else(|| manifest_unknown(from, from_ref))?,
            };
            let mut pending = vec![digest.clone()];
            let mut copied = Vec::new();
            while let Some(d) = pending.pop() {
                if copied.contains(&d) {
                    continue;
                }
                let record = w
                    .manifest(from.as_str(), &d)?
                    .ok_or_else(|| manifest_unknown(from, &d))?;
                pending.extend(record.children.iter().cloned());
                if include_referrers {
                    pending.extend(w.referrers(from.as_str(), &d)?);
                }
                for blob in &record.blobs {
                    if !w.is_linked(from.as_str(), blob)? {
                        return Err(Error::ManifestBlobUnknown { digest: blob.clone() });
                    }
                    w.link(to.as_str(), blob, self.clock.now())?;
                }
                if let Some(subject) = &record.subject {
                    w.add_referrer(to.as_str(), subject, &d, self.clock.now())?;
                }
                if !w.has_manifest(to.as_str(), &d)? {
                    w.put_manifest(to.as_str(), &d, &record)?;
                }
                copied.push(d);
            }
            ensure_repository(w, to.as_str(), self.clock.now())?;
            let changed = tags::set(w, to, &feed, to_tag.as_str(), &digest, &change)?;
            if changed {
                w.append_promotion(&crate::store::meta::PromotionRecord {
                    time_ms: self.clock.now_ms(),
                    actor: actor.to_owned(),
                    from_repository: from.to_string(),
                    from_reference: from_ref.to_string(),
                    to_repository: to.to_string(),
                    to_tag: to_tag.to_string(),
                    digest: digest.clone(),
                    comment: comment.map(str::to_owned),
                })?;
            }
            tracing::info!(actor, from = %from, to = %to, tag = %to_tag, digest, method, "promoted");
            crate::metrics::get()
                .promotions
                .get_or_create(&crate::metrics::Metrics::feed(to.feed()))
                .inc();
            Ok(Promoted {
                digest,
                manifests: copied.len(),
                changed,
            })
        })
    }

    // ---- listings ----

    /// Tags of `repo`, sorted, `n` at most, after `last`.
    pub fn tags(
        &self,
        repo: &Repository,
        n: Option<usize>,
        last: Option<&str>,
    ) -> Result<Page, Error> {
        let r = self.meta.read()?;
        if r.feed(repo.feed())?.is_none() {
            return Err(feed_unknown(repo));
        }
        if r.repository(repo.as_str())?.is_none() {
            return Err(Error::RepositoryUnknown {
                repository: repo.to_string(),
            });
        }
        let (items, more) = r.tags(repo.as_str(), last, page_size(n))?;
        Ok(Page { items, more })
    }

    /// Every promotion and retag whose target feed `visible` accepts, oldest first.
    pub fn promotions(
        &self,
        visible: impl Fn(&str) -> bool,
    ) -> Result<Vec<crate::store::meta::PromotionRecord>, Error> {
        Ok(self
            .meta
            .read()?
            .promotions()?
            .into_iter()
            .filter(|p| visible(p.to_repository.split('/').next().unwrap_or_default()))
            .collect())
    }

    /// `RepositoryUnknown` unless `repo` holds (or held) something: pages about it say so.
    pub fn require_repository(&self, repo: &Repository) -> Result<(), Error> {
        if self.meta.read()?.repository(repo.as_str())?.is_none() {
            return Err(Error::RepositoryUnknown {
                repository: repo.to_string(),
            });
        }
        Ok(())
    }

    /// Repositories of the feeds `visible` accepts, sorted, `n` at most, after `last`.
    pub fn catalog(
        &self,
        n: Option<usize>,
        last: Option<&str>,
        visible: impl Fn(&str) -> bool,
    ) -> Result<Page, Error> {
        let (items, more) = self
            .meta
            .read()?
            .repositories("", last, page_size(n), &|name| {
                visible(name.split('/').next().unwrap_or_default())
            })?;
        Ok(Page { items, more })
    }

    /// Manifests in `repo` whose subject is `subject`, optionally of one artifact type.
    pub fn referrers(
        &self,
        repo: &Repository,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<Vec<Referrer>, Error> {
        let r = self.meta.read()?;
        if r.feed(repo.feed())?.is_none() {
            return Err(feed_unknown(repo));
        }
        let mut out = Vec::new();
        for digest in r.referrers(repo.as_str(), subject.as_str())? {
            let Some(m) = r.manifest(repo.as_str(), &digest)? else {
                continue;
            };
            if artifact_type.is_some_and(|t| m.artifact_type.as_deref() != Some(t)) {
                continue;
            }
            out.push(Referrer {
                media_type: m.media_type,
                size: m.body.len() as u64,
                digest,
                artifact_type: m.artifact_type,
                annotations: m.annotations,
            });
        }
        Ok(out)
    }
}

fn page_size(n: Option<usize>) -> usize {
    n.unwrap_or(MAX_PAGE).min(MAX_PAGE)
}

/// Removes a manifest with the tags pointing at it and its referrer entry, as a user's delete
/// by digest does; says whether it existed.
pub(super) fn remove_manifest(
    w: &mut dyn MetaWrite,
    repo: &Repository,
    feed: &FeedRecord,
    digest: &str,
    change: &Change<'_>,
) -> Result<bool, Error> {
    let name = repo.as_str();
    let Some(record) = w.manifest(name, digest)? else {
        return Ok(false);
    };
    w.remove_manifest(name, digest)?;
    w.remove_pull(name, digest)?;
    let (virtual_tags, others): (Vec<String>, Vec<String>) = w
        .tags_pointing_at(name, digest)?
        .into_iter()
        .partition(|tag| feed.versioning && is_virtual(tag));
    for tag in others {
        tags::remove(w, repo, feed, &tag, change)?;
    }
    // Virtual tags follow the versions: removing those settled the tags they moved; the
    // ones still at this digest are settled here.
    if feed.versioning {
        tags::settle_virtual(w, name, virtual_tags, change)?;
    }
    if let Some(subject) = record.subject {
        w.remove_referrer(name, &subject, digest)?;
    }
    Ok(true)
}

fn ensure_repository(w: &mut dyn MetaWrite, name: &str, now: u64) -> Result<(), Error> {
    if w.repository(name)?.is_none() {
        w.put_repository(name, &RepositoryRecord { created: now })?;
    }
    Ok(())
}

/// Links `digest` into `repo` at `now`, creating the repository's record if needed.
fn link_into(
    w: &mut dyn MetaWrite,
    repo: &Repository,
    digest: &Digest,
    now: u64,
) -> Result<(), Error> {
    ensure_repository(w, repo.as_str(), now)?;
    w.link(repo.as_str(), digest.as_str(), now)?;
    Ok(())
}
