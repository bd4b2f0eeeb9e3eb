//! HTTP: thin handlers that parse, call the domain, and render.
//!
//! `oci` serves the Distribution API under `/v2/`; `api` the management API under `/api/v1/`;
//! `ui` the web admin UI under `/ui/`; `ops` serves health checks. Handlers never
//! open a database transaction or touch the filesystem: they call `domain`.

pub mod access_log;
pub mod api;
pub mod caller;
pub mod oci;
pub mod ops;
pub mod read_only;
pub mod ui;

use std::sync::Arc;

use actix_web::web;

use crate::domain::Registry;
use crate::domain::auth::Auth;
use crate::domain::maintenance::gc::GcOptions;
pub use caller::Realm;

/// Headers on every `/v2` and `/api` response: what a client uploaded is data, never a page
/// the browser runs or sniffs into one, even if it reaches the UI's origin.
#[must_use]
pub fn inert_content() -> actix_web::middleware::DefaultHeaders {
    actix_web::middleware::DefaultHeaders::new()
        .add(("X-Content-Type-Options", "nosniff"))
        .add(("Content-Security-Policy", "default-src 'none'; sandbox"))
}

/// Mounts every HTTP area on `cfg`; the one place routes are assembled.
pub fn configure(
    registry: Arc<Registry>,
    auth: Arc<Auth>,
    realm: Realm,
    gc: GcOptions,
) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| {
        cfg.app_data(web::Data::from(registry))
            .app_data(web::Data::new(gc))
            .app_data(web::Data::from(auth))
            .app_data(web::Data::new(realm))
            .configure(ops::configure)
            .configure(api::configure)
            .configure(ui::configure)
            .configure(oci::configure);
    }
}
