//! Administration commands, run either on the local data directory (while no server holds
//! it: the recovery path) or against a running server's management API with an API key.

use std::collections::BTreeMap;

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::domain::Services;
use crate::domain::auth::{Caller, INITIAL_ADMIN, Principal, Via};
use crate::model::FeedName;

/// Where administration commands act.
pub enum Target {
    /// The data directory, acting as the administrator.
    Local(Box<Services>),
    /// A server's API, with an API key.
    Remote { base: String, key: String },
}

fn local_actor() -> Caller {
    Caller {
        principal: Principal::User {
            name: INITIAL_ADMIN.to_owned(),
            admin: true,
        },
        via: Via::Local,
    }
}

/// Now, in milliseconds since the epoch, for relative times typed at the prompt.
pub(super) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The first `limit` of `items`, or all of them.
fn limited(mut items: Vec<Value>, limit: Option<usize>) -> Vec<Value> {
    if let Some(limit) = limit {
        items.truncate(limit);
    }
    items
}

fn to_values<T: serde::Serialize>(items: Vec<T>) -> Vec<Value> {
    items
        .into_iter()
        .map(|i| serde_json::to_value(i).unwrap_or_default())
        .collect()
}

impl Target {
    pub fn call(&self, method: &str, path: &str, body: Option<&Value>) -> anyhow::Result<Value> {
        Ok(self.call_paged(method, path, body)?.0)
    }

    /// Every item of a paged list (following its `Link: rel="next"` headers), `limit` at most.
    pub fn list_all(&self, path: &str, limit: Option<usize>) -> anyhow::Result<Vec<Value>> {
        let mut items = Vec::new();
        let mut next = Some(path.to_owned());
        while let Some(path) = next.take() {
            let (page, link) = self.call_paged("GET", &path, None)?;
            items.extend(page.as_array().cloned().unwrap_or_default());
            if limit.is_some_and(|limit| items.len() >= limit) {
                break;
            }
            next = link;
        }
        if let Some(limit) = limit {
            items.truncate(limit);
        }
        Ok(items)
    }

    /// One request, and the path (under `/api/v1`) of the next page when the answer has one.
    fn call_paged(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<(Value, Option<String>)> {
        use base64::Engine as _;
        let Self::Remote { base, key } = self else {
            bail!("no server to call");
        };
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let url = format!("{}/api/v1{path}", base.trim_end_matches('/'));
        let auth = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("api:{key}"))
        );
        let json = body.map(Value::to_string).unwrap_or_default();
        let mut res = match method {
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

    pub fn feed_create(&self, name: &str) -> anyhow::Result<()> {
        match self {
            Self::Local(s) => Ok(s
                .registry
                .feeds()
                .create(&name.parse::<FeedName>()?, INITIAL_ADMIN)?),
            Self::Remote { .. } => self
                .call("POST", "/feeds", Some(&json!({"name": name})))
                .map(drop),
        }
    }

    /// Every feed, as the API shows it (`name`, `versioning`, `upstream`, …).
    pub fn feed_list(&self) -> anyhow::Result<Vec<Value>> {
        match self {
            Self::Local(s) => Ok(to_values(
                s.registry
                    .feeds()
                    .list()?
                    .into_iter()
                    .map(|(n, f)| crate::http::api::feed_info(n, &f))
                    .collect(),
            )),
            Self::Remote { .. } => Ok(self
                .call("GET", "/feeds", None)?
                .as_array()
                .cloned()
                .unwrap_or_default()),
        }
    }

    /// One feed, as the API shows it.
    pub fn feed_show(&self, name: &str) -> anyhow::Result<Value> {
        match self {
            Self::Local(s) => Ok(serde_json::to_value(crate::http::api::feed_info(
                name.to_owned(),
                &s.registry.feeds().get(name)?,
            ))?),
            Self::Remote { .. } => self.call("GET", &format!("/feeds/{name}"), None),
        }
    }

    /// Changes feed settings; returns the feed as it now is.
    pub fn feed_set(&self, name: &str, change: crate::domain::FeedChange) -> anyhow::Result<Value> {
        match self {
            Self::Local(s) => {
                let r = s.registry.feeds().update(name, change, INITIAL_ADMIN)?;
                Ok(serde_json::to_value(crate::http::api::feed_info(
                    name.to_owned(),
                    &r,
                ))?)
            }
            Self::Remote { .. } => {
                let body = json!({"description": change.description, "anonymous_pull": change.anonymous_pull,
                    "versioning": change.versioning, "permitted": change.permitted,
                    "promotion_sources": change.promotion_sources, "required_referrer": change.required_referrer,
                    "upstream": change.upstream});
                self.call("PATCH", &format!("/feeds/{name}"), Some(&body))
            }
        }
    }

    /// Promotes or retags `from` (`FEED/NAME:TAG|@DIGEST`) to `to` (`FEED/NAME:TAG`).
    pub fn promote(
        &self,
        from: &str,
        to: &str,
        expected: Option<&str>,
        comment: Option<&str>,
        include_referrers: bool,
        hosts: &[String],
    ) -> anyhow::Result<Value> {
        match self {
            Self::Local(s) => {
                let check = |text: &str| -> anyhow::Result<crate::model::ImageRef> {
                    let r = crate::model::parse_image_ref(text)?;
                    r.check_host(hosts).map_err(anyhow::Error::msg)?;
                    Ok(r)
                };
                let (source, target) = (check(from)?, check(to)?);
                let (Some(to_tag), None) = (&target.tag, &target.digest) else {
                    bail!("the target of a promotion is FEED/NAME:TAG");
                };
                let expected = match expected {
                    Some(e) => Some(e.parse::<crate::model::Digest>()?),
                    None => source.expected().cloned(),
                };
                let done = s.registry.history().promote(&crate::domain::Promotion {
                    from: &source.repository,
                    from_ref: &source.reference(),
                    to: &target.repository,
                    to_tag,
                    expected: expected.as_ref(),
                    include_referrers,
                    actor: INITIAL_ADMIN,
                    comment,
                })?;
                Ok(serde_json::to_value(done)?)
            }
            Self::Remote { .. } => {
                let body = json!({"from": from, "to": to, "expected_digest": expected, "comment": comment, "include_referrers": include_referrers});
                self.call("POST", "/promotions", Some(&body))
            }
        }
    }

    /// The pinned reference `HOST/FEED/NAME@DIGEST` of what `image` points at now.
    pub fn resolve(&self, image: &str, hosts: &[String]) -> anyhow::Result<String> {
        match self {
            Self::Local(s) => {
                let r = crate::model::parse_image_ref(image)?;
                r.check_host(hosts).map_err(anyhow::Error::msg)?;
                let found = s.registry.manifest(&r.repository, &r.reference())?;
                if let Some(expected) = r.expected()
                    && *expected != found.digest
                {
                    bail!(
                        "{image} expects {expected}, but the tag points at {}",
                        found.digest
                    );
                }
                let host = hosts.first().map_or("localhost", String::as_str);
                Ok(format!("{host}/{}@{}", r.repository, found.digest))
            }
            Self::Remote { .. } => {
                let query = serde_urlencoded::to_string([("ref", image)])?;
                let found = self.call("GET", &format!("/resolve?{query}"), None)?;
                Ok(found["pinned"].as_str().unwrap_or_default().to_owned())
            }
        }
    }

    /// Audit entries matching `query` (`since=…&kind=…`), `limit` at most, newest first.
    pub fn audit(
        &self,
        query: &[(&str, String)],
        limit: Option<usize>,
    ) -> anyhow::Result<Vec<Value>> {
        match self {
            Self::Local(s) => {
                let params: crate::http::api::AuditParams =
                    serde_urlencoded::from_str(&serde_urlencoded::to_string(query)?)?;
                let mut q = params.query()?;
                let mut out = Vec::new();
                loop {
                    let (page, next) = s.registry.feeds().audit_page(&q)?;
                    out.extend(to_values(page));
                    if limit.is_some_and(|l| out.len() >= l) || next.is_none() {
                        break;
                    }
                    q.last = next;
                }
                Ok(limited(out, limit))
            }
            Self::Remote { .. } => {
                let query = serde_urlencoded::to_string(query)?;
                self.list_all(&format!("/audit?{query}"), limit)
            }
        }
    }

    pub fn webhook_create(
        &self,
        new: &crate::domain::webhooks::NewEndpoint,
    ) -> anyhow::Result<Value> {
        match self {
            Self::Local(s) => Ok(serde_json::to_value(
                s.registry.webhooks().create(new, INITIAL_ADMIN)?,
            )?),
            Self::Remote { .. } => {
                let body = json!({"url": new.url, "secret": new.secret, "feed": new.feed,
                    "events": new.events, "format": new.format});
                self.call("POST", "/webhooks", Some(&body))
            }
        }
    }

    pub fn webhook_list(&self, feed: Option<&str>) -> anyhow::Result<Vec<Value>> {
        match self {
            Self::Local(s) => Ok(to_values(
                s.registry
                    .webhooks()
                    .list()?
                    .into_iter()
                    .filter(|h| feed.is_none_or(|f| h.feed.as_deref() == Some(f)))
                    .collect(),
            )),
            Self::Remote { .. } => {
                let path = match feed {
                    Some(f) => format!("/webhooks?{}", serde_urlencoded::to_string([("feed", f)])?),
                    None => "/webhooks".to_owned(),
                };
                Ok(self
                    .call("GET", &path, None)?
                    .as_array()
                    .cloned()
                    .unwrap_or_default())
            }
        }
    }

    pub fn webhook_deliveries(&self, id: &str) -> anyhow::Result<Vec<Value>> {
        match self {
            Self::Local(s) => Ok(to_values(s.registry.webhooks().deliveries(id)?)),
            Self::Remote { .. } => Ok(self
                .call("GET", &format!("/webhooks/{id}/deliveries"), None)?
                .as_array()
                .cloned()
                .unwrap_or_default()),
        }
    }

    pub fn webhook_redeliver(&self, id: &str, event: u64) -> anyhow::Result<()> {
        match self {
            Self::Local(s) => Ok(s.registry.webhooks().redeliver(id, event)?),
            Self::Remote { .. } => {
                self.call(
                    "POST",
                    &format!("/webhooks/{id}/deliveries/{event}/redeliver"),
                    None,
                )?;
                Ok(())
            }
        }
    }

    pub fn webhook_delete(&self, id: &str) -> anyhow::Result<()> {
        match self {
            Self::Local(s) => Ok(s.registry.webhooks().delete(id, INITIAL_ADMIN)?),
            Self::Remote { .. } => {
                self.call("DELETE", &format!("/webhooks/{id}"), None)?;
                Ok(())
            }
        }
    }

    /// Deletes the tag `image` (`FEED/NAME:TAG`).
    pub fn tag_delete(&self, image: &str) -> anyhow::Result<()> {
        let (repo, reference) = crate::model::parse_image(image)?;
        let crate::model::Reference::Tag(tag) = reference else {
            bail!("tag delete takes FEED/NAME:TAG, not a digest");
        };
        match self {
            Self::Local(s) => s.registry.delete_manifest(
                &repo,
                &crate::model::Reference::Tag(tag),
                INITIAL_ADMIN,
            )?,
            Self::Remote { .. } => {
                self.call("DELETE", &format!("/repositories/{repo}/tags/{tag}"), None)?;
            }
        }
        Ok(())
    }

    /// Frees a deleted version's number; a live tag only with `live` (the tag confirmed).
    pub fn purge(&self, image: &str, live: bool) -> anyhow::Result<()> {
        let (repo, reference) = crate::model::parse_image(image)?;
        let crate::model::Reference::Tag(tag) = reference else {
            bail!("purge takes FEED/NAME:TAG");
        };
        let confirm = live.then(|| tag.to_string());
        match self {
            Self::Local(s) => s
                .registry
                .purge(&repo, &tag, INITIAL_ADMIN, confirm.as_deref())?,
            Self::Remote { .. } => {
                self.call(
                    "POST",
                    &format!("/repositories/{repo}/tags/{tag}/purge"),
                    Some(&json!({ "confirm": confirm })),
                )?;
            }
        }
        Ok(())
    }

    /// The history of a repository or tag, or what a tag pointed to at a time.
    pub fn history(
        &self,
        repo: &str,
        tag: Option<&str>,
        at: Option<&str>,
        limit: Option<usize>,
    ) -> anyhow::Result<Value> {
        match self {
            Self::Local(s) => {
                let repo: crate::model::Repository = repo.parse()?;
                if let (Some(tag), Some(at)) = (tag, at) {
                    let ms = crate::model::instant::parse(at, now_ms(), true)
                        .map_err(anyhow::Error::msg)?;
                    let state = s.registry.history().tag_state_at(&repo, tag, ms)?;
                    if state.is_none() {
                        s.registry.history().require_repository(&repo)?;
                    }
                    let (digest, version) =
                        state.map_or((None, None), |s| (Some(s.digest), s.version));
                    return Ok(json!({"tag": tag, "at": at, "digest": digest, "version": version}));
                }
                let mut changes = to_values(s.registry.history().list(&repo, tag)?);
                if let Some(limit) = limit {
                    // The newest `limit`, still oldest first.
                    changes.drain(..changes.len().saturating_sub(limit));
                }
                Ok(Value::from(changes))
            }
            Self::Remote { .. } => {
                let mut path = format!("/repositories/{repo}/history");
                // Relative times ("2 hours ago") are this machine's: sent as RFC 3339.
                let at = at
                    .map(|at| {
                        crate::model::instant::parse(at, now_ms(), true).map(|ms| {
                            humantime::format_rfc3339_millis(
                                std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms),
                            )
                            .to_string()
                        })
                    })
                    .transpose()
                    .map_err(anyhow::Error::msg)?;
                let at = at.as_deref();
                // With a limit, the newest changes: read newest first, then turned around.
                let order = limit.map(|_| "newest");
                let query: Vec<String> = [("tag", tag), ("at", at), ("order", order)]
                    .iter()
                    .filter_map(|(k, v)| {
                        v.map(|v| {
                            format!(
                                "{k}={}",
                                form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>()
                            )
                        })
                    })
                    .collect();
                if !query.is_empty() {
                    path = format!("{path}?{}", query.join("&"));
                }
                if at.is_some() {
                    return self.call("GET", &path, None);
                }
                let mut changes = self.list_all(&path, limit)?;
                if limit.is_some() {
                    changes.reverse();
                }
                Ok(Value::from(changes))
            }
        }
    }

    pub fn feed_delete(&self, name: &str) -> anyhow::Result<()> {
        match self {
            Self::Local(s) => Ok(s
                .registry
                .feeds()
                .delete(&name.parse::<FeedName>()?, INITIAL_ADMIN)?),
            Self::Remote { .. } => self
                .call("DELETE", &format!("/feeds/{name}"), None)
                .map(drop),
        }
    }

    /// Creates a user; returns the generated password when none was given.
    pub fn user_create(
        &self,
        name: &str,
        password: Option<&str>,
        admin: bool,
    ) -> anyhow::Result<Option<String>> {
        match self {
            Self::Local(s) => Ok(s
                .auth
                .users()
                .create(&local_actor(), name, password, admin)?),
            Self::Remote { .. } => {
                let body = json!({"name": name, "password": password, "admin": admin});
                let v = self.call("POST", "/users", Some(&body))?;
                Ok(v["password"].as_str().map(str::to_owned))
            }
        }
    }

    pub fn user_list(&self, limit: Option<usize>) -> anyhow::Result<Vec<Value>> {
        match self {
            Self::Local(s) => Ok(limited(
                to_values(s.auth.users().list(&local_actor())?),
                limit,
            )),
            Self::Remote { .. } => self.list_all("/users", limit),
        }
    }

    pub fn user_set_disabled(&self, name: &str, disabled: bool) -> anyhow::Result<()> {
        match self {
            Self::Local(s) => {
                Ok(s.auth
                    .users()
                    .update(&local_actor(), name, Some(disabled), None)?)
            }
            Self::Remote { .. } => self
                .call(
                    "PATCH",
                    &format!("/users/{name}"),
                    Some(&json!({"disabled": disabled})),
                )
                .map(drop),
        }
    }

    pub fn user_set_password(&self, name: &str, password: &str) -> anyhow::Result<()> {
        match self {
            Self::Local(s) => Ok(s.auth.users().reset_password(name, password)?),
            Self::Remote { .. } => self
                .call(
                    "PUT",
                    &format!("/users/{name}/password"),
                    Some(&json!({"password": password})),
                )
                .map(drop),
        }
    }

    pub fn user_grant(&self, name: &str, feed: &str, role: Option<&str>) -> anyhow::Result<()> {
        match (self, role) {
            (Self::Local(s), role) => Ok(s.auth.users().grant(&local_actor(), name, feed, role)?),
            (Self::Remote { .. }, Some(role)) => self
                .call(
                    "PUT",
                    &format!("/users/{name}/roles/{feed}"),
                    Some(&json!({"role": role})),
                )
                .map(drop),
            (Self::Remote { .. }, None) => self
                .call("DELETE", &format!("/users/{name}/roles/{feed}"), None)
                .map(drop),
        }
    }

    /// Creates an API key; returns (id, key).
    pub fn key_create(
        &self,
        name: &str,
        owner: Option<&str>,
        roles: &BTreeMap<String, String>,
        admin: bool,
        expires_at: Option<u64>,
    ) -> anyhow::Result<(String, String)> {
        match self {
            Self::Local(s) => {
                let k =
                    s.auth
                        .keys()
                        .create(&local_actor(), owner, name, roles, admin, expires_at)?;
                Ok((k.id, k.key))
            }
            Self::Remote { .. } => {
                let body = json!({"name": name, "owner": owner, "roles": roles, "admin": admin,
                    "expires_at": expires_at});
                let v = self.call("POST", "/keys", Some(&body))?;
                let text = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
                Ok((text("id"), text("key")))
            }
        }
    }

    pub fn key_list(&self, limit: Option<usize>) -> anyhow::Result<Vec<Value>> {
        match self {
            Self::Local(s) => Ok(limited(
                to_values(s.auth.keys().list(&local_actor())?),
                limit,
            )),
            Self::Remote { .. } => self.list_all("/keys", limit),
        }
    }

    pub fn key_revoke(&self, id: &str) -> anyhow::Result<()> {
        match self {
            Self::Local(s) => Ok(s.auth.keys().revoke(&local_actor(), id)?),
            Self::Remote { .. } => self.call("DELETE", &format!("/keys/{id}"), None).map(drop),
        }
    }
}

/// `{feed: role}` as `feed=role,…`.
#[must_use]
pub fn roles_text(roles: &Value) -> String {
    roles
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(f, r)| format!("{f}={}", r.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}
