//! What earlier releases left to do, run once per database at open, each behind a marker
//! setting: indexing tags by rank and digest, giving records their encoding version,
//! indexing the audit log by kind.

use std::ops::Bound;

use redb::{ReadableTable, Table};

use super::tables::{Bytes, Writer};
use crate::store::meta::codec::decode;
use crate::store::meta::{AuditRecord, MetaError};

impl Writer<'_> {
    /// Builds the ranked, by-digest and repository-history indexes from the tags and their
    /// history, once per database (the first open by a release that keeps them); says
    /// whether it did.
    pub(super) fn build_tag_indexes(&mut self) -> Result<bool, MetaError> {
        const BUILT: &str = crate::store::meta::settings::TAG_INDEXES.name();
        if self.settings.get(BUILT)?.is_some() {
            return Ok(false);
        }
        let mut all = Vec::new();
        for entry in self.tags.iter()? {
            let (k, v) = entry?;
            let (repo, tag) = k.value();
            all.push((repo.to_owned(), tag.to_owned(), v.value().to_owned()));
        }
        for (repo, tag, digest) in &all {
            self.index_tag(repo, tag, digest)?;
        }
        let mut changes = Vec::new();
        for entry in self.history.iter()? {
            let (k, _) = entry?;
            let (repo, tag, seq) = k.value();
            changes.push((repo.to_owned(), tag.to_owned(), seq));
        }
        for (repo, tag, seq) in &changes {
            self.repo_history
                .insert((repo.as_str(), *seq), tag.as_str())?;
        }
        self.settings.insert(BUILT, [1u8].as_slice())?;
        Ok(true)
    }

    /// Indexes the audit log by kind, once per database (marker `audit-kinds-1`): entries
    /// written before the index were feed settings and retention rules only.
    pub(super) fn index_audit_kinds(&mut self) -> Result<u64, MetaError> {
        const DONE: &str = crate::store::meta::settings::AUDIT_KINDS.name();
        if self.settings.get(DONE)?.is_some() {
            return Ok(0);
        }
        let mut rows = Vec::new();
        for entry in self.audit.iter()? {
            let (k, v) = entry?;
            let record: AuditRecord = decode(v.value())?;
            rows.push((record.kind, k.value()));
        }
        for (kind, seq) in &rows {
            self.audit_kinds.insert((kind.as_str(), *seq), ())?;
        }
        self.settings.insert(DONE, [1u8].as_slice())?;
        Ok(rows.len() as u64)
    }

    /// Prefixes every record written before records carried their encoding version with
    /// version 1 (what they all were), once per database (marker `record-versions-1`);
    /// says how many it rewrote. Bounded memory: a table is rewritten a batch at a time.
    pub(super) fn version_records(&mut self) -> Result<u64, MetaError> {
        const DONE: &str = crate::store::meta::settings::RECORD_VERSIONS.name();
        if self.settings.get(DONE)?.is_some() {
            return Ok(0);
        }
        let n = version_table(&mut self.feeds)?
            + version_table(&mut self.repositories)?
            + version_table(&mut self.manifests)?
            + version_table(&mut self.blobs)?
            + version_table(&mut self.uploads)?
            + version_table(&mut self.users)?
            + version_table(&mut self.api_keys)?
            + version_table(&mut self.history)?
            + version_table(&mut self.audit)?
            + version_table(&mut self.retention)?
            + version_table(&mut self.promotions)?;
        self.settings.insert(DONE, [1u8].as_slice())?;
        Ok(n)
    }
}

/// Rewrites every value of `table` as version 1 of its record (the first byte), a batch of
/// keys at a time; returns how many.
fn version_table<K: redb::Key + 'static>(
    table: &mut Table<'_, K, Bytes>,
) -> Result<u64, MetaError> {
    const BATCH: usize = 4096;
    let mut after: Option<Vec<u8>> = None;
    let mut n = 0;
    loop {
        let mut rows: Vec<(Vec<u8>, Vec<u8>)> = Vec::with_capacity(BATCH);
        {
            let range = match &after {
                Some(last) => table.range::<K::SelfType<'_>>((
                    Bound::Excluded(K::from_bytes(last)),
                    Bound::Unbounded,
                ))?,
                None => table.range::<K::SelfType<'_>>(..)?,
            };
            for entry in range.take(BATCH) {
                let (k, v) = entry?;
                let mut value = Vec::with_capacity(v.value().len() + 1);
                value.push(1);
                value.extend_from_slice(v.value());
                rows.push((K::as_bytes(&k.value()).as_ref().to_vec(), value));
            }
        }
        let Some((last, _)) = rows.last() else {
            return Ok(n);
        };
        let last = last.clone();
        for (key, value) in &rows {
            table.insert(K::from_bytes(key), value.as_slice())?;
        }
        n += rows.len() as u64;
        after = Some(last);
    }
}

#[cfg(test)]
mod tests {
    use redb::Database;

    use super::super::RedbMeta;
    use super::super::tables::TAGS;
    use crate::store::meta::prelude::*;
    use crate::store::meta::{MetaError, precedence};

    /// A database written before the tag indexes existed gets them at its first open.
    #[test]
    fn tags_of_an_older_database_are_indexed_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("meta.redb");
        {
            let db = Database::create(&path).unwrap();
            let txn = db.begin_write().unwrap();
            {
                let mut tags = txn.open_table(TAGS).unwrap();
                for (tag, digest) in [
                    ("1.2.0", "a"),
                    ("1.10.0", "b"),
                    ("2.0.0-rc.1", "c"),
                    ("dev", "b"),
                ] {
                    tags.insert(("prod/app", tag), digest).unwrap();
                }
            }
            txn.commit().unwrap();
        }
        let store = RedbMeta::open(&path).unwrap();
        let r = store.read().unwrap();
        let highest = |scope| r.highest_version("prod/app", scope).unwrap();
        assert_eq!(
            highest(precedence::Scope::Stable),
            Some(("1.10.0".into(), "b".into()))
        );
        assert_eq!(
            highest(precedence::Scope::Minor(1, 2)),
            Some(("1.2.0".into(), "a".into()))
        );
        assert_eq!(highest(precedence::Scope::Major(2)), None);
        assert_eq!(
            highest(precedence::Scope::PreRelease),
            Some(("2.0.0-rc.1".into(), "c".into()))
        );
        assert_eq!(
            r.tags_pointing_at("prod/app", "b").unwrap(),
            ["1.10.0", "dev"]
        );
        drop(r);
        // Moving and removing tags keeps both indexes in step.
        store
            .write(|w| {
                w.set_tag("prod/app", "dev", "a")?;
                w.remove_tag("prod/app", "1.10.0")?;
                Ok::<_, MetaError>(())
            })
            .unwrap();
        let r = store.read().unwrap();
        assert_eq!(
            r.tags_pointing_at("prod/app", "b").unwrap(),
            Vec::<String>::new()
        );
        assert_eq!(
            r.tags_pointing_at("prod/app", "a").unwrap(),
            ["1.2.0", "dev"]
        );
        assert_eq!(
            r.highest_version("prod/app", precedence::Scope::Stable)
                .unwrap(),
            Some(("1.2.0".into(), "a".into()))
        );
    }
}
