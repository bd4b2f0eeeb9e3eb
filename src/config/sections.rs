//! The smaller sections: audit, outbound, webhooks, auth, TLS, log and limits.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

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

/// Where OSV files are fetched from on a schedule (`semdock vulndb import` takes files).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VulndbConfig {
    /// OSV files fetched on a schedule from a mirror the site keeps (osv.dev's exports'
    /// addresses, or an internal copy): each is imported under its last path segment.
    pub urls: Vec<String>,
    /// How often they are fetched, in hours (0: only at start).
    pub interval_hours: u64,
}

impl Default for VulndbConfig {
    fn default() -> Self {
        Self {
            urls: Vec::new(),
            interval_hours: 24,
        }
    }
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

pub(super) fn default_upstream_timeout() -> u64 {
    30
}
