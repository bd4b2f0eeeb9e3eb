//! One log line per request (method, path, status, bytes, duration), and the request
//! metrics by route pattern (`crate::metrics`). The lines have their own target,
//! `semdock::request`, which the log filter leaves off unless `log.access` is on.

use std::time::Instant;

use actix_web::body::{BodySize, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;

/// Middleware (for `middleware::from_fn`) that logs each request once it is answered.
pub async fn log_request(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.path().to_owned();
    let sent = req
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    let res = next.call(req).await?;
    let bytes = match res.response().body().size() {
        BodySize::Sized(n) => n,
        BodySize::None | BodySize::Stream => 0,
    };
    let m = crate::metrics::get();
    let route = res
        .request()
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    m.requests
        .get_or_create(&crate::metrics::RequestLabels {
            route: route.clone(),
            method: method.to_string(),
            status: crate::metrics::Metrics::status_class(res.status().as_u16()),
        })
        .inc();
    m.request_seconds
        .get_or_create(&crate::metrics::RouteLabels { route })
        .observe(started.elapsed().as_secs_f64());
    m.request_bytes.inc_by(sent);
    m.response_bytes.inc_by(bytes);
    tracing::info!(
        target: "semdock::request",
        %method,
        path,
        status = res.status().as_u16(),
        bytes,
        micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
    );
    Ok(res)
}
