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

use std::ops::Bound;
use std::path::Path;
use std::time::{Duration, Instant};

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use super::codec::{decode, encode};
use super::precedence::{self, Scope};
use super::{
    Aborted, ApiKeyRecord, AuditRecord, BlobRecord, FeedRecord, HistoryRecord, HistoryRow,
    ManifestRecord, MetaError, MetaRead, MetaWrite, Metadata, PromotionRecord, RepositoryRecord,
    RetentionRecord, Scan, UploadRecord, UserRecord,
};
use crate::store::engine_runtime::EngineRuntime;

/// The advisory lock every write transaction holds until it ends.
const WRITE_LOCK: i64 = 0x5e3d_0c01;
/// The advisory lock that lets one node at a time run the migrations.
const MIGRATION_LOCK: i64 = 0x5e3d_0c02;
/// Rows read per query when a walk or a filtered page reads more than it returns.
const BATCH: i64 = 512;

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
        let target: &dyn Metadata = &super::MetaStore::open(path)?;
        let counts = target.write(|w| super::copy::copy_records(&*source, w))?;
        Ok(counts.blobs)
    }
}

/// One transaction on one pooled connection: a read snapshot, or a write (then also
/// `MetaWrite`). Dropped while still open (a failed request), it is rolled back on the
/// engine's runtime before the connection goes back to the pool.
struct Txn {
    handle: tokio::runtime::Handle,
    client: Option<Object>,
}

impl Drop for Txn {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            self.handle.spawn(async move {
                if client.batch_execute("ROLLBACK").await.is_err() {
                    // A connection in an unknown state is not handed out again.
                    drop(Object::take(client));
                }
            });
        }
    }
}

type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

impl Txn {
    fn client(&self) -> &Object {
        self.client
            .as_ref()
            .expect("a transaction is used only while open")
    }

    fn rows(&self, sql: &str, params: Params<'_>) -> Result<Vec<Row>, MetaError> {
        let client = self.client();
        // The statement's messages go through the connection task on the engine's runtime;
        // waiting for them needs no runtime here.
        futures_executor::block_on(async {
            let statement = client.prepare_cached(sql).await?;
            client.query(&statement, params).await
        })
        .map_err(pg_error)
    }

    fn row(&self, sql: &str, params: Params<'_>) -> Result<Option<Row>, MetaError> {
        Ok(self.rows(sql, params)?.into_iter().next())
    }

    /// Runs a statement; returns how many rows it changed.
    fn exec(&self, sql: &str, params: Params<'_>) -> Result<u64, MetaError> {
        let client = self.client();
        futures_executor::block_on(async {
            let statement = client.prepare_cached(sql).await?;
            client.execute(&statement, params).await
        })
        .map_err(pg_error)
    }

    /// Ends the transaction with `COMMIT` or `ROLLBACK`.
    fn end(&mut self, how: &str) -> Result<(), MetaError> {
        let client = self.client.take().expect("a transaction ends once");
        let done = futures_executor::block_on(client.batch_execute(how));
        if done.is_err() {
            drop(Object::take(client));
        }
        done.map_err(pg_error)
    }

    fn record<T: super::codec::Record>(
        &self,
        sql: &str,
        params: Params<'_>,
    ) -> Result<Option<T>, MetaError> {
        self.row(sql, params)?
            .map(|r| decode(r.get::<_, &[u8]>(0)))
            .transpose()
    }

    fn named_records<T: super::codec::Record>(
        &self,
        sql: &str,
    ) -> Result<Vec<(String, T)>, MetaError> {
        self.rows(sql, &[])?
            .iter()
            .map(|r| Ok((r.get::<_, String>(0), decode(r.get::<_, &[u8]>(1))?)))
            .collect()
    }

    fn strings(&self, sql: &str, params: Params<'_>) -> Result<Vec<String>, MetaError> {
        Ok(self.rows(sql, params)?.iter().map(|r| r.get(0)).collect())
    }

    fn string_pairs(
        &self,
        sql: &str,
        params: Params<'_>,
    ) -> Result<Vec<(String, String)>, MetaError> {
        Ok(self
            .rows(sql, params)?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect())
    }

    /// The next number of a sequence kept in the settings table (as redb keeps it).
    fn next_seq(&self, name: &str) -> Result<i64, MetaError> {
        let current = super::settings::counter_from(name, self.setting(name)?.as_deref())?;
        let next = current + 1;
        self.put(name, &super::settings::counter_bytes(next))?;
        Ok(to_i64(next))
    }

    /// Writes `record` under `key` in a table keyed by one name (`column`).
    fn put_record(
        &self,
        table: &str,
        column: &str,
        key: &str,
        record: &[u8],
    ) -> Result<(), MetaError> {
        self.exec(
            &format!(
                "INSERT INTO {table} ({column}, record) VALUES ($1, $2)
                 ON CONFLICT ({column}) DO UPDATE SET record = EXCLUDED.record"
            ),
            &[&key, &record],
        )?;
        Ok(())
    }

    fn put(&self, name: &str, value: &[u8]) -> Result<(), MetaError> {
        self.exec(
            "INSERT INTO settings (name, value) VALUES ($1, $2)
             ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value",
            &[&name, &value],
        )?;
        Ok(())
    }
}

/// Rows fetched `BATCH` at a time by keyset: `fetch(after, n)` returns up to `n` rows after
/// the key `after` (from the start when `None`), in order, each as (key, item).
type Fetch<'f, K, T> = Box<dyn FnMut(Option<&K>, i64) -> Result<Vec<(K, T)>, MetaError> + 'f>;

struct Batched<'f, K, T> {
    fetch: Fetch<'f, K, T>,
    n: i64,
    after: Option<K>,
    buffer: std::vec::IntoIter<(K, T)>,
    done: bool,
}

impl<'f, K, T> Batched<'f, K, T> {
    fn new(
        n: i64,
        fetch: impl FnMut(Option<&K>, i64) -> Result<Vec<(K, T)>, MetaError> + 'f,
    ) -> Self {
        Self {
            fetch: Box::new(fetch),
            n: n.max(2),
            after: None,
            buffer: Vec::new().into_iter(),
            done: false,
        }
    }
}

impl<K, T> Iterator for Batched<'_, K, T> {
    type Item = Result<T, MetaError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some((key, item)) = self.buffer.next() {
                self.after = Some(key);
                return Some(Ok(item));
            }
            if self.done {
                return None;
            }
            match (self.fetch)(self.after.as_ref(), self.n) {
                Ok(rows) => {
                    self.done = i64::try_from(rows.len()).map_or(true, |got| got < self.n);
                    self.buffer = rows.into_iter();
                }
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
    }
}

/// Up to `limit` items of `items` that `keep` accepts, and whether more follow.
fn page_of<T>(
    items: impl Iterator<Item = Result<T, MetaError>>,
    limit: usize,
    keep: impl Fn(&T) -> bool,
) -> Result<(Vec<T>, bool), MetaError> {
    let mut out = Vec::new();
    for item in items {
        let item = item?;
        if !keep(&item) {
            continue;
        }
        if out.len() == limit {
            return Ok((out, true));
        }
        out.push(item);
    }
    Ok((out, false))
}

/// The rows a page of `limit` is read in: the whole page and one more in one query.
fn batch_for(limit: usize) -> i64 {
    i64::try_from(limit.saturating_add(1)).map_or(BATCH, |n| n.min(BATCH))
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn to_u64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
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
fn pg_error(e: tokio_postgres::Error) -> MetaError {
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

fn bound_sql(bound: &Bound<Vec<u8>>) -> (&'static str, Vec<u8>) {
    match bound {
        Bound::Included(k) => ("<=", k.clone()),
        Bound::Excluded(k) => ("<", k.clone()),
        Bound::Unbounded => ("<=", vec![u8::MAX; 257]),
    }
}

impl MetaRead for Txn {
    fn feed(&self, name: &str) -> Result<Option<FeedRecord>, MetaError> {
        self.record("SELECT record FROM feeds WHERE name = $1", &[&name])
    }

    fn feeds(&self) -> Result<Vec<(String, FeedRecord)>, MetaError> {
        self.named_records("SELECT name, record FROM feeds ORDER BY name")
    }

    fn repository(&self, name: &str) -> Result<Option<RepositoryRecord>, MetaError> {
        self.record("SELECT record FROM repositories WHERE name = $1", &[&name])
    }

    fn repositories(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
        keep: &dyn Fn(&str) -> bool,
    ) -> Result<(Vec<String>, bool), MetaError> {
        let first = after.map(str::to_owned);
        let names = Batched::new(batch_for(limit), |last: Option<&String>, n| {
            let rows = match (last, &first) {
                (Some(a), _) | (None, Some(a)) => self.rows(
                    "SELECT name FROM repositories WHERE name > $1 ORDER BY name LIMIT $2",
                    &[a, &n],
                )?,
                (None, None) => self.rows(
                    "SELECT name FROM repositories WHERE name >= $1 ORDER BY name LIMIT $2",
                    &[&prefix, &n],
                )?,
            };
            Ok(rows
                .iter()
                .map(|r| (r.get::<_, String>(0), r.get::<_, String>(0)))
                .collect())
        })
        .take_while(|name| name.as_ref().map_or(true, |n| n.starts_with(prefix)));
        page_of(names, limit, |name| keep(name))
    }

    fn manifest(&self, repo: &str, digest: &str) -> Result<Option<ManifestRecord>, MetaError> {
        self.record(
            "SELECT record FROM manifests WHERE repo = $1 AND digest = $2",
            &[&repo, &digest],
        )
    }

    fn has_manifest(&self, repo: &str, digest: &str) -> Result<bool, MetaError> {
        Ok(self
            .row(
                "SELECT 1 FROM manifests WHERE repo = $1 AND digest = $2",
                &[&repo, &digest],
            )?
            .is_some())
    }

    fn tag(&self, repo: &str, tag: &str) -> Result<Option<String>, MetaError> {
        Ok(self
            .row(
                "SELECT digest FROM tags WHERE repo = $1 AND tag = $2",
                &[&repo, &tag],
            )?
            .map(|r| r.get(0)))
    }

    fn tags(
        &self,
        repo: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<String>, bool), MetaError> {
        let first = after.unwrap_or("").to_owned();
        let tags = Batched::new(batch_for(limit), |last: Option<&String>, n| {
            let rows = match last {
                Some(a) => self.rows(
                    "SELECT tag FROM tags WHERE repo = $1 AND tag > $2 ORDER BY tag LIMIT $3",
                    &[&repo, a, &n],
                )?,
                None if after.is_some() => self.rows(
                    "SELECT tag FROM tags WHERE repo = $1 AND tag > $2 ORDER BY tag LIMIT $3",
                    &[&repo, &first, &n],
                )?,
                None => self.rows(
                    "SELECT tag FROM tags WHERE repo = $1 ORDER BY tag LIMIT $2",
                    &[&repo, &n],
                )?,
            };
            Ok(rows
                .iter()
                .map(|r| (r.get::<_, String>(0), r.get::<_, String>(0)))
                .collect())
        });
        page_of(tags, limit, |_| true)
    }

    fn tag_targets(&self, repo: &str) -> Result<Vec<(String, String)>, MetaError> {
        self.string_pairs(
            "SELECT tag, digest FROM tags WHERE repo = $1 ORDER BY tag",
            &[&repo],
        )
    }

    fn highest_version(
        &self,
        repo: &str,
        scope: Scope,
    ) -> Result<Option<(String, String)>, MetaError> {
        let (low, high) = precedence::bounds(scope);
        Ok(self
            .row(
                "SELECT tag, digest FROM tags WHERE repo = $1 AND rank >= $2 AND rank <= $3
                 ORDER BY rank DESC LIMIT 1",
                &[&repo, &low, &high],
            )?
            .map(|r| (r.get(0), r.get(1))))
    }

    fn versions_page(
        &self,
        repo: &str,
        before: Option<&semver::Version>,
        limit: usize,
        keep: &dyn Fn(&str) -> bool,
    ) -> Result<(Vec<(String, String)>, bool), MetaError> {
        let [stable, pre] = precedence::version_ranges(before).map(|(low, high)| {
            let (op, high) = bound_sql(&high);
            let below = format!(
                "SELECT rank, tag, digest FROM tags WHERE repo = $1 AND rank >= $2 AND rank {op} $3
                 ORDER BY rank DESC LIMIT $4"
            );
            Batched::new(batch_for(limit), move |last: Option<&Vec<u8>>, n| {
                let rows = match last {
                    Some(last) => self.rows(
                        "SELECT rank, tag, digest FROM tags WHERE repo = $1 AND rank >= $2 AND rank < $3
                         ORDER BY rank DESC LIMIT $4",
                        &[&repo, &low, last, &n],
                    )?,
                    None => self.rows(&below, &[&repo, &low, &high, &n])?,
                };
                Ok(rows
                    .iter()
                    .map(|r| (r.get::<_, Vec<u8>>(0), (r.get(1), r.get(2))))
                    .collect())
            })
        });
        precedence::merge_versions(stable, pre, limit, keep)
    }

    fn named_tags_page(
        &self,
        repo: &str,
        after: Option<&str>,
        limit: usize,
        keep: &dyn Fn(&str) -> bool,
    ) -> Result<(Vec<(String, String)>, bool), MetaError> {
        let (low, high) = precedence::bounds(Scope::Named);
        let start = after.map(|a| {
            let mut k = vec![precedence::NAMED];
            k.extend_from_slice(a.as_bytes());
            k
        });
        let tags = Batched::new(batch_for(limit), |last: Option<&Vec<u8>>, n| {
            let rows = match last.or(start.as_ref()) {
                Some(k) => self.rows(
                    "SELECT rank, tag, digest FROM tags WHERE repo = $1 AND rank > $2 AND rank <= $3
                     ORDER BY rank LIMIT $4",
                    &[&repo, k, &high, &n],
                )?,
                None => self.rows(
                    "SELECT rank, tag, digest FROM tags WHERE repo = $1 AND rank >= $2 AND rank <= $3
                     ORDER BY rank LIMIT $4",
                    &[&repo, &low, &high, &n],
                )?,
            };
            Ok(rows
                .iter()
                .map(|r| (r.get::<_, Vec<u8>>(0), (r.get(1), r.get(2))))
                .collect())
        });
        page_of(tags, limit, |(tag, _): &(String, String)| keep(tag))
    }

    fn tombstones_page(
        &self,
        repo: &str,
        after: Option<&str>,
        limit: usize,
        keep: &dyn Fn(&str) -> bool,
    ) -> Result<(Vec<(String, String)>, bool), MetaError> {
        let start = after.map(str::to_owned);
        let tombs = Batched::new(batch_for(limit), |last: Option<&String>, n| {
            let rows = match last.or(start.as_ref()) {
                Some(a) => self.rows(
                    "SELECT tag, digest FROM tombstones WHERE repo = $1 AND tag > $2
                     ORDER BY tag LIMIT $3",
                    &[&repo, a, &n],
                )?,
                None => self.rows(
                    "SELECT tag, digest FROM tombstones WHERE repo = $1 ORDER BY tag LIMIT $2",
                    &[&repo, &n],
                )?,
            };
            Ok(rows
                .iter()
                .map(|r| (r.get::<_, String>(0), (r.get(0), r.get(1))))
                .collect())
        });
        page_of(tombs, limit, |(tag, _): &(String, String)| keep(tag))
    }

    fn history_page(
        &self,
        repo: &str,
        tag: Option<&str>,
        cursor: Option<u64>,
        newest_first: bool,
        limit: usize,
        keep: &dyn Fn(&str, &HistoryRecord) -> bool,
    ) -> Result<(Vec<HistoryRow>, bool), MetaError> {
        let (op, order) = if newest_first {
            ("<", "DESC")
        } else {
            (">", "ASC")
        };
        let edge = if newest_first { i64::MAX } else { -1 };
        let sql = match tag {
            Some(_) => format!(
                "SELECT seq, tag, record FROM history WHERE repo = $1 AND tag = $2 AND seq {op} $3
                 ORDER BY seq {order} LIMIT $4"
            ),
            None => format!(
                "SELECT seq, tag, record FROM history WHERE repo = $1 AND seq {op} $2
                 ORDER BY seq {order} LIMIT $3"
            ),
        };
        let from = cursor.map_or(edge, to_i64);
        let rows = Batched::new(batch_for(limit), |last: Option<&i64>, n| {
            let after = *last.unwrap_or(&from);
            let rows = match tag {
                Some(tag) => self.rows(&sql, &[&repo, &tag, &after, &n])?,
                None => self.rows(&sql, &[&repo, &after, &n])?,
            };
            rows.iter()
                .map(|r| {
                    let seq: i64 = r.get(0);
                    let record: HistoryRecord = decode(r.get::<_, &[u8]>(2))?;
                    Ok((seq, (r.get::<_, String>(1), to_u64(seq), record)))
                })
                .collect()
        });
        page_of(rows, limit, |(tag, _, record): &HistoryRow| {
            keep(tag, record)
        })
    }

    fn tags_pointing_at(&self, repo: &str, digest: &str) -> Result<Vec<String>, MetaError> {
        self.strings(
            "SELECT tag FROM tags WHERE repo = $1 AND digest = $2 ORDER BY tag",
            &[&repo, &digest],
        )
    }

    fn last_history(&self, repo: &str, tag: &str) -> Result<Option<HistoryRecord>, MetaError> {
        self.record(
            "SELECT record FROM history WHERE repo = $1 AND tag = $2 ORDER BY seq DESC LIMIT 1",
            &[&repo, &tag],
        )
    }

    fn manifest_digests(&self, repo: &str) -> Result<Vec<String>, MetaError> {
        self.strings(
            "SELECT digest FROM manifests WHERE repo = $1 ORDER BY digest",
            &[&repo],
        )
    }

    fn linked_blobs(&self, repo: &str) -> Result<Vec<String>, MetaError> {
        self.strings(
            "SELECT digest FROM links WHERE repo = $1 ORDER BY digest",
            &[&repo],
        )
    }

    fn blob(&self, digest: &str) -> Result<Option<BlobRecord>, MetaError> {
        self.record("SELECT record FROM blobs WHERE digest = $1", &[&digest])
    }

    fn is_linked(&self, repo: &str, digest: &str) -> Result<bool, MetaError> {
        Ok(self
            .row(
                "SELECT 1 FROM links WHERE repo = $1 AND digest = $2",
                &[&repo, &digest],
            )?
            .is_some())
    }

    fn linked_at(&self, repo: &str, digest: &str) -> Result<Option<u64>, MetaError> {
        Ok(self
            .row(
                "SELECT at FROM links WHERE repo = $1 AND digest = $2",
                &[&repo, &digest],
            )?
            .map(|row| to_u64(row.get(0))))
    }

    fn referrers(&self, repo: &str, subject: &str) -> Result<Vec<String>, MetaError> {
        self.strings(
            "SELECT referrer FROM referrers WHERE repo = $1 AND subject = $2 ORDER BY referrer",
            &[&repo, &subject],
        )
    }

    fn upload(&self, id: &str) -> Result<Option<UploadRecord>, MetaError> {
        self.record("SELECT record FROM uploads WHERE id = $1", &[&id])
    }

    fn user(&self, name: &str) -> Result<Option<UserRecord>, MetaError> {
        self.record("SELECT record FROM users WHERE name = $1", &[&name])
    }

    fn users(&self) -> Result<Vec<(String, UserRecord)>, MetaError> {
        self.named_records("SELECT name, record FROM users ORDER BY name")
    }

    fn api_key(&self, id: &str) -> Result<Option<ApiKeyRecord>, MetaError> {
        self.record("SELECT record FROM api_keys WHERE id = $1", &[&id])
    }

    fn api_keys(&self) -> Result<Vec<(String, ApiKeyRecord)>, MetaError> {
        self.named_records("SELECT id, record FROM api_keys ORDER BY id")
    }

    fn grant(&self, principal: &str, feed: &str) -> Result<Option<String>, MetaError> {
        Ok(self
            .row(
                "SELECT role FROM grants WHERE principal = $1 AND feed = $2",
                &[&principal, &feed],
            )?
            .map(|r| r.get(0)))
    }

    fn grants_of(&self, principal: &str) -> Result<Vec<(String, String)>, MetaError> {
        self.string_pairs(
            "SELECT feed, role FROM grants WHERE principal = $1 ORDER BY feed",
            &[&principal],
        )
    }

    fn tombstone(&self, repo: &str, tag: &str) -> Result<Option<String>, MetaError> {
        Ok(self
            .row(
                "SELECT digest FROM tombstones WHERE repo = $1 AND tag = $2",
                &[&repo, &tag],
            )?
            .map(|r| r.get(0)))
    }

    fn tombstones(&self, repo: &str) -> Result<Vec<(String, String)>, MetaError> {
        self.string_pairs(
            "SELECT tag, digest FROM tombstones WHERE repo = $1 ORDER BY tag",
            &[&repo],
        )
    }

    fn history(
        &self,
        repo: &str,
        tag: Option<&str>,
    ) -> Result<Vec<(String, u64, HistoryRecord)>, MetaError> {
        let rows = match tag {
            Some(tag) => self.rows(
                "SELECT tag, seq, record FROM history WHERE repo = $1 AND tag = $2 ORDER BY seq",
                &[&repo, &tag],
            )?,
            None => self.rows(
                "SELECT tag, seq, record FROM history WHERE repo = $1 ORDER BY seq",
                &[&repo],
            )?,
        };
        rows.iter()
            .map(|r| Ok((r.get(0), to_u64(r.get(1)), decode(r.get::<_, &[u8]>(2))?)))
            .collect()
    }

    fn audit_page(
        &self,
        cursor: Option<u64>,
        newest_first: bool,
        kinds: &[&str],
        limit: usize,
        keep: &dyn Fn(&AuditRecord) -> Scan,
    ) -> Result<(Vec<(u64, AuditRecord)>, bool), MetaError> {
        let (op, order, edge) = if newest_first {
            ("<", "DESC", i64::MAX)
        } else {
            (">", "ASC", -1)
        };
        let by_kind = if kinds.is_empty() {
            ""
        } else {
            "AND kind = ANY($3)"
        };
        let sql = format!(
            "SELECT seq, record FROM audit WHERE seq {op} $1 {by_kind} ORDER BY seq {order} LIMIT $2"
        );
        let from = cursor.map_or(edge, to_i64);
        let kinds: Vec<&str> = kinds.to_vec();
        let rows = Batched::new(batch_for(limit), |last: Option<&i64>, n| {
            let after = *last.unwrap_or(&from);
            let rows = if kinds.is_empty() {
                self.rows(&sql, &[&after, &n])?
            } else {
                self.rows(&sql, &[&after, &n, &kinds])?
            };
            rows.iter()
                .map(|r| {
                    let seq: i64 = r.get(0);
                    let record: AuditRecord = decode(r.get::<_, &[u8]>(1))?;
                    Ok((seq, (to_u64(seq), record)))
                })
                .collect()
        });
        super::api::scan_page(rows, limit, keep)
    }

    fn promotions(&self) -> Result<Vec<PromotionRecord>, MetaError> {
        self.rows("SELECT record FROM promotions ORDER BY seq", &[])?
            .iter()
            .map(|r| decode(r.get::<_, &[u8]>(0)))
            .collect()
    }

    fn setting(&self, name: &str) -> Result<Option<Vec<u8>>, MetaError> {
        Ok(self
            .row("SELECT value FROM settings WHERE name = $1", &[&name])?
            .map(|r| r.get(0)))
    }

    fn settings(&self) -> Result<Vec<(String, Vec<u8>)>, MetaError> {
        Ok(self
            .rows("SELECT name, value FROM settings ORDER BY name", &[])?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect())
    }

    fn settings_under(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>, MetaError> {
        Ok(self
            .rows(
                "SELECT name, value FROM settings WHERE starts_with(name, $1) ORDER BY name",
                &[&prefix],
            )?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect())
    }

    fn uploads(&self) -> Result<Vec<(String, UploadRecord)>, MetaError> {
        self.named_records("SELECT id, record FROM uploads ORDER BY id")
    }

    fn each_manifest(
        &self,
        f: &mut dyn FnMut(&str, &str, ManifestRecord),
    ) -> Result<(), MetaError> {
        let all = Batched::new(BATCH, |last: Option<&(String, String)>, n| {
            let rows = match last {
                Some((repo, digest)) => self.rows(
                    "SELECT repo, digest, record FROM manifests WHERE (repo, digest) > ($1, $2)
                     ORDER BY repo, digest LIMIT $3",
                    &[repo, digest, &n],
                )?,
                None => self.rows(
                    "SELECT repo, digest, record FROM manifests ORDER BY repo, digest LIMIT $1",
                    &[&n],
                )?,
            };
            rows.iter()
                .map(|r| {
                    let key = (r.get::<_, String>(0), r.get::<_, String>(1));
                    let record: ManifestRecord = decode(r.get::<_, &[u8]>(2))?;
                    Ok((key.clone(), (key, record)))
                })
                .collect()
        });
        for item in all {
            let ((repo, digest), record) = item?;
            f(&repo, &digest, record);
        }
        Ok(())
    }

    fn manifests_of(&self, repo: &str) -> Result<Vec<(String, ManifestRecord)>, MetaError> {
        self.rows(
            "SELECT digest, record FROM manifests WHERE repo = $1 ORDER BY digest",
            &[&repo],
        )?
        .iter()
        .map(|r| Ok((r.get(0), decode(r.get::<_, &[u8]>(1))?)))
        .collect()
    }

    fn recent_history(
        &self,
        limit: usize,
        keep: &dyn Fn(&str) -> bool,
    ) -> Result<Vec<(String, String, HistoryRecord)>, MetaError> {
        let rows = Batched::new(batch_for(limit), |last: Option<&i64>, n| {
            let rows = self.rows(
                "SELECT seq, repo, tag, record FROM history WHERE seq < $1
                 ORDER BY seq DESC LIMIT $2",
                &[last.unwrap_or(&i64::MAX), &n],
            )?;
            rows.iter()
                .map(|r| {
                    let record: HistoryRecord = decode(r.get::<_, &[u8]>(3))?;
                    Ok((r.get::<_, i64>(0), (r.get(1), r.get(2), record)))
                })
                .collect()
        });
        Ok(page_of(
            rows,
            limit,
            |(repo, _, _): &(String, String, HistoryRecord)| keep(repo),
        )?
        .0)
    }

    fn grants_on(&self, feed: &str) -> Result<Vec<(String, String)>, MetaError> {
        self.string_pairs(
            "SELECT principal, role FROM grants WHERE feed = $1 ORDER BY principal",
            &[&feed],
        )
    }

    fn blobs(&self) -> Result<Vec<(String, BlobRecord)>, MetaError> {
        self.named_records("SELECT digest, record FROM blobs ORDER BY digest")
    }

    fn blob_digests(&self, after: Option<&str>, limit: usize) -> Result<Vec<String>, MetaError> {
        let n = to_i64(limit as u64);
        match after {
            Some(after) => self.strings(
                "SELECT digest FROM blobs WHERE digest > $1 ORDER BY digest LIMIT $2",
                &[&after, &n],
            ),
            None => self.strings("SELECT digest FROM blobs ORDER BY digest LIMIT $1", &[&n]),
        }
    }

    fn each_blob(&self, f: &mut dyn FnMut(&str, BlobRecord)) -> Result<(), MetaError> {
        let all = Batched::new(BATCH, |last: Option<&String>, n| {
            let rows = match last {
                Some(after) => self.rows(
                    "SELECT digest, record FROM blobs WHERE digest > $1 ORDER BY digest LIMIT $2",
                    &[after, &n],
                )?,
                None => self.rows(
                    "SELECT digest, record FROM blobs ORDER BY digest LIMIT $1",
                    &[&n],
                )?,
            };
            rows.iter()
                .map(|r| {
                    let digest: String = r.get(0);
                    let record: BlobRecord = decode(r.get::<_, &[u8]>(1))?;
                    Ok((digest.clone(), (digest, record)))
                })
                .collect()
        });
        for item in all {
            let (digest, record) = item?;
            f(&digest, record);
        }
        Ok(())
    }

    fn each_link(&self, f: &mut dyn FnMut(&str, &str, u64)) -> Result<(), MetaError> {
        let all = Batched::new(BATCH, |last: Option<&(String, String)>, n| {
            let rows = match last {
                Some((repo, digest)) => self.rows(
                    "SELECT repo, digest, at FROM links WHERE (repo, digest) > ($1, $2)
                     ORDER BY repo, digest LIMIT $3",
                    &[repo, digest, &n],
                )?,
                None => self.rows(
                    "SELECT repo, digest, at FROM links ORDER BY repo, digest LIMIT $1",
                    &[&n],
                )?,
            };
            Ok(rows
                .iter()
                .map(|r| {
                    let key = (r.get::<_, String>(0), r.get::<_, String>(1));
                    (key.clone(), (key, to_u64(r.get(2))))
                })
                .collect())
        });
        for item in all {
            let ((repo, digest), at) = item?;
            f(&repo, &digest, at);
        }
        Ok(())
    }

    fn repositories_linking(&self, digest: &str) -> Result<Vec<String>, MetaError> {
        self.strings(
            "SELECT repo FROM links WHERE digest = $1 ORDER BY repo",
            &[&digest],
        )
    }

    fn links(&self) -> Result<Vec<(String, String, u64)>, MetaError> {
        Ok(self
            .rows(
                "SELECT repo, digest, at FROM links ORDER BY repo, digest",
                &[],
            )?
            .iter()
            .map(|r| (r.get(0), r.get(1), to_u64(r.get(2))))
            .collect())
    }

    fn retention(&self, feed: &str) -> Result<Option<RetentionRecord>, MetaError> {
        self.record("SELECT record FROM retention WHERE feed = $1", &[&feed])
    }

    fn last_pull(&self, repo: &str, digest: &str) -> Result<Option<u64>, MetaError> {
        Ok(self
            .row(
                "SELECT at FROM pulls WHERE repo = $1 AND digest = $2",
                &[&repo, &digest],
            )?
            .map(|r| to_u64(r.get(0))))
    }
}

impl MetaWrite for Txn {
    fn put_feed(&mut self, name: &str, record: &FeedRecord) -> Result<(), MetaError> {
        self.put_record("feeds", "name", name, &encode(record)?)
    }

    fn remove_feed(&mut self, name: &str) -> Result<bool, MetaError> {
        Ok(self.exec("DELETE FROM feeds WHERE name = $1", &[&name])? > 0)
    }

    fn put_repository(&mut self, name: &str, record: &RepositoryRecord) -> Result<(), MetaError> {
        self.put_record("repositories", "name", name, &encode(record)?)
    }

    fn remove_repository(&mut self, name: &str) -> Result<(), MetaError> {
        self.exec("DELETE FROM repositories WHERE name = $1", &[&name])?;
        Ok(())
    }

    fn put_manifest(
        &mut self,
        repo: &str,
        digest: &str,
        record: &ManifestRecord,
    ) -> Result<(), MetaError> {
        let record = encode(record)?;
        self.exec(
            "INSERT INTO manifests (repo, digest, record) VALUES ($1, $2, $3)
             ON CONFLICT (repo, digest) DO UPDATE SET record = EXCLUDED.record",
            &[&repo, &digest, &record],
        )?;
        Ok(())
    }

    fn remove_manifest(&mut self, repo: &str, digest: &str) -> Result<(), MetaError> {
        self.exec(
            "DELETE FROM manifests WHERE repo = $1 AND digest = $2",
            &[&repo, &digest],
        )?;
        Ok(())
    }

    fn set_tag(&mut self, repo: &str, tag: &str, digest: &str) -> Result<(), MetaError> {
        let rank = precedence::rank(tag);
        self.exec(
            "INSERT INTO tags (repo, tag, digest, rank) VALUES ($1, $2, $3, $4)
             ON CONFLICT (repo, tag) DO UPDATE SET digest = EXCLUDED.digest",
            &[&repo, &tag, &digest, &rank],
        )?;
        Ok(())
    }

    fn remove_tag(&mut self, repo: &str, tag: &str) -> Result<bool, MetaError> {
        Ok(self.exec(
            "DELETE FROM tags WHERE repo = $1 AND tag = $2",
            &[&repo, &tag],
        )? > 0)
    }

    fn put_blob(&mut self, digest: &str, record: &BlobRecord) -> Result<(), MetaError> {
        self.put_record("blobs", "digest", digest, &encode(record)?)
    }

    fn link(&mut self, repo: &str, digest: &str, at: u64) -> Result<(), MetaError> {
        self.exec(
            "INSERT INTO links (repo, digest, at) VALUES ($1, $2, $3)
             ON CONFLICT (repo, digest) DO UPDATE SET at = EXCLUDED.at",
            &[&repo, &digest, &to_i64(at)],
        )?;
        Ok(())
    }

    fn unlink(&mut self, repo: &str, digest: &str) -> Result<bool, MetaError> {
        Ok(self.exec(
            "DELETE FROM links WHERE repo = $1 AND digest = $2",
            &[&repo, &digest],
        )? > 0)
    }

    fn add_referrer(
        &mut self,
        repo: &str,
        subject: &str,
        referrer: &str,
        at: u64,
    ) -> Result<(), MetaError> {
        self.exec(
            "INSERT INTO referrers (repo, subject, referrer, at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (repo, subject, referrer) DO UPDATE SET at = EXCLUDED.at",
            &[&repo, &subject, &referrer, &to_i64(at)],
        )?;
        Ok(())
    }

    fn remove_referrer(
        &mut self,
        repo: &str,
        subject: &str,
        referrer: &str,
    ) -> Result<(), MetaError> {
        self.exec(
            "DELETE FROM referrers WHERE repo = $1 AND subject = $2 AND referrer = $3",
            &[&repo, &subject, &referrer],
        )?;
        Ok(())
    }

    fn put_upload(&mut self, id: &str, record: &UploadRecord) -> Result<(), MetaError> {
        self.put_record("uploads", "id", id, &encode(record)?)
    }

    fn remove_upload(&mut self, id: &str) -> Result<(), MetaError> {
        self.exec("DELETE FROM uploads WHERE id = $1", &[&id])?;
        Ok(())
    }

    fn put_user(&mut self, name: &str, record: &UserRecord) -> Result<(), MetaError> {
        self.put_record("users", "name", name, &encode(record)?)
    }

    fn put_api_key(&mut self, id: &str, record: &ApiKeyRecord) -> Result<(), MetaError> {
        self.put_record("api_keys", "id", id, &encode(record)?)
    }

    fn remove_api_key(&mut self, id: &str) -> Result<bool, MetaError> {
        Ok(self.exec("DELETE FROM api_keys WHERE id = $1", &[&id])? > 0)
    }

    fn set_grant(&mut self, principal: &str, feed: &str, role: &str) -> Result<(), MetaError> {
        self.exec(
            "INSERT INTO grants (principal, feed, role) VALUES ($1, $2, $3)
             ON CONFLICT (principal, feed) DO UPDATE SET role = EXCLUDED.role",
            &[&principal, &feed, &role],
        )?;
        Ok(())
    }

    fn remove_grant(&mut self, principal: &str, feed: &str) -> Result<bool, MetaError> {
        Ok(self.exec(
            "DELETE FROM grants WHERE principal = $1 AND feed = $2",
            &[&principal, &feed],
        )? > 0)
    }

    fn remove_grants_on(&mut self, feed: &str) -> Result<(), MetaError> {
        self.exec("DELETE FROM grants WHERE feed = $1", &[&feed])?;
        Ok(())
    }

    fn set_tombstone(&mut self, repo: &str, tag: &str, digest: &str) -> Result<(), MetaError> {
        self.exec(
            "INSERT INTO tombstones (repo, tag, digest) VALUES ($1, $2, $3)
             ON CONFLICT (repo, tag) DO UPDATE SET digest = EXCLUDED.digest",
            &[&repo, &tag, &digest],
        )?;
        Ok(())
    }

    fn remove_tombstone(&mut self, repo: &str, tag: &str) -> Result<bool, MetaError> {
        Ok(self.exec(
            "DELETE FROM tombstones WHERE repo = $1 AND tag = $2",
            &[&repo, &tag],
        )? > 0)
    }

    fn append_history(
        &mut self,
        repo: &str,
        tag: &str,
        record: &HistoryRecord,
    ) -> Result<(), MetaError> {
        let seq = self.next_seq("tag-history-seq")?;
        self.put_history(repo, tag, to_u64(seq), record)
    }

    fn put_history(
        &mut self,
        repo: &str,
        tag: &str,
        seq: u64,
        record: &HistoryRecord,
    ) -> Result<(), MetaError> {
        let record = encode(record)?;
        self.exec(
            "INSERT INTO history (seq, repo, tag, record) VALUES ($1, $2, $3, $4)",
            &[&to_i64(seq), &repo, &tag, &record],
        )?;
        Ok(())
    }

    fn append_promotion(&mut self, record: &PromotionRecord) -> Result<(), MetaError> {
        let seq = self.next_seq("promotion-seq")?;
        let record = encode(record)?;
        self.exec(
            "INSERT INTO promotions (seq, record) VALUES ($1, $2)",
            &[&seq, &record],
        )?;
        Ok(())
    }

    fn append_audit(&mut self, record: &AuditRecord) -> Result<u64, MetaError> {
        let seq = self.next_seq("audit-seq")?;
        self.put_audit(to_u64(seq), record)?;
        Ok(to_u64(seq))
    }

    fn put_audit(&mut self, seq: u64, record: &AuditRecord) -> Result<(), MetaError> {
        let bytes = encode(record)?;
        self.exec(
            "INSERT INTO audit (seq, kind, record) VALUES ($1, $2, $3)",
            &[&to_i64(seq), &record.kind, &bytes],
        )?;
        Ok(())
    }

    fn remove_audit_before(&mut self, time_ms: u64, limit: usize) -> Result<u64, MetaError> {
        // The log is in time order: the oldest rows, read a page at a time, until one is new.
        let n = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut old = Vec::new();
        for r in self.rows("SELECT seq, record FROM audit ORDER BY seq LIMIT $1", &[&n])? {
            let record: AuditRecord = decode(r.get::<_, &[u8]>(1))?;
            if record.time_ms >= time_ms {
                break;
            }
            old.push(r.get::<_, i64>(0));
        }
        self.exec("DELETE FROM audit WHERE seq = ANY($1)", &[&old])?;
        Ok(old.len() as u64)
    }

    fn remove_blob(&mut self, digest: &str) -> Result<bool, MetaError> {
        Ok(self.exec("DELETE FROM blobs WHERE digest = $1", &[&digest])? > 0)
    }

    fn put_retention(&mut self, feed: &str, record: &RetentionRecord) -> Result<(), MetaError> {
        self.put_record("retention", "feed", feed, &encode(record)?)
    }

    fn remove_retention(&mut self, feed: &str) -> Result<(), MetaError> {
        self.exec("DELETE FROM retention WHERE feed = $1", &[&feed])?;
        Ok(())
    }

    fn set_pull(&mut self, repo: &str, digest: &str, at: u64) -> Result<(), MetaError> {
        self.exec(
            "INSERT INTO pulls (repo, digest, at) VALUES ($1, $2, $3)
             ON CONFLICT (repo, digest) DO UPDATE SET at = greatest(pulls.at, EXCLUDED.at)",
            &[&repo, &digest, &to_i64(at)],
        )?;
        Ok(())
    }

    fn remove_pull(&mut self, repo: &str, digest: &str) -> Result<(), MetaError> {
        self.exec(
            "DELETE FROM pulls WHERE repo = $1 AND digest = $2",
            &[&repo, &digest],
        )?;
        Ok(())
    }

    fn put_setting(&mut self, name: &str, value: &[u8]) -> Result<(), MetaError> {
        self.put(name, value)
    }

    fn remove_setting(&mut self, name: &str) -> Result<(), MetaError> {
        self.exec("DELETE FROM settings WHERE name = $1", &[&name])?;
        Ok(())
    }
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
