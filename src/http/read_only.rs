//! Read-only mode at the door: while an administrator has it on, every request that could
//! change something (any method but GET, HEAD and OPTIONS) is refused here, on every node,
//! before a handler runs — with 503 and `Retry-After`, as OCI error JSON under `/v2`, the
//! API's error body under `/api`, and a page under `/ui`. Deny by default: only the few
//! requests that must work during maintenance pass (logging in and out, the token endpoint,
//! turning the mode off, a backup).

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::{ResponseError, web};

use crate::domain::Registry;

/// Paths that still take writes while the registry is read-only.
const PASS: [&str; 6] = [
    "/api/v1/maintenance",
    "/api/v1/backup",
    "/ui/login",
    "/ui/logout",
    "/ui/maintenance",
    "/v2/_auth",
];

/// Whether read-only mode refuses `method` on `path` (before asking whether it is on).
#[must_use]
pub fn is_write(method: &Method, path: &str) -> bool {
    !(matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
        || PASS
            .iter()
            .any(|p| path == *p || path.starts_with(&format!("{p}/"))))
}

/// The middleware: refuses writes while read-only mode is on.
pub async fn refuse_writes(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    if is_write(req.method(), req.path())
        && let Some(registry) = req.app_data::<web::Data<Registry>>().cloned()
    {
        let refusal = match web::block(move || registry.maintenance().writable()).await {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e),
            Err(_) => Some(crate::domain::Error::Internal(
                "the read-only check did not run".into(),
            )),
        };
        if let Some(e) = refusal {
            let path = req.path();
            let response = if path.starts_with("/v2") {
                crate::http::oci::error::OciError::from(e).error_response()
            } else if path.starts_with("/ui") {
                crate::http::ui::UiError::from(e).error_response()
            } else {
                crate::http::api::ApiError::from(e).error_response()
            };
            return Ok(req.into_response(response).map_into_right_body());
        }
    }
    next.call(req)
        .await
        .map(ServiceResponse::map_into_left_body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_the_maintenance_paths_pass_and_every_other_write_is_refused() {
        assert!(!is_write(&Method::GET, "/v2/prod/web/manifests/1.0.0"));
        assert!(!is_write(&Method::HEAD, "/v2/prod/web/blobs/sha256:00"));
        assert!(is_write(&Method::PUT, "/v2/prod/web/manifests/1.0.0"));
        assert!(is_write(&Method::PATCH, "/v2/prod/web/blobs/uploads/x"));
        assert!(is_write(&Method::DELETE, "/api/v1/feeds/prod"));
        assert!(is_write(&Method::POST, "/ui/promote"));
        assert!(!is_write(&Method::PUT, "/api/v1/maintenance"));
        assert!(!is_write(&Method::POST, "/ui/login"));
        assert!(!is_write(&Method::POST, "/api/v1/backup"));
        assert!(is_write(&Method::POST, "/api/v1/backups-elsewhere"));
        assert!(is_write(&Method::POST, "/ui/loginx"));
    }
}
