//! Authorization in one place: the domain as a request reaches it.
//!
//! A request gets an `Access` — its caller (or none) over the registry and the access-control
//! service — and nothing else: the management API and the UI never hold the `Registry` or
//! call a rights check themselves (`tests/it/architecture.rs` holds that line). Every operation
//! is a method of a handle that exists only once the caller's rights were checked, in the
//! constructor of that handle:
//!
//! - `Access::feed::<L>(feed)` → `Feed<L>`, for a level `L` of the feed's roles (`Pull`,
//!   `Delete`, `Promote`, `FeedAdmin`); each level's operations are only on its handle,
//! - `Access::admin()` → `Admin`, for global administrators,
//! - `Access::account()` → `Account`, for managing the caller's own keys and password, which
//!   needs the account's password, a UI session or an administrator's key.
//!
//! So a handler that forgets a check does not compile: without the handle it has no way to
//! call the operation. (lldap's `AccessControlledBackendHandler` is the model.)

mod quota;
mod replication;
mod robots;
mod trust;
mod vulns;

pub use replication::ReplicationRule;
pub use trust::{Signatures, TrustedKeys};
pub use vulns::{VulnDb, Vulnerabilities};

use std::collections::HashSet;
use std::marker::PhantomData;
use std::path::Path;
use std::sync::Arc;

use super::auth::{Auth, Caller, KeyInfo, NewKey, Principal, UserInfo};
use super::maintenance::backup::BackupReport;
use super::maintenance::gc::{GcOptions, GcReport, StorageStats};
use super::maintenance::mode::ReadOnly;
use super::maintenance::retention::{RetentionReport, Rules};
use super::webhooks::{Delivery, EndpointChange, EndpointInfo, NewEndpoint};
use super::{
    Error, Feed as FeedSettings, FeedChange, FeedPreview, HistoryEntry, HistoryQuery, Promoted,
    Promotion, Referrer, Registry, StoredManifest, TagGroups, TagQuery,
};
use crate::model::{Action, Caps, Digest, FeedName, Reference, Repository, Tag};

/// A level of rights in a feed, as a type.
pub trait Level {
    const ACTION: Action;
}

/// Read the feed: its repositories, tags, manifests and history.
pub struct Pull;
/// Delete tags and manifests.
pub struct Delete;
/// Promote images into the feed.
pub struct Promote;
/// Change the feed's settings, retention and roles; purge tombstones.
pub struct FeedAdmin;

impl Level for Pull {
    const ACTION: Action = Action::Pull;
}
impl Level for Delete {
    const ACTION: Action = Action::Delete;
}
impl Level for Promote {
    const ACTION: Action = Action::Promote;
}
impl Level for FeedAdmin {
    const ACTION: Action = Action::Admin;
}

/// A request's caller over the domain.
#[derive(Clone)]
pub struct Access {
    registry: Arc<Registry>,
    auth: Arc<Auth>,
    caller: Option<Caller>,
}

/// Feed `name`, with the caller holding level `L` in it.
pub struct Feed<'a, L> {
    access: &'a Access,
    name: String,
    level: PhantomData<L>,
}

/// The caller is a global administrator.
pub struct Admin<'a> {
    access: &'a Access,
    caller: &'a Caller,
}

/// A webhook the caller administers.
pub struct Webhook<'a> {
    access: &'a Access,
    id: String,
}

impl Webhook<'_> {
    pub fn update(&self, change: &EndpointChange) -> Result<EndpointInfo, Error> {
        self.access
            .registry
            .webhooks()
            .update(&self.id, change, self.access.actor())
    }

    pub fn delete(&self) -> Result<(), Error> {
        self.access
            .registry
            .webhooks()
            .delete(&self.id, self.access.actor())
    }

    pub fn deliveries(&self) -> Result<Vec<Delivery>, Error> {
        self.access.registry.webhooks().deliveries(&self.id)
    }

    pub fn redeliver(&self, event_id: u64) -> Result<(), Error> {
        self.access
            .registry
            .webhooks()
            .redeliver(&self.id, event_id)
    }
}

/// The caller proved the account itself (password, session, or an administrator's key).
pub struct Account<'a> {
    access: &'a Access,
    caller: &'a Caller,
}

impl Access {
    #[must_use]
    pub fn new(registry: Arc<Registry>, auth: Arc<Auth>, caller: Option<Caller>) -> Self {
        Self {
            registry,
            auth,
            caller,
        }
    }

    #[must_use]
    pub fn caller(&self) -> Option<&Caller> {
        self.caller.as_ref()
    }

    fn principal(&self) -> Option<&Principal> {
        self.caller.as_deref()
    }

    /// Who acts, as history and audit name them.
    fn actor(&self) -> &str {
        self.principal().map_or("anonymous", Principal::user)
    }

    /// Read-only mode, if it is on (any caller may ask: every refused write says it anyway).
    pub fn read_only(&self) -> Result<Option<ReadOnly>, Error> {
        self.registry.maintenance().read_only()
    }

    /// One page of the audit log: administrators read all of it; a feed's administrators
    /// read that feed's entries (the query must name it).
    pub fn audit(
        &self,
        q: &super::audit::AuditQuery,
    ) -> Result<(Vec<super::audit::AuditEntry>, Option<u64>), Error> {
        let is_admin = self.principal().is_some_and(Principal::is_admin);
        if !is_admin {
            match &q.feed {
                Some(feed) => {
                    self.feed::<FeedAdmin>(feed)?;
                }
                None => {
                    self.admin()?;
                }
            }
        }
        self.registry.feeds().audit_page(q)
    }

    /// Feed `feed` at level `L`: `Denied` (or `Unauthenticated`, or for a known caller
    /// `FeedUnknown`) when the caller's rights there do not cover it.
    pub fn feed<L: Level>(&self, feed: &str) -> Result<Feed<'_, L>, Error> {
        self.auth.require(self.principal(), feed, L::ACTION)?;
        Ok(Feed {
            access: self,
            name: feed.to_owned(),
            level: PhantomData,
        })
    }

    /// The administrator's operations: `Denied` for anyone else.
    pub fn admin(&self) -> Result<Admin<'_>, Error> {
        let caller = self.caller.as_ref().ok_or(Error::Unauthenticated)?;
        Auth::require_admin(caller)?;
        Ok(Admin {
            access: self,
            caller,
        })
    }

    /// Revokes key `id`: the caller's own account's (or any, for an administrator), or the
    /// key the caller is.
    pub fn revoke_key(&self, id: &str) -> Result<(), Error> {
        let caller = self.caller.as_ref().ok_or(Error::Unauthenticated)?;
        self.auth.keys().revoke(caller, id)
    }

    /// The caller's own account: keys and password.
    pub fn account(&self) -> Result<Account<'_>, Error> {
        let caller = self.caller.as_ref().ok_or(Error::Unauthenticated)?;
        super::auth::require_account_rights(caller)?;
        Ok(Account {
            access: self,
            caller,
        })
    }

    /// The webhooks the caller administers: every one for administrators, those of `feed`
    /// for its administrators.
    pub fn webhooks(&self, feed: Option<&str>) -> Result<Vec<EndpointInfo>, Error> {
        if let Some(feed) = feed {
            self.feed::<FeedAdmin>(feed)?;
            Ok(self
                .registry
                .webhooks()
                .list()?
                .into_iter()
                .filter(|w| w.feed.as_deref() == Some(feed))
                .collect())
        } else {
            self.admin()?;
            self.registry.webhooks().list()
        }
    }

    /// Creates a webhook: of a feed (its administrators), or of every feed (administrators).
    pub fn create_webhook(&self, new: &NewEndpoint) -> Result<EndpointInfo, Error> {
        match new.feed.as_deref().filter(|f| !f.is_empty()) {
            Some(feed) => {
                self.feed::<FeedAdmin>(feed)?;
            }
            None => {
                self.admin()?;
            }
        }
        self.registry.webhooks().create(new, self.actor())
    }

    /// Webhook `id`, when the caller administers it (its feed, or all for a global one).
    pub fn webhook(&self, id: &str) -> Result<Webhook<'_>, Error> {
        let is_admin = self.principal().is_some_and(Principal::is_admin);
        if !is_admin {
            // Whether a webhook exists is told only to those who may manage it.
            match self.registry.webhooks().feed_of(id) {
                Ok(Some(feed)) => {
                    self.feed::<FeedAdmin>(&feed)?;
                }
                Ok(None) | Err(Error::NotFound(_)) => {
                    self.admin()?;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(Webhook {
            access: self,
            id: id.to_owned(),
        })
    }

    /// What the caller may do in `feed` (to show only the controls that will work).
    pub fn caps(&self, feed: &str) -> Result<Caps, Error> {
        self.auth.caps(self.principal(), feed)
    }

    fn visible(&self) -> Result<HashSet<String>, Error> {
        self.auth.pullable_feeds(self.principal())
    }

    /// The feeds the caller may pull from, with their settings.
    pub fn feeds(&self) -> Result<Vec<(String, FeedSettings)>, Error> {
        let visible = self.visible()?;
        Ok(self
            .registry
            .feeds()
            .list()?
            .into_iter()
            .filter(|(name, _)| visible.contains(name))
            .collect())
    }

    /// Storage of the feeds the caller may pull from.
    pub fn storage(&self) -> Result<StorageStats, Error> {
        let visible = self.visible()?;
        let mut stats = self.registry.maintenance().storage()?;
        stats.feeds.retain(|f| visible.contains(&f.feed));
        Ok(stats)
    }

    /// Promotions into feeds the caller may pull from, oldest first.
    pub fn promotions(&self) -> Result<Vec<crate::store::meta::PromotionRecord>, Error> {
        let visible = self.visible()?;
        self.registry
            .history()
            .promotions(|feed| visible.contains(feed))
    }

    /// The latest tag changes in feeds the caller may pull from, newest first.
    pub fn recent_history(&self, limit: usize) -> Result<Vec<(String, HistoryEntry)>, Error> {
        let visible = self.visible()?;
        self.registry
            .history()
            .recent(limit, |feed| visible.contains(feed))
    }
}

impl<L> Feed<'_, L> {
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    fn registry(&self) -> &Registry {
        &self.access.registry
    }

    /// `repo`, which must be in this feed: a handle for one feed never reaches another.
    fn own<'r>(&self, repo: &'r Repository) -> Result<&'r Repository, Error> {
        if repo.feed() == self.name {
            Ok(repo)
        } else {
            Err(Error::Denied(format!(
                "repository {repo} is not in feed {:?}",
                self.name
            )))
        }
    }
}

impl Feed<'_, Pull> {
    pub fn settings(&self) -> Result<FeedSettings, Error> {
        self.registry().feeds().get(&self.name)
    }

    pub fn search_repositories(
        &self,
        query: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<String>, bool), Error> {
        self.registry()
            .history()
            .search_repositories(&self.name, query, after, limit)
    }

    /// One page of the tags of `repo` by kind; `RepositoryUnknown` for a repository that
    /// does not exist.
    pub fn tag_groups(&self, repo: &Repository, q: &TagQuery) -> Result<TagGroups, Error> {
        self.registry()
            .history()
            .require_repository(self.own(repo)?)?;
        self.registry().history().tag_groups(repo, q)
    }

    /// One page of the history of `repo`, and where the next continues.
    pub fn history(
        &self,
        repo: &Repository,
        q: &HistoryQuery,
    ) -> Result<(Vec<HistoryEntry>, Option<u64>), Error> {
        self.registry().history().page(self.own(repo)?, q)
    }

    /// The newest change of `tag`.
    pub fn last_change(&self, repo: &Repository, tag: &str) -> Result<Option<HistoryEntry>, Error> {
        let q = HistoryQuery {
            tag: Some(tag.to_owned()),
            newest_first: true,
            n: Some(1),
            ..HistoryQuery::default()
        };
        Ok(self.history(repo, &q)?.0.into_iter().next())
    }

    pub fn tag_at(
        &self,
        repo: &Repository,
        tag: &str,
        at_ms: u64,
    ) -> Result<Option<String>, Error> {
        self.registry()
            .history()
            .tag_at(self.own(repo)?, tag, at_ms)
    }

    /// What `tag` pointed to at `at_ms`: the digest, and the version a virtual tag followed.
    pub fn tag_state_at(
        &self,
        repo: &Repository,
        tag: &str,
        at_ms: u64,
    ) -> Result<Option<super::TagState>, Error> {
        self.registry()
            .history()
            .tag_state_at(self.own(repo)?, tag, at_ms)
    }

    pub fn manifest(
        &self,
        repo: &Repository,
        reference: &Reference,
    ) -> Result<StoredManifest, Error> {
        self.registry().manifest(self.own(repo)?, reference)
    }

    pub fn referrers(&self, repo: &Repository, subject: &Digest) -> Result<Vec<Referrer>, Error> {
        self.registry().referrers(self.own(repo)?, subject, None)
    }
}

impl Feed<'_, Delete> {
    pub fn delete_manifest(&self, repo: &Repository, reference: &Reference) -> Result<(), Error> {
        self.registry()
            .delete_manifest(self.own(repo)?, reference, self.access.actor())
    }
}

impl Feed<'_, Promote> {
    /// Whether `tag` could point at `digest` under the feed's policy (the promote form's check).
    pub fn check_tag(&self, repo: &Repository, tag: &str, digest: &str) -> Result<(), Error> {
        self.registry()
            .history()
            .check_tag(self.own(repo)?, tag, digest)
    }

    /// Promotes (or retags) `from_ref` of `from_repo`, read through `source`, to
    /// `to_repo:to_tag` in this feed.
    #[allow(clippy::too_many_arguments)]
    pub fn promote(
        &self,
        source: &Feed<'_, Pull>,
        from_repo: &Repository,
        from_ref: &Reference,
        to_repo: &Repository,
        to_tag: &Tag,
        expected: Option<&Digest>,
        include_referrers: bool,
        comment: Option<&str>,
    ) -> Result<Promoted, Error> {
        self.registry().history().promote(&Promotion {
            from: source.own(from_repo)?,
            from_ref,
            to: self.own(to_repo)?,
            to_tag,
            expected,
            include_referrers,
            actor: self.access.actor(),
            comment,
        })
    }
}

impl Feed<'_, FeedAdmin> {
    pub fn update(&self, change: FeedChange) -> Result<FeedSettings, Error> {
        let updated = self
            .registry()
            .feeds()
            .update(&self.name, change, self.access.actor())?;
        tracing::info!(
            actor = self.access.actor(),
            feed = self.name,
            "feed settings changed"
        );
        Ok(updated)
    }

    pub fn preview(&self, change: &FeedChange) -> Result<FeedPreview, Error> {
        self.registry().feeds().preview_change(&self.name, change)
    }

    /// Who changed the feed's settings, and how.
    pub fn changes(&self) -> Result<Vec<crate::domain::audit::AuditEntry>, Error> {
        self.registry().feeds().changes(&self.name)
    }

    pub fn retention(&self) -> Result<Rules, Error> {
        self.registry().maintenance().retention(&self.name)
    }

    pub fn set_retention(&self, rules: &Rules) -> Result<(), Error> {
        self.registry()
            .maintenance()
            .set_retention(&self.name, rules, self.access.actor())
    }

    pub fn run_retention(&self, dry_run: bool) -> Result<RetentionReport, Error> {
        self.registry()
            .maintenance()
            .run_retention_by(&self.name, dry_run, self.access.actor())
    }

    /// This connector feed's upstream: test it, sync from it, follow its digests.
    #[must_use]
    pub fn upstream(&self) -> FeedUpstream<'_> {
        FeedUpstream { feed: self }
    }

    pub fn purge(&self, repo: &Repository, tag: &Tag, confirm: Option<&str>) -> Result<(), Error> {
        self.registry()
            .purge(self.own(repo)?, tag, self.access.actor(), confirm)
    }

    /// Who holds which role here, as (`user:NAME` or `key:ID`, role).
    pub fn grants(&self) -> Result<Vec<(String, String)>, Error> {
        let caller = self.access.caller.as_ref().ok_or(Error::Unauthenticated)?;
        self.access.auth.feed_grants(caller, &self.name)
    }

    /// Gives user `name` `role` here, or takes their role with `None`. The admin role is
    /// given and taken by administrators only (`auth::Users::grant`).
    pub fn grant(&self, name: &str, role: Option<&str>) -> Result<(), Error> {
        let caller = self.access.caller.as_ref().ok_or(Error::Unauthenticated)?;
        self.access
            .auth
            .users()
            .grant(caller, name, &self.name, role)
    }
}

/// The upstream of a connector feed the caller administers (`feed.upstream()`).
pub struct FeedUpstream<'a> {
    feed: &'a Feed<'a, FeedAdmin>,
}

impl FeedUpstream<'_> {
    /// Follows the upstream's digest of a pinned connector version (after drift).
    pub fn accept_upstream(&self, repo: &Repository, tag: &Tag) -> Result<String, Error> {
        self.feed.registry().connector().accept_upstream(
            self.feed.own(repo)?,
            tag.as_str(),
            self.feed.access.actor(),
        )
    }

    /// Checks this connector feed's upstream and credentials.
    pub fn test_upstream(&self) -> Result<crate::domain::UpstreamTest, Error> {
        self.feed
            .registry()
            .connector()
            .test_upstream(&self.feed.name)
    }

    /// Syncs this connector feed now (its sync rules).
    pub fn sync(&self) -> Result<crate::domain::SyncReport, Error> {
        self.feed.registry().connector().sync(&self.feed.name)
    }

    /// The last sync report of this connector feed.
    pub fn sync_status(&self) -> Result<Option<crate::domain::SyncReport>, Error> {
        self.feed
            .registry()
            .connector()
            .sync_status(&self.feed.name)
    }
}

impl Admin<'_> {
    fn registry(&self) -> &Registry {
        &self.access.registry
    }

    fn auth(&self) -> &Auth {
        &self.access.auth
    }

    /// Creates a feed with its settings.
    pub fn create_feed(&self, feed: &FeedName, change: FeedChange) -> Result<FeedSettings, Error> {
        if let Some(permitted) = &change.permitted {
            for pattern in permitted {
                super::versioning::check_pattern(pattern)?;
            }
        }
        self.registry().feeds().create(feed, self.caller.user())?;
        let created = self
            .registry()
            .feeds()
            .update(feed.as_str(), change, self.caller.user())?;
        tracing::info!(
            actor = self.caller.user(),
            feed = feed.as_str(),
            "feed created"
        );
        Ok(created)
    }

    pub fn delete_feed(&self, feed: &FeedName) -> Result<(), Error> {
        self.registry().feeds().delete(feed, self.caller.user())?;
        tracing::info!(
            actor = self.caller.user(),
            feed = feed.as_str(),
            "feed deleted"
        );
        Ok(())
    }

    /// Every feed, whoever may pull it.
    pub fn feeds(&self) -> Result<Vec<(String, FeedSettings)>, Error> {
        self.registry().feeds().list()
    }

    pub fn users(&self) -> Result<Vec<UserInfo>, Error> {
        self.auth().users().list(self.caller)
    }

    /// Every API key.
    pub fn keys(&self) -> Result<Vec<KeyInfo>, Error> {
        self.auth().keys().list(self.caller)
    }

    pub fn create_user(
        &self,
        name: &str,
        password: Option<&str>,
        admin: bool,
    ) -> Result<Option<String>, Error> {
        self.auth()
            .users()
            .create(self.caller, name, password, admin)
    }

    pub fn update_user(
        &self,
        name: &str,
        disabled: Option<bool>,
        admin: Option<bool>,
    ) -> Result<(), Error> {
        self.auth()
            .users()
            .update(self.caller, name, disabled, admin)
    }

    /// Sets another user's password (or the administrator's own).
    pub fn set_password(&self, name: &str, password: &str) -> Result<(), Error> {
        self.auth()
            .users()
            .set_password(self.caller, name, password)
    }

    pub fn gc(&self, opts: GcOptions) -> Result<GcReport, Error> {
        self.registry()
            .maintenance()
            .gc_by(opts, &|_, _, _| {}, self.caller.user())
    }

    pub fn backup(&self, dir: &Path) -> Result<BackupReport, Error> {
        self.registry().maintenance().backup(dir, &|_, _, _| {})
    }

    /// Turns read-only mode on (with a reason) or off, audited as the caller.
    pub fn set_read_only(&self, on: bool, reason: &str) -> Result<Option<ReadOnly>, Error> {
        self.registry()
            .maintenance()
            .set_read_only(on, reason, self.caller.user())
    }

    /// Storage of every feed.
    pub fn storage(&self) -> Result<StorageStats, Error> {
        self.registry().maintenance().storage()
    }

    /// The last garbage collection's report, if one ran since the start.
    #[must_use]
    pub fn last_gc(&self) -> Option<GcReport> {
        self.registry().maintenance().last_gc()
    }

    /// Per feed: (feed, when, deletions) of its last retention run since the start.
    #[must_use]
    pub fn last_retention(&self) -> Vec<(String, u64, u64)> {
        self.registry().maintenance().last_retention()
    }
}

impl Account<'_> {
    /// The time `days` days from now on the registry's clock (a key's expiry).
    #[must_use]
    pub fn days_from_now(&self, days: u64) -> u64 {
        self.access
            .registry
            .clock()
            .now()
            .saturating_add(days.saturating_mul(86_400))
    }

    /// The caller's keys (every key for an administrator).
    pub fn keys(&self) -> Result<Vec<KeyInfo>, Error> {
        self.access.auth.keys().list(self.caller)
    }

    pub fn create_key(
        &self,
        owner: Option<&str>,
        name: &str,
        roles: &std::collections::BTreeMap<String, String>,
        admin: bool,
        expires: Option<u64>,
    ) -> Result<NewKey, Error> {
        self.access
            .auth
            .keys()
            .create(self.caller, owner, name, roles, admin, expires)
    }

    pub fn revoke_key(&self, id: &str) -> Result<(), Error> {
        self.access.auth.keys().revoke(self.caller, id)
    }

    /// Every role the key owner `owner` (the caller's user by default) holds now, to give
    /// a key the same.
    pub fn roles_of(
        &self,
        owner: Option<&str>,
    ) -> Result<std::collections::BTreeMap<String, String>, Error> {
        self.access
            .auth
            .keys()
            .roles_of_user(owner.unwrap_or(self.caller.user()))
    }

    /// Sets the password of `name`: the caller's own, or anyone's for an administrator.
    pub fn set_password(&self, name: &str, password: &str) -> Result<(), Error> {
        self.access
            .auth
            .users()
            .set_password(self.caller, name, password)
    }

    /// Changes the caller's own password, given the current one (checked like a login
    /// from `client`).
    pub fn change_own_password(
        &self,
        current: &str,
        password: &str,
        client: std::net::IpAddr,
    ) -> Result<(), Error> {
        self.access
            .auth
            .users()
            .change_own_password(self.caller, current, password, client)
    }

    /// The account's credential epoch, after a change made through this caller.
    pub fn epoch(&self) -> Result<u64, Error> {
        self.access.auth.epoch(self.caller)
    }
}
