//! The records of the settings table. Every setting belongs to one `Family`, named by a
//! prefix (`webhook:`, `feed-epoch:`) or by its whole name (`audit-seq`), and its value is
//! versioned like a table's record: one version byte, then the body in the family's
//! `Codec`; a newer body format raises the codec's `VERSION` and teaches its `decode` the
//! versions before. Nothing outside this module reads or writes a setting's bytes (a test
//! in `tests/it/architecture.rs` holds the domain to it), so a value that cannot be decoded
//! is an error that names the setting, never a default and never skipped.

use std::marker::PhantomData;

use serde::{Serialize, de::DeserializeOwned};

use super::{MetaError, MetaRead, MetaWrite};

/// How the bodies of a family's values are encoded, and how older versions are read.
pub trait Codec {
    type Value;
    /// The version this release writes.
    const VERSION: u8;
    /// The body of `value` at `VERSION`.
    fn encode(value: &Self::Value) -> Result<Vec<u8>, String>;
    /// Reads a body of `version` (at most `VERSION`; earlier versions upgrade here).
    fn decode(version: u8, body: &[u8]) -> Result<Self::Value, String>;
}

/// Version 1: the value as JSON (records whose serde shape is also an API's, with
/// attributes that skip fields, which a positional encoding cannot round-trip).
pub struct Json<T>(PhantomData<fn() -> T>);

impl<T: Serialize + DeserializeOwned> Codec for Json<T> {
    type Value = T;
    const VERSION: u8 = 1;

    fn encode(value: &T) -> Result<Vec<u8>, String> {
        serde_json::to_vec(value).map_err(|e| e.to_string())
    }

    fn decode(_: u8, body: &[u8]) -> Result<T, String> {
        serde_json::from_slice(body).map_err(|e| e.to_string())
    }
}

/// Version 1: the value as JSON, compressed with zstd: for large records (an image's SBOM
/// of a thousand packages, every advisory of a much-patched package), which compress ~10:1.
pub struct ZstdJson<T>(PhantomData<fn() -> T>);

impl<T: Serialize + DeserializeOwned> Codec for ZstdJson<T> {
    type Value = T;
    const VERSION: u8 = 1;

    fn encode(value: &T) -> Result<Vec<u8>, String> {
        let json = serde_json::to_vec(value).map_err(|e| e.to_string())?;
        zstd::encode_all(&json[..], 3).map_err(|e| e.to_string())
    }

    fn decode(_: u8, body: &[u8]) -> Result<T, String> {
        let json = zstd::decode_all(body).map_err(|e| e.to_string())?;
        serde_json::from_slice(&json).map_err(|e| e.to_string())
    }
}

/// Version 1: the value encoded with postcard.
pub struct Postcard<T>(PhantomData<fn() -> T>);

impl<T: Serialize + DeserializeOwned> Codec for Postcard<T> {
    type Value = T;
    const VERSION: u8 = 1;

    fn encode(value: &T) -> Result<Vec<u8>, String> {
        postcard::to_stdvec(value).map_err(|e| e.to_string())
    }

    fn decode(_: u8, body: &[u8]) -> Result<T, String> {
        postcard::from_bytes(body).map_err(|e| e.to_string())
    }
}

fn eight(body: &[u8]) -> Result<[u8; 8], String> {
    <[u8; 8]>::try_from(body).map_err(|_| format!("{} bytes where 8 belong", body.len()))
}

/// A counter numbering an append-only table. Version 1: eight bytes, big-endian.
pub struct Counter;

impl Codec for Counter {
    type Value = u64;
    const VERSION: u8 = 1;

    fn encode(value: &u64) -> Result<Vec<u8>, String> {
        Ok(value.to_be_bytes().to_vec())
    }

    fn decode(_: u8, body: &[u8]) -> Result<u64, String> {
        eight(body).map(u64::from_be_bytes)
    }
}

/// A credential epoch, moved to void what was issued before. Version 1: eight bytes,
/// little-endian (as epochs were first written).
pub struct Epoch;

impl Codec for Epoch {
    type Value = u64;
    const VERSION: u8 = 1;

    fn encode(value: &u64) -> Result<Vec<u8>, String> {
        Ok(value.to_le_bytes().to_vec())
    }

    fn decode(_: u8, body: &[u8]) -> Result<u64, String> {
        eight(body).map(u64::from_le_bytes)
    }
}

/// Version 1: the bytes as they are (a random key).
pub struct Bytes;

impl Codec for Bytes {
    type Value = Vec<u8>;
    const VERSION: u8 = 1;

    fn encode(value: &Vec<u8>) -> Result<Vec<u8>, String> {
        Ok(value.clone())
    }

    fn decode(_: u8, body: &[u8]) -> Result<Vec<u8>, String> {
        Ok(body.to_vec())
    }
}

/// Version 1: UTF-8 text.
pub struct Text;

impl Codec for Text {
    type Value = String;
    const VERSION: u8 = 1;

    fn encode(value: &String) -> Result<Vec<u8>, String> {
        Ok(value.as_bytes().to_vec())
    }

    fn decode(_: u8, body: &[u8]) -> Result<String, String> {
        String::from_utf8(body.to_vec()).map_err(|e| e.to_string())
    }
}

/// That something was done once (a migration): the setting's presence is the record. Its
/// body is empty (markers written before settings were versioned carry one byte).
pub struct Marker;

impl Codec for Marker {
    type Value = ();
    const VERSION: u8 = 1;

    fn encode((): &()) -> Result<Vec<u8>, String> {
        Ok(Vec::new())
    }

    fn decode(_: u8, _: &[u8]) -> Result<(), String> {
        Ok(())
    }
}

/// One family of settings: which names it owns and how their values read.
pub struct Family<C> {
    /// The prefix of its names, or its one whole name.
    name: &'static str,
    /// Whether `name` is a prefix followed by a key.
    keyed: bool,
    /// What one value is, for error messages ("webhook endpoint").
    what: &'static str,
    codec: PhantomData<fn() -> C>,
}

impl<C: Codec> Family<C> {
    /// The settings named `prefix` followed by a key.
    #[must_use]
    pub const fn keyed(prefix: &'static str, what: &'static str) -> Self {
        Self {
            name: prefix,
            keyed: true,
            what,
            codec: PhantomData,
        }
    }

    /// The one setting named `name`.
    #[must_use]
    pub const fn single(name: &'static str, what: &'static str) -> Self {
        Self {
            name,
            keyed: false,
            what,
            codec: PhantomData,
        }
    }

    /// The prefix of its names, or its one whole name.
    #[must_use]
    pub const fn name(&self) -> &'static str {
        self.name
    }

    fn full(&self, key: &str) -> String {
        if self.keyed {
            format!("{}{key}", self.name)
        } else {
            self.name.to_owned()
        }
    }

    /// The value stored under `key` (ignored by a single setting).
    pub fn get(
        &self,
        r: &(impl MetaRead + ?Sized),
        key: &str,
    ) -> Result<Option<C::Value>, MetaError> {
        let name = self.full(key);
        r.setting(&name)?
            .map(|bytes| decode::<C>(&name, self.what, &bytes))
            .transpose()
    }

    /// Whether a value is stored under `key`, without decoding it.
    pub fn exists(&self, r: &(impl MetaRead + ?Sized), key: &str) -> Result<bool, MetaError> {
        Ok(r.setting(&self.full(key))?.is_some())
    }

    pub fn put(
        &self,
        w: &mut (impl MetaWrite + ?Sized),
        key: &str,
        value: &C::Value,
    ) -> Result<(), MetaError> {
        let name = self.full(key);
        w.put_setting(&name, &encode::<C>(&name, self.what, value)?)
    }

    pub fn remove(&self, w: &mut (impl MetaWrite + ?Sized), key: &str) -> Result<(), MetaError> {
        w.remove_setting(&self.full(key))
    }

    /// The first `limit` (key, value) whose keys start with `key_prefix` and sort after
    /// `after` (a key), by key: what a range read of an index costs.
    pub fn first_under(
        &self,
        r: &(impl MetaRead + ?Sized),
        key_prefix: &str,
        after: &str,
        limit: usize,
    ) -> Result<Vec<(String, C::Value)>, MetaError> {
        let after = if after.is_empty() {
            String::new()
        } else {
            self.full(after)
        };
        r.settings_under_after(&self.full(key_prefix), &after, limit)?
            .into_iter()
            .map(|(name, bytes)| {
                let value = decode::<C>(&name, self.what, &bytes)?;
                let key = name.strip_prefix(self.name).unwrap_or_default().to_owned();
                Ok((key, value))
            })
            .collect()
    }

    /// Every (key, value) of the family, by key.
    pub fn all(&self, r: &(impl MetaRead + ?Sized)) -> Result<Vec<(String, C::Value)>, MetaError> {
        let stored = if self.keyed {
            r.settings_under(self.name)?
        } else {
            r.setting(self.name)?
                .map(|v| (self.name.to_owned(), v))
                .into_iter()
                .collect()
        };
        stored
            .into_iter()
            .map(|(name, bytes)| {
                let value = decode::<C>(&name, self.what, &bytes)?;
                let key = name.strip_prefix(self.name).unwrap_or_default().to_owned();
                Ok((key, value))
            })
            .collect()
    }
}

/// A family seen without its value type: what the check of every setting needs.
pub trait AnyFamily: Sync {
    /// Whether the setting `name` is one of this family's.
    fn owns(&self, name: &str) -> bool;
    /// Decodes one stored value of this family.
    fn check(&self, name: &str, bytes: &[u8]) -> Result<(), MetaError>;
    fn what(&self) -> &'static str;
}

impl<C: Codec> AnyFamily for Family<C> {
    fn owns(&self, name: &str) -> bool {
        if self.keyed {
            name.starts_with(self.name)
        } else {
            name == self.name
        }
    }

    fn check(&self, name: &str, bytes: &[u8]) -> Result<(), MetaError> {
        decode::<C>(name, self.what, bytes).map(|_| ())
    }

    fn what(&self) -> &'static str {
        self.what
    }
}

fn encode<C: Codec>(
    name: &str,
    what: &'static str,
    value: &C::Value,
) -> Result<Vec<u8>, MetaError> {
    let body = C::encode(value).map_err(|cause| MetaError::Setting {
        name: name.to_owned(),
        what,
        cause,
    })?;
    let mut out = Vec::with_capacity(body.len() + 1);
    out.push(C::VERSION);
    out.extend_from_slice(&body);
    Ok(out)
}

fn decode<C: Codec>(name: &str, what: &'static str, bytes: &[u8]) -> Result<C::Value, MetaError> {
    let failed = |cause: String| MetaError::Setting {
        name: name.to_owned(),
        what,
        cause,
    };
    let Some((&version, body)) = bytes.split_first() else {
        return Err(failed("it is empty".to_owned()));
    };
    if version == 0 {
        return Err(failed("it carries no version".to_owned()));
    }
    if version > C::VERSION {
        return Err(failed(format!(
            "it has encoding version {version}, which this semdock (versions 1 to {}) cannot read: a newer semdock wrote it; upgrade this one",
            C::VERSION
        )));
    }
    C::decode(version, body).map_err(failed)
}

/// A counter's value as the engines keep it in their own tables (they read and write the
/// settings table below the seam).
#[must_use]
pub fn counter_bytes(value: u64) -> Vec<u8> {
    let mut out = vec![Counter::VERSION];
    out.extend_from_slice(&value.to_be_bytes());
    out
}

/// A counter read from the engine's own table; `None` when it was never written.
pub fn counter_from(name: &str, bytes: Option<&[u8]>) -> Result<u64, MetaError> {
    bytes.map_or(Ok(0), |b| decode::<Counter>(name, "counter", b))
}

/// The counters of the append-only tables, which the engines keep.
pub const HISTORY_SEQ: Family<Counter> = Family::single("tag-history-seq", "counter");
pub const PROMOTION_SEQ: Family<Counter> = Family::single("promotion-seq", "counter");
pub const AUDIT_SEQ: Family<Counter> = Family::single("audit-seq", "counter");
/// The embedded engine's one-time index builds and rewrites.
pub const TAG_INDEXES: Family<Marker> = Family::single("tag-indexes-1", "migration marker");
pub const AUDIT_KINDS: Family<Marker> = Family::single("audit-kinds-1", "migration marker");
pub const RECORD_VERSIONS: Family<Marker> = Family::single("record-versions-1", "migration marker");
/// The record migrations both engines apply (`migrations.rs`).
pub const MIGRATIONS: Family<Marker> = Family::keyed("migration:", "migration marker");

/// The families the store itself keeps.
pub const STORE_FAMILIES: [&dyn AnyFamily; 7] = [
    &HISTORY_SEQ,
    &PROMOTION_SEQ,
    &AUDIT_SEQ,
    &TAG_INDEXES,
    &AUDIT_KINDS,
    &RECORD_VERSIONS,
    &MIGRATIONS,
];

/// Decodes every stored setting with the family that owns its name; returns how many each
/// family holds, in the order of `families`. A setting no family owns, or owned by two, or
/// whose value cannot be decoded, is an error that names it.
pub fn check_all(
    r: &(impl MetaRead + ?Sized),
    families: &[&dyn AnyFamily],
) -> Result<Vec<usize>, MetaError> {
    let mut counts = vec![0; families.len()];
    for (name, bytes) in r.settings()? {
        let owners: Vec<usize> = (0..families.len())
            .filter(|&i| families[i].owns(&name))
            .collect();
        let [owner] = owners[..] else {
            return Err(MetaError::Setting {
                name,
                what: "setting",
                cause: format!("{} families own its name", owners.len()),
            });
        };
        families[owner].check(&name, &bytes)?;
        counts[owner] += 1;
    }
    Ok(counts)
}

/// Writes `bytes` under the setting `name` as they are: how tests stand in for an earlier
/// release or a damaged value.
#[cfg(test)]
pub fn put_raw(
    w: &mut (impl MetaWrite + ?Sized),
    name: &str,
    bytes: &[u8],
) -> Result<(), MetaError> {
    w.put_setting(name, bytes)
}

#[cfg(test)]
pub fn remove_raw(w: &mut (impl MetaWrite + ?Sized), name: &str) -> Result<(), MetaError> {
    w.remove_setting(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_carry_their_version_and_a_bad_one_names_its_setting() {
        let v = encode::<Epoch>("feed-epoch:prod", "feed epoch", &7).unwrap();
        assert_eq!(v, [1, 7, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(
            decode::<Epoch>("feed-epoch:prod", "feed epoch", &v).unwrap(),
            7
        );
        let c = counter_bytes(258);
        assert_eq!(c, [1, 0, 0, 0, 0, 0, 0, 1, 2]);
        assert_eq!(counter_from("audit-seq", Some(&c)).unwrap(), 258);
        assert_eq!(counter_from("audit-seq", None).unwrap(), 0);

        let short = decode::<Epoch>("feed-epoch:prod", "feed epoch", &[1, 7])
            .unwrap_err()
            .to_string();
        assert!(
            short.contains("\"feed-epoch:prod\"") && short.contains("feed epoch"),
            "{short}"
        );
        let newer = decode::<Epoch>(
            "feed-epoch:prod",
            "feed epoch",
            &[2, 0, 0, 0, 0, 0, 0, 0, 0],
        )
        .unwrap_err()
        .to_string();
        assert!(newer.contains("version 2"), "{newer}");
        assert!(decode::<Json<Vec<u32>>>("x", "list", &[1, b'{']).is_err());
        assert!(decode::<Marker>("m", "marker", &[]).is_err());
        assert!(decode::<Marker>("m", "marker", &[1, 1]).is_ok());
    }
}
