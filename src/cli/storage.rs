//! Storage commands: `gc`, `retention`, `check`, `backup`, `restore`, and `feed retention`.
//! Long local runs show a progress bar on a terminal.

use std::io::Write as _;
use std::path::Path;

use anyhow::bail;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};

use super::args::MaintenanceAction;
use super::target::{Request, Target, to_json};
use crate::config::Config;
use crate::domain::access::FeedAdmin;
use crate::domain::maintenance::{backup, check};
use crate::http::api::dto::{
    BackupReport, BackupRequest, GcReport, Maintenance, MaintenanceChange, RetentionReport, Rules,
    RunRequest,
};

/// A progress bar fed by the domain's progress callback (hidden when not on a terminal).
fn bar() -> ProgressBar {
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{msg:>6} [{bar:40}] {pos}/{len} ({eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar
}

fn report(bar: &ProgressBar) -> impl Fn(&str, u64, u64) + Sync + '_ {
    move |phase, done, total| {
        bar.set_message(phase.to_owned());
        bar.set_length(total);
        bar.set_position(done);
    }
}

fn bytes(n: &Value) -> String {
    let n = n.as_u64().unwrap_or(0);
    #[allow(clippy::cast_precision_loss)]
    let mib = n as f64 / f64::from(1 << 20);
    format!("{n} bytes ({mib:.1} MiB)")
}

pub fn gc(config: &Config, target: &Target, dry_run: bool) -> anyhow::Result<()> {
    let request = Request::send("POST", "/gc", &RunRequest { dry_run });
    let r: GcReport = target.run_services(request, |s| {
        let bar = bar();
        let r =
            s.registry
                .maintenance()
                .gc_by(config.gc_options(dry_run), &report(&bar), "local")?;
        bar.finish_and_clear();
        Ok(r.into())
    })?;
    let r = to_json(&r)?;
    let verb = if dry_run { "would remove" } else { "removed" };
    if dry_run {
        for d in r["removed"].as_array().into_iter().flatten() {
            println!("{}", d.as_str().unwrap_or_default());
        }
    }
    println!(
        "{verb} {} blobs, {} orphan files and {} abandoned uploads: {} freed",
        r["blobs_removed"],
        r["orphan_files"],
        r["uploads_expired"],
        bytes(&r["bytes_freed"])
    );
    Ok(())
}

pub fn retention_set(target: &Target, feed: &str, rules: Option<Rules>) -> anyhow::Result<()> {
    let path = format!("/feeds/{feed}/retention");
    let request = match &rules {
        Some(rules) => Request::send("PUT", path, rules),
        None => Request::get(path),
    };
    let shown: Rules = target.run(request, |a| {
        let f = a.feed::<FeedAdmin>(feed)?;
        if let Some(rules) = rules {
            f.set_retention(&rules.into())?;
        }
        Ok(f.retention()?.into())
    })?;
    let shown = to_json(&shown)?;
    let rule = |k: &str| {
        shown[k]
            .as_u64()
            .map_or_else(|| "off".to_owned(), |n| n.to_string())
    };
    println!(
        "feed {feed}: untagged-days {}, keep-prereleases {}, unpulled-days {}, include-releases {}",
        rule("untagged_days"),
        rule("keep_prereleases"),
        rule("unpulled_days"),
        shown["include_releases"].as_bool().unwrap_or(false)
    );
    Ok(())
}

pub fn retention_run(target: &Target, feed: &str, dry_run: bool) -> anyhow::Result<()> {
    // Typed, not a JSON tree: a run at a million manifests plans a hundred thousand
    // deletions, and a `Value` per deletion tripled what the command held.
    let request = Request::send(
        "POST",
        format!("/feeds/{feed}/retention/run"),
        &RunRequest { dry_run },
    );
    let report: RetentionReport = target.run_services(request, |s| {
        Ok(s.registry
            .maintenance()
            .run_retention_by(feed, dry_run, "local")?
            .into())
    })?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for d in &report.deletions {
        match &d.tag {
            Some(tag) => writeln!(out, "{}:{tag}\t{}", d.repository, d.rule)?,
            None => writeln!(out, "{}@{}\t{}", d.repository, d.digest, d.rule)?,
        }
    }
    let verb = if dry_run { "would delete" } else { "deleted" };
    writeln!(
        out,
        "{verb} {} tags and manifests in feed {feed}",
        report.deletions.len()
    )?;
    Ok(())
}

pub fn check(target: &Target, jobs: usize, max_mbps: Option<u64>) -> anyhow::Result<()> {
    let Some(s) = target.local() else {
        bail!("check runs on the local data directory: stop the server first");
    };
    let bar = bar();
    let opts = check::CheckOptions {
        jobs,
        max_bytes_per_sec: max_mbps.map(|m| m << 20),
    };
    let r = s.registry.maintenance().check(opts, &report(&bar))?;
    bar.finish_and_clear();
    for p in &r.problems {
        println!("problem: {p}");
    }
    for t in &r.broken_tags {
        println!("broken tag: {t}");
    }
    println!(
        "checked {} blobs ({}): {} corrupt, {} problems, {} broken tags",
        r.blobs_checked,
        bytes(&json!(r.bytes_checked)),
        r.corrupt.len(),
        r.problems.len(),
        r.broken_tags.len()
    );
    if !r.is_clean() {
        bail!("the integrity check found problems; push the broken images again to repair them");
    }
    Ok(())
}

pub fn backup(target: &Target, dir: &Path) -> anyhow::Result<()> {
    let dir = std::path::absolute(dir)?;
    let request = Request::send(
        "POST",
        "/backup",
        &BackupRequest {
            dir: dir.display().to_string(),
        },
    );
    let r: BackupReport = target.run_services(request, |s| {
        let bar = bar();
        let r = s.registry.maintenance().backup(&dir, &report(&bar))?;
        bar.finish_and_clear();
        Ok(r.into())
    })?;
    let r = to_json(&r)?;
    println!(
        "backed up {} blobs, {}, to {}",
        r["blobs"],
        bytes(&r["bytes"]),
        dir.display()
    );
    let damaged: Vec<&str> = r["damaged"]
        .as_array()
        .map(|a| a.iter().filter_map(|d| d.as_str()).collect())
        .unwrap_or_default();
    if !damaged.is_empty() {
        bail!(
            "{} blobs are damaged in the registry and not in the backup (set aside; push their images again): {}",
            damaged.len(),
            damaged.join(", ")
        );
    }
    Ok(())
}

/// Where a configuration keeps the registry, for messages.
fn storage_of(config: &Config) -> String {
    use crate::config::{BlobEngine, MetadataEngine};
    let meta = match config.storage.metadata {
        MetadataEngine::Embedded => config.data_dir.join("meta.redb").display().to_string(),
        MetadataEngine::Postgres => "PostgreSQL".to_owned(),
    };
    let blobs = match (&config.storage.blobs, &config.storage.s3) {
        (BlobEngine::S3, Some(s3)) => format!("bucket {}", s3.bucket),
        _ => config.data_dir.join("blobs").display().to_string(),
    };
    format!("{meta} and {blobs}")
}

pub fn migrate(config: &Config, to: &Path) -> anyhow::Result<()> {
    let target = Config::load(Some(to))
        .map_err(|e| anyhow::anyhow!("invalid target configuration {}: {e}", to.display()))?;
    let (from, into) = (storage_of(config), storage_of(&target));
    if from == into {
        bail!(
            "{} names the same storage as this registry ({from}): nothing to move",
            to.display()
        );
    }
    let source = crate::server::open_services(config, false)?;
    let (meta, blobs) = crate::server::open_stores(&target, true)?;
    let bar = bar();
    let r = source
        .registry
        .maintenance()
        .migrate_to(&from, &*meta, &*blobs, &report(&bar))?;
    bar.finish_and_clear();
    let n = &r.records;
    println!(
        "copied {} blobs, {}, into {into}; {} were there already (hashed again and kept)",
        r.blobs_copied,
        bytes(&json!(r.bytes_copied)),
        r.blobs_present
    );
    println!(
        "wrote {} feeds, {} repositories, {} manifests, {} tags, {} history entries, {} tombstones, {} users, {} API keys, {} grants, {} promotions, {} audit entries",
        n.feeds,
        n.repositories,
        n.manifests,
        n.tags,
        n.history,
        n.tombstones,
        n.users,
        n.api_keys,
        n.grants,
        n.promotions,
        n.audit
    );
    if !r.missing.is_empty() || !r.damaged.is_empty() {
        bail!(
            "everything else is migrated, but {} blobs were missing and {} damaged in this registry and are not in the target: {} (push their images again; `semdock check` names the tags they break)",
            r.missing.len(),
            r.damaged.len(),
            r.missing
                .iter()
                .chain(&r.damaged)
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    println!("done: point the servers at {}", to.display());
    Ok(())
}

pub fn restore(config: &Config, from: &Path) -> anyhow::Result<()> {
    let bar = bar();
    let r = backup::restore(from, &config.data_dir, &report(&bar))?;
    bar.finish_and_clear();
    println!(
        "restored {} blobs, {}, into {}",
        r.blobs,
        bytes(&json!(r.bytes)),
        r.dir
    );
    if !r.damaged.is_empty() {
        bail!(
            "everything else is restored, but {} blobs in the backup are damaged and were not: {} (push their images again; `semdock check` names the tags they break)",
            r.damaged.len(),
            r.damaged.join(", ")
        );
    }
    Ok(())
}

/// `semdock maintenance on|off|status`: read-only mode.
pub(super) fn maintenance(target: &Target, action: MaintenanceAction) -> anyhow::Result<()> {
    let mode: Maintenance = match action {
        MaintenanceAction::Status => {
            target.run(Request::get("/maintenance"), |a| Ok(a.read_only()?.into()))?
        }
        MaintenanceAction::On { reason } => set_maintenance(target, true, reason)?,
        MaintenanceAction::Off => set_maintenance(target, false, String::new())?,
    };
    match (mode.since_ms, mode.by, mode.reason) {
        (Some(since), Some(by), reason) if mode.read_only => {
            let why = reason.filter(|r| !r.is_empty());
            println!(
                "read-only since {} (turned on by {by}){}: writes are refused, pulls go on",
                crate::domain::audit::rfc3339(since),
                why.map(|r| format!(": {r}")).unwrap_or_default()
            );
        }
        _ => println!("writable: read-only mode is off"),
    }
    Ok(())
}

fn set_maintenance(target: &Target, on: bool, reason: String) -> anyhow::Result<Maintenance> {
    let change = MaintenanceChange {
        read_only: on,
        reason,
    };
    target.run(Request::send("PUT", "/maintenance", &change), |a| {
        Ok(a.admin()?
            .set_read_only(change.read_only, &change.reason)?
            .into())
    })
}
