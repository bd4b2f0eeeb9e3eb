//! Versioning endpoints: promotion and retag (with the ProGet-compatible form), purge, tags
//! grouped by kind, tag history, and the record of feed setting changes.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::dto::{
    HistoryEntry, Promoted, PromotionRequest, PurgeRequest, Resolved, TagAt, TagGroups, TagList,
};
use super::error::{ApiError, ErrorBody};
use super::paging::{PageQuery, next_link};
use super::{Api, run};
use crate::domain;
use crate::domain::access::{Access, Delete, FeedAdmin, Promote, Pull};
use crate::domain::registry::list_page_size;
use crate::http::caller::registry_hosts;
use crate::model::{ImageRef, Repository, Tag, parse_image_ref};

/// A recorded change of feed settings.
#[derive(Debug, Serialize, ToSchema)]
pub struct FeedChangeEntry {
    /// RFC 3339.
    pub time: String,
    pub actor: String,
    pub change: String,
}

fn rfc3339_ms(ms: u64) -> String {
    humantime::format_rfc3339_millis(std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms))
        .to_string()
}

/// Who changed a feed's settings, and how (feed admin); oldest first, paged (`last` is the
/// position of the last entry seen, counted from 1).
#[utoipa::path(get, path = "/api/v1/feeds/{feed}/changes", params(("feed" = String, Path), PageQuery),
    responses((status = 200, body = [FeedChangeEntry]), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn feed_changes(
    Api(access): Api,
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let feed = path.into_inner();
    let skip = match query.last.as_deref() {
        Some(last) => last.parse::<usize>().map_err(|_| {
            domain::Error::Invalid(format!("last: {last:?} is not a position (1, 2, …)"))
        })?,
        None => 0,
    };
    let n = list_page_size(query.n);
    let (entries, total) = run(move || {
        let changes = access.feed::<FeedAdmin>(&feed)?.changes()?;
        let total = changes.len();
        let entries = changes
            .into_iter()
            .skip(skip)
            .take(n)
            .map(|a| FeedChangeEntry {
                time: a.time,
                actor: a.actor,
                change: a.change,
            })
            .collect::<Vec<_>>();
        Ok((entries, total))
    })
    .await?;
    let mut res = HttpResponse::Ok();
    if skip + entries.len() < total {
        let last = (skip + entries.len()).to_string();
        res.insert_header(("Link", next_link(&req, &last, None)));
    }
    Ok(res.json(entries))
}

/// Copies an image to another feed and/or tag by link (no bytes copied) and tags it, in one
/// transaction. Needs pull on the source and promote on the target. Re-applying a tag that
/// already points there succeeds. With an expected digest (`expected_digest`, or `@DIGEST`
/// after the tag) a source that points elsewhere is refused with 409.
#[utoipa::path(post, path = "/api/v1/promotions", request_body = PromotionRequest,
    responses((status = 200, body = Promoted), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn promote(
    Api(access): Api,
    req: HttpRequest,
    body: web::Json<PromotionRequest>,
) -> Result<HttpResponse, ApiError> {
    let r = body.into_inner();
    let hosts = registry_hosts(&req);
    let done = run(move || {
        do_promote(
            &access,
            &PromoteArgs {
                from: &r.from,
                to: &r.to,
                expected: r.expected_digest.as_deref(),
                comment: r.comment.as_deref(),
                include_referrers: r.include_referrers,
                hosts: &hosts,
            },
        )
    })
    .await?;
    Ok(HttpResponse::Ok().json(Promoted::from(done)))
}

/// `?ref=` of a resolve.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ResolveQuery {
    /// `FEED/NAME:TAG` (or any reference form `promote` takes).
    #[serde(rename = "ref")]
    pub reference: String,
}

/// The digest a tag points at, as the pinned reference `HOST/FEED/NAME@DIGEST` (pull). With
/// `@DIGEST` after the tag, a tag that points elsewhere is a conflict (409).
#[utoipa::path(get, path = "/api/v1/resolve", params(ResolveQuery),
    responses((status = 200, body = Resolved), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn resolve(
    Api(access): Api,
    req: HttpRequest,
    query: web::Query<ResolveQuery>,
) -> Result<HttpResponse, ApiError> {
    let hosts = registry_hosts(&req);
    let host = hosts.first().cloned().unwrap_or_default();
    let text = query.into_inner().reference;
    let resolved = run(move || resolve_ref(&access, &text, &hosts, &host)).await?;
    Ok(HttpResponse::Ok().json(resolved))
}

/// What `text` (`FEED/NAME:TAG`, or any reference form `promote` takes) points at now,
/// pinned as `HOST/FEED/NAME@DIGEST`; a conflict when it expects another digest.
pub fn resolve_ref(
    access: &Access,
    text: &str,
    hosts: &[String],
    host: &str,
) -> Result<Resolved, domain::Error> {
    let r = parse_reference(text, hosts)?;
    let found = access
        .feed::<Pull>(r.repository.feed())?
        .manifest(&r.repository, &r.reference())?;
    if let Some(expected) = r.expected()
        && *expected != found.digest
    {
        return Err(domain::Error::Conflict(format!(
            "{text} expects {expected}, but the tag points at {}",
            found.digest
        )));
    }
    Ok(Resolved {
        pinned: format!("{host}/{}@{}", r.repository, found.digest),
        repository: r.repository.to_string(),
        tag: r.tag.map(|t| t.to_string()),
        digest: found.digest.to_string(),
    })
}

/// A promotion as the forms of every surface ask for it.
pub struct PromoteArgs<'a> {
    pub from: &'a str,
    pub to: &'a str,
    pub expected: Option<&'a str>,
    pub comment: Option<&'a str>,
    pub include_referrers: bool,
    /// The names of this registry, which a full reference may start with.
    pub hosts: &'a [String],
}

/// Reads an image reference in any of its forms, refusing another registry's host.
pub fn parse_reference(s: &str, hosts: &[String]) -> Result<ImageRef, domain::Error> {
    let r = parse_image_ref(s.trim())?;
    r.check_host(hosts).map_err(domain::Error::Invalid)?;
    Ok(r)
}

pub fn do_promote(access: &Access, a: &PromoteArgs<'_>) -> Result<domain::Promoted, domain::Error> {
    let from = parse_reference(a.from, a.hosts)?;
    let to = parse_reference(a.to, a.hosts)?;
    let (Some(to_tag), None) = (&to.tag, &to.digest) else {
        return Err(domain::Error::Invalid(
            "the target of a promotion is FEED/NAME:TAG".into(),
        ));
    };
    let expected = match a.expected.map(str::trim).filter(|e| !e.is_empty()) {
        Some(e) => {
            let e: crate::model::Digest = e.parse()?;
            if from.expected().is_some_and(|d| *d != e) {
                return Err(domain::Error::Invalid(format!(
                    "{} names {}, but the expected digest is {e}: give one",
                    a.from,
                    from.expected().map(ToString::to_string).unwrap_or_default()
                )));
            }
            Some(e)
        }
        None => from.expected().cloned(),
    };
    let source = access.feed::<Pull>(from.repository.feed())?;
    access.feed::<Promote>(to.repository.feed())?.promote(
        &source,
        &from.repository,
        &from.reference(),
        &to.repository,
        to_tag,
        expected.as_ref(),
        a.include_referrers,
        a.comment,
    )
}

/// The fields of `ProGet`'s promotion API, for scripts that migrate.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProGetPromotion {
    pub package_name: String,
    #[serde(default)]
    pub group_name: Option<String>,
    pub version: String,
    pub from_feed: String,
    pub to_feed: String,
    #[serde(default)]
    pub comments: Option<String>,
    /// semdock's addition: the digest the version must point at in `fromFeed` (409 if not).
    #[serde(default)]
    pub expected_digest: Option<String>,
}

/// `ProGet`-compatible promotion: `fromFeed/groupName/packageName:version` to the same name
/// and version in `toFeed`, referrers included. Form or JSON body; API key in `X-ApiKey` or
/// Basic.
#[utoipa::path(post, path = "/api/promotions/promote", request_body = ProGetPromotion,
    responses((status = 200, body = Promoted), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn proget_promote(
    Api(access): Api,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let content_type = req
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let parsed: Result<ProGetPromotion, String> = if content_type.starts_with("multipart/") {
        // `curl -F` and PowerShell's `-Form`.
        multipart_fields(&req, payload)
            .await
            .and_then(|fields| serde_json::from_value(fields).map_err(|e| e.to_string()))
    } else {
        let body = read_bounded(payload).await?;
        if content_type.contains("json") {
            serde_json::from_slice(&body).map_err(|e| e.to_string())
        } else {
            serde_urlencoded::from_bytes(&body).map_err(|e| e.to_string())
        }
    };
    let r =
        parsed.map_err(|e| domain::Error::Invalid(format!("invalid promotion request: {e}")))?;
    let name = match r.group_name.as_deref().filter(|g| !g.is_empty()) {
        Some(group) => format!("{group}/{}", r.package_name),
        None => r.package_name.clone(),
    };
    let from = format!("{}/{name}:{}", r.from_feed, r.version);
    let to = format!("{}/{name}:{}", r.to_feed, r.version);
    let hosts = registry_hosts(&req);
    let done = run(move || {
        do_promote(
            &access,
            &PromoteArgs {
                from: &from,
                to: &to,
                expected: r.expected_digest.as_deref(),
                comment: r.comments.as_deref(),
                include_referrers: true,
                hosts: &hosts,
            },
        )
    })
    .await?;
    Ok(HttpResponse::Ok().json(Promoted::from(done)))
}

/// `ProGet`'s promotion list query; every filter optional.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase")]
pub struct ProGetListQuery {
    pub from_feed: Option<String>,
    pub to_feed: Option<String>,
    pub group_name: Option<String>,
    /// The package (image) name; `package` is accepted too.
    #[serde(alias = "package")]
    pub package_name: Option<String>,
    pub version: Option<String>,
}

/// One promotion as `ProGet` lists it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProGetPromotionEntry {
    pub from_feed: String,
    pub to_feed: String,
    pub group_name: String,
    pub package_name: String,
    pub version: String,
    pub comments: Option<String>,
    /// RFC 3339.
    pub date: String,
    pub user_name: String,
    /// What semdock adds: the digest promoted.
    pub digest: String,
}

/// `ProGet`-compatible promotion list: the promotions into feeds the caller may pull from,
/// oldest first, filtered like `ProGet`'s. Promotions made before this list existed are not in
/// it (the tag history has them, without their source).
#[utoipa::path(get, path = "/api/promotions/list", params(ProGetListQuery),
    responses((status = 200, body = [ProGetPromotionEntry]), (status = 401, body = ErrorBody)))]
pub async fn proget_list(
    Api(access): Api,
    query: web::Query<ProGetListQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = query.into_inner();
    let entries = run(move || {
        let split = |repo: &str| -> (String, String, String) {
            let (feed, name) = repo.split_once('/').unwrap_or((repo, ""));
            let (group, package) = name.rsplit_once('/').unwrap_or(("", name));
            (feed.to_owned(), group.to_owned(), package.to_owned())
        };
        let want =
            |filter: &Option<String>, value: &str| filter.as_deref().is_none_or(|f| f == value);
        Ok(access
            .promotions()?
            .into_iter()
            .filter_map(|p| {
                let (from_feed, _, _) = split(&p.from_repository);
                let (to_feed, group_name, package_name) = split(&p.to_repository);
                let keep = want(&q.from_feed, &from_feed)
                    && want(&q.to_feed, &to_feed)
                    && want(&q.group_name, &group_name)
                    && want(&q.package_name, &package_name)
                    && want(&q.version, &p.to_tag);
                keep.then(|| ProGetPromotionEntry {
                    from_feed,
                    to_feed,
                    group_name,
                    package_name,
                    version: p.to_tag,
                    comments: p.comment,
                    date: rfc3339_ms(p.time_ms),
                    user_name: p.actor,
                    digest: p.digest,
                })
            })
            .collect::<Vec<_>>())
    })
    .await?;
    Ok(HttpResponse::Ok().json(entries))
}

/// Largest body of a ProGet promotion request (a handful of short fields).
const PROGET_BODY_LIMIT: usize = 64 << 10;

async fn read_bounded(mut payload: web::Payload) -> Result<Vec<u8>, ApiError> {
    use futures_util::StreamExt as _;
    let mut body = Vec::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| {
            domain::Error::Invalid(format!("the request body could not be read: {e}"))
        })?;
        if body.len() + chunk.len() > PROGET_BODY_LIMIT {
            return Err(domain::Error::Invalid(format!(
                "the request body exceeds {PROGET_BODY_LIMIT} bytes"
            ))
            .into());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The text fields of a `multipart/form-data` body, as a JSON object.
async fn multipart_fields(
    req: &HttpRequest,
    payload: web::Payload,
) -> Result<serde_json::Value, String> {
    use futures_util::StreamExt as _;
    let mut form = actix_multipart::Multipart::new(req.headers(), payload);
    let mut fields = serde_json::Map::new();
    let mut total = 0;
    while let Some(field) = form.next().await {
        let mut field = field.map_err(|e| e.to_string())?;
        let name = field
            .content_disposition()
            .and_then(|d| d.get_name())
            .unwrap_or_default()
            .to_owned();
        let mut value = Vec::new();
        while let Some(chunk) = field.next().await {
            let chunk = chunk.map_err(|e| e.to_string())?;
            total += chunk.len();
            if total > PROGET_BODY_LIMIT {
                return Err(format!("the form exceeds {PROGET_BODY_LIMIT} bytes"));
            }
            value.extend_from_slice(&chunk);
        }
        let value = String::from_utf8(value).map_err(|_| format!("field {name:?} is not text"))?;
        fields.insert(name, serde_json::Value::String(value));
    }
    Ok(serde_json::Value::Object(fields))
}

/// Frees a deleted version's number in a versioned feed: removes its tombstone (feed admin).
/// A live tag is refused with 409 unless the body confirms it by name. Recorded in the tag
/// history.
#[utoipa::path(post, path = "/api/v1/repositories/{repo}/tags/{tag}/purge", params(("repo" = String, Path), ("tag" = String, Path)),
    request_body(content = Option<PurgeRequest>),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn purge(
    Api(access): Api,
    path: web::Path<(String, String)>,
    body: Option<web::Json<PurgeRequest>>,
) -> Result<HttpResponse, ApiError> {
    let (repo, tag) = path.into_inner();
    let confirm = body.and_then(|b| b.into_inner().confirm);
    run(move || {
        let repo: Repository = repo.parse()?;
        let tag: Tag = tag.parse()?;
        access
            .feed::<FeedAdmin>(repo.feed())?
            .purge(&repo, &tag, confirm.as_deref())
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Deletes a tag (delete right): as `DELETE /v2/{repo}/manifests/{tag}`, with this API's
/// errors. In a versioned feed a deleted version keeps its number as a tombstone (purge
/// frees it); a virtual tag follows the versions again. Recorded in the tag history.
#[utoipa::path(delete, path = "/api/v1/repositories/{repo}/tags/{tag}", params(("repo" = String, Path), ("tag" = String, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_tag(
    Api(access): Api,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (repo, tag) = path.into_inner();
    run(move || {
        let repo: Repository = repo.parse()?;
        let tag: Tag = tag.parse()?;
        access
            .feed::<Delete>(repo.feed())?
            .delete_manifest(&repo, &crate::model::Reference::Tag(tag))
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Points a pinned version of a connector feed at the digest its upstream serves now, after
/// drift (feed admin); answers the digest. Recorded in the tag history (method `accept`).
#[utoipa::path(post, path = "/api/v1/repositories/{repo}/tags/{tag}/accept-upstream", params(("repo" = String, Path), ("tag" = String, Path)),
    responses((status = 200, body = AcceptedUpstream), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn accept_upstream(
    Api(access): Api,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (repo, tag) = path.into_inner();
    let digest = run(move || {
        let repo: Repository = repo.parse()?;
        let tag: Tag = tag.parse()?;
        access
            .feed::<FeedAdmin>(repo.feed())?
            .upstream()
            .accept_upstream(&repo, &tag)
    })
    .await?;
    Ok(HttpResponse::Ok().json(AcceptedUpstream { digest }))
}

/// The digest a pinned version now points at.
#[derive(Debug, Serialize, ToSchema)]
pub struct AcceptedUpstream {
    pub digest: String,
}

/// Which page of a repository's tags.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct TagsQuery {
    /// Continue this list only: `versions`, `tags` or `tombstones`.
    pub list: Option<TagList>,
    /// With `list`: continue after this tag (its `next` value).
    pub last: Option<String>,
    /// How many entries per list (default 100, at most 1000).
    pub n: Option<usize>,
    /// Only tags containing this text (case-insensitive).
    pub q: Option<String>,
}

/// A repository's tags grouped by kind (pull), paged: versions by SemVer precedence, highest
/// first; other tags by name; tombstones by name. Without `list`, the first page of each
/// list; `next` (and a `Link` header per list, `title` naming it) says where each continues.
#[utoipa::path(get, path = "/api/v1/repositories/{repo}/tags", params(("repo" = String, Path), TagsQuery),
    responses((status = 200, body = TagGroups), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn repository_tags(
    Api(access): Api,
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<TagsQuery>,
) -> Result<HttpResponse, ApiError> {
    let repo = path.into_inner();
    let TagsQuery { list, last, n, q } = query.into_inner();
    if last.is_some() && list.is_none() {
        return Err(domain::Error::Invalid(
            "last= needs list= (versions, tags or tombstones)".into(),
        )
        .into());
    }
    let groups = run(move || {
        let repo: Repository = repo.parse()?;
        let q = domain::TagQuery {
            list: list.map(Into::into),
            last,
            n,
            contains: q,
        };
        access.feed::<Pull>(repo.feed())?.tag_groups(&repo, &q)
    })
    .await?;
    let mut res = HttpResponse::Ok();
    for (title, next) in [
        ("versions", &groups.next.versions),
        ("tags", &groups.next.tags),
        ("tombstones", &groups.next.tombstones),
    ] {
        if let Some(last) = next {
            res.append_header(("Link", next_link(&req, last, Some(title))));
        }
    }
    Ok(res.json(TagGroups::from(groups)))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    /// Only this tag.
    pub tag: Option<String>,
    /// With `tag`: which digest the tag pointed to at this RFC 3339 time.
    pub at: Option<String>,
    /// Only changes made this way: `push`, `delete`, `promote`, `retag`, `purge`, `virtual`, …
    pub method: Option<String>,
    /// `oldest` (the default) or `newest` first.
    pub order: Option<String>,
    /// Continue after this change (its `seq`).
    pub last: Option<u64>,
    /// How many changes (default 100, at most 1000).
    pub n: Option<usize>,
}

/// Every change of every tag of a repository (or of one tag, or of one kind), paged, oldest
/// first unless `order=newest`; with `tag` and `at`, the digest the tag pointed to at that
/// time (pull).
#[utoipa::path(get, path = "/api/v1/repositories/{repo}/history", params(("repo" = String, Path), HistoryQuery),
    responses((status = 200, body = [HistoryEntry]), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn history(
    Api(access): Api,
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<HistoryQuery>,
) -> Result<HttpResponse, ApiError> {
    let repo = path.into_inner();
    let HistoryQuery {
        tag,
        at,
        method,
        order,
        last,
        n,
    } = query.into_inner();
    let newest_first = match order.as_deref() {
        None | Some("oldest") => false,
        Some("newest") => true,
        Some(other) => {
            return Err(domain::Error::Invalid(format!(
                "order: {other:?} is neither oldest nor newest"
            ))
            .into());
        }
    };
    let (body, next) = run(move || {
        let repo: Repository = repo.parse()?;
        let feed = access.feed::<Pull>(repo.feed())?;
        match (tag, at) {
            (Some(tag), Some(at)) => {
                let ms = crate::model::instant::parse(&at, 0, false)
                    .map_err(|e| domain::Error::Invalid(format!("at: {e}")))?;
                let state = feed.tag_state_at(&repo, &tag, ms)?;
                let (digest, version) = state.map_or((None, None), |s| (Some(s.digest), s.version));
                Ok((
                    serde_json::to_value(TagAt {
                        tag,
                        at,
                        digest,
                        version,
                    })
                    .unwrap_or_default(),
                    None,
                ))
            }
            (None, Some(_)) => Err(domain::Error::Invalid("at= needs tag=".into())),
            (tag, None) => {
                let q = domain::HistoryQuery {
                    tag,
                    method,
                    last,
                    newest_first,
                    n,
                };
                let (entries, next) = feed.history(&repo, &q)?;
                let entries: Vec<HistoryEntry> = super::dto::all(entries);
                Ok((serde_json::to_value(entries).unwrap_or_default(), next))
            }
        }
    })
    .await?;
    let mut res = HttpResponse::Ok();
    if let Some(seq) = next {
        res.insert_header(("Link", next_link(&req, &seq.to_string(), None)));
    }
    Ok(res.json(body))
}
