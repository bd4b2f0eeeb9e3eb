//! The S3 blob engine: blobs and upload sessions as objects in a bucket that several nodes
//! share (any S3-compatible store: AWS, Garage, MinIO, Ceph).
//!
//! Layout under the configured prefix:
//!
//! - `blobs/<algorithm>/<hex>`: a published blob, written once by a server-side copy.
//! - `uploads/<id>/state`: an upload session (`Session`, postcard): the S3 multipart upload
//!   behind it, its parts, the object holding the bytes after the parts, and the suspended
//!   hash state of every byte. Rewritten at the end of each request: it is the commit point,
//!   so a request cut short leaves the session as its previous request ended.
//! - `uploads/<id>/tail-<len>`: the bytes after the last part (less than `PART`), named by
//!   the session's length so that a new tail never overwrites the one a session names.
//! - `uploads/<id>/data`: the assembled multipart upload, just before publishing.
//! - `set-aside/<algorithm>-<hex>-<seconds>`: a damaged blob moved out of the way.
//!
//! Any node can continue any session: nothing of it lives on local disk or in memory
//! between requests. No correctness rests on the store's conditional writes (Garage does
//! not enforce them): a blob's name is its content, and whoever wins a race to publish it
//! wrote the same bytes.

mod read;
mod sink;

use std::io;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures_util::StreamExt as _;
use futures_util::stream::BoxStream;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::multipart::{MultipartStore as _, PartId};
use object_store::path::Path as Key;
use object_store::{
    BackoffConfig, ClientOptions, ObjectStore as _, ObjectStoreExt as _, PutPayload, RetryConfig,
};
use serde::{Deserialize, Serialize};

use super::{
    BlobError, BlobRead, Blobs, StoredBlob, StoredUpload, UploadSink, UploadState, Uploads,
    read_all,
};
use crate::model::{Algorithm, Digest};
use crate::store::engine_runtime::EngineRuntime;
use read::S3Read;
use sink::S3Sink;

/// Bytes of every multipart part but the last: above S3's 5 MiB minimum. An upload request
/// holds at most this much besides the part in flight.
pub const PART: usize = 8 << 20;

/// Objects listed per round trip to the engine's runtime.
const LIST_BATCH: usize = 1000;

/// Where the blobs are and who the registry is to the store.
#[derive(Clone)]
pub struct S3Location {
    /// `http(s)://host:port` of an S3-compatible store; AWS's regional endpoint when `None`.
    pub endpoint: Option<String>,
    pub bucket: String,
    pub region: String,
    /// Path-style requests (`endpoint/bucket/key`) rather than virtual-hosted ones.
    pub path_style: bool,
    pub access_key_id: String,
    pub secret_access_key: String,
    /// Prepended to every key (`team-a` puts blobs under `team-a/blobs/`); may be empty.
    pub prefix: String,
}

impl std::fmt::Debug for S3Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Location")
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .field("path_style", &self.path_style)
            .field("access_key_id", &self.access_key_id)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// The S3 blob engine.
pub struct S3Blobs {
    inner: Arc<Inner>,
    /// How long a presigned GET URL stays valid, when blob reads are redirected to them.
    redirect: Option<Duration>,
}

struct Inner {
    client: Arc<AmazonS3>,
    runtime: EngineRuntime,
    /// The key prefix with its trailing `/`, or empty.
    prefix: String,
    bucket: String,
    /// The session record each upload's last request on this node wrote (or read, when it
    /// wrote nothing), for the publish that ends the same request: a completing request
    /// reads its session once (docs/SCALING.md). Taken by `publish`, dropped by
    /// any other use of the upload (which reads the record afresh, since another node may
    /// have appended); bounded.
    written: Mutex<std::collections::HashMap<String, Written>>,
}

/// A session as a request of this node left it.
struct Written {
    session: Session,
    /// The tail object was written by that request, so its length is known to be the
    /// session's `tail_len`.
    tail_exact: bool,
}

/// Sessions remembered for their completing request: a request that ends without one
/// leaves an entry, so the map starts empty again when it reaches this.
const WRITTEN_ENTRIES: usize = 1024;

/// An upload session as stored in `uploads/<id>/state`.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct Session {
    /// The S3 multipart upload, once a first part was written.
    multipart: Option<String>,
    /// The parts' ids, in order: part `i` holds bytes `i * PART .. (i + 1) * PART`.
    parts: Vec<String>,
    /// The object holding the bytes after the parts, when there are any.
    tail: Option<String>,
    tail_len: u64,
    /// `UploadState::suspend` of every byte.
    hash: Vec<u8>,
    /// The multipart upload was completed into `uploads/<id>/data` (all bytes, tail
    /// included); the session cannot grow any more.
    assembled: bool,
}

impl Session {
    fn len(&self) -> u64 {
        self.parts.len() as u64 * PART as u64 + self.tail_len
    }

    /// The hash state by `algorithm` of every byte, when the record holds it (it holds the
    /// algorithm the upload streamed with).
    fn state(&self, algorithm: Algorithm) -> Option<UploadState> {
        if self.len() == 0 {
            return Some(UploadState::new(algorithm));
        }
        UploadState::resume(&self.hash)
            .filter(|s| s.algorithm() == algorithm && s.len() == self.len())
    }
}

/// An object-store failure as a blob error: a missing object is `NotFound`; anything else
/// means the store did not do what was asked (down, refusing the credentials, out of
/// space): `Unavailable`, which the domain answers with 503.
fn store_error(e: object_store::Error) -> BlobError {
    match e {
        object_store::Error::NotFound { .. } => io::Error::new(io::ErrorKind::NotFound, e).into(),
        e => BlobError::Unavailable(e.to_string()),
    }
}

fn corrupt(what: &str) -> BlobError {
    io::Error::new(io::ErrorKind::InvalidData, what.to_owned()).into()
}

/// Whether `e` says the object asked for is not there.
fn not_found(e: &BlobError) -> bool {
    e.io_kind() == Some(io::ErrorKind::NotFound)
}

impl S3Blobs {
    /// The engine on `location`. Makes no request: `probe` says whether the bucket answers.
    pub fn open(location: &S3Location) -> io::Result<Self> {
        // reqwest's rustls needs a process-wide provider; the server's TLS uses the same.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(&location.bucket)
            .with_region(&location.region)
            .with_access_key_id(&location.access_key_id)
            .with_secret_access_key(&location.secret_access_key)
            .with_virtual_hosted_style_request(!location.path_style)
            .with_retry(RetryConfig {
                backoff: BackoffConfig::default(),
                max_retries: 3,
                retry_timeout: Duration::from_secs(15),
            })
            // No limit on a whole request: a blob streams to a slow client for as long as it
            // reads. A store that does not answer is noticed when connecting.
            .with_client_options(
                ClientOptions::new()
                    .with_connect_timeout(Duration::from_secs(5))
                    .with_timeout_disabled()
                    .with_allow_http(
                        location
                            .endpoint
                            .as_deref()
                            .is_some_and(|e| e.starts_with("http://")),
                    ),
            );
        if let Some(endpoint) = &location.endpoint {
            builder = builder.with_endpoint(endpoint);
        }
        let client = builder.build().map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("the S3 settings are not usable: {e}"),
            )
        })?;
        let prefix = location.prefix.trim_matches('/');
        Ok(Self {
            inner: Arc::new(Inner {
                client: Arc::new(client),
                runtime: EngineRuntime::new("semdock-s3", 2)?,
                prefix: if prefix.is_empty() {
                    String::new()
                } else {
                    format!("{prefix}/")
                },
                bucket: location.bucket.clone(),
                written: Mutex::default(),
            }),
            redirect: None,
        })
    }

    /// Blob reads answered with presigned URLs valid for `valid` (see `Blobs::redirect`).
    #[must_use]
    pub fn with_redirects(mut self, valid: Duration) -> Self {
        self.redirect = Some(valid);
        self
    }
}

impl Inner {
    fn key(&self, rest: &str) -> Key {
        Key::from(format!("{}{rest}", self.prefix))
    }

    fn blob_key(&self, digest: &Digest) -> Key {
        self.key(&format!(
            "blobs/{}/{}",
            digest.algorithm().name(),
            digest.hex()
        ))
    }

    fn upload_key(&self, id: &str, what: &str) -> Key {
        self.key(&format!("uploads/{id}/{what}"))
    }

    /// Runs `work` with the client on the engine's runtime.
    fn run<T: Send + 'static, F: Future<Output = object_store::Result<T>> + Send + 'static>(
        &self,
        work: impl FnOnce(Arc<AmazonS3>) -> F,
    ) -> Result<T, BlobError> {
        self.runtime
            .run(work(self.client.clone()))
            .map_err(store_error)
    }

    fn size(&self, key: Key) -> Result<Option<u64>, BlobError> {
        Ok(self.head(key)?.map(|meta| meta.size))
    }

    fn head(&self, key: Key) -> Result<Option<object_store::ObjectMeta>, BlobError> {
        match self.run(|c| async move { c.head(&key).await }) {
            Ok(meta) => Ok(Some(meta)),
            Err(e) if not_found(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn get(&self, key: Key) -> Result<Bytes, BlobError> {
        self.run(|c| async move { c.get(&key).await?.bytes().await })
    }

    fn put(&self, key: Key, bytes: Bytes) -> Result<(), BlobError> {
        self.run(|c| async move { c.put(&key, PutPayload::from(bytes)).await.map(drop) })
    }

    fn delete(&self, key: Key) -> Result<(), BlobError> {
        match self.run(|c| async move { c.delete(&key).await }) {
            Err(e) if !not_found(&e) => Err(e),
            _ => Ok(()),
        }
    }

    fn copy(&self, from: Key, to: Key) -> Result<(), BlobError> {
        self.run(|c| async move { c.copy(&from, &to).await })
    }

    fn session(&self, id: &str) -> Result<Option<Session>, BlobError> {
        match self.get(self.upload_key(id, "state")) {
            Ok(bytes) => postcard::from_bytes(&bytes)
                .map(Some)
                .map_err(|_| corrupt(&format!("upload {id}'s session record is damaged"))),
            Err(e) if not_found(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn existing_session(&self, id: &str) -> Result<Session, BlobError> {
        self.session(id)?.ok_or_else(|| {
            io::Error::new(io::ErrorKind::NotFound, format!("no upload {id} is stored")).into()
        })
    }

    /// Remembers the session a request of this node leaves, for its publish.
    fn wrote(&self, id: &str, session: &Session, tail_exact: bool) {
        let mut written = self
            .written
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if written.len() >= WRITTEN_ENTRIES {
            written.clear();
        }
        written.insert(
            id.to_owned(),
            Written {
                session: session.clone(),
                tail_exact,
            },
        );
    }

    fn take_written(&self, id: &str) -> Option<Written> {
        self.written
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(id)
    }

    fn put_session(&self, id: &str, session: &Session) -> Result<(), BlobError> {
        let bytes = postcard::to_stdvec(session).map_err(io::Error::other)?;
        self.put(self.upload_key(id, "state"), bytes.into())
    }

    /// The bytes after the parts.
    fn tail(&self, id: &str, session: &Session) -> Result<Vec<u8>, BlobError> {
        let Some(tail) = &session.tail else {
            return Ok(Vec::new());
        };
        let bytes = self.get(self.upload_key(id, tail))?;
        let len = usize::try_from(session.tail_len).unwrap_or(usize::MAX);
        if bytes.len() < len {
            return Err(corrupt(&format!("upload {id}'s last bytes are missing")));
        }
        Ok(bytes[..len].to_vec())
    }

    /// Every object whose key starts with `rest` (under the prefix), a batch at a time.
    fn each_object(
        &self,
        rest: &str,
        f: &mut dyn FnMut(object_store::ObjectMeta) -> Result<(), BlobError>,
    ) -> Result<(), BlobError> {
        let prefix = self.key(rest);
        let client = self.client.clone();
        let mut stream: Option<BoxStream<'static, object_store::Result<object_store::ObjectMeta>>> =
            Some(client.list(Some(&prefix)));
        while let Some(mut listing) = stream.take() {
            let (listing, batch) = self.runtime.run(async move {
                let mut batch = Vec::new();
                while batch.len() < LIST_BATCH {
                    match listing.next().await {
                        Some(item) => batch.push(item),
                        None => return (None, batch),
                    }
                }
                (Some(listing), batch)
            });
            stream = listing;
            for item in batch {
                f(item.map_err(store_error)?)?;
            }
        }
        Ok(())
    }

    /// Uploads the session's bytes, `tail` being what follows its parts, as one object
    /// `uploads/<id>/data`; returns its key.
    fn assemble(&self, id: &str, session: &mut Session, tail: Vec<u8>) -> Result<Key, BlobError> {
        let data = self.upload_key(id, "data");
        if session.assembled {
            return Ok(data);
        }
        match session.multipart.clone() {
            None => self.put(data.clone(), tail.into())?,
            Some(multipart) => {
                let mut parts: Vec<PartId> = session
                    .parts
                    .iter()
                    .map(|p| PartId {
                        content_id: p.clone(),
                    })
                    .collect();
                if !tail.is_empty() {
                    let (key, m, idx) = (data.clone(), multipart.clone(), parts.len());
                    parts.push(self.run(|c| async move {
                        c.put_part(&key, &m, idx, PutPayload::from(tail)).await
                    })?);
                }
                let key = data.clone();
                let done = self.run(|c| async move {
                    c.complete_multipart(&key, &multipart, parts)
                        .await
                        .map(drop)
                });
                // Completed by an earlier attempt that stopped before recording it.
                if let Err(e) = done
                    && self.size(data.clone())? != Some(session.len())
                {
                    return Err(e);
                }
            }
        }
        session.assembled = true;
        session.multipart = None;
        self.put_session(id, session)?;
        Ok(data)
    }
}

impl Blobs for S3Blobs {
    fn stat(&self, digest: &Digest) -> Result<Option<u64>, BlobError> {
        self.inner.size(self.inner.blob_key(digest))
    }

    fn redirect(&self, digest: &Digest) -> Result<Option<String>, BlobError> {
        use object_store::signer::{Method, SignedUrlOptions, Signer as _};
        let Some(valid) = self.redirect else {
            return Ok(None);
        };
        let key = self.inner.blob_key(digest);
        // Whatever the bytes are, the store serves them as an attachment of no active type.
        let options = SignedUrlOptions::default().with_query([
            ("response-content-type", "application/octet-stream"),
            ("response-content-disposition", "attachment"),
        ]);
        let url = self.inner.run(move |c| async move {
            c.signed_url_opts(Method::GET, &key, valid, &options).await
        })?;
        Ok(Some(url.to_string()))
    }

    fn open(&self, digest: &Digest) -> Result<Box<dyn BlobRead>, BlobError> {
        let key = self.inner.blob_key(digest);
        let meta = self.inner.head(key.clone())?.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("blob {digest} is not stored"),
            )
        })?;
        Ok(Box::new(S3Read {
            inner: self.inner.clone(),
            key,
            len: meta.size,
            etag: meta.e_tag,
            reading: Mutex::new(None),
        }))
    }

    fn publish(&self, id: &str, digest: &Digest) -> Result<(), BlobError> {
        let target = self.inner.blob_key(digest);
        // The session as this request left it (publishing always ends a request that
        // appended), else as stored.
        let (mut session, tail_exact) = match self.inner.take_written(id) {
            Some(w) => (w.session, w.tail_exact),
            None => (self.inner.existing_session(id)?, false),
        };
        if self.inner.size(target.clone())?.is_none() {
            if session.multipart.is_none() && !session.assembled {
                // Small enough never to have needed a part: the tail (or nothing) is the blob.
                match &session.tail {
                    Some(tail) if session.tail_len > 0 => {
                        let tail = self.inner.upload_key(id, tail);
                        if tail_exact || self.inner.size(tail.clone())? == Some(session.tail_len) {
                            self.inner.copy(tail, target)?;
                        } else {
                            let bytes = self.inner.tail(id, &session)?;
                            self.inner.put(target, bytes.into())?;
                        }
                    }
                    _ => self.inner.put(target, Bytes::new())?,
                }
            } else {
                let tail = self.inner.tail(id, &session)?;
                let data = self.inner.assemble(id, &mut session, tail)?;
                self.inner.copy(data, target)?;
            }
        }
        self.remove_session(id, Some(session))
    }

    fn warm(&self, _digest: &Digest, _len: u64) {}

    fn each_blob(
        &self,
        f: &mut dyn FnMut(StoredBlob) -> Result<(), BlobError>,
    ) -> Result<(), BlobError> {
        // Keys are paths: `Key` drops a trailing slash.
        let under = format!("{}/", self.inner.key("blobs"));
        self.inner.each_object("blobs/", &mut |meta| {
            let key = meta.location.to_string();
            let Some(rest) = key.strip_prefix(&under) else {
                return Ok(());
            };
            // Anything else under blobs/ is not a blob this registry wrote.
            let Some(digest) = rest
                .split_once('/')
                .and_then(|(algorithm, hex)| format!("{algorithm}:{hex}").parse::<Digest>().ok())
            else {
                return Ok(());
            };
            f(StoredBlob {
                digest,
                len: meta.size,
                modified: SystemTime::from(meta.last_modified),
            })
        })
    }

    fn remove_blob(&self, digest: &Digest) -> Result<(), BlobError> {
        self.inner.delete(self.inner.blob_key(digest))
    }

    fn set_aside(&self, digest: &Digest) -> Result<String, BlobError> {
        let aside = self.inner.key(&format!(
            "set-aside/{}-{}-{}",
            digest.algorithm().name(),
            digest.hex(),
            crate::store::now()
        ));
        self.inner
            .copy(self.inner.blob_key(digest), aside.clone())?;
        self.remove_blob(digest)?;
        Ok(format!("s3://{}/{aside}", self.inner.bucket))
    }

    fn probe(&self) -> Result<(), BlobError> {
        let prefix = self.inner.key("blobs/");
        // A listing answers for a bucket that exists and credentials that may read it.
        self.inner
            .run(|c| async move { c.list_with_delimiter(Some(&prefix)).await.map(drop) })
    }

    fn import(&self, from: &dyn Blobs, digest: &Digest) -> Result<(), BlobError> {
        if self.stat(digest)?.is_some() {
            return Ok(());
        }
        let id = format!("import-{}", uuid::Uuid::new_v4().hyphenated());
        self.create_upload(&id)?;
        let copied = (|| {
            let mut sink = self.append(&id, UploadState::new(digest.algorithm()))?;
            let source = from.open(digest)?;
            let mut failed = None;
            read_all(source.as_ref(), |bytes| {
                if failed.is_none()
                    && let Err(e) = sink.write(bytes)
                {
                    failed = Some(e);
                }
            })?;
            if let Some(e) = failed {
                return Err(e);
            }
            let state = sink.finish()?;
            let computed = state.digest();
            if computed != *digest {
                return Err(corrupt(&format!(
                    "blob {digest} hashes to {computed}: not copied"
                )));
            }
            self.publish(&id, digest)
        })();
        if copied.is_err() {
            let _ = self.remove_upload(&id);
        }
        copied
    }
}

impl Uploads for S3Blobs {
    fn create_upload(&self, id: &str) -> Result<(), BlobError> {
        self.inner.put_session(id, &Session::default())
    }

    fn upload_len(&self, id: &str) -> Result<Option<u64>, BlobError> {
        self.inner.take_written(id);
        Ok(self.inner.session(id)?.map(|s| s.len()))
    }

    fn append(&self, id: &str, state: UploadState) -> Result<Box<dyn UploadSink>, BlobError> {
        self.inner.take_written(id);
        let session = self.inner.existing_session(id)?;
        self.sink(id, session, state)
    }

    /// One read of the session record: its hash state travels in it.
    fn resume(&self, id: &str, algorithm: Algorithm) -> Result<Box<dyn UploadSink>, BlobError> {
        self.inner.take_written(id);
        let session = self.inner.existing_session(id)?;
        if let Some(state) = session.state(algorithm) {
            self.sink(id, session, state)
        } else {
            // Hashed by another algorithm: re-read as `rehash_upload` does.
            let state = self.rehash_upload(id, algorithm)?;
            self.append(id, state)
        }
    }

    fn rehash_upload(&self, id: &str, algorithm: Algorithm) -> Result<UploadState, BlobError> {
        self.inner.take_written(id);
        let mut session = self.inner.existing_session(id)?;
        if let Some(state) = session.state(algorithm) {
            return Ok(state);
        }
        // Hashed by another algorithm: the parts of a multipart upload cannot be read until
        // it is completed, so the session is assembled (and grows no more) and read back.
        let tail = self.inner.tail(id, &session)?;
        let data = self.inner.assemble(id, &mut session, tail)?;
        let read = S3Read {
            inner: self.inner.clone(),
            len: session.len(),
            key: data,
            etag: None,
            reading: Mutex::new(None),
        };
        let mut state = UploadState::new(algorithm);
        read_all(&read, |bytes| state.update(bytes))?;
        Ok(state)
    }

    fn uploads(&self) -> Result<Vec<StoredUpload>, BlobError> {
        let under = format!("{}/", self.inner.key("uploads"));
        let mut found = Vec::new();
        self.inner.each_object("uploads/", &mut |meta| {
            let key = meta.location.to_string();
            if let Some(id) = key
                .strip_prefix(&under)
                .and_then(|rest| rest.strip_suffix("/state"))
            {
                found.push((id.to_owned(), SystemTime::from(meta.last_modified)));
            }
            Ok(())
        })?;
        let mut uploads = Vec::with_capacity(found.len());
        for (id, modified) in found {
            // Gone since the listing: finished or removed by another node.
            if let Some(session) = self.inner.session(&id)? {
                uploads.push(StoredUpload {
                    len: session.len(),
                    id,
                    modified,
                });
            }
        }
        Ok(uploads)
    }

    fn remove_upload(&self, id: &str) -> Result<(), BlobError> {
        self.inner.take_written(id);
        self.remove_session(id, None)
    }

    fn shared(&self) -> bool {
        true
    }
}

impl S3Blobs {
    /// Appending to `session` of upload `id`, whose bytes hash to `state`.
    fn sink(
        &self,
        id: &str,
        session: Session,
        state: UploadState,
    ) -> Result<Box<dyn UploadSink>, BlobError> {
        if session.assembled {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("upload {id} is complete and takes no more bytes"),
            )
            .into());
        }
        if state.len() != session.len() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "upload {id} holds {} bytes, not the {} its hash state covers",
                    session.len(),
                    state.len()
                ),
            )
            .into());
        }
        let buffer = self.inner.tail(id, &session)?;
        Ok(Box::new(S3Sink {
            inner: self.inner.clone(),
            id: id.to_owned(),
            session,
            state,
            buffer,
            in_flight: None,
            changed: false,
        }))
    }

    /// Removes upload `id`, its session `known` when the caller holds it (else read).
    fn remove_session(&self, id: &str, known: Option<Session>) -> Result<(), BlobError> {
        let session = match known {
            Some(s) => Some(s),
            None => self.inner.session(id)?,
        };
        if let Some(Session {
            multipart: Some(multipart),
            ..
        }) = session
        {
            let key = self.inner.upload_key(id, "data");
            // Already completed or aborted: nothing is left to free.
            let _ = self
                .inner
                .run(|c| async move { c.abort_multipart(&key, &multipart).await });
        }
        let mut keys = Vec::new();
        self.inner
            .each_object(&format!("uploads/{id}/"), &mut |meta| {
                keys.push(meta.location);
                Ok(())
            })?;
        // The session record last: while it exists the upload can still be found and removed.
        let state = self.inner.upload_key(id, "state");
        keys.sort_by_key(|k| *k == state);
        for key in keys {
            self.inner.delete(key)?;
        }
        Ok(())
    }
}
