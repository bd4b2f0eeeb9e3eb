//! The composition root: opens the registry from configuration and serves HTTP until a
//! signal (SIGTERM, Ctrl-C) asks it to stop; in-flight requests finish first.

use std::sync::Arc;

use actix_web::{App, HttpServer, middleware};

use crate::config::Config;
use crate::domain::{self, Limits, Registry};
use crate::http;
use crate::model::FeedName;

/// Opens the registry in the configured data directory and creates the configured feeds.
pub fn open_registry(config: &Config) -> Result<Registry, domain::Error> {
    let registry = Registry::open(
        &config.data_dir,
        Limits {
            manifest_bytes: config.limits.manifest_bytes,
            upload_bytes: config.limits.upload_bytes,
        },
    )?;
    for feed in &config.feeds {
        let name: FeedName = feed.parse()?;
        if registry.ensure_feed(&name)? {
            tracing::info!(feed, "created feed");
        }
    }
    Ok(registry)
}

/// Serves `registry` on the configured address until shut down.
pub async fn serve(config: &Config, registry: Registry) -> std::io::Result<()> {
    let registry = Arc::new(registry);
    let shared = registry.clone();
    let server = HttpServer::new(move || {
        App::new()
            .wrap(middleware::from_fn(http::access_log::log_request))
            .configure(http::configure(shared.clone()))
    })
    .bind(config.listen)?;
    for addr in server.addrs() {
        tracing::info!(%addr, data_dir = %config.data_dir.display(), "semdock listening");
    }
    server.run().await?;
    match Arc::try_unwrap(registry) {
        Ok(registry) => {
            drop(registry);
            tracing::info!("stopped; database closed cleanly");
        }
        Err(_) => {
            tracing::warn!("stopped while work was still running; redb will recover on next start");
        }
    }
    Ok(())
}
