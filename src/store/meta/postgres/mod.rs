//! The distributed metadata engine: PostgreSQL, shared by every node.
//!
//! The tables hold what redb's hold, relationally: typed key columns (`text COLLATE "C"`, so
//! names order by their bytes as in redb) and the same postcard-encoded records as `bytea`.
//! The indexes redb keeps by hand (tags by SemVer rank, by digest; history by repository)
//! are PostgreSQL indexes over one `tags` and one `history` table.
//!
//! Isolation: a read is one `REPEATABLE READ READ ONLY` transaction (a consistent snapshot,
//! as redb's read transactions are). A write is one transaction that first takes a
//! transaction-level advisory lock shared by every node (`WRITE_LOCK`): writes are serialised
//! cluster-wide exactly as redb serialises them in one process, so every rule the domain
//! checks inside a write (one winner for a version, virtual tags settled from the versions,
//! history in order) holds across nodes without a second implementation of the rules.
//! PostgreSQL's own durability (`COMMIT` returns once the WAL is flushed) makes a write
//! durable when `write_dyn` returns.
//!
//! The domain is synchronous; the engine runs tokio-postgres on a small runtime of its own
//! and blocks the calling (blocking-pool) thread on each statement. Statements are prepared
//! once per connection (`prepare_cached`): one round trip per query after the first.

use std::path::Path;
use std::time::{Duration, Instant};

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod};

use crate::store::engine_runtime::EngineRuntime;
use crate::store::meta::{Aborted, MetaError, MetaRead, MetaWrite, Metadata};
use txn::{Txn, to_u64};

mod accounts;
mod audit;
mod blobs;
mod feeds;
mod history;
mod manifests;
mod settings;
mod tags;
mod txn;

/// The advisory lock every write transaction holds until it ends.
const WRITE_LOCK: i64 = 0x5e3d_0c01;
/// The advisory lock that lets one node at a time run the migrations.
const MIGRATION_LOCK: i64 = 0x5e3d_0c02;
/// Rows read per query when a walk or a filtered page reads more than it returns.
pub(super) const BATCH: i64 = 512;

/// The ordered schema migrations: `(version, SQL)`. A database at version `n` runs every
/// later one, each in its own transaction, at start or by `semdock migrate`.
pub const MIGRATIONS: &[(i32, &str)] = &[
    (1, include_str!("migrations/0001_initial.sql")),
    (2, include_str!("migrations/0002_generation.sql")),
    (3, include_str!("migrations/0003_record_versions.sql")),
    (4, include_str!("migrations/0004_audit_kinds.sql")),
];

/// The PostgreSQL metadata engine.
pub struct PgMeta {
    /// Drives the connections (their sockets).
    runtime: EngineRuntime,
    pool: Pool,
    /// Calls to `generation()` that could not read the generation: each gets a new value.
    unknown_generations: std::sync::atomic::AtomicU64,
    /// The generation reads in flight and done, shared by concurrent callers.
    generations: Flight,
}

/// One read of the generation row at a time, shared by every caller that arrived before it
/// was sent: a caller takes the result of a read that started after it called, so what it
/// gets is never older than its own call (read-your-writes holds), while a burst of
/// requests costs one statement instead of one each.
#[derive(Default)]
struct Flight {
    state: std::sync::Mutex<FlightState>,
    done: std::sync::Condvar,
}

#[derive(Default)]
struct FlightState {
    /// Whether a read is under way.
    reading: bool,
    /// The newest finished read: when it started, and what it read.
    last: Option<(Instant, u64)>,
}

impl Flight {
    fn lock(&self) -> std::sync::MutexGuard<'_, FlightState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The generation as read by a read that started no earlier than `since`; `read` is
    /// sent by whichever caller finds none under way.
    fn get(&self, since: Instant, read: impl FnOnce() -> u64) -> u64 {
        let mut state = self.lock();
        loop {
            if let Some((started, value)) = state.last
                && started >= since
            {
                return value;
            }
            if !state.reading {
                break;
            }
            state = self
                .done
                .wait(state)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        state.reading = true;
        let started = Instant::now();
        drop(state);
        let value = read();
        let mut state = self.lock();
        state.reading = false;
        state.last = Some((started, value));
        self.done.notify_all();
        value
    }
}

impl PgMeta {
    /// One read of the generation row; unreadable (the database away), a value no read
    /// returned before.
    fn read_generation(&self) -> u64 {
        const UNKNOWN: u64 = 1 << 63;
        let pool = self.pool.clone();
        let read = self.on_runtime(async move {
            let client = pool.get().await.map_err(pool_error)?;
            let statement = client
                .prepare_cached("SELECT value FROM semdock_generation WHERE id = 1")
                .await
                .map_err(pg_error)?;
            let row = client.query_one(&statement, &[]).await.map_err(pg_error)?;
            Ok::<_, MetaError>(to_u64(row.get(0)))
        });
        read.unwrap_or_else(|_| {
            UNKNOWN
                | self
                    .unknown_generations
                    .fetch_add(1, std::sync::atomic::Ordering::AcqRel)
        })
    }

    /// Connects to `url` (a libpq connection string or URL; `password`, when given, replaces
    /// any in it), checks the server answers, and brings the schema up to date.
    pub fn connect(url: &str, password: Option<&str>) -> Result<Self, MetaError> {
        let engine = Self::open(url, password)?;
        engine.migrate()?;
        Ok(engine)
    }

    /// The engine on `url` without touching the schema: connections are made when first
    /// needed (`migrate` says whether the server answers).
    pub fn open(url: &str, password: Option<&str>) -> Result<Self, MetaError> {
        Self::open_with(url, password, None)
    }

    /// `connect`, over TLS when `ca_file` is given: every connection is encrypted, and the
    /// server's certificate must chain to that CA and name the host connected to.
    pub fn connect_with(
        url: &str,
        password: Option<&str>,
        ca_file: Option<&Path>,
    ) -> Result<Self, MetaError> {
        let engine = Self::open_with(url, password, ca_file)?;
        engine.migrate()?;
        Ok(engine)
    }

    /// `open`, over TLS when `ca_file` is given (see `connect_with`).
    pub fn open_with(
        url: &str,
        password: Option<&str>,
        ca_file: Option<&Path>,
    ) -> Result<Self, MetaError> {
        let mut config: tokio_postgres::Config = url
            .parse()
            .map_err(|e| MetaError::Server(format!("the PostgreSQL URL is not valid: {e}")))?;
        if let Some(password) = password {
            config.password(password);
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(5));
        }
        let runtime = EngineRuntime::new("semdock-postgres", 1)
            .map_err(|e| MetaError::Server(format!("cannot start the database runtime: {e}")))?;
        let manager_config = || ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        };
        let manager = match ca_file {
            None => Manager::from_config(config, tokio_postgres::NoTls, manager_config()),
            Some(ca_file) => {
                config.ssl_mode(tokio_postgres::config::SslMode::Require);
                let tls = tokio_postgres_rustls::MakeRustlsConnect::new(tls_config(ca_file)?);
                Manager::from_config(config, tls, manager_config())
            }
        };
        let pool = {
            let _in = runtime.handle().enter();
            Pool::builder(manager)
                .max_size(16)
                .wait_timeout(Some(Duration::from_secs(10)))
                .create_timeout(Some(Duration::from_secs(5)))
                .runtime(deadpool_postgres::Runtime::Tokio1)
                .build()
                .map_err(|e| MetaError::Server(format!("cannot set up the connection pool: {e}")))?
        };
        Ok(Self {
            runtime,
            pool,
            unknown_generations: std::sync::atomic::AtomicU64::new(0),
            generations: Flight::default(),
        })
    }

    /// Runs every migration the database has not had, one node at a time; returns the
    /// versions it applied.
    pub fn migrate(&self) -> Result<Vec<i32>, MetaError> {
        let pool = self.pool.clone();
        let applied = self.on_runtime(async move {
            let mut client = pool.get().await.map_err(pool_error)?;
            client
                .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
                .await
                .map_err(pg_error)?;
            let applied = async {
                client
                    .batch_execute(
                        "CREATE TABLE IF NOT EXISTS semdock_schema (
                             version integer PRIMARY KEY,
                             applied timestamptz NOT NULL DEFAULT now())",
                    )
                    .await?;
                let current: i32 = client
                    .query_one("SELECT coalesce(max(version), 0) FROM semdock_schema", &[])
                    .await?
                    .get(0);
                let mut applied = Vec::new();
                for (version, sql) in MIGRATIONS {
                    if *version <= current {
                        continue;
                    }
                    let txn = client.transaction().await?;
                    txn.batch_execute(sql).await?;
                    txn.execute(
                        "INSERT INTO semdock_schema (version) VALUES ($1)",
                        &[version],
                    )
                    .await?;
                    txn.commit().await?;
                    applied.push(*version);
                }
                Ok::<_, tokio_postgres::Error>(applied)
            }
            .await;
            let unlocked = client
                .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
                .await;
            let applied = applied.map_err(pg_error)?;
            unlocked.map_err(pg_error)?;
            Ok::<_, MetaError>(applied)
        })?;
        super::migrations::apply(self)?;
        Ok(applied)
    }

    /// Runs `work` on the engine's runtime and waits for it (see `EngineRuntime::run`).
    fn on_runtime<T: Send + 'static>(
        &self,
        work: impl std::future::Future<Output = T> + Send + 'static,
    ) -> T {
        self.runtime.run(work)
    }

    /// A pooled connection with a transaction begun by `begin`.
    fn begin(&self, begin: &'static str, read_only: bool) -> Result<Txn, MetaError> {
        let pool = self.pool.clone();
        let client = self.on_runtime(async move {
            let client = pool.get().await.map_err(pool_error)?;
            client.batch_execute(begin).await.map_err(pg_error)?;
            if read_only {
                // A transaction's snapshot is taken by its first query, not by BEGIN: take it
                // now, so the read sees what was committed when it was opened.
                client
                    .query_one("SELECT pg_current_snapshot()::text", &[])
                    .await
                    .map_err(pg_error)?;
            }
            Ok::<_, MetaError>(client)
        })?;
        Ok(Txn {
            handle: self.runtime.handle().clone(),
            client: Some(client),
        })
    }
}

/// TLS that trusts only the CA certificates in `ca_file` (PEM).
fn tls_config(ca_file: &Path) -> Result<rustls::ClientConfig, MetaError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject as _;
    let invalid = |e: &dyn std::fmt::Display| {
        MetaError::Server(format!(
            "storage.postgres.ca_file {}: {e}",
            ca_file.display()
        ))
    };
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca_file).map_err(|e| invalid(&e))? {
        roots
            .add(cert.map_err(|e| invalid(&e))?)
            .map_err(|e| invalid(&e))?;
    }
    if roots.is_empty() {
        return Err(invalid(&"holds no PEM certificate"));
    }
    Ok(
        rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid(&e))?
        .with_root_certificates(roots)
        .with_no_client_auth(),
    )
}

/// A session-level advisory lock held on a connection of its own; let go (and the
/// connection handed back) when dropped, or by the server when the process dies.
struct Exclusive {
    handle: tokio::runtime::Handle,
    client: Option<Object>,
    key: i64,
}

impl Drop for Exclusive {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            let key = self.key;
            // Waited for: the next job of this process may ask for the lock at once, on
            // another connection.
            crate::store::engine_runtime::run_on(&self.handle, async move {
                if client
                    .execute("SELECT pg_advisory_unlock($1)", &[&key])
                    .await
                    .is_err()
                {
                    // A connection that may still hold the lock is not handed out again.
                    drop(Object::take(client));
                }
            });
        }
    }
}

impl Metadata for PgMeta {
    fn try_exclusive(&self, job: i64) -> Result<Option<Box<dyn Send>>, MetaError> {
        let pool = self.pool.clone();
        let client = self.on_runtime(async move {
            let client = pool.get().await.map_err(pool_error)?;
            let row = client
                .query_one("SELECT pg_try_advisory_lock($1)", &[&job])
                .await
                .map_err(pg_error)?;
            Ok::<_, MetaError>(row.get::<_, bool>(0).then_some(client))
        })?;
        Ok(client.map(|client| {
            Box::new(Exclusive {
                handle: self.runtime.handle().clone(),
                client: Some(client),
                key: job,
            }) as Box<dyn Send>
        }))
    }

    fn read(&self) -> Result<Box<dyn MetaRead + '_>, MetaError> {
        Ok(Box::new(self.begin(
            "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
            true,
        )?))
    }

    fn write_dyn(
        &self,
        f: &mut dyn FnMut(&mut dyn MetaWrite) -> Result<(), Aborted>,
    ) -> Result<bool, MetaError> {
        let started = Instant::now();
        let mut txn = self.begin("BEGIN", false)?;
        txn.exec("SELECT pg_advisory_xact_lock($1)", &[&WRITE_LOCK])?;
        if f(&mut txn).is_err() {
            txn.end("ROLLBACK")?;
            return Ok(false);
        }
        // Visible to every node when, and only when, this write is.
        txn.exec(
            "UPDATE semdock_generation SET value = value + 1 WHERE id = 1",
            &[],
        )?;
        txn.end("COMMIT")?;
        crate::metrics::get()
            .commit_seconds
            .observe(started.elapsed().as_secs_f64());
        Ok(true)
    }

    /// The count of committed writes of every node (`semdock_generation`, one indexed row
    /// read in one round trip): a cached answer is served only while no node has written
    /// since it was read, so a read through any node after a write was acknowledged never
    /// returns the old state. Unreadable (the database away), a new value at every call.
    fn generation_is_local(&self) -> bool {
        false
    }

    fn generation(&self) -> u64 {
        let since = Instant::now();
        self.generations.get(since, || self.read_generation())
    }

    fn snapshot_to(&self, path: &Path) -> Result<u64, MetaError> {
        // One REPEATABLE READ snapshot of every table, written as the embedded format.
        let source = self.read()?;
        let target: &dyn Metadata = &super::redb::RedbMeta::open(path)?;
        let counts = target.write(|w| super::copy::copy_records(&*source, w))?;
        Ok(counts.blobs)
    }
}

/// No connection could be had: whatever the server said (down, refusing this database,
/// refusing the login), the database cannot be reached for now.
#[allow(clippy::needless_pass_by_value)] // used as `map_err(pool_error)`
fn pool_error(e: deadpool_postgres::PoolError) -> MetaError {
    MetaError::Unreachable(error_chain(&e))
}

/// A lost or refused connection is `Unreachable` (the client gets 503 and may retry); any
/// other error is the server's answer to a statement.
#[allow(clippy::needless_pass_by_value)] // used as `map_err(pg_error)`
pub(super) fn pg_error(e: tokio_postgres::Error) -> MetaError {
    let unreachable = e.is_closed()
        || e.code().is_none_or(|code| {
            let code = code.code();
            // 08: connection exception; 57P0x: the server is shutting down or starting.
            code.starts_with("08") || code.starts_with("57P")
        });
    if unreachable {
        MetaError::Unreachable(error_chain(&e))
    } else {
        MetaError::Server(error_chain(&e))
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;

    /// Sixteen threads asking at once share reads, and none gets a read that started
    /// before it asked (the read-your-writes rule the caches rest on).
    #[test]
    fn generation_reads_are_shared_but_never_older_than_the_call() {
        let flight = Arc::new(Flight::default());
        let started = Arc::new(AtomicU64::new(0));
        let callers: Vec<_> = (0..16)
            .map(|_| {
                let (flight, started) = (flight.clone(), started.clone());
                std::thread::spawn(move || {
                    for _ in 0..20 {
                        let before = started.load(Ordering::SeqCst);
                        let read = flight.get(Instant::now(), || {
                            let n = started.fetch_add(1, Ordering::SeqCst) + 1;
                            std::thread::sleep(Duration::from_millis(2));
                            n
                        });
                        assert!(
                            read > before,
                            "read {read} started before the call ({before})"
                        );
                    }
                })
            })
            .collect();
        for c in callers {
            c.join().unwrap();
        }
        let reads = started.load(Ordering::SeqCst);
        assert!(reads < 16 * 20 / 2, "{reads} reads for 320 calls");
    }
}
