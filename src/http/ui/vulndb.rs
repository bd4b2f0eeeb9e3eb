//! The vulnerability database page (administrators): the OSV files imported, and a form to
//! import one (a record, an array of records, or a zip as osv.dev exports them).

use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use super::session::Viewer;
use super::{Nav, UiError, redirect, render, run};
use crate::domain;

/// One imported file, as the page lists it.
pub struct SourceRow {
    pub name: String,
    pub records: usize,
    pub withdrawn: usize,
    pub ecosystems: String,
    pub imported: String,
}

#[derive(Template)]
#[template(path = "vulndb.html")]
struct VulnDbPage {
    title: &'static str,
    nav: Option<Nav>,
    epoch: u64,
    sources: Vec<SourceRow>,
}

/// The largest file the form takes (as the API does).
const LIMIT: usize = 512 << 20;

// GET /ui/vulndb — what is imported.
pub async fn page(v: Viewer) -> Result<HttpResponse, UiError> {
    let access = v.access.clone();
    let (epoch, sources) = run(move || Ok(access.admin()?.vulndb().sources()?)).await?;
    render(&VulnDbPage {
        title: "Vulnerability database",
        nav: Nav::of(&v),
        epoch,
        sources: sources
            .into_iter()
            .map(|s| SourceRow {
                name: s.name,
                records: s.records,
                withdrawn: s.withdrawn,
                ecosystems: s.ecosystems.join(", "),
                imported: format!(
                    "{} by {}",
                    domain::audit::rfc3339(s.imported_ms),
                    s.imported_by
                ),
            })
            .collect(),
    })
}

// POST /ui/vulndb — imports the uploaded file (multipart: `csrf` and `file`).
pub async fn import(
    v: Viewer,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, UiError> {
    use futures_util::StreamExt as _;
    // Only an administrator's upload is read at all.
    let access = v.access.clone();
    run(move || Ok(access.admin().map(drop)?)).await?;
    let mut form = actix_multipart::Multipart::new(req.headers(), payload);
    let (mut csrf, mut name, mut file) = (String::new(), String::new(), Vec::new());
    while let Some(field) = form.next().await {
        let mut field =
            field.map_err(|e| UiError::bad_request(format!("the form could not be read: {e}")))?;
        let (field_name, file_name) = field.content_disposition().map_or_else(
            || (String::new(), None),
            |d| {
                (
                    d.get_name().unwrap_or_default().to_owned(),
                    d.get_filename().map(str::to_owned),
                )
            },
        );
        let mut value = Vec::new();
        while let Some(chunk) = field.next().await {
            let chunk = chunk
                .map_err(|e| UiError::bad_request(format!("the form could not be read: {e}")))?;
            if value.len() + chunk.len() > LIMIT {
                return Err(UiError::bad_request(format!(
                    "the file is larger than {} MiB",
                    LIMIT >> 20
                )));
            }
            value.extend_from_slice(&chunk);
        }
        match field_name.as_str() {
            "csrf" => csrf = String::from_utf8_lossy(&value).into_owned(),
            "file" => {
                name = file_name.unwrap_or_else(|| "upload".to_owned());
                file = value;
            }
            _ => {}
        }
    }
    v.check_csrf(&csrf)?;
    if file.is_empty() {
        return Err(UiError::bad_request(
            "choose an OSV file to import".to_owned(),
        ));
    }
    let access = v.access.clone();
    run(move || {
        Ok(access
            .admin()?
            .vulndb()
            .import(&name, std::io::Cursor::new(file))?)
    })
    .await?;
    Ok(redirect("/ui/vulndb?done=vulndb-imported"))
}
