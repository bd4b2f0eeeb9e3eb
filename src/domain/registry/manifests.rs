//! Manifests: storing one with its tags and references, reading (through the cache),
//! deleting, purging, and referrers.

use std::collections::BTreeMap;

use crate::domain::Error;
use crate::domain::audit::{self, Kind};
use crate::domain::tags::{self, Change};
use crate::domain::trust::{AtPull, PullGate};
use crate::domain::versioning::is_virtual;
use crate::model::manifest::Manifest;
use crate::model::{Digest, Reference, Repository, Tag};
use crate::store::meta::{FeedRecord, ManifestRecord, MetaWrite};

use super::{MANIFEST_CACHE_MAX_BODY, Registry, ensure_repository, feed_unknown, manifest_unknown};

pub(super) fn manifest_cache_key(repo: &Repository, reference: &Reference) -> String {
    format!("{repo}\n{reference}")
}

/// A stored manifest as clients fetch it.
#[derive(Debug, Clone)]
pub struct StoredManifest {
    pub digest: Digest,
    pub media_type: String,
    /// Shared, so a cached manifest is handed out without copying it.
    pub body: bytes::Bytes,
    pub subject: Option<String>,
    /// A connector's cached copy, served because its upstream did not answer.
    pub stale: bool,
    /// The feed's pull gate found no passing signature: what it does, and why.
    pub unsigned: Option<(PullGate, String)>,
}

/// The outcome of storing a manifest.
#[derive(Debug, Clone)]
pub struct ManifestPut {
    pub digest: Digest,
    pub subject: Option<Digest>,
    /// The tags now pointing at it.
    pub tags: Vec<String>,
    /// The feed's vulnerability policy warns of what the image holds.
    pub warning: Option<String>,
}

/// A manifest that refers to a subject, as the referrers API lists it.
#[derive(Debug, Clone)]
pub struct Referrer {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    pub artifact_type: Option<String>,
    pub annotations: BTreeMap<String, String>,
}

/// Removes a manifest with the tags pointing at it and its referrer entry, as a user's delete
/// by digest does; says whether it existed.
pub(in crate::domain) fn remove_manifest(
    w: &mut dyn MetaWrite,
    repo: &Repository,
    feed: &FeedRecord,
    digest: &str,
    change: &Change<'_>,
) -> Result<bool, Error> {
    let name = repo.as_str();
    let Some(record) = w.manifest(name, digest)? else {
        return Ok(false);
    };
    w.remove_manifest(name, digest)?;
    w.remove_pull(name, digest)?;
    let kind = if change.method == "retention" {
        Kind::RetentionDeleted
    } else {
        Kind::Deleted
    };
    let mut entry = audit::entry(
        kind,
        change.actor,
        repo.feed(),
        format!("{name}@{digest} deleted"),
    );
    entry.repository = Some(name.to_owned());
    entry.digest = Some(digest.to_owned());
    audit::append(w, change.clock, entry)?;
    let (virtual_tags, others): (Vec<String>, Vec<String>) = w
        .tags_pointing_at(name, digest)?
        .into_iter()
        .partition(|tag| feed.versioning && is_virtual(tag));
    for tag in others {
        tags::remove(w, repo, feed, &tag, change)?;
    }
    // Virtual tags follow the versions: removing those settled the tags they moved; the
    // ones still at this digest are settled here.
    if feed.versioning {
        tags::settle_virtual(w, name, virtual_tags, change)?;
    }
    if let Some(subject) = record.subject {
        w.remove_referrer(name, &subject, digest)?;
    }
    Ok(true)
}

/// A connector feed holds what its upstream has: nothing is pushed to it.
pub(super) fn refuse_push_to_connector(feed: &FeedRecord, repo: &Repository) -> Result<(), Error> {
    match &feed.upstream {
        Some(up) => Err(Error::PolicyRefused(format!(
            "feed {:?} is a cache of {} (a connector feed): it is filled by pulls, not pushes; push to another feed",
            repo.feed(),
            up.url
        ))),
        None => Ok(()),
    }
}

/// A promotion-only feed refuses tags pushed to it, saying how to promote instead.
fn refuse_direct_push(feed: &FeedRecord, repo: &Repository, tag: &Tag) -> Result<(), Error> {
    let Some(from) = feed.promotion_sources.first() else {
        return Ok(());
    };
    Err(Error::PolicyRefused(format!(
        "feed {:?} accepts images only by promotion from {}: push {from}/{}:{tag} and promote it with `semdock promote {from}/{}:{tag} {repo}:{tag}` (or POST /api/v1/promotions)",
        repo.feed(),
        feed.promotion_sources.join(", "),
        repo.image(),
        repo.image(),
    )))
}

impl Registry {
    /// Records a push or promotion the feed's policy refused (in a transaction of its own:
    /// the refused one rolled back). Other failures are not refusals and are not recorded.
    pub(super) fn audit_refusal(
        &self,
        repo: &Repository,
        tag: Option<&str>,
        digest: &str,
        actor: &str,
        e: &Error,
    ) {
        if !matches!(
            e,
            Error::TagNotAllowed { .. }
                | Error::VersionImmutable { .. }
                | Error::PolicyRefused(_)
                | Error::SignatureRefused(_)
        ) {
            return;
        }
        let kind = if matches!(e, Error::SignatureRefused(_)) {
            Kind::PolicyRefused
        } else {
            Kind::PushRefused
        };
        let mut entry = audit::entry(kind, actor, repo.feed(), e.to_string());
        entry.repository = Some(repo.to_string());
        entry.tag = tag.map(str::to_owned);
        entry.digest = Some(digest.to_owned());
        if let Err(failed) = self.feeds().audit_alone(entry) {
            tracing::warn!(error = %failed, "a refusal could not be recorded in the audit log");
        }
    }

    // ---- manifests ----

    /// Stores a manifest under `reference` (a tag, or the digest it must hash to).
    pub fn put_manifest(
        &self,
        repo: &Repository,
        reference: &Reference,
        extra_tags: &[Tag],
        content_type: Option<&str>,
        body: &[u8],
        actor: &str,
    ) -> Result<ManifestPut, Error> {
        let limit = self.limits.manifest_bytes;
        if body.len() as u64 > limit {
            return Err(Error::ManifestTooLarge { limit });
        }
        let manifest = Manifest::parse(body, content_type)?;
        // By the algorithm of the digest it is pushed by (sha512 too); by tag, sha256.
        let digest = match reference {
            Reference::Digest(declared) => Digest::of_with(declared.algorithm(), body),
            Reference::Tag(_) => Digest::of(body),
        };
        if let Reference::Digest(declared) = reference
            && *declared != digest
        {
            return Err(Error::DigestMismatch {
                declared: declared.to_string(),
                computed: digest.to_string(),
            });
        }
        let record = ManifestRecord {
            media_type: manifest.media_type.clone(),
            artifact_type: manifest.artifact_type.clone(),
            subject: manifest.subject.as_ref().map(ToString::to_string),
            blobs: manifest.blobs.iter().map(ToString::to_string).collect(),
            children: manifest.children.iter().map(ToString::to_string).collect(),
            annotations: manifest.annotations.clone(),
            created: self.clock.now(),
            body: body.to_vec(),
        };
        let name = repo.as_str();
        let mut tags: Vec<&Tag> = extra_tags.iter().collect();
        if let Reference::Tag(tag) = reference {
            tags.insert(0, tag);
        }
        let change = Change {
            actor,
            clock: &self.clock,
            method: "push",
            comment: None,
            source: None,
        };
        self.gc_touch(record.blobs.iter().map(String::as_str));
        let entering = crate::domain::trust::Pushed {
            tag: tags.first().map(|t| t.as_str()),
            digest: digest.as_str(),
            signs: crate::domain::trust::cosign::signed_by(&tags, &manifest),
            version: tags
                .iter()
                .any(|t| crate::domain::versioning::version_of(t.as_str()).is_some()),
        };
        let warning = self.push_gate(repo, &digest, &manifest, &tags, actor)?;
        let result = self.meta.write(|w| {
            let feed = w.feed(repo.feed())?.ok_or_else(|| feed_unknown(repo))?;
            if let Some(tag) = tags.first() {
                refuse_direct_push(&feed, repo, tag)?;
            }
            refuse_push_to_connector(&feed, repo)?;
            link_contents(w, name, &manifest, self.clock.now())?;
            ensure_repository(w, name, self.clock.now())?;
            w.put_manifest(name, digest.as_str(), &record)?;
            crate::domain::search::index_manifest(w, name, digest.as_str(), &record.annotations)?;
            if let Some(subject) = &manifest.subject {
                w.add_referrer(name, subject.as_str(), digest.as_str(), self.clock.now())?;
            }
            self.trust.on_push(w, repo, &entering, actor)?;
            crate::domain::vulns::queue::enqueue(
                w,
                name,
                digest.as_str(),
                &manifest,
                self.clock.now_ms(),
            )?;
            for tag in &tags {
                tags::set(w, repo, &feed, tag.as_str(), digest.as_str(), &change)?;
            }
            Ok(())
        });
        if let Err(e) = &result {
            self.audit_refusal(
                repo,
                tags.first().map(|t| t.as_str()),
                digest.as_str(),
                actor,
                e,
            );
        }
        result?;
        crate::metrics::get()
            .pushes
            .get_or_create(&crate::metrics::Metrics::feed(repo.feed()))
            .inc();
        Ok(ManifestPut {
            digest,
            subject: manifest.subject,
            tags: tags.iter().map(ToString::to_string).collect(),
            warning,
        })
    }

    /// The vulnerability push gate for a push of `manifest` under `tags`, a refusal audited.
    fn push_gate(
        &self,
        repo: &Repository,
        digest: &Digest,
        manifest: &Manifest,
        tags: &[&Tag],
        actor: &str,
    ) -> Result<Option<String>, Error> {
        self.vulnerability_push_gate(repo, digest.as_str(), manifest, !tags.is_empty())
            .inspect_err(|e| {
                let tag = tags.first().map(|t| t.as_str());
                self.audit_refusal(repo, tag, digest.as_str(), actor, e);
            })
    }

    /// The manifest `reference` points at in `repo`.
    pub fn manifest(
        &self,
        repo: &Repository,
        reference: &Reference,
    ) -> Result<StoredManifest, Error> {
        let generation = self.meta.generation();
        let r = self.meta.read()?;
        let feed = r.feed(repo.feed())?.ok_or_else(|| feed_unknown(repo))?;
        if let Some(up) = &feed.upstream {
            // Not kept in the manifest cache: a connector's tags are checked upstream.
            drop(r);
            return self.connector_manifest(repo, reference, &feed, up);
        }
        let digest = match reference {
            Reference::Digest(d) => d.clone(),
            Reference::Tag(tag) => r
                .tag(repo.as_str(), tag.as_str())?
                .ok_or_else(|| manifest_unknown(repo, reference))?
                .parse()?,
        };
        let record = r
            .manifest(repo.as_str(), digest.as_str())?
            .ok_or_else(|| manifest_unknown(repo, reference))?;
        let mut gate = self.trust.at_pull(&*r, repo, digest.as_str(), &record)?;
        if matches!(gate, AtPull::Open)
            && let Some((pull_gate, why)) = crate::domain::vulns::gate::at_pull(
                &*r,
                repo.as_str(),
                repo.feed(),
                digest.as_str(),
                self.clock.now_ms(),
            )?
        {
            gate = AtPull::Refused(pull_gate, why);
        }
        drop(r);
        // A verdict reached now is recorded; the manifest is cached on the next read, which
        // finds it (the write moved the generation this read started at).
        let (unsigned, cacheable) = match gate {
            AtPull::Open => (None, true),
            AtPull::Refused(gate, why) => (Some((gate, why)), true),
            AtPull::Verified(found) => {
                if let Err(e) = self.trust.record(&found) {
                    tracing::warn!(repository = %repo, error = %e, "a verdict reached at a pull could not be recorded");
                }
                (None, false)
            }
        };
        let stored = StoredManifest {
            digest,
            media_type: record.media_type,
            body: record.body.into(),
            subject: record.subject,
            stale: false,
            unsigned,
        };
        if cacheable && stored.body.len() <= MANIFEST_CACHE_MAX_BODY {
            let weight = stored.body.len() + stored.media_type.len() + 128;
            let key = manifest_cache_key(repo, reference);
            self.manifest_cache
                .put(key, generation, stored.clone(), weight);
        }
        Ok(stored)
    }

    /// Whether `cached_manifest` answers from memory alone (see
    /// `Metadata::generation_is_local`): then the executor may call it.
    #[must_use]
    pub fn caches_locally(&self) -> bool {
        self.meta.generation_is_local()
    }

    /// The manifest `manifest` would return, if an earlier read of it is still current;
    /// `None` means "read it". Touches no database when `caches_locally`, so it may then
    /// run on an async executor.
    #[must_use]
    pub fn cached_manifest(
        &self,
        repo: &Repository,
        reference: &Reference,
    ) -> Option<StoredManifest> {
        self.manifest_cache
            .get(&manifest_cache_key(repo, reference), self.meta.generation())
    }

    /// Deletes a tag, or a manifest by digest together with the tags pointing at it.
    pub fn delete_manifest(
        &self,
        repo: &Repository,
        reference: &Reference,
        actor: &str,
    ) -> Result<(), Error> {
        let change = Change {
            actor,
            clock: &self.clock,
            method: "delete",
            comment: None,
            source: None,
        };
        self.meta.write(|w| {
            let feed = w.feed(repo.feed())?.ok_or_else(|| feed_unknown(repo))?;
            match reference {
                Reference::Tag(tag) => tags::remove(w, repo, &feed, tag.as_str(), &change)?,
                Reference::Digest(digest) => {
                    if !remove_manifest(w, repo, &feed, digest.as_str(), &change)? {
                        return Err(manifest_unknown(repo, reference));
                    }
                }
            }
            Ok(())
        })
    }

    /// Frees a version number: removes the tag and its tombstone. Callers check that the
    /// actor is an administrator.
    /// Frees a deleted version's number: removes its tombstone. A tag that is still live is
    /// purged only when `confirm` names it exactly — it is then deleted and purged in one
    /// transaction, both in the history — since purging a live version lets its number be
    /// reused for other content, the one thing versioning promises never happens by accident.
    pub fn purge(
        &self,
        repo: &Repository,
        tag: &Tag,
        actor: &str,
        confirm: Option<&str>,
    ) -> Result<(), Error> {
        let change = |method| Change {
            actor,
            clock: &self.clock,
            method,
            comment: None,
            source: None,
        };
        self.meta.write(|w| {
            let feed = w.feed(repo.feed())?.ok_or_else(|| feed_unknown(repo))?;
            if w.tag(repo.as_str(), tag.as_str())?.is_some() {
                if confirm != Some(tag.as_str()) {
                    return Err(Error::Conflict(format!(
                        "{repo}:{tag} is live: delete it first (a deleted version keeps its number as a tombstone, which purge then frees), or confirm purging the live tag by naming it: {{\"confirm\": \"{tag}\"}}"
                    )));
                }
                tags::remove(w, repo, &feed, tag.as_str(), &change("delete"))?;
            }
            tags::purge(w, repo, &feed, tag.as_str(), &change("purge"))
        })
    }

    /// Manifests in `repo` whose subject is `subject`, optionally of one artifact type.
    pub fn referrers(
        &self,
        repo: &Repository,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<Vec<Referrer>, Error> {
        let r = self.meta.read()?;
        if r.feed(repo.feed())?.is_none() {
            return Err(feed_unknown(repo));
        }
        let mut out = Vec::new();
        for digest in r.referrers(repo.as_str(), subject.as_str())? {
            let Some(m) = r.manifest(repo.as_str(), &digest)? else {
                continue;
            };
            if artifact_type.is_some_and(|t| m.artifact_type.as_deref() != Some(t)) {
                continue;
            }
            out.push(Referrer {
                media_type: m.media_type,
                size: m.body.len() as u64,
                digest,
                artifact_type: m.artifact_type,
                annotations: m.annotations,
            });
        }
        Ok(out)
    }
}

/// Checks that every blob and child `manifest` names is in `repo`, and renews the blobs'
/// links (unless from this very second, as when a blob was just uploaded), so that a
/// collection that marked a blob as garbage before this push, on any node, sees it used
/// again (`gc`).
fn link_contents(
    w: &mut dyn MetaWrite,
    repo: &str,
    manifest: &Manifest,
    pushed: u64,
) -> Result<(), Error> {
    for blob in &manifest.blobs {
        match w.linked_at(repo, blob.as_str())? {
            None => {
                return Err(Error::ManifestBlobUnknown {
                    digest: blob.to_string(),
                });
            }
            Some(at) if at < pushed => w.link(repo, blob.as_str(), pushed)?,
            Some(_) => {}
        }
    }
    for child in &manifest.children {
        if !w.has_manifest(repo, child.as_str())? {
            return Err(Error::ManifestBlobUnknown {
                digest: child.to_string(),
            });
        }
    }
    Ok(())
}
