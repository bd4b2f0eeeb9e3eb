//! The `[storage]` section: the metadata engine (redb, PostgreSQL) and the blob engine
//! (files, S3), with the secrets they read from files.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    /// Where the metadata lives: `embedded` (`meta.redb` in the data directory) or
    /// `postgres` (`[storage.postgres]`, shared by several nodes).
    #[serde(default)]
    pub metadata: MetadataEngine,
    /// The PostgreSQL database, for `metadata = "postgres"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postgres: Option<PostgresConfig>,
    /// Where the blobs live: `files` (under the data directory) or `s3` (`[storage.s3]`, a
    /// bucket shared by several nodes).
    #[serde(default)]
    pub blobs: BlobEngine,
    /// The S3 bucket, for `blobs = "s3"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3: Option<S3Config>,
    /// Unreferenced blobs younger than this survive garbage collection, in seconds.
    pub gc_grace_seconds: u64,
    /// Upload sessions idle this long are abandoned, in seconds.
    pub upload_expiry_seconds: u64,
    /// Upload sessions that never received a byte are abandoned after this many seconds
    /// (checked every minute).
    pub empty_upload_expiry_seconds: u64,
    /// The metadata database's page cache, in MiB: what redb keeps of `meta.redb` in memory
    /// besides the operating system's page cache.
    pub metadata_cache_mib: u64,
    /// Collect garbage every this many seconds while serving; 0 never.
    pub gc_interval_seconds: u64,
    /// Apply the feeds' retention rules every this many seconds while serving; 0 never.
    pub retention_interval_seconds: u64,
    /// Hash every blob file against its name every this many seconds while serving (the
    /// scrub `semdock check` does, on files; what finds a disk rotting under an unchanged
    /// file); 0 never.
    pub scrub_interval_seconds: u64,
    /// The scrub reads at most this many MiB per second, to spare a serving disk.
    pub scrub_max_mib_per_second: u64,
}

/// The metadata engine.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MetadataEngine {
    #[default]
    Embedded,
    Postgres,
}

/// The blob engine.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BlobEngine {
    #[default]
    Files,
    S3,
}

/// `[storage.s3]`: the object store holding the blobs of a registry of several nodes.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Config {
    /// `https://s3.example.com` (or `http://` on a trusted network) for an S3-compatible
    /// store; unset for AWS, which the region then names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    pub bucket: String,
    #[serde(default = "default_region")]
    pub region: String,
    /// Path-style requests (`endpoint/bucket/key`), which Garage, MinIO and Ceph expect;
    /// `false` for virtual-hosted ones (`bucket.endpoint/key`).
    #[serde(default = "default_true")]
    pub path_style: bool,
    /// Keys are written under this prefix (so that one bucket can hold several
    /// registries); empty by default.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub prefix: String,
    pub access_key_id: String,
    /// A file whose first line is the secret access key (readable by the service account
    /// only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_access_key_file: Option<PathBuf>,
    /// The secret access key, from the environment
    /// (`SEMDOCK_STORAGE__S3__SECRET_ACCESS_KEY`); never printed by `semdock config` nor
    /// logged.
    #[serde(default, skip_serializing)]
    pub secret_access_key: Option<String>,
    /// Above 0, a blob GET answers `307` with a presigned URL of the object store valid
    /// this many seconds, and the client fetches the bytes from the store itself; 0 (the
    /// default) serves them through the node.
    #[serde(default)]
    pub redirect_seconds: u64,
}

fn default_region() -> String {
    "us-east-1".to_owned()
}

fn default_true() -> bool {
    true
}

impl std::fmt::Debug for S3Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Config")
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .field("path_style", &self.path_style)
            .field("prefix", &self.prefix)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key_file", &self.secret_access_key_file)
            .field(
                "secret_access_key",
                &self.secret_access_key.as_ref().map(|_| "(set)"),
            )
            .field("redirect_seconds", &self.redirect_seconds)
            .finish()
    }
}

impl S3Config {
    /// The secret access key: from the environment, else from `secret_access_key_file`.
    pub fn secret(&self) -> Result<String, String> {
        if let Some(s) = &self.secret_access_key {
            return Ok(s.clone());
        }
        let Some(file) = &self.secret_access_key_file else {
            return Err("storage.s3 needs its secret access key: set SEMDOCK_STORAGE__S3__SECRET_ACCESS_KEY or storage.s3.secret_access_key_file".into());
        };
        first_line(file, "storage.s3.secret_access_key_file")
    }
}

/// The first line of `file`, a secret named by setting `key`.
fn first_line(file: &Path, key: &str) -> Result<String, String> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| format!("cannot read {key} {}: {e}", file.display()))?;
    Ok(text.lines().next().unwrap_or_default().to_owned())
}

/// `[storage.postgres]`: the metadata database of a registry of several nodes.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresConfig {
    /// A libpq connection string or URL without the password:
    /// `host=db.example.com user=semdock dbname=semdock`.
    pub url: String,
    /// A file whose first line is the password (readable by the service account only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_file: Option<PathBuf>,
    /// The password, from the environment (`SEMDOCK_STORAGE__POSTGRES__PASSWORD`); never
    /// printed by `semdock config` nor logged.
    #[serde(default, skip_serializing)]
    pub password: Option<String>,
    /// A PEM file of the CA that signed the database server's certificate: when set, every
    /// connection is TLS, and the certificate must chain to it and name the host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
}

impl std::fmt::Debug for PostgresConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresConfig")
            .field("url", &self.url)
            .field("password_file", &self.password_file)
            .field("password", &self.password.as_ref().map(|_| "(set)"))
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

impl PostgresConfig {
    /// The password: from the environment, else from `password_file`, else none (the URL's,
    /// or a trust/peer login).
    pub fn password(&self) -> Result<Option<String>, String> {
        if let Some(p) = &self.password {
            return Ok(Some(p.clone()));
        }
        let Some(file) = &self.password_file else {
            return Ok(None);
        };
        first_line(file, "storage.postgres.password_file").map(Some)
    }
}
