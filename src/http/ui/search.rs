//! `/ui/search`: the search box of the bar, across the feeds the viewer may pull.

use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::session::Viewer;
use super::{Nav, UiError, render, run};
use crate::domain::search::{Hit, HitKind};

struct HitRow {
    kind: &'static str,
    repository: String,
    tag: Option<String>,
    digest: Option<String>,
    matched: String,
}

impl From<Hit> for HitRow {
    fn from(h: Hit) -> Self {
        Self {
            kind: match h.kind {
                HitKind::Repository => "repository",
                HitKind::Tag => "tag",
                HitKind::Digest => "digest",
                HitKind::Annotation => "annotation",
            },
            repository: h.repository,
            tag: h.tag,
            digest: h.digest,
            matched: h.matched,
        }
    }
}

#[derive(Template)]
#[template(path = "search.html")]
struct SearchPage {
    title: &'static str,
    nav: Option<Nav>,
    query: String,
    hits: Vec<HitRow>,
}

#[derive(Deserialize)]
pub struct SearchQuery {
    #[serde(default)]
    q: String,
}

// GET /ui/search?q= — hits across the feeds the viewer may pull.
pub async fn search(v: Viewer, query: web::Query<SearchQuery>) -> Result<HttpResponse, UiError> {
    let query = query.into_inner().q.trim().to_owned();
    let hits = if query.is_empty() {
        Vec::new()
    } else {
        let access = v.access.clone();
        let q = query.clone();
        run(move || Ok(access.search(&q, 100)?)).await?
    };
    render(&SearchPage {
        title: "Search",
        nav: Nav::of(&v),
        query,
        hits: hits.into_iter().map(HitRow::from).collect(),
    })
}
