//! Where administration commands act: the local data directory (while no server holds it:
//! the recovery path), through `Access` as the administrator, or a running server's
//! management API with an API key, through the API's own request and response types.
//!
//! Each operation is written once, in the file of its noun, as one `Target::run`: the
//! request the API takes and what the domain does for it. Both ways answer with the API's
//! DTO, so a command prints the same whichever way it went.

use anyhow::{Context, bail};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::domain::Services;
use crate::domain::access::Access;
use crate::domain::auth::{Caller, INITIAL_ADMIN, Principal, Via};

/// Where administration commands act.
pub enum Target {
    /// The data directory, acting as the administrator.
    Local(Box<Services>),
    /// A server's API, with an API key.
    Remote { base: String, key: String },
}

/// One request of the management API (its path under `/api/v1`), as the remote way sends it.
pub struct Request {
    method: &'static str,
    path: String,
    body: Option<Value>,
    /// A POST's body as bytes (a file), sent as `application/octet-stream`.
    raw: Option<Vec<u8>>,
}

impl Request {
    pub fn get(path: impl Into<String>) -> Self {
        Self::new("GET", path, None)
    }

    pub fn delete(path: impl Into<String>) -> Self {
        Self::new("DELETE", path, None)
    }

    /// A POST without a body.
    pub fn post(path: impl Into<String>) -> Self {
        Self::new("POST", path, None)
    }

    /// A POST, PUT or PATCH of `body` (an API request DTO).
    pub fn send(method: &'static str, path: impl Into<String>, body: &impl Serialize) -> Self {
        Self::new(
            method,
            path,
            Some(serde_json::to_value(body).unwrap_or_default()),
        )
    }

    /// A POST of the bytes of a file.
    pub fn upload(path: impl Into<String>, bytes: Vec<u8>) -> Self {
        let mut request = Self::new("POST", path, None);
        request.raw = Some(bytes);
        request
    }

    fn new(method: &'static str, path: impl Into<String>, body: Option<Value>) -> Self {
        Self {
            method,
            path: path.into(),
            body,
            raw: None,
        }
    }
}

/// The caller of a local command: the administrator, at the data directory.
fn local_actor() -> Caller {
    Caller {
        principal: Principal::User {
            name: INITIAL_ADMIN.to_owned(),
            admin: true,
        },
        via: Via::Local,
    }
}

impl Target {
    /// One operation: `local` through `Access` as the administrator, or `request` to the
    /// server, whose answer is read as the same type.
    pub fn run<T: DeserializeOwned>(
        &self,
        request: Request,
        local: impl FnOnce(&Access) -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        self.run_services(request, |s| local(&Self::access(s)))
    }

    /// One operation whose local way needs the services themselves, past `Access`: a job
    /// with a progress bar, or the recovery of a password with no administrator at hand.
    pub fn run_services<T: DeserializeOwned>(
        &self,
        request: Request,
        local: impl FnOnce(&Services) -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        match self {
            Self::Local(s) => {
                // Read-only mode holds for the local way too (a cluster's database is shared
                // with the nodes); what a server lets through, this lets through.
                let passes = ["/maintenance", "/backup"].contains(&request.path.as_str());
                if request.method != "GET" && !passes {
                    s.registry.maintenance().writable()?;
                }
                local(s)
            }
            Self::Remote { .. } => {
                let (value, _) = self.call_paged(request)?;
                Ok(serde_json::from_value(value)?)
            }
        }
    }

    /// One listing, `limit` items at most: `local` through `Access`, or every page of the
    /// server's paged list at `path` (following its `Link: rel="next"` headers).
    pub fn run_list<T: DeserializeOwned>(
        &self,
        path: &str,
        limit: Option<usize>,
        local: impl FnOnce(&Access) -> anyhow::Result<Vec<T>>,
    ) -> anyhow::Result<Vec<T>> {
        let mut items = match self {
            Self::Local(s) => local(&Self::access(s))?,
            Self::Remote { .. } => {
                let mut items = Vec::new();
                let mut next = Some(path.to_owned());
                while let Some(path) = next.take() {
                    let (page, link) = self.call_paged(Request::get(path))?;
                    items.extend(serde_json::from_value::<Vec<T>>(page)?);
                    if limit.is_some_and(|limit| items.len() >= limit) {
                        break;
                    }
                    next = link;
                }
                items
            }
        };
        if let Some(limit) = limit {
            items.truncate(limit);
        }
        Ok(items)
    }

    /// The domain's services of a local target (for the offline jobs only it runs).
    pub fn local(&self) -> Option<&Services> {
        match self {
            Self::Local(s) => Some(s),
            Self::Remote { .. } => None,
        }
    }

    fn access(s: &Services) -> Access {
        Access::new(s.registry.clone(), s.auth.clone(), Some(local_actor()))
    }

    /// One request, and the path (under `/api/v1`) of the next page when the answer has one.
    fn call_paged(&self, request: Request) -> anyhow::Result<(Value, Option<String>)> {
        use base64::Engine as _;
        let Self::Remote { base, key } = self else {
            bail!("no server to call");
        };
        let Request {
            method,
            path,
            body,
            raw,
        } = request;
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let url = format!("{}/api/v1{path}", base.trim_end_matches('/'));
        let auth = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("api:{key}"))
        );
        let json = body.as_ref().map(Value::to_string).unwrap_or_default();
        let mut res = match (method, raw) {
            ("POST", Some(bytes)) => agent
                .post(&url)
                .header("Authorization", &auth)
                .content_type("application/octet-stream")
                .send(&bytes[..]),
            (method, _) => match method {
            "GET" => agent.get(&url).header("Authorization", &auth).call(),
            "DELETE" => agent.delete(&url).header("Authorization", &auth).call(),
            "POST" => agent
                .post(&url)
                .header("Authorization", &auth)
                .content_type("application/json")
                .send(json),
            "PUT" => agent
                .put(&url)
                .header("Authorization", &auth)
                .content_type("application/json")
                .send(json),
            "PATCH" => agent
                .patch(&url)
                .header("Authorization", &auth)
                .content_type("application/json")
                .send(json),
            _ => bail!("unsupported request {method} {path}"),
            },
        }
        .with_context(|| {
            format!("cannot reach a server at {base}: is the address and port right, and is semdock running there?")
        })?;
        let status = res.status();
        let next = res
            .headers()
            .get_all("link")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.contains("rel=\"next\""))
            .and_then(|v| v.trim().strip_prefix('<'))
            .and_then(|v| v.split_once('>'))
            .and_then(|(target, _)| target.strip_prefix("/api/v1").map(str::to_owned));
        let text = res.body_mut().read_to_string().unwrap_or_default();
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if !status.is_success() {
            let message = value["error"]["message"]
                .as_str()
                .unwrap_or(&text)
                .to_owned();
            bail!("{message} (HTTP {status})");
        }
        Ok((value, next))
    }
}

/// `value` as a JSON tree, which commands print and read fields of (its keys sorted, as
/// they always were).
pub fn to_json(value: &impl Serialize) -> anyhow::Result<Value> {
    Ok(serde_json::to_value(value)?)
}
