//! Authorization: what a principal may do in a feed, from its grants, keys and the
//! anonymous switch.

#[allow(clippy::wildcard_imports)]
use super::*;

impl Auth {
    // ---- authorization ----

    /// What `principal` (or an anonymous caller) may do in `feed`.
    pub fn caps(&self, principal: Option<&Principal>, feed: &str) -> Result<Caps, Error> {
        let generation = self.meta.generation();
        let r = self.meta.read()?;
        let Some(feed_record) = r.feed(feed)? else {
            return Ok(Caps::NONE);
        };
        let anonymous = if feed_record.anonymous_pull {
            Role::Pull.caps()
        } else {
            Caps::NONE
        };
        let granted = |subject: &str| -> Result<Caps, Error> {
            Ok(r.grant(subject, feed)?
                .and_then(|role| role.parse::<Role>().ok())
                .map_or(Caps::NONE, Role::caps))
        };
        let own = match principal {
            None => {
                self.anonymous
                    .put(feed.to_owned(), generation, anonymous, feed.len() + 64);
                Caps::NONE
            }
            Some(p) if p.is_admin() => Caps::ALL,
            Some(Principal::User { name, .. }) => {
                granted(&user_subject(name))?.join(self.directory_role(&*r, name, feed)?)
            }
            Some(Principal::Key { id, owner, .. }) => {
                let owner_caps = if r.user(owner)?.is_some_and(|u| u.admin) {
                    Caps::ALL
                } else {
                    granted(&user_subject(owner))?.join(self.directory_role(&*r, owner, feed)?)
                };
                granted(&key_subject(id))?.meet(owner_caps)
            }
            Some(Principal::Robot { name }) => granted(&robots::robot_subject(name))?,
        };
        // A replica feed takes changes only from its replication's accounts.
        let replica = crate::domain::replication::replica::of(&*r, feed)?;
        Ok(crate::domain::replication::replica::limit(
            replica.as_ref(),
            principal.map(Principal::user),
            own.join(anonymous),
        ))
    }

    /// The feeds whose repositories the caller may pull.
    pub fn pullable_feeds(
        &self,
        principal: Option<&Principal>,
    ) -> Result<std::collections::HashSet<String>, Error> {
        let feeds = self.meta.read()?.feeds()?;
        let mut out = std::collections::HashSet::new();
        for (feed, _) in feeds {
            if self.caps(principal, &feed)?.allows(Action::Pull) {
                out.insert(feed);
            }
        }
        Ok(out)
    }

    /// Requires `action` on `feed`: `Denied` for a known caller, `Unauthenticated` for none.
    pub fn require(
        &self,
        principal: Option<&Principal>,
        feed: &str,
        action: Action,
    ) -> Result<(), Error> {
        if self.caps(principal, feed)?.allows(action) {
            return Ok(());
        }
        Err(match principal {
            None => Error::Unauthenticated,
            // A known caller learns that the feed is missing; an anonymous one does not.
            Some(_) if self.meta.read()?.feed(feed)?.is_none() => Error::FeedUnknown {
                feed: feed.to_owned(),
            },
            Some(p) => Error::Denied(format!("{} may not {action} in feed {feed:?}", describe(p))),
        })
    }

    /// Who holds which role on `feed`, as (`user:NAME` or `key:ID`, role); feed admins only.
    pub fn feed_grants(
        &self,
        actor: &Principal,
        feed: &str,
    ) -> Result<Vec<(String, String)>, Error> {
        self.require(Some(actor), feed, Action::Admin)?;
        Ok(self.meta.read()?.grants_on(feed)?)
    }

    /// Whether the first administrator has never logged in (the UI then points at the
    /// initial password file).
    pub fn first_login_pending(&self) -> Result<bool, Error> {
        Ok(self
            .meta
            .read()?
            .user(INITIAL_ADMIN)?
            .is_some_and(|u| u.last_login.is_none()))
    }

    /// Requires a global administrator: `Denied` otherwise.
    pub fn require_admin(actor: &Principal) -> Result<(), Error> {
        if actor.is_admin() {
            Ok(())
        } else {
            Err(Error::Denied(format!(
                "{} is not an administrator",
                describe(actor)
            )))
        }
    }
}
