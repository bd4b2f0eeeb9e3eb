//! The record migrations: one ordered list, written once against the seam, that both
//! engines apply when they open (after their own schema steps: redb's index builds, the
//! SQL files of PostgreSQL). Each runs once per database, in one write transaction that
//! also writes its marker (`migration:<id>`), so nodes opening one database together apply
//! it once: the second finds the marker inside its own transaction.

use super::settings;
use super::{MetaError, MetaWrite, Metadata};

/// One migration: its id (never reused) and what it does.
struct Migration {
    id: &'static str,
    run: fn(&mut dyn MetaWrite) -> Result<u64, MetaError>,
}

const MIGRATIONS: [Migration; 1] = [Migration {
    id: "settings-versions-1",
    run: version_settings,
}];

/// Applies every migration `meta` has not had, in order; returns the ids it applied.
pub fn apply(meta: &dyn Metadata) -> Result<Vec<&'static str>, MetaError> {
    let mut applied = Vec::new();
    for m in &MIGRATIONS {
        if settings::MIGRATIONS.exists(&*meta.read()?, m.id)? {
            continue;
        }
        let changed = meta.write(|w| {
            if settings::MIGRATIONS.exists(w, m.id)? {
                return Ok::<_, MetaError>(None);
            }
            let n = (m.run)(w)?;
            settings::MIGRATIONS.put(w, m.id, &())?;
            Ok(Some(n))
        })?;
        if let Some(records) = changed {
            tracing::info!(migration = m.id, records, "applied a metadata migration");
            applied.push(m.id);
        }
    }
    Ok(applied)
}

/// The version every family's first encoding has.
const FIRST: u8 = 1;

/// Prefixes every setting written before settings carried their encoding version with
/// version 1: what each family's first encoding is (JSON webhooks, directory roles and sync
/// reports; postcard sessions; little-endian epochs; big-endian counters; raw keys, text
/// and one-byte markers). Says how many it rewrote.
fn version_settings(w: &mut dyn MetaWrite) -> Result<u64, MetaError> {
    let mut n = 0;
    for (name, value) in w.settings()? {
        let mut versioned = Vec::with_capacity(value.len() + 1);
        versioned.push(FIRST);
        versioned.extend_from_slice(&value);
        w.put_setting(&name, &versioned)?;
        n += 1;
    }
    Ok(n)
}
