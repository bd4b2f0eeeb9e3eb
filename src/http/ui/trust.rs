//! The trust page (administrators): which public keys signatures are verified with, and
//! which Sigstore trusted roots keyless signatures verify under; adding one (a PEM, a
//! `trusted_root.json`), removing one.

use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::login::CsrfOnly;
use super::session::Viewer;
use super::{Nav, UiError, redirect, render, run};
use crate::domain;
use crate::domain::access::TrustedKeys;

#[derive(Template)]
#[template(path = "trust.html")]
struct TrustPage {
    title: &'static str,
    nav: Option<Nav>,
    keys: Vec<crate::domain::trust::KeyInfo>,
    roots: Vec<crate::domain::trust::RootInfo>,
    stores: Vec<crate::domain::trust::StoreInfo>,
}

// GET /ui/trust — the trusted keys.
pub async fn trust(v: Viewer) -> Result<HttpResponse, UiError> {
    let access = v.access.clone();
    let (keys, roots, stores) = run(move || {
        let admin = access.admin()?;
        let t = admin.trust();
        Ok((t.list()?, t.roots()?, t.stores()?))
    })
    .await?;
    render(&TrustPage {
        title: "Trust",
        nav: Nav::of(&v),
        keys,
        roots,
        stores,
    })
}

/// Runs `op` on the administrator's trust material after the CSRF check, then shows the
/// Trust page with `done` said.
async fn change(
    v: &Viewer,
    csrf: &str,
    done: &str,
    op: impl FnOnce(&TrustedKeys<'_>) -> Result<(), domain::Error> + Send + 'static,
) -> Result<HttpResponse, UiError> {
    v.check_csrf(csrf)?;
    let access = v.access.clone();
    run(move || Ok(op(&access.admin()?.trust())?)).await?;
    Ok(redirect(&format!("/ui/trust?done={done}")))
}

/// A name and the material (a PEM, a `trusted_root.json`) to trust under it.
#[derive(Deserialize)]
pub struct NewMaterialForm {
    #[serde(default)]
    csrf: String,
    name: String,
    #[serde(alias = "pem", alias = "json")]
    material: String,
}

// POST /ui/trust — trusts a public key.
pub async fn add_key(v: Viewer, form: web::Form<NewMaterialForm>) -> Result<HttpResponse, UiError> {
    let f = form.into_inner();
    change(&v, &f.csrf, "key-trusted", move |t| {
        t.add(f.name.trim(), &f.material).map(drop)
    })
    .await
}

// POST /ui/trust/roots — trusts a Sigstore trusted root.
pub async fn add_root(
    v: Viewer,
    form: web::Form<NewMaterialForm>,
) -> Result<HttpResponse, UiError> {
    let f = form.into_inner();
    change(&v, &f.csrf, "root-trusted", move |t| {
        t.add_root(f.name.trim(), &f.material).map(drop)
    })
    .await
}

// POST /ui/trust/stores — trusts a Notation trust store.
pub async fn add_store(
    v: Viewer,
    form: web::Form<NewMaterialForm>,
) -> Result<HttpResponse, UiError> {
    let f = form.into_inner();
    change(&v, &f.csrf, "store-trusted", move |t| {
        t.add_store(f.name.trim(), &f.material).map(drop)
    })
    .await
}

// POST /ui/trust/{name}/remove — stops trusting a key.
pub async fn remove_key(
    v: Viewer,
    path: web::Path<String>,
    form: web::Form<CsrfOnly>,
) -> Result<HttpResponse, UiError> {
    let name = path.into_inner();
    change(&v, &form.csrf, "key-removed", move |t| t.remove(&name)).await
}

// POST /ui/trust/roots/{name}/remove — stops trusting a root.
pub async fn remove_root(
    v: Viewer,
    path: web::Path<String>,
    form: web::Form<CsrfOnly>,
) -> Result<HttpResponse, UiError> {
    let name = path.into_inner();
    change(&v, &form.csrf, "root-removed", move |t| {
        t.remove_root(&name)
    })
    .await
}

// POST /ui/trust/stores/{name}/remove — stops trusting a store.
pub async fn remove_store(
    v: Viewer,
    path: web::Path<String>,
    form: web::Form<CsrfOnly>,
) -> Result<HttpResponse, UiError> {
    let name = path.into_inner();
    change(&v, &form.csrf, "store-removed", move |t| {
        t.remove_store(&name)
    })
    .await
}
