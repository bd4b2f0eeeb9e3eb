//! `GET /api/v1/audit`: the audit log, filtered and paged, or exported as JSON lines.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use super::dto::{self, AuditEntry};
use super::error::ErrorBody;
use super::paging::next_link;
use super::{Api, ApiError, run};
use crate::domain::audit::{AuditQuery, Kind};
use crate::domain::{self, access::Access};

/// Filters and a page of the audit log.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AuditParams {
    /// From this time on (RFC 3339, or Unix seconds), inclusive.
    pub since: Option<String>,
    /// Before this time (RFC 3339, or Unix seconds).
    pub until: Option<String>,
    /// Only what this user (or `retention`, `scheduler`, …) did.
    pub actor: Option<String>,
    /// Only entries of this feed.
    pub feed: Option<String>,
    /// Only these kinds, comma-separated (`added,promoted`, or webhook names `Added`).
    pub kind: Option<String>,
    /// Continue after this id.
    pub last: Option<u64>,
    /// How many (default 100, at most 1000).
    pub n: Option<usize>,
    /// `newest` (the default) or `oldest` first.
    pub order: Option<String>,
    /// `json` (the default: a page) or `jsonl` (every matching entry, one per line).
    pub format: Option<String>,
}

/// A time as RFC 3339 or Unix seconds, in Unix milliseconds.
pub fn parse_time(name: &str, value: &str) -> Result<u64, domain::Error> {
    if let Ok(secs) = value.parse::<u64>() {
        return Ok(secs.saturating_mul(1000));
    }
    let t = humantime::parse_rfc3339_weak(value).map_err(|e| {
        domain::Error::Invalid(format!(
            "{name}: {value:?} is not a time ({e}): use RFC 3339 (2026-12-01T10:00:00Z) or Unix seconds"
        ))
    })?;
    Ok(t.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)))
}

impl AuditParams {
    pub fn query(&self) -> Result<AuditQuery, domain::Error> {
        let kinds = self
            .kind
            .as_deref()
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .map(Kind::parse)
            .collect::<Result<Vec<_>, _>>()?;
        let oldest_first = match self.order.as_deref() {
            None | Some("newest") => self.format.as_deref() == Some("jsonl"),
            Some("oldest") => true,
            Some(other) => {
                return Err(domain::Error::Invalid(format!(
                    "order: {other:?} is neither newest nor oldest"
                )));
            }
        };
        Ok(AuditQuery {
            since_ms: self
                .since
                .as_deref()
                .map(|v| parse_time("since", v))
                .transpose()?,
            until_ms: self
                .until
                .as_deref()
                .map(|v| parse_time("until", v))
                .transpose()?,
            actor: self.actor.clone().filter(|a| !a.is_empty()),
            feed: self.feed.clone().filter(|f| !f.is_empty()),
            kinds,
            last: self.last,
            oldest_first,
            n: self.n,
        })
    }
}

/// The audit log (administrators; a feed's administrators with `feed=` naming it): newest
/// first, paged by `last` with a `Link` to the next page; `format=jsonl` exports every
/// matching entry, oldest first unless `order=newest`.
#[utoipa::path(get, path = "/api/v1/audit", params(AuditParams),
    responses((status = 200, body = [AuditEntry]), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn audit(
    Api(access): Api,
    req: HttpRequest,
    params: web::Query<AuditParams>,
) -> Result<HttpResponse, ApiError> {
    let q = params.query()?;
    match params.format.as_deref() {
        None | Some("json") => {
            let (entries, next) = run(move || access.audit(&q)).await?;
            let mut res = HttpResponse::Ok();
            if let Some(last) = next {
                res.insert_header(("Link", next_link(&req, &last.to_string(), None)));
            }
            Ok(res.json(dto::all::<AuditEntry, _>(entries)))
        }
        Some("jsonl") => Ok(jsonl_response(access, q).await?),
        Some(other) => Err(domain::Error::Invalid(format!(
            "format: {other:?} is neither json nor jsonl"
        ))
        .into()),
    }
}

/// Every entry `q` matches as JSON lines: the first page read (and the rights checked)
/// before the response starts, the rest streamed a page at a time, so an export of years
/// holds one page.
pub async fn jsonl_response(
    access: Access,
    mut q: AuditQuery,
) -> Result<HttpResponse, domain::Error> {
    q.n = Some(crate::domain::audit::MAX_PAGE);
    let first = {
        let (access, q) = (access.clone(), q.clone());
        web::block(move || access.audit(&q))
            .await
            .map_err(|e| domain::Error::Internal(e.to_string()))??
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<web::Bytes, std::io::Error>>(2);
    tokio::task::spawn_blocking(move || export(&access, q, first, &tx));
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    Ok(HttpResponse::Ok()
        .content_type("application/x-ndjson")
        .streaming(body))
}

type Sender = tokio::sync::mpsc::Sender<Result<web::Bytes, std::io::Error>>;

fn export(
    access: &Access,
    mut q: AuditQuery,
    mut page: (Vec<crate::domain::audit::AuditEntry>, Option<u64>),
    tx: &Sender,
) {
    loop {
        let mut chunk = Vec::new();
        for entry in std::mem::take(&mut page.0) {
            if serde_json::to_writer(&mut chunk, &AuditEntry::from(entry)).is_ok() {
                chunk.push(b'\n');
            }
        }
        if tx.blocking_send(Ok(chunk.into())).is_err() {
            return; // the client went away
        }
        let Some(next) = page.1 else { return };
        q.last = Some(next);
        page = match access.audit(&q) {
            Ok(p) => p,
            Err(e) => {
                let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
                return;
            }
        };
    }
}
