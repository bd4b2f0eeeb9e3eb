//! `/api/v1/replication`: rules that push a feed's images to other registries, their status
//! and runs on demand.

use actix_web::{HttpResponse, web};
use serde::Deserialize;

use super::dto::{
    self, CarriedHistory, FeedReplica, NewReplicationRule, ReplicaChange, ReplicationRule,
    ReplicationRuleChange, RunReport,
};
use super::error::ErrorBody;
use super::{Api, ApiError, run};
use crate::domain::access::{FeedAdmin, Pull};

/// `?feed=` of a listing.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct RuleQuery {
    /// Only this feed's rules (what its administrators may list); every one otherwise
    /// (administrators).
    pub feed: Option<String>,
}

/// Replication rules with their status (administrators: all; a feed's administrators:
/// `?feed=` theirs).
#[utoipa::path(get, path = "/api/v1/replication", params(RuleQuery),
    responses((status = 200, body = [ReplicationRule]), (status = 403, body = ErrorBody)))]
pub async fn list(Api(access): Api, q: web::Query<RuleQuery>) -> Result<HttpResponse, ApiError> {
    let feed = q.into_inner().feed;
    let rules = run(move || access.replication_rules(feed.as_deref())).await?;
    Ok(HttpResponse::Ok().json(dto::all::<ReplicationRule, _>(rules)))
}

/// Adds a rule: events from now on, and a first full run of what the feed holds.
#[utoipa::path(post, path = "/api/v1/replication", request_body = NewReplicationRule,
    responses((status = 201, body = ReplicationRule), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create(
    Api(access): Api,
    body: web::Json<NewReplicationRule>,
) -> Result<HttpResponse, ApiError> {
    let new = body.into_inner().into();
    let rule = run(move || access.create_replication_rule(&new)).await?;
    Ok(HttpResponse::Created().json(ReplicationRule::from(rule)))
}

/// A rule and its status: lag, last run, last error, conflicts.
#[utoipa::path(get, path = "/api/v1/replication/{name}", params(("name" = String, Path)),
    responses((status = 200, body = ReplicationRule), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn show(Api(access): Api, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let rule = run(move || access.replication_rule(&path)?.get()).await?;
    Ok(HttpResponse::Ok().json(ReplicationRule::from(rule)))
}

/// Changes a rule (a new URL drops the stored password unless a new one is given).
#[utoipa::path(patch, path = "/api/v1/replication/{name}", params(("name" = String, Path)), request_body = ReplicationRuleChange,
    responses((status = 200, body = ReplicationRule), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn update(
    Api(access): Api,
    path: web::Path<String>,
    body: web::Json<ReplicationRuleChange>,
) -> Result<HttpResponse, ApiError> {
    let change = body.into_inner().into();
    let rule = run(move || access.replication_rule(&path)?.update(&change)).await?;
    Ok(HttpResponse::Ok().json(ReplicationRule::from(rule)))
}

/// Deletes a rule (nothing at the target changes).
#[utoipa::path(delete, path = "/api/v1/replication/{name}", params(("name" = String, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete(Api(access): Api, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    run(move || access.replication_rule(&path)?.delete()).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Runs a rule in full now and answers its report; 409 while it runs elsewhere.
#[utoipa::path(post, path = "/api/v1/replication/{name}/run", params(("name" = String, Path)),
    responses((status = 200, body = RunReport), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn run_now(Api(access): Api, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let report = run(move || access.replication_rule(&path)?.run()).await?;
    Ok(HttpResponse::Ok().json(RunReport::from(report)))
}

/// Appends a tag's history carried from another semdock (what replication sends before it
/// first sets the tag here; the feed's administrators): actors are named with the origin's
/// host, comments say where the entries came from, and entries already here are skipped.
#[utoipa::path(post, path = "/api/v1/repositories/{repo}/history/carried", params(("repo" = String, Path)), request_body = CarriedHistory,
    responses((status = 204), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn carry_history(
    Api(access): Api,
    path: web::Path<String>,
    body: web::Json<CarriedHistory>,
) -> Result<HttpResponse, ApiError> {
    let carried = body.into_inner().into();
    run(move || {
        let repo: crate::model::Repository = path.parse()?;
        access
            .feed::<FeedAdmin>(repo.feed())?
            .carry_history(&repo, &carried)
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The feed's replica setting: 404 when it is a primary.
#[utoipa::path(get, path = "/api/v1/feeds/{feed}/replica", params(("feed" = String, Path)),
    responses((status = 200, body = FeedReplica), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn replica(Api(access): Api, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let feed = path.into_inner();
    let replica = run(move || {
        access.feed::<Pull>(&feed)?.replica()?.ok_or_else(|| {
            crate::domain::Error::NotFound(format!("feed {feed:?} is not a replica"))
        })
    })
    .await?;
    Ok(HttpResponse::Ok().json(FeedReplica::from(replica)))
}

/// Makes the feed a replica (site B of a disaster-recovery pair): only `writers` may push,
/// promote or delete; everyone else pulls, and its administrators keep its settings.
#[utoipa::path(put, path = "/api/v1/feeds/{feed}/replica", params(("feed" = String, Path)), request_body = ReplicaChange,
    responses((status = 200, body = FeedReplica), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn set_replica(
    Api(access): Api,
    path: web::Path<String>,
    body: web::Json<ReplicaChange>,
) -> Result<HttpResponse, ApiError> {
    let (feed, change) = (path.into_inner(), body.into_inner());
    let replica = run(move || {
        access
            .feed::<FeedAdmin>(&feed)?
            .set_replica(&change.source, &change.writers)
    })
    .await?;
    Ok(HttpResponse::Ok().json(FeedReplica::from(replica)))
}

/// Makes the feed the primary: everyone's roles apply again (the failover).
#[utoipa::path(delete, path = "/api/v1/feeds/{feed}/replica", params(("feed" = String, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn clear_replica(
    Api(access): Api,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let feed = path.into_inner();
    run(move || access.feed::<FeedAdmin>(&feed)?.clear_replica()).await?;
    Ok(HttpResponse::NoContent().finish())
}
