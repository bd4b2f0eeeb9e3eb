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

    /// Makes a verified upload the blob `digest`: fsync, then atomic rename into place, then
    /// `warm`. When the blob already exists the upload is dropped instead: content addressing
    /// makes the two identical, and no second copy is kept.
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
        sync_dir(dir)?;
        warm(&to);
        Ok(())
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

/// Starts reading a just-published blob back into the page cache, in the background. Its
/// whole blocks were written with `O_DIRECT` (see `upload::Pipeline`), so without this the
/// first pull, usually soon after a push, would wait for the disk; a buffered write would
/// have left them cached. Best effort: a failure only leaves the pull to read the disk.
fn warm(path: &Path) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd as _;
        /// Bytes per advice: the kernel reads at most its readahead window per call.
        const WINDOW: libc::off_t = 4 << 20;
        let Ok(file) = File::open(path) else { return };
        let len = file.metadata().map_or(0, |m| m.len());
        if len >= upload::WRITE_BUFFER as u64 {
            let len = libc::off_t::try_from(len).unwrap_or(libc::off_t::MAX);
            // On a thread of its own: each call submits its window's reads before returning.
            let _ = std::thread::Builder::new()
                .name("semdock-warm".into())
                .spawn(move || {
                    let mut offset = 0;
                    while offset < len {
                        // SAFETY: a plain syscall on a descriptor this thread owns.
                        let advised = unsafe {
                            libc::posix_fadvise(
                                file.as_raw_fd(),
                                offset,
                                WINDOW,
                                libc::POSIX_FADV_WILLNEED,
                            )
                        };
                        if advised != 0 {
                            return;
                        }
                        offset += WINDOW;
                    }
                });
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = path;
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

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// The share of `path`'s pages in the page cache, from `mincore` over a mapping.
    fn resident(path: &Path) -> f64 {
        use std::os::fd::AsRawFd as _;
        let file = File::open(path).unwrap();
        let len = usize::try_from(file.metadata().unwrap().len()).unwrap();
        let pages = len.div_ceil(4096);
        let mut vec = vec![0u8; pages];
        // SAFETY: a read-only shared mapping of a file this test owns, unmapped before return;
        // mincore only writes `pages` bytes into `vec`.
        unsafe {
            let map = libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            );
            assert_ne!(map, libc::MAP_FAILED);
            assert_eq!(libc::mincore(map, len, vec.as_mut_ptr()), 0);
            libc::munmap(map, len);
        }
        #[allow(clippy::cast_precision_loss)]
        let share = vec.iter().filter(|&&b| b & 1 == 1).count() as f64 / pages as f64;
        share
    }

    #[test]
    fn a_published_blob_is_read_back_into_the_page_cache_for_its_first_pull() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        store.create_upload("u").unwrap();
        let data: Vec<u8> = (0..32 * upload::WRITE_BUFFER)
            .map(|i| i.wrapping_mul(2_654_435_761).to_le_bytes()[2])
            .collect();
        let mut w = store.append("u", UploadState::default()).unwrap();
        w.write(&data).unwrap();
        let state = w.finish().unwrap();
        let upload = store.upload_path("u");
        let before = resident(&upload);
        let digest = state.digest();
        store.publish("u", &digest).unwrap();
        let path = store.blob_path(&digest);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let mut after = resident(&path);
        while after < 0.99 && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(20));
            after = resident(&path);
        }
        assert!(
            after >= 0.99,
            "cached before publishing {before:.2}, after {after:.2}"
        );
    }
}
