//! An LDAP directory (`OpenLDAP`, Active Directory) as semdock asks it: find a user with the
//! service account's bind, check a password by binding as the user's DN, and read the
//! user's groups (`memberOf`, or a search of group entries). `ldaps://` or `StartTLS` with a
//! CA file; every value a client typed is escaped before it enters a filter.

use std::sync::Arc;
use std::time::Duration;

use ldap3::{LdapConn, LdapConnSettings, Scope, SearchEntry, ldap_escape};

use super::{ClientError, Peer};

/// How to reach and read the directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LdapSettings {
    /// `ldap://host:389` or `ldaps://host:636`.
    pub url: String,
    /// Upgrade an `ldap://` connection with `StartTLS` before anything is sent.
    pub starttls: bool,
    /// PEM certificates the server's is verified against (the system roots otherwise).
    pub ca_pem: Option<Vec<u8>>,
    /// The service account that searches; anonymous when unset.
    pub bind_dn: Option<String>,
    pub bind_password: Option<crate::model::Secret>,
    pub user_base: String,
    /// `(uid={user})`, `(sAMAccountName={user})`; may exclude disabled accounts.
    pub user_filter: String,
    /// An attribute of the user entry listing its groups' DNs (`memberOf`); when unset,
    /// groups are searched under `group_base` with `group_filter`.
    pub group_attribute: Option<String>,
    pub group_base: Option<String>,
    /// `(member={dn})`, `(memberUid={user})`.
    pub group_filter: String,
    pub timeout: Duration,
}

/// A user the directory knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryUser {
    pub dn: String,
    /// The semdock account of this entry: the value the directory holds in the naming
    /// attribute of `user_filter` (`uid`, `sAMAccountName`), trimmed and lower-cased — not
    /// what the user typed, so that every spelling the directory matches (`ALICE`, ` alice`)
    /// is the one account (of several values, the least). The typed name, trimmed and
    /// lower-cased, when the entry has no such attribute. (For `OpenID Connect`: the account
    /// the subject signs in as.)
    pub name: String,
    /// The DNs of the user's groups.
    pub groups: Vec<String>,
}

/// A client of one directory.
pub struct Ldap {
    settings: LdapSettings,
    tls: Option<Arc<rustls::ClientConfig>>,
}

/// The attribute `filter` matches `{user}` against (`uid` in `(&(uid={user})(…))`): the
/// entry's name. The first one when there are several.
fn naming_attribute(filter: &str) -> Option<&str> {
    let at = filter.find("={user}")?;
    let before = filter[..at].trim_end_matches(['~', '<', '>', ':']);
    let start = before.rfind('(').map_or(0, |i| i + 1);
    let attr = before[start..].trim();
    (!attr.is_empty()
        && attr
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-;.".contains(&b)))
    .then_some(attr)
}

/// A user name as semdock keeps it: the directory compares names ignoring case and
/// surrounding spaces, so semdock does too.
#[must_use]
pub fn normalize_name(name: &str) -> String {
    name.trim().to_lowercase()
}

/// Unreachable, timed out, TLS failed.
fn unavailable(e: impl std::fmt::Display) -> ClientError {
    ClientError::unavailable(Peer::Directory, e)
}

/// It answered, but not as configured (the service bind refused, a bad filter).
fn refused(e: impl std::fmt::Display) -> ClientError {
    ClientError::refused(Peer::Directory, e)
}

impl Ldap {
    /// Checks the settings (the CA file parses) without connecting.
    pub fn new(settings: LdapSettings) -> Result<Self, ClientError> {
        let tls = match &settings.ca_pem {
            None => None,
            Some(pem) => {
                use rustls_pki_types::CertificateDer;
                use rustls_pki_types::pem::PemObject;
                let mut roots = rustls::RootCertStore::empty();
                for cert in CertificateDer::pem_slice_iter(pem) {
                    let cert = cert.map_err(|e| refused(format!("its CA file is not PEM: {e}")))?;
                    roots.add(cert).map_err(|e| {
                        refused(format!("its CA file holds a bad certificate: {e}"))
                    })?;
                }
                let config = rustls::ClientConfig::builder_with_provider(Arc::new(
                    rustls::crypto::ring::default_provider(),
                ))
                .with_safe_default_protocol_versions()
                .map_err(|e| refused(e.to_string()))?
                .with_root_certificates(roots)
                .with_no_client_auth();
                Some(Arc::new(config))
            }
        };
        Ok(Self { settings, tls })
    }

    fn connect(&self) -> Result<LdapConn, ClientError> {
        let mut s = LdapConnSettings::new()
            .set_conn_timeout(self.settings.timeout)
            .set_starttls(self.settings.starttls);
        if let Some(tls) = &self.tls {
            s = s.set_config(tls.clone());
        }
        let mut conn = LdapConn::with_settings(s, &self.settings.url).map_err(unavailable)?;
        conn.with_timeout(self.settings.timeout);
        Ok(conn)
    }

    /// A connection bound as the service account (or anonymous).
    fn service(&self) -> Result<LdapConn, ClientError> {
        let mut conn = self.connect()?;
        if let Some(dn) = &self.settings.bind_dn {
            let password = self
                .settings
                .bind_password
                .as_ref()
                .map_or("", crate::model::Secret::expose);
            conn.simple_bind(dn, password)
                .map_err(unavailable)?
                .success()
                .map_err(|e| refused(format!("the service account {dn} could not bind: {e}")))?;
        }
        Ok(conn)
    }

    fn search(
        conn: &mut LdapConn,
        base: &str,
        filter: &str,
        attrs: Vec<&str>,
    ) -> Result<Vec<SearchEntry>, ClientError> {
        let (entries, _) = conn
            .search(base, Scope::Subtree, filter, attrs)
            .map_err(unavailable)?
            .success()
            .map_err(|e| refused(format!("a search under {base} failed: {e}")))?;
        Ok(entries.into_iter().map(SearchEntry::construct).collect())
    }

    /// Connects and binds as the service account.
    pub fn check(&self) -> Result<(), ClientError> {
        let mut conn = self.service()?;
        let _ = conn.unbind();
        Ok(())
    }

    /// `user`'s entry and groups, or `None` when the filter finds no one (or more than one:
    /// an ambiguous name logs no one in).
    pub fn find(&self, user: &str) -> Result<Option<DirectoryUser>, ClientError> {
        let mut conn = self.service()?;
        let found = self.find_with(&mut conn, user);
        let _ = conn.unbind();
        found
    }

    fn find_with(
        &self,
        conn: &mut LdapConn,
        user: &str,
    ) -> Result<Option<DirectoryUser>, ClientError> {
        let s = &self.settings;
        let filter = s.user_filter.replace("{user}", &ldap_escape(user));
        let naming = naming_attribute(&s.user_filter);
        let attrs: Vec<&str> = s
            .group_attribute
            .as_deref()
            .into_iter()
            .chain(naming)
            .collect();
        let attrs = if attrs.is_empty() { vec!["1.1"] } else { attrs };
        let mut entries = Self::search(conn, &s.user_base, &filter, attrs)?;
        if entries.len() != 1 {
            return Ok(None);
        }
        let entry = entries.remove(0);
        // The directory's own spelling of the name; of several values (`uid: alice`,
        // `uid: asmith`), the least, so that every one of them is the same account.
        let values = naming
            .and_then(|a| {
                entry
                    .attrs
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(a))
                    .map(|(_, v)| v.clone())
            })
            .unwrap_or_default();
        let login = values
            .iter()
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
            .min_by_key(|v| normalize_name(v))
            .map_or_else(|| user.trim().to_owned(), str::to_owned);
        let groups = match (&s.group_attribute, &s.group_base) {
            (Some(attr), _) => entry.attrs.get(attr).cloned().unwrap_or_default(),
            (None, Some(base)) => {
                let filter = s
                    .group_filter
                    .replace("{dn}", &ldap_escape(&entry.dn))
                    .replace("{user}", &ldap_escape(&login));
                Self::search(conn, base, &filter, vec!["1.1"])?
                    .into_iter()
                    .map(|g| g.dn)
                    .collect()
            }
            (None, None) => Vec::new(),
        };
        Ok(Some(DirectoryUser {
            dn: entry.dn,
            name: normalize_name(&login),
            groups,
        }))
    }

    /// `user`'s entry when `password` binds as it; `None` for an unknown user or a wrong
    /// password. An empty password is refused here: LDAP would take it as an anonymous
    /// bind and succeed.
    pub fn verify(&self, user: &str, password: &str) -> Result<Option<DirectoryUser>, ClientError> {
        if password.is_empty() {
            return Ok(None);
        }
        let Some(found) = self.find(user)? else {
            return Ok(None);
        };
        let mut conn = self.connect()?;
        let bound = conn.simple_bind(&found.dn, password).map_err(unavailable)?;
        let _ = conn.unbind();
        Ok((bound.rc == 0).then_some(found))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_naming_attribute_is_the_one_matched_against_the_user() {
        assert_eq!(naming_attribute("(uid={user})"), Some("uid"));
        assert_eq!(
            naming_attribute("(&(objectClass=person)(sAMAccountName={user})(!(x=y)))"),
            Some("sAMAccountName")
        );
        assert_eq!(
            naming_attribute("(|(uid={user})(mail={user}))"),
            Some("uid")
        );
        assert_eq!(naming_attribute("(cn~={user})"), Some("cn"));
        assert_eq!(naming_attribute("(description=x)"), None);
        assert_eq!(normalize_name("  ALICE "), "alice");
    }
}
