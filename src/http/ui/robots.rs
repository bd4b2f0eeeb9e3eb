//! `/ui/robots`: robot accounts, for a feed's administrators (`?feed=`) and the registry's.

use std::collections::BTreeMap;

use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::secret::show_secret_then;
use super::session::Viewer;
use super::{Nav, UiError, redirect, render, run};
use crate::domain::auth::{RobotChange, RobotInfo};

struct RobotRow {
    name: String,
    description: String,
    roles: String,
    last_used: String,
    expires: String,
    disabled: bool,
}

impl From<RobotInfo> for RobotRow {
    fn from(r: RobotInfo) -> Self {
        let when = |t: Option<u64>, none: &str| {
            t.map_or_else(
                || none.to_owned(),
                |t| crate::domain::audit::rfc3339(t.saturating_mul(1000)),
            )
        };
        let used = match (&r.last_address, r.last_used) {
            (Some(from), Some(_)) => format!("{} from {from}", when(r.last_used, "never")),
            _ => "never".to_owned(),
        };
        Self {
            roles: r
                .roles
                .iter()
                .map(|(f, role)| format!("{f}={role}"))
                .collect::<Vec<_>>()
                .join(", "),
            name: r.name,
            description: r.description,
            last_used: used,
            expires: when(r.expires, "never"),
            disabled: r.disabled,
        }
    }
}

#[derive(Template)]
#[template(path = "robots.html")]
struct RobotsPage {
    title: &'static str,
    nav: Option<Nav>,
    feed: Option<String>,
    robots: Vec<RobotRow>,
}

#[derive(Deserialize)]
pub struct FeedQuery {
    feed: Option<String>,
}

// GET /ui/robots[?feed=F] — the robots of a feed (its administrators) or all (administrators).
pub async fn robots(v: Viewer, query: web::Query<FeedQuery>) -> Result<HttpResponse, UiError> {
    let feed = query.into_inner().feed.filter(|f| !f.is_empty());
    let access = v.access.clone();
    let of = feed.clone();
    let robots = run(move || Ok(access.robots(of.as_deref())?)).await?;
    render(&RobotsPage {
        title: "Robot accounts",
        nav: Nav::of(&v),
        feed,
        robots: robots.into_iter().map(RobotRow::from).collect(),
    })
}

#[derive(Deserialize)]
pub struct NewRobotForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    feed: String,
    name: String,
    #[serde(default)]
    roles: String,
    #[serde(default)]
    description: String,
}

fn back_to(name: &str) -> String {
    match name.strip_prefix("robot$").and_then(|r| r.split_once('+')) {
        Some((feed, _)) => format!("/ui/robots?feed={feed}"),
        None => "/ui/robots".to_owned(),
    }
}

// POST /ui/robots — creates a robot and shows its secret once.
pub async fn create(v: Viewer, form: web::Form<NewRobotForm>) -> Result<HttpResponse, UiError> {
    v.check_csrf(&form.csrf)?;
    let f = form.into_inner();
    let mut roles = BTreeMap::new();
    for pair in f.roles.split([',', ' ']).filter(|s| !s.trim().is_empty()) {
        let Some((feed, role)) = pair.trim().split_once('=') else {
            return Err(UiError::bad_request(format!(
                "{pair:?} is not FEED=ROLE, e.g. prod=push"
            )));
        };
        roles.insert(feed.to_owned(), role.to_owned());
    }
    let access = v.access.clone();
    let made = run(move || {
        let feed = Some(f.feed.trim()).filter(|f| !f.is_empty());
        Ok(access.create_robot(feed, f.name.trim(), f.description.trim(), &roles, None)?)
    })
    .await?;
    let back = back_to(&made.name);
    show_secret_then(
        &v,
        format!(
            "The secret of robot {} (log in with docker login -u '{}')",
            made.name, made.name
        ),
        made.secret,
        back,
        "Back to the robots",
    )
}

#[derive(Deserialize)]
pub struct RobotActionForm {
    #[serde(default)]
    csrf: String,
    name: String,
    /// `rotate`, `disable`, `enable` or `delete`.
    action: String,
}

// POST /ui/robots/action — rotates (showing the new secret once), disables, enables or
// deletes a robot.
pub async fn action(v: Viewer, form: web::Form<RobotActionForm>) -> Result<HttpResponse, UiError> {
    v.check_csrf(&form.csrf)?;
    let RobotActionForm { name, action, .. } = form.into_inner();
    let access = v.access.clone();
    let back = back_to(&name);
    let n = name.clone();
    let rotated = run(move || {
        let disabled = |d| RobotChange {
            disabled: Some(d),
            ..RobotChange::default()
        };
        match action.as_str() {
            "rotate" => return Ok(Some(access.rotate_robot(&n)?)),
            "disable" => access.change_robot(&n, disabled(true))?,
            "enable" => access.change_robot(&n, disabled(false))?,
            "delete" => access.delete_robot(&n)?,
            other => {
                return Err(UiError::bad_request(format!(
                    "{other:?} is not rotate, disable, enable or delete"
                )));
            }
        }
        Ok(None)
    })
    .await?;
    match rotated {
        Some(made) => show_secret_then(
            &v,
            format!("The new secret of robot {name} (the old one no longer works)"),
            made.secret,
            back,
            "Back to the robots",
        ),
        None => Ok(redirect(&back)),
    }
}
