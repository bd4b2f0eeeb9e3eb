//! UI sessions: a random id in an `HttpOnly`, `SameSite=Strict` cookie (Secure under TLS), mapped
//! in memory to the user and the CSRF token of every form. Sessions end on logout, after
//! eight idle hours, and when the server restarts; a disabled user is out on the next request,
//! and so is every other session of a user whose password or roles change (the account's
//! credential epoch, kept with the session, no longer matches).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use actix_web::cookie::{Cookie, SameSite};
use actix_web::{FromRequest, HttpRequest, dev::Payload, web};
use futures_util::future::LocalBoxFuture;

use super::UiError;
use crate::domain::access::Access;
use crate::domain::auth::{Auth, Caller, Principal, Via};

pub const SESSION_COOKIE: &str = "semdock_session";
/// A login form's CSRF token, before there is a session.
pub const LOGIN_COOKIE: &str = "semdock_login";
const IDLE: Duration = Duration::from_hours(8);

struct Session {
    subject: String,
    /// The account's credential epoch at login (see `Auth::epoch`).
    epoch: u64,
    csrf: String,
    seen: Instant,
}

/// Every live UI session.
#[derive(Default)]
pub struct UiSessions(Mutex<HashMap<String, Session>>);

pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::fill(&mut bytes);
    hex::encode(bytes)
}

/// Compares secrets in time independent of where they differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

impl UiSessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Starts a session for `principal` at credential epoch `epoch`; returns its id.
    pub fn start(&self, principal: &Principal, epoch: u64) -> String {
        let id = random_token();
        let mut sessions = self.lock();
        sessions.retain(|_, s| s.seen.elapsed() < IDLE);
        sessions.insert(
            id.clone(),
            Session {
                subject: principal.subject(),
                epoch,
                csrf: random_token(),
                seen: Instant::now(),
            },
        );
        id
    }

    pub fn end(&self, id: &str) {
        self.lock().remove(id);
    }

    /// Keeps session `id` valid at the account's new epoch, after its own user changed the
    /// password through it (the user's other sessions end).
    pub fn rebase(&self, id: &str, epoch: u64) {
        if let Some(s) = self.lock().get_mut(id) {
            s.epoch = epoch;
        }
    }

    /// The subject, epoch and CSRF token of a live session, refreshing its idle time.
    fn touch(&self, id: &str) -> Option<(String, u64, String)> {
        let mut sessions = self.lock();
        let live = sessions.get(id).is_some_and(|s| s.seen.elapsed() < IDLE);
        if !live {
            sessions.remove(id);
            return None;
        }
        let s = sessions.get_mut(id)?;
        s.seen = Instant::now();
        Some((s.subject.clone(), s.epoch, s.csrf.clone()))
    }
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
            let sessions = req
                .app_data::<web::Data<UiSessions>>()
                .cloned()
                .ok_or_else(|| to_login(&req))?;
            let auth = req
                .app_data::<web::Data<Auth>>()
                .cloned()
                .ok_or_else(|| to_login(&req))?;
            let id = req
                .cookie(SESSION_COOKIE)
                .map(|c| c.value().to_owned())
                .ok_or_else(|| to_login(&req))?;
            let (subject, epoch, csrf) = sessions.touch(&id).ok_or_else(|| to_login(&req))?;
            let principal = web::block(move || auth.session_subject(&subject, epoch))
                .await
                .map_err(|_| to_login(&req))?;
            if let Ok(Some(principal)) = principal {
                let caller = Caller {
                    principal: principal.clone(),
                    via: Via::Session,
                };
                let access = crate::http::caller::access(&req, Some(caller))?;
                let done = form_urlencoded::parse(req.query_string().as_bytes())
                    .find(|(k, _)| k == "done")
                    .map(|(_, v)| v.into_owned());
                Ok(Self {
                    principal,
                    csrf,
                    session: id,
                    access,
                    done,
                })
            } else {
                sessions.end(&id);
                Err(to_login(&req))
            }
        })
    }
}
