//! Accounts: users, their passwords and roles; the last administrator stays.

#[allow(clippy::wildcard_imports)]
use super::*;

impl Auth {
    // ---- users ----

    pub(super) fn change_password(
        &self,
        name: &str,
        password: &str,
        actor: &str,
    ) -> Result<(), Error> {
        if self
            .meta
            .read()?
            .user(name)?
            .is_some_and(|u| crate::domain::directory::is_directory_account(&u.password_hash))
        {
            return Err(Error::Invalid(format!(
                "{name} is a directory account: its password is the directory's, changed there"
            )));
        }
        check_password_strength(password)?;
        let hash = hash_password(password)?;
        let entry = audit::entry(
            Kind::PasswordChanged,
            actor,
            "",
            format!("password of {name} changed"),
        );
        self.change_user(name, entry, |u| {
            u.password_hash = hash;
            Ok(())
        })?;
        tracing::info!(user = name, "password changed");
        if name == INITIAL_ADMIN {
            match std::fs::remove_file(&self.initial_password_file) {
                Ok(()) => tracing::info!(
                    file = %self.initial_password_file.display(),
                    "removed the initial password file: that password is no longer valid"
                ),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io("remove", &self.initial_password_file, &e)),
            }
        }
        Ok(())
    }

    pub(super) fn change_user(
        &self,
        name: &str,
        entry: AuditRecord,
        f: impl FnOnce(&mut UserRecord) -> Result<(), Error>,
    ) -> Result<(), Error> {
        self.meta.write(|w| {
            let mut user = w
                .user(name)?
                .ok_or_else(|| Error::NotFound(format!("user {name:?} does not exist")))?;
            let enabled_admin = |u: &UserRecord| u.admin && !u.disabled;
            let was_admin = enabled_admin(&user);
            f(&mut user)?;
            // The last enabled administrator stays one, whoever asks (the local CLI too):
            // without one nobody can manage users, feeds or keys.
            if was_admin
                && !enabled_admin(&user)
                && !w
                    .users()?
                    .iter()
                    .any(|(n, u)| n != name && enabled_admin(u))
            {
                return Err(Error::Conflict(last_admin_message(name)));
            }
            w.put_user(name, &user)?;
            bump_epoch(w, name)?;
            audit::append(w, &self.clock, entry)?;
            Ok::<_, Error>(())
        })?;
        self.verified
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(name);
        Ok(())
    }
}

/// Users (`auth.users()`): list, create, change, passwords and grants.
#[derive(Clone, Copy)]
pub struct Users<'a> {
    pub(super) auth: &'a Auth,
}

impl Users<'_> {
    pub fn list(&self, actor: &Principal) -> Result<Vec<UserInfo>, Error> {
        Auth::require_admin(actor)?;
        let r = self.auth.meta.read()?;
        r.users()?
            .into_iter()
            .map(|(name, u)| {
                Ok(UserInfo {
                    roles: roles_of(&r.grants_of(&user_subject(&name))?),
                    name,
                    admin: u.admin,
                    disabled: u.disabled,
                    created: u.created,
                    last_login: u.last_login,
                })
            })
            .collect()
    }

    /// Creates a user; with no password given, generates one and returns it.
    pub fn create(
        &self,
        actor: &Principal,
        name: &str,
        password: Option<&str>,
        admin: bool,
    ) -> Result<Option<String>, Error> {
        Auth::require_admin(actor)?;
        check_user_name(name)?;
        let generated = password.is_none().then(random_password);
        let password = password.or(generated.as_deref()).unwrap_or_default();
        check_password_strength(password)?;
        let hash = hash_password(password)?;
        self.auth.meta.write(|w| {
            if w.user(name)?.is_some() {
                return Err(Error::Conflict(format!("user {name:?} already exists")));
            }
            w.put_user(
                name,
                &UserRecord {
                    password_hash: hash,
                    admin,
                    disabled: false,
                    created: self.auth.clock.now(),
                    last_login: None,
                },
            )?;
            let role = if admin { " (administrator)" } else { "" };
            audit::append(
                w,
                &self.auth.clock,
                audit::entry(
                    Kind::UserCreated,
                    actor.user(),
                    "",
                    format!("user {name} created{role}"),
                ),
            )?;
            Ok(())
        })?;
        tracing::info!(actor = actor.user(), user = name, admin, "user created");
        Ok(generated)
    }

    /// Changes a user's flags; `None` leaves one as it is. The last enabled administrator
    /// can be neither disabled nor demoted (`Conflict`); any other may, themselves included.
    pub fn update(
        &self,
        actor: &Principal,
        name: &str,
        disabled: Option<bool>,
        admin: Option<bool>,
    ) -> Result<(), Error> {
        Auth::require_admin(actor)?;
        let mut said = Vec::new();
        if let Some(d) = disabled {
            said.push(if d { "disabled" } else { "enabled" });
        }
        if let Some(a) = admin {
            said.push(if a {
                "made an administrator"
            } else {
                "no longer an administrator"
            });
        }
        let entry = audit::entry(
            Kind::UserChanged,
            actor.user(),
            "",
            format!("user {name} {}", said.join(", ")),
        );
        self.auth.change_user(name, entry, |u| {
            if let Some(d) = disabled {
                u.disabled = d;
            }
            if let Some(a) = admin {
                u.admin = a;
            }
            Ok(())
        })?;
        tracing::info!(
            actor = actor.user(),
            user = name,
            ?disabled,
            ?admin,
            "user updated"
        );
        Ok(())
    }

    /// Sets a password: administrators for anyone, users for themselves; with the
    /// account's own password or UI session (or an administrator's key).
    pub fn set_password(&self, actor: &Caller, name: &str, password: &str) -> Result<(), Error> {
        require_account_rights(actor)?;
        if !(actor.is_admin()
            || matches!(&actor.principal, Principal::User { name: n, .. } if n == name))
        {
            return Err(Error::Denied(format!(
                "{} may not change the password of {name:?}",
                describe(actor)
            )));
        }
        self.auth.change_password(name, password, actor.user())
    }

    /// Changes the caller's own password after checking the current one, as a login from
    /// `client` (rate-limited and audited the same way): the UI's "change my password".
    pub fn change_own_password(
        &self,
        actor: &Caller,
        current: &str,
        password: &str,
        client: IpAddr,
    ) -> Result<(), Error> {
        require_account_rights(actor)?;
        let Principal::User { name, .. } = &actor.principal else {
            return Err(Error::Denied(format!(
                "{} is an API key: only a user has a password",
                describe(actor)
            )));
        };
        if self
            .auth
            .meta
            .read()?
            .user(name)?
            .is_some_and(|u| crate::domain::directory::is_directory_account(&u.password_hash))
        {
            return Err(Error::Invalid(format!(
                "{name} is a directory account: its password is the directory's, changed there"
            )));
        }
        check_password_strength(password)?;
        match self.auth.login(name, current, client) {
            Ok(_) => {}
            Err(Error::InvalidCredentials) => {
                return Err(Error::Invalid(
                    "the current password is not right: the password was not changed".into(),
                ));
            }
            Err(e) => return Err(e),
        }
        self.auth.change_password(name, password, name)
    }

    /// Sets a password with no actor: the offline recovery path (`semdock user reset-password`).
    pub fn reset_password(&self, name: &str, password: &str) -> Result<(), Error> {
        self.auth.change_password(name, password, "local recovery")
    }

    /// Grants `role` on `feed` to user `name`, or removes the grant with `None`. Feed admins may
    /// grant on their feed; only administrators may grant `admin`.
    pub fn grant(
        &self,
        actor: &Principal,
        name: &str,
        feed: &str,
        role: Option<&str>,
    ) -> Result<(), Error> {
        let role = role.map(parse_role).transpose()?;
        self.auth.require(Some(actor), feed, Action::Admin)?;
        self.auth.meta.write(|w| {
            if w.user(name)?.is_none() {
                return Err(Error::NotFound(format!("user {name:?} does not exist")));
            }
            if w.feed(feed)?.is_none() {
                return Err(Error::FeedUnknown {
                    feed: feed.to_owned(),
                });
            }
            let held = w
                .grant(&user_subject(name), feed)?
                .and_then(|r| r.parse::<Role>().ok());
            // Feed admins manage the roles below theirs; the admin role of a feed is given
            // and taken by administrators only.
            if (role == Some(Role::Admin) || held == Some(Role::Admin)) && !actor.is_admin() {
                return Err(Error::Denied(format!(
                    "{} may not grant or remove the admin role on feed {feed:?}: only administrators may",
                    describe(actor)
                )));
            }
            let entry = if let Some(role) = role {
                w.set_grant(&user_subject(name), feed, role.as_str())?;
                audit::entry(
                    Kind::RoleGranted,
                    actor.user(),
                    feed,
                    format!("{name} given the {} role on {feed}", role.as_str()),
                )
            } else {
                w.remove_grant(&user_subject(name), feed)?;
                audit::entry(
                    Kind::RoleRemoved,
                    actor.user(),
                    feed,
                    format!("{name} no longer has a role on {feed}"),
                )
            };
            bump_epoch(w, name)?;
            audit::append(w, &self.auth.clock, entry)?;
            Ok(())
        })?;
        tracing::info!(
            actor = actor.user(),
            user = name,
            feed,
            ?role,
            "role granted"
        );
        Ok(())
    }
}
