//! `[vulndb] urls`: OSV files fetched on a schedule from a mirror the site keeps, and
//! imported as `semdock vulndb import` would (one node of a cluster at a time). A file whose
//! `ETag` has not changed since this process last imported it is not imported again.

use std::collections::HashMap;
use std::io::Read as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::clients::outbound::Outbound;
use crate::config::Config;
use crate::domain::Registry;

/// The largest file fetched, as for an import through the API.
const LIMIT: u64 = 512 << 20;

/// Starts the schedule when `[vulndb] urls` names any: at once, then every
/// `interval_hours`.
pub(super) fn schedule(
    config: &Config,
    registry: &Arc<Registry>,
    outbound: &Arc<Outbound>,
) -> Option<actix_web::rt::task::JoinHandle<()>> {
    let urls = config.vulndb.urls.clone();
    if urls.is_empty() {
        return None;
    }
    let every = Duration::from_secs(config.vulndb.interval_hours.saturating_mul(3600));
    // Mirrors are where the administrator points them, but still only where the outbound
    // policy allows.
    let agent = outbound.agent(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_mins(10)))
            .user_agent(format!("semdock/{}", env!("CARGO_PKG_VERSION"))),
    );
    let registry = registry.clone();
    let etags = Arc::new(Mutex::new(HashMap::<String, String>::new()));
    Some(actix_web::rt::spawn(async move {
        loop {
            let (r, a, u, e) = (registry.clone(), agent.clone(), urls.clone(), etags.clone());
            let _ = actix_web::rt::task::spawn_blocking(move || {
                if !super::paused(&r) {
                    fetch_all(&r, &a, &u, &e);
                }
            })
            .await;
            if every.is_zero() {
                break;
            }
            actix_web::rt::time::sleep(every).await;
        }
    }))
}

fn fetch_all(
    registry: &Registry,
    agent: &ureq::Agent,
    urls: &[String],
    etags: &Mutex<HashMap<String, String>>,
) {
    let _lock = match registry.vulns().exclusive() {
        Ok(Some(lock)) => lock,
        Ok(None) => return,
        Err(e) => {
            tracing::error!(error = %e, "the vulnerability database fetch could not start");
            return;
        }
    };
    for url in urls {
        if let Err(e) = fetch(registry, agent, url, etags) {
            tracing::error!(url, error = %e, "an OSV file could not be fetched and imported");
        }
    }
}

fn fetch(
    registry: &Registry,
    agent: &ureq::Agent,
    url: &str,
    etags: &Mutex<HashMap<String, String>>,
) -> Result<(), String> {
    let known = etags
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .get(url)
        .cloned();
    let mut request = agent.get(url);
    if let Some(tag) = &known {
        request = request.header("If-None-Match", tag);
    }
    let mut res = request.call().map_err(|e| e.to_string())?;
    match res.status().as_u16() {
        304 => return Ok(()),
        200 => {}
        other => return Err(format!("the mirror answered {other}")),
    }
    let etag = res
        .headers()
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut body = Vec::new();
    res.body_mut()
        .as_reader()
        .take(LIMIT + 1)
        .read_to_end(&mut body)
        .map_err(|e| e.to_string())?;
    if body.len() as u64 > LIMIT {
        return Err(format!("it is larger than {} MiB", LIMIT >> 20));
    }
    let name = url
        .split(['?', '#'])
        .next()
        .and_then(|u| u.rsplit('/').next())
        .filter(|n| !n.is_empty())
        .unwrap_or(url);
    let done = registry
        .vulns()
        .import(name, std::io::Cursor::new(body), "scheduler")
        .map_err(|e| e.to_string())?;
    tracing::info!(
        url,
        records = done.records,
        epoch = done.epoch,
        "OSV file fetched and imported"
    );
    if let Some(tag) = etag {
        etags
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(url.to_owned(), tag);
    }
    Ok(())
}
