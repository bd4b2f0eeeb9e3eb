//! Appending to an upload session in the bucket, a multipart part at a time.

use std::io;
use std::sync::Arc;

use bytes::Bytes;
use object_store::PutPayload;
use object_store::multipart::{MultipartStore as _, PartId};

use super::{Inner, PART, Session, store_error};
use crate::store::blobs::{BlobError, UploadSink, UploadState};

/// One request's appending: bytes gather into `PART`-sized parts, each uploaded while the
/// next fills; what is left over becomes the session's new tail when the request ends.
pub(super) struct S3Sink {
    pub(super) inner: Arc<Inner>,
    pub(super) id: String,
    pub(super) session: Session,
    /// The hash of every byte, those still in `buffer` included.
    pub(super) state: UploadState,
    /// The bytes after the session's parts (its old tail, then this request's).
    pub(super) buffer: Vec<u8>,
    /// The part being uploaded.
    pub(super) in_flight: Option<std::sync::mpsc::Receiver<object_store::Result<PartId>>>,
    pub(super) changed: bool,
}

impl S3Sink {
    /// Waits for the part in flight and records it.
    fn settle(&mut self) -> Result<(), BlobError> {
        if let Some(done) = self.in_flight.take() {
            let part = done
                .recv()
                .map_err(|_| io::Error::other("the object store's runtime stopped"))?
                .map_err(store_error)?;
            self.session.parts.push(part.content_id);
        }
        Ok(())
    }

    /// Starts uploading the first `PART` bytes of the buffer as the next part.
    fn send_part(&mut self) -> Result<(), BlobError> {
        self.settle()?;
        let key = self.inner.upload_key(&self.id, "data");
        let multipart = if let Some(m) = &self.session.multipart {
            m.clone()
        } else {
            let k = key.clone();
            let m = self
                .inner
                .run(|c| async move { c.create_multipart(&k).await })?;
            self.session.multipart = Some(m.clone());
            m
        };
        let rest = self.buffer.split_off(PART);
        let part = Bytes::from(std::mem::replace(&mut self.buffer, rest));
        let idx = self.session.parts.len();
        let (done, result) = std::sync::mpsc::sync_channel(1);
        let client = self.inner.client.clone();
        self.inner.runtime.handle().spawn(async move {
            let sent = client
                .put_part(&key, &multipart, idx, PutPayload::from(part))
                .await;
            let _ = done.send(sent);
        });
        self.in_flight = Some(result);
        Ok(())
    }
}

impl UploadSink for S3Sink {
    fn write(&mut self, bytes: &[u8]) -> Result<(), BlobError> {
        self.changed |= !bytes.is_empty();
        self.state.update(bytes);
        self.buffer.extend_from_slice(bytes);
        while self.buffer.len() >= PART {
            self.send_part()?;
        }
        Ok(())
    }

    fn offset(&self) -> u64 {
        self.state.len()
    }

    fn finish(mut self: Box<Self>) -> Result<UploadState, BlobError> {
        self.settle()?;
        if !self.changed {
            self.inner.wrote(&self.id, &self.session, false);
            return Ok(self.state);
        }
        let old_tail = self.session.tail.take();
        self.session.tail_len = self.buffer.len() as u64;
        if !self.buffer.is_empty() {
            let name = format!("tail-{}", self.state.len());
            let key = self.inner.upload_key(&self.id, &name);
            self.inner
                .put(key, Bytes::from(std::mem::take(&mut self.buffer)))?;
            self.session.tail = Some(name);
        }
        self.session.hash = self.state.suspend();
        self.inner.put_session(&self.id, &self.session)?;
        self.inner.wrote(&self.id, &self.session, true);
        if let Some(old) = old_tail
            && self.session.tail.as_ref() != Some(&old)
        {
            // Best effort: a tail left behind goes with its session.
            let _ = self.inner.delete(self.inner.upload_key(&self.id, &old));
        }
        Ok(self.state)
    }
}
