//! Robot accounts: machine identities that belong to a feed (its administrators manage them)
//! or to the registry (administrators), never to a person — disabling a person leaves them
//! alone, and nobody's departure breaks a pipeline. A robot is named so that logs say what
//! it is (`robot$prod+ci` for feed `prod`'s robot `ci`, `robot$deploy` for the registry's),
//! holds only the roles given to it (a feed's robot only in that feed, never an
//! administrator), logs in to the registry and the API with its secret (never to the UI),
//! and acts in the audit log under its own name. Its secret is stored as a keyed hash, like
//! an API key's; rotating or disabling it voids its tokens at once.

#[allow(clippy::wildcard_imports)]
use super::*;
use crate::store::meta::settings::Json;

/// Robots by full name.
pub(crate) const ROBOTS: Family<Json<RobotRecord>> = Family::keyed("robot:", "robot account");

/// What the metadata store keeps of a robot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RobotRecord {
    /// The feed that owns it; `None` for a registry robot.
    pub feed: Option<String>,
    pub description: String,
    /// Keyed blake3 hash of the secret, hex.
    pub hash: String,
    pub created: u64,
    pub created_by: String,
    pub expires: Option<u64>,
    pub disabled: bool,
    pub last_used: Option<u64>,
    pub last_address: Option<String>,
}

/// A robot as listed (never its secret).
#[derive(Debug, Clone, Serialize)]
pub struct RobotInfo {
    pub name: String,
    pub feed: Option<String>,
    pub description: String,
    pub created: u64,
    pub created_by: String,
    pub expires: Option<u64>,
    pub disabled: bool,
    pub last_used: Option<u64>,
    pub last_address: Option<String>,
    /// feed → role
    pub roles: std::collections::BTreeMap<String, Role>,
}

/// A robot's secret, shown once: at its creation and at each rotation.
#[derive(Debug, Clone, Serialize)]
pub struct RobotSecret {
    pub name: String,
    /// The password to log in with (`docker login -u NAME`).
    pub secret: String,
}

/// What a change sets (each field optional).
#[derive(Debug, Clone, Default)]
pub struct RobotChange {
    pub description: Option<String>,
    pub disabled: Option<bool>,
    /// Replaces every role when given.
    pub roles: Option<std::collections::BTreeMap<String, String>>,
    /// `Some(None)` removes the expiry.
    pub expires: Option<Option<u64>>,
}

const ROBOT_PREFIX: &str = "robot$";
const SECRET_PREFIX: &str = "sdr_";

pub(super) fn robot_subject(name: &str) -> String {
    format!("robot:{name}")
}

/// Whether `user` names a robot (a user name never holds a `$`).
#[must_use]
pub fn is_robot_name(user: &str) -> bool {
    user.starts_with(ROBOT_PREFIX)
}

/// The full name of robot `short` of `feed` (or of the registry).
pub fn robot_name(feed: Option<&str>, short: &str) -> Result<String, Error> {
    let ok = !short.is_empty()
        && short.len() <= 64
        && short
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
    if !ok {
        return Err(Error::Invalid(format!(
            "robot name {short:?} is invalid: use 1 to 64 of a-z 0-9 . _ -"
        )));
    }
    Ok(match feed {
        Some(feed) => format!("{ROBOT_PREFIX}{feed}+{short}"),
        None => format!("{ROBOT_PREFIX}{short}"),
    })
}

/// The feed a robot's full name names (`None` for a registry robot).
fn feed_of_name(name: &str) -> Result<Option<&str>, Error> {
    let rest = name
        .strip_prefix(ROBOT_PREFIX)
        .ok_or_else(|| Error::NotFound(format!("{name:?} is not a robot's name (robot$…)")))?;
    Ok(rest.split_once('+').map(|(feed, _)| feed))
}

/// Robot accounts (`auth.robots()`).
pub struct Robots<'a> {
    pub(super) auth: &'a Auth,
}

impl Robots<'_> {
    /// Requires that `actor` may manage the robots of `feed` (its administrators), or the
    /// registry's (administrators), with proof of the account (a password, a UI session or an
    /// administrator's key: a leaked feed key cannot mint robots).
    fn require_manager(&self, actor: &Caller, feed: Option<&str>) -> Result<(), Error> {
        require_account_rights(actor)?;
        match feed {
            Some(feed) => self.auth.require(Some(actor), feed, Action::Admin),
            None => Auth::require_admin(actor),
        }
    }

    fn check_roles(
        w: &dyn MetaWrite,
        feed: Option<&str>,
        roles: &std::collections::BTreeMap<String, String>,
    ) -> Result<Vec<(String, Role)>, Error> {
        roles
            .iter()
            .map(|(on, role)| {
                if feed.is_some_and(|f| f != on) {
                    return Err(Error::Invalid(format!(
                        "a robot of feed {:?} holds roles in that feed only, not in {on:?}",
                        feed.unwrap_or_default()
                    )));
                }
                if w.feed(on)?.is_none() {
                    return Err(Error::FeedUnknown { feed: on.clone() });
                }
                Ok((on.clone(), parse_role(role)?))
            })
            .collect()
    }

    fn new_secret(&self) -> (String, String) {
        let secret = format!("{SECRET_PREFIX}{}", hex::encode(random_bytes::<32>()));
        let hash = blake3::keyed_hash(&self.auth.hash_key, secret.as_bytes()).to_hex();
        (secret, hash.to_string())
    }

    /// Creates robot `short` of `feed` (or of the registry) with `roles`; answers its
    /// secret, shown this once.
    pub fn create(
        &self,
        actor: &Caller,
        feed: Option<&str>,
        short: &str,
        description: &str,
        roles: &std::collections::BTreeMap<String, String>,
        expires: Option<u64>,
    ) -> Result<RobotSecret, Error> {
        self.require_manager(actor, feed)?;
        let name = robot_name(feed, short)?;
        if description.len() > 500 {
            return Err(Error::Invalid(
                "a robot's description has at most 500 bytes".into(),
            ));
        }
        if expires.is_some_and(|e| e <= self.auth.clock.now()) {
            return Err(Error::Invalid("the expiry time is in the past".into()));
        }
        let (secret, hash) = self.new_secret();
        self.auth.meta.write(|w| {
            if let Some(feed) = feed
                && w.feed(feed)?.is_none()
            {
                return Err(Error::FeedUnknown {
                    feed: feed.to_owned(),
                });
            }
            if ROBOTS.get(w, &name)?.is_some() {
                return Err(Error::Conflict(format!("robot {name} exists already")));
            }
            let roles = Self::check_roles(w, feed, roles)?;
            ROBOTS.put(
                w,
                &name,
                &RobotRecord {
                    feed: feed.map(str::to_owned),
                    description: description.to_owned(),
                    hash,
                    created: self.auth.clock.now(),
                    created_by: actor.user().to_owned(),
                    expires,
                    disabled: false,
                    last_used: None,
                    last_address: None,
                },
            )?;
            for (on, role) in &roles {
                w.set_grant(&robot_subject(&name), on, role.as_str())?;
            }
            let held: Vec<String> = roles
                .iter()
                .map(|(on, role)| format!("{on}={}", role.as_str()))
                .collect();
            audit::append(
                w,
                &self.auth.clock,
                audit::entry(
                    Kind::RobotChanged,
                    actor.user(),
                    feed.unwrap_or_default(),
                    format!("robot {name} created: [{}]", held.join(", ")),
                ),
            )?;
            Ok(())
        })?;
        tracing::info!(actor = actor.user(), robot = name, "robot created");
        Ok(RobotSecret { name, secret })
    }

    /// The robots `actor` manages: of `feed`, or (administrators, without a feed) all.
    pub fn list(&self, actor: &Caller, feed: Option<&str>) -> Result<Vec<RobotInfo>, Error> {
        match feed {
            Some(feed) => self.auth.require(Some(actor), feed, Action::Admin)?,
            None => Auth::require_admin(actor)?,
        }
        let r = self.auth.meta.read()?;
        let mut out = Vec::new();
        for (name, record) in ROBOTS.all(&*r)? {
            if feed.is_some_and(|f| record.feed.as_deref() != Some(f)) {
                continue;
            }
            let roles = roles_of(&r.grants_of(&robot_subject(&name))?);
            out.push(RobotInfo {
                name,
                feed: record.feed,
                description: record.description,
                created: record.created,
                created_by: record.created_by,
                expires: record.expires,
                disabled: record.disabled,
                last_used: record.last_used,
                last_address: record.last_address,
                roles,
            });
        }
        Ok(out)
    }

    /// Runs `f` on robot `name` in one audited write, once `actor` may manage it; every
    /// change voids the robot's tokens (its credential epoch moves).
    fn change_with<T>(
        &self,
        actor: &Caller,
        name: &str,
        what: &str,
        f: impl FnOnce(&mut dyn MetaWrite, &mut RobotRecord) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let unknown = || Error::NotFound(format!("robot {name:?} does not exist"));
        // The name says whose robot it is, so rights are checked before its existence: a
        // caller who may not manage it learns nothing of whether it exists.
        self.require_manager(actor, feed_of_name(name)?)?;
        let out = self.auth.meta.write(|w| -> Result<T, Error> {
            let mut record = ROBOTS.get(w, name)?.ok_or_else(unknown)?;
            let out = f(w, &mut record)?;
            ROBOTS.put(w, name, &record)?;
            bump_epoch(w, name)?;
            audit::append(
                w,
                &self.auth.clock,
                audit::entry(
                    Kind::RobotChanged,
                    actor.user(),
                    record.feed.as_deref().unwrap_or_default(),
                    format!("robot {name} {what}"),
                ),
            )?;
            Ok(out)
        })?;
        tracing::info!(actor = actor.user(), robot = name, what, "robot changed");
        Ok(out)
    }

    /// A new secret for robot `name`: the old one stops working at once, its tokens too.
    pub fn rotate(&self, actor: &Caller, name: &str) -> Result<RobotSecret, Error> {
        let (secret, hash) = self.new_secret();
        self.change_with(actor, name, "secret rotated", |_, r| {
            r.hash = hash;
            Ok(())
        })?;
        Ok(RobotSecret {
            name: name.to_owned(),
            secret,
        })
    }

    /// Changes robot `name`'s description, state, roles or expiry.
    pub fn change(&self, actor: &Caller, name: &str, change: RobotChange) -> Result<(), Error> {
        if let Some(Some(e)) = change.expires
            && e <= self.auth.clock.now()
        {
            return Err(Error::Invalid("the expiry time is in the past".into()));
        }
        let mut said = Vec::new();
        if let Some(d) = change.disabled {
            said.push(if d { "disabled" } else { "enabled" }.to_owned());
        }
        if change.description.is_some() {
            said.push("description changed".to_owned());
        }
        if let Some(e) = change.expires {
            said.push(e.map_or_else(|| "expiry removed".into(), |e| format!("expires at {e}")));
        }
        if let Some(roles) = &change.roles {
            let held: Vec<String> = roles.iter().map(|(f, r)| format!("{f}={r}")).collect();
            said.push(format!("roles [{}]", held.join(", ")));
        }
        let what = said.join(", ");
        self.change_with(actor, name, &what, |w, r| {
            if let Some(d) = change.description {
                r.description = d;
            }
            if let Some(d) = change.disabled {
                r.disabled = d;
            }
            if let Some(e) = change.expires {
                r.expires = e;
            }
            if let Some(roles) = &change.roles {
                let roles = Self::check_roles(w, r.feed.as_deref(), roles)?;
                for (on, _) in w.grants_of(&robot_subject(name))? {
                    w.remove_grant(&robot_subject(name), &on)?;
                }
                for (on, role) in &roles {
                    w.set_grant(&robot_subject(name), on, role.as_str())?;
                }
            }
            Ok(())
        })
    }

    /// Deletes robot `name` and its roles.
    pub fn delete(&self, actor: &Caller, name: &str) -> Result<(), Error> {
        self.change_with(actor, name, "deleted", |w, r| {
            r.disabled = true;
            for (on, _) in w.grants_of(&robot_subject(name))? {
                w.remove_grant(&robot_subject(name), &on)?;
            }
            Ok(())
        })?;
        self.auth
            .meta
            .write(|w| Ok::<_, Error>(ROBOTS.remove(w, name)?))
    }
}

impl Auth {
    /// Robot accounts: create, list, rotate, change, delete.
    #[must_use]
    pub fn robots(&self) -> Robots<'_> {
        Robots { auth: self }
    }

    /// Checks robot `name`'s secret; remembers when and from where it was last used (at most
    /// one write a minute per robot).
    pub(super) fn robot_login(
        &self,
        name: &str,
        secret: &str,
        client: IpAddr,
    ) -> Result<Principal, Error> {
        let record = ROBOTS
            .get(&*self.meta.read()?, name)?
            .ok_or(Error::InvalidCredentials)?;
        // blake3's `Hash` compares in constant time.
        let stored = blake3::Hash::from_hex(&record.hash).map_err(|_| Error::InvalidCredentials)?;
        if blake3::keyed_hash(&self.hash_key, secret.as_bytes()) != stored {
            return Err(Error::InvalidCredentials);
        }
        let principal = self.robot_principal(name, &record)?;
        let now = self.clock.now();
        if record.last_used.is_none_or(|t| now.saturating_sub(t) > 60) {
            self.meta.write(|w| {
                if let Some(mut r) = ROBOTS.get(w, name)? {
                    r.last_used = Some(now);
                    r.last_address = Some(client.to_string());
                    ROBOTS.put(w, name, &r)?;
                }
                Ok::<_, Error>(())
            })?;
        }
        Ok(principal)
    }

    /// The principal of a robot that may still log in.
    pub(super) fn robot_principal(
        &self,
        name: &str,
        record: &RobotRecord,
    ) -> Result<Principal, Error> {
        if record.disabled || record.expires.is_some_and(|e| e <= self.clock.now()) {
            return Err(Error::InvalidCredentials);
        }
        Ok(Principal::Robot {
            name: name.to_owned(),
        })
    }
}
