//! Domain services: every registry rule lives here, free of HTTP.
//!
//! Calls are synchronous and may block on disk and database; the HTTP layer runs them off its
//! executor. Nothing here sees actix types or renders a response.

pub mod auth;
pub mod backup;
mod cache;
pub mod check;
pub mod error;
pub mod gc;
pub mod registry;
pub mod retention;
pub mod tags;
pub mod versioning;

/// A feed's stored settings, as the domain hands them out.
pub use crate::store::meta::FeedRecord as Feed;
pub use error::Error;
pub use registry::{
    Append, BlobHandle, FeedChange, FeedPreview, HistoryEntry, Limits, ManifestPut, Page, Promoted,
    Promotion, Referrer, Registry, StoredManifest, TagEntry, TagGroups,
};

use std::path::Path;
use std::sync::Arc;

use crate::store::meta::MetaStore;

/// Every domain service over one data directory, sharing its metadata store.
pub struct Services {
    pub registry: Arc<Registry>,
    pub auth: Arc<auth::Auth>,
    /// The admin's password when this start created it (first start only).
    pub initial_password: Option<String>,
}

impl Services {
    pub fn open(
        data_dir: &Path,
        limits: Limits,
        tokens: auth::TokenSettings,
    ) -> Result<Self, Error> {
        std::fs::create_dir_all(data_dir)?;
        let meta = Arc::new(MetaStore::open(&data_dir.join("meta.redb"))?);
        let registry = Registry::with_meta(meta.clone(), data_dir, limits)?;
        let (auth, initial_password) = auth::Auth::open(meta, data_dir, tokens)?;
        Ok(Self {
            registry: Arc::new(registry),
            auth: Arc::new(auth),
            initial_password,
        })
    }
}
