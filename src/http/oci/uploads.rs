//! Blob uploads: monolithic, chunked, single-POST and cross-repository mount.
//!
//! Request bodies stream from the socket to a blocking writer through a small bounded
//! channel: the blob is hashed and written as it arrives and never held whole in memory.

use actix_web::{HttpRequest, HttpResponse, web};
use bytes::Bytes;
use futures_util::StreamExt;
use serde::Deserialize;

use super::auth::{Authorized, Push, with_auth};
use super::error::upload_range;
use super::extract::{chunk_start, digest};
use super::{Code, OciError, Reg, blocking};
use crate::domain::auth::Principal;
use crate::domain::{self, Append};
use crate::model::{Action, Algorithm, Digest, Repository};

/// Chunks in flight between the socket and the writer: bounds memory per upload.
const CHANNEL_CHUNKS: usize = 32;

#[derive(Deserialize)]
pub struct StartQuery {
    digest: Option<String>,
    mount: Option<String>,
    from: Option<String>,
    /// The algorithm the final digest will use (`sha256`, `sha512`), so the upload is
    /// hashed by it while it streams.
    #[serde(rename = "digest-algorithm")]
    digest_algorithm: Option<String>,
}

#[derive(Deserialize)]
pub struct CompleteQuery {
    digest: Option<String>,
}

fn session_response(
    mut res: actix_web::HttpResponseBuilder,
    repo: &Repository,
    id: &str,
    len: u64,
) -> HttpResponse {
    res.insert_header(("Location", format!("/v2/{repo}/blobs/uploads/{id}")))
        .insert_header(("Docker-Upload-UUID", id))
        .insert_header(("Range", upload_range(len)))
        .finish()
}

fn blob_created(repo: &Repository, digest: &Digest) -> HttpResponse {
    HttpResponse::Created()
        .insert_header(("Location", format!("/v2/{repo}/blobs/{digest}")))
        .insert_header(("Docker-Content-Digest", digest.as_str()))
        .finish()
}

/// Why a body could not be appended.
enum Pumped {
    /// The registry refused or failed (unknown upload, wrong offset, full disk, ...).
    Refused(domain::Error),
    /// The client's body broke off or was malformed.
    Unread(String),
}

/// Streams `payload` into an upload, all on one trip to the blocking pool: `open` starts the
/// append, each chunk is hashed and written as it arrives, `end` finishes the append. Each
/// extra trip cost a wake-up on a busy core between a PATCH's last byte and its answer (up
/// to a millisecond with a client on the other core).
async fn pump<T: Send + 'static>(
    reg: &Reg,
    mut payload: web::Payload,
    open: impl FnOnce() -> Result<Append, domain::Error> + Send + 'static,
    end: impl FnOnce(Append) -> Result<T, domain::Error> + Send + 'static,
) -> Result<T, OciError> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Bytes, String>>(CHANNEL_CHUNKS);
    let reg = reg.clone();
    let writer = tokio::task::spawn_blocking(move || {
        let mut append = open().map_err(Pumped::Refused)?;
        while let Some(chunk) = rx.blocking_recv() {
            let chunk = match chunk {
                Ok(chunk) => chunk,
                // What reached the file stays counted: the client may resume from there.
                Err(e) => return Err(Pumped::Unread(e)),
            };
            if let Err(e) = append.write(&chunk) {
                if matches!(e, domain::Error::StorageFull) {
                    // Keep no partial bytes on a full disk: the client starts over once there
                    // is room.
                    let _ = reg.uploads().abandon(append);
                }
                return Err(Pumped::Refused(e));
            }
        }
        end(append).map_err(Pumped::Refused)
    });
    while let Some(item) = payload.next().await {
        let item = item.map_err(|e| e.to_string());
        let failed = item.is_err();
        if tx.send(item).await.is_err() || failed {
            break;
        }
    }
    drop(tx);
    match writer.await.map_err(|e| OciError::internal(&e))? {
        Ok(value) => Ok(value),
        Err(Pumped::Refused(e)) => Err(e.into()),
        Err(Pumped::Unread(e)) => Err(OciError::new(
            Code::BlobUploadInvalid,
            format!("the request body could not be read: {e}"),
        )),
    }
}

/// Appends the request body, then completes the upload as `declared`.
async fn append_and_complete(
    reg: Reg,
    repo: &Repository,
    id: String,
    start: Option<u64>,
    declared: Digest,
    payload: web::Payload,
) -> Result<HttpResponse, OciError> {
    let (r, rp, d) = (reg.clone(), repo.clone(), declared.clone());
    let end = reg.clone();
    pump(
        &reg,
        payload,
        move || r.uploads().append(&rp, &id, start),
        move |append| end.uploads().complete(append, &d),
    )
    .await?;
    Ok(blob_created(repo, &declared))
}

// POST /v2/<name>/blobs/uploads/[?digest=|?mount=&from=] — open an upload, upload in one
// request, or mount from another repository (spec: "Pushing blobs", "Mounting a blob").
pub async fn start(
    reg: Reg,
    Authorized {
        repo, principal, ..
    }: Authorized<Push>,
    query: web::Query<StartQuery>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, OciError> {
    let query = query.into_inner();
    // Whose upload sessions count against the limit.
    let owner = principal.as_ref().map_or_else(
        || format!("addr:{}", super::auth::client_ip(&req)),
        Principal::subject,
    );
    if let Some(mount) = &query.mount {
        let mounted = digest(mount)?;
        // An unusable `from`, or one the caller may not pull, is no error: the spec falls
        // back to a plain upload.
        let from = query
            .from
            .as_deref()
            .and_then(|f| f.parse::<Repository>().ok());
        if let Some(from) = from {
            let feed = from.feed().to_owned();
            let readable = with_auth(&req, move |auth| {
                Ok(auth.caps(principal.as_ref(), &feed)?.allows(Action::Pull))
            })
            .await?;
            let (r, rp, d) = (reg.clone(), repo.clone(), mounted.clone());
            if readable && blocking(move || r.uploads().mount(&rp, &d, &from)).await? {
                return Ok(blob_created(&repo, &mounted));
            }
        } else if query.from.is_none() {
            // Automatic mount (spec: no `from`): from any repository the caller may pull.
            let visible =
                with_auth(&req, move |auth| auth.pullable_feeds(principal.as_ref())).await?;
            let (r, rp, d) = (reg.clone(), repo.clone(), mounted.clone());
            if blocking(move || {
                r.uploads()
                    .mount_any(&rp, &d, |feed| visible.contains(feed))
            })
            .await?
            {
                return Ok(blob_created(&repo, &mounted));
            }
        }
    }
    let declared = query.digest.as_deref().map(digest).transpose()?;
    let algorithm = match (&declared, query.digest_algorithm.as_deref()) {
        (Some(d), _) => d.algorithm(),
        (None, Some(name)) => Algorithm::named(name).ok_or_else(|| {
            OciError::from(domain::Error::DigestInvalid(format!(
                "digest-algorithm {name:?} is not supported: use sha256 or sha512"
            )))
        })?,
        (None, None) => Algorithm::Sha256,
    };
    // A monolithic upload that says its length is refused before its bytes are read when
    // it cannot fit in the feed's quota (the commit checks again, exactly).
    let length = req
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if let (Some(d), Some(length)) = (&declared, length) {
        let (r, feed, d) = (reg.clone(), repo.feed().to_owned(), d.to_string());
        blocking(move || r.quota_fits(&feed, &d, length)).await?;
    }
    let (r, rp) = (reg.clone(), repo.clone());
    let id = blocking(move || r.uploads().start(&rp, &owner, algorithm)).await?;
    match declared {
        Some(declared) => append_and_complete(reg, &repo, id, None, declared, payload).await,
        None => Ok(session_response(HttpResponse::Accepted(), &repo, &id, 0)),
    }
}

// PATCH /v2/<name>/blobs/uploads/<id> — append a chunk (spec: "Pushing a blob in chunks").
pub async fn patch(
    reg: Reg,
    Authorized { repo, .. }: Authorized<Push>,
    path: web::Path<(String, String)>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, OciError> {
    let start = chunk_start(&req)?;
    let id = path.into_inner().1;
    let (r, rp, end) = (reg.clone(), repo.clone(), reg.clone());
    let (id, len) = pump(
        &reg,
        payload,
        move || r.uploads().append(&rp, &id, start),
        move |append| {
            let id = append.id().to_owned();
            end.uploads().finish_chunk(append).map(|len| (id, len))
        },
    )
    .await?;
    Ok(session_response(HttpResponse::Accepted(), &repo, &id, len))
}

// PUT /v2/<name>/blobs/uploads/<id>?digest= — close an upload, with or without a last chunk.
pub async fn complete(
    reg: Reg,
    Authorized { repo, .. }: Authorized<Push>,
    path: web::Path<(String, String)>,
    query: web::Query<CompleteQuery>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, OciError> {
    let declared = query.digest.as_deref().ok_or_else(|| {
        OciError::from(domain::Error::DigestInvalid(
            "the digest query parameter is required to complete an upload".into(),
        ))
    })?;
    let declared = digest(declared)?;
    let start = chunk_start(&req)?;
    append_and_complete(reg, &repo, path.into_inner().1, start, declared, payload).await
}

// GET /v2/<name>/blobs/uploads/<id> — where an upload stands (spec: "Getting upload status").
pub async fn status(
    reg: Reg,
    Authorized { repo, .. }: Authorized<Push>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, OciError> {
    let id = path.into_inner().1;
    let (rp, i) = (repo.clone(), id.clone());
    let len = blocking(move || reg.uploads().offset(&rp, &i)).await?;
    Ok(session_response(HttpResponse::NoContent(), &repo, &id, len))
}

// DELETE /v2/<name>/blobs/uploads/<id> — cancel an upload.
pub async fn cancel(
    reg: Reg,
    Authorized { repo, .. }: Authorized<Push>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, OciError> {
    let id = path.into_inner().1;
    blocking(move || reg.uploads().cancel(&repo, &id)).await?;
    Ok(HttpResponse::NoContent().finish())
}
