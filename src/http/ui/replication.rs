//! The replication page (administrators): rules with their lag, last run, last error and
//! conflicts, and the forms that add, run and delete them.

use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::session::Viewer;
use super::{Nav, UiError, redirect, render, run};
use crate::domain::replication::{NewRule, RuleInfo};

#[derive(Template)]
#[template(path = "replication.html")]
struct ReplicationPage {
    title: &'static str,
    nav: Option<Nav>,
    rules: Vec<RuleInfo>,
    feeds: Vec<String>,
}

// GET /ui/replication — every rule with its status (administrators).
pub async fn page(v: Viewer) -> Result<HttpResponse, UiError> {
    let access = v.access.clone();
    let (rules, feeds) = run(move || {
        let feeds = access.admin()?.feeds()?;
        Ok((
            access.replication_rules(None)?,
            feeds.into_iter().map(|(n, _)| n).collect(),
        ))
    })
    .await?;
    render(&ReplicationPage {
        title: "Replication",
        nav: Nav::of(&v),
        rules,
        feeds,
    })
}

/// The new-rule form.
#[derive(Debug, Deserialize)]
pub struct NewRuleForm {
    #[serde(default)]
    csrf: String,
    name: String,
    feed: String,
    url: String,
    #[serde(default)]
    prefix: String,
    #[serde(default)]
    filters: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    interval: String,
    deletions: Option<String>,
}

// POST /ui/replication — adds a rule (administrators).
pub async fn create(v: Viewer, form: web::Form<NewRuleForm>) -> Result<HttpResponse, UiError> {
    v.check_csrf(&form.csrf)?;
    let form = form.into_inner();
    let interval_seconds = match form.interval.trim() {
        "" => 0,
        t => t
            .parse()
            .map_err(|_| UiError::bad_request(format!("{t:?} is not a number of seconds")))?,
    };
    let some = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
    let new = NewRule {
        name: form.name.trim().to_owned(),
        feed: form.feed.trim().to_owned(),
        filters: form
            .filters
            .split(',')
            .map(str::trim)
            .filter(|f| !f.is_empty())
            .map(str::to_owned)
            .collect(),
        url: form.url.trim().to_owned(),
        prefix: some(&form.prefix),
        username: some(&form.username),
        password: Some(form.password).filter(|p| !p.is_empty()),
        on_push: Some(true),
        interval_seconds,
        deletions: form.deletions.is_some(),
    };
    let access = v.access.clone();
    run(move || {
        access.admin()?;
        Ok(access.create_replication_rule(&new)?)
    })
    .await?;
    Ok(redirect("/ui/replication?done=replication-added"))
}

#[derive(Debug, Deserialize)]
pub struct RuleForm {
    #[serde(default)]
    csrf: String,
}

// POST /ui/replication/{name}/run — asks for a full run at the next tick (administrators).
pub async fn run_now(
    v: Viewer,
    path: web::Path<String>,
    form: web::Form<RuleForm>,
) -> Result<HttpResponse, UiError> {
    v.check_csrf(&form.csrf)?;
    let access = v.access.clone();
    run(move || {
        access.admin()?;
        Ok(access.replication_rule(&path)?.request_run()?)
    })
    .await?;
    Ok(redirect("/ui/replication?done=replication-run"))
}

// POST /ui/replication/{name}/delete — deletes a rule (administrators).
pub async fn delete(
    v: Viewer,
    path: web::Path<String>,
    form: web::Form<RuleForm>,
) -> Result<HttpResponse, UiError> {
    v.check_csrf(&form.csrf)?;
    let access = v.access.clone();
    run(move || {
        access.admin()?;
        Ok(access.replication_rule(&path)?.delete()?)
    })
    .await?;
    Ok(redirect("/ui/replication?done=replication-deleted"))
}
