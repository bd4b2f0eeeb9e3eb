//! `semdock vulndb …` and `semdock vuln …`: the vulnerability database, an image's
//! vulnerabilities and SBOM, and feeds' vulnerability policies.

#[allow(clippy::wildcard_imports)]
use super::*;
use crate::domain::access::{FeedAdmin, Pull};
use crate::domain::vulns::Severity;
use crate::http::api::dto::{
    self, AffectedReport, VulnDb, VulnException, VulnImport, VulnPolicy, VulnReport,
};

pub(super) fn vulndb(target: &Target, action: VulndbAction) -> anyhow::Result<()> {
    match action {
        VulndbAction::Import { files } => {
            for file in files {
                let name = file.file_name().map_or_else(
                    || file.display().to_string(),
                    |n| n.to_string_lossy().into_owned(),
                );
                let bytes = std::fs::read(&file)
                    .with_context(|| format!("cannot read {}", file.display()))?;
                let query = serde_urlencoded::to_string([("name", name.as_str())])?;
                let done: VulnImport = target.run(
                    Request::upload(format!("/vulndb?{query}"), bytes.clone()),
                    |a| {
                        Ok(a.admin()?
                            .vulndb()
                            .import(&name, std::io::Cursor::new(bytes))?
                            .into())
                    },
                )?;
                println!(
                    "{name}: {} records ({} withdrawn) for {} packages; database epoch {}",
                    done.records, done.withdrawn, done.packages, done.epoch
                );
                for skipped in done.skipped.iter().take(5) {
                    println!("  skipped {skipped}");
                }
            }
            Ok(())
        }
        VulndbAction::Status => {
            let db: VulnDb = target.run(Request::get("/vulndb"), |a| {
                Ok(a.admin()?.vulndb().sources()?.into())
            })?;
            println!("database epoch {}", db.epoch);
            for s in &db.sources {
                println!(
                    "{}: {} records ({} withdrawn), {} — imported {} by {}",
                    s.name,
                    s.records,
                    s.withdrawn,
                    s.ecosystems.join(", "),
                    s.imported,
                    s.imported_by
                );
            }
            Ok(())
        }
    }
}

pub(super) fn vuln(config: &Config, command: Command) -> anyhow::Result<()> {
    let Command::Vuln {
        action,
        image,
        fail_at,
        remote,
    } = command
    else {
        bail!("not a vuln command");
    };
    let target = &target(config, &remote)?;
    let hosts = &registry_hosts(config, &remote);
    let (image, fail_at) = (image.as_deref(), fail_at.as_deref());
    match (action, image) {
        (None, Some(image)) => report(target, image, fail_at, hosts),
        (None, None) => bail!("name an image (semdock vuln FEED/NAME:TAG) or a subcommand"),
        (Some(VulnAction::Sbom { image, spdx }), _) => {
            let format = if spdx { "spdx" } else { "cyclonedx" };
            let query = serde_urlencoded::to_string([("ref", image.as_str()), ("format", format)])?;
            let document: serde_json::Value =
                target.run(Request::get(format!("/sbom?{query}")), |a| {
                    let r = crate::http::api::parse_reference(&image, hosts)?;
                    let feed = a.feed::<Pull>(r.repository.feed())?;
                    let found = feed.manifest(&r.repository, &r.reference())?;
                    let sbom = feed
                        .vulnerabilities()
                        .sbom(&r.repository, &found.digest)?
                        .ok_or_else(|| anyhow::anyhow!("{image} has no SBOM yet"))?;
                    Ok(if spdx {
                        sbom.spdx(r.repository.as_str())
                    } else {
                        sbom.cyclonedx(r.repository.as_str())
                    })
                })?;
            println!("{}", serde_json::to_string_pretty(&document)?);
            Ok(())
        }
        (
            Some(VulnAction::Policy {
                feed,
                refuse_at,
                fixable_only,
                virtual_tags,
                on_push,
                on_pull,
                remove,
            }),
            _,
        ) => policy(
            target,
            &feed,
            refuse_at.as_deref(),
            (fixable_only, virtual_tags),
            (on_push.as_deref(), on_pull.as_deref()),
            remove,
        ),
        (Some(VulnAction::Exception { action }), _) => exception(target, action),
        (Some(VulnAction::Affected { advisory }), _) => affected(target, &advisory),
    }
}

fn severity(text: &str) -> anyhow::Result<Severity> {
    Severity::parse(text).ok_or_else(|| {
        anyhow::anyhow!("{text:?} is not a severity: use critical, high, medium, low or negligible")
    })
}

fn report(
    target: &Target,
    image: &str,
    fail_at: Option<&str>,
    hosts: &[String],
) -> anyhow::Result<()> {
    let fail_at = fail_at.map(severity).transpose()?;
    let query = serde_urlencoded::to_string([("ref", image)])?;
    let report: VulnReport = target
        .run(Request::get(format!("/vulnerabilities?{query}")), |a| {
            Ok(crate::http::api::report_of(a, image, hosts)?.into())
        })?;
    println!(
        "{image} ({}): {}, {} packages{}, database epoch {}",
        report.digest,
        report.state,
        report.packages,
        report
            .os
            .as_deref()
            .map(|o| format!(" on {o}"))
            .unwrap_or_default(),
        report.database
    );
    if let Some(e) = &report.error {
        println!("  {e}");
    }
    for f in &report.findings {
        println!(
            "  {:<10} {:<20} {} {} {}{}",
            f.severity,
            f.advisory,
            f.package,
            f.installed,
            f.fixed
                .as_deref()
                .map_or_else(|| "(no fix)".to_owned(), |v| format!("(fixed in {v})")),
            f.link
                .as_deref()
                .map(|l| format!(" {l}"))
                .unwrap_or_default()
        );
    }
    if report.findings.is_empty() && report.state == "scanned" {
        println!("  no known vulnerabilities");
    }
    if let Some(limit) = fail_at {
        let failing = report
            .findings
            .iter()
            .filter(|f| Severity::parse(&f.severity).is_some_and(|s| s >= limit))
            .count();
        if failing > 0 {
            bail!("{image} has {failing} vulnerabilities at or above {limit}");
        }
    }
    Ok(())
}

fn gate(flag: &str, value: Option<&str>) -> anyhow::Result<Option<dto::PullGate>> {
    Ok(match value {
        None => None,
        Some("refuse") => Some(dto::PullGate::Refuse),
        Some("warn") => Some(dto::PullGate::Warn),
        Some(other) => bail!("{flag} {other:?}: use refuse or warn"),
    })
}

fn show_policy(feed: &str, policy: Option<&VulnPolicy>) {
    let Some(p) = policy else {
        println!("feed {feed} has no vulnerability policy");
        return;
    };
    println!(
        "feed {feed} refuses promotions of images with {} vulnerabilities{}{}",
        p.refuse_at,
        if p.fixable_only {
            " that have a fix"
        } else {
            " or worse"
        },
        match p.on_pull {
            Some(dto::PullGate::Refuse) => ", and pulls of them",
            Some(dto::PullGate::Warn) => ", and warns at pulls of them",
            None => "",
        }
    );
    for e in &p.exceptions {
        println!(
            "  except {}{} until {}: {} ({} at {})",
            e.advisory,
            e.package
                .as_deref()
                .map(|p| format!(" in {p}"))
                .unwrap_or_default(),
            e.expires.as_deref().unwrap_or("withdrawn"),
            e.reason,
            e.added_by,
            e.added
        );
    }
}

fn policy(
    target: &Target,
    feed: &str,
    refuse_at: Option<&str>,
    (fixable_only, virtual_tags): (bool, bool),
    (on_push, on_pull): (Option<&str>, Option<&str>),
    remove: bool,
) -> anyhow::Result<()> {
    let path = format!("/feeds/{feed}/vuln-policy");
    if remove {
        target.run::<serde_json::Value>(Request::delete(&path), |a| {
            a.feed::<FeedAdmin>(feed)?
                .vulnerabilities()
                .set_policy(None)?;
            Ok(serde_json::Value::Null)
        })?;
        println!("feed {feed} has no vulnerability policy now");
        return Ok(());
    }
    let shown: Option<VulnPolicy> = if let Some(at) = refuse_at {
        let wanted = VulnPolicy {
            refuse_at: severity(at)?.to_string(),
            fixable_only,
            on_push: gate("--on-push", on_push)?,
            on_pull: gate("--on-pull", on_pull)?,
            virtual_tags,
            exceptions: Vec::new(),
        };
        target.run(Request::send("PUT", &path, &wanted), |a| {
            Ok(a.feed::<FeedAdmin>(feed)?
                .vulnerabilities()
                .set_policy(Some(wanted.to_domain()?))?
                .map(Into::into))
        })?
    } else {
        target.run(Request::get(&path), |a| {
            Ok(a.feed::<Pull>(feed)?
                .vulnerabilities()
                .policy()?
                .map(Into::into))
        })?
    };
    show_policy(feed, shown.as_ref());
    Ok(())
}

fn exception(target: &Target, action: ExceptionAction) -> anyhow::Result<()> {
    match action {
        ExceptionAction::Add {
            feed,
            advisory,
            reason,
            package,
            expires,
        } => {
            let wanted = VulnException {
                advisory,
                package,
                expires,
                reason,
                added_by: String::new(),
                added: String::new(),
            };
            let path = format!("/feeds/{feed}/vuln-policy/exceptions");
            let shown: Option<VulnPolicy> =
                target.run(Request::send("POST", &path, &wanted), |a| {
                    Ok(a.feed::<FeedAdmin>(&feed)?
                        .vulnerabilities()
                        .add_exception(wanted.clone().into())?
                        .map(Into::into))
                })?;
            show_policy(&feed, shown.as_ref());
        }
        ExceptionAction::Remove { feed, advisory } => {
            let path = format!("/feeds/{feed}/vuln-policy/exceptions/{advisory}");
            target.run::<serde_json::Value>(Request::delete(&path), |a| {
                a.feed::<FeedAdmin>(&feed)?
                    .vulnerabilities()
                    .remove_exception(&advisory)?;
                Ok(serde_json::Value::Null)
            })?;
            println!("feed {feed}: exception for {advisory} withdrawn");
        }
    }
    Ok(())
}

fn affected(target: &Target, advisory: &str) -> anyhow::Result<()> {
    let query = serde_urlencoded::to_string([("id", advisory)])?;
    let found: AffectedReport = target.run(
        Request::get(format!("/vulnerabilities/affected?{query}")),
        |a| Ok(a.vulnerable(advisory)?.into()),
    )?;
    println!(
        "{} ({}){}{}",
        found.advisory,
        found.severity,
        if found.aliases.is_empty() {
            String::new()
        } else {
            format!(", also {}", found.aliases.join(", "))
        },
        found
            .summary
            .as_deref()
            .map(|s| format!(": {s}"))
            .unwrap_or_default()
    );
    if found.repositories.is_empty() {
        println!("  no released version you can see carries it");
    }
    for r in &found.repositories {
        println!(
            "  {} {}{} — {}",
            r.repository,
            r.versions.join(", "),
            if r.tags.is_empty() {
                String::new()
            } else {
                format!(" (and {})", r.tags.join(", "))
            },
            r.fixed_in.as_deref().map_or_else(
                || "no fixed version yet".to_owned(),
                |f| format!("fixed in {f}")
            )
        );
    }
    Ok(())
}
