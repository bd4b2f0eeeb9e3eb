//! The audit log in PostgreSQL.

use super::txn::{Batched, Txn, batch_for, to_i64, to_u64};
use crate::store::meta::codec::{decode, encode};
use crate::store::meta::{AuditRead, AuditRecord, AuditWrite, MetaError, Scan, page};

impl AuditRead for Txn {
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
        page(rows, limit, |(_, record)| keep(record), Ok)
    }
}

impl AuditWrite for Txn {
    fn append_audit(&mut self, record: &AuditRecord) -> Result<u64, MetaError> {
        let seq = self.next_seq(crate::store::meta::settings::AUDIT_SEQ.name())?;
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
}
