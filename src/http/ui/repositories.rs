//! A repository's page (its tags, grouped by version line) and what changes its tags:
//! checking a tag against the policy, promotion, deletion and purge.

use std::collections::HashMap;

use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;
use serde_json::Value;

use super::links::enc;
use super::session::Viewer;
use super::{Nav, UiError, clock, host, redirect, render, run, short, size};
use crate::domain;
use crate::domain::TagEntry;
use crate::domain::access::{Delete, Feed, FeedAdmin, Promote, Pull};
use crate::model::{Action, Digest, Reference, Repository};

pub struct TagRow {
    pub tag: String,
    pub digest: String,
    pub short: String,
    pub size: String,
    pub pushed: String,
    pub by: String,
    pub pull: String,
    pub note: String,
    /// Known vulnerabilities of its image, in a few words; empty for an artifact.
    pub vulns: String,
    /// Whether any is high or critical.
    pub grave: bool,
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
pub(super) fn image_size(body: &[u8]) -> u64 {
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
            vulns: String::new(),
            grave: false,
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
        let mut groups = groups;
        let digests: Vec<String> = groups
            .iter()
            .flat_map(|g| g.rows.iter().map(|r| r.digest.clone()))
            .collect();
        let reports = feed.vulnerabilities().reports(&repo_ref, &digests)?;
        for row in groups.iter_mut().flat_map(|g| g.rows.iter_mut()) {
            if let Some(report) = reports.get(&row.digest) {
                (row.vulns, row.grave) = super::vulns::summary(report);
            }
        }
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
