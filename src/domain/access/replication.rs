//! Replication rules through the caller: a feed's administrators manage its rules (where its
//! images may be pushed is theirs to say, within the outbound policy, as for its connector
//! and webhooks); administrators manage every rule. Whether a rule exists is told only to
//! those who may manage it.

use super::{Access, FeedAdmin};
use crate::domain::Error;
use crate::domain::replication::replica::Replica;
use crate::domain::replication::{NewRule, RuleChange, RuleInfo, RunReport};

/// A replication rule the caller administers.
pub struct ReplicationRule<'a> {
    access: &'a Access,
    name: String,
}

impl Access {
    /// The rules the caller administers: every one for administrators, those of `feed` for
    /// its administrators.
    pub fn replication_rules(&self, feed: Option<&str>) -> Result<Vec<RuleInfo>, Error> {
        if let Some(feed) = feed {
            self.feed::<FeedAdmin>(feed)?;
            Ok(self
                .registry
                .replication()
                .list()?
                .into_iter()
                .filter(|r| r.feed == feed)
                .collect())
        } else {
            self.admin()?;
            self.registry.replication().list()
        }
    }

    /// Creates a replication rule of a feed the caller administers.
    pub fn create_replication_rule(&self, new: &NewRule) -> Result<RuleInfo, Error> {
        self.feed::<FeedAdmin>(&new.feed)?;
        self.registry.replication().create(new, self.actor())
    }

    /// Rule `name`, when the caller administers its feed.
    pub fn replication_rule(&self, name: &str) -> Result<ReplicationRule<'_>, Error> {
        let is_admin = self
            .principal()
            .is_some_and(crate::domain::auth::Principal::is_admin);
        if !is_admin {
            match self.registry.replication().feed_of(name) {
                Ok(feed) => {
                    self.feed::<FeedAdmin>(&feed)?;
                }
                Err(Error::NotFound(_)) => {
                    self.admin()?;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(ReplicationRule {
            access: self,
            name: name.to_owned(),
        })
    }
}

impl super::Feed<'_, super::Pull> {
    /// The feed's replica setting, if it is a replica.
    pub fn replica(&self) -> Result<Option<Replica>, Error> {
        self.registry().replication().replica(self.name())
    }
}

impl super::Feed<'_, FeedAdmin> {
    /// Makes the feed a replica of `source`, changed only by `writers`.
    pub fn set_replica(&self, source: &str, writers: &[String]) -> Result<Replica, Error> {
        self.registry()
            .replication()
            .set_replica(self.name(), source, writers, self.access.actor())
    }

    /// Makes the feed the primary again.
    pub fn clear_replica(&self) -> Result<(), Error> {
        self.registry()
            .replication()
            .clear_replica(self.name(), self.access.actor())
    }

    /// Appends tag history carried from another semdock to `repo` of this feed; answers how
    /// many entries were new.
    pub fn carry_history(
        &self,
        repo: &crate::model::Repository,
        carried: &crate::domain::replication::Carried,
    ) -> Result<usize, Error> {
        let repo = self.own(repo)?;
        self.registry().append_carried(repo, carried)
    }
}

impl ReplicationRule<'_> {
    pub fn get(&self) -> Result<RuleInfo, Error> {
        self.access.registry.replication().get(&self.name)
    }

    pub fn update(&self, change: &RuleChange) -> Result<RuleInfo, Error> {
        self.access
            .registry
            .replication()
            .update(&self.name, change, self.access.actor())
    }

    pub fn delete(&self) -> Result<(), Error> {
        self.access
            .registry
            .replication()
            .delete(&self.name, self.access.actor())
    }

    /// A full run at the next tick, on whichever node takes the rule.
    pub fn request_run(&self) -> Result<(), Error> {
        self.access
            .registry
            .replication()
            .request_full_run(&self.name)
    }

    /// A full run now; its report.
    pub fn run(&self) -> Result<RunReport, Error> {
        self.access.registry.replication().run_now(&self.name)
    }
}
