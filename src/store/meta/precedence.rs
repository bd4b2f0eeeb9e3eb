//! Byte keys that sort version tags in SemVer precedence, so that the highest version of a
//! repository, of one major or of one major.minor is the last key of a range: what the virtual
//! tags need, found in O(log n) instead of by reading every tag.
//!
//! Layout: one byte for the partition (`PRE` for pre-releases, `STABLE` after it, `NAMED` for
//! every tag that is not a version, followed by its name), the major,
//! minor and patch as big-endian `u64`, then for a pre-release each identifier — numeric ones
//! as `1, digit count, digits` (no leading zeros, so more digits is more), alphanumeric ones
//! as `2, bytes, 0` — and a closing `0`, so that a shorter list of equal identifiers sorts
//! first, numeric identifiers sort before alphanumeric ones, and both sort by SemVer's rules.

use semver::Version;

pub const PRE: u8 = 0;
pub const STABLE: u8 = 1;
pub const NAMED: u8 = 2;

/// Which versions a range covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Every stable version.
    Stable,
    /// Stable versions `MAJOR.*.*`.
    Major(u64),
    /// Stable versions `MAJOR.MINOR.*`.
    Minor(u64, u64),
    /// Every pre-release.
    PreRelease,
    /// Every tag that is not a version.
    Named,
}

/// The version a tag names when it is a version tag: SemVer, no build metadata (a tag
/// cannot hold `+`; kept in step with `domain::versioning::version_of`).
#[must_use]
pub fn version_of(tag: &str) -> Option<Version> {
    Version::parse(tag).ok().filter(|v| v.build.is_empty())
}

/// The rank of any tag: its version's key, or its name after every version.
#[must_use]
pub fn rank(tag: &str) -> Vec<u8> {
    version_of(tag).map_or_else(
        || {
            let mut out = Vec::with_capacity(tag.len() + 1);
            out.push(NAMED);
            out.extend_from_slice(tag.as_bytes());
            out
        },
        |v| key(&v),
    )
}

/// The key of `v`.
#[must_use]
pub fn key(v: &Version) -> Vec<u8> {
    let mut out = Vec::with_capacity(32);
    out.push(if v.pre.is_empty() { STABLE } else { PRE });
    for n in [v.major, v.minor, v.patch] {
        out.extend_from_slice(&n.to_be_bytes());
    }
    if !v.pre.is_empty() {
        for id in v.pre.as_str().split('.') {
            if id.bytes().all(|b| b.is_ascii_digit()) {
                out.push(1);
                // Identifiers are parts of a tag, at most 128 characters.
                out.push(u8::try_from(id.len()).unwrap_or(u8::MAX));
            } else {
                out.push(2);
            }
            out.extend_from_slice(id.as_bytes());
            if !id.bytes().all(|b| b.is_ascii_digit()) {
                out.push(0);
            }
        }
        out.push(0);
    }
    out
}

/// The smallest and largest key of a scope (both included).
#[must_use]
pub fn bounds(scope: Scope) -> (Vec<u8>, Vec<u8>) {
    let with = |partition: u8, numbers: &[u64]| {
        let mut low = vec![partition];
        for n in numbers {
            low.extend_from_slice(&n.to_be_bytes());
        }
        let mut high = low.clone();
        // Longer than any key of the partition, and above all of them.
        high.resize(256, u8::MAX);
        (low, high)
    };
    match scope {
        Scope::Stable => with(STABLE, &[]),
        Scope::Major(major) => with(STABLE, &[major]),
        Scope::Minor(major, minor) => with(STABLE, &[major, minor]),
        Scope::PreRelease => with(PRE, &[]),
        Scope::Named => with(NAMED, &[]),
    }
}

/// The two ranges of rank keys a page of versions below `before` reads (all versions when
/// `None`): `[stable, pre-release]`, each as (inclusive low key, high bound).
#[must_use]
pub fn version_ranges(before: Option<&Version>) -> [(Vec<u8>, std::ops::Bound<Vec<u8>>); 2] {
    use std::ops::Bound;
    let range = |stable: bool| {
        let scope = if stable {
            Scope::Stable
        } else {
            Scope::PreRelease
        };
        let (low, high) = bounds(scope);
        let Some(c) = before else {
            return (low, Bound::Included(high));
        };
        let high = match (stable, c.pre.is_empty()) {
            // Same partition: strictly below the cursor.
            (true, true) | (false, false) => Bound::Excluded(key(c)),
            // Stable versions below a pre-release are those below its release.
            (true, false) => Bound::Excluded(key(&Version::new(c.major, c.minor, c.patch))),
            // Pre-releases below a release are those of it and of lower versions.
            (false, true) => {
                let mut k = vec![PRE];
                for n in [c.major, c.minor, c.patch] {
                    k.extend_from_slice(&n.to_be_bytes());
                }
                k.resize(256, u8::MAX);
                Bound::Included(k)
            }
        };
        (low, high)
    };
    [range(true), range(false)]
}

/// Merges the stable and the pre-release versions, each read highest first as (tag,
/// digest), into one list highest first in SemVer precedence: up to `limit` that `keep`
/// accepts, and whether more follow.
pub fn merge_versions<E>(
    stable: impl Iterator<Item = Result<(String, String), E>>,
    pre: impl Iterator<Item = Result<(String, String), E>>,
    limit: usize,
    keep: &dyn Fn(&str) -> bool,
) -> Result<(Vec<(String, String)>, bool), E> {
    let mut stable = stable.peekable();
    let mut pre = pre.peekable();
    let version =
        |e: &Result<(String, String), E>| e.as_ref().ok().and_then(|(tag, _)| version_of(tag));
    let mut out = Vec::new();
    loop {
        let take_stable = match (stable.peek(), pre.peek()) {
            (None, None) => return Ok((out, false)),
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some(a), Some(b)) => version(a) >= version(b),
        };
        let next = if take_stable {
            stable.next()
        } else {
            pre.next()
        };
        let Some(entry) = next else { continue };
        let entry = entry?;
        if !keep(&entry.0) {
            continue;
        }
        if out.len() == limit {
            return Ok((out, true));
        }
        out.push(entry);
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn identifier() -> impl Strategy<Value = String> {
        prop_oneof![
            (0u64..2000).prop_map(|n| n.to_string()),
            "[0-9]{1,3}[a-z-][a-z0-9-]{0,3}",
            "[a-zA-Z-][a-zA-Z0-9-]{0,4}",
        ]
    }

    fn version() -> impl Strategy<Value = Version> {
        (
            0u64..4,
            0u64..4,
            0u64..4,
            proptest::collection::vec(identifier(), 0..4),
        )
            .prop_map(|(a, b, c, pre)| {
                let mut s = format!("{a}.{b}.{c}");
                if !pre.is_empty() {
                    s = format!("{s}-{}", pre.join("."));
                }
                Version::parse(&s).expect("a valid version")
            })
    }

    proptest! {
        #[test]
        fn keys_sort_as_semver_precedence_within_each_partition(a in version(), b in version()) {
            let (ka, kb) = (key(&a), key(&b));
            if a.pre.is_empty() == b.pre.is_empty() {
                prop_assert_eq!(ka.cmp(&kb), a.cmp(&b), "{} {}", a, b);
            } else {
                // Every pre-release key sorts before every stable key.
                prop_assert_eq!(ka < kb, !a.pre.is_empty());
            }
        }

        #[test]
        fn a_version_is_inside_exactly_the_scopes_that_cover_it(v in version()) {
            let k = key(&v);
            let inside = |s| { let (low, high) = bounds(s); low <= k && k <= high };
            let stable = v.pre.is_empty();
            prop_assert_eq!(inside(Scope::Stable), stable);
            prop_assert_eq!(inside(Scope::PreRelease), !stable);
            for major in 0..4 {
                prop_assert_eq!(inside(Scope::Major(major)), stable && v.major == major);
                for minor in 0..4 {
                    prop_assert_eq!(inside(Scope::Minor(major, minor)), stable && v.major == major && v.minor == minor);
                }
            }
        }
    }

    #[test]
    fn the_spec_example_sorts_in_order() {
        let order = [
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-alpha.beta",
            "1.0.0-beta",
            "1.0.0-beta.2",
            "1.0.0-beta.11",
            "1.0.0-rc.1",
        ];
        let keys: Vec<Vec<u8>> = order
            .iter()
            .map(|v| key(&Version::parse(v).unwrap()))
            .collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]));
    }
}
