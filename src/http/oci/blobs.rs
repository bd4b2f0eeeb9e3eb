//! Blob reads and deletes.

use std::sync::Arc;

use actix_web::body::SizedStream;
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use bytes::Bytes;

use super::auth::{Authorized, Delete, Pull};
use super::extract::digest;
use super::{OciError, Reg, blocking};
use crate::domain::registry::{BlobAt, FullRead};

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
    let head = req.method() == actix_web::http::Method::HEAD;
    let blob = match find(&reg, repo, digest, head).await? {
        BlobAt::Here(blob) => blob,
        // The object store serves the bytes (and the Range) itself.
        BlobAt::Elsewhere(url) => {
            return Ok(HttpResponse::TemporaryRedirect()
                .insert_header((header::LOCATION, url))
                .insert_header(("Docker-Content-Digest", path.1.as_str()))
                .finish());
        }
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
    // A full GET is checked before its last chunk goes out (hashed the first time, its
    // fingerprint afterwards): a blob changed on disk is cut short, never delivered whole
    // under its old digest.
    let full = start == 0 && len == size;
    // A HEAD response carries the length and no body: the stream is never polled.
    let chunks = futures_util::stream::unfold(
        (start, len, None::<FullRead>),
        move |(offset, left, read)| {
            let blob = blob.clone();
            let reg = reg.clone();
            async move {
                if left == 0 {
                    return None;
                }
                let n = left.min(READ_CHUNK);
                let last = left == n;
                let read = blocking(move || {
                    let mut read = match read {
                        None if full => Some(reg.blobs().full_read(&blob)),
                        read => read,
                    };
                    let buf = blob.read_at(offset, usize::try_from(n).unwrap_or(usize::MAX))?;
                    if let Some(r) = read.as_mut() {
                        r.update(&buf);
                    }
                    if last
                        && let Some(r) = read.take()
                        && !reg.blobs().settle(&blob, r)
                    {
                        return Err(crate::domain::Error::BlobUnknown {
                            digest: blob.digest.to_string(),
                        });
                    }
                    Ok((buf, read))
                })
                .await;
                match read {
                    Ok((buf, read)) => Some((Ok(Bytes::from(buf)), (offset + n, left - n, read))),
                    // The client sees a cut connection; the length it was promised says why.
                    Err(e) => Some((Err(std::io::Error::other(e.to_string())), (offset, 0, None))),
                }
            }
        },
    );
    Ok(res.body(SizedStream::new(len, chunks)))
}

/// Blob `digest` of `repo` where it is. A connector feed fetches what it does not hold —
/// one request per blob at a time, the others waiting for it without a thread — and the
/// blob is read from the store once its bytes have hashed to `digest`: no byte of an
/// unverified upstream answer reaches the client.
async fn find(
    reg: &Reg,
    repo: crate::model::Repository,
    digest: crate::model::Digest,
    head: bool,
) -> Result<BlobAt, OciError> {
    let read = move |r: &crate::domain::Registry,
                     repo: &crate::model::Repository,
                     digest: &crate::model::Digest| {
        if head {
            r.blobs().open(repo, digest).map(BlobAt::Here)
        } else {
            r.blobs().for_get(repo, digest)
        }
    };
    let (repo, digest) = (Arc::new(repo), Arc::new(digest));
    let (r, rp, d) = (reg.clone(), repo.clone(), digest.clone());
    let fetch = super::fetching(move || match read(&r, &rp, &d) {
        Err(crate::domain::Error::BlobUnknown { .. }) => match r.connector().blob(&rp, &d)? {
            Some(fetch) => Ok(Err(fetch)),
            None => read(&r, &rp, &d).map(Ok),
        },
        other => other.map(Ok),
    })
    .await?;
    match fetch {
        Ok(at) => Ok(at),
        Err(fetch) => {
            let r = reg.clone();
            blocking(move || {
                r.connector().fetch_blob(fetch, &digest)?;
                read(&r, &repo, &digest)
            })
            .await
        }
    }
}

// DELETE /v2/<name>/blobs/<digest> — unlink a blob from the repository (spec: "Deleting blobs").
pub async fn delete(
    reg: Reg,
    Authorized { repo, .. }: Authorized<Delete>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, OciError> {
    let digest = digest(&path.1)?;
    blocking(move || reg.blobs().delete(&repo, &digest)).await?;
    Ok(HttpResponse::Accepted().finish())
}
