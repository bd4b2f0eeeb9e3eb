//! The JSON management API under `/api/v1/`: feeds, users and API keys.
//!
//! The same credentials as the registry (Basic with a password or API key, or a Bearer token
//! from `/v2/_auth`). Every rule — who may do what — is the domain's; handlers parse, call and
//! render. The `OpenAPI` document at `/api/v1/openapi.json` is generated from these handlers.

mod audit;
mod error;
mod paging;
mod storage;
mod tags;
mod webhooks;

use std::collections::BTreeMap;

use actix_web::{FromRequest, HttpRequest, HttpResponse, ResponseError, dev::Payload, web};
use futures_util::future::LocalBoxFuture;
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};

pub use audit::{AuditParams, jsonl_response};
pub use error::ApiError;

use crate::domain;
use crate::domain::access::{Access, FeedAdmin, Pull};
use crate::domain::auth::{KeyInfo, NewKey, Surface, UserInfo};
use crate::http::caller::{access, identify};
use crate::model::FeedName;

#[allow(clippy::too_many_lines)] // the route table, one line per route
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/metrics")
            .wrap(super::inert_content())
            .get(storage::metrics),
    );
    cfg.service(
        web::resource("/api/promotions/promote")
            .wrap(super::inert_content())
            .post(tags::proget_promote),
    );
    cfg.service(
        web::resource("/api/promotions/list")
            .wrap(super::inert_content())
            .get(tags::proget_list),
    );
    cfg.service(
        web::scope("/api/v1")
            .wrap(super::inert_content())
            .app_data(
                web::JsonConfig::default()
                    .limit(64 * 1024)
                    .error_handler(|e, _| {
                        ApiError::from(domain::Error::Invalid(format!("invalid JSON body: {e}")))
                            .into()
                    }),
            )
            .app_data(web::PathConfig::default().error_handler(|e, _| {
                ApiError::from(domain::Error::Invalid(format!("invalid path: {e}"))).into()
            }))
            .app_data(web::QueryConfig::default().error_handler(|e, _| {
                ApiError::from(domain::Error::Invalid(format!("invalid query: {e}"))).into()
            }))
            .route("/openapi.json", web::get().to(openapi))
            .route("/feeds", web::get().to(list_feeds))
            .route("/feeds", web::post().to(create_feed))
            .route("/feeds/{feed}", web::get().to(show_feed))
            .route("/feeds/{feed}", web::patch().to(update_feed))
            .route("/feeds/{feed}", web::delete().to(delete_feed))
            .route("/users", web::get().to(list_users))
            .route("/users", web::post().to(create_user))
            .route("/users/{name}", web::patch().to(update_user))
            .route("/users/{name}/password", web::put().to(set_password))
            .route("/users/{name}/roles/{feed}", web::put().to(grant_role))
            .route("/users/{name}/roles/{feed}", web::delete().to(revoke_role))
            .route("/keys", web::get().to(list_keys))
            .route("/keys", web::post().to(create_key))
            .route("/keys/{id}", web::delete().to(revoke_key))
            .route("/feeds/{feed}/changes", web::get().to(tags::feed_changes))
            .route("/feeds/{feed}/retention", web::get().to(storage::retention))
            .route(
                "/feeds/{feed}/retention",
                web::put().to(storage::set_retention),
            )
            .route(
                "/feeds/{feed}/retention/run",
                web::post().to(storage::run_retention),
            )
            .route("/feeds/{feed}/sync", web::get().to(storage::sync_status))
            .route("/feeds/{feed}/sync", web::post().to(storage::sync))
            .route(
                "/feeds/{feed}/upstream/test",
                web::post().to(storage::test_upstream),
            )
            .route("/audit", web::get().to(audit::audit))
            .route("/webhooks", web::get().to(webhooks::list))
            .route("/webhooks", web::post().to(webhooks::create))
            .route("/webhooks/{id}", web::patch().to(webhooks::update))
            .route("/webhooks/{id}", web::delete().to(webhooks::delete))
            .route(
                "/webhooks/{id}/deliveries",
                web::get().to(webhooks::deliveries),
            )
            .route(
                "/webhooks/{id}/deliveries/{event}/redeliver",
                web::post().to(webhooks::redeliver),
            )
            .route("/gc", web::post().to(storage::gc))
            .route("/backup", web::post().to(storage::backup))
            .route("/storage", web::get().to(storage::storage))
            .route("/promotions", web::post().to(tags::promote))
            .route("/resolve", web::get().to(tags::resolve))
            .route(
                "/repositories/{repo:[^{}]+}/tags/{tag}/purge",
                web::post().to(tags::purge),
            )
            .route(
                "/repositories/{repo:[^{}]+}/tags/{tag}/accept-upstream",
                web::post().to(tags::accept_upstream),
            )
            .route(
                "/repositories/{repo:[^{}]+}/tags",
                web::get().to(tags::repository_tags),
            )
            .route(
                "/repositories/{repo:[^{}]+}/history",
                web::get().to(tags::history),
            )
            .route(
                "/repositories/{repo:[^{}]+}/tags/{tag}",
                web::delete().to(tags::delete_tag),
            )
            .default_service(web::to(|req: HttpRequest| async move {
                ApiError::from(domain::Error::NotFound(format!(
                    "no such endpoint: {} {}",
                    req.method(),
                    req.path()
                )))
                .error_response()
            })),
    );
}

#[derive(OpenApi)]
#[openapi(
    info(title = "semdock management API", version = "1"),
    paths(
        list_feeds, create_feed, show_feed, update_feed, delete_feed, list_users, create_user,
        update_user, set_password, grant_role, revoke_role, list_keys, create_key, revoke_key,
        tags::feed_changes, tags::promote, tags::resolve, tags::accept_upstream, tags::delete_tag, tags::purge, tags::repository_tags, tags::history,
        tags::proget_promote, tags::proget_list, storage::gc, storage::retention, storage::set_retention,
        storage::run_retention, storage::sync, storage::sync_status, storage::test_upstream, storage::backup, storage::storage, audit::audit, webhooks::list, webhooks::create,
        webhooks::update, webhooks::delete, webhooks::deliveries, webhooks::redeliver,
    ),
    components(schemas(
        FeedInfo, NewFeed, FeedUpdate, UserInfo, NewUser, CreatedUser, UserUpdate, PasswordChange,
        RoleGrant, KeyInfo, NewKeyRequest, NewKey, error::ErrorBody, error::ErrorDetail,
        tags::FeedChangeEntry, tags::PromotionRequest, tags::Resolved, tags::AcceptedUpstream,
        domain::UpstreamInfo, domain::UpstreamChange, tags::PurgeRequest, tags::ProGetPromotionEntry, domain::Promoted, domain::TagGroups,
        domain::TagEntry, domain::TagList, domain::TagCursors, domain::HistoryEntry, tags::TagAt, tags::ProGetPromotion,
        storage::RunRequest, storage::BackupRequest, domain::maintenance::gc::GcReport,
        domain::maintenance::gc::StorageStats, domain::maintenance::gc::FeedStorage, domain::maintenance::retention::Rules,
        domain::maintenance::retention::RetentionReport, domain::maintenance::retention::Deletion,
        domain::maintenance::backup::BackupReport, domain::audit::AuditEntry, domain::webhooks::EndpointInfo, domain::webhooks::NewEndpoint,
        domain::webhooks::EndpointChange, domain::webhooks::Delivery, domain::webhooks::Format,
    )),
    modifiers(&Security),
    security(("basic" = []), ("bearer" = []))
)]
pub struct ApiDoc;

struct Security;

impl utoipa::Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "basic",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Basic).build()),
        );
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

// GET /api/v1/openapi.json — this API, described.
async fn openapi() -> HttpResponse {
    HttpResponse::Ok().json(ApiDoc::openapi())
}

/// The caller of a management request over the domain: authenticated with a password or an
/// API key, never a registry token (see `Surface::Management`). Handlers get this, never
/// the registry: every operation is reached through a handle that checked the rights.
pub struct Api(pub Access);

impl FromRequest for Api {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let caller = identify(&req, Surface::Management)
                .await?
                .ok_or(domain::Error::Unauthenticated)?;
            Ok(Self(access(&req, Some(caller))?))
        })
    }
}

async fn run<T, F>(f: F) -> Result<T, ApiError>
where
    F: FnOnce() -> Result<T, domain::Error> + Send + 'static,
    T: Send + 'static,
{
    Ok(web::block(f)
        .await
        .map_err(|e| domain::Error::Internal(e.to_string()))??)
}

/// A feed and its settings.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct FeedInfo {
    pub name: String,
    pub description: String,
    pub anonymous_pull: bool,
    /// Container versioning: only version and permitted tags, immutable versions, virtual tags.
    pub versioning: bool,
    /// Tags (exact or `*` globs) a versioned feed accepts besides versions.
    pub permitted: Vec<String>,
    /// When not empty, tags enter the feed only by promotion from these feeds: pushes of
    /// tags are refused (pushes by digest, which a promotion does not need, too).
    pub promotion_sources: Vec<String>,
    /// When set, a promotion into the feed needs a referrer (signature, attestation) of this
    /// artifact type on the image, among the referrers the registry holds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub required_referrer: Option<String>,
    /// When set, the feed is a connector: a pull-through cache of this upstream registry
    /// (its password is never shown).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream: Option<domain::UpstreamInfo>,
    /// Unix seconds.
    pub created: u64,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewFeed {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub anonymous_pull: bool,
    #[serde(default)]
    pub versioning: bool,
    #[serde(default)]
    pub permitted: Vec<String>,
    #[serde(default)]
    pub promotion_sources: Vec<String>,
    pub required_referrer: Option<String>,
    /// Makes the feed a connector of an upstream registry.
    pub upstream: Option<domain::UpstreamChange>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FeedUpdate {
    pub description: Option<String>,
    pub anonymous_pull: Option<bool>,
    pub versioning: Option<bool>,
    pub permitted: Option<Vec<String>>,
    /// Feeds promotions may come from (the feed then refuses pushes of tags); `[]` lets
    /// pushes in again.
    pub promotion_sources: Option<Vec<String>>,
    /// The artifact type promotions need a referrer of; `""` needs none.
    pub required_referrer: Option<String>,
    /// The connector's upstream (`{"url": ""}` makes the feed a plain one again).
    pub upstream: Option<domain::UpstreamChange>,
}

/// A feed as the API shows it (and `semdock feed list` on the data directory).
#[must_use]
pub fn feed_info(name: String, r: &domain::Feed) -> FeedInfo {
    FeedInfo {
        name,
        description: r.description.clone(),
        anonymous_pull: r.anonymous_pull,
        versioning: r.versioning,
        permitted: r.permitted.clone(),
        promotion_sources: r.promotion_sources.clone(),
        required_referrer: r.required_referrer.clone(),
        upstream: r.upstream.clone(),
        created: r.created,
    }
}

/// Feeds the caller may pull from.
#[utoipa::path(get, path = "/api/v1/feeds", responses((status = 200, body = [FeedInfo]), (status = 401, body = error::ErrorBody)))]
async fn list_feeds(Api(access): Api) -> Result<HttpResponse, ApiError> {
    let feeds = run(move || {
        Ok(access
            .feeds()?
            .into_iter()
            .map(|(name, r)| feed_info(name, &r))
            .collect::<Vec<_>>())
    })
    .await?;
    Ok(HttpResponse::Ok().json(feeds))
}

/// Creates a feed (administrators).
#[utoipa::path(post, path = "/api/v1/feeds", request_body = NewFeed,
    responses((status = 201, body = FeedInfo), (status = 400, body = error::ErrorBody), (status = 403, body = error::ErrorBody), (status = 409, body = error::ErrorBody)))]
async fn create_feed(Api(access): Api, body: web::Json<NewFeed>) -> Result<HttpResponse, ApiError> {
    let NewFeed {
        name,
        description,
        anonymous_pull,
        versioning,
        permitted,
        promotion_sources,
        required_referrer,
        upstream,
    } = body.into_inner();
    let info = run(move || {
        let admin = access.admin()?;
        let feed: FeedName = name.parse()?;
        let change = domain::FeedChange {
            description: Some(description),
            anonymous_pull: Some(anonymous_pull),
            versioning: Some(versioning),
            permitted: Some(permitted),
            promotion_sources: Some(promotion_sources),
            required_referrer,
            upstream,
        };
        let r = admin.create_feed(&feed, change)?;
        Ok(feed_info(feed.to_string(), &r))
    })
    .await?;
    Ok(HttpResponse::Created().json(info))
}

/// One feed (pull).
#[utoipa::path(get, path = "/api/v1/feeds/{feed}", params(("feed" = String, Path)),
    responses((status = 200, body = FeedInfo), (status = 403, body = error::ErrorBody), (status = 404, body = error::ErrorBody)))]
async fn show_feed(Api(access): Api, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let feed = path.into_inner();
    let info = run(move || {
        let settings = access.feed::<Pull>(&feed)?.settings()?;
        Ok(feed_info(feed, &settings))
    })
    .await?;
    Ok(HttpResponse::Ok().json(info))
}

/// Changes a feed's settings (feed admin).
#[utoipa::path(patch, path = "/api/v1/feeds/{feed}", params(("feed" = String, Path)), request_body = FeedUpdate,
    responses((status = 200, body = FeedInfo), (status = 403, body = error::ErrorBody), (status = 404, body = error::ErrorBody)))]
async fn update_feed(
    Api(access): Api,
    path: web::Path<String>,
    body: web::Json<FeedUpdate>,
) -> Result<HttpResponse, ApiError> {
    let feed = path.into_inner();
    let FeedUpdate {
        description,
        anonymous_pull,
        versioning,
        permitted,
        promotion_sources,
        required_referrer,
        upstream,
    } = body.into_inner();
    let info = run(move || {
        let change = domain::FeedChange {
            description,
            anonymous_pull,
            versioning,
            permitted,
            promotion_sources,
            required_referrer,
            upstream,
        };
        let r = access.feed::<FeedAdmin>(&feed)?.update(change)?;
        Ok(feed_info(feed, &r))
    })
    .await?;
    Ok(HttpResponse::Ok().json(info))
}

/// Deletes a feed with its repositories, manifests and tags (administrators).
#[utoipa::path(delete, path = "/api/v1/feeds/{feed}", params(("feed" = String, Path)),
    responses((status = 204), (status = 403, body = error::ErrorBody), (status = 404, body = error::ErrorBody)))]
async fn delete_feed(Api(access): Api, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let feed = path.into_inner();
    run(move || access.admin()?.delete_feed(&feed.parse()?)).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    pub name: String,
    /// Omit to have one generated and returned.
    pub password: Option<String>,
    #[serde(default)]
    pub admin: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedUser {
    pub name: String,
    /// The generated password, when none was given; shown only here.
    pub password: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserUpdate {
    pub disabled: Option<bool>,
    pub admin: Option<bool>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    pub password: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleGrant {
    /// `pull`, `push`, `promote`, `delete` or `admin`.
    pub role: String,
}

/// Every user (administrators).
#[utoipa::path(get, path = "/api/v1/users", params(paging::PageQuery), responses((status = 200, body = [UserInfo]), (status = 403, body = error::ErrorBody)))]
async fn list_users(
    Api(access): Api,
    req: HttpRequest,
    query: web::Query<paging::PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let users = run(move || access.admin()?.users()).await?;
    let (page, next) = paging::page_of(users, |u| u.name.as_str(), &query);
    Ok(paged_json(&req, &page, next.as_deref()))
}

/// A JSON page with the `Link` to the next one when there is one.
fn paged_json(req: &HttpRequest, page: &impl Serialize, next: Option<&str>) -> HttpResponse {
    let mut res = HttpResponse::Ok();
    if let Some(last) = next {
        res.insert_header(("Link", paging::next_link(req, last, None)));
    }
    res.json(page)
}

/// Creates a user (administrators).
#[utoipa::path(post, path = "/api/v1/users", request_body = NewUser,
    responses((status = 201, body = CreatedUser), (status = 400, body = error::ErrorBody), (status = 403, body = error::ErrorBody), (status = 409, body = error::ErrorBody)))]
async fn create_user(Api(access): Api, body: web::Json<NewUser>) -> Result<HttpResponse, ApiError> {
    let NewUser {
        name,
        password,
        admin,
    } = body.into_inner();
    let n = name.clone();
    let password = run(move || access.admin()?.create_user(&n, password.as_deref(), admin)).await?;
    Ok(HttpResponse::Created().json(CreatedUser { name, password }))
}

/// Disables, enables, or changes the administrator flag of a user (administrators).
#[utoipa::path(patch, path = "/api/v1/users/{name}", params(("name" = String, Path)), request_body = UserUpdate,
    responses((status = 204), (status = 403, body = error::ErrorBody), (status = 404, body = error::ErrorBody)))]
async fn update_user(
    Api(access): Api,
    path: web::Path<String>,
    body: web::Json<UserUpdate>,
) -> Result<HttpResponse, ApiError> {
    let UserUpdate { disabled, admin } = body.into_inner();
    run(move || access.admin()?.update_user(&path, disabled, admin)).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Sets a password (administrators, or users for themselves).
#[utoipa::path(put, path = "/api/v1/users/{name}/password", params(("name" = String, Path)), request_body = PasswordChange,
    responses((status = 204), (status = 400, body = error::ErrorBody), (status = 403, body = error::ErrorBody), (status = 404, body = error::ErrorBody)))]
async fn set_password(
    Api(access): Api,
    path: web::Path<String>,
    body: web::Json<PasswordChange>,
) -> Result<HttpResponse, ApiError> {
    let password = body.into_inner().password;
    run(move || access.account()?.set_password(&path, &password)).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Grants a role on a feed to a user (feed admin).
#[utoipa::path(put, path = "/api/v1/users/{name}/roles/{feed}", params(("name" = String, Path), ("feed" = String, Path)), request_body = RoleGrant,
    responses((status = 204), (status = 400, body = error::ErrorBody), (status = 403, body = error::ErrorBody), (status = 404, body = error::ErrorBody)))]
async fn grant_role(
    Api(access): Api,
    path: web::Path<(String, String)>,
    body: web::Json<RoleGrant>,
) -> Result<HttpResponse, ApiError> {
    let (name, feed) = path.into_inner();
    let role = body.into_inner().role;
    run(move || access.feed::<FeedAdmin>(&feed)?.grant(&name, Some(&role))).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Removes a user's role on a feed (feed admin).
#[utoipa::path(delete, path = "/api/v1/users/{name}/roles/{feed}", params(("name" = String, Path), ("feed" = String, Path)),
    responses((status = 204), (status = 403, body = error::ErrorBody), (status = 404, body = error::ErrorBody)))]
async fn revoke_role(
    Api(access): Api,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (name, feed) = path.into_inner();
    run(move || access.feed::<FeedAdmin>(&feed)?.grant(&name, None)).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewKeyRequest {
    pub name: String,
    /// The key's owner; only administrators may name someone else.
    pub owner: Option<String>,
    /// feed → role; the key never holds more than its owner.
    #[serde(default)]
    pub roles: BTreeMap<String, String>,
    /// Administrator rights, for an administrator's own automation.
    #[serde(default)]
    pub admin: bool,
    /// Unix seconds after which the key stops working.
    pub expires_at: Option<u64>,
    /// Give the key every role its owner holds now, besides `roles` (what `semdock login`
    /// asks for). An administrator's key asks for `admin` as well.
    #[serde(default)]
    pub owner_roles: bool,
}

/// The caller's API keys (all of them for administrators).
#[utoipa::path(get, path = "/api/v1/keys", params(paging::PageQuery), responses((status = 200, body = [KeyInfo]), (status = 401, body = error::ErrorBody)))]
async fn list_keys(
    Api(access): Api,
    req: HttpRequest,
    query: web::Query<paging::PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let keys = run(move || access.account()?.keys()).await?;
    let (page, next) = paging::page_of(keys, |k| k.id.as_str(), &query);
    Ok(paged_json(&req, &page, next.as_deref()))
}

/// Creates an API key; the key is in this response only.
#[utoipa::path(post, path = "/api/v1/keys", request_body = NewKeyRequest,
    responses((status = 201, body = NewKey), (status = 400, body = error::ErrorBody), (status = 403, body = error::ErrorBody), (status = 404, body = error::ErrorBody)))]
async fn create_key(
    Api(access): Api,
    body: web::Json<NewKeyRequest>,
) -> Result<HttpResponse, ApiError> {
    let mut r = body.into_inner();
    let key = run(move || {
        let account = access.account()?;
        if r.owner_roles {
            for (feed, role) in account.roles_of(r.owner.as_deref())? {
                r.roles.entry(feed).or_insert(role);
            }
        }
        account.create_key(r.owner.as_deref(), &r.name, &r.roles, r.admin, r.expires_at)
    })
    .await?;
    Ok(HttpResponse::Created().json(key))
}

/// Revokes an API key at once, tokens included.
#[utoipa::path(delete, path = "/api/v1/keys/{id}", params(("id" = String, Path)),
    responses((status = 204), (status = 403, body = error::ErrorBody), (status = 404, body = error::ErrorBody)))]
async fn revoke_key(Api(access): Api, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    run(move || access.revoke_key(&path)).await?;
    Ok(HttpResponse::NoContent().finish())
}
