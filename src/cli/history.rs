//! Tags and their history: `semdock tag`, `history`, `promote`, `purge`, `audit`.

#[allow(clippy::wildcard_imports)]
use super::*;
use crate::domain::access::{Delete, FeedAdmin, Pull};
use crate::http::api::dto::{
    self, AuditEntry, HistoryEntry, Promoted, PromotionRequest, PurgeRequest, Resolved,
};
use crate::http::api::{AuditParams, PromoteArgs, do_promote};
use crate::model::{Reference, Repository, parse_image};

/// `semdock purge IMAGE [--live]`.
pub(super) fn purge(target: &Target, image: &str, live: bool) -> anyhow::Result<()> {
    if let Err(e) = purge_tag(target, image, live) {
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
            delete_tag(target, &image)?;
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
    let target = target(config, &remote)?;
    let found = match (tag.as_deref(), at.as_deref()) {
        (Some(tag), Some(at)) => tag_at(&target, &repository, tag, at)?,
        (tag, _) => to_json(&changes(&target, &repository, tag, limit)?)?,
    };
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
    let request = PromotionRequest {
        from,
        to,
        expected_digest,
        comment,
        include_referrers,
    };
    let hosts = registry_hosts(config, &remote);
    let done = to_json(&promote_image(&target(config, &remote)?, &request, &hosts)?)?;
    let to = request.to;
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

// The operations, each written once: the API's request, and the same through `Access`.

/// Promotes or retags `from` (`FEED/NAME:TAG|@DIGEST`) to `to` (`FEED/NAME:TAG`).
fn promote_image(
    target: &Target,
    request: &PromotionRequest,
    hosts: &[String],
) -> anyhow::Result<Promoted> {
    target.run(Request::send("POST", "/promotions", request), |a| {
        let args = PromoteArgs {
            from: &request.from,
            to: &request.to,
            expected: request.expected_digest.as_deref(),
            comment: request.comment.as_deref(),
            include_referrers: request.include_referrers,
            hosts,
        };
        Ok(do_promote(a, &args)?.into())
    })
}

/// The pinned reference `HOST/FEED/NAME@DIGEST` of what `image` points at now.
pub(super) fn resolve(target: &Target, image: &str, hosts: &[String]) -> anyhow::Result<String> {
    let query = serde_urlencoded::to_string([("ref", image)])?;
    let resolved: Resolved = target.run(Request::get(format!("/resolve?{query}")), |a| {
        let host = hosts.first().map_or("localhost", String::as_str);
        Ok(crate::http::api::resolve_ref(a, image, hosts, host)?)
    })?;
    Ok(resolved.pinned)
}

/// Audit entries matching `query` (`since=…&kind=…`), `limit` at most, newest first.
pub(super) fn audit(
    target: &Target,
    query: &[(&str, String)],
    limit: Option<usize>,
) -> anyhow::Result<Vec<AuditEntry>> {
    let query = serde_urlencoded::to_string(query)?;
    target.run_list(&format!("/audit?{query}"), limit, |a| {
        let params: AuditParams = serde_urlencoded::from_str(&query)?;
        let mut q = params.query()?;
        let mut out = Vec::new();
        loop {
            let (page, next) = a.audit(&q)?;
            out.extend(dto::all::<AuditEntry, _>(page));
            if limit.is_some_and(|l| out.len() >= l) || next.is_none() {
                break;
            }
            q.last = next;
        }
        Ok(out)
    })
}

/// `image` (`FEED/NAME:TAG`) and its tag, for commands that take a tag only.
fn tag_of(image: &str, refused: &str) -> anyhow::Result<(Repository, crate::model::Tag)> {
    let (repo, reference) = parse_image(image)?;
    let Reference::Tag(tag) = reference else {
        bail!("{refused}");
    };
    Ok((repo, tag))
}

/// Deletes the tag `image` (`FEED/NAME:TAG`).
fn delete_tag(target: &Target, image: &str) -> anyhow::Result<()> {
    let (repo, tag) = tag_of(image, "tag delete takes FEED/NAME:TAG, not a digest")?;
    let request = Request::delete(format!("/repositories/{repo}/tags/{tag}"));
    target.run(request, |a| {
        let reference = Reference::Tag(tag.clone());
        Ok(a.feed::<Delete>(repo.feed())?
            .delete_manifest(&repo, &reference)?)
    })
}

/// Frees a deleted version's number; a live tag only with `live` (the tag confirmed).
fn purge_tag(target: &Target, image: &str, live: bool) -> anyhow::Result<()> {
    let (repo, tag) = tag_of(image, "purge takes FEED/NAME:TAG")?;
    let confirm = PurgeRequest {
        confirm: live.then(|| tag.to_string()),
    };
    let request = Request::send(
        "POST",
        format!("/repositories/{repo}/tags/{tag}/purge"),
        &confirm,
    );
    target.run(request, |a| {
        let feed = a.feed::<FeedAdmin>(repo.feed())?;
        Ok(feed.purge(&repo, &tag, confirm.confirm.as_deref())?)
    })
}

/// What `tag` of `repo` pointed to at `at` (a time as typed: relative times are this
/// machine's, sent as RFC 3339).
fn tag_at(target: &Target, repo: &str, tag: &str, at: &str) -> anyhow::Result<serde_json::Value> {
    let ms = crate::model::instant::parse(at, now_ms(), true).map_err(anyhow::Error::msg)?;
    let sent = humantime::format_rfc3339_millis(
        std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms),
    )
    .to_string();
    let query = serde_urlencoded::to_string([("tag", tag), ("at", sent.as_str())])?;
    let path = format!("/repositories/{repo}/history?{query}");
    target.run(Request::get(path), |a| {
        let repo: Repository = repo.parse()?;
        let feed = a.feed::<Pull>(repo.feed())?;
        let state = feed.tag_state_at(&repo, tag, ms)?;
        if state.is_none() {
            // Only to refuse a repository that does not exist.
            let one = crate::domain::TagQuery {
                n: Some(1),
                ..crate::domain::TagQuery::default()
            };
            feed.tag_groups(&repo, &one)?;
        }
        let (digest, version) = state.map_or((None, None), |s| (Some(s.digest), s.version));
        // Not the API's `TagAt`: the local answer names the time as typed, and a version
        // always (null or not), as it always has.
        Ok(serde_json::json!({"tag": tag, "at": at, "digest": digest, "version": version}))
    })
}

/// The changes of a repository or of one tag, oldest first: the newest `limit` of them.
fn changes(
    target: &Target,
    repo: &str,
    tag: Option<&str>,
    limit: Option<usize>,
) -> anyhow::Result<Vec<HistoryEntry>> {
    // With a limit, the newest changes: read newest first, then turned around.
    let order = limit.map(|_| "newest");
    let query: Vec<(&str, &str)> = [("tag", tag), ("order", order)]
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect();
    let path = if query.is_empty() {
        format!("/repositories/{repo}/history")
    } else {
        format!(
            "/repositories/{repo}/history?{}",
            serde_urlencoded::to_string(&query)?
        )
    };
    let mut changes = target.run_list(&path, limit, |a| {
        let repo: Repository = repo.parse()?;
        let feed = a.feed::<Pull>(repo.feed())?;
        let mut q = crate::domain::HistoryQuery {
            tag: tag.map(str::to_owned),
            newest_first: limit.is_some(),
            ..crate::domain::HistoryQuery::default()
        };
        let mut read = Vec::new();
        loop {
            let (page, next) = feed.history(&repo, &q)?;
            read.extend(dto::all::<HistoryEntry, _>(page));
            if limit.is_some_and(|l| read.len() >= l) || next.is_none() {
                break;
            }
            q.last = next;
        }
        Ok(read)
    })?;
    if limit.is_some() {
        changes.reverse();
    }
    Ok(changes)
}

/// Now, in milliseconds since the epoch, for relative times typed at the prompt.
pub(super) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
