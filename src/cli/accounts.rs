//! `semdock user …` and `semdock key …`: accounts and API keys.

#[allow(clippy::wildcard_imports)]
use super::*;
use crate::domain::access::FeedAdmin;
use crate::http::api::dto::{
    self, CreatedUser, KeyInfo, NewKey, NewKeyRequest, NewUser, PasswordChange, RoleGrant,
    UserInfo, UserUpdate,
};

pub(super) fn user(target: &Target, action: UserAction) -> anyhow::Result<()> {
    match action {
        UserAction::Create {
            name,
            admin,
            password_stdin,
        } => {
            let password = read_password(password_stdin)?;
            match create_user(target, &name, password.as_deref(), admin)? {
                Some(generated) => println!("created user {name} with password {generated}"),
                None => println!("created user {name}"),
            }
        }
        UserAction::List { output, limit } => {
            let users = to_json(&users(target, limit)?)?;
            let users = users.as_array().cloned().unwrap_or_default();
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
            set_disabled(target, &name, true)?;
            println!("disabled user {name}");
        }
        UserAction::Enable { name } => {
            set_disabled(target, &name, false)?;
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
            set_password(target, &name, &password)?;
            if given.is_some() {
                println!("password of {name} changed");
            } else {
                println!("password of {name} is now {password}");
            }
        }
        UserAction::Grant { name, feed, role } => {
            grant(target, &name, &feed, Some(&role))?;
            println!("granted {role} on {feed} to {name}");
        }
        UserAction::Revoke { name, feed } => {
            grant(target, &name, &feed, None)?;
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
            let NewKey { id, key } = create_key(
                target,
                &NewKeyRequest {
                    name,
                    owner,
                    roles: parsed,
                    admin,
                    expires_at: expires,
                    owner_roles: false,
                },
            )?;
            let until = expires.map_or_else(String::new, |e| {
                format!(", valid until {}", rfc3339_seconds(e))
            });
            println!("created API key {id}{until}; it is shown only now:\n{key}");
        }
        KeyAction::List { output, limit } => {
            let keys = to_json(&keys(target, limit)?)?;
            let keys = keys.as_array().cloned().unwrap_or_default();
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
            revoke_key(target, &id)?;
            println!("revoked API key {id}");
        }
    }
    Ok(())
}

/// `{feed: role}` as `feed=role,…`.
#[must_use]
pub fn roles_text(roles: &serde_json::Value) -> String {
    roles
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(f, r)| format!("{f}={}", r.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

// The operations, each written once: the API's request, and the same through `Access`.

/// Creates a user; returns the generated password when none was given.
fn create_user(
    target: &Target,
    name: &str,
    password: Option<&str>,
    admin: bool,
) -> anyhow::Result<Option<String>> {
    let new = NewUser {
        name: name.to_owned(),
        password: password.map(str::to_owned),
        admin,
    };
    let created: CreatedUser = target.run(Request::send("POST", "/users", &new), |a| {
        let password = a.admin()?.create_user(name, password, admin)?;
        Ok(CreatedUser {
            name: name.to_owned(),
            password,
        })
    })?;
    Ok(created.password)
}

fn users(target: &Target, limit: Option<usize>) -> anyhow::Result<Vec<UserInfo>> {
    target.run_list("/users", limit, |a| Ok(dto::all(a.admin()?.users()?)))
}

fn set_disabled(target: &Target, name: &str, disabled: bool) -> anyhow::Result<()> {
    let update = UserUpdate {
        disabled: Some(disabled),
        admin: None,
    };
    let request = Request::send("PATCH", format!("/users/{name}"), &update);
    target.run(request, |a| {
        Ok(a.admin()?.update_user(name, Some(disabled), None)?)
    })
}

/// Sets a password: locally as the recovery it is (no administrator account needed, and
/// audited as "local recovery").
fn set_password(target: &Target, name: &str, password: &str) -> anyhow::Result<()> {
    let change = PasswordChange {
        password: password.to_owned(),
    };
    let request = Request::send("PUT", format!("/users/{name}/password"), &change);
    target.run_services(request, |s| {
        Ok(s.auth.users().reset_password(name, password)?)
    })
}

/// Gives user `name` `role` on `feed`, or takes their role there with `None`.
fn grant(target: &Target, name: &str, feed: &str, role: Option<&str>) -> anyhow::Result<()> {
    let path = format!("/users/{name}/roles/{feed}");
    let request = match role {
        Some(role) => Request::send(
            "PUT",
            path,
            &RoleGrant {
                role: role.to_owned(),
            },
        ),
        None => Request::delete(path),
    };
    target.run(request, |a| {
        Ok(a.feed::<FeedAdmin>(feed)?.grant(name, role)?)
    })
}

fn create_key(target: &Target, new: &NewKeyRequest) -> anyhow::Result<NewKey> {
    target.run(Request::send("POST", "/keys", new), |a| {
        let key = a.account()?.create_key(
            new.owner.as_deref(),
            &new.name,
            &new.roles,
            new.admin,
            new.expires_at,
        )?;
        Ok(key.into())
    })
}

fn keys(target: &Target, limit: Option<usize>) -> anyhow::Result<Vec<KeyInfo>> {
    target.run_list("/keys", limit, |a| Ok(dto::all(a.account()?.keys()?)))
}

fn revoke_key(target: &Target, id: &str) -> anyhow::Result<()> {
    target.run(Request::delete(format!("/keys/{id}")), |a| {
        Ok(a.revoke_key(id)?)
    })
}
