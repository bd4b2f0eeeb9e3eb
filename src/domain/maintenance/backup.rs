//! Backup and restore: a consistent copy of the metadata from one read transaction, plus the
//! blob files it records, taken while the registry serves. Blob bytes are copied and hashed
//! on the way (never hard-linked: a backup must survive damage to the live files), so a
//! damaged blob is named and left out while everything else is copied. Garbage collection
//! waits while a backup runs, so no file it needs disappears under it. Everything written is
//! readable by the owner only.

use crate::store::meta::settings::{Family, Text};
use std::path::Path;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::gc::Progress;
use super::{Error, Maintenance};
use crate::model::Digest;
use crate::store::blobs::Blobs;
use crate::store::blobs::fs::FsBlobs;
use crate::store::meta::redb::RedbMeta;
use crate::store::meta::{MetaRead, Metadata};
use crate::store::owner_only;

/// The description a backup directory carries.
pub const BACKUP_MANIFEST: &str = "semdock-backup.json";
const META_FILE: &str = "meta.redb";

/// What a backup or restore copied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackupReport {
    pub dir: String,
    /// Unix seconds.
    pub created: u64,
    pub blobs: u64,
    pub bytes: u64,
    /// Blobs recorded in the metadata whose files were missing (set aside by `check`).
    pub missing: Vec<String>,
    /// Blobs whose bytes did not hash to their digest: not copied (in a backup the live file
    /// is set aside as `check` does; push the image again to repair it).
    #[serde(default)]
    pub damaged: Vec<String>,
    pub seconds: f64,
}

fn ensure_empty(dir: &Path, what: &str) -> Result<(), Error> {
    if !dir.is_absolute() {
        return Err(Error::Invalid(format!(
            "the {what} directory {} must be an absolute path",
            dir.display()
        )));
    }
    if dir.exists() && std::fs::read_dir(dir)?.next().is_some() {
        return Err(Error::Conflict(format!(
            "the {what} directory {} is not empty: choose a new or empty directory",
            dir.display()
        )));
    }
    owner_only::create_dir_all(dir)?;
    Ok(())
}

/// What `copy_blobs` copied, and what it could not.
struct Copied {
    /// Blobs copied now, and their bytes.
    blobs: u64,
    bytes: u64,
    /// Blobs the target held already (an interrupted run's): hashed there and kept.
    present: u64,
    missing: Vec<String>,
    damaged: Vec<String>,
}

/// Copies the `total` blobs that `records` records from `from` into `to`, reading their
/// digests a page at a time. Each is hashed on the way (`Blobs::import`); one the target
/// holds already is hashed there and kept, or replaced when it does not hash to its name.
fn copy_blobs(
    from: &dyn Blobs,
    to: &dyn Blobs,
    records: &dyn MetaRead,
    total: u64,
    progress: Progress<'_>,
) -> Result<Copied, Error> {
    let mut copied = Copied {
        blobs: 0,
        bytes: 0,
        present: 0,
        missing: Vec::new(),
        damaged: Vec::new(),
    };
    let mut done = 0u64;
    let mut after: Option<String> = None;
    loop {
        let page = records.blob_digests(after.as_deref(), 4096)?;
        let Some(last) = page.last().cloned() else {
            return Ok(copied);
        };
        for d in &page {
            copy_blob(from, to, &d.parse()?, &mut copied)?;
            done += 1;
            progress("blobs", done, total);
        }
        after = Some(last);
    }
}

fn copy_blob(
    from: &dyn Blobs,
    to: &dyn Blobs,
    digest: &Digest,
    copied: &mut Copied,
) -> Result<(), Error> {
    let d = digest.to_string();
    let Ok(Some(len)) = from.stat(digest) else {
        tracing::warn!(digest = d, "blob file missing: not in the copy");
        copied.missing.push(d);
        return Ok(());
    };
    if to.stat(digest)?.is_some() {
        let unlimited = super::hashing::Throttle::unlimited();
        match super::hashing::hash_blob(to, digest, &unlimited) {
            Ok((hashed, _)) if hashed == *digest => {
                copied.present += 1;
                return Ok(());
            }
            // A torn or damaged copy is replaced.
            _ => to.remove_blob(digest)?,
        }
    }
    match to.import(from, digest) {
        Ok(()) => {
            copied.blobs += 1;
            copied.bytes += len;
        }
        Err(e) if e.io_kind() == Some(std::io::ErrorKind::InvalidData) => {
            tracing::error!(digest = d, error = %e, "blob is damaged: not in the copy");
            copied.damaged.push(d);
        }
        Err(e) => return Err(e.into()),
    }
    Ok(())
}

impl Maintenance<'_> {
    /// Copies the registry into `dir` (absolute, new or empty) while it serves.
    pub fn backup(&self, dir: &Path, progress: Progress<'_>) -> Result<BackupReport, Error> {
        ensure_empty(dir, "backup")?;
        let _one = self.one_job()?;
        let started = Instant::now();
        let created = self.state.clock.now();
        let meta_file = dir.join(META_FILE);
        let total = self.state.meta.snapshot_to(&meta_file)?;
        owner_only::restrict(&meta_file)?;
        let target = FsBlobs::open(dir)?;
        let snapshot: &dyn Metadata = &RedbMeta::open(&meta_file)?;
        let copied = copy_blobs(
            &*self.state.blobs,
            &target,
            &*snapshot.read()?,
            total,
            progress,
        )?;
        for d in &copied.damaged {
            self.registry.blobs().corrupt(&d.parse()?);
        }
        let report = BackupReport {
            dir: dir.display().to_string(),
            created,
            blobs: total - (copied.missing.len() + copied.damaged.len()) as u64,
            bytes: copied.bytes,
            missing: copied.missing,
            damaged: copied.damaged,
            seconds: started.elapsed().as_secs_f64(),
        };
        let bytes = report.bytes;
        let json = serde_json::to_vec_pretty(&report)
            .map_err(|e| Error::Internal(format!("cannot describe the backup: {e}")))?;
        std::io::Write::write_all(
            &mut owner_only::create_new(&dir.join(BACKUP_MANIFEST))?,
            &json,
        )?;
        tracing::info!(dir = %dir.display(), blobs = report.blobs, bytes, "backup written");
        Ok(report)
    }
}

/// Restores the backup in `backup` into `data_dir`, which must be new or empty. Every blob is
/// re-hashed on the way; a damaged one is named in the report and left out, everything else
/// restored (pushing the image again repairs it). The metadata is written last, so an
/// interrupted restore leaves no registry behind and can simply be run again.
pub fn restore(
    backup: &Path,
    data_dir: &Path,
    progress: Progress<'_>,
) -> Result<BackupReport, Error> {
    let started = Instant::now();
    if !backup.join(BACKUP_MANIFEST).is_file() || !backup.join(META_FILE).is_file() {
        return Err(Error::NotFound(format!(
            "{} is not a semdock backup: it has no {BACKUP_MANIFEST} and {META_FILE}",
            backup.display()
        )));
    }
    let data_dir = std::path::absolute(data_dir)?;
    if data_dir.join(META_FILE).exists() {
        return Err(Error::Conflict(format!(
            "{} already holds a registry: restore into a new or empty data directory",
            data_dir.display()
        )));
    }
    ensure_empty(&data_dir, "data")?;
    let source = RedbMeta::open(&backup.join(META_FILE))?;
    let from = FsBlobs::open(backup)?;
    let to = FsBlobs::open(&data_dir)?;
    let partial = data_dir.join("meta.redb.partial");
    let total = source.snapshot_to(&partial)?;
    owner_only::restrict(&partial)?;
    let records = <RedbMeta as Metadata>::read(&source)?;
    let copied = copy_blobs(&from, &to, &*records, total, progress)?;
    drop(records);
    std::fs::rename(&partial, data_dir.join(META_FILE))?;
    Ok(BackupReport {
        dir: data_dir.display().to_string(),
        created: crate::store::now(),
        blobs: total - (copied.missing.len() + copied.damaged.len()) as u64,
        bytes: copied.bytes,
        missing: copied.missing,
        damaged: copied.damaged,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// The setting a completed `storage migrate` leaves in its target: where from, and when.
pub(crate) const MIGRATED_FROM: Family<Text> =
    Family::single("semdock-migrated-from", "migration source");

/// What `storage migrate` copied.
#[derive(Debug, Clone)]
pub struct MigrateReport {
    /// Blobs copied now, each hashed on the way.
    pub blobs_copied: u64,
    pub bytes_copied: u64,
    /// Blobs a previous, interrupted run had copied: hashed again in the target and kept.
    pub blobs_present: u64,
    /// Recorded blobs whose files the source lacks (what `check` sets aside).
    pub missing: Vec<String>,
    /// Blobs whose source bytes do not hash to their digest: not copied.
    pub damaged: Vec<String>,
    /// Every record written, by kind.
    pub records: crate::store::meta::copy::RecordCounts,
}

impl Maintenance<'_> {
    /// Copies this registry into other, empty stores (`to_meta`, `to_blobs`): first every
    /// blob, hashed on the way (one already in the target from an interrupted run is hashed
    /// there and kept), then every record in one transaction of the target, with the
    /// setting that marks it migrated. Interrupted, it can be run again: the records are
    /// all or nothing, and the blobs copied are not copied twice.
    pub fn migrate_to(
        &self,
        source_name: &str,
        to_meta: &dyn Metadata,
        to_blobs: &dyn Blobs,
        progress: Progress<'_>,
    ) -> Result<MigrateReport, Error> {
        let _one = self.one_job()?;
        {
            let target = to_meta.read()?;
            if let Some(from) = MIGRATED_FROM.get(&*target, "")? {
                return Err(Error::Conflict(format!(
                    "the target already holds a completed migration (from {from}): nothing copied"
                )));
            }
            let (repos, _) = target.repositories("", None, 1, &|_| true)?;
            if !repos.is_empty() || !target.blob_digests(None, 1)?.is_empty() {
                return Err(Error::Conflict(
                    "the target already holds a registry (repositories or blobs): migrate into new, empty storage".into(),
                ));
            }
        }
        let source = self.state.meta.read()?;
        let mut total = 0u64;
        source.each_blob(&mut |_, _| total += 1)?;
        let copied = copy_blobs(&*self.state.blobs, to_blobs, &*source, total, progress)?;
        let marker = format!("{source_name} at {}", self.state.clock.now());
        let records = to_meta.write(|w| {
            let counts = crate::store::meta::copy::copy_records(&*source, w)?;
            MIGRATED_FROM.put(w, "", &marker)?;
            Ok::<_, Error>(counts)
        })?;
        let report = MigrateReport {
            blobs_copied: copied.blobs,
            bytes_copied: copied.bytes,
            blobs_present: copied.present,
            missing: copied.missing,
            damaged: copied.damaged,
            records,
        };
        tracing::info!(
            blobs = report.blobs_copied,
            present = report.blobs_present,
            bytes = report.bytes_copied,
            "storage migrated"
        );
        Ok(report)
    }
}
