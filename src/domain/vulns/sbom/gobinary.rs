//! The build information Go (1.18 and later) writes into every executable: the Go version
//! (the standard library's, as OSV names it: package `stdlib`), the main module and every
//! dependency module with its version. It sits in the `.go.buildinfo` section, behind the
//! 16-byte-aligned magic `\xff Go buildinf:`; the reader finds it in one streaming pass
//! over the file, keeping a bounded window, so a binary of any size costs the same memory.

use std::io::{self, Read};

use super::{Kind, Package};

const MAGIC: &[u8; 14] = b"\xff Go buildinf:";
/// Bytes kept after the magic for the two strings (module lists of large programs are tens
/// of KiB).
const INFO: usize = 512 << 10;
const CHUNK: usize = 64 << 10;

/// The Go modules of the executable `file` (at `path`), when it is a Go binary of the
/// inline format (Go 1.18+); nothing for anything else.
pub fn scan(mut file: impl Read, path: &str) -> io::Result<Vec<Package>> {
    let mut data: Vec<u8> = Vec::with_capacity(CHUNK * 2);
    let mut base = 0usize; // file offset of data[0]
    let mut eof = fill(&mut file, &mut data, CHUNK)?;
    if !data.starts_with(b"\x7fELF") {
        return Ok(Vec::new());
    }
    loop {
        // Only 16-byte-aligned offsets can hold the magic.
        let first = (16 - base % 16) % 16;
        let found = (first..data.len().saturating_sub(MAGIC.len() - 1))
            .step_by(16)
            .find(|&i| data[i] == 0xff && data[i..].starts_with(MAGIC));
        if let Some(at) = found {
            while data.len() - at < INFO && !eof {
                eof = fill(&mut file, &mut data, CHUNK)?;
            }
            return Ok(parse(&data[at..], path));
        }
        if eof {
            return Ok(Vec::new());
        }
        // Keep the unsearched tail (an aligned magic may straddle the boundary).
        let keep = data.len().min(MAGIC.len() + 16);
        let drop = data.len() - keep;
        data.drain(..drop);
        base += drop;
        eof = fill(&mut file, &mut data, CHUNK)?;
    }
}

/// Appends up to `n` bytes; says whether the file ended.
fn fill(file: &mut impl Read, data: &mut Vec<u8>, n: usize) -> io::Result<bool> {
    let start = data.len();
    data.resize(start + n, 0);
    let mut got = 0;
    while got < n {
        match file.read(&mut data[start + got..])? {
            0 => {
                data.truncate(start + got);
                return Ok(true);
            }
            k => got += k,
        }
    }
    Ok(false)
}

fn uvarint(b: &[u8], mut p: usize) -> Option<(usize, usize)> {
    let mut x: usize = 0;
    let mut shift = 0;
    loop {
        let c = *b.get(p)?;
        p += 1;
        x |= usize::from(c & 0x7f).checked_shl(shift)?;
        if c < 0x80 {
            return Some((x, p));
        }
        shift += 7;
        if shift > 63 {
            return None;
        }
    }
}

fn string_at(b: &[u8], p: usize) -> Option<(&[u8], usize)> {
    let (n, p) = uvarint(b, p)?;
    let end = p.checked_add(n)?;
    Some((b.get(p..end)?, end))
}

/// Reads the build information that starts with the magic at `b[0]`.
fn parse(b: &[u8], path: &str) -> Vec<Package> {
    // Byte 15 holds flags; bit 2 says the strings follow inline at offset 32.
    if b.len() < 32 || b[15] & 2 == 0 {
        return Vec::new();
    }
    let Some((version, p)) = string_at(b, 32) else {
        return Vec::new();
    };
    let Some((modinfo, _)) = string_at(b, p) else {
        return Vec::new();
    };
    // The module list is framed by 16 sentinel bytes on each side.
    let modinfo = if modinfo.len() >= 33 && modinfo[modinfo.len() - 17] == b'\n' {
        &modinfo[16..modinfo.len() - 16]
    } else {
        modinfo
    };
    let go = |name: &str, version: &str| Package {
        kind: Kind::Go,
        name: name.to_owned(),
        version: version.to_owned(),
        source: None,
        source_version: None,
        arch: None,
        path: path.to_owned(),
    };
    let mut out = Vec::new();
    let version = String::from_utf8_lossy(version);
    if let Some(v) = version
        .split_whitespace()
        .next()
        .and_then(|v| v.strip_prefix("go"))
    {
        out.push(go("stdlib", v));
    }
    for line in String::from_utf8_lossy(modinfo).lines() {
        let fields: Vec<&str> = line.split('\t').collect();
        match fields.as_slice() {
            ["mod" | "dep", module, version, ..] if *version != "(devel)" => {
                out.push(go(module, version));
            }
            ["=>", module, version, ..] => {
                // Replaces the dependency before it.
                if let Some(last) = out.last_mut()
                    && last.name != "stdlib"
                {
                    *last = go(module, version);
                }
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A build information blob as the Go linker lays it out.
    fn blob(version: &str, modinfo: &str) -> Vec<u8> {
        let mut b = MAGIC.to_vec();
        b.extend([8, 2]);
        b.resize(32, 0);
        let push = |b: &mut Vec<u8>, s: &[u8]| {
            let mut n = s.len();
            while n >= 0x80 {
                b.push(u8::try_from(n & 0x7f).unwrap() | 0x80);
                n >>= 7;
            }
            b.push(u8::try_from(n).unwrap());
            b.extend_from_slice(s);
        };
        push(&mut b, version.as_bytes());
        let mut framed = vec![0x30; 16];
        framed.extend_from_slice(modinfo.as_bytes());
        framed.extend([0x31; 16]);
        push(&mut b, &framed);
        b
    }

    #[test]
    fn modules_and_the_go_version_are_read_past_any_chunk_boundary() {
        let info = "path\texample.com/app\nmod\texample.com/app\t(devel)\t\ndep\tgolang.org/x/net\tv0.7.0\th1:x=\ndep\tgithub.com/a/b\tv1.0.0\th1:y=\n=>\tgithub.com/fork/b\tv1.0.1\th1:z=\nbuild\t-compiler=gc\n";
        let mut file = b"\x7fELF".to_vec();
        // The magic lands at an aligned offset past the first chunks.
        file.resize(3 * CHUNK + 48, 0x90);
        file.extend(blob("go1.21.4", info));
        file.extend(vec![0u8; 1000]);
        let found = scan(&file[..], "usr/bin/app").unwrap();
        let names: Vec<(&str, &str)> = found
            .iter()
            .map(|p| (p.name.as_str(), p.version.as_str()))
            .collect();
        assert_eq!(
            names,
            [
                ("stdlib", "1.21.4"),
                ("golang.org/x/net", "v0.7.0"),
                ("github.com/fork/b", "v1.0.1")
            ]
        );
        assert!(scan(&b"#!/bin/sh\necho"[..], "x").unwrap().is_empty());
        let mut unaligned = b"\x7fELF".to_vec();
        unaligned.resize(40, 0);
        unaligned.extend(blob("go1.21.4", info));
        assert!(
            scan(&unaligned[..], "x").unwrap().is_empty(),
            "the magic is 16-byte aligned"
        );
    }
}
