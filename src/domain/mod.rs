//! Domain services: every registry rule lives here, free of HTTP.
//!
//! Calls are synchronous and may block on disk and database; the HTTP layer runs them off its
//! executor. Nothing here sees actix types or renders a response.

pub mod access;
pub mod audit;
pub mod auth;
mod cache;
pub mod clock;
pub mod directory;
pub mod error;
pub mod maintenance;
pub mod quota;
pub mod registry;
pub mod replication;
pub mod search;
pub mod stored_settings;
pub mod tags;
pub mod trust;
pub mod versioning;
pub mod vulns;
pub mod webhooks;

/// Why a directory, identity provider or upstream registry gave no answer, and which one.
pub use crate::clients::{ClientError, Peer};
pub use error::Error;
pub use registry::{
    Append, BlobHandle, Feed, FeedChange, FeedPreview, HistoryEntry, HistoryQuery, Limits,
    ManifestPut, Page, Promoted, Promotion, Referrer, Registry, StoredManifest, SyncReport,
    TagCursors, TagEntry, TagGroups, TagList, TagQuery, TagState, UpstreamChange, UpstreamInfo,
    UpstreamTest,
};

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// The metadata database's file in a data directory.
pub const META_FILE: &str = "meta.redb";

/// Every domain service over one data directory, sharing its metadata store.
pub struct Services {
    pub registry: Arc<Registry>,
    pub auth: Arc<auth::Auth>,
    /// The admin's password when this start created it (first start only).
    pub initial_password: Option<String>,
}

impl Services {
    /// The services over the metadata engine `meta` and the blob store `blobs`, with the
    /// secrets files under `data_dir`.
    pub fn with_stores(
        meta: Arc<dyn crate::store::meta::Metadata>,
        blobs: Arc<dyn crate::store::blobs::Blobs>,
        data_dir: &Path,
        limits: Limits,
        tokens: auth::TokenSettings,
    ) -> Result<Self, Error> {
        let registry = Registry::with_stores(meta.clone(), blobs, limits);
        let clock = registry.clock().clone();
        let (auth, initial_password) = auth::Auth::open(meta, data_dir, tokens, clock)?;
        Ok(Self {
            registry: Arc::new(registry),
            auth: Arc::new(auth),
            initial_password,
        })
    }
}

/// Locks `m`, through a poisoned lock too: every critical section in the domain is a few
/// inserts or a swap, so a panic cannot leave one half done.
pub(in crate::domain) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
