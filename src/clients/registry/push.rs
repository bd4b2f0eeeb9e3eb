//! Pushing to another registry, for replication: a blob by existence check, cross-repository
//! mount or one streamed upload; a manifest byte for byte; a deletion. The same token flow as
//! pulls, asking for push rights; every error names the replication target, not an upstream.

use std::io::Read;

use super::{ClientError, Peer, Upstream, call_error, is_unavailable};

/// What a manifest push answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pushed {
    /// The target said it indexed the manifest's subject (`OCI-Subject`): it serves the
    /// referrers API, and no fallback tag is needed.
    pub subject_indexed: bool,
}

/// A blob body for [`Upstream::upload_blob`]: its length and its bytes.
pub struct BlobBody {
    pub len: u64,
    pub reader: Box<dyn Read + Send>,
}

/// How a blob reached the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobOutcome {
    /// Mounted from another of the target's repositories: no byte sent.
    Mounted,
    /// Uploaded.
    Uploaded,
}

fn target_error(e: ClientError) -> ClientError {
    match e {
        ClientError::Unavailable { why, .. } => ClientError::unavailable(Peer::Replica, why),
        ClientError::Refused { why, .. } => ClientError::refused(Peer::Replica, why),
    }
}

fn unavailable(e: impl std::fmt::Display) -> ClientError {
    ClientError::unavailable(Peer::Replica, e)
}

fn refused(e: impl std::fmt::Display) -> ClientError {
    ClientError::refused(Peer::Replica, e)
}

/// A status that is neither what was asked for nor "not there": an error.
fn failed(status: u16, what: &str) -> ClientError {
    if is_unavailable(status) {
        unavailable(format!("{what}: it answered {status}"))
    } else {
        refused(format!("{what}: it answered {status}"))
    }
}

impl Upstream {
    fn push_scope(name: &str) -> String {
        format!("repository:{name}:pull,push")
    }

    /// One request with a body held in memory, authenticated as the target asks (a 401 is
    /// answered and the request sent once more).
    fn send_push(
        &self,
        method: &str,
        url: &str,
        name: &str,
        headers: &[(&str, String)],
        body: &[u8],
    ) -> Result<ureq::http::Response<ureq::Body>, ClientError> {
        let scope = Self::push_scope(name);
        let send = |auth: Option<&str>| {
            let mut req = ureq::http::Request::builder().method(method).uri(url);
            for (k, v) in headers {
                req = req.header(*k, v);
            }
            if let Some(a) = auth {
                req = req.header("Authorization", a);
            }
            let req = req.body(body).map_err(refused)?;
            self.agent.run(req).map_err(|e| target_error(call_error(e)))
        };
        self.authorized(&scope, send).map_err(target_error)
    }

    fn url(&self, name: &str, path: &str) -> String {
        format!("{}/v2/{name}/{path}", self.base)
    }

    /// The digest the target's manifest `reference` of `name` has; `None` when it has none.
    pub fn target_manifest(
        &self,
        name: &str,
        reference: &str,
    ) -> Result<Option<String>, ClientError> {
        let res = self.send_push(
            "HEAD",
            &self.url(name, &format!("manifests/{reference}")),
            name,
            &[("Accept", super::MANIFEST_ACCEPT.to_owned())],
            &[],
        )?;
        match res.status().as_u16() {
            200 => res
                .headers()
                .get("docker-content-digest")
                .and_then(|v| v.to_str().ok())
                .map(|d| Some(d.to_owned()))
                .ok_or_else(|| refused("its HEAD answer names no Docker-Content-Digest")),
            404 => Ok(None),
            s => Err(failed(s, &format!("checking manifest {name}:{reference}"))),
        }
    }

    /// The target's manifest `reference` of `name`, with its media type; `None` when absent.
    pub fn target_manifest_body(
        &self,
        name: &str,
        reference: &str,
    ) -> Result<Option<(String, Vec<u8>)>, ClientError> {
        let mut res = self.send_push(
            "GET",
            &self.url(name, &format!("manifests/{reference}")),
            name,
            &[("Accept", super::MANIFEST_ACCEPT.to_owned())],
            &[],
        )?;
        match res.status().as_u16() {
            200 => {
                let media_type = res
                    .headers()
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                let body = res
                    .body_mut()
                    .with_config()
                    .limit(4 << 20)
                    .read_to_vec()
                    .map_err(unavailable)?;
                Ok(Some((media_type, body)))
            }
            404 => Ok(None),
            s => Err(failed(s, &format!("reading manifest {name}:{reference}"))),
        }
    }

    /// Whether the target holds blob `digest` in repository `name`.
    pub fn has_blob(&self, name: &str, digest: &str) -> Result<bool, ClientError> {
        let res = self.send_push(
            "HEAD",
            &self.url(name, &format!("blobs/{digest}")),
            name,
            &[],
            &[],
        )?;
        match res.status().as_u16() {
            200 => Ok(true),
            404 => Ok(false),
            s => Err(failed(s, &format!("checking blob {digest}"))),
        }
    }

    /// Puts blob `digest` into repository `name`: mounted from the target's repository
    /// `from` when given and the target mounts, otherwise `body()` streamed in one PUT of a
    /// new upload session. The target checks the digest.
    pub fn upload_blob(
        &self,
        name: &str,
        digest: &str,
        from: Option<&str>,
        body: impl FnOnce() -> Result<BlobBody, ClientError>,
    ) -> Result<BlobOutcome, ClientError> {
        let mut path = String::from("blobs/uploads/");
        if let Some(from) = from {
            path = format!("{path}?mount={digest}&from={from}");
        }
        let res = self.send_push(
            "POST",
            &self.url(name, &path),
            name,
            &[("Content-Length", "0".to_owned())],
            &[],
        )?;
        let location = match res.status().as_u16() {
            201 if from.is_some() => return Ok(BlobOutcome::Mounted),
            202 => res
                .headers()
                .get("location")
                .and_then(|v| v.to_str().ok())
                .ok_or_else(|| refused("its upload session has no Location"))?
                .to_owned(),
            s => return Err(failed(s, &format!("starting the upload of {digest}"))),
        };
        let mut url = if location.starts_with('/') {
            format!("{}{location}", self.base)
        } else {
            location
        };
        let sep = if url.contains('?') { '&' } else { '?' };
        url = format!("{url}{sep}digest={digest}");
        let BlobBody { len, mut reader } = body()?;
        // The POST above answered with a token for this scope, if the target uses tokens.
        let scope = Self::push_scope(name);
        let mut req = ureq::http::Request::builder()
            .method("PUT")
            .uri(&url)
            .header("Content-Type", "application/octet-stream")
            .header("Content-Length", len.to_string());
        if let Some(a) = self.cached_token(&scope).or_else(|| self.basic()) {
            req = req.header("Authorization", a);
        }
        let req = req
            .body(ureq::SendBody::from_reader(&mut reader))
            .map_err(refused)?;
        let res = self
            .agent
            .run(req)
            .map_err(|e| target_error(call_error(e)))?;
        match res.status().as_u16() {
            201 | 204 => Ok(BlobOutcome::Uploaded),
            s => Err(failed(s, &format!("uploading blob {digest}"))),
        }
    }

    /// Puts a manifest's exact bytes under `reference` (a digest or a tag) of `name`.
    pub fn put_manifest(
        &self,
        name: &str,
        reference: &str,
        media_type: &str,
        body: &[u8],
    ) -> Result<Pushed, ClientError> {
        let res = self.send_push(
            "PUT",
            &self.url(name, &format!("manifests/{reference}")),
            name,
            &[("Content-Type", media_type.to_owned())],
            body,
        )?;
        match res.status().as_u16() {
            200..=202 => Ok(Pushed {
                subject_indexed: res.headers().contains_key("oci-subject"),
            }),
            s => {
                let why = error_text(res);
                Err(if is_unavailable(s) {
                    unavailable(format!("pushing {name}:{reference}: it answered {s} {why}"))
                } else {
                    refused(format!("pushing {name}:{reference}: it answered {s} {why}"))
                })
            }
        }
    }

    /// Deletes manifest `reference` (a tag or a digest) of `name`: `Ok(true)` when gone (or
    /// never there), `Ok(false)` when the target does not delete this way (a tag deletion
    /// where only digests may be deleted).
    pub fn delete_manifest(&self, name: &str, reference: &str) -> Result<bool, ClientError> {
        let res = self.send_push(
            "DELETE",
            &self.url(name, &format!("manifests/{reference}")),
            name,
            &[],
            &[],
        )?;
        match res.status().as_u16() {
            200 | 202 | 204 | 404 => Ok(true),
            400 | 405 => Ok(false),
            s => Err(failed(s, &format!("deleting {name}:{reference}"))),
        }
    }

    /// Whether the target is a semdock (its management API's document says so): it keeps
    /// its own virtual tags, and takes carried tag history.
    pub fn is_semdock(&self) -> Result<bool, ClientError> {
        let url = format!("{}/api/v1/openapi.json", self.base);
        let mut res = self
            .agent
            .get(&url)
            .call()
            .map_err(|e| target_error(call_error(e)))?;
        if is_unavailable(res.status().as_u16()) {
            return Err(unavailable(format!("it answered {}", res.status())));
        }
        if res.status().as_u16() != 200 {
            return Ok(false);
        }
        let body = res
            .body_mut()
            .with_config()
            .limit(4 << 20)
            .read_to_vec()
            .unwrap_or_default();
        let doc: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        Ok(doc["info"]["title"]
            .as_str()
            .is_some_and(|t| t.starts_with("semdock ")))
    }

    /// Appends tag history carried from elsewhere to a semdock target's repository `name`
    /// (its management API): `entries` as that API lists them, oldest first.
    pub fn carry_history(
        &self,
        name: &str,
        tag: &str,
        origin: &str,
        entries: &[serde_json::Value],
    ) -> Result<(), ClientError> {
        let url = format!("{}/api/v1/repositories/{name}/history/carried", self.base);
        let body = serde_json::json!({ "tag": tag, "origin": origin, "entries": entries });
        let mut req = self
            .agent
            .post(&url)
            .header("Content-Type", "application/json");
        if let Some(b) = self.basic() {
            req = req.header("Authorization", &b);
        }
        let res = req
            .send(body.to_string().as_bytes())
            .map_err(|e| target_error(call_error(e)))?;
        match res.status().as_u16() {
            200 | 201 | 204 => Ok(()),
            s => Err(failed(s, &format!("carrying the history of {name}:{tag}"))),
        }
    }
}

/// The start of an error answer's body, for a message.
fn error_text(mut res: ureq::http::Response<ureq::Body>) -> String {
    let body = res
        .body_mut()
        .with_config()
        .limit(4096)
        .read_to_vec()
        .unwrap_or_default();
    String::from_utf8_lossy(&body).chars().take(300).collect()
}
