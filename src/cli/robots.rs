//! `semdock robot …`: robot accounts (their clap types live here, beside the commands).

use std::collections::BTreeMap;

use anyhow::bail;
use clap::Subcommand;

use super::accounts::roles_text;
use super::target::{Request, Target, to_json};
use super::{Output, now_ms, print_table, rfc3339_seconds};
use crate::http::api::dto::{NewRobot, RobotInfo, RobotSecret, RobotUpdate};

#[derive(Debug, Subcommand)]
pub enum RobotAction {
    /// Create a robot; its secret is printed once. `--feed` makes it the feed's (its
    /// administrators manage it: `robot$FEED+NAME`); without, the registry's (`robot$NAME`).
    Create {
        /// Its short name (a-z 0-9 . _ -).
        name: String,
        #[arg(long)]
        feed: Option<String>,
        /// FEED=ROLE, repeatable (a feed's robot: that feed only).
        #[arg(long = "role", value_name = "FEED=ROLE")]
        roles: Vec<String>,
        #[arg(long, default_value = "")]
        description: String,
        /// It stops working after this many days (default: never).
        #[arg(long, value_name = "DAYS", value_parser = clap::value_parser!(u64).range(1..))]
        expires_days: Option<u64>,
    },
    /// List robots: a feed's (`--feed`), or all (administrators).
    List {
        #[arg(long)]
        feed: Option<String>,
        /// `table` (default) or `json`.
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
    /// A new secret (printed once): the old one and its tokens stop working at once.
    Rotate { name: String },
    /// Stop a robot at once (its tokens too) until `enable`.
    Disable { name: String },
    /// Let a disabled robot in again.
    Enable { name: String },
    /// Delete a robot and its roles.
    Delete { name: String },
}

fn parse_roles(roles: Vec<String>) -> anyhow::Result<BTreeMap<String, String>> {
    let mut parsed = BTreeMap::new();
    for r in roles {
        let Some((feed, role)) = r.split_once('=') else {
            bail!("--role takes FEED=ROLE, e.g. prod=push; got {r:?}");
        };
        parsed.insert(feed.to_owned(), role.to_owned());
    }
    Ok(parsed)
}

/// `/robots/NAME…`: the name as one path segment.
fn path_of(name: &str, rest: &str) -> String {
    let encoded: String = form_urlencoded::byte_serialize(name.as_bytes()).collect();
    format!("/robots/{encoded}{rest}")
}

fn print_secret(made: &RobotSecret, what: &str) {
    println!(
        "{what} {}; its secret is shown only now (docker login -u '{}' --password-stdin):\n{}",
        made.name, made.name, made.secret
    );
}

pub(super) fn robot(target: &Target, action: RobotAction) -> anyhow::Result<()> {
    match action {
        RobotAction::Create {
            name,
            feed,
            roles,
            description,
            expires_days,
        } => {
            let request = NewRobot {
                name,
                feed,
                description,
                roles: parse_roles(roles)?,
                expires_at: expires_days
                    .map(|d| (now_ms() / 1000).saturating_add(d.saturating_mul(86_400))),
            };
            let made: RobotSecret =
                target.run(Request::send("POST", "/robots", &request), |a| {
                    Ok(a.create_robot(
                        request.feed.as_deref(),
                        &request.name,
                        &request.description,
                        &request.roles,
                        request.expires_at,
                    )?
                    .into())
                })?;
            print_secret(&made, "created robot");
        }
        RobotAction::List { feed, output } => {
            let query = feed
                .as_deref()
                .map(|f| {
                    format!(
                        "?feed={}",
                        form_urlencoded::byte_serialize(f.as_bytes()).collect::<String>()
                    )
                })
                .unwrap_or_default();
            let robots: Vec<RobotInfo> =
                target.run(Request::get(format!("/robots{query}")), |a| {
                    Ok(a.robots(feed.as_deref())?
                        .into_iter()
                        .map(Into::into)
                        .collect())
                })?;
            if let Output::Json = output {
                println!("{}", serde_json::to_string_pretty(&robots)?);
                return Ok(());
            }
            let rows: Vec<Vec<String>> = robots
                .iter()
                .map(|r| {
                    vec![
                        r.name.clone(),
                        roles_text(&to_json(&r.roles).unwrap_or_default()),
                        if r.disabled { "disabled" } else { "enabled" }.to_owned(),
                        r.last_used
                            .map_or_else(|| "never".to_owned(), rfc3339_seconds),
                        r.last_address.clone().unwrap_or_default(),
                        r.expires
                            .map_or_else(|| "never".to_owned(), rfc3339_seconds),
                    ]
                })
                .collect();
            print_table(
                &["NAME", "ROLES", "STATE", "LAST USED", "FROM", "EXPIRES"],
                &rows,
            );
        }
        RobotAction::Rotate { name } => {
            let made: RobotSecret = target.run(Request::post(path_of(&name, "/rotate")), |a| {
                Ok(a.rotate_robot(&name)?.into())
            })?;
            print_secret(&made, "rotated");
        }
        RobotAction::Disable { name } => set_disabled(target, &name, true)?,
        RobotAction::Enable { name } => set_disabled(target, &name, false)?,
        RobotAction::Delete { name } => {
            target.run(Request::delete(path_of(&name, "")), |a| {
                Ok(a.delete_robot(&name)?)
            })?;
            println!("deleted robot {name}");
        }
    }
    Ok(())
}

fn set_disabled(target: &Target, name: &str, disabled: bool) -> anyhow::Result<()> {
    let change = RobotUpdate {
        disabled: Some(disabled),
        ..RobotUpdate::default()
    };
    target.run(Request::send("PATCH", path_of(name, ""), &change), |a| {
        Ok(a.change_robot(name, change.clone().into())?)
    })?;
    println!(
        "{} robot {name}",
        if disabled { "disabled" } else { "enabled" }
    );
    Ok(())
}
