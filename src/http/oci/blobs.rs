//! Blob reads and deletes.

use actix_files::NamedFile;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};

use super::auth::{Authorized, Delete, Pull};
use super::extract::digest;
use super::{OciError, Reg, blocking};

// GET|HEAD /v2/<name>/blobs/<digest> — pull a blob, with Range (spec: "Pulling blobs").
pub async fn get(
    reg: Reg,
    Authorized { repo, .. }: Authorized<Pull>,
    path: web::Path<(String, String)>,
    req: HttpRequest,
) -> Result<HttpResponse, OciError> {
    let digest = digest(&path.1)?;
    let blob = blocking(move || reg.blob(&repo, &digest)).await?;
    let file = NamedFile::from_file(blob.file, blob.digest.hex())
        .map_err(|e| OciError::internal(&e))?
        .set_content_type(mime::APPLICATION_OCTET_STREAM)
        .disable_content_disposition()
        .use_last_modified(false)
        .use_etag(false);
    let mut res = file.into_response(&req);
    let headers = res.headers_mut();
    if let Ok(v) = HeaderValue::from_str(blob.digest.as_str()) {
        headers.insert(header::HeaderName::from_static("docker-content-digest"), v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!("\"{}\"", blob.digest)) {
        headers.insert(header::ETAG, v);
    }
    Ok(res)
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
