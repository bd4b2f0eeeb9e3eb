//! Tags, their history, promotions and resolved references.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain;

/// One tag in a grouped listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TagEntry {
    pub tag: String,
    pub digest: String,
    /// For a virtual tag: the version it points to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

impl From<domain::TagEntry> for TagEntry {
    fn from(e: domain::TagEntry) -> Self {
        Self {
            tag: e.tag,
            digest: e.digest,
            version: e.version,
        }
    }
}

/// A repository's tags by kind; versions by SemVer precedence, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, ToSchema)]
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

impl From<domain::TagGroups> for TagGroups {
    fn from(g: domain::TagGroups) -> Self {
        Self {
            versions: super::all(g.versions),
            virtual_tags: super::all(g.virtual_tags),
            permitted: super::all(g.permitted),
            legacy: super::all(g.legacy),
            other: super::all(g.other),
            tombstones: super::all(g.tombstones),
            next: TagCursors {
                versions: g.next.versions,
                tags: g.next.tags,
                tombstones: g.next.tombstones,
            },
        }
    }
}

/// The three ordered lists a repository's tags page through: versions by SemVer precedence,
/// highest first; every other tag by name (shown grouped by kind); tombstones by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TagList {
    Versions,
    Tags,
    Tombstones,
}

impl From<TagList> for domain::TagList {
    fn from(l: TagList) -> Self {
        match l {
            TagList::Versions => Self::Versions,
            TagList::Tags => Self::Tags,
            TagList::Tombstones => Self::Tombstones,
        }
    }
}

/// The tag a list continues after, per list that has more.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, ToSchema)]
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

/// One change of a tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
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

impl From<domain::HistoryEntry> for HistoryEntry {
    fn from(h: domain::HistoryEntry) -> Self {
        Self {
            seq: h.seq,
            tag: h.tag,
            time: h.time,
            old: h.old,
            new: h.new,
            actor: h.actor,
            method: h.method,
            comment: h.comment,
        }
    }
}

/// The outcome of a promotion or retag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Promoted {
    pub digest: String,
    /// Manifests copied into the target repository (the image, index children, referrers).
    pub manifests: usize,
    /// Whether the target tag moved (false: it already pointed there).
    pub changed: bool,
}

impl From<domain::Promoted> for Promoted {
    fn from(p: domain::Promoted) -> Self {
        Self {
            digest: p.digest,
            manifests: p.manifests,
            changed: p.changed,
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PromotionRequest {
    /// `FEED/NAME:TAG`, `FEED/NAME@DIGEST`, or `FEED/NAME:TAG@DIGEST` (the tag and the digest
    /// it must point at); with this registry's host in front as docker prints it, too.
    pub from: String,
    /// `FEED/NAME:TAG`.
    pub to: String,
    /// The digest the source must point at: a conflict (409) when it no longer does.
    pub expected_digest: Option<String>,
    pub comment: Option<String>,
    /// Copy the referrers (signatures, SBOMs) of the image too.
    #[serde(default)]
    pub include_referrers: bool,
}

/// What a tag points at now, pinned for a deployment manifest.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Resolved {
    /// `HOST/FEED/NAME@DIGEST`, with the host clients reach this registry at.
    pub pinned: String,
    pub repository: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    pub digest: String,
}

/// What a purge confirms.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PurgeRequest {
    /// The tag again, to purge a tag that is still live (delete and purge in one step).
    pub confirm: Option<String>,
}

/// What a tag pointed to at a moment.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TagAt {
    pub tag: String,
    pub at: String,
    /// None: the tag did not exist then.
    pub digest: Option<String>,
    /// For a virtual tag (`latest`, `5`, `5.1`): the version it followed then.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// One search hit.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SearchHit {
    /// `repository`, `tag`, `digest` or `annotation`.
    pub kind: String,
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
    /// The indexed text that matched.
    pub matched: String,
}

impl From<crate::domain::search::Hit> for SearchHit {
    fn from(h: crate::domain::search::Hit) -> Self {
        use crate::domain::search::HitKind as K;
        Self {
            kind: match h.kind {
                K::Repository => "repository",
                K::Tag => "tag",
                K::Digest => "digest",
                K::Annotation => "annotation",
            }
            .to_owned(),
            repository: h.repository,
            tag: h.tag,
            digest: h.digest,
            matched: h.matched,
        }
    }
}
