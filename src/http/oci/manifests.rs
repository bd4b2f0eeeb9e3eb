//! Manifest pushes, pulls and deletes.

use actix_web::http::StatusCode;
use actix_web::{HttpMessage as _, HttpRequest, HttpResponse, web};
use futures_util::StreamExt;

use super::auth::{Authorized, Delete, Pull, Push};
use super::extract::{content_type, reference};
use super::{OciError, Reg, blocking};
use crate::domain;
use crate::domain::auth::Principal;
use crate::domain::trust::PullGate;
use crate::model::{NameError, Reference, Tag};

// GET|HEAD /v2/<name>/manifests/<reference> — pull a manifest (spec: "Pulling manifests").
pub async fn get(
    reg: Reg,
    Authorized {
        repo, principal, ..
    }: Authorized<Pull>,
    path: web::Path<(String, String)>,
    req: HttpRequest,
) -> Result<HttpResponse, OciError> {
    // A reference that cannot be a tag names nothing in the repository: unknown, as the
    // conformance suites expect (a PUT with it is still refused as invalid).
    let reference = match path.1.parse::<Reference>() {
        Ok(r) => r,
        Err(NameError::Tag(_)) => {
            return Err(domain::Error::ManifestUnknown {
                repository: repo.to_string(),
                reference: path.1.clone(),
            }
            .into());
        }
        Err(e) => return Err(domain::Error::from(e).into()),
    };
    // A GET is a pull (retention's "not pulled for N days"); a HEAD only asks.
    let pull = req.method() == actix_web::http::Method::GET;
    // A manifest read since the last metadata write comes from memory, without a trip to
    // the blocking pool: this is the request every `docker pull` and every node makes. When
    // checking "since the last write" asks a database, the whole read goes to the pool.
    let local = reg.caches_locally();
    let m = if let Some(m) = local
        .then(|| reg.cached_manifest(&repo, &reference))
        .flatten()
    {
        m
    } else {
        let (reg, repo) = (reg.clone(), repo.clone());
        super::fetching(move || {
            if !local && let Some(m) = reg.cached_manifest(&repo, &reference) {
                return Ok(m);
            }
            reg.manifest(&repo, &reference)
        })
        .await
        .map_err(|e| mirror_miss(&req, e))?
    };
    let mut res = HttpResponse::Ok();
    match &m.unsigned {
        Some((PullGate::Refuse, why)) => {
            let (r, rp, d, w) = (reg.clone(), repo.clone(), m.digest.clone(), why.clone());
            let who = actor(principal.as_ref());
            if let Err(e) =
                blocking(move || r.trust().audit_refused_pull(&rp, d.as_str(), &who, &w)).await
            {
                tracing::warn!(error = %e.message(), "a refused pull could not be recorded in the audit log");
            }
            return Err(domain::Error::SignatureRefused(why.clone()).into());
        }
        Some((PullGate::Warn, why)) => {
            res.insert_header(("Warning", warning(why)));
        }
        None => {}
    }
    if pull {
        reg.maintenance().record_pull(&repo, m.digest.as_str());
    }
    if m.stale {
        // RFC 9111's "Response is Stale": a connector's upstream did not answer.
        res.insert_header((
            "Warning",
            "110 semdock \"Response is Stale: the upstream registry did not answer\"",
        ));
    }
    Ok(res
        .insert_header(("Content-Type", m.media_type))
        .insert_header(("Docker-Content-Digest", m.digest.as_str()))
        .insert_header(("ETag", format!("\"{}\"", m.digest)))
        .body(m.body))
}

/// A pull the mirror feed answered for a name that names no feed here, and could not
/// find: `NAME_UNKNOWN` with the sentence a name without a feed always gets, and what the
/// mirror found (a typo of a feed is told as such, not as a bare upstream failure).
fn mirror_miss(req: &HttpRequest, e: OciError) -> OciError {
    let Some(m) = req
        .extensions()
        .get::<crate::http::caller::Mirrored>()
        .cloned()
    else {
        return e;
    };
    if !matches!(
        e.status(),
        StatusCode::NOT_FOUND | StatusCode::SERVICE_UNAVAILABLE | StatusCode::FORBIDDEN
    ) {
        return e;
    }
    let first = m.asked.split('/').next().unwrap_or_default();
    OciError::from(domain::Error::NotFound(format!(
        "repository {:?} is not in this registry: feed {first:?} does not exist (the first path segment must be a feed), and the mirror feed {:?} could not get it from its upstream: {}",
        m.asked,
        m.feed,
        e.message()
    )))
}

/// The caller's name for history: the user, a key's owner, or `anonymous`.
fn actor(principal: Option<&Principal>) -> String {
    principal.map_or_else(|| "anonymous".to_owned(), |p| p.user().to_owned())
}

// PUT /v2/<name>/manifests/<reference>[?tag=…] — push a manifest (spec: "Pushing manifests");
// by digest with `tag` parameters it applies every tag or none and echoes each in `OCI-Tag`.
pub async fn put(
    reg: Reg,
    Authorized {
        repo, principal, ..
    }: Authorized<Push>,
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
    let extra_tags = form_urlencoded::parse(req.query_string().as_bytes())
        .filter(|(k, _)| k == "tag")
        .map(|(_, v)| {
            v.parse::<Tag>()
                .map_err(|e| OciError::from(domain::Error::from(e)))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let rp = repo.clone();
    let actor = actor(principal.as_ref());
    let put = blocking(move || {
        reg.put_manifest(
            &rp,
            &reference,
            &extra_tags,
            content_type.as_deref(),
            &body,
            &actor,
        )
    })
    .await?;
    let mut res = HttpResponse::Created();
    res.insert_header(("Location", format!("/v2/{repo}/manifests/{}", put.digest)))
        .insert_header(("Docker-Content-Digest", put.digest.as_str()));
    if let Some(subject) = put.subject {
        res.insert_header(("OCI-Subject", subject.as_str()));
    }
    for tag in &put.tags {
        res.append_header(("OCI-Tag", tag.as_str()));
    }
    if let Some(why) = &put.warning {
        res.insert_header(("Warning", warning(why)));
    }
    Ok(res.finish())
}

// DELETE /v2/<name>/manifests/<reference> — delete a tag, or a manifest and its tags.
pub async fn delete(
    reg: Reg,
    Authorized {
        repo, principal, ..
    }: Authorized<Delete>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, OciError> {
    let reference = reference(&path.1)?;
    let actor = actor(principal.as_ref());
    blocking(move || reg.delete_manifest(&repo, &reference, &actor)).await?;
    Ok(HttpResponse::Accepted().finish())
}

/// RFC 9111's persistent miscellaneous warning carrying `why`: printable ASCII only, since a
/// sentence may quote what a client uploaded (a certificate's names), and a header cannot
/// carry control characters; a quote would end the text early.
fn warning(why: &str) -> String {
    let text: String = why
        .chars()
        .map(|c| match c {
            '"' => '\'',
            c if c == ' ' || c.is_ascii_graphic() => c,
            _ => '?',
        })
        .collect();
    format!("299 semdock \"{text}\"")
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_warning_is_a_valid_header_whatever_the_sentence_quotes() {
        let w = super::warning("a certificate for \"x\r\nSet-Cookie: a=b\" from \u{e9}");
        assert_eq!(
            w,
            "299 semdock \"a certificate for 'x??Set-Cookie: a=b' from ?\""
        );
        assert!(actix_web::http::header::HeaderValue::from_str(&w).is_ok());
    }
}
