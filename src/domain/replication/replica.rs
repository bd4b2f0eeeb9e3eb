//! A replica feed: the disaster-recovery copy at site B takes changes only from its
//! replication. While a feed holds this setting (`feed-replica:FEED`), every account but the
//! writers it names may pull and change the feed's settings, and nothing else — no push,
//! promotion or deletion — so the copy stays what site A released. Turning it off makes the
//! feed a primary; one write, on every node at once.

use serde::{Deserialize, Serialize};

use crate::domain::Error;
use crate::domain::audit::{self, Kind};
use crate::model::{Action, Caps};
use crate::store::meta::MetaRead;
use crate::store::meta::settings::{Family, Json};

/// feed → its replica setting.
pub(crate) const REPLICAS: Family<Json<Replica>> =
    Family::keyed("feed-replica:", "replica feed setting");

/// A feed's replica setting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Replica {
    /// The primary it copies (for people: nothing connects there).
    pub source: String,
    /// The accounts whose changes it takes (the replication's user or robot).
    pub writers: Vec<String>,
    /// Unix milliseconds.
    pub since_ms: u64,
    pub by: String,
}

/// What `account` may do in a feed whose setting is `replica`, of what `caps` allows: the
/// writers all of it, everyone else pulls and administers.
#[must_use]
pub fn limit(replica: Option<&Replica>, account: Option<&str>, caps: Caps) -> Caps {
    match replica {
        Some(r) if !account.is_some_and(|a| r.writers.iter().any(|w| w == a)) => {
            caps.meet(Caps::of(&[Action::Pull, Action::Admin]))
        }
        _ => caps,
    }
}

/// The replica setting of `feed`, if it has one.
pub fn of(r: &(impl MetaRead + ?Sized), feed: &str) -> Result<Option<Replica>, Error> {
    Ok(REPLICAS.get(r, feed)?)
}

impl super::Replication<'_> {
    /// Makes `feed` a replica of `source` that takes changes only from `writers`.
    pub fn set_replica(
        &self,
        feed: &str,
        source: &str,
        writers: &[String],
        actor: &str,
    ) -> Result<Replica, Error> {
        super::check_url(source)?;
        if writers.is_empty() || writers.iter().any(|w| w.trim().is_empty()) {
            return Err(Error::Invalid(
                "a replica feed names the accounts whose changes it takes (its replication's user or robot)".into(),
            ));
        }
        let replica = Replica {
            source: source.trim_end_matches('/').to_owned(),
            writers: writers.iter().map(|w| w.trim().to_owned()).collect(),
            since_ms: self.registry.clock().now_ms(),
            by: actor.to_owned(),
        };
        let clock = self.registry.clock().clone();
        self.registry.meta().write(|w| {
            if w.feed(feed)?.is_none() {
                return Err(Error::FeedUnknown {
                    feed: feed.to_owned(),
                });
            }
            REPLICAS.put(w, feed, &replica)?;
            let entry = audit::entry(
                Kind::ReplicationChanged,
                actor,
                feed,
                format!(
                    "feed {feed} made a replica of {}, written only by {}",
                    replica.source,
                    replica.writers.join(", ")
                ),
            );
            audit::append(w, &clock, entry)?;
            Ok::<_, Error>(())
        })?;
        Ok(replica)
    }

    /// Makes `feed` a primary again: everyone's roles apply as granted.
    pub fn clear_replica(&self, feed: &str, actor: &str) -> Result<(), Error> {
        let clock = self.registry.clock().clone();
        self.registry.meta().write(|w| {
            if REPLICAS.get(w, feed)?.is_none() {
                return Err(Error::NotFound(format!("feed {feed:?} is not a replica")));
            }
            REPLICAS.remove(w, feed)?;
            let entry = audit::entry(
                Kind::ReplicationChanged,
                actor,
                feed,
                format!(
                    "feed {feed} made the primary: it takes changes from everyone its roles allow"
                ),
            );
            audit::append(w, &clock, entry)?;
            Ok::<_, Error>(())
        })
    }

    /// `feed`'s replica setting, if any.
    pub fn replica(&self, feed: &str) -> Result<Option<Replica>, Error> {
        of(&*self.registry.meta().read()?, feed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_writers_change_a_replica_and_everyone_keeps_pull_and_settings() {
        let r = Replica {
            source: "https://a".into(),
            writers: vec!["robot$prod+replica".into()],
            since_ms: 0,
            by: "admin".into(),
        };
        let limited = limit(Some(&r), Some("alice"), Caps::ALL);
        assert!(limited.allows(Action::Pull) && limited.allows(Action::Admin));
        assert!(!limited.allows(Action::Push) && !limited.allows(Action::Delete));
        assert!(!limited.allows(Action::Promote));
        assert_eq!(
            limit(Some(&r), Some("robot$prod+replica"), Caps::ALL),
            Caps::ALL
        );
        assert_eq!(limit(None, Some("alice"), Caps::ALL), Caps::ALL);
        assert!(!limit(Some(&r), None, Caps::ALL).allows(Action::Push));
    }
}
