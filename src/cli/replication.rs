//! `semdock replication …`: rules that push a feed's images to other registries, their
//! status and runs. Holds its own clap types (`args.rs` is full).

#[allow(clippy::wildcard_imports)]
use super::*;
use crate::domain::access::FeedAdmin;
use crate::http::api::dto::{
    self, NewReplicationRule, ReplicationRule, ReplicationRuleChange, RunReport,
};
use crate::http::api::dto::{FeedReplica, ReplicaChange};

#[derive(Debug, clap::Subcommand)]
pub enum ReplicationAction {
    /// Adds a rule: the feed's events from now on, and a first full run of what it holds.
    Add {
        /// Lowercase letters, digits and dashes.
        name: String,
        /// The source feed.
        #[arg(long)]
        feed: String,
        /// The target registry (`https://site-b.example`).
        #[arg(long)]
        url: String,
        /// REPOSITORY, REPOSITORY:TAG-GLOB or REPOSITORY@SEMVER-REQUIREMENT; repeatable.
        #[arg(long = "filter")]
        filters: Vec<String>,
        /// Put before each repository's path within the feed at the target (default FEED/).
        #[arg(long)]
        prefix: Option<String>,
        /// The user (or robot) semdock logs in to the target as.
        #[arg(long)]
        username: Option<String>,
        /// The target's password or token: stored, never shown back (or `SEMDOCK_REPLICATION_PASSWORD`).
        #[arg(long, env = "SEMDOCK_REPLICATION_PASSWORD", hide_env_values = true)]
        password: Option<String>,
        /// Only scheduled and asked-for runs: do not follow pushes as they happen.
        #[arg(long)]
        no_on_push: bool,
        /// Seconds between scheduled full runs (0: none).
        #[arg(long, default_value_t = 0)]
        interval: u64,
        /// Deletions here are made at the target too.
        #[arg(long)]
        deletions: bool,
    },
    /// Lists the rules with their lag and last run.
    List {
        /// Only this feed's rules (what its administrators may list).
        #[arg(long)]
        feed: Option<String>,
    },
    /// A rule's status: lag, last run, last error, conflicts.
    Show {
        /// The rule.
        name: String,
    },
    /// Runs a rule in full now and prints its report.
    Run {
        /// The rule.
        name: String,
    },
    /// Switches a rule off (or on again with --on).
    Pause {
        /// The rule.
        name: String,
        /// Switch it on again.
        #[arg(long)]
        on: bool,
    },
    /// Makes a feed here a replica of another site's: only the named accounts (its
    /// replication's) may push, promote or delete in it.
    Replica {
        /// The feed.
        feed: String,
        /// The primary it copies (`https://site-a.example`).
        #[arg(long)]
        source: String,
        /// An account whose changes it takes; repeatable.
        #[arg(long = "writer", required = true)]
        writers: Vec<String>,
    },
    /// Makes a replica feed the primary (the failover): everyone's roles apply again.
    Primary {
        /// The feed.
        feed: String,
    },
    /// Deletes a rule (the target keeps what it has).
    Remove {
        /// The rule.
        name: String,
    },
}

pub(super) fn replication(target: &Target, action: ReplicationAction) -> anyhow::Result<()> {
    match action {
        ReplicationAction::Add {
            name,
            feed,
            url,
            filters,
            prefix,
            username,
            password,
            no_on_push,
            interval,
            deletions,
        } => {
            let new = NewReplicationRule {
                name,
                feed,
                filters,
                url,
                prefix,
                username,
                password,
                on_push: Some(!no_on_push),
                interval_seconds: interval,
                deletions,
            };
            let rule = create(target, new)?;
            println!(
                "created replication rule {} of feed {} to {}{}",
                rule.name, rule.feed, rule.url, rule.prefix
            );
        }
        ReplicationAction::List { feed } => print_rules(&list(target, feed.as_deref())?),
        ReplicationAction::Show { name } => {
            let request = Request::get(format!("/replication/{name}"));
            let rule: ReplicationRule =
                target.run(request, |a| Ok(a.replication_rule(&name)?.get()?.into()))?;
            println!("{}", serde_json::to_string_pretty(&rule)?);
        }
        ReplicationAction::Run { name } => {
            let request = Request::post(format!("/replication/{name}/run"));
            let report: RunReport =
                target.run(request, |a| Ok(a.replication_rule(&name)?.run()?.into()))?;
            println!(
                "{name}: {} tags at the target, {} manifests and {} blobs ({} bytes) sent, {} mounted, {} conflicts",
                report.tags,
                report.manifests_pushed,
                report.blobs_uploaded,
                report.bytes_uploaded,
                report.blobs_mounted,
                report.conflicts
            );
            for e in &report.errors {
                println!("  {e}");
            }
        }
        ReplicationAction::Pause { name, on } => {
            let change = ReplicationRuleChange {
                active: Some(on),
                ..ReplicationRuleChange::default()
            };
            let request = Request::send("PATCH", format!("/replication/{name}"), &change);
            let rule: ReplicationRule = target.run(request, |a| {
                Ok(a.replication_rule(&name)?
                    .update(&change.clone().into())?
                    .into())
            })?;
            println!(
                "replication rule {} is {}",
                rule.name,
                if rule.active { "on" } else { "paused" }
            );
        }
        ReplicationAction::Replica {
            feed,
            source,
            writers,
        } => make_replica(target, &feed, &ReplicaChange { source, writers })?,
        ReplicationAction::Primary { feed } => {
            target.run(Request::delete(format!("/feeds/{feed}/replica")), |a| {
                Ok(a.feed::<FeedAdmin>(&feed)?.clear_replica()?)
            })?;
            println!("feed {feed} is the primary: pushes are taken as its roles allow");
        }
        ReplicationAction::Remove { name } => {
            target.run(Request::delete(format!("/replication/{name}")), |a| {
                Ok(a.replication_rule(&name)?.delete()?)
            })?;
            println!("deleted replication rule {name}");
        }
    }
    Ok(())
}

fn make_replica(target: &Target, feed: &str, change: &ReplicaChange) -> anyhow::Result<()> {
    let request = Request::send("PUT", format!("/feeds/{feed}/replica"), change);
    let replica: FeedReplica = target.run(request, |a| {
        Ok(a.feed::<FeedAdmin>(feed)?
            .set_replica(&change.source, &change.writers)?
            .into())
    })?;
    println!(
        "feed {feed} is a replica of {}: only {} may change it",
        replica.source,
        replica.writers.join(", ")
    );
    Ok(())
}

fn print_rules(rules: &[ReplicationRule]) {
    let rows: Vec<Vec<String>> = rules
        .iter()
        .map(|r| {
            vec![
                r.name.clone(),
                r.feed.clone(),
                format!("{}/{}", r.url, r.prefix),
                if r.active { "on" } else { "paused" }.to_owned(),
                r.status.lag_events.to_string(),
                format!("{} s", r.status.lag_seconds),
                r.status.conflicts.len().to_string(),
                r.status.last_error.clone().unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    print_table(
        &[
            "NAME",
            "FEED",
            "TARGET",
            "STATE",
            "LAG",
            "LAG TIME",
            "CONFLICTS",
            "ERROR",
        ],
        &rows,
    );
}

fn create(target: &Target, new: NewReplicationRule) -> anyhow::Result<ReplicationRule> {
    let request = Request::send("POST", "/replication", &new);
    target.run(request, |a| {
        Ok(a.create_replication_rule(&new.into())?.into())
    })
}

fn list(target: &Target, feed: Option<&str>) -> anyhow::Result<Vec<ReplicationRule>> {
    let path = match feed {
        Some(f) => format!(
            "/replication?{}",
            serde_urlencoded::to_string([("feed", f)])?
        ),
        None => "/replication".to_owned(),
    };
    target.run(Request::get(path), |a| {
        Ok(dto::all(a.replication_rules(feed)?))
    })
}
