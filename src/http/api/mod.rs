//! The JSON management API under `/api/v1/`: feeds, users and API keys.
//!
//! The same credentials as the registry (Basic with a password or API key, or a Bearer token
//! from `/v2/_auth`). Every rule — who may do what — is the domain's; handlers parse, call and
//! render. The `OpenAPI` document at `/api/v1/openapi.json` is generated from these handlers.

mod audit;
pub mod dto;
mod error;
mod paging;
mod replication;
mod robots;
mod storage;
mod tags;
mod trust;
mod vulns;
mod webhooks;

use actix_web::{FromRequest, HttpRequest, HttpResponse, ResponseError, dev::Payload, web};
use futures_util::future::LocalBoxFuture;
use serde::Serialize;
use utoipa::OpenApi;

pub use audit::{AuditParams, jsonl_response};
pub use error::ApiError;
pub use tags::parse_reference;
pub use tags::{PromoteArgs, do_promote, resolve_ref};
pub use trust::verify_ref;
pub use vulns::report_of;

use dto::{
    CreatedUser, FeedInfo, FeedUpdate, KeyInfo, NewFeed, NewKey, NewKeyRequest, NewUser,
    PasswordChange, RoleGrant, UserInfo, UserUpdate,
};

use crate::domain;
use crate::domain::access::{Access, FeedAdmin, Pull};
use crate::domain::auth::Surface;
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
            .route("/robots", web::get().to(robots::list))
            .route("/robots", web::post().to(robots::create))
            .route("/robots/{name}", web::patch().to(robots::update))
            .route("/robots/{name}", web::delete().to(robots::delete))
            .route("/robots/{name}/rotate", web::post().to(robots::rotate))
            .route("/search", web::get().to(robots::search))
            .route("/federation", web::get().to(robots::rules))
            .route("/federation", web::post().to(robots::add_rule))
            .route("/federation/{id}", web::delete().to(robots::remove_rule))
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
            .route("/trust/keys", web::get().to(trust::list_keys))
            .route("/trust/keys", web::post().to(trust::add_key))
            .route("/trust/keys/{name}", web::delete().to(trust::remove_key))
            .route("/trust/roots", web::get().to(trust::list_roots))
            .route("/trust/roots", web::post().to(trust::add_root))
            .route("/trust/roots/{name}", web::delete().to(trust::remove_root))
            .route("/trust/stores", web::get().to(trust::list_stores))
            .route("/trust/stores", web::post().to(trust::add_store))
            .route(
                "/trust/stores/{name}",
                web::delete().to(trust::remove_store),
            )
            .route(
                "/feeds/{feed}/signature-policy",
                web::get().to(trust::policy),
            )
            .route(
                "/feeds/{feed}/signature-policy",
                web::put().to(trust::set_policy),
            )
            .route(
                "/feeds/{feed}/signature-policy",
                web::delete().to(trust::remove_policy),
            )
            .route("/verify", web::get().to(trust::verify))
            .route("/vulndb", web::get().to(vulns::database))
            .route("/vulndb", web::post().to(vulns::import))
            .route("/vulnerabilities", web::get().to(vulns::report))
            .route("/vulnerabilities/affected", web::get().to(vulns::affected))
            .route("/sbom", web::get().to(vulns::sbom))
            .route("/feeds/{feed}/vuln-policy", web::get().to(vulns::policy))
            .route(
                "/feeds/{feed}/vuln-policy",
                web::put().to(vulns::set_policy),
            )
            .route(
                "/feeds/{feed}/vuln-policy",
                web::delete().to(vulns::remove_policy),
            )
            .route(
                "/feeds/{feed}/vuln-policy/exceptions",
                web::post().to(vulns::add_exception),
            )
            .route(
                "/feeds/{feed}/vuln-policy/exceptions/{advisory}",
                web::delete().to(vulns::remove_exception),
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
            .route("/feeds/{feed}/replica", web::get().to(replication::replica))
            .route(
                "/feeds/{feed}/replica",
                web::put().to(replication::set_replica),
            )
            .route(
                "/feeds/{feed}/replica",
                web::delete().to(replication::clear_replica),
            )
            .route("/replication", web::get().to(replication::list))
            .route("/replication", web::post().to(replication::create))
            .route("/replication/{name}", web::get().to(replication::show))
            .route("/replication/{name}", web::patch().to(replication::update))
            .route("/replication/{name}", web::delete().to(replication::delete))
            .route(
                "/replication/{name}/run",
                web::post().to(replication::run_now),
            )
            .route("/gc", web::post().to(storage::gc))
            .route("/backup", web::post().to(storage::backup))
            .route("/feeds/{feed}/quota", web::get().to(storage::quota))
            .route("/feeds/{feed}/quota", web::put().to(storage::set_quota))
            .route("/maintenance", web::get().to(storage::maintenance))
            .route("/maintenance", web::put().to(storage::set_maintenance))
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
                "/repositories/{repo:[^{}]+}/history/carried",
                web::post().to(replication::carry_history),
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
        robots::list, robots::create, robots::update, robots::rotate, robots::delete,
        robots::rules, robots::add_rule, robots::remove_rule, robots::search,
        tags::feed_changes, tags::promote, tags::resolve, tags::accept_upstream, tags::delete_tag, tags::purge, tags::repository_tags, tags::history,
        tags::proget_promote, tags::proget_list, storage::gc, storage::retention, storage::set_retention,
        storage::run_retention, storage::sync, storage::sync_status, storage::test_upstream, storage::backup, storage::quota, storage::set_quota, storage::maintenance, storage::set_maintenance, storage::storage, audit::audit, webhooks::list, webhooks::create,
        webhooks::update, webhooks::delete, webhooks::deliveries, webhooks::redeliver,
        replication::list, replication::create, replication::show, replication::update,
        replication::delete, replication::run_now, replication::carry_history,
        replication::replica, replication::set_replica, replication::clear_replica,
        trust::list_keys, trust::add_key, trust::remove_key, trust::policy, trust::set_policy,
        trust::remove_policy, trust::verify, trust::list_roots, trust::add_root, trust::remove_root,
        trust::list_stores, trust::add_store, trust::remove_store,
        vulns::import, vulns::database, vulns::report, vulns::affected, vulns::sbom, vulns::policy,
        vulns::set_policy, vulns::remove_policy, vulns::add_exception, vulns::remove_exception,
    ),
    components(schemas(
        FeedInfo, NewFeed, FeedUpdate, UserInfo, NewUser, CreatedUser, UserUpdate, PasswordChange,
        RoleGrant, KeyInfo, NewKeyRequest, NewKey, dto::RobotInfo, dto::NewRobot, dto::RobotSecret, dto::RobotUpdate, dto::FederationRule, dto::SearchHit, error::ErrorBody, error::ErrorDetail,
        tags::FeedChangeEntry, dto::PromotionRequest, dto::Resolved, tags::AcceptedUpstream,
        dto::UpstreamInfo, dto::UpstreamChange, dto::PurgeRequest, tags::ProGetPromotionEntry, dto::Promoted, dto::TagGroups,
        dto::TagEntry, dto::TagList, dto::TagCursors, dto::HistoryEntry, dto::TagAt, tags::ProGetPromotion,
        dto::RunRequest, dto::BackupRequest, dto::GcReport,
        dto::StorageStats, dto::FeedStorage, dto::Rules,
        dto::RetentionReport, dto::Deletion,
        dto::BackupReport, dto::Maintenance, dto::MaintenanceChange, dto::FeedQuota, dto::QuotaChange, dto::AuditEntry, dto::EndpointInfo, dto::NewEndpoint,
        dto::EndpointChange, dto::Delivery, dto::Format,
        dto::TrustKey, dto::NewTrustKey, dto::SignaturePolicy, dto::Verification, dto::SignatureFinding,
        dto::PullGate, dto::Identity, dto::AttestationRule, dto::Attestation, dto::TrustRoot, dto::NewTrustRoot, dto::TrustStore, dto::NewTrustStore,
        dto::Finding, dto::VulnReport, dto::VulnImport, dto::VulnSource, dto::VulnDb,
        dto::VulnException, dto::VulnPolicy, dto::AffectedReport, dto::AffectedRepository,
        dto::ReplicationRule, dto::ReplicationStatus, dto::NewReplicationRule,
        dto::ReplicationRuleChange, dto::RunReport, dto::Conflict, dto::CarriedHistory, dto::CarriedEntry,
        dto::FeedReplica, dto::ReplicaChange,
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

/// Feeds the caller may pull from.
#[utoipa::path(get, path = "/api/v1/feeds", responses((status = 200, body = [FeedInfo]), (status = 401, body = error::ErrorBody)))]
async fn list_feeds(Api(access): Api) -> Result<HttpResponse, ApiError> {
    let feeds = run(move || {
        Ok(access
            .feeds()?
            .into_iter()
            .map(|(name, r)| FeedInfo::of(name, &r))
            .collect::<Vec<_>>())
    })
    .await?;
    Ok(HttpResponse::Ok().json(feeds))
}

/// Creates a feed (administrators).
#[utoipa::path(post, path = "/api/v1/feeds", request_body = NewFeed,
    responses((status = 201, body = FeedInfo), (status = 400, body = error::ErrorBody), (status = 403, body = error::ErrorBody), (status = 409, body = error::ErrorBody)))]
async fn create_feed(Api(access): Api, body: web::Json<NewFeed>) -> Result<HttpResponse, ApiError> {
    let new = body.into_inner();
    let info = run(move || {
        let admin = access.admin()?;
        let feed: FeedName = new.name.parse()?;
        let change = new.into_change();
        let r = admin.create_feed(&feed, change)?;
        Ok(FeedInfo::of(feed.to_string(), &r))
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
        Ok(FeedInfo::of(feed, &settings))
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
    let change: domain::FeedChange = body.into_inner().into();
    let info = run(move || {
        let r = access.feed::<FeedAdmin>(&feed)?.update(change)?;
        Ok(FeedInfo::of(feed, &r))
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

/// Every user (administrators).
#[utoipa::path(get, path = "/api/v1/users", params(paging::PageQuery), responses((status = 200, body = [UserInfo]), (status = 403, body = error::ErrorBody)))]
async fn list_users(
    Api(access): Api,
    req: HttpRequest,
    query: web::Query<paging::PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let users: Vec<UserInfo> = dto::all(run(move || access.admin()?.users()).await?);
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

/// The caller's API keys (all of them for administrators).
#[utoipa::path(get, path = "/api/v1/keys", params(paging::PageQuery), responses((status = 200, body = [KeyInfo]), (status = 401, body = error::ErrorBody)))]
async fn list_keys(
    Api(access): Api,
    req: HttpRequest,
    query: web::Query<paging::PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let keys: Vec<KeyInfo> = dto::all(run(move || access.account()?.keys()).await?);
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
    Ok(HttpResponse::Created().json(NewKey::from(key)))
}

/// Revokes an API key at once, tokens included.
#[utoipa::path(delete, path = "/api/v1/keys/{id}", params(("id" = String, Path)),
    responses((status = 204), (status = 403, body = error::ErrorBody), (status = 404, body = error::ErrorBody)))]
async fn revoke_key(Api(access): Api, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    run(move || access.revoke_key(&path)).await?;
    Ok(HttpResponse::NoContent().finish())
}
