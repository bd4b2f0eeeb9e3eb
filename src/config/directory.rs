//! The `[directory]` section: where directory accounts come from (LDAP, `OpenID Connect`).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Sign-in with the company directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DirectoryConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ldap: Option<LdapConfig>,
    /// UI sign-in through an `OpenID Connect` provider.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oidc: Option<OidcConfig>,
    /// Directory groups and the roles their members hold.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<crate::domain::directory::GroupRole>,
    /// A verified directory password is trusted this long; each directory account is asked
    /// about again every half of it, and is refused when it could not be for twice as long.
    pub cache_seconds: u64,
}

impl Default for DirectoryConfig {
    fn default() -> Self {
        Self {
            ldap: None,
            oidc: None,
            groups: Vec::new(),
            cache_seconds: 300,
        }
    }
}

/// An LDAP or Active Directory server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LdapConfig {
    /// `ldaps://dc.example.com` or `ldap://…` (with `starttls`).
    pub url: String,
    #[serde(default)]
    pub starttls: bool,
    /// PEM CA certificates of the server's certificate (the system's roots otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// The service account that searches (anonymous when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bind_dn: Option<String>,
    /// A file whose first line is the service account's password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bind_password_file: Option<PathBuf>,
    /// The password itself (from the environment in practice; never printed).
    #[serde(default, skip_serializing)]
    pub bind_password: Option<crate::model::Secret>,
    pub user_base: String,
    /// `{user}` is the login name, escaped. Exclude disabled accounts here (Active
    /// Directory: `(&(sAMAccountName={user})(!(userAccountControl:1.2.840.113556.1.4.803:=2)))`).
    #[serde(default = "default_user_filter")]
    pub user_filter: String,
    /// An attribute of the user's entry listing its groups (`memberOf`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_attribute: Option<String>,
    /// Where groups are searched when `group_attribute` is unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_base: Option<String>,
    /// `{dn}` is the user's DN and `{user}` the login name, escaped.
    #[serde(default = "default_group_filter")]
    pub group_filter: String,
    #[serde(default = "default_ldap_timeout")]
    pub timeout_seconds: u64,
}

/// An `OpenID Connect` provider the UI signs in with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcConfig {
    /// The issuer: its `/.well-known/openid-configuration` tells the rest.
    pub issuer: String,
    pub client_id: String,
    /// A file whose first line is the client secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret_file: Option<PathBuf>,
    /// The client secret itself (from the environment in practice; never printed). Neither
    /// set: a public client, with PKCE alone.
    #[serde(default, skip_serializing)]
    pub client_secret: Option<crate::model::Secret>,
    /// Scopes asked for; `openid` is always added. `offline_access` asks for the refresh
    /// token that lets semdock see later that a user was disabled.
    #[serde(default = "default_oidc_scopes")]
    pub scopes: Vec<String>,
    /// `prompt` of the sign-in request (`consent`: some providers issue a refresh token only
    /// after it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    /// The claim that names the semdock account; dots reach into objects.
    #[serde(default = "default_username_claim")]
    pub username_claim: String,
    /// The claim listing the user's groups, matched against `[[directory.groups]]`.
    #[serde(default = "default_groups_claim")]
    pub groups_claim: String,
    /// The label of the sign-in button.
    #[serde(default = "default_oidc_label")]
    pub label: String,
    /// PEM CA certificates of the provider's certificate (the system's roots otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    #[serde(default = "default_ldap_timeout")]
    pub timeout_seconds: u64,
}

fn default_oidc_scopes() -> Vec<String> {
    ["openid", "profile", "email", "offline_access"]
        .map(str::to_owned)
        .to_vec()
}

fn default_username_claim() -> String {
    "preferred_username".to_owned()
}

fn default_groups_claim() -> String {
    "groups".to_owned()
}

fn default_oidc_label() -> String {
    "Sign in with the company account".to_owned()
}

fn default_user_filter() -> String {
    "(uid={user})".to_owned()
}

fn default_group_filter() -> String {
    "(member={dn})".to_owned()
}

fn default_ldap_timeout() -> u64 {
    10
}
