//! The metadata seam: the traits the domain uses (`api`), the versioned records (`codec`),
//! the error both engines answer with, and the engines side by side — `redb` (embedded, one
//! file) and `postgres` (a cluster's shared database). Policy lives in the domain layer.

pub mod api;
pub mod codec;
pub mod copy;
pub mod migrations;
pub mod postgres;
pub mod precedence;
pub mod redb;
pub mod settings;

use std::path::PathBuf;

pub use self::redb::{HistoryRow, MetaStore, Reader, Tables, Writer, tables};
pub use api::{Aborted, MetaRead, MetaWrite, Metadata, Scan};
pub use codec::{
    ApiKeyRecord, AuditRecord, BlobRecord, FeedRecord, HistoryRecord, ManifestRecord,
    PromotionRecord, RepositoryRecord, RetentionRecord, SyncRule, UploadRecord, UpstreamRecord,
    UserRecord,
};

/// A failure of the metadata store.
#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    #[error(
        "the database {0} is in use by another semdock process (a running server?): stop it, or use the server's API"
    )]
    InUse(PathBuf),
    #[error("the disk holding the database is full")]
    StorageFull,
    #[error("the database is being reopened after an I/O error: try again in a moment")]
    Reopening,
    #[error("database error: {0}")]
    Database(::redb::Error),
    #[error("a stored record could not be decoded: {0}")]
    Codec(postcard::Error),
    /// A record of an encoding this release does not know.
    #[error(
        "a stored {record} has encoding version {found}, which this semdock (versions 1 to {known}) cannot read: a newer semdock wrote it; upgrade this one"
    )]
    RecordVersion {
        record: &'static str,
        found: u8,
        known: u8,
    },
    /// The database server cannot be reached (down, restarting, refusing connections).
    #[error("the metadata database cannot be reached: {0}")]
    Unreachable(String),
    #[error("metadata database error: {0}")]
    Server(String),
    /// A setting whose value cannot be read as its family's record.
    #[error("the stored setting {name:?} (a {what}) cannot be decoded: {cause}")]
    Setting {
        name: String,
        what: &'static str,
        cause: String,
    },
}

impl From<::redb::Error> for MetaError {
    fn from(e: ::redb::Error) -> Self {
        match e {
            ::redb::Error::Io(io) if io.kind() == std::io::ErrorKind::StorageFull => {
                Self::StorageFull
            }
            other => Self::Database(other),
        }
    }
}

/// An error a write transaction's closure may return: whether it says the database handle
/// met an I/O failure, after which redb refuses every write until the file is reopened.
pub trait Failure {
    fn poisons_store(&self) -> bool;
}

impl Failure for MetaError {
    fn poisons_store(&self) -> bool {
        matches!(
            self,
            Self::StorageFull | Self::Database(::redb::Error::Io(_) | ::redb::Error::PreviousIo)
        )
    }
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for MetaError {
            fn from(e: $t) -> Self {
                ::redb::Error::from(e).into()
            }
        }
    )*};
}
from_redb!(
    ::redb::TransactionError,
    ::redb::TableError,
    ::redb::StorageError,
    ::redb::CommitError
);
