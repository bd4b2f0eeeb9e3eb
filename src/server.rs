//! The composition root: opens the domain services from configuration and serves HTTP (or
//! HTTPS) until a signal (SIGTERM, Ctrl-C) asks it to stop; in-flight requests finish first.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

mod vulndb;

use actix_web::{App, HttpServer, middleware};

use crate::config::{Config, TlsConfig};
use crate::domain::auth::TokenSettings;
use crate::domain::{self, Limits, Registry, Services};
use crate::http;
use crate::model::FeedName;
use crate::store::blobs::Blobs;
use crate::store::blobs::fs::FsBlobs;
use crate::store::meta::Metadata;
use crate::store::meta::redb::RedbMeta;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Domain(#[from] domain::Error),
    #[error("TLS: {0}")]
    Tls(String),
    #[error("{0}")]
    Listen(String),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Opens the services in the configured data directory and creates the configured feeds.
pub fn open(config: &Config) -> Result<Services, domain::Error> {
    let services = open_services(config, true)?;
    services.registry.release_scan_leases()?;
    services.registry.build_search_index()?;
    services.registry.count_usage()?;
    if let Some(d) = open_directory(config).map_err(domain::Error::Invalid)? {
        services.auth.set_directory(Arc::new(d));
    }
    let outbound = config
        .outbound(vec![config.listen])
        .map_err(domain::Error::Invalid)?;
    services
        .registry
        .connector()
        .set_outbound(Arc::new(outbound));
    if services.initial_password.is_some() {
        // Only where it is: a log is kept for weeks and read by more people than the file.
        tracing::warn!(
            user = domain::auth::INITIAL_ADMIN,
            file = %config.data_dir.join(domain::auth::INITIAL_PASSWORD_FILE).display(),
            "created the first administrator: its password is in this file (readable by the service account only), which is removed when the password is changed"
        );
    }
    for feed in &config.feeds {
        let name: FeedName = feed.parse()?;
        if services.registry.feeds().ensure(&name)? {
            tracing::info!(feed, "created feed");
        }
    }
    if let Some(mirror) = &config.mirror_feed {
        match services.registry.feeds().get(mirror) {
            Ok(feed) if feed.upstream.is_none() => tracing::warn!(
                feed = mirror,
                "mirror_feed names a feed that is not a connector: pulls naming no feed find only what was pushed to it (make it one with `semdock feed set {mirror} --upstream URL`)"
            ),
            Ok(_) => {}
            Err(domain::Error::FeedUnknown { .. }) => {
                return Err(domain::Error::Invalid(format!(
                    "mirror_feed = {mirror:?} names no feed of this registry: create the connector feed (`semdock feed create {mirror}`, then `semdock feed set {mirror} --upstream URL`, or add it to feeds), or unset mirror_feed"
                )));
            }
            Err(e) => return Err(e),
        }
        // Docker Hub's official images are `library/…`: a feed of that name answers them.
        if services.registry.feeds().get("library").is_ok() {
            tracing::warn!(
                feed = mirror,
                "a feed named library exists: pulls of library/… (Docker Hub's official images) are answered by it, not by the mirror feed; only names whose first segment is no feed go to the mirror"
            );
        }
    }
    for (feed, rules) in &config.retention {
        let stored = services.registry.maintenance().retention(feed)?;
        if stored.is_empty() && !rules.is_empty() {
            services
                .registry
                .maintenance()
                .set_retention(feed, rules, "config")?;
            tracing::info!(feed, "stored retention rules from the configuration");
        }
    }
    Ok(services)
}

/// The services over the configured stores. Only with `create` (what `serve` does) may an
/// embedded registry be created in a data directory that holds none; the offline commands
/// refuse, naming the directory, so that they never create a registry no server uses.
pub fn open_services(config: &Config, create: bool) -> Result<Services, domain::Error> {
    use crate::config::{BlobEngine, MetadataEngine};
    let (limits, tokens) = (config.limits(), config.token_settings());
    if config.storage.metadata == MetadataEngine::Embedded
        && config.storage.blobs == BlobEngine::Files
    {
        return open_embedded(&config.data_dir, limits, tokens, create);
    }
    let (meta, blobs) = open_stores(config, create)?;
    Services::with_stores(meta, blobs, &config.data_dir, limits, tokens)
}

/// A metadata engine and a blob store, opened.
pub type Stores = (Arc<dyn Metadata>, Arc<dyn Blobs>);

/// The configured metadata engine and blob store themselves, with no registry over them
/// (what `storage migrate` writes into). `create` as for [`open_services`].
pub fn open_stores(config: &Config, create: bool) -> Result<Stores, domain::Error> {
    use crate::config::{BlobEngine, MetadataEngine};
    let embedded = config.storage.metadata == MetadataEngine::Embedded;
    if create || !embedded {
        crate::store::owner_only::create_dir_all(&config.data_dir)
            .map_err(|e| domain::Error::io("create the data directory", &config.data_dir, &e))?;
    }
    let meta: Arc<dyn Metadata> = if embedded {
        Arc::new(embedded_meta(&config.data_dir, config.limits(), create)?)
    } else {
        Arc::new(open_postgres(config, true)?)
    };
    let blobs: Arc<dyn Blobs> = match config.storage.blobs {
        BlobEngine::Files => Arc::new(file_blobs(&config.data_dir)?),
        BlobEngine::S3 => Arc::new(open_s3(config)?),
    };
    Ok((meta, blobs))
}

/// The services over the embedded engines of `data_dir` (`meta.redb`, `blobs/`,
/// `uploads/`). Only with `create` (what `serve` does) is a registry, with its first
/// administrator, created in a directory that holds none; without it such a directory is
/// refused, naming it, so that an offline command never creates a registry no server uses.
pub fn open_embedded(
    data_dir: &Path,
    limits: Limits,
    tokens: TokenSettings,
    create: bool,
) -> Result<Services, domain::Error> {
    if create {
        crate::store::owner_only::create_dir_all(data_dir)
            .map_err(|e| domain::Error::io("create the data directory", data_dir, &e))?;
        crate::store::owner_only::restrict_dir(data_dir);
    }
    let meta = Arc::new(embedded_meta(data_dir, limits, create)?);
    let blobs = Arc::new(file_blobs(data_dir)?);
    Services::with_stores(meta, blobs, data_dir, limits, tokens)
}

/// The registry alone over the embedded engines of `data_dir`, created when it holds none:
/// what the benchmarks of the domain measure.
pub fn open_embedded_registry(data_dir: &Path, limits: Limits) -> Result<Registry, domain::Error> {
    crate::store::owner_only::create_dir_all(data_dir)
        .map_err(|e| domain::Error::io("create the data directory", data_dir, &e))?;
    let meta = Arc::new(embedded_meta(data_dir, limits, true)?);
    let blobs = Arc::new(file_blobs(data_dir)?);
    Ok(Registry::with_stores(meta, blobs, limits))
}

/// The embedded metadata (`meta.redb` in `data_dir`); only with `create` is one created
/// where there is none.
fn embedded_meta(data_dir: &Path, limits: Limits, create: bool) -> Result<RedbMeta, domain::Error> {
    let path = data_dir.join(domain::META_FILE);
    if !create && !path.is_file() {
        return Err(domain::Error::NotFound(format!(
            "there is no registry in {}: set data_dir (or SEMDOCK_DATA_DIR, or --config) to the directory `semdock serve` uses, or pass --server URL",
            std::path::absolute(data_dir)
                .unwrap_or_else(|_| data_dir.to_owned())
                .display()
        )));
    }
    RedbMeta::open_with_cache(&path, limits.metadata_cache_bytes).map_err(|e| match e {
        e @ crate::store::meta::MetaError::InUse(_) => domain::Error::from(e),
        other => domain::Error::Internal(format!(
            "cannot open the database {}: {other}",
            path.display()
        )),
    })
}

/// The blob files of `data_dir`, their directories created when missing.
fn file_blobs(data_dir: &Path) -> Result<FsBlobs, domain::Error> {
    FsBlobs::open(data_dir)
        .map_err(|e| domain::Error::io("create the blob directories in", data_dir, &e))
}

/// The S3 blob engine of `[storage.s3]`, checked to answer; a sentence naming what failed
/// when it does not.
pub fn open_s3(config: &Config) -> Result<crate::store::blobs::s3::S3Blobs, domain::Error> {
    use crate::store::blobs::Blobs as _;
    let s3 = config.storage.s3.as_ref().ok_or_else(|| {
        domain::Error::Invalid(
            "storage.blobs is \"s3\" but [storage.s3] (its bucket and access_key_id) is not set"
                .into(),
        )
    })?;
    let location = crate::store::blobs::s3::S3Location {
        endpoint: s3.endpoint.clone(),
        bucket: s3.bucket.clone(),
        region: s3.region.clone(),
        path_style: s3.path_style,
        access_key_id: s3.access_key_id.clone(),
        secret_access_key: s3.secret().map_err(domain::Error::Invalid)?,
        prefix: s3.prefix.clone(),
    };
    let mut engine = crate::store::blobs::s3::S3Blobs::open(&location)
        .map_err(|e| domain::Error::Invalid(format!("storage.s3: {e}")))?;
    if s3.redirect_seconds > 0 {
        engine = engine.with_redirects(Duration::from_secs(s3.redirect_seconds));
    }
    engine.probe().map_err(|e| {
        domain::Error::Unavailable(format!(
            "cannot reach bucket {:?} of the object store ({}): {e}",
            s3.bucket,
            s3.endpoint
                .as_deref()
                .unwrap_or("AWS S3, storage.s3.region")
        ))
    })?;
    Ok(engine)
}

/// The PostgreSQL metadata engine of `[storage.postgres]`, its schema brought up to date
/// when `migrated`; a sentence naming what failed when it cannot be.
pub fn open_postgres(
    config: &Config,
    migrated: bool,
) -> Result<crate::store::meta::postgres::PgMeta, domain::Error> {
    let pg = config.storage.postgres.as_ref().ok_or_else(|| {
        domain::Error::Invalid(
            "storage.metadata is \"postgres\" but [storage.postgres] (its url) is not set".into(),
        )
    })?;
    let password = pg.password().map_err(domain::Error::Invalid)?;
    let open = if migrated {
        crate::store::meta::postgres::PgMeta::connect_with
    } else {
        crate::store::meta::postgres::PgMeta::open_with
    };
    open(&pg.url, password.as_deref(), pg.ca_file.as_deref()).map_err(|e| {
        domain::Error::Unavailable(format!(
            "cannot open the metadata database (storage.postgres.url): {e}"
        ))
    })
}

/// A scheduled maintenance job.
type Job = fn(&Registry, &Config);

/// How often last-pull times are written: one small transaction per interval at most.
const PULL_FLUSH: Duration = Duration::from_mins(1);

/// How often idle upload sessions are looked for, so that empty ones go within
/// `storage.empty_upload_expiry_seconds` rather than at the next GC.
const UPLOAD_SWEEP: Duration = Duration::from_mins(1);

/// How often freed heap memory is handed back to the operating system.
const MEMORY_RELEASE: Duration = Duration::from_mins(1);

/// How long an idle kept-alive client connection stays open (see `serve`).
pub const IDLE_CONNECTION: Duration = Duration::from_secs(75);

/// Hands freed heap pages back to the operating system (glibc keeps them otherwise).
fn release_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim takes the allocator's own locks; any thread may call it.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Runs garbage collection, retention and the pull-time flush on their intervals, off the
/// request executor. Failures are logged; the next interval tries again.
fn schedule(
    config: &Config,
    registry: &Arc<Registry>,
    bound: Option<String>,
    outbound: &Arc<crate::clients::outbound::Outbound>,
) -> Vec<actix_web::rt::task::JoinHandle<()>> {
    let every = |secs: u64| (secs > 0).then(|| Duration::from_secs(secs));
    // (interval, changes content: paused while read-only, job)
    // The scrub hashes the files of this node; an object store checks its own objects (and
    // every node of a cluster would read the whole bucket).
    let scrub = (config.storage.blobs == crate::config::BlobEngine::Files)
        .then(|| every(config.storage.scrub_interval_seconds))
        .flatten();
    let jobs: [(Option<Duration>, bool, Job); 10] = [
        (Some(MEMORY_RELEASE), false, |_, _| release_memory()),
        (Some(UPLOAD_SWEEP), true, |r, c| {
            if let Err(e) = r.maintenance().expire_uploads(c.gc_options(false)) {
                tracing::error!(error = %e, "could not expire idle uploads");
            }
        }),
        (Some(PULL_FLUSH), false, |r, _| {
            if let Err(e) = r.maintenance().flush_pulls() {
                tracing::error!(error = %e, "could not write last-pull times");
            }
        }),
        (
            every(config.storage.retention_interval_seconds),
            true,
            |r, _| {
                let feeds = r.maintenance().feeds_with_retention().unwrap_or_default();
                for feed in feeds {
                    if let Err(e) = r.maintenance().run_retention_by(&feed, false, "scheduler") {
                        tracing::error!(feed, error = %e, "retention run failed");
                    }
                }
            },
        ),
        (
            (config.audit.retention_days > 0).then_some(AUDIT_EXPIRY),
            false,
            |r, c| match r.feeds().expire_audit(c.audit.retention_days) {
                Ok(0) => {}
                Ok(n) => tracing::info!(removed = n, "old audit entries removed"),
                Err(e) => tracing::error!(error = %e, "could not remove old audit entries"),
            },
        ),
        (Some(SBOM_TICK), true, |r, _| {
            if let Err(e) = r.scan_queued() {
                tracing::error!(error = %e, "could not read queued images");
            }
        }),
        // Replication reads content and pushes it elsewhere: it goes on in read-only mode.
        (
            Some(registry.replication().poll_interval()),
            false,
            |r, _| {
                if let Err(e) = r.replication().poll() {
                    tracing::error!(error = %e, "could not run replication");
                }
            },
        ),
        (Some(SYNC_TICK), true, |r, _| {
            if let Err(e) = r.connector().sync_due() {
                tracing::error!(error = %e, "could not run connector syncs");
            }
        }),
        (scrub, true, scrub_blobs),
        (every(config.storage.gc_interval_seconds), true, |r, c| {
            if let Err(e) = r
                .maintenance()
                .gc_by(c.gc_options(false), &|_, _, _| {}, "scheduler")
            {
                tracing::error!(error = %e, "garbage collection failed");
            }
        }),
    ];
    let mut handles = vec![deliver_webhooks(config, registry, bound, outbound)];
    handles.extend(vulndb::schedule(config, registry, outbound));
    for (interval, changes_content, job) in jobs {
        let Some(interval) = interval else { continue };
        let (registry, config) = (registry.clone(), config.clone());
        handles.push(actix_web::rt::spawn(async move {
            let mut ticks = actix_web::rt::time::interval(interval);
            ticks.tick().await;
            loop {
                ticks.tick().await;
                let (r, c) = (registry.clone(), config.clone());
                let _ = actix_web::rt::task::spawn_blocking(move || {
                    if changes_content && paused(&r) {
                        return;
                    }
                    job(&r, &c);
                })
                .await;
            }
        }));
    }
    handles
}

/// The scheduled scrub: every blob file hashed again, at a bounded rate.
fn scrub_blobs(r: &Registry, c: &Config) {
    let opts = crate::domain::maintenance::check::CheckOptions {
        jobs: 1,
        max_bytes_per_sec: Some(c.storage.scrub_max_mib_per_second.max(1) << 20),
    };
    match r.maintenance().check(opts, &|_, _, _| {}) {
        Ok(report) if report.is_clean() => tracing::info!(
            blobs = report.blobs_checked,
            bytes = report.bytes_checked,
            "scrub: every blob file hashes to its digest"
        ),
        Ok(report) => {
            for p in &report.problems {
                tracing::error!(problem = %p, "scrub found a problem");
            }
            for t in &report.broken_tags {
                tracing::error!(tag = %t, "scrub: this tag no longer pulls whole; push the image again");
            }
        }
        Err(e) => tracing::error!(error = %e, "scrub failed"),
    }
}

/// Whether read-only mode pauses the jobs that change content (an unreadable mode pauses
/// them too: the next tick asks again).
pub(crate) fn paused(registry: &Registry) -> bool {
    match registry.maintenance().read_only() {
        Ok(mode) => mode.is_some(),
        Err(e) => {
            tracing::error!(error = %e, "could not read whether the registry is read-only");
            true
        }
    }
}

/// How often the queue of images to read for their SBOMs is looked at (a push only
/// enqueues: reading the layers never slows it).
const SBOM_TICK: Duration = Duration::from_secs(2);

/// How often connector feeds are looked at for a sync that is due.
const SYNC_TICK: Duration = Duration::from_secs(15);

/// How often audit entries past their retention are looked for.
const AUDIT_EXPIRY: Duration = Duration::from_hours(24);

/// Sends webhook requests with a timeout.
struct HttpSender(ureq::Agent);

impl crate::domain::webhooks::Sender for HttpSender {
    fn post(&self, url: &str, headers: &[(&str, String)], body: &[u8]) -> Result<u16, String> {
        let mut req = self.0.post(url);
        for (name, value) in headers {
            req = req.header(*name, value);
        }
        match req.send(body) {
            Ok(res) => Ok(res.status().as_u16()),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// Asks the directory about its accounts every half `directory.cache_seconds`.
fn refresh_directory(
    config: &Config,
    auth: &Arc<crate::domain::auth::Auth>,
) -> actix_web::rt::task::JoinHandle<()> {
    let every = Duration::from_millis((config.directory.cache_seconds.max(1) * 500).max(500));
    let auth = auth.clone();
    actix_web::rt::spawn(async move {
        let mut ticks = actix_web::rt::time::interval(every);
        loop {
            ticks.tick().await;
            let a = auth.clone();
            if let Ok(Err(e)) =
                actix_web::rt::task::spawn_blocking(move || a.directory().refresh()).await
            {
                tracing::warn!(error = %e, "could not refresh directory accounts");
            }
        }
    })
}

/// The webhook deliverer: a round every `webhooks.poll_ms`, off the request executor, that
/// starts a worker per endpoint with something due (`webhooks::Deliverer`).
fn deliver_webhooks(
    config: &Config,
    registry: &Arc<Registry>,
    bound: Option<String>,
    outbound: &Arc<crate::clients::outbound::Outbound>,
) -> actix_web::rt::task::JoinHandle<()> {
    let w = &config.webhooks;
    let host = config.external_url.as_deref().map_or_else(
        || bound.unwrap_or_else(|| config.listen.to_string()),
        |url| {
            let rest = url.split_once("://").map_or(url, |(_, r)| r);
            rest.split('/').next().unwrap_or(rest).to_owned()
        },
    );
    let delivery = crate::domain::webhooks::DeliveryConfig {
        host,
        timeout: Duration::from_secs(w.timeout_seconds.max(1)),
        max_attempts: w.max_attempts.max(1),
        first_backoff: Duration::from_millis(w.first_backoff_ms),
        max_backoff: Duration::from_secs(w.max_backoff_seconds),
    };
    // Receivers are where feed administrators point them: only where the outbound policy
    // allows.
    let agent = outbound.agent(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(delivery.timeout))
            // A delivery is the receiver's own 2xx: a 3xx is a failed attempt, never followed.
            .max_redirects(0)
            .user_agent(format!("semdock/{}", env!("CARGO_PKG_VERSION"))),
    );
    let deliverer = crate::domain::webhooks::Deliverer::new(
        registry.webhooks().clone(),
        Arc::new(HttpSender(agent)),
        delivery,
    );
    let poll = Duration::from_millis(w.poll_ms.max(50));
    actix_web::rt::spawn(async move {
        let mut ticks = actix_web::rt::time::interval(poll);
        loop {
            ticks.tick().await;
            let d = deliverer.clone();
            let round = actix_web::rt::task::spawn_blocking(move || d.round());
            if let Ok(Err(e)) = round.await {
                tracing::warn!(error = %e, "webhook deliveries failed; trying again");
            }
        }
    })
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

/// Binds the configured address, before anything else starts: a port in use must stop a
/// start before it creates a data directory or an administrator.
pub fn bind(config: &Config) -> Result<std::net::TcpListener, StartError> {
    std::net::TcpListener::bind(config.listen).map_err(|e| {
        StartError::Listen(format!(
            "cannot listen on {}: {e}{}",
            config.listen,
            if e.kind() == std::io::ErrorKind::AddrInUse {
                " (another server has it: stop it, or choose another port with --listen or SEMDOCK_LISTEN)"
            } else {
                ""
            }
        ))
    })
}

/// Serves the services on `listener` until a signal (SIGTERM, Ctrl-C) stops it.
pub async fn serve(
    config: &Config,
    services: Services,
    listener: std::net::TcpListener,
) -> Result<(), StartError> {
    serve_on(config, services, Some(listener), std::future::pending()).await
}

/// Keeps glibc from holding on to large freed buffers. Its malloc raises the size above which
/// it maps memory directly each time such a mapping is freed, so after the first login the
/// 19 MiB an Argon2 password hash needs lands in an arena and stays resident for good (idle
/// RSS 35 MiB instead of 15). A fixed threshold of 4 MiB sends those buffers back to the
/// system on free, while the 1 MiB buffers of the blob paths stay in the arenas.
///
/// And two arenas at most: glibc's default (eight per core) gives the blocking pool's threads
/// arenas of their own, and memory freed in one is not reused by the others — in the soak
/// benchmark resident memory grew with the writes served (143 MiB after two minutes, 82 MiB
/// with two arenas; docs/BENCHMARKS.md). Set before the workers and the blocking pool start.
fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets a malloc parameter; any value is valid for M_MMAP_THRESHOLD
    // up to HEAP_MAX and for M_ARENA_MAX, and a refused value leaves the default in place.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 4 << 20);
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

/// Serves until a signal, or until `stop` completes (a Windows service's stop request):
/// in-flight requests finish, then the database closes.
pub async fn serve_until(
    config: &Config,
    services: Services,
    stop: impl std::future::Future<Output = ()> + 'static,
) -> Result<(), StartError> {
    serve_on(config, services, None, stop).await
}

async fn serve_on(
    config: &Config,
    services: Services,
    listener: Option<std::net::TcpListener>,
    stop: impl std::future::Future<Output = ()> + 'static,
) -> Result<(), StartError> {
    tune_allocator();
    let Services { registry, auth, .. } = services;
    let realm = http::Realm {
        external_url: config.external_url.clone(),
        trusted_proxies: config.trusted_proxies.clone(),
        mirror_feed: config.mirror_feed.clone(),
    };
    let (r, a) = (registry.clone(), auth.clone());
    let gc = config.gc_options(false);
    let server = HttpServer::new(move || {
        App::new()
            .wrap(middleware::from_fn(http::read_only::refuse_writes))
            .wrap(middleware::from_fn(http::caller::echo_namespace))
            .wrap(middleware::from_fn(http::access_log::log_request))
            .configure(http::configure(r.clone(), a.clone(), realm.clone(), gc))
    })
    // A response goes out as soon as it is written: with Nagle's algorithm on (actix's
    // default), a small response on a kept-alive connection waited for the client's delayed
    // ACK, about 40 ms (measured in benches/connector.rs; Go's servers, Distribution's
    // among them, turn it off too).
    .tcp_nodelay(true)
    // An idle kept-alive connection stays open 75 s (actix closes it after 5 s by default).
    // A load balancer keeps idle connections to the nodes and reuses them; when the node
    // closes one just as the proxy sends a request on it, HAProxy drops the client's
    // connection without an answer (its `http-reuse safe` leaves the retry to the client),
    // and a client that does not retry a POST fails the push. So the node must be the
    // last to give up an idle connection: HAProxy purges its idle pool well within 75 s,
    // as nginx's default `keepalive_timeout` assumes of clients.
    .keep_alive(IDLE_CONNECTION);
    let listener = match listener {
        Some(l) => l,
        None => bind(config)?,
    };
    let server = match &config.tls {
        Some(tls) => server.listen_rustls_0_23(listener, tls_config(tls)?)?,
        None => server.listen(listener)?,
    };
    let scheme = if config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    for addr in server.addrs() {
        tracing::info!(%addr, scheme, data_dir = %config.data_dir.display(), "semdock listening");
    }
    // Payloads name the address actually bound (a configured port 0 is the kernel's pick).
    let bound = server.addrs().first().map(ToString::to_string);
    // Replication names this registry by its external URL in the history it carries.
    registry.replication().set_origin(
        &config
            .external_url
            .clone()
            .unwrap_or_else(|| format!("{scheme}://{}", bound.as_deref().unwrap_or("localhost"))),
    );
    // The sockets actually bound are the registry itself, which no outbound request calls.
    let outbound = Arc::new(
        config
            .outbound(server.addrs())
            .map_err(|e| StartError::Domain(domain::Error::Invalid(e)))?,
    );
    registry.connector().set_outbound(outbound.clone());
    let mut jobs = schedule(config, &registry, bound, &outbound);
    if config.directory.ldap.is_some() || config.directory.oidc.is_some() {
        jobs.push(refresh_directory(config, &auth));
    }
    let running = server.run();
    let handle = running.handle();
    actix_web::rt::spawn(async move {
        stop.await;
        tracing::info!("stop requested");
        handle.stop(true).await;
    });
    running.await?;
    for job in jobs {
        job.abort();
        let _ = job.await;
    }
    if let Err(e) = registry.maintenance().flush_pulls() {
        tracing::error!(error = %e, "could not write last-pull times");
    }
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

/// The configured directory's clients, opened and checked (its CA and password files read); `None` without
/// one.
pub fn open_directory(
    config: &Config,
) -> Result<Option<crate::domain::directory::Directory>, String> {
    let d = &config.directory;
    if d.ldap.is_none() && d.oidc.is_none() {
        if !d.groups.is_empty() {
            return Err(
                "directory.groups is set but neither directory.ldap nor directory.oidc is".into(),
            );
        }
        return Ok(None);
    }
    let read = |what: &str, f: &std::path::Path| {
        std::fs::read(f)
            .map_err(|e| format!("cannot read the directory's {what} {}: {e}", f.display()))
    };
    let secret = |value: &Option<crate::model::Secret>,
                  file: &Option<std::path::PathBuf>|
     -> Result<_, String> {
        Ok(match (value, file) {
            (Some(p), _) => Some(p.clone()),
            (None, Some(f)) => Some(crate::model::Secret::new(
                String::from_utf8_lossy(&read("password file", f)?)
                    .lines()
                    .next()
                    .unwrap_or_default(),
            )),
            (None, None) => None,
        })
    };
    let ldap = match &d.ldap {
        None => None,
        Some(l) => Some(
            crate::clients::ldap::Ldap::new(crate::clients::ldap::LdapSettings {
                url: l.url.clone(),
                starttls: l.starttls,
                ca_pem: l
                    .ca_file
                    .as_deref()
                    .map(|f| read("CA file", f))
                    .transpose()?,
                bind_dn: l.bind_dn.clone(),
                bind_password: secret(&l.bind_password, &l.bind_password_file)?,
                user_base: l.user_base.clone(),
                user_filter: l.user_filter.clone(),
                group_attribute: l.group_attribute.clone(),
                group_base: l.group_base.clone(),
                group_filter: l.group_filter.clone(),
                timeout: std::time::Duration::from_secs(l.timeout_seconds.max(1)),
            })
            .map_err(|e| e.to_string())?,
        ),
    };
    let oidc = match &d.oidc {
        None => None,
        Some(o) => Some(
            crate::clients::oidc::Oidc::new(crate::clients::oidc::OidcSettings {
                issuer: o.issuer.clone(),
                client_id: o.client_id.clone(),
                client_secret: secret(&o.client_secret, &o.client_secret_file)?.unwrap_or_default(),
                scopes: o.scopes.clone(),
                prompt: o.prompt.clone(),
                username_claim: o.username_claim.clone(),
                groups_claim: o.groups_claim.clone(),
                ca_pem: o
                    .ca_file
                    .as_deref()
                    .map(|f| read("CA file", f))
                    .transpose()?,
                timeout: std::time::Duration::from_secs(o.timeout_seconds.max(1)),
                label: o.label.clone(),
            })
            .map_err(|e| format!("directory.oidc: {e}"))?,
        ),
    };
    crate::domain::directory::Directory::new(
        ldap,
        oidc,
        d.groups.clone(),
        std::time::Duration::from_secs(d.cache_seconds.max(1)),
    )
    .map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_oidc_provider_alone_is_a_directory_and_needs_https() {
        let mut c = Config::default();
        c.directory.oidc = Some(
            toml::from_str("issuer = \"https://login.example.com\"\nclient_id = \"semdock\"")
                .unwrap(),
        );
        let d = open_directory(&c).unwrap().unwrap();
        assert!(d.oidc().is_some() && d.ldap().is_none());
        assert_eq!(
            d.oidc().unwrap().label(),
            "Sign in with the company account"
        );
        c.directory.oidc.as_mut().unwrap().issuer = "http://login.example.com".into();
        let err = open_directory(&c).err().unwrap();
        assert!(err.contains("plain http"), "{err}");
    }
}
