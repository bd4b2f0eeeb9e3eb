//! UI sign-in through an `OpenID Connect` provider: the authorization code flow with PKCE.
//!
//! `GET /ui/oidc/start` sends the browser to the provider with a fresh `state`, `nonce` and
//! PKCE verifier, which it keeps in a short-lived cookie of its own (`HttpOnly`,
//! `SameSite=Lax`: the provider's redirect back is a cross-site navigation, which a
//! `Strict` cookie would not follow). `GET /ui/oidc/callback` takes the code only with the
//! `state` of that cookie, exchanges it with the verifier, checks the ID token's nonce, and
//! starts a session like a password login. It answers with a page that moves on by itself:
//! a redirect straight from the callback would still count as the provider's navigation,
//! and the browser would hold back the new `Strict` session cookie.

use actix_web::cookie::{Cookie, SameSite, time::Duration as CookieAge};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::links::safe_next;
use super::login::login_response;
use super::session::{SESSION_COOKIE, cookie, random_token, same_secret};
use super::{AuthData, UiError, render, run};
use crate::domain;
use crate::domain::{ClientError, Peer};

/// The pending sign-in: `state`, `nonce`, PKCE verifier and where to go after.
const FLOW_COOKIE: &str = "semdock_oidc";
/// How long a browser may take at the provider.
const FLOW_MINUTES: i64 = 10;

fn redirect_uri(req: &HttpRequest) -> String {
    format!(
        "{}/ui/oidc/callback",
        crate::http::oci::auth::base_url(req).trim_end_matches('/')
    )
}

fn flow_cookie(req: &HttpRequest, value: String) -> Cookie<'static> {
    Cookie::build(FLOW_COOKIE, value)
        .path("/ui/oidc")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(crate::http::oci::auth::base_url(req).starts_with("https://"))
        .max_age(CookieAge::minutes(FLOW_MINUTES))
        .finish()
}

/// The login page again, saying why the sign-in did not happen.
async fn refused(
    req: &HttpRequest,
    auth: AuthData,
    next: &str,
    message: String,
    status: StatusCode,
) -> Result<HttpResponse, UiError> {
    let label = auth.directory().oidc_label();
    let first = run(move || Ok(auth.first_login_pending()?)).await?;
    let mut res = login_response(req, first, label, next, "", Some(message), status)?;
    let mut gone = flow_cookie(req, String::new());
    gone.make_removal();
    res.add_cookie(&gone)
        .map_err(|e| domain::Error::Internal(e.to_string()))?;
    Ok(res)
}

fn provider_error(e: &ClientError) -> (String, StatusCode) {
    match e {
        ClientError::Unavailable { why, .. } => (
            format!(
                "The sign-in provider is unavailable ({why}). Local accounts can still log in with their password."
            ),
            StatusCode::SERVICE_UNAVAILABLE,
        ),
        ClientError::Refused { why, .. } => (
            format!("The sign-in did not succeed: {why}."),
            StatusCode::UNAUTHORIZED,
        ),
    }
}

#[derive(Deserialize)]
pub struct StartQuery {
    next: Option<String>,
}

// GET /ui/oidc/start — sends the browser to the provider.
pub async fn start(
    req: HttpRequest,
    auth: AuthData,
    query: web::Query<StartQuery>,
) -> Result<HttpResponse, UiError> {
    let next = safe_next(query.next.as_deref());
    let Some(dir) = auth.directory().oidc() else {
        return Err(UiError::not_found(
            "No OpenID Connect provider is configured: log in with a user name and password."
                .into(),
        ));
    };
    let (state, nonce, verifier) = (random_token(), random_token(), random_token());
    let target = redirect_uri(&req);
    let (s, n, v) = (state.clone(), nonce.clone(), verifier.clone());
    let url = web::block(move || {
        let oidc = dir
            .oidc()
            .ok_or_else(|| ClientError::refused(Peer::Directory, "no provider"))?;
        oidc.authorization_url(&target, &s, &n, &v)
    })
    .await
    .map_err(|e| domain::Error::Internal(e.to_string()))?;
    let url = match url {
        Ok(u) => u,
        Err(e) => {
            tracing::warn!(error = %e, "cannot start an OpenID Connect sign-in");
            let (message, status) = provider_error(&e);
            return refused(&req, auth, &next, message, status).await;
        }
    };
    let flow = format!("{state}.{nonce}.{verifier}.{next}");
    Ok(HttpResponse::SeeOther()
        .insert_header(("Location", url))
        .insert_header(("Cache-Control", "no-store"))
        .cookie(flow_cookie(&req, flow))
        .finish())
}

#[derive(Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// The pending sign-in, as its cookie holds it.
struct Flow {
    state: String,
    nonce: String,
    verifier: String,
    next: String,
}

impl Flow {
    fn of(req: &HttpRequest) -> Self {
        let flow = req
            .cookie(FLOW_COOKIE)
            .map(|c| c.value().to_owned())
            .unwrap_or_default();
        let mut parts = flow.splitn(4, '.');
        Self {
            state: parts.next().unwrap_or_default().to_owned(),
            nonce: parts.next().unwrap_or_default().to_owned(),
            verifier: parts.next().unwrap_or_default().to_owned(),
            next: safe_next(parts.next()),
        }
    }
}

#[derive(Template)]
#[template(path = "continue.html")]
struct ContinuePage<'a> {
    title: &'static str,
    nav: Option<super::Nav>,
    next: &'a str,
}

// GET /ui/oidc/callback — the provider's answer: the code, exchanged for a session.
pub async fn callback(
    req: HttpRequest,
    auth: AuthData,
    query: web::Query<CallbackQuery>,
) -> Result<HttpResponse, UiError> {
    let q = query.into_inner();
    let Flow {
        state,
        nonce,
        verifier,
        next,
    } = Flow::of(&req);
    if state.is_empty() || !q.state.as_deref().is_some_and(|s| same_secret(s, &state)) {
        return refused(
            &req,
            auth,
            &next,
            "This sign-in was not started here, or took longer than ten minutes: start it again."
                .into(),
            StatusCode::BAD_REQUEST,
        )
        .await;
    }
    if let Some(error) = q.error {
        let detail = q
            .error_description
            .map(|d| format!(" ({d})"))
            .unwrap_or_default();
        return refused(
            &req,
            auth,
            &next,
            format!("The provider did not sign you in: {error}{detail}."),
            StatusCode::UNAUTHORIZED,
        )
        .await;
    }
    let Some(code) = q.code else {
        return refused(
            &req,
            auth,
            &next,
            "The provider answered without a code: start the sign-in again.".into(),
            StatusCode::BAD_REQUEST,
        )
        .await;
    };
    let Some(dir) = auth.directory().oidc() else {
        return Err(UiError::not_found(
            "No OpenID Connect provider is configured.".into(),
        ));
    };
    let target = redirect_uri(&req);
    let a = auth.clone();
    let outcome = web::block(move || {
        let oidc = dir
            .oidc()
            .ok_or_else(|| ClientError::refused(Peer::Directory, "no provider"))?;
        let user = match oidc.exchange(&code, &verifier, &target, &nonce) {
            Ok(u) => u,
            Err(e) => return Ok(Err(e)),
        };
        let signed_in = a.directory().oidc_sign_in(&user).and_then(|p| {
            let epoch = a.epoch(&p)?;
            Ok((p.clone(), a.sessions().start(&p, epoch)?))
        });
        Ok::<_, ClientError>(Ok((user.name, signed_in)))
    })
    .await
    .map_err(|e| domain::Error::Internal(e.to_string()))?;
    let (name, signed_in) = match outcome {
        Ok(Ok(done)) => done,
        Ok(Err(e)) | Err(e) => {
            tracing::warn!(error = %e, "an OpenID Connect sign-in failed");
            let (message, status) = provider_error(&e);
            return refused(&req, auth, &next, message, status).await;
        }
    };
    let session = match signed_in {
        Ok((_, session)) => session,
        Err(e @ (domain::Error::Invalid(_) | domain::Error::InvalidCredentials)) => {
            tracing::warn!(user = name, error = %e, "an OpenID Connect sign-in was refused");
            let message = match e {
                domain::Error::InvalidCredentials => {
                    format!(
                        "The account of the provider's user {name} is disabled here: ask an administrator."
                    )
                }
                other => other.to_string(),
            };
            return refused(&req, auth, &next, message, StatusCode::FORBIDDEN).await;
        }
        Err(e) => return Err(e.into()),
    };
    tracing::info!(user = name, "signed in to the UI through OpenID Connect");
    session_page(&req, &next, session)
}

/// The page that moves on to `next`, with the new session's cookie.
fn session_page(req: &HttpRequest, next: &str, session: String) -> Result<HttpResponse, UiError> {
    let mut res = render(&ContinuePage {
        title: "Signed in",
        nav: None,
        next,
    })?;
    res.add_cookie(&cookie(req, SESSION_COOKIE, session))
        .map_err(|e| domain::Error::Internal(e.to_string()))?;
    let mut gone = flow_cookie(req, String::new());
    gone.make_removal();
    res.add_cookie(&gone)
        .map_err(|e| domain::Error::Internal(e.to_string()))?;
    Ok(res)
}
