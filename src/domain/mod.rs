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
pub mod registry;
pub mod stored_settings;
pub mod tags;
pub mod versioning;
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

use crate::store::meta::redb::RedbMeta;

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
    /// Opens the registry in `data_dir`, creating it (and the first administrator) when the
    /// directory holds none: what `serve` does.
    pub fn open(
        data_dir: &Path,
        limits: Limits,
        tokens: auth::TokenSettings,
    ) -> Result<Self, Error> {
        crate::store::owner_only::create_dir_all(data_dir)
            .map_err(|e| Error::io("create the data directory", data_dir, &e))?;
        crate::store::owner_only::restrict_dir(data_dir);
        Self::open_dir(data_dir, limits, tokens)
    }

    /// Opens the registry that `data_dir` already holds; refuses, naming the directory, when
    /// there is none, so that an offline command never creates a registry no server uses.
    pub fn open_existing(
        data_dir: &Path,
        limits: Limits,
        tokens: auth::TokenSettings,
    ) -> Result<Self, Error> {
        let meta = Arc::new(Self::open_embedded_meta(data_dir, limits, false)?);
        Self::with_meta(meta, data_dir, limits, tokens)
    }

    fn open_dir(
        data_dir: &Path,
        limits: Limits,
        tokens: auth::TokenSettings,
    ) -> Result<Self, Error> {
        let meta = Arc::new(Self::open_embedded_meta(data_dir, limits, true)?);
        Self::with_meta(meta, data_dir, limits, tokens)
    }

    /// The embedded metadata (`meta.redb` in `data_dir`); only with `create` is one created
    /// where there is none.
    pub fn open_embedded_meta(
        data_dir: &Path,
        limits: Limits,
        create: bool,
    ) -> Result<RedbMeta, Error> {
        let path = data_dir.join(META_FILE);
        if !create && !path.is_file() {
            return Err(Error::NotFound(format!(
                "there is no registry in {}: set data_dir (or SEMDOCK_DATA_DIR, or --config) to the directory `semdock serve` uses, or pass --server URL",
                std::path::absolute(data_dir)
                    .unwrap_or_else(|_| data_dir.to_owned())
                    .display()
            )));
        }
        RedbMeta::open_with_cache(&path, limits.metadata_cache_bytes).map_err(|e| match e {
            e @ crate::store::meta::MetaError::InUse(_) => Error::from(e),
            other => Error::Internal(format!(
                "cannot open the database {}: {other}",
                path.display()
            )),
        })
    }

    /// The services over the metadata engine `meta`, with blobs and secrets files under
    /// `data_dir`.
    pub fn with_meta(
        meta: Arc<dyn crate::store::meta::Metadata>,
        data_dir: &Path,
        limits: Limits,
        tokens: auth::TokenSettings,
    ) -> Result<Self, Error> {
        let registry = Registry::with_meta(meta.clone(), data_dir, limits)?;
        Self::with_registry(registry, meta, data_dir, tokens)
    }

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
        Self::with_registry(registry, meta, data_dir, tokens)
    }

    fn with_registry(
        registry: Registry,
        meta: Arc<dyn crate::store::meta::Metadata>,
        data_dir: &Path,
        tokens: auth::TokenSettings,
    ) -> Result<Self, Error> {
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
