//! Writing an upload: bytes are hashed as they are written, never re-read to be hashed, and
//! the hash state survives between requests of a chunked upload.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::Path;

use crate::model::Algorithm;
use crate::store::blobs::UploadState;

/// Bytes gathered before one write to the file; large writes keep syscalls off the hot path.
pub(super) const WRITE_BUFFER: usize = 1 << 20;
/// Alignment of direct I/O: offsets, lengths and buffer addresses (a page; any block size
/// a Linux filesystem uses divides it).
const ALIGN: usize = 4096;
/// Full buffers in flight to the file while the next one fills (see `Pipeline`).
const BUFFERS_IN_FLIGHT: usize = 2;

/// Rebuilds an upload's state by hashing the file's current bytes with `algorithm`.
pub fn hash_file(path: &Path, algorithm: Algorithm) -> io::Result<UploadState> {
    let mut file = File::open(path)?;
    let mut state = UploadState::new(algorithm);
    let mut buf = vec![0; WRITE_BUFFER];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            return Ok(state);
        }
        state.update(&buf[..n]);
    }
}

/// A `WRITE_BUFFER`-sized buffer at a page-aligned address, as direct I/O needs.
struct Block {
    memory: Vec<u8>,
    start: usize,
    filled: usize,
}

/// Blocks of finished writers, kept for the next: an upload's chunk would otherwise start by
/// zeroing (or faulting in) fresh megabytes, on the path of every PATCH.
static SPARE_BLOCKS: std::sync::Mutex<Vec<Block>> = std::sync::Mutex::new(Vec::new());
/// One writer's worth: the block filling and those in flight.
const SPARE_BLOCKS_KEPT: usize = BUFFERS_IN_FLIGHT + 1;

fn spare_blocks() -> std::sync::MutexGuard<'static, Vec<Block>> {
    SPARE_BLOCKS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Block {
    /// A kept block if there is one, else a new one.
    fn new() -> Self {
        if let Some(block) = spare_blocks().pop() {
            return block;
        }
        let memory = vec![0; WRITE_BUFFER + ALIGN];
        let start = memory.as_ptr().align_offset(ALIGN).min(ALIGN);
        Self {
            memory,
            start,
            filled: 0,
        }
    }

    fn bytes(&self) -> &[u8] {
        &self.memory[self.start..self.start + self.filled]
    }

    /// Copies what fits of `bytes`; returns how much that was.
    fn fill(&mut self, bytes: &[u8]) -> usize {
        let take = (WRITE_BUFFER - self.filled).min(bytes.len());
        let at = self.start + self.filled;
        self.memory[at..at + take].copy_from_slice(&bytes[..take]);
        self.filled += take;
        take
    }

    fn is_full(&self) -> bool {
        self.filled == WRITE_BUFFER
    }
}

impl Drop for Block {
    fn drop(&mut self) {
        if self.memory.is_empty() {
            return;
        }
        let mut spare = spare_blocks();
        if spare.len() < SPARE_BLOCKS_KEPT {
            spare.push(Self {
                memory: std::mem::take(&mut self.memory),
                start: self.start,
                filled: 0,
            });
        }
    }
}

/// A thread writing full blocks to the file while the caller hashes and fills the next one:
/// the upload runs at the slower of SHA-256 and the disk rather than at their sum.
///
/// On Linux the file is written with `O_DIRECT` when the upload's length is page-aligned (the
/// usual case: a new upload, or chunks of whole MiBs): blocks go from the buffer to the disk,
/// without being copied into the page cache first, so a large push neither evicts the cache
/// nor leaves gigabytes of dirty pages for the final fsync. Elsewhere, or where the file
/// system refuses direct I/O, the same thread writes through the page cache.
struct Pipeline {
    to_writer: std::sync::mpsc::SyncSender<(Block, UploadState)>,
    spare: std::sync::mpsc::Receiver<Block>,
    thread: std::thread::JoinHandle<(UploadState, io::Result<()>)>,
    allocated: usize,
}

impl Pipeline {
    fn start(path: &Path, written: UploadState) -> io::Result<Self> {
        let mut out = open_for_blocks(path, written.len())?;
        {
            use std::io::Seek;
            out.seek(io::SeekFrom::Start(written.len()))?;
        }
        let (to_writer, from_filler) =
            std::sync::mpsc::sync_channel::<(Block, UploadState)>(BUFFERS_IN_FLIGHT - 1);
        let (give_back, spare) = std::sync::mpsc::sync_channel::<Block>(BUFFERS_IN_FLIGHT + 1);
        let thread = std::thread::Builder::new()
            .name("semdock-upload".into())
            .spawn(move || {
                // What the file holds so far: the state after the last block written.
                let mut written = written;
                for (mut block, after) in from_filler {
                    if let Err(e) = out.write_all(block.bytes()) {
                        return (written, Err(e));
                    }
                    written = after;
                    block.filled = 0;
                    let _ = give_back.try_send(block);
                }
                (written, Ok(()))
            })?;
        Ok(Self {
            to_writer,
            spare,
            thread,
            allocated: 0,
        })
    }

    /// An empty block: a returned one, a new one while few exist, else waits for one.
    fn empty_block(&mut self) -> Option<Block> {
        if let Ok(block) = self.spare.try_recv() {
            return Some(block);
        }
        if self.allocated < BUFFERS_IN_FLIGHT {
            self.allocated += 1;
            return Some(Block::new());
        }
        self.spare.recv().ok()
    }

    /// Waits for the writes to end; returns the state of what reached the file.
    fn join(self) -> (UploadState, io::Result<()>) {
        drop(self.to_writer);
        self.thread.join().unwrap_or_else(|_| {
            (
                UploadState::default(),
                Err(io::Error::other("upload writer panicked")),
            )
        })
    }
}

/// The file opened for writing whole blocks at `offset`: with `O_DIRECT` where that works.
fn open_for_blocks(path: &Path, offset: u64) -> io::Result<File> {
    #[cfg(target_os = "linux")]
    if offset.is_multiple_of(ALIGN as u64) {
        use std::os::unix::fs::OpenOptionsExt;
        if let Ok(file) = OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_DIRECT)
            .open(path)
        {
            return Ok(file);
        }
    }
    let _ = offset;
    OpenOptions::new().write(true).open(path)
}

/// Appends to an upload file. Bytes count (and are hashed) only once written to the file, so
/// after a failed write the state still describes a prefix of the file.
pub struct UploadWriter {
    path: std::path::PathBuf,
    file: File,
    /// Every byte taken, hashed as it arrived: written, on its way to the file in a block, or
    /// in the block filling now.
    state: UploadState,
    /// What the file holds while no writing thread runs: where the next one starts.
    on_file: UploadState,
    /// The block filling now.
    block: Block,
    /// Started when the first block is full (small uploads never need it).
    pipeline: Option<Pipeline>,
    /// Counts this writer as open while it lives (see `FsBlobs::append`).
    open: Option<super::WriterOpen>,
}

impl UploadWriter {
    pub(super) fn open(path: &Path, state: UploadState) -> io::Result<Self> {
        let file = OpenOptions::new().write(true).open(path)?;
        // Cut any tail a failed earlier write left beyond what was counted.
        file.set_len(state.len())?;
        Ok(Self {
            path: path.to_owned(),
            file,
            on_file: state.clone(),
            state,
            block: Block::new(),
            pipeline: None,
            open: None,
        })
    }

    pub(super) fn counted(&mut self, open: super::WriterOpen) {
        self.open = Some(open);
    }

    /// Length including bytes still buffered.
    #[must_use]
    pub fn len(&self) -> u64 {
        self.state.len()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn write(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            let took = self.block.fill(bytes);
            // Hashed now, not when the block is full: the hash keeps pace with the socket, so
            // a request's end waits only for its last write, not for a block's hash as well.
            self.state.update(&bytes[..took]);
            bytes = &bytes[took..];
            if self.block.is_full() {
                self.hand_on()?;
            }
        }
        Ok(())
    }

    /// Passes the full block to the writing thread.
    fn hand_on(&mut self) -> io::Result<()> {
        let pipeline = match &mut self.pipeline {
            Some(pipeline) => pipeline,
            None => self
                .pipeline
                .insert(Pipeline::start(&self.path, self.on_file.clone())?),
        };
        let Some(next) = pipeline.empty_block() else {
            return Err(self.writer_failed());
        };
        let full = std::mem::replace(&mut self.block, next);
        if pipeline.to_writer.send((full, self.state.clone())).is_err() {
            return Err(self.writer_failed());
        }
        Ok(())
    }

    /// The writing thread stopped early, which it does only on a failed write: its error.
    fn writer_failed(&mut self) -> io::Error {
        self.stop_pipeline()
            .err()
            .unwrap_or_else(|| io::Error::other("the upload writer stopped"))
    }

    /// Waits for the writing thread; afterwards `state` describes exactly the file.
    fn stop_pipeline(&mut self) -> io::Result<()> {
        let Some(pipeline) = self.pipeline.take() else {
            return Ok(());
        };
        let (written, result) = pipeline.join();
        if result.is_err() {
            // Bytes in blocks that never reached the file do not count.
            self.state = written.clone();
            self.on_file = written;
            self.block.filled = 0;
        }
        result
    }

    /// Writes what is buffered and returns the state to keep for the next request.
    pub fn finish(mut self) -> io::Result<UploadState> {
        self.stop_pipeline()?;
        if self.block.filled > 0 {
            use std::io::Seek;
            let tail = self.state.len() - self.block.filled as u64;
            self.file.seek(io::SeekFrom::Start(tail))?;
            self.file.write_all(self.block.bytes())?;
            self.block.filled = 0;
        }
        Ok(std::mem::take(&mut self.state))
    }
}

impl Drop for UploadWriter {
    fn drop(&mut self) {
        // A request that failed: let the writes in flight end before anyone reopens the file.
        let _ = self.stop_pipeline();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Digest;

    #[test]
    fn a_finished_writers_blocks_serve_the_next_writer_unzeroed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("u");
        File::create(&path).unwrap();
        let mut w = UploadWriter::open(&path, UploadState::default()).unwrap();
        w.write(&vec![7; 3 * WRITE_BUFFER + 5]).unwrap();
        let kept: Vec<*const u8> = {
            let state = w.finish().unwrap();
            assert_eq!(state.len(), 3 * WRITE_BUFFER as u64 + 5);
            spare_blocks().iter().map(|b| b.memory.as_ptr()).collect()
        };
        // The writer's own block and at least one of the writing thread's (a second only
        // when the first had not come back by the time the next was full).
        assert!(
            (2..=SPARE_BLOCKS_KEPT).contains(&kept.len()),
            "{} blocks kept",
            kept.len()
        );
        let reused = Block::new();
        assert!(kept.contains(&reused.memory.as_ptr()));
        // Handed out with nothing counted as filled, whatever it held before.
        assert_eq!(reused.bytes(), b"");
        assert_eq!(spare_blocks().len(), kept.len() - 1);
    }

    #[test]
    fn hash_state_carries_across_writers_and_matches_a_rehash() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("u");
        File::create(&path).unwrap();
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        let mut w = UploadWriter::open(&path, UploadState::default()).unwrap();
        w.write(&data[..10]).unwrap();
        w.write(&data[10..2_000_000]).unwrap();
        let state = w.finish().unwrap();
        let mut w = UploadWriter::open(&path, state).unwrap();
        w.write(&data[2_000_000..]).unwrap();
        let state = w.finish().unwrap();
        assert_eq!(state.len(), data.len() as u64);
        assert_eq!(state.digest(), Digest::of(&data));
        assert_eq!(
            hash_file(&path, Algorithm::Sha256).unwrap().digest(),
            Digest::of(&data)
        );
    }

    #[test]
    fn whole_blocks_resume_aligned_and_odd_tails_resume_unaligned() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("u");
        File::create(&path).unwrap();
        let data: Vec<u8> = (0..5 * WRITE_BUFFER + 77)
            .map(|i| i.wrapping_mul(2_654_435_761).to_le_bytes()[1])
            .collect();
        // 2 MiB exactly (the next writer starts aligned), then 1 MiB + 77 bytes (unaligned),
        // then the rest in small pieces.
        let cuts = [2 * WRITE_BUFFER, 3 * WRITE_BUFFER + 77, data.len()];
        let mut state = UploadState::default();
        let mut from = 0;
        for to in cuts {
            let mut w = UploadWriter::open(&path, state).unwrap();
            for piece in data[from..to].chunks(65_536 + 3) {
                w.write(piece).unwrap();
            }
            assert_eq!(w.len(), to as u64);
            state = w.finish().unwrap();
            assert_eq!(state.digest(), Digest::of(&data[..to]));
            assert_eq!(std::fs::read(&path).unwrap(), &data[..to]);
            from = to;
        }
    }

    #[test]
    fn a_writer_dropped_mid_upload_leaves_a_prefix_the_next_one_trims() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("u");
        File::create(&path).unwrap();
        let data = vec![7u8; 3 * WRITE_BUFFER + 5];
        let mut w = UploadWriter::open(&path, UploadState::default()).unwrap();
        w.write(&data).unwrap();
        drop(w);
        // What reached the file is whole blocks at most, and re-hashing it gives its state.
        let on_disk = std::fs::read(&path).unwrap();
        assert!(on_disk.len() <= 3 * WRITE_BUFFER && on_disk.len().is_multiple_of(WRITE_BUFFER));
        let state = hash_file(&path, Algorithm::Sha256).unwrap();
        let mut w = UploadWriter::open(&path, state).unwrap();
        let have = usize::try_from(w.len()).unwrap();
        w.write(&data[have..]).unwrap();
        assert_eq!(w.finish().unwrap().digest(), Digest::of(&data));
    }

    #[test]
    fn reopening_cuts_an_uncounted_tail() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("u");
        std::fs::write(&path, b"abcdef").unwrap();
        let state = hash_file(&path, Algorithm::Sha256).unwrap();
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"torn")
            .unwrap();
        let w = UploadWriter::open(&path, state).unwrap();
        assert_eq!(w.finish().unwrap().digest(), Digest::of(b"abcdef"));
        assert_eq!(std::fs::read(&path).unwrap(), b"abcdef");
    }
}
