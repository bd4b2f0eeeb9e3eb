//! Authentication and authorization: users, API keys, per-feed roles, tokens, rate limits.
//!
//! Rules enforced here: passwords are stored only as argon2id hashes and API keys only as
//! keyed blake3 hashes; a key never holds more than its owner; a token grants the
//! intersection of what was asked and what the caller may do; failed logins are rate-limited
//! per user and per client address; a disabled user or a revoked key stops working at once,
//! tokens included.

use std::collections::HashMap;
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier, phc::PasswordHash};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::model::{Action, Caps, Role, Scope};
use crate::store::meta::{ApiKeyRecord, AuditRecord, MetaWrite, Metadata, UserRecord};

use super::Error;
use super::audit::{self, Kind};
use super::cache::GenCache;
use super::directory::{DIRECTORY_PASSWORD, GroupRoles, roles_key};

/// The file the first start writes the admin's password to.
pub const INITIAL_PASSWORD_FILE: &str = "initial-admin-password";
/// The user who exists from the first start.
pub const INITIAL_ADMIN: &str = "admin";
/// The user name `ProGet` clients send with an API key as the password.
pub const API_KEY_USER: &str = "api";
const KEY_PREFIX: &str = "sdk_";
const TOKEN_KEY: &str = "token-signing-key";
const HASH_KEY: &str = "api-key-hash-key";
const ISSUER: &str = "semdock";
/// Held by the node refreshing directory accounts.
const DIRECTORY_LOCK: i64 = 0x5e3d_0d1c;

/// Failed logins allowed per account (user or key) from one address, and per client
/// address, within one window.
const MAX_FAILURES_PER_ACCOUNT: u32 = 5;
const MAX_FAILURES_PER_ADDR: u32 = 20;
const FAILURE_WINDOW: Duration = Duration::from_mins(5);
/// How long a verified password is remembered, so Basic auth on every request stays cheap.
const VERIFIED_TTL: Duration = Duration::from_mins(5);

/// Token settings, from configuration.
#[derive(Debug, Clone)]
pub struct TokenSettings {
    /// The `service` tokens are issued for (their audience).
    pub service: String,
    pub ttl_seconds: u64,
}

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    User {
        name: String,
        admin: bool,
    },
    Key {
        id: String,
        owner: String,
        admin: bool,
    },
}

impl Principal {
    /// `user:NAME` or `key:ID`: the subject of tokens and the key of grants.
    #[must_use]
    pub fn subject(&self) -> String {
        match self {
            Self::User { name, .. } => user_subject(name),
            Self::Key { id, .. } => key_subject(id),
        }
    }

    #[must_use]
    pub fn is_admin(&self) -> bool {
        match self {
            Self::User { admin, .. } | Self::Key { admin, .. } => *admin,
        }
    }

    /// The user acting: the user, or the key's owner.
    #[must_use]
    pub fn user(&self) -> &str {
        match self {
            Self::User { name, .. } => name,
            Self::Key { owner, .. } => owner,
        }
    }
}

/// How a caller proved who it is. What a credential may do depends on it: a registry token
/// carries only its scope, and only a password or a UI session manages the account itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// A user name and password (Basic).
    Password,
    /// An API key (Basic or `X-ApiKey`).
    ApiKey,
    /// A registry token from `/v2/_auth`, scoped to repositories.
    Token,
    /// A UI session, started with a password.
    Session,
    /// The offline CLI, which owns the data directory while no server runs.
    Local,
}

/// An authenticated caller: who, and by what credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub principal: Principal,
    pub via: Via,
}

impl std::ops::Deref for Caller {
    type Target = Principal;

    fn deref(&self) -> &Principal {
        &self.principal
    }
}

/// Where a request's credentials are presented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    /// The Distribution API (`/v2`): tokens, passwords and keys.
    Registry,
    /// The management API (`/api`): passwords and keys, never registry tokens.
    Management,
}

fn user_subject(name: &str) -> String {
    format!("user:{name}")
}

fn key_subject(id: &str) -> String {
    format!("key:{id}")
}

/// The id of an API key given as a secret (`sdk_<id>_<secret>`).
fn key_id(secret: &str) -> Option<&str> {
    let (id, _) = secret.strip_prefix(KEY_PREFIX)?.split_once('_')?;
    Some(id)
}

/// Credentials as a request carries them.
#[derive(Clone)]
pub enum Credentials {
    None,
    Basic { user: String, secret: String },
    Bearer(String),
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Secrets never reach a log line.
        match self {
            Self::None => f.write_str("None"),
            Self::Basic { user, .. } => write!(f, "Basic({user}, ***)"),
            Self::Bearer(_) => f.write_str("Bearer(***)"),
        }
    }
}

/// A token as the token endpoint returns it.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    pub token: String,
    pub expires_in: u64,
    pub issued_at: u64,
}

/// A user as listed.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct UserInfo {
    pub name: String,
    pub admin: bool,
    pub disabled: bool,
    pub created: u64,
    pub last_login: Option<u64>,
    /// feed → role
    pub roles: std::collections::BTreeMap<String, Role>,
}

/// An API key as listed (never its secret).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct KeyInfo {
    pub id: String,
    pub name: String,
    pub owner: String,
    pub admin: bool,
    pub created: u64,
    pub expires: Option<u64>,
    pub roles: std::collections::BTreeMap<String, Role>,
}

/// A new API key: its secret is shown only here.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct NewKey {
    pub id: String,
    /// The whole key, to use as a password. It is not stored and cannot be shown again.
    pub key: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    iss: String,
    sub: String,
    aud: String,
    exp: u64,
    nbf: u64,
    iat: u64,
    jti: String,
    access: Vec<AccessClaim>,
    /// The account's credential epoch when the token was issued (see `Auth::epoch`).
    #[serde(default)]
    epoch: u64,
    /// The epoch of each feed `access` names when the token was issued (see
    /// `bump_feed_epoch`); a feed absent here is at epoch 0.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    feeds: std::collections::BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct AccessClaim {
    #[serde(rename = "type")]
    kind: String,
    name: String,
    actions: Vec<String>,
}

/// A token that passed verification, as `verify_token` returns it.
#[derive(Debug, Clone)]
struct VerifiedToken {
    exp: u64,
    principal: Option<Principal>,
    access: Arc<[AccessClaim]>,
}

impl VerifiedToken {
    fn grants(&self, repository: &str, action: Action) -> bool {
        self.access.iter().any(|a| {
            a.kind == "repository"
                && a.name == repository
                && a.actions.iter().any(|x| x == action.as_str())
        })
    }
}

/// Seconds of clock skew a token's `exp` and `nbf` tolerate.
const TOKEN_LEEWAY: u64 = 5;
/// Verified tokens remembered (each a few hundred bytes).
const TOKEN_CACHE_ENTRIES: usize = 4096;
const TOKEN_CACHE_BYTES: usize = 4 << 20;
/// Feeds whose anonymous access is remembered (a feed name and a byte each).
const FEED_CACHE_ENTRIES: usize = 1024;
const FEED_CACHE_BYTES: usize = 256 << 10;

#[derive(Default)]
struct Window {
    start: Option<Instant>,
    failures: u32,
}

/// Failed-login counters per user and per address.
#[derive(Default)]
struct Limiter {
    windows: Mutex<HashMap<String, Window>>,
}

impl Limiter {
    /// Seconds to wait before `keys` may try again, if any is over its limit.
    fn blocked(&self, keys: &[(String, u32)]) -> Option<u64> {
        let windows = self.windows.lock().unwrap_or_else(PoisonError::into_inner);
        keys.iter()
            .filter_map(|(key, max)| {
                let w = windows.get(key)?;
                let start = w.start?;
                let left = FAILURE_WINDOW.checked_sub(start.elapsed())?;
                (w.failures >= *max).then(|| left.as_secs().max(1))
            })
            .max()
    }

    fn fail(&self, keys: &[(String, u32)]) {
        let mut windows = self.windows.lock().unwrap_or_else(PoisonError::into_inner);
        if windows.len() > 100_000 {
            windows.retain(|_, w| w.start.is_some_and(|s| s.elapsed() < FAILURE_WINDOW));
        }
        for (key, _) in keys {
            let w = windows.entry(key.clone()).or_default();
            if w.start.is_none_or(|s| s.elapsed() >= FAILURE_WINDOW) {
                *w = Window {
                    start: Some(Instant::now()),
                    failures: 0,
                };
            }
            w.failures += 1;
        }
    }

    /// Failures of `key` in its current window.
    fn failures(&self, key: &str) -> u32 {
        let windows = self.windows.lock().unwrap_or_else(PoisonError::into_inner);
        windows
            .get(key)
            .filter(|w| w.start.is_some_and(|s| s.elapsed() < FAILURE_WINDOW))
            .map_or(0, |w| w.failures)
    }

    fn forget(&self, key: &str) {
        self.windows
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(key);
    }
}

/// The access-control service.
pub struct Auth {
    meta: Arc<dyn Metadata>,
    /// The registry's clock (tokens, key expiry, logins).
    clock: super::clock::Clock,
    /// `DATA_DIR/initial-admin-password`, removed when that password is changed.
    initial_password_file: PathBuf,
    token_key: Vec<u8>,
    hash_key: [u8; 32],
    settings: TokenSettings,
    limiter: Limiter,
    verified: Mutex<HashMap<String, (blake3::Hash, Instant)>>,
    /// Bearer tokens verified while the metadata (users, keys, grants) is unchanged.
    tokens: GenCache<VerifiedToken>,
    /// What an anonymous caller may do, per feed, while the metadata is unchanged.
    anonymous: GenCache<Caps>,
    /// The company directory, when one is configured (`set_directory`).
    directory: std::sync::OnceLock<Arc<super::directory::Directory>>,
}

pub(super) fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    rand::fill(&mut bytes[..]);
    bytes
}

/// A random password of 24 letters and digits.
#[must_use]
pub fn random_password() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    random_bytes::<24>()
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
        .collect()
}

fn hash_password(password: &str) -> Result<String, Error> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| Error::Internal(format!("hashing a password failed: {e}")))
}

fn password_matches(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

fn check_password_strength(password: &str) -> Result<(), Error> {
    if password.chars().count() < 8 {
        return Err(Error::Invalid(
            "a password needs at least 8 characters".into(),
        ));
    }
    Ok(())
}

fn check_user_name(name: &str) -> Result<(), Error> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name != API_KEY_USER
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "user name {name:?} is invalid: use 1 to 64 of a-z 0-9 . _ - (and not \"api\")"
        )))
    }
}

fn parse_role(role: &str) -> Result<Role, Error> {
    role.parse().map_err(Error::Invalid)
}

impl Auth {
    /// Opens the service; on the first start creates `admin` with a random password, written
    /// to `DATA_DIR/initial-admin-password` (mode 0600). Returns the password that first time.
    pub fn open(
        meta: Arc<dyn Metadata>,
        data_dir: &Path,
        settings: TokenSettings,
        clock: super::clock::Clock,
    ) -> Result<(Self, Option<String>), Error> {
        let (token_key, hash_key, initial) = meta.write(|w| {
            let mut secret = |name: &str| -> Result<Vec<u8>, Error> {
                if let Some(v) = w.setting(name)? {
                    return Ok(v);
                }
                let v = random_bytes::<32>().to_vec();
                w.put_setting(name, &v)?;
                Ok(v)
            };
            let token_key = secret(TOKEN_KEY)?;
            let hash_key = secret(HASH_KEY)?;
            let initial = if w.users()?.is_empty() {
                let password = random_password();
                w.put_user(
                    INITIAL_ADMIN,
                    &UserRecord {
                        password_hash: hash_password(&password)?,
                        admin: true,
                        disabled: false,
                        created: clock.now(),
                        last_login: None,
                    },
                )?;
                Some(password)
            } else {
                None
            };
            Ok::<_, Error>((token_key, hash_key, initial))
        })?;
        if let Some(password) = &initial {
            write_secret_file(&data_dir.join(INITIAL_PASSWORD_FILE), password)?;
        }
        let hash_key: [u8; 32] = hash_key
            .try_into()
            .map_err(|_| Error::Internal("the stored API key hashing key is corrupt".into()))?;
        Ok((
            Self {
                meta,
                clock,
                initial_password_file: data_dir.join(INITIAL_PASSWORD_FILE),
                token_key,
                hash_key,
                settings,
                limiter: Limiter::default(),
                verified: Mutex::new(HashMap::new()),
                tokens: GenCache::new(TOKEN_CACHE_ENTRIES, TOKEN_CACHE_BYTES),
                anonymous: GenCache::new(FEED_CACHE_ENTRIES, FEED_CACHE_BYTES),
                directory: std::sync::OnceLock::new(),
            },
            initial,
        ))
    }

    #[must_use]
    pub fn service(&self) -> &str {
        &self.settings.service
    }

    /// Lets directory users log in (once, at start).
    pub fn set_directory(&self, directory: Arc<super::directory::Directory>) {
        let _ = self.directory.set(directory);
    }

    // ---- the company directory ----

    /// The directory, when it has an `OpenID Connect` provider.
    #[must_use]
    pub fn oidc(&self) -> Option<Arc<super::directory::Directory>> {
        self.directory.get().filter(|d| d.oidc().is_some()).cloned()
    }

    /// The label of the `OpenID Connect` sign-in button, when a provider is configured.
    #[must_use]
    pub fn oidc_label(&self) -> Option<String> {
        self.directory
            .get()
            .and_then(|d| d.oidc())
            .map(|o| o.label().to_owned())
    }

    /// Logs in `name` with the directory's password: creates or updates the local account
    /// (a directory account) and its group roles. The account is the directory's name of
    /// the entry (`DirectoryUser::name`), whatever spelling of it was typed.
    fn directory_login(
        &self,
        dir: &super::directory::Directory,
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

    /// Signs in a user the `OpenID Connect` provider vouched for (`clients::oidc` checked the
    /// ID token): creates or updates their account and group roles, and keeps the refresh
    /// token the provider issued, if any, for later checks.
    pub fn oidc_sign_in(&self, user: &crate::clients::oidc::OidcUser) -> Result<Principal, Error> {
        use super::directory::{OIDC_PASSWORD, refresh_key};
        let dir = self
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
        let r = self.meta.read()?;
        // The account is the subject's (issuer, `sub`), whatever the provider calls the
        // user today: the one it signed in as before (the one of the name claimed, if it
        // has several from before), else a new one of the name claimed.
        let mut owned = Vec::new();
        for (name, u) in r.users()? {
            if u.password_hash != OIDC_PASSWORD {
                continue;
            }
            let Some(g) = r
                .setting(&roles_key(&name))?
                .and_then(|b| serde_json::from_slice::<GroupRoles>(&b).ok())
            else {
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
            self.clock.now_ms(),
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
        let stored = r
            .setting(&roles_key(&name))?
            .and_then(|b| serde_json::from_slice::<GroupRoles>(&b).ok());
        if stored.is_some_and(|g| g.has_owner() && !g.owned_by(&issuer, &user.subject)) {
            return Err(Error::Invalid(format!(
                "the account {name} belongs to another user of the provider (another subject): an administrator must delete it first"
            )));
        }
        drop(r);
        // The account and its refresh token in one transaction.
        self.meta.write(|w| {
            self.store_directory_account_in(w, &name, Some(&roles), true, OIDC_PASSWORD)?;
            if let Some(t) = &user.refresh_token {
                w.put_setting(&refresh_key(&name), t.as_bytes())?;
            }
            Ok::<_, Error>(())
        })?;
        Ok(Principal::User {
            name,
            admin: roles.admin,
        })
    }

    /// Writes what the directory said of `name`, inside the write transaction `w`: its group
    /// roles (`None`: no longer found, which disables the account). A change of the roles or
    /// flags voids its tokens and sessions. `login` records a login too.
    fn store_directory_account_in(
        &self,
        w: &mut dyn MetaWrite,
        name: &str,
        roles: Option<&super::directory::GroupRoles>,
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
            let old_roles: Option<super::directory::GroupRoles> = w
                .setting(&roles_key(name))?
                .and_then(|b| serde_json::from_slice(&b).ok());
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
                    w.put_setting(&roles_key(name), &serde_json::to_vec(r).unwrap_or_default())?;
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
            w.put_setting(
                &roles_key(name),
                &serde_json::to_vec(&stored).unwrap_or_default(),
            )?;
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

    /// Asks the directory again about each directory account checked longer than half the
    /// cache time ago, on the node holding the directory lock (a refresh token may be
    /// rotated by its use: two nodes must not spend the same one); answers how many were
    /// asked. Run on a schedule.
    pub fn refresh_directory(&self) -> Result<usize, Error> {
        use super::directory::{OIDC_PASSWORD, refresh_key};
        let Some(dir) = self.directory.get() else {
            return Ok(0);
        };
        let Some(_lock) = self.meta.try_exclusive(DIRECTORY_LOCK)? else {
            return Ok(0);
        };
        let now = self.clock.now_ms();
        let half = u64::try_from(dir.cache.as_millis() / 2).unwrap_or(u64::MAX);
        let due: Vec<(String, String)> = {
            let r = self.meta.read()?;
            let mut due = Vec::new();
            for (name, u) in r.users()? {
                if !super::directory::is_directory_account(&u.password_hash) || u.disabled {
                    continue;
                }
                let checked = r
                    .setting(&roles_key(&name))?
                    .and_then(|b| serde_json::from_slice::<GroupRoles>(&b).ok())
                    .map_or(0, |g| g.checked_ms);
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
            let r = self.meta.read()?;
            let Some(token) = r.setting(&refresh_key(name))? else {
                // No refresh token: nothing to ask with; the account fails closed in time.
                continue;
            };
            let subject = r
                .setting(&roles_key(name))?
                .and_then(|b| serde_json::from_slice::<GroupRoles>(&b).ok())
                .map(|g| g.dn)
                .unwrap_or_default();
            drop(r);
            match oidc.refresh(&String::from_utf8_lossy(&token)) {
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
            self.meta.write(|w| {
                for (name, marker, roles, rotated) in &answers {
                    self.store_directory_account_in(w, name, roles.as_ref(), false, marker)?;
                    match (roles, rotated) {
                        (Some(_), Some(t)) => w.put_setting(&refresh_key(name), t.as_bytes())?,
                        (None, _) if *marker == OIDC_PASSWORD => {
                            w.remove_setting(&refresh_key(name))?;
                        }
                        _ => {}
                    }
                }
                Ok::<_, Error>(())
            })?;
        }
        Ok(asked)
    }

    /// Refuses a directory account whose roles the directory has not confirmed for twice
    /// the cache time (it could not be asked): fails closed. Local accounts pass.
    fn directory_current(
        &self,
        r: &dyn crate::store::meta::MetaRead,
        name: &str,
        user: &UserRecord,
    ) -> Result<(), Error> {
        if !super::directory::is_directory_account(&user.password_hash) {
            return Ok(());
        }
        let Some(dir) = self.directory.get() else {
            return Err(Error::InvalidCredentials);
        };
        let checked = r
            .setting(&roles_key(name))?
            .and_then(|b| serde_json::from_slice::<GroupRoles>(&b).ok())
            .map_or(0, |g| g.checked_ms);
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
    fn directory_role(
        &self,
        r: &dyn crate::store::meta::MetaRead,
        name: &str,
        feed: &str,
    ) -> Result<Caps, Error> {
        if self.directory.get().is_none() {
            return Ok(Caps::NONE);
        }
        Ok(r.setting(&super::directory::roles_key(name))?
            .and_then(|b| serde_json::from_slice::<super::directory::GroupRoles>(&b).ok())
            .and_then(|g| g.role(feed))
            .map_or(Caps::NONE, Role::caps))
    }

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
        let account = match key_id(secret) {
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
        let result = if secret.starts_with(KEY_PREFIX) {
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
                crate::metrics::get().auth_failure(if secret.starts_with(KEY_PREFIX) {
                    "api_key"
                } else {
                    "password"
                });
                // The secret is never logged, only who tried and from where.
                tracing::warn!(user, %client, "login failed");
                let via = if secret.starts_with(KEY_PREFIX) {
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

    fn user_login(&self, name: &str, password: &str) -> Result<Principal, Error> {
        let record = self.meta.read()?.user(name)?;
        let is_directory = record
            .as_ref()
            .is_none_or(|r| r.password_hash == super::directory::DIRECTORY_PASSWORD);
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

    fn key_principal_from_secret(&self, key: &str) -> Result<Principal, Error> {
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

    fn key_principal(
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
    fn active_subject_at(&self, subject: &str) -> Result<Option<(Principal, u64)>, Error> {
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
            return Ok(Some((principal, epoch_from(r.setting(&epoch_key(name))?))));
        }
        if let Some(id) = subject.strip_prefix("key:") {
            let key = r.api_key(id)?.ok_or(Error::InvalidCredentials)?;
            let owner = r.user(&key.owner)?;
            let principal = self.key_principal(id, &key, owner.as_ref())?;
            if let Some(o) = &owner {
                self.directory_current(&*r, &key.owner, o)?;
            }
            return Ok(Some((
                principal,
                epoch_from(r.setting(&epoch_key(&key.owner))?),
            )));
        }
        Ok(None)
    }

    /// The credential epoch of `principal`'s account (a key's owner's): bumped by every
    /// change of the user's password, flags or roles.
    pub fn epoch(&self, principal: &Principal) -> Result<u64, Error> {
        Ok(epoch_from(
            self.meta.read()?.setting(&epoch_key(principal.user()))?,
        ))
    }

    /// A UI session's principal, if its subject is still allowed in and its epoch current.
    pub fn session_subject(&self, subject: &str, epoch: u64) -> Result<Option<Principal>, Error> {
        Ok(self
            .active_subject_at(subject)?
            .filter(|(_, current)| *current == epoch)
            .map(|(p, _)| p))
    }

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
        };
        Ok(own.join(anonymous))
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

    // ---- tokens ----

    /// Issues a token for `scopes`, granting of each what the caller may do.
    pub fn issue_token(
        &self,
        principal: Option<&Principal>,
        scopes: &[Scope],
    ) -> Result<IssuedToken, Error> {
        let mut access = Vec::new();
        let mut feeds = std::collections::BTreeMap::new();
        for scope in scopes {
            let asked: Vec<Action> = scope
                .actions
                .iter()
                .flat_map(|a| Action::parse_scope(a))
                .collect();
            let granted = match scope.kind.as_str() {
                "repository" => {
                    let feed = feed_of(&scope.name);
                    // Read before the rights: a delete in between voids this token's claim.
                    let epoch = epoch_from(self.meta.read()?.setting(&feed_epoch_key(feed))?);
                    let granted = self.caps(principal, feed)?.filter(&asked);
                    if !granted.is_empty() && epoch != 0 {
                        feeds.insert(feed.to_owned(), epoch);
                    }
                    granted
                }
                _ => Vec::new(),
            };
            if !granted.is_empty() {
                access.push(AccessClaim {
                    kind: scope.kind.clone(),
                    name: scope.name.clone(),
                    actions: granted.iter().map(|a| a.as_str().to_owned()).collect(),
                });
            }
        }
        let issued_at = self.clock.now();
        let epoch = principal.map(|p| self.epoch(p)).transpose()?.unwrap_or(0);
        let claims = Claims {
            iss: ISSUER.to_owned(),
            sub: principal.map_or_else(|| "anonymous".to_owned(), Principal::subject),
            aud: self.settings.service.clone(),
            exp: issued_at + self.settings.ttl_seconds,
            nbf: issued_at.saturating_sub(5),
            iat: issued_at,
            jti: uuid::Uuid::new_v4().simple().to_string(),
            access,
            epoch,
            feeds,
        };
        let token = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(&self.token_key),
        )
        .map_err(|e| Error::Internal(format!("signing a token failed: {e}")))?;
        Ok(IssuedToken {
            token,
            expires_in: self.settings.ttl_seconds,
            issued_at,
        })
    }

    /// Verifies a token; returns its (still active) principal and what it grants.
    fn verify_token(&self, token: &str) -> Result<VerifiedToken, Error> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_audience(&[&self.settings.service]);
        validation.set_issuer(&[ISSUER]);
        // Expiry is checked against the registry's clock, below, not the library's.
        validation.validate_exp = false;
        validation.set_required_spec_claims(&["exp", "aud", "iss"]);
        let refused = |why: String| {
            crate::metrics::get().auth_failure("token");
            Error::TokenInvalid(why)
        };
        let data = jsonwebtoken::decode::<Claims>(
            token,
            &DecodingKey::from_secret(&self.token_key),
            &validation,
        )
        .map_err(|e| refused(e.to_string()))?;
        if self.clock.now() > data.claims.exp + TOKEN_LEEWAY {
            return Err(refused("it has expired: log in again".into()));
        }
        // Read before the subject's record, so a cached answer is never newer than its read.
        let generation = self.meta.generation();
        let principal = match self.active_subject_at(&data.claims.sub)? {
            Some((_, epoch)) if epoch != data.claims.epoch => {
                return Err(Error::TokenInvalid(
                    "it was issued before the account's password or roles changed: log in again"
                        .into(),
                ));
            }
            found => found.map(|(p, _)| p),
        };
        // A feed deleted (or created) since the token was issued: its rights there are void,
        // as a re-created feed of the same name is another feed.
        let mut access = data.claims.access;
        if access.iter().any(|a| a.kind == "repository") {
            let r = self.meta.read()?;
            let mut current = std::collections::BTreeMap::new();
            for a in &access {
                let feed = feed_of(&a.name);
                if !current.contains_key(feed) {
                    let epoch = epoch_from(r.setting(&feed_epoch_key(feed))?);
                    current.insert(feed.to_owned(), epoch);
                }
            }
            access.retain(|a| {
                let feed = feed_of(&a.name);
                a.kind != "repository"
                    || current.get(feed) == Some(&data.claims.feeds.get(feed).copied().unwrap_or(0))
            });
        }
        let verified = VerifiedToken {
            exp: data.claims.exp,
            principal,
            access: access.into(),
        };
        let weight = token.len() + 64 * verified.access.len() + 128;
        self.tokens
            .put(token.to_owned(), generation, verified.clone(), weight);
        Ok(verified)
    }

    /// Authorizes `action` on `repository` for a request's credentials. A Bearer token must
    /// carry the scope; Basic credentials and anonymous callers are checked against roles.
    pub fn authorize(
        &self,
        credentials: &Credentials,
        client: IpAddr,
        repository: &str,
        feed: &str,
        action: Action,
    ) -> Result<Option<Principal>, Error> {
        match credentials {
            Credentials::Bearer(token) => {
                let verified = self.verify_token(token)?;
                if verified.grants(repository, action) {
                    return Ok(verified.principal);
                }
                // Not in this token: ask for another when the caller may, else refuse.
                self.require(verified.principal.as_ref(), feed, action)?;
                Err(Error::InsufficientScope)
            }
            other => {
                let principal = self
                    .caller(other, client, Surface::Registry)?
                    .map(|c| c.principal);
                self.require(principal.as_ref(), feed, action)?;
                Ok(principal)
            }
        }
    }

    /// The metadata store (for the session records, `domain::sessions`).
    pub(super) fn meta(&self) -> &dyn Metadata {
        &*self.meta
    }

    /// The clock of the services.
    pub(super) fn clock(&self) -> &super::clock::Clock {
        &self.clock
    }

    /// Whether `authorize_cached` answers from memory alone (see
    /// `Metadata::generation_is_local`): then the executor may call it.
    #[must_use]
    pub fn caches_locally(&self) -> bool {
        self.meta.generation_is_local()
    }

    /// `authorize`'s answer from memory: for a Bearer token verified since the last metadata
    /// write (so its subject is still active), unexpired, whose scope covers the action; or
    /// for an anonymous caller in a feed whose settings were read since that write and allow
    /// the action. `Some(principal)` is the answer; `None` means "call `authorize`". Touches
    /// no database when `caches_locally`, so it may then run on an async executor.
    #[must_use]
    pub fn authorize_cached(
        &self,
        credentials: &Credentials,
        repository: &str,
        feed: &str,
        action: Action,
    ) -> Option<Option<Principal>> {
        let generation = self.meta.generation();
        match credentials {
            Credentials::Bearer(token) => {
                let verified = self.tokens.get(token, generation)?;
                (self.clock.now() <= verified.exp + TOKEN_LEEWAY
                    && verified.grants(repository, action))
                .then_some(verified.principal)
            }
            Credentials::None => {
                let caps = self.anonymous.get(feed, generation)?;
                caps.allows(action).then_some(None)
            }
            Credentials::Basic { .. } => None,
        }
    }

    // ---- users ----

    pub fn users(&self, actor: &Principal) -> Result<Vec<UserInfo>, Error> {
        Self::require_admin(actor)?;
        let r = self.meta.read()?;
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
    pub fn create_user(
        &self,
        actor: &Principal,
        name: &str,
        password: Option<&str>,
        admin: bool,
    ) -> Result<Option<String>, Error> {
        Self::require_admin(actor)?;
        check_user_name(name)?;
        let generated = password.is_none().then(random_password);
        let password = password.or(generated.as_deref()).unwrap_or_default();
        check_password_strength(password)?;
        let hash = hash_password(password)?;
        self.meta.write(|w| {
            if w.user(name)?.is_some() {
                return Err(Error::Conflict(format!("user {name:?} already exists")));
            }
            w.put_user(
                name,
                &UserRecord {
                    password_hash: hash,
                    admin,
                    disabled: false,
                    created: self.clock.now(),
                    last_login: None,
                },
            )?;
            let role = if admin { " (administrator)" } else { "" };
            audit::append(
                w,
                &self.clock,
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
    pub fn update_user(
        &self,
        actor: &Principal,
        name: &str,
        disabled: Option<bool>,
        admin: Option<bool>,
    ) -> Result<(), Error> {
        Self::require_admin(actor)?;
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
        self.change_user(name, entry, |u| {
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
        self.change_password(name, password, actor.user())
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
            .meta
            .read()?
            .user(name)?
            .is_some_and(|u| super::directory::is_directory_account(&u.password_hash))
        {
            return Err(Error::Invalid(format!(
                "{name} is a directory account: its password is the directory's, changed there"
            )));
        }
        check_password_strength(password)?;
        match self.login(name, current, client) {
            Ok(_) => {}
            Err(Error::InvalidCredentials) => {
                return Err(Error::Invalid(
                    "the current password is not right: the password was not changed".into(),
                ));
            }
            Err(e) => return Err(e),
        }
        self.change_password(name, password, name)
    }

    /// Sets a password with no actor: the offline recovery path (`semdock user reset-password`).
    pub fn reset_password(&self, name: &str, password: &str) -> Result<(), Error> {
        self.change_password(name, password, "local recovery")
    }

    fn change_password(&self, name: &str, password: &str, actor: &str) -> Result<(), Error> {
        if self
            .meta
            .read()?
            .user(name)?
            .is_some_and(|u| super::directory::is_directory_account(&u.password_hash))
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

    fn change_user(
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

    /// Grants `role` on `feed` to user `name`, or removes the grant with `None`. Feed admins may
    /// grant on their feed; only administrators may grant `admin`.
    pub fn grant_user(
        &self,
        actor: &Principal,
        name: &str,
        feed: &str,
        role: Option<&str>,
    ) -> Result<(), Error> {
        let role = role.map(parse_role).transpose()?;
        self.require(Some(actor), feed, Action::Admin)?;
        self.meta.write(|w| {
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
            audit::append(w, &self.clock, entry)?;
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

    // ---- API keys ----

    /// Creates an API key for `owner` (the actor itself unless an administrator names
    /// another) with `roles` per feed; returns the key, shown this once.
    pub fn create_key(
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
            Self::require_admin(actor)?;
        }
        require_account_rights(actor)?;
        if name.trim().is_empty() || name.len() > 100 {
            return Err(Error::Invalid(
                "a key needs a name of 1 to 100 characters".into(),
            ));
        }
        if expires.is_some_and(|e| e <= self.clock.now()) {
            return Err(Error::Invalid("the expiry time is in the past".into()));
        }
        let roles = roles
            .iter()
            .map(|(feed, role)| Ok((feed.clone(), parse_role(role)?)))
            .collect::<Result<Vec<_>, Error>>()?;
        let id = hex::encode(random_bytes::<8>());
        let secret = hex::encode(random_bytes::<32>());
        let hash = *blake3::keyed_hash(&self.hash_key, secret.as_bytes()).as_bytes();
        self.meta.write(|w| {
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
                    created: self.clock.now(),
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
                &self.clock,
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
        let r = self.meta.read()?;
        let mut roles: std::collections::BTreeMap<String, String> =
            r.grants_of(&user_subject(user))?.into_iter().collect();
        // A directory account's group roles count as its own (the higher of the two).
        let groups = r
            .setting(&super::directory::roles_key(user))?
            .and_then(|b| serde_json::from_slice::<super::directory::GroupRoles>(&b).ok());
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
    pub fn keys(&self, actor: &Caller) -> Result<Vec<KeyInfo>, Error> {
        require_account_rights(actor)?;
        let r = self.meta.read()?;
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
    pub fn revoke_key(&self, actor: &Caller, id: &str) -> Result<(), Error> {
        // Any key may revoke itself (`semdock logout`): that only ever takes rights away.
        let itself = matches!(&actor.principal, Principal::Key { id: own, .. } if own == id);
        if !itself {
            require_account_rights(actor)?;
        }
        self.meta.write(|w| {
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
                &self.clock,
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

const EPOCH_SETTING: &str = "credentials-epoch:";

/// Whether an account stored before directory names were normalised under another
/// spelling of `name` (`ALICE`, ` alice` beside `alice`) was disabled by an administrator:
/// then the person stays locked out whichever spelling they use.
fn spelling_disabled_here(r: &dyn crate::store::meta::MetaRead, name: &str) -> Result<bool, Error> {
    for (other, u) in r.users()? {
        if other == name
            || !u.disabled
            || u.password_hash != DIRECTORY_PASSWORD
            || crate::clients::ldap::normalize_name(&other) != name
        {
            continue;
        }
        // Disabled by the directory (or as a stale spelling) leaves no DN; by an
        // administrator, the DN stays.
        if r.setting(&roles_key(&other))?
            .and_then(|b| serde_json::from_slice::<GroupRoles>(&b).ok())
            .is_some_and(|g| !g.dn.is_empty())
        {
            return Ok(true);
        }
    }
    Ok(false)
}

fn epoch_key(user: &str) -> String {
    format!("{EPOCH_SETTING}{user}")
}

fn epoch_from(stored: Option<Vec<u8>>) -> u64 {
    stored
        .and_then(|v| <[u8; 8]>::try_from(v.as_slice()).ok())
        .map_or(0, u64::from_le_bytes)
}

/// Voids every token and UI session of `user` issued before now.
fn bump_epoch(w: &mut dyn MetaWrite, user: &str) -> Result<(), Error> {
    let next = epoch_from(w.setting(&epoch_key(user))?) + 1;
    w.put_setting(&epoch_key(user), &next.to_le_bytes())?;
    Ok(())
}

const FEED_EPOCH_SETTING: &str = "feed-epoch:";

fn feed_epoch_key(feed: &str) -> String {
    format!("{FEED_EPOCH_SETTING}{feed}")
}

/// The feed a token's repository claim names: its first segment.
fn feed_of(repository: &str) -> &str {
    repository.split('/').next().unwrap_or_default()
}

/// Voids every token right that names `feed`, whoever holds it: called in the transaction
/// that deletes the feed or creates one of that name, so a right given in one feed never
/// reaches another that happens to share its name. (Grants and API key roles on a deleted
/// feed go in the same transaction: `MetaWrite::remove_grants_on`.)
pub(crate) fn bump_feed_epoch(w: &mut dyn MetaWrite, feed: &str) -> Result<(), Error> {
    let next = epoch_from(w.setting(&feed_epoch_key(feed))?) + 1;
    w.put_setting(&feed_epoch_key(feed), &next.to_le_bytes())?;
    Ok(())
}

fn roles_of(grants: &[(String, String)]) -> std::collections::BTreeMap<String, Role> {
    grants
        .iter()
        .filter_map(|(feed, role)| Some((feed.clone(), role.parse().ok()?)))
        .collect()
}

/// Managing an account's API keys and password needs proof of the account itself — its
/// password or a UI session — or an administrator's key, which carries that right
/// explicitly. A pull key that leaks cannot mint keys, list or revoke its owner's others.
pub(super) fn require_account_rights(caller: &Caller) -> Result<(), Error> {
    match caller.via {
        Via::Password | Via::Session | Via::Local => Ok(()),
        Via::ApiKey if caller.is_admin() => Ok(()),
        Via::ApiKey | Via::Token => Err(Error::Denied(format!(
            "{} may not manage API keys or passwords: use the account's password (or an administrator's key)",
            describe(caller)
        ))),
    }
}

fn describe(p: &Principal) -> String {
    match p {
        Principal::User { name, .. } => format!("user {name:?}"),
        Principal::Key { id, owner, .. } => format!("API key {id:?} of {owner:?}"),
    }
}

/// Writes a secret to a new file readable only by its owner.
fn last_admin_message(name: &str) -> String {
    format!(
        "{name} is the last enabled administrator: make another user an administrator first, or nobody could manage this registry"
    )
}

fn write_secret_file(path: &Path, secret: &str) -> Result<(), Error> {
    let mut file = crate::store::owner_only::options()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)?;
    writeln!(file, "{secret}")?;
    file.sync_all()?;
    Ok(())
}
