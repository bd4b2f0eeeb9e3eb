//! Robot accounts, workload identity rules and search through the caller: the domain checks
//! that the caller administers the robot's feed (or the registry) with proof of the
//! account; search answers only from the feeds the caller may pull.

use super::Access;
use crate::domain::Error;
use crate::domain::auth::{RobotChange, RobotInfo, RobotSecret};

impl Access {
    fn robot_manager(&self) -> Result<&crate::domain::auth::Caller, Error> {
        self.caller.as_ref().ok_or(Error::Unauthenticated)
    }

    /// Creates robot `short` of `feed` (or of the registry); its secret is in the answer
    /// only.
    pub fn create_robot(
        &self,
        feed: Option<&str>,
        short: &str,
        description: &str,
        roles: &std::collections::BTreeMap<String, String>,
        expires: Option<u64>,
    ) -> Result<RobotSecret, Error> {
        self.auth.robots().create(
            self.robot_manager()?,
            feed,
            short,
            description,
            roles,
            expires,
        )
    }

    /// The robots of `feed` (its administrators) or every robot (administrators).
    pub fn robots(&self, feed: Option<&str>) -> Result<Vec<RobotInfo>, Error> {
        self.auth.robots().list(self.robot_manager()?, feed)
    }

    /// A new secret for robot `name`.
    pub fn rotate_robot(&self, name: &str) -> Result<RobotSecret, Error> {
        self.auth.robots().rotate(self.robot_manager()?, name)
    }

    /// Changes robot `name`.
    pub fn change_robot(&self, name: &str, change: RobotChange) -> Result<(), Error> {
        self.auth
            .robots()
            .change(self.robot_manager()?, name, change)
    }

    /// Deletes robot `name`.
    pub fn delete_robot(&self, name: &str) -> Result<(), Error> {
        self.auth.robots().delete(self.robot_manager()?, name)
    }
}

impl Access {
    /// Trusts an issuer's workload identity tokens as a robot (administrators).
    pub fn add_federation_rule(
        &self,
        rule: crate::domain::auth::FederationRule,
    ) -> Result<String, Error> {
        self.auth.federation().add(self.robot_manager()?, rule)
    }

    /// Every workload identity rule (administrators).
    pub fn federation_rules(
        &self,
    ) -> Result<Vec<(String, crate::domain::auth::FederationRule)>, Error> {
        self.auth.federation().list(self.robot_manager()?)
    }

    /// Removes workload identity rule `id` (administrators).
    pub fn remove_federation_rule(&self, id: &str) -> Result<(), Error> {
        self.auth.federation().remove(self.robot_manager()?, id)
    }
}

impl Access {
    /// Repositories, tags, digests and annotations matching `query` in the feeds the caller
    /// may pull from (anonymous callers: the feeds open to anonymous pulls).
    pub fn search(
        &self,
        query: &str,
        limit: usize,
    ) -> Result<Vec<crate::domain::search::Hit>, Error> {
        let visible = self.visible()?;
        self.registry
            .search(query, &|feed| visible.contains(feed), limit)
    }
}
