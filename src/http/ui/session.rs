//! UI sessions: a random id in an `HttpOnly`, `SameSite=Strict` cookie (Secure under TLS),
//! naming a session the domain keeps in the metadata store (`domain::sessions`), so that
//! every node knows it: the user and the CSRF token of every form. Sessions end on logout
//! and after eight idle hours; a disabled user is out on the next request, and so is every
//! other session of a user whose password or roles change (the account's credential epoch,
//! kept with the session, no longer matches).

use crate::domain::maintenance::mode::ReadOnly;
use actix_web::cookie::{Cookie, SameSite};
use actix_web::{FromRequest, HttpRequest, dev::Payload, web};
use futures_util::future::LocalBoxFuture;

use super::UiError;
use crate::domain::access::Access;
use crate::domain::auth::{Auth, Caller, Principal, Via};

pub const SESSION_COOKIE: &str = "semdock_session";
/// A login form's CSRF token, before there is a session.
pub const LOGIN_COOKIE: &str = "semdock_login";
pub use crate::domain::auth::sessions::random_token;

/// Compares secrets in time independent of where they differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// A cookie the UI sets: `HttpOnly`, `SameSite=Strict`, under `/ui`, `Secure` over HTTPS.
pub fn cookie<'c>(req: &HttpRequest, name: &'c str, value: String) -> Cookie<'c> {
    Cookie::build(name, value)
        .path("/ui")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(crate::http::oci::auth::base_url(req).starts_with("https://"))
        .finish()
}

/// The logged-in viewer of a page, and the domain as the viewer may reach it.
pub struct Viewer {
    pub principal: Principal,
    pub csrf: String,
    pub session: String,
    pub access: Access,
    /// `done=` of the request: which action the page confirms.
    pub done: Option<String>,
    /// Read-only mode, shown on every page while it is on.
    pub read_only: Option<ReadOnly>,
}

impl Viewer {
    /// Refuses a form whose token is not this session's.
    pub fn check_csrf(&self, token: &str) -> Result<(), UiError> {
        if same_secret(token, &self.csrf) {
            Ok(())
        } else {
            Err(UiError::csrf())
        }
    }
}

fn to_login(req: &HttpRequest) -> UiError {
    let here = match req.query_string() {
        "" => req.path().to_owned(),
        q => format!("{}?{q}", req.path()),
    };
    let next: String = form_urlencoded::byte_serialize(here.as_bytes()).collect();
    UiError::Redirect(format!("/ui/login?next={next}"))
}

impl FromRequest for Viewer {
    type Error = UiError;
    type Future = LocalBoxFuture<'static, Result<Self, UiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let auth = req
                .app_data::<web::Data<Auth>>()
                .cloned()
                .ok_or_else(|| to_login(&req))?;
            let id = req
                .cookie(SESSION_COOKIE)
                .map(|c| c.value().to_owned())
                .ok_or_else(|| to_login(&req))?;
            let session_id = id.clone();
            let found = web::block(move || {
                let Some(session) = auth.sessions().get(&session_id)? else {
                    return Ok(None);
                };
                let principal = auth.session_subject(&session.subject, session.epoch)?;
                if principal.is_none() {
                    auth.sessions().end(&session_id)?;
                }
                Ok::<_, crate::domain::Error>(principal.map(|p| (p, session.csrf)))
            })
            .await
            .map_err(|_| to_login(&req))?;
            if let Ok(Some((principal, csrf))) = found {
                let caller = Caller {
                    principal: principal.clone(),
                    via: Via::Session,
                };
                let access = crate::http::caller::access(&req, Some(caller))?;
                let asking = access.clone();
                // The mode is remembered per node while nothing is written: no read then.
                let read_only = web::block(move || asking.read_only())
                    .await
                    .ok()
                    .and_then(Result::ok)
                    .flatten();
                let done = form_urlencoded::parse(req.query_string().as_bytes())
                    .find(|(k, _)| k == "done")
                    .map(|(_, v)| v.into_owned());
                Ok(Self {
                    principal,
                    csrf,
                    session: id,
                    access,
                    done,
                    read_only,
                })
            } else {
                Err(to_login(&req))
            }
        })
    }
}
