//! The pages people read: dashboard, feed, repository, manifest, history, users and keys.

use std::collections::HashMap;

use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;
use serde_json::Value;

use super::session::Viewer;
use super::{Nav, UiError, clock, host, render, run, short, size, when};
use crate::domain::TagEntry;
use crate::domain::access::{Feed, Pull};
use crate::model::{Action, Digest, Reference, Repository};

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

pub struct TagRow {
    pub tag: String,
    pub digest: String,
    pub short: String,
    pub size: String,
    pub pushed: String,
    pub by: String,
    pub pull: String,
    pub note: String,
}

pub struct Group {
    pub title: &'static str,
    pub note: &'static str,
    pub rows: Vec<TagRow>,
    /// Whether the viewer may delete these tags (virtual ones never).
    pub deletable: bool,
}

#[derive(Template)]
#[template(path = "repository.html")]
struct RepoPage {
    title: String,
    nav: Option<Nav>,
    repo: String,
    feed: String,
    name: String,
    /// `docker pull …@sha256:…` of the newest version (or first tag), for pinning.
    pin: Option<String>,
    groups: Vec<Group>,
    tombstones: Vec<TagRow>,
    targets: Vec<String>,
    admin: bool,
    /// The search, when there is one.
    q: String,
    /// Whether this page continues one list (rather than the first page of each).
    paged: bool,
    more: Vec<More>,
}

#[derive(Deserialize)]
pub struct RepoQuery {
    name: String,
    /// Continue one list (`versions`, `tags`, `tombstones`) after `last`.
    list: Option<crate::domain::TagList>,
    last: Option<String>,
    /// Only tags containing this text.
    #[serde(default)]
    q: String,
}

/// A "more" link of a paged list.
pub struct More {
    pub title: &'static str,
    pub href: String,
}

/// Size of an image from its manifest: config plus layers (an index: its own bytes).
fn image_size(body: &[u8]) -> u64 {
    let Ok(m) = serde_json::from_slice::<Value>(body) else {
        return body.len() as u64;
    };
    let layers = m["layers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|l| l["size"].as_u64())
        .sum::<u64>();
    layers + m["config"]["size"].as_u64().unwrap_or(0)
}

/// Builds the rows of a repository page from one look at its tags, history and manifests.
struct RowMaker<'a> {
    feed: &'a Feed<'a, Pull>,
    repo: &'a Repository,
    host: &'a str,
    sizes: HashMap<String, u64>,
}

impl RowMaker<'_> {
    fn size_of(&mut self, digest: &str) -> u64 {
        if let Some(n) = self.sizes.get(digest) {
            return *n;
        }
        let n = digest
            .parse::<Digest>()
            .ok()
            .and_then(|d| self.feed.manifest(self.repo, &Reference::Digest(d)).ok())
            .map_or(0, |m| image_size(&m.body));
        self.sizes.insert(digest.to_owned(), n);
        n
    }

    fn row(&mut self, entry: &TagEntry) -> TagRow {
        let bytes = self.size_of(&entry.digest);
        // One history read per row shown: O(page · log n), whatever the history's length.
        let change = self.feed.last_change(self.repo, &entry.tag).ok().flatten();
        let change = change.as_ref();
        TagRow {
            tag: entry.tag.clone(),
            short: short(&entry.digest),
            size: size(bytes),
            pushed: change.map(|c| clock(&c.time, 16)).unwrap_or_default(),
            by: change
                .map(|c| format!("{} ({})", c.actor, c.method))
                .unwrap_or_default(),
            pull: format!("docker pull {}/{}@{}", self.host, self.repo, entry.digest),
            digest: entry.digest.clone(),
            note: entry
                .version
                .as_ref()
                .map(|v| format!("→ {v}"))
                .unwrap_or_default(),
        }
    }

    fn group(
        &mut self,
        title: &'static str,
        note: &'static str,
        entries: &[TagEntry],
        deletable: bool,
    ) -> Option<Group> {
        (!entries.is_empty()).then(|| Group {
            title,
            note,
            rows: entries.iter().map(|e| self.row(e)).collect(),
            deletable,
        })
    }
}

/// The "more" links of a repository page: where each list with more continues.
fn more_links(repo: &Repository, q: &str, next: &crate::domain::TagCursors) -> Vec<More> {
    let link = |list: &str, last: &str| {
        let mut pairs = vec![("name", repo.as_str()), ("list", list), ("last", last)];
        if !q.is_empty() {
            pairs.push(("q", q));
        }
        format!(
            "/ui/repository?{}",
            serde_urlencoded::to_string(pairs).unwrap_or_default()
        )
    };
    [
        ("More versions", next.versions.as_deref(), "versions"),
        ("More tags", next.tags.as_deref(), "tags"),
        (
            "More deleted versions",
            next.tombstones.as_deref(),
            "tombstones",
        ),
    ]
    .into_iter()
    .filter_map(|(title, last, list)| {
        last.map(|last| More {
            title,
            href: link(list, last),
        })
    })
    .collect()
}

// GET /ui/repository?name=FEED/NAME[&q=TEXT][&list=LIST&last=TAG] — tags by kind, a page of
// each list (or the next page of one), with what the viewer may do to them.
pub async fn repository(
    viewer: Viewer,
    query: web::Query<RepoQuery>,
    req: HttpRequest,
) -> Result<HttpResponse, UiError> {
    let RepoQuery {
        name,
        list,
        last,
        q,
    } = query.into_inner();
    let repo: Repository = name.parse().map_err(crate::domain::Error::from)?;
    let access = viewer.access.clone();
    let host = host(&req);
    let (repo_ref, host_ref) = (repo.clone(), host.clone());
    let tag_query = crate::domain::TagQuery {
        list,
        last,
        n: None,
        contains: (!q.is_empty()).then(|| q.clone()),
    };
    let (groups, tombstones, targets, next) = run(move || {
        let feed = access.feed::<Pull>(repo_ref.feed())?;
        let deletable = access.caps(repo_ref.feed())?.allows(Action::Delete);
        let tags = feed.tag_groups(&repo_ref, &tag_query)?;
        let mut rows = RowMaker {
            feed: &feed,
            repo: &repo_ref,
            host: &host_ref,
            sizes: HashMap::new(),
        };
        let groups: Vec<Group> = [
            rows.group(
                "Versions",
                "SemVer, newest first; released versions never change.",
                &tags.versions,
                deletable,
            ),
            rows.group(
                "Virtual tags",
                "Kept by the server: they follow the highest versions.",
                &tags.virtual_tags,
                false,
            ),
            rows.group(
                "Permitted tags",
                "Mutable tags the feed allows besides versions.",
                &tags.permitted,
                deletable,
            ),
            rows.group(
                "Legacy tags",
                "From before versioning: kept, but a push to them is refused.",
                &tags.legacy,
                deletable,
            ),
            rows.group("Tags", "", &tags.other, deletable),
        ]
        .into_iter()
        .flatten()
        .collect();
        let tombstones = tags.tombstones.iter().map(|e| rows.row(e)).collect();
        let mut targets = Vec::new();
        for (name, _) in access.feeds()? {
            if access.caps(&name)?.allows(Action::Promote) {
                targets.push(name);
            }
        }
        Ok((groups, tombstones, targets, tags.next))
    })
    .await?;
    let more = more_links(&repo, &q, &next);
    let pin = groups
        .first()
        .filter(|_| list.is_none())
        .and_then(|g| g.rows.first())
        .map(|r| format!("{}   # {}", r.pull, r.tag));
    render(&RepoPage {
        title: repo.to_string(),
        pin,
        nav: Nav::of(&viewer),
        feed: repo.feed().to_owned(),
        name: repo.as_str()[repo.feed().len() + 1..].to_owned(),
        repo: repo.to_string(),
        groups,
        tombstones,
        targets,
        admin: viewer.principal.is_admin(),
        q,
        paged: list.is_some(),
        more,
    })
}

pub struct Layer {
    pub digest: String,
    pub short: String,
    pub size: String,
    pub media_type: String,
}

pub struct Platform {
    pub digest: String,
    pub short: String,
    pub os_arch: String,
    pub size: String,
}

#[derive(Template)]
#[template(path = "manifest.html")]
struct ManifestPage {
    title: String,
    nav: Option<Nav>,
    repo: String,
    digest: String,
    media_type: String,
    artifact_type: String,
    size: String,
    config: Option<Layer>,
    layers: Vec<Layer>,
    total: String,
    platforms: Vec<Platform>,
    annotations: Vec<(String, String)>,
    referrers: Vec<Layer>,
    pull: String,
    subject: Option<String>,
}

#[derive(Deserialize)]
pub struct ManifestQuery {
    name: String,
    digest: String,
}

fn layer(d: &Value) -> Layer {
    let digest = d["digest"].as_str().unwrap_or_default().to_owned();
    Layer {
        short: short(&digest),
        size: size(d["size"].as_u64().unwrap_or(0)),
        media_type: d["mediaType"].as_str().unwrap_or_default().to_owned(),
        digest,
    }
}

// GET /ui/manifest?name=&digest= — what an image or index is made of, and what refers to it.
pub async fn manifest(
    viewer: Viewer,
    query: web::Query<ManifestQuery>,
    req: HttpRequest,
) -> Result<HttpResponse, UiError> {
    let ManifestQuery { name, digest } = query.into_inner();
    let repo: Repository = name.parse().map_err(crate::domain::Error::from)?;
    let digest: Digest = digest.parse().map_err(crate::domain::Error::from)?;
    let access = viewer.access.clone();
    let (repo_ref, digest_ref) = (repo.clone(), digest.clone());
    let (stored, referrers) = run(move || {
        let feed = access.feed::<Pull>(repo_ref.feed())?;
        let stored = feed.manifest(&repo_ref, &Reference::Digest(digest_ref.clone()))?;
        let referrers = feed.referrers(&repo_ref, &digest_ref)?;
        Ok((stored, referrers))
    })
    .await?;
    let body: Value = serde_json::from_slice(&stored.body).unwrap_or(Value::Null);
    let layers: Vec<Layer> = body["layers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(layer)
        .collect();
    let config = body.get("config").map(layer);
    let total = image_size(&stored.body);
    let platforms = body["manifests"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| {
            let p = &m["platform"];
            let parts: Vec<&str> = [&p["os"], &p["architecture"], &p["variant"]]
                .iter()
                .filter_map(|v| v.as_str())
                .collect();
            let digest = m["digest"].as_str().unwrap_or_default().to_owned();
            Platform {
                short: short(&digest),
                os_arch: if parts.is_empty() {
                    "(none)".into()
                } else {
                    parts.join("/")
                },
                size: size(m["size"].as_u64().unwrap_or(0)),
                digest,
            }
        })
        .collect();
    let annotations = body["annotations"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
        .collect();
    render(&ManifestPage {
        title: format!("{repo}@{}", short(digest.as_str())),
        nav: Nav::of(&viewer),
        pull: format!("docker pull {}/{repo}@{digest}", host(&req)),
        media_type: stored.media_type,
        artifact_type: body["artifactType"].as_str().unwrap_or_default().to_owned(),
        size: size(stored.body.len() as u64),
        config,
        layers,
        total: size(total),
        platforms,
        annotations,
        referrers: referrers
            .into_iter()
            .map(|r| Layer {
                short: short(&r.digest),
                size: size(r.size),
                media_type: r.artifact_type.unwrap_or(r.media_type),
                digest: r.digest,
            })
            .collect(),
        subject: stored.subject,
        repo: repo.to_string(),
        digest: digest.to_string(),
    })
}

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

pub struct UserRow {
    pub name: String,
    pub admin: bool,
    pub disabled: bool,
    pub last_login: String,
    pub roles: String,
}

pub struct KeyRow {
    pub id: String,
    pub name: String,
    pub owner: String,
    pub admin: bool,
    pub roles: String,
    pub expires: String,
}

#[derive(Template)]
#[template(path = "users.html")]
struct UsersPage {
    title: &'static str,
    nav: Option<Nav>,
    users: Vec<UserRow>,
    keys: Vec<KeyRow>,
    feeds: Vec<String>,
}

fn roles_text<R: std::fmt::Display>(roles: &std::collections::BTreeMap<String, R>) -> String {
    roles
        .iter()
        .map(|(feed, role)| format!("{feed}: {role}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[derive(Template)]
#[template(path = "keys.html")]
struct KeysPage {
    title: &'static str,
    nav: Option<Nav>,
    keys: Vec<KeyRow>,
}

fn key_rows(keys: Vec<crate::domain::auth::KeyInfo>) -> Vec<KeyRow> {
    keys.into_iter()
        .map(|k| KeyRow {
            roles: roles_text(&k.roles),
            expires: k.expires.map_or_else(|| "never".into(), when),
            id: k.id,
            name: k.name,
            owner: k.owner,
            admin: k.admin,
        })
        .collect()
}

// GET /ui/keys — the viewer's own API keys, for docker and CI (every user: a directory or
// OpenID Connect user has no password a client could use).
pub async fn keys(v: Viewer) -> Result<HttpResponse, UiError> {
    let access = v.access.clone();
    let user = v.principal.user().to_owned();
    let keys = run(move || Ok(access.account()?.keys()?)).await?;
    render(&KeysPage {
        title: "Your API keys",
        nav: Nav::of(&v),
        keys: key_rows(keys.into_iter().filter(|k| k.owner == user).collect()),
    })
}

// GET /ui/users — users and API keys (administrators).
pub async fn users(v: Viewer) -> Result<HttpResponse, UiError> {
    let access = v.access.clone();
    let (users, keys, feeds) = run(move || {
        let admin = access.admin()?;
        Ok((admin.users()?, admin.keys()?, admin.feeds()?))
    })
    .await?;
    render(&UsersPage {
        title: "Users and API keys",
        nav: Nav::of(&v),
        users: users
            .into_iter()
            .map(|u| UserRow {
                last_login: u.last_login.map_or_else(|| "never".into(), when),
                roles: roles_text(&u.roles),
                name: u.name,
                admin: u.admin,
                disabled: u.disabled,
            })
            .collect(),
        keys: key_rows(keys),
        feeds: feeds.into_iter().map(|(n, _)| n).collect(),
    })
}
