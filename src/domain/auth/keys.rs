//! API keys: created with at most their owner's roles, listed, revoked.

#[allow(clippy::wildcard_imports)]
use super::*;
use crate::domain::directory::ROLES;

impl Auth {
    // ---- API keys ----
}

/// API keys (`auth.keys()`): create, list, revoke; the roles a key may hold.
#[derive(Clone, Copy)]
pub struct Keys<'a> {
    pub(super) auth: &'a Auth,
}

impl Keys<'_> {
    /// Creates an API key for `owner` (the actor itself unless an administrator names
    /// another) with `roles` per feed; returns the key, shown this once.
    pub fn create(
        &self,
        actor: &Caller,
        owner: Option<&str>,
        name: &str,
        roles: &std::collections::BTreeMap<String, String>,
        admin: bool,
        expires: Option<u64>,
    ) -> Result<NewKey, Error> {
        let owner = owner.unwrap_or(actor.user()).to_owned();
        if owner != actor.user() {
            Auth::require_admin(actor)?;
        }
        require_account_rights(actor)?;
        if name.trim().is_empty() || name.len() > 100 {
            return Err(Error::Invalid(
                "a key needs a name of 1 to 100 characters".into(),
            ));
        }
        if expires.is_some_and(|e| e <= self.auth.clock.now()) {
            return Err(Error::Invalid("the expiry time is in the past".into()));
        }
        let roles = roles
            .iter()
            .map(|(feed, role)| Ok((feed.clone(), parse_role(role)?)))
            .collect::<Result<Vec<_>, Error>>()?;
        let id = hex::encode(random_bytes::<8>());
        let secret = hex::encode(random_bytes::<32>());
        let hash = *blake3::keyed_hash(&self.auth.hash_key, secret.as_bytes()).as_bytes();
        self.auth.meta.write(|w| {
            let owner_record = w
                .user(&owner)?
                .ok_or_else(|| Error::NotFound(format!("user {owner:?} does not exist")))?;
            for (feed, _) in &roles {
                if w.feed(feed)?.is_none() {
                    return Err(Error::FeedUnknown { feed: feed.clone() });
                }
            }
            w.put_api_key(
                &id,
                &ApiKeyRecord {
                    name: name.to_owned(),
                    owner: owner.clone(),
                    hash,
                    admin: admin && owner_record.admin,
                    created: self.auth.clock.now(),
                    expires,
                },
            )?;
            for (feed, role) in &roles {
                w.set_grant(&key_subject(&id), feed, role.as_str())?;
            }
            let held: Vec<String> = roles
                .iter()
                .map(|(feed, role)| format!("{feed}={}", role.as_str()))
                .collect();
            let admin = if admin && owner_record.admin {
                ", administrator"
            } else {
                ""
            };
            audit::append(
                w,
                &self.auth.clock,
                audit::entry(
                    Kind::KeyCreated,
                    actor.user(),
                    "",
                    format!(
                        "API key {id} ({name}) for {owner}: [{}]{admin}",
                        held.join(", ")
                    ),
                ),
            )?;
            Ok(())
        })?;
        tracing::info!(actor = actor.user(), key = id, owner, "API key created");
        Ok(NewKey {
            key: format!("{KEY_PREFIX}{id}_{secret}"),
            id,
        })
    }

    /// Every role `user` holds, feed → role.
    pub fn roles_of_user(
        &self,
        user: &str,
    ) -> Result<std::collections::BTreeMap<String, String>, Error> {
        let r = self.auth.meta.read()?;
        let mut roles: std::collections::BTreeMap<String, String> =
            r.grants_of(&user_subject(user))?.into_iter().collect();
        // A directory account's group roles count as its own (the higher of the two).
        let groups = ROLES.get(&*r, user)?;
        for (feed, role) in groups.map(|g| g.feeds).unwrap_or_default() {
            let higher = |a: &str, b: &str| {
                let (a, b) = (parse_role(a), parse_role(b));
                matches!((a, b), (Ok(a), Ok(b)) if a.caps().join(b.caps()) == a.caps())
            };
            match roles.get(&feed) {
                Some(own) if higher(own, &role) => {}
                _ => {
                    roles.insert(feed, role);
                }
            }
        }
        Ok(roles)
    }

    /// Keys the actor may see: its own, or all for an administrator.
    pub fn list(&self, actor: &Caller) -> Result<Vec<KeyInfo>, Error> {
        require_account_rights(actor)?;
        let r = self.auth.meta.read()?;
        let mut out = Vec::new();
        for (id, k) in r.api_keys()? {
            if !actor.is_admin() && k.owner != actor.user() {
                continue;
            }
            out.push(KeyInfo {
                roles: roles_of(&r.grants_of(&key_subject(&id))?),
                id,
                name: k.name,
                owner: k.owner,
                admin: k.admin,
                created: k.created,
                expires: k.expires,
            });
        }
        Ok(out)
    }

    /// Revokes a key at once: its tokens stop working too.
    pub fn revoke(&self, actor: &Caller, id: &str) -> Result<(), Error> {
        // Any key may revoke itself (`semdock logout`): that only ever takes rights away.
        let itself = matches!(&actor.principal, Principal::Key { id: own, .. } if own == id);
        if !itself {
            require_account_rights(actor)?;
        }
        self.auth.meta.write(|w| {
            let key = w
                .api_key(id)?
                .ok_or_else(|| Error::NotFound(format!("API key {id:?} does not exist")))?;
            if !actor.is_admin() && key.owner != actor.user() {
                return Err(Error::Denied(format!(
                    "{} may not revoke key {id:?}",
                    describe(actor)
                )));
            }
            w.remove_api_key(id)?;
            for (feed, _) in w.grants_of(&key_subject(id))? {
                w.remove_grant(&key_subject(id), &feed)?;
            }
            audit::append(
                w,
                &self.auth.clock,
                audit::entry(
                    Kind::KeyRevoked,
                    actor.user(),
                    "",
                    format!("API key {id} ({}) of {} revoked", key.name, key.owner),
                ),
            )?;
            Ok(())
        })?;
        tracing::info!(actor = actor.user(), key = id, "API key revoked");
        Ok(())
    }
}
