//! Authentication and authorization: users, API keys, per-feed roles, tokens, rate limits.
//!
//! Rules enforced here: passwords are stored only as argon2id hashes and API keys only as
//! keyed blake3 hashes; a key never holds more than its owner; a token grants the
//! intersection of what was asked and what the caller may do; failed logins are rate-limited
//! per user and per client address; a disabled user or a revoked key stops working at once,
//! tokens included.

use crate::store::meta::settings::{Bytes, Epoch, Family};

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
use super::directory::{DIRECTORY_PASSWORD, GroupRoles, ROLES};

mod authorization;
mod directory_accounts;
pub mod federation;
mod keys;
mod limiter;
mod login;
pub mod robots;
pub mod sessions;
mod tokens;
mod users;

pub use directory_accounts::DirectoryAccounts;
pub use federation::{FEDERATED_USER, Federation, FederationRule};
pub use keys::Keys;
use limiter::Limiter;
pub use robots::{RobotChange, RobotInfo, RobotSecret, Robots};
pub use sessions::Sessions;
use tokens::{
    FEED_CACHE_BYTES, FEED_CACHE_ENTRIES, TOKEN_CACHE_BYTES, TOKEN_CACHE_ENTRIES, VerifiedToken,
};
pub use users::Users;

/// The file the first start writes the admin's password to.
pub const INITIAL_PASSWORD_FILE: &str = "initial-admin-password";
/// The user who exists from the first start.
pub const INITIAL_ADMIN: &str = "admin";
/// The user name `ProGet` clients send with an API key as the password.
pub const API_KEY_USER: &str = "api";
const KEY_PREFIX: &str = "sdk_";
/// The key that signs bearer tokens, in the settings table.
pub(crate) const TOKEN_KEY: Family<Bytes> =
    Family::single("token-signing-key", "token signing key");
/// The key of API key hashes, in the settings table.
pub(crate) const HASH_KEY: Family<Bytes> = Family::single("api-key-hash-key", "API key hash key");
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
    /// A robot account (`robot$FEED+NAME` or `robot$NAME`): its own roles, never an
    /// administrator, owned by no person.
    Robot {
        name: String,
    },
}

impl Principal {
    /// `user:NAME` or `key:ID`: the subject of tokens and the key of grants.
    #[must_use]
    pub fn subject(&self) -> String {
        match self {
            Self::User { name, .. } => user_subject(name),
            Self::Key { id, .. } => key_subject(id),
            Self::Robot { name } => robots::robot_subject(name),
        }
    }

    #[must_use]
    pub fn is_admin(&self) -> bool {
        match self {
            Self::User { admin, .. } | Self::Key { admin, .. } => *admin,
            Self::Robot { .. } => false,
        }
    }

    /// The user acting: the user, the key's owner, or the robot itself.
    #[must_use]
    pub fn user(&self) -> &str {
        match self {
            Self::User { name, .. } | Self::Robot { name } => name,
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
    /// A robot account's secret.
    Robot,
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
#[derive(Debug, Clone, Serialize)]
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
#[derive(Debug, Clone, Serialize)]
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
#[derive(Debug, Clone, Serialize)]
pub struct NewKey {
    pub id: String,
    /// The whole key, to use as a password. It is not stored and cannot be shown again.
    pub key: String,
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
    /// Workload identity issuers' keys.
    workload: crate::clients::workload::Issuers,
    /// Workload identity tokens verified: hash → (robot, remembered until, unix seconds).
    federated: Mutex<HashMap<[u8; 32], (String, u64)>>,
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
        && name != federation::FEDERATED_USER
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "user name {name:?} is invalid: use 1 to 64 of a-z 0-9 . _ - (and not \"api\" or \"oidc\")"
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
            let mut secret = |family: &Family<Bytes>| -> Result<Vec<u8>, Error> {
                if let Some(v) = family.get(w, "")? {
                    return Ok(v);
                }
                let v = random_bytes::<32>().to_vec();
                family.put(w, "", &v)?;
                Ok(v)
            };
            let token_key = secret(&TOKEN_KEY)?;
            let hash_key = secret(&HASH_KEY)?;
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
                workload: crate::clients::workload::Issuers::default(),
                federated: Mutex::new(HashMap::new()),
            },
            initial,
        ))
    }

    #[must_use]
    pub fn service(&self) -> &str {
        &self.settings.service
    }

    /// Users: list, create, change, passwords, grants.
    #[must_use]
    pub fn users(&self) -> Users<'_> {
        Users { auth: self }
    }

    /// API keys: create, list, revoke.
    #[must_use]
    pub fn keys(&self) -> Keys<'_> {
        Keys { auth: self }
    }

    /// UI sessions: start, look up, end, rebase.
    #[must_use]
    pub fn sessions(&self) -> Sessions<'_> {
        Sessions { auth: self }
    }

    /// Directory accounts: OIDC sign-in, the account refresh.
    #[must_use]
    pub fn directory(&self) -> DirectoryAccounts<'_> {
        DirectoryAccounts { auth: self }
    }

    /// Lets directory users log in (once, at start).
    pub fn set_directory(&self, directory: Arc<super::directory::Directory>) {
        let _ = self.directory.set(directory);
    }
}

/// user → the account's credential epoch, in the settings table.
pub(crate) const EPOCHS: Family<Epoch> = Family::keyed("credentials-epoch:", "credential epoch");

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
        if ROLES.get(r, &other)?.is_some_and(|g| !g.dn.is_empty()) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Voids every token and UI session of `user` issued before now.
fn bump_epoch(w: &mut dyn MetaWrite, user: &str) -> Result<(), Error> {
    let next = EPOCHS.get(&*w, user)?.unwrap_or(0) + 1;
    EPOCHS.put(w, user, &next)?;
    Ok(())
}

/// feed → the feed's epoch, which voids the token rights naming it, in the settings table.
pub(crate) const FEED_EPOCHS: Family<Epoch> = Family::keyed("feed-epoch:", "feed epoch");

/// The feed a token's repository claim names: its first segment.
fn feed_of(repository: &str) -> &str {
    repository.split('/').next().unwrap_or_default()
}

/// Voids every token right that names `feed`, whoever holds it: called in the transaction
/// that deletes the feed or creates one of that name, so a right given in one feed never
/// reaches another that happens to share its name. (Grants and API key roles on a deleted
/// feed go in the same transaction: `MetaWrite::remove_grants_on`.)
pub(crate) fn bump_feed_epoch(w: &mut dyn MetaWrite, feed: &str) -> Result<(), Error> {
    let next = FEED_EPOCHS.get(&*w, feed)?.unwrap_or(0) + 1;
    FEED_EPOCHS.put(w, feed, &next)?;
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
        Via::ApiKey | Via::Token | Via::Robot => Err(Error::Denied(format!(
            "{} may not manage API keys or passwords: use the account's password (or an administrator's key)",
            describe(caller)
        ))),
    }
}

fn describe(p: &Principal) -> String {
    match p {
        Principal::User { name, .. } => format!("user {name:?}"),
        Principal::Key { id, owner, .. } => format!("API key {id:?} of {owner:?}"),
        Principal::Robot { name } => format!("robot {name}"),
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
