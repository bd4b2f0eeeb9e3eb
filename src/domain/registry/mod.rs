//! The registry service: feeds, blobs, uploads, manifests, tags and referrers.
//!
//! Rules enforced here: a repository belongs to an existing feed; a repository reads only blobs
//! linked to it; an upload publishes its blob only when the bytes hash to the declared digest;
//! a manifest is stored only when every blob and child it references is in its repository; a
//! tag moves only by committed transaction.

use std::sync::{Arc, Mutex};

use crate::model::{Digest, Repository};
use crate::store::blobs::{self as store};
use crate::store::meta::{MetaWrite, Metadata, RepositoryRecord};

use super::Error;
use super::cache::GenCache;

mod blobs;
mod connector;
mod feeds;
mod full_read;
mod history;
mod manifests;
mod sync;

pub(in crate::domain) use blobs::GcWatch;
pub use blobs::{Append, BlobAt, BlobHandle, Blobs, Uploads};
use blobs::{Sessions, UploadOwners};
pub use connector::{
    BlobFetch, Connector, FlightWait, MAX_FETCHES, MAX_WAITERS, UpstreamChange, UpstreamInfo,
    UpstreamTest, after_flights,
};
pub use feeds::{Feed, FeedChange, FeedPreview, Feeds};
pub use full_read::FullRead;
pub use history::{
    DEFAULT_LIST_PAGE, History, HistoryEntry, HistoryQuery, MAX_LIST_PAGE, Page, Promoted,
    Promotion, TagCursors, TagEntry, TagGroups, TagList, TagQuery, TagState, list_page_size,
};
pub(super) use manifests::remove_manifest;
pub use manifests::{ManifestPut, Referrer, StoredManifest};
pub(crate) use sync::REPORTS as SYNC_REPORTS;
pub(crate) use sync::split_selector;
pub use sync::{SyncReport, format_rule, parse_rule};

/// Size limits, from configuration.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub manifest_bytes: u64,
    pub upload_bytes: u64,
    /// Upload sessions one account may have open at once.
    pub upload_sessions: usize,
    /// The metadata database's page cache, in bytes.
    pub metadata_cache_bytes: usize,
    /// How long a connector feed's upstream may take to answer before the cached copy is
    /// served instead.
    pub upstream_timeout_seconds: u64,
}

/// Largest page of tags or repositories one request returns.
pub const MAX_PAGE: usize = 10_000;

/// The registry: metadata, blob files and the hash state of uploads in progress.
pub struct Registry {
    pub(super) meta: Arc<dyn Metadata>,
    pub(super) blobs: Arc<dyn store::Blobs>,
    /// Every time the registry records or compares.
    pub(super) clock: super::clock::Clock,
    limits: Limits,
    sessions: Sessions,
    upload_owners: Mutex<UploadOwners>,
    /// What a garbage collection running now must not take: uploads and pushes note what they
    /// touch here, the collection reads it (see `maintenance::gc`).
    gc_watch: Mutex<GcWatch>,
    /// The maintenance service's state (the one-job lock, the last runs, pull times).
    maintenance: super::maintenance::State,
    /// "repository\nreference" → the manifest, while the metadata is unchanged.
    manifest_cache: GenCache<StoredManifest>,
    /// Blobs whose bytes hashed to their digest, while their store's fingerprint stays.
    verified: full_read::Verified,
    /// The webhooks service, over the same metadata and clock.
    webhooks: super::webhooks::Webhooks,
    /// Trusted keys, signature policies, verification.
    trust: super::trust::Trust,
    /// SBOMs, the vulnerability database, reports and feeds' vulnerability policies.
    vulns: super::vulns::Vulns,
    /// Connector feeds' clients, tag checks and fetches in flight.
    connectors: Arc<connector::Connectors>,
    /// Replication rules running now in this process.
    replication: super::replication::Running,
}

/// Manifests remembered in memory: enough entries for the images a busy cluster pulls, small
/// enough not to matter next to the page cache (bodies over 256 KiB are not cached).
const MANIFEST_CACHE_ENTRIES: usize = 4096;
const MANIFEST_CACHE_BYTES: usize = 16 << 20;
const MANIFEST_CACHE_MAX_BODY: usize = 256 << 10;

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
    /// The clock the registry (and the services sharing it) reads.
    #[must_use]
    pub fn clock(&self) -> &super::clock::Clock {
        &self.clock
    }

    /// The registry over already open stores.
    #[must_use]
    pub fn with_stores(
        meta: Arc<dyn Metadata>,
        blobs: Arc<dyn store::Blobs>,
        limits: Limits,
    ) -> Self {
        let clock = super::clock::Clock::default();
        Self {
            maintenance: super::maintenance::State::new(meta.clone(), blobs.clone(), clock.clone()),
            webhooks: super::webhooks::Webhooks::new(meta.clone(), clock.clone()),
            trust: super::trust::Trust::new(meta.clone(), blobs.clone(), clock.clone()),
            vulns: super::vulns::Vulns::new(meta.clone(), clock.clone()),
            meta,
            blobs,
            clock,
            limits,
            sessions: Sessions::default(),
            upload_owners: Mutex::default(),
            gc_watch: Mutex::default(),
            manifest_cache: GenCache::new(MANIFEST_CACHE_ENTRIES, MANIFEST_CACHE_BYTES),
            verified: full_read::Verified::default(),
            connectors: Arc::default(),
            replication: super::replication::Running::default(),
        }
    }

    /// The maintenance jobs: garbage collection, retention, check, backup and migration.
    #[must_use]
    pub fn maintenance(&self) -> super::maintenance::Maintenance<'_> {
        super::maintenance::Maintenance::new(&self.maintenance, self)
    }

    /// The feeds: create, change, list, delete; their audit log.
    #[must_use]
    pub fn feeds(&self) -> Feeds<'_> {
        Feeds { registry: self }
    }

    /// The blobs of repositories: open, serve, unlink.
    #[must_use]
    pub fn blobs(&self) -> Blobs<'_> {
        Blobs { registry: self }
    }

    /// Uploads in progress.
    #[must_use]
    pub fn uploads(&self) -> Uploads<'_> {
        Uploads { registry: self }
    }

    /// Repositories, tags, their history and promotions.
    #[must_use]
    pub fn history(&self) -> History<'_> {
        History { registry: self }
    }

    /// Connector feeds: pulls routed upstream, fetches, sync.
    #[must_use]
    pub fn connector(&self) -> Connector<'_> {
        Connector { registry: self }
    }

    /// Trust: the keys signatures are verified with, feeds' signature policies.
    #[must_use]
    pub fn trust(&self) -> &super::trust::Trust {
        &self.trust
    }

    /// SBOMs, the vulnerability database and feeds' vulnerability policies.
    #[must_use]
    pub fn vulns(&self) -> &super::vulns::Vulns {
        &self.vulns
    }

    /// Replication rules: pushing a feed's images to other registries.
    #[must_use]
    pub fn replication(&self) -> super::replication::Replication<'_> {
        super::replication::Replication { registry: self }
    }

    pub(in crate::domain) fn replication_running(&self) -> &super::replication::Running {
        &self.replication
    }

    /// The metadata store.
    pub(in crate::domain) fn meta(&self) -> &Arc<dyn Metadata> {
        &self.meta
    }

    /// The blob store.
    pub(in crate::domain) fn blob_store(&self) -> Arc<dyn store::Blobs> {
        self.blobs.clone()
    }

    /// The webhooks: endpoints, deliveries and redeliveries.
    #[must_use]
    pub fn webhooks(&self) -> &super::webhooks::Webhooks {
        &self.webhooks
    }

    #[must_use]
    pub fn limits(&self) -> Limits {
        self.limits
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
}

fn page_size(n: Option<usize>) -> usize {
    n.unwrap_or(MAX_PAGE).min(MAX_PAGE)
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
    crate::domain::quota::link(w, repo.as_str(), digest.as_str(), now)
}
