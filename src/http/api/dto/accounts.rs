//! Users, roles and API keys.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::auth;
use crate::model;

/// A role granted on a feed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Pull,
    Push,
    Promote,
    Delete,
    Admin,
}

impl From<model::Role> for Role {
    fn from(r: model::Role) -> Self {
        match r {
            model::Role::Pull => Self::Pull,
            model::Role::Push => Self::Push,
            model::Role::Promote => Self::Promote,
            model::Role::Delete => Self::Delete,
            model::Role::Admin => Self::Admin,
        }
    }
}

fn roles(roles: BTreeMap<String, model::Role>) -> BTreeMap<String, Role> {
    roles.into_iter().map(|(f, r)| (f, r.into())).collect()
}

/// A user as listed.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UserInfo {
    pub name: String,
    pub admin: bool,
    pub disabled: bool,
    pub created: u64,
    pub last_login: Option<u64>,
    /// feed → role
    pub roles: BTreeMap<String, Role>,
}

impl From<auth::UserInfo> for UserInfo {
    fn from(u: auth::UserInfo) -> Self {
        Self {
            name: u.name,
            admin: u.admin,
            disabled: u.disabled,
            created: u.created,
            last_login: u.last_login,
            roles: roles(u.roles),
        }
    }
}

/// An API key as listed (never its secret).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct KeyInfo {
    pub id: String,
    pub name: String,
    pub owner: String,
    pub admin: bool,
    pub created: u64,
    pub expires: Option<u64>,
    pub roles: BTreeMap<String, Role>,
}

impl From<auth::KeyInfo> for KeyInfo {
    fn from(k: auth::KeyInfo) -> Self {
        Self {
            id: k.id,
            name: k.name,
            owner: k.owner,
            admin: k.admin,
            created: k.created,
            expires: k.expires,
            roles: roles(k.roles),
        }
    }
}

/// A new API key: its secret is shown only here.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct NewKey {
    pub id: String,
    /// The whole key, to use as a password. It is not stored and cannot be shown again.
    pub key: String,
}

impl From<auth::NewKey> for NewKey {
    fn from(k: auth::NewKey) -> Self {
        Self {
            id: k.id,
            key: k.key,
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    pub name: String,
    /// Omit to have one generated and returned.
    pub password: Option<String>,
    #[serde(default)]
    pub admin: bool,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CreatedUser {
    pub name: String,
    /// The generated password, when none was given; shown only here.
    pub password: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserUpdate {
    pub disabled: Option<bool>,
    pub admin: Option<bool>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    pub password: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleGrant {
    /// `pull`, `push`, `promote`, `delete` or `admin`.
    pub role: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewKeyRequest {
    pub name: String,
    /// The key's owner; only administrators may name someone else.
    pub owner: Option<String>,
    /// feed → role; the key never holds more than its owner.
    #[serde(default)]
    pub roles: BTreeMap<String, String>,
    /// Administrator rights, for an administrator's own automation.
    #[serde(default)]
    pub admin: bool,
    /// Unix seconds after which the key stops working.
    pub expires_at: Option<u64>,
    /// Give the key every role its owner holds now, besides `roles` (what `semdock login`
    /// asks for). An administrator's key asks for `admin` as well.
    #[serde(default)]
    pub owner_roles: bool,
}

/// A robot account as listed (never its secret).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RobotInfo {
    /// `robot$FEED+NAME`, or `robot$NAME` for a registry robot: the user name to log in with.
    pub name: String,
    /// The feed that owns it; none for a registry robot.
    pub feed: Option<String>,
    pub description: String,
    pub created: u64,
    pub created_by: String,
    pub expires: Option<u64>,
    pub disabled: bool,
    /// Unix seconds of its last login (to the minute).
    pub last_used: Option<u64>,
    pub last_address: Option<String>,
    pub roles: BTreeMap<String, Role>,
}

impl From<auth::RobotInfo> for RobotInfo {
    fn from(r: auth::RobotInfo) -> Self {
        Self {
            name: r.name,
            feed: r.feed,
            description: r.description,
            created: r.created,
            created_by: r.created_by,
            expires: r.expires,
            disabled: r.disabled,
            last_used: r.last_used,
            last_address: r.last_address,
            roles: roles(r.roles),
        }
    }
}

/// A new robot account.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRobot {
    /// Its short name (a-z 0-9 . _ -); the full name adds `robot$` and the feed.
    pub name: String,
    /// The feed that owns it (its administrators manage it); none for a registry robot
    /// (administrators only).
    pub feed: Option<String>,
    #[serde(default)]
    pub description: String,
    /// feed → role; a feed's robot holds roles in that feed only.
    #[serde(default)]
    pub roles: BTreeMap<String, String>,
    /// Unix seconds after which it stops working.
    pub expires_at: Option<u64>,
}

/// A robot's secret: in the answer to its creation or rotation only.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RobotSecret {
    pub name: String,
    /// The password (`docker login -u NAME --password-stdin`).
    pub secret: String,
}

impl From<auth::RobotSecret> for RobotSecret {
    fn from(s: auth::RobotSecret) -> Self {
        Self {
            name: s.name,
            secret: s.secret,
        }
    }
}

/// A change of a robot (each field optional).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RobotUpdate {
    pub description: Option<String>,
    pub disabled: Option<bool>,
    /// Replaces every role.
    pub roles: Option<BTreeMap<String, String>>,
    /// Unix seconds; 0 removes the expiry.
    pub expires_at: Option<u64>,
}

impl From<RobotUpdate> for auth::RobotChange {
    fn from(u: RobotUpdate) -> Self {
        Self {
            description: u.description,
            disabled: u.disabled,
            roles: u.roles,
            expires: u.expires_at.map(|e| (e > 0).then_some(e)),
        }
    }
}

/// A workload identity rule: which tokens of an issuer act as which robot.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FederationRule {
    /// Set by the server.
    #[serde(default)]
    pub id: String,
    /// `https://token.actions.githubusercontent.com`, a GitLab instance, a cluster's issuer.
    pub issuer: String,
    /// The `aud` the tokens carry.
    pub audience: String,
    /// claim → glob (`*`); `a/b` reaches into an object. At least one.
    pub claims: BTreeMap<String, String>,
    /// The robot's full name (`robot$prod+ci`).
    pub robot: String,
    /// A JWKS document, for an issuer the server cannot reach (its keys are not fetched).
    #[serde(default)]
    pub jwks: Option<String>,
    #[serde(default)]
    pub created: u64,
    #[serde(default)]
    pub created_by: String,
}

impl From<(String, auth::FederationRule)> for FederationRule {
    fn from((id, r): (String, auth::FederationRule)) -> Self {
        Self {
            id,
            issuer: r.issuer,
            audience: r.audience,
            claims: r.claims,
            robot: r.robot,
            jwks: r.jwks,
            created: r.created,
            created_by: r.created_by,
        }
    }
}

impl From<FederationRule> for auth::FederationRule {
    fn from(r: FederationRule) -> Self {
        Self {
            issuer: r.issuer,
            audience: r.audience,
            claims: r.claims,
            robot: r.robot,
            jwks: r.jwks,
            created: 0,
            created_by: String::new(),
        }
    }
}
