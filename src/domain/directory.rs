//! Sign-in with the company directory (LDAP, Active Directory, or an `OpenID Connect`
//! provider): who a directory user is and which roles their groups give them.
//!
//! A directory user logs in with the directory's password; on success semdock keeps a local
//! account for them (no password of its own: `DIRECTORY_PASSWORD`), its administrator flag
//! and its group roles (the setting `directory:NAME`) from the directory's groups. Their roles
//! are the union of those group roles and any local grants. A refresh (`auth::DirectoryAccounts::refresh`,
//! every half `cache_seconds`) asks the directory about each such account again: one no longer
//! found (removed, or excluded by the user filter, as a disabled account is) is disabled, and
//! changed groups change the roles; either voids the account's tokens and sessions (its
//! epoch), and its API keys stop with a disabled owner. A directory that cannot be asked
//! fails closed for directory accounts after twice `cache_seconds`; local accounts are never
//! affected.
//!
//! An `OpenID Connect` account (`OIDC_PASSWORD`) signs in through the browser only; its
//! groups come from a claim, and the refresh asks the provider with the refresh token it
//! issued at sign-in: a refused grant (the user disabled or removed there) disables the
//! account. A provider that issued no refresh token cannot be asked, so such an account
//! fails closed twice `cache_seconds` after its sign-in until the user signs in again.

use crate::store::meta::settings::{Family, Json, Text};
use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::clients::ldap::{DirectoryUser, Ldap};
use crate::clients::oidc::Oidc;
use crate::model::Role;

/// The password hash of an LDAP directory account: no password matches it, so only the
/// directory logs it in.
pub const DIRECTORY_PASSWORD: &str = "!directory";
/// The password hash of an `OpenID Connect` account: no password matches it; it signs in
/// through the provider, and clients use its API keys.
pub const OIDC_PASSWORD: &str = "!oidc";

/// Whether a stored password hash marks an account the directory owns.
#[must_use]
pub fn is_directory_account(password_hash: &str) -> bool {
    password_hash == DIRECTORY_PASSWORD || password_hash == OIDC_PASSWORD
}

/// user → an `OpenID Connect` account's refresh token, in the settings table.
pub(crate) const REFRESH: Family<Text> = Family::keyed("oidc-refresh:", "OIDC refresh token");

/// user → a directory account's group roles, in the settings table.
pub(crate) const ROLES: Family<Json<GroupRoles>> =
    Family::keyed("directory:", "directory account's roles");

/// A directory group and what its members may do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupRole {
    /// The group's DN, or the value of its first RDN (`cn=devs,ou=groups,…` or `devs`).
    pub group: String,
    /// Members are administrators of the whole registry.
    #[serde(default)]
    pub admin: bool,
    /// With `role`: members hold this role on this feed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feed: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
}

impl GroupRole {
    fn matches(&self, dn: &str) -> bool {
        let g = self.group.trim();
        if g.eq_ignore_ascii_case(dn.trim()) {
            return true;
        }
        let first = dn.split(',').next().unwrap_or_default();
        first
            .split_once('=')
            .is_some_and(|(_, v)| v.trim().eq_ignore_ascii_case(g))
    }
}

/// What a directory account's groups give it, as stored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupRoles {
    /// When the directory was last asked, Unix milliseconds.
    pub checked_ms: u64,
    pub admin: bool,
    /// Feed → role.
    pub feeds: BTreeMap<String, String>,
    pub dn: String,
    pub groups: Vec<String>,
    /// An `OpenID Connect` account's owner, the provider's (`issuer`, `sub`): kept when the
    /// provider disables the account (which empties `dn`), so that another user of the
    /// provider never takes the account over. Empty for LDAP accounts and for OIDC
    /// accounts stored before it was kept (their `dn` is the `sub`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub issuer: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub subject: String,
}

impl GroupRoles {
    /// Whether the provider's user (`issuer`, `subject`) owns this `OpenID Connect` account.
    #[must_use]
    pub fn owned_by(&self, issuer: &str, subject: &str) -> bool {
        let same_issuer = |i: &str| {
            i.is_empty() || i.trim_end_matches('/') == issuer.trim().trim_end_matches('/')
        };
        if self.subject.is_empty() {
            !self.dn.is_empty() && self.dn == subject
        } else {
            self.subject == subject && same_issuer(&self.issuer)
        }
    }

    /// Whether some user of a provider owns this account (see `owned_by`).
    #[must_use]
    pub fn has_owner(&self) -> bool {
        !self.subject.is_empty() || !self.dn.is_empty()
    }

    /// The role the groups give on `feed`.
    #[must_use]
    pub fn role(&self, feed: &str) -> Option<Role> {
        self.feeds.get(feed).and_then(|r| r.parse().ok())
    }
}

/// The directory (an LDAP server, an `OpenID Connect` provider, or both) and the mapping
/// of its groups.
pub struct Directory {
    ldap: Option<Ldap>,
    oidc: Option<Oidc>,
    groups: Vec<GroupRole>,
    pub cache: Duration,
}

impl Directory {
    /// Checks the mapping (roles that exist) and the client's settings.
    pub fn new(
        ldap: Option<Ldap>,
        oidc: Option<Oidc>,
        groups: Vec<GroupRole>,
        cache: Duration,
    ) -> Result<Self, String> {
        for g in &groups {
            match (&g.feed, &g.role) {
                (Some(_), Some(r)) => {
                    r.parse::<Role>().map_err(|_| {
                        format!("directory group {:?}: {r:?} is not a role (pull, push, promote, delete, admin)", g.group)
                    })?;
                }
                (None, None) if g.admin => {}
                _ => {
                    return Err(format!(
                        "directory group {:?}: give feed and role, or admin = true",
                        g.group
                    ));
                }
            }
        }
        if ldap.is_none() && oidc.is_none() {
            return Err("a directory needs directory.ldap or directory.oidc".into());
        }
        Ok(Self {
            ldap,
            oidc,
            groups,
            cache,
        })
    }

    /// The LDAP server, when one is configured.
    #[must_use]
    pub fn ldap(&self) -> Option<&Ldap> {
        self.ldap.as_ref()
    }

    /// The `OpenID Connect` provider, when one is configured.
    #[must_use]
    pub fn oidc(&self) -> Option<&Oidc> {
        self.oidc.as_ref()
    }

    /// What `user`'s groups give, at `now_ms`.
    #[must_use]
    pub fn resolve(&self, user: &DirectoryUser, now_ms: u64) -> GroupRoles {
        let mut out = GroupRoles {
            checked_ms: now_ms,
            dn: user.dn.clone(),
            groups: user.groups.clone(),
            ..GroupRoles::default()
        };
        for mapping in &self.groups {
            if !user.groups.iter().any(|g| mapping.matches(g)) {
                continue;
            }
            out.admin |= mapping.admin;
            if let (Some(feed), Some(role)) = (&mapping.feed, &mapping.role) {
                let new: Role = role.parse().unwrap_or(Role::Pull);
                let keep = out
                    .feeds
                    .get(feed)
                    .and_then(|r| r.parse::<Role>().ok())
                    .is_some_and(|old| old.caps().join(new.caps()) == old.caps());
                if !keep {
                    out.feeds.insert(feed.clone(), new.as_str().to_owned());
                }
            }
        }
        out
    }
}
