//! Named settings in redb, and the sequences kept among them.

use redb::ReadableTable;

use super::tables::{Access, Tables, Writer};
use crate::store::meta::{MetaError, SettingsRead, SettingsWrite};

/// The settings that number the append-only tables.
pub(super) const HISTORY_SEQ: &str = crate::store::meta::settings::HISTORY_SEQ.name();
pub(super) const PROMOTION_SEQ: &str = crate::store::meta::settings::PROMOTION_SEQ.name();
pub(super) const AUDIT_SEQ: &str = crate::store::meta::settings::AUDIT_SEQ.name();

impl<A: Access> SettingsRead for Tables<A> {
    fn setting(&self, name: &str) -> Result<Option<Vec<u8>>, MetaError> {
        Ok(self.settings.get(name)?.map(|g| g.value().to_vec()))
    }

    fn settings(&self) -> Result<Vec<(String, Vec<u8>)>, MetaError> {
        let mut out = Vec::new();
        for entry in self.settings.iter()? {
            let (k, v) = entry?;
            out.push((k.value().to_owned(), v.value().to_vec()));
        }
        Ok(out)
    }

    fn settings_under(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>, MetaError> {
        let mut out = Vec::new();
        for entry in self.settings.range::<&str>(prefix..)? {
            let (k, v) = entry?;
            if !k.value().starts_with(prefix) {
                break;
            }
            out.push((k.value().to_owned(), v.value().to_vec()));
        }
        Ok(out)
    }

    fn settings_under_after(
        &self,
        prefix: &str,
        after: &str,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, MetaError> {
        let start = if after > prefix { after } else { prefix };
        let mut out = Vec::new();
        for entry in self.settings.range::<&str>(start..)? {
            let (k, v) = entry?;
            let name = k.value();
            if !name.starts_with(prefix) || out.len() >= limit {
                break;
            }
            if name == after {
                continue;
            }
            out.push((name.to_owned(), v.value().to_vec()));
        }
        Ok(out)
    }
}

impl SettingsWrite for Writer<'_> {
    fn put_setting(&mut self, name: &str, value: &[u8]) -> Result<(), MetaError> {
        self.settings.insert(name, value)?;
        Ok(())
    }

    fn remove_setting(&mut self, name: &str) -> Result<(), MetaError> {
        self.settings.remove(name)?;
        Ok(())
    }
}

impl Writer<'_> {
    /// The next number of a sequence kept in the settings table.
    pub(super) fn next_seq(&mut self, name: &str) -> Result<u64, MetaError> {
        let current = {
            let stored = self.settings.get(name)?;
            crate::store::meta::settings::counter_from(
                name,
                stored.as_ref().map(redb::AccessGuard::value),
            )?
        };
        let next = current + 1;
        self.settings.insert(
            name,
            crate::store::meta::settings::counter_bytes(next).as_slice(),
        )?;
        Ok(next)
    }
}
