//! `/api/v1/vulndb`, `/api/v1/vulnerabilities`, `/api/v1/sbom` and
//! `/api/v1/feeds/{feed}/vuln-policy`: the vulnerability database, what an image holds and
//! which of it is known to be vulnerable, and what a feed refuses.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use super::dto::{AffectedReport, VulnDb, VulnException, VulnImport, VulnPolicy, VulnReport};
use super::error::ErrorBody;
use super::tags::parse_reference;
use super::{Api, ApiError, run};
use crate::domain::access::{Access, FeedAdmin, Pull};
use crate::domain::{self, vulns};
use crate::http::caller::registry_hosts;

/// The largest OSV file one import takes (osv.dev's per-ecosystem exports are tens of MiB).
pub const IMPORT_LIMIT: usize = 512 << 20;

/// `?name=` of an import.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ImportQuery {
    /// The file's name, as the database lists it (`Debian-all.zip`).
    pub name: String,
}

/// Imports an OSV file (administrators): the body is one record's JSON, a JSON array of
/// records, or a zip of records as osv.dev exports them per ecosystem.
#[utoipa::path(post, path = "/api/v1/vulndb", params(ImportQuery),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 200, body = VulnImport), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 413, body = ErrorBody)))]
pub async fn import(
    Api(access): Api,
    query: web::Query<ImportQuery>,
    mut payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    use futures_util::StreamExt as _;
    let name = query.into_inner().name;
    access.admin()?;
    let mut body = Vec::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| {
            domain::Error::Invalid(format!("the request body could not be read: {e}"))
        })?;
        if body.len() + chunk.len() > IMPORT_LIMIT {
            return Err(domain::Error::UploadTooLarge {
                limit: IMPORT_LIMIT as u64,
            }
            .into());
        }
        body.extend_from_slice(&chunk);
    }
    let imported = run(move || {
        access
            .admin()?
            .vulndb()
            .import(&name, std::io::Cursor::new(body))
    })
    .await?;
    Ok(HttpResponse::Ok().json(VulnImport::from(imported)))
}

/// The vulnerability database: its epoch and the files imported (administrators).
#[utoipa::path(get, path = "/api/v1/vulndb",
    responses((status = 200, body = VulnDb), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn database(Api(access): Api) -> Result<HttpResponse, ApiError> {
    let db = run(move || access.admin()?.vulndb().sources()).await?;
    Ok(HttpResponse::Ok().json(VulnDb::from(db)))
}

/// `?ref=` of an image, and for an SBOM its format.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ImageQuery {
    /// `FEED/NAME:TAG` or `FEED/NAME@DIGEST`.
    #[serde(rename = "ref")]
    pub reference: String,
    /// For `/sbom`: `cyclonedx` (the default) or `spdx`.
    #[serde(default)]
    pub format: Option<String>,
}

/// An image's vulnerabilities: its SBOM matched against the database now (pull).
#[utoipa::path(get, path = "/api/v1/vulnerabilities", params(ImageQuery),
    responses((status = 200, body = VulnReport), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn report(
    Api(access): Api,
    req: HttpRequest,
    query: web::Query<ImageQuery>,
) -> Result<HttpResponse, ApiError> {
    let hosts = registry_hosts(&req);
    let text = query.into_inner().reference;
    let report = run(move || report_of(&access, &text, &hosts)).await?;
    Ok(HttpResponse::Ok().json(VulnReport::from(report)))
}

/// The report of image `text`, for whoever may pull it.
pub fn report_of(
    access: &Access,
    text: &str,
    hosts: &[String],
) -> Result<vulns::Report, domain::Error> {
    let r = parse_reference(text, hosts)?;
    let feed = access.feed::<Pull>(r.repository.feed())?;
    let found = feed.manifest(&r.repository, &r.reference())?;
    feed.vulnerabilities().report(&r.repository, &found.digest)
}

/// `?id=` of an advisory.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AdvisoryQuery {
    /// An advisory id or alias (`CVE-2023-4911`, `DSA-5514-1`).
    pub id: String,
}

/// Where an advisory is: every repository the caller may pull from with versions it
/// affects, and the lowest higher version that fixes it (any authenticated caller).
#[utoipa::path(get, path = "/api/v1/vulnerabilities/affected", params(AdvisoryQuery),
    responses((status = 200, body = AffectedReport), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn affected(
    Api(access): Api,
    query: web::Query<AdvisoryQuery>,
) -> Result<HttpResponse, ApiError> {
    let id = query.into_inner().id;
    let found = run(move || access.vulnerable(&id)).await?;
    Ok(HttpResponse::Ok().json(AffectedReport::from(found)))
}

/// An image's SBOM as semdock generated it, CycloneDX 1.6 or SPDX 2.3 JSON (pull); 404
/// until its layers have been read.
#[utoipa::path(get, path = "/api/v1/sbom", params(ImageQuery),
    responses((status = 200, content_type = "application/vnd.cyclonedx+json"), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn sbom(
    Api(access): Api,
    req: HttpRequest,
    query: web::Query<ImageQuery>,
) -> Result<HttpResponse, ApiError> {
    let hosts = registry_hosts(&req);
    let ImageQuery { reference, format } = query.into_inner();
    let spdx = match format.as_deref() {
        None | Some("cyclonedx") => false,
        Some("spdx") => true,
        Some(other) => {
            return Err(domain::Error::Invalid(format!(
                "format {other:?} is not one semdock writes: use cyclonedx or spdx"
            ))
            .into());
        }
    };
    let (document, kind) = run(move || {
        let r = parse_reference(&reference, &hosts)?;
        let feed = access.feed::<Pull>(r.repository.feed())?;
        let found = feed.manifest(&r.repository, &r.reference())?;
        let sbom = feed
            .vulnerabilities()
            .sbom(&r.repository, &found.digest)?
            .ok_or_else(|| {
                domain::Error::NotFound(format!(
                    "{reference} has no SBOM yet: semdock reads an image's layers shortly after its push (or it is not an image)"
                ))
            })?;
        Ok::<_, domain::Error>(if spdx {
            (sbom.spdx(r.repository.as_str()), vulns::sbom::SPDX)
        } else {
            (sbom.cyclonedx(r.repository.as_str()), vulns::sbom::CYCLONEDX)
        })
    })
    .await?;
    Ok(HttpResponse::Ok().content_type(kind).json(document))
}

/// A feed's vulnerability policy, `null` when it has none (pull).
#[utoipa::path(get, path = "/api/v1/feeds/{feed}/vuln-policy", params(("feed" = String, Path)),
    responses((status = 200, body = Option<VulnPolicy>), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn policy(Api(access): Api, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let policy = run(move || access.feed::<Pull>(&path)?.vulnerabilities().policy()).await?;
    Ok(HttpResponse::Ok().json(policy.map(VulnPolicy::from)))
}

/// Sets a feed's vulnerability policy (feed admin); its exceptions are kept (they change
/// through `/exceptions`).
#[utoipa::path(put, path = "/api/v1/feeds/{feed}/vuln-policy", params(("feed" = String, Path)),
    request_body = VulnPolicy,
    responses((status = 200, body = VulnPolicy), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn set_policy(
    Api(access): Api,
    path: web::Path<String>,
    body: web::Json<VulnPolicy>,
) -> Result<HttpResponse, ApiError> {
    let wanted = body.into_inner().to_domain()?;
    let policy = run(move || {
        access
            .feed::<FeedAdmin>(&path)?
            .vulnerabilities()
            .set_policy(Some(wanted))
    })
    .await?;
    Ok(HttpResponse::Ok().json(policy.map(VulnPolicy::from)))
}

/// Removes a feed's vulnerability policy and its exceptions (feed admin).
#[utoipa::path(delete, path = "/api/v1/feeds/{feed}/vuln-policy", params(("feed" = String, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn remove_policy(
    Api(access): Api,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    run(move || {
        access
            .feed::<FeedAdmin>(&path)?
            .vulnerabilities()
            .set_policy(None)
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Accepts an advisory in a feed (feed admin): with a reason, optionally for one package and
/// until a date; audited.
#[utoipa::path(post, path = "/api/v1/feeds/{feed}/vuln-policy/exceptions", params(("feed" = String, Path)),
    request_body = VulnException,
    responses((status = 200, body = VulnPolicy), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn add_exception(
    Api(access): Api,
    path: web::Path<String>,
    body: web::Json<VulnException>,
) -> Result<HttpResponse, ApiError> {
    let exception = body.into_inner().into();
    let policy = run(move || {
        access
            .feed::<FeedAdmin>(&path)?
            .vulnerabilities()
            .add_exception(exception)
    })
    .await?;
    Ok(HttpResponse::Ok().json(policy.map(VulnPolicy::from)))
}

/// Withdraws a feed's exceptions for an advisory (feed admin); audited.
#[utoipa::path(delete, path = "/api/v1/feeds/{feed}/vuln-policy/exceptions/{advisory}",
    params(("feed" = String, Path), ("advisory" = String, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn remove_exception(
    Api(access): Api,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (feed, advisory) = path.into_inner();
    run(move || {
        access
            .feed::<FeedAdmin>(&feed)?
            .vulnerabilities()
            .remove_exception(&advisory)
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}
