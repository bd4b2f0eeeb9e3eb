//! Blob reads and deletes.

use std::sync::Arc;

use actix_web::body::SizedStream;
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use bytes::Bytes;

use super::auth::{Authorized, Delete, Pull};
use super::extract::digest;
use super::{OciError, Reg, blocking};
use crate::domain::registry::{BlobAt, BlobFetch};

/// Bytes per read of a blob: large reads keep the blocking-pool hops per gigabyte few.
const READ_CHUNK: u64 = 1 << 20;

/// The one byte range of a `Range` header, if it is satisfiable. `Ok(None)`: serve it all
/// (no header, a syntax this server ignores, or several ranges, as RFC 9110 allows).
fn byte_range(req: &HttpRequest, size: u64) -> Result<Option<(u64, u64)>, ()> {
    let Some(spec) = req
        .headers()
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().strip_prefix("bytes="))
    else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((first, last)) = spec.split_once('-') else {
        return Ok(None);
    };
    let (first, last) = (first.trim(), last.trim());
    let range = if first.is_empty() {
        // Suffix: the last N bytes.
        let Ok(n) = last.parse::<u64>() else {
            return Ok(None);
        };
        if n == 0 || size == 0 {
            return Err(());
        }
        (size.saturating_sub(n), size - 1)
    } else {
        let Ok(start) = first.parse::<u64>() else {
            return Ok(None);
        };
        let end = if last.is_empty() {
            size.saturating_sub(1)
        } else {
            match last.parse::<u64>() {
                Ok(end) if end >= start => end.min(size.saturating_sub(1)),
                // `500-0`: no byte can satisfy it (the suites expect 416, as zot and
                // Distribution's successors answer).
                Ok(_) => return Err(()),
                Err(_) => return Ok(None),
            }
        };
        if start >= size {
            return Err(());
        }
        (start, end)
    };
    Ok(Some(range))
}

// GET|HEAD /v2/<name>/blobs/<digest> — pull a blob, with Range (spec: "Pulling blobs").
pub async fn get(
    reg: Reg,
    Authorized { repo, .. }: Authorized<Pull>,
    path: web::Path<(String, String)>,
    req: HttpRequest,
) -> Result<HttpResponse, OciError> {
    let digest = digest(&path.1)?;
    let r = reg.clone();
    let head = req.method() == actix_web::http::Method::HEAD;
    let found = blocking(move || find(&r, &repo, &digest, head)).await?;
    let blob = match found {
        Found::Fetching(fetch, digest) => return Ok(stream_fetch(&reg, fetch, &digest)),
        Found::At(at) => match at {
            BlobAt::Here(blob) => blob,
            // The object store serves the bytes (and the Range) itself.
            BlobAt::Elsewhere(url) => {
                return Ok(HttpResponse::TemporaryRedirect()
                    .insert_header((header::LOCATION, url))
                    .insert_header(("Docker-Content-Digest", path.1.as_str()))
                    .finish());
            }
        },
    };
    let blob = Arc::new(blob);
    let size = blob.size;
    let mut res = HttpResponse::Ok();
    res.insert_header((header::ACCEPT_RANGES, "bytes"))
        .insert_header(("Docker-Content-Digest", blob.digest.as_str()))
        .insert_header((header::ETAG, format!("\"{}\"", blob.digest)))
        .content_type("application/octet-stream");
    let (start, len) = match byte_range(&req, size) {
        Ok(None) => (0, size),
        Ok(Some((start, end))) => {
            res.status(StatusCode::PARTIAL_CONTENT)
                .insert_header((header::CONTENT_RANGE, format!("bytes {start}-{end}/{size}")));
            (start, end - start + 1)
        }
        Err(()) => {
            return Ok(HttpResponse::RangeNotSatisfiable()
                .insert_header((header::CONTENT_RANGE, format!("bytes */{size}")))
                .insert_header((header::ACCEPT_RANGES, "bytes"))
                .finish());
        }
    };
    // A full GET hashes what it sends and holds back the last chunk until the hash matches:
    // a blob changed on disk is cut short, never delivered whole under its old digest.
    let verifier = (start == 0 && len == size).then(|| blob.verifier());
    // A HEAD response carries the length and no body: the stream is never polled.
    let chunks =
        futures_util::stream::unfold((start, len, verifier), move |(offset, left, verifier)| {
            let blob = blob.clone();
            let reg = reg.clone();
            async move {
                if left == 0 {
                    return None;
                }
                let n = left.min(READ_CHUNK);
                let b = blob.clone();
                let read = blocking(move || {
                    let buf = b.read_at(offset, usize::try_from(n).unwrap_or(usize::MAX))?;
                    let mut verifier = verifier;
                    if let Some(v) = verifier.as_mut() {
                        v.update(&buf);
                    }
                    Ok((buf, verifier))
                })
                .await;
                let (buf, verifier) = match read {
                    Ok(read) => read,
                    // The client sees a cut connection; the length it was promised says why.
                    Err(e) => {
                        return Some((
                            Err(std::io::Error::other(e.to_string())),
                            (offset, 0, None),
                        ));
                    }
                };
                if left == n
                    && let Some(v) = &verifier
                    && !v.matches(&blob.digest)
                {
                    let digest = blob.digest.clone();
                    let _ = blocking(move || {
                        reg.blob_corrupt(&digest);
                        Ok(())
                    })
                    .await;
                    return Some((
                        Err(std::io::Error::other(
                            "the blob's bytes do not match its digest",
                        )),
                        (offset, 0, None),
                    ));
                }
                Some((Ok(Bytes::from(buf)), (offset + n, left - n, verifier)))
            }
        });
    Ok(res.body(SizedStream::new(len, chunks)))
}

/// Blob `digest` of `repo` where it is; for a HEAD its handle always. A connector feed
/// fetches what it does not hold (one request per blob at a time): a GET then streams it,
/// a HEAD waits until it is stored.
fn find(
    r: &crate::domain::Registry,
    repo: &crate::model::Repository,
    digest: &crate::model::Digest,
    head: bool,
) -> Result<Found, crate::domain::Error> {
    let read = || {
        if head {
            r.blob(repo, digest).map(BlobAt::Here)
        } else {
            r.blob_for_get(repo, digest)
        }
    };
    match read() {
        Err(crate::domain::Error::BlobUnknown { .. }) => match r.connector_blob(repo, digest)? {
            Some(fetch) if head => {
                r.fetch_blob_through(fetch, digest, &mut |_| {})?;
                Ok(Found::At(read()?))
            }
            Some(fetch) => Ok(Found::Fetching(fetch, digest.clone())),
            None => Ok(Found::At(read()?)),
        },
        other => other.map(Found::At),
    }
}

/// A blob read, or being fetched from a connector's upstream.
enum Found {
    At(BlobAt),
    Fetching(BlobFetch, crate::model::Digest),
}

/// Sends a blob to the client while it is fetched from the upstream and stored: each chunk
/// goes to both; the blob is published only once its bytes hash to its digest, and a
/// mismatch or a failed read cuts the response short (the client then discards it too).
fn stream_fetch(reg: &Reg, fetch: BlobFetch, digest: &crate::model::Digest) -> HttpResponse {
    let len = fetch.len;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    let registry = reg.clone().into_inner();
    let d = digest.clone();
    tokio::task::spawn_blocking(move || {
        // A client gone away does not stop the fetch: the blob is still worth keeping.
        let sent = registry.fetch_blob_through(fetch, &d, &mut |chunk| {
            let _ = tx.blocking_send(Ok(Bytes::copy_from_slice(chunk)));
        });
        if let Err(e) = sent {
            let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
        }
    });
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    let mut res = HttpResponse::Ok();
    res.insert_header(("Docker-Content-Digest", digest.as_str()))
        .content_type("application/octet-stream");
    match len {
        Some(len) => res.body(SizedStream::new(len, body)),
        None => res.streaming(body),
    }
}

// DELETE /v2/<name>/blobs/<digest> — unlink a blob from the repository (spec: "Deleting blobs").
pub async fn delete(
    reg: Reg,
    Authorized { repo, .. }: Authorized<Delete>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, OciError> {
    let digest = digest(&path.1)?;
    blocking(move || reg.delete_blob(&repo, &digest)).await?;
    Ok(HttpResponse::Accepted().finish())
}
