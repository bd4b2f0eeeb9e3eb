//! The OCI error envelope: one exhaustive table of code → status → default message, and the
//! mapping of every domain error onto it.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde_json::json;

use crate::domain;

/// The distribution-spec error codes (plus `UNKNOWN` for the server's own failures).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    BlobUnknown,
    BlobUploadInvalid,
    BlobUploadUnknown,
    DigestInvalid,
    ManifestBlobUnknown,
    ManifestInvalid,
    ManifestUnknown,
    NameInvalid,
    NameUnknown,
    SizeInvalid,
    Unauthorized,
    Denied,
    Unsupported,
    TooManyRequests,
    /// Not in the spec's table; Distribution's code for a registry that cannot serve now.
    Unavailable,
    Unknown,
}

impl Code {
    /// The code's wire name, usual status and default message.
    #[must_use]
    pub fn spec(self) -> (&'static str, StatusCode, &'static str) {
        match self {
            Self::BlobUnknown => (
                "BLOB_UNKNOWN",
                StatusCode::NOT_FOUND,
                "blob unknown to registry",
            ),
            Self::BlobUploadInvalid => (
                "BLOB_UPLOAD_INVALID",
                StatusCode::BAD_REQUEST,
                "blob upload invalid",
            ),
            Self::BlobUploadUnknown => (
                "BLOB_UPLOAD_UNKNOWN",
                StatusCode::NOT_FOUND,
                "blob upload unknown to registry",
            ),
            Self::DigestInvalid => (
                "DIGEST_INVALID",
                StatusCode::BAD_REQUEST,
                "provided digest did not match uploaded content",
            ),
            Self::ManifestBlobUnknown => (
                "MANIFEST_BLOB_UNKNOWN",
                StatusCode::BAD_REQUEST,
                "manifest references a manifest or blob unknown to registry",
            ),
            Self::ManifestInvalid => (
                "MANIFEST_INVALID",
                StatusCode::BAD_REQUEST,
                "manifest invalid",
            ),
            Self::ManifestUnknown => (
                "MANIFEST_UNKNOWN",
                StatusCode::NOT_FOUND,
                "manifest unknown to registry",
            ),
            Self::NameInvalid => (
                "NAME_INVALID",
                StatusCode::BAD_REQUEST,
                "invalid repository name",
            ),
            Self::NameUnknown => (
                "NAME_UNKNOWN",
                StatusCode::NOT_FOUND,
                "repository name not known to registry",
            ),
            Self::SizeInvalid => (
                "SIZE_INVALID",
                StatusCode::BAD_REQUEST,
                "provided length did not match content length",
            ),
            Self::Unauthorized => (
                "UNAUTHORIZED",
                StatusCode::UNAUTHORIZED,
                "authentication required",
            ),
            Self::Denied => (
                "DENIED",
                StatusCode::FORBIDDEN,
                "requested access to the resource is denied",
            ),
            Self::Unsupported => (
                "UNSUPPORTED",
                StatusCode::METHOD_NOT_ALLOWED,
                "the operation is unsupported",
            ),
            Self::TooManyRequests => (
                "TOOMANYREQUESTS",
                StatusCode::TOO_MANY_REQUESTS,
                "too many requests",
            ),
            Self::Unavailable => (
                "UNAVAILABLE",
                StatusCode::SERVICE_UNAVAILABLE,
                "service unavailable",
            ),
            Self::Unknown => (
                "UNKNOWN",
                StatusCode::INTERNAL_SERVER_ERROR,
                "the registry failed to handle the request; its log says why",
            ),
        }
    }
}

/// An error response in the spec's envelope.
#[derive(Debug)]
pub struct OciError {
    code: Code,
    status: StatusCode,
    message: String,
    /// `Range` to send with a 416, telling the client where the upload stands.
    range: Option<String>,
    /// `Retry-After` seconds for a 429.
    retry_after: Option<u64>,
    /// `WWW-Authenticate` challenge for a 401.
    challenge: Option<String>,
}

impl OciError {
    /// An error with the code's usual status.
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Self {
            code,
            status: code.spec().1,
            message: message.into(),
            range: None,
            retry_after: None,
            challenge: None,
        }
    }

    /// Adds the `WWW-Authenticate` challenge a 401 must carry.
    #[must_use]
    pub fn with_challenge(mut self, challenge: String) -> Self {
        self.challenge = Some(challenge);
        self
    }

    /// The sentence the client reads.
    #[must_use]
    pub fn message(&self) -> &str {
        &self.message
    }

    #[must_use]
    pub fn status(&self) -> StatusCode {
        self.status
    }

    #[must_use]
    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    /// A failure of the server itself: logged here with its cause, shown generically.
    pub fn internal(cause: &dyn std::error::Error) -> Self {
        let mut chain = cause.to_string();
        let mut source = cause.source();
        while let Some(s) = source {
            chain.push_str(": ");
            chain.push_str(&s.to_string());
            source = s.source();
        }
        tracing::error!(error = chain, "internal error");
        Self::new(Code::Unknown, Code::Unknown.spec().2)
    }

    #[must_use]
    pub fn code(&self) -> Code {
        self.code
    }
}

impl std::fmt::Display for OciError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code.spec().0, self.message)
    }
}

impl ResponseError for OciError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut res = HttpResponse::build(self.status);
        if let Some(range) = &self.range {
            res.insert_header(("Range", range.as_str()));
        }
        if let Some(seconds) = self.retry_after {
            res.insert_header(("Retry-After", seconds.to_string()));
        }
        if let Some(challenge) = &self.challenge {
            res.insert_header(("WWW-Authenticate", challenge.as_str()));
        }
        res.json(json!({"errors": [{
            "code": self.code.spec().0,
            "message": self.message,
            "detail": null,
        }]}))
    }
}

/// `Range` header value for an upload holding `len` bytes (`0-0` when empty, as Distribution).
#[must_use]
pub fn upload_range(len: u64) -> String {
    format!("0-{}", len.saturating_sub(1))
}

impl From<domain::Error> for OciError {
    fn from(e: domain::Error) -> Self {
        use domain::Error as E;
        let message = e.to_string();
        match e {
            E::NoFeed { .. } | E::FeedUnknown { .. } | E::RepositoryUnknown { .. } => {
                Self::new(Code::NameUnknown, message)
            }
            E::FeedExists { .. } | E::Conflict(_) | E::VersionImmutable { .. } => {
                Self::new(Code::Denied, message).with_status(StatusCode::CONFLICT)
            }
            E::NameInvalid(_) => Self::new(Code::NameInvalid, message),
            E::TagInvalid(_) | E::ManifestInvalid(_) => Self::new(Code::ManifestInvalid, message),
            E::DigestInvalid(_) | E::DigestMismatch { .. } => {
                Self::new(Code::DigestInvalid, message)
            }
            E::BlobUnknown { .. } => Self::new(Code::BlobUnknown, message),
            E::UploadUnknown { .. } => Self::new(Code::BlobUploadUnknown, message),
            E::UploadOutOfOrder { expected, .. }
            | E::UploadBusy {
                offset: expected, ..
            } => Self {
                range: Some(upload_range(expected)),
                ..Self::new(Code::BlobUploadInvalid, message)
                    .with_status(StatusCode::RANGE_NOT_SATISFIABLE)
            },
            E::ChunkLength { .. } => Self::new(Code::SizeInvalid, message),
            E::UploadTooLarge { .. } | E::ManifestTooLarge { .. } => {
                Self::new(Code::SizeInvalid, message).with_status(StatusCode::PAYLOAD_TOO_LARGE)
            }
            E::ManifestUnknown { .. } => Self::new(Code::ManifestUnknown, message),
            E::ManifestBlobUnknown { .. } => Self::new(Code::ManifestBlobUnknown, message),
            E::Unauthenticated
            | E::InvalidCredentials
            | E::TokenInvalid(_)
            | E::InsufficientScope => Self::new(Code::Unauthorized, message),
            E::Denied(_) | E::QuotaExceeded(_) => Self::new(Code::Denied, message),
            E::TagNotAllowed { .. } => {
                Self::new(Code::Denied, message).with_status(StatusCode::BAD_REQUEST)
            }
            E::PolicyRefused(_) | E::SignatureRefused(_) => {
                Self::new(Code::Denied, message).with_status(StatusCode::FORBIDDEN)
            }
            E::RateLimited { retry_after } => Self {
                retry_after: Some(retry_after),
                ..Self::new(Code::TooManyRequests, message)
            },
            E::TooManyUploads { .. } => Self {
                retry_after: Some(60),
                ..Self::new(Code::TooManyRequests, message)
            },
            E::Invalid(_) => {
                Self::new(Code::Unsupported, message).with_status(StatusCode::BAD_REQUEST)
            }
            E::NotFound(_) => Self::new(Code::NameUnknown, message),
            E::Internal(ref cause) => {
                tracing::error!(error = cause, "internal error");
                Self::new(Code::Unknown, Code::Unknown.spec().2)
            }
            E::StorageFull => {
                tracing::error!("disk full");
                Self::new(Code::Unknown, message).with_status(StatusCode::INSUFFICIENT_STORAGE)
            }
            E::Unavailable(_) | E::InFlight(_) => {
                Self::new(Code::Unavailable, message).with_status(StatusCode::SERVICE_UNAVAILABLE)
            }
            E::ReadOnly { .. } => Self {
                retry_after: Some(crate::domain::maintenance::mode::RETRY_AFTER_SECONDS),
                ..Self::new(Code::Unavailable, message).with_status(StatusCode::SERVICE_UNAVAILABLE)
            },
            E::Io(ref cause) => Self::internal(cause),
            E::Meta(ref cause) => Self::internal(cause),
        }
    }
}
