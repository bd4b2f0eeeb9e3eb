//! `semdock user …` and `semdock key …`: accounts and API keys.

#[allow(clippy::wildcard_imports)]
use super::*;

pub(super) fn user(target: &Target, action: UserAction) -> anyhow::Result<()> {
    match action {
        UserAction::Create {
            name,
            admin,
            password_stdin,
        } => {
            let password = read_password(password_stdin)?;
            match target.user_create(&name, password.as_deref(), admin)? {
                Some(generated) => println!("created user {name} with password {generated}"),
                None => println!("created user {name}"),
            }
        }
        UserAction::List { output, limit } => {
            let users = target.user_list(limit)?;
            if let Output::Json = output {
                println!("{}", serde_json::to_string_pretty(&users)?);
                return Ok(());
            }
            let rows: Vec<Vec<String>> = users
                .iter()
                .map(|u| {
                    let flags = [
                        ("admin", u["admin"].as_bool()),
                        ("disabled", u["disabled"].as_bool()),
                    ]
                    .iter()
                    .filter(|(_, on)| *on == Some(true))
                    .map(|(f, _)| *f)
                    .collect::<Vec<_>>()
                    .join(",");
                    vec![
                        u["name"].as_str().unwrap_or_default().to_owned(),
                        flags,
                        roles_text(&u["roles"]),
                    ]
                })
                .collect();
            print_table(&["USER", "FLAGS", "ROLES"], &rows);
        }
        UserAction::Disable { name } => {
            target.user_set_disabled(&name, true)?;
            println!("disabled user {name}");
        }
        UserAction::Enable { name } => {
            target.user_set_disabled(&name, false)?;
            println!("enabled user {name}");
        }
        UserAction::ResetPassword {
            name,
            password_stdin,
        } => {
            let given = read_password(password_stdin)?;
            let password = given
                .clone()
                .unwrap_or_else(crate::domain::auth::random_password);
            target.user_set_password(&name, &password)?;
            if given.is_some() {
                println!("password of {name} changed");
            } else {
                println!("password of {name} is now {password}");
            }
        }
        UserAction::Grant { name, feed, role } => {
            target.user_grant(&name, &feed, Some(&role))?;
            println!("granted {role} on {feed} to {name}");
        }
        UserAction::Revoke { name, feed } => {
            target.user_grant(&name, &feed, None)?;
            println!("removed the role of {name} on {feed}");
        }
    }
    Ok(())
}

pub(super) fn key(target: &Target, action: KeyAction) -> anyhow::Result<()> {
    match action {
        KeyAction::Create {
            name,
            owner,
            roles,
            admin,
            expires_days,
        } => {
            let mut parsed = BTreeMap::new();
            for r in roles {
                let Some((feed, role)) = r.split_once('=') else {
                    bail!("--role takes FEED=ROLE, e.g. prod=push; got {r:?}");
                };
                parsed.insert(feed.to_owned(), role.to_owned());
            }
            let expires =
                expires_days.map(|d| (now_ms() / 1000).saturating_add(d.saturating_mul(86_400)));
            let (id, key) = target.key_create(&name, owner.as_deref(), &parsed, admin, expires)?;
            let until = expires.map_or_else(String::new, |e| {
                format!(", valid until {}", rfc3339_seconds(e))
            });
            println!("created API key {id}{until}; it is shown only now:\n{key}");
        }
        KeyAction::List { output, limit } => {
            let keys = target.key_list(limit)?;
            if let Output::Json = output {
                println!("{}", serde_json::to_string_pretty(&keys)?);
                return Ok(());
            }
            let rows: Vec<Vec<String>> = keys
                .iter()
                .map(|k| {
                    let text = |f: &str| k[f].as_str().unwrap_or_default().to_owned();
                    vec![
                        text("id"),
                        text("name"),
                        text("owner"),
                        roles_text(&k["roles"]),
                        k["expires"]
                            .as_u64()
                            .map_or_else(|| "never".to_owned(), rfc3339_seconds),
                    ]
                })
                .collect();
            print_table(&["ID", "NAME", "OWNER", "ROLES", "EXPIRES"], &rows);
        }
        KeyAction::Revoke { id } => {
            target.key_revoke(&id)?;
            println!("revoked API key {id}");
        }
    }
    Ok(())
}
