//! One fetch at a time per blob or manifest on a node: the request that starts a fetch holds
//! its guard; the others wait for it without holding a thread (`FlightWait::landed`), and
//! fail with it when it found the upstream unavailable. Fetches and waiters are bounded.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::{Connectors, lock};
use crate::domain::Error;
use crate::domain::registry::Registry;

/// Fetches from upstreams one node runs at once: each holds a blocking thread while it
/// reads, so a flood of pulls of distinct cold blobs from a stalled upstream cannot take
/// every thread the node has; more are refused with 503 until one ends.
pub const MAX_FETCHES: usize = 64;

/// Requests one node lets wait for another's fetch (they hold no thread, but memory and a
/// connection each); more are refused with 503.
pub const MAX_WAITERS: usize = 4096;

/// Another request is fetching what this one needs: wait for it ([`FlightWait::landed`],
/// without holding a thread; [`FlightWait::block`] off the executor), then ask again.
pub struct FlightWait {
    connectors: Arc<Connectors>,
    /// Closed when the fetch ends; holds why, when it failed for want of the upstream.
    done: tokio::sync::watch::Receiver<Option<String>>,
}

impl FlightWait {
    /// Resolves when the fetch this waits for has ended: `Err` (503) when it found the
    /// upstream unavailable — the waiters fail with it rather than each trying again in
    /// turn, which would make the last of many wait many timeouts — else ask again.
    pub async fn landed(mut self) -> Result<(), Error> {
        // The sender is dropped at the end of the fetch: `changed` then fails.
        while self.done.changed().await.is_ok() {}
        match self.done.borrow().clone() {
            Some(why) => Err(Error::Unavailable(why)),
            None => Ok(()),
        }
    }

    /// Waits for the fetch on this thread (background jobs, never a request's executor).
    pub fn block(self) -> Result<(), Error> {
        futures_executor::block_on(self.landed())
    }
}

impl Drop for FlightWait {
    fn drop(&mut self) {
        self.connectors.waiters.fetch_sub(1, Ordering::Relaxed);
    }
}

impl std::fmt::Debug for FlightWait {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FlightWait")
    }
}

/// Runs `f` until it does not have to wait for another request's fetch, waiting on this
/// thread in between: for background jobs.
pub fn after_flights<T>(mut f: impl FnMut() -> Result<T, Error>) -> Result<T, Error> {
    loop {
        match f() {
            Err(Error::InFlight(wait)) => wait.block()?,
            other => return other,
        }
    }
}

impl Registry {
    /// One fetch at a time of `key` on this node: the guard while this request fetches it,
    /// or `Error::InFlight` to wait for the request that does (then ask again).
    pub(super) fn flight(&self, key: &str) -> Result<FlightGuard, Error> {
        let c = &self.connectors;
        let mut busy = lock(&c.busy);
        if let Some(fetching) = busy.get(key) {
            if c.waiters.fetch_add(1, Ordering::Relaxed) >= MAX_WAITERS {
                c.waiters.fetch_sub(1, Ordering::Relaxed);
                return Err(Error::Unavailable(format!(
                    "{MAX_WAITERS} pulls are already waiting for fetches from connector upstreams on this node: try again shortly"
                )));
            }
            return Err(Error::InFlight(FlightWait {
                connectors: c.clone(),
                done: fetching.subscribe(),
            }));
        }
        if busy.len() >= MAX_FETCHES {
            return Err(Error::Unavailable(format!(
                "this node is fetching {MAX_FETCHES} manifests and blobs from connector upstreams already: try again shortly"
            )));
        }
        busy.insert(key.to_owned(), tokio::sync::watch::channel(None).0);
        Ok(FlightGuard {
            connectors: c.clone(),
            key: key.to_owned(),
        })
    }
}

/// Holds a fetch's key: other requests for it wait until this is dropped.
pub struct FlightGuard {
    connectors: Arc<Connectors>,
    key: String,
}

impl FlightGuard {
    /// Tells the requests waiting for this fetch that the upstream is unavailable (`e`), so
    /// that they fail with it instead of trying again; other outcomes make them ask again.
    pub(super) fn settle<T>(&self, result: &Result<T, Error>) {
        if let Err(e @ Error::Unavailable(_)) = result
            && let Some(tx) = lock(&self.connectors.busy).get(&self.key)
        {
            tx.send_replace(Some(e.to_string()));
        }
    }
}

impl Drop for FlightGuard {
    fn drop(&mut self) {
        // Dropping the sender wakes every waiter.
        lock(&self.connectors.busy).remove(&self.key);
    }
}
