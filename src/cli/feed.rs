//! `semdock feed …`: feeds, their settings and connectors, locally or through the API.

#[allow(clippy::wildcard_imports)]
use super::*;
use crate::domain::access::{FeedAdmin, Pull};
use crate::http::api::dto::{
    FeedInfo, FeedUpdate, NewFeed, SyncReport, UpstreamChange, UpstreamTest,
};
use crate::model::FeedName;

pub(super) fn feed(target: &Target, action: FeedAction) -> anyhow::Result<()> {
    match action {
        FeedAction::Create { name } => {
            create(target, &name)?;
            println!("created feed {name}");
        }
        FeedAction::List { output } => {
            let feeds = to_json(&list(target)?)?;
            let feeds = feeds.as_array().cloned().unwrap_or_default();
            match output {
                Output::Json => println!("{}", serde_json::to_string_pretty(&feeds)?),
                Output::Table => {
                    let on = |f: &serde_json::Value, k: &str| {
                        if f[k] == true { "on" } else { "off" }.to_owned()
                    };
                    let rows: Vec<Vec<String>> = feeds
                        .iter()
                        .map(|f| {
                            vec![
                                f["name"].as_str().unwrap_or_default().to_owned(),
                                on(f, "versioning"),
                                on(f, "anonymous_pull"),
                                f["upstream"]["url"].as_str().unwrap_or("-").to_owned(),
                                entry_of(f),
                                f["description"].as_str().unwrap_or_default().to_owned(),
                            ]
                        })
                        .collect();
                    print_table(
                        &[
                            "FEED",
                            "VERSIONING",
                            "ANONYMOUS PULL",
                            "CONNECTOR UPSTREAM",
                            "ENTRY",
                            "DESCRIPTION",
                        ],
                        &rows,
                    );
                }
            }
        }
        FeedAction::Delete { name } => {
            delete(target, &name)?;
            println!("deleted feed {name}");
        }
        FeedAction::Retention {
            name,
            untagged_days,
            keep_prereleases,
            unpulled_days,
            include_releases,
            off,
        } => {
            let rules = crate::domain::maintenance::retention::Rules {
                untagged_days,
                keep_prereleases,
                unpulled_days,
                include_releases,
            };
            let change = off || !rules.is_empty() || include_releases;
            storage::retention_set(target, &name, change.then(|| rules.into()))?;
        }
        set @ FeedAction::Set { .. } => feed_set(target, set)?,
        FeedAction::TestUpstream { name } => {
            let r = to_json(&test_upstream(target, &name)?)?;
            println!("{}", r["message"].as_str().unwrap_or_default());
            if r["ok"] != true {
                anyhow::bail!("the upstream of {name} is not usable");
            }
        }
        FeedAction::Sync { name } => {
            let r = to_json(&sync(target, &name)?)?;
            println!(
                "feed {name}: {} tags held, {} blobs fetched, {} history records carried, {} errors",
                r["tags"],
                r["blobs_fetched"],
                r["history_carried"],
                r["errors"].as_array().map_or(0, Vec::len)
            );
            for e in r["errors"].as_array().into_iter().flatten() {
                println!("  {}", e.as_str().unwrap_or_default());
            }
            if r["errors"].as_array().is_some_and(|e| !e.is_empty()) {
                anyhow::bail!("the sync of {name} left errors");
            }
        }
    }
    Ok(())
}

pub(super) fn feed_set(target: &Target, action: FeedAction) -> anyhow::Result<()> {
    let FeedAction::Set {
        name,
        versioning,
        permit,
        no_permit,
        anonymous_pull,
        description,
        promotion_from,
        allow_push,
        require_referrer,
        upstream,
        upstream_user,
        upstream_password_file,
        upstream_prefix,
        upstream_ttl,
        offline,
        upstream_allow,
        upstream_deny,
        upstream_latest,
        sync,
        no_sync,
        sync_interval,
    } = action
    else {
        unreachable!("called for feed set only")
    };
    let connector_flags = upstream_user.is_some()
        || upstream_password_file.is_some()
        || upstream_prefix.is_some()
        || upstream_ttl.is_some()
        || offline.is_some()
        || !upstream_allow.is_empty()
        || !upstream_deny.is_empty()
        || upstream_latest.is_some()
        || !sync.is_empty()
        || no_sync
        || sync_interval.is_some();
    let upstream = upstream_url(target, &name, upstream, connector_flags)?;
    let password = upstream_password_file
        .map(|f| {
            std::fs::read_to_string(&f)
                .with_context(|| format!("cannot read {}", f.display()))
                .map(|p| p.lines().next().unwrap_or_default().to_owned())
        })
        .transpose()?;
    let upstream = upstream.map(|url| UpstreamChange {
        url,
        username: upstream_user,
        password,
        prefix: upstream_prefix,
        ttl_seconds: upstream_ttl,
        offline: offline.map(|o| o == "on"),
        allow: (!upstream_allow.is_empty()).then_some(upstream_allow),
        deny: (!upstream_deny.is_empty()).then_some(upstream_deny),
        upstream_latest: upstream_latest.map(|o| o == "on"),
        sync: (no_sync || !sync.is_empty()).then_some(sync),
        sync_interval_seconds: sync_interval,
    });
    let on = |v: Option<String>| v.map(|v| v == "on");
    let change = FeedUpdate {
        description,
        anonymous_pull: on(anonymous_pull),
        versioning: on(versioning),
        permitted: (no_permit || !permit.is_empty()).then_some(permit),
        promotion_sources: (allow_push || !promotion_from.is_empty()).then_some(promotion_from),
        required_referrer: require_referrer,
        upstream,
    };
    let f = to_json(&update(target, &name, change)?)?;
    let permitted: Vec<&str> = f["permitted"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p.as_str())
        .collect();
    let entry = entry_of(&f);
    let referrer = f["required_referrer"]
        .as_str()
        .map(|t| format!(", promotions need a referrer of type {t}"))
        .unwrap_or_default();
    println!(
        "feed {name}: versioning {}, permitted [{}], anonymous pull {}, {entry}{referrer}",
        if f["versioning"] == true { "on" } else { "off" },
        permitted.join(", "),
        if f["anonymous_pull"] == true {
            "on"
        } else {
            "off"
        },
    );
    Ok(())
}

/// The `--upstream` of a `feed set`: as given, or the connector's own URL when only its
/// other settings change (so they change without repeating it).
pub(super) fn upstream_url(
    target: &Target,
    name: &str,
    given: Option<String>,
    connector_flags: bool,
) -> anyhow::Result<Option<String>> {
    if given.is_some() || !connector_flags {
        return Ok(given);
    }
    let feed = to_json(&show(target, name)?)?;
    let url = feed["upstream"]["url"].as_str().with_context(|| {
        format!("feed {name} is not a connector: make it one with --upstream URL")
    })?;
    Ok(Some(url.to_owned()))
}

/// How images enter a feed: from its upstream (a connector), by promotion only, or by push.
pub(super) fn entry_of(f: &serde_json::Value) -> String {
    let up = &f["upstream"];
    if let Some(url) = up["url"].as_str() {
        let ttl = up["ttl_seconds"].as_u64().unwrap_or_default();
        let offline = if up["offline"] == true {
            ", offline: cache only"
        } else {
            ""
        };
        return format!("connector of {url} (mutable tags checked again after {ttl} s{offline})");
    }
    let sources: Vec<&str> = f["promotion_sources"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p.as_str())
        .collect();
    if sources.is_empty() {
        "accepts pushes".to_owned()
    } else {
        format!("accepts promotion from [{}] only", sources.join(", "))
    }
}

// The operations, each written once: the API's request, and the same through `Access`.

fn create(target: &Target, name: &str) -> anyhow::Result<FeedInfo> {
    let new = NewFeed {
        name: name.to_owned(),
        description: String::new(),
        anonymous_pull: false,
        versioning: false,
        permitted: Vec::new(),
        promotion_sources: Vec::new(),
        required_referrer: None,
        upstream: None,
    };
    target.run(Request::send("POST", "/feeds", &new), |a| {
        let feed: FeedName = name.parse()?;
        let created = a.admin()?.create_feed(&feed, new.into_change())?;
        Ok(FeedInfo::of(feed.to_string(), &created))
    })
}

/// Every feed, as the API shows it (`name`, `versioning`, `upstream`, …).
fn list(target: &Target) -> anyhow::Result<Vec<FeedInfo>> {
    target.run(Request::get("/feeds"), |a| {
        Ok(a.feeds()?
            .into_iter()
            .map(|(name, f)| FeedInfo::of(name, &f))
            .collect())
    })
}

/// One feed, as the API shows it.
fn show(target: &Target, name: &str) -> anyhow::Result<FeedInfo> {
    target.run(Request::get(format!("/feeds/{name}")), |a| {
        Ok(FeedInfo::of(
            name.to_owned(),
            &a.feed::<Pull>(name)?.settings()?,
        ))
    })
}

/// Changes feed settings; returns the feed as it now is.
fn update(target: &Target, name: &str, change: FeedUpdate) -> anyhow::Result<FeedInfo> {
    let request = Request::send("PATCH", format!("/feeds/{name}"), &change);
    target.run(request, |a| {
        let updated = a.feed::<FeedAdmin>(name)?.update(change.into())?;
        Ok(FeedInfo::of(name.to_owned(), &updated))
    })
}

fn delete(target: &Target, name: &str) -> anyhow::Result<()> {
    target.run(Request::delete(format!("/feeds/{name}")), |a| {
        Ok(a.admin()?.delete_feed(&name.parse()?)?)
    })
}

fn test_upstream(target: &Target, name: &str) -> anyhow::Result<UpstreamTest> {
    let request = Request::post(format!("/feeds/{name}/upstream/test"));
    target.run(request, |a| {
        Ok(a.feed::<FeedAdmin>(name)?
            .upstream()
            .test_upstream()?
            .into())
    })
}

fn sync(target: &Target, name: &str) -> anyhow::Result<SyncReport> {
    target.run(Request::post(format!("/feeds/{name}/sync")), |a| {
        Ok(a.feed::<FeedAdmin>(name)?.upstream().sync()?.into())
    })
}
