//! Container versioning: which tags a versioned feed accepts, which never move, and where the
//! virtual tags `latest`, `MAJOR` and `MAJOR.MINOR` point.
//!
//! Pure rules over plain values: no storage, no time. The registry applies them inside the
//! write transaction of every tag change.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use regex::Regex;
use semver::Version;

use super::Error;

/// A feed's versioning settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    pub enabled: bool,
    /// Exact tag names and `*` globs that stay mutable.
    pub permitted: Vec<String>,
}

/// What a tag is in a versioned feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagKind {
    /// `MAJOR.MINOR.PATCH[-pre]`: immutable once pushed.
    Version(Version),
    /// `latest`, `MAJOR`, `MAJOR.MINOR`: kept by the server.
    Virtual,
    /// Matches the permitted list: mutable.
    Permitted,
    /// Anything else: refused on push, shown as legacy when it predates versioning.
    Other,
}

static VIRTUAL: LazyLock<Regex> =
    // A constant pattern: compiling it cannot fail.
    LazyLock::new(|| {
        Regex::new(r"^(latest|(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))?)$").expect("valid regex")
    });

/// The SemVer version a tag names, if it is a version tag (three numeric parts, optional
/// pre-release, no `v`, no build metadata).
#[must_use]
pub fn version_of(tag: &str) -> Option<Version> {
    Version::parse(tag).ok().filter(|v| v.build.is_empty())
}

/// Whether `tag` matches `pattern`, where `*` matches any run of characters.
#[must_use]
pub fn glob_matches(pattern: &str, tag: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = tag.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// Whether `tag` has the shape of a virtual tag (`latest`, `MAJOR`, `MAJOR.MINOR`).
#[must_use]
pub fn is_virtual(tag: &str) -> bool {
    VIRTUAL.is_match(tag)
}

/// Checks a permitted-tags entry: tag characters and `*`.
pub fn check_pattern(pattern: &str) -> Result<(), Error> {
    let ok = !pattern.is_empty()
        && pattern.len() <= 128
        && pattern
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-*".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "permitted tag {pattern:?} is invalid: use tag characters [A-Za-z0-9._-] and * as a wildcard"
        )))
    }
}

impl Policy {
    #[must_use]
    pub fn classify(&self, tag: &str) -> TagKind {
        if let Some(v) = version_of(tag) {
            TagKind::Version(v)
        } else if VIRTUAL.is_match(tag) {
            TagKind::Virtual
        } else if self.permitted.iter().any(|p| glob_matches(p, tag)) {
            TagKind::Permitted
        } else {
            TagKind::Other
        }
    }

    /// Checks that a client may point `tag` at `digest` in `feed`, given the tag's current
    /// target and its tombstone (a deleted version keeps its number).
    pub fn check_write(
        &self,
        feed: &str,
        tag: &str,
        digest: &str,
        current: Option<&str>,
        tombstone: Option<&str>,
    ) -> Result<(), Error> {
        if !self.enabled {
            return Ok(());
        }
        match self.classify(tag) {
            TagKind::Version(_) => {
                let kept = current.or(tombstone);
                match kept {
                    Some(kept) if kept != digest => Err(Error::VersionImmutable {
                        tag: tag.to_owned(),
                        digest: kept.to_owned(),
                        deleted: current.is_none(),
                    }),
                    _ => Ok(()),
                }
            }
            TagKind::Virtual => Err(Error::TagNotAllowed {
                tag: tag.to_owned(),
                feed: feed.to_owned(),
                reason: if tag == "latest" {
                    format!(
                        "{tag:?} is kept by the server, which points it at the highest version: push a version such as 1.0.0"
                    )
                } else {
                    format!(
                        "{tag:?} is kept by the server, which points it at the highest matching version: {}",
                        suggest_version(tag)
                    )
                },
            }),
            TagKind::Permitted => Ok(()),
            TagKind::Other => Err(Error::TagNotAllowed {
                tag: tag.to_owned(),
                feed: feed.to_owned(),
                reason: format!(
                    "{} or add {tag:?} to the feed's permitted tags",
                    suggest_version(tag)
                ),
            }),
        }
    }
}

/// The fix for a tag that is not a version, from what it looks like: `v1.2.3` → drop the
/// `v`; `1.2` → three parts; `1.2.3+build` → no build metadata; else an example.
fn suggest_version(tag: &str) -> String {
    let (without_v, had_v) = match tag.strip_prefix(['v', 'V']) {
        Some(rest) if rest.starts_with(|c: char| c.is_ascii_digit()) => (rest, true),
        _ => (tag, false),
    };
    let (core, build) = match without_v.split_once('+') {
        Some((core, _)) => (core, true),
        None => (without_v, false),
    };
    let numeric = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let (numbers, pre) = match core.split_once('-') {
        Some((n, p)) => (n, Some(p)),
        None => (core, None),
    };
    let parts: Vec<&str> = numbers.split('.').collect();
    // A pre-release on a short version (`v6-latest`) is a name, not a version to complete.
    let completable = pre.is_none() || parts.len() == 3;
    let fixed = if completable && parts.iter().all(|p| numeric(p)) && (1..=3).contains(&parts.len())
    {
        let mut full: Vec<&str> = parts.clone();
        full.resize(3, "0");
        let mut v = full.join(".");
        if let Some(pre) = pre {
            v = format!("{v}-{pre}");
        }
        version_of(&v).map(|_| v)
    } else {
        None
    };
    match fixed {
        Some(v) => {
            let mut what = Vec::new();
            if had_v {
                what.push("drop the leading v");
            }
            if parts.len() < 3 {
                what.push("use three parts");
            }
            if build {
                what.push("build metadata cannot be in a tag");
            }
            if what.is_empty() {
                format!("use a SemVer version like {v}")
            } else {
                format!("{}: {v}", what.join(", "))
            }
        }
        None => "use a SemVer version like 6.0.0".to_owned(),
    }
}

/// Where the virtual tags point, given every version tag of a repository: `latest` at the
/// highest stable version (the highest pre-release when none is stable), `MAJOR` and
/// `MAJOR.MINOR` at the highest stable version under them.
#[must_use]
pub fn virtual_tags<'a>(
    versions: impl IntoIterator<Item = (&'a Version, &'a str)>,
) -> BTreeMap<String, String> {
    let mut highest: BTreeMap<String, (&Version, &str)> = BTreeMap::new();
    let mut highest_pre: Option<(&Version, &str)> = None;
    let offer = |key: String,
                 v: &'a Version,
                 d: &'a str,
                 map: &mut BTreeMap<String, (&'a Version, &'a str)>| {
        if map.get(&key).is_none_or(|(best, _)| v > *best) {
            map.insert(key, (v, d));
        }
    };
    for (v, d) in versions {
        if v.pre.is_empty() {
            offer("latest".to_owned(), v, d, &mut highest);
            offer(v.major.to_string(), v, d, &mut highest);
            offer(format!("{}.{}", v.major, v.minor), v, d, &mut highest);
        } else if highest_pre.is_none_or(|(best, _)| v > best) {
            highest_pre = Some((v, d));
        }
    }
    if !highest.contains_key("latest")
        && let Some((v, d)) = highest_pre
    {
        highest.insert("latest".to_owned(), (v, d));
    }
    highest
        .into_iter()
        .map(|(k, (_, d))| (k, d.to_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(permitted: &[&str]) -> Policy {
        Policy {
            enabled: true,
            permitted: permitted.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    #[test]
    fn a_refused_tag_gets_the_fix_for_what_was_pushed() {
        for (tag, hint) in [
            ("v1.2.3", "drop the leading v: 1.2.3"),
            ("v1", "drop the leading v, use three parts: 1.0.0"),
            ("1.2", "use three parts: 1.2.0"),
            ("v2.0.0-rc.1", "drop the leading v: 2.0.0-rc.1"),
            ("bogus", "use a SemVer version like 6.0.0"),
            ("v6-latest", "use a SemVer version like 6.0.0"),
        ] {
            let e = policy(&[]).check_write("prod", tag, "sha256:x", None, None);
            let message = e.unwrap_err().to_string();
            assert!(message.contains(hint), "{tag}: {message}");
            // A virtual tag cannot be permitted; anything else can.
            assert_eq!(
                message.contains("permitted tags"),
                !is_virtual(tag),
                "{tag}: {message}"
            );
        }
        assert_eq!(
            suggest_version("1.2.3+build.5"),
            "build metadata cannot be in a tag: 1.2.3"
        );
        let e = "1.2.3+build.5".parse::<crate::model::Tag>().unwrap_err();
        assert!(
            e.to_string()
                .contains("build metadata cannot be in a tag: use 1.2.3"),
            "{e}"
        );
    }

    #[test]
    fn version_tags_are_three_part_semver_without_v_or_build() {
        for good in ["1.2.3", "0.0.0", "2.4.1-beta.1", "10.20.30-rc.4"] {
            assert!(version_of(good).is_some(), "{good}");
        }
        for bad in [
            "v1.2.3",
            "1.2",
            "1",
            "1.2.3.4",
            "01.2.3",
            "1.2.3+build",
            "latest",
        ] {
            assert!(version_of(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn globs_match_like_shells() {
        assert!(glob_matches("pr-*", "pr-42"));
        assert!(glob_matches("*", "anything"));
        assert!(glob_matches("a*b*c", "a-x-b-y-c"));
        assert!(!glob_matches("pr-*", "xpr-1"));
        assert!(!glob_matches("dev", "develop"));
        assert!(glob_matches("dev", "dev"));
        assert!(!glob_matches("a*a", "a"));
    }

    #[test]
    fn classification_and_write_checks() {
        let p = policy(&["dev", "pr-*"]);
        assert_eq!(p.classify("latest"), TagKind::Virtual);
        assert_eq!(p.classify("3"), TagKind::Virtual);
        assert_eq!(p.classify("3.4"), TagKind::Virtual);
        assert_eq!(p.classify("pr-7"), TagKind::Permitted);
        assert_eq!(p.classify("v6-latest"), TagKind::Other);
        let err = p
            .check_write("prod", "v6-latest", "d1", None, None)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "tag \"v6-latest\" is not allowed in feed \"prod\": use a SemVer version like 6.0.0 or add \"v6-latest\" to the feed's permitted tags"
        );
        assert!(
            p.check_write("prod", "1.0.0", "d1", Some("d1"), None)
                .is_ok()
        );
        assert!(
            p.check_write("prod", "1.0.0", "d2", Some("d1"), None)
                .is_err()
        );
        assert!(
            p.check_write("prod", "1.0.0", "d2", None, Some("d1"))
                .is_err()
        );
        assert!(p.check_write("prod", "dev", "d2", Some("d1"), None).is_ok());
        assert!(
            Policy::default()
                .check_write("prod", "latest", "d", Some("x"), None)
                .is_ok()
        );
    }

    #[test]
    fn virtual_tags_follow_design_example() {
        let vs: Vec<(Version, &str)> = [
            ("1.2.3", "a"),
            ("1.3.0-rc.1", "b"),
            ("1.2.10", "c"),
            ("2.0.0-beta.1", "d"),
        ]
        .into_iter()
        .map(|(v, d)| (Version::parse(v).unwrap(), d))
        .collect();
        let tags = virtual_tags(vs.iter().map(|(v, d)| (v, *d)));
        let expect: BTreeMap<String, String> = [("latest", "c"), ("1", "c"), ("1.2", "c")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        assert_eq!(tags, expect);
    }

    #[test]
    fn latest_is_the_highest_prerelease_when_nothing_is_stable() {
        let vs = [
            (Version::parse("1.0.0-rc.1").unwrap(), "a"),
            (Version::parse("1.0.0-rc.2").unwrap(), "b"),
        ];
        let tags = virtual_tags(vs.iter().map(|(v, d)| (v, *d)));
        assert_eq!(tags.len(), 1);
        assert_eq!(tags["latest"], "b");
    }
}
