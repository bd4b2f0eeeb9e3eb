//! The records stored as table values, encoded with postcard.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize, de::DeserializeOwned};

use super::MetaError;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedRecord {
    pub created: u64,
    pub description: String,
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

pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, MetaError> {
    postcard::to_stdvec(value).map_err(MetaError::Codec)
}

pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, MetaError> {
    postcard::from_bytes(bytes).map_err(MetaError::Codec)
}
