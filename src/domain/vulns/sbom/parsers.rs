//! The package databases an image's file system holds, each read as its own tool writes it:
//! dpkg's status file (and distroless `status.d/`), apk's installed database, Python's
//! `METADATA`/`PKG-INFO`, npm's lockfile and installed `package.json`s, Cargo's lockfile,
//! Maven's `pom.properties`, and `os-release`.

use super::{Kind, Os, Package};

/// Which parser a path needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    DpkgStatus,
    DpkgStatusD,
    ApkInstalled,
    OsRelease,
    PythonMetadata,
    NpmLock,
    NpmPackage,
    CargoLock,
    PomProperties,
    RpmSqlite,
}

/// What one file said.
pub enum Found {
    Packages(Vec<Package>),
    Os(Os),
}

/// The parser `path` (no leading `/`) needs, when it holds a package database.
#[must_use]
pub fn interesting(path: &str) -> Option<FileKind> {
    let name = path.rsplit('/').next().unwrap_or(path);
    let parent = path
        .rsplit_once('/')
        .map_or("", |(dir, _)| dir)
        .rsplit('/')
        .next()
        .unwrap_or("");
    Some(match name {
        _ if path == "var/lib/dpkg/status" => FileKind::DpkgStatus,
        _ if path.starts_with("var/lib/dpkg/status.d/") && !name.contains('.') => {
            FileKind::DpkgStatusD
        }
        _ if path == "lib/apk/db/installed" => FileKind::ApkInstalled,
        _ if path == "var/lib/rpm/rpmdb.sqlite" || path == "usr/lib/sysimage/rpm/rpmdb.sqlite" => {
            FileKind::RpmSqlite
        }
        _ if path == "etc/os-release" || path == "usr/lib/os-release" => FileKind::OsRelease,
        "METADATA" if parent.ends_with(".dist-info") => FileKind::PythonMetadata,
        "PKG-INFO" if parent.ends_with(".egg-info") => FileKind::PythonMetadata,
        _ if name.ends_with(".egg-info") => FileKind::PythonMetadata,
        "package-lock.json" | ".package-lock.json" => FileKind::NpmLock,
        "package.json" if installed_npm(path) => FileKind::NpmPackage,
        "Cargo.lock" => FileKind::CargoLock,
        "pom.properties" if path.contains("META-INF/maven/") => FileKind::PomProperties,
        _ => return None,
    })
}

/// Whether `path` is `…/node_modules/NAME/package.json` or `…/node_modules/@SCOPE/NAME/package.json`.
fn installed_npm(path: &str) -> bool {
    let parts: Vec<&str> = path.rsplit('/').take(4).collect();
    match parts.as_slice() {
        [_, _, "node_modules", ..] => true,
        [_, _, scope, "node_modules"] => scope.starts_with('@'),
        _ => false,
    }
}

/// Parses one file; `None` when it holds nothing semdock can read.
#[must_use]
pub fn parse(kind: FileKind, path: &str, bytes: &[u8]) -> Option<Found> {
    let text = String::from_utf8_lossy(bytes);
    let packages = match kind {
        FileKind::OsRelease => return os_release(&text).map(Found::Os),
        FileKind::DpkgStatus => dpkg(&text, path, true),
        FileKind::DpkgStatusD => dpkg(&text, path, false),
        FileKind::ApkInstalled => apk(&text, path),
        FileKind::PythonMetadata => python(&text, path).into_iter().collect(),
        FileKind::NpmLock => npm_lock(bytes, path),
        FileKind::NpmPackage => npm_package(bytes, path).into_iter().collect(),
        FileKind::CargoLock => cargo_lock(&text, path),
        FileKind::PomProperties => super::jars::pom(&text, path).into_iter().collect(),
        FileKind::RpmSqlite => super::rpm::packages(bytes, path).unwrap_or_else(|e| {
            tracing::warn!(path, error = %e, "an RPM database could not be read");
            Vec::new()
        }),
    };
    (!packages.is_empty()).then_some(Found::Packages(packages))
}

fn package(kind: Kind, name: &str, version: &str, path: &str) -> Package {
    Package {
        kind,
        name: name.to_owned(),
        version: version.to_owned(),
        source: None,
        source_version: None,
        arch: None,
        path: path.to_owned(),
    }
}

/// RFC 822-style paragraphs, continuation lines folded away.
fn paragraphs(text: &str) -> impl Iterator<Item = Vec<(&str, &str)>> {
    text.split("\n\n").map(|p| {
        p.lines()
            .filter(|l| !l.starts_with([' ', '\t']))
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim(), v.trim()))
            .collect()
    })
}

fn field<'a>(p: &[(&'a str, &'a str)], name: &str) -> Option<&'a str> {
    p.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| *v)
}

fn dpkg(text: &str, path: &str, needs_status: bool) -> Vec<Package> {
    paragraphs(text)
        .filter_map(|p| {
            let name = field(&p, "Package")?;
            let version = field(&p, "Version")?;
            if needs_status && !field(&p, "Status").is_some_and(|s| s.ends_with(" installed")) {
                return None;
            }
            let mut found = package(Kind::Deb, name, version, path);
            found.arch = field(&p, "Architecture").map(str::to_owned);
            if let Some(source) = field(&p, "Source") {
                // "glibc" or "zlib (1:1.2.13.dfsg-1)": the source's version when it differs.
                let (name, version) = match source.split_once('(') {
                    Some((n, v)) => (n.trim(), Some(v.trim_end_matches(')').trim())),
                    None => (source, None),
                };
                found.source = Some(name.to_owned());
                found.source_version = version.map(str::to_owned);
            }
            Some(found)
        })
        .collect()
}

fn apk(text: &str, path: &str) -> Vec<Package> {
    text.split("\n\n")
        .filter_map(|p| {
            let get = |key: &str| {
                p.lines()
                    .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix(':')))
            };
            let mut found = package(Kind::Apk, get("P")?, get("V")?, path);
            found.arch = get("A").map(str::to_owned);
            found.source = get("o").map(str::to_owned);
            Some(found)
        })
        .collect()
}

fn os_release(text: &str) -> Option<Os> {
    let get = |key: &str| {
        text.lines().find_map(|l| {
            let v = l.strip_prefix(key)?.strip_prefix('=')?;
            Some(v.trim().trim_matches(['"', '\'']).to_owned())
        })
    };
    Some(Os {
        id: get("ID")?,
        version_id: get("VERSION_ID").unwrap_or_default(),
        pretty_name: get("PRETTY_NAME"),
    })
}

fn python(text: &str, path: &str) -> Option<Package> {
    // The header ends at the first blank line; the description follows.
    let header = text.split("\n\n").next().unwrap_or_default();
    let p: Vec<(&str, &str)> = header
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim(), v.trim()))
        .collect();
    Some(package(
        Kind::Python,
        field(&p, "Name")?,
        field(&p, "Version")?,
        path,
    ))
}

fn npm_lock(bytes: &[u8], path: &str) -> Vec<Package> {
    let Ok(lock) = serde_json::from_slice::<serde_json::Value>(bytes) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if let Some(packages) = lock.get("packages").and_then(|p| p.as_object()) {
        // Lockfile v2 and v3: "node_modules/a/node_modules/@s/b" → the last name.
        for (key, entry) in packages {
            let Some(at) = key.rfind("node_modules/") else {
                continue;
            };
            let name = entry
                .get("name")
                .and_then(|n| n.as_str())
                .unwrap_or(&key[at + "node_modules/".len()..]);
            if entry.get("link").and_then(serde_json::Value::as_bool) == Some(true) {
                continue;
            }
            if let Some(version) = entry.get("version").and_then(|v| v.as_str()) {
                out.push(package(Kind::Npm, name, version, path));
            }
        }
    } else if let Some(deps) = lock.get("dependencies") {
        npm_lock_v1(deps, path, &mut out);
    }
    out
}

fn npm_lock_v1(deps: &serde_json::Value, path: &str, out: &mut Vec<Package>) {
    let Some(deps) = deps.as_object() else {
        return;
    };
    for (name, entry) in deps {
        if let Some(version) = entry.get("version").and_then(|v| v.as_str()) {
            out.push(package(Kind::Npm, name, version, path));
        }
        if let Some(nested) = entry.get("dependencies") {
            npm_lock_v1(nested, path, out);
        }
    }
}

fn npm_package(bytes: &[u8], path: &str) -> Option<Package> {
    let manifest: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    Some(package(
        Kind::Npm,
        manifest.get("name")?.as_str()?,
        manifest.get("version")?.as_str()?,
        path,
    ))
}

fn cargo_lock(text: &str, path: &str) -> Vec<Package> {
    #[derive(serde::Deserialize)]
    struct Lock {
        #[serde(default)]
        package: Vec<Entry>,
    }
    #[derive(serde::Deserialize)]
    struct Entry {
        name: String,
        version: String,
        source: Option<String>,
    }
    let Ok(lock) = toml::from_str::<Lock>(text) else {
        return Vec::new();
    };
    lock.package
        .into_iter()
        // Crates without a source are the workspace's own, not published ones.
        .filter(|e| {
            e.source
                .as_deref()
                .is_some_and(|s| s.starts_with("registry+"))
        })
        .map(|e| package(Kind::Cargo, &e.name, &e.version, path))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_told_apart() {
        assert_eq!(
            interesting("var/lib/dpkg/status"),
            Some(FileKind::DpkgStatus)
        );
        assert_eq!(
            interesting("var/lib/dpkg/status.d/base"),
            Some(FileKind::DpkgStatusD)
        );
        assert_eq!(interesting("var/lib/dpkg/status.d/base.md5sums"), None);
        assert_eq!(
            interesting("usr/lib/python3.11/site-packages/pip-23.0.dist-info/METADATA"),
            Some(FileKind::PythonMetadata)
        );
        assert_eq!(
            interesting("app/node_modules/@types/node/package.json"),
            Some(FileKind::NpmPackage)
        );
        assert_eq!(interesting("app/node_modules/a/lib/package.json"), None);
        assert_eq!(interesting("app/package.json"), None);
        assert_eq!(interesting("usr/bin/ls"), None);
    }

    #[test]
    fn lockfiles_of_npm_v1_and_v3_and_cargo() {
        let v3 = br#"{"lockfileVersion":3,"packages":{"":{"name":"app"},
            "node_modules/jose":{"version":"4.15.9"},
            "node_modules/a/node_modules/@panva/hkdf":{"version":"1.2.1"},
            "node_modules/linked":{"link":true}}}"#;
        let found: Vec<_> = npm_lock(v3, "p")
            .into_iter()
            .map(|p| (p.name, p.version))
            .collect();
        assert_eq!(
            found,
            [
                ("@panva/hkdf".into(), "1.2.1".into()),
                ("jose".to_owned(), "4.15.9".to_owned())
            ]
        );
        let v1 = br#"{"lockfileVersion":1,"dependencies":{"a":{"version":"1.0.0","dependencies":{"b":{"version":"2.0.0"}}}}}"#;
        assert_eq!(npm_lock(v1, "p").len(), 2);
        let cargo = "version = 3\n[[package]]\nname = \"app\"\nversion = \"0.1.0\"\n\n[[package]]\nname = \"smallvec\"\nversion = \"1.6.0\"\nsource = \"registry+https://github.com/rust-lang/crates.io-index\"\n";
        let crates = cargo_lock(cargo, "p");
        assert_eq!(crates.len(), 1);
        assert_eq!(
            (crates[0].name.as_str(), crates[0].version.as_str()),
            ("smallvec", "1.6.0")
        );
    }

    #[test]
    fn apk_database_and_pom_properties() {
        let db =
            "C:Q1abc=\nP:musl\nV:1.2.4-r2\nA:x86_64\no:musl\n\nP:busybox\nV:1.36.1-r5\nA:x86_64\n";
        let found = apk(db, "lib/apk/db/installed");
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].source.as_deref(), Some("musl"));
        let pom = super::super::jars::pom(
            "#Generated by Maven\ngroupId=org.apache.logging.log4j\nartifactId=log4j-core\nversion=2.14.1\n",
            "p",
        )
        .unwrap();
        assert_eq!(pom.name, "org.apache.logging.log4j:log4j-core");
    }
}
