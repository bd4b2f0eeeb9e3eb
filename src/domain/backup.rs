//! Backup and restore: a consistent copy of the metadata from one read transaction, plus the
//! blob files it records (hard-linked when on the same filesystem, else copied), taken while
//! the registry serves. Garbage collection waits while a backup runs, so no file it needs
//! disappears under it.

use std::path::Path;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::gc::{Progress, lock};
use super::{Error, Registry};
use crate::model::Digest;
use crate::store::blobs::{BlobStore, UploadState};
use crate::store::meta::MetaStore;
use crate::store::now;

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
    std::fs::create_dir_all(dir)?;
    Ok(())
}

fn copy_blobs(
    from: &BlobStore,
    to: &BlobStore,
    digests: &[String],
    verify: bool,
    progress: Progress<'_>,
) -> Result<(u64, Vec<String>), Error> {
    let mut bytes = 0;
    let mut missing = Vec::new();
    for (i, d) in digests.iter().enumerate() {
        let digest: Digest = d.parse()?;
        let path = from.blob_path(&digest);
        let Ok(meta) = std::fs::metadata(&path) else {
            tracing::warn!(digest = d, "blob file missing: not in the copy");
            missing.push(d.clone());
            continue;
        };
        if verify {
            let found = UploadState::from_file(&path)?.digest();
            if found != digest {
                return Err(Error::Conflict(format!(
                    "blob file {} hashes to {found}, not its name: the backup is damaged",
                    path.display()
                )));
            }
        }
        to.import(from, &digest)?;
        bytes += meta.len();
        progress("blobs", i as u64 + 1, digests.len() as u64);
    }
    Ok((bytes, missing))
}

impl Registry {
    /// Copies the registry into `dir` (absolute, new or empty) while it serves.
    pub fn backup(&self, dir: &Path, progress: Progress<'_>) -> Result<BackupReport, Error> {
        ensure_empty(dir, "backup")?;
        let _one = lock(&self.maintenance);
        let started = Instant::now();
        let created = now();
        let digests = self.meta.snapshot_to(&dir.join(META_FILE))?;
        let target = BlobStore::open(dir)?;
        let (bytes, missing) = copy_blobs(&self.blobs, &target, &digests, false, progress)?;
        let report = BackupReport {
            dir: dir.display().to_string(),
            created,
            blobs: (digests.len() - missing.len()) as u64,
            bytes,
            missing,
            seconds: started.elapsed().as_secs_f64(),
        };
        let json = serde_json::to_vec_pretty(&report)
            .map_err(|e| Error::Internal(format!("cannot describe the backup: {e}")))?;
        std::fs::write(dir.join(BACKUP_MANIFEST), json)?;
        tracing::info!(dir = %dir.display(), blobs = report.blobs, bytes, "backup written");
        Ok(report)
    }
}

/// Restores the backup in `backup` into `data_dir`, which must be new or empty. Every blob is
/// re-hashed on the way; the metadata is written last, so an interrupted restore leaves no
/// registry behind and can simply be run again.
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
    let digests = source.snapshot_to(&partial)?;
    let (bytes, missing) = copy_blobs(&from, &to, &digests, true, progress)?;
    std::fs::rename(&partial, data_dir.join(META_FILE))?;
    Ok(BackupReport {
        dir: data_dir.display().to_string(),
        created: now(),
        blobs: (digests.len() - missing.len()) as u64,
        bytes,
        missing,
        seconds: started.elapsed().as_secs_f64(),
    })
}
