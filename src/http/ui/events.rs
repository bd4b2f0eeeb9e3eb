//! The audit log and webhook pages (administrators): the log with its filters and an export,
//! webhook endpoints with their delivery logs, and the forms that create, delete and
//! redeliver.

use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::session::Viewer;
use super::{Nav, UiError, redirect, render, run};
use crate::domain::audit::{AuditEntry, EVENTS, Kind};
use crate::domain::webhooks::{Delivery, EndpointInfo, Format, NewEndpoint};
use crate::http::api::AuditParams;

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    title: &'static str,
    nav: Option<Nav>,
    entries: Vec<AuditEntry>,
    actor: String,
    feed: String,
    kind: String,
    since: String,
    kinds: Vec<&'static str>,
    /// The query of the next (older) page, when there is one.
    older: Option<String>,
    /// The same filters as JSON lines.
    export: String,
}

/// The filters of the audit page, as its form sends them.
#[derive(Debug, Default, Deserialize)]
pub struct AuditForm {
    #[serde(default)]
    actor: String,
    #[serde(default)]
    feed: String,
    #[serde(default)]
    kind: String,
    /// RFC 3339, a date, or a relative time ("2 hours ago").
    #[serde(default)]
    since: String,
    last: Option<u64>,
}

impl AuditForm {
    fn params(&self) -> Result<AuditParams, UiError> {
        let since = match self.since.trim() {
            "" => None,
            t => {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(0));
                let ms =
                    crate::model::instant::parse(t, now, true).map_err(UiError::bad_request)?;
                Some((ms / 1000).to_string())
            }
        };
        let some = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
        Ok(AuditParams {
            since,
            actor: some(&self.actor),
            feed: some(&self.feed),
            kind: some(&self.kind),
            last: self.last,
            n: Some(50),
            ..AuditParams::default()
        })
    }

    fn query_string(&self, last: Option<u64>) -> String {
        let mut pairs = vec![
            ("actor", self.actor.clone()),
            ("feed", self.feed.clone()),
            ("kind", self.kind.clone()),
            ("since", self.since.clone()),
        ];
        pairs.retain(|(_, v)| !v.trim().is_empty());
        if let Some(last) = last {
            pairs.push(("last", last.to_string()));
        }
        serde_urlencoded::to_string(pairs).unwrap_or_default()
    }
}

// GET /ui/audit — the audit log, newest first, filtered (administrators).
pub async fn audit(v: Viewer, form: web::Query<AuditForm>) -> Result<HttpResponse, UiError> {
    let form = form.into_inner();
    let q = form.params()?.query().map_err(UiError::from)?;
    let access = v.access.clone();
    let (entries, next) = run(move || {
        access.admin()?;
        Ok(access.audit(&q)?)
    })
    .await?;
    render(&AuditPage {
        title: "Audit log",
        nav: Nav::of(&v),
        entries,
        older: next.map(|n| form.query_string(Some(n))),
        export: form.query_string(None),
        actor: form.actor,
        feed: form.feed,
        kind: form.kind,
        since: form.since,
        kinds: crate::domain::audit::kind_names(),
    })
}

// GET /ui/audit.jsonl — the filtered log as JSON lines, oldest first (administrators).
pub async fn export(v: Viewer, form: web::Query<AuditForm>) -> Result<HttpResponse, UiError> {
    let mut params = form.into_inner().params()?;
    params.format = Some("jsonl".into());
    params.n = None;
    let q = params.query().map_err(UiError::from)?;
    let access = v.access.clone();
    access.admin()?;
    let mut res = crate::http::api::jsonl_response(access, q).await?;
    res.headers_mut().insert(
        actix_web::http::header::CONTENT_DISPOSITION,
        actix_web::http::header::HeaderValue::from_static(
            "attachment; filename=\"semdock-audit.jsonl\"",
        ),
    );
    Ok(res)
}

struct HookRow {
    hook: EndpointInfo,
    deliveries: Vec<Delivery>,
}

#[derive(Template)]
#[template(path = "webhooks.html")]
struct WebhooksPage {
    title: &'static str,
    nav: Option<Nav>,
    hooks: Vec<HookRow>,
    feeds: Vec<String>,
    events: Vec<&'static str>,
}

// GET /ui/webhooks — every webhook with its newest deliveries (administrators).
pub async fn webhooks(v: Viewer) -> Result<HttpResponse, UiError> {
    let access = v.access.clone();
    let (hooks, feeds) = run(move || {
        let feeds = access.admin()?.feeds()?;
        let mut rows = Vec::new();
        for hook in access.webhooks(None)? {
            let mut deliveries = access.webhook(&hook.id)?.deliveries()?;
            deliveries.truncate(20);
            rows.push(HookRow { hook, deliveries });
        }
        Ok((rows, feeds.into_iter().map(|(n, _)| n).collect()))
    })
    .await?;
    render(&WebhooksPage {
        title: "Webhooks",
        nav: Nav::of(&v),
        hooks,
        feeds,
        events: EVENTS.map(Kind::event_name).to_vec(),
    })
}

/// The create form: `event` repeats, one per checked box.
#[derive(Debug, Deserialize)]
pub struct NewHookForm {
    #[serde(default)]
    csrf: String,
    url: String,
    #[serde(default)]
    feed: String,
    #[serde(default)]
    secret: String,
    #[serde(default)]
    format: String,
    #[serde(default)]
    events: String,
}

// POST /ui/webhooks — adds a webhook; its secret is shown once (administrators).
pub async fn create(v: Viewer, body: web::Bytes) -> Result<HttpResponse, UiError> {
    // Checkboxes repeat `event`: read the pairs, then the one-valued fields.
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_bytes(&body).map_err(|e| UiError::bad_request(e.to_string()))?;
    let events: Vec<String> = pairs
        .iter()
        .filter(|(k, _)| k == "event")
        .map(|(_, v)| v.clone())
        .collect();
    let single: Vec<(String, String)> = pairs.into_iter().filter(|(k, _)| k != "event").collect();
    let form: NewHookForm =
        serde_urlencoded::from_str(&serde_urlencoded::to_string(&single).unwrap_or_default())
            .map_err(|e| UiError::bad_request(e.to_string()))?;
    v.check_csrf(&form.csrf)?;
    let mut all_events = events;
    all_events.extend(
        form.events
            .split([',', ' '])
            .filter(|e| !e.trim().is_empty())
            .map(str::to_owned),
    );
    let new = NewEndpoint {
        url: form.url.trim().to_owned(),
        secret: Some(form.secret.trim().to_owned()).filter(|s| !s.is_empty()),
        feed: Some(form.feed.trim().to_owned()).filter(|f| !f.is_empty()),
        events: all_events,
        format: if form.format == "cloudevents" {
            Format::Cloudevents
        } else {
            Format::Semdock
        },
    };
    let access = v.access.clone();
    let hook = run(move || {
        access.admin()?;
        Ok(access.create_webhook(&new)?)
    })
    .await?;
    super::secret::show_secret(
        &v,
        format!("The signing secret of webhook {} ({})", hook.id, hook.url),
        hook.secret.unwrap_or_default(),
    )
}

#[derive(Debug, Deserialize)]
pub struct HookForm {
    #[serde(default)]
    csrf: String,
    event: Option<u64>,
}

// POST /ui/webhooks/{id}/delete — removes a webhook (administrators).
pub async fn delete(
    v: Viewer,
    path: web::Path<String>,
    form: web::Form<HookForm>,
) -> Result<HttpResponse, UiError> {
    v.check_csrf(&form.csrf)?;
    let access = v.access.clone();
    run(move || {
        access.admin()?;
        Ok(access.webhook(&path)?.delete()?)
    })
    .await?;
    Ok(redirect("/ui/webhooks?done=webhook-deleted"))
}

// POST /ui/webhooks/{id}/redeliver — sends one event again (administrators).
pub async fn redeliver(
    v: Viewer,
    path: web::Path<String>,
    form: web::Form<HookForm>,
) -> Result<HttpResponse, UiError> {
    v.check_csrf(&form.csrf)?;
    let event = form
        .event
        .ok_or_else(|| UiError::bad_request("which event to redeliver?".to_owned()))?;
    let access = v.access.clone();
    run(move || {
        access.admin()?;
        Ok(access.webhook(&path)?.redeliver(event)?)
    })
    .await?;
    Ok(redirect("/ui/webhooks?done=redeliver"))
}
