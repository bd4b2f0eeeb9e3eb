//! Tags and their history: `semdock tag`, `history`, `promote`, `purge`, `audit`.

#[allow(clippy::wildcard_imports)]
use super::*;

/// `semdock purge IMAGE [--live]`.
pub(super) fn purge(target: &Target, image: &str, live: bool) -> anyhow::Result<()> {
    if let Err(e) = target.purge(image, live) {
        // The API's refusal tells an API client how to confirm; here that is --live.
        if !live && e.to_string().contains(" is live: delete it first") {
            bail!(
                "{image} is still live: delete it first (`semdock tag delete {image}`), then purge it; or delete and purge it in one step with `semdock purge {image} --live`"
            );
        }
        return Err(e);
    }
    println!("purged {image}: its number is free");
    Ok(())
}

/// `semdock tag delete IMAGE`.
pub(super) fn tag(target: &Target, action: TagAction) -> anyhow::Result<()> {
    match action {
        TagAction::Delete { image } => {
            target.tag_delete(&image)?;
            println!("deleted {image}");
        }
    }
    Ok(())
}

/// `semdock history REPOSITORY [--tag T [--at TIME]] [--limit N] [--output json]`.
pub(super) fn history(config: &Config, command: Command) -> anyhow::Result<()> {
    let Command::History {
        repository,
        tag,
        at,
        limit,
        output,
        remote,
    } = command
    else {
        unreachable!("called for history only")
    };
    let found =
        target(config, &remote)?.history(&repository, tag.as_deref(), at.as_deref(), limit)?;
    match output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&found)?),
        Output::Table => print_history(&found, at.is_some()),
    }
    Ok(())
}

pub(super) fn promote(config: &Config, command: Command) -> anyhow::Result<()> {
    let Command::Promote {
        from,
        to,
        expected_digest,
        comment,
        include_referrers,
        remote,
    } = command
    else {
        unreachable!("called for promote only")
    };
    let done = target(config, &remote)?.promote(
        &from,
        &to,
        expected_digest.as_deref(),
        comment.as_deref(),
        include_referrers,
        &registry_hosts(config, &remote),
    )?;
    let verb = if done["changed"] == true {
        "now points"
    } else {
        "already pointed"
    };
    println!(
        "{to} {verb} at {}",
        done["digest"].as_str().unwrap_or_default()
    );
    Ok(())
}

/// The audit API's query of `semdock audit`: times typed at the prompt as Unix seconds.
pub(super) fn audit_query(
    since: Option<String>,
    until: Option<String>,
    filters: [(&'static str, Option<String>); 3],
    jsonl: bool,
) -> anyhow::Result<Vec<(&'static str, String)>> {
    let time = |t: String| -> anyhow::Result<String> {
        let ms = crate::model::instant::parse(&t, now_ms(), true).map_err(anyhow::Error::msg)?;
        Ok((ms / 1000).to_string())
    };
    let mut query = Vec::new();
    if let Some(t) = since {
        query.push(("since", time(t)?));
    }
    if let Some(t) = until {
        query.push(("until", time(t)?));
    }
    for (k, v) in filters {
        if let Some(v) = v {
            query.push((k, v));
        }
    }
    if jsonl {
        query.push(("order", "oldest".to_owned()));
    }
    Ok(query)
}

/// Audit entries as lines (time, kind, actor, feed, change), or as JSON lines.
pub(super) fn print_audit(entries: &[serde_json::Value], jsonl: bool) {
    for e in entries {
        if jsonl {
            println!("{e}");
            continue;
        }
        let text = |k: &str| {
            e[k].as_str()
                .filter(|v| !v.is_empty())
                .unwrap_or("-")
                .to_owned()
        };
        println!(
            "{}\t{}\t{}\t{}\t{}",
            text("time"),
            text("kind"),
            text("actor"),
            text("feed"),
            text("change")
        );
    }
}

/// A history as lines (time, tag, change, old -> new, actor), or the digest a tag had `--at`
/// (and the version, for a virtual tag).
pub(super) fn print_history(found: &serde_json::Value, at: bool) {
    if at {
        match (found["digest"].as_str(), found["version"].as_str()) {
            (Some(digest), Some(version)) => println!("{digest} (version {version})"),
            (Some(digest), None) => println!("{digest}"),
            (None, _) => println!("(none: the tag did not exist then)"),
        }
        return;
    }
    for h in found.as_array().into_iter().flatten() {
        let text = |k: &str| h[k].as_str().unwrap_or("-").to_owned();
        println!(
            "{}\t{}\t{}\t{} -> {}\t{}",
            text("time"),
            text("tag"),
            text("method"),
            text("old"),
            text("new"),
            text("actor")
        );
    }
}
