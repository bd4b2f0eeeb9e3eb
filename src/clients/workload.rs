//! Workload identity issuers: the OpenID Connect issuers of CI systems and clusters (GitHub
//! Actions, GitLab CI, a Kubernetes cluster's service-account issuer) whose ID tokens a job
//! presents instead of a stored secret. An issuer's keys come from its discovery document's
//! `jwks_uri` (kept an hour, fetched again when a token names a key not among them, at most
//! every few seconds: a rotated key is picked up without a restart), or from a JWKS the
//! administrator gave for an issuer semdock cannot reach. A token is checked with
//! `jsonwebtoken`: an asymmetric signature by one of those keys, the issuer exactly, the
//! audience, and `exp`/`nbf` with a small leeway.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use jsonwebtoken::Validation;
use jsonwebtoken::jwk::JwkSet;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::{ClientError, Peer};

/// The keys are fetched again after this long.
const KEYS_TTL: Duration = Duration::from_hours(1);
/// A token naming an unknown key refetches the keys, at most this often per issuer.
const REFETCH: Duration = Duration::from_secs(5);
/// Clock skew allowed on `exp` and `nbf`.
const LEEWAY_SECONDS: u64 = 30;

#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    jwks_uri: String,
}

fn refused(why: impl Into<String>) -> ClientError {
    ClientError::Refused {
        peer: Peer::Issuer,
        why: why.into(),
    }
}

fn unavailable(why: impl std::fmt::Display) -> ClientError {
    ClientError::Unavailable {
        peer: Peer::Issuer,
        why: why.to_string(),
    }
}

fn trimmed(issuer: &str) -> &str {
    issuer.trim_end_matches('/')
}

/// The claims of a token, unverified: only to learn which issuer to ask (nothing in them is
/// believed before the signature is checked).
pub fn unverified_issuer(token: &str) -> Option<String> {
    use base64::Engine as _;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: Map<String, Value> = serde_json::from_slice(&bytes).ok()?;
    claims.get("iss")?.as_str().map(str::to_owned)
}

/// The issuers' keys, cached per issuer.
pub struct Issuers {
    agent: ureq::Agent,
    keys: Mutex<HashMap<String, (Arc<JwkSet>, Instant)>>,
}

impl Default for Issuers {
    fn default() -> Self {
        Self::new(Duration::from_secs(10))
    }
}

impl Issuers {
    #[must_use]
    pub fn new(timeout: Duration) -> Self {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(timeout))
            .user_agent(format!(
                "semdock/{} (workload identity)",
                env!("CARGO_PKG_VERSION")
            ))
            .build()
            .into();
        Self {
            agent,
            keys: Mutex::new(HashMap::new()),
        }
    }

    fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, ClientError> {
        let mut res = self
            .agent
            .get(url)
            .header("Accept", "application/json")
            .call()
            .map_err(|e| unavailable(format!("{url}: {e}")))?;
        let status = res.status();
        if status.is_server_error() || status.as_u16() == 429 {
            return Err(unavailable(format!("{url} answered {status}")));
        }
        if !status.is_success() {
            return Err(refused(format!("{url} answered {status}")));
        }
        super::oidc::read_json(&mut res)
            .map_err(|e| refused(format!("{url} answered what is not its JSON: {e}")))
    }

    /// `issuer`'s keys: cached, or fetched through its discovery document.
    fn keys(&self, issuer: &str, refetch: bool) -> Result<Arc<JwkSet>, ClientError> {
        if let Some((k, at)) = self
            .keys
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(issuer)
        {
            let stale = at.elapsed() >= KEYS_TTL || (refetch && at.elapsed() >= REFETCH);
            if !stale {
                return Ok(k.clone());
            }
        }
        let discovery: Discovery = self.get_json(&format!(
            "{}/.well-known/openid-configuration",
            trimmed(issuer)
        ))?;
        if trimmed(&discovery.issuer) != trimmed(issuer) {
            return Err(refused(format!(
                "the issuer names itself {:?}, not {issuer:?}",
                discovery.issuer
            )));
        }
        let keys: Arc<JwkSet> = Arc::new(self.get_json(&discovery.jwks_uri)?);
        self.keys
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(issuer.to_owned(), (keys.clone(), Instant::now()));
        Ok(keys)
    }

    /// The claims of `token` once it verifies: signed by `issuer` (with the keys of `jwks`,
    /// a JWKS document, when given; else those its `jwks_uri` publishes), for `audience`,
    /// unexpired.
    pub fn verify(
        &self,
        token: &str,
        issuer: &str,
        audience: &str,
        jwks: Option<&str>,
    ) -> Result<Map<String, Value>, ClientError> {
        let (header, key) =
            super::jwt::signing_key(token, Peer::Issuer, "token", |refetch| match jwks {
                Some(given) => serde_json::from_str::<JwkSet>(given)
                    .map(Arc::new)
                    .map_err(|e| {
                        refused(format!("the JWKS given for {issuer} does not parse: {e}"))
                    }),
                None => self.keys(issuer, refetch),
            })?;
        let mut v = Validation::new(header.alg);
        v.set_issuer(&[trimmed(issuer), &format!("{}/", trimmed(issuer))]);
        v.set_audience(&[audience]);
        v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        v.validate_nbf = true;
        v.leeway = LEEWAY_SECONDS;
        jsonwebtoken::decode::<Map<String, Value>>(token, &key, &v)
            .map(|data| data.claims)
            .map_err(|e| {
                use jsonwebtoken::errors::ErrorKind as K;
                refused(match e.kind() {
                    K::ExpiredSignature => "the token has expired".to_owned(),
                    K::InvalidAudience => {
                        format!("the token is not for audience {audience:?}")
                    }
                    K::InvalidIssuer => format!("the token is not issued by {issuer}"),
                    K::ImmatureSignature => "the token is not valid yet".to_owned(),
                    K::InvalidSignature => "the token's signature does not verify".to_owned(),
                    _ => format!("the token is not valid: {e}"),
                })
            })
    }
}
