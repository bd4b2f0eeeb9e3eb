//! The vulnerability database: OSV records imported from files — one record's JSON, or the
//! per-ecosystem zip exports osv.dev publishes (`Debian/all.zip`, `PyPI/all.zip`, …) — kept
//! in the metadata store (either engine) as advisories by id and, per package, the ranges
//! that affect it. Importing a record again replaces what the last import said of it.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Seek};

use serde::{Deserialize, Serialize};

use super::Vulns;
use super::osv::{Advisory, Affected, Record};
use crate::domain::Error;
use crate::domain::audit::{self, Kind};
use crate::store::meta::settings::{Counter, Family, Json, ZstdJson};

/// advisory id → the advisory, with the package keys it was indexed under.
pub(crate) const ADVISORIES: Family<Json<Stored>> = Family::keyed("vuln-advisory:", "advisory");
/// `ecosystem/name` → every advisory's ranges for that package.
pub(crate) const BY_PACKAGE: Family<ZstdJson<Vec<Affected>>> =
    Family::keyed("vuln-package:", "advisories of a package");
/// An alias (upper case: `CVE-2023-4911`) → the advisories that name it.
pub(crate) const ALIASES: Family<Json<Vec<String>>> =
    Family::keyed("vuln-alias:", "advisories of an alias");
/// Moves with every import: reports name the database they were matched against.
pub(crate) const EPOCH: Family<Counter> =
    Family::single("vulndb-epoch", "vulnerability database epoch");
/// file name → what its last import held.
pub(crate) const SOURCES: Family<Json<Source>> =
    Family::keyed("vulndb-source:", "vulnerability source");

/// An advisory as kept: what reports show, and where it is indexed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stored {
    #[serde(flatten)]
    pub advisory: Advisory,
    pub packages: Vec<String>,
}

impl std::ops::Deref for Stored {
    type Target = Advisory;
    fn deref(&self) -> &Advisory {
        &self.advisory
    }
}

/// One imported file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    pub name: String,
    pub records: usize,
    pub withdrawn: usize,
    pub ecosystems: Vec<String>,
    pub imported_ms: u64,
    pub imported_by: String,
}

/// What one import did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Imported {
    pub records: usize,
    pub withdrawn: usize,
    pub packages: usize,
    /// Entries of a zip that are not OSV records, with why.
    pub skipped: Vec<String>,
    pub epoch: u64,
}

/// The largest OSV record read (the biggest published ones are ~2 MiB).
const MAX_RECORD: u64 = 16 << 20;
/// Records written per transaction.
const BATCH: usize = 2_000;

impl Vulns {
    /// Imports OSV file `name` (a record's JSON, a JSON array of records, or a zip of
    /// records) from `file`.
    pub fn import(
        &self,
        name: &str,
        mut file: impl Read + Seek,
        actor: &str,
    ) -> Result<Imported, Error> {
        let mut head = [0u8; 4];
        let n = file
            .read(&mut head)
            .map_err(|e| Error::Invalid(format!("{name}: {e}")))?;
        file.rewind()
            .map_err(|e| Error::Invalid(format!("{name}: {e}")))?;
        let mut records = Vec::new();
        let mut skipped = Vec::new();
        if head[..n].starts_with(b"PK") {
            let mut zip = zip::ZipArchive::new(file)
                .map_err(|e| Error::Invalid(format!("{name} is not a readable zip: {e}")))?;
            for i in 0..zip.len() {
                let mut entry = zip
                    .by_index(i)
                    .map_err(|e| Error::Invalid(format!("{name}: entry {i}: {e}")))?;
                if entry.is_dir()
                    || !std::path::Path::new(entry.name())
                        .extension()
                        .is_some_and(|e| e.eq_ignore_ascii_case("json"))
                {
                    continue;
                }
                let entry_name = entry.name().to_owned();
                if entry.size() > MAX_RECORD {
                    skipped.push(format!("{entry_name}: larger than 16 MiB"));
                    continue;
                }
                let mut bytes = Vec::new();
                entry
                    .read_to_end(&mut bytes)
                    .map_err(|e| Error::Invalid(format!("{name}: {entry_name}: {e}")))?;
                match serde_json::from_slice::<Record>(&bytes) {
                    Ok(r) => records.push(r),
                    Err(e) => skipped.push(format!("{entry_name}: {e}")),
                }
            }
        } else {
            let mut bytes = Vec::new();
            file.take(MAX_RECORD * 64)
                .read_to_end(&mut bytes)
                .map_err(|e| Error::Invalid(format!("{name}: {e}")))?;
            let parsed = if bytes.trim_ascii_start().starts_with(b"[") {
                serde_json::from_slice::<Vec<Record>>(&bytes)
            } else {
                serde_json::from_slice::<Record>(&bytes).map(|r| vec![r])
            };
            records = parsed.map_err(|e| {
                Error::Invalid(format!(
                    "{name} is neither an OSV record, a JSON array of them, nor a zip of them: {e}"
                ))
            })?;
        }
        if records.is_empty() {
            return Err(Error::Invalid(format!(
                "{name} holds no OSV records{}",
                skipped
                    .first()
                    .map(|s| format!(" (first entry skipped: {s})"))
                    .unwrap_or_default()
            )));
        }
        self.store(name, &records, skipped, actor)
    }

    fn store(
        &self,
        name: &str,
        records: &[Record],
        skipped: Vec<String>,
        actor: &str,
    ) -> Result<Imported, Error> {
        let mut imported = Imported {
            skipped,
            ..Imported::default()
        };
        let mut ecosystems = BTreeSet::new();
        let mut touched = BTreeSet::new();
        for batch in records.chunks(BATCH) {
            // What this batch says per package, and which advisories it replaces.
            let mut by_package: BTreeMap<String, Vec<Affected>> = BTreeMap::new();
            let mut advisories = Vec::with_capacity(batch.len());
            for record in batch {
                let affected = record.affected();
                let packages: Vec<String> = affected.iter().map(|(k, _)| k.clone()).collect();
                for (key, a) in affected {
                    ecosystems.insert(a.ecosystem.clone());
                    by_package.entry(key).or_default().push(a);
                }
                let advisory = record.advisory();
                imported.withdrawn += usize::from(advisory.withdrawn);
                advisories.push(Stored { advisory, packages });
            }
            self.meta.write(|w| -> Result<(), Error> {
                let ids: BTreeSet<&str> = advisories.iter().map(|a| a.id.as_str()).collect();
                // Packages an advisory named before and names no more: drop its entries.
                let mut keys: BTreeSet<String> = by_package.keys().cloned().collect();
                for a in &advisories {
                    if let Some(old) = ADVISORIES.get(w, &a.id)? {
                        keys.extend(old.packages);
                    }
                }
                for key in &keys {
                    let mut entries = BY_PACKAGE.get(w, key)?.unwrap_or_default();
                    entries.retain(|e| !ids.contains(e.advisory.as_str()));
                    entries.extend(by_package.get(key).cloned().unwrap_or_default());
                    if entries.is_empty() {
                        BY_PACKAGE.remove(w, key)?;
                    } else {
                        BY_PACKAGE.put(w, key, &entries)?;
                    }
                }
                for a in &advisories {
                    ADVISORIES.put(w, &a.id, a)?;
                    for alias in &a.aliases {
                        let key = alias.to_ascii_uppercase();
                        let mut ids = ALIASES.get(w, &key)?.unwrap_or_default();
                        if !ids.contains(&a.id) {
                            ids.push(a.id.clone());
                            ALIASES.put(w, &key, &ids)?;
                        }
                    }
                }
                Ok(())
            })?;
            touched.extend(by_package.into_keys());
            imported.records += batch.len();
        }
        imported.packages = touched.len();
        let now = self.clock.now_ms();
        let source = Source {
            name: name.to_owned(),
            records: imported.records,
            withdrawn: imported.withdrawn,
            ecosystems: ecosystems.into_iter().collect(),
            imported_ms: now,
            imported_by: actor.to_owned(),
        };
        imported.epoch = self.meta.write(|w| -> Result<u64, Error> {
            let epoch = EPOCH.get(w, "")?.unwrap_or(0) + 1;
            EPOCH.put(w, "", &epoch)?;
            SOURCES.put(w, name, &source)?;
            let entry = audit::entry(
                Kind::VulnDbImported,
                actor,
                "",
                format!(
                    "imported {} OSV records ({} withdrawn) from {name}: {}",
                    source.records,
                    source.withdrawn,
                    source.ecosystems.join(", ")
                ),
            );
            audit::append(w, &self.clock, entry)?;
            Ok(epoch)
        })?;
        tracing::info!(
            name,
            records = imported.records,
            epoch = imported.epoch,
            "vulnerability database imported"
        );
        match self.watch(actor) {
            Ok(0) => {}
            Ok(n) => tracing::info!(versions = n, "released versions newly found vulnerable"),
            Err(e) => {
                tracing::error!(error = %e, "released versions could not be matched again after the import");
            }
        }
        Ok(imported)
    }

    /// The files imported so far, and the database epoch.
    pub fn sources(&self) -> Result<(u64, Vec<Source>), Error> {
        let r = self.meta.read()?;
        let epoch = EPOCH.get(&*r, "")?.unwrap_or(0);
        Ok((
            epoch,
            SOURCES.all(&*r)?.into_iter().map(|(_, s)| s).collect(),
        ))
    }

    /// Advisory `id` (or the advisory one of whose aliases it is, among those named).
    pub fn advisory(&self, id: &str) -> Result<Option<Stored>, Error> {
        Ok(ADVISORIES.get(&*self.meta.read()?, id)?)
    }
}
