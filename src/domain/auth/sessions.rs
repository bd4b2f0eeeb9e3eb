//! UI sessions, kept in the metadata store so that every node behind a load balancer knows
//! every session: a random id (the cookie) names a record holding the user, the account's
//! credential epoch at login and the session's form token. The store keeps only a hash of
//! the id, so a copy of the database (or a backup) holds no usable session. A session ends
//! on logout, after eight idle hours, and when its account's epoch moves (password or roles
//! changed); the idle time is written back at most once a minute.

use serde::{Deserialize, Serialize};

use super::{Auth, Principal};
use crate::domain::Error;
use crate::store::meta::settings::{Family, Postcard};

/// Idle time after which a session ends.
pub const IDLE_SECS: u64 = 8 * 3600;
/// How stale the stored "last seen" may grow before a request writes it again.
const SEEN_EVERY_SECS: u64 = 60;
/// hash of a session id → the session, in the settings table.
pub(crate) const SESSIONS: Family<Postcard<Stored>> = Family::keyed("ui-session:", "UI session");

/// A live session, as a request finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub subject: String,
    pub epoch: u64,
    pub csrf: String,
}

#[derive(Serialize, Deserialize)]
pub(crate) struct Stored {
    pub(crate) subject: String,
    pub(crate) epoch: u64,
    pub(crate) csrf: String,
    /// Unix seconds.
    pub(crate) seen: u64,
}

fn key(id: &str) -> String {
    blake3::hash(id.as_bytes()).to_hex().to_string()
}

/// 32 random bytes as hex: session ids and form tokens.
#[must_use]
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::fill(&mut bytes);
    hex::encode(bytes)
}

/// UI sessions (`auth.sessions()`): start, look up, end, rebase.
#[derive(Clone, Copy)]
pub struct Sessions<'a> {
    pub(super) auth: &'a Auth,
}

impl Sessions<'_> {
    /// Starts a session for `principal` at credential epoch `epoch`; returns its id (the
    /// cookie's value). Sessions idle too long are removed on the way.
    pub fn start(&self, principal: &Principal, epoch: u64) -> Result<String, Error> {
        let id = random_token();
        let now = self.auth.clock().now();
        let stored = Stored {
            subject: principal.subject(),
            epoch,
            csrf: random_token(),
            seen: now,
        };
        self.auth.meta().write(|w| {
            for (hash, s) in SESSIONS.all(w)? {
                if now.saturating_sub(s.seen) >= IDLE_SECS {
                    SESSIONS.remove(w, &hash)?;
                }
            }
            SESSIONS.put(w, &key(&id), &stored)?;
            Ok::<_, Error>(())
        })?;
        Ok(id)
    }

    /// Session `id`, when it is live; refreshes its idle time (in the store at most once a
    /// minute). `None` for an unknown, ended or idle one.
    pub fn get(&self, id: &str) -> Result<Option<Session>, Error> {
        let name = key(id);
        let Some(mut stored) = SESSIONS.get(&*self.auth.meta().read()?, &name)? else {
            return Ok(None);
        };
        let now = self.auth.clock().now();
        let idle = now.saturating_sub(stored.seen);
        if idle >= IDLE_SECS {
            self.end(id)?;
            return Ok(None);
        }
        if idle >= SEEN_EVERY_SECS {
            stored.seen = now;
            self.auth.meta().write(|w| {
                // Only while it still exists: a logout on another node wins.
                if SESSIONS.exists(w, &name)? {
                    SESSIONS.put(w, &name, &stored)?;
                }
                Ok::<_, Error>(())
            })?;
        }
        Ok(Some(Session {
            subject: stored.subject,
            epoch: stored.epoch,
            csrf: stored.csrf,
        }))
    }

    /// Ends session `id` on every node.
    pub fn end(&self, id: &str) -> Result<(), Error> {
        let name = key(id);
        self.auth.meta().write(|w| {
            SESSIONS.remove(w, &name)?;
            Ok::<_, Error>(())
        })
    }

    /// Keeps session `id` valid at the account's new epoch, after its own user changed the
    /// password through it (the user's other sessions end).
    pub fn rebase(&self, id: &str, epoch: u64) -> Result<(), Error> {
        let name = key(id);
        self.auth.meta().write(|w| {
            if let Some(mut stored) = SESSIONS.get(w, &name)? {
                stored.epoch = epoch;
                SESSIONS.put(w, &name, &stored)?;
            }
            Ok::<_, Error>(())
        })
    }
}
