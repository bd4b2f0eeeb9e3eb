//! Every redb table, with its key and value. A record value carries the version of its
//! encoding (`codec::Record`), so a change of encoding keeps the table's name; the names
//! keep the suffix they had before records carried versions.
//!
//! The list below is the one place a table is declared: its constant, its field in `Tables`
//! (the tables of one transaction, opened together), its opening in a read and in a write,
//! and its copy in a snapshot all follow from it.

use std::marker::PhantomData;

use redb::{
    Key, ReadOnlyTable, ReadTransaction, ReadableTable, Table, TableDefinition, Value,
    WriteTransaction,
};

use crate::store::meta::MetaError;

pub(super) type Str = &'static str;
pub(super) type Bytes = &'static [u8];
pub(super) type Pair = (&'static str, &'static str);
pub(super) type Triple = (&'static str, &'static str, &'static str);
pub(super) type Seq = (&'static str, &'static str, u64);
pub(super) type Ranked = (&'static str, &'static [u8]);
pub(super) type Numbered = (&'static str, u64);

/// How a transaction holds its tables: read-only (`Read`) or writable (`Write`).
pub trait Access {
    type Table<K: Key + 'static, V: Value + 'static>: ReadableTable<K, V>;
}

/// The tables of a read snapshot.
pub struct Read;

impl Access for Read {
    type Table<K: Key + 'static, V: Value + 'static> = ReadOnlyTable<K, V>;
}

/// The tables of a write transaction that lives for `'t`.
pub struct Write<'t>(PhantomData<&'t ()>);

impl<'t> Access for Write<'t> {
    type Table<K: Key + 'static, V: Value + 'static> = Table<'t, K, V>;
}

/// A read snapshot.
pub type Reader = Tables<Read>;

/// The tables of a write transaction.
pub type Writer<'t> = Tables<Write<'t>>;

/// Something done to every table in turn (what a snapshot does).
pub(super) trait EachTable {
    fn table<K: Key + 'static, V: Value + 'static>(
        &mut self,
        def: TableDefinition<'static, K, V>,
    ) -> Result<(), MetaError>;
}

macro_rules! tables {
    ($($(#[$doc:meta])* $field:ident: $name:ident<$k:ty, $v:ty> = $id:literal;)*) => {
        $(
            $(#[$doc])*
            pub const $name: TableDefinition<'static, $k, $v> = TableDefinition::new($id);
        )*

        /// The tables of one transaction, opened once. `Reader` and `Writer` are its two forms.
        pub struct Tables<A: Access> {
            $(pub(super) $field: A::Table<$k, $v>,)*
        }

        impl Reader {
            pub(super) fn open(txn: &ReadTransaction) -> Result<Self, MetaError> {
                Ok(Tables {
                    $($field: txn.open_table($name)?,)*
                })
            }
        }

        impl<'t> Writer<'t> {
            pub(super) fn open(txn: &'t WriteTransaction) -> Result<Self, MetaError> {
                Ok(Tables {
                    $($field: txn.open_table($name)?,)*
                })
            }
        }

        /// Calls `each` with every table, in the order of the list.
        pub(super) fn each_table(each: &mut impl EachTable) -> Result<(), MetaError> {
            $(each.table($name)?;)*
            Ok(())
        }
    };
}

tables! {
    /// feed name → `FeedRecord` (2: settings for access control and versioning)
    feeds: FEEDS<Str, Bytes> = "feeds-2";
    /// repository (`feed/image`) → `RepositoryRecord`
    repositories: REPOSITORIES<Str, Bytes> = "repositories-1";
    /// (repository, manifest digest) → `ManifestRecord`, body included
    manifests: MANIFESTS<Pair, Bytes> = "manifests-1";
    /// (repository, tag) → manifest digest
    tags: TAGS<Pair, Str> = "tags-1";
    /// blob digest → `BlobRecord`; a blob file is published before its record is committed
    blobs: BLOBS<Str, Bytes> = "blobs-1";
    /// (repository, blob digest) → time linked; a repository may read only blobs linked to it
    links: BLOB_LINKS<Pair, u64> = "blob-links-1";
    /// (repository, subject digest, referrer digest) → time linked
    referrers: REFERRERS<Triple, u64> = "referrers-1";
    /// upload id → `UploadRecord`
    uploads: UPLOADS<Str, Bytes> = "uploads-1";
    /// user name → `UserRecord`
    users: USERS<Str, Bytes> = "users-1";
    /// API key id → `ApiKeyRecord`
    api_keys: API_KEYS<Str, Bytes> = "api-keys-1";
    /// (principal — `user:NAME` or `key:ID` —, feed) → role name
    grants: GRANTS<Pair, Str> = "grants-1";
    /// setting name → bytes (the token signing key, the API key hashing key)
    settings: SETTINGS<Str, Bytes> = "settings-1";
    /// (repository, version tag) → digest it kept when deleted: the number stays taken
    tombstones: TOMBSTONES<Pair, Str> = "tombstones-1";
    /// (repository, tag, sequence) → `HistoryRecord`: every change of every tag
    history: TAG_HISTORY<Seq, Bytes> = "tag-history-1";
    /// sequence → `AuditRecord`: feed setting changes and other administrative acts
    audit: AUDIT<u64, Bytes> = "audit-1";
    /// feed name → `RetentionRecord`: the feed's retention rules
    retention: RETENTION<Str, Bytes> = "retention-1";
    /// (repository, manifest digest) → when it was last pulled (seconds); written in batches
    pulls: PULLS<Pair, u64> = "pulls-1";
    /// sequence → `PromotionRecord`: every promotion and retag, with its source (what ProGet's
    /// promotion list answers from)
    promotions: PROMOTIONS<u64, Bytes> = "promotions-1";
    /// (repository, rank — see `precedence` —) → (tag, digest): every tag of a repository, kept
    /// with the tag in the same transaction, version tags in SemVer precedence (pre-releases, then
    /// stable versions) and then every other tag by name. The virtual tags read the last key of a
    /// range instead of every tag; the tag lists page through it
    ranked: RANKED_TAGS<Ranked, Pair> = "ranked-tags-1";
    /// (repository, digest, tag): which tags point at a manifest, kept with the tag
    digest_tags: TAGS_BY_DIGEST<Triple, ()> = "tags-by-digest-1";
    /// (repository, history sequence) → tag: a repository's history in order, across its tags
    repo_history: REPO_HISTORY<Numbered, Str> = "repo-history-1";
    /// (audit kind, sequence) → (): the audit log by kind, kept with each entry
    audit_kinds: AUDIT_KINDS<Numbered, ()> = "audit-kinds-1";
}
