//! Every tag change goes through here, inside the caller's write transaction: the feed's
//! versioning policy is checked, the tag is set or removed, the change is appended to the tag
//! history, tombstones are kept, and virtual tags are recomputed — all in the one commit.

use semver::Version;

use super::Error;
use super::audit::{self, Kind};
use super::versioning::{Policy, TagKind, is_virtual, version_of};
use crate::model::Repository;
use crate::store::meta::precedence::Scope;
use crate::store::meta::{FeedRecord, HistoryRecord, MetaWrite};

/// Who changes tags, how, and why.
#[derive(Debug, Clone, Copy)]
pub struct Change<'a> {
    pub actor: &'a str,
    /// `push`, `delete`, `promote`, `retag`, `purge`, `retention`, `settings`.
    pub method: &'a str,
    pub comment: Option<&'a str>,
    /// Where the content came from (a promotion's source reference), for the audit log.
    pub source: Option<&'a str>,
    /// The registry's clock, read when each change is recorded (inside the write, so that
    /// history's times follow its order).
    pub clock: &'a super::clock::Clock,
}

#[must_use]
pub fn policy_of(feed: &FeedRecord) -> Policy {
    Policy {
        enabled: feed.versioning,
        permitted: feed.permitted.clone(),
    }
}

/// What the audit log calls a tag change made by `method`.
fn kind_of(method: &str, old: Option<&str>, new: Option<&str>) -> Kind {
    match method {
        "upstream" | "accept" if old.is_some() => Kind::TagMoved,
        "virtual" | "settings" => Kind::VirtualTagMoved,
        "promote" | "retag" => Kind::Promoted,
        "purge" => Kind::Purged,
        "retention" => Kind::RetentionDeleted,
        _ if new.is_none() => Kind::Deleted,
        _ if old.is_none() => Kind::Added,
        _ => Kind::TagMoved,
    }
}

/// Records one tag change: in the tag's history and, in the same commit, in the audit log
/// (which webhooks deliver from).
fn record(
    w: &mut dyn MetaWrite,
    repo: &str,
    tag: &str,
    old: Option<&str>,
    new: Option<&str>,
    change: &Change<'_>,
) -> Result<(), Error> {
    if let Some(digest) = new {
        super::search::index_tag(w, repo, tag, digest)?;
    }
    let kind = kind_of(change.method, old, new);
    let feed = repo.split('/').next().unwrap_or_default();
    let sentence = match (old, new) {
        (_, Some(new)) => format!("{repo}:{tag} → {new}"),
        (Some(old), None) => format!("{repo}:{tag} removed (was {old})"),
        (None, None) => format!("{repo}:{tag} removed"),
    };
    let mut entry = audit::entry(kind, change.actor, feed, sentence);
    entry.repository = Some(repo.to_owned());
    entry.tag = Some(tag.to_owned());
    entry.digest = new.or(old).map(str::to_owned);
    entry.previous = old.filter(|_| new.is_some()).map(str::to_owned);
    entry.source = change.source.map(str::to_owned);
    audit::append(w, change.clock, entry)?;
    w.append_history(
        repo,
        tag,
        &HistoryRecord {
            time_ms: change.clock.now_ms(),
            old: old.map(str::to_owned),
            new: new.map(str::to_owned),
            actor: change.actor.to_owned(),
            method: change.method.to_owned(),
            comment: change.comment.map(str::to_owned),
        },
    )?;
    Ok(())
}

/// Points `tag` at `digest` as a client asks; says whether anything changed.
pub fn set(
    w: &mut dyn MetaWrite,
    repo: &Repository,
    feed: &FeedRecord,
    tag: &str,
    digest: &str,
    change: &Change<'_>,
) -> Result<bool, Error> {
    let policy = policy_of(feed);
    let name = repo.as_str();
    let current = w.tag(name, tag)?;
    let tombstone = w.tombstone(name, tag)?;
    policy.check_write(
        repo.feed(),
        tag,
        digest,
        current.as_deref(),
        tombstone.as_deref(),
    )?;
    if current.as_deref() == Some(digest) {
        return Ok(false);
    }
    w.set_tag(name, tag, digest)?;
    if tombstone.is_some() {
        w.remove_tombstone(name, tag)?;
    }
    record(w, name, tag, current.as_deref(), Some(digest), change)?;
    if policy.enabled && version_of(tag).is_some() {
        settle_virtual(w, name, moved_by_tag(tag), change)?;
    }
    Ok(true)
}

/// Points `tag` at `digest` as a connector's upstream has it (or an administrator accepts
/// it after drift): no tag policy applies — an upstream's tags are what they are — but the
/// history, the audit log and the virtual tags are kept as for any change.
pub fn set_from_upstream(
    w: &mut dyn MetaWrite,
    repo: &Repository,
    feed: &FeedRecord,
    tag: &str,
    digest: &str,
    change: &Change<'_>,
) -> Result<(), Error> {
    let name = repo.as_str();
    let current = w.tag(name, tag)?;
    if current.as_deref() == Some(digest) {
        return Ok(());
    }
    w.set_tag(name, tag, digest)?;
    record(w, name, tag, current.as_deref(), Some(digest), change)?;
    if feed.versioning && version_of(tag).is_some() {
        let mut moved = moved_by_tag(tag);
        // A connector may keep the upstream's own `latest`.
        if feed.upstream.as_ref().is_some_and(|u| u.upstream_latest) {
            moved.retain(|t| t != "latest");
        }
        settle_virtual(w, name, moved, change)?;
    }
    Ok(())
}

/// Removes `tag` as a client asks; a version leaves a tombstone in a versioned feed.
pub fn remove(
    w: &mut dyn MetaWrite,
    repo: &Repository,
    feed: &FeedRecord,
    tag: &str,
    change: &Change<'_>,
) -> Result<(), Error> {
    let policy = policy_of(feed);
    let name = repo.as_str();
    let Some(current) = w.tag(name, tag)? else {
        return Err(Error::ManifestUnknown {
            repository: name.to_owned(),
            reference: tag.to_owned(),
        });
    };
    let is_version = matches!(policy.classify(tag), TagKind::Version(_));
    if policy.enabled {
        if policy.classify(tag) == TagKind::Virtual {
            return Err(Error::TagNotAllowed {
                tag: tag.to_owned(),
                feed: repo.feed().to_owned(),
                reason: "it is kept by the server; delete the versions it points to instead".into(),
            });
        }
        if is_version {
            w.set_tombstone(name, tag, &current)?;
        }
    }
    w.remove_tag(name, tag)?;
    record(w, name, tag, Some(&current), None, change)?;
    if policy.enabled && is_version {
        settle_virtual(w, name, moved_by_tag(tag), change)?;
    }
    Ok(())
}

/// Frees a version number: removes the tag and its tombstone (administrators only; the
/// caller checks).
pub fn purge(
    w: &mut dyn MetaWrite,
    repo: &Repository,
    feed: &FeedRecord,
    tag: &str,
    change: &Change<'_>,
) -> Result<(), Error> {
    let name = repo.as_str();
    let current = w.tag(name, tag)?;
    let tombstone = w.tombstone(name, tag)?;
    if current.is_none() && tombstone.is_none() {
        return Err(Error::ManifestUnknown {
            repository: name.to_owned(),
            reference: tag.to_owned(),
        });
    }
    w.remove_tag(name, tag)?;
    w.remove_tombstone(name, tag)?;
    record(
        w,
        name,
        tag,
        current.as_deref().or(tombstone.as_deref()),
        None,
        change,
    )?;
    if feed.versioning {
        settle_virtual(w, name, moved_by_tag(tag), change)?;
    }
    Ok(())
}

/// The virtual tags a change of version `v` can move: `latest`, `MAJOR`, `MAJOR.MINOR`.
fn moved_by(v: &Version) -> [String; 3] {
    [
        "latest".to_owned(),
        v.major.to_string(),
        format!("{}.{}", v.major, v.minor),
    ]
}

/// The virtual tags a change of `tag` can move: those of its version, or itself when it has
/// the shape of one (a legacy tag), else none.
fn moved_by_tag(tag: &str) -> Vec<String> {
    match version_of(tag) {
        Some(v) => moved_by(&v).into(),
        None if is_virtual(tag) => vec![tag.to_owned()],
        None => Vec::new(),
    }
}

/// Where the versions say virtual tag `tag` points, as (version tag, digest), given the
/// highest version of each scope: `latest` at the highest stable version or else the highest
/// pre-release, `MAJOR` and `MAJOR.MINOR` at the highest stable version under them.
pub fn followed(
    tag: &str,
    highest: impl Fn(Scope) -> Result<Option<(String, String)>, Error>,
) -> Result<Option<(String, String)>, Error> {
    if tag == "latest" {
        return Ok(match highest(Scope::Stable)? {
            Some(found) => Some(found),
            None => highest(Scope::PreRelease)?,
        });
    }
    let mut numbers = tag.split('.').map(str::parse::<u64>);
    let scope = match (numbers.next(), numbers.next(), numbers.next()) {
        (Some(Ok(major)), None, None) => Scope::Major(major),
        (Some(Ok(major)), Some(Ok(minor)), None) => Scope::Minor(major, minor),
        _ => return Ok(None),
    };
    highest(scope)
}

/// Points each of the virtual tags `names` of `repo` where its versions say: O(log n) each. A
/// virtual-looking tag the server did not set (a legacy tag from before versioning) is
/// replaced when a version claims it, and otherwise left alone.
pub(super) fn settle_virtual(
    w: &mut dyn MetaWrite,
    repo: &str,
    names: impl IntoIterator<Item = String>,
    cause: &Change<'_>,
) -> Result<(), Error> {
    // Under a signature policy only versions whose signatures passed are followed; under
    // a vulnerability policy that asks for it, only versions read and passing it.
    let feed = repo.split('/').next().unwrap_or(repo);
    let signed = super::trust::verdicts::policy_of(&*w, feed)?;
    let vetted = super::vulns::gate::skipping(&*w, feed)?;
    let now_ms = cause.clock.now_ms();
    let passes = |r: &dyn MetaWrite, digest: &str| -> Result<bool, Error> {
        if let Some(policy) = &signed
            && !super::trust::verdicts::passes(r, policy, repo, digest)?
        {
            return Ok(false);
        }
        match &vetted {
            Some(policy) => super::vulns::gate::admits(r, policy, feed, repo, digest, now_ms),
            None => Ok(true),
        }
    };
    for tag in names {
        let current = w.tag(repo, &tag)?;
        let highest = |scope| {
            if signed.is_none() && vetted.is_none() {
                Ok(w.highest_version(repo, scope)?)
            } else {
                highest_passing(&*w, repo, scope, &passes)
            }
        };
        match followed(&tag, highest)? {
            Some((_, want)) if current.as_deref() == Some(want.as_str()) => {}
            Some((version, want)) => {
                w.set_tag(repo, &tag, &want)?;
                // Each move names the version it follows, so history can say
                // "latest → 3.4.1" rather than only a digest.
                let note = match cause.comment {
                    // A settling caused by the trust (a signature, a key): say which.
                    Some(why) if cause.method == "settings" => {
                        format!("follows {version}: {why}")
                    }
                    _ => format!("follows {version}"),
                };
                let change = Change {
                    method: "virtual",
                    comment: Some(&note),
                    ..*cause
                };
                record(w, repo, &tag, current.as_deref(), Some(&want), &change)?;
            }
            None => {
                let Some(current) = current else { continue };
                let set_by_server = w
                    .last_history(repo, &tag)?
                    .is_some_and(|r| r.method == "virtual");
                if set_by_server {
                    w.remove_tag(repo, &tag)?;
                    let change = Change {
                        method: "virtual",
                        ..*cause
                    };
                    record(w, repo, &tag, Some(&current), None, &change)?;
                }
            }
        }
    }
    Ok(())
}

/// Whether version tag `tag` is in `scope`.
pub(crate) fn in_scope(scope: Scope, tag: &str) -> bool {
    let Some(v) = version_of(tag) else {
        return false;
    };
    let stable = v.pre.is_empty();
    match scope {
        Scope::Stable => stable,
        Scope::Major(major) => stable && v.major == major,
        Scope::Minor(major, minor) => stable && v.major == major && v.minor == minor,
        Scope::PreRelease => !stable,
        Scope::Named => false,
    }
}

/// The highest version of `repo` in `scope` that `passes` (its signatures by their recorded
/// verdict, its vulnerabilities by its report), as (tag, digest): O(k · log n) for the k
/// higher versions that do not pass.
fn highest_passing(
    r: &dyn MetaWrite,
    repo: &str,
    scope: Scope,
    passes: &dyn Fn(&dyn MetaWrite, &str) -> Result<bool, Error>,
) -> Result<Option<(String, String)>, Error> {
    let mut before: Option<Version> = None;
    loop {
        let (page, more) =
            r.versions_page(repo, before.as_ref(), 64, &|tag| in_scope(scope, tag))?;
        for (tag, digest) in &page {
            if passes(r, digest)? {
                return Ok(Some((tag.clone(), digest.clone())));
            }
        }
        match page.last().and_then(|(t, _)| version_of(t)) {
            Some(last) if more => before = Some(last),
            _ => return Ok(None),
        }
    }
}

/// Points every virtual tag of `repo` where its versions say (switching versioning on reads
/// every tag once; a single change settles only the tags it moves).
pub fn recompute_virtual(
    w: &mut dyn MetaWrite,
    repo: &str,
    cause: &Change<'_>,
) -> Result<(), Error> {
    let mut names = std::collections::BTreeSet::new();
    for (tag, _) in w.tag_targets(repo)? {
        match version_of(&tag) {
            Some(v) if v.pre.is_empty() => names.extend(moved_by(&v)),
            Some(_) => {
                names.insert("latest".to_owned());
            }
            None if is_virtual(&tag) => {
                names.insert(tag);
            }
            None => {}
        }
    }
    settle_virtual(w, repo, names, cause)
}
