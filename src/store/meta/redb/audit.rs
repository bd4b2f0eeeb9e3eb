//! The audit log in redb, and its index by kind.

use std::ops::Bound;

use redb::ReadableTable;

use super::settings::AUDIT_SEQ;
use super::tables::{Access, Tables, Writer};
use super::walk::{Merged, ordered};
use crate::store::meta::codec::{decode, encode};
use crate::store::meta::{AuditRead, AuditRecord, AuditWrite, MetaError, Scan, page};

impl<A: Access> AuditRead for Tables<A> {
    fn audit_page(
        &self,
        cursor: Option<u64>,
        newest_first: bool,
        kinds: &[&str],
        limit: usize,
        keep: &dyn Fn(&AuditRecord) -> Scan,
    ) -> Result<(Vec<(u64, AuditRecord)>, bool), MetaError> {
        let bounds = |c: Option<u64>| match (c, newest_first) {
            (None, _) => (Bound::Included(0), Bound::Included(u64::MAX)),
            (Some(c), true) => (Bound::Included(0), Bound::Excluded(c)),
            (Some(c), false) => (Bound::Excluded(c), Bound::Included(u64::MAX)),
        };
        let (low, high) = bounds(cursor);
        let sequences: Box<dyn Iterator<Item = Result<u64, MetaError>> + '_> = if kinds.is_empty() {
            let range = self.audit.range::<u64>((low, high))?;
            ordered(range.map(|e| Ok(e?.0.value())), newest_first)
        } else {
            // One ordered walk per kind, merged by sequence.
            let mut walks = Vec::new();
            for kind in kinds {
                let range = self
                    .audit_kinds
                    .range::<(&str, u64)>((low.map(|s| (*kind, s)), high.map(|s| (*kind, s))))?;
                walks.push(ordered(range.map(|e| Ok(e?.0.value().1)), newest_first).peekable());
            }
            Box::new(Merged {
                walks,
                newest_first,
            })
        };
        let records = sequences.map(|seq| {
            let seq = seq?;
            let bytes = self.audit.get(seq)?.ok_or_else(|| {
                crate::store::meta::codec::failed::<AuditRecord>(
                    postcard::Error::DeserializeUnexpectedEnd,
                )
            })?;
            Ok::<_, MetaError>((seq, decode::<AuditRecord>(bytes.value())?))
        });
        page(records, limit, |(_, record)| keep(record), Ok)
    }
}

impl AuditWrite for Writer<'_> {
    fn append_audit(&mut self, record: &AuditRecord) -> Result<u64, MetaError> {
        let seq = self.next_seq(AUDIT_SEQ)?;
        self.put_audit(seq, record)?;
        Ok(seq)
    }

    fn put_audit(&mut self, seq: u64, record: &AuditRecord) -> Result<(), MetaError> {
        self.audit.insert(seq, encode(record)?.as_slice())?;
        self.audit_kinds.insert((record.kind.as_str(), seq), ())?;
        Ok(())
    }

    fn remove_audit_before(&mut self, time_ms: u64, limit: usize) -> Result<u64, MetaError> {
        let mut old = Vec::new();
        for entry in self.audit.iter()? {
            let (k, v) = entry?;
            let record: AuditRecord = decode(v.value())?;
            if record.time_ms >= time_ms || old.len() == limit {
                break;
            }
            old.push((k.value(), record.kind));
        }
        for (seq, kind) in &old {
            self.audit.remove(*seq)?;
            self.audit_kinds.remove((kind.as_str(), *seq))?;
        }
        Ok(old.len() as u64)
    }
}
