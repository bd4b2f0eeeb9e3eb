//! Maintenance: garbage collection, retention, the integrity check, backup and migration.
//!
//! This service owns what those jobs share — the one-job lock (one maintenance job at a time
//! in this process, and across nodes through a database lock), the last runs, and the pull
//! times retention reads — and holds its own handles on the stores and the clock. What it must
//! ask of the registry (an upload's state, the audit log, a corrupt blob) it asks through the
//! registry's methods; it never opens an engine.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::Mutex;

use super::clock::Clock;
use super::{Error, Registry, audit, lock, registry, tags, versioning};
use crate::store::blobs::Blobs;
use crate::store::meta::Metadata;

pub mod backup;
pub mod check;
pub mod gc;
mod hashing;
pub mod mode;
pub mod retention;

/// The state of the maintenance service; the registry holds one, [`Registry::maintenance`]
/// hands out the service over it.
pub(crate) struct State {
    meta: Arc<dyn Metadata>,
    blobs: Arc<dyn Blobs>,
    clock: Clock,
    /// One maintenance job (GC, retention, check, backup) at a time.
    one_job: Mutex<()>,
    last_gc: Mutex<Option<gc::GcReport>>,
    /// feed → (when, deletions) of its last real retention run.
    last_retention: Mutex<BTreeMap<String, (u64, u64)>>,
    /// Last pull times not yet written (see `record_pull`).
    /// repository → manifest digest → last pull (seconds).
    pulls: Mutex<HashMap<String, HashMap<String, u64>>>,
    /// Read-only mode as last read, and the metadata generation it was read at.
    mode: Mutex<Option<(u64, Option<mode::ReadOnly>)>>,
}

impl State {
    pub(crate) fn new(meta: Arc<dyn Metadata>, blobs: Arc<dyn Blobs>, clock: Clock) -> Self {
        Self {
            meta,
            blobs,
            clock,
            one_job: Mutex::default(),
            last_gc: Mutex::default(),
            last_retention: Mutex::default(),
            pulls: Mutex::default(),
            mode: Mutex::default(),
        }
    }
}

/// The maintenance jobs of one registry: `registry.maintenance().gc(..)`.
#[derive(Clone, Copy)]
pub struct Maintenance<'a> {
    state: &'a State,
    registry: &'a Registry,
}

impl<'a> Maintenance<'a> {
    pub(crate) fn new(state: &'a State, registry: &'a Registry) -> Self {
        Self { state, registry }
    }
}
