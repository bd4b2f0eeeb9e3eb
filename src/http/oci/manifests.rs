//! Manifest pushes, pulls and deletes.

use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::StreamExt;

use super::auth::{Authorized, Delete, Pull, Push};
use super::extract::{content_type, reference};
use super::{OciError, Reg, blocking};
use crate::domain;

// GET|HEAD /v2/<name>/manifests/<reference> — pull a manifest (spec: "Pulling manifests").
pub async fn get(
    reg: Reg,
    Authorized { repo, .. }: Authorized<Pull>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, OciError> {
    let reference = reference(&path.1)?;
    let m = blocking(move || reg.manifest(&repo, &reference)).await?;
    Ok(HttpResponse::Ok()
        .insert_header(("Content-Type", m.media_type))
        .insert_header(("Docker-Content-Digest", m.digest.as_str()))
        .insert_header(("ETag", format!("\"{}\"", m.digest)))
        .body(m.body))
}

// PUT /v2/<name>/manifests/<reference> — push a manifest (spec: "Pushing manifests").
pub async fn put(
    reg: Reg,
    Authorized { repo, .. }: Authorized<Push>,
    path: web::Path<(String, String)>,
    req: HttpRequest,
    mut payload: web::Payload,
) -> Result<HttpResponse, OciError> {
    let reference = reference(&path.1)?;
    let limit = reg.limits().manifest_bytes;
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| {
            OciError::from(domain::Error::ManifestInvalid(format!(
                "the manifest body could not be read: {e}"
            )))
        })?;
        if (body.len() + chunk.len()) as u64 > limit {
            return Err(domain::Error::ManifestTooLarge { limit }.into());
        }
        body.extend_from_slice(&chunk);
    }
    let content_type = content_type(&req).map(str::to_owned);
    let rp = repo.clone();
    let put =
        blocking(move || reg.put_manifest(&rp, &reference, content_type.as_deref(), &body)).await?;
    let mut res = HttpResponse::Created();
    res.insert_header(("Location", format!("/v2/{repo}/manifests/{}", put.digest)))
        .insert_header(("Docker-Content-Digest", put.digest.as_str()));
    if let Some(subject) = put.subject {
        res.insert_header(("OCI-Subject", subject.as_str()));
    }
    Ok(res.finish())
}

// DELETE /v2/<name>/manifests/<reference> — delete a tag, or a manifest and its tags.
pub async fn delete(
    reg: Reg,
    Authorized { repo, .. }: Authorized<Delete>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, OciError> {
    let reference = reference(&path.1)?;
    blocking(move || reg.delete_manifest(&repo, &reference)).await?;
    Ok(HttpResponse::Accepted().finish())
}
