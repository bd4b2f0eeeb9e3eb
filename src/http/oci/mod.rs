//! The OCI Distribution API v2 (distribution-spec v1.1) under `/v2/`.

pub mod auth;
mod blobs;
pub mod error;
mod extract;
mod listing;
mod manifests;
mod uploads;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};

pub use error::{Code, OciError};

use crate::domain::{self, Registry};

/// Repository names span path segments: `{name}` matches them all, and the fixed suffix of
/// each route tells the endpoints apart.
const NAME: &str = "{name:[^{}]+}";

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/v2")
            .wrap(super::inert_content().add(("Docker-Distribution-API-Version", "registry/2.0")))
            .app_data(web::QueryConfig::default().error_handler(|e, _| {
                OciError::new(Code::Unsupported, format!("invalid query: {e}"))
                    .with_status(StatusCode::BAD_REQUEST)
                    .into()
            }))
            .app_data(web::PathConfig::default().error_handler(|e, _| {
                OciError::new(Code::NameInvalid, format!("invalid path: {e}")).into()
            }))
            .route("/", web::get().to(auth::base))
            .route("/_auth", web::get().to(auth::token))
            .route("/_catalog", web::get().to(listing::catalog))
            .service(web::resource(format!("/{NAME}/tags/list")).get(listing::tags))
            .service(web::resource(format!("/{NAME}/referrers/{{digest}}")).get(listing::referrers))
            .service(
                web::resource(format!("/{NAME}/manifests/{{reference}}"))
                    .get(manifests::get)
                    .head(manifests::get)
                    .put(manifests::put)
                    .delete(manifests::delete)
                    .default_service(web::to(method_not_allowed)),
            )
            .service(
                web::resource(format!("/{NAME}/blobs/uploads/"))
                    .post(uploads::start)
                    .default_service(web::to(method_not_allowed)),
            )
            .service(
                web::resource(format!("/{NAME}/blobs/uploads/{{id}}"))
                    .get(uploads::status)
                    .patch(uploads::patch)
                    .put(uploads::complete)
                    .delete(uploads::cancel)
                    .default_service(web::to(method_not_allowed)),
            )
            .service(
                web::resource(format!("/{NAME}/blobs/{{digest}}"))
                    .get(blobs::get)
                    .head(blobs::get)
                    .delete(blobs::delete)
                    .default_service(web::to(method_not_allowed)),
            )
            .default_service(web::to(not_found)),
    );
}

async fn not_found(req: HttpRequest) -> HttpResponse {
    OciError::new(
        Code::Unsupported,
        format!("no such endpoint: {} {}", req.method(), req.path()),
    )
    .with_status(StatusCode::NOT_FOUND)
    .error_response()
}

async fn method_not_allowed(req: HttpRequest) -> HttpResponse {
    OciError::new(
        Code::Unsupported,
        format!("{} is not supported on {}", req.method(), req.path()),
    )
    .error_response()
}

/// Runs a blocking domain call off the executor.
pub(crate) async fn blocking<T, F>(f: F) -> Result<T, OciError>
where
    F: FnOnce() -> Result<T, domain::Error> + Send + 'static,
    T: Send + 'static,
{
    web::block(f)
        .await
        .map_err(|e| OciError::internal(&e))?
        .map_err(OciError::from)
}

/// `f` on the blocking pool, as [`blocking`]; when it must wait for another request's
/// fetch from a connector's upstream, it waits here — holding no thread of the pool, so a
/// stalled upstream cannot starve every other request — and then runs `f` again.
pub(crate) async fn fetching<T, F>(f: F) -> Result<T, OciError>
where
    F: Fn() -> Result<T, domain::Error> + Send + Sync + 'static,
    T: Send + 'static,
{
    let f = std::sync::Arc::new(f);
    loop {
        let run = f.clone();
        match web::block(move || run())
            .await
            .map_err(|e| OciError::internal(&e))?
        {
            Err(domain::Error::InFlight(wait)) => wait.landed().await?,
            other => return other.map_err(OciError::from),
        }
    }
}

type Reg = web::Data<Registry>;
