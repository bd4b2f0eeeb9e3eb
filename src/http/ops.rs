//! Operational endpoints: `/healthz` (the process answers and can run a request) and `/readyz` (it can serve:
//! what a load balancer's health check asks).

use actix_web::{HttpResponse, web};

use crate::domain::Registry;
use crate::http::oci::{OciError, blocking};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(readyz));
}

/// How long `/healthz` waits for a thread of the blocking pool, where every request that
/// reads or writes the stores runs: a node whose pool is exhausted cannot serve.
const POOL_PROBE: std::time::Duration = std::time::Duration::from_secs(5);

// GET /healthz: the process serves requests — it answers, and a task on the blocking pool
// (where every store access runs) starts within a few seconds. 503 otherwise, so that a
// supervisor restarts a node that has stopped serving.
async fn healthz() -> HttpResponse {
    match actix_web::rt::time::timeout(POOL_PROBE, web::block(|| ())).await {
        Ok(Ok(())) => HttpResponse::Ok().content_type("text/plain").body("ok\n"),
        _ => HttpResponse::ServiceUnavailable()
            .content_type("text/plain")
            .body("the node cannot serve: its worker threads are all busy\n"),
    }
}

// GET /readyz: the metadata store and the blob store both answer; otherwise 503 with the
// OCI error JSON naming which does not, so a balancer sends requests elsewhere meanwhile.
async fn readyz(registry: web::Data<Registry>) -> Result<HttpResponse, OciError> {
    let registry = registry.into_inner();
    blocking(move || registry.ready()).await?;
    Ok(HttpResponse::Ok()
        .content_type("text/plain")
        .body("ready\n"))
}
