//! Content-addressed blob files and in-progress uploads on the filesystem.
//!
//! The on-disk layout, built only here:
//!
//! ```text
//! DATA_DIR/blobs/sha256/ab/abcdef…   a published blob, named by its hex digest, immutable
//! DATA_DIR/blobs/sha512/ab/abcdef…   the same for blobs addressed by a SHA-512 digest
//! DATA_DIR/uploads/<id>              the bytes of an upload in progress (`<uuid>`, or
//!                                    `sha512-<uuid>` for an upload hashed with SHA-512)
//! ```
//!
//! No `:` appears in a file name, so the layout works on Windows. A blob file appears only by
//! atomic rename of a fully written, fsynced upload whose digest was checked. This module does
//! not decide who may read what: that is the metadata's job, through the domain layer.

mod upload;

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

pub use upload::UploadWriter;

use super::{
    BlobError, BlobRead, Blobs, StoredBlob, StoredUpload, UploadSink, UploadState, Uploads,
    read_all,
};
use crate::model::{Algorithm, Digest};
use crate::store::owner_only;

/// The blob and upload directories under one data directory.
#[derive(Debug, Clone)]
pub struct FsBlobs {
    blobs: PathBuf,
    uploads: PathBuf,
    writers: Writers,
    warmer: Warmer,
}

/// How many upload writers are open: work that only helps (`Warmer`) waits until none is.
#[derive(Debug, Clone, Default)]
struct Writers(std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl Writers {
    fn enter(&self) -> WriterOpen {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        WriterOpen(self.0.clone())
    }

    #[cfg(target_os = "linux")]
    fn none(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::Relaxed) == 0
    }
}

/// One open upload writer, counted in `Writers` until dropped.
#[derive(Debug)]
pub(super) struct WriterOpen(std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl Drop for WriterOpen {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

impl FsBlobs {
    /// Opens the store under `data_dir`, creating its directories.
    pub fn open(data_dir: &Path) -> io::Result<Self> {
        let writers = Writers::default();
        let store = Self {
            blobs: data_dir.join("blobs"),
            uploads: data_dir.join("uploads"),
            writers: writers.clone(),
            warmer: Warmer::new(writers),
        };
        owner_only::create_dir_all(data_dir)?;
        for algorithm in Algorithm::ALL {
            owner_only::create_dir_all(&store.blobs.join(algorithm.name()))?;
        }
        owner_only::create_dir_all(&store.uploads)?;
        Ok(store)
    }

    /// `blobs/<algorithm>/ab/abcdef…`
    #[must_use]
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        let hex = digest.hex();
        self.blobs
            .join(digest.algorithm().name())
            .join(&hex[..2])
            .join(hex)
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
        owner_only::create_new(&self.upload_path(id)).map(drop)
    }

    /// Opens an upload for appending at the end of `state`.
    pub fn append(&self, id: &str, state: UploadState) -> io::Result<UploadWriter> {
        let mut writer = UploadWriter::open(&self.upload_path(id), state)?;
        writer.counted(self.writers.enter());
        Ok(writer)
    }

    /// Re-reads an upload's bytes to rebuild its hash state (by `algorithm`), after a
    /// restart, or to hash it by another algorithm than the one it streamed with.
    pub fn rehash_upload(&self, id: &str, algorithm: Algorithm) -> io::Result<UploadState> {
        upload::hash_file(&self.upload_path(id), algorithm)
    }

    /// Makes a verified upload the blob `digest`: fsync, then atomic rename into place. When
    /// the blob already exists the upload is dropped instead: content addressing
    /// makes the two identical, and no second copy is kept.
    pub fn publish(&self, id: &str, digest: &Digest) -> io::Result<()> {
        let from = self.upload_path(id);
        let to = self.blob_path(digest);
        if to.is_file() {
            return fs::remove_file(from);
        }
        sync_file(&from)?;
        let dir = to.parent().unwrap_or(&self.blobs);
        owner_only::create_dir_all(dir)?;
        fs::rename(&from, &to)?;
        sync_dir(dir)?;
        Ok(())
    }

    /// Reads blob `digest` of `len` bytes back into the page cache in the background, for its
    /// first pull (see `Warmer`). Called once the blob is committed, so its reads never delay
    /// the commit. A blob smaller than one write block never bypassed the cache: not queued.
    pub fn warm(&self, digest: &Digest, len: u64) {
        if len >= upload::WRITE_BUFFER as u64 {
            self.warmer.warm(self.blob_path(digest));
        }
    }

    /// Every published blob file: its digest, length and modification time. Files whose names
    /// are not digests (a `.corrupted` copy set aside) are skipped.
    pub fn blob_files(&self) -> io::Result<Vec<BlobFile>> {
        let mut out = Vec::new();
        self.each_blob_file(|f| {
            out.push(f);
            Ok::<(), io::Error>(())
        })?;
        Ok(out)
    }

    /// Calls `f` with every published blob file, one directory entry at a time.
    pub fn each_blob_file<E: From<io::Error>>(
        &self,
        mut f: impl FnMut(BlobFile) -> Result<(), E>,
    ) -> Result<(), E> {
        for algorithm in Algorithm::ALL {
            let dir = self.blobs.join(algorithm.name());
            if !dir.is_dir() {
                continue;
            }
            for shard in fs::read_dir(&dir)? {
                let shard = shard?;
                if !shard.file_type()?.is_dir() {
                    continue;
                }
                for entry in fs::read_dir(shard.path())? {
                    let entry = entry?;
                    let Some(digest) = entry.file_name().to_str().and_then(|hex| {
                        format!("{}:{hex}", algorithm.name()).parse::<Digest>().ok()
                    }) else {
                        continue;
                    };
                    let meta = entry.metadata()?;
                    f(BlobFile {
                        digest,
                        len: meta.len(),
                        modified: meta.modified()?,
                    })?;
                }
            }
        }
        Ok(())
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

    /// Every upload file: its id, modification time and length.
    pub fn upload_files(&self) -> io::Result<Vec<(String, std::time::SystemTime, u64)>> {
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.uploads)? {
            let entry = entry?;
            if let Some(id) = entry.file_name().to_str() {
                let meta = entry.metadata()?;
                out.push((id.to_owned(), meta.modified()?, meta.len()));
            }
        }
        Ok(out)
    }

    /// Copies blob `digest` of `other` into this store, hashing the bytes on the way: a copy,
    /// never a hard link, so damage to one store's file never reaches the other. A file that
    /// does not hash to its name is not copied: `InvalidData`, naming what it hashes to. The
    /// copy is fsynced and renamed into place.
    pub fn import(&self, other: &dyn Blobs, digest: &Digest) -> Result<(), BlobError> {
        use std::io::Write as _;
        let to = self.blob_path(digest);
        if to.is_file() {
            return Ok(());
        }
        let dir = to.parent().unwrap_or(&self.blobs);
        owner_only::create_dir_all(dir)?;
        let mut tmp = to.clone().into_os_string();
        tmp.push(".partial");
        let tmp = PathBuf::from(tmp);
        let source = other.open(digest)?;
        let mut target = owner_only::options()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)?;
        let mut state = UploadState::new(digest.algorithm());
        let copied = (|| {
            let mut written = Ok(());
            read_all(&*source, |bytes| {
                state.update(bytes);
                if written.is_ok() {
                    written = target.write_all(bytes);
                }
            })?;
            written?;
            let found = state.digest();
            if found != *digest {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("blob {digest} hashes to {found}, not its name"),
                )
                .into());
            }
            Ok(target.sync_all()?)
        })();
        if let Err(e) = copied {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        fs::rename(&tmp, &to)?;
        Ok(sync_dir(dir)?)
    }

    /// Removes an upload's file; a missing file is not an error.
    pub fn remove_upload(&self, id: &str) -> io::Result<()> {
        match fs::remove_file(self.upload_path(id)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

/// An open blob file.
struct OpenFile(File);

impl BlobRead for OpenFile {
    fn read_at(&self, offset: u64, len: usize) -> Result<Vec<u8>, BlobError> {
        Ok(read_at(&self.0, offset, len)?)
    }

    fn stored_len(&self) -> Result<u64, BlobError> {
        Ok(self.0.metadata()?.len())
    }

    /// The open file's own metadata (`fstat`), so a file replaced under the name since it
    /// was opened is told apart too.
    #[cfg(unix)]
    fn fingerprint(&self) -> Result<Option<super::Fingerprint>, BlobError> {
        use std::os::unix::fs::MetadataExt as _;
        let m = self.0.metadata()?;
        let ns = |s: i64, ns: i64| i128::from(s) * 1_000_000_000 + i128::from(ns);
        Ok(Some(super::Fingerprint::File {
            device: m.dev(),
            inode: m.ino(),
            len: m.len(),
            modified_ns: ns(m.mtime(), m.mtime_nsec()),
            changed_ns: ns(m.ctime(), m.ctime_nsec()),
        }))
    }
}

impl UploadSink for UploadWriter {
    fn write(&mut self, bytes: &[u8]) -> Result<(), BlobError> {
        Ok(UploadWriter::write(self, bytes)?)
    }

    fn offset(&self) -> u64 {
        UploadWriter::len(self)
    }

    fn finish(self: Box<Self>) -> Result<UploadState, BlobError> {
        Ok(UploadWriter::finish(*self)?)
    }
}

impl Blobs for FsBlobs {
    fn stat(&self, digest: &Digest) -> Result<Option<u64>, BlobError> {
        match fs::metadata(self.blob_path(digest)) {
            Ok(m) if m.is_file() => Ok(Some(m.len())),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    fn open(&self, digest: &Digest) -> Result<Box<dyn BlobRead>, BlobError> {
        Ok(Box::new(OpenFile(self.open_blob(digest)?)))
    }

    fn publish(&self, id: &str, digest: &Digest) -> Result<(), BlobError> {
        Ok(FsBlobs::publish(self, id, digest)?)
    }

    fn warm(&self, digest: &Digest, len: u64) {
        FsBlobs::warm(self, digest, len);
    }

    fn each_blob(
        &self,
        f: &mut dyn FnMut(StoredBlob) -> Result<(), BlobError>,
    ) -> Result<(), BlobError> {
        self.each_blob_file(|b| {
            f(StoredBlob {
                digest: b.digest,
                len: b.len,
                modified: b.modified,
            })
        })
    }

    fn remove_blob(&self, digest: &Digest) -> Result<(), BlobError> {
        Ok(FsBlobs::remove_blob(self, digest)?)
    }

    fn set_aside(&self, digest: &Digest) -> Result<String, BlobError> {
        Ok(FsBlobs::set_aside(self, digest)?.display().to_string())
    }

    fn probe(&self) -> Result<(), BlobError> {
        for dir in [&self.blobs, &self.uploads] {
            if !fs::metadata(dir)?.is_dir() {
                return Err(io::Error::new(
                    io::ErrorKind::NotADirectory,
                    format!("{} is not a directory", dir.display()),
                )
                .into());
            }
        }
        Ok(())
    }

    fn import(&self, from: &dyn Blobs, digest: &Digest) -> Result<(), BlobError> {
        FsBlobs::import(self, from, digest)
    }
}

impl Uploads for FsBlobs {
    fn create_upload(&self, id: &str) -> Result<(), BlobError> {
        Ok(FsBlobs::create_upload(self, id)?)
    }

    fn upload_len(&self, id: &str) -> Result<Option<u64>, BlobError> {
        match fs::metadata(self.upload_path(id)) {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    fn append(&self, id: &str, state: UploadState) -> Result<Box<dyn UploadSink>, BlobError> {
        Ok(Box::new(FsBlobs::append(self, id, state)?))
    }

    fn rehash_upload(&self, id: &str, algorithm: Algorithm) -> Result<UploadState, BlobError> {
        Ok(FsBlobs::rehash_upload(self, id, algorithm)?)
    }

    fn uploads(&self) -> Result<Vec<StoredUpload>, BlobError> {
        Ok(self
            .upload_files()?
            .into_iter()
            .map(|(id, modified, len)| StoredUpload { id, modified, len })
            .collect())
    }

    fn remove_upload(&self, id: &str) -> Result<(), BlobError> {
        Ok(FsBlobs::remove_upload(self, id)?)
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
    #[cfg(target_os = "linux")]
    {
        // Into the buffer's spare capacity: zeroing a megabyte the read overwrites anyway was
        // a pass over memory per megabyte served, like the copy itself.
        use std::os::fd::AsRawFd as _;
        let mut buf = Vec::with_capacity(len);
        while buf.len() < len {
            let at = libc::off_t::try_from(offset + buf.len() as u64)
                .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
            let spare = buf.spare_capacity_mut();
            // SAFETY: pread writes at most `spare.len()` bytes into memory the vector owns and
            // has not initialised; `set_len` below covers only the bytes it reports written.
            let n = unsafe {
                libc::pread(file.as_raw_fd(), spare.as_mut_ptr().cast(), spare.len(), at)
            };
            match usize::try_from(n) {
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                // SAFETY: the kernel initialised these `n` bytes, within the capacity.
                Ok(n) => unsafe { buf.set_len(buf.len() + n) },
                Err(_) => {
                    let e = io::Error::last_os_error();
                    if e.kind() != io::ErrorKind::Interrupted {
                        return Err(e);
                    }
                }
            }
        }
        Ok(buf)
    }
    #[cfg(not(target_os = "linux"))]
    {
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
}

/// Blobs waiting to be read back into the page cache; more are not queued (a hint, not a
/// promise: a blob left out is read from the disk by its first pull).
#[cfg(target_os = "linux")]
const WARM_QUEUE: usize = 64;
/// How long warming waits before looking again whether uploads are still being written.
#[cfg(target_os = "linux")]
const WARM_YIELD: std::time::Duration = std::time::Duration::from_millis(20);

/// Reads published blobs back into the page cache, one blob at a time on one thread of its
/// own, started at the first blob. Their whole blocks were written with `O_DIRECT` (see
/// `upload::Pipeline`), so without this the first pull, usually soon after a push, would wait
/// for the disk; a buffered write would have left them cached.
///
/// One 1 MiB window at a time (`posix_fadvise(WILLNEED)`, then a one-byte read that waits for
/// it), rather than advice over the whole blob: that queued every read of a large blob at
/// once, and the fsyncs of the next metadata commits waited behind them (a 256 MiB push's
/// final commit took 20–150 ms instead of 1–2 ms); and not by reading the blob out, whose
/// copy cost as much CPU as 2,000 manifest pushes. The thread reads only while no upload
/// writer is open, and in the idle I/O class (`lowest_io_priority`): reading the last blob
/// back while the next was written took a third off back-to-back 256 MiB uploads (973 MB/s
/// for the first, 600–700 after).
#[derive(Debug, Clone)]
struct Warmer {
    queue: std::sync::Arc<std::sync::OnceLock<Option<std::sync::mpsc::SyncSender<PathBuf>>>>,
    /// The store's open upload writers, which warming waits for.
    writers: Writers,
}

impl Warmer {
    fn new(writers: Writers) -> Self {
        Self {
            queue: std::sync::Arc::default(),
            writers,
        }
    }

    fn warm(&self, path: PathBuf) {
        #[cfg(target_os = "linux")]
        {
            let queue = self.queue.get_or_init(|| {
                let (tx, rx) = std::sync::mpsc::sync_channel::<PathBuf>(WARM_QUEUE);
                let writers = self.writers.clone();
                std::thread::Builder::new()
                    .name("semdock-warm".into())
                    .spawn(move || {
                        lowest_io_priority();
                        for path in rx {
                            read_through(&path, &writers);
                        }
                    })
                    .ok()
                    .map(|_| tx)
            });
            if let Some(queue) = queue {
                let _ = queue.try_send(path);
            }
        }
        #[cfg(not(target_os = "linux"))]
        let _ = (&self.queue, &self.writers, path);
    }
}

/// Puts the calling thread's reads in the idle I/O class: the disk serves them only when
/// nothing else waits (schedulers that honour classes: mq-deadline, bfq), so warming never
/// slows the uploads and commits that follow a push. Best effort.
#[cfg(target_os = "linux")]
fn lowest_io_priority() {
    const IOPRIO_WHO_PROCESS: libc::c_long = 1;
    const IOPRIO_CLASS_IDLE: libc::c_long = 3;
    const IOPRIO_CLASS_SHIFT: u32 = 13;
    // SAFETY: a plain syscall with integer arguments; `who` 0 is the calling thread.
    unsafe {
        libc::syscall(
            libc::SYS_ioprio_set,
            IOPRIO_WHO_PROCESS,
            0,
            IOPRIO_CLASS_IDLE << IOPRIO_CLASS_SHIFT,
        );
    }
}

/// Reads a blob through the page cache. Best effort: a failure only leaves the pull to read
/// the disk.
#[cfg(target_os = "linux")]
fn read_through(path: &Path, writers: &Writers) {
    use std::os::fd::AsRawFd as _;
    use std::os::unix::fs::FileExt as _;
    let Ok(file) = File::open(path) else { return };
    let len = file.metadata().map_or(0, |m| m.len());
    let window = upload::WRITE_BUFFER as u64;
    let mut byte = [0u8; 1];
    let mut offset = 0;
    while offset < len {
        while !writers.none() {
            std::thread::sleep(WARM_YIELD);
        }
        let n = window.min(len - offset);
        let (Ok(at), Ok(count)) = (libc::off_t::try_from(offset), libc::off_t::try_from(n)) else {
            return;
        };
        // SAFETY: a plain syscall on a descriptor this function owns.
        let advised =
            unsafe { libc::posix_fadvise(file.as_raw_fd(), at, count, libc::POSIX_FADV_WILLNEED) };
        // The kernel reads the window into the cache without copying it out; reading one byte
        // of its last page waits for it, so one window at a time is in flight.
        if advised != 0 || file.read_at(&mut byte, offset + n - 1).is_err() {
            return;
        }
        offset += n;
    }
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
    fn read_at_returns_exactly_the_bytes_asked_for_and_never_reads_past_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b");
        let data: Vec<u8> = (0..3 * upload::WRITE_BUFFER + 5)
            .map(|i| i.wrapping_mul(2_654_435_761).to_le_bytes()[1])
            .collect();
        fs::write(&path, &data).unwrap();
        let file = File::open(&path).unwrap();
        assert_eq!(read_at(&file, 0, 10).unwrap(), &data[..10]);
        let at = upload::WRITE_BUFFER + 3;
        let big = read_at(&file, at as u64, 2 * upload::WRITE_BUFFER).unwrap();
        assert_eq!(big, &data[at..at + 2 * upload::WRITE_BUFFER]);
        let end = data.len() as u64;
        assert_eq!(read_at(&file, end - 5, 5).unwrap(), &data[data.len() - 5..]);
        let past = read_at(&file, end - 5, 6).unwrap_err();
        assert_eq!(past.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn a_warmed_blob_is_read_back_into_the_page_cache_once_no_upload_is_being_written() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsBlobs::open(dir.path()).unwrap();
        store.create_upload("u").unwrap();
        let data: Vec<u8> = (0..32 * upload::WRITE_BUFFER)
            .map(|i| i.wrapping_mul(2_654_435_761).to_le_bytes()[2])
            .collect();
        let mut w = store.append("u", UploadState::default()).unwrap();
        w.write(&data).unwrap();
        let state = w.finish().unwrap();
        let before = resident(&store.upload_path("u"));
        assert!(
            before < 0.5,
            "whole blocks bypass the page cache; cached: {before:.2}"
        );
        let digest = state.digest();
        store.publish("u", &digest).unwrap();
        let path = store.blob_path(&digest);
        // Another upload is being written: warming waits for it.
        store.create_upload("v").unwrap();
        let other = store.append("v", UploadState::default()).unwrap();
        store.warm(&digest, state.len());
        std::thread::sleep(std::time::Duration::from_millis(300));
        let waiting = resident(&path);
        assert!(
            waiting < 0.5,
            "warmed while an upload was written: {waiting:.2}"
        );
        drop(other);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let mut after = resident(&path);
        while after < 0.99 && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(20));
            after = resident(&path);
        }
        assert!(after >= 0.99, "cached after the upload ended: {after:.2}");
    }
}
