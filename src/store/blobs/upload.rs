//! Writing an upload: bytes are hashed as they are written, never re-read to be hashed, and
//! the hash state survives between requests of a chunked upload.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::Path;

use sha2::{Digest as _, Sha256};

use crate::model::Digest;

/// Bytes gathered before one write to the file; large writes keep syscalls off the hot path.
const WRITE_BUFFER: usize = 1 << 20;

/// How far an upload has come: its length and the hash of those bytes.
#[derive(Clone, Default)]
pub struct UploadState {
    hasher: Sha256,
    len: u64,
}

impl UploadState {
    /// Rebuilds the state by hashing the file's current bytes.
    pub fn from_file(path: &Path) -> io::Result<Self> {
        let mut file = File::open(path)?;
        let mut state = Self::default();
        let mut buf = vec![0; WRITE_BUFFER];
        loop {
            let n = file.read(&mut buf)?;
            if n == 0 {
                return Ok(state);
            }
            state.hasher.update(&buf[..n]);
            state.len += n as u64;
        }
    }

    /// Bytes received so far.
    #[must_use]
    pub fn len(&self) -> u64 {
        self.len
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The digest of the bytes received so far.
    #[must_use]
    pub fn digest(&self) -> Digest {
        Digest::from_sha256(&self.hasher.clone().finalize())
    }
}

/// Appends to an upload file. Bytes count (and are hashed) only once written to the file, so
/// after a failed write the state still describes a prefix of the file.
pub struct UploadWriter {
    file: File,
    state: UploadState,
    buf: Vec<u8>,
}

impl UploadWriter {
    pub(super) fn open(path: &Path, state: UploadState) -> io::Result<Self> {
        let file = OpenOptions::new().write(true).open(path)?;
        // Cut any tail a failed earlier write left beyond what was counted.
        file.set_len(state.len)?;
        let mut writer = Self {
            file,
            state,
            buf: Vec::with_capacity(WRITE_BUFFER),
        };
        writer.seek_end()?;
        Ok(writer)
    }

    fn seek_end(&mut self) -> io::Result<()> {
        use std::io::Seek;
        self.file.seek(io::SeekFrom::End(0)).map(drop)
    }

    /// Length including bytes still buffered.
    #[must_use]
    pub fn len(&self) -> u64 {
        self.state.len + self.buf.len() as u64
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn write(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            let room = WRITE_BUFFER - self.buf.len();
            if self.buf.is_empty() && bytes.len() >= WRITE_BUFFER {
                // A large chunk goes straight to the file, skipping the copy into the buffer.
                self.commit(bytes)?;
                return Ok(());
            }
            let take = room.min(bytes.len());
            self.buf.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if self.buf.len() == WRITE_BUFFER {
                self.flush_buffer()?;
            }
        }
        Ok(())
    }

    fn commit(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.file.write_all(bytes)?;
        self.state.hasher.update(bytes);
        self.state.len += bytes.len() as u64;
        Ok(())
    }

    fn flush_buffer(&mut self) -> io::Result<()> {
        let buf = std::mem::take(&mut self.buf);
        let result = self.commit(&buf);
        self.buf = buf;
        self.buf.clear();
        result
    }

    /// Writes what is buffered and returns the state to keep for the next request.
    pub fn finish(mut self) -> io::Result<UploadState> {
        self.flush_buffer()?;
        Ok(self.state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            UploadState::from_file(&path).unwrap().digest(),
            Digest::of(&data)
        );
    }

    #[test]
    fn reopening_cuts_an_uncounted_tail() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("u");
        std::fs::write(&path, b"abcdef").unwrap();
        let state = UploadState::from_file(&path).unwrap();
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
