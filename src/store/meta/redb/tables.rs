//! Every redb table, with its key and value. A record value carries the version of its
//! encoding (`codec::Record`), so a change of encoding keeps the table's name; the names
//! keep the suffix they had before records carried versions.

use redb::TableDefinition;

/// feed name → `FeedRecord` (2: settings for access control and versioning)
pub const FEEDS: TableDefinition<&str, &[u8]> = TableDefinition::new("feeds-2");
/// repository (`feed/image`) → `RepositoryRecord`
pub const REPOSITORIES: TableDefinition<&str, &[u8]> = TableDefinition::new("repositories-1");
/// (repository, manifest digest) → `ManifestRecord`, body included
pub const MANIFESTS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("manifests-1");
/// (repository, tag) → manifest digest
pub const TAGS: TableDefinition<(&str, &str), &str> = TableDefinition::new("tags-1");
/// blob digest → `BlobRecord`; a blob file is published before its record is committed
pub const BLOBS: TableDefinition<&str, &[u8]> = TableDefinition::new("blobs-1");
/// (repository, blob digest) → time linked; a repository may read only blobs linked to it
pub const BLOB_LINKS: TableDefinition<(&str, &str), u64> = TableDefinition::new("blob-links-1");
/// (repository, subject digest, referrer digest) → time linked
pub const REFERRERS: TableDefinition<(&str, &str, &str), u64> = TableDefinition::new("referrers-1");
/// upload id → `UploadRecord`
pub const UPLOADS: TableDefinition<&str, &[u8]> = TableDefinition::new("uploads-1");
/// user name → `UserRecord`
pub const USERS: TableDefinition<&str, &[u8]> = TableDefinition::new("users-1");
/// API key id → `ApiKeyRecord`
pub const API_KEYS: TableDefinition<&str, &[u8]> = TableDefinition::new("api-keys-1");
/// (principal — `user:NAME` or `key:ID` —, feed) → role name
pub const GRANTS: TableDefinition<(&str, &str), &str> = TableDefinition::new("grants-1");
/// (repository, version tag) → digest it kept when deleted: the number stays taken
pub const TOMBSTONES: TableDefinition<(&str, &str), &str> = TableDefinition::new("tombstones-1");
/// (repository, tag, sequence) → `HistoryRecord`: every change of every tag
pub const TAG_HISTORY: TableDefinition<(&str, &str, u64), &[u8]> =
    TableDefinition::new("tag-history-1");
/// sequence → `AuditRecord`: feed setting changes and other administrative acts
pub const AUDIT: TableDefinition<u64, &[u8]> = TableDefinition::new("audit-1");
/// (audit kind, sequence) → (): the audit log by kind, kept with each entry
pub const AUDIT_KINDS: TableDefinition<(&str, u64), ()> = TableDefinition::new("audit-kinds-1");
/// setting name → bytes (the token signing key, the API key hashing key)
pub const SETTINGS: TableDefinition<&str, &[u8]> = TableDefinition::new("settings-1");
/// feed name → `RetentionRecord`: the feed's retention rules
pub const RETENTION: TableDefinition<&str, &[u8]> = TableDefinition::new("retention-1");
/// (repository, manifest digest) → when it was last pulled (seconds); written in batches
pub const PULLS: TableDefinition<(&str, &str), u64> = TableDefinition::new("pulls-1");
/// sequence → `PromotionRecord`: every promotion and retag, with its source (what ProGet's
/// promotion list answers from)
pub const PROMOTIONS: TableDefinition<u64, &[u8]> = TableDefinition::new("promotions-1");
/// (repository, rank — see `precedence` —) → (tag, digest): every tag of a repository, kept
/// with the tag in the same transaction, version tags in SemVer precedence (pre-releases, then
/// stable versions) and then every other tag by name. The virtual tags read the last key of a
/// range instead of every tag; the tag lists page through it
pub const RANKED_TAGS: TableDefinition<(&str, &[u8]), (&str, &str)> =
    TableDefinition::new("ranked-tags-1");
/// (repository, history sequence) → tag: a repository's history in order, across its tags
pub const REPO_HISTORY: TableDefinition<(&str, u64), &str> = TableDefinition::new("repo-history-1");
/// (repository, digest, tag): which tags point at a manifest, kept with the tag
pub const TAGS_BY_DIGEST: TableDefinition<(&str, &str, &str), ()> =
    TableDefinition::new("tags-by-digest-1");
