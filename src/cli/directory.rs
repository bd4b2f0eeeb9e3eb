//! `semdock directory test`: the configured directory checked step by step.

#[allow(clippy::wildcard_imports)]
use super::*;

/// `semdock directory test`: each step the server takes, and what it found.
pub(super) fn directory_test(config: &Config, user: Option<&str>) -> anyhow::Result<()> {
    let dir = crate::server::open_directory(config).map_err(anyhow::Error::msg)?.context(
        "no directory is configured: add [directory.ldap] or [directory.oidc] to the configuration",
    )?;
    if let Some(oidc) = dir.oidc() {
        let found = oidc.check().map_err(|e| {
            anyhow::anyhow!(
                "{e} (OpenID Connect: is the issuer {} right and reachable; with https, does ca_file hold the CA that signed the provider's certificate?)",
                oidc.issuer()
            )
        })?;
        println!("OpenID Connect: {found}");
    }
    let (Some(ldap), Some(dir_ldap)) = (&config.directory.ldap, dir.ldap()) else {
        if user.is_some() {
            anyhow::bail!(
                "only an LDAP directory can be asked about a user; OpenID Connect users are seen when they sign in"
            );
        }
        return Ok(());
    };
    let explain = |e: crate::domain::ClientError| match e {
        crate::domain::ClientError::Unavailable { why, .. } => anyhow::anyhow!(
            "cannot reach {}: {why} (is the URL right; with StartTLS or ldaps://, does ca_file hold the CA that signed the server's certificate?)",
            ldap.url
        ),
        refused @ crate::domain::ClientError::Refused { .. } => anyhow::anyhow!("{refused}"),
    };
    dir_ldap.check().map_err(explain)?;
    println!(
        "{}: reached{}, {}",
        ldap.url,
        if ldap.starttls { " with StartTLS" } else { "" },
        ldap.bind_dn.as_deref().map_or_else(
            || "searching anonymously".to_owned(),
            |dn| format!("the service account {dn} bound")
        )
    );
    let Some(user) = user else {
        return Ok(());
    };
    let Some(found) = dir_ldap.find(user).map_err(explain)? else {
        anyhow::bail!(
            "no single entry under {} matches {} for {user:?} (unknown, ambiguous, or excluded by the filter, as disabled accounts are)",
            ldap.user_base,
            ldap.user_filter
        );
    };
    println!("user {user}: {}", found.dn);
    println!("  semdock account: {}", found.name);
    if found.groups.is_empty() {
        println!("  groups: none found (check group_attribute, or group_base and group_filter)");
    } else {
        println!("  groups: {}", found.groups.join("; "));
    }
    let roles = dir.resolve(&found, 0);
    let feeds: Vec<String> = roles
        .feeds
        .iter()
        .map(|(f, r)| format!("{f} {r}"))
        .collect();
    println!(
        "  administrator: {}; roles from groups: {}",
        if roles.admin { "yes" } else { "no" },
        if feeds.is_empty() {
            "none".to_owned()
        } else {
            feeds.join(", ")
        }
    );
    Ok(())
}
