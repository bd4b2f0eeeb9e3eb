//! An `OpenID Connect` provider as semdock asks it: the provider's metadata from issuer
//! discovery, the authorization code flow with PKCE (S256) for a browser's sign-in, the
//! refresh token grant to ask again later, and the `userinfo` endpoint for claims the ID
//! token leaves out. ID tokens are checked with `jsonwebtoken` against the provider's JWKS:
//! signature (asymmetric algorithms only: a JWKS never turns into an HMAC secret), issuer,
//! audience, expiry and the sign-in's nonce.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use base64::Engine as _;
use jsonwebtoken::Validation;
use jsonwebtoken::jwk::JwkSet;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::{ClientError, Peer};

/// How to reach the provider and read its answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcSettings {
    /// The issuer, exactly as the provider names itself (`https://login.example.com/realms/x`).
    pub issuer: String,
    pub client_id: String,
    /// Empty for a public client (PKCE alone).
    pub client_secret: crate::model::Secret,
    /// Asked for at sign-in; `openid` is always among them.
    pub scopes: Vec<String>,
    /// `prompt` of the authorization request (`consent`, which some providers need before
    /// they issue a refresh token).
    pub prompt: Option<String>,
    /// The claim naming the semdock account (`preferred_username`); dots reach into objects.
    pub username_claim: String,
    /// The claim listing the user's groups (`groups`, `realm_access.roles`).
    pub groups_claim: String,
    /// PEM certificates the provider's is verified against (the system roots otherwise).
    pub ca_pem: Option<Vec<u8>>,
    pub timeout: Duration,
    /// The label of the UI's sign-in button.
    pub label: String,
}

/// What the provider said about a user at sign-in or at a refresh.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcUser {
    /// `sub`, the provider's stable id of the user.
    pub subject: String,
    /// The account name (`username_claim`), lower-cased.
    pub name: String,
    pub groups: Vec<String>,
    /// A new refresh token, when the provider issued one.
    pub refresh_token: Option<String>,
}

/// The provider's discovery document, the parts semdock uses.
#[derive(Debug, Clone, Deserialize)]
struct Metadata {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    #[serde(default)]
    userinfo_endpoint: Option<String>,
    jwks_uri: String,
}

/// A token endpoint's answer; the names are RFC 6749's.
#[derive(Deserialize)]
#[allow(clippy::struct_field_names)]
struct TokenResponse {
    #[serde(default)]
    id_token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    refresh_token: Option<String>,
}

#[derive(Deserialize)]
struct TokenErrorBody {
    error: String,
    #[serde(default)]
    error_description: Option<String>,
}

/// The discovery document and the keys are fetched again after this long.
const METADATA_TTL: Duration = Duration::from_hours(1);
/// A token signed by a key not in the cached set refetches the set, at most this often.
const JWKS_REFETCH: Duration = Duration::from_secs(30);

/// A client of one provider.
pub struct Oidc {
    settings: OidcSettings,
    agent: ureq::Agent,
    metadata: Mutex<Option<(Arc<Metadata>, Instant)>>,
    keys: Mutex<Option<(Arc<JwkSet>, Instant)>>,
}

fn unavailable(e: impl std::fmt::Display) -> ClientError {
    ClientError::unavailable(Peer::Directory, e)
}

fn refused(e: impl std::fmt::Display) -> ClientError {
    ClientError::refused(Peer::Directory, e)
}

/// The issuer without a trailing slash, so that `…/x` and `…/x/` compare equal.
fn trimmed(url: &str) -> &str {
    url.trim_end_matches('/')
}

/// A claim by name; `a.b` is `b` inside the object `a`.
fn claim<'c>(claims: &'c Map<String, Value>, path: &str) -> Option<&'c Value> {
    if let Some(v) = claims.get(path) {
        return Some(v);
    }
    let mut parts = path.split('.');
    let mut at = claims.get(parts.next()?)?;
    for p in parts {
        at = at.as_object()?.get(p)?;
    }
    Some(at)
}

/// A JSON answer, of at most a megabyte.
pub(super) fn read_json<T: serde::de::DeserializeOwned>(
    res: &mut ureq::http::Response<ureq::Body>,
) -> Result<T, String> {
    let text = res
        .body_mut()
        .with_config()
        .limit(1 << 20)
        .read_to_string()
        .map_err(|e| e.to_string())?;
    serde_json::from_str(&text).map_err(|e| e.to_string())
}

/// The PKCE challenge of `verifier` (S256).
#[must_use]
pub fn pkce_challenge(verifier: &str) -> String {
    use sha2::Digest as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier))
}

impl Oidc {
    /// Checks the settings (an `https` issuer, or `http` on a loopback address; the CA
    /// file parses) without asking the provider.
    pub fn new(mut settings: OidcSettings) -> Result<Self, ClientError> {
        let issuer = settings.issuer.trim().to_owned();
        let rest = if let Some(r) = issuer.strip_prefix("https://") {
            r
        } else if let Some(r) = issuer.strip_prefix("http://") {
            let host = r.split(['/', '?']).next().unwrap_or_default();
            let host = host.rsplit_once(':').map_or(host, |(h, _)| h);
            let loopback = host == "localhost"
                || host
                    .trim_matches(['[', ']'])
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|a| a.is_loopback());
            if !loopback {
                return Err(refused(format!(
                    "the issuer {issuer} is plain http: use https (plain http is accepted on a loopback address only)"
                )));
            }
            r
        } else {
            return Err(refused(format!(
                "the issuer {issuer:?} is not an http(s) URL"
            )));
        };
        if rest.is_empty() || settings.client_id.is_empty() {
            return Err(refused("an issuer and a client_id are needed"));
        }
        if !settings.scopes.iter().any(|s| s == "openid") {
            settings.scopes.insert(0, "openid".into());
        }
        let mut config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(settings.timeout))
            .user_agent(format!("semdock/{} (oidc)", env!("CARGO_PKG_VERSION")));
        if let Some(pem) = &settings.ca_pem {
            let mut roots = Vec::new();
            for item in ureq::tls::parse_pem(pem) {
                match item {
                    Ok(ureq::tls::PemItem::Certificate(c)) => roots.push(c),
                    Ok(_) => {}
                    Err(e) => return Err(refused(format!("its CA file is not PEM: {e}"))),
                }
            }
            if roots.is_empty() {
                return Err(refused("its CA file holds no certificate"));
            }
            config = config.tls_config(
                ureq::tls::TlsConfig::builder()
                    .root_certs(ureq::tls::RootCerts::Specific(Arc::new(roots)))
                    .build(),
            );
        }
        settings.issuer = issuer;
        Ok(Self {
            settings,
            agent: config.build().into(),
            metadata: Mutex::new(None),
            keys: Mutex::new(None),
        })
    }

    #[must_use]
    pub fn issuer(&self) -> &str {
        &self.settings.issuer
    }

    #[must_use]
    pub fn label(&self) -> &str {
        &self.settings.label
    }

    fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        url: &str,
        bearer: Option<&str>,
    ) -> Result<T, ClientError> {
        let mut req = self.agent.get(url).header("Accept", "application/json");
        if let Some(t) = bearer {
            req = req.header("Authorization", &format!("Bearer {t}"));
        }
        let mut res = req.call().map_err(unavailable)?;
        let status = res.status();
        if !status.is_success() {
            let e = format!("{url} answered {status}");
            return Err(if status.is_server_error() {
                unavailable(e)
            } else {
                refused(e)
            });
        }
        read_json(&mut res)
            .map_err(|e| refused(format!("{url} answered what is not its JSON: {e}")))
    }

    /// The discovery document, fetched once an hour; its `issuer` must be the configured one.
    fn metadata(&self) -> Result<Arc<Metadata>, ClientError> {
        if let Some((m, at)) = &*self.metadata.lock().unwrap_or_else(PoisonError::into_inner)
            && at.elapsed() < METADATA_TTL
        {
            return Ok(m.clone());
        }
        let url = format!(
            "{}/.well-known/openid-configuration",
            trimmed(&self.settings.issuer)
        );
        let m: Metadata = self.get_json(&url, None)?;
        if trimmed(&m.issuer) != trimmed(&self.settings.issuer) {
            return Err(refused(format!(
                "the provider names itself {:?}, not the configured issuer {:?}",
                m.issuer, self.settings.issuer
            )));
        }
        let m = Arc::new(m);
        *self.metadata.lock().unwrap_or_else(PoisonError::into_inner) =
            Some((m.clone(), Instant::now()));
        Ok(m)
    }

    /// The signing keys; `refetch` when a token names a key not among them.
    fn keys(&self, refetch: bool) -> Result<Arc<JwkSet>, ClientError> {
        if let Some((k, at)) = &*self.keys.lock().unwrap_or_else(PoisonError::into_inner) {
            let fresh = at.elapsed() < METADATA_TTL;
            if fresh && !(refetch && at.elapsed() >= JWKS_REFETCH) {
                return Ok(k.clone());
            }
        }
        let uri = self.metadata()?.jwks_uri.clone();
        let k: Arc<JwkSet> = Arc::new(self.get_json::<JwkSet>(&uri, None)?);
        *self.keys.lock().unwrap_or_else(PoisonError::into_inner) =
            Some((k.clone(), Instant::now()));
        Ok(k)
    }

    /// Where the browser goes to sign in: the authorization endpoint with this sign-in's
    /// `state`, `nonce` and PKCE challenge.
    pub fn authorization_url(
        &self,
        redirect_uri: &str,
        state: &str,
        nonce: &str,
        verifier: &str,
    ) -> Result<String, ClientError> {
        let m = self.metadata()?;
        let scope = self.settings.scopes.join(" ");
        let challenge = pkce_challenge(verifier);
        let mut query = form_urlencoded::Serializer::new(String::new());
        query
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.settings.client_id)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("scope", &scope)
            .append_pair("state", state)
            .append_pair("nonce", nonce)
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256");
        if let Some(p) = &self.settings.prompt {
            query.append_pair("prompt", p);
        }
        let sep = if m.authorization_endpoint.contains('?') {
            '&'
        } else {
            '?'
        };
        Ok(format!(
            "{}{sep}{}",
            m.authorization_endpoint,
            query.finish()
        ))
    }

    /// A request to the token endpoint; `Ok(Err(code))` when the provider refuses the grant.
    fn token(&self, form: &[(&str, &str)]) -> Result<Result<TokenResponse, String>, ClientError> {
        let m = self.metadata()?;
        let mut body = form_urlencoded::Serializer::new(String::new());
        for (k, v) in form {
            body.append_pair(k, v);
        }
        let mut req = self
            .agent
            .post(&m.token_endpoint)
            .header("Accept", "application/json")
            .header("Content-Type", "application/x-www-form-urlencoded");
        if self.settings.client_secret.expose().is_empty() {
            body.append_pair("client_id", &self.settings.client_id);
        } else {
            // client_secret_basic: each part form-encoded first (RFC 6749, 2.3.1).
            let enc =
                |s: &str| -> String { form_urlencoded::byte_serialize(s.as_bytes()).collect() };
            let basic = base64::engine::general_purpose::STANDARD.encode(format!(
                "{}:{}",
                enc(&self.settings.client_id),
                enc(self.settings.client_secret.expose())
            ));
            req = req.header("Authorization", &format!("Basic {basic}"));
        }
        let mut res = req.send(body.finish()).map_err(unavailable)?;
        let status = res.status();
        if status.is_server_error() {
            return Err(unavailable(format!("its token endpoint answered {status}")));
        }
        if !status.is_success() {
            let e: TokenErrorBody = read_json(&mut res)
                .map_err(|_| refused(format!("its token endpoint answered {status}")))?;
            let detail = e
                .error_description
                .map(|d| format!(": {d}"))
                .unwrap_or_default();
            return Ok(Err(format!("{}{detail}", e.error)));
        }
        let t: TokenResponse = read_json(&mut res)
            .map_err(|e| refused(format!("its token endpoint answered what is not JSON: {e}")))?;
        Ok(Ok(t))
    }

    /// The claims of a valid ID token: signed by one of the provider's keys, issued by it,
    /// for this client, unexpired, and with `nonce` when one is given.
    fn id_claims(
        &self,
        token: &str,
        nonce: Option<&str>,
    ) -> Result<Map<String, Value>, ClientError> {
        let (header, key) =
            super::jwt::signing_key(token, Peer::Directory, "ID token", |refetch| {
                self.keys(refetch)
            })?;
        let mut v = Validation::new(header.alg);
        v.set_issuer(&[
            trimmed(&self.settings.issuer),
            &format!("{}/", trimmed(&self.settings.issuer)),
        ]);
        v.set_audience(&[&self.settings.client_id]);
        v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        v.leeway = 60;
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key, &v)
            .map_err(|e| refused(format!("the ID token is not valid: {e}")))?;
        let claims = data.claims;
        if let Some(expected) = nonce
            && claims.get("nonce").and_then(Value::as_str) != Some(expected)
        {
            return Err(refused("the ID token's nonce is not this sign-in's"));
        }
        Ok(claims)
    }

    /// The user a token response names: the ID token's claims, and the `userinfo`
    /// endpoint's for the name or groups when the ID token leaves them out.
    fn user(&self, t: TokenResponse, nonce: Option<&str>) -> Result<OidcUser, ClientError> {
        let id_token = t.id_token.ok_or_else(|| {
            refused("the provider answered without an ID token (is the openid scope allowed?)")
        })?;
        let mut claims = self.id_claims(&id_token, nonce)?;
        let subject = claims
            .get("sub")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let s = &self.settings;
        let wanted = claim(&claims, &s.username_claim).is_none()
            || claim(&claims, &s.groups_claim).is_none();
        if wanted
            && let (Some(endpoint), Some(access)) =
                (&self.metadata()?.userinfo_endpoint, &t.access_token)
        {
            let info: Map<String, Value> = self.get_json(endpoint, Some(access))?;
            if info.get("sub").and_then(Value::as_str) != Some(subject.as_str()) {
                return Err(refused(
                    "the userinfo endpoint answered for another subject",
                ));
            }
            for (k, v) in info {
                claims.entry(k).or_insert(v);
            }
        }
        let name = claim(&claims, &s.username_claim)
            .and_then(Value::as_str)
            .ok_or_else(|| {
                refused(format!(
                    "the provider gave no {:?} claim to name the account (set directory.oidc.username_claim)",
                    s.username_claim
                ))
            })?
            .to_lowercase();
        let groups = match claim(&claims, &s.groups_claim) {
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
            Some(Value::String(g)) => vec![g.clone()],
            _ => Vec::new(),
        };
        Ok(OidcUser {
            subject,
            name,
            groups,
            refresh_token: t.refresh_token,
        })
    }

    /// Finishes a sign-in: exchanges the code (with the PKCE verifier) and checks the ID
    /// token against this sign-in's nonce.
    pub fn exchange(
        &self,
        code: &str,
        verifier: &str,
        redirect_uri: &str,
        nonce: &str,
    ) -> Result<OidcUser, ClientError> {
        let t = self
            .token(&[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", redirect_uri),
                ("code_verifier", verifier),
            ])?
            .map_err(|e| refused(format!("the provider refused the sign-in: {e}")))?;
        self.user(t, Some(nonce))
    }

    /// Asks the provider again with a refresh token: the user as it is now, or `None` when
    /// the provider refuses the grant (`invalid_grant`: the user was disabled, removed or
    /// signed out everywhere).
    pub fn refresh(&self, refresh_token: &str) -> Result<Option<OidcUser>, ClientError> {
        match self.token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ])? {
            Ok(t) => self.user(t, None).map(Some),
            Err(e) if e.starts_with("invalid_grant") => Ok(None),
            Err(e) => Err(refused(format!("the provider refused a refresh: {e}"))),
        }
    }

    /// Fetches the discovery document and the keys.
    pub fn check(&self) -> Result<String, ClientError> {
        let m = self.metadata()?;
        let keys = self.keys(true)?;
        Ok(format!(
            "issuer {} answers: authorization at {}, tokens at {}, {} signing key(s)",
            m.issuer,
            m.authorization_endpoint,
            m.token_endpoint,
            keys.keys.len()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(issuer: &str) -> OidcSettings {
        OidcSettings {
            issuer: issuer.into(),
            client_id: "semdock".into(),
            client_secret: crate::model::Secret::default(),
            scopes: vec!["profile".into()],
            prompt: None,
            username_claim: "preferred_username".into(),
            groups_claim: "groups".into(),
            ca_pem: None,
            timeout: Duration::from_secs(1),
            label: "Sign in".into(),
        }
    }

    #[test]
    fn plain_http_issuers_are_refused_off_loopback() {
        assert!(Oidc::new(settings("http://login.example.com")).is_err());
        assert!(Oidc::new(settings("ftp://login.example.com")).is_err());
        for ok in [
            "https://login.example.com/realms/x",
            "http://127.0.0.1:8080",
            "http://localhost:9000/",
            "http://[::1]:4000",
        ] {
            let o = Oidc::new(settings(ok)).unwrap_or_else(|e| panic!("{ok}: {e}"));
            assert_eq!(o.settings.scopes[0], "openid", "openid is always asked for");
        }
    }

    #[test]
    fn claims_are_found_by_dotted_paths() {
        let claims: Map<String, Value> = serde_json::from_str(
            r#"{"groups":["a"],"realm_access":{"roles":["r1","r2"]},"x.y":1}"#,
        )
        .unwrap();
        assert_eq!(claim(&claims, "groups"), Some(&serde_json::json!(["a"])));
        assert_eq!(
            claim(&claims, "realm_access.roles"),
            Some(&serde_json::json!(["r1", "r2"]))
        );
        assert_eq!(claim(&claims, "x.y"), Some(&serde_json::json!(1)));
        assert_eq!(claim(&claims, "realm_access.missing"), None);
    }

    #[test]
    fn the_pkce_challenge_is_rfc_7636s() {
        // The example of RFC 7636, appendix B.
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }
}
