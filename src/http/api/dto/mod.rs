//! The API's own request and response types: the JSON `/api/v1/` sends and accepts, and the
//! `OpenAPI` schema generated from them. Domain types never appear in the document: each DTO
//! is converted from (or into) its domain type with `From`, so the domain can change shape
//! without changing the API. The CLI's remote path reads and writes these same types.

mod accounts;
mod audit;
mod feeds;
mod replication;
mod storage;
mod tags;
mod trust;
mod vulns;
mod webhooks;

pub use accounts::{
    CreatedUser, FederationRule, KeyInfo, NewKey, NewKeyRequest, NewRobot, NewUser, PasswordChange,
    RobotInfo, RobotSecret, RobotUpdate, Role, RoleGrant, UserInfo, UserUpdate,
};
pub use audit::AuditEntry;
pub use feeds::{FeedInfo, FeedUpdate, NewFeed, UpstreamChange, UpstreamInfo, UpstreamTest};
pub use replication::{
    CarriedEntry, CarriedHistory, Conflict, FeedReplica, NewReplicationRule, ReplicaChange,
    ReplicationRule, ReplicationRuleChange, ReplicationStatus, RunReport,
};
pub use storage::{
    BackupReport, BackupRequest, Deletion, FeedQuota, FeedStorage, GcReport, Maintenance,
    MaintenanceChange, QuotaChange, RetentionReport, Rules, RunRequest, StorageStats, SyncReport,
};
pub use tags::{
    HistoryEntry, Promoted, PromotionRequest, PurgeRequest, Resolved, SearchHit, TagAt, TagCursors,
    TagEntry, TagGroups, TagList,
};
pub use trust::{
    Attestation, AttestationRule, Identity, NewTrustKey, NewTrustRoot, NewTrustStore, PullGate,
    SignatureFinding, SignaturePolicy, TrustKey, TrustRoot, TrustStore, Verification,
};
pub use vulns::{
    AffectedReport, AffectedRepository, Finding, VulnDb, VulnException, VulnImport, VulnPolicy,
    VulnReport, VulnSource,
};
pub use webhooks::{Delivery, EndpointChange, EndpointInfo, Format, NewEndpoint};

/// `items` converted one by one.
pub fn all<D: From<T>, T>(items: Vec<T>) -> Vec<D> {
    items.into_iter().map(D::from).collect()
}
