//! `/api/v1/trust/keys`, `/api/v1/feeds/{feed}/signature-policy` and `/api/v1/verify`:
//! the keys signatures are verified with, what a feed requires, what an image's
//! signatures say.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use super::dto::{
    self, NewTrustKey, NewTrustRoot, NewTrustStore, SignaturePolicy, TrustKey, TrustRoot,
    TrustStore, Verification,
};
use super::error::ErrorBody;
use super::tags::parse_reference;
use super::{Api, ApiError, run};
use crate::domain::access::{Access, FeedAdmin, Pull};
use crate::http::caller::registry_hosts;

/// The trusted keys (administrators).
#[utoipa::path(get, path = "/api/v1/trust/keys",
    responses((status = 200, body = [TrustKey]), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list_keys(Api(access): Api) -> Result<HttpResponse, ApiError> {
    let keys = run(move || access.admin()?.trust().list()).await?;
    Ok(HttpResponse::Ok().json(dto::all::<TrustKey, _>(keys)))
}

/// Trusts a public key (administrators): PEM, as `cosign generate-key-pair` writes
/// `cosign.pub`; ECDSA P-256/P-384, Ed25519 or RSA.
#[utoipa::path(post, path = "/api/v1/trust/keys", request_body = NewTrustKey,
    responses((status = 201, body = TrustKey), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn add_key(
    Api(access): Api,
    body: web::Json<NewTrustKey>,
) -> Result<HttpResponse, ApiError> {
    let new = body.into_inner();
    let key = run(move || access.admin()?.trust().add(&new.name, &new.pem)).await?;
    Ok(HttpResponse::Created().json(TrustKey::from(key)))
}

/// Stops trusting a key (administrators): its signatures verify no more.
#[utoipa::path(delete, path = "/api/v1/trust/keys/{name}", params(("name" = String, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn remove_key(
    Api(access): Api,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    run(move || access.admin()?.trust().remove(&path)).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The Sigstore trusted roots (administrators).
#[utoipa::path(get, path = "/api/v1/trust/roots",
    responses((status = 200, body = [TrustRoot]), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list_roots(Api(access): Api) -> Result<HttpResponse, ApiError> {
    let roots = run(move || access.admin()?.trust().roots()).await?;
    Ok(HttpResponse::Ok().json(dto::all::<TrustRoot, _>(roots)))
}

/// Trusts a Sigstore trusted root (administrators): `trusted_root.json` — the public-good
/// instance's, or a private one's — under which keyless signatures and bundles verify.
#[utoipa::path(post, path = "/api/v1/trust/roots", request_body = NewTrustRoot,
    responses((status = 201, body = TrustRoot), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn add_root(
    Api(access): Api,
    body: web::Json<NewTrustRoot>,
) -> Result<HttpResponse, ApiError> {
    let new = body.into_inner();
    let json = new.root.to_string();
    let root = run(move || access.admin()?.trust().add_root(&new.name, &json)).await?;
    Ok(HttpResponse::Created().json(TrustRoot::from(root)))
}

/// Stops trusting a Sigstore trusted root (administrators).
#[utoipa::path(delete, path = "/api/v1/trust/roots/{name}", params(("name" = String, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn remove_root(
    Api(access): Api,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    run(move || access.admin()?.trust().remove_root(&path)).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The Notation trust stores (administrators).
#[utoipa::path(get, path = "/api/v1/trust/stores",
    responses((status = 200, body = [TrustStore]), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list_stores(Api(access): Api) -> Result<HttpResponse, ApiError> {
    let stores = run(move || access.admin()?.trust().stores()).await?;
    Ok(HttpResponse::Ok().json(dto::all::<TrustStore, _>(stores)))
}

/// Trusts a Notation trust store (administrators): the PEM CA certificates the signing
/// certificates of Notation signatures chain to.
#[utoipa::path(post, path = "/api/v1/trust/stores", request_body = NewTrustStore,
    responses((status = 201, body = TrustStore), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn add_store(
    Api(access): Api,
    body: web::Json<NewTrustStore>,
) -> Result<HttpResponse, ApiError> {
    let new = body.into_inner();
    let store = run(move || access.admin()?.trust().add_store(&new.name, &new.pem)).await?;
    Ok(HttpResponse::Created().json(TrustStore::from(store)))
}

/// Stops trusting a Notation trust store (administrators).
#[utoipa::path(delete, path = "/api/v1/trust/stores/{name}", params(("name" = String, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn remove_store(
    Api(access): Api,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    run(move || access.admin()?.trust().remove_store(&path)).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// A feed's signature policy (pull); `null` when it has none.
#[utoipa::path(get, path = "/api/v1/feeds/{feed}/signature-policy", params(("feed" = String, Path)),
    responses((status = 200, body = Option<SignaturePolicy>), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn policy(Api(access): Api, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let policy = run(move || access.feed::<Pull>(&path)?.signatures().policy()).await?;
    Ok(HttpResponse::Ok().json(policy.map(SignaturePolicy::from)))
}

/// Sets a feed's signature policy (feed admin): a signature by one of the named trusted
/// keys is required on promotion into the feed and/or on a tag push into it.
#[utoipa::path(put, path = "/api/v1/feeds/{feed}/signature-policy", params(("feed" = String, Path)),
    request_body = SignaturePolicy,
    responses((status = 200, body = SignaturePolicy), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn set_policy(
    Api(access): Api,
    path: web::Path<String>,
    body: web::Json<SignaturePolicy>,
) -> Result<HttpResponse, ApiError> {
    let wanted = body.into_inner();
    let policy = wanted.clone().into();
    run(move || {
        access
            .feed::<FeedAdmin>(&path)?
            .signatures()
            .set_policy(Some(&policy))
    })
    .await?;
    Ok(HttpResponse::Ok().json(wanted))
}

/// Removes a feed's signature policy (feed admin).
#[utoipa::path(delete, path = "/api/v1/feeds/{feed}/signature-policy", params(("feed" = String, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn remove_policy(
    Api(access): Api,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    run(move || {
        access
            .feed::<FeedAdmin>(&path)?
            .signatures()
            .set_policy(None)
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `?ref=` of a verification.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct VerifyQuery {
    /// `FEED/NAME:TAG` or `FEED/NAME@DIGEST`.
    #[serde(rename = "ref")]
    pub reference: String,
}

/// Which signatures an image has, which verify with which trusted key, and why the others
/// do not (pull).
#[utoipa::path(get, path = "/api/v1/verify", params(VerifyQuery),
    responses((status = 200, body = Verification), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn verify(
    Api(access): Api,
    req: HttpRequest,
    query: web::Query<VerifyQuery>,
) -> Result<HttpResponse, ApiError> {
    let hosts = registry_hosts(&req);
    let text = query.into_inner().reference;
    let report = run(move || verify_ref(&access, &text, &hosts)).await?;
    Ok(HttpResponse::Ok().json(Verification::from(report)))
}

/// What the signatures of the image `text` names (`FEED/NAME:TAG`, `FEED/NAME@DIGEST`, with
/// or without one of `hosts` before it) say.
pub fn verify_ref(
    access: &Access,
    text: &str,
    hosts: &[String],
) -> Result<crate::domain::trust::Verification, crate::domain::Error> {
    let r = parse_reference(text, hosts)?;
    let feed = access.feed::<Pull>(r.repository.feed())?;
    let found = feed.manifest(&r.repository, &r.reference())?;
    feed.signatures().verify(&r.repository, &found.digest)
}
