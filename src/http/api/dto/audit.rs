//! The audit log.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::audit;

/// One entry of the audit log, as the API and the UI show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AuditEntry {
    /// The entry's sequence number: its id, and what `last` continues after.
    pub id: u64,
    /// RFC 3339.
    pub time: String,
    pub kind: String,
    pub actor: String,
    /// The feed it concerns; empty for the registry as a whole.
    pub feed: String,
    pub change: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

impl From<audit::AuditEntry> for AuditEntry {
    fn from(e: audit::AuditEntry) -> Self {
        Self {
            id: e.id,
            time: e.time,
            kind: e.kind,
            actor: e.actor,
            feed: e.feed,
            change: e.change,
            repository: e.repository,
            tag: e.tag,
            digest: e.digest,
            previous: e.previous,
            source: e.source,
        }
    }
}
