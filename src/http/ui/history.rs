//! The history page: what happened to a feed's tags, filtered and paged.

use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::session::Viewer;
use super::{Nav, UiError, clock, render, run, short};
use crate::domain::access::Pull;
use crate::model::Repository;

pub struct HistRow {
    pub time: String,
    pub tag: String,
    pub method: String,
    pub old: String,
    pub new: String,
    pub new_full: String,
    pub actor: String,
    pub comment: String,
}

#[derive(Template)]
#[template(path = "history.html")]
struct HistoryPage {
    title: String,
    nav: Option<Nav>,
    repo: String,
    tag: String,
    at: String,
    at_result: Option<String>,
    rows: Vec<HistRow>,
    /// The change kinds to filter by, and which is chosen.
    methods: Vec<(&'static str, bool)>,
    /// The page of older changes, when there are more.
    older: Option<String>,
}

#[derive(Deserialize)]
pub struct HistoryQuery {
    name: String,
    #[serde(default)]
    tag: String,
    #[serde(default)]
    method: String,
    /// `YYYY-MM-DDTHH:MM[:SS]` (UTC), from a datetime-local input.
    #[serde(default)]
    at: String,
    /// Continue with the changes older than this one.
    before: Option<u64>,
}

// GET /ui/history?name=&tag=&method=&at= — every change, filtered; what a tag was at a time.
pub async fn history(
    viewer: Viewer,
    query: web::Query<HistoryQuery>,
) -> Result<HttpResponse, UiError> {
    let HistoryQuery {
        name,
        tag,
        method,
        at,
        before,
    } = query.into_inner();
    let repo: Repository = name.parse().map_err(crate::domain::Error::from)?;
    let at_ms = if at.is_empty() {
        None
    } else {
        // The form's datetime-local field is UTC (the page says so); RFC 3339 with any
        // offset, or a date alone, is taken as written.
        let local = match at.len() {
            16 => format!("{at}:00Z"),
            19 => format!("{at}Z"),
            _ => at.clone(),
        };
        let ms = crate::model::instant::parse(&local, 0, false)
            .or_else(|_| crate::model::instant::parse(&at, 0, false))
            .map_err(UiError::bad_request)?;
        Some(ms)
    };
    let access = viewer.access.clone();
    let (repo_ref, tag_ref, method_ref) = (repo.clone(), tag.clone(), method.clone());
    let (entries, at_result, older) = run(move || {
        let feed = access.feed::<Pull>(repo_ref.feed())?;
        let tag_filter = (!tag_ref.is_empty()).then_some(tag_ref.as_str());
        let q = crate::domain::HistoryQuery {
            tag: tag_filter.map(str::to_owned),
            method: (!method_ref.is_empty()).then(|| method_ref.clone()),
            last: before,
            newest_first: true,
            n: None,
        };
        let (entries, older) = feed.history(&repo_ref, &q)?;
        let at_result = match (at_ms, tag_filter) {
            (Some(ms), Some(tag)) => Some(
                feed.tag_at(&repo_ref, tag, ms)?
                    .unwrap_or_else(|| "nothing (the tag did not exist)".into()),
            ),
            _ => None,
        };
        Ok((entries, at_result, older))
    })
    .await?;
    let older = older.map(|seq| {
        let seq = seq.to_string();
        let pairs = [
            ("name", repo.as_str()),
            ("tag", tag.as_str()),
            ("method", method.as_str()),
            ("before", seq.as_str()),
        ];
        format!(
            "/ui/history?{}",
            serde_urlencoded::to_string(pairs).unwrap_or_default()
        )
    });
    let rows = entries
        .into_iter()
        .map(|h| HistRow {
            time: clock(&h.time, 19),
            old: h.old.as_deref().map(short).unwrap_or_default(),
            // A virtual tag's move shows the version it follows, as the repository page does.
            new: match (
                h.new.as_deref(),
                h.comment
                    .as_deref()
                    .and_then(|c| c.strip_prefix("follows ")),
            ) {
                (Some(d), Some(version)) if h.method == "virtual" => {
                    format!("→ {version} ({})", short(d))
                }
                (new, _) => new.map(short).unwrap_or_default(),
            },
            new_full: h.new.unwrap_or_default(),
            tag: h.tag,
            method: h.method,
            actor: h.actor,
            comment: h.comment.unwrap_or_default(),
        })
        .collect();
    let methods = [
        "push", "promote", "retag", "delete", "purge", "virtual", "settings", "upstream", "drift",
        "accept",
    ]
    .into_iter()
    .map(|m| (m, m == method))
    .collect();
    render(&HistoryPage {
        title: format!("History of {repo}"),
        nav: Nav::of(&viewer),
        repo: repo.to_string(),
        methods,
        tag,
        at,
        at_result,
        rows,
        older,
    })
}
