//! Persistence: metadata in redb (`meta`) and content-addressed blob files (`blobs`).
//!
//! Stores know nothing about HTTP or policy: they keep bytes and records exactly as the domain
//! layer asks, and make each change atomic.

pub mod blobs;
pub mod engine_runtime;
pub mod meta;
pub mod owner_only;

/// Seconds since the Unix epoch, the time unit of every stored record.
#[must_use]
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
