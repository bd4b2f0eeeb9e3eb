//! Named settings in PostgreSQL.

use super::txn::Txn;
use crate::store::meta::{MetaError, SettingsRead, SettingsWrite};

impl SettingsRead for Txn {
    fn setting(&self, name: &str) -> Result<Option<Vec<u8>>, MetaError> {
        Ok(self
            .row("SELECT value FROM settings WHERE name = $1", &[&name])?
            .map(|r| r.get(0)))
    }

    fn settings(&self) -> Result<Vec<(String, Vec<u8>)>, MetaError> {
        Ok(self
            .rows("SELECT name, value FROM settings ORDER BY name", &[])?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect())
    }

    fn settings_under(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>, MetaError> {
        Ok(self
            .rows(
                "SELECT name, value FROM settings WHERE starts_with(name, $1) ORDER BY name",
                &[&prefix],
            )?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect())
    }

    fn settings_under_after(
        &self,
        prefix: &str,
        after: &str,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, MetaError> {
        // A range on the primary key (names collate bytewise, "C"): every name that starts
        // with `prefix` sorts below `prefix` followed by the highest code point.
        let end = format!("{prefix}\u{10FFFF}");
        let start = if after > prefix { after } else { prefix };
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        Ok(self
            .rows(
                "SELECT name, value FROM settings WHERE name >= $1 AND name > $2 AND name < $3
                 ORDER BY name LIMIT $4",
                &[&start, &after, &end, &limit],
            )?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .filter(|(name, _): &(String, Vec<u8>)| name.starts_with(prefix))
            .collect())
    }
}

impl SettingsWrite for Txn {
    fn put_setting(&mut self, name: &str, value: &[u8]) -> Result<(), MetaError> {
        self.put(name, value)
    }

    fn remove_setting(&mut self, name: &str) -> Result<(), MetaError> {
        self.exec("DELETE FROM settings WHERE name = $1", &[&name])?;
        Ok(())
    }
}
