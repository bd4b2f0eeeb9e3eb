//! Executables in a layer that name what they were built from: Go programs (their build
//! information, `gobinary`) and Rust programs built with `cargo auditable` (the
//! zlib-compressed JSON dependency list in their `.dep-v0` ELF section). An ELF file is
//! copied to a private temporary file — its section table is at its end — and read from
//! there, so memory stays bounded whatever its size.

use std::io::{self, BufReader, Read, Seek, Write};

use super::jars::Spool;
use super::{Kind, Package, gobinary};

/// The largest dependency list read (decompressed).
const MAX_DEPS: u64 = 16 << 20;

/// The packages executable `entry` (at `path`) names; nothing for a file that is no ELF.
pub fn scan(entry: &mut impl Read, path: &str) -> io::Result<Vec<Package>> {
    let mut head = [0u8; 4];
    let mut got = 0;
    while got < head.len() {
        match entry.read(&mut head[got..])? {
            0 => return Ok(Vec::new()),
            n => got += n,
        }
    }
    if &head != b"\x7fELF" {
        return Ok(Vec::new());
    }
    let mut spool = Spool::new()?;
    spool.file.write_all(&head)?;
    io::copy(entry, &mut spool.file)?;
    spool.file.rewind()?;
    let mut found = gobinary::scan(BufReader::new(&spool.file), path)?;
    spool.file.rewind()?;
    found.extend(auditable(&spool.file, path));
    Ok(found)
}

/// `cargo auditable`'s dependency list (the fields read).
#[derive(serde::Deserialize)]
struct Deps {
    packages: Vec<Dep>,
}

#[derive(serde::Deserialize)]
struct Dep {
    name: String,
    version: String,
    source: String,
}

/// The crates.io packages `cargo auditable` recorded in `file`'s `.dep-v0` section.
fn auditable(file: &std::fs::File, path: &str) -> Vec<Package> {
    use object::{Object as _, ObjectSection as _};
    let cache = object::read::ReadCache::new(file);
    let Ok(elf) = object::File::parse(&cache) else {
        return Vec::new();
    };
    let Some(data) = elf.section_by_name(".dep-v0").and_then(|s| s.data().ok()) else {
        return Vec::new();
    };
    let mut json = Vec::new();
    if flate2::read::ZlibDecoder::new(data)
        .take(MAX_DEPS)
        .read_to_end(&mut json)
        .is_err()
    {
        return Vec::new();
    }
    let Ok(deps) = serde_json::from_slice::<Deps>(&json) else {
        return Vec::new();
    };
    deps.packages
        .into_iter()
        // Local crates (the program's own) are in no advisory database.
        .filter(|d| d.source == "crates.io" || d.source == "registry")
        .map(|d| Package {
            kind: Kind::Cargo,
            name: d.name,
            version: d.version,
            source: None,
            source_version: None,
            arch: None,
            path: path.to_owned(),
        })
        .collect()
}
