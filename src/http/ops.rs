//! Operational endpoints: `/healthz` (the process answers) and `/readyz` (it can serve:
//! what a load balancer's health check asks).

use actix_web::{HttpResponse, web};

use crate::domain::Registry;
use crate::http::oci::{OciError, blocking};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(readyz));
}

// GET /healthz: the process serves requests.
async fn healthz() -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain").body("ok\n")
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
