//! Every tag change goes through here, inside the caller's write transaction: the feed's
//! versioning policy is checked, the tag is set or removed, the change is appended to the tag
//! history, tombstones are kept, and virtual tags are recomputed — all in the one commit.

use semver::Version;

use super::Error;
use super::versioning::{Policy, TagKind, is_virtual, version_of, virtual_tags};
use crate::model::Repository;
use crate::store::meta::{FeedRecord, HistoryRecord, Writer};

/// Who changes tags, how, and why.
#[derive(Debug, Clone, Copy)]
pub struct Change<'a> {
    pub actor: &'a str,
    /// `push`, `delete`, `promote`, `retag`, `purge`, `settings`.
    pub method: &'a str,
    pub comment: Option<&'a str>,
}

#[must_use]
pub fn policy_of(feed: &FeedRecord) -> Policy {
    Policy {
        enabled: feed.versioning,
        permitted: feed.permitted.clone(),
    }
}

pub(super) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn record(
    w: &mut Writer<'_>,
    repo: &str,
    tag: &str,
    old: Option<&str>,
    new: Option<&str>,
    change: &Change<'_>,
) -> Result<(), Error> {
    w.append_history(
        repo,
        tag,
        &HistoryRecord {
            time_ms: now_ms(),
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
    w: &mut Writer<'_>,
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
        recompute_virtual(w, name, change)?;
    }
    Ok(true)
}

/// Removes `tag` as a client asks; a version leaves a tombstone in a versioned feed.
pub fn remove(
    w: &mut Writer<'_>,
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
        recompute_virtual(w, name, change)?;
    }
    Ok(())
}

/// Frees a version number: removes the tag and its tombstone (administrators only; the
/// caller checks).
pub fn purge(
    w: &mut Writer<'_>,
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
        recompute_virtual(w, name, change)?;
    }
    Ok(())
}

/// Points the virtual tags of `repo` where its versions say. A virtual-looking tag the server
/// did not set (a legacy tag from before versioning) is replaced when a version claims it,
/// and otherwise left alone.
pub fn recompute_virtual(w: &mut Writer<'_>, repo: &str, cause: &Change<'_>) -> Result<(), Error> {
    let tags = w.tag_targets(repo)?;
    let versions: Vec<(Version, &str)> = tags
        .iter()
        .filter_map(|(t, d)| version_of(t).map(|v| (v, d.as_str())))
        .collect();
    let desired = virtual_tags(versions.iter().map(|(v, d)| (v, *d)));
    // Each move records the version it follows ("follows 3.4.1"), so history can say
    // "latest → 3.4.1" rather than only a digest.
    let follows = |tag: &str, digest: &str| -> Option<String> {
        versions
            .iter()
            .filter(|(v, d)| {
                *d == digest
                    && (tag == "latest"
                        || tag == v.major.to_string()
                        || tag == format!("{}.{}", v.major, v.minor))
            })
            .map(|(v, _)| v)
            .max()
            .map(|v| format!("follows {v}"))
    };
    let change = Change {
        method: "virtual",
        ..*cause
    };
    for (tag, digest) in &tags {
        if !is_virtual(tag) {
            continue;
        }
        match desired.get(tag) {
            Some(want) if want == digest => {}
            Some(want) => {
                w.set_tag(repo, tag, want)?;
                let note = follows(tag, want);
                let change = Change {
                    comment: note.as_deref().or(change.comment),
                    ..change
                };
                record(w, repo, tag, Some(digest), Some(want), &change)?;
            }
            None => {
                let set_by_server = w
                    .history(repo, Some(tag))?
                    .last()
                    .is_some_and(|(_, _, r)| r.method == "virtual");
                if set_by_server {
                    w.remove_tag(repo, tag)?;
                    record(w, repo, tag, Some(digest), None, &change)?;
                }
            }
        }
    }
    for (tag, want) in &desired {
        if !tags.iter().any(|(t, _)| t == tag) {
            w.set_tag(repo, tag, want)?;
            let note = follows(tag, want);
            let change = Change {
                comment: note.as_deref().or(change.comment),
                ..change
            };
            record(w, repo, tag, None, Some(want), &change)?;
        }
    }
    Ok(())
}
