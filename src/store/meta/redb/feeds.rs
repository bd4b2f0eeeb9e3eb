//! Feeds, repositories and retention rules in redb.

use std::ops::Bound;

use redb::ReadableTable;

use super::tables::{Access, Tables, Writer};
use super::walk::{all, get};
use crate::store::meta::codec::encode;
use crate::store::meta::{
    FeedRecord, FeedsRead, FeedsWrite, MetaError, RepositoryRecord, RetentionRecord, Scan, page,
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
        page(
            self.repositories.range::<&str>((start, Bound::Unbounded))?,
            limit,
            |(k, _)| {
                let name = k.value();
                if name.starts_with(prefix) {
                    Scan::keep_if(keep(name))
                } else {
                    Scan::Stop
                }
            },
            |(k, _)| Ok(k.value().to_owned()),
        )
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
