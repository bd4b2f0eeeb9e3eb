//! Domain services: every registry rule lives here, free of HTTP.
//!
//! Calls are synchronous and may block on disk and database; the HTTP layer runs them off its
//! executor. Nothing here sees actix types or renders a response.

pub mod error;
pub mod registry;

pub use error::Error;
pub use registry::{
    Append, BlobHandle, Limits, ManifestPut, Page, Referrer, Registry, StoredManifest,
};
