//! `/api/v1/robots`: robot accounts, managed by a feed's administrators (its robots) or the
//! registry's (all of them); `/api/v1/federation`: the workload identity rules that let CI
//! jobs act as robots with their ID tokens.

use actix_web::{HttpResponse, web};
use serde::Deserialize;

use super::dto::{FederationRule, NewRobot, RobotInfo, RobotSecret, RobotUpdate, SearchHit, all};
use super::error::{ApiError, ErrorBody};
use super::{Api, run};

/// `?feed=` of a listing.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct RobotQuery {
    /// The feed whose robots to list (its administrators); without it, every robot
    /// (administrators).
    pub feed: Option<String>,
}

/// The robots of a feed, or every robot.
#[utoipa::path(get, path = "/api/v1/robots", params(RobotQuery),
    responses((status = 200, body = Vec<RobotInfo>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list(
    Api(access): Api,
    query: web::Query<RobotQuery>,
) -> Result<HttpResponse, ApiError> {
    let feed = query.into_inner().feed;
    let robots = run(move || access.robots(feed.as_deref())).await?;
    Ok(HttpResponse::Ok().json(all::<RobotInfo, _>(robots)))
}

/// Creates a robot; its secret is in this answer only.
#[utoipa::path(post, path = "/api/v1/robots", request_body = NewRobot,
    responses((status = 201, body = RobotSecret), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create(Api(access): Api, body: web::Json<NewRobot>) -> Result<HttpResponse, ApiError> {
    let r = body.into_inner();
    let made = run(move || {
        access.create_robot(
            r.feed.as_deref(),
            &r.name,
            &r.description,
            &r.roles,
            r.expires_at,
        )
    })
    .await?;
    Ok(HttpResponse::Created().json(RobotSecret::from(made)))
}

/// Changes a robot's description, state, roles or expiry; its tokens stop working.
#[utoipa::path(patch, path = "/api/v1/robots/{name}", params(("name" = String, Path)), request_body = RobotUpdate,
    responses((status = 204), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn update(
    Api(access): Api,
    path: web::Path<String>,
    body: web::Json<RobotUpdate>,
) -> Result<HttpResponse, ApiError> {
    let change = body.into_inner().into();
    run(move || access.change_robot(&path, change)).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// A new secret for a robot: the old one and its tokens stop working at once.
#[utoipa::path(post, path = "/api/v1/robots/{name}/rotate", params(("name" = String, Path)),
    responses((status = 200, body = RobotSecret), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn rotate(Api(access): Api, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let made = run(move || access.rotate_robot(&path)).await?;
    Ok(HttpResponse::Ok().json(RobotSecret::from(made)))
}

/// Deletes a robot and its roles.
#[utoipa::path(delete, path = "/api/v1/robots/{name}", params(("name" = String, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete(Api(access): Api, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    run(move || access.delete_robot(&path)).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Every workload identity rule (administrators).
#[utoipa::path(get, path = "/api/v1/federation",
    responses((status = 200, body = Vec<FederationRule>), (status = 403, body = ErrorBody)))]
pub async fn rules(Api(access): Api) -> Result<HttpResponse, ApiError> {
    let rules = run(move || access.federation_rules()).await?;
    Ok(HttpResponse::Ok().json(all::<FederationRule, _>(rules)))
}

/// Trusts an issuer's tokens that match the rule as its robot (administrators); answers the
/// rule with its id.
#[utoipa::path(post, path = "/api/v1/federation", request_body = FederationRule,
    responses((status = 201, body = FederationRule), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn add_rule(
    Api(access): Api,
    body: web::Json<FederationRule>,
) -> Result<HttpResponse, ApiError> {
    let rule = body.into_inner();
    let mut answer = rule.clone();
    answer.id = run(move || access.add_federation_rule(rule.into())).await?;
    Ok(HttpResponse::Created().json(answer))
}

/// Removes a workload identity rule (administrators).
#[utoipa::path(delete, path = "/api/v1/federation/{id}", params(("id" = String, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn remove_rule(
    Api(access): Api,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    run(move || access.remove_federation_rule(&path)).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `?q=` and `?n=` of a search.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct SearchQuery {
    /// A repository name or part of one, a tag (or its start), a digest (or its first
    /// characters), or `KEY=VALUE` of an annotation (or its start).
    pub q: String,
    /// At most this many hits (default 50, at most 200).
    pub n: Option<usize>,
}

/// Repositories, tags, digests and annotations across the feeds the caller may pull.
#[utoipa::path(get, path = "/api/v1/search", params(SearchQuery),
    responses((status = 200, body = Vec<SearchHit>), (status = 400, body = ErrorBody)))]
pub async fn search(
    Api(access): Api,
    query: web::Query<SearchQuery>,
) -> Result<HttpResponse, ApiError> {
    let SearchQuery { q, n } = query.into_inner();
    let hits = run(move || access.search(&q, n.unwrap_or(50))).await?;
    Ok(HttpResponse::Ok().json(all::<SearchHit, _>(hits)))
}
