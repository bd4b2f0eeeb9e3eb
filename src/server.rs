//! The composition root: opens the domain services from configuration and serves HTTP (or
//! HTTPS) until a signal (SIGTERM, Ctrl-C) asks it to stop; in-flight requests finish first.

use std::sync::Arc;

use actix_web::{App, HttpServer, middleware};

use crate::config::{Config, TlsConfig};
use crate::domain::{self, Services};
use crate::http;
use crate::model::FeedName;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Domain(#[from] domain::Error),
    #[error("TLS: {0}")]
    Tls(String),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Opens the services in the configured data directory and creates the configured feeds.
pub fn open(config: &Config) -> Result<Services, domain::Error> {
    let services = Services::open(&config.data_dir, config.limits(), config.token_settings())?;
    if let Some(password) = &services.initial_password {
        // Printed once, on the start that created it; the file keeps it for the operator.
        tracing::warn!(
            user = domain::auth::INITIAL_ADMIN,
            password,
            file = %config.data_dir.join(domain::auth::INITIAL_PASSWORD_FILE).display(),
            "created the first administrator; log in and change this password"
        );
    }
    for feed in &config.feeds {
        let name: FeedName = feed.parse()?;
        if services.registry.ensure_feed(&name)? {
            tracing::info!(feed, "created feed");
        }
    }
    Ok(services)
}

fn tls_config(tls: &TlsConfig) -> Result<rustls::ServerConfig, StartError> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let read = |what: &str, path: &std::path::Path, e: &dyn std::fmt::Display| {
        StartError::Tls(format!("cannot read the {what} {}: {e}", path.display()))
    };
    let certs = CertificateDer::pem_file_iter(&tls.cert_file)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(|e| read("certificate", &tls.cert_file, &e))?;
    let key =
        PrivateKeyDer::from_pem_file(&tls.key_file).map_err(|e| read("key", &tls.key_file, &e))?;
    rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_no_client_auth().with_single_cert(certs, key))
        .map_err(|e| StartError::Tls(e.to_string()))
}

/// Serves the services on the configured address until shut down.
pub async fn serve(config: &Config, services: Services) -> Result<(), StartError> {
    let Services { registry, auth, .. } = services;
    let realm = http::Realm {
        external_url: config.external_url.clone(),
    };
    let (r, a) = (registry.clone(), auth.clone());
    let server = HttpServer::new(move || {
        App::new()
            .wrap(middleware::from_fn(http::access_log::log_request))
            .configure(http::configure(r.clone(), a.clone(), realm.clone()))
    });
    let server = match &config.tls {
        Some(tls) => server.bind_rustls_0_23(config.listen, tls_config(tls)?)?,
        None => server.bind(config.listen)?,
    };
    let scheme = if config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    for addr in server.addrs() {
        tracing::info!(%addr, scheme, data_dir = %config.data_dir.display(), "semdock listening");
    }
    server.run().await?;
    drop(auth);
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
