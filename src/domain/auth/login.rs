//! Authentication: who the credentials belong to (passwords, API keys, sessions, tokens),
//! rate-limited per account and per address.

#[allow(clippy::wildcard_imports)]
use super::*;

impl Auth {
    // ---- authentication ----

    /// Who the credentials belong to, and how they proved it; `None` for no credentials. The
    /// one way a request's credentials become a caller: on the management surface a registry
    /// token is refused, since it carries only repository scopes.
    pub fn caller(
        &self,
        credentials: &Credentials,
        client: IpAddr,
        surface: Surface,
    ) -> Result<Option<Caller>, Error> {
        match credentials {
            Credentials::None => Ok(None),
            Credentials::Basic { user, secret } => self.login(user, secret, client).map(Some),
            Credentials::Bearer(_) if surface == Surface::Management => Err(Error::TokenInvalid(
                "registry tokens from /v2/_auth are for the Distribution API (/v2/) only: use a password or an API key here".into(),
            )),
            Credentials::Bearer(token) => Ok(self.verify_token(token)?.principal.map(|principal| {
                Caller {
                    principal,
                    via: Via::Token,
                }
            })),
        }
    }

    /// Checks a user name and password (or API key), rate-limited so that a stranger cannot
    /// lock anyone else out: failures count per client address, per (account, address) and
    /// per account; the account's own count refuses only addresses that have failed too, so
    /// a correct credential from an address with no failures always gets in. A key id that
    /// does not exist counts against the address only.
    pub fn login(&self, user: &str, secret: &str, client: IpAddr) -> Result<Caller, Error> {
        if user == federation::FEDERATED_USER {
            return self.federated_caller(secret, client);
        }
        let robot = robots::is_robot_name(user);
        let account = match key_id(secret) {
            _ if robot => Some(robots::robot_subject(user)),
            Some(id) => self
                .meta
                .read()?
                .api_key(id)?
                .is_some()
                .then(|| key_subject(id)),
            // Every spelling the directory takes for one name counts against its account.
            None => Some(user_subject(&crate::clients::ldap::normalize_name(user))),
        };
        let addr = format!("addr:{client}");
        let mut counted = vec![addr.clone()];
        if let Some(account) = &account {
            counted.push(format!("{account}@{client}"));
            counted.push(account.clone());
        }
        let mut limits = vec![(addr.clone(), MAX_FAILURES_PER_ADDR)];
        if let Some(account) = &account {
            limits.push((format!("{account}@{client}"), MAX_FAILURES_PER_ACCOUNT));
            if self.limiter.failures(&addr) > 0 {
                limits.push((account.clone(), MAX_FAILURES_PER_ACCOUNT));
            }
        }
        if let Some(retry_after) = self.limiter.blocked(&limits) {
            crate::metrics::get().auth_failure("rate_limited");
            tracing::warn!(user, %client, "login refused: too many failures");
            return Err(Error::RateLimited { retry_after });
        }
        let result = if robot {
            self.robot_login(user, secret, client)
                .map(|principal| Caller {
                    principal,
                    via: Via::Robot,
                })
        } else if secret.starts_with(KEY_PREFIX) {
            self.key_principal_from_secret(secret)
                .and_then(|p| match &p {
                    Principal::Key { owner, .. }
                        if user == API_KEY_USER
                            || crate::clients::ldap::normalize_name(user) == *owner =>
                    {
                        Ok(Caller {
                            principal: p,
                            via: Via::ApiKey,
                        })
                    }
                    _ => Err(Error::InvalidCredentials),
                })
        } else {
            self.user_login(user, secret).map(|principal| Caller {
                principal,
                via: Via::Password,
            })
        };
        match &result {
            Ok(_) => {
                if let Some(account) = &account {
                    self.limiter.forget(&format!("{account}@{client}"));
                }
            }
            Err(Error::InvalidCredentials) => {
                crate::metrics::get().auth_failure(if robot {
                    "robot"
                } else if secret.starts_with(KEY_PREFIX) {
                    "api_key"
                } else {
                    "password"
                });
                // The secret is never logged, only who tried and from where.
                tracing::warn!(user, %client, "login failed");
                let via = if robot {
                    "robot secret"
                } else if secret.starts_with(KEY_PREFIX) {
                    "API key"
                } else {
                    "password"
                };
                let mut entry = audit::entry(
                    Kind::LoginFailed,
                    user,
                    "",
                    format!("login of {user:?} with a {via} failed"),
                );
                entry.source = Some(client.to_string());
                if let Err(e) = audit::append_alone(&*self.meta, &self.clock, entry) {
                    tracing::warn!(error = %e, "a failed login could not be recorded in the audit log");
                }
                let counted: Vec<(String, u32)> = counted.into_iter().map(|k| (k, 0)).collect();
                self.limiter.fail(&counted);
            }
            Err(_) => {}
        }
        result
    }

    /// A workload identity token's caller: verified against its issuer and refused with its
    /// reason; failures count against the client's address like any other.
    fn federated_caller(&self, token: &str, client: IpAddr) -> Result<Caller, Error> {
        let addr = format!("addr:{client}");
        if let Some(retry_after) = self
            .limiter
            .blocked(&[(addr.clone(), MAX_FAILURES_PER_ADDR)])
        {
            return Err(Error::RateLimited { retry_after });
        }
        self.federated_login(token, client)
            .map(|principal| Caller {
                principal,
                via: Via::Robot,
            })
            .inspect_err(|_| self.limiter.fail(&[(addr, 0)]))
    }

    pub(super) fn user_login(&self, name: &str, password: &str) -> Result<Principal, Error> {
        let record = self.meta.read()?.user(name)?;
        let is_directory = record
            .as_ref()
            .is_none_or(|r| r.password_hash == crate::domain::directory::DIRECTORY_PASSWORD);
        if is_directory
            && let Some(dir) = self.directory.get().cloned()
            && dir.ldap().is_some()
        {
            return self.directory_login(&dir, name, password);
        }
        let record = record.ok_or(Error::InvalidCredentials)?;
        if record.disabled {
            return Err(Error::InvalidCredentials);
        }
        let fingerprint = blake3::keyed_hash(
            &self.hash_key,
            format!("{name}\0{password}\0{}", record.password_hash).as_bytes(),
        );
        let cached = self
            .verified
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .is_some_and(|(f, at)| *f == fingerprint && at.elapsed() < VERIFIED_TTL);
        if !cached {
            if !password_matches(&record.password_hash, password) {
                return Err(Error::InvalidCredentials);
            }
            self.verified
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(name.to_owned(), (fingerprint, Instant::now()));
            if record
                .last_login
                .is_none_or(|t| self.clock.now().saturating_sub(t) > 60)
            {
                // Recorded with the last login, at most once a minute per account.
                self.meta.write(|w| {
                    if let Some(mut r) = w.user(name)? {
                        r.last_login = Some(self.clock.now());
                        w.put_user(name, &r)?;
                        audit::append(
                            w,
                            &self.clock,
                            audit::entry(Kind::Login, name, "", format!("{name} logged in")),
                        )?;
                    }
                    Ok::<_, Error>(())
                })?;
            }
        }
        Ok(Principal::User {
            name: name.to_owned(),
            admin: record.admin,
        })
    }

    pub(super) fn key_principal_from_secret(&self, key: &str) -> Result<Principal, Error> {
        let rest = key
            .strip_prefix(KEY_PREFIX)
            .ok_or(Error::InvalidCredentials)?;
        let (id, secret) = rest.split_once('_').ok_or(Error::InvalidCredentials)?;
        let r = self.meta.read()?;
        let record = r.api_key(id)?.ok_or(Error::InvalidCredentials)?;
        if blake3::keyed_hash(&self.hash_key, secret.as_bytes())
            != blake3::Hash::from_bytes(record.hash)
        {
            return Err(Error::InvalidCredentials);
        }
        let owner = r.user(&record.owner)?;
        let principal = self.key_principal(id, &record, owner.as_ref())?;
        if let Some(o) = &owner {
            self.directory_current(&*r, &record.owner, o)?;
        }
        Ok(principal)
    }

    pub(super) fn key_principal(
        &self,
        id: &str,
        key: &ApiKeyRecord,
        owner: Option<&UserRecord>,
    ) -> Result<Principal, Error> {
        if key.expires.is_some_and(|e| e <= self.clock.now()) {
            return Err(Error::InvalidCredentials);
        }
        let owner_record = owner
            .as_ref()
            .filter(|o| !o.disabled)
            .ok_or(Error::InvalidCredentials)?;
        Ok(Principal::Key {
            id: id.to_owned(),
            owner: key.owner.clone(),
            admin: key.admin && owner_record.admin,
        })
    }

    /// The principal a token (or UI session) subject names, if it is still allowed in, with
    /// the account's credential epoch: a token or session from an older epoch predates a
    /// change of the password or the rights, and is void.
    pub(super) fn active_subject_at(
        &self,
        subject: &str,
    ) -> Result<Option<(Principal, u64)>, Error> {
        let r = self.meta.read()?;
        if let Some(name) = subject.strip_prefix("user:") {
            let user = r
                .user(name)?
                .filter(|u| !u.disabled)
                .ok_or(Error::InvalidCredentials)?;
            self.directory_current(&*r, name, &user)?;
            let principal = Principal::User {
                name: name.to_owned(),
                admin: user.admin,
            };
            return Ok(Some((principal, EPOCHS.get(&*r, name)?.unwrap_or(0))));
        }
        if let Some(name) = subject.strip_prefix("robot:") {
            let record = robots::ROBOTS
                .get(&*r, name)?
                .ok_or(Error::InvalidCredentials)?;
            let principal = self.robot_principal(name, &record)?;
            return Ok(Some((principal, EPOCHS.get(&*r, name)?.unwrap_or(0))));
        }
        if let Some(id) = subject.strip_prefix("key:") {
            let key = r.api_key(id)?.ok_or(Error::InvalidCredentials)?;
            let owner = r.user(&key.owner)?;
            let principal = self.key_principal(id, &key, owner.as_ref())?;
            if let Some(o) = &owner {
                self.directory_current(&*r, &key.owner, o)?;
            }
            return Ok(Some((principal, EPOCHS.get(&*r, &key.owner)?.unwrap_or(0))));
        }
        Ok(None)
    }

    /// The credential epoch of `principal`'s account (a key's owner's): bumped by every
    /// change of the user's password, flags or roles.
    pub fn epoch(&self, principal: &Principal) -> Result<u64, Error> {
        Ok(EPOCHS
            .get(&*self.meta.read()?, principal.user())?
            .unwrap_or(0))
    }

    /// A UI session's principal, if its subject is still allowed in and its epoch current.
    pub fn session_subject(&self, subject: &str, epoch: u64) -> Result<Option<Principal>, Error> {
        Ok(self
            .active_subject_at(subject)?
            .filter(|(_, current)| *current == epoch)
            .map(|(p, _)| p))
    }
}
