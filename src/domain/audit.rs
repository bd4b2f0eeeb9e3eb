//! The audit log: one append-only record of every security-relevant and content change —
//! logins, keys, roles, users, feed settings, pushes, deletes, promotions, purges, GC and
//! retention runs, refusals by policy — written in the transaction of the change it
//! describes, so that it holds exactly what was committed. Tag history stays the per-tag
//! index (written in the same commit as the audit record of each tag change); a feed's
//! change list is the log read for that feed; webhooks deliver from it.

use serde::{Deserialize, Serialize};

use super::Error;
use super::clock::Clock;
use crate::store::meta::{AuditRecord, MetaWrite, Metadata, Scan};

/// What kind of change an audit record is. The first nine are also webhook events (named as
/// ProGet names its own where it has one: Added, Promoted, Deleted, Purged).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// A tag that did not exist was pushed (a new version).
    Added,
    /// A mutable (permitted) tag moved by a push.
    TagMoved,
    /// The server moved a virtual tag (`latest`, `3`, `3.4`).
    VirtualTagMoved,
    /// A tag was set by promotion or retag.
    Promoted,
    Deleted,
    Purged,
    /// Retention deleted a tag or an image.
    RetentionDeleted,
    /// A push or promotion refused by the feed's policy.
    PushRefused,
    FeedSettingsChanged,
    /// A connector's upstream moved a pinned version to another digest.
    UpstreamDrift,
    FeedCreated,
    FeedDeleted,
    RetentionRules,
    RetentionRun,
    GcRun,
    Login,
    LoginFailed,
    KeyCreated,
    KeyRevoked,
    RoleGranted,
    RoleRemoved,
    UserCreated,
    UserChanged,
    PasswordChanged,
    WebhookChanged,
    /// A push or promotion refused because no signature verifies as the feed requires.
    PolicyRefused,
    /// A trusted key was added or removed.
    TrustChanged,
    /// OSV records were imported into the vulnerability database.
    VulnDbImported,
    /// A feed's vulnerability policy or its exceptions changed.
    VulnPolicyChanged,
    /// An import made a released version of a watched feed vulnerable.
    VulnerabilityFound,
    /// An administrator turned read-only mode on.
    ReadOnlyOn,
    /// An administrator turned read-only mode off.
    ReadOnlyOff,
    /// A robot account was created, changed, rotated or deleted.
    RobotChanged,
    /// A workload identity rule was added or removed.
    FederationChanged,
    /// A replication rule was created, changed or deleted.
    ReplicationChanged,
}

const KINDS: [(Kind, &str, &str); 35] = [
    (Kind::Added, "added", "Added"),
    (Kind::TagMoved, "tag-moved", "TagMoved"),
    (
        Kind::VirtualTagMoved,
        "virtual-tag-moved",
        "VirtualTagMoved",
    ),
    (Kind::Promoted, "promoted", "Promoted"),
    (Kind::Deleted, "deleted", "Deleted"),
    (Kind::Purged, "purged", "Purged"),
    (
        Kind::RetentionDeleted,
        "retention-deleted",
        "RetentionDeleted",
    ),
    (Kind::PushRefused, "push-refused", "PushRefused"),
    (
        Kind::FeedSettingsChanged,
        "feed-settings-changed",
        "FeedSettingsChanged",
    ),
    (Kind::UpstreamDrift, "upstream-drift", "UpstreamDrift"),
    (Kind::FeedCreated, "feed-created", "FeedCreated"),
    (Kind::FeedDeleted, "feed-deleted", "FeedDeleted"),
    (Kind::RetentionRules, "retention-rules", "RetentionRules"),
    (Kind::RetentionRun, "retention-run", "RetentionRun"),
    (Kind::GcRun, "gc-run", "GcRun"),
    (Kind::Login, "login", "Login"),
    (Kind::LoginFailed, "login-failed", "LoginFailed"),
    (Kind::KeyCreated, "key-created", "KeyCreated"),
    (Kind::KeyRevoked, "key-revoked", "KeyRevoked"),
    (Kind::RoleGranted, "role-granted", "RoleGranted"),
    (Kind::RoleRemoved, "role-removed", "RoleRemoved"),
    (Kind::UserCreated, "user-created", "UserCreated"),
    (Kind::UserChanged, "user-changed", "UserChanged"),
    (Kind::PasswordChanged, "password-changed", "PasswordChanged"),
    (Kind::WebhookChanged, "webhook-changed", "WebhookChanged"),
    (Kind::PolicyRefused, "policy-refused", "PolicyRefused"),
    (Kind::TrustChanged, "trust-changed", "TrustChanged"),
    (Kind::VulnDbImported, "vulndb-imported", "VulnDbImported"),
    (
        Kind::VulnPolicyChanged,
        "vuln-policy-changed",
        "VulnPolicyChanged",
    ),
    (
        Kind::VulnerabilityFound,
        "vulnerability-found",
        "VulnerabilityFound",
    ),
    (Kind::ReadOnlyOn, "read-only-on", "ReadOnlyOn"),
    (Kind::ReadOnlyOff, "read-only-off", "ReadOnlyOff"),
    (Kind::RobotChanged, "robot-changed", "RobotChanged"),
    (
        Kind::FederationChanged,
        "federation-changed",
        "FederationChanged",
    ),
    (
        Kind::ReplicationChanged,
        "replication-changed",
        "ReplicationChanged",
    ),
];

/// Every kind's stored name, in the order the UI offers them.
#[must_use]
pub fn kind_names() -> Vec<&'static str> {
    KINDS.iter().map(|(_, name, _)| *name).collect()
}

/// The kinds a webhook can subscribe to.
pub const EVENTS: [Kind; 12] = [
    Kind::Added,
    Kind::TagMoved,
    Kind::VirtualTagMoved,
    Kind::Promoted,
    Kind::Deleted,
    Kind::Purged,
    Kind::RetentionDeleted,
    Kind::PushRefused,
    Kind::FeedSettingsChanged,
    Kind::UpstreamDrift,
    Kind::PolicyRefused,
    Kind::VulnerabilityFound,
];

impl Kind {
    fn row(self) -> (Kind, &'static str, &'static str) {
        KINDS
            .into_iter()
            .find(|(k, _, _)| *k == self)
            .unwrap_or((self, "unknown", "Unknown"))
    }

    /// As stored and filtered on: kebab-case (`tag-moved`).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        self.row().1
    }

    /// As a webhook names it: `TagMoved`.
    #[must_use]
    pub fn event_name(self) -> &'static str {
        self.row().2
    }

    #[must_use]
    pub fn is_event(self) -> bool {
        EVENTS.contains(&self)
    }

    /// A kind by either of its names, case-insensitively.
    pub fn parse(s: &str) -> Result<Self, Error> {
        KINDS
            .into_iter()
            .find(|(_, a, b)| a.eq_ignore_ascii_case(s) || b.eq_ignore_ascii_case(s))
            .map(|(k, _, _)| k)
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "{s:?} is not a kind of change: use one of {}",
                    KINDS.map(|(_, a, _)| a).join(", ")
                ))
            })
    }
}

/// A new audit record of `kind`, by `actor`, on `feed` (empty: the registry).
#[must_use]
pub fn entry(kind: Kind, actor: &str, feed: &str, change: impl Into<String>) -> AuditRecord {
    AuditRecord {
        time_ms: 0,
        actor: actor.to_owned(),
        feed: feed.to_owned(),
        change: change.into(),
        kind: kind.as_str().to_owned(),
        ..AuditRecord::default()
    }
}

/// Appends `record` in the caller's transaction, timed now; returns its sequence number.
pub fn append(w: &mut dyn MetaWrite, clock: &Clock, mut record: AuditRecord) -> Result<u64, Error> {
    record.time_ms = clock.now_ms();
    Ok(w.append_audit(&record)?)
}

/// Appends `record` in a transaction of its own: for what commits nothing else (a refusal, a
/// failed login).
pub fn append_alone(meta: &dyn Metadata, clock: &Clock, record: AuditRecord) -> Result<u64, Error> {
    meta.write(|w| append(w, clock, record))
}

/// One entry of the audit log, as the API and the UI show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// The entry's sequence number: its id, and what `last` continues after.
    pub id: u64,
    /// RFC 3339.
    pub time: String,
    pub kind: String,
    pub actor: String,
    /// The feed it concerns; empty for the registry as a whole.
    pub feed: String,
    pub change: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

#[must_use]
pub fn rfc3339(time_ms: u64) -> String {
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_millis(time_ms);
    humantime::format_rfc3339_millis(time).to_string()
}

impl AuditEntry {
    #[must_use]
    pub fn of(id: u64, r: AuditRecord) -> Self {
        Self {
            id,
            time: rfc3339(r.time_ms),
            kind: r.kind,
            actor: r.actor,
            feed: r.feed,
            change: r.change,
            repository: r.repository,
            tag: r.tag,
            digest: r.digest,
            previous: r.previous,
            source: r.source,
        }
    }
}

/// Which entries of the log to read: filters, and a page.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    /// Unix milliseconds, inclusive.
    pub since_ms: Option<u64>,
    /// Unix milliseconds, exclusive.
    pub until_ms: Option<u64>,
    pub actor: Option<String>,
    pub feed: Option<String>,
    pub kinds: Vec<Kind>,
    /// Continue after this id.
    pub last: Option<u64>,
    /// Oldest first (an export); newest first otherwise.
    pub oldest_first: bool,
    pub n: Option<usize>,
}

/// Entries per page unless asked otherwise, and at most.
pub const DEFAULT_PAGE: usize = 100;
pub const MAX_PAGE: usize = 1000;

impl AuditQuery {
    /// Whether `r` matches; a time bound that is passed ends the walk.
    fn scan(&self, r: &AuditRecord) -> Scan {
        let before_window = self.since_ms.is_some_and(|s| r.time_ms < s);
        let after_window = self.until_ms.is_some_and(|u| r.time_ms >= u);
        if (before_window && !self.oldest_first) || (after_window && self.oldest_first) {
            return Scan::Stop;
        }
        let matches = !before_window
            && !after_window
            && self.actor.as_ref().is_none_or(|a| *a == r.actor)
            && self.feed.as_ref().is_none_or(|f| *f == r.feed)
            && (self.kinds.is_empty() || self.kinds.iter().any(|k| k.as_str() == r.kind));
        if matches { Scan::Keep } else { Scan::Skip }
    }
}

/// One page of the log and the id the next continues after, if there is more.
pub fn page(
    meta: &dyn Metadata,
    q: &AuditQuery,
    limit: usize,
) -> Result<(Vec<AuditEntry>, Option<u64>), Error> {
    let r = meta.read()?;
    let kinds: Vec<&str> = q.kinds.iter().map(|k| k.as_str()).collect();
    let (records, more) =
        r.audit_page(q.last, !q.oldest_first, &kinds, limit, &|rec| q.scan(rec))?;
    let next = if more {
        records.last().map(|(seq, _)| *seq)
    } else {
        None
    };
    Ok((
        records
            .into_iter()
            .map(|(seq, r)| AuditEntry::of(seq, r))
            .collect(),
        next,
    ))
}

/// Removes entries older than `days`, in batches; returns how many.
pub fn expire(meta: &dyn Metadata, clock: &Clock, days: u32) -> Result<u64, Error> {
    let cutoff = clock.now_ms().saturating_sub(u64::from(days) * 86_400_000);
    let mut removed = 0;
    loop {
        let n = meta.write(|w| Ok::<_, Error>(w.remove_audit_before(cutoff, 1000)?))?;
        removed += n;
        if n < 1000 {
            return Ok(removed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_parse_by_either_name_and_events_are_the_content_changes() {
        for (k, a, b) in KINDS {
            assert_eq!(Kind::parse(a).unwrap(), k);
            assert_eq!(Kind::parse(&b.to_lowercase()).unwrap(), k);
            assert_eq!(k.as_str(), a);
        }
        assert!(Kind::Promoted.is_event());
        assert!(!Kind::Login.is_event());
        let e = Kind::parse("pushed").unwrap_err().to_string();
        assert!(e.contains("tag-moved"), "{e}");
    }

    #[test]
    fn time_bounds_end_the_walk_in_either_direction() {
        let q = AuditQuery {
            since_ms: Some(100),
            until_ms: Some(200),
            ..AuditQuery::default()
        };
        let at = |t| AuditRecord {
            time_ms: t,
            ..AuditRecord::default()
        };
        assert_eq!(q.scan(&at(150)), Scan::Keep);
        assert_eq!(q.scan(&at(99)), Scan::Stop);
        assert_eq!(q.scan(&at(200)), Scan::Skip);
        let oldest = AuditQuery {
            oldest_first: true,
            ..q
        };
        assert_eq!(oldest.scan(&at(99)), Scan::Skip);
        assert_eq!(oldest.scan(&at(200)), Scan::Stop);
    }
}
