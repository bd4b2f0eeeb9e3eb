//! Holds the layering of STYLE.md by reading the sources: `http → domain → store → model`,
//! never backwards (an allow-list per layer of what it may import); the domain never sees
//! actix; HTTP never opens a transaction or the disk.

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

#[test]
fn management_api_and_ui_reach_the_domain_only_through_access_handles() {
    // Handlers get an `Access` (or a `Viewer` holding one) and call operations on the handles
    // it hands out after checking rights; holding the registry, or checking rights by hand,
    // is what let holes through before.
    for dir in ["http/api", "http/ui"] {
        assert_none(
            dir,
            &[
                "domain::Registry",
                "Registry}",
                "Registry,",
                "Registry>",
                ".require(",
                "require_admin",
                "auth.caps(",
                "pullable_feeds",
            ],
        );
    }
    assert_none("http/api", &["web::Data<Auth>", "AuthData"]);
}

#[test]
fn every_repository_handler_of_the_distribution_api_is_authorized_by_its_extractor() {
    // The three endpoints outside a repository authenticate the caller themselves.
    let outside = ["fn base(", "fn token(", "fn catalog(", "fn with_auth<"];
    let handler =
        regex::Regex::new(r"pub async fn [a-z_]+(?:<[^>]*>)?\(([^)]*(?:\([^)]*\)[^)]*)*)\)")
            .unwrap();
    let mut seen = 0;
    for (file, text) in sources("http/oci") {
        for c in handler.captures_iter(&text) {
            let whole = &c[0];
            if outside.iter().any(|o| whole.contains(o)) {
                continue;
            }
            seen += 1;
            assert!(
                c[1].contains("Authorized"),
                "{file}: {whole} takes no Authorized<_> extractor"
            );
        }
    }
    assert!(seen >= 12, "found only {seen} repository handlers");
}

/// The `crate::` paths a file names, to their first two segments (`crate::store::meta`),
/// grouped imports (`use crate::{server, telemetry}`) included.
fn crate_paths(text: &str) -> Vec<String> {
    let single = regex::Regex::new(r"crate::([a-z_]+)(?:::([a-z_]+))?").unwrap();
    let group = regex::Regex::new(r"crate::\{([^}]*)\}").unwrap();
    let mut out = Vec::new();
    for c in group.captures_iter(text) {
        for item in c[1].split(',') {
            let mut parts = item.trim().split("::");
            if let Some(first) = parts.next().filter(|f| !f.is_empty()) {
                let second = parts
                    .next()
                    .filter(|s| s.chars().all(|c| c.is_ascii_lowercase() || c == '_'));
                out.push(second.map_or_else(|| first.to_owned(), |s| format!("{first}::{s}")));
            }
        }
    }
    for c in single.captures_iter(text) {
        out.push(
            c.get(2)
                .map_or_else(|| c[1].to_owned(), |s| format!("{}::{}", &c[1], s.as_str())),
        );
    }
    out
}

/// What each layer may import from the crate, as path prefixes: anything else is a
/// layering error (`http → domain → store/clients → model`, never backwards).
const ALLOWED: &[(&str, &[&str])] = &[
    ("model", &["model"]),
    ("store", &["model", "store", "metrics"]),
    ("clients", &["model", "clients", "metrics"]),
    (
        "domain",
        &["model", "store", "clients", "domain", "metrics"],
    ),
    ("http", &["model", "domain", "http", "metrics"]),
    // The CLI is the binary's front: the API's DTOs for its remote half, the composition
    // root (`server`) and configuration for its local half, and the one store helper that
    // makes private files.
    (
        "cli",
        &[
            "model",
            "domain",
            "http::api",
            "config",
            "server",
            "telemetry",
            "store::owner_only",
            "store::meta",
        ],
    ),
];

#[test]
fn each_layer_imports_only_what_its_allow_list_names() {
    for (layer, allowed) in ALLOWED {
        for (file, text) in sources(layer) {
            for path in crate_paths(&text) {
                assert!(
                    allowed
                        .iter()
                        .any(|a| path == *a || path.starts_with(&format!("{a}::"))),
                    "{file} names crate::{path}, which layer {layer} may not (allowed: {allowed:?})"
                );
            }
        }
    }
}

/// Every setting is a typed, versioned record: only the store's `settings` module (and the
/// engines below it) touch a setting's bytes.
#[test]
fn only_the_store_reads_or_writes_the_bytes_of_a_setting() {
    for layer in ["domain", "http", "cli"] {
        assert_none(
            layer,
            &[
                ".setting(",
                "put_setting(",
                "remove_setting(",
                "settings_under(",
            ],
        );
    }
}

/// The engines and the outbound clients are opened where the server wires the process
/// (`server.rs`); the domain, the HTTP layer and the CLI receive them open. The one
/// exception is backup and restore, which read and write the embedded format of a backup
/// directory whatever engines the registry runs on.
#[test]
fn engines_and_clients_are_opened_only_by_the_server() {
    let opens = [
        "RedbMeta::open",
        "PgMeta::connect",
        "PgMeta::open",
        "FsBlobs::open",
        "S3Blobs::open",
        "Oidc::new",
        "Ldap::new",
    ];
    for (path, text) in sources("") {
        let file = path.rsplit_once("/src/").map_or(path.as_str(), |(_, f)| f);
        let allowed = file.starts_with("store/")
            || file.starts_with("clients/")
            || file == "server.rs"
            || file == "domain/maintenance/backup.rs";
        if allowed {
            continue;
        }
        let code = text.split("#[cfg(test)]").next().unwrap_or(&text);
        for open in opens {
            assert!(
                !code.contains(open),
                "src/{file} opens an engine or client ({open}): only server.rs does"
            );
        }
    }
}
