//! Feeds, repositories and retention rules in PostgreSQL.

use super::txn::{Batched, Txn, batch_for, page_of};
use crate::store::meta::codec::encode;
use crate::store::meta::{
    FeedRecord, FeedsRead, FeedsWrite, MetaError, RepositoryRecord, RetentionRecord,
};

impl FeedsRead for Txn {
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

    fn retention(&self, feed: &str) -> Result<Option<RetentionRecord>, MetaError> {
        self.record("SELECT record FROM retention WHERE feed = $1", &[&feed])
    }
}

impl FeedsWrite for Txn {
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

    fn put_retention(&mut self, feed: &str, record: &RetentionRecord) -> Result<(), MetaError> {
        self.put_record("retention", "feed", feed, &encode(record)?)
    }

    fn remove_retention(&mut self, feed: &str) -> Result<(), MetaError> {
        self.exec("DELETE FROM retention WHERE feed = $1", &[&feed])?;
        Ok(())
    }
}
