//! The history of tags and the promotions in PostgreSQL.

use super::txn::{Batched, Txn, batch_for, page_of, to_i64, to_u64};
use crate::store::meta::codec::{decode, encode};
use crate::store::meta::{
    HistoryRead, HistoryRecord, HistoryRow, HistoryWrite, MetaError, PromotionRecord,
};

impl HistoryRead for Txn {
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

    fn last_history(&self, repo: &str, tag: &str) -> Result<Option<HistoryRecord>, MetaError> {
        self.record(
            "SELECT record FROM history WHERE repo = $1 AND tag = $2 ORDER BY seq DESC LIMIT 1",
            &[&repo, &tag],
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

    fn promotions(&self) -> Result<Vec<PromotionRecord>, MetaError> {
        self.rows("SELECT record FROM promotions ORDER BY seq", &[])?
            .iter()
            .map(|r| decode(r.get::<_, &[u8]>(0)))
            .collect()
    }
}

impl HistoryWrite for Txn {
    fn append_history(
        &mut self,
        repo: &str,
        tag: &str,
        record: &HistoryRecord,
    ) -> Result<(), MetaError> {
        let seq = self.next_seq(crate::store::meta::settings::HISTORY_SEQ.name())?;
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
        let seq = self.next_seq(crate::store::meta::settings::PROMOTION_SEQ.name())?;
        let record = encode(record)?;
        self.exec(
            "INSERT INTO promotions (seq, record) VALUES ($1, $2)",
            &[&seq, &record],
        )?;
        Ok(())
    }
}
