//! `/api/v1/webhooks`: endpoints told of content changes, their delivery logs, redelivery.

use actix_web::{HttpResponse, web};
use serde::Deserialize;

use super::dto::{self, Delivery, EndpointChange, EndpointInfo, NewEndpoint};
use super::error::ErrorBody;
use super::{Api, ApiError, run};

/// `?feed=` of a listing.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct WebhookQuery {
    /// Only this feed's webhooks (what its administrators may list); every one otherwise
    /// (administrators).
    pub feed: Option<String>,
}

/// Webhooks (administrators: all; a feed's administrators: `?feed=` theirs).
#[utoipa::path(get, path = "/api/v1/webhooks", params(WebhookQuery),
    responses((status = 200, body = [EndpointInfo]), (status = 403, body = ErrorBody)))]
pub async fn list(Api(access): Api, q: web::Query<WebhookQuery>) -> Result<HttpResponse, ApiError> {
    let feed = q.into_inner().feed;
    let hooks = run(move || access.webhooks(feed.as_deref())).await?;
    Ok(HttpResponse::Ok().json(dto::all::<EndpointInfo, _>(hooks)))
}

/// Adds a webhook, told of events from now on; the response holds its secret, shown only
/// here (generated when not given).
#[utoipa::path(post, path = "/api/v1/webhooks", request_body = NewEndpoint,
    responses((status = 201, body = EndpointInfo), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn create(
    Api(access): Api,
    body: web::Json<NewEndpoint>,
) -> Result<HttpResponse, ApiError> {
    let new = body.into_inner().into();
    let hook = run(move || access.create_webhook(&new)).await?;
    Ok(HttpResponse::Created().json(EndpointInfo::from(hook)))
}

/// Changes a webhook's URL, events, format, or switches it off and on.
#[utoipa::path(patch, path = "/api/v1/webhooks/{id}", params(("id" = String, Path)), request_body = EndpointChange,
    responses((status = 200, body = EndpointInfo), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn update(
    Api(access): Api,
    path: web::Path<String>,
    body: web::Json<EndpointChange>,
) -> Result<HttpResponse, ApiError> {
    let change = body.into_inner().into();
    let hook = run(move || access.webhook(&path)?.update(&change)).await?;
    Ok(HttpResponse::Ok().json(EndpointInfo::from(hook)))
}

/// Removes a webhook with its delivery log.
#[utoipa::path(delete, path = "/api/v1/webhooks/{id}", params(("id" = String, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete(Api(access): Api, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    run(move || access.webhook(&path)?.delete()).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The newest deliveries (status, response code, attempts), newest first.
#[utoipa::path(get, path = "/api/v1/webhooks/{id}/deliveries", params(("id" = String, Path)),
    responses((status = 200, body = [Delivery]), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn deliveries(
    Api(access): Api,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let log = run(move || access.webhook(&path)?.deliveries()).await?;
    Ok(HttpResponse::Ok().json(dto::all::<Delivery, _>(log)))
}

/// Sends event `event` to the webhook again (queued; it appears in the log as a redelivery).
#[utoipa::path(post, path = "/api/v1/webhooks/{id}/deliveries/{event}/redeliver",
    params(("id" = String, Path), ("event" = u64, Path)),
    responses((status = 202), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn redeliver(
    Api(access): Api,
    path: web::Path<(String, u64)>,
) -> Result<HttpResponse, ApiError> {
    let (id, event) = path.into_inner();
    run(move || access.webhook(&id)?.redeliver(event)).await?;
    Ok(HttpResponse::Accepted().finish())
}
