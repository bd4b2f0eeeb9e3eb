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
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::clients::ClientError;
use crate::clients::outbound::Outbound;
use crate::clients::registry::{Upstream, UpstreamManifest};
use crate::domain::Error;
use crate::domain::audit::{self, Kind};
use crate::domain::tags::{self, Change};
use crate::domain::versioning::{glob_matches, is_virtual, version_of};
use crate::model::manifest::Manifest;
use crate::model::{Digest, Reference, Repository};
use crate::store::meta::{FeedRecord, ManifestRecord, UpstreamRecord};

use super::{Registry, StoredManifest, ensure_repository, feed_unknown, manifest_unknown};

mod flight;
mod settings;

pub use flight::{FlightGuard, FlightWait, MAX_FETCHES, MAX_WAITERS, after_flights};
pub use settings::{UpstreamChange, UpstreamInfo};

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

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn unavailable(feed: &str, e: &ClientError) -> Error {
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
            unsigned: None,
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
                // Read once its layers are cached (a pull fetches them).
                crate::domain::vulns::queue::enqueue(
                    w,
                    repo.as_str(),
                    &m.digest,
                    &parsed,
                    self.clock.now_ms(),
                )?;
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
            unsigned: None,
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
                    let _ = self.uploads().abandon(append);
                    return Err(Error::Unavailable(format!(
                        "the upstream's blob {digest} could not be read: {e}"
                    )));
                }
            };
            if let Err(e) = append.write(&buf[..n]) {
                let _ = self.uploads().abandon(append);
                return Err(e);
            }
        }
        let result = self.uploads().complete(append, digest).map_err(|e| match e {
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
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct UpstreamTest {
    pub ok: bool,
    /// What answered and how, or what is wrong.
    pub message: String,
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

/// Connector feeds (`registry.connector()`): routing pulls upstream, fetching, testing upstreams.
#[derive(Clone, Copy)]
pub struct Connector<'a> {
    pub(super) registry: &'a Registry,
}

impl Connector<'_> {
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
        let r = self.registry.meta.read()?;
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
        for (feed, record) in self.registry.meta.read()?.feeds()? {
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

    /// Where connectors' upstreams may be from now on (the clients made before are
    /// dropped).
    /// Where connectors (and replication) may connect.
    #[must_use]
    pub fn outbound(&self) -> Arc<Outbound> {
        lock(&self.registry.connectors.outbound).clone()
    }

    pub fn set_outbound(&self, outbound: Arc<Outbound>) {
        *lock(&self.registry.connectors.outbound) = outbound;
        lock(&self.registry.connectors.clients).clear();
    }

    /// Checks connector feed `feed`'s upstream and credentials now: whether it answers and
    /// how it authenticated the connector, as a sentence. Callers authorize (feed admin).
    pub fn test_upstream(&self, feed: &str) -> Result<UpstreamTest, Error> {
        let record = self.registry.feed_record(feed)?;
        let up = record
            .upstream
            .ok_or_else(|| Error::Invalid(format!("feed {feed:?} is not a connector feed")))?;
        let client = self.registry.upstream_client(feed, &up);
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
            .registry
            .meta
            .read()?
            .feed(repo.feed())?
            .ok_or_else(|| feed_unknown(repo))?;
        let up = feed.upstream.clone().ok_or_else(|| {
            Error::Invalid(format!("feed {:?} is not a connector feed", repo.feed()))
        })?;
        let client = self.registry.upstream_client(repo.feed(), &up);
        let name = format!("{}{}", up.prefix, repo.image());
        count(repo.feed(), "manifest");
        let m = client
            .manifest(&name, tag, false, self.registry.limits().manifest_bytes)
            .map_err(|e| unavailable(repo.feed(), &e))?
            .ok_or_else(|| Error::NotFound(format!("the upstream has no {name}:{tag}")))?;
        let stored = self.registry.cache_manifest(repo, &m, None)?;
        let change = Change {
            actor,
            clock: &self.registry.clock,
            method: "accept",
            comment: Some("accepted the upstream's digest"),
            source: None,
        };
        self.registry.meta.write(|w| {
            let feed = w.feed(repo.feed())?.ok_or_else(|| feed_unknown(repo))?;
            tags::set_from_upstream(w, repo, &feed, tag, &m.digest, &change)
        })?;
        Ok(stored.digest.to_string())
    }

    /// Starts fetching blob `digest` of `repo` from its connector's upstream: `None` when
    /// the feed is not a connector, or holds the blob now (another request fetched it while
    /// this one waited: read it locally). Hold the returned guard until the fetch ends.
    pub fn blob(&self, repo: &Repository, digest: &Digest) -> Result<Option<BlobFetch>, Error> {
        let feed = self
            .registry
            .meta
            .read()?
            .feed(repo.feed())?
            .ok_or_else(|| feed_unknown(repo))?;
        let Some(up) = feed.upstream else {
            return Ok(None);
        };
        let guard = self.registry.flight(&format!("b\n{digest}"))?;
        if self
            .registry
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
            let r = self.registry.meta.read()?;
            r.blob(digest.as_str())?.is_some() && {
                let linked = |other: &str| r.is_linked(other, digest.as_str()).unwrap_or(false);
                !r.repositories(&format!("{}/", repo.feed()), None, 1, &linked)?
                    .0
                    .is_empty()
            }
        };
        if held_in_feed && self.registry.blobs.stat(digest)?.is_some() {
            self.registry
                .meta
                .write(|w| super::link_into(w, repo, digest, self.registry.clock.now()))?;
            return Ok(None);
        }
        if up.offline {
            return Err(Error::BlobUnknown {
                digest: digest.to_string(),
            });
        }
        let name = format!("{}{}", up.prefix, repo.image());
        check_allowed(repo.feed(), &up, &name)?;
        let client = self.registry.upstream_client(repo.feed(), &up);
        count(repo.feed(), "blob");
        let blob = client
            .blob(&name, digest.as_str())
            .map_err(|e| unavailable(repo.feed(), &e))?
            .ok_or_else(|| Error::BlobUnknown {
                digest: digest.to_string(),
            })?;
        let id = self
            .registry
            .start_upload_as(repo, "upstream", digest.algorithm(), true)?;
        let append = self.registry.uploads().append(repo, &id, None)?;
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
        let result = self.registry.store_fetched(reader, append, digest);
        flight.settle(&result);
        result
    }
}
