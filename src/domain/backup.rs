//! Backup and restore: a consistent copy of the metadata from one read transaction, plus the
//! blob files it records, taken while the registry serves. Blob bytes are copied and hashed
//! on the way (never hard-linked: a backup must survive damage to the live files), so a
//! damaged blob is named and left out while everything else is copied. Garbage collection
//! waits while a backup runs, so no file it needs disappears under it. Everything written is
//! readable by the owner only.

use std::path::Path;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::gc::Progress;
use super::{Error, Registry};
use crate::model::Digest;
use crate::store::blobs::{BlobStore, Blobs};
use crate::store::meta::{MetaStore, Metadata};
use crate::store::now;
use crate::store::owner_only;

/// The description a backup directory carries.
pub const BACKUP_MANIFEST: &str = "semdock-backup.json";
const META_FILE: &str = "meta.redb";

/// What a backup or restore copied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
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
    bytes: u64,
    missing: Vec<String>,
    damaged: Vec<String>,
}

/// Copies the `total` blobs that `records` (a snapshot) records, reading their digests a page
/// at a time.
fn copy_blobs(
    from: &dyn Blobs,
    to: &BlobStore,
    records: &dyn Metadata,
    total: u64,
    progress: Progress<'_>,
) -> Result<Copied, Error> {
    let mut copied = Copied {
        bytes: 0,
        missing: Vec::new(),
        damaged: Vec::new(),
    };
    let mut done = 0u64;
    let mut after: Option<String> = None;
    loop {
        let page = records.read()?.blob_digests(after.as_deref(), 4096)?;
        let Some(last) = page.last().cloned() else {
            return Ok(copied);
        };
        for d in &page {
            copy_blob(from, to, d, &mut copied)?;
            done += 1;
            progress("blobs", done, total);
        }
        after = Some(last);
    }
}

fn copy_blob(from: &dyn Blobs, to: &BlobStore, d: &str, copied: &mut Copied) -> Result<(), Error> {
    {
        let digest: Digest = d.parse()?;
        let Ok(Some(len)) = from.stat(&digest) else {
            tracing::warn!(digest = d, "blob file missing: not in the copy");
            copied.missing.push(d.to_owned());
            return Ok(());
        };
        match to.import(from, &digest) {
            Ok(()) => copied.bytes += len,
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                tracing::error!(digest = d, error = %e, "blob is damaged: not in the copy");
                copied.damaged.push(d.to_owned());
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

impl Registry {
    /// Copies the registry into `dir` (absolute, new or empty) while it serves.
    pub fn backup(&self, dir: &Path, progress: Progress<'_>) -> Result<BackupReport, Error> {
        ensure_empty(dir, "backup")?;
        let _one = self.one_job()?;
        let started = Instant::now();
        let created = now();
        let meta_file = dir.join(META_FILE);
        let total = self.meta.snapshot_to(&meta_file)?;
        owner_only::restrict(&meta_file)?;
        let target = BlobStore::open(dir)?;
        let snapshot = MetaStore::open(&meta_file)?;
        let copied = copy_blobs(&*self.blobs, &target, &snapshot, total, progress)?;
        drop(snapshot);
        for d in &copied.damaged {
            self.blob_corrupt(&d.parse()?);
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
    let source = MetaStore::open(&backup.join(META_FILE))?;
    let from = BlobStore::open(backup)?;
    let to = BlobStore::open(&data_dir)?;
    let partial = data_dir.join("meta.redb.partial");
    let total = source.snapshot_to(&partial)?;
    owner_only::restrict(&partial)?;
    let copied = copy_blobs(&from, &to, &source, total, progress)?;
    std::fs::rename(&partial, data_dir.join(META_FILE))?;
    Ok(BackupReport {
        dir: data_dir.display().to_string(),
        created: now(),
        blobs: total - (copied.missing.len() + copied.damaged.len()) as u64,
        bytes: copied.bytes,
        missing: copied.missing,
        damaged: copied.damaged,
        seconds: started.elapsed().as_secs_f64(),
    })
}
