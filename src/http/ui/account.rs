//! The viewer's own account: "change my password" (current password, the new one twice).
//! The domain checks the current password as a login (rate-limited, audited) and removes
//! the initial password file when `admin` changes it; this page only renders and forwards.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::session::Viewer;
use super::{AuthData, Nav, UiError, redirect, render, run};
use crate::domain;
use crate::http::caller::client_ip;

#[derive(Template)]
#[template(path = "password.html")]
struct PasswordPage {
    title: &'static str,
    nav: Option<Nav>,
    user: String,
    error: Option<String>,
}

fn page(v: &Viewer, error: Option<String>, status: StatusCode) -> Result<HttpResponse, UiError> {
    let mut res = render(&PasswordPage {
        title: "Change your password",
        nav: Nav::of(v),
        user: v.principal.user().to_owned(),
        error,
    })?;
    *res.status_mut() = status;
    Ok(res)
}

// GET /ui/password — the form.
pub async fn password_page(v: Viewer) -> Result<HttpResponse, UiError> {
    page(&v, None, StatusCode::OK)
}

#[derive(Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    current: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    repeat: String,
}

// POST /ui/password — changes the viewer's own password; this session stays, the account's
// other sessions end.
pub async fn change_password(
    req: HttpRequest,
    auth: AuthData,
    v: Viewer,
    form: web::Form<PasswordForm>,
) -> Result<HttpResponse, UiError> {
    v.check_csrf(&form.csrf)?;
    let f = form.into_inner();
    if f.password != f.repeat {
        return page(
            &v,
            Some("The two new passwords differ: type the same new password twice.".into()),
            StatusCode::BAD_REQUEST,
        );
    }
    let client = client_ip(&req);
    let access = v.access.clone();
    let outcome = run(move || {
        let account = access.account()?;
        match account.change_own_password(&f.current, &f.password, client) {
            Ok(()) => Ok(Ok(account.epoch()?)),
            Err(e @ (domain::Error::Invalid(_) | domain::Error::RateLimited { .. })) => Ok(Err(e)),
            Err(e) => Err(e.into()),
        }
    })
    .await?;
    match outcome {
        Ok(epoch) => {
            let session = v.session.clone();
            run(move || Ok(auth.sessions().rebase(&session, epoch)?)).await?;
            Ok(redirect("/ui/password?done=password"))
        }
        Err(e) => {
            let status = if matches!(e, domain::Error::RateLimited { .. }) {
                StatusCode::TOO_MANY_REQUESTS
            } else {
                StatusCode::BAD_REQUEST
            };
            page(&v, Some(upper_first(&e.to_string())), status)
        }
    }
}

/// A domain sentence as the start of a line on the page.
fn upper_first(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}
