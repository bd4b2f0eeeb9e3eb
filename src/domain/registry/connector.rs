//! Connector feeds: a pull-through cache of another registry.
//!
//! A manifest or blob the feed does not hold is fetched from the upstream (its own token
//! flow, the connector's credentials, never the client's), verified against its digest and
//! stored before it is served; later pulls are served locally. Manifests by digest and blobs
//! are kept for good (subject to retention). A mutable tag is checked upstream again (a HEAD)
//! once `ttl_seconds` have passed; an upstream that does not answer (429, 5xx, a timeout, no
//! connection) leaves the cached copy served, marked stale. In a versioned connector feed a
//! version tag is pinned to the digest first seen: an upstream that moves it later is
//! recorded as drift (tag history, the audit log and its webhooks, `/metrics`) and the
//! pinned digest is still served, until an administrator accepts the new one.

use std::collections::HashMap;
use std::io::Read as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::clients::outbound::Outbound;
use crate::clients::registry::{Upstream, UpstreamError, UpstreamManifest};
use crate::domain::Error;
use crate::domain::audit::{self, Kind};
use crate::domain::tags::{self, Change};
use crate::domain::versioning::{glob_matches, is_virtual, version_of};
use crate::model::manifest::Manifest;
use crate::model::{Digest, Reference, Repository};
use crate::store::meta::{FeedRecord, ManifestRecord, UpstreamRecord};

use super::{Registry, StoredManifest, ensure_repository, feed_unknown, manifest_unknown};

/// What a connector keeps in memory: one client per feed, when each tag was last checked,
/// and one fetch at a time per blob or manifest.
#[derive(Default)]
pub struct Connectors {
    clients: Mutex<HashMap<String, (UpstreamRecord, Arc<Upstream>)>>,
    checked: Mutex<HashMap<String, Instant>>,
    /// Keys being fetched now, each with the channel its waiters watch: it closes when the
    /// fetch ends (its guard drops the sender).
    busy: Mutex<HashMap<String, tokio::sync::watch::Sender<Option<String>>>>,
    /// Requests waiting for another's fetch now (bounded by `MAX_WAITERS`).
    waiters: AtomicUsize,
    /// Where the upstreams may be (see `clients::outbound`).
    outbound: Mutex<Arc<Outbound>>,
}

/// Fetches from upstreams one node runs at once: each holds a blocking thread while it
/// reads, so a flood of pulls of distinct cold blobs from a stalled upstream cannot take
/// every thread the node has; more are refused with 503 until one ends.
pub const MAX_FETCHES: usize = 64;

/// Requests one node lets wait for another's fetch (they hold no thread, but memory and a
/// connection each); more are refused with 503.
pub const MAX_WAITERS: usize = 4096;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Another request is fetching what this one needs: wait for it ([`FlightWait::landed`],
/// without holding a thread; [`FlightWait::block`] off the executor), then ask again.
pub struct FlightWait {
    connectors: Arc<Connectors>,
    /// Closed when the fetch ends; holds why, when it failed for want of the upstream.
    done: tokio::sync::watch::Receiver<Option<String>>,
}

impl FlightWait {
    /// Resolves when the fetch this waits for has ended: `Err` (503) when it found the
    /// upstream unavailable — the waiters fail with it rather than each trying again in
    /// turn, which would make the last of many wait many timeouts — else ask again.
    pub async fn landed(mut self) -> Result<(), Error> {
        // The sender is dropped at the end of the fetch: `changed` then fails.
        while self.done.changed().await.is_ok() {}
        match self.done.borrow().clone() {
            Some(why) => Err(Error::Unavailable(why)),
            None => Ok(()),
        }
    }

    /// Waits for the fetch on this thread (background jobs, never a request's executor).
    pub fn block(self) -> Result<(), Error> {
        futures_executor::block_on(self.landed())
    }
}

impl Drop for FlightWait {
    fn drop(&mut self) {
        self.connectors.waiters.fetch_sub(1, Ordering::Relaxed);
    }
}

impl std::fmt::Debug for FlightWait {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FlightWait")
    }
}

/// Runs `f` until it does not have to wait for another request's fetch, waiting on this
/// thread in between: for background jobs.
pub fn after_flights<T>(mut f: impl FnMut() -> Result<T, Error>) -> Result<T, Error> {
    loop {
        match f() {
            Err(Error::InFlight(wait)) => wait.block()?,
            other => return other,
        }
    }
}

/// A connector feed's upstream as the domain hands it out: the password never.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
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
            sync: r.sync.iter().map(super::format_rule).collect(),
            sync_interval_seconds: r.sync_interval_seconds,
        }
    }
}

/// A change of a feed's upstream: a `url` makes the feed a connector (an empty one makes it
/// a plain feed again); `None` fields keep what is stored.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
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
                .map(|t| super::parse_rule(t))
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

fn unavailable(feed: &str, e: &UpstreamError) -> Error {
    Error::Unavailable(format!(
        "connector feed {feed:?} could not fetch from its upstream and holds no cached copy: {e}"
    ))
}

fn count(feed: &str, kind: &str) {
    crate::metrics::get()
        .upstream_requests
        .get_or_create(&crate::metrics::UpstreamLabels {
            feed: feed.to_owned(),
            kind: kind.to_owned(),
        })
        .inc();
}

/// `host[:port]` of an upstream URL, and the names a client may give it (`docker.io` for
/// Docker Hub's registry host).
fn upstream_hosts(url: &str) -> Vec<String> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let host = rest.split('/').next().unwrap_or(rest).to_ascii_lowercase();
    let mut hosts = vec![host.clone()];
    if matches!(
        host.as_str(),
        "registry-1.docker.io" | "index.docker.io" | "registry.hub.docker.com"
    ) {
        hosts.push("docker.io".to_owned());
    }
    hosts
}

/// Fetches manifest `reference` of upstream repository `name` whole (unless the connector is
/// offline: then it is unknown).
fn fetch_manifest(
    repo: &Repository,
    reference: &Reference,
    up: &UpstreamRecord,
    client: &Upstream,
    name: &str,
    limit: u64,
) -> Result<UpstreamManifest, Error> {
    if up.offline {
        return Err(manifest_unknown(repo, reference));
    }
    count(repo.feed(), "manifest");
    client
        .manifest(name, &reference.to_string(), false, limit)
        .map_err(|e| unavailable(repo.feed(), &e))?
        .ok_or_else(|| manifest_unknown(repo, reference))
}

/// Refuses `name` (as the upstream names it) when the connector's globs leave it out.
fn check_allowed(feed: &str, up: &UpstreamRecord, name: &str) -> Result<(), Error> {
    let allowed = up.allow.is_empty() || up.allow.iter().any(|g| glob_matches(g, name));
    if allowed && !up.deny.iter().any(|g| glob_matches(g, name)) {
        return Ok(());
    }
    Err(Error::PolicyRefused(format!(
        "connector feed {feed:?} does not mirror {name}: its upstream repositories are limited (allow {:?}, deny {:?})",
        up.allow, up.deny
    )))
}

/// `name` (a repository as the upstream names it) in connector feed `feed` with `prefix`.
fn in_connector(feed: &str, prefix: &str, name: &str) -> Option<Repository> {
    let image = name.strip_prefix(prefix).unwrap_or(name);
    format!("{feed}/{image}").parse().ok()
}

impl Registry {
    /// Where a pull of `name` goes when it names no repository of its own: containerd's
    /// `?ns=HOST` picks the connector feed whose upstream is HOST; else the `mirror` feed
    /// (what answers docker's `registry-mirrors`, whose requests name no feed) takes names
    /// that no feed holds. `None`: `name` as it is.
    pub fn route_pull(
        &self,
        name: &str,
        ns: Option<&str>,
        mirror: Option<&str>,
    ) -> Result<Option<Repository>, Error> {
        if ns.is_none() && mirror.is_none() {
            return Ok(None);
        }
        let r = self.meta.read()?;
        if let Some(ns) = ns {
            let ns = ns.to_ascii_lowercase();
            for (feed, record) in r.feeds()? {
                if let Some(up) = &record.upstream
                    && upstream_hosts(&up.url).contains(&ns)
                {
                    return Ok(in_connector(&feed, &up.prefix, name));
                }
            }
        }
        let Some(mirror) = mirror else {
            return Ok(None);
        };
        // Only a name whose first segment is no feed goes to the mirror: a repository that
        // does not exist in an existing feed (a typo, or a new repository being pushed) is
        // answered by that feed, and never looked up upstream.
        let first = name.split('/').next().unwrap_or_default();
        if r.feed(first)?.is_some() {
            return Ok(None);
        }
        let Some(up) = r.feed(mirror)?.and_then(|f| f.upstream) else {
            return Ok(None);
        };
        Ok(in_connector(mirror, &up.prefix, name))
    }

    /// The repositories a pull of `name` may be routed to (`route_pull`), for the scopes of a
    /// token: one per connector feed, and the mirror's.
    pub fn pull_aliases(&self, name: &str, mirror: Option<&str>) -> Result<Vec<Repository>, Error> {
        let mut out = Vec::new();
        for (feed, record) in self.meta.read()?.feeds()? {
            if let Some(up) = &record.upstream
                && !name.starts_with(&format!("{feed}/"))
                && let Some(repo) = in_connector(&feed, &up.prefix, name)
            {
                out.push(repo);
            }
        }
        if let Some(routed) = self.route_pull(name, None, mirror)?
            && !out.contains(&routed)
        {
            out.push(routed);
        }
        Ok(out)
    }

    pub(super) fn upstream_client(&self, feed: &str, r: &UpstreamRecord) -> Arc<Upstream> {
        let mut clients = lock(&self.connectors.clients);
        if let Some((rec, client)) = clients.get(feed)
            && rec == r
        {
            return client.clone();
        }
        let credentials = r
            .username
            .clone()
            .map(|u| (u, r.password.clone().unwrap_or_default()));
        let outbound = lock(&self.connectors.outbound).clone();
        let client = Arc::new(Upstream::new(
            &r.url,
            credentials,
            Duration::from_secs(self.limits().upstream_timeout_seconds),
            &outbound,
        ));
        clients.insert(feed.to_owned(), (r.clone(), client.clone()));
        client
    }

    /// Where connectors' upstreams may be from now on (the clients made before are
    /// dropped).
    pub fn set_outbound(&self, outbound: Arc<Outbound>) {
        *lock(&self.connectors.outbound) = outbound;
        lock(&self.connectors.clients).clear();
    }

    /// One fetch at a time of `key` on this node: the guard while this request fetches it,
    /// or `Error::InFlight` to wait for the request that does (then ask again).
    fn flight(&self, key: &str) -> Result<FlightGuard, Error> {
        let c = &self.connectors;
        let mut busy = lock(&c.busy);
        if let Some(fetching) = busy.get(key) {
            if c.waiters.fetch_add(1, Ordering::Relaxed) >= MAX_WAITERS {
                c.waiters.fetch_sub(1, Ordering::Relaxed);
                return Err(Error::Unavailable(format!(
                    "{MAX_WAITERS} pulls are already waiting for fetches from connector upstreams on this node: try again shortly"
                )));
            }
            return Err(Error::InFlight(FlightWait {
                connectors: c.clone(),
                done: fetching.subscribe(),
            }));
        }
        if busy.len() >= MAX_FETCHES {
            return Err(Error::Unavailable(format!(
                "this node is fetching {MAX_FETCHES} manifests and blobs from connector upstreams already: try again shortly"
            )));
        }
        busy.insert(key.to_owned(), tokio::sync::watch::channel(None).0);
        Ok(FlightGuard {
            connectors: c.clone(),
            key: key.to_owned(),
        })
    }

    /// The manifest `reference` of `repo` in connector feed `feed`: cached, or fetched.
    pub(super) fn connector_manifest(
        &self,
        repo: &Repository,
        reference: &Reference,
        feed: &FeedRecord,
        up: &UpstreamRecord,
    ) -> Result<StoredManifest, Error> {
        let name = format!("{}{}", up.prefix, repo.image());
        check_allowed(repo.feed(), up, &name)?;
        let client = self.upstream_client(repo.feed(), up);
        let one = self.flight(&format!("m\n{repo}\n{reference}"))?;
        let result = self.connector_manifest_once(repo, reference, feed, up, &client, &name);
        one.settle(&result);
        result
    }

    fn connector_manifest_once(
        &self,
        repo: &Repository,
        reference: &Reference,
        feed: &FeedRecord,
        up: &UpstreamRecord,
        client: &Upstream,
        name: &str,
    ) -> Result<StoredManifest, Error> {
        let local = self.local_manifest(repo, reference)?;
        let limit = self.limits().manifest_bytes;
        match reference {
            Reference::Digest(d) => {
                if let Some(m) = local {
                    return Ok(m);
                }
                let m = fetch_manifest(repo, reference, up, client, name, limit)?;
                if m.digest != d.as_str() {
                    return Err(Error::DigestMismatch {
                        declared: d.to_string(),
                        computed: m.digest,
                    });
                }
                self.cache_manifest(repo, &m, None)
            }
            Reference::Tag(tag) => {
                let key = format!("{repo}:{tag}");
                let fresh = lock(&self.connectors.checked)
                    .get(&key)
                    .is_some_and(|at| at.elapsed() < Duration::from_secs(up.ttl_seconds));
                let pinned = feed.versioning && version_of(tag.as_str()).is_some();
                let follows_versions = feed.versioning
                    && is_virtual(tag.as_str())
                    && !(tag.as_str() == "latest" && up.upstream_latest);
                if follows_versions {
                    // Kept on the highest version seen, never on what the upstream says;
                    // before any version is seen, the upstream's answer (cached by
                    // digest, the tag left to the versions).
                    if let Some(m) = local {
                        return Ok(m);
                    }
                    let m = fetch_manifest(repo, reference, up, client, name, limit)?;
                    return self.cache_manifest(repo, &m, None);
                }
                if let Some(m) = &local
                    && (fresh || up.offline)
                {
                    return Ok(m.clone());
                }
                if up.offline {
                    return Err(manifest_unknown(repo, reference));
                }
                count(repo.feed(), "check");
                let found = match client.manifest(name, tag.as_str(), local.is_some(), limit) {
                    Ok(found) => found,
                    Err(e) => {
                        return match local {
                            Some(mut m) => {
                                tracing::warn!(repository = %repo, tag = %tag, error = %e, "upstream unavailable: serving the cached copy");
                                m.stale = true;
                                Ok(m)
                            }
                            None => Err(unavailable(repo.feed(), &e)),
                        };
                    }
                };
                lock(&self.connectors.checked).insert(key, Instant::now());
                let Some(found) = found else {
                    // Gone upstream: what was cached stays served.
                    return local.ok_or_else(|| manifest_unknown(repo, reference));
                };
                match local {
                    Some(m) if m.digest.as_str() == found.digest => Ok(m),
                    Some(m) if pinned => {
                        self.record_drift(repo, tag.as_str(), m.digest.as_str(), &found.digest)?;
                        Ok(m)
                    }
                    _ => {
                        let full = if found.body.is_empty() {
                            count(repo.feed(), "manifest");
                            client
                                .manifest(name, &found.digest, false, limit)
                                .map_err(|e| unavailable(repo.feed(), &e))?
                                .ok_or_else(|| manifest_unknown(repo, reference))?
                        } else {
                            found
                        };
                        self.cache_manifest(repo, &full, Some(tag.as_str()))
                    }
                }
            }
        }
    }

    /// The manifest `reference` points at in `repo` now, if it is held.
    fn local_manifest(
        &self,
        repo: &Repository,
        reference: &Reference,
    ) -> Result<Option<StoredManifest>, Error> {
        let r = self.meta.read()?;
        let digest = match reference {
            Reference::Digest(d) => Some(d.to_string()),
            Reference::Tag(t) => r.tag(repo.as_str(), t.as_str())?,
        };
        let Some(digest) = digest else {
            return Ok(None);
        };
        Ok(r.manifest(repo.as_str(), &digest)?.map(|m| StoredManifest {
            digest: digest.parse().unwrap_or_else(|_| Digest::of(&m.body)),
            media_type: m.media_type,
            body: m.body.into(),
            subject: m.subject,
            stale: false,
        }))
    }

    /// Stores a manifest fetched from upstream (its blobs and children come when pulled)
    /// and points `tag` at it, bypassing the feed's tag policy: an upstream's tags are what
    /// they are. One transaction.
    fn cache_manifest(
        &self,
        repo: &Repository,
        m: &UpstreamManifest,
        tag: Option<&str>,
    ) -> Result<StoredManifest, Error> {
        let parsed = Manifest::parse(&m.body, Some(&m.media_type))?;
        let record = ManifestRecord {
            media_type: parsed.media_type.clone(),
            artifact_type: parsed.artifact_type.clone(),
            subject: parsed.subject.as_ref().map(ToString::to_string),
            blobs: parsed.blobs.iter().map(ToString::to_string).collect(),
            children: parsed.children.iter().map(ToString::to_string).collect(),
            annotations: parsed.annotations.clone(),
            created: self.clock.now(),
            body: m.body.clone(),
        };
        let change = Change {
            actor: "upstream",
            clock: &self.clock,
            method: "upstream",
            comment: None,
            source: None,
        };
        self.meta.write(|w| {
            let feed = w.feed(repo.feed())?.ok_or_else(|| feed_unknown(repo))?;
            ensure_repository(w, repo.as_str(), self.clock.now())?;
            if !w.has_manifest(repo.as_str(), &m.digest)? {
                w.put_manifest(repo.as_str(), &m.digest, &record)?;
                if let Some(subject) = &record.subject {
                    w.add_referrer(repo.as_str(), subject, &m.digest, self.clock.now())?;
                }
            }
            if let Some(tag) = tag {
                tags::set_from_upstream(w, repo, &feed, tag, &m.digest, &change)?;
            }
            Ok::<_, Error>(())
        })?;
        Ok(StoredManifest {
            digest: m.digest.parse()?,
            media_type: record.media_type,
            body: m.body.clone().into(),
            subject: record.subject,
            stale: false,
        })
    }

    /// Records that the upstream moved pinned version `tag` from `pinned` to `moved`, once
    /// per new digest: in the tag's history (method `drift`), the audit log (a webhook
    /// event) and `/metrics`. The tag keeps `pinned`.
    fn record_drift(
        &self,
        repo: &Repository,
        tag: &str,
        pinned: &str,
        moved: &str,
    ) -> Result<(), Error> {
        let recorded = self.meta.write(|w| {
            let last = w.last_history(repo.as_str(), tag)?;
            if last.is_some_and(|h| h.method == "drift" && h.new.as_deref() == Some(moved)) {
                return Ok::<_, Error>(false);
            }
            w.append_history(
                repo.as_str(),
                tag,
                &crate::store::meta::HistoryRecord {
                    time_ms: self.clock.now_ms(),
                    old: Some(pinned.to_owned()),
                    new: Some(moved.to_owned()),
                    actor: "upstream".into(),
                    method: "drift".into(),
                    comment: Some(format!(
                        "the upstream moved {tag}; the digest first seen is still served (accept the new one to follow it)"
                    )),
                },
            )?;
            let mut entry = audit::entry(
                Kind::UpstreamDrift,
                "upstream",
                repo.feed(),
                format!("upstream moved {repo}:{tag} to {moved}; {pinned} is kept"),
            );
            entry.repository = Some(repo.to_string());
            entry.tag = Some(tag.to_owned());
            entry.digest = Some(moved.to_owned());
            entry.previous = Some(pinned.to_owned());
            audit::append(w, &self.clock, entry)?;
            Ok(true)
        })?;
        if recorded {
            tracing::warn!(repository = %repo, tag, pinned, moved, "upstream moved a pinned version");
            crate::metrics::get()
                .upstream_drift
                .get_or_create(&crate::metrics::Metrics::feed(repo.feed()))
                .inc();
        }
        Ok(())
    }

    /// Checks connector feed `feed`'s upstream and credentials now: whether it answers and
    /// how it authenticated the connector, as a sentence. Callers authorize (feed admin).
    pub fn test_upstream(&self, feed: &str) -> Result<UpstreamTest, Error> {
        let record = self.feed_record(feed)?;
        let up = record
            .upstream
            .ok_or_else(|| Error::Invalid(format!("feed {feed:?} is not a connector feed")))?;
        let client = self.upstream_client(feed, &up);
        Ok(match client.ping() {
            Ok(how) => UpstreamTest {
                ok: true,
                message: format!("{} answers; the connector is admitted with {how}", up.url),
            },
            Err(e) => UpstreamTest {
                ok: false,
                message: format!("{}: {e}", up.url),
            },
        })
    }

    /// Points pinned version `tag` of connector repository `repo` at what its upstream
    /// serves now (after drift): fetched, stored, and the tag moved (method `accept`).
    /// Callers authorize (feed admin).
    pub fn accept_upstream(
        &self,
        repo: &Repository,
        tag: &str,
        actor: &str,
    ) -> Result<String, Error> {
        let feed = self
            .meta
            .read()?
            .feed(repo.feed())?
            .ok_or_else(|| feed_unknown(repo))?;
        let up = feed.upstream.clone().ok_or_else(|| {
            Error::Invalid(format!("feed {:?} is not a connector feed", repo.feed()))
        })?;
        let client = self.upstream_client(repo.feed(), &up);
        let name = format!("{}{}", up.prefix, repo.image());
        count(repo.feed(), "manifest");
        let m = client
            .manifest(&name, tag, false, self.limits().manifest_bytes)
            .map_err(|e| unavailable(repo.feed(), &e))?
            .ok_or_else(|| Error::NotFound(format!("the upstream has no {name}:{tag}")))?;
        let stored = self.cache_manifest(repo, &m, None)?;
        let change = Change {
            actor,
            clock: &self.clock,
            method: "accept",
            comment: Some("accepted the upstream's digest"),
            source: None,
        };
        self.meta.write(|w| {
            let feed = w.feed(repo.feed())?.ok_or_else(|| feed_unknown(repo))?;
            tags::set_from_upstream(w, repo, &feed, tag, &m.digest, &change)
        })?;
        Ok(stored.digest.to_string())
    }

    /// Starts fetching blob `digest` of `repo` from its connector's upstream: `None` when
    /// the feed is not a connector, or holds the blob now (another request fetched it while
    /// this one waited: read it locally). Hold the returned guard until the fetch ends.
    pub fn connector_blob(
        &self,
        repo: &Repository,
        digest: &Digest,
    ) -> Result<Option<BlobFetch>, Error> {
        let feed = self
            .meta
            .read()?
            .feed(repo.feed())?
            .ok_or_else(|| feed_unknown(repo))?;
        let Some(up) = feed.upstream else {
            return Ok(None);
        };
        let guard = self.flight(&format!("b\n{digest}"))?;
        if self
            .meta
            .read()?
            .is_linked(repo.as_str(), digest.as_str())?
        {
            return Ok(None);
        }
        // Another repository of the feed may have it: a link, not a fetch. Only of this
        // feed: a blob of another feed is fetched from the upstream like any other (the
        // store keeps one copy), so that a pull of a connector feed never reads another
        // feed's blob by naming its digest.
        let held_in_feed = {
            let r = self.meta.read()?;
            r.blob(digest.as_str())?.is_some() && {
                let linked = |other: &str| r.is_linked(other, digest.as_str()).unwrap_or(false);
                !r.repositories(&format!("{}/", repo.feed()), None, 1, &linked)?
                    .0
                    .is_empty()
            }
        };
        if held_in_feed && self.blobs.stat(digest)?.is_some() {
            self.meta
                .write(|w| super::link_into(w, repo, digest, self.clock.now()))?;
            return Ok(None);
        }
        if up.offline {
            return Err(Error::BlobUnknown {
                digest: digest.to_string(),
            });
        }
        let name = format!("{}{}", up.prefix, repo.image());
        check_allowed(repo.feed(), &up, &name)?;
        let client = self.upstream_client(repo.feed(), &up);
        count(repo.feed(), "blob");
        let blob = client
            .blob(&name, digest.as_str())
            .map_err(|e| unavailable(repo.feed(), &e))?
            .ok_or_else(|| Error::BlobUnknown {
                digest: digest.to_string(),
            })?;
        let id = self.start_upload_as(repo, "upstream", digest.algorithm(), true)?;
        let append = self.append(repo, &id, None)?;
        Ok(Some(BlobFetch {
            len: blob.len,
            reader: blob.reader,
            append,
            flight: guard,
        }))
    }

    /// Reads a fetch to its end into the blob store, and publishes the blob only when its
    /// bytes hash to `digest`. A failed read, write or check stores nothing. No byte of it
    /// reaches a client before that check: the client reads the stored blob afterwards.
    pub fn fetch_blob(&self, fetch: BlobFetch, digest: &Digest) -> Result<(), Error> {
        let BlobFetch {
            reader,
            append,
            flight,
            ..
        } = fetch;
        let result = self.store_fetched(reader, append, digest);
        flight.settle(&result);
        result
    }

    fn store_fetched(
        &self,
        mut reader: Box<dyn std::io::Read + Send>,
        mut append: super::Append,
        digest: &Digest,
    ) -> Result<(), Error> {
        let mut buf = vec![0; 1 << 20];
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) => {
                    let _ = self.abandon_upload(append);
                    return Err(Error::Unavailable(format!(
                        "the upstream's blob {digest} could not be read: {e}"
                    )));
                }
            };
            if let Err(e) = append.write(&buf[..n]) {
                let _ = self.abandon_upload(append);
                return Err(e);
            }
        }
        let result = self.complete_upload(append, digest).map_err(|e| match e {
            // The client asked for a digest and the upstream answered other bytes: the
            // upstream's fault, not the client's.
            Error::DigestMismatch { computed, .. } => Error::Unavailable(format!(
                "the upstream's answer for blob {digest} hashes to {computed}: it was neither stored nor served"
            )),
            e => e,
        });
        if let Err(e) = &result {
            tracing::warn!(%digest, error = %e, "a blob from upstream was not stored");
        }
        result
    }
}

/// What a check of a connector's upstream found.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct UpstreamTest {
    pub ok: bool,
    /// What answered and how, or what is wrong.
    pub message: String,
}

/// Holds a fetch's key: other requests for it wait until this is dropped.
pub struct FlightGuard {
    connectors: Arc<Connectors>,
    key: String,
}

impl FlightGuard {
    /// Tells the requests waiting for this fetch that the upstream is unavailable (`e`), so
    /// that they fail with it instead of trying again; other outcomes make them ask again.
    fn settle<T>(&self, result: &Result<T, Error>) {
        if let Err(e @ Error::Unavailable(_)) = result
            && let Some(tx) = lock(&self.connectors.busy).get(&self.key)
        {
            tx.send_replace(Some(e.to_string()));
        }
    }
}

impl Drop for FlightGuard {
    fn drop(&mut self) {
        // Dropping the sender wakes every waiter.
        lock(&self.connectors.busy).remove(&self.key);
    }
}

/// A blob being fetched from an upstream (`Registry::fetch_blob_through` reads it).
pub struct BlobFetch {
    /// The length the upstream announced.
    pub len: Option<u64>,
    reader: Box<dyn std::io::Read + Send>,
    append: super::Append,
    /// Held until the fetch ends: other requests for the blob wait, then read it locally.
    flight: FlightGuard,
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
