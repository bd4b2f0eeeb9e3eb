//! RPM's package database as rpm 4.16 and later keep it: SQLite (`rpmdb.sqlite`), one row
//! per package holding the package's header blob. The database is opened from memory
//! (`rusqlite`'s deserialisation: no file is written) and each header read by the layout
//! of rpm's header format: an index of (tag, type, offset, count) entries over a data
//! store. The older Berkeley DB (`Packages`, RHEL 7 and 8) and NDB (`Packages.db`, SUSE)
//! formats are not read.

use super::{Kind, Package};

const NAME: u32 = 1000;
const VERSION: u32 = 1001;
const RELEASE: u32 = 1002;
const EPOCH: u32 = 1003;
const ARCH: u32 = 1022;
const SOURCERPM: u32 = 1044;

const INT32: u32 = 4;
const STRING: u32 = 6;

/// The packages of `rpmdb.sqlite` (its bytes), or why it could not be read.
pub fn packages(bytes: &[u8], path: &str) -> Result<Vec<Package>, String> {
    let mut copy = bytes.to_vec();
    // A database in WAL mode cannot be opened from memory; its header says so in bytes
    // 18 and 19 (format versions 2), and legacy mode (1) reads the same pages.
    if copy.len() > 19 && copy[18] == 2 && copy[19] == 2 {
        copy[18] = 1;
        copy[19] = 1;
    }
    let mut db = rusqlite::Connection::open_in_memory().map_err(|e| e.to_string())?;
    let len = copy.len();
    db.deserialize_read_exact(rusqlite::MAIN_DB, &copy[..], len, true)
        .map_err(|e| e.to_string())?;
    let mut query = db
        .prepare("SELECT blob FROM Packages")
        .map_err(|e| e.to_string())?;
    let rows = query
        .query_map([], |row| row.get::<_, Vec<u8>>(0))
        .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for blob in rows {
        let blob = blob.map_err(|e| e.to_string())?;
        if let Some(p) = header(&blob, path)
            && p.name != "gpg-pubkey"
        {
            out.push(p);
        }
    }
    Ok(out)
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// One package from its header blob.
fn header(blob: &[u8], path: &str) -> Option<Package> {
    let entries = usize::try_from(be32(blob, 0)?).ok()?;
    let data_len = usize::try_from(be32(blob, 4)?).ok()?;
    let store_at = 8usize.checked_add(entries.checked_mul(16)?)?;
    let store = blob.get(store_at..store_at.checked_add(data_len)?)?;
    let mut found: [Option<String>; 6] = Default::default();
    for i in 0..entries {
        let at = 8 + i * 16;
        let (tag, kind, offset) = (be32(blob, at)?, be32(blob, at + 4)?, be32(blob, at + 8)?);
        let slot = match tag {
            NAME => 0,
            VERSION => 1,
            RELEASE => 2,
            EPOCH => 3,
            ARCH => 4,
            SOURCERPM => 5,
            _ => continue,
        };
        let offset = usize::try_from(offset).ok()?;
        found[slot] = match kind {
            STRING => {
                let s = store.get(offset..)?;
                let end = s.iter().position(|&c| c == 0)?;
                Some(String::from_utf8_lossy(&s[..end]).into_owned())
            }
            INT32 => Some(be32(store, offset)?.to_string()),
            _ => None,
        };
    }
    let [name, version, release, epoch, arch, source] = found;
    let (name, version) = (name?, version?);
    let mut evr = match epoch.filter(|e| e != "0") {
        Some(e) => format!("{e}:{version}"),
        None => version,
    };
    if let Some(r) = release {
        evr = format!("{evr}-{r}");
    }
    Some(Package {
        kind: Kind::Rpm,
        name,
        version: evr,
        // "glibc-2.34-60.el9.src.rpm" → "glibc".
        source: source.and_then(|s| {
            let stem = s.strip_suffix(".src.rpm")?;
            let (rest, _release) = stem.rsplit_once('-')?;
            let (name, _version) = rest.rsplit_once('-')?;
            Some(name.to_owned())
        }),
        source_version: None,
        arch,
        path: path.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A header blob with the given string and int32 entries, as rpm lays one out.
    fn blob(strings: &[(u32, &str)], epoch: Option<u32>) -> Vec<u8> {
        let mut index = Vec::new();
        let mut store = Vec::new();
        let mut n = 0u32;
        if let Some(e) = epoch {
            for v in [EPOCH, INT32, u32::try_from(store.len()).unwrap(), 1] {
                index.extend(v.to_be_bytes());
            }
            store.extend(e.to_be_bytes());
            n += 1;
        }
        for (tag, s) in strings {
            for v in [*tag, STRING, u32::try_from(store.len()).unwrap(), 1] {
                index.extend(v.to_be_bytes());
            }
            store.extend(s.as_bytes());
            store.push(0);
            n += 1;
        }
        let mut out = n.to_be_bytes().to_vec();
        out.extend(u32::try_from(store.len()).unwrap().to_be_bytes());
        out.extend(index);
        out.extend(store);
        out
    }

    #[test]
    fn a_header_gives_name_evr_arch_and_source() {
        let b = blob(
            &[
                (NAME, "openssl-libs"),
                (VERSION, "3.0.7"),
                (RELEASE, "24.el9"),
                (ARCH, "x86_64"),
                (SOURCERPM, "openssl-3.0.7-24.el9.src.rpm"),
            ],
            Some(1),
        );
        let p = header(&b, "var/lib/rpm/rpmdb.sqlite").unwrap();
        assert_eq!(p.name, "openssl-libs");
        assert_eq!(p.version, "1:3.0.7-24.el9");
        assert_eq!(p.arch.as_deref(), Some("x86_64"));
        assert_eq!(p.source.as_deref(), Some("openssl"));
        assert!(
            header(&b[..20], "p").is_none(),
            "a cut header is no package"
        );
    }
}
