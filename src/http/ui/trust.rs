//! The trusted keys page (administrators): which public keys signatures are verified with,
//! adding one from its PEM, removing one.

use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::login::CsrfOnly;
use super::session::Viewer;
use super::{Nav, UiError, redirect, render, run};

#[derive(Template)]
#[template(path = "trust.html")]
struct TrustPage {
    title: &'static str,
    nav: Option<Nav>,
    keys: Vec<crate::domain::trust::KeyInfo>,
}

// GET /ui/trust — the trusted keys.
pub async fn trust(v: Viewer) -> Result<HttpResponse, UiError> {
    let access = v.access.clone();
    let keys = run(move || Ok(access.admin()?.trust().list()?)).await?;
    render(&TrustPage {
        title: "Trusted keys",
        nav: Nav::of(&v),
        keys,
    })
}

#[derive(Deserialize)]
pub struct NewKeyForm {
    #[serde(default)]
    csrf: String,
    name: String,
    pem: String,
}

// POST /ui/trust — trusts a public key.
pub async fn add_key(v: Viewer, form: web::Form<NewKeyForm>) -> Result<HttpResponse, UiError> {
    v.check_csrf(&form.csrf)?;
    let f = form.into_inner();
    let access = v.access.clone();
    run(move || Ok(access.admin()?.trust().add(f.name.trim(), &f.pem)?)).await?;
    Ok(redirect("/ui/trust?done=key-trusted"))
}

// POST /ui/trust/{name}/remove — stops trusting a key.
pub async fn remove_key(
    v: Viewer,
    path: web::Path<String>,
    form: web::Form<CsrfOnly>,
) -> Result<HttpResponse, UiError> {
    v.check_csrf(&form.csrf)?;
    let name = path.into_inner();
    let access = v.access.clone();
    run(move || Ok(access.admin()?.trust().remove(&name)?)).await?;
    Ok(redirect("/ui/trust?done=key-removed"))
}
