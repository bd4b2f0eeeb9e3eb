//! Docker token authentication for the Distribution API: credentials from the request, the
//! `Authorized<A>` extractor that every repository handler takes, challenges, and the token
//! endpoint `GET /v2/_auth`.

use std::fmt::Write as _;
use std::marker::PhantomData;

use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpMessage as _, HttpRequest, HttpResponse, dev::Payload, web};
use futures_util::future::LocalBoxFuture;
use serde_json::json;

use super::{OciError, blocking};
use crate::domain::auth::{Auth, Credentials, Principal, Surface};
use crate::domain::{self};
pub use crate::http::caller::{Realm, base_url, client_ip, credentials};
use crate::model::{Action, Repository, Scope};

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

/// A pull of `name` routed to a connector feed (`registry::Connector::route_pull`): by containerd's
/// `?ns=`, or to the mirror feed; `None` when no routing is configured or applies.
async fn routed<A: Need>(req: &HttpRequest, name: &str) -> Result<Option<Repository>, OciError> {
    if A::ACTION != Action::Pull {
        return Ok(None);
    }
    let ns = form_urlencoded::parse(req.query_string().as_bytes())
        .find(|(k, _)| k == "ns")
        .map(|(_, v)| v.into_owned());
    let mirror = crate::http::caller::realm_of(req).and_then(|r| r.mirror_feed.clone());
    if ns.is_none() && mirror.is_none() {
        return Ok(None);
    }
    let Some(reg) = req.app_data::<web::Data<domain::Registry>>().cloned() else {
        return Ok(None);
    };
    let asked = name.to_owned();
    let (name, by_ns, to_mirror) = (asked.clone(), ns.clone(), mirror.clone());
    let routed = blocking(move || {
        reg.connector()
            .route_pull(&name, ns.as_deref(), mirror.as_deref())
    })
    .await?;
    match (&routed, by_ns, to_mirror) {
        (Some(_), Some(ns), _) => {
            req.extensions_mut()
                .insert(crate::http::caller::ServedNamespace(ns));
        }
        (Some(repo), None, Some(feed)) if repo.feed() == feed => {
            req.extensions_mut()
                .insert(crate::http::caller::Mirrored { asked, feed });
        }
        _ => {}
    }
    Ok(routed)
}

/// The caller, authenticated but not yet authorized for anything.
pub struct Caller(pub Option<Principal>);

fn auth_of(req: &HttpRequest) -> Result<web::Data<Auth>, OciError> {
    Ok(crate::http::caller::auth_of(req)?)
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
            let repo = match routed::<A>(&req, name).await? {
                Some(repo) => repo,
                None => name
                    .parse()
                    .map_err(|e| OciError::from(domain::Error::from(e)))?,
            };
            let auth = auth_of(&req)?;
            let scope = || format!("repository:{repo}:{}", A::SCOPE);
            let credentials =
                credentials(&req).map_err(|e| refuse(&req, auth.service(), Some(&scope()), e))?;
            // A token verified since the last metadata write needs no database read: answer
            // on the executor (the common case of a pull) when that check is in memory.
            let local = auth.caches_locally();
            if local
                && let Some(principal) =
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
            let decided = web::block(move || {
                // Otherwise the cached answer, when there is one, is taken here, off the executor.
                if !local
                    && let Some(principal) =
                        auth.authorize_cached(&credentials, &r, &feed, A::ACTION)
                {
                    return Ok(principal);
                }
                auth.authorize(&credentials, client, &r, &feed, A::ACTION)
            })
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
            let service = auth_of(&req)?.service().to_owned();
            crate::http::caller::identify(&req, Surface::Registry)
                .await
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
    let mirror = crate::http::caller::realm_of(&req).and_then(|r| r.mirror_feed.clone());
    let registry = req.app_data::<web::Data<domain::Registry>>().cloned();
    let issued = web::block(move || {
        let caller = a.caller(&credentials, client, Surface::Registry)?;
        let scopes = match registry {
            Some(reg) => with_pull_aliases(&reg, &scopes, mirror.as_deref())?,
            None => scopes,
        };
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

/// `scopes` and, for each repository a pull may be routed to a connector feed for
/// (`registry::Connector::pull_aliases`), the same pull there: a client that asked for `library/nginx`
/// may be answered from the mirror's `hub/library/nginx`. The token still grants only what
/// the caller holds in each feed.
fn with_pull_aliases(
    reg: &domain::Registry,
    scopes: &[Scope],
    mirror: Option<&str>,
) -> Result<Vec<Scope>, domain::Error> {
    let mut out = scopes.to_vec();
    for s in scopes {
        if s.kind == "repository" && s.actions.iter().any(|a| a == "pull") {
            for repo in reg.connector().pull_aliases(&s.name, mirror)? {
                out.push(Scope {
                    kind: s.kind.clone(),
                    name: repo.to_string(),
                    actions: vec!["pull".to_owned()],
                });
            }
        }
    }
    Ok(out)
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
