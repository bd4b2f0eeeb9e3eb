//! The records stored as table values: one version byte, then the record encoded with
//! postcard. A change of a record's encoding raises its `Record::VERSION` and teaches its
//! `upgrade` to read the versions before, so a database written by any earlier release
//! is read without a migration of its tables; a record from a newer release is refused
//! with a sentence rather than misread.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize, de::DeserializeOwned};

use super::MetaError;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedRecord {
    pub created: u64,
    pub description: String,
    /// Whether anyone, without credentials, may pull from the feed.
    pub anonymous_pull: bool,
    /// Container versioning: only version and permitted tags, immutable versions, virtual tags.
    pub versioning: bool,
    /// Tags (exact or `*` globs) a versioned feed accepts besides versions; mutable.
    pub permitted: Vec<String>,
    /// When not empty, tags enter this feed only by promotion from these feeds (version 2).
    pub promotion_sources: Vec<String>,
    /// When set, a promotion into this feed needs a referrer of this artifact type on the
    /// image (a signature, an attestation) (version 2).
    pub required_referrer: Option<String>,
    /// When set, the feed is a connector: a pull-through cache of this upstream registry
    /// (version 2).
    pub upstream: Option<UpstreamRecord>,
}

/// The upstream registry of a connector feed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpstreamRecord {
    /// `https://registry-1.docker.io`, `http://127.0.0.1:5001`.
    pub url: String,
    pub username: Option<String>,
    /// Never shown back, never logged.
    pub password: Option<crate::model::Secret>,
    /// Prefixed to every repository name upstream (`library/` for Docker Hub's officials).
    pub prefix: String,
    /// Mutable tags are checked upstream again after this many seconds.
    pub ttl_seconds: u64,
    /// Serve only what is cached; never ask the upstream.
    pub offline: bool,
    /// Repository names (as the upstream names them, `*` globs) the connector fetches;
    /// empty: all.
    pub allow: Vec<String>,
    /// Repository names it never fetches, even when allowed.
    pub deny: Vec<String>,
    /// In a versioned feed, `latest` follows the upstream's own rather than the highest
    /// version seen.
    pub upstream_latest: bool,
    /// What is fetched ahead of pulls, every `sync_interval_seconds` (0: on demand only).
    pub sync: Vec<SyncRule>,
    pub sync_interval_seconds: u64,
}

/// Tags of one upstream repository a connector fetches ahead of pulls.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncRule {
    /// The repository as the upstream names it (`library/postgres`).
    pub repository: String,
    /// Tags matching this glob (`*`: all).
    pub tags: String,
    /// When set, only versions meeting this SemVer requirement (`^1`: every stable 1.x).
    pub versions: Option<String>,
}

/// One change of one tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryRecord {
    /// Unix milliseconds.
    pub time_ms: u64,
    pub old: Option<String>,
    pub new: Option<String>,
    pub actor: String,
    /// `push`, `delete`, `virtual`, `promote`, `retag`, `purge`, `settings`.
    pub method: String,
    pub comment: Option<String>,
}

/// A promotion or retag, source included.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PromotionRecord {
    /// Unix milliseconds.
    pub time_ms: u64,
    pub actor: String,
    /// `FEED/NAME` and the tag or digest promoted from.
    pub from_repository: String,
    pub from_reference: String,
    pub to_repository: String,
    pub to_tag: String,
    pub digest: String,
    pub comment: Option<String>,
}

/// One entry of the audit log: a security-relevant or content change (version 2; the first
/// version held only `time_ms`, `actor`, `feed` and `change`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub time_ms: u64,
    pub actor: String,
    /// The feed it concerns, or empty for the whole registry.
    pub feed: String,
    /// What happened, in a sentence.
    pub change: String,
    /// What kind of change (`domain::audit::Kind`, kebab-case).
    pub kind: String,
    pub repository: Option<String>,
    pub tag: Option<String>,
    pub digest: Option<String>,
    /// The digest the tag pointed at before.
    pub previous: Option<String>,
    /// Where it came from: a promotion's source reference, a login's client address.
    pub source: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRecord {
    /// PHC string of an argon2id hash.
    pub password_hash: String,
    pub admin: bool,
    pub disabled: bool,
    pub created: u64,
    /// When the user last logged in, if ever.
    pub last_login: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKeyRecord {
    pub name: String,
    pub owner: String,
    /// blake3 keyed hash of the secret part; the secret itself is never stored.
    pub hash: [u8; 32],
    pub admin: bool,
    pub created: u64,
    pub expires: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepositoryRecord {
    pub created: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestRecord {
    pub media_type: String,
    pub artifact_type: Option<String>,
    pub subject: Option<String>,
    /// Config and layer digests.
    pub blobs: Vec<String>,
    /// Child manifest digests of an index.
    pub children: Vec<String>,
    pub annotations: BTreeMap<String, String>,
    pub created: u64,
    pub body: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobRecord {
    pub size: u64,
    pub created: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadRecord {
    pub repository: String,
    pub started: u64,
}

/// A feed's retention rules; `None` switches a rule off.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetentionRecord {
    /// Delete manifests no tag points at (directly or through an index) after this many days.
    pub untagged_days: Option<u32>,
    /// Keep only this many newest pre-release versions per repository.
    pub keep_prereleases: Option<u32>,
    /// Delete images not pulled (nor pushed) for this many days.
    pub unpulled_days: Option<u32>,
    /// Whether the unpulled rule may delete released versions of a versioned feed.
    pub include_releases: bool,
}

/// A record kept as a table value, with the version of its encoding.
pub trait Record: Serialize + DeserializeOwned {
    /// The version `encode` writes.
    const VERSION: u8;

    /// Reads `bytes`, written at an earlier `version` of this record. No record has changed
    /// its encoding since versions were introduced, so each knows only its first.
    fn upgrade(version: u8, bytes: &[u8]) -> Result<Self, MetaError> {
        let _ = bytes;
        Err(MetaError::RecordVersion {
            record: name::<Self>(),
            found: version,
            known: Self::VERSION,
        })
    }
}

macro_rules! first_version {
    ($($t:ty),*) => {$(
        impl Record for $t {
            const VERSION: u8 = 1;
        }
    )*};
}

first_version!(
    HistoryRecord,
    PromotionRecord,
    UserRecord,
    ApiKeyRecord,
    RepositoryRecord,
    ManifestRecord,
    BlobRecord,
    UploadRecord,
    RetentionRecord
);

fn unknown_version<T: Record>(record: &'static str, found: u8) -> MetaError {
    MetaError::RecordVersion {
        record,
        found,
        known: T::VERSION,
    }
}

impl Record for FeedRecord {
    const VERSION: u8 = 2;

    fn upgrade(version: u8, bytes: &[u8]) -> Result<Self, MetaError> {
        #[derive(Deserialize)]
        struct First {
            created: u64,
            description: String,
            anonymous_pull: bool,
            versioning: bool,
            permitted: Vec<String>,
        }
        if version != 1 {
            return Err(unknown_version::<Self>("FeedRecord", version));
        }
        let f: First = postcard::from_bytes(bytes).map_err(failed::<Self>)?;
        Ok(Self {
            created: f.created,
            description: f.description,
            anonymous_pull: f.anonymous_pull,
            versioning: f.versioning,
            permitted: f.permitted,
            promotion_sources: Vec::new(),
            required_referrer: None,
            upstream: None,
        })
    }
}

impl Record for AuditRecord {
    const VERSION: u8 = 2;

    fn upgrade(version: u8, bytes: &[u8]) -> Result<Self, MetaError> {
        #[derive(Deserialize)]
        struct First {
            time_ms: u64,
            actor: String,
            feed: String,
            change: String,
        }
        if version != 1 {
            return Err(unknown_version::<Self>("AuditRecord", version));
        }
        let f: First = postcard::from_bytes(bytes).map_err(failed::<Self>)?;
        // The first version recorded feed settings and retention rules only.
        let kind = if f.change.starts_with("retention rules") {
            "retention-rules"
        } else {
            "feed-settings-changed"
        };
        Ok(Self {
            time_ms: f.time_ms,
            actor: f.actor,
            feed: f.feed,
            change: f.change,
            kind: kind.to_owned(),
            ..Self::default()
        })
    }
}

/// The name of record type `T`, as errors say it (`ManifestRecord`).
fn name<T>() -> &'static str {
    std::any::type_name::<T>()
        .rsplit("::")
        .next()
        .unwrap_or("record")
}

/// The error of a record of type `T` that postcard could not read or write.
#[must_use]
pub fn failed<T>(cause: postcard::Error) -> MetaError {
    MetaError::Codec {
        record: name::<T>(),
        cause,
    }
}

pub fn encode<T: Record>(value: &T) -> Result<Vec<u8>, MetaError> {
    let mut out = vec![T::VERSION];
    postcard::to_io(value, &mut out).map_err(failed::<T>)?;
    Ok(out)
}

pub fn decode<T: Record>(bytes: &[u8]) -> Result<T, MetaError> {
    match bytes.split_first() {
        Some((&version, rest)) if version == T::VERSION => {
            postcard::from_bytes(rest).map_err(failed::<T>)
        }
        Some((&version, rest)) => T::upgrade(version, rest),
        None => Err(failed::<T>(postcard::Error::DeserializeUnexpectedEnd)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record whose second version added a field: the first still reads, as what it was
    /// plus the new field's default.
    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Grown {
        name: String,
        added: u32,
    }

    impl Record for Grown {
        const VERSION: u8 = 2;

        fn upgrade(version: u8, bytes: &[u8]) -> Result<Self, MetaError> {
            #[derive(Deserialize)]
            struct First {
                name: String,
            }
            match version {
                1 => {
                    let first: First = postcard::from_bytes(bytes).map_err(failed::<Self>)?;
                    Ok(Self {
                        name: first.name,
                        added: 0,
                    })
                }
                _ => Err(MetaError::RecordVersion {
                    record: "Grown",
                    found: version,
                    known: Self::VERSION,
                }),
            }
        }
    }

    #[test]
    fn first_audit_records_read_as_feed_changes_and_retention_rules() {
        #[derive(Serialize)]
        struct First<'a> {
            time_ms: u64,
            actor: &'a str,
            feed: &'a str,
            change: &'a str,
        }
        let first = |change| {
            let mut bytes = vec![1];
            postcard::to_io(
                &First {
                    time_ms: 9,
                    actor: "admin",
                    feed: "prod",
                    change,
                },
                &mut bytes,
            )
            .unwrap();
            decode::<AuditRecord>(&bytes).unwrap()
        };
        let settings = first("versioning on");
        assert_eq!(settings.kind, "feed-settings-changed");
        assert_eq!((settings.time_ms, settings.feed.as_str()), (9, "prod"));
        assert_eq!(first("retention rules: {}").kind, "retention-rules");
        assert!(decode::<AuditRecord>(&[3, 0]).is_err());
    }

    #[test]
    fn records_carry_their_version_and_older_versions_upgrade() {
        let now = Grown {
            name: "a".into(),
            added: 7,
        };
        let bytes = encode(&now).unwrap();
        assert_eq!(bytes[0], 2);
        assert_eq!(decode::<Grown>(&bytes).unwrap(), now);

        let mut first = vec![1];
        postcard::to_io(&"old".to_owned(), &mut first).unwrap();
        assert_eq!(
            decode::<Grown>(&first).unwrap(),
            Grown {
                name: "old".into(),
                added: 0
            }
        );

        let mut newer = bytes.clone();
        newer[0] = 3;
        let refused = decode::<Grown>(&newer).unwrap_err().to_string();
        assert!(
            refused.contains("version 3") && refused.contains("newer"),
            "{refused}"
        );
        // A record that cannot be read is an error naming its type, never a default.
        for broken in [&[][..], &[1, 0xff, 0xff, 0xff, 0xff, 0xff][..]] {
            let refused = decode::<FeedRecord>(broken).unwrap_err().to_string();
            assert!(
                refused.contains("stored FeedRecord cannot be decoded"),
                "{refused}"
            );
        }
    }
}
