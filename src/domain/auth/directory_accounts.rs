//! Directory and identity-provider accounts: logins through LDAP or OIDC, one account per
//! directory entry, and the periodic refresh that follows the directory's changes.

#[allow(clippy::wildcard_imports)]
use super::*;
use crate::domain::directory::REFRESH;

impl Auth {
    // ---- the company directory ----

    /// Logs in `name` with the directory's password: creates or updates the local account
    /// (a directory account) and its group roles. The account is the directory's name of
    /// the entry (`DirectoryUser::name`), whatever spelling of it was typed.
    pub(super) fn directory_login(
        &self,
        dir: &crate::domain::directory::Directory,
        name: &str,
        password: &str,
    ) -> Result<Principal, Error> {
        let Some(ldap) = dir.ldap() else {
            return Err(Error::InvalidCredentials);
        };
        let found = ldap.verify(name, password).map_err(|e| {
            tracing::warn!(user = name, error = %e, "directory login failed");
            Error::Unavailable(format!(
                "{e}; directory accounts cannot log in until it answers (local accounts can)"
            ))
        })?;
        let Some(found) = found else {
            return Err(Error::InvalidCredentials);
        };
        let roles = dir.resolve(&found, self.clock.now_ms());
        let admin = roles.admin;
        let name = found.name;
        self.meta.write(|w| {
            if spelling_disabled_here(&*w, &name)? {
                return Err(Error::InvalidCredentials);
            }
            self.store_directory_account_in(w, &name, Some(&roles), true, DIRECTORY_PASSWORD)
        })?;
        Ok(Principal::User { name, admin })
    }

    /// Writes what the directory said of `name`, inside the write transaction `w`: its group
    /// roles (`None`: no longer found, which disables the account). A change of the roles or
    /// flags voids its tokens and sessions. `login` records a login too.
    pub(super) fn store_directory_account_in(
        &self,
        w: &mut dyn MetaWrite,
        name: &str,
        roles: Option<&crate::domain::directory::GroupRoles>,
        login: bool,
        marker: &str,
    ) -> Result<(), Error> {
        let now = self.clock.now();
        {
            let before = w.user(name)?;
            if before.as_ref().is_some_and(|u| u.password_hash != marker) {
                // A local account of the same name is never taken over by the directory.
                return Err(Error::InvalidCredentials);
            }
            let old_roles: Option<crate::domain::directory::GroupRoles> = ROLES.get(w, name)?;
            // Disabled while the directory still had the account: an administrator did it
            // here, and the directory does not undo it (the directory's own disabling
            // leaves roles with no DN).
            let disabled_here = before.as_ref().is_some_and(|u| u.disabled)
                && old_roles.as_ref().is_some_and(|r| !r.dn.is_empty());
            if disabled_here && login {
                return Err(Error::InvalidCredentials);
            }
            let record = UserRecord {
                password_hash: marker.to_owned(),
                admin: roles.as_ref().is_some_and(|r| r.admin),
                disabled: roles.is_none() || disabled_here,
                created: before.as_ref().map_or(now, |u| u.created),
                last_login: if login {
                    Some(now)
                } else {
                    before.as_ref().and_then(|u| u.last_login)
                },
            };
            let changed = before
                .as_ref()
                .is_none_or(|u| u.admin != record.admin || u.disabled != record.disabled)
                || old_roles.as_ref().map(|r| (&r.feeds, r.admin))
                    != roles.as_ref().map(|r| (&r.feeds, r.admin));
            let minute_passed = before
                .as_ref()
                .and_then(|u| u.last_login)
                .is_none_or(|t| now.saturating_sub(t) > 60);
            if !(changed || login && minute_passed) {
                // Only the time of the check: kept without a new generation of everything.
                if let Some(r) = roles {
                    ROLES.put(w, name, r)?;
                }
                return Ok(());
            }
            w.put_user(name, &record)?;
            let mut stored = roles.cloned().unwrap_or_default();
            if roles.is_none()
                && let Some(old) = &old_roles
            {
                // Who owned an `OpenID Connect` account outlives its disabling.
                stored.issuer.clone_from(&old.issuer);
                stored.subject = if old.subject.is_empty() && marker != DIRECTORY_PASSWORD {
                    old.dn.clone()
                } else {
                    old.subject.clone()
                };
            }
            ROLES.put(w, name, &stored)?;
            if changed {
                bump_epoch(w, name)?;
                let summary = match roles {
                    Some(r) => format!(
                        "directory account {name}: administrator {}, roles {:?}",
                        r.admin, r.feeds
                    ),
                    None => {
                        format!(
                            "directory account {name} disabled: the directory no longer has it under this name"
                        )
                    }
                };
                audit::append(
                    w,
                    &self.clock,
                    audit::entry(Kind::UserChanged, "directory", "", summary),
                )?;
            }
            if login && minute_passed {
                audit::append(
                    w,
                    &self.clock,
                    audit::entry(
                        Kind::Login,
                        name,
                        "",
                        format!("{name} logged in (directory)"),
                    ),
                )?;
            }
            Ok::<_, Error>(())
        }
    }

    /// Refuses a directory account whose roles the directory has not confirmed for twice
    /// the cache time (it could not be asked): fails closed. Local accounts pass.
    pub(super) fn directory_current(
        &self,
        r: &dyn crate::store::meta::MetaRead,
        name: &str,
        user: &UserRecord,
    ) -> Result<(), Error> {
        if !crate::domain::directory::is_directory_account(&user.password_hash) {
            return Ok(());
        }
        let Some(dir) = self.directory.get() else {
            return Err(Error::InvalidCredentials);
        };
        let checked = ROLES.get(r, name)?.map_or(0, |g| g.checked_ms);
        let limit = u64::try_from(dir.cache.as_millis() * 2).unwrap_or(u64::MAX) + 5_000;
        if self.clock.now_ms().saturating_sub(checked) > limit {
            return Err(Error::Unavailable(format!(
                "the directory has not confirmed {name}'s account recently (it could not be asked); directory accounts are refused until it answers"
            )));
        }
        Ok(())
    }

    /// The role `name`'s directory groups give on `feed`; without a directory nothing is
    /// read (this is on every authorization).
    pub(super) fn directory_role(
        &self,
        r: &dyn crate::store::meta::MetaRead,
        name: &str,
        feed: &str,
    ) -> Result<Caps, Error> {
        if self.directory.get().is_none() {
            return Ok(Caps::NONE);
        }
        Ok(ROLES
            .get(r, name)?
            .and_then(|g| g.role(feed))
            .map_or(Caps::NONE, Role::caps))
    }
}

/// Directory accounts (`auth.directory()`): OIDC sign-in and the LDAP/OIDC account refresh.
#[derive(Clone, Copy)]
pub struct DirectoryAccounts<'a> {
    pub(super) auth: &'a Auth,
}

impl DirectoryAccounts<'_> {
    /// The directory, when it has an `OpenID Connect` provider.
    #[must_use]
    pub fn oidc(&self) -> Option<Arc<crate::domain::directory::Directory>> {
        self.auth
            .directory
            .get()
            .filter(|d| d.oidc().is_some())
            .cloned()
    }

    /// The label of the `OpenID Connect` sign-in button, when a provider is configured.
    #[must_use]
    pub fn oidc_label(&self) -> Option<String> {
        self.auth
            .directory
            .get()
            .and_then(|d| d.oidc())
            .map(|o| o.label().to_owned())
    }

    /// Signs in a user the `OpenID Connect` provider vouched for (`clients::oidc` checked the
    /// ID token): creates or updates their account and group roles, and keeps the refresh
    /// token the provider issued, if any, for later checks.
    pub fn oidc_sign_in(&self, user: &crate::clients::oidc::OidcUser) -> Result<Principal, Error> {
        use crate::domain::directory::OIDC_PASSWORD;
        let dir = self
            .auth
            .directory
            .get()
            .cloned()
            .ok_or(Error::InvalidCredentials)?;
        let issuer = dir
            .oidc()
            .map(|o| o.issuer().to_owned())
            .unwrap_or_default();
        let claimed = crate::clients::ldap::normalize_name(&user.name);
        check_user_name(&claimed).map_err(|_| {
            Error::Invalid(format!(
                "the provider names this account {:?}, which is not a semdock user name (1 to 64 of a-z 0-9 . _ -): set directory.oidc.username_claim to a claim that is",
                user.name
            ))
        })?;
        let r = self.auth.meta.read()?;
        // The account is the subject's (issuer, `sub`), whatever the provider calls the
        // user today: the one it signed in as before (the one of the name claimed, if it
        // has several from before), else a new one of the name claimed.
        let mut owned = Vec::new();
        for (name, u) in r.users()? {
            if u.password_hash != OIDC_PASSWORD {
                continue;
            }
            let Some(g) = ROLES.get(&*r, &name)? else {
                continue;
            };
            if g.owned_by(&issuer, &user.subject) {
                if u.disabled && !g.dn.is_empty() {
                    // An administrator disabled one of the subject's accounts: it stays out.
                    return Err(Error::InvalidCredentials);
                }
                owned.push(name);
            }
        }
        let name = if owned.contains(&claimed) || owned.is_empty() {
            claimed
        } else {
            owned.remove(0)
        };
        let mut roles = dir.resolve(
            &crate::clients::ldap::DirectoryUser {
                dn: user.subject.clone(),
                name: name.clone(),
                groups: user.groups.clone(),
            },
            self.auth.clock.now_ms(),
        );
        roles.issuer.clone_from(&issuer);
        roles.subject.clone_from(&user.subject);
        let before = r.user(&name)?;
        if let Some(b) = &before
            && b.password_hash != OIDC_PASSWORD
        {
            return Err(Error::Invalid(format!(
                "{name} is a {} account of semdock: the provider's user of that name cannot sign in as it",
                if b.password_hash == DIRECTORY_PASSWORD {
                    "directory (LDAP)"
                } else {
                    "local"
                }
            )));
        }
        let stored = ROLES.get(&*r, &name)?;
        if stored.is_some_and(|g| g.has_owner() && !g.owned_by(&issuer, &user.subject)) {
            return Err(Error::Invalid(format!(
                "the account {name} belongs to another user of the provider (another subject): an administrator must delete it first"
            )));
        }
        drop(r);
        // The account and its refresh token in one transaction.
        self.auth.meta.write(|w| {
            self.auth
                .store_directory_account_in(w, &name, Some(&roles), true, OIDC_PASSWORD)?;
            if let Some(t) = &user.refresh_token {
                REFRESH.put(w, &name, t)?;
            }
            Ok::<_, Error>(())
        })?;
        Ok(Principal::User {
            name,
            admin: roles.admin,
        })
    }

    /// Asks the directory again about each directory account checked longer than half the
    /// cache time ago, on the node holding the directory lock (a refresh token may be
    /// rotated by its use: two nodes must not spend the same one); answers how many were
    /// asked. Run on a schedule.
    pub fn refresh(&self) -> Result<usize, Error> {
        use crate::domain::directory::OIDC_PASSWORD;
        let Some(dir) = self.auth.directory.get() else {
            return Ok(0);
        };
        let Some(_lock) = self.auth.meta.try_exclusive(DIRECTORY_LOCK)? else {
            return Ok(0);
        };
        let now = self.auth.clock.now_ms();
        let half = u64::try_from(dir.cache.as_millis() / 2).unwrap_or(u64::MAX);
        let due: Vec<(String, String)> = {
            let r = self.auth.meta.read()?;
            let mut due = Vec::new();
            for (name, u) in r.users()? {
                if !crate::domain::directory::is_directory_account(&u.password_hash) || u.disabled {
                    continue;
                }
                let checked = ROLES.get(&*r, &name)?.map_or(0, |g| g.checked_ms);
                if now.saturating_sub(checked) >= half {
                    due.push((name, u.password_hash));
                }
            }
            due
        };
        // Everything the directory said, written in one transaction at the end: one new
        // metadata generation per round however many accounts were asked.
        let mut answers: Vec<(&str, &str, Option<GroupRoles>, Option<String>)> = Vec::new();
        for (name, marker) in &due {
            if marker == DIRECTORY_PASSWORD {
                let Some(ldap) = dir.ldap() else { continue };
                match ldap.find(name) {
                    Ok(found) => {
                        // An account stored under another spelling of the entry's name
                        // (before names were normalised: `ALICE` beside `alice`) is not
                        // the entry's account: it is disabled, its rights and keys end.
                        let found = found.filter(|f| f.name == *name);
                        let roles = found.map(|f| dir.resolve(&f, now));
                        answers.push((name, marker, roles, None));
                    }
                    Err(e) => {
                        tracing::warn!(user = name, error = %e, "could not ask the directory");
                    }
                }
                continue;
            }
            let Some(oidc) = dir.oidc() else { continue };
            let r = self.auth.meta.read()?;
            let Some(token) = REFRESH.get(&*r, name)? else {
                // No refresh token: nothing to ask with; the account fails closed in time.
                continue;
            };
            let subject = ROLES.get(&*r, name)?.map(|g| g.dn).unwrap_or_default();
            drop(r);
            match oidc.refresh(&token) {
                Ok(found) => {
                    let found = found.filter(|u| u.subject == subject);
                    let roles = found.as_ref().map(|u| {
                        let du = crate::clients::ldap::DirectoryUser {
                            dn: u.subject.clone(),
                            name: name.clone(),
                            groups: u.groups.clone(),
                        };
                        let mut roles = dir.resolve(&du, now);
                        oidc.issuer().clone_into(&mut roles.issuer);
                        roles.subject.clone_from(&u.subject);
                        roles
                    });
                    let rotated = found.and_then(|u| u.refresh_token);
                    answers.push((name, OIDC_PASSWORD, roles, rotated));
                }
                Err(e) => {
                    tracing::warn!(user = name, error = %e, "could not ask the OpenID Connect provider");
                }
            }
        }
        let asked = answers.len();
        if asked > 0 {
            self.auth.meta.write(|w| {
                for (name, marker, roles, rotated) in &answers {
                    self.auth
                        .store_directory_account_in(w, name, roles.as_ref(), false, marker)?;
                    match (roles, rotated) {
                        (Some(_), Some(t)) => REFRESH.put(w, name, t)?,
                        (None, _) if *marker == OIDC_PASSWORD => {
                            REFRESH.remove(w, name)?;
                        }
                        _ => {}
                    }
                }
                Ok::<_, Error>(())
            })?;
        }
        Ok(asked)
    }
}
