//! Storage jobs: garbage collection, retention, backups, connector syncs, and usage.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::maintenance::{backup, gc, retention};
use crate::domain::{self};

#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RunRequest {
    /// Report what would be removed; change nothing.
    #[serde(default)]
    pub dry_run: bool,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BackupRequest {
    /// An absolute directory on the server's machine, new or empty.
    pub dir: String,
}

/// What a collection removed (or, in a dry run, would remove).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct GcReport {
    pub dry_run: bool,
    /// Unix seconds.
    pub started: u64,
    pub seconds: f64,
    /// Blobs no manifest references, older than the grace period.
    pub blobs_removed: u64,
    pub bytes_freed: u64,
    /// Blob files without a record (left by a crash between publish and commit).
    pub orphan_files: u64,
    /// Abandoned upload sessions and upload files without a session.
    pub uploads_expired: u64,
    /// The digests of the blobs removed.
    pub removed: Vec<String>,
}

impl From<gc::GcReport> for GcReport {
    fn from(r: gc::GcReport) -> Self {
        Self {
            dry_run: r.dry_run,
            started: r.started,
            seconds: r.seconds,
            blobs_removed: r.blobs_removed,
            bytes_freed: r.bytes_freed,
            orphan_files: r.orphan_files,
            uploads_expired: r.uploads_expired,
            removed: r.removed,
        }
    }
}

/// Storage used, in all and per feed (a blob shared by feeds counts in each).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct StorageStats {
    pub blobs: u64,
    pub bytes: u64,
    pub feeds: Vec<FeedStorage>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FeedStorage {
    pub feed: String,
    pub repositories: u64,
    pub blobs: u64,
    pub bytes: u64,
}

impl From<gc::StorageStats> for StorageStats {
    fn from(s: gc::StorageStats) -> Self {
        Self {
            blobs: s.blobs,
            bytes: s.bytes,
            feeds: s
                .feeds
                .into_iter()
                .map(|f| FeedStorage {
                    feed: f.feed,
                    repositories: f.repositories,
                    blobs: f.blobs,
                    bytes: f.bytes,
                })
                .collect(),
        }
    }
}

/// A feed's retention rules; an absent rule is off.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rules {
    /// Delete manifests that no tag reaches (directly, as an index child, or as a referrer of
    /// a tagged image) after this many days.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub untagged_days: Option<u32>,
    /// Keep only this many newest pre-release versions per repository (SemVer precedence).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_prereleases: Option<u32>,
    /// Delete images neither pulled nor pushed for this many days.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unpulled_days: Option<u32>,
    /// Let the unpulled rule delete released versions of a versioned feed too.
    #[serde(default)]
    pub include_releases: bool,
}

impl From<retention::Rules> for Rules {
    fn from(r: retention::Rules) -> Self {
        Self {
            untagged_days: r.untagged_days,
            keep_prereleases: r.keep_prereleases,
            unpulled_days: r.unpulled_days,
            include_releases: r.include_releases,
        }
    }
}

impl From<Rules> for retention::Rules {
    fn from(r: Rules) -> Self {
        Self {
            untagged_days: r.untagged_days,
            keep_prereleases: r.keep_prereleases,
            unpulled_days: r.unpulled_days,
            include_releases: r.include_releases,
        }
    }
}

/// One deletion a retention run makes: a tag, or (without one) a manifest.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
pub struct Deletion {
    pub repository: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    pub digest: String,
    /// `untagged`, `prerelease` or `unpulled`.
    pub rule: String,
}

/// What a retention run deleted (or, dry, would delete).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RetentionReport {
    pub feed: String,
    pub dry_run: bool,
    pub deletions: Vec<Deletion>,
}

impl From<retention::RetentionReport> for RetentionReport {
    fn from(r: retention::RetentionReport) -> Self {
        Self {
            feed: r.feed,
            dry_run: r.dry_run,
            deletions: r
                .deletions
                .into_iter()
                .map(|d| Deletion {
                    repository: d.repository,
                    tag: d.tag,
                    digest: d.digest,
                    rule: d.rule,
                })
                .collect(),
        }
    }
}

/// What a backup or restore copied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BackupReport {
    pub dir: String,
    /// Unix seconds.
    pub created: u64,
    pub blobs: u64,
    pub bytes: u64,
    /// Blobs recorded in the metadata whose files were missing (set aside by `check`).
    pub missing: Vec<String>,
    /// Blobs whose bytes did not hash to their digest: not copied (in a backup the live file
    /// is set aside as `check` does; push the image again to repair it).
    #[serde(default)]
    pub damaged: Vec<String>,
    pub seconds: f64,
}

impl From<backup::BackupReport> for BackupReport {
    fn from(r: backup::BackupReport) -> Self {
        Self {
            dir: r.dir,
            created: r.created,
            blobs: r.blobs,
            bytes: r.bytes,
            missing: r.missing,
            damaged: r.damaged,
            seconds: r.seconds,
        }
    }
}

/// What one sync of a connector feed did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SyncReport {
    /// Unix milliseconds.
    pub started_ms: u64,
    pub finished_ms: u64,
    /// Tags that matched a rule and are now held.
    pub tags: usize,
    /// Blobs fetched from the upstream (the others were held already).
    pub blobs_fetched: usize,
    /// Tag history records carried from an upstream semdock, for tags first seen.
    #[serde(default)]
    pub history_carried: usize,
    /// What could not be fetched, one sentence each (the first 50).
    pub errors: Vec<String>,
}

impl From<domain::SyncReport> for SyncReport {
    fn from(r: domain::SyncReport) -> Self {
        Self {
            started_ms: r.started_ms,
            finished_ms: r.finished_ms,
            tags: r.tags,
            blobs_fetched: r.blobs_fetched,
            history_carried: r.history_carried,
            errors: r.errors,
        }
    }
}

/// Read-only mode: while on, every node refuses writes with 503 and pulls go on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Maintenance {
    pub read_only: bool,
    /// Unix milliseconds since it is on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since_ms: Option<u64>,
    /// Who turned it on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    /// Why, as the administrator said it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl From<Option<domain::maintenance::mode::ReadOnly>> for Maintenance {
    fn from(mode: Option<domain::maintenance::mode::ReadOnly>) -> Self {
        Self {
            read_only: mode.is_some(),
            since_ms: mode.as_ref().map(|m| m.since_ms),
            by: mode.as_ref().map(|m| m.by.clone()),
            reason: mode.map(|m| m.reason),
        }
    }
}

/// Turns read-only mode on or off.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MaintenanceChange {
    pub read_only: bool,
    /// Shown to everyone while it is on (one line).
    #[serde(default)]
    pub reason: String,
}

/// A feed's storage quota and what it uses (blobs counted once per feed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FeedQuota {
    /// Bytes the feed may hold; none: no quota.
    pub quota_bytes: Option<u64>,
    pub used_bytes: u64,
    pub blobs: u64,
}

impl From<(Option<domain::quota::Quota>, domain::quota::Usage)> for FeedQuota {
    fn from((q, u): (Option<domain::quota::Quota>, domain::quota::Usage)) -> Self {
        Self {
            quota_bytes: q.map(|q| q.bytes),
            used_bytes: u.bytes,
            blobs: u.blobs,
        }
    }
}

/// Sets a feed's quota; `bytes: null` removes it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuotaChange {
    pub bytes: Option<u64>,
}
