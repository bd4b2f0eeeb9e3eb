//! The domain's one clock: every time the domain records or compares (history, links,
//! uploads, tokens, keys, retention, garbage collection, backups) is read here. It is the
//! system's clock, shared by the services of one registry; a test moves it forward with
//! `advance` instead of sleeping.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The system clock, plus how far it was advanced (always zero outside tests).
#[derive(Debug, Clone, Default)]
pub struct Clock {
    ahead_ms: Arc<AtomicU64>,
}

impl Clock {
    /// Now, as a point in time.
    #[must_use]
    pub fn system_time(&self) -> SystemTime {
        SystemTime::now() + Duration::from_millis(self.ahead_ms.load(Ordering::Relaxed))
    }

    /// Milliseconds since the Unix epoch (the unit of history and audit records).
    #[must_use]
    pub fn now_ms(&self) -> u64 {
        self.system_time()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    /// Seconds since the Unix epoch (the unit of every other stored time).
    #[must_use]
    pub fn now(&self) -> u64 {
        self.now_ms() / 1000
    }

    /// How many whole seconds ago `t` was (0 for a time not yet reached).
    #[must_use]
    pub fn age_secs(&self, t: SystemTime) -> u64 {
        self.system_time()
            .duration_since(t)
            .map_or(0, |d| d.as_secs())
    }

    /// Moves this clock, and every service sharing it, `by` into the future: what a test does
    /// instead of waiting.
    pub fn advance(&self, by: Duration) {
        let ms = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        self.ahead_ms.fetch_add(ms, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advancing_moves_every_reading_and_every_clone() {
        let clock = Clock::default();
        let shared = clock.clone();
        let before = clock.now_ms();
        let then = clock.system_time();
        shared.advance(Duration::from_secs(90));
        assert!(clock.now_ms() >= before + 90_000);
        assert!(clock.now() >= before / 1000 + 90);
        assert!(clock.age_secs(then) >= 90);
        assert_eq!(
            clock.age_secs(clock.system_time() + Duration::from_secs(5)),
            0
        );
    }
}
