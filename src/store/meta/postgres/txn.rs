//! One PostgreSQL transaction and the ways the engine reads through it: rows, records,
//! keyset walks a batch at a time, pages.

use std::ops::Bound;

use deadpool_postgres::Object;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use super::{BATCH, pg_error};
use crate::store::meta::codec::decode;
use crate::store::meta::{MetaError, Scan, SettingsRead, page};

/// One transaction on one pooled connection: a read snapshot, or a write (then also
/// `MetaWrite`). Dropped while still open (a failed request), it is rolled back on the
/// engine's runtime before the connection goes back to the pool.
pub(super) struct Txn {
    pub(super) handle: tokio::runtime::Handle,
    pub(super) client: Option<Object>,
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

pub(super) type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

impl Txn {
    pub(super) fn client(&self) -> &Object {
        self.client
            .as_ref()
            .expect("a transaction is used only while open")
    }

    pub(super) fn rows(&self, sql: &str, params: Params<'_>) -> Result<Vec<Row>, MetaError> {
        let client = self.client();
        // The statement's messages go through the connection task on the engine's runtime;
        // waiting for them needs no runtime here.
        futures_executor::block_on(async {
            let statement = client.prepare_cached(sql).await?;
            client.query(&statement, params).await
        })
        .map_err(pg_error)
    }

    pub(super) fn row(&self, sql: &str, params: Params<'_>) -> Result<Option<Row>, MetaError> {
        Ok(self.rows(sql, params)?.into_iter().next())
    }

    /// Runs a statement; returns how many rows it changed.
    pub(super) fn exec(&self, sql: &str, params: Params<'_>) -> Result<u64, MetaError> {
        let client = self.client();
        futures_executor::block_on(async {
            let statement = client.prepare_cached(sql).await?;
            client.execute(&statement, params).await
        })
        .map_err(pg_error)
    }

    /// Ends the transaction with `COMMIT` or `ROLLBACK`.
    pub(super) fn end(&mut self, how: &str) -> Result<(), MetaError> {
        let client = self.client.take().expect("a transaction ends once");
        let done = futures_executor::block_on(client.batch_execute(how));
        if done.is_err() {
            drop(Object::take(client));
        }
        done.map_err(pg_error)
    }

    pub(super) fn record<T: crate::store::meta::codec::Record>(
        &self,
        sql: &str,
        params: Params<'_>,
    ) -> Result<Option<T>, MetaError> {
        self.row(sql, params)?
            .map(|r| decode(r.get::<_, &[u8]>(0)))
            .transpose()
    }

    pub(super) fn named_records<T: crate::store::meta::codec::Record>(
        &self,
        sql: &str,
    ) -> Result<Vec<(String, T)>, MetaError> {
        self.rows(sql, &[])?
            .iter()
            .map(|r| Ok((r.get::<_, String>(0), decode(r.get::<_, &[u8]>(1))?)))
            .collect()
    }

    pub(super) fn strings(&self, sql: &str, params: Params<'_>) -> Result<Vec<String>, MetaError> {
        Ok(self.rows(sql, params)?.iter().map(|r| r.get(0)).collect())
    }

    pub(super) fn string_pairs(
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
    pub(super) fn next_seq(&self, name: &str) -> Result<i64, MetaError> {
        let current =
            crate::store::meta::settings::counter_from(name, self.setting(name)?.as_deref())?;
        let next = current + 1;
        self.put(name, &crate::store::meta::settings::counter_bytes(next))?;
        Ok(to_i64(next))
    }

    /// Writes `record` under `key` in a table keyed by one name (`column`).
    pub(super) fn put_record(
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

    pub(super) fn put(&self, name: &str, value: &[u8]) -> Result<(), MetaError> {
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
pub(super) type Fetch<'f, K, T> =
    Box<dyn FnMut(Option<&K>, i64) -> Result<Vec<(K, T)>, MetaError> + 'f>;

pub(super) struct Batched<'f, K, T> {
    fetch: Fetch<'f, K, T>,
    n: i64,
    after: Option<K>,
    buffer: std::vec::IntoIter<(K, T)>,
    done: bool,
}

impl<'f, K, T> Batched<'f, K, T> {
    pub(super) fn new(
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
pub(super) fn page_of<T>(
    items: impl Iterator<Item = Result<T, MetaError>>,
    limit: usize,
    keep: impl Fn(&T) -> bool,
) -> Result<(Vec<T>, bool), MetaError> {
    page(items, limit, |item| Scan::keep_if(keep(item)), Ok)
}

/// The rows a page of `limit` is read in: the whole page and one more in one query.
pub(super) fn batch_for(limit: usize) -> i64 {
    i64::try_from(limit.saturating_add(1)).map_or(BATCH, |n| n.min(BATCH))
}

pub(super) fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

pub(super) fn to_u64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

pub(super) fn bound_sql(bound: &Bound<Vec<u8>>) -> (&'static str, Vec<u8>) {
    match bound {
        Bound::Included(k) => ("<=", k.clone()),
        Bound::Excluded(k) => ("<", k.clone()),
        Bound::Unbounded => ("<=", vec![u8::MAX; 257]),
    }
}
