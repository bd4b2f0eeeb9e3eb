//! Tag list, catalog and referrers.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::json;

use super::auth::{Authorized, Caller, Pull, with_auth};
use super::extract::digest;
use super::{OciError, Reg, blocking};
use crate::domain::Page;
use crate::model::manifest::OCI_INDEX;

#[derive(Deserialize)]
pub struct PageQuery {
    n: Option<usize>,
    last: Option<String>,
}

#[derive(Deserialize)]
pub struct ReferrersQuery {
    #[serde(rename = "artifactType")]
    artifact_type: Option<String>,
}

fn paged(
    path: &str,
    key: &str,
    extra: serde_json::Value,
    page: Page,
    n: Option<usize>,
) -> HttpResponse {
    let mut res = HttpResponse::Ok();
    if page.more
        && let Some(last) = page.items.last()
    {
        let n = n.unwrap_or(page.items.len());
        res.insert_header(("Link", format!("<{path}?n={n}&last={last}>; rel=\"next\"")));
    }
    let mut body = extra;
    body[key] = serde_json::Value::from(page.items);
    res.json(body)
}

// GET /v2/<name>/tags/list?n=&last= — list tags (spec: "Listing tags").
pub async fn tags(
    reg: Reg,
    Authorized { repo, .. }: Authorized<Pull>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, OciError> {
    let PageQuery { n, last } = query.into_inner();
    let rp = repo.clone();
    let page = blocking(move || reg.history().tags(&rp, n, last.as_deref())).await?;
    Ok(paged(
        &format!("/v2/{repo}/tags/list"),
        "tags",
        json!({"name": repo.as_str()}),
        page,
        n,
    ))
}

// GET /v2/_catalog?n=&last= — list repositories.
pub async fn catalog(
    reg: Reg,
    Caller(principal): Caller,
    query: web::Query<PageQuery>,
    req: HttpRequest,
) -> Result<HttpResponse, OciError> {
    let PageQuery { n, last } = query.into_inner();
    // Only repositories of feeds the caller may pull are listed.
    let visible = with_auth(&req, move |auth| auth.pullable_feeds(principal.as_ref())).await?;
    let page = blocking(move || {
        reg.history()
            .catalog(n, last.as_deref(), |feed| visible.contains(feed))
    })
    .await?;
    Ok(paged("/v2/_catalog", "repositories", json!({}), page, n))
}

// GET /v2/<name>/referrers/<digest>?artifactType= — manifests whose subject is <digest>
// (spec: "Listing referrers").
pub async fn referrers(
    reg: Reg,
    Authorized { repo, .. }: Authorized<Pull>,
    path: web::Path<(String, String)>,
    query: web::Query<ReferrersQuery>,
) -> Result<HttpResponse, OciError> {
    let subject = digest(&path.1)?;
    let filter = query.into_inner().artifact_type;
    let f = filter.clone();
    let found = blocking(move || reg.referrers(&repo, &subject, f.as_deref())).await?;
    let manifests: Vec<_> = found
        .into_iter()
        .map(|r| {
            let mut d = json!({"mediaType": r.media_type, "digest": r.digest, "size": r.size});
            if let Some(t) = r.artifact_type {
                d["artifactType"] = json!(t);
            }
            if !r.annotations.is_empty() {
                d["annotations"] = json!(r.annotations);
            }
            d
        })
        .collect();
    let mut res = HttpResponse::Ok();
    res.content_type(OCI_INDEX);
    if filter.is_some() {
        res.insert_header(("OCI-Filters-Applied", "artifactType"));
    }
    Ok(res.json(json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests})))
}
