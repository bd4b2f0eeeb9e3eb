//! Configuration: built-in defaults < TOML file < `SEMDOCK_*` environment variables.
//!
//! Nested keys use `__` in the environment: `SEMDOCK_LOG__FORMAT=json`. Unknown keys are an
//! error at startup, so a typo never silently falls back to a default.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

/// Where `semdock` looks for a config file when `--config` is not given.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/semdock/semdock.toml";

/// Environment variables with the `SEMDOCK_` prefix that are not configuration keys: the
/// CLI's API key, and the configuration file itself (`--config`).
const NOT_CONFIG: &[&str] = &["api_key", "config_file"];

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Address and port the registry listens on: `127.0.0.1:5000`, `[::]:5000`, or a name
    /// (`localhost:5000`), resolved when the configuration is read.
    #[serde(deserialize_with = "deserialize_listen")]
    pub listen: SocketAddr,
    /// Directory holding `meta.redb`, `blobs/` and `uploads/`.
    pub data_dir: PathBuf,
    /// Feeds created at startup when they do not exist.
    pub feeds: Vec<String>,
    /// The URL clients reach the registry at, when it differs from what they send in `Host`
    /// (behind a reverse proxy): `https://registry.example.com`. Sets the token realm.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_url: Option<String>,
    /// Addresses of reverse proxies whose `Forwarded` and `X-Forwarded-*` headers are
    /// believed (the client's address for rate limits, the host and scheme of challenges
    /// when `external_url` is unset). Empty: those headers are ignored.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// The connector feed that answers pulls naming no feed of this registry: what docker's
    /// `registry-mirrors` sends (`library/nginx`, no feed in front).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mirror_feed: Option<String>,
    pub log: LogConfig,
    pub limits: LimitsConfig,
    pub auth: AuthConfig,
    pub storage: StorageConfig,
    #[serde(default)]
    pub audit: AuditConfig,
    #[serde(default)]
    pub webhooks: WebhooksConfig,
    #[serde(default)]
    pub directory: DirectoryConfig,
    /// Where connectors and webhooks may connect (see `clients::outbound`).
    #[serde(default)]
    pub outbound: OutboundConfig,
    /// Retention rules per feed, stored for a feed that has none yet (first start); the API
    /// and CLI change them afterwards.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub retention: BTreeMap<String, crate::domain::maintenance::retention::Rules>,
    /// HTTPS with a certificate and key (PEM). Without it the registry speaks plain HTTP,
    /// which docker accepts only on localhost.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsConfig>,
}

/// The audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// Entries older than this many days are removed (daily); 0 keeps them for ever.
    pub retention_days: u32,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            retention_days: 365,
        }
    }
}

/// Sign-in with the company directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DirectoryConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ldap: Option<LdapConfig>,
    /// UI sign-in through an `OpenID Connect` provider.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oidc: Option<OidcConfig>,
    /// Directory groups and the roles their members hold.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<crate::domain::directory::GroupRole>,
    /// A verified directory password is trusted this long; each directory account is asked
    /// about again every half of it, and is refused when it could not be for twice as long.
    pub cache_seconds: u64,
}

impl Default for DirectoryConfig {
    fn default() -> Self {
        Self {
            ldap: None,
            oidc: None,
            groups: Vec::new(),
            cache_seconds: 300,
        }
    }
}

/// An LDAP or Active Directory server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LdapConfig {
    /// `ldaps://dc.example.com` or `ldap://…` (with `starttls`).
    pub url: String,
    #[serde(default)]
    pub starttls: bool,
    /// PEM CA certificates of the server's certificate (the system's roots otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// The service account that searches (anonymous when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bind_dn: Option<String>,
    /// A file whose first line is the service account's password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bind_password_file: Option<PathBuf>,
    /// The password itself (from the environment in practice; never printed).
    #[serde(default, skip_serializing)]
    pub bind_password: Option<crate::model::Secret>,
    pub user_base: String,
    /// `{user}` is the login name, escaped. Exclude disabled accounts here (Active
    /// Directory: `(&(sAMAccountName={user})(!(userAccountControl:1.2.840.113556.1.4.803:=2)))`).
    #[serde(default = "default_user_filter")]
    pub user_filter: String,
    /// An attribute of the user's entry listing its groups (`memberOf`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_attribute: Option<String>,
    /// Where groups are searched when `group_attribute` is unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_base: Option<String>,
    /// `{dn}` is the user's DN and `{user}` the login name, escaped.
    #[serde(default = "default_group_filter")]
    pub group_filter: String,
    #[serde(default = "default_ldap_timeout")]
    pub timeout_seconds: u64,
}

/// An `OpenID Connect` provider the UI signs in with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcConfig {
    /// The issuer: its `/.well-known/openid-configuration` tells the rest.
    pub issuer: String,
    pub client_id: String,
    /// A file whose first line is the client secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret_file: Option<PathBuf>,
    /// The client secret itself (from the environment in practice; never printed). Neither
    /// set: a public client, with PKCE alone.
    #[serde(default, skip_serializing)]
    pub client_secret: Option<crate::model::Secret>,
    /// Scopes asked for; `openid` is always added. `offline_access` asks for the refresh
    /// token that lets semdock see later that a user was disabled.
    #[serde(default = "default_oidc_scopes")]
    pub scopes: Vec<String>,
    /// `prompt` of the sign-in request (`consent`: some providers issue a refresh token only
    /// after it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    /// The claim that names the semdock account; dots reach into objects.
    #[serde(default = "default_username_claim")]
    pub username_claim: String,
    /// The claim listing the user's groups, matched against `[[directory.groups]]`.
    #[serde(default = "default_groups_claim")]
    pub groups_claim: String,
    /// The label of the sign-in button.
    #[serde(default = "default_oidc_label")]
    pub label: String,
    /// PEM CA certificates of the provider's certificate (the system's roots otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    #[serde(default = "default_ldap_timeout")]
    pub timeout_seconds: u64,
}

fn default_oidc_scopes() -> Vec<String> {
    ["openid", "profile", "email", "offline_access"]
        .map(str::to_owned)
        .to_vec()
}

fn default_username_claim() -> String {
    "preferred_username".to_owned()
}

fn default_groups_claim() -> String {
    "groups".to_owned()
}

fn default_oidc_label() -> String {
    "Sign in with the company account".to_owned()
}

fn default_user_filter() -> String {
    "(uid={user})".to_owned()
}

fn default_group_filter() -> String {
    "(member={dn})".to_owned()
}

fn default_ldap_timeout() -> u64 {
    10
}

/// Where semdock may connect on a feed administrator's behalf: connectors' upstreams and
/// webhook receivers reach the public internet, and of the rest only what `allow` names.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutboundConfig {
    /// Address ranges (CIDR, or single addresses) that connectors and webhooks may reach
    /// although they are not public: internal registries, on-site receivers. Loopback,
    /// link-local and this host's own addresses too, when named.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allow: Vec<String>,
}

/// How webhook deliveries are made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhooksConfig {
    /// A receiver that has not answered in this many seconds has failed the attempt.
    pub timeout_seconds: u64,
    /// Attempts per event before it is logged as failed and the endpoint moves on.
    pub max_attempts: u32,
    /// The wait before the first retry, in milliseconds; each next one doubles.
    pub first_backoff_ms: u64,
    /// The longest wait between attempts, in seconds.
    pub max_backoff_seconds: u64,
    /// How often the log is looked at for new events, in milliseconds.
    pub poll_ms: u64,
}

impl Default for WebhooksConfig {
    fn default() -> Self {
        Self {
            timeout_seconds: 10,
            max_attempts: 12,
            first_backoff_ms: 1000,
            max_backoff_seconds: 600,
            poll_ms: 500,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// The `service` named in challenges and tokens.
    pub service: String,
    /// How long a token from `/v2/_auth` is valid, in seconds.
    pub token_ttl_seconds: u64,
}

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

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain, server certificate first.
    pub cert_file: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// `text` for people, `json` for log collectors.
    pub format: LogFormat,
    /// A tracing filter: `info`, `debug`, or per target (`info,semdock::upstream=debug`).
    pub level: String,
    /// The access log: one line per request (method, path, status, bytes, duration) at
    /// `info`, target `semdock::request`. Off by default: the request metrics count them.
    #[serde(default)]
    pub access: bool,
    /// Write the log to daily files `semdock.YYYY-MM-DD.log` in this directory, keeping
    /// the last 14, instead of to standard error. A Windows service has no standard error:
    /// the MSI's configuration sets this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Largest manifest accepted, in bytes.
    pub manifest_bytes: u64,
    /// Largest blob accepted, in bytes.
    pub upload_bytes: u64,
    /// Upload sessions one account (or one anonymous address) may have open at once;
    /// more are refused with 429 TOOMANYREQUESTS.
    pub upload_sessions_per_account: usize,
    /// How long a connector feed's upstream may take to answer, in seconds, before the
    /// cached copy is served (or, with none, the pull fails with 503).
    #[serde(default = "default_upstream_timeout")]
    pub upstream_timeout_seconds: u64,
}

fn default_upstream_timeout() -> u64 {
    30
}

/// `listen` as written: an address, or a name and a port resolved to the first address the
/// name has (`localhost:5010`).
///
/// # Errors
/// A sentence naming the setting when it is neither.
pub fn resolve_listen(text: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = text.parse() {
        return Ok(addr);
    }
    if text
        .rsplit_once(':')
        .is_none_or(|(_, port)| port.parse::<u16>().is_err())
    {
        return Err(format!(
            "listen = {text:?} is not an address and port (127.0.0.1:5000, [::]:5000, localhost:5000)"
        ));
    }
    std::net::ToSocketAddrs::to_socket_addrs(text)
        .map_err(|e| format!("listen = {text:?}: the name cannot be resolved ({e})"))?
        .next()
        .ok_or_else(|| format!("listen = {text:?}: the name has no address"))
}

fn deserialize_listen<'de, D: serde::Deserializer<'de>>(d: D) -> Result<SocketAddr, D::Error> {
    let text = String::deserialize(d)?;
    resolve_listen(&text).map_err(serde::de::Error::custom)
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 5000)),
            data_dir: PathBuf::from("semdock-data"),
            feeds: vec!["library".to_owned()],
            log: LogConfig {
                format: LogFormat::Text,
                level: "info".to_owned(),
                access: false,
                dir: None,
            },
            limits: LimitsConfig {
                manifest_bytes: 4 << 20,
                upload_bytes: 64 << 30,
                upload_sessions_per_account: 1000,
                upstream_timeout_seconds: default_upstream_timeout(),
            },
            external_url: None,
            trusted_proxies: Vec::new(),
            mirror_feed: None,
            auth: AuthConfig {
                service: "semdock".to_owned(),
                token_ttl_seconds: 300,
            },
            storage: StorageConfig {
                metadata: MetadataEngine::Embedded,
                postgres: None,
                blobs: BlobEngine::Files,
                s3: None,
                gc_grace_seconds: 3600,
                upload_expiry_seconds: 86_400,
                empty_upload_expiry_seconds: 600,
                metadata_cache_mib: 32,
                gc_interval_seconds: 86_400,
                retention_interval_seconds: 86_400,
            },
            audit: AuditConfig::default(),
            webhooks: WebhooksConfig::default(),
            directory: DirectoryConfig::default(),
            outbound: OutboundConfig::default(),
            retention: BTreeMap::new(),
            tls: None,
        }
    }
}

impl Config {
    /// Loads the configuration. An explicit `file` must exist; without one,
    /// [`DEFAULT_CONFIG_PATH`] is read when present.
    pub fn load(file: Option<&Path>) -> Result<Self, Box<figment::Error>> {
        let mut figment = Figment::from(Serialized::defaults(Self::default()));
        match file {
            Some(path) if !path.is_file() => {
                return Err(Box::new(figment::Error::from(format!(
                    "config file {} does not exist",
                    path.display()
                ))));
            }
            Some(path) => figment = figment.merge(Toml::file_exact(path)),
            None if Path::new(DEFAULT_CONFIG_PATH).is_file() => {
                figment = figment.merge(Toml::file_exact(DEFAULT_CONFIG_PATH));
            }
            None => {}
        }
        figment
            .merge(Env::prefixed("SEMDOCK_").split("__").ignore(NOT_CONFIG))
            .extract()
            .map_err(Box::new)
    }

    /// The configuration file [`Config::load`] reads for `file`: `file` itself, else
    /// [`DEFAULT_CONFIG_PATH`] when it exists; `None` when only the defaults and the
    /// environment apply.
    #[must_use]
    pub fn file_read(file: Option<&Path>) -> Option<PathBuf> {
        match file {
            Some(path) => Some(path.to_owned()),
            None if Path::new(DEFAULT_CONFIG_PATH).is_file() => {
                Some(PathBuf::from(DEFAULT_CONFIG_PATH))
            }
            None => None,
        }
    }

    #[must_use]
    pub fn limits(&self) -> crate::domain::Limits {
        crate::domain::Limits {
            manifest_bytes: self.limits.manifest_bytes,
            upload_bytes: self.limits.upload_bytes,
            upload_sessions: self.limits.upload_sessions_per_account,
            metadata_cache_bytes: usize::try_from(self.storage.metadata_cache_mib)
                .unwrap_or(usize::MAX / 2)
                .saturating_mul(1 << 20),
            upstream_timeout_seconds: self.limits.upstream_timeout_seconds,
        }
    }

    /// The outbound policy of connectors and webhooks, for a server listening on `own`.
    pub fn outbound(
        &self,
        own: Vec<SocketAddr>,
    ) -> Result<crate::clients::outbound::Outbound, String> {
        crate::clients::outbound::Outbound::new(&self.outbound.allow, own)
    }

    #[must_use]
    pub fn token_settings(&self) -> crate::domain::auth::TokenSettings {
        crate::domain::auth::TokenSettings {
            service: self.auth.service.clone(),
            ttl_seconds: self.auth.token_ttl_seconds,
        }
    }

    /// Garbage collection as configured.
    #[must_use]
    pub fn gc_options(&self, dry_run: bool) -> crate::domain::maintenance::gc::GcOptions {
        crate::domain::maintenance::gc::GcOptions {
            grace: std::time::Duration::from_secs(self.storage.gc_grace_seconds),
            upload_expiry: std::time::Duration::from_secs(self.storage.upload_expiry_seconds),
            empty_upload_expiry: std::time::Duration::from_secs(
                self.storage.empty_upload_expiry_seconds,
            ),
            dry_run,
        }
    }

    /// The effective configuration as TOML, for `semdock config`.
    #[must_use]
    pub fn to_toml(&self) -> String {
        // Every field serializes to TOML (no maps with non-string keys), so this cannot fail.
        toml::to_string_pretty(self).unwrap_or_default()
    }
}

#[cfg(test)]
// figment's Jail closures must return figment's own (large) error type.
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;
    use figment::Jail;

    #[test]
    fn secrets_of_the_configuration_are_never_in_its_debug_nor_its_printout() {
        Jail::expect_with(|jail| {
            jail.create_file(
                "c.toml",
                "[directory.ldap]\nurl = \"ldap://x\"\nuser_base = \"dc=x\"\n[directory.oidc]\nissuer = \"https://id.example\"\nclient_id = \"semdock\"\n",
            )?;
            jail.set_env("SEMDOCK_DIRECTORY__LDAP__BIND_PASSWORD", "ldap-pw-1");
            jail.set_env("SEMDOCK_DIRECTORY__OIDC__CLIENT_SECRET", "oidc-secret-2");
            jail.set_env("SEMDOCK_STORAGE__POSTGRES__URL", "postgres://x/y");
            jail.set_env("SEMDOCK_STORAGE__POSTGRES__PASSWORD", "pg-pw-3");
            let c = Config::load(Some(Path::new("c.toml"))).map_err(|e| *e)?;
            let shown = format!("{c:?}\n{}", c.to_toml());
            for secret in ["ldap-pw-1", "oidc-secret-2", "pg-pw-3"] {
                assert!(!shown.contains(secret), "{secret} shown");
            }
            let ldap = c.directory.ldap.as_ref().unwrap();
            assert_eq!(
                ldap.bind_password
                    .as_ref()
                    .map(crate::model::Secret::expose),
                Some("ldap-pw-1")
            );
            Ok(())
        });
    }

    #[test]
    fn environment_overrides_file_which_overrides_defaults() {
        Jail::expect_with(|jail| {
            jail.create_file(
                "c.toml",
                "listen = \"127.0.0.1:6000\"\n[log]\nformat = \"json\"\n",
            )?;
            jail.set_env("SEMDOCK_DATA_DIR", "/tmp/reg");
            jail.set_env("SEMDOCK_LOG__LEVEL", "debug");
            let c = Config::load(Some(Path::new("c.toml"))).map_err(|e| *e)?;
            assert_eq!(c.listen.port(), 6000);
            assert_eq!(c.data_dir, PathBuf::from("/tmp/reg"));
            assert_eq!(c.log.format, LogFormat::Json);
            assert_eq!(c.log.level, "debug");
            assert_eq!(c.feeds, vec!["library"]);
            Ok(())
        });
    }

    /// The PostgreSQL password is taken from the environment or its file and never printed.
    #[test]
    fn the_postgres_password_comes_from_env_or_file_and_is_never_printed() {
        Jail::expect_with(|jail| {
            jail.create_file("pw", "s3cret-from-file\nignored\n")?;
            jail.create_file(
                "c.toml",
                "[storage]\nmetadata = \"postgres\"\n[storage.postgres]\nurl = \"host=db user=semdock\"\npassword_file = \"pw\"\n",
            )?;
            let c = Config::load(Some(Path::new("c.toml"))).map_err(|e| *e)?;
            assert_eq!(c.storage.metadata, MetadataEngine::Postgres);
            let pg = c.storage.postgres.clone().unwrap();
            assert_eq!(pg.password().unwrap().as_deref(), Some("s3cret-from-file"));
            jail.set_env("SEMDOCK_STORAGE__POSTGRES__PASSWORD", "s3cret-from-env");
            let c = Config::load(Some(Path::new("c.toml"))).map_err(|e| *e)?;
            let pg = c.storage.postgres.clone().unwrap();
            assert_eq!(pg.password().unwrap().as_deref(), Some("s3cret-from-env"));
            let printed = c.to_toml();
            assert!(!printed.contains("s3cret"), "{printed}");
            assert!(!format!("{c:?}").contains("s3cret"));
            assert!(printed.contains("metadata = \"postgres\""), "{printed}");
            Ok(())
        });
    }

    /// The S3 secret key is taken from the environment or its file and never printed; the
    /// defaults suit an S3-compatible store addressed by path.
    #[test]
    fn the_s3_secret_comes_from_env_or_file_and_is_never_printed() {
        Jail::expect_with(|jail| {
            jail.create_file("key", "Wd8-secret-from-file\n")?;
            jail.create_file(
                "c.toml",
                "[storage]\nblobs = \"s3\"\n[storage.s3]\nendpoint = \"http://127.0.0.1:3900\"\nbucket = \"reg\"\naccess_key_id = \"GK1\"\nsecret_access_key_file = \"key\"\n",
            )?;
            let c = Config::load(Some(Path::new("c.toml"))).map_err(|e| *e)?;
            assert_eq!(c.storage.blobs, BlobEngine::S3);
            let s3 = c.storage.s3.clone().unwrap();
            assert_eq!((s3.region.as_str(), s3.path_style), ("us-east-1", true));
            assert_eq!(s3.secret().unwrap(), "Wd8-secret-from-file");
            jail.set_env(
                "SEMDOCK_STORAGE__S3__SECRET_ACCESS_KEY",
                "Wd8-secret-from-env",
            );
            let c = Config::load(Some(Path::new("c.toml"))).map_err(|e| *e)?;
            assert_eq!(
                c.storage.s3.clone().unwrap().secret().unwrap(),
                "Wd8-secret-from-env"
            );
            let printed = c.to_toml();
            assert!(!printed.contains("Wd8-secret"), "{printed}");
            assert!(!format!("{c:?}").contains("Wd8-secret"));
            assert!(printed.contains("blobs = \"s3\""), "{printed}");
            jail.create_file("bad.toml", "[storage]\nblobs = \"s3\"\n[storage.s3]\nbucket = \"reg\"\naccess_key_id = \"GK1\"\n")?;
            jail.clear_env();
            let c = Config::load(Some(Path::new("bad.toml"))).map_err(|e| *e)?;
            let err = c.storage.s3.unwrap().secret().unwrap_err();
            assert!(err.contains("secret_access_key_file"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn unknown_keys_are_an_error() {
        Jail::expect_with(|jail| {
            jail.create_file("typo.toml", "lisen = \"127.0.0.1:6000\"\n")?;
            let err = Config::load(Some(Path::new("typo.toml"))).unwrap_err();
            assert!(err.to_string().contains("lisen"), "{err}");
            jail.create_file("empty.toml", "")?;
            jail.set_env("SEMDOCK_LOG__COLOUR", "red");
            let err = Config::load(Some(Path::new("empty.toml"))).unwrap_err();
            assert!(err.to_string().contains("colour"), "{err}");
            assert!(Config::load(Some(Path::new("missing.toml"))).is_err());
            Ok(())
        });
    }

    #[test]
    fn shipped_example_config_is_valid_and_shows_the_defaults() {
        let example: Config = toml::from_str(include_str!("../packaging/semdock.toml")).unwrap();
        assert_eq!(example, Config::default());
    }

    #[test]
    fn printed_config_reads_back_identically() {
        let c = Config::default();
        let back: Config = toml::from_str(&c.to_toml()).unwrap();
        assert_eq!(back, c);
    }
}
