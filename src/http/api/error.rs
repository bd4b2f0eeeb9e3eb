//! Management API errors: `{"error": {"code": "...", "message": "..."}}` with a status that
//! says who must act. Every domain variant is mapped, with no catch-all arm.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain;

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// A stable, machine-readable code, e.g. `not_found`.
    pub code: String,
    /// A sentence a person can act on.
    pub message: String,
}

#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    retry_after: Option<u64>,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut res = HttpResponse::build(self.status);
        if let Some(s) = self.retry_after {
            res.insert_header(("Retry-After", s.to_string()));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            res.insert_header(("WWW-Authenticate", "Basic realm=\"semdock\""));
        }
        res.json(ErrorBody {
            error: ErrorDetail {
                code: self.code.to_owned(),
                message: self.message.clone(),
            },
        })
    }
}

impl From<domain::Error> for ApiError {
    fn from(e: domain::Error) -> Self {
        use domain::Error as E;
        let message = e.to_string();
        let (status, code) = match e {
            E::NoFeed { .. }
            | E::NameInvalid(_)
            | E::TagInvalid(_)
            | E::DigestInvalid(_)
            | E::DigestMismatch { .. }
            | E::ManifestInvalid(_)
            | E::ChunkLength { .. }
            | E::Invalid(_) => (StatusCode::BAD_REQUEST, "invalid"),
            E::FeedUnknown { .. }
            | E::RepositoryUnknown { .. }
            | E::BlobUnknown { .. }
            | E::UploadUnknown { .. }
            | E::ManifestUnknown { .. }
            | E::ManifestBlobUnknown { .. }
            | E::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            E::TagNotAllowed { .. } => (StatusCode::BAD_REQUEST, "tag_not_allowed"),
            E::PolicyRefused(_) => (StatusCode::FORBIDDEN, "policy_refused"),
            E::SignatureRefused(_) => (StatusCode::FORBIDDEN, "signature_required"),
            E::VersionImmutable { .. } => (StatusCode::CONFLICT, "version_immutable"),
            E::FeedExists { .. } | E::Conflict(_) | E::UploadBusy { .. } => {
                (StatusCode::CONFLICT, "conflict")
            }
            E::UploadOutOfOrder { .. } => (StatusCode::RANGE_NOT_SATISFIABLE, "range"),
            E::UploadTooLarge { .. } | E::ManifestTooLarge { .. } => {
                (StatusCode::PAYLOAD_TOO_LARGE, "too_large")
            }
            E::Unauthenticated
            | E::InvalidCredentials
            | E::TokenInvalid(_)
            | E::InsufficientScope => (StatusCode::UNAUTHORIZED, "unauthorized"),
            E::Denied(_) => (StatusCode::FORBIDDEN, "denied"),
            E::QuotaExceeded(_) => (StatusCode::FORBIDDEN, "quota_exceeded"),
            E::RateLimited { retry_after } => {
                return Self {
                    status: StatusCode::TOO_MANY_REQUESTS,
                    code: "rate_limited",
                    message,
                    retry_after: Some(retry_after),
                };
            }
            E::TooManyUploads { .. } => (StatusCode::TOO_MANY_REQUESTS, "too_many_uploads"),
            E::ReadOnly { .. } => {
                return Self {
                    status: StatusCode::SERVICE_UNAVAILABLE,
                    code: "read_only",
                    message,
                    retry_after: Some(crate::domain::maintenance::mode::RETRY_AFTER_SECONDS),
                };
            }
            E::StorageFull => (StatusCode::INSUFFICIENT_STORAGE, "storage_full"),
            E::Unavailable(_) | E::InFlight(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            E::Internal(_) | E::Io(_) | E::Meta(_) => {
                tracing::error!(error = %message, "internal error");
                return Self {
                    status: StatusCode::INTERNAL_SERVER_ERROR,
                    code: "internal",
                    message: "the registry failed to handle the request; its log says why".into(),
                    retry_after: None,
                };
            }
        };
        Self {
            status,
            code,
            message,
            retry_after: None,
        }
    }
}
