//! Content-addressed blob files and in-progress uploads on the filesystem.
//!
//! The on-disk layout, built only here:
//!
//! ```text
//! DATA_DIR/blobs/sha256/ab/abcdef…   a published blob, named by its hex digest, immutable
//! DATA_DIR/uploads/<uuid>            the bytes of an upload in progress
//! ```
//!
//! No `:` appears in a file name, so the layout works on Windows. A blob file appears only by
//! atomic rename of a fully written, fsynced upload whose digest was checked. This module does
//! not decide who may read what: that is the metadata's job, through the domain layer.

mod upload;

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

pub use upload::{UploadState, UploadWriter};

use crate::model::Digest;

/// The blob and upload directories under one data directory.
#[derive(Debug, Clone)]
pub struct BlobStore {
    blobs: PathBuf,
    uploads: PathBuf,
}

impl BlobStore {
    /// Opens the store under `data_dir`, creating its directories.
    pub fn open(data_dir: &Path) -> io::Result<Self> {
        let store = Self {
            blobs: data_dir.join("blobs").join("sha256"),
            uploads: data_dir.join("uploads"),
        };
        fs::create_dir_all(&store.blobs)?;
        fs::create_dir_all(&store.uploads)?;
        Ok(store)
    }

    /// `blobs/sha256/ab/abcdef…`
    #[must_use]
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        let hex = digest.hex();
        self.blobs.join(&hex[..2]).join(hex)
    }

    /// `uploads/<id>`; `id` is a UUID the domain layer created or validated.
    #[must_use]
    pub fn upload_path(&self, id: &str) -> PathBuf {
        self.uploads.join(id)
    }

    pub fn open_blob(&self, digest: &Digest) -> io::Result<File> {
        File::open(self.blob_path(digest))
    }

    #[must_use]
    pub fn has_blob(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_file()
    }

    /// Creates the empty file of a new upload.
    pub fn create_upload(&self, id: &str) -> io::Result<()> {
        File::create_new(self.upload_path(id)).map(drop)
    }

    /// Opens an upload for appending at the end of `state`.
    pub fn append(&self, id: &str, state: UploadState) -> io::Result<UploadWriter> {
        UploadWriter::open(&self.upload_path(id), state)
    }

    /// Re-reads an upload's bytes to rebuild its hash state, after a restart.
    pub fn rehash_upload(&self, id: &str) -> io::Result<UploadState> {
        UploadState::from_file(&self.upload_path(id))
    }

    /// Makes a verified upload the blob `digest`: fsync, then atomic rename into place. When
    /// the blob already exists the upload is dropped instead: content addressing makes the two
    /// identical, and no second copy is kept.
    pub fn publish(&self, id: &str, digest: &Digest) -> io::Result<()> {
        let from = self.upload_path(id);
        let to = self.blob_path(digest);
        if to.is_file() {
            return fs::remove_file(from);
        }
        sync_file(&from)?;
        let dir = to.parent().unwrap_or(&self.blobs);
        fs::create_dir_all(dir)?;
        fs::rename(&from, &to)?;
        sync_dir(dir)
    }

    /// Every published blob file: its digest, length and modification time. Files whose names
    /// are not digests (a `.corrupted` copy set aside) are skipped.
    pub fn blob_files(&self) -> io::Result<Vec<BlobFile>> {
        let mut out = Vec::new();
        for shard in fs::read_dir(&self.blobs)? {
            let shard = shard?;
            if !shard.file_type()?.is_dir() {
                continue;
            }
            for entry in fs::read_dir(shard.path())? {
                let entry = entry?;
                let Some(digest) = entry
                    .file_name()
                    .to_str()
                    .and_then(|hex| format!("sha256:{hex}").parse::<Digest>().ok())
                else {
                    continue;
                };
                let meta = entry.metadata()?;
                out.push(BlobFile {
                    digest,
                    len: meta.len(),
                    modified: meta.modified()?,
                });
            }
        }
        Ok(out)
    }

    /// Removes a blob file; a missing file is not an error.
    pub fn remove_blob(&self, digest: &Digest) -> io::Result<()> {
        match fs::remove_file(self.blob_path(digest)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Moves a blob file aside as `<hex>.corrupted`, out of every reader's way; returns where.
    pub fn set_aside(&self, digest: &Digest) -> io::Result<PathBuf> {
        let from = self.blob_path(digest);
        let mut to = from.clone().into_os_string();
        to.push(".corrupted");
        let to = PathBuf::from(to);
        fs::rename(&from, &to)?;
        Ok(to)
    }

    /// Every upload file: its id and modification time.
    pub fn upload_files(&self) -> io::Result<Vec<(String, std::time::SystemTime)>> {
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.uploads)? {
            let entry = entry?;
            if let Some(id) = entry.file_name().to_str() {
                out.push((id.to_owned(), entry.metadata()?.modified()?));
            }
        }
        Ok(out)
    }

    /// Puts blob `digest` of `other` into this store: a hard link when both are on one
    /// filesystem (blob files never change, so sharing the inode is safe), else a copy that is
    /// fsynced and renamed into place.
    pub fn import(&self, other: &Self, digest: &Digest) -> io::Result<()> {
        let from = other.blob_path(digest);
        let to = self.blob_path(digest);
        if to.is_file() {
            return Ok(());
        }
        let dir = to.parent().unwrap_or(&self.blobs);
        fs::create_dir_all(dir)?;
        if fs::hard_link(&from, &to).is_err() {
            let mut tmp = to.clone().into_os_string();
            tmp.push(".partial");
            let tmp = PathBuf::from(tmp);
            fs::copy(&from, &tmp)?;
            sync_file(&tmp)?;
            fs::rename(&tmp, &to)?;
        }
        sync_dir(dir)
    }

    /// Removes an upload's file; a missing file is not an error.
    pub fn remove_upload(&self, id: &str) -> io::Result<()> {
        match fs::remove_file(self.upload_path(id)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

/// A published blob file as found on disk.
#[derive(Debug, Clone)]
pub struct BlobFile {
    pub digest: Digest,
    pub len: u64,
    pub modified: std::time::SystemTime,
}

/// Reads `len` bytes at `offset` without moving a file cursor, so one open blob can serve
/// several ranges at once.
pub fn read_at(file: &File, offset: u64, len: usize) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; len];
    #[cfg(unix)]
    std::os::unix::fs::FileExt::read_exact_at(file, &mut buf, offset)?;
    #[cfg(windows)]
    {
        let mut done = 0;
        while done < len {
            let n = std::os::windows::fs::FileExt::seek_read(
                file,
                &mut buf[done..],
                offset + done as u64,
            )?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            done += n;
        }
    }
    Ok(buf)
}

/// Flushes a file's bytes to disk. Opened for writing: Windows refuses to flush a handle
/// without write access.
fn sync_file(path: &Path) -> io::Result<()> {
    fs::OpenOptions::new().write(true).open(path)?.sync_all()
}

/// Persists a rename on platforms where a directory can be fsynced.
#[cfg_attr(not(unix), allow(clippy::unnecessary_wraps))]
fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}
