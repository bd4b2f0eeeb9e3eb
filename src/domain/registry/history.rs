//! Tags, promotion and history: tag lists and groups, the history of every tag, and
//! promotions between feeds.

use crate::domain::Error;
use crate::domain::tags::{self, Change};
use crate::domain::trust::{self, Gate};
use crate::domain::versioning::{self, TagKind};
use crate::model::{Reference, Repository, Tag};
use crate::store::meta::{HistoryRecord, MetaWrite};

use super::{Registry, ensure_repository, feed_unknown, manifest_unknown, page_size};

/// One tag in a grouped listing.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TagEntry {
    pub tag: String,
    pub digest: String,
    /// For a virtual tag: the version it points to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// A repository's tags by kind; versions by SemVer precedence, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct TagGroups {
    pub versions: Vec<TagEntry>,
    #[serde(rename = "virtual")]
    pub virtual_tags: Vec<TagEntry>,
    pub permitted: Vec<TagEntry>,
    /// Tags a versioned feed would refuse today, from before versioning was switched on.
    pub legacy: Vec<TagEntry>,
    /// Non-version tags of a feed without versioning.
    pub other: Vec<TagEntry>,
    /// Deleted versions whose numbers stay taken until purged.
    pub tombstones: Vec<TagEntry>,
    /// Where each list continues, for those with more: pass as `last` with its `list`.
    #[serde(skip_serializing_if = "TagCursors::is_empty")]
    pub next: TagCursors,
}

/// The three ordered lists a repository's tags page through: versions by SemVer precedence,
/// highest first; every other tag by name (shown grouped by kind); tombstones by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TagList {
    Versions,
    Tags,
    Tombstones,
}

/// Which page of a repository's tags to read: the first `n` of every list, or with `list`
/// the `n` of that list after `last`.
#[derive(Debug, Clone, Default)]
pub struct TagQuery {
    pub list: Option<TagList>,
    pub last: Option<String>,
    pub n: Option<usize>,
    /// Only tags containing this text (case-insensitive): a search reads the lists until
    /// its page is full.
    pub contains: Option<String>,
}

/// The tag a list continues after, per list that has more.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct TagCursors {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub versions: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tombstones: Option<String>,
}

impl TagCursors {
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.versions.is_none() && self.tags.is_none() && self.tombstones.is_none()
    }
}

/// Which page of a repository's history to read.
#[derive(Debug, Clone, Default)]
pub struct HistoryQuery {
    pub tag: Option<String>,
    /// Only changes made this way (`push`, `virtual`, `promote`, …).
    pub method: Option<String>,
    /// Continue after this sequence number.
    pub last: Option<u64>,
    pub newest_first: bool,
    pub n: Option<usize>,
}

/// Tags and history entries per page unless asked otherwise, and at most.
pub const DEFAULT_LIST_PAGE: usize = 100;
pub const MAX_LIST_PAGE: usize = 1000;

#[must_use]
pub fn list_page_size(n: Option<usize>) -> usize {
    n.unwrap_or(DEFAULT_LIST_PAGE).clamp(1, MAX_LIST_PAGE)
}

/// What a tag pointed to at a moment.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TagState {
    pub digest: String,
    /// The version a virtual tag followed then; `None` for any other tag.
    pub version: Option<String>,
}

/// One change of a tag.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct HistoryEntry {
    /// The change's sequence number: what `last` continues after.
    pub seq: u64,
    pub tag: String,
    /// RFC 3339.
    pub time: String,
    pub old: Option<String>,
    pub new: Option<String>,
    pub actor: String,
    pub method: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

fn history_entry(seq: u64, tag: String, r: HistoryRecord) -> HistoryEntry {
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_millis(r.time_ms);
    HistoryEntry {
        seq,
        tag,
        time: humantime::format_rfc3339_millis(time).to_string(),
        old: r.old,
        new: r.new,
        actor: r.actor,
        method: r.method,
        comment: r.comment,
    }
}

/// What to promote where: `from`/`from_ref` to `to:to_tag`, by whom and why.
#[derive(Debug, Clone, Copy)]
pub struct Promotion<'a> {
    pub from: &'a Repository,
    pub from_ref: &'a Reference,
    pub to: &'a Repository,
    pub to_tag: &'a Tag,
    /// The digest the source must point at: refused with a conflict when it does not (so
    /// that a tag moved since it was tested is never promoted).
    pub expected: Option<&'a crate::model::Digest>,
    /// Copy the image's referrers (signatures, SBOMs) too.
    pub include_referrers: bool,
    pub actor: &'a str,
    pub comment: Option<&'a str>,
}

/// The outcome of a promotion or retag.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Promoted {
    pub digest: String,
    /// Manifests copied into the target repository (the image, index children, referrers).
    pub manifests: usize,
    /// Whether the target tag moved (false: it already pointed there).
    pub changed: bool,
}

/// One page of a sorted listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub items: Vec<String>,
    /// Whether items follow the last one returned.
    pub more: bool,
}

/// Under a signature policy for promotions into `to`'s feed: checks that the write sees the
/// digest the gate verified, and answers cosign's signature and attestation tags of the
/// image in `from` (name and digest) where there are some, so that they come along.
/// `(false, [])` when no policy applies.
fn gated_signatures(
    w: &dyn crate::store::meta::MetaRead,
    from: &Repository,
    from_ref: &Reference,
    to: &Repository,
    digest: &str,
    verified: Option<&str>,
) -> Result<(bool, Vec<(String, String)>), Error> {
    if !trust::applies(w, to.feed(), Gate::Promotion)? {
        return Ok((false, Vec::new()));
    }
    if verified != Some(digest) {
        return Err(Error::Conflict(format!(
            "{from}:{from_ref} moved while its signatures were checked (it points at {digest} now): promote again"
        )));
    }
    let Some(sig) = trust::cosign::signature_tag(digest) else {
        return Ok((true, Vec::new()));
    };
    // cosign's signature and attestation tags, where the source has them.
    let att = sig.replace(".sig", ".att");
    let mut found = Vec::new();
    for tag in [sig, att] {
        if let Some(d) = w.tag(from.as_str(), &tag)? {
            found.push((tag, d));
        }
    }
    Ok((true, found))
}

/// The rules of a promotion-only feed: sources from the permitted feeds only, and a
/// referrer of the required artifact type on the image when one is required; and the
/// feed's vulnerability policy.
fn check_promotion_rules(
    w: &dyn crate::store::meta::MetaRead,
    feed: &crate::store::meta::FeedRecord,
    from: &Repository,
    to: &Repository,
    digest: &str,
    now_ms: u64,
) -> Result<(), Error> {
    crate::domain::vulns::gate::check_promotion(w, to.feed(), from.as_str(), digest, now_ms)?;
    if !feed.promotion_sources.is_empty()
        && from.feed() != to.feed()
        && !feed.promotion_sources.iter().any(|s| s == from.feed())
    {
        return Err(Error::PolicyRefused(format!(
            "feed {:?} accepts promotions only from {}, not from {:?}",
            to.feed(),
            feed.promotion_sources.join(", "),
            from.feed()
        )));
    }
    if let Some(kind) = &feed.required_referrer {
        let mut found = false;
        for referrer in w.referrers(from.as_str(), digest)? {
            let artifact = w
                .manifest(from.as_str(), &referrer)?
                .and_then(|m| m.artifact_type);
            if artifact.as_deref() == Some(kind.as_str()) {
                found = true;
                break;
            }
        }
        if !found {
            return Err(Error::PolicyRefused(format!(
                "feed {:?} accepts only images with a referrer of artifact type {kind} (a signature or attestation), and {from}@{digest} has none: attach one (cosign sign, oras attach) and promote again",
                to.feed()
            )));
        }
    }
    Ok(())
}

impl Registry {
    // ---- listings ----
}

/// Repositories, tags and their history (`registry.history()`): listings, time travel, promotions.
#[derive(Clone, Copy)]
pub struct History<'a> {
    pub(super) registry: &'a Registry,
}

impl Registry {
    fn promote(&self, p: &Promotion<'_>) -> Result<Promoted, Error> {
        let Promotion {
            from,
            from_ref,
            to,
            to_tag,
            expected,
            include_referrers,
            actor,
            comment,
        } = *p;
        let method = if from == to || from.feed() == to.feed() {
            "retag"
        } else {
            "promote"
        };
        let source = match from_ref {
            Reference::Tag(t) => format!("{from}:{t}"),
            Reference::Digest(d) => format!("{from}@{d}"),
        };
        let change = Change {
            actor,
            clock: &self.clock,
            method,
            comment,
            source: Some(&source),
        };
        let verified = self.promotion_gate(from, from_ref, to);
        let gate_ran = matches!(verified, Ok(Some(_)));
        let result = verified.and_then(|verified| self.meta.write(|w| {
            w.feed(from.feed())?.ok_or_else(|| feed_unknown(from))?;
            let feed = w.feed(to.feed())?.ok_or_else(|| feed_unknown(to))?;
            let digest = match from_ref {
                Reference::Digest(d) => d.to_string(),
                Reference::Tag(t) => w
                    .tag(from.as_str(), t.as_str())?
                    .ok_or_else(|| manifest_unknown(from, from_ref))?,
            };
            if let Some(expected) = expected
                && expected.as_str() != digest
            {
                return Err(Error::Conflict(format!(
                    "{from}:{from_ref} points at {digest}, not at the expected {expected}: it was moved since; promote {from}@{expected} to promote what was tested, or check `semdock history {from} --tag {from_ref}`"
                )));
            }
            check_promotion_rules(w, &feed, from, to, &digest, self.clock.now_ms())?;
            let verified_digest = verified.as_ref().map(|v| v.digest.as_str());
            let (gated, signature_tags) =
                gated_signatures(&*w, from, from_ref, to, &digest, verified_digest)?;
            let mut pending = vec![digest.clone()];
            pending.extend(signature_tags.iter().map(|(_, d)| d.clone()));
            let copied = self.copy_manifests(w, from, to, pending, include_referrers || gated)?;
            ensure_repository(w, to.as_str(), self.clock.now())?;
            if let Some(v) = &verified {
                carry_verdict(w, v, to)?;
            }
            for (tag, sig) in &signature_tags {
                // Where the target's tag rules take cosign's tag; else the referrer form serves.
                match tags::set(w, to, &feed, tag, sig, &change) {
                    Err(Error::TagNotAllowed { .. } | Error::VersionImmutable { .. }) | Ok(_) => {}
                    Err(e) => return Err(e),
                }
            }
            let changed = tags::set(w, to, &feed, to_tag.as_str(), &digest, &change)?;
            if changed {
                w.append_promotion(&crate::store::meta::PromotionRecord {
                    time_ms: self.clock.now_ms(),
                    actor: actor.to_owned(),
                    from_repository: from.to_string(),
                    from_reference: from_ref.to_string(),
                    to_repository: to.to_string(),
                    to_tag: to_tag.to_string(),
                    digest: digest.clone(),
                    comment: comment.map(str::to_owned),
                })?;
            }
            tracing::info!(actor, from = %from, to = %to, tag = %to_tag, digest, method, "promoted");
            crate::metrics::get().promotion(to.feed());
            Ok(Promoted {
                digest,
                manifests: copied.len(),
                changed,
            })
        }));
        if let Err(e) = &result {
            let from_digest = match (from_ref, expected) {
                (Reference::Digest(d), _) | (_, Some(d)) => d.to_string(),
                _ => String::new(),
            };
            self.audit_refusal(to, Some(to_tag.as_str()), &from_digest, actor, e);
        }
        if let Ok(done) = &result
            && !gate_ran
        {
            self.trust
                .reassess_if_gated(to, &done.digest, actor, "promoted");
        }
        result
    }
}

/// Records the verdict a promotion's gate reached: for the source (the next promotion of
/// the image is a lookup) and — the signatures came along — for the target too, before its
/// virtual tags settle.
fn carry_verdict(
    w: &mut dyn MetaWrite,
    verified: &trust::Verification,
    to: &Repository,
) -> Result<(), Error> {
    trust::record_verdict(w, verified)?;
    let mut there = verified.clone();
    there.repository = to.to_string();
    trust::record_verdict(w, &there)
}

impl Registry {
    /// Links the manifests `pending` names, with their children (and referrers, with
    /// `referrers`; semdock's SBOMs always) and blobs, from `from` into `to`; answers the
    /// digests copied.
    fn copy_manifests(
        &self,
        w: &mut dyn crate::store::meta::MetaWrite,
        from: &Repository,
        to: &Repository,
        mut pending: Vec<String>,
        referrers: bool,
    ) -> Result<Vec<String>, Error> {
        let mut copied = Vec::new();
        while let Some(d) = pending.pop() {
            if copied.contains(&d) {
                continue;
            }
            let record = w
                .manifest(from.as_str(), &d)?
                .ok_or_else(|| manifest_unknown(from, &d))?;
            pending.extend(record.children.iter().cloned());
            if referrers {
                pending.extend(w.referrers(from.as_str(), &d)?);
            } else {
                // semdock's own SBOM goes with its image, always.
                for r in w.referrers(from.as_str(), &d)? {
                    if w.manifest(from.as_str(), &r)?.is_some_and(|m| {
                        m.annotations
                            .contains_key(crate::domain::vulns::sbom::GENERATOR_ANNOTATION)
                    }) {
                        pending.push(r);
                    }
                }
            }
            for blob in &record.blobs {
                if !w.is_linked(from.as_str(), blob)? {
                    return Err(Error::ManifestBlobUnknown {
                        digest: blob.clone(),
                    });
                }
                crate::domain::quota::link(w, to.as_str(), blob, self.clock.now())?;
            }
            if let Some(subject) = &record.subject {
                w.add_referrer(to.as_str(), subject, &d, self.clock.now())?;
            }
            if !w.has_manifest(to.as_str(), &d)? {
                w.put_manifest(to.as_str(), &d, &record)?;
            }
            copied.push(d);
        }
        Ok(copied)
    }

    /// Under a feed's signature policy for promotions, verifies the signatures of the
    /// image `from:from_ref` names before the write; answers the digest verified (`None`:
    /// no policy applies, or the reference names nothing, which the write then reports).
    fn promotion_gate(
        &self,
        from: &Repository,
        from_ref: &Reference,
        to: &Repository,
    ) -> Result<Option<crate::domain::trust::Verification>, Error> {
        let digest = {
            let r = self.meta.read()?;
            if !trust::applies(&*r, to.feed(), Gate::Promotion)? {
                return Ok(None);
            }
            match from_ref {
                Reference::Digest(d) => d.to_string(),
                Reference::Tag(t) => match r.tag(from.as_str(), t.as_str())? {
                    Some(d) => d,
                    None => return Ok(None),
                },
            }
        };
        self.trust
            .require(to.feed(), Gate::Promotion, from, &digest)
    }
}

impl History<'_> {
    /// The history of `repo`, or of one tag, oldest first.
    pub fn list(&self, repo: &Repository, tag: Option<&str>) -> Result<Vec<HistoryEntry>, Error> {
        let r = self.registry.meta.read()?;
        if r.feed(repo.feed())?.is_none() {
            return Err(feed_unknown(repo));
        }
        let entries: Vec<HistoryEntry> = r
            .history(repo.as_str(), tag)?
            .into_iter()
            .map(|(t, seq, rec)| history_entry(seq, t, rec))
            .collect();
        if entries.is_empty() && r.repository(repo.as_str())?.is_none() {
            return Err(Error::RepositoryUnknown {
                repository: repo.to_string(),
            });
        }
        Ok(entries)
    }

    /// One page of the history of `repo` (or of one tag, or of one kind of change), and the
    /// sequence number the next page continues after when there is one.
    pub fn page(
        &self,
        repo: &Repository,
        q: &HistoryQuery,
    ) -> Result<(Vec<HistoryEntry>, Option<u64>), Error> {
        let r = self.registry.meta.read()?;
        if r.feed(repo.feed())?.is_none() {
            return Err(feed_unknown(repo));
        }
        let (records, more) = r.history_page(
            repo.as_str(),
            q.tag.as_deref(),
            q.last,
            q.newest_first,
            list_page_size(q.n),
            &|_, rec| q.method.as_ref().is_none_or(|m| *m == rec.method),
        )?;
        // A misspelled name must not look like a repository nobody changed.
        if records.is_empty() && q.last.is_none() && r.repository(repo.as_str())?.is_none() {
            return Err(Error::RepositoryUnknown {
                repository: repo.to_string(),
            });
        }
        let next = if more {
            records.last().map(|(_, seq, _)| *seq)
        } else {
            None
        };
        let entries = records
            .into_iter()
            .map(|(t, seq, rec)| history_entry(seq, t, rec))
            .collect();
        Ok((entries, next))
    }

    /// The newest `limit` tag changes in the feeds `visible` accepts, newest first, as
    /// (repository, entry).
    pub fn recent(
        &self,
        limit: usize,
        visible: impl Fn(&str) -> bool,
    ) -> Result<Vec<(String, HistoryEntry)>, Error> {
        Ok(self
            .registry
            .meta
            .read()?
            .recent_history(limit, &|repo| {
                visible(repo.split('/').next().unwrap_or_default())
            })?
            .into_iter()
            .map(|(repo, tag, rec)| (repo, history_entry(0, tag, rec)))
            .collect())
    }

    /// Repository names of `feed` containing `query`, `limit` at most after `after`, and
    /// whether more follow.
    pub fn search_repositories(
        &self,
        feed: &str,
        query: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<String>, bool), Error> {
        let prefix = format!("{feed}/");
        let query = query.to_lowercase();
        Ok(self
            .registry
            .meta
            .read()?
            .repositories(&prefix, after, limit, &|name| {
                query.is_empty() || name[prefix.len()..].to_lowercase().contains(&query)
            })?)
    }

    /// The digest `tag` pointed to at `at_ms` (Unix milliseconds), if any.
    pub fn tag_at(
        &self,
        repo: &Repository,
        tag: &str,
        at_ms: u64,
    ) -> Result<Option<String>, Error> {
        Ok(self
            .registry
            .history()
            .tag_state_at(repo, tag, at_ms)?
            .map(|s| s.digest))
    }

    /// What `tag` pointed to at `at_ms` (Unix milliseconds), if anything: the digest, and
    /// for a virtual tag (`latest`, `5`, `5.1`) the version it followed.
    pub fn tag_state_at(
        &self,
        repo: &Repository,
        tag: &str,
        at_ms: u64,
    ) -> Result<Option<TagState>, Error> {
        // The newest change at or before the time: read backwards from now.
        let r = self.registry.meta.read()?;
        let (found, _) = r.history_page(repo.as_str(), Some(tag), None, true, 1, &|_, rec| {
            rec.time_ms <= at_ms
        })?;
        Ok(found.into_iter().next().and_then(|(_, _, rec)| {
            // A virtual tag's moves name the version they follow ("follows 3.4.1").
            let version = (rec.method == "virtual")
                .then(|| rec.comment.as_deref()?.strip_prefix("follows "))
                .flatten()
                .map(str::to_owned);
            rec.new.map(|digest| TagState { digest, version })
        }))
    }

    /// One page of the tags of `repo` grouped by kind (see `TagQuery`): O(page · log n)
    /// whatever the number of tags.
    pub fn tag_groups(&self, repo: &Repository, q: &TagQuery) -> Result<TagGroups, Error> {
        let r = self.registry.meta.read()?;
        let feed = r.feed(repo.feed())?.ok_or_else(|| feed_unknown(repo))?;
        let policy = tags::policy_of(&feed);
        let name = repo.as_str();
        let n = list_page_size(q.n);
        let wants = |list| q.list.is_none_or(|l| l == list);
        let needle = q.contains.as_deref().unwrap_or_default().to_lowercase();
        let keep = |tag: &str| needle.is_empty() || tag.to_lowercase().contains(&needle);
        let after = |list| q.list.filter(|l| *l == list).and(q.last.as_deref());
        let entry = |(tag, digest): (String, String)| TagEntry {
            tag,
            digest,
            version: None,
        };
        let cursor = |more: bool, page: &[TagEntry]| {
            if more {
                page.last().map(|e| e.tag.clone())
            } else {
                None
            }
        };
        let mut groups = TagGroups::default();
        if wants(TagList::Versions) {
            let before =
                match after(TagList::Versions) {
                    Some(last) => Some(versioning::version_of(last).ok_or_else(|| {
                        Error::Invalid(format!("last: {last:?} is not a version"))
                    })?),
                    None => None,
                };
            let (page, more) = r.versions_page(name, before.as_ref(), n, &keep)?;
            groups.versions = page.into_iter().map(entry).collect();
            groups.next.versions = cursor(more, &groups.versions);
        }
        if wants(TagList::Tags) {
            let (page, more) = r.named_tags_page(name, after(TagList::Tags), n, &keep)?;
            let page: Vec<TagEntry> = page.into_iter().map(entry).collect();
            groups.next.tags = cursor(more, &page);
            for mut e in page {
                match policy.classify(&e.tag) {
                    TagKind::Virtual if policy.enabled => {
                        e.version =
                            tags::followed(&e.tag, |scope| Ok(r.highest_version(name, scope)?))?
                                .filter(|(_, digest)| *digest == e.digest)
                                .map(|(version, _)| version);
                        groups.virtual_tags.push(e);
                    }
                    TagKind::Permitted if policy.enabled => groups.permitted.push(e),
                    _ if policy.enabled => groups.legacy.push(e),
                    _ => groups.other.push(e),
                }
            }
        }
        if wants(TagList::Tombstones) {
            let (page, more) = r.tombstones_page(name, after(TagList::Tombstones), n, &keep)?;
            groups.tombstones = page.into_iter().map(entry).collect();
            groups.next.tombstones = cursor(more, &groups.tombstones);
        }
        Ok(groups)
    }

    /// Checks, without changing anything, whether a client could point `tag` at `digest`.
    pub fn check_tag(&self, repo: &Repository, tag: &str, digest: &str) -> Result<(), Error> {
        let r = self.registry.meta.read()?;
        let feed = r.feed(repo.feed())?.ok_or_else(|| feed_unknown(repo))?;
        let current = r.tag(repo.as_str(), tag)?;
        let tombstone = r.tombstone(repo.as_str(), tag)?;
        tags::policy_of(&feed).check_write(
            repo.feed(),
            tag,
            digest,
            current.as_deref(),
            tombstone.as_deref(),
        )
    }

    /// Copies an image (with index children, and referrers when asked) from one repository to
    /// another by link, never by bytes, and points `to_tag` at it: one transaction. Callers
    /// check pull on the source and promote on the target.
    pub fn promote(&self, p: &Promotion<'_>) -> Result<Promoted, Error> {
        self.registry.promote(p)
    }

    /// Tags of `repo`, sorted, `n` at most, after `last`.
    pub fn tags(
        &self,
        repo: &Repository,
        n: Option<usize>,
        last: Option<&str>,
    ) -> Result<Page, Error> {
        let r = self.registry.meta.read()?;
        if r.feed(repo.feed())?.is_none() {
            return Err(feed_unknown(repo));
        }
        if r.repository(repo.as_str())?.is_none() {
            return Err(Error::RepositoryUnknown {
                repository: repo.to_string(),
            });
        }
        let (items, more) = r.tags(repo.as_str(), last, page_size(n))?;
        Ok(Page { items, more })
    }

    /// Every promotion and retag whose target feed `visible` accepts, oldest first.
    pub fn promotions(
        &self,
        visible: impl Fn(&str) -> bool,
    ) -> Result<Vec<crate::store::meta::PromotionRecord>, Error> {
        Ok(self
            .registry
            .meta
            .read()?
            .promotions()?
            .into_iter()
            .filter(|p| visible(p.to_repository.split('/').next().unwrap_or_default()))
            .collect())
    }

    /// `RepositoryUnknown` unless `repo` holds (or held) something: pages about it say so.
    pub fn require_repository(&self, repo: &Repository) -> Result<(), Error> {
        if self
            .registry
            .meta
            .read()?
            .repository(repo.as_str())?
            .is_none()
        {
            return Err(Error::RepositoryUnknown {
                repository: repo.to_string(),
            });
        }
        Ok(())
    }

    /// Repositories of the feeds `visible` accepts, sorted, `n` at most, after `last`.
    pub fn catalog(
        &self,
        n: Option<usize>,
        last: Option<&str>,
        visible: impl Fn(&str) -> bool,
    ) -> Result<Page, Error> {
        let (items, more) =
            self.registry
                .meta
                .read()?
                .repositories("", last, page_size(n), &|name| {
                    visible(name.split('/').next().unwrap_or_default())
                })?;
        Ok(Page { items, more })
    }
}
