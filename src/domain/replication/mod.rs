//! Replication: a feed's released images pushed to another registry, as they were released.
//!
//! A rule names a source feed, optional filters (`REPOSITORY`, `REPOSITORY:TAG-GLOB`,
//! `REPOSITORY@SEMVER-REQUIREMENT`, repository globs with `*`), a target registry (another
//! semdock, or any OCI registry) with credentials stored as a connector's are (never shown
//! back, bound to the URL they were given for), its triggers and whether deletions follow.
//! Rules and their state are settings (`replication:`, `replication-state:`), so every node,
//! backup and migration carries them; a feed's rules go with it.
//!
//! Triggers: on push, each rule keeps a cursor into the audit log — the durable event log
//! webhooks deliver from — and handles the feed's tag events after it in order, moving the
//! cursor only once an event's image is at the target (a failure is retried with backoff,
//! never skipped: replication loses no event); on a schedule and on demand, a full run
//! walks every selected tag. A run is idempotent: what the target holds (blob, manifest)
//! is checked and not sent again, and tags are set last, so a run cut anywhere leaves no tag
//! at the target on an incomplete image and the next run finishes the work.
//!
//! A version (a SemVer tag) the target holds with another digest is never overwritten: the
//! run records a conflict and leaves it. One node runs a rule at a time
//! (`Metadata::try_exclusive` on the rule's own lock, and a set of running rules in the
//! process).

mod history;
pub mod replica;
mod run;

use std::collections::HashSet;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::Error;
use super::audit::{self, Kind};
use super::registry::Registry;
use crate::store::meta::settings::{Family, Json};
use crate::store::meta::{MetaRead, Scan};

pub use history::{Carried, CarriedEntry};
pub use run::RunReport;

/// name → a rule, in the settings table.
pub(crate) const RULES: Family<Json<Rule>> = Family::keyed("replication:", "replication rule");
/// name → where the rule's replication stands.
pub(crate) const STATES: Family<Json<State>> =
    Family::keyed("replication-state:", "replication state");
/// Rules a feed may have: each is a worker's share of the node.
pub const MAX_RULES_PER_FEED: usize = 10;
/// Conflicts kept per rule, newest first.
const MAX_CONFLICTS: usize = 100;
/// The tag events a rule follows.
const EVENT_KINDS: [&str; 7] = [
    "added",
    "tag-moved",
    "virtual-tag-moved",
    "promoted",
    "deleted",
    "purged",
    "retention-deleted",
];

/// A rule as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    pub name: String,
    /// The source feed.
    pub feed: String,
    /// What is replicated; everything in the feed when empty.
    pub filters: Vec<String>,
    /// The target registry's base URL.
    pub url: String,
    /// Put before each repository's path within the feed at the target (`prod/` keeps the
    /// names as they are here, the default).
    pub prefix: String,
    pub username: Option<String>,
    /// Stored, never shown back; dropped when the URL changes without a new one.
    pub password: Option<crate::model::Secret>,
    /// Follow the feed's tag events as they happen.
    pub on_push: bool,
    /// Seconds between scheduled full runs; 0: none.
    pub interval_seconds: u64,
    /// Tags and images deleted here are deleted at the target.
    pub deletions: bool,
    pub active: bool,
    pub created_ms: u64,
    pub created_by: String,
}

/// Where a rule's replication stands.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct State {
    /// The last audit entry handled.
    cursor: u64,
    /// Failed attempts at the event after `cursor` (or at the pending full run).
    attempts: u32,
    /// Unix milliseconds before which the next attempt waits.
    next_attempt_ms: u64,
    /// A full run is asked for (the rule is new, or an operator asked).
    full_pending: bool,
    /// When the last full run started.
    last_full_ms: u64,
    last_run: Option<RunReport>,
    /// The last failure, until a later attempt succeeds.
    last_error: Option<String>,
    /// Versions the target holds with another digest, newest first.
    conflicts: Vec<Conflict>,
}

/// A version the target holds with another digest: left alone there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conflict {
    pub repository: String,
    pub tag: String,
    /// The digest here.
    pub digest: String,
    /// The digest at the target.
    pub target_digest: String,
    /// RFC 3339 of when it was found.
    pub time: String,
}

/// A rule as the API shows it, with its status: the password never.
#[derive(Debug, Clone, Serialize)]
#[allow(clippy::struct_excessive_bools)] // the API's flags, each its own switch
pub struct RuleInfo {
    pub name: String,
    pub feed: String,
    pub filters: Vec<String>,
    pub url: String,
    pub prefix: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    pub has_password: bool,
    pub on_push: bool,
    pub interval_seconds: u64,
    pub deletions: bool,
    pub active: bool,
    pub created: String,
    pub created_by: String,
    pub status: Status,
}

/// Where a rule stands.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// The last event handled.
    pub cursor: u64,
    /// Events of the feed not yet handled (counted up to 10 000).
    pub lag_events: u64,
    /// Seconds since the oldest event not yet handled; 0 when caught up.
    pub lag_seconds: u64,
    pub full_run_pending: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_run: Option<RunReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    pub attempts: u32,
    pub conflicts: Vec<Conflict>,
}

/// A new rule, as asked for.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewRule {
    pub name: String,
    pub feed: String,
    #[serde(default)]
    pub filters: Vec<String>,
    pub url: String,
    /// `FEED/` when omitted: the same names at the target.
    pub prefix: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub on_push: Option<bool>,
    #[serde(default)]
    pub interval_seconds: u64,
    #[serde(default)]
    pub deletions: bool,
}

/// A change of a rule; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleChange {
    pub filters: Option<Vec<String>>,
    /// A new URL drops the stored password unless a new one is given.
    pub url: Option<String>,
    pub prefix: Option<String>,
    pub username: Option<String>,
    /// `""` removes it.
    pub password: Option<String>,
    pub on_push: Option<bool>,
    pub interval_seconds: Option<u64>,
    pub deletions: Option<bool>,
    pub active: Option<bool>,
}

/// One filter: repositories (a glob over the path within the feed) and their tags (a glob,
/// or a SemVer requirement).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Filter {
    repository: String,
    tags: String,
    versions: Option<semver::VersionReq>,
}

impl Filter {
    fn parse(text: &str) -> Result<Self, Error> {
        let text = text.trim();
        let (repository, tags, versions) =
            crate::domain::registry::split_selector(text, true).map_err(|why| {
                Error::Invalid(format!(
                    "replication filter {text:?}: {why}; write REPOSITORY, REPOSITORY:TAG-GLOB or REPOSITORY@SEMVER-REQUIREMENT (team/web@^5; `*` globs repositories)"
                ))
            })?;
        Ok(Self {
            repository: repository.to_owned(),
            tags: tags.to_owned(),
            versions,
        })
    }

    /// Whether the filter selects `path` (a repository's path within its feed).
    fn selects_repository(&self, path: &str) -> bool {
        super::versioning::glob_matches(&self.repository, path)
    }

    fn selects(&self, path: &str, tag: &str) -> bool {
        self.selects_repository(path)
            && super::versioning::glob_matches(&self.tags, tag)
            && self.versions.as_ref().is_none_or(|req| {
                super::versioning::version_of(tag).is_some_and(|v| req.matches(&v))
            })
    }
}

impl Rule {
    pub(crate) fn parsed_filters(&self) -> Vec<Filter> {
        self.filters
            .iter()
            .filter_map(|f| Filter::parse(f).ok())
            .collect()
    }

    /// The target's name for repository `repo` (`FEED/PATH`) of the rule's feed.
    pub(crate) fn target_name(&self, repo: &str) -> String {
        let path = repo
            .strip_prefix(&self.feed)
            .and_then(|p| p.strip_prefix('/'))
            .unwrap_or(repo);
        format!("{}{path}", self.prefix)
    }

    fn info(&self, status: Status) -> RuleInfo {
        RuleInfo {
            name: self.name.clone(),
            feed: self.feed.clone(),
            filters: self.filters.clone(),
            url: self.url.clone(),
            prefix: self.prefix.clone(),
            username: self.username.clone(),
            has_password: self.password.is_some(),
            on_push: self.on_push,
            interval_seconds: self.interval_seconds,
            deletions: self.deletions,
            active: self.active,
            created: audit::rfc3339(self.created_ms),
            created_by: self.created_by.clone(),
            status,
        }
    }
}

fn check_name(name: &str) -> Result<(), Error> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-');
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "{name:?} is not a replication rule name: use 1 to 64 lowercase letters, digits and dashes"
        )))
    }
}

fn check_url(url: &str) -> Result<(), Error> {
    super::webhooks::check_http_url(url, "registry URL")?;
    let authority = url
        .split_once("://")
        .map_or(url, |(_, rest)| rest.split('/').next().unwrap_or(rest));
    if authority.contains('@') {
        return Err(Error::Invalid(format!(
            "{url:?} holds credentials: give them as the rule's username and password, which are never shown back"
        )));
    }
    Ok(())
}

fn check_prefix(prefix: &str) -> Result<(), Error> {
    let ok = prefix.is_empty()
        || (prefix.ends_with('/')
            && prefix.trim_end_matches('/').split('/').all(|c| {
                !c.is_empty()
                    && c.chars().all(|ch| {
                        ch.is_ascii_lowercase() || ch.is_ascii_digit() || "._-".contains(ch)
                    })
            }));
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "{prefix:?} is not a target prefix: give repository path components ending in / (dr/prod/), or nothing"
        )))
    }
}

fn unknown(name: &str) -> Error {
    Error::NotFound(format!("replication rule {name:?} does not exist"))
}

/// Rule `name` as stored.
fn stored(r: &(impl MetaRead + ?Sized), name: &str) -> Result<Rule, Error> {
    RULES.get(r, name)?.ok_or_else(|| unknown(name))
}

/// Which rules run now, in this process (the lock across nodes is the store's), and the
/// URL this registry names itself by in carried history.
#[derive(Default)]
pub struct Running(
    Mutex<HashSet<String>>,
    Mutex<String>,
    /// The metadata generation at the last tick, and when it was.
    Mutex<(u64, Option<std::time::Instant>)>,
);

/// Every rule is looked at once a second at least, and sooner after a change.
const TICK: std::time::Duration = std::time::Duration::from_secs(1);

/// Marks rule `name` running until dropped.
struct RunGuard<'a> {
    running: &'a Running,
    name: String,
    _lock: Box<dyn Send>,
}

impl Drop for RunGuard<'_> {
    fn drop(&mut self) {
        super::lock(&self.running.0).remove(&self.name);
    }
}

/// The lock across nodes of rule `name`: one number per name, apart from the other jobs'.
fn lock_id(name: &str) -> i64 {
    use std::hash::{Hash as _, Hasher as _};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    name.hash(&mut h);
    // A fixed tag in the high half keeps the space apart from the jobs' single locks.
    0x5e3d_1000_0000_0000 | i64::try_from(h.finish() & 0xffff_ffff).unwrap_or_default()
}

/// The replication service over the registry.
pub struct Replication<'a> {
    pub(crate) registry: &'a Registry,
}

impl Replication<'_> {
    /// The URL this registry names itself by in the history it carries (its external URL,
    /// else the address it listens on).
    pub fn set_origin(&self, url: &str) {
        url.clone_into(&mut super::lock(&self.registry.replication_running().1));
    }

    pub(crate) fn origin(&self) -> String {
        super::lock(&self.registry.replication_running().1).clone()
    }

    /// How often the scheduler should call [`Replication::poll`]: often where the
    /// generation is a counter in memory (the embedded engine), less where reading it is a
    /// query (PostgreSQL).
    #[must_use]
    pub fn poll_interval(&self) -> std::time::Duration {
        if self.registry.meta().generation_is_local() {
            std::time::Duration::from_millis(50)
        } else {
            std::time::Duration::from_millis(250)
        }
    }

    /// Ticks when the metadata changed since the last tick (a push, a promotion, a deletion:
    /// the on-push lag is then the copy, not a wait) or a second has passed; answers how
    /// many rules did something.
    pub fn poll(&self) -> Result<usize, Error> {
        let generation = self.registry.meta().generation();
        {
            let mut last = super::lock(&self.registry.replication_running().2);
            let due = last.1.is_none_or(|at| at.elapsed() >= TICK);
            if generation == last.0 && !due {
                return Ok(0);
            }
            *last = (generation, Some(std::time::Instant::now()));
        }
        self.tick()
    }

    /// Every rule, with its status.
    pub fn list(&self) -> Result<Vec<RuleInfo>, Error> {
        let r = self.registry.meta().read()?;
        RULES
            .all(&*r)?
            .into_iter()
            .map(|(_, rule)| {
                let status = self.status_of(&*r, &rule)?;
                Ok(rule.info(status))
            })
            .collect()
    }

    /// Rule `name`, with its status.
    pub fn get(&self, name: &str) -> Result<RuleInfo, Error> {
        let r = self.registry.meta().read()?;
        let rule = stored(&*r, name)?;
        let status = self.status_of(&*r, &rule)?;
        Ok(rule.info(status))
    }

    /// The feed rule `name` replicates (to authorize by).
    pub fn feed_of(&self, name: &str) -> Result<String, Error> {
        Ok(stored(&*self.registry.meta().read()?, name)?.feed)
    }

    fn status_of(&self, r: &(impl MetaRead + ?Sized), rule: &Rule) -> Result<Status, Error> {
        let state = STATES.get(r, &rule.name)?.unwrap_or_default();
        let feed = rule.feed.clone();
        let (pending, _) = r.audit_page(Some(state.cursor), false, &EVENT_KINDS, 10_000, &|a| {
            Scan::keep_if(a.feed == feed)
        })?;
        let lag_seconds = pending.first().map_or(0, |(_, a)| {
            self.registry.clock().now_ms().saturating_sub(a.time_ms) / 1000
        });
        Ok(Status {
            cursor: state.cursor,
            lag_events: pending.len() as u64,
            lag_seconds,
            full_run_pending: state.full_pending,
            last_run: state.last_run,
            last_error: state.last_error,
            attempts: state.attempts,
            conflicts: state.conflicts,
        })
    }

    pub fn create(&self, new: &NewRule, actor: &str) -> Result<RuleInfo, Error> {
        check_name(&new.name)?;
        check_url(&new.url)?;
        for f in &new.filters {
            Filter::parse(f)?;
        }
        let prefix = new
            .prefix
            .clone()
            .unwrap_or_else(|| format!("{}/", new.feed));
        check_prefix(&prefix)?;
        let rule = Rule {
            name: new.name.clone(),
            feed: new.feed.clone(),
            filters: new.filters.iter().map(|f| f.trim().to_owned()).collect(),
            url: new.url.trim_end_matches('/').to_owned(),
            prefix,
            username: new.username.clone().filter(|u| !u.is_empty()),
            password: new
                .password
                .clone()
                .filter(|p| !p.is_empty())
                .map(Into::into),
            on_push: new.on_push.unwrap_or(true),
            interval_seconds: new.interval_seconds,
            deletions: new.deletions,
            active: true,
            created_ms: self.registry.clock().now_ms(),
            created_by: actor.to_owned(),
        };
        let clock = self.registry.clock().clone();
        self.registry.meta().write(|w| {
            if w.feed(&rule.feed)?.is_none() {
                return Err(Error::FeedUnknown {
                    feed: rule.feed.clone(),
                });
            }
            if RULES.get(w, &rule.name)?.is_some() {
                return Err(Error::Conflict(format!(
                    "replication rule {:?} exists already",
                    rule.name
                )));
            }
            let siblings = RULES
                .all(w)?
                .into_iter()
                .filter(|(_, r)| r.feed == rule.feed)
                .count();
            if siblings >= MAX_RULES_PER_FEED {
                return Err(Error::Invalid(format!(
                    "feed {:?} already has {siblings} replication rules, the most it may have",
                    rule.feed
                )));
            }
            // Events from now on; what the feed holds already comes with the first full run.
            let (newest, _) = w.audit_page(None, true, &[], 1, &|_| Scan::Keep)?;
            let cursor = newest.first().map_or(0, |(seq, _)| *seq);
            RULES.put(w, &rule.name, &rule)?;
            STATES.put(
                w,
                &rule.name,
                &State {
                    cursor,
                    full_pending: true,
                    ..State::default()
                },
            )?;
            let mut entry = audit::entry(
                Kind::ReplicationChanged,
                actor,
                &rule.feed,
                format!("replication rule {} to {} created", rule.name, rule.url),
            );
            entry.source = Some(rule.url.clone());
            audit::append(w, &clock, entry)?;
            Ok::<_, Error>(())
        })?;
        self.get(&rule.name)
    }

    pub fn update(&self, name: &str, change: &RuleChange, actor: &str) -> Result<RuleInfo, Error> {
        if let Some(url) = &change.url {
            check_url(url)?;
        }
        if let Some(prefix) = &change.prefix {
            check_prefix(prefix)?;
        }
        for f in change.filters.iter().flatten() {
            Filter::parse(f)?;
        }
        let clock = self.registry.clock().clone();
        self.registry.meta().write(|w| {
            let mut rule = stored(w, name)?;
            if let Some(url) = &change.url {
                let url = url.trim_end_matches('/');
                if url != rule.url {
                    // Credentials were given for the old URL: never sent anywhere else.
                    rule.password = None;
                }
                url.clone_into(&mut rule.url);
            }
            if let Some(f) = &change.filters {
                rule.filters = f.iter().map(|f| f.trim().to_owned()).collect();
            }
            if let Some(p) = &change.prefix {
                rule.prefix.clone_from(p);
            }
            if let Some(u) = &change.username {
                rule.username = Some(u.clone()).filter(|u| !u.is_empty());
            }
            if let Some(p) = &change.password {
                rule.password = Some(p.clone()).filter(|p| !p.is_empty()).map(Into::into);
            }
            if let Some(v) = change.on_push {
                rule.on_push = v;
            }
            if let Some(v) = change.interval_seconds {
                rule.interval_seconds = v;
            }
            if let Some(v) = change.deletions {
                rule.deletions = v;
            }
            if let Some(v) = change.active {
                rule.active = v;
            }
            RULES.put(w, name, &rule)?;
            let mut entry = audit::entry(
                Kind::ReplicationChanged,
                actor,
                &rule.feed,
                format!("replication rule {name} changed"),
            );
            entry.source = Some(rule.url.clone());
            audit::append(w, &clock, entry)?;
            Ok::<_, Error>(())
        })?;
        self.get(name)
    }

    pub fn delete(&self, name: &str, actor: &str) -> Result<(), Error> {
        let clock = self.registry.clock().clone();
        self.registry.meta().write(|w| {
            let rule = stored(w, name)?;
            RULES.remove(w, name)?;
            STATES.remove(w, name)?;
            let entry = audit::entry(
                Kind::ReplicationChanged,
                actor,
                &rule.feed,
                format!("replication rule {name} to {} deleted", rule.url),
            );
            audit::append(w, &clock, entry)?;
            Ok::<_, Error>(())
        })
    }

    /// Deletes every rule of `feed` (with the feed), inside its write.
    pub(crate) fn forget_feed(
        w: &mut dyn crate::store::meta::MetaWrite,
        feed: &str,
    ) -> Result<(), Error> {
        for (name, rule) in RULES.all(w)? {
            if rule.feed == feed {
                RULES.remove(w, &name)?;
                STATES.remove(w, &name)?;
            }
        }
        replica::REPLICAS.remove(w, feed)?;
        Ok(())
    }

    /// Takes rule `name` for a run: `None` while this process or another node runs it.
    fn take(&self, name: &str) -> Result<Option<RunGuard<'_>>, Error> {
        let running = self.registry.replication_running();
        if !super::lock(&running.0).insert(name.to_owned()) {
            return Ok(None);
        }
        match self.registry.meta().try_exclusive(lock_id(name)) {
            Ok(Some(lock)) => Ok(Some(RunGuard {
                running,
                name: name.to_owned(),
                _lock: lock,
            })),
            other => {
                super::lock(&running.0).remove(name);
                other.map(|_| None).map_err(Into::into)
            }
        }
    }

    /// Records a conflict (newest first, the same one once).
    fn note_conflicts(state: &mut State, found: Vec<Conflict>) {
        for c in found {
            state
                .conflicts
                .retain(|o| !(o.repository == c.repository && o.tag == c.tag));
            state.conflicts.insert(0, c);
        }
        state.conflicts.truncate(MAX_CONFLICTS);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_select_repositories_by_glob_and_tags_by_glob_or_requirement() {
        let f = Filter::parse("team/*@^5").unwrap();
        assert!(f.selects("team/web", "5.2.0"));
        assert!(!f.selects("team/web", "4.9.0"));
        assert!(!f.selects("team/web", "latest"));
        assert!(!f.selects("other/web", "5.2.0"));
        let f = Filter::parse("web:stable-*").unwrap();
        assert!(f.selects("web", "stable-2"));
        assert!(!f.selects("web", "2.0.0"));
        assert!(Filter::parse("Web").is_err());
        assert!(Filter::parse("web@not a req").is_err());
        assert!(Filter::parse("web:").is_err());
    }

    #[test]
    fn target_names_keep_the_path_within_the_feed_under_the_prefix() {
        let rule = Rule {
            name: "dr".into(),
            feed: "prod".into(),
            filters: vec![],
            url: "https://b".into(),
            prefix: "dr/".into(),
            username: None,
            password: None,
            on_push: true,
            interval_seconds: 0,
            deletions: false,
            active: true,
            created_ms: 0,
            created_by: "a".into(),
        };
        assert_eq!(rule.target_name("prod/team/app"), "dr/team/app");
        assert!(check_prefix("dr/prod/").is_ok());
        assert!(check_prefix("dr").is_err());
        assert!(check_prefix("").is_ok());
        assert!(check_url("https://ci:secret@site-b.example").is_err());
        assert!(check_url("https://site-b.example/path@x").is_ok());
        assert_ne!(lock_id("a"), lock_id("b"));
    }
}
