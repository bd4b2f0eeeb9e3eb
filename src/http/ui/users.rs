//! Users and API keys: the administrators' list of users, the viewer's own keys, and the
//! forms that create, disable, reset and revoke them. Every POST checks the session's CSRF
//! token before anything else.

use std::collections::BTreeMap;

use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::login::CsrfOnly;
use super::secret::show_secret;
use super::session::Viewer;
use super::{AuthData, Nav, UiError, redirect, render, run, when};
use crate::domain::auth::random_password;

pub struct UserRow {
    pub name: String,
    pub admin: bool,
    pub disabled: bool,
    pub last_login: String,
    pub roles: String,
}

pub struct KeyRow {
    pub id: String,
    pub name: String,
    pub owner: String,
    pub admin: bool,
    pub roles: String,
    pub expires: String,
}

#[derive(Template)]
#[template(path = "users.html")]
struct UsersPage {
    title: &'static str,
    nav: Option<Nav>,
    users: Vec<UserRow>,
    keys: Vec<KeyRow>,
    feeds: Vec<String>,
}

fn roles_text<R: std::fmt::Display>(roles: &std::collections::BTreeMap<String, R>) -> String {
    roles
        .iter()
        .map(|(feed, role)| format!("{feed}: {role}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[derive(Template)]
#[template(path = "keys.html")]
struct KeysPage {
    title: &'static str,
    nav: Option<Nav>,
    keys: Vec<KeyRow>,
}

fn key_rows(keys: Vec<crate::domain::auth::KeyInfo>) -> Vec<KeyRow> {
    keys.into_iter()
        .map(|k| KeyRow {
            roles: roles_text(&k.roles),
            expires: k.expires.map_or_else(|| "never".into(), when),
            id: k.id,
            name: k.name,
            owner: k.owner,
            admin: k.admin,
        })
        .collect()
}

// GET /ui/keys — the viewer's own API keys, for docker and CI (every user: a directory or
// OpenID Connect user has no password a client could use).
pub async fn keys(v: Viewer) -> Result<HttpResponse, UiError> {
    let access = v.access.clone();
    let user = v.principal.user().to_owned();
    let keys = run(move || Ok(access.account()?.keys()?)).await?;
    render(&KeysPage {
        title: "Your API keys",
        nav: Nav::of(&v),
        keys: key_rows(keys.into_iter().filter(|k| k.owner == user).collect()),
    })
}

// GET /ui/users — users and API keys (administrators).
pub async fn users(v: Viewer) -> Result<HttpResponse, UiError> {
    let access = v.access.clone();
    let (users, keys, feeds) = run(move || {
        let admin = access.admin()?;
        Ok((admin.users()?, admin.keys()?, admin.feeds()?))
    })
    .await?;
    render(&UsersPage {
        title: "Users and API keys",
        nav: Nav::of(&v),
        users: users
            .into_iter()
            .map(|u| UserRow {
                last_login: u.last_login.map_or_else(|| "never".into(), when),
                roles: roles_text(&u.roles),
                name: u.name,
                admin: u.admin,
                disabled: u.disabled,
            })
            .collect(),
        keys: key_rows(keys),
        feeds: feeds.into_iter().map(|(n, _)| n).collect(),
    })
}

#[derive(Deserialize)]
pub struct NewUserForm {
    #[serde(default)]
    csrf: String,
    name: String,
    #[serde(default)]
    password: String,
    admin: Option<String>,
}

// POST /ui/users — creates a user; a generated password is shown once (administrators).
pub async fn create_user(v: Viewer, form: web::Form<NewUserForm>) -> Result<HttpResponse, UiError> {
    v.check_csrf(&form.csrf)?;
    let f = form.into_inner();
    let access = v.access.clone();
    let name = f.name.trim().to_owned();
    let n = name.clone();
    let generated = run(move || {
        let password = (!f.password.is_empty()).then_some(f.password.as_str());
        Ok(access
            .admin()?
            .create_user(&n, password, f.admin.is_some())?)
    })
    .await?;
    match generated {
        Some(password) => show_secret(&v, format!("The password of the new user {name}"), password),
        None => Ok(redirect("/ui/users?done=user")),
    }
}

#[derive(Deserialize)]
pub struct UserStateForm {
    #[serde(default)]
    csrf: String,
    /// `disable` or `enable`.
    state: String,
}

// POST /ui/users/{name}/state — disables or enables a user (administrators).
pub async fn user_state(
    v: Viewer,
    path: web::Path<String>,
    form: web::Form<UserStateForm>,
) -> Result<HttpResponse, UiError> {
    v.check_csrf(&form.csrf)?;
    let name = path.into_inner();
    let disabled = form.state == "disable";
    let access = v.access;
    run(move || Ok(access.admin()?.update_user(&name, Some(disabled), None)?)).await?;
    Ok(redirect("/ui/users?done=user"))
}

// POST /ui/users/{name}/password — sets a new generated password, shown once (administrators).
pub async fn reset_password(
    auth: AuthData,
    v: Viewer,
    path: web::Path<String>,
    form: web::Form<CsrfOnly>,
) -> Result<HttpResponse, UiError> {
    v.check_csrf(&form.csrf)?;
    let name = path.into_inner();
    let access = v.access.clone();
    let password = random_password();
    let (n, pw) = (name.clone(), password.clone());
    let own = name == v.principal.user();
    let epoch = run(move || {
        access.admin()?.set_password(&n, &pw)?;
        Ok(access.account()?.epoch()?)
    })
    .await?;
    if own {
        // This session made the change; the user's other sessions end.
        let session = v.session.clone();
        run(move || Ok(auth.sessions().rebase(&session, epoch)?)).await?;
    }
    show_secret(&v, format!("The new password of {name}"), password)
}

#[derive(Deserialize)]
pub struct NewKeyForm {
    #[serde(default)]
    csrf: String,
    name: String,
    #[serde(default)]
    owner: String,
    /// `feed=role` pairs separated by commas or spaces.
    #[serde(default)]
    roles: String,
    admin: Option<String>,
    /// Days until the key expires; empty: never.
    #[serde(default)]
    expires_days: String,
}

// POST /ui/keys — creates an API key, shown once.
pub async fn create_key(v: Viewer, form: web::Form<NewKeyForm>) -> Result<HttpResponse, UiError> {
    v.check_csrf(&form.csrf)?;
    let f = form.into_inner();
    let mut roles = BTreeMap::new();
    for pair in f
        .roles
        .split([',', ' ', '\n'])
        .filter(|s| !s.trim().is_empty())
    {
        let Some((feed, role)) = pair.trim().split_once('=') else {
            return Err(UiError::bad_request(format!(
                "{pair:?} is not FEED=ROLE, e.g. prod=push"
            )));
        };
        roles.insert(feed.to_owned(), role.to_owned());
    }
    let expires_days = match f.expires_days.trim() {
        "" => None,
        d => Some(
            d.parse::<u64>()
                .ok()
                .filter(|d| *d > 0)
                .ok_or_else(|| UiError::bad_request(format!("{d:?} is not a number of days")))?,
        ),
    };
    let access = v.access.clone();
    let name = f.name.trim().to_owned();
    let n = name.clone();
    let key = run(move || {
        let owner = (!f.owner.trim().is_empty()).then(|| f.owner.trim().to_owned());
        let account = access.account()?;
        // No roles named: the key gets the roles its owner holds now (never more later).
        let roles = if roles.is_empty() {
            account.roles_of(owner.as_deref())?
        } else {
            roles
        };
        let expires = expires_days.map(|d| account.days_from_now(d));
        Ok(account.create_key(owner.as_deref(), &n, &roles, f.admin.is_some(), expires)?)
    })
    .await?;
    show_secret(&v, format!("API key {name} ({})", key.id), key.key)
}

// POST /ui/keys/{id}/revoke — revokes an API key.
pub async fn revoke_key(
    v: Viewer,
    path: web::Path<String>,
    form: web::Form<CsrfOnly>,
) -> Result<HttpResponse, UiError> {
    v.check_csrf(&form.csrf)?;
    let id = path.into_inner();
    let access = v.access.clone();
    run(move || Ok(access.account()?.revoke_key(&id)?)).await?;
    Ok(redirect(if v.principal.is_admin() {
        "/ui/users?done=revoked"
    } else {
        "/ui/keys?done=revoked"
    }))
}
