//! Who is calling, and from where: the one place a request's credentials become a domain
//! `Caller` (Basic with a password or API key, `X-ApiKey`, a Bearer registry token, a UI
//! session), the client's address behind trusted proxies, and the base URL clients use.
//! Every area's extractor goes through `identify` (or, for UI sessions, `session_caller`),
//! then hands handlers an `Access`: never the registry itself.

use std::net::{IpAddr, Ipv4Addr};

use actix_web::{HttpRequest, web};
use base64::Engine as _;

use crate::domain::access::Access;
use crate::domain::auth::{Auth, Caller, Credentials, Surface};
use crate::domain::{self, Registry};

/// Settings the HTTP layer needs to build challenges and to know who is calling.
#[derive(Debug, Clone, Default)]
pub struct Realm {
    /// `external_url` from config: the base clients see behind a proxy.
    pub external_url: Option<String>,
    /// Reverse proxies whose `Forwarded`/`X-Forwarded-*` headers are believed. From anyone
    /// else those headers are ignored: they would let a client choose the token realm, or
    /// the address its failed logins count against.
    pub trusted_proxies: Vec<IpAddr>,
    /// The connector feed that answers pulls naming no feed (docker's `registry-mirrors`).
    pub mirror_feed: Option<String>,
}

#[must_use]
pub fn realm_of(req: &HttpRequest) -> Option<&Realm> {
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

/// The names clients reach this registry by, as `host[:port]`: the host of `base_url` and the
/// request's own `Host` (what an image reference docker printed starts with).
#[must_use]
pub fn registry_hosts(req: &HttpRequest) -> Vec<String> {
    let base = base_url(req);
    let mut hosts = vec![
        base.split_once("://")
            .map_or(base.as_str(), |(_, h)| h)
            .to_owned(),
    ];
    if let Some(h) = req
        .headers()
        .get(actix_web::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| plain_host(h))
    {
        hosts.push(h.to_owned());
    }
    // On loopback the names are one machine: docker prints localhost:PORT for a registry
    // reached as 127.0.0.1:PORT.
    let loopback = ["localhost", "127.0.0.1", "[::1]"];
    let mut aliases = Vec::new();
    for h in &hosts {
        if let Some((name, port)) = h.rsplit_once(':')
            && loopback.contains(&name)
        {
            aliases.extend(loopback.iter().map(|l| format!("{l}:{port}")));
        }
    }
    hosts.extend(aliases);
    hosts
}

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

/// The caller the request's credentials name on `surface` (`None`: anonymous), checked off
/// the executor.
pub async fn identify(
    req: &HttpRequest,
    surface: Surface,
) -> Result<Option<Caller>, domain::Error> {
    let auth = auth_of(req)?;
    let credentials = credentials(req)?;
    let client = client_ip(req);
    web::block(move || auth.caller(&credentials, client, surface))
        .await
        .map_err(|e| domain::Error::Internal(e.to_string()))?
}

/// The access-control service of the app.
pub fn auth_of(req: &HttpRequest) -> Result<web::Data<Auth>, domain::Error> {
    req.app_data::<web::Data<Auth>>()
        .cloned()
        .ok_or_else(|| domain::Error::Internal("auth service missing".into()))
}

/// `caller` over the domain: what handlers get instead of the registry.
pub fn access(req: &HttpRequest, caller: Option<Caller>) -> Result<Access, domain::Error> {
    let registry = req
        .app_data::<web::Data<Registry>>()
        .cloned()
        .ok_or_else(|| domain::Error::Internal("registry missing".into()))?;
    Ok(Access::new(
        registry.into_inner(),
        auth_of(req)?.into_inner(),
        caller,
    ))
}

/// The upstream namespace (`?ns=`) a request was served from, echoed as `OCI-Namespace`.
#[derive(Clone)]
pub struct ServedNamespace(pub String);

/// A pull naming no feed of this registry (`library/nginx`, what docker's
/// `registry-mirrors` sends), answered by the mirror feed: the name as asked, and the feed.
#[derive(Debug, Clone)]
pub struct Mirrored {
    pub asked: String,
    pub feed: String,
}

/// Middleware (for `middleware::from_fn`): a response served by the connector that `?ns=`
/// picked carries `OCI-Namespace: NS`, saying the namespace was honoured.
pub async fn echo_namespace(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody>,
) -> Result<actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>, actix_web::Error> {
    let mut res = next.call(req).await?;
    let ns = actix_web::HttpMessage::extensions(res.request())
        .get::<ServedNamespace>()
        .cloned();
    if let Some(ServedNamespace(ns)) = ns
        && let Ok(value) = actix_web::http::header::HeaderValue::from_str(&ns)
    {
        res.headers_mut().insert(
            actix_web::http::header::HeaderName::from_static("oci-namespace"),
            value,
        );
    }
    Ok(res)
}
