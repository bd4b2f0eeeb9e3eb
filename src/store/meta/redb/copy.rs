//! A snapshot of the embedded database: a new file written from one read transaction.

use std::path::Path;

use redb::{
    Database, Key, ReadTransaction, ReadableDatabase, ReadableTable, TableDefinition, TableHandle,
    Value,
};

use super::RedbMeta;
use super::tables::{self, BLOBS, EachTable, UPLOADS};
use crate::store::meta::MetaError;

/// Rows written per commit of a copy: what a write transaction holds in memory is bounded
/// by this, not by the size of the database.
const COPY_BATCH: usize = 20_000;

/// A new database file written by a sequence of bounded, durable transactions: consistency
/// comes from the one read transaction it copies.
struct Copy {
    db: Database,
    txn: Option<redb::WriteTransaction>,
    rows: usize,
}

impl Copy {
    fn create(path: &Path) -> Result<Self, MetaError> {
        let db = Database::create(path).map_err(|e| MetaError::from(redb::Error::from(e)))?;
        let mut copy = Self {
            db,
            txn: None,
            rows: 0,
        };
        copy.begin()?;
        Ok(copy)
    }

    fn begin(&mut self) -> Result<(), MetaError> {
        // Durable commits: redb keeps the pages of non-durable ones in memory until a
        // durable commit (a million-manifest backup peaked at 589 MiB that way).
        self.txn = Some(self.db.begin_write()?);
        Ok(())
    }

    fn txn(&self) -> &redb::WriteTransaction {
        // Set by `create` and after every commit.
        self.txn.as_ref().expect("an open transaction")
    }

    /// Copies every row of one table.
    fn table<K: redb::Key + 'static, V: redb::Value + 'static>(
        &mut self,
        from: &redb::ReadTransaction,
        def: redb::TableDefinition<K, V>,
    ) -> Result<(), MetaError> {
        let source = from.open_table(def)?;
        let mut rows = source.iter()?;
        loop {
            let mut more = false;
            let mut written = self.rows;
            {
                let mut target = self.txn().open_table(def)?;
                for entry in rows.by_ref() {
                    let (k, v) = entry?;
                    target.insert(k.value(), v.value())?;
                    written += 1;
                    if written.is_multiple_of(COPY_BATCH) {
                        more = true;
                        break;
                    }
                }
            }
            self.rows = written;
            if !more {
                return Ok(());
            }
            if let Some(txn) = self.txn.take() {
                txn.commit()?;
            }
            self.begin()?;
        }
    }

    /// Commits what is left.
    fn finish(mut self) -> Result<(), MetaError> {
        if let Some(txn) = self.txn.take() {
            txn.commit()?;
        }
        Ok(())
    }
}

/// Copies every table of a read transaction but the upload sessions, which it creates empty.
struct Snapshot<'a> {
    from: &'a ReadTransaction,
    to: &'a mut Copy,
}

impl EachTable for Snapshot<'_> {
    fn table<K: Key + 'static, V: Value + 'static>(
        &mut self,
        def: TableDefinition<'static, K, V>,
    ) -> Result<(), MetaError> {
        if def.name() == UPLOADS.name() {
            self.to.txn().open_table(def)?;
            Ok(())
        } else {
            self.to.table(self.from, def)
        }
    }
}

impl RedbMeta {
    /// Writes a consistent copy of the database, from one read transaction, to a new file at
    /// `path`, leaving out upload sessions (their bytes are not part of a copy), in commits of
    /// bounded size. Returns how many blobs that copy records.
    pub fn snapshot_to(&self, path: &Path) -> Result<u64, MetaError> {
        let from = self.db().begin_read()?;
        let mut to = Copy::create(path)?;
        tables::each_table(&mut Snapshot {
            from: &from,
            to: &mut to,
        })?;
        to.finish()?;
        Ok(redb::ReadableTableMetadata::len(&from.open_table(BLOBS)?)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::meta::BlobRecord;
    use crate::store::meta::prelude::*;

    /// A copy larger than one batch is written by several commits and loses no row.
    #[test]
    fn a_snapshot_larger_than_a_batch_copies_every_row() {
        let dir = tempfile::tempdir().unwrap();
        let store = RedbMeta::open(&dir.path().join("meta.redb")).unwrap();
        let n = COPY_BATCH * 2 + 7;
        store
            .write(|w| {
                for i in 0..n {
                    w.set_tag("prod/app", &format!("t{i}"), "sha256:x")?;
                    w.put_blob(
                        &format!("sha256:{i:064}"),
                        &BlobRecord {
                            size: 1,
                            created: 0,
                        },
                    )?;
                }
                Ok::<_, MetaError>(())
            })
            .unwrap();
        let copy = dir.path().join("copy.redb");
        assert_eq!(store.snapshot_to(&copy).unwrap(), n as u64);
        let copied = RedbMeta::open(&copy).unwrap();
        let r = copied.read().unwrap();
        assert_eq!(r.tag_targets("prod/app").unwrap().len(), n);
        assert_eq!(r.tags_pointing_at("prod/app", "sha256:x").unwrap().len(), n);
        let mut after = None;
        let mut blobs = 0;
        loop {
            let page = r.blob_digests(after.as_deref(), 1000).unwrap();
            let Some(last) = page.last().cloned() else {
                break;
            };
            blobs += page.len();
            after = Some(last);
        }
        assert_eq!(blobs, n);
    }
}
