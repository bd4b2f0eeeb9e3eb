//! Reading a blob from the bucket: one streaming GET per run of sequential reads.

use std::io;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures_util::StreamExt as _;
use futures_util::stream::BoxStream;
use object_store::path::Path as Key;
use object_store::{GetOptions, GetRange, ObjectStore as _};

use super::{Inner, store_error};
use crate::store::blobs::{BlobError, BlobRead};

/// Reading one blob: sequential reads continue one streaming GET; a read elsewhere starts
/// another from there.
pub(super) struct S3Read {
    pub(super) inner: Arc<Inner>,
    pub(super) key: Key,
    pub(super) len: u64,
    /// The object's entity tag when it was opened: every read asks for that version only
    /// (`If-Match`), so an object replaced since fails the read rather than mixing versions.
    pub(super) etag: Option<String>,
    pub(super) reading: Mutex<Option<Reading>>,
}

pub(super) struct Reading {
    /// Where the next byte of `body` (after `pending`) is in the blob.
    at: u64,
    pending: Bytes,
    body: BoxStream<'static, object_store::Result<Bytes>>,
}

impl BlobRead for S3Read {
    fn read_at(&self, offset: u64, len: usize) -> Result<Vec<u8>, BlobError> {
        if offset.saturating_add(len as u64) > self.len {
            return Err(io::Error::from(io::ErrorKind::UnexpectedEof).into());
        }
        let mut reading = self
            .reading
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut current = match reading.take() {
            Some(r) if r.at == offset => r,
            _ => {
                let (key, etag) = (self.key.clone(), self.etag.clone());
                let body = self.inner.run(|c| async move {
                    let options = GetOptions {
                        if_match: etag,
                        ..GetOptions::new().with_range(Some(GetRange::Offset(offset)))
                    };
                    Ok(c.get_opts(&key, options).await?.into_stream())
                })?;
                Reading {
                    at: offset,
                    pending: Bytes::new(),
                    body,
                }
            }
        };
        // One trip to the engine's runtime per read, however many pieces the body arrives in.
        let (mut current, out) = self.inner.runtime.run(async move {
            let mut out = Vec::with_capacity(len);
            while out.len() < len {
                if current.pending.is_empty() {
                    match current.body.next().await {
                        Some(Ok(bytes)) => current.pending = bytes,
                        Some(Err(e)) => return (current, Err(store_error(e))),
                        None => {
                            return (
                                current,
                                Err(io::Error::from(io::ErrorKind::UnexpectedEof).into()),
                            );
                        }
                    }
                }
                let n = current.pending.len().min(len - out.len());
                out.extend_from_slice(&current.pending.split_to(n));
            }
            (current, Ok(out))
        });
        let out = out?;
        current.at = offset + len as u64;
        *reading = Some(current);
        Ok(out)
    }

    fn stored_len(&self) -> Result<u64, BlobError> {
        Ok(self.len)
    }

    /// The entity tag read when the blob was opened; reads are bound to it (`If-Match`).
    fn fingerprint(&self) -> Result<Option<crate::store::blobs::Fingerprint>, BlobError> {
        Ok(self
            .etag
            .as_ref()
            .map(|etag| crate::store::blobs::Fingerprint::Object {
                etag: etag.clone(),
                len: self.len,
            }))
    }
}
