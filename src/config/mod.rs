//! Configuration: built-in defaults < TOML file < `SEMDOCK_*` environment variables.
//!
//! Nested keys use `__` in the environment: `SEMDOCK_LOG__FORMAT=json`. Unknown keys are an
//! error at startup, so a typo never silently falls back to a default.
//!
//! Each section of the file is a type: `directory` (LDAP, `OpenID Connect`), `storage` (the
//! metadata and blob engines), `sections` (the others); this module reads and checks them.

mod directory;
mod sections;
mod storage;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

pub use directory::{DirectoryConfig, LdapConfig, OidcConfig};
use sections::default_upstream_timeout;
pub use sections::{
    AuditConfig, AuthConfig, LimitsConfig, LogConfig, LogFormat, OutboundConfig, TlsConfig,
    VulndbConfig, WebhooksConfig,
};
pub use storage::{BlobEngine, MetadataEngine, PostgresConfig, S3Config, StorageConfig};

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
    pub vulndb: VulndbConfig,
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
                scrub_interval_seconds: 604_800,
                scrub_max_mib_per_second: 64,
            },
            audit: AuditConfig::default(),
            webhooks: WebhooksConfig::default(),
            vulndb: VulndbConfig::default(),
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
        let example: Config = toml::from_str(include_str!("../../packaging/semdock.toml")).unwrap();
        assert_eq!(example, Config::default());
    }

    #[test]
    fn printed_config_reads_back_identically() {
        let c = Config::default();
        let back: Config = toml::from_str(&c.to_toml()).unwrap();
        assert_eq!(back, c);
    }
}
