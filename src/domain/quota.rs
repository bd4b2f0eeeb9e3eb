//! Storage quotas per feed. A feed's usage is the size of the blobs linked to its
//! repositories, each blob counted once per feed however many of its repositories link it
//! (as Harbor counts): `feed-blob:FEED␟DIGEST` counts the feed's repositories linking a blob,
//! and `feed-usage:FEED` holds the sum, both changed in the transaction of every link and
//! unlink. A link that would take a feed past its quota fails in that same transaction, so
//! concurrent uploads — from any client, through any node — never overshoot: writes are
//! serialised (redb's writer, the cluster's write lock), and the last bytes go to exactly
//! one of them. GC and retention give the space back when they unlink.

use serde::{Deserialize, Serialize};

use super::Error;
use crate::store::meta::MetaWrite;
use crate::store::meta::settings::{Counter, Family, Json, Marker};

/// feed → its quota.
pub(crate) const QUOTAS: Family<Json<Quota>> = Family::keyed("feed-quota:", "feed quota");
/// feed → what it uses.
pub(crate) const USAGE: Family<Json<Usage>> = Family::keyed("feed-usage:", "feed usage");
/// `FEED␟DIGEST` → how many of the feed's repositories link the blob.
pub(crate) const HELD: Family<Counter> = Family::keyed("feed-blob:", "feed blob count");
/// Set once usage is counted for what was stored before it was kept.
pub(crate) const COUNTED: Family<Marker> = Family::single("feed-usage-1", "migration marker");

const SEP: char = '\u{1f}';

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quota {
    pub bytes: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub bytes: u64,
    pub blobs: u64,
}

fn feed_of(repo: &str) -> &str {
    repo.split('/').next().unwrap_or_default()
}

/// Human bytes for a refusal.
fn human(bytes: u64) -> String {
    #[allow(clippy::cast_precision_loss)]
    let b = bytes as f64;
    if b >= f64::from(1u32 << 30) {
        format!("{:.2} GiB", b / f64::from(1u32 << 30))
    } else if b >= f64::from(1u32 << 20) {
        format!("{:.1} MiB", b / f64::from(1u32 << 20))
    } else {
        format!("{bytes} bytes")
    }
}

/// The refusal of `size` more bytes in `feed`, which holds `held`.
fn over(feed: &str, quota: Quota, held: u64, size: u64) -> Error {
    Error::QuotaExceeded(format!(
        "feed {feed:?} is over its quota of {}: it holds {} and this blob needs {} more; delete images (GC gives the space back) or ask an administrator for more",
        human(quota.bytes),
        human(held),
        human(size)
    ))
}

/// Counts `digest` (of `size` bytes) once more for `feed`; refuses past the quota.
fn hold(w: &mut dyn MetaWrite, feed: &str, digest: &str, size: u64) -> Result<(), Error> {
    let key = format!("{feed}{SEP}{digest}");
    let n = HELD.get(w, &key)?.unwrap_or(0);
    HELD.put(w, &key, &(n + 1))?;
    if n > 0 {
        return Ok(());
    }
    let mut usage = USAGE.get(w, feed)?.unwrap_or_default();
    usage.bytes += size;
    usage.blobs += 1;
    if let Some(quota) = QUOTAS.get(w, feed)?
        && usage.bytes > quota.bytes
    {
        return Err(over(feed, quota, usage.bytes - size, size));
    }
    USAGE.put(w, feed, &usage)?;
    Ok(())
}

/// Counts `digest` once less for `feed`.
fn release(w: &mut dyn MetaWrite, feed: &str, digest: &str, size: u64) -> Result<(), Error> {
    let key = format!("{feed}{SEP}{digest}");
    match HELD.get(w, &key)?.unwrap_or(0) {
        0 => {}
        1 => {
            HELD.remove(w, &key)?;
            let mut usage = USAGE.get(w, feed)?.unwrap_or_default();
            usage.bytes = usage.bytes.saturating_sub(size);
            usage.blobs = usage.blobs.saturating_sub(1);
            USAGE.put(w, feed, &usage)?;
        }
        n => HELD.put(w, &key, &(n - 1))?,
    }
    Ok(())
}

/// Links `digest` into `repo` at `at`, counting it against the feed's quota when the
/// repository did not link it yet.
pub(crate) fn link(w: &mut dyn MetaWrite, repo: &str, digest: &str, at: u64) -> Result<(), Error> {
    let newly = !w.is_linked(repo, digest)?;
    w.link(repo, digest, at)?;
    if newly {
        let size = w.blob(digest)?.map_or(0, |b| b.size);
        hold(w, feed_of(repo), digest, size)?;
    }
    Ok(())
}

/// Unlinks `digest` from `repo`; says whether it was linked.
pub(crate) fn unlink(w: &mut dyn MetaWrite, repo: &str, digest: &str) -> Result<bool, Error> {
    let removed = w.unlink(repo, digest)?;
    if removed {
        let size = w.blob(digest)?.map_or(0, |b| b.size);
        release(w, feed_of(repo), digest, size)?;
    }
    Ok(removed)
}

/// Forgets a deleted feed's usage (its links are gone with it).
pub(crate) fn forget(w: &mut dyn MetaWrite, feed: &str) -> Result<(), Error> {
    for (key, _) in HELD.first_under(w, &format!("{feed}{SEP}"), "", usize::MAX)? {
        HELD.remove(w, &key)?;
    }
    USAGE.remove(w, feed)?;
    QUOTAS.remove(w, feed)?;
    Ok(())
}

/// Counts usage for what was linked before usage was kept (once).
pub(crate) fn count(meta: &dyn crate::store::meta::Metadata) -> Result<(), Error> {
    if COUNTED.exists(&*meta.read()?, "")? {
        return Ok(());
    }
    let feeds: Vec<String> = meta.read()?.feeds()?.into_iter().map(|(f, _)| f).collect();
    for feed in feeds {
        meta.write(|w| -> Result<(), Error> {
            if USAGE.get(w, &feed)?.is_some() {
                return Ok(());
            }
            let (repos, _) = w.repositories(&format!("{feed}/"), None, usize::MAX, &|_| true)?;
            let mut usage = Usage::default();
            for repo in repos {
                for digest in w.linked_blobs(&repo)? {
                    let key = format!("{feed}{SEP}{digest}");
                    let n = HELD.get(w, &key)?.unwrap_or(0);
                    HELD.put(w, &key, &(n + 1))?;
                    if n == 0 {
                        usage.bytes += w.blob(&digest)?.map_or(0, |b| b.size);
                        usage.blobs += 1;
                    }
                }
            }
            USAGE.put(w, &feed, &usage)?;
            Ok(())
        })?;
    }
    meta.write(|w| Ok::<_, Error>(COUNTED.put(w, "", &())?))
}

impl super::Registry {
    /// A feed's quota (if any) and usage.
    pub fn quota(&self, feed: &str) -> Result<(Option<Quota>, Usage), Error> {
        let r = self.meta.read()?;
        if r.feed(feed)?.is_none() {
            return Err(Error::FeedUnknown {
                feed: feed.to_owned(),
            });
        }
        Ok((
            QUOTAS.get(&*r, feed)?,
            USAGE.get(&*r, feed)?.unwrap_or_default(),
        ))
    }

    /// Sets (or with `None` removes) a feed's quota, audited. A quota below the usage is
    /// allowed: it refuses new blobs until enough is deleted.
    pub fn set_quota(&self, feed: &str, bytes: Option<u64>, actor: &str) -> Result<(), Error> {
        self.meta.write(|w| {
            if w.feed(feed)?.is_none() {
                return Err(Error::FeedUnknown {
                    feed: feed.to_owned(),
                });
            }
            let change = if let Some(b) = bytes {
                QUOTAS.put(w, feed, &Quota { bytes: b })?;
                format!("storage quota set to {}", human(b))
            } else {
                QUOTAS.remove(w, feed)?;
                "storage quota removed".to_owned()
            };
            super::audit::append(
                w,
                &self.clock,
                super::audit::entry(super::audit::Kind::FeedSettingsChanged, actor, feed, change),
            )?;
            Ok(())
        })
    }

    /// Refuses, before its bytes are read, a blob of `size` bytes (by its declared length)
    /// that would take `feed` past its quota; the commit checks again, exactly.
    pub fn quota_fits(&self, feed: &str, digest: &str, size: u64) -> Result<(), Error> {
        let r = self.meta.read()?;
        let Some(quota) = QUOTAS.get(&*r, feed)? else {
            return Ok(());
        };
        if HELD.exists(&*r, &format!("{feed}{SEP}{digest}"))? {
            return Ok(());
        }
        let held = USAGE.get(&*r, feed)?.unwrap_or_default().bytes;
        if held.saturating_add(size) > quota.bytes {
            return Err(over(feed, quota, held, size));
        }
        Ok(())
    }

    /// Counts usage for a registry from before usage was kept (once, at start).
    pub fn count_usage(&self) -> Result<(), Error> {
        count(&*self.meta)
    }
}
