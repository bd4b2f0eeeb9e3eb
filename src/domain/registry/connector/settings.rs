//! A connector feed's upstream settings: as stored (`UpstreamRecord`), as shown (never the
//! password), and as changed — credentials bound to the origin they were given for.

use crate::domain::Error;
use crate::store::meta::UpstreamRecord;

/// A connector feed's upstream as the domain hands it out: the password never.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct UpstreamInfo {
    pub url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Whether a password is stored (it is never shown).
    pub has_password: bool,
    /// Prefixed to every repository name upstream (`library/`).
    pub prefix: String,
    /// Mutable tags are checked upstream again after this many seconds.
    pub ttl_seconds: u64,
    /// Only what is cached is served; the upstream is never asked.
    pub offline: bool,
    /// Repository names (as the upstream names them, `*` globs) fetched; empty: all.
    pub allow: Vec<String>,
    /// Repository names never fetched, even when allowed.
    pub deny: Vec<String>,
    /// In a versioned feed, `latest` follows the upstream's own `latest` rather than the
    /// highest version seen.
    pub upstream_latest: bool,
    /// Fetched ahead of pulls: `REPOSITORY`, `REPOSITORY:GLOB`, `REPOSITORY@SEMVER-REQ`.
    pub sync: Vec<String>,
    /// Seconds between scheduled syncs; 0: on demand only.
    pub sync_interval_seconds: u64,
}

impl From<&UpstreamRecord> for UpstreamInfo {
    fn from(r: &UpstreamRecord) -> Self {
        Self {
            url: r.url.clone(),
            username: r.username.clone(),
            has_password: r.password.is_some(),
            prefix: r.prefix.clone(),
            ttl_seconds: r.ttl_seconds,
            offline: r.offline,
            allow: r.allow.clone(),
            deny: r.deny.clone(),
            upstream_latest: r.upstream_latest,
            sync: r
                .sync
                .iter()
                .map(crate::domain::registry::format_rule)
                .collect(),
            sync_interval_seconds: r.sync_interval_seconds,
        }
    }
}

/// A change of a feed's upstream: a `url` makes the feed a connector (an empty one makes it
/// a plain feed again); `None` fields keep what is stored.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamChange {
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Stored, never shown back; `""` removes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_seconds: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offline: Option<bool>,
    /// Repository globs fetched (empty list: all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow: Option<Vec<String>>,
    /// Repository globs never fetched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deny: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_latest: Option<bool>,
    /// Sync rules (replacing the stored ones; an empty list: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_interval_seconds: Option<u64>,
}

/// Default seconds before a mutable tag is checked upstream again.
pub const DEFAULT_TTL: u64 = 300;

impl UpstreamChange {
    /// The record after this change of `current`; `None` when it removes the upstream.
    pub fn apply(&self, current: Option<&UpstreamRecord>) -> Result<Option<UpstreamRecord>, Error> {
        let url = self.url.trim();
        if url.is_empty() {
            return Ok(None);
        }
        if !(url.starts_with("http://") || url.starts_with("https://")) || url.contains(' ') {
            return Err(Error::Invalid(format!(
                "upstream {:?} is not a registry URL: give https://HOST[:PORT] (or http:// on a trusted network)",
                redact_userinfo(url)
            )));
        }
        let (origin, userinfo) = origin(url)?;
        if userinfo {
            return Err(Error::Invalid(format!(
                "upstream URL {:?} holds credentials: give the user name and password in their own fields (--upstream-user, --upstream-password), where they are stored and never shown",
                redact_userinfo(url)
            )));
        }
        let mut r = current.cloned().unwrap_or(UpstreamRecord {
            ttl_seconds: DEFAULT_TTL,
            ..UpstreamRecord::default()
        });
        // Credentials belong to the origin they were given for: another scheme, host or
        // port drops them, unless this same change gives them again.
        if current.is_some_and(|c| origin_of(&c.url).as_ref() != Some(&origin)) {
            r.username = None;
            r.password = None;
        }
        url.trim_end_matches('/').clone_into(&mut r.url);
        if let Some(u) = &self.username {
            r.username = Some(u.clone()).filter(|u| !u.is_empty());
        }
        if let Some(p) = &self.password {
            r.password = Some(p.clone()).filter(|p| !p.is_empty()).map(Into::into);
        }
        if let Some(prefix) = &self.prefix {
            let prefix = prefix.trim_matches('/');
            r.prefix = if prefix.is_empty() {
                String::new()
            } else {
                format!("{prefix}/")
            };
        }
        if let Some(t) = self.ttl_seconds {
            r.ttl_seconds = t;
        }
        if let Some(o) = self.offline {
            r.offline = o;
        }
        if let Some(a) = &self.allow {
            r.allow.clone_from(a);
        }
        if let Some(d) = &self.deny {
            r.deny.clone_from(d);
        }
        if let Some(l) = self.upstream_latest {
            r.upstream_latest = l;
        }
        if let Some(rules) = &self.sync {
            r.sync = rules
                .iter()
                .filter(|t| !t.trim().is_empty())
                .map(|t| crate::domain::registry::parse_rule(t))
                .collect::<Result<_, _>>()?;
        }
        if let Some(s) = self.sync_interval_seconds {
            r.sync_interval_seconds = s;
        }
        Ok(Some(r))
    }
}

/// (scheme, host, port) of an upstream URL; whether it has a user part (`user:pw@`).
fn origin(url: &str) -> Result<((String, String, u16), bool), Error> {
    let invalid = || {
        Error::Invalid(format!(
            "upstream {:?} is not a registry URL: give https://HOST[:PORT] (or http:// on a trusted network)",
            redact_userinfo(url)
        ))
    };
    let (scheme, rest) = url.split_once("://").ok_or_else(invalid)?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" => 80,
        "https" => 443,
        _ => return Err(invalid()),
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let (userinfo, host_port) = match authority.rsplit_once('@') {
        Some((_, hp)) => (true, hp),
        None => (false, authority),
    };
    // `[v6]:port`, `[v6]`, `host:port`, `host`.
    let split = if host_port.starts_with('[') {
        host_port
            .split_once("]:")
            .map(|(h, p)| (&host_port[..=h.len()], p))
    } else {
        host_port.rsplit_once(':')
    };
    let (host, port) = match split {
        Some((h, p)) => (h, p.parse::<u16>().map_err(|_| invalid())?),
        None => (host_port, default_port),
    };
    if host.is_empty() {
        return Err(invalid());
    }
    Ok(((scheme, host.to_ascii_lowercase(), port), userinfo))
}

fn origin_of(url: &str) -> Option<(String, String, u16)> {
    origin(url).ok().map(|(o, _)| o)
}

/// `url` with any user part replaced by `***`, for messages.
fn redact_userinfo(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
            match rest[..end].rsplit_once('@') {
                Some((_, host)) => format!("{scheme}://***@{host}{}", &rest[end..]),
                None => url.to_owned(),
            }
        }
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(url: &str) -> UpstreamRecord {
        UpstreamRecord {
            url: url.into(),
            username: Some("vendor".into()),
            password: Some("vendor-secret".into()),
            ..UpstreamRecord::default()
        }
    }

    fn change(url: &str) -> UpstreamChange {
        UpstreamChange {
            url: url.into(),
            ..UpstreamChange::default()
        }
    }

    #[test]
    fn credentials_stay_with_the_origin_they_were_given_for() {
        let current = stored("https://registry.vendor.example");
        // Same origin (a path, a default port written out, a case change): kept.
        for same in [
            "https://registry.vendor.example/",
            "https://REGISTRY.vendor.example:443",
        ] {
            let r = change(same).apply(Some(&current)).unwrap().unwrap();
            assert_eq!(
                r.password.as_ref().map(crate::model::Secret::expose),
                Some("vendor-secret"),
                "{same}"
            );
        }
        // Another scheme, host or port: dropped.
        for other in [
            "http://registry.vendor.example",
            "https://attacker.example",
            "https://registry.vendor.example:8443",
            "https://registry.vendor.example.attacker.example",
        ] {
            let r = change(other).apply(Some(&current)).unwrap().unwrap();
            assert_eq!((r.username, r.password), (None, None), "{other}");
        }
        // Given again with the new URL: kept as given.
        let mut moved = change("https://mirror.vendor.example");
        moved.username = Some("vendor".into());
        moved.password = Some("new-secret".into());
        let r = moved.apply(Some(&current)).unwrap().unwrap();
        assert_eq!(
            r.password.as_ref().map(crate::model::Secret::expose),
            Some("new-secret")
        );
        let mut user_only = change("https://mirror.vendor.example");
        user_only.username = Some("vendor".into());
        let r = user_only.apply(Some(&current)).unwrap().unwrap();
        assert_eq!(r.password, None);
    }

    #[test]
    fn a_password_in_the_url_is_refused_and_never_repeated() {
        for url in [
            "https://ci:hunter2@registry.vendor.example",
            "http://ci:hunter2@[::1]:5000/v2",
            "ftp://ci:hunter2@host",
        ] {
            let e = change(url).apply(None).unwrap_err().to_string();
            assert!(!e.contains("hunter2"), "{e}");
        }
        assert!(change("http://[::1]:5000").apply(None).is_ok());
        assert!(change("http://[::1]").apply(None).is_ok());
        assert!(change("http://host:notaport").apply(None).is_err());
    }
}
