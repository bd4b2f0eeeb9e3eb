//! Holds the layering of STYLE.md by reading the sources: `http → domain → store → model`,
//! never backwards; the domain never sees actix; HTTP never opens a transaction or the disk.

use std::path::Path;

fn sources(dir: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut stack = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("src").join(dir)];
    while let Some(path) = stack.pop() {
        if path.is_dir() {
            for entry in std::fs::read_dir(&path).unwrap() {
                stack.push(entry.unwrap().path());
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push((
                path.display().to_string(),
                std::fs::read_to_string(&path).unwrap(),
            ));
        }
    }
    assert!(!out.is_empty(), "no sources under src/{dir}");
    out
}

fn assert_none(dir: &str, forbidden: &[&str]) {
    for (file, text) in sources(dir) {
        for needle in forbidden {
            assert!(
                !text.contains(needle),
                "{file} uses {needle:?}, which its layer must not"
            );
        }
    }
}

#[test]
fn model_depends_on_nothing_above_it() {
    assert_none(
        "model",
        &[
            "crate::store",
            "crate::domain",
            "crate::http",
            "actix",
            "redb",
            "std::fs",
        ],
    );
}

#[test]
fn store_knows_nothing_of_http_or_policy() {
    assert_none("store", &["crate::domain", "crate::http", "actix_"]);
}

#[test]
fn domain_never_sees_actix_or_http() {
    assert_none("domain", &["crate::http", "actix_", "askama::"]);
}

#[test]
fn http_never_opens_transactions_or_files() {
    assert_none(
        "http",
        &[
            "redb",
            "std::fs",
            "crate::store::meta",
            "crate::store::blobs",
            "File::open",
        ],
    );
}

#[test]
fn no_grab_bag_modules() {
    for (file, _) in sources("") {
        for name in ["utils.rs", "helpers.rs", "misc.rs"] {
            assert!(!file.ends_with(name), "{file}: name files for what they do");
        }
    }
}
