//! Request parsing shared by the OCI handlers: the repository in the path, digests,
//! references and `Content-Range`.

use actix_web::HttpRequest;

use super::error::{Code, OciError};
use crate::domain;
use crate::model::{Digest, Reference};

pub fn digest(s: &str) -> Result<Digest, OciError> {
    s.parse::<Digest>()
        .map_err(|e| domain::Error::from(e).into())
}

pub fn reference(s: &str) -> Result<Reference, OciError> {
    s.parse::<Reference>()
        .map_err(|e| domain::Error::from(e).into())
}

/// The `Content-Type` header, if it is readable text.
pub fn content_type(req: &HttpRequest) -> Option<&str> {
    req.headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
}

/// The first byte of a chunk from `Content-Range: <start>-<end>`, checked against
/// `Content-Length` when both are sent.
pub fn chunk_start(req: &HttpRequest) -> Result<Option<u64>, OciError> {
    let Some(value) = req.headers().get("Content-Range") else {
        return Ok(None);
    };
    let invalid = || {
        OciError::new(
            Code::BlobUploadInvalid,
            "Content-Range must be <start>-<end> in bytes, e.g. 0-1023",
        )
        .with_status(actix_web::http::StatusCode::RANGE_NOT_SATISFIABLE)
    };
    let text = value.to_str().map_err(|_| invalid())?.trim();
    let text = text
        .strip_prefix("bytes=")
        .or_else(|| text.strip_prefix("bytes "))
        .unwrap_or(text);
    let (start, end) = text.split_once('-').ok_or_else(invalid)?;
    let start: u64 = start.trim().parse().map_err(|_| invalid())?;
    let end: u64 = end.trim().parse().map_err(|_| invalid())?;
    if end < start {
        return Err(invalid());
    }
    let length = req
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(length) = length
        && length != end - start + 1
    {
        return Err(OciError::new(
            Code::SizeInvalid,
            format!("Content-Range {start}-{end} does not match Content-Length {length}"),
        ));
    }
    Ok(Some(start))
}
