//! A client of another registry's Distribution API, for connector feeds: manifests and blobs
//! by name, with the registry's own token flow (a `Bearer` challenge answered at its realm,
//! with the connector's credentials when it has them, or `Basic`). The client's own
//! credentials are never forwarded: only the connector's.

use std::collections::HashMap;
use std::io::Read;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;

use super::outbound::{self, Outbound};
use super::{ClientError, Peer};

mod push;
pub use push::{BlobBody, BlobOutcome, Pushed};

/// Every manifest type a pull asks for (byte-exact: whatever the upstream has is kept).
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.v1+prettyjws;q=0.5";

/// Unreachable, timed out, rate-limited (429) or failing (5xx): a cached copy may serve.
fn unavailable(e: impl std::fmt::Display) -> ClientError {
    ClientError::unavailable(Peer::Upstream, e)
}

/// Refused the connector's credentials, or answered something this client cannot use.
fn refused(e: impl std::fmt::Display) -> ClientError {
    ClientError::refused(Peer::Upstream, e)
}

/// A manifest as the upstream has it.
#[derive(Debug, Clone)]
pub struct UpstreamManifest {
    pub digest: String,
    pub media_type: String,
    /// Empty for a HEAD.
    pub body: Vec<u8>,
}

/// A blob being read from the upstream.
pub struct UpstreamBlob {
    pub len: Option<u64>,
    pub reader: Box<dyn Read + Send>,
}

pub struct Upstream {
    agent: ureq::Agent,
    base: String,
    credentials: Option<(String, crate::model::Secret)>,
    /// scope → (token, until).
    tokens: Mutex<HashMap<String, (String, Instant)>>,
}

fn is_unavailable(status: u16) -> bool {
    status == 429 || status == 408 || status >= 500
}

/// The `key="value"` pairs of a `WWW-Authenticate` challenge after its scheme.
fn challenge_params(value: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut rest = value;
    while let Some(eq) = rest.find('=') {
        let key = rest[..eq]
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        let after = &rest[eq + 1..];
        let (val, tail) = if let Some(quoted) = after.strip_prefix('"') {
            let end = quoted.find('"').unwrap_or(quoted.len());
            (&quoted[..end], quoted.get(end + 1..).unwrap_or(""))
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (&after[..end], &after[end..])
        };
        out.insert(key, val.to_owned());
        rest = tail;
    }
    out
}

impl Upstream {
    /// A client of the registry at `url`, connecting only where `outbound` allows. An
    /// answer's head must arrive within `timeout`, and so must each read of its body: an
    /// upstream that stalls mid-body fails the fetch instead of holding it for ever.
    #[must_use]
    pub fn new(
        url: &str,
        credentials: Option<(String, crate::model::Secret)>,
        timeout: Duration,
        outbound: &Arc<Outbound>,
    ) -> Self {
        Self::with_label(url, credentials, timeout, outbound, "connector")
    }

    /// A client of a replication target at `url`, as [`Upstream::new`] makes one for a
    /// connector.
    #[must_use]
    pub fn for_replication(
        url: &str,
        credentials: Option<(String, crate::model::Secret)>,
        timeout: Duration,
        outbound: &Arc<Outbound>,
    ) -> Self {
        Self::with_label(url, credentials, timeout, outbound, "replication")
    }

    fn with_label(
        url: &str,
        credentials: Option<(String, crate::model::Secret)>,
        timeout: Duration,
        outbound: &Arc<Outbound>,
        label: &str,
    ) -> Self {
        let agent = outbound.agent(
            ureq::Agent::config_builder()
                .http_status_as_error(false)
                .timeout_connect(Some(timeout))
                .timeout_recv_response(Some(timeout))
                .timeout_per_read(Some(timeout))
                .user_agent(format!("semdock/{} ({label})", env!("CARGO_PKG_VERSION"))),
        );
        Self {
            agent,
            base: url.trim_end_matches('/').to_owned(),
            credentials,
            tokens: Mutex::default(),
        }
    }

    fn basic(&self) -> Option<String> {
        self.credentials.as_ref().map(|(u, p)| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{u}:{}", p.expose()))
            )
        })
    }

    fn cached_token(&self, scope: &str) -> Option<String> {
        let tokens = self
            .tokens
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        tokens
            .get(scope)
            .filter(|(_, until)| Instant::now() < *until)
            .map(|(t, _)| format!("Bearer {t}"))
    }

    /// Answers a challenge: the `Authorization` to retry with.
    fn authorize(&self, challenge: &str, scope: &str) -> Result<String, ClientError> {
        let (scheme, params) = challenge.split_once(' ').unwrap_or((challenge, ""));
        if scheme.eq_ignore_ascii_case("basic") {
            return self
                .basic()
                .ok_or_else(|| refused("it asks for credentials and the connector has none"));
        }
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(refused(format!("it asks for {scheme} authentication")));
        }
        let p = challenge_params(params);
        let realm = p
            .get("realm")
            .ok_or_else(|| refused("its Bearer challenge names no realm"))?;
        let mut query = Vec::new();
        if !scope.is_empty() {
            query.push(("scope", scope.to_owned()));
        }
        if let Some(service) = p.get("service") {
            query.push(("service", service.clone()));
        }
        let url = format!(
            "{realm}?{}",
            serde_urlencoded::to_string(&query).unwrap_or_default()
        );
        let mut req = self.agent.get(&url);
        if let Some(basic) = self.basic() {
            req = req.header("Authorization", &basic);
        }
        let mut res = req.call().map_err(|e| match outbound::refusal(&e) {
            Some(why) => refused(format!("its token service: {why}")),
            None => unavailable(format!("its token service: {e}")),
        })?;
        let status = res.status().as_u16();
        if is_unavailable(status) {
            return Err(unavailable(format!("its token service answered {status}")));
        }
        if status != 200 {
            return Err(refused(format!(
                "its token service answered {status} to the connector's credentials"
            )));
        }
        let body = json_body(&mut res, 1 << 20, "its token answer")?;
        let token = body["token"]
            .as_str()
            .or_else(|| body["access_token"].as_str())
            .ok_or_else(|| refused("its token answer holds no token"))?
            .to_owned();
        let ttl = body["expires_in"].as_u64().unwrap_or(60).clamp(10, 3600);
        self.tokens
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(
                scope.to_owned(),
                (
                    token.clone(),
                    Instant::now() + Duration::from_secs(ttl.saturating_sub(5)),
                ),
            );
        Ok(format!("Bearer {token}"))
    }

    /// One request to `path` for repository `name`, authenticated as the upstream asks.
    fn request(
        &self,
        method: &str,
        name: &str,
        path: &str,
        accept: Option<&str>,
    ) -> Result<ureq::http::Response<ureq::Body>, ClientError> {
        let url = format!("{}/v2/{name}/{path}", self.base);
        let scope = format!("repository:{name}:pull");
        let send = |auth: Option<&str>| {
            let mut req = match method {
                "HEAD" => self.agent.head(&url),
                _ => self.agent.get(&url),
            };
            if let Some(a) = accept {
                req = req.header("Accept", a);
            }
            if let Some(a) = auth {
                req = req.header("Authorization", a);
            }
            req.call().map_err(call_error)
        };
        self.authorized(&scope, send)
    }

    /// `send` with the credentials held for `scope` (a token, or Basic), and once more with
    /// what the registry's challenge asks for when it answers 401.
    fn authorized(
        &self,
        scope: &str,
        send: impl Fn(Option<&str>) -> Result<ureq::http::Response<ureq::Body>, ClientError>,
    ) -> Result<ureq::http::Response<ureq::Body>, ClientError> {
        let first = self.cached_token(scope).or_else(|| self.basic());
        let res = send(first.as_deref())?;
        if res.status().as_u16() != 401 {
            return Ok(res);
        }
        let challenge = res
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let auth = self.authorize(&challenge, scope)?;
        send(Some(&auth))
    }

    /// The manifest `reference` (a tag or digest) of `name`, its body too unless `head`;
    /// `None` when the upstream does not have it.
    pub fn manifest(
        &self,
        name: &str,
        reference: &str,
        head: bool,
        limit: u64,
    ) -> Result<Option<UpstreamManifest>, ClientError> {
        let method = if head { "HEAD" } else { "GET" };
        let mut res = self.request(
            method,
            name,
            &format!("manifests/{reference}"),
            Some(MANIFEST_ACCEPT),
        )?;
        if !found(res.status().as_u16())? {
            return Ok(None);
        }
        let header = |h: &str| {
            res.headers()
                .get(h)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let media_type = header("content-type").unwrap_or_default();
        let declared = header("docker-content-digest");
        if head {
            let digest = declared
                .ok_or_else(|| refused("its HEAD answer names no Docker-Content-Digest"))?;
            return Ok(Some(UpstreamManifest {
                digest,
                media_type,
                body: Vec::new(),
            }));
        }
        let body = res
            .body_mut()
            .with_config()
            .limit(limit)
            .read_to_vec()
            .map_err(|e| unavailable(format!("reading the manifest: {e}")))?;
        let computed = crate::model::Digest::of(&body).to_string();
        if let Some(declared) = declared
            && declared.starts_with("sha256:")
            && declared != computed
        {
            return Err(refused(format!(
                "its manifest hashes to {computed}, not the {declared} it declared"
            )));
        }
        Ok(Some(UpstreamManifest {
            digest: computed,
            media_type,
            body,
        }))
    }

    /// Blob `digest` of `name`, to be read; `None` when the upstream does not have it.
    pub fn blob(&self, name: &str, digest: &str) -> Result<Option<UpstreamBlob>, ClientError> {
        let res = self.request("GET", name, &format!("blobs/{digest}"), None)?;
        if !found(res.status().as_u16())? {
            return Ok(None);
        }
        let len = res
            .headers()
            .get("content-length")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        Ok(Some(UpstreamBlob {
            len,
            reader: Box::new(res.into_body().into_reader()),
        }))
    }

    /// Checks that the upstream answers its API root (`/v2/`) and accepts the connector's
    /// credentials (or none); answers how it authenticated.
    pub fn ping(&self) -> Result<&'static str, ClientError> {
        let url = format!("{}/v2/", self.base);
        let send = |auth: Option<&str>| {
            let mut req = self.agent.get(&url);
            if let Some(a) = auth {
                req = req.header("Authorization", a);
            }
            req.call().map_err(call_error)
        };
        // Asked without credentials first, so that its challenge says how it authenticates.
        let res = send(None)?;
        let (res, how) = if res.status().as_u16() == 401 {
            let challenge = res
                .headers()
                .get("www-authenticate")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            let auth = self.authorize(&challenge, "")?;
            let how = if auth.starts_with("Bearer") {
                if self.credentials.is_some() {
                    "a token for the connector's credentials"
                } else {
                    "an anonymous token"
                }
            } else {
                "Basic authentication"
            };
            (send(Some(&auth))?, how)
        } else {
            (res, "no authentication (it asks for none)")
        };
        match res.status().as_u16() {
            200 => Ok(how),
            401 | 403 => Err(refused("it did not accept the connector's credentials")),
            s if is_unavailable(s) => Err(unavailable(format!("it answered {s}"))),
            s => Err(refused(format!(
                "its /v2/ answered {s}: is this a registry's URL?"
            ))),
        }
    }

    /// When the upstream is a semdock: the history of `tag` of repository `name` (its
    /// management API, newest first, as JSON entries); `None` from any other registry, or
    /// when it does not let the connector read it.
    pub fn history(&self, name: &str, tag: &str) -> Option<Vec<serde_json::Value>> {
        let url = format!(
            "{}/api/v1/repositories/{name}/history?tag={}",
            self.base,
            form_urlencoded::byte_serialize(tag.as_bytes()).collect::<String>()
        );
        let mut req = self.agent.get(&url);
        if let Some(b) = self.basic() {
            req = req.header("Authorization", &b);
        }
        let mut res = req.call().ok()?;
        if res.status().as_u16() != 200 {
            return None;
        }
        json_body(&mut res, 16 << 20, "its tag history")
            .ok()?
            .as_array()
            .cloned()
    }

    /// Every tag of upstream repository `name`, page by page (`n`, `last`); `None` when the
    /// upstream has no such repository.
    pub fn tags(&self, name: &str) -> Result<Option<Vec<String>>, ClientError> {
        const PAGE: usize = 1000;
        let mut out: Vec<String> = Vec::new();
        loop {
            let mut path = format!("tags/list?n={PAGE}");
            if let Some(last) = out.last() {
                path.push_str("&last=");
                path.extend(form_urlencoded::byte_serialize(last.as_bytes()));
            }
            let mut res = self.request("GET", name, &path, None)?;
            if !found(res.status().as_u16())? {
                return Ok(if out.is_empty() { None } else { Some(out) });
            }
            let more = res.headers().get("link").is_some();
            let page = json_body(&mut res, 16 << 20, "its tag list")?;
            let tags: Vec<String> = page["tags"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|t| t.as_str().map(str::to_owned))
                .collect();
            let n = tags.len();
            out.extend(tags);
            if !more || n == 0 {
                return Ok(Some(out));
            }
        }
    }
}

/// A request that got no answer: refused by the outbound policy, or unavailable.
#[allow(clippy::needless_pass_by_value)] // the shape map_err hands over
fn call_error(e: ureq::Error) -> ClientError {
    match outbound::refusal(&e) {
        Some(why) => refused(why),
        None => unavailable(e.to_string()),
    }
}

/// The JSON body of `res`, up to `limit` bytes; `what` names it in errors.
fn json_body(
    res: &mut ureq::http::Response<ureq::Body>,
    limit: u64,
    what: &str,
) -> Result<serde_json::Value, ClientError> {
    let bytes = res
        .body_mut()
        .with_config()
        .limit(limit)
        .read_to_vec()
        .map_err(|e| unavailable(format!("{what}: {e}")))?;
    serde_json::from_slice(&bytes).map_err(|e| refused(format!("{what}: {e}")))
}

/// Whether an answer of `status` holds what was asked (200), not (404), or is an error.
fn found(status: u16) -> Result<bool, ClientError> {
    match status {
        200 => Ok(true),
        404 => Ok(false),
        s if is_unavailable(s) => Err(unavailable(format!("it answered {s}"))),
        s => Err(refused(format!("it answered {s}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_are_read_as_registries_send_them() {
        let p = challenge_params(
            r#"realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/nginx:pull""#,
        );
        assert_eq!(p["realm"], "https://auth.docker.io/token");
        assert_eq!(p["service"], "registry.docker.io");
        assert_eq!(p["scope"], "repository:library/nginx:pull");
        let p = challenge_params("realm=x, service=y");
        assert_eq!((p["realm"].as_str(), p["service"].as_str()), ("x", "y"));
    }
}
