//! Users, API keys and grants in redb.

use redb::ReadableTable;

use super::tables::{Access, Tables, Writer};
use super::walk::{all, get, pairs_under};
use crate::store::meta::codec::encode;
use crate::store::meta::{AccountsRead, AccountsWrite, ApiKeyRecord, MetaError, UserRecord};

impl<A: Access> AccountsRead for Tables<A> {
    fn user(&self, name: &str) -> Result<Option<UserRecord>, MetaError> {
        get(&self.users, name)
    }

    fn users(&self) -> Result<Vec<(String, UserRecord)>, MetaError> {
        all(&self.users)
    }

    fn api_key(&self, id: &str) -> Result<Option<ApiKeyRecord>, MetaError> {
        get(&self.api_keys, id)
    }

    fn api_keys(&self) -> Result<Vec<(String, ApiKeyRecord)>, MetaError> {
        all(&self.api_keys)
    }

    fn grant(&self, principal: &str, feed: &str) -> Result<Option<String>, MetaError> {
        Ok(self
            .grants
            .get((principal, feed))?
            .map(|g| g.value().to_owned()))
    }

    fn grants_of(&self, principal: &str) -> Result<Vec<(String, String)>, MetaError> {
        pairs_under(&self.grants, principal)
    }

    fn grants_on(&self, feed: &str) -> Result<Vec<(String, String)>, MetaError> {
        let mut out = Vec::new();
        for entry in self.grants.iter()? {
            let (k, v) = entry?;
            let (principal, f) = k.value();
            if f == feed {
                out.push((principal.to_owned(), v.value().to_owned()));
            }
        }
        Ok(out)
    }
}

impl AccountsWrite for Writer<'_> {
    fn put_user(&mut self, name: &str, record: &UserRecord) -> Result<(), MetaError> {
        self.users.insert(name, encode(record)?.as_slice())?;
        Ok(())
    }

    fn put_api_key(&mut self, id: &str, record: &ApiKeyRecord) -> Result<(), MetaError> {
        self.api_keys.insert(id, encode(record)?.as_slice())?;
        Ok(())
    }

    fn remove_api_key(&mut self, id: &str) -> Result<bool, MetaError> {
        Ok(self.api_keys.remove(id)?.is_some())
    }

    fn set_grant(&mut self, principal: &str, feed: &str, role: &str) -> Result<(), MetaError> {
        self.grants.insert((principal, feed), role)?;
        Ok(())
    }

    fn remove_grant(&mut self, principal: &str, feed: &str) -> Result<bool, MetaError> {
        Ok(self.grants.remove((principal, feed))?.is_some())
    }

    fn remove_grants_on(&mut self, feed: &str) -> Result<(), MetaError> {
        let mut doomed = Vec::new();
        for entry in self.grants.iter()? {
            let (k, _) = entry?;
            let (principal, f) = k.value();
            if f == feed {
                doomed.push(principal.to_owned());
            }
        }
        for principal in doomed {
            self.grants.remove((principal.as_str(), feed))?;
        }
        Ok(())
    }
}
