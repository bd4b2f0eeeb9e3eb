//! Replication rules, their status and their runs.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::replication;

/// What one run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RunReport {
    /// Unix milliseconds.
    pub started_ms: u64,
    pub finished_ms: u64,
    /// `full` (scheduled, a new rule, or asked for) or `events`.
    pub trigger: String,
    /// Tags the target now holds as here.
    pub tags: usize,
    /// Manifests pushed (images, index children, referrers).
    pub manifests_pushed: usize,
    pub blobs_uploaded: usize,
    /// Blobs the target mounted from another of its repositories.
    pub blobs_mounted: usize,
    pub bytes_uploaded: u64,
    pub referrers: usize,
    /// Tag history entries carried to a semdock target.
    pub history_carried: usize,
    /// Tags whose history a semdock target did not take (its credentials do not administer
    /// the feed there).
    pub history_not_carried: usize,
    /// Tags or images deleted at the target.
    pub deleted: usize,
    /// Versions the target holds with another digest (left alone).
    pub conflicts: usize,
    pub errors: Vec<String>,
}

impl From<replication::RunReport> for RunReport {
    fn from(r: replication::RunReport) -> Self {
        Self {
            started_ms: r.started_ms,
            finished_ms: r.finished_ms,
            trigger: r.trigger,
            tags: r.tags,
            manifests_pushed: r.manifests_pushed,
            blobs_uploaded: r.blobs_uploaded,
            blobs_mounted: r.blobs_mounted,
            bytes_uploaded: r.bytes_uploaded,
            referrers: r.referrers,
            history_carried: r.history_carried,
            history_not_carried: r.history_not_carried,
            deleted: r.deleted,
            conflicts: r.conflicts,
            errors: r.errors,
        }
    }
}

/// A version the target holds with another digest: never overwritten.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Conflict {
    pub repository: String,
    pub tag: String,
    /// The digest here.
    pub digest: String,
    pub target_digest: String,
    /// RFC 3339.
    pub time: String,
}

impl From<replication::Conflict> for Conflict {
    fn from(c: replication::Conflict) -> Self {
        Self {
            repository: c.repository,
            tag: c.tag,
            digest: c.digest,
            target_digest: c.target_digest,
            time: c.time,
        }
    }
}

/// Where a rule stands.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ReplicationStatus {
    /// The last event (audit entry) handled.
    pub cursor: u64,
    /// The feed's events not yet handled.
    pub lag_events: u64,
    /// Seconds since the oldest event not yet handled; 0 when caught up.
    pub lag_seconds: u64,
    pub full_run_pending: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_run: Option<RunReport>,
    /// The last failure, until an attempt succeeds; retried with backoff.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    pub attempts: u32,
    pub conflicts: Vec<Conflict>,
}

/// A replication rule: the password never.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[allow(clippy::struct_excessive_bools)] // the API's flags, each its own switch
pub struct ReplicationRule {
    pub name: String,
    pub feed: String,
    /// `REPOSITORY`, `REPOSITORY:TAG-GLOB`, `REPOSITORY@SEMVER-REQUIREMENT`; all when empty.
    pub filters: Vec<String>,
    pub url: String,
    /// Put before each repository's path within the feed at the target.
    pub prefix: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    pub has_password: bool,
    pub on_push: bool,
    pub interval_seconds: u64,
    pub deletions: bool,
    pub active: bool,
    /// RFC 3339.
    pub created: String,
    pub created_by: String,
    pub status: ReplicationStatus,
}

impl From<replication::RuleInfo> for ReplicationRule {
    fn from(r: replication::RuleInfo) -> Self {
        let s = r.status;
        Self {
            name: r.name,
            feed: r.feed,
            filters: r.filters,
            url: r.url,
            prefix: r.prefix,
            username: r.username,
            has_password: r.has_password,
            on_push: r.on_push,
            interval_seconds: r.interval_seconds,
            deletions: r.deletions,
            active: r.active,
            created: r.created,
            created_by: r.created_by,
            status: ReplicationStatus {
                cursor: s.cursor,
                lag_events: s.lag_events,
                lag_seconds: s.lag_seconds,
                full_run_pending: s.full_run_pending,
                last_run: s.last_run.map(Into::into),
                last_error: s.last_error,
                attempts: s.attempts,
                conflicts: super::all(s.conflicts),
            },
        }
    }
}

/// A tag's history carried from another semdock, oldest first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CarriedHistory {
    pub tag: String,
    /// The origin's URL: actors are named `ACTOR@HOST` of it.
    pub origin: String,
    pub entries: Vec<CarriedEntry>,
}

/// One carried history entry.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CarriedEntry {
    /// RFC 3339.
    pub time: String,
    pub old: Option<String>,
    pub new: Option<String>,
    pub actor: String,
    pub method: String,
    #[serde(default)]
    pub comment: Option<String>,
}

impl From<CarriedHistory> for replication::Carried {
    fn from(c: CarriedHistory) -> Self {
        Self {
            tag: c.tag,
            origin: c.origin,
            entries: c
                .entries
                .into_iter()
                .map(|e| replication::CarriedEntry {
                    time: e.time,
                    old: e.old,
                    new: e.new,
                    actor: e.actor,
                    method: e.method,
                    comment: e.comment,
                })
                .collect(),
        }
    }
}

/// A replica feed: it takes changes only from its replication's accounts.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FeedReplica {
    /// The primary it copies.
    pub source: String,
    /// The accounts whose pushes, promotions and deletions it takes.
    pub writers: Vec<String>,
    /// RFC 3339.
    pub since: String,
    pub by: String,
}

impl From<replication::replica::Replica> for FeedReplica {
    fn from(r: replication::replica::Replica) -> Self {
        Self {
            source: r.source,
            writers: r.writers,
            since: crate::domain::audit::rfc3339(r.since_ms),
            by: r.by,
        }
    }
}

/// Makes a feed a replica.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplicaChange {
    /// The primary it copies (`https://site-a.example`).
    pub source: String,
    /// The accounts whose changes it takes (the replication's user or robot there).
    pub writers: Vec<String>,
}

/// A new replication rule.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewReplicationRule {
    /// Lowercase letters, digits and dashes.
    pub name: String,
    /// The source feed.
    pub feed: String,
    #[serde(default)]
    pub filters: Vec<String>,
    /// The target registry (`https://site-b.example`).
    pub url: String,
    /// `FEED/` when omitted: the same names at the target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Stored, never shown back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// Follow the feed's pushes and promotions as they happen (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_push: Option<bool>,
    /// Seconds between scheduled full runs; 0: none.
    #[serde(default)]
    pub interval_seconds: u64,
    /// Deletions here are made at the target too.
    #[serde(default)]
    pub deletions: bool,
}

impl From<NewReplicationRule> for replication::NewRule {
    fn from(n: NewReplicationRule) -> Self {
        Self {
            name: n.name,
            feed: n.feed,
            filters: n.filters,
            url: n.url,
            prefix: n.prefix,
            username: n.username,
            password: n.password,
            on_push: n.on_push,
            interval_seconds: n.interval_seconds,
            deletions: n.deletions,
        }
    }
}

/// A change of a rule; absent fields stay.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplicationRuleChange {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filters: Option<Vec<String>>,
    /// A new URL drops the stored password unless a new one is given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// `""` removes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_push: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_seconds: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletions: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active: Option<bool>,
}

impl From<ReplicationRuleChange> for replication::RuleChange {
    fn from(c: ReplicationRuleChange) -> Self {
        Self {
            filters: c.filters,
            url: c.url,
            prefix: c.prefix,
            username: c.username,
            password: c.password,
            on_push: c.on_push,
            interval_seconds: c.interval_seconds,
            deletions: c.deletions,
            active: c.active,
        }
    }
}
