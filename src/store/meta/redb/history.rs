//! The history of tags (by tag, and by repository through an index) and the promotions in
//! redb.

use std::ops::Bound;

use redb::ReadableTable;

use super::settings::{HISTORY_SEQ, PROMOTION_SEQ};
use super::tables::{Access, Tables, Writer};
use super::walk::ordered;
use crate::store::meta::codec::{decode, encode};
use crate::store::meta::{
    HistoryRead, HistoryRecord, HistoryRow, HistoryWrite, MetaError, PromotionRecord, Scan, page,
};

impl<A: Access> HistoryRead for Tables<A> {
    fn history_page(
        &self,
        repo: &str,
        tag: Option<&str>,
        cursor: Option<u64>,
        newest_first: bool,
        limit: usize,
        keep: &dyn Fn(&str, &HistoryRecord) -> bool,
    ) -> Result<(Vec<HistoryRow>, bool), MetaError> {
        let (low, high) = match (cursor, newest_first) {
            (None, _) => (Bound::Included(0), Bound::Included(u64::MAX)),
            (Some(c), true) => (Bound::Included(0), Bound::Excluded(c)),
            (Some(c), false) => (Bound::Excluded(c), Bound::Included(u64::MAX)),
        };
        let sequences: Box<dyn Iterator<Item = Result<(String, u64), MetaError>> + '_> =
            if let Some(tag) = tag {
                let range = self.history.range::<(&str, &str, u64)>((
                    low.map(|s| (repo, tag, s)),
                    high.map(|s| (repo, tag, s)),
                ))?;
                ordered(
                    range.map(move |e| {
                        e.map(|(k, _)| (tag.to_owned(), k.value().2))
                            .map_err(MetaError::from)
                    }),
                    newest_first,
                )
            } else {
                let range = self
                    .repo_history
                    .range::<(&str, u64)>((low.map(|s| (repo, s)), high.map(|s| (repo, s))))?;
                ordered(
                    range.map(|e| {
                        e.map(|(k, v)| (v.value().to_owned(), k.value().1))
                            .map_err(MetaError::from)
                    }),
                    newest_first,
                )
            };
        // A sequence whose record is gone is passed over.
        let rows = sequences.filter_map(|entry| {
            let row = entry.and_then(|(tag, seq)| {
                let Some(record) = self.history.get((repo, tag.as_str(), seq))? else {
                    return Ok(None);
                };
                Ok(Some((tag, seq, decode::<HistoryRecord>(record.value())?)))
            });
            row.transpose()
        });
        page(
            rows,
            limit,
            |(tag, _, record)| Scan::keep_if(keep(tag, record)),
            Ok,
        )
    }

    fn last_history(&self, repo: &str, tag: &str) -> Result<Option<HistoryRecord>, MetaError> {
        self.history
            .range::<(&str, &str, u64)>((repo, tag, 0)..=(repo, tag, u64::MAX))?
            .next_back()
            .transpose()?
            .map(|(_, v)| decode(v.value()))
            .transpose()
    }

    fn history(
        &self,
        repo: &str,
        tag: Option<&str>,
    ) -> Result<Vec<(String, u64, HistoryRecord)>, MetaError> {
        let mut out = Vec::new();
        let start = Bound::Included((repo, tag.unwrap_or(""), 0));
        for entry in self
            .history
            .range::<(&str, &str, u64)>((start, Bound::Unbounded))?
        {
            let (k, v) = entry?;
            let (r, t, seq) = k.value();
            if r != repo || tag.is_some_and(|tag| tag != t) {
                break;
            }
            out.push((t.to_owned(), seq, decode(v.value())?));
        }
        out.sort_by_key(|(_, seq, _)| *seq);
        Ok(out)
    }

    fn recent_history(
        &self,
        limit: usize,
        keep: &dyn Fn(&str) -> bool,
    ) -> Result<Vec<(String, String, HistoryRecord)>, MetaError> {
        let mut newest: std::collections::BTreeMap<u64, (String, String, HistoryRecord)> =
            std::collections::BTreeMap::new();
        for entry in self.history.iter()? {
            let (k, v) = entry?;
            let (repo, tag, seq) = k.value();
            if !keep(repo) {
                continue;
            }
            if newest.len() == limit {
                match newest.first_key_value() {
                    Some((oldest, _)) if *oldest < seq => {
                        newest.pop_first();
                    }
                    _ => continue,
                }
            }
            newest.insert(seq, (repo.to_owned(), tag.to_owned(), decode(v.value())?));
        }
        Ok(newest.into_values().rev().collect())
    }

    fn promotions(&self) -> Result<Vec<PromotionRecord>, MetaError> {
        let mut out = Vec::new();
        for entry in self.promotions.iter()? {
            let (_, v) = entry?;
            out.push(decode(v.value())?);
        }
        Ok(out)
    }
}

impl HistoryWrite for Writer<'_> {
    fn append_history(
        &mut self,
        repo: &str,
        tag: &str,
        record: &HistoryRecord,
    ) -> Result<(), MetaError> {
        let seq = self.next_seq(HISTORY_SEQ)?;
        self.put_history(repo, tag, seq, record)
    }

    fn put_history(
        &mut self,
        repo: &str,
        tag: &str,
        seq: u64,
        record: &HistoryRecord,
    ) -> Result<(), MetaError> {
        self.history
            .insert((repo, tag, seq), encode(record)?.as_slice())?;
        self.repo_history.insert((repo, seq), tag)?;
        Ok(())
    }

    fn append_promotion(&mut self, record: &PromotionRecord) -> Result<(), MetaError> {
        let seq = self.next_seq(PROMOTION_SEQ)?;
        self.promotions.insert(seq, encode(record)?.as_slice())?;
        Ok(())
    }
}
