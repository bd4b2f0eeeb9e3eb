//! The web admin UI under `/ui/`: server-rendered pages (askama), one embedded stylesheet and
//! script (rust-embed), sessions in a cookie, a CSRF token in every form. Every page asks the
//! domain what the viewer may do; the domain refuses anything else anyway.

mod account;
mod events;
mod feed_settings;
mod feeds;
mod history;
mod links;
mod login;
mod manifests;
mod oidc;
mod replication;
mod repositories;
mod robots;
mod search;
mod secret;
mod session;
mod trust;
mod users;
mod vulndb;
mod vulns;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, ResponseError, middleware, web};
use askama::Template;
use rust_embed::RustEmbed;

use session::Viewer;

use crate::domain;

#[derive(RustEmbed)]
#[folder = "assets/"]
struct Assets;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(to_ui));
    // Browsers ask for it on every page whatever the page says.
    cfg.route("/favicon.ico", web::get().to(favicon));
    cfg.service(
        web::scope("/ui")
            .wrap(
                middleware::DefaultHeaders::new()
                    .add((
                        "Content-Security-Policy",
                        "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'",
                    ))
                    .add(("X-Content-Type-Options", "nosniff"))
                    .add(("Referrer-Policy", "same-origin"))
                    .add(("X-Frame-Options", "DENY")),
            )
            .app_data(web::FormConfig::default().limit(64 * 1024).error_handler(|e, _| {
                UiError::bad_request(format!("the form could not be read: {e}")).into()
            }))
            .app_data(web::QueryConfig::default().error_handler(|e, _| {
                UiError::bad_request(format!("the address is not valid: {e}")).into()
            }))
            .route("/static/{file}", web::get().to(asset))
            .route("/login", web::get().to(login::login_page))
            .route("/login", web::post().to(login::login))
            .route("/logout", web::post().to(login::logout))
            .route("/maintenance", web::post().to(feeds::maintenance))
            .route("/oidc/start", web::get().to(oidc::start))
            .route("/oidc/callback", web::get().to(oidc::callback))
            .route("/", web::get().to(feeds::dashboard))
            .route("", web::get().to(feeds::dashboard))
            .route("/feeds", web::post().to(feeds::create_feed))
            .route("/feeds/{feed}", web::get().to(feeds::feed))
            .route("/feeds/{feed}/settings", web::get().to(feed_settings::settings_page))
            .route("/feeds/{feed}/settings", web::post().to(feed_settings::save_settings))
            .route("/feeds/{feed}/quota", web::post().to(feeds::set_quota))
            .route("/roles", web::post().to(feed_settings::grant_role))
            .route("/repository", web::get().to(repositories::repository))
            .route("/manifest", web::get().to(manifests::manifest))
            .route("/history", web::get().to(history::history))
            .route("/check-tag", web::get().to(repositories::check_tag))
            .route("/promote", web::post().to(repositories::promote))
            .route("/tags/delete", web::post().to(repositories::delete_tag))
            .route("/tags/purge", web::post().to(repositories::purge_tag))
            .route("/audit", web::get().to(events::audit))
            .route("/audit.jsonl", web::get().to(events::export))
            .route("/webhooks", web::get().to(events::webhooks))
            .route("/webhooks", web::post().to(events::create))
            .route("/webhooks/{id}/delete", web::post().to(events::delete))
            .route("/webhooks/{id}/redeliver", web::post().to(events::redeliver))
            .route("/replication", web::get().to(replication::page))
            .route("/replication", web::post().to(replication::create))
            .route("/replication/{name}/run", web::post().to(replication::run_now))
            .route("/replication/{name}/delete", web::post().to(replication::delete))
            .route("/vulndb", web::get().to(vulndb::page))
            .route("/vulndb", web::post().to(vulndb::import))
            .route("/trust", web::get().to(trust::trust))
            .route("/trust", web::post().to(trust::add_key))
            .route("/trust/{name}/remove", web::post().to(trust::remove_key))
            .route("/trust/roots", web::post().to(trust::add_root))
            .route("/trust/roots/{name}/remove", web::post().to(trust::remove_root))
            .route("/trust/stores", web::post().to(trust::add_store))
            .route("/trust/stores/{name}/remove", web::post().to(trust::remove_store))
            .route("/users", web::get().to(users::users))
            .route("/users", web::post().to(users::create_user))
            .route("/users/{name}/state", web::post().to(users::user_state))
            .route("/users/{name}/password", web::post().to(users::reset_password))
            .route("/password", web::get().to(account::password_page))
            .route("/password", web::post().to(account::change_password))
            .route("/keys", web::get().to(users::keys))
            .route("/keys", web::post().to(users::create_key))
            .route("/keys/{id}/revoke", web::post().to(users::revoke_key))
            .route("/search", web::get().to(search::search))
            .route("/robots", web::get().to(robots::robots))
            .route("/robots", web::post().to(robots::create))
            .route("/robots/action", web::post().to(robots::action))
            .default_service(web::to(|| async {
                UiError::not_found("There is no such page.".into()).error_response()
            })),
    );
}

// GET / — people start at the UI; registry clients use /v2/.
async fn to_ui() -> HttpResponse {
    redirect("/ui/")
}

// GET /favicon.ico — the embedded icon.
async fn favicon() -> HttpResponse {
    asset(web::Path::from("favicon.svg".to_owned())).await
}

// GET /ui/static/{file} — the embedded stylesheet, script and icon.
async fn asset(path: web::Path<String>) -> HttpResponse {
    let name = path.into_inner();
    match Assets::get(&name) {
        Some(file) => {
            let kind = match name.rsplit('.').next() {
                Some("css") => "text/css; charset=utf-8",
                Some("js") => "text/javascript; charset=utf-8",
                Some("svg") => "image/svg+xml",
                _ => "application/octet-stream",
            };
            HttpResponse::Ok()
                .content_type(kind)
                .insert_header(("Cache-Control", "public, max-age=3600"))
                .body(file.data.into_owned())
        }
        None => UiError::not_found("There is no such file.".into()).error_response(),
    }
}

fn redirect(to: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header(("Location", to))
        .finish()
}

/// The navigation bar of a logged-in page.
pub struct Nav {
    pub user: String,
    pub admin: bool,
    pub csrf: String,
    /// The one-line confirmation of what the last action did (from `done=`).
    pub notice: Option<&'static str>,
    /// While read-only mode is on: since when, who, and why.
    pub read_only: Option<String>,
}

/// What a `done=CODE` after an action says. Only these fixed sentences are shown: nothing
/// from the query reaches the page.
fn notice_of(code: &str) -> Option<&'static str> {
    Some(match code {
        "promoted" => "Promoted: the target tag now points at the image.",
        "deleted" => {
            "Deleted. A deleted version keeps its number until an administrator purges it."
        }
        "purged" => "Purged: the version number is free again.",
        "saved" => "Settings saved.",
        "created" => "Feed created. Set its versioning and roles below.",
        "role" => "Role changed.",
        "user" => "User saved.",
        "password" => "Password changed. Your other sessions have ended.",
        "revoked" => "API key revoked.",
        "webhook-deleted" => "Webhook deleted.",
        "replication-added" => {
            "Replication rule added: what the feed holds goes to the target within seconds, then every push as it happens."
        }
        "replication-run" => {
            "Queued: the rule runs in full within a second; its report appears below."
        }
        "replication-deleted" => "Replication rule deleted. The target keeps what it has.",
        "key-trusted" => "Key trusted: feeds may now require its signatures.",
        "vulndb-imported" => "Imported: every image's report now reads these records.",
        "root-trusted" => {
            "Trusted root added: feeds may now require keyless signatures by identities it certifies."
        }
        "root-removed" => {
            "Trusted root removed: keyless signatures only it verified verify no more."
        }
        "store-trusted" => {
            "Trust store added: feeds may now require Notation signatures chaining to it."
        }
        "store-removed" => {
            "Trust store removed: Notation signatures only it verified verify no more."
        }
        "key-removed" => "Key removed: its signatures verify no more.",
        "read-only-on" => "Read-only mode is on: every node refuses writes until you turn it off.",
        "read-only-off" => "Read-only mode is off: writes are taken again.",
        "redeliver" => {
            "Queued: the event is sent again within a second; its delivery appears below."
        }
        _ => return None,
    })
}

impl Nav {
    /// The bar for `viewer`; pages hold it as an `Option` because error pages have none.
    #[allow(clippy::unnecessary_wraps)]
    fn of(viewer: &Viewer) -> Option<Self> {
        Some(Self {
            user: viewer.principal.user().to_owned(),
            admin: viewer.principal.is_admin(),
            csrf: viewer.csrf.clone(),
            notice: viewer.done.as_deref().and_then(notice_of),
            read_only: viewer.read_only.as_ref().map(|m| {
                let why = if m.reason.is_empty() {
                    String::new()
                } else {
                    format!(": {}", m.reason)
                };
                format!(
                    "Read-only since {} (turned on by {}){why}. Pulls and browsing work; pushes, deletions and changes are refused.",
                    crate::domain::audit::rfc3339(m.since_ms),
                    m.by
                )
            }),
        })
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    title: &'a str,
    nav: Option<Nav>,
    message: &'a str,
    hint: &'a str,
}

/// A page-rendering failure: a redirect, or an error page that says what to do.
#[derive(Debug)]
pub enum UiError {
    Redirect(String),
    Page {
        status: StatusCode,
        title: &'static str,
        message: String,
        hint: &'static str,
    },
}

impl UiError {
    fn page(status: StatusCode, title: &'static str, message: String, hint: &'static str) -> Self {
        Self::Page {
            status,
            title,
            message,
            hint,
        }
    }

    pub(super) fn not_found(message: String) -> Self {
        Self::page(
            StatusCode::NOT_FOUND,
            "Not found",
            message,
            "Check the address, or start again from the feeds page.",
        )
    }

    fn bad_request(message: String) -> Self {
        Self::page(
            StatusCode::BAD_REQUEST,
            "That did not work",
            message,
            "Go back, correct the form and send it again.",
        )
    }

    fn csrf() -> Self {
        Self::page(
            StatusCode::FORBIDDEN,
            "Form refused",
            "The form carried no valid security token: it is old, or it did not come from this site.".into(),
            "Reload the page and send the form again.",
        )
    }
}

impl std::fmt::Display for UiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Redirect(to) => write!(f, "redirect to {to}"),
            Self::Page { message, .. } => f.write_str(message),
        }
    }
}

impl From<domain::Error> for UiError {
    fn from(e: domain::Error) -> Self {
        use domain::Error as E;
        let message = e.to_string();
        match e {
            E::Unauthenticated | E::InvalidCredentials | E::TokenInvalid(_) => {
                Self::Redirect("/ui/login".into())
            }
            E::Denied(_) | E::InsufficientScope => Self::page(
                StatusCode::FORBIDDEN,
                "Not allowed",
                message,
                "Ask an administrator of the feed for the role this needs.",
            ),
            E::PolicyRefused(_) => Self::page(
                StatusCode::FORBIDDEN,
                "Refused by the feed's rules",
                message,
                "Promote the image from one of the feed's source feeds instead.",
            ),
            E::SignatureRefused(_) => Self::page(
                StatusCode::FORBIDDEN,
                "A signature is required",
                message,
                "Sign the image with a key the feed trusts, then try again.",
            ),
            E::FeedUnknown { .. }
            | E::RepositoryUnknown { .. }
            | E::ManifestUnknown { .. }
            | E::BlobUnknown { .. }
            | E::UploadUnknown { .. }
            | E::NotFound(_)
            | E::NoFeed { .. } => Self::not_found(message),
            E::FeedExists { .. } | E::Conflict(_) | E::VersionImmutable { .. } => Self::page(
                StatusCode::CONFLICT,
                "Conflict",
                message,
                "Go back and choose another name or version.",
            ),
            E::RateLimited { .. } => Self::page(
                StatusCode::TOO_MANY_REQUESTS,
                "Too many attempts",
                message,
                "Wait, then try again.",
            ),
            E::QuotaExceeded(_) => Self::page(
                StatusCode::FORBIDDEN,
                "Over the feed's quota",
                message,
                "Delete images or versions (GC gives the space back), or ask an administrator for a larger quota.",
            ),
            E::ReadOnly { .. } => Self::page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Read-only",
                message,
                "Pulls and browsing work; an administrator turns read-only mode off on the Feeds page.",
            ),
            E::StorageFull => Self::page(
                StatusCode::INSUFFICIENT_STORAGE,
                "Disk full",
                message,
                "Free space (garbage collection, retention rules) and try again.",
            ),
            E::Internal(_) | E::Io(_) | E::Meta(_) => {
                tracing::error!(error = %message, "internal error in the UI");
                Self::page(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something broke",
                    "semdock failed to handle the request.".into(),
                    "The server log says why.",
                )
            }
            // A request to correct and send again. Unavailable and InFlight are answered so
            // too, as they were when this arm was `_`: listing them keeps that visible.
            E::NameInvalid(_)
            | E::TagInvalid(_)
            | E::DigestInvalid(_)
            | E::DigestMismatch { .. }
            | E::UploadOutOfOrder { .. }
            | E::UploadBusy { .. }
            | E::ChunkLength { .. }
            | E::TooManyUploads { .. }
            | E::UploadTooLarge { .. }
            | E::ManifestTooLarge { .. }
            | E::ManifestInvalid(_)
            | E::ManifestBlobUnknown { .. }
            | E::TagNotAllowed { .. }
            | E::Invalid(_)
            | E::Unavailable(_)
            | E::InFlight(_) => Self::bad_request(message),
        }
    }
}

impl ResponseError for UiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Redirect(_) => StatusCode::SEE_OTHER,
            Self::Page { status, .. } => *status,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            Self::Redirect(to) => redirect(to),
            Self::Page {
                status,
                title,
                message,
                hint,
            } => {
                let page = ErrorPage {
                    title,
                    nav: None,
                    message,
                    hint,
                };
                HttpResponse::build(*status)
                    .content_type("text/html; charset=utf-8")
                    .body(page.render().unwrap_or_else(|_| message.clone()))
            }
        }
    }
}

/// Renders a page.
fn render(page: &impl Template) -> Result<HttpResponse, UiError> {
    let html = page
        .render()
        .map_err(|e| domain::Error::Internal(format!("template: {e}")))?;
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header(("Cache-Control", "no-store"))
        .body(html))
}

/// Runs blocking domain calls off the executor.
async fn run<T, F>(f: F) -> Result<T, UiError>
where
    F: FnOnce() -> Result<T, UiError> + Send + 'static,
    T: Send + 'static,
{
    web::block(f)
        .await
        .map_err(|e| UiError::from(domain::Error::Internal(e.to_string())))?
}

/// The host clients use, for the docker commands shown.
fn host(req: &HttpRequest) -> String {
    let base = crate::http::oci::auth::base_url(req);
    base.split_once("://")
        .map_or(base.clone(), |(_, h)| h.to_owned())
}

type AuthData = web::Data<crate::domain::auth::Auth>;

/// An RFC 3339 time cut to `len` characters (16: minutes, 19: seconds), `T` as a space.
fn clock(rfc3339: &str, len: usize) -> String {
    let time = rfc3339
        .trim_end_matches('Z')
        .get(..len)
        .unwrap_or(rfc3339)
        .replace('T', " ");
    // Stored times are UTC; say so, since the reader's clock may not be.
    format!("{time} UTC")
}

/// Seconds since the epoch as "2026-11-23 15:04 UTC".
fn when(secs: u64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs);
    clock(&humantime::format_rfc3339_seconds(t).to_string(), 16)
}

/// Bytes for people.
fn size(n: u64) -> String {
    #[allow(clippy::cast_precision_loss)]
    let f = n as f64;
    match n {
        0..1_024 => format!("{n} B"),
        1_024..1_048_576 => format!("{:.1} KiB", f / 1024.0),
        1_048_576..1_073_741_824 => format!("{:.1} MiB", f / 1_048_576.0),
        _ => format!("{:.2} GiB", f / 1_073_741_824.0),
    }
}

/// `sha256:abcdef012345` — enough to tell digests apart on a page.
fn short(digest: &str) -> String {
    digest.get(..19).unwrap_or(digest).to_owned()
}
