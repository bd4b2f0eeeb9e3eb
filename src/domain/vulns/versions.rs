//! Each ecosystem's own order of versions: what "fixed in 2.36-9+deb12u4" means depends on
//! who numbered it. dpkg (Debian, Ubuntu), apk (Alpine), RPM (Red Hat and its kin), PEP 440
//! (PyPI), SemVer (npm, crates.io, Go) and Maven each have rules of their own; a comparison
//! by the wrong rules says a fixed package is vulnerable, or the reverse.

use std::cmp::Ordering;

/// The version order a package's ecosystem uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    Dpkg,
    Apk,
    Rpm,
    Pep440,
    SemVer,
    Maven,
    /// Digits as numbers, everything else as text: for ecosystems without rules here.
    Generic,
}

impl Order {
    /// The order of an OSV ecosystem (`Debian:12`, `Alpine:v3.19`, `PyPI`, …).
    #[must_use]
    pub fn of_ecosystem(ecosystem: &str) -> Self {
        let base = ecosystem.split(':').next().unwrap_or(ecosystem);
        match base {
            "Debian" | "Ubuntu" => Self::Dpkg,
            "Alpine" | "Wolfi" | "Chainguard" => Self::Apk,
            "Red Hat" | "Rocky Linux" | "AlmaLinux" | "openSUSE" | "SUSE" | "Mageia"
            | "openEuler" => Self::Rpm,
            "PyPI" => Self::Pep440,
            "npm" | "crates.io" | "Go" | "Packagist" | "NuGet" | "Hex" | "Pub" => Self::SemVer,
            "Maven" => Self::Maven,
            _ => Self::Generic,
        }
    }

    /// Compares two versions by this order.
    #[must_use]
    pub fn compare(self, a: &str, b: &str) -> Ordering {
        match self {
            Self::Dpkg => dpkg(a, b),
            Self::Apk => apk(a, b),
            Self::Rpm => rpm(a, b),
            Self::Pep440 => pep440(a, b),
            Self::SemVer => semver(a, b),
            Self::Maven => maven(a, b),
            Self::Generic => generic(a, b),
        }
    }
}

// ---- dpkg: [epoch:]upstream[-revision] ----

/// dpkg's order (deb-version(7)): the epoch as a number, then the upstream version and the
/// revision each by `verrevcmp` — `~` before anything, even the end; letters before other
/// characters; runs of digits as numbers.
#[must_use]
pub fn dpkg(a: &str, b: &str) -> Ordering {
    let (ea, ua, ra) = dpkg_parts(a);
    let (eb, ub, rb) = dpkg_parts(b);
    ea.cmp(&eb)
        .then_with(|| verrevcmp(ua, ub))
        .then_with(|| verrevcmp(ra, rb))
}

fn dpkg_parts(v: &str) -> (u64, &str, &str) {
    let (epoch, rest) = match v.split_once(':') {
        Some((e, rest)) if e.bytes().all(|c| c.is_ascii_digit()) && !e.is_empty() => {
            (e.parse().unwrap_or(u64::MAX), rest)
        }
        _ => (0, v),
    };
    match rest.rsplit_once('-') {
        Some((upstream, revision)) => (epoch, upstream, revision),
        None => (epoch, rest, ""),
    }
}

fn dpkg_weight(c: Option<u8>) -> i32 {
    match c {
        None => 0,
        Some(b'~') => -1,
        Some(c) if c.is_ascii_digit() => 0,
        Some(c) if c.is_ascii_alphabetic() => i32::from(c),
        Some(c) => i32::from(c) + 256,
    }
}

fn verrevcmp(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        while (i < a.len() && !a[i].is_ascii_digit()) || (j < b.len() && !b[j].is_ascii_digit()) {
            let wa = dpkg_weight(a.get(i).copied().filter(|c| !c.is_ascii_digit()));
            let wb = dpkg_weight(b.get(j).copied().filter(|c| !c.is_ascii_digit()));
            if wa != wb {
                return wa.cmp(&wb);
            }
            if i < a.len() && !a[i].is_ascii_digit() {
                i += 1;
            }
            if j < b.len() && !b[j].is_ascii_digit() {
                j += 1;
            }
        }
        let (na, ni) = digits(a, i);
        let (nb, nj) = digits(b, j);
        let by_number = compare_digits(na, nb);
        if by_number != Ordering::Equal {
            return by_number;
        }
        (i, j) = (ni, nj);
    }
    Ordering::Equal
}

/// The run of digits at `from`, and where it ends.
fn digits(s: &[u8], from: usize) -> (&[u8], usize) {
    let end = s[from.min(s.len())..]
        .iter()
        .position(|c| !c.is_ascii_digit())
        .map_or(s.len(), |n| from + n);
    (&s[from.min(s.len())..end], end)
}

/// Two runs of digits as numbers of any length.
fn compare_digits(a: &[u8], b: &[u8]) -> Ordering {
    let a = trim_zeros(a);
    let b = trim_zeros(b);
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

fn trim_zeros(s: &[u8]) -> &[u8] {
    let n = s.iter().take_while(|&&c| c == b'0').count();
    &s[n..]
}

// ---- RPM: [epoch:]version[-release] ----

/// RPM's order (`rpmvercmp` over epoch, version and release): alphanumeric segments, numbers
/// newer than letters, `~` before anything (even the end), `^` after the end but before
/// anything else.
#[must_use]
pub fn rpm(a: &str, b: &str) -> Ordering {
    let (ea, va, ra) = rpm_parts(a);
    let (eb, vb, rb) = rpm_parts(b);
    ea.cmp(&eb)
        .then_with(|| rpmvercmp(va, vb))
        .then_with(|| rpmvercmp(ra, rb))
}

fn rpm_parts(v: &str) -> (u64, &str, &str) {
    let (epoch, rest) = match v.split_once(':') {
        Some((e, rest)) if e.bytes().all(|c| c.is_ascii_digit()) => (e.parse().unwrap_or(0), rest),
        _ => (0, v),
    };
    match rest.rsplit_once('-') {
        Some((version, release)) => (epoch, version, release),
        None => (epoch, rest, ""),
    }
}

#[allow(clippy::many_single_char_names)] // rpm's own names for the two cursors
fn rpmvercmp(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    let separator = |c: u8| !c.is_ascii_alphanumeric() && c != b'~' && c != b'^';
    loop {
        while i < a.len() && separator(a[i]) {
            i += 1;
        }
        while j < b.len() && separator(b[j]) {
            j += 1;
        }
        let (ca, cb) = (a.get(i).copied(), b.get(j).copied());
        if ca == Some(b'~') || cb == Some(b'~') {
            if ca != Some(b'~') {
                return Ordering::Greater;
            }
            if cb != Some(b'~') {
                return Ordering::Less;
            }
            (i, j) = (i + 1, j + 1);
            continue;
        }
        if ca == Some(b'^') || cb == Some(b'^') {
            match (ca, cb) {
                (None, _) => return Ordering::Less,
                (_, None) => return Ordering::Greater,
                (Some(x), _) if x != b'^' => return Ordering::Greater,
                (_, Some(y)) if y != b'^' => return Ordering::Less,
                _ => {}
            }
            (i, j) = (i + 1, j + 1);
            continue;
        }
        let (Some(x), Some(_)) = (ca, cb) else {
            break;
        };
        let numeric = x.is_ascii_digit();
        let take = |s: &[u8], from: usize| {
            let end = s[from..]
                .iter()
                .position(|c| {
                    if numeric {
                        !c.is_ascii_digit()
                    } else {
                        !c.is_ascii_alphabetic()
                    }
                })
                .map_or(s.len(), |n| from + n);
            (from, end)
        };
        let (sa, ea) = take(a, i);
        let (sb, eb) = take(b, j);
        if sb == eb {
            // Segments of different kinds: a number is newer than letters.
            return if numeric {
                Ordering::Greater
            } else {
                Ordering::Less
            };
        }
        let order = if numeric {
            compare_digits(&a[sa..ea], &b[sb..eb])
        } else {
            a[sa..ea].cmp(&b[sb..eb])
        };
        if order != Ordering::Equal {
            return order;
        }
        (i, j) = (ea, eb);
    }
    match (i >= a.len(), j >= b.len()) {
        (true, true) => Ordering::Equal,
        (false, _) => Ordering::Greater,
        (true, false) => Ordering::Less,
    }
}

// ---- apk: digits{.digits}[letter]{_suffix[n]}[-rN] ----

/// apk's order (Alpine's `apk version -t`): dotted numbers (a later part with a leading zero
/// compares as a decimal fraction), then an optional letter, then suffixes — `_alpha`,
/// `_beta`, `_pre`, `_rc` before the plain release; `_cvs`, `_svn`, `_git`, `_hg`, `_p`
/// after it — then the `-rN` package revision.
#[must_use]
pub fn apk(a: &str, b: &str) -> Ordering {
    let pa = ApkVersion::parse(a);
    let pb = ApkVersion::parse(b);
    for k in 0..pa.numbers.len().max(pb.numbers.len()) {
        match (pa.numbers.get(k), pb.numbers.get(k)) {
            (Some(x), Some(y)) => {
                let order = if k > 0 && (x.starts_with('0') || y.starts_with('0')) {
                    // A fraction: "1.02" < "1.1".
                    x.trim_end_matches('0').cmp(y.trim_end_matches('0'))
                } else {
                    compare_digits(x.as_bytes(), y.as_bytes())
                };
                if order != Ordering::Equal {
                    return order;
                }
            }
            (Some(_), None) => return Ordering::Greater,
            (None, Some(_)) => return Ordering::Less,
            (None, None) => {}
        }
    }
    pa.letter
        .cmp(&pb.letter)
        .then_with(|| {
            for k in 0..pa.suffixes.len().max(pb.suffixes.len()) {
                let x = pa.suffixes.get(k).copied().unwrap_or((PLAIN, 0));
                let y = pb.suffixes.get(k).copied().unwrap_or((PLAIN, 0));
                let order = x.cmp(&y);
                if order != Ordering::Equal {
                    return order;
                }
            }
            Ordering::Equal
        })
        .then_with(|| pa.revision.cmp(&pb.revision))
}

/// Where no suffix ranks among the suffixes.
const PLAIN: u8 = 4;

struct ApkVersion<'a> {
    numbers: Vec<&'a str>,
    letter: Option<u8>,
    suffixes: Vec<(u8, u64)>,
    revision: u64,
}

impl<'a> ApkVersion<'a> {
    fn parse(v: &'a str) -> Self {
        let (body, revision) = match v.rsplit_once("-r") {
            Some((body, r)) if r.bytes().all(|c| c.is_ascii_digit()) => {
                (body, r.parse().unwrap_or(0))
            }
            _ => (v, 0),
        };
        let mut parts = body.split('_');
        let head = parts.next().unwrap_or_default();
        let (numbers, letter) = match head.bytes().last() {
            Some(c) if c.is_ascii_alphabetic() => (&head[..head.len() - 1], Some(c)),
            _ => (head, None),
        };
        let suffixes = parts
            .map(|s| {
                let name_end = s
                    .bytes()
                    .position(|c| c.is_ascii_digit())
                    .unwrap_or(s.len());
                let rank = match &s[..name_end] {
                    "alpha" => 0,
                    "beta" => 1,
                    "pre" => 2,
                    "rc" => 3,
                    "cvs" => 5,
                    "svn" => 6,
                    "git" => 7,
                    "hg" => 8,
                    "p" => 9,
                    _ => PLAIN,
                };
                (rank, s[name_end..].parse().unwrap_or(0))
            })
            .collect();
        Self {
            numbers: numbers.split('.').filter(|n| !n.is_empty()).collect(),
            letter,
            suffixes,
            revision,
        }
    }
}

// ---- PEP 440: [N!]N(.N)*[{a|b|rc}N][.postN][.devN][+local] ----

/// PEP 440's order (PyPI): epoch, release (trailing zeros ignored), then a dev release before
/// its pre-releases before the release before its post-releases; spellings normalised
/// (`1.0-alpha1` is `1.0a1`, `1.0-1` is `1.0.post1`).
#[must_use]
pub fn pep440(a: &str, b: &str) -> Ordering {
    match (Pep440::parse(a), Pep440::parse(b)) {
        (Some(x), Some(y)) => x.cmp(&y),
        _ => generic(a, b),
    }
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Pep440 {
    epoch: u64,
    release: Vec<u64>,
    /// (rank, n): a dev-only release is (0, 0); a, b, rc are 1, 2, 3; none is 4.
    pre: (u8, u64),
    /// `None` sorts before any post-release.
    post: Option<u64>,
    /// No dev part sorts after every dev release.
    dev: (u8, u64),
    local: Vec<LocalPart>,
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum LocalPart {
    Text(String),
    Number(u64),
}

impl Pep440 {
    fn parse(v: &str) -> Option<Self> {
        let v = v.trim().to_ascii_lowercase();
        let v = v.strip_prefix('v').unwrap_or(&v);
        let (v, local) = match v.split_once('+') {
            Some((v, l)) => (v, Some(l)),
            None => (v, None),
        };
        let (epoch, rest) = match v.split_once('!') {
            Some((e, rest)) => (e.parse().ok()?, rest),
            None => (0, v),
        };
        let release_end = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(rest.len());
        let mut release: Vec<u64> = rest[..release_end]
            .trim_end_matches('.')
            .split('.')
            .map(str::parse)
            .collect::<Result<_, _>>()
            .ok()?;
        while release.len() > 1 && release.last() == Some(&0) {
            release.pop();
        }
        let mut tail = &rest[release_end..];
        let mut pre = None;
        let mut post = None;
        let mut dev = None;
        while !tail.is_empty() {
            tail = tail.trim_start_matches(['.', '-', '_']);
            let word_end = tail
                .find(|c: char| !c.is_ascii_alphabetic())
                .unwrap_or(tail.len());
            let (word, after) = tail.split_at(word_end);
            let after = after.trim_start_matches(['.', '-', '_']);
            let n_end = after
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(after.len());
            let n: u64 = after[..n_end].parse().unwrap_or(0);
            tail = &after[n_end..];
            match word {
                "a" | "alpha" => pre = Some((1, n)),
                "b" | "beta" => pre = Some((2, n)),
                "c" | "rc" | "pre" | "preview" => pre = Some((3, n)),
                "post" | "rev" | "r" | "" if n_end > 0 => post = Some(n),
                "dev" => dev = Some(n),
                _ => return None,
            }
        }
        let pre = match (pre, post, dev) {
            (Some(p), _, _) => p,
            (None, None, Some(_)) => (0, 0),
            _ => (4, 0),
        };
        let local = local
            .map(|l| {
                l.split(['.', '-', '_'])
                    .map(|p| {
                        p.parse()
                            .map_or_else(|_| LocalPart::Text(p.to_owned()), LocalPart::Number)
                    })
                    .collect()
            })
            .unwrap_or_default();
        Some(Self {
            epoch,
            release,
            pre,
            post,
            dev: dev.map_or((1, 0), |n| (0, n)),
            local,
        })
    }
}

// ---- SemVer ----

/// SemVer 2.0's order (npm, crates.io, Go): pre-releases before their release, build
/// metadata ignored; a leading `v` and missing minor or patch numbers are accepted.
#[must_use]
pub fn semver(a: &str, b: &str) -> Ordering {
    match (lenient_semver(a), lenient_semver(b)) {
        (Some(x), Some(y)) => x.cmp_precedence(&y),
        _ => generic(a, b),
    }
}

fn lenient_semver(v: &str) -> Option<semver::Version> {
    let v = v.trim().trim_start_matches('v');
    if let Ok(parsed) = semver::Version::parse(v) {
        return Some(parsed);
    }
    let split = v.find(['-', '+']).unwrap_or(v.len());
    let (core, rest) = v.split_at(split);
    let dots = core.matches('.').count();
    let padded = match dots {
        0 => format!("{core}.0.0{rest}"),
        1 => format!("{core}.0{rest}"),
        _ => return None,
    };
    semver::Version::parse(&padded).ok()
}

// ---- Maven ----

/// Maven's order (`ComparableVersion`): items split at `.`, `-` and changes between digits
/// and letters; numbers compare as numbers; the qualifiers `alpha` < `beta` < `milestone` <
/// `rc` < `snapshot` < the release (`""`, `ga`, `final`, `release`) < `sp`, other words after
/// those, by text; trailing zeros and release words are ignored.
#[must_use]
pub fn maven(a: &str, b: &str) -> Ordering {
    let ia = maven_items(a);
    let ib = maven_items(b);
    for k in 0..ia.len().max(ib.len()) {
        let order = match (ia.get(k), ib.get(k)) {
            (Some(x), Some(y)) => x.cmp(y),
            (Some(x), None) => x.against_nothing(),
            (None, Some(y)) => y.against_nothing().reverse(),
            (None, None) => Ordering::Equal,
        };
        if order != Ordering::Equal {
            return order;
        }
    }
    Ordering::Equal
}

const RELEASE: u8 = 5;

/// Words sort before numbers: `1-rc1` < `1.0` < `1.0.1`.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum MavenItem {
    Word(u8, String),
    Number(u64),
}

impl MavenItem {
    /// This item against a missing one, which is a zero or the release.
    fn against_nothing(&self) -> Ordering {
        match self {
            Self::Number(n) => n.cmp(&0),
            Self::Word(rank, _) => rank.cmp(&RELEASE),
        }
    }
}

fn maven_items(v: &str) -> Vec<MavenItem> {
    let v = v.trim().to_ascii_lowercase();
    let mut items = Vec::new();
    let mut current = String::new();
    let flush = |current: &mut String, items: &mut Vec<MavenItem>| {
        if current.is_empty() {
            return;
        }
        let item = if current.bytes().all(|c| c.is_ascii_digit()) {
            MavenItem::Number(current.parse().unwrap_or(u64::MAX))
        } else {
            let rank = match current.as_str() {
                "alpha" | "a" => 0,
                "beta" | "b" => 1,
                "milestone" | "m" => 2,
                "rc" | "cr" => 3,
                "snapshot" => 4,
                "ga" | "final" | "release" => RELEASE,
                "sp" => 6,
                _ => 7,
            };
            MavenItem::Word(rank, current.clone())
        };
        items.push(item);
        current.clear();
    };
    for c in v.chars() {
        if c == '.' || c == '-' || c == '_' {
            flush(&mut current, &mut items);
        } else {
            if let Some(last) = current.chars().last()
                && last.is_ascii_digit() != c.is_ascii_digit()
            {
                flush(&mut current, &mut items);
            }
            current.push(c);
        }
    }
    flush(&mut current, &mut items);
    for item in &mut items {
        if let MavenItem::Word(rank, word) = item
            && *rank == RELEASE
        {
            word.clear();
        }
    }
    while matches!(
        items.last(),
        Some(MavenItem::Number(0) | MavenItem::Word(RELEASE, _))
    ) {
        items.pop();
    }
    items
}

// ---- everything else ----

/// Runs of digits as numbers, the rest as text.
#[must_use]
pub fn generic(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        if a[i].is_ascii_digit() && b[j].is_ascii_digit() {
            let (na, ni) = digits(a, i);
            let (nb, nj) = digits(b, j);
            let order = compare_digits(na, nb);
            if order != Ordering::Equal {
                return order;
            }
            (i, j) = (ni, nj);
        } else {
            if a[i] != b[j] {
                return a[i].cmp(&b[j]);
            }
            (i, j) = (i + 1, j + 1);
        }
    }
    (a.len() - i).cmp(&(b.len() - j))
}

#[cfg(test)]
mod tests {
    use super::*;
    use Ordering::{Equal, Greater, Less};

    fn check(order: Order, cases: &[(&str, &str, Ordering)]) {
        for (a, b, want) in cases {
            assert_eq!(order.compare(a, b), *want, "{order:?}: {a} vs {b}");
            assert_eq!(order.compare(b, a), want.reverse(), "{order:?}: {b} vs {a}");
        }
    }

    #[test]
    fn dpkg_orders_epochs_tildes_and_revisions() {
        check(
            Order::Dpkg,
            &[
                ("1.0", "1.0", Equal),
                ("1:1.0", "2.0", Greater),
                ("1.0~rc1", "1.0", Less),
                ("1.0~~", "1.0~", Less),
                ("1.0", "1.0+b1", Less),
                ("2.36-9", "2.36-9+deb12u4", Less),
                ("2.36-9+deb12u4", "2.36-10", Less),
                ("1.2.10", "1.2.9", Greater),
                ("1.0a", "1.0-", Greater),
                ("1.0-1", "1.0", Greater),
                ("0:1.0", "1.0", Equal),
                ("3.0.11-1~deb12u2", "3.0.11-1", Less),
                ("7.88.1-10+deb12u5", "7.88.1-10+deb12u12", Less),
            ],
        );
    }

    #[test]
    fn rpm_orders_evr_tilde_and_caret() {
        check(
            Order::Rpm,
            &[
                ("1.0-1", "1.0-1", Equal),
                ("1:1.0-1", "2.0-1", Greater),
                ("1.0~rc1-1", "1.0-1", Less),
                ("1.0^git1-1", "1.0-1", Greater),
                ("1.0^git1-1", "1.0.1-1", Less),
                ("1.0a-1", "1.0-1", Greater),
                ("1.0.10-1", "1.0.9-1", Greater),
                ("2.28-225.el9", "2.28-225.el9_3", Less),
                ("1.0-1.el9", "1.0-2.el9", Less),
                ("1.a", "1.1", Less),
            ],
        );
    }

    #[test]
    fn apk_orders_suffixes_letters_and_revisions() {
        check(
            Order::Apk,
            &[
                ("1.2.3-r0", "1.2.3-r1", Less),
                ("1.2.3_rc1-r0", "1.2.3-r0", Less),
                ("1.2.3_alpha", "1.2.3_beta", Less),
                ("1.2.3_p1-r0", "1.2.3-r5", Greater),
                ("1.2.3a", "1.2.3", Greater),
                ("1.2.3a", "1.2.4", Less),
                ("1.2.10", "1.2.9", Greater),
                ("1.2", "1.2.1", Less),
                ("3.1.4-r5", "3.1.4-r5", Equal),
                ("1.02", "1.1", Less),
            ],
        );
    }

    #[test]
    fn pep440_orders_dev_pre_post_and_normalises() {
        check(
            Order::Pep440,
            &[
                ("1.0", "1.0.0", Equal),
                ("1.0.dev1", "1.0a1", Less),
                ("1.0a1", "1.0b1", Less),
                ("1.0rc1", "1.0", Less),
                ("1.0", "1.0.post1", Less),
                ("1.0-alpha1", "1.0a1", Equal),
                ("1.0-1", "1.0.post1", Equal),
                ("1!0.1", "2.0", Greater),
                ("2.31.0", "2.32.0", Less),
                ("1.0a1.dev1", "1.0a1", Less),
                ("1.0+local.1", "1.0", Greater),
            ],
        );
    }

    #[test]
    fn semver_orders_pre_releases_and_ignores_build() {
        check(
            Order::SemVer,
            &[
                ("1.0.0-alpha", "1.0.0", Less),
                ("1.0.0-alpha.1", "1.0.0-alpha.beta", Less),
                ("1.0.0-rc.1", "1.0.0-beta.11", Greater),
                ("1.0.0+build5", "1.0.0", Equal),
                ("v1.2.3", "1.2.3", Equal),
                ("1.2", "1.2.0", Equal),
                ("4.17.20", "4.17.21", Less),
            ],
        );
    }

    #[test]
    fn maven_orders_qualifiers() {
        check(
            Order::Maven,
            &[
                ("1.0", "1", Equal),
                ("1.0.0-ga", "1", Equal),
                ("1.0-alpha-1", "1.0", Less),
                ("1.0-rc1", "1.0", Less),
                ("1.0-SNAPSHOT", "1.0", Less),
                ("1.0-rc1", "1.0-SNAPSHOT", Less),
                ("1.0-sp1", "1.0", Greater),
                ("2.14.1", "2.15.0", Less),
                ("2.17.0", "2.3.1", Greater),
                ("1.0.1", "1.0-sp", Greater),
            ],
        );
    }
}
