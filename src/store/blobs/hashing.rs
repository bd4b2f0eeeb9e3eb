//! How far an upload has come: its length and the hash state of its bytes, shared by every
//! engine (each resumes it from what it stores; none re-reads bytes to hash them).

use crate::model::{Algorithm, Digest, Hasher};

/// How far an upload has come: its length and the hash of those bytes.
#[derive(Clone, Default)]
pub struct UploadState {
    hasher: Hasher,
    len: u64,
}

impl UploadState {
    /// A new, empty upload hashed with `algorithm`.
    #[must_use]
    pub fn new(algorithm: Algorithm) -> Self {
        Self {
            hasher: algorithm.hasher(),
            len: 0,
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
        self.hasher.clone().finish()
    }

    /// The state as bytes, for a store that keeps it between requests on several nodes.
    #[must_use]
    pub fn suspend(&self) -> Vec<u8> {
        let mut out = self.len.to_be_bytes().to_vec();
        out.extend_from_slice(&self.hasher.suspend());
        out
    }

    /// A state from what `suspend` returned; `None` when the bytes are not one.
    #[must_use]
    pub fn resume(bytes: &[u8]) -> Option<Self> {
        let (len, hasher) = bytes.split_first_chunk::<8>()?;
        Some(Self {
            hasher: Hasher::resume(hasher)?,
            len: u64::from_be_bytes(*len),
        })
    }

    /// The algorithm it hashes by.
    #[must_use]
    pub fn algorithm(&self) -> Algorithm {
        self.hasher.algorithm()
    }

    /// Takes the next bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        self.hasher.update(bytes);
        self.len += bytes.len() as u64;
    }
}
