//! The page that shows a new secret (a password, an API key, a webhook's signing secret)
//! once.

use actix_web::HttpResponse;
use askama::Template;

use super::session::Viewer;
use super::{Nav, UiError, render};

#[derive(Template)]
#[template(path = "secret.html")]
struct SecretPage {
    title: &'static str,
    nav: Option<Nav>,
    what: String,
    secret: String,
    /// The page to go back to, and what it is.
    back: String,
    back_label: &'static str,
}

pub(super) fn show_secret(
    v: &Viewer,
    what: String,
    secret: String,
) -> Result<HttpResponse, UiError> {
    let back = if v.principal.is_admin() {
        "/ui/users"
    } else {
        "/ui/keys"
    };
    show_secret_then(v, what, secret, back.to_owned(), "Back to the API keys")
}

/// The secret page, linking back to `back` (`label`).
pub(super) fn show_secret_then(
    v: &Viewer,
    what: String,
    secret: String,
    back: String,
    back_label: &'static str,
) -> Result<HttpResponse, UiError> {
    render(&SecretPage {
        title: "Shown once",
        nav: Nav::of(v),
        what,
        secret,
        back,
        back_label,
    })
}
