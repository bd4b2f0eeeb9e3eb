//! The pages that change things: login and logout, feeds and their settings, roles,
//! promotion, tag deletion and purge, users and API keys. Every POST checks the session's
//! CSRF token before anything else.

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::session::{LOGIN_COOKIE, SESSION_COOKIE, Viewer, cookie, random_token, same_secret};
use super::{AuthData, Nav, UiError, redirect, render, run};
use crate::domain::access::{Delete, FeedAdmin, Promote, Pull};
use crate::domain::auth::{Caller, Principal, random_password};
use crate::domain::{self, FeedChange, FeedPreview};
use crate::http::caller::client_ip;
use crate::model::{FeedName, Reference, Repository};

fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// `back` with `done=CODE` added, for the one-line confirmation the page then shows.
fn with_done(back: &str, code: &str) -> String {
    let sep = if back.contains('?') { '&' } else { '?' };
    format!("{back}{sep}done={code}")
}

/// Only a local path may be a login's `next`: never another site, and never anything that
/// cannot go into a `Location` header as it is (control characters, spaces, non-ASCII).
/// Anything else falls back to the dashboard.
pub(super) fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with("/ui")
                && !n.starts_with("//")
                && n.bytes().all(|b| b.is_ascii_graphic() && b != b'\\') =>
        {
            n.to_owned()
        }
        _ => "/ui/".to_owned(),
    }
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    title: &'static str,
    nav: Option<Nav>,
    csrf: String,
    next: String,
    /// The user name tried, kept after a failed login.
    user: String,
    error: Option<String>,
    first_login: Option<String>,
    /// The label of the `OpenID Connect` sign-in, when a provider is configured.
    oidc: Option<String>,
}

#[derive(Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
}

pub(super) fn login_response(
    req: &HttpRequest,
    first_login: bool,
    oidc: Option<String>,
    next: &str,
    user: &str,
    error: Option<String>,
    status: actix_web::http::StatusCode,
) -> Result<HttpResponse, UiError> {
    let csrf = random_token();
    let first_login = first_login.then(|| {
        format!(
            "First login: the user is {}; its password is in the file {} in the data directory; the file is removed once the password is changed.",
            domain::auth::INITIAL_ADMIN,
            domain::auth::INITIAL_PASSWORD_FILE
        )
    });
    let page = LoginPage {
        title: "Log in",
        nav: None,
        csrf: csrf.clone(),
        next: next.to_owned(),
        user: user.to_owned(),
        error,
        first_login,
        oidc,
    };
    let mut res = render(&page)?;
    *res.status_mut() = status;
    res.add_cookie(&cookie(req, LOGIN_COOKIE, csrf))
        .map_err(|e| domain::Error::Internal(e.to_string()))?;
    Ok(res)
}

// GET /ui/login — the login form.
pub async fn login_page(
    req: HttpRequest,
    auth: AuthData,
    query: web::Query<LoginQuery>,
) -> Result<HttpResponse, UiError> {
    let next = safe_next(query.next.as_deref());
    let label = auth.directory().oidc_label();
    let first = run(move || Ok(auth.first_login_pending()?)).await?;
    login_response(&req, first, label, &next, "", None, StatusCode::OK)
}

#[derive(Deserialize)]
pub struct LoginForm {
    user: String,
    password: String,
    #[serde(default)]
    csrf: String,
    next: Option<String>,
}

// POST /ui/login — checks the password (rate-limited like every login) and starts a session.
pub async fn login(
    req: HttpRequest,
    auth: AuthData,
    form: web::Form<LoginForm>,
) -> Result<HttpResponse, UiError> {
    let form = form.into_inner();
    let expected = req
        .cookie(LOGIN_COOKIE)
        .map(|c| c.value().to_owned())
        .unwrap_or_default();
    if expected.is_empty() || !same_secret(&form.csrf, &expected) {
        return Err(UiError::csrf());
    }
    let next = safe_next(form.next.as_deref());
    let client = client_ip(&req);
    let user = form.user.clone();
    let label = auth.directory().oidc_label();
    let outcome = run(move || {
        let refused = |message: String, status| -> Result<_, UiError> {
            Ok(Err((message, status, auth.first_login_pending()?)))
        };
        match auth.login(&form.user, &form.password, client) {
            Ok(Caller {
                principal: p @ Principal::User { .. },
                ..
            }) => {
                let epoch = auth.epoch(&p)?;
                let session = auth.sessions().start(&p, epoch)?;
                Ok(Ok((p, session)))
            }
            Ok(_) => refused(
                "Log in with a user name and password; API keys are for clients.".into(),
                StatusCode::UNAUTHORIZED,
            ),
            Err(e @ domain::Error::RateLimited { .. }) => {
                refused(e.to_string(), StatusCode::TOO_MANY_REQUESTS)
            }
            Err(domain::Error::InvalidCredentials) => refused(
                "Invalid user name or password. (The UI takes a user's password; API keys are for docker and scripts.)".into(),
                StatusCode::UNAUTHORIZED,
            ),
            Err(e) => Err(e.into()),
        }
    })
    .await?;
    match outcome {
        Ok((principal, id)) => {
            tracing::info!(user = principal.user(), "logged in to the UI");
            let mut res = redirect(&next);
            res.add_cookie(&cookie(&req, SESSION_COOKIE, id))
                .map_err(|e| domain::Error::Internal(e.to_string()))?;
            Ok(res)
        }
        Err((message, status, first)) => {
            login_response(&req, first, label, &next, &user, Some(message), status)
        }
    }
}

#[derive(Deserialize)]
pub struct CsrfOnly {
    #[serde(default)]
    csrf: String,
}

// POST /ui/logout — ends the session.
pub async fn logout(
    req: HttpRequest,
    v: Viewer,
    auth: AuthData,
    form: web::Form<CsrfOnly>,
) -> Result<HttpResponse, UiError> {
    v.check_csrf(&form.csrf)?;
    let session = v.session.clone();
    run(move || Ok(auth.sessions().end(&session)?)).await?;
    let mut res = redirect("/ui/login");
    let mut gone = cookie(&req, SESSION_COOKIE, String::new());
    gone.make_removal();
    res.add_cookie(&gone)
        .map_err(|e| domain::Error::Internal(e.to_string()))?;
    Ok(res)
}

#[derive(Deserialize)]
pub struct NewFeedForm {
    #[serde(default)]
    csrf: String,
    name: String,
    #[serde(default)]
    description: String,
    versioning: Option<String>,
}

// POST /ui/feeds — creates a feed (administrators).
pub async fn create_feed(v: Viewer, form: web::Form<NewFeedForm>) -> Result<HttpResponse, UiError> {
    v.check_csrf(&form.csrf)?;
    let form = form.into_inner();
    let access = v.access;
    let name = run(move || {
        let admin = access.admin()?;
        let feed: FeedName = form.name.trim().parse().map_err(domain::Error::from)?;
        let change = FeedChange {
            description: Some(form.description),
            versioning: Some(form.versioning.is_some()),
            ..FeedChange::default()
        };
        admin.create_feed(&feed, change)?;
        Ok(feed.to_string())
    })
    .await?;
    Ok(redirect(&format!("/ui/feeds/{name}/settings?done=created")))
}

pub struct GrantRow {
    pub who: String,
    pub user: Option<String>,
    pub role: String,
}

#[derive(Template)]
#[template(path = "settings.html")]
struct SettingsPage {
    title: String,
    nav: Option<Nav>,
    feed: String,
    description: String,
    versioning: bool,
    anonymous: bool,
    permitted: String,
    promotion_sources: String,
    required_referrer: String,
    connector: ConnectorFields,
    /// What the connector's test or sync button found.
    connector_note: Option<String>,
    grants: Vec<GrantRow>,
    preview: Option<FeedPreview>,
}

/// A connector feed's upstream as the settings form shows it (never its password).
#[derive(Default)]
struct ConnectorFields {
    url: String,
    username: String,
    has_password: bool,
    prefix: String,
    ttl: String,
    offline: bool,
    allow: String,
    deny: String,
    upstream_latest: bool,
    sync: String,
    sync_interval: String,
}

impl From<Option<domain::UpstreamInfo>> for ConnectorFields {
    fn from(u: Option<domain::UpstreamInfo>) -> Self {
        u.map_or_else(Self::default, |u| Self {
            url: u.url,
            username: u.username.unwrap_or_default(),
            has_password: u.has_password,
            prefix: u.prefix.trim_end_matches('/').to_owned(),
            ttl: u.ttl_seconds.to_string(),
            offline: u.offline,
            allow: u.allow.join(" "),
            deny: u.deny.join(" "),
            upstream_latest: u.upstream_latest,
            sync: u.sync.join("\n"),
            sync_interval: u.sync_interval_seconds.to_string(),
        })
    }
}

fn grant_rows(grants: Vec<(String, String)>) -> Vec<GrantRow> {
    grants
        .into_iter()
        .map(|(who, role)| GrantRow {
            user: who.strip_prefix("user:").map(str::to_owned),
            who,
            role,
        })
        .collect()
}

// GET /ui/feeds/{feed}/settings — versioning, permitted tags, anonymous pull, roles (feed admin).
pub async fn settings_page(v: Viewer, path: web::Path<String>) -> Result<HttpResponse, UiError> {
    let feed = path.into_inner();
    let access = v.access.clone();
    let f = feed.clone();
    let (record, grants, last_sync) = run(move || {
        let admin = access.feed::<FeedAdmin>(&f)?;
        let record = access.feed::<Pull>(&f)?.settings()?;
        let last_sync = if record.upstream.is_some() {
            admin.upstream().sync_status()?
        } else {
            None
        };
        Ok((record, admin.grants()?, last_sync))
    })
    .await?;
    let note = last_sync.map(|r| {
        let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(r.started_ms);
        format!(
            "Last sync {}: {} tags held, {} blobs fetched, {} errors.",
            humantime::format_rfc3339_seconds(at),
            r.tags,
            r.blobs_fetched,
            r.errors.len()
        )
    });
    render(&SettingsPage {
        title: format!("Settings of {feed}"),
        nav: Nav::of(&v),
        description: record.description,
        versioning: record.versioning,
        anonymous: record.anonymous_pull,
        permitted: record.permitted.join("\n"),
        promotion_sources: record.promotion_sources.join(" "),
        required_referrer: record.required_referrer.unwrap_or_default(),
        connector: record.upstream.into(),
        connector_note: note,
        grants: grant_rows(grants),
        preview: None,
        feed,
    })
}

#[derive(Deserialize)]
pub struct SettingsForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    description: String,
    versioning: Option<String>,
    anonymous_pull: Option<String>,
    #[serde(default)]
    permitted: String,
    #[serde(default)]
    promotion_sources: String,
    #[serde(default)]
    required_referrer: String,
    #[serde(default)]
    upstream_url: String,
    #[serde(default)]
    upstream_user: String,
    /// Empty: the stored password is kept.
    #[serde(default)]
    upstream_password: String,
    forget_password: Option<String>,
    #[serde(default)]
    upstream_prefix: String,
    #[serde(default)]
    upstream_ttl: String,
    upstream_offline: Option<String>,
    #[serde(default)]
    upstream_allow: String,
    #[serde(default)]
    upstream_deny: String,
    upstream_latest: Option<String>,
    /// Sync rules, one per line.
    #[serde(default)]
    upstream_sync: String,
    #[serde(default)]
    sync_interval: String,
    /// `preview` or `save`.
    op: String,
}

impl SettingsForm {
    /// The upstream the form asks for (an empty URL: none).
    fn upstream(
        &self,
        words: impl Fn(&str) -> Vec<String>,
    ) -> Result<domain::UpstreamChange, UiError> {
        let ttl = self.upstream_ttl.trim();
        let ttl_seconds = if ttl.is_empty() {
            None
        } else {
            Some(ttl.parse::<u64>().map_err(|_| {
                domain::Error::Invalid(format!(
                    "the upstream check interval {ttl:?} is not a number of seconds"
                ))
            })?)
        };
        let password = if self.forget_password.is_some() {
            Some(String::new())
        } else {
            Some(self.upstream_password.clone()).filter(|p| !p.is_empty())
        };
        Ok(domain::UpstreamChange {
            url: self.upstream_url.trim().to_owned(),
            username: Some(self.upstream_user.trim().to_owned()),
            password,
            prefix: Some(self.upstream_prefix.trim().to_owned()),
            ttl_seconds,
            offline: Some(self.upstream_offline.is_some()),
            allow: Some(words(&self.upstream_allow)),
            deny: Some(words(&self.upstream_deny)),
            upstream_latest: Some(self.upstream_latest.is_some()),
            sync: Some(
                self.upstream_sync
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(str::to_owned)
                    .collect(),
            ),
            sync_interval_seconds: Some(match self.sync_interval.trim() {
                "" => 0,
                s => s.parse::<u64>().map_err(|_| {
                    domain::Error::Invalid(format!(
                        "the sync interval {s:?} is not a number of seconds"
                    ))
                })?,
            }),
        })
    }
}

// POST /ui/feeds/{feed}/settings — previews what a change does, or saves it.
pub async fn save_settings(
    v: Viewer,
    path: web::Path<String>,
    form: web::Form<SettingsForm>,
) -> Result<HttpResponse, UiError> {
    v.check_csrf(&form.csrf)?;
    let feed = path.into_inner();
    let form = form.into_inner();
    let permitted: Vec<String> = form
        .permitted
        .split(['\n', ',', ' '])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    let words = |text: &str| -> Vec<String> {
        text.split(['\n', ',', ' '])
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    };
    let sources = words(&form.promotion_sources);
    let upstream = form.upstream(words)?;
    let change = FeedChange {
        description: Some(form.description.clone()),
        anonymous_pull: Some(form.anonymous_pull.is_some()),
        versioning: Some(form.versioning.is_some()),
        permitted: Some(permitted.clone()),
        promotion_sources: Some(sources.clone()),
        required_referrer: Some(form.required_referrer.trim().to_owned()),
        upstream: Some(upstream.clone()),
    };
    let access = v.access.clone();
    let f = feed.clone();
    if form.op == "save" {
        run(move || {
            access.feed::<FeedAdmin>(&f)?.update(change)?;
            Ok(())
        })
        .await?;
        return Ok(redirect(&format!("/ui/feeds/{feed}/settings?done=saved")));
    }
    let op = form.op.clone();
    let (preview, grants, stored, note) = run(move || {
        let admin = access.feed::<FeedAdmin>(&f)?;
        let stored = access.feed::<Pull>(&f)?.settings()?.upstream;
        // The connector's buttons act on what is saved, and leave the form as it was typed.
        let note = match op.as_str() {
            "test-upstream" => Some(admin.upstream().test_upstream()?.message),
            "sync" => {
                let r = admin.upstream().sync()?;
                let mut note = format!(
                    "Synced: {} tags held, {} blobs fetched, {} errors.",
                    r.tags,
                    r.blobs_fetched,
                    r.errors.len()
                );
                for e in r.errors.iter().take(5) {
                    note.push(' ');
                    note.push_str(e);
                }
                Some(note)
            }
            _ => None,
        };
        let preview = if note.is_none() {
            Some(admin.preview(&change)?)
        } else {
            None
        };
        Ok((preview, admin.grants()?, stored, note))
    })
    .await?;
    let connector = ConnectorFields {
        url: upstream.url,
        username: form.upstream_user.trim().to_owned(),
        has_password: stored.is_some_and(|s| s.has_password) && form.forget_password.is_none()
            || !form.upstream_password.is_empty(),
        prefix: form.upstream_prefix.trim().to_owned(),
        ttl: form.upstream_ttl.trim().to_owned(),
        offline: form.upstream_offline.is_some(),
        allow: form.upstream_allow.trim().to_owned(),
        deny: form.upstream_deny.trim().to_owned(),
        upstream_latest: form.upstream_latest.is_some(),
        sync: form.upstream_sync.trim().to_owned(),
        sync_interval: form.sync_interval.trim().to_owned(),
    };
    render(&SettingsPage {
        title: format!("Settings of {feed}"),
        nav: Nav::of(&v),
        description: form.description,
        versioning: form.versioning.is_some(),
        anonymous: form.anonymous_pull.is_some(),
        permitted: permitted.join("\n"),
        promotion_sources: sources.join(" "),
        required_referrer: form.required_referrer.trim().to_owned(),
        connector,
        connector_note: note,
        grants: grant_rows(grants),
        preview,
        feed,
    })
}

#[derive(Deserialize)]
pub struct RoleForm {
    #[serde(default)]
    csrf: String,
    user: String,
    feed: String,
    /// A role, or `none` to remove it.
    role: String,
    back: Option<String>,
}

// POST /ui/roles — grants (or removes) a user's role on a feed (feed admin).
pub async fn grant_role(v: Viewer, form: web::Form<RoleForm>) -> Result<HttpResponse, UiError> {
    v.check_csrf(&form.csrf)?;
    let form = form.into_inner();
    let back = safe_next(form.back.as_deref());
    let access = v.access;
    run(move || {
        let role = (form.role != "none").then_some(form.role.as_str());
        access
            .feed::<FeedAdmin>(&form.feed)?
            .grant(form.user.trim(), role)?;
        Ok(())
    })
    .await?;
    Ok(redirect(&with_done(&back, "role")))
}

#[derive(Deserialize)]
pub struct CheckQuery {
    repository: String,
    tag: String,
    digest: String,
}

// GET /ui/check-tag — JSON: would the target feed's policy accept this tag (for the promote
// form, before it is sent)?
pub async fn check_tag(v: Viewer, query: web::Query<CheckQuery>) -> HttpResponse {
    let q = query.into_inner();
    let access = v.access;
    let result = web::block(move || -> Result<(), domain::Error> {
        let repo: Repository = q.repository.parse()?;
        q.tag.parse::<crate::model::Tag>()?;
        access
            .feed::<Promote>(repo.feed())?
            .check_tag(&repo, &q.tag, &q.digest)
    })
    .await;
    let body = match result {
        Ok(Ok(())) => serde_json::json!({"ok": true}),
        Ok(Err(e)) => serde_json::json!({"ok": false, "message": e.to_string()}),
        Err(e) => serde_json::json!({"ok": false, "message": e.to_string()}),
    };
    HttpResponse::Ok().json(body)
}

#[derive(Deserialize)]
pub struct PromoteForm {
    #[serde(default)]
    csrf: String,
    from: String,
    /// The tag the image was shown under: promoted by tag, with `digest` as the expected
    /// digest (refused when the tag moved since the page was read). Empty: by digest.
    #[serde(default)]
    source_tag: String,
    digest: String,
    target_feed: String,
    target_name: String,
    target_tag: String,
    #[serde(default)]
    comment: String,
}

// POST /ui/promote — promotes or retags an image by link (pull on the source, promote on the
// target), then shows the target repository.
pub async fn promote(v: Viewer, form: web::Form<PromoteForm>) -> Result<HttpResponse, UiError> {
    v.check_csrf(&form.csrf)?;
    let f = form.into_inner();
    let access = v.access;
    let target = run(move || {
        let from: Repository = f.from.parse().map_err(domain::Error::from)?;
        let to: Repository = format!("{}/{}", f.target_feed, f.target_name.trim())
            .parse()
            .map_err(domain::Error::from)?;
        let tag = f
            .target_tag
            .trim()
            .parse::<crate::model::Tag>()
            .map_err(domain::Error::from)?;
        let digest: crate::model::Digest = f.digest.trim().parse().map_err(domain::Error::from)?;
        let source = access.feed::<Pull>(from.feed())?;
        let target = access.feed::<Promote>(to.feed())?;
        let comment = (!f.comment.trim().is_empty()).then(|| f.comment.trim().to_owned());
        let (from_ref, expected) = match f.source_tag.trim() {
            "" => (Reference::Digest(digest.clone()), None),
            t => (
                Reference::Tag(t.parse().map_err(domain::Error::from)?),
                Some(&digest),
            ),
        };
        target.promote(
            &source,
            &from,
            &from_ref,
            &to,
            &tag,
            expected,
            true,
            comment.as_deref(),
        )?;
        Ok(to.to_string())
    })
    .await?;
    Ok(redirect(&format!(
        "/ui/repository?name={}&done=promoted",
        enc(&target)
    )))
}

#[derive(Deserialize)]
pub struct TagForm {
    #[serde(default)]
    csrf: String,
    repository: String,
    tag: String,
}

// POST /ui/tags/delete — deletes a tag (delete role); a version leaves a tombstone.
pub async fn delete_tag(v: Viewer, form: web::Form<TagForm>) -> Result<HttpResponse, UiError> {
    v.check_csrf(&form.csrf)?;
    let f = form.into_inner();
    let access = v.access;
    let repo = run(move || {
        let repo: Repository = f.repository.parse().map_err(domain::Error::from)?;
        let tag = f
            .tag
            .parse::<crate::model::Tag>()
            .map_err(domain::Error::from)?;
        access
            .feed::<Delete>(repo.feed())?
            .delete_manifest(&repo, &Reference::Tag(tag))?;
        Ok(repo.to_string())
    })
    .await?;
    Ok(redirect(&format!(
        "/ui/repository?name={}&done=deleted",
        enc(&repo)
    )))
}

// POST /ui/tags/purge — frees a version number (administrators).
pub async fn purge_tag(v: Viewer, form: web::Form<TagForm>) -> Result<HttpResponse, UiError> {
    v.check_csrf(&form.csrf)?;
    let f = form.into_inner();
    let access = v.access;
    let repo = run(move || {
        let repo: Repository = f.repository.parse().map_err(domain::Error::from)?;
        let tag = f
            .tag
            .parse::<crate::model::Tag>()
            .map_err(domain::Error::from)?;
        // The UI offers purge on deleted versions only; a live one is refused with the reason.
        access
            .feed::<FeedAdmin>(repo.feed())?
            .purge(&repo, &tag, None)?;
        Ok(repo.to_string())
    })
    .await?;
    Ok(redirect(&format!(
        "/ui/repository?name={}&done=purged",
        enc(&repo)
    )))
}

#[derive(Template)]
#[template(path = "secret.html")]
struct SecretPage {
    title: &'static str,
    nav: Option<Nav>,
    what: String,
    secret: String,
    /// The page to go back to.
    back: &'static str,
}

pub(super) fn show_secret(
    v: &Viewer,
    what: String,
    secret: String,
) -> Result<HttpResponse, UiError> {
    render(&SecretPage {
        title: "Shown once",
        nav: Nav::of(v),
        what,
        secret,
        back: if v.principal.is_admin() {
            "/ui/users"
        } else {
            "/ui/keys"
        },
    })
}

#[derive(Deserialize)]
pub struct NewUserForm {
    #[serde(default)]
    csrf: String,
    name: String,
    #[serde(default)]
    password: String,
    admin: Option<String>,
}

// POST /ui/users — creates a user; a generated password is shown once (administrators).
pub async fn create_user(v: Viewer, form: web::Form<NewUserForm>) -> Result<HttpResponse, UiError> {
    v.check_csrf(&form.csrf)?;
    let f = form.into_inner();
    let access = v.access.clone();
    let name = f.name.trim().to_owned();
    let n = name.clone();
    let generated = run(move || {
        let password = (!f.password.is_empty()).then_some(f.password.as_str());
        Ok(access
            .admin()?
            .create_user(&n, password, f.admin.is_some())?)
    })
    .await?;
    match generated {
        Some(password) => show_secret(&v, format!("The password of the new user {name}"), password),
        None => Ok(redirect("/ui/users?done=user")),
    }
}

#[derive(Deserialize)]
pub struct UserStateForm {
    #[serde(default)]
    csrf: String,
    /// `disable` or `enable`.
    state: String,
}

// POST /ui/users/{name}/state — disables or enables a user (administrators).
pub async fn user_state(
    v: Viewer,
    path: web::Path<String>,
    form: web::Form<UserStateForm>,
) -> Result<HttpResponse, UiError> {
    v.check_csrf(&form.csrf)?;
    let name = path.into_inner();
    let disabled = form.state == "disable";
    let access = v.access;
    run(move || Ok(access.admin()?.update_user(&name, Some(disabled), None)?)).await?;
    Ok(redirect("/ui/users?done=user"))
}

// POST /ui/users/{name}/password — sets a new generated password, shown once (administrators).
pub async fn reset_password(
    auth: AuthData,
    v: Viewer,
    path: web::Path<String>,
    form: web::Form<CsrfOnly>,
) -> Result<HttpResponse, UiError> {
    v.check_csrf(&form.csrf)?;
    let name = path.into_inner();
    let access = v.access.clone();
    let password = random_password();
    let (n, pw) = (name.clone(), password.clone());
    let own = name == v.principal.user();
    let epoch = run(move || {
        access.admin()?.set_password(&n, &pw)?;
        Ok(access.account()?.epoch()?)
    })
    .await?;
    if own {
        // This session made the change; the user's other sessions end.
        let session = v.session.clone();
        run(move || Ok(auth.sessions().rebase(&session, epoch)?)).await?;
    }
    show_secret(&v, format!("The new password of {name}"), password)
}

#[derive(Deserialize)]
pub struct NewKeyForm {
    #[serde(default)]
    csrf: String,
    name: String,
    #[serde(default)]
    owner: String,
    /// `feed=role` pairs separated by commas or spaces.
    #[serde(default)]
    roles: String,
    admin: Option<String>,
    /// Days until the key expires; empty: never.
    #[serde(default)]
    expires_days: String,
}

// POST /ui/keys — creates an API key, shown once.
pub async fn create_key(v: Viewer, form: web::Form<NewKeyForm>) -> Result<HttpResponse, UiError> {
    v.check_csrf(&form.csrf)?;
    let f = form.into_inner();
    let mut roles = BTreeMap::new();
    for pair in f
        .roles
        .split([',', ' ', '\n'])
        .filter(|s| !s.trim().is_empty())
    {
        let Some((feed, role)) = pair.trim().split_once('=') else {
            return Err(UiError::bad_request(format!(
                "{pair:?} is not FEED=ROLE, e.g. prod=push"
            )));
        };
        roles.insert(feed.to_owned(), role.to_owned());
    }
    let expires_days = match f.expires_days.trim() {
        "" => None,
        d => Some(
            d.parse::<u64>()
                .ok()
                .filter(|d| *d > 0)
                .ok_or_else(|| UiError::bad_request(format!("{d:?} is not a number of days")))?,
        ),
    };
    let access = v.access.clone();
    let name = f.name.trim().to_owned();
    let n = name.clone();
    let key = run(move || {
        let owner = (!f.owner.trim().is_empty()).then(|| f.owner.trim().to_owned());
        let account = access.account()?;
        // No roles named: the key gets the roles its owner holds now (never more later).
        let roles = if roles.is_empty() {
            account.roles_of(owner.as_deref())?
        } else {
            roles
        };
        let expires = expires_days.map(|d| account.days_from_now(d));
        Ok(account.create_key(owner.as_deref(), &n, &roles, f.admin.is_some(), expires)?)
    })
    .await?;
    show_secret(&v, format!("API key {name} ({})", key.id), key.key)
}

// POST /ui/keys/{id}/revoke — revokes an API key.
pub async fn revoke_key(
    v: Viewer,
    path: web::Path<String>,
    form: web::Form<CsrfOnly>,
) -> Result<HttpResponse, UiError> {
    v.check_csrf(&form.csrf)?;
    let id = path.into_inner();
    let access = v.access.clone();
    run(move || Ok(access.account()?.revoke_key(&id)?)).await?;
    Ok(redirect(if v.principal.is_admin() {
        "/ui/users?done=revoked"
    } else {
        "/ui/keys?done=revoked"
    }))
}
