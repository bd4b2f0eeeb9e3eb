//! Read-only mode: while it is on, every node refuses the writes clients ask for (pushes,
//! deletions, promotions, settings) and pauses the jobs that change content (GC, retention,
//! upload expiry, the SBOM queue, connector syncs, database fetches); pulls, logins and
//! backups go on. It is one setting in the metadata store, so it holds on every node of a
//! cluster and across restarts; each node remembers it while the metadata generation is
//! unchanged, so asking costs no read until something was written.

use serde::{Deserialize, Serialize};

use super::Maintenance;
use crate::domain::audit::{self, Kind};
use crate::domain::{Error, lock};
use crate::store::meta::settings::{Family, Json};

/// The mode, when on.
pub(crate) const READ_ONLY: Family<Json<ReadOnly>> = Family::single("read-only", "read-only mode");

/// Why and since when the registry refuses writes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadOnly {
    /// When it was turned on (milliseconds since the epoch).
    pub since_ms: u64,
    /// Who turned it on.
    pub by: String,
    /// What the administrator said (may be empty).
    pub reason: String,
}

/// How long a refused client is told to wait before trying again.
pub const RETRY_AFTER_SECONDS: u64 = 60;

impl ReadOnly {
    /// The refusal a write gets while the mode is on.
    #[must_use]
    pub fn refusal(&self) -> Error {
        Error::ReadOnly {
            reason: if self.reason.is_empty() {
                "maintenance".to_owned()
            } else {
                self.reason.clone()
            },
        }
    }
}

impl Maintenance<'_> {
    /// The mode if it is on. Remembered per node while the metadata generation is unchanged
    /// (read before the snapshot, so a write that races the read only causes another read).
    pub fn read_only(&self) -> Result<Option<ReadOnly>, Error> {
        let generation = self.state.meta.generation();
        if let Some((seen, mode)) = lock(&self.state.mode).as_ref()
            && *seen == generation
        {
            return Ok(mode.clone());
        }
        let mode = READ_ONLY.get(&*self.state.meta.read()?, "")?;
        *lock(&self.state.mode) = Some((generation, mode.clone()));
        Ok(mode)
    }

    /// Refuses with the mode's sentence while it is on.
    pub fn writable(&self) -> Result<(), Error> {
        match self.read_only()? {
            Some(mode) => Err(mode.refusal()),
            None => Ok(()),
        }
    }

    /// Turns read-only mode on (with `reason`) or off, audited; answers the mode now. Turning
    /// it on again keeps the first `since` and records the new reason.
    pub fn set_read_only(
        &self,
        on: bool,
        reason: &str,
        actor: &str,
    ) -> Result<Option<ReadOnly>, Error> {
        if reason.len() > 500 || reason.chars().any(char::is_control) {
            return Err(Error::Invalid(
                "a read-only reason is one line of at most 500 bytes".into(),
            ));
        }
        let now = self.state.clock.now_ms();
        let mode = self.state.meta.write(|w| -> Result<_, Error> {
            let before = READ_ONLY.get(w, "")?;
            let mode = on.then(|| ReadOnly {
                since_ms: before.as_ref().map_or(now, |b| b.since_ms),
                by: actor.to_owned(),
                reason: reason.to_owned(),
            });
            match &mode {
                Some(m) => READ_ONLY.put(w, "", m)?,
                None => READ_ONLY.remove(w, "")?,
            }
            let change = match (&before, &mode) {
                (_, Some(m)) if m.reason.is_empty() => "read-only mode on".to_owned(),
                (_, Some(m)) => format!("read-only mode on: {}", m.reason),
                (Some(_), None) => "read-only mode off".to_owned(),
                (None, None) => "read-only mode off (it was not on)".to_owned(),
            };
            let kind = if on {
                Kind::ReadOnlyOn
            } else {
                Kind::ReadOnlyOff
            };
            audit::append(w, &self.state.clock, audit::entry(kind, actor, "", change))?;
            Ok(mode)
        })?;
        tracing::warn!(on, actor, reason, "read-only mode changed");
        Ok(mode)
    }
}
