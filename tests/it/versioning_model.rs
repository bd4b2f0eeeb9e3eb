//! Property test: random pushes, deletes (by tag and by digest), purges and promotions against
//! a versioned repository; after each step the virtual tags — kept incrementally from the
//! version index — equal those of a naive model computed from scratch.

use crate::common;

use std::collections::BTreeMap;

use proptest::prelude::*;
use semdock::domain::{FeedChange, Promotion};
use semdock::model::{Reference, Repository, Tag};
use semver::Version;

const VERSIONS: [&str; 12] = [
    "1.0.0",
    "1.0.1",
    "1.1.0-rc.1",
    "1.1.0",
    "2.0.0-beta.1",
    "0.9.9",
    "1.0.10",
    "3.0.0-rc.1",
    "3.0.0-rc.10",
    "3.0.0",
    "1.1.0-rc.1.1",
    "0.9.9-alpha",
];

#[derive(Debug, Clone)]
enum Op {
    Push { version: usize, image: usize },
    Delete { version: usize },
    Promote { version: usize, image: usize },
    DeleteDigest { image: usize },
    Purge { version: usize, confirm: bool },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..VERSIONS.len(), 0..4usize).prop_map(|(version, image)| Op::Push { version, image }),
        1 => (0..VERSIONS.len()).prop_map(|version| Op::Delete { version }),
        1 => (0..VERSIONS.len(), 0..4usize).prop_map(|(version, image)| Op::Promote { version, image }),
        1 => (0..4usize).prop_map(|image| Op::DeleteDigest { image }),
        1 => (0..VERSIONS.len(), any::<bool>()).prop_map(|(version, confirm)| Op::Purge { version, confirm }),
    ]
}

/// The virtual tags from scratch: highest stable for latest, MAJOR and MAJOR.MINOR; the
/// highest pre-release for latest when nothing is stable.
fn naive(live: &BTreeMap<&str, String>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let versions: Vec<(Version, &String)> = live
        .iter()
        .map(|(v, d)| (Version::parse(v).unwrap(), d))
        .collect();
    let best = |keep: &dyn Fn(&Version) -> bool| {
        versions
            .iter()
            .filter(|(v, _)| keep(v))
            .max_by(|a, b| a.0.cmp(&b.0))
            .map(|(_, d)| (*d).clone())
    };
    if let Some(d) = best(&|v| v.pre.is_empty()).or_else(|| best(&|_| true)) {
        out.insert("latest".to_owned(), d);
    }
    for (v, _) in &versions {
        if v.pre.is_empty() {
            let (major, minor) = (v.major, v.minor);
            out.insert(
                major.to_string(),
                best(&|w| w.pre.is_empty() && w.major == major).unwrap(),
            );
            out.insert(
                format!("{major}.{minor}"),
                best(&|w| w.pre.is_empty() && w.major == major && w.minor == minor).unwrap(),
            );
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn virtual_tags_always_match_a_model_computed_from_scratch(ops in proptest::collection::vec(op(), 1..40)) {
        let dir = tempfile::tempdir().unwrap();
        let s = semdock::server::open_embedded(dir.path(), common::LIMITS, common::tokens(), true).unwrap();
        for feed in ["ci", "prod"] {
            s.registry.feeds().ensure(&feed.parse().unwrap()).unwrap();
        }
        s.registry.feeds().update("prod", FeedChange { versioning: Some(true), ..Default::default() }, "test").unwrap();
        let prod: Repository = "prod/app".parse().unwrap();
        let ci: Repository = "ci/app".parse().unwrap();
        // Four distinct images, each in both repositories by digest.
        let mut images = Vec::new();
        for i in 0..4u8 {
            let config = semdock::model::Digest::of(&[i]);
            for repo in [&prod, &ci] {
                let id = s.registry.uploads().start(repo, "user:admin", semdock::model::Algorithm::Sha256).unwrap();
                let mut a = s.registry.uploads().append(repo, &id, None).unwrap();
                a.write(&[i]).unwrap();
                s.registry.uploads().complete(a, &config).unwrap();
            }
            let body = serde_json::json!({"schemaVersion": 2, "mediaType": common::OCI_MANIFEST,
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config.as_str(), "size": 1}, "layers": []}).to_string();
            let digest = semdock::model::Digest::of(body.as_bytes());
            for repo in [&prod, &ci] {
                s.registry.put_manifest(repo, &Reference::Digest(digest.clone()), &[], Some(common::OCI_MANIFEST), body.as_bytes(), "test").unwrap();
            }
            images.push((digest, body));
        }
        // The model: live versions, and tombstones that keep numbers taken.
        let mut live: BTreeMap<&str, String> = BTreeMap::new();
        let mut tombs: BTreeMap<&str, String> = BTreeMap::new();
        // Which images have a manifest in prod (a delete by digest removes it).
        let mut present = [true; 4];
        for op in ops {
            match op {
                Op::Push { version, image } | Op::Promote { version, image } => {
                    let v = VERSIONS[version];
                    let digest = images[image].0.to_string();
                    let kept = live.get(v).or(tombs.get(v));
                    let allowed = kept.is_none_or(|k| *k == digest);
                    let tag: Tag = v.parse().unwrap();
                    let result = if matches!(op, Op::Push { .. }) {
                        s.registry.put_manifest(&prod, &Reference::Tag(tag), &[], Some(common::OCI_MANIFEST), images[image].1.as_bytes(), "test").map(drop)
                    } else {
                        s.registry.history().promote(&Promotion { from: &ci, from_ref: &Reference::Digest(images[image].0.clone()), to: &prod, to_tag: &tag, expected: None, include_referrers: false, actor: "test", comment: None }).map(drop)
                    };
                    prop_assert_eq!(result.is_ok(), allowed, "{:?} {}", op, v);
                    if allowed {
                        live.insert(v, digest);
                        tombs.remove(v);
                        present[image] = true;
                    }
                }
                Op::Delete { version } => {
                    let v = VERSIONS[version];
                    let tag: Tag = v.parse().unwrap();
                    let result = s.registry.delete_manifest(&prod, &Reference::Tag(tag), "test");
                    prop_assert_eq!(result.is_ok(), live.contains_key(v));
                    if let Some(d) = live.remove(v) {
                        tombs.insert(v, d);
                    }
                }
                Op::DeleteDigest { image } => {
                    let (digest, _) = &images[image];
                    let result = s.registry.delete_manifest(&prod, &Reference::Digest(digest.clone()), "test");
                    prop_assert_eq!(result.is_ok(), present[image], "{:?}", op);
                    present[image] = false;
                    let gone: Vec<&str> = live.iter().filter(|(_, d)| **d == digest.to_string()).map(|(v, _)| *v).collect();
                    for v in gone {
                        tombs.insert(v, live.remove(v).unwrap());
                    }
                }
                Op::Purge { version, confirm } => {
                    let v = VERSIONS[version];
                    let tag: Tag = v.parse().unwrap();
                    let result = s.registry.purge(&prod, &tag, "admin", confirm.then_some(v));
                    let allowed = if live.contains_key(v) { confirm } else { tombs.contains_key(v) };
                    prop_assert_eq!(result.is_ok(), allowed, "{:?} {:?}", op, result);
                    if allowed {
                        live.remove(v);
                        tombs.remove(v);
                    }
                }
            }
            let groups = s.registry.history().tag_groups(&prod, &semdock::domain::TagQuery::default()).unwrap();
            let actual: BTreeMap<String, String> = groups.virtual_tags.iter().map(|t| (t.tag.clone(), t.digest.clone())).collect();
            prop_assert_eq!(actual, naive(&live));
            let versions: BTreeMap<&str, String> = groups.versions.iter().map(|t| (VERSIONS.iter().find(|v| **v == t.tag).copied().unwrap(), t.digest.clone())).collect();
            prop_assert_eq!(versions, live.clone());
        }
    }
}
