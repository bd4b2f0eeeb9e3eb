//! Feeds, repositories and retention rules in redb.

use std::ops::Bound;

use redb::ReadableTable;

use super::tables::{Access, Tables, Writer};
use super::walk::{all, get};
use crate::store::meta::codec::encode;
use crate::store::meta::{
    FeedRecord, FeedsRead, FeedsWrite, MetaError, RepositoryRecord, RetentionRecord,
};

impl<A: Access> FeedsRead for Tables<A> {
    fn feed(&self, name: &str) -> Result<Option<FeedRecord>, MetaError> {
        get(&self.feeds, name)
    }

    fn feeds(&self) -> Result<Vec<(String, FeedRecord)>, MetaError> {
        all(&self.feeds)
    }

    fn repository(&self, name: &str) -> Result<Option<RepositoryRecord>, MetaError> {
        get(&self.repositories, name)
    }

    fn repositories(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
        keep: &dyn Fn(&str) -> bool,
    ) -> Result<(Vec<String>, bool), MetaError> {
        let start = after.map_or(Bound::Included(prefix), Bound::Excluded);
        let mut out = Vec::new();
        for entry in self.repositories.range::<&str>((start, Bound::Unbounded))? {
            let (k, _) = entry?;
            let name = k.value();
            if !name.starts_with(prefix) {
                break;
            }
            if !keep(name) {
                continue;
            }
            if out.len() == limit {
                return Ok((out, true));
            }
            out.push(name.to_owned());
        }
        Ok((out, false))
    }

    fn retention(&self, feed: &str) -> Result<Option<RetentionRecord>, MetaError> {
        get(&self.retention, feed)
    }
}

impl FeedsWrite for Writer<'_> {
    fn put_feed(&mut self, name: &str, record: &FeedRecord) -> Result<(), MetaError> {
        self.feeds.insert(name, encode(record)?.as_slice())?;
        Ok(())
    }

    fn remove_feed(&mut self, name: &str) -> Result<bool, MetaError> {
        Ok(self.feeds.remove(name)?.is_some())
    }

    fn put_repository(&mut self, name: &str, record: &RepositoryRecord) -> Result<(), MetaError> {
        self.repositories.insert(name, encode(record)?.as_slice())?;
        Ok(())
    }

    fn remove_repository(&mut self, name: &str) -> Result<(), MetaError> {
        self.repositories.remove(name)?;
        Ok(())
    }

    fn put_retention(&mut self, feed: &str, record: &RetentionRecord) -> Result<(), MetaError> {
        self.retention.insert(feed, encode(record)?.as_slice())?;
        Ok(())
    }

    fn remove_retention(&mut self, feed: &str) -> Result<(), MetaError> {
        self.retention.remove(feed)?;
        Ok(())
    }
}
