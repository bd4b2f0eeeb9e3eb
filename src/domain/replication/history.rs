//! Tag history carried between semdocks: the source sends a tag's history when replication
//! first sets the tag at the target, which appends it marked as carried — each actor named
//! with the origin's host (`alice@site-a.example`), each comment saying where it came from —
//! so it never passes for the target's own. Entries already there are not appended again,
//! so a repeated run carries nothing twice.

use serde::{Deserialize, Serialize};

use crate::domain::Error;
use crate::domain::registry::Registry;
use crate::model::{Repository, Tag};
use crate::store::meta::HistoryRecord;

/// Entries one request may carry.
pub const MAX_CARRIED: usize = 1000;

/// One carried entry, as the history API lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CarriedEntry {
    /// RFC 3339.
    pub time: String,
    pub old: Option<String>,
    pub new: Option<String>,
    pub actor: String,
    pub method: String,
    pub comment: Option<String>,
}

/// A tag's history from another semdock, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Carried {
    pub tag: String,
    /// The origin's URL (`https://site-a.example`).
    pub origin: String,
    pub entries: Vec<CarriedEntry>,
}

impl Registry {
    /// Appends `carried` to the history of its tag in `repo`; answers how many entries were
    /// new. Callers authorize (the feed's administrators).
    pub(crate) fn append_carried(
        &self,
        repo: &Repository,
        carried: &Carried,
    ) -> Result<usize, Error> {
        let tag: Tag = carried.tag.parse()?;
        super::check_url(&carried.origin)?;
        if carried.entries.len() > MAX_CARRIED {
            return Err(Error::Invalid(format!(
                "at most {MAX_CARRIED} history entries are carried at once"
            )));
        }
        let host = carried
            .origin
            .split_once("://")
            .map_or(carried.origin.as_str(), |(_, h)| h)
            .trim_end_matches('/');
        let mut records = Vec::new();
        for e in &carried.entries {
            let time = humantime::parse_rfc3339(&e.time)
                .map_err(|err| Error::Invalid(format!("history time {:?}: {err}", e.time)))?;
            let time_ms = time
                .duration_since(std::time::UNIX_EPOCH)
                .ok()
                .and_then(|d| u64::try_from(d.as_millis()).ok())
                .unwrap_or_default();
            if e.actor.is_empty()
                || e.actor.len() > 256
                || e.method.is_empty()
                || e.method.len() > 32
            {
                return Err(Error::Invalid(
                    "a carried history entry needs an actor (at most 256 characters) and a method"
                        .into(),
                ));
            }
            records.push(HistoryRecord {
                time_ms,
                old: e.old.clone(),
                new: e.new.clone(),
                actor: format!("{}@{host}", e.actor),
                method: e.method.clone(),
                comment: Some(match &e.comment {
                    Some(c) => format!("carried from {}: {c}", carried.origin),
                    None => format!("carried from {}", carried.origin),
                }),
            });
        }
        self.meta().write(|w| {
            if w.feed(repo.feed())?.is_none() {
                return Err(Error::FeedUnknown {
                    feed: repo.feed().to_owned(),
                });
            }
            let held = w.history(repo.as_str(), Some(tag.as_str()))?;
            let mut appended = 0;
            for r in &records {
                let there = held.iter().any(|(_, _, h)| {
                    h.time_ms == r.time_ms
                        && h.actor == r.actor
                        && h.new == r.new
                        && h.method == r.method
                });
                if !there {
                    w.append_history(repo.as_str(), tag.as_str(), r)?;
                    appended += 1;
                }
            }
            Ok::<_, Error>(appended)
        })
    }

    /// Tag `tag`'s history in `repo`, oldest first, as carried to another semdock.
    pub(crate) fn carried_history(
        &self,
        repo: &str,
        tag: &str,
        origin: &str,
    ) -> Result<Carried, Error> {
        let entries = self
            .meta()
            .read()?
            .history(repo, Some(tag))?
            .into_iter()
            .map(|(_, _, h)| CarriedEntry {
                time: crate::domain::audit::rfc3339(h.time_ms),
                old: h.old,
                new: h.new,
                actor: h.actor,
                method: h.method,
                comment: h.comment,
            })
            .rev()
            .take(MAX_CARRIED)
            .rev()
            .collect();
        Ok(Carried {
            tag: tag.to_owned(),
            origin: origin.to_owned(),
            entries,
        })
    }
}
