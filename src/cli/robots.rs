//! `semdock robot …` and `semdock federation …`: robot accounts and the workload identity
//! rules that let CI jobs act as them (their clap types live here, beside the commands).

use std::collections::BTreeMap;

use anyhow::bail;
use clap::Subcommand;

use super::accounts::roles_text;
use super::target::{Request, Target, to_json};
use super::{Output, now_ms, print_table, rfc3339_seconds};
use crate::http::api::dto::{FederationRule, NewRobot, RobotInfo, RobotSecret, RobotUpdate};

#[derive(Debug, Subcommand)]
pub enum RobotAction {
    /// Create a robot; its secret is printed once. `--feed` makes it the feed's (its
    /// administrators manage it: `robot$FEED+NAME`); without, the registry's (`robot$NAME`).
    Create {
        /// Its short name (a-z 0-9 . _ -).
        name: String,
        /// The feed that owns it (its administrators manage it); none: the registry's.
        #[arg(long)]
        feed: Option<String>,
        /// FEED=ROLE, repeatable (a feed's robot: that feed only).
        #[arg(long = "role", value_name = "FEED=ROLE")]
        roles: Vec<String>,
        /// What it is for.
        #[arg(long, default_value = "")]
        description: String,
        /// It stops working after this many days (default: never).
        #[arg(long, value_name = "DAYS", value_parser = clap::value_parser!(u64).range(1..))]
        expires_days: Option<u64>,
    },
    /// List robots: a feed's (`--feed`), or all (administrators).
    List {
        /// Only this feed's robots (its administrators may list them).
        #[arg(long)]
        feed: Option<String>,
        /// `table` (default) or `json`.
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
    /// A new secret (printed once): the old one and its tokens stop working at once.
    Rotate {
        /// Its full name (`robot$prod+ci`).
        name: String,
    },
    /// Stop a robot at once (its tokens too) until `enable`.
    Disable {
        /// Its full name (`robot$prod+ci`).
        name: String,
    },
    /// Let a disabled robot in again.
    Enable {
        /// Its full name (`robot$prod+ci`).
        name: String,
    },
    /// Delete a robot and its roles.
    Delete {
        /// Its full name (`robot$prod+ci`).
        name: String,
    },
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

#[derive(Debug, Subcommand)]
pub enum FederationAction {
    /// Trust an issuer's workload identity tokens that match as a robot: `docker login -u
    /// oidc` with such a token then has the robot's roles.
    Add {
        /// The issuer (`https://token.actions.githubusercontent.com`).
        #[arg(long)]
        issuer: String,
        /// The audience the tokens are issued for.
        #[arg(long)]
        audience: String,
        /// CLAIM=GLOB every token must match, repeatable (`repository=acme/web`,
        /// `ref=refs/tags/*`, `kubernetes.io/namespace=prod`). At least one.
        #[arg(long = "claim", value_name = "CLAIM=GLOB", required = true)]
        claims: Vec<String>,
        /// The robot the tokens act as (`robot$prod+web-release`).
        #[arg(long)]
        robot: String,
        /// A JWKS file, for an issuer this server cannot reach.
        #[arg(long)]
        jwks_file: Option<std::path::PathBuf>,
    },
    /// The rules.
    List,
    /// Remove a rule by id.
    Remove {
        /// The rule's id (from `semdock federation list`).
        id: String,
    },
}

pub(super) fn federation(target: &Target, action: FederationAction) -> anyhow::Result<()> {
    match action {
        FederationAction::Add {
            issuer,
            audience,
            claims,
            robot,
            jwks_file,
        } => {
            let mut parsed = BTreeMap::new();
            for c in claims {
                let Some((k, v)) = c.split_once('=') else {
                    bail!("--claim takes CLAIM=GLOB, e.g. repository=acme/web; got {c:?}");
                };
                parsed.insert(k.to_owned(), v.to_owned());
            }
            let jwks = jwks_file
                .map(|f| {
                    std::fs::read_to_string(&f)
                        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", f.display()))
                })
                .transpose()?;
            let rule = FederationRule {
                id: String::new(),
                issuer,
                audience,
                claims: parsed,
                robot,
                jwks,
                created: 0,
                created_by: String::new(),
            };
            let added: FederationRule =
                target.run(Request::send("POST", "/federation", &rule), |a| {
                    let id = a.add_federation_rule(rule.clone().into())?;
                    Ok(FederationRule { id, ..rule.clone() })
                })?;
            println!(
                "rule {}: tokens of {} for {} act as {}",
                added.id, added.issuer, added.audience, added.robot
            );
        }
        FederationAction::List => {
            let rules: Vec<FederationRule> = target.run(Request::get("/federation"), |a| {
                Ok(a.federation_rules()?.into_iter().map(Into::into).collect())
            })?;
            let rows: Vec<Vec<String>> = rules
                .iter()
                .map(|r| {
                    let claims: Vec<String> =
                        r.claims.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    vec![
                        r.id.clone(),
                        r.issuer.clone(),
                        r.audience.clone(),
                        claims.join(", "),
                        r.robot.clone(),
                    ]
                })
                .collect();
            print_table(&["ID", "ISSUER", "AUDIENCE", "CLAIMS", "ROBOT"], &rows);
        }
        FederationAction::Remove { id } => {
            target.run(Request::delete(format!("/federation/{id}")), |a| {
                Ok(a.remove_federation_rule(&id)?)
            })?;
            println!("removed rule {id}");
        }
    }
    Ok(())
}
