//! The domain's error: facts a user can act on, each message a whole sentence.

use std::io;

use crate::model::{DigestError, ManifestError, NameError};
use crate::store::blobs::BlobError;
use crate::store::meta::MetaError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "repository {repository:?} has no feed: the first path segment must be a feed, as in library/{repository}"
    )]
    NoFeed { repository: String },
    #[error(
        "feed {feed:?} does not exist: create it with `semdock feed create {feed}` or push to an existing feed"
    )]
    FeedUnknown { feed: String },
    #[error("feed {feed:?} already exists")]
    FeedExists { feed: String },
    #[error("repository {repository:?} is not known to this registry")]
    RepositoryUnknown { repository: String },
    #[error("{0}")]
    NameInvalid(String),
    #[error("{0}")]
    TagInvalid(String),
    #[error("{0}")]
    DigestInvalid(String),
    #[error("the content's digest is {computed}, not the {declared} the client declared")]
    DigestMismatch { declared: String, computed: String },
    #[error("blob {digest} is not known in this repository")]
    BlobUnknown { digest: String },
    #[error("upload {id:?} is not known: it finished, was cancelled, or never existed")]
    UploadUnknown { id: String },
    #[error(
        "chunk starts at byte {got}, but the upload has {expected} bytes: send the next chunk from {expected}"
    )]
    UploadOutOfOrder { expected: u64, got: u64 },
    #[error("another request is writing to upload {id:?}: send chunks one at a time")]
    UploadBusy { id: String, offset: u64 },
    #[error("the chunk's Content-Range says {declared} bytes but {received} arrived")]
    ChunkLength { declared: u64, received: u64 },
    #[error(
        "too many open uploads: this account has {limit} upload sessions open; finish or cancel some, or wait for idle ones to expire"
    )]
    TooManyUploads { limit: usize },
    #[error("the upload exceeds this registry's limit of {limit} bytes")]
    UploadTooLarge { limit: u64 },
    #[error("the manifest exceeds this registry's limit of {limit} bytes")]
    ManifestTooLarge { limit: u64 },
    #[error("manifest {reference:?} is not known in repository {repository:?}")]
    ManifestUnknown {
        repository: String,
        reference: String,
    },
    #[error("{0}")]
    ManifestInvalid(String),
    #[error("the manifest references {digest}, which is not in this repository: push it first")]
    ManifestBlobUnknown { digest: String },
    #[error("tag {tag:?} is not allowed in feed {feed:?}: {reason}")]
    TagNotAllowed {
        tag: String,
        feed: String,
        reason: String,
    },
    #[error("{}", immutable_message(tag, digest, *deleted))]
    VersionImmutable {
        tag: String,
        digest: String,
        deleted: bool,
    },
    /// Refused by a feed's rule other than its tag policy (promotion only, required
    /// referrers): the sentence says what to do instead.
    #[error("{0}")]
    PolicyRefused(String),
    /// Refused because no signature of the image verifies as the feed's signature policy
    /// requires: the sentence says what was missing or wrong.
    #[error("{0}")]
    SignatureRefused(String),
    #[error("authentication required: log in with a user name and password or API key")]
    Unauthenticated,
    #[error("invalid user name, password or API key")]
    InvalidCredentials,
    #[error("the token is not valid: {0}")]
    TokenInvalid(String),
    #[error("the token does not cover this request: ask for a token with its scope")]
    InsufficientScope,
    #[error("access denied: {0}")]
    Denied(String),
    #[error("too many failed logins: try again in {retry_after} seconds")]
    RateLimited { retry_after: u64 },
    /// A link would take a feed past its storage quota: the sentence says the quota, the
    /// usage and what the blob needs.
    #[error("{0}")]
    QuotaExceeded(String),
    /// The registry is in read-only mode: pulls work, writes wait until it is turned off.
    #[error(
        "the registry is read-only ({reason}): pulls work; try this again once an administrator turns read-only mode off"
    )]
    ReadOnly { reason: String },
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    NotFound(String),
    #[error("internal error: {0}")]
    Internal(String),
    #[error("the disk of the registry is full: ask its administrator to free space")]
    StorageFull,
    #[error("{0}")]
    Unavailable(String),
    /// Another request is fetching what this one needs from a connector's upstream: wait
    /// for it without holding a thread (`FlightWait::landed`), then ask again. Never an
    /// answer to a client; one that does reach a client is a 503.
    #[error("another request is fetching this from the connector's upstream: try again")]
    InFlight(super::registry::FlightWait),
    #[error("storage I/O failed")]
    Io(#[source] io::Error),
    #[error(transparent)]
    Meta(MetaError),
}

impl Error {
    /// An I/O failure of `op` on `path`, named once: a full disk stays `StorageFull`.
    #[must_use]
    pub fn io(op: &str, path: &std::path::Path, e: &io::Error) -> Self {
        if e.kind() == io::ErrorKind::StorageFull {
            Self::StorageFull
        } else {
            Self::Internal(format!("cannot {op} {}: {e}", path.display()))
        }
    }
}

impl crate::store::meta::Failure for Error {
    fn poisons_store(&self) -> bool {
        // Inside a metadata transaction a full disk can only be the database's.
        match self {
            Self::StorageFull => true,
            Self::Meta(m) => m.poisons_store(),
            _ => false,
        }
    }
}

impl From<MetaError> for Error {
    fn from(e: MetaError) -> Self {
        match e {
            MetaError::StorageFull => Self::StorageFull,
            e @ (MetaError::Reopening | MetaError::Unreachable(_)) => {
                Self::Unavailable(e.to_string())
            }
            other => Self::Meta(other),
        }
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        if e.kind() == io::ErrorKind::StorageFull {
            Self::StorageFull
        } else {
            Self::Io(e)
        }
    }
}

impl From<BlobError> for Error {
    fn from(e: BlobError) -> Self {
        match e {
            // A store behind the network (the object store) that did not answer or refused.
            e @ BlobError::Unavailable(_) => Self::Unavailable(e.to_string()),
            BlobError::Io(e) => e.into(),
        }
    }
}

impl From<NameError> for Error {
    fn from(e: NameError) -> Self {
        match e {
            NameError::NoFeed(repository) => Self::NoFeed { repository },
            NameError::Tag(_) => Self::TagInvalid(e.to_string()),
            NameError::Digest(d) => d.into(),
            NameError::Repository(_) | NameError::TooLong | NameError::Feed(_) => {
                Self::NameInvalid(e.to_string())
            }
        }
    }
}

impl From<DigestError> for Error {
    fn from(e: DigestError) -> Self {
        Self::DigestInvalid(e.to_string())
    }
}

impl From<ManifestError> for Error {
    fn from(e: ManifestError) -> Self {
        Self::ManifestInvalid(e.to_string())
    }
}

fn immutable_message(tag: &str, digest: &str, deleted: bool) -> String {
    if deleted {
        format!(
            "version {tag} was deleted and keeps {digest}: push a new version, or ask an administrator to purge {tag}"
        )
    } else {
        format!("version {tag} is released as {digest} and cannot change: push a new version")
    }
}
