//! The trusted root (`trusted_root.json`, Sigstore's protobuf-JSON `TrustedRoot`): the
//! certificate authorities (Fulcio), transparency logs (Rekor), CT logs and timestamp
//! authorities a bundle is verified against, each with the window in which it is trusted.
//! Parsing only; what is trusted when is decided by the verifier.

use base64::Engine as _;
use serde::Deserialize;

use super::crypto;
use crate::domain::trust::PublicKey;

/// A closed interval of unix seconds; no end means still trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start: i64,
    pub end: Option<i64>,
}

impl Window {
    #[must_use]
    pub fn contains(&self, t: i64) -> bool {
        self.start <= t && self.end.is_none_or(|end| t <= end)
    }
}

/// A log (Rekor or CT) and the key it signs with.
#[derive(Debug, Clone)]
pub struct Log {
    pub base_url: String,
    pub key_id: Vec<u8>,
    pub key: PublicKey,
    pub valid: Window,
}

impl Log {
    /// The host of the log's base URL: the name its checkpoints are signed under.
    #[must_use]
    pub fn host(&self) -> &str {
        let u = self.base_url.as_str();
        let u = u.split_once("://").map_or(u, |(_, rest)| rest);
        u.trim_end_matches('/')
    }
}

/// A certificate authority or timestamp authority: its chain, leaf-most first, root last.
#[derive(Debug, Clone)]
pub struct Authority {
    pub chain: Vec<Vec<u8>>,
    pub valid: Window,
}

/// The parsed `trusted_root.json`.
#[derive(Debug, Clone)]
pub struct TrustedRoot {
    pub(crate) tlogs: Vec<Log>,
    pub(crate) ctlogs: Vec<Log>,
    pub(crate) cas: Vec<Authority>,
    pub(crate) tsas: Vec<Authority>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RootJson {
    media_type: String,
    #[serde(default)]
    tlogs: Vec<LogJson>,
    #[serde(default)]
    ctlogs: Vec<LogJson>,
    #[serde(default)]
    certificate_authorities: Vec<AuthorityJson>,
    #[serde(default)]
    timestamp_authorities: Vec<AuthorityJson>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LogJson {
    #[serde(default)]
    base_url: String,
    public_key: KeyJson,
    log_id: KeyIdJson,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct KeyJson {
    raw_bytes: String,
    valid_for: Option<WindowJson>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct KeyIdJson {
    key_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AuthorityJson {
    cert_chain: ChainJson,
    valid_for: Option<WindowJson>,
}

#[derive(Deserialize)]
struct ChainJson {
    certificates: Vec<RawJson>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RawJson {
    pub raw_bytes: String,
}

#[derive(Deserialize)]
struct WindowJson {
    start: Option<String>,
    end: Option<String>,
}

/// Decodes standard base64, ignoring line breaks and spaces as Go's and Python's decoders
/// (which wrote many bundles) do.
pub(crate) fn b64(s: &str, what: &str) -> Result<Vec<u8>, String> {
    let compact: String = s.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(compact)
        .map_err(|_| format!("{what} is not valid base64"))
}

fn instant(s: &str, what: &str) -> Result<i64, String> {
    s.parse::<jiff::Timestamp>()
        .map(jiff::Timestamp::as_second)
        .map_err(|e| format!("{what} {s:?} is not an RFC 3339 time: {e}"))
}

fn window(w: Option<&WindowJson>, what: &str) -> Result<Window, String> {
    let w = w.ok_or_else(|| format!("{what} has no validFor window"))?;
    let start = w
        .start
        .as_deref()
        .ok_or_else(|| format!("{what} has a validFor window without its required start"))?;
    Ok(Window {
        start: instant(start, what)?,
        end: w.end.as_deref().map(|e| instant(e, what)).transpose()?,
    })
}

fn log(l: &LogJson, what: &str) -> Result<Log, String> {
    let what = format!("{what} {}", l.base_url);
    let key = crypto::key_from_spki(&b64(&l.public_key.raw_bytes, &what)?)
        .map_err(|e| format!("{what}: {e}"))?;
    Ok(Log {
        base_url: l.base_url.clone(),
        key_id: b64(&l.log_id.key_id, &what)?,
        key,
        valid: window(
            l.public_key.valid_for.as_ref(),
            &format!("the key of {what}"),
        )?,
    })
}

fn authority(a: &AuthorityJson, what: &str) -> Result<Authority, String> {
    let chain = a
        .cert_chain
        .certificates
        .iter()
        .map(|c| b64(&c.raw_bytes, what))
        .collect::<Result<Vec<_>, _>>()?;
    if chain.is_empty() {
        return Err(format!("a {what} in the trusted root has no certificates"));
    }
    Ok(Authority {
        chain,
        valid: window(a.valid_for.as_ref(), &format!("a {what}"))?,
    })
}

impl TrustedRoot {
    /// Parses a `trusted_root.json`; a sentence naming what is wrong when it is not one.
    pub fn from_json(bytes: &[u8]) -> Result<Self, String> {
        let json: RootJson = serde_json::from_slice(bytes)
            .map_err(|e| format!("the trusted root is not a Sigstore TrustedRoot: {e}"))?;
        if !json
            .media_type
            .starts_with("application/vnd.dev.sigstore.trustedroot")
        {
            return Err(format!(
                "the trusted root has media type {:?}, not a Sigstore trusted root",
                json.media_type
            ));
        }
        Ok(Self {
            tlogs: json
                .tlogs
                .iter()
                .map(|l| log(l, "transparency log"))
                .collect::<Result<_, _>>()?,
            ctlogs: json
                .ctlogs
                .iter()
                .map(|l| log(l, "CT log"))
                .collect::<Result<_, _>>()?,
            cas: json
                .certificate_authorities
                .iter()
                .map(|a| authority(a, "certificate authority"))
                .collect::<Result<_, _>>()?,
            tsas: json
                .timestamp_authorities
                .iter()
                .map(|a| authority(a, "timestamp authority"))
                .collect::<Result<_, _>>()?,
        })
    }
}
