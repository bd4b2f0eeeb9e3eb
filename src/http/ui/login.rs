//! Logging in and out with a password. Every POST checks the session's CSRF token before
//! anything else.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::links::safe_next;
use super::session::{LOGIN_COOKIE, SESSION_COOKIE, Viewer, cookie, random_token, same_secret};
use super::{AuthData, Nav, UiError, redirect, render, run};
use crate::domain;
use crate::domain::auth::{Caller, Principal};
use crate::http::caller::client_ip;

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    title: &'static str,
    nav: Option<Nav>,
    csrf: String,
    next: String,
    /// The user name tried, kept after a failed login.
    user: String,
    error: Option<String>,
    first_login: Option<String>,
    /// The label of the `OpenID Connect` sign-in, when a provider is configured.
    oidc: Option<String>,
}

#[derive(Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
}

pub(super) fn login_response(
    req: &HttpRequest,
    first_login: bool,
    oidc: Option<String>,
    next: &str,
    user: &str,
    error: Option<String>,
    status: actix_web::http::StatusCode,
) -> Result<HttpResponse, UiError> {
    let csrf = random_token();
    let first_login = first_login.then(|| {
        format!(
            "First login: the user is {}; its password is in the file {} in the data directory; the file is removed once the password is changed.",
            domain::auth::INITIAL_ADMIN,
            domain::auth::INITIAL_PASSWORD_FILE
        )
    });
    let page = LoginPage {
        title: "Log in",
        nav: None,
        csrf: csrf.clone(),
        next: next.to_owned(),
        user: user.to_owned(),
        error,
        first_login,
        oidc,
    };
    let mut res = render(&page)?;
    *res.status_mut() = status;
    res.add_cookie(&cookie(req, LOGIN_COOKIE, csrf))
        .map_err(|e| domain::Error::Internal(e.to_string()))?;
    Ok(res)
}

// GET /ui/login — the login form.
pub async fn login_page(
    req: HttpRequest,
    auth: AuthData,
    query: web::Query<LoginQuery>,
) -> Result<HttpResponse, UiError> {
    let next = safe_next(query.next.as_deref());
    let label = auth.directory().oidc_label();
    let first = run(move || Ok(auth.first_login_pending()?)).await?;
    login_response(&req, first, label, &next, "", None, StatusCode::OK)
}

#[derive(Deserialize)]
pub struct LoginForm {
    user: String,
    password: String,
    #[serde(default)]
    csrf: String,
    next: Option<String>,
}

// POST /ui/login — checks the password (rate-limited like every login) and starts a session.
pub async fn login(
    req: HttpRequest,
    auth: AuthData,
    form: web::Form<LoginForm>,
) -> Result<HttpResponse, UiError> {
    let form = form.into_inner();
    let expected = req
        .cookie(LOGIN_COOKIE)
        .map(|c| c.value().to_owned())
        .unwrap_or_default();
    if expected.is_empty() || !same_secret(&form.csrf, &expected) {
        return Err(UiError::csrf());
    }
    let next = safe_next(form.next.as_deref());
    let client = client_ip(&req);
    let user = form.user.clone();
    let label = auth.directory().oidc_label();
    let outcome = run(move || {
        let refused = |message: String, status| -> Result<_, UiError> {
            Ok(Err((message, status, auth.first_login_pending()?)))
        };
        match auth.login(&form.user, &form.password, client) {
            Ok(Caller {
                principal: p @ Principal::User { .. },
                ..
            }) => {
                let epoch = auth.epoch(&p)?;
                let session = auth.sessions().start(&p, epoch)?;
                Ok(Ok((p, session)))
            }
            Ok(_) => refused(
                "Log in with a user name and password; API keys are for clients.".into(),
                StatusCode::UNAUTHORIZED,
            ),
            Err(e @ domain::Error::RateLimited { .. }) => {
                refused(e.to_string(), StatusCode::TOO_MANY_REQUESTS)
            }
            Err(domain::Error::InvalidCredentials) => refused(
                "Invalid user name or password. (The UI takes a user's password; API keys are for docker and scripts.)".into(),
                StatusCode::UNAUTHORIZED,
            ),
            Err(e) => Err(e.into()),
        }
    })
    .await?;
    match outcome {
        Ok((principal, id)) => {
            tracing::info!(user = principal.user(), "logged in to the UI");
            let mut res = redirect(&next);
            res.add_cookie(&cookie(&req, SESSION_COOKIE, id))
                .map_err(|e| domain::Error::Internal(e.to_string()))?;
            Ok(res)
        }
        Err((message, status, first)) => {
            login_response(&req, first, label, &next, &user, Some(message), status)
        }
    }
}

#[derive(Deserialize)]
pub struct CsrfOnly {
    #[serde(default)]
    pub(super) csrf: String,
}

// POST /ui/logout — ends the session.
pub async fn logout(
    req: HttpRequest,
    v: Viewer,
    auth: AuthData,
    form: web::Form<CsrfOnly>,
) -> Result<HttpResponse, UiError> {
    v.check_csrf(&form.csrf)?;
    let session = v.session.clone();
    run(move || Ok(auth.sessions().end(&session)?)).await?;
    let mut res = redirect("/ui/login");
    let mut gone = cookie(&req, SESSION_COOKIE, String::new());
    gone.make_removal();
    res.add_cookie(&gone)
        .map_err(|e| domain::Error::Internal(e.to_string()))?;
    Ok(res)
}
