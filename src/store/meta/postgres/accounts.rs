//! Users, API keys and grants in PostgreSQL.

use super::txn::Txn;
use crate::store::meta::codec::encode;
use crate::store::meta::{AccountsRead, AccountsWrite, ApiKeyRecord, MetaError, UserRecord};

impl AccountsRead for Txn {
    fn user(&self, name: &str) -> Result<Option<UserRecord>, MetaError> {
        self.record("SELECT record FROM users WHERE name = $1", &[&name])
    }

    fn users(&self) -> Result<Vec<(String, UserRecord)>, MetaError> {
        self.named_records("SELECT name, record FROM users ORDER BY name")
    }

    fn api_key(&self, id: &str) -> Result<Option<ApiKeyRecord>, MetaError> {
        self.record("SELECT record FROM api_keys WHERE id = $1", &[&id])
    }

    fn api_keys(&self) -> Result<Vec<(String, ApiKeyRecord)>, MetaError> {
        self.named_records("SELECT id, record FROM api_keys ORDER BY id")
    }

    fn grant(&self, principal: &str, feed: &str) -> Result<Option<String>, MetaError> {
        Ok(self
            .row(
                "SELECT role FROM grants WHERE principal = $1 AND feed = $2",
                &[&principal, &feed],
            )?
            .map(|r| r.get(0)))
    }

    fn grants_of(&self, principal: &str) -> Result<Vec<(String, String)>, MetaError> {
        self.string_pairs(
            "SELECT feed, role FROM grants WHERE principal = $1 ORDER BY feed",
            &[&principal],
        )
    }

    fn grants_on(&self, feed: &str) -> Result<Vec<(String, String)>, MetaError> {
        self.string_pairs(
            "SELECT principal, role FROM grants WHERE feed = $1 ORDER BY principal",
            &[&feed],
        )
    }
}

impl AccountsWrite for Txn {
    fn put_user(&mut self, name: &str, record: &UserRecord) -> Result<(), MetaError> {
        self.put_record("users", "name", name, &encode(record)?)
    }

    fn put_api_key(&mut self, id: &str, record: &ApiKeyRecord) -> Result<(), MetaError> {
        self.put_record("api_keys", "id", id, &encode(record)?)
    }

    fn remove_api_key(&mut self, id: &str) -> Result<bool, MetaError> {
        Ok(self.exec("DELETE FROM api_keys WHERE id = $1", &[&id])? > 0)
    }

    fn set_grant(&mut self, principal: &str, feed: &str, role: &str) -> Result<(), MetaError> {
        self.exec(
            "INSERT INTO grants (principal, feed, role) VALUES ($1, $2, $3)
             ON CONFLICT (principal, feed) DO UPDATE SET role = EXCLUDED.role",
            &[&principal, &feed, &role],
        )?;
        Ok(())
    }

    fn remove_grant(&mut self, principal: &str, feed: &str) -> Result<bool, MetaError> {
        Ok(self.exec(
            "DELETE FROM grants WHERE principal = $1 AND feed = $2",
            &[&principal, &feed],
        )? > 0)
    }

    fn remove_grants_on(&mut self, feed: &str) -> Result<(), MetaError> {
        self.exec("DELETE FROM grants WHERE feed = $1", &[&feed])?;
        Ok(())
    }
}
