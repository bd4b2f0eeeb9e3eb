//! The records stored as table values, encoded with postcard.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize, de::DeserializeOwned};

use super::MetaError;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedRecord {
    pub created: u64,
    pub description: String,
    /// Whether anyone, without credentials, may pull from the feed.
    pub anonymous_pull: bool,
    /// Container versioning: only version and permitted tags, immutable versions, virtual tags.
    pub versioning: bool,
    /// Tags (exact or `*` globs) a versioned feed accepts besides versions; mutable.
    pub permitted: Vec<String>,
}

/// One change of one tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryRecord {
    /// Unix milliseconds.
    pub time_ms: u64,
    pub old: Option<String>,
    pub new: Option<String>,
    pub actor: String,
    /// `push`, `delete`, `virtual`, `promote`, `retag`, `purge`, `settings`.
    pub method: String,
    pub comment: Option<String>,
}

/// A promotion or retag, source included.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PromotionRecord {
    /// Unix milliseconds.
    pub time_ms: u64,
    pub actor: String,
    /// `FEED/NAME` and the tag or digest promoted from.
    pub from_repository: String,
    pub from_reference: String,
    pub to_repository: String,
    pub to_tag: String,
    pub digest: String,
    pub comment: Option<String>,
}

/// An administrative act.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub time_ms: u64,
    pub actor: String,
    pub feed: String,
    pub change: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRecord {
    /// PHC string of an argon2id hash.
    pub password_hash: String,
    pub admin: bool,
    pub disabled: bool,
    pub created: u64,
    /// When the user last logged in, if ever.
    pub last_login: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKeyRecord {
    pub name: String,
    pub owner: String,
    /// blake3 keyed hash of the secret part; the secret itself is never stored.
    pub hash: [u8; 32],
    pub admin: bool,
    pub created: u64,
    pub expires: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepositoryRecord {
    pub created: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestRecord {
    pub media_type: String,
    pub artifact_type: Option<String>,
    pub subject: Option<String>,
    /// Config and layer digests.
    pub blobs: Vec<String>,
    /// Child manifest digests of an index.
    pub children: Vec<String>,
    pub annotations: BTreeMap<String, String>,
    pub created: u64,
    pub body: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobRecord {
    pub size: u64,
    pub created: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadRecord {
    pub repository: String,
    pub started: u64,
}

/// A feed's retention rules; `None` switches a rule off.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetentionRecord {
    /// Delete manifests no tag points at (directly or through an index) after this many days.
    pub untagged_days: Option<u32>,
    /// Keep only this many newest pre-release versions per repository.
    pub keep_prereleases: Option<u32>,
    /// Delete images not pulled (nor pushed) for this many days.
    pub unpulled_days: Option<u32>,
    /// Whether the unpulled rule may delete released versions of a versioned feed.
    pub include_releases: bool,
}

pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, MetaError> {
    postcard::to_stdvec(value).map_err(MetaError::Codec)
}

pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, MetaError> {
    postcard::from_bytes(bytes).map_err(MetaError::Codec)
}
