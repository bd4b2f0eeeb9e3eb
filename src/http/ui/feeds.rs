//! The dashboard (every feed the viewer may see, with recent activity), a feed's page, and
//! creating a feed.

use std::collections::HashMap;

use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::session::Viewer;
use super::{Nav, UiError, clock, host, redirect, render, run, short, size};
use crate::domain::access::Pull;
use crate::domain::{self, FeedChange};
use crate::model::{Action, FeedName};

pub struct FeedRow {
    pub name: String,
    pub description: String,
    pub versioning: bool,
    pub anonymous: bool,
    pub repositories: u64,
    pub size: String,
}

pub struct Activity {
    pub repo: String,
    pub tag: String,
    pub method: String,
    pub target: String,
    pub actor: String,
    pub time: String,
}

#[derive(Template)]
#[template(path = "dashboard.html")]
struct Dashboard {
    title: &'static str,
    nav: Option<Nav>,
    feeds: Vec<FeedRow>,
    activity: Vec<Activity>,
    can_create: bool,
}

// GET /ui/ — the feeds the viewer may pull, storage, recent pushes and promotions.
pub async fn dashboard(v: Viewer) -> Result<HttpResponse, UiError> {
    let access = v.access.clone();
    let (feeds, activity) = run(move || {
        let storage: HashMap<String, (u64, u64)> = access
            .storage()?
            .feeds
            .into_iter()
            .map(|f| (f.feed, (f.repositories, f.bytes)))
            .collect();
        let feeds = access
            .feeds()?
            .into_iter()
            .map(|(name, f)| {
                let (repositories, bytes) = storage.get(&name).copied().unwrap_or_default();
                FeedRow {
                    description: f.description,
                    versioning: f.versioning,
                    anonymous: f.anonymous_pull,
                    repositories,
                    size: size(bytes),
                    name,
                }
            })
            .collect();
        let activity = access
            .recent_history(15)?
            .into_iter()
            .filter(|(_, h)| h.method != "virtual")
            .map(|(repo, h)| Activity {
                target: h.new.as_deref().map_or_else(|| "(removed)".into(), short),
                time: clock(&h.time, 16),
                repo,
                tag: h.tag,
                method: h.method,
                actor: h.actor,
            })
            .collect();
        Ok((feeds, activity))
    })
    .await?;
    render(&Dashboard {
        title: "Feeds",
        can_create: v.principal.is_admin(),
        nav: Nav::of(&v),
        feeds,
        activity,
    })
}

#[derive(Deserialize)]
pub struct FeedQuery {
    #[serde(default)]
    q: String,
    after: Option<String>,
}

#[derive(Template)]
#[template(path = "feed.html")]
struct FeedPage {
    title: String,
    nav: Option<Nav>,
    feed: String,
    description: String,
    versioning: bool,
    anonymous: bool,
    repos: Vec<(String, String)>,
    q: String,
    next: Option<String>,
    host: String,
    admin: bool,
    /// A connector feed's upstream, for "a cache of …".
    upstream: Option<String>,
}

const REPOS_PER_PAGE: usize = 50;

// GET /ui/feeds/{feed}?q=&after= — repositories (searchable, paged) and how to push.
pub async fn feed(
    v: Viewer,
    path: web::Path<String>,
    query: web::Query<FeedQuery>,
    req: HttpRequest,
) -> Result<HttpResponse, UiError> {
    let feed = path.into_inner();
    let FeedQuery { q, after } = query.into_inner();
    let access = v.access.clone();
    let (f2, q2) = (feed.clone(), q.clone());
    let (record, names, more, admin) = run(move || {
        let pull = access.feed::<Pull>(&f2)?;
        let record = pull.settings()?;
        let (names, more) =
            pull.search_repositories(q2.trim(), after.as_deref(), REPOS_PER_PAGE)?;
        let admin = access.caps(&f2)?.allows(Action::Admin);
        Ok((record, names, more, admin))
    })
    .await?;
    let next = more.then(|| {
        let last = names.last().cloned().unwrap_or_default();
        let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        format!("/ui/feeds/{feed}?q={}&after={}", enc(&q), enc(&last))
    });
    let prefix = format!("{feed}/");
    render(&FeedPage {
        title: format!("Feed {feed}"),
        nav: Nav::of(&v),
        description: record.description,
        versioning: record.versioning,
        anonymous: record.anonymous_pull,
        repos: names
            .into_iter()
            .map(|n| (n.strip_prefix(&prefix).unwrap_or(&n).to_owned(), n))
            .collect(),
        q,
        next,
        host: host(&req),
        admin,
        upstream: record.upstream.map(|u| {
            let mut s = u.url;
            if !u.prefix.is_empty() {
                s = format!("{s} ({}…)", u.prefix);
            }
            if u.offline {
                s.push_str(", offline: only what is cached is served");
            }
            s
        }),
        feed,
    })
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

#[derive(Deserialize)]
pub struct MaintenanceForm {
    #[serde(default)]
    csrf: String,
    /// `on` or `off`.
    read_only: String,
    #[serde(default)]
    reason: String,
}

// POST /ui/maintenance — an administrator turns read-only mode on or off.
pub async fn maintenance(
    v: Viewer,
    form: web::Form<MaintenanceForm>,
) -> Result<HttpResponse, UiError> {
    v.check_csrf(&form.csrf)?;
    let form = form.into_inner();
    let on = match form.read_only.as_str() {
        "on" => true,
        "off" => false,
        _ => {
            return Err(domain::Error::Invalid("read_only is \"on\" or \"off\"".into()).into());
        }
    };
    let access = v.access;
    run(move || Ok(access.admin()?.set_read_only(on, form.reason.trim())?)).await?;
    Ok(redirect(if on {
        "/ui/?done=read-only-on"
    } else {
        "/ui/?done=read-only-off"
    }))
}

#[derive(Deserialize)]
pub struct QuotaForm {
    #[serde(default)]
    csrf: String,
    /// GiB, decimals allowed; empty removes the quota.
    #[serde(default)]
    gib: String,
}

// POST /ui/feeds/{feed}/quota — an administrator sets or removes a feed's storage quota.
pub async fn set_quota(
    v: Viewer,
    path: web::Path<String>,
    form: web::Form<QuotaForm>,
) -> Result<HttpResponse, UiError> {
    v.check_csrf(&form.csrf)?;
    let feed = path.into_inner();
    let bytes = match form.gib.trim() {
        "" => None,
        gib => {
            let parsed: f64 = gib
                .parse()
                .ok()
                .filter(|g: &f64| g.is_finite() && *g > 0.0)
                .ok_or_else(|| UiError::bad_request(format!("{gib:?} is not a number of GiB")))?;
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            Some((parsed * 1_073_741_824.0) as u64)
        }
    };
    let access = v.access;
    let f = feed.clone();
    run(move || Ok(access.admin()?.set_quota(&f, bytes)?)).await?;
    Ok(redirect(&format!("/ui/feeds/{feed}/settings?done=saved")))
}
