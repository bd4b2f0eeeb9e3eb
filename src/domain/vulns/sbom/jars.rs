//! Java archives in a layer (`.jar`, `.war`, `.ear`): the Maven coordinates in their
//! `META-INF/maven/GROUP/ARTIFACT/pom.properties`, and those of the archives they bundle
//! (Spring Boot's `BOOT-INF/lib/`, a war's `WEB-INF/lib/`), one level deep. A zip is read
//! from its end, so an archive is copied to a temporary file first — memory stays bounded
//! whatever its size; a bundled archive (small, and usually stored) is read from memory.

use std::io::{self, Read, Seek};

use super::{Kind, Package};

/// The largest archive read (larger ones are skipped with a warning).
pub const MAX_ARCHIVE: u64 = 1 << 30;
/// The largest bundled archive read into memory.
const MAX_NESTED: u64 = 32 << 20;

/// Whether `path` names a Java archive.
#[must_use]
pub fn is_archive(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    [".jar", ".war", ".ear"].iter().any(|e| lower.ends_with(e))
}

/// The Maven packages of the archive `entry` (at `path`), read through a temporary file.
pub fn scan(entry: &mut impl Read, path: &str) -> io::Result<Vec<Package>> {
    let mut spool = Spool::new()?;
    io::copy(entry, &mut spool.file)?;
    spool.file.rewind()?;
    Ok(archive(&mut spool.file, path, true))
}

/// A private temporary file, removed when dropped.
pub(super) struct Spool {
    path: std::path::PathBuf,
    pub(super) file: std::fs::File,
}

impl Spool {
    pub(super) fn new() -> io::Result<Self> {
        let path = std::env::temp_dir().join(format!("semdock-jar-{}", uuid::Uuid::new_v4()));
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)?;
        Ok(Self { path, file })
    }
}

impl Drop for Spool {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The packages of one archive; its bundled archives too when `nested`.
fn archive(file: &mut (impl Read + Seek), path: &str, nested: bool) -> Vec<Package> {
    let Ok(mut zip) = zip::ZipArchive::new(file) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut bundled = Vec::new();
    for i in 0..zip.len() {
        let Ok(mut entry) = zip.by_index(i) else {
            continue;
        };
        let name = entry.name().to_owned();
        if name.starts_with("META-INF/maven/") && name.ends_with("/pom.properties") {
            let mut text = String::new();
            if entry
                .by_ref()
                .take(64 << 10)
                .read_to_string(&mut text)
                .is_ok()
                && let Some(p) = pom(&text, path)
            {
                out.push(p);
            }
        } else if nested && is_archive(&name) && entry.size() <= MAX_NESTED {
            bundled.push(i);
        }
    }
    for i in bundled {
        let Ok(mut entry) = zip.by_index(i) else {
            continue;
        };
        let inner = format!("{path}!/{}", entry.name());
        let mut bytes = Vec::new();
        if entry.read_to_end(&mut bytes).is_ok() {
            out.extend(archive(&mut io::Cursor::new(bytes), &inner, false));
        }
    }
    out
}

/// A `pom.properties`: `groupId`, `artifactId` and `version`.
#[must_use]
pub fn pom(text: &str, path: &str) -> Option<Package> {
    let get = |key: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(key)?.trim_start().strip_prefix('='))
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    Some(Package {
        kind: Kind::Maven,
        name: format!("{}:{}", get("groupId")?, get("artifactId")?),
        version: get("version")?.to_owned(),
        source: None,
        source_version: None,
        arch: None,
        path: path.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::*;

    fn jar(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut zip = zip::ZipWriter::new(io::Cursor::new(Vec::new()));
        for (name, body) in files {
            zip.start_file(*name, zip::write::SimpleFileOptions::default())
                .unwrap();
            zip.write_all(body).unwrap();
        }
        zip.finish().unwrap().into_inner()
    }

    #[test]
    fn a_fat_jar_names_itself_and_what_it_bundles() {
        let inner = jar(&[(
            "META-INF/maven/org.yaml/snakeyaml/pom.properties",
            b"groupId=org.yaml\nartifactId=snakeyaml\nversion=1.33\n",
        )]);
        let outer = jar(&[
            ("META-INF/MANIFEST.MF", b"Manifest-Version: 1.0\n"),
            (
                "META-INF/maven/com.example/app/pom.properties",
                b"#Generated\ngroupId=com.example\nartifactId=app\nversion=2.0.1\n",
            ),
            ("BOOT-INF/lib/snakeyaml-1.33.jar", &inner),
        ]);
        let found = scan(&mut &outer[..], "srv/app.jar").unwrap();
        let names: Vec<(&str, &str, &str)> = found
            .iter()
            .map(|p| (p.name.as_str(), p.version.as_str(), p.path.as_str()))
            .collect();
        assert_eq!(
            names,
            [
                ("com.example:app", "2.0.1", "srv/app.jar"),
                (
                    "org.yaml:snakeyaml",
                    "1.33",
                    "srv/app.jar!/BOOT-INF/lib/snakeyaml-1.33.jar"
                )
            ]
        );
        assert!(scan(&mut &b"not a zip"[..], "x.jar").unwrap().is_empty());
    }
}
