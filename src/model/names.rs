//! Repository names, feeds, tags and references, validated by the distribution-spec grammar.
//!
//! A repository is `FEED/IMAGE`: the first path segment names the feed. A one-segment name is
//! well formed for the spec but has no feed; that is a fact reported here, and the domain layer
//! decides what it means.

use std::fmt;
use std::str::FromStr;
use std::sync::LazyLock;

use regex::Regex;

use super::digest::{Digest, DigestError};

/// Longest repository name accepted, as Distribution does.
pub const MAX_REPOSITORY_LEN: usize = 255;

static COMPONENT: LazyLock<Regex> = LazyLock::new(|| {
    // The spec's path component; the pattern is a constant, so compiling it cannot fail.
    Regex::new(r"^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$").expect("valid regex")
});
static TAG: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$").expect("valid regex"));

/// Why a name, tag or reference is not well formed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("repository name {0:?} is invalid: use lowercase path components such as library/app")]
    Repository(String),
    #[error("repository name is longer than {MAX_REPOSITORY_LEN} characters")]
    TooLong,
    #[error(
        "repository {0:?} has no feed: the first path segment must be a feed, as in library/{0}"
    )]
    NoFeed(String),
    #[error("feed name {0:?} is invalid: use lowercase letters, digits and . _ - (e.g. prod)")]
    Feed(String),
    #[error("tag {0:?} is invalid: a tag is 1 to 128 of [A-Za-z0-9_.-], not starting with . or -{hint}", hint = build_metadata_hint(.0))]
    Tag(String),
    #[error(transparent)]
    Digest(#[from] DigestError),
}

/// For `1.2.3+build.5`: SemVer build metadata cannot be in a tag (no `+`).
fn build_metadata_hint(tag: &str) -> String {
    match tag.split_once('+') {
        Some((version, _)) if !version.is_empty() => {
            format!("; build metadata cannot be in a tag: use {version}")
        }
        _ => String::new(),
    }
}

/// The name of a feed: one path component.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct FeedName(String);

impl FeedName {
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for FeedName {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() <= MAX_REPOSITORY_LEN && COMPONENT.is_match(s) {
            Ok(Self(s.to_owned()))
        } else {
            Err(NameError::Feed(s.to_owned()))
        }
    }
}

impl fmt::Display for FeedName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A full repository name, `FEED/IMAGE`, with at least two components.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct Repository {
    name: String,
    feed_end: usize,
}

impl Repository {
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.name
    }

    /// The feed: the first path segment.
    #[must_use]
    pub fn feed(&self) -> &str {
        &self.name[..self.feed_end]
    }

    /// The image name: everything after the feed.
    #[must_use]
    pub fn image(&self) -> &str {
        &self.name[self.feed_end + 1..]
    }
}

impl FromStr for Repository {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() > MAX_REPOSITORY_LEN {
            return Err(NameError::TooLong);
        }
        if s.is_empty() || !s.split('/').all(|c| COMPONENT.is_match(c)) {
            return Err(NameError::Repository(s.to_owned()));
        }
        match s.find('/') {
            Some(feed_end) => Ok(Self {
                name: s.to_owned(),
                feed_end,
            }),
            None => Err(NameError::NoFeed(s.to_owned())),
        }
    }
}

impl fmt::Display for Repository {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

/// A tag: `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct Tag(String);

impl Tag {
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Tag {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if TAG.is_match(s) {
            Ok(Self(s.to_owned()))
        } else {
            Err(NameError::Tag(s.to_owned()))
        }
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a manifest request addresses: a tag or a digest.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Reference {
    Tag(Tag),
    Digest(Digest),
}

impl FromStr for Reference {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.contains(':') {
            Ok(Self::Digest(s.parse()?))
        } else {
            Ok(Self::Tag(s.parse()?))
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tag(t) => t.fmt(f),
            Self::Digest(d) => d.fmt(f),
        }
    }
}

/// Parses `FEED/NAME:TAG` or `FEED/NAME@DIGEST`, as users write images.
pub fn parse_image(s: &str) -> Result<(Repository, Reference), NameError> {
    let (name, reference) = if let Some((name, digest)) = s.split_once('@') {
        (name, Reference::Digest(digest.parse()?))
    } else {
        let (name, tag) = s
            .rsplit_once(':')
            .ok_or_else(|| NameError::Tag(format!("{s} (no :TAG or @DIGEST)")))?;
        (name, Reference::Tag(tag.parse()?))
    };
    Ok((name.parse()?, reference))
}

/// An image reference as people write and docker prints it: `FEED/NAME:TAG`,
/// `FEED/NAME@DIGEST`, `FEED/NAME:TAG@DIGEST` (a tag and the digest it must point at), each
/// optionally after the registry's host (`HOST[:PORT]/…`, recognised as docker does: a first
/// component with a `.` or a `:`, or `localhost`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    pub host: Option<String>,
    pub repository: Repository,
    pub tag: Option<Tag>,
    pub digest: Option<crate::model::Digest>,
}

impl ImageRef {
    /// What the reference reads: its tag when it has one, else its digest.
    #[must_use]
    pub fn reference(&self) -> Reference {
        match (&self.tag, &self.digest) {
            (Some(t), _) => Reference::Tag(t.clone()),
            (None, Some(d)) => Reference::Digest(d.clone()),
            (None, None) => unreachable!("parse_image_ref always sets one"),
        }
    }

    /// Refuses a reference that names another registry than one of `ours` (`host[:port]`).
    pub fn check_host(&self, ours: &[String]) -> Result<(), String> {
        match &self.host {
            Some(h) if !ours.iter().any(|o| o.eq_ignore_ascii_case(h)) => Err(format!(
                "the reference names the registry {h}, but this one is {}: promote within one registry (copy between registries with skopeo copy)",
                ours.first().map_or("another", String::as_str)
            )),
            _ => Ok(()),
        }
    }

    /// The digest a tag must point at, when both are given.
    #[must_use]
    pub fn expected(&self) -> Option<&crate::model::Digest> {
        self.tag.as_ref().and(self.digest.as_ref())
    }
}

/// Whether `component` (the first of a reference) names a registry host, as docker decides.
#[must_use]
pub fn is_host(component: &str) -> bool {
    component.contains('.') || component.contains(':') || component == "localhost"
}

pub fn parse_image_ref(s: &str) -> Result<ImageRef, NameError> {
    let (host, rest) = match s.split_once('/') {
        Some((first, rest)) if is_host(first) => (Some(first.to_ascii_lowercase()), rest),
        _ => (None, s),
    };
    let (named, digest) = match rest.split_once('@') {
        Some((named, digest)) => (named, Some(digest.parse()?)),
        None => (rest, None),
    };
    // A tag follows the last `:` after the last `/`.
    let last_slash = named.rfind('/').unwrap_or(0);
    let (name, tag) = match named[last_slash..].rfind(':') {
        Some(i) => {
            let at = last_slash + i;
            (&named[..at], Some(named[at + 1..].parse()?))
        }
        None => (named, None),
    };
    if tag.is_none() && digest.is_none() {
        return Err(NameError::Tag(format!("{s} (no :TAG or @DIGEST)")));
    }
    Ok(ImageRef {
        host,
        repository: name.parse()?,
        tag,
        digest,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_references_read_as_docker_prints_them() {
        let d = format!("sha256:{}", "a".repeat(64));
        let r = parse_image_ref(&format!("staging/web:5.1.0@{d}")).unwrap();
        assert_eq!(r.repository.as_str(), "staging/web");
        assert_eq!(r.tag.as_ref().unwrap().as_str(), "5.1.0");
        assert_eq!(r.expected().unwrap().as_str(), d);
        assert_eq!(r.reference().to_string(), "5.1.0");
        let r = parse_image_ref(&format!("localhost:5000/staging/team/web@{d}")).unwrap();
        assert_eq!(r.host.as_deref(), Some("localhost:5000"));
        assert_eq!(r.repository.as_str(), "staging/team/web");
        assert!(r.expected().is_none());
        assert_eq!(r.reference().to_string(), d);
        let r = parse_image_ref("registry.example.com/prod/web:5.1.0").unwrap();
        assert_eq!(r.host.as_deref(), Some("registry.example.com"));
        assert!(r.digest.is_none());
        let r = parse_image_ref("prod/web:5.1.0").unwrap();
        assert_eq!(r.host, None);
        assert!(parse_image_ref("prod/web").is_err());
        assert!(parse_image_ref("localhost:5000/prod/web@sha256:short").is_err());
    }

    #[test]
    fn repository_splits_into_feed_and_image() {
        let r: Repository = "prod/team/app".parse().unwrap();
        assert_eq!(r.feed(), "prod");
        assert_eq!(r.image(), "team/app");
    }

    #[test]
    fn one_segment_repository_has_no_feed() {
        assert_eq!(
            "app".parse::<Repository>(),
            Err(NameError::NoFeed("app".into()))
        );
    }

    #[test]
    fn malformed_repository_names_are_refused() {
        for bad in [
            "",
            "Prod/app",
            "prod//app",
            "prod/app/",
            "/prod/app",
            "prod/-app",
            "prod/a..b",
        ] {
            assert!(
                matches!(bad.parse::<Repository>(), Err(NameError::Repository(_))),
                "{bad}"
            );
        }
        let long = format!("prod/{}", "a".repeat(300));
        assert_eq!(long.parse::<Repository>(), Err(NameError::TooLong));
        assert!("a.b-c__d/x_y".parse::<Repository>().is_ok());
    }

    #[test]
    fn tags_follow_the_spec_grammar() {
        for good in ["1.0.0", "latest", "_x", "A-b.c_d"] {
            assert!(good.parse::<Tag>().is_ok(), "{good}");
        }
        let long = "a".repeat(129);
        for bad in ["", ".x", "-x", "a+b", long.as_str()] {
            assert!(bad.parse::<Tag>().is_err(), "{bad}");
        }
    }

    #[test]
    fn reference_is_digest_when_it_has_a_colon() {
        assert!(matches!("1.0".parse::<Reference>(), Ok(Reference::Tag(_))));
        assert!(matches!(
            "sha256:zz".parse::<Reference>(),
            Err(NameError::Digest(_))
        ));
    }
}
