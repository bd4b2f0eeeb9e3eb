//! One streaming pass over an image's layers, bottom to top: each layer is decompressed
//! (gzip or zstd, told by its first bytes) and read as a tar stream once; only the files a
//! package database lives in are read into memory (each at most `MAX_FILE`), parsed at once,
//! and kept as the packages they list, by path. A later layer's file replaces an earlier
//! one's; its whiteouts (`.wh.NAME`) remove what lay below, its opaque directories
//! (`.wh..wh..opq`) everything below them — so memory grows with the packages found, never
//! with the size of a layer.

use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, Read};

use super::parsers::{self, Found};
use super::{Os, Package};

/// The largest package database file read (a Debian status file of 3,000 packages is ~6 MiB).
const MAX_FILE: u64 = 64 << 20;

/// What the layers below hold, by path (no leading `/`).
#[derive(Default)]
pub struct Tree {
    packages: BTreeMap<String, Vec<Package>>,
    os: BTreeMap<String, Os>,
}

/// What one layer changes.
#[derive(Default)]
struct LayerChanges {
    removed: Vec<String>,
    opaque: Vec<String>,
    found: Vec<(String, Found)>,
}

impl Tree {
    /// Applies one layer (compressed or not) on top of the ones before.
    pub fn apply(&mut self, layer: impl Read) -> io::Result<()> {
        let mut input = BufReader::with_capacity(256 << 10, layer);
        let head = input.fill_buf()?;
        let changes = if head.starts_with(&[0x1f, 0x8b]) {
            read_tar(flate2::read::MultiGzDecoder::new(input))?
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            read_tar(zstd::stream::read::Decoder::with_buffer(input)?)?
        } else {
            read_tar(input)?
        };
        let below = |path: &str, dir: &str| {
            path == dir || (path.starts_with(dir) && path.as_bytes().get(dir.len()) == Some(&b'/'))
        };
        for gone in changes.removed.iter().chain(&changes.opaque) {
            let opaque = changes.opaque.contains(gone);
            self.packages
                .retain(|path, _| !(below(path, gone) && (!opaque || path != gone)));
            self.os.retain(|path, _| !below(path, gone));
        }
        for (path, found) in changes.found {
            match found {
                Found::Packages(p) => {
                    self.packages.insert(path, p);
                }
                Found::Os(os) => {
                    self.os.insert(path, os);
                }
            }
        }
        Ok(())
    }

    /// The packages of the whole file system, and its OS (`etc/os-release`, else
    /// `usr/lib/os-release`).
    #[must_use]
    pub fn finish(self) -> (Option<Os>, Vec<Package>) {
        let mut os = self.os;
        let os = os
            .remove("etc/os-release")
            .or_else(|| os.remove("usr/lib/os-release"));
        let mut packages: Vec<Package> = self.packages.into_values().flatten().collect();
        packages.sort_by(|a, b| {
            (a.kind, &a.name, &a.version, &a.path).cmp(&(b.kind, &b.name, &b.version, &b.path))
        });
        packages.dedup_by(|a, b| a.kind == b.kind && a.name == b.name && a.version == b.version);
        (os, packages)
    }
}

fn read_tar(stream: impl Read) -> io::Result<LayerChanges> {
    let mut archive = tar::Archive::new(stream);
    let mut changes = LayerChanges::default();
    for entry in archive.entries()? {
        let mut entry = entry?;
        let path = entry.path()?.to_string_lossy().into_owned();
        let path = path.trim_start_matches("./").trim_start_matches('/');
        let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
        if name == ".wh..wh..opq" {
            changes.opaque.push(dir.to_owned());
            continue;
        }
        if let Some(hidden) = name.strip_prefix(".wh.") {
            changes.removed.push(if dir.is_empty() {
                hidden.to_owned()
            } else {
                format!("{dir}/{hidden}")
            });
            continue;
        }
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let Some(kind) = parsers::interesting(path) else {
            let size = entry.header().size().unwrap_or(0);
            let mode = entry.header().mode().unwrap_or(0);
            if super::jars::is_archive(path) && size <= super::jars::MAX_ARCHIVE {
                // A Java archive names its Maven coordinates (and those it bundles).
                let path = path.to_owned();
                let found = super::jars::scan(&mut entry, &path)?;
                if !found.is_empty() {
                    changes.found.push((path, Found::Packages(found)));
                }
            } else if mode & 0o111 != 0 && size > 1024 {
                // An executable may name what it was built from (Go, cargo auditable).
                let path = path.to_owned();
                let modules = super::executables::scan(&mut entry, &path)?;
                if !modules.is_empty() {
                    changes.found.push((path, Found::Packages(modules)));
                }
            }
            continue;
        };
        let size = entry.header().size()?;
        if size > MAX_FILE {
            tracing::warn!(
                path,
                size,
                "a package database larger than 64 MiB was skipped"
            );
            continue;
        }
        let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
        entry.read_to_end(&mut bytes)?;
        let path = path.to_owned();
        if let Some(found) = parsers::parse(kind, &path, &bytes) {
            changes.found.push((path, found));
        }
    }
    Ok(changes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::vulns::sbom::Kind;

    fn layer(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (path, body) in files {
            let mut header = tar::Header::new_gnu();
            header.set_size(body.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            builder.append_data(&mut header, path, *body).unwrap();
        }
        builder.into_inner().unwrap()
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    }

    const STATUS: &[u8] = b"Package: libc6\nStatus: install ok installed\nArchitecture: amd64\nSource: glibc\nVersion: 2.36-9+deb12u4\n\nPackage: zlib1g\nStatus: install ok installed\nArchitecture: amd64\nSource: zlib (1:1.2.13.dfsg-1)\nVersion: 1:1.2.13.dfsg-1\n\nPackage: gone\nStatus: deinstall ok config-files\nVersion: 1\n";

    #[test]
    fn whiteouts_remove_what_lay_below_and_later_files_replace() {
        let mut tree = Tree::default();
        tree.apply(
            &gzip(&layer(&[
                ("var/lib/dpkg/status", STATUS),
                ("etc/os-release", b"ID=debian\nVERSION_ID=\"12\"\n"),
                (
                    "usr/lib/python3/dist-packages/six-1.16.0.dist-info/METADATA",
                    b"Metadata-Version: 2.1\nName: six\nVersion: 1.16.0\n",
                ),
                (
                    "app/node_modules/left-pad/package.json",
                    br#"{"name":"left-pad","version":"1.3.0"}"#,
                ),
            ]))[..],
        )
        .unwrap();
        let zstd_layer = zstd::encode_all(
            &layer(&[
                (
                    "usr/lib/python3/dist-packages/.wh.six-1.16.0.dist-info",
                    b"",
                ),
                ("app/node_modules/.wh..wh..opq", b""),
            ])[..],
            1,
        )
        .unwrap();
        tree.apply(&zstd_layer[..]).unwrap();
        let (os, packages) = tree.finish();
        let os = os.unwrap();
        assert_eq!((os.id.as_str(), os.version_id.as_str()), ("debian", "12"));
        let names: Vec<_> = packages.iter().map(|p| (p.kind, p.name.as_str())).collect();
        assert_eq!(names, [(Kind::Deb, "libc6"), (Kind::Deb, "zlib1g")]);
        let zlib = &packages[1];
        assert_eq!(zlib.source.as_deref(), Some("zlib"));
        assert_eq!(zlib.source_version.as_deref(), Some("1:1.2.13.dfsg-1"));
    }
}
