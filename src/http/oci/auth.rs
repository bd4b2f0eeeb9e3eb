//! Docker token authentication for the Distribution API: credentials from the request, the
//! `Authorized<A>` extractor that every repository handler takes, challenges, and the token
//! endpoint `GET /v2/_auth`.

use std::fmt::Write as _;
use std::marker::PhantomData;
use std::net::{IpAddr, Ipv4Addr};

use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpRequest, HttpResponse, dev::Payload, web};
use base64::Engine as _;
use futures_util::future::LocalBoxFuture;
use serde_json::json;

use super::{OciError, blocking};
use crate::domain::auth::{Auth, Credentials, Principal, Surface};
use crate::domain::{self};
use crate::model::{Action, Repository, Scope};

/// Settings the HTTP layer needs to build challenges and to know who is calling.
#[derive(Debug, Clone, Default)]
pub struct Realm {
    /// `external_url` from config: the base clients see behind a proxy.
    pub external_url: Option<String>,
    /// Reverse proxies whose `Forwarded`/`X-Forwarded-*` headers are believed. From anyone
    /// else those headers are ignored: they would let a client choose the token realm, or
    /// the address its failed logins count against.
    pub trusted_proxies: Vec<IpAddr>,
}

fn realm_of(req: &HttpRequest) -> Option<&Realm> {
    req.app_data::<web::Data<Realm>>().map(|r| &***r)
}

fn from_trusted_proxy(req: &HttpRequest) -> bool {
    match (req.peer_addr(), realm_of(req)) {
        (Some(peer), Some(realm)) => realm.trusted_proxies.contains(&peer.ip()),
        _ => false,
    }
}

/// Whether `host` is a host name or address with an optional port, and nothing else: what
/// may be copied from one header into another.
fn plain_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 255
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
}

/// The base URL clients reach this registry at: `external_url` when set; else, from a
/// trusted proxy, what its forwarded headers say; else this connection's scheme and its
/// `Host` header — when that is a plain host, else the address the server listens on.
#[must_use]
pub fn base_url(req: &HttpRequest) -> String {
    if let Some(url) = realm_of(req).and_then(|r| r.external_url.clone()) {
        return url.trim_end_matches('/').to_owned();
    }
    if from_trusted_proxy(req) {
        let info = req.connection_info();
        if plain_host(info.host()) && matches!(info.scheme(), "http" | "https") {
            return format!("{}://{}", info.scheme(), info.host());
        }
    }
    let scheme = if req.app_config().secure() {
        "https"
    } else {
        "http"
    };
    let host = req
        .headers()
        .get(actix_web::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| plain_host(h))
        .map_or_else(|| req.app_config().host().to_owned(), str::to_owned);
    format!("{scheme}://{host}")
}

/// An action a handler needs, as a type.
pub trait Need {
    const ACTION: Action;
    /// The scope actions a client should ask for.
    const SCOPE: &'static str;
}

pub struct Pull;
pub struct Push;
pub struct Delete;

impl Need for Pull {
    const ACTION: Action = Action::Pull;
    const SCOPE: &'static str = "pull";
}
impl Need for Push {
    const ACTION: Action = Action::Push;
    const SCOPE: &'static str = "pull,push";
}
impl Need for Delete {
    const ACTION: Action = Action::Delete;
    const SCOPE: &'static str = "delete";
}

/// The repository in the path, with the caller authorized for `A` on it.
pub struct Authorized<A> {
    pub repo: Repository,
    pub principal: Option<Principal>,
    need: PhantomData<A>,
}

/// The caller, authenticated but not yet authorized for anything.
pub struct Caller(pub Option<Principal>);

/// The request's credentials; a malformed `Authorization` header is an error.
pub fn credentials(req: &HttpRequest) -> Result<Credentials, domain::Error> {
    if let Some(key) = req.headers().get("X-ApiKey") {
        // ProGet clients send an API key this way.
        let key = key
            .to_str()
            .map_err(|_| domain::Error::InvalidCredentials)?;
        return Ok(Credentials::Basic {
            user: domain::auth::API_KEY_USER.to_owned(),
            secret: key.to_owned(),
        });
    }
    let Some(value) = req.headers().get(actix_web::http::header::AUTHORIZATION) else {
        return Ok(Credentials::None);
    };
    let value = value
        .to_str()
        .map_err(|_| domain::Error::InvalidCredentials)?;
    let (scheme, rest) = value
        .split_once(' ')
        .ok_or(domain::Error::InvalidCredentials)?;
    if scheme.eq_ignore_ascii_case("bearer") {
        return Ok(Credentials::Bearer(rest.trim().to_owned()));
    }
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(domain::Error::InvalidCredentials);
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .map_err(|_| domain::Error::InvalidCredentials)?;
    let text = String::from_utf8(decoded).map_err(|_| domain::Error::InvalidCredentials)?;
    let (user, secret) = text
        .split_once(':')
        .ok_or(domain::Error::InvalidCredentials)?;
    Ok(Credentials::Basic {
        user: user.to_owned(),
        secret: secret.to_owned(),
    })
}

/// The client's address, for rate limiting: the peer, or behind a trusted proxy the last
/// address in `X-Forwarded-For` that is not itself a trusted proxy.
#[must_use]
pub fn client_ip(req: &HttpRequest) -> IpAddr {
    let peer = req
        .peer_addr()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |a| a.ip());
    if !from_trusted_proxy(req) {
        return peer;
    }
    let trusted = realm_of(req)
        .map(|r| r.trusted_proxies.as_slice())
        .unwrap_or_default();
    req.headers()
        .get_all("X-Forwarded-For")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|a| a.trim().parse::<IpAddr>().ok())
        .rev()
        .find(|a| !trusted.contains(a))
        .unwrap_or(peer)
}

fn auth_of(req: &HttpRequest) -> Result<web::Data<Auth>, OciError> {
    req.app_data::<web::Data<Auth>>()
        .cloned()
        .ok_or_else(|| OciError::internal(&std::io::Error::other("auth service missing")))
}

/// `Bearer realm=…,service=…[,scope=…][,error=…]` for this request.
#[must_use]
pub fn challenge(
    req: &HttpRequest,
    service: &str,
    scope: Option<&str>,
    insufficient: bool,
) -> String {
    let base = base_url(req);
    let mut c = format!("Bearer realm=\"{base}/v2/_auth\",service=\"{service}\"");
    if let Some(scope) = scope {
        let _ = write!(c, ",scope=\"{scope}\"");
    }
    if insufficient {
        c.push_str(",error=\"insufficient_scope\"");
    }
    c
}

/// Turns a domain error into a response, adding the challenge to a 401.
fn refuse(req: &HttpRequest, service: &str, scope: Option<&str>, e: domain::Error) -> OciError {
    let insufficient = matches!(e, domain::Error::InsufficientScope);
    let err = OciError::from(e);
    if err.status() == StatusCode::UNAUTHORIZED {
        let c = challenge(req, service, scope, insufficient);
        err.with_challenge(c)
    } else {
        err
    }
}

impl<A: Need + 'static> FromRequest for Authorized<A> {
    type Error = OciError;
    type Future = LocalBoxFuture<'static, Result<Self, OciError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let name = req.match_info().get("name").unwrap_or_default();
            let repo: Repository = name
                .parse()
                .map_err(|e| OciError::from(domain::Error::from(e)))?;
            let auth = auth_of(&req)?;
            let scope = || format!("repository:{repo}:{}", A::SCOPE);
            let credentials =
                credentials(&req).map_err(|e| refuse(&req, auth.service(), Some(&scope()), e))?;
            // A token verified since the last metadata write needs no database read: answer
            // on the executor (the common case of a pull).
            if let Some(principal) =
                auth.authorize_cached(&credentials, repo.as_str(), repo.feed(), A::ACTION)
            {
                return Ok(Self {
                    repo,
                    principal,
                    need: PhantomData,
                });
            }
            let service = auth.service().to_owned();
            let client = client_ip(&req);
            let (r, feed) = (repo.to_string(), repo.feed().to_owned());
            let decided =
                web::block(move || auth.authorize(&credentials, client, &r, &feed, A::ACTION))
                    .await
                    .map_err(|e| OciError::internal(&e))?;
            match decided {
                Ok(principal) => Ok(Self {
                    repo,
                    principal,
                    need: PhantomData,
                }),
                Err(e) => Err(refuse(&req, &service, Some(&scope()), e)),
            }
        })
    }
}

impl FromRequest for Caller {
    type Error = OciError;
    type Future = LocalBoxFuture<'static, Result<Self, OciError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let auth = auth_of(&req)?;
            let service = auth.service().to_owned();
            let credentials = credentials(&req).map_err(|e| refuse(&req, &service, None, e))?;
            let client = client_ip(&req);
            let found = web::block(move || auth.caller(&credentials, client, Surface::Registry))
                .await
                .map_err(|e| OciError::internal(&e))?;
            found
                .map(|c| Caller(c.map(|c| c.principal)))
                .map_err(|e| refuse(&req, &service, None, e))
        })
    }
}

// GET /v2/ — API version check; 401 with a challenge until the caller authenticates, which
// is how `docker login` verifies credentials (spec: "Determining support").
pub async fn base(req: HttpRequest, Caller(principal): Caller) -> Result<HttpResponse, OciError> {
    if principal.is_none() {
        let auth = auth_of(&req)?;
        return Err(refuse(
            &req,
            auth.service(),
            None,
            domain::Error::Unauthenticated,
        ));
    }
    Ok(HttpResponse::Ok().json(json!({})))
}

// GET /v2/_auth?service=&scope= — the token endpoint of Docker's token authentication.
pub async fn token(req: HttpRequest) -> Result<HttpResponse, OciError> {
    let auth = auth_of(&req)?;
    let scopes: Vec<Scope> = form_urlencoded::parse(req.query_string().as_bytes())
        .filter(|(k, _)| k == "scope")
        .flat_map(|(_, v)| v.split(' ').filter_map(Scope::parse).collect::<Vec<_>>())
        .collect();
    let basic_challenge = |e: domain::Error| {
        let err = OciError::from(e);
        if err.status() == StatusCode::UNAUTHORIZED {
            err.with_challenge(format!("Basic realm=\"{}\"", auth.service()))
        } else {
            err
        }
    };
    let credentials = match credentials(&req).map_err(basic_challenge)? {
        // A token is not a credential for getting another token.
        Credentials::Bearer(_) => Credentials::None,
        other => other,
    };
    let client = client_ip(&req);
    let a = auth.clone();
    let issued = web::block(move || {
        let caller = a.caller(&credentials, client, Surface::Registry)?;
        a.issue_token(caller.as_deref(), &scopes)
    })
    .await
    .map_err(|e| OciError::internal(&e))?
    .map_err(basic_challenge)?;
    let issued_at = humantime::format_rfc3339_seconds(
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(issued.issued_at),
    )
    .to_string();
    Ok(HttpResponse::Ok().json(json!({
        "token": issued.token,
        "access_token": issued.token,
        "expires_in": issued.expires_in,
        "issued_at": issued_at,
    })))
}

/// Runs `f` with the auth service, off the executor.
pub async fn with_auth<T, F>(req: &HttpRequest, f: F) -> Result<T, OciError>
where
    F: FnOnce(&Auth) -> Result<T, domain::Error> + Send + 'static,
    T: Send + 'static,
{
    let auth = auth_of(req)?;
    blocking(move || f(&auth)).await
}
