//! Failed logins counted per account and per address over a window: the rate limit.

#[allow(clippy::wildcard_imports)]
use super::*;

#[derive(Default)]
pub(super) struct Window {
    start: Option<Instant>,
    failures: u32,
}

/// Failed-login counters per user and per address.
#[derive(Default)]
pub(super) struct Limiter {
    windows: Mutex<HashMap<String, Window>>,
}

impl Limiter {
    /// Seconds to wait before `keys` may try again, if any is over its limit.
    pub(super) fn blocked(&self, keys: &[(String, u32)]) -> Option<u64> {
        let windows = self.windows.lock().unwrap_or_else(PoisonError::into_inner);
        keys.iter()
            .filter_map(|(key, max)| {
                let w = windows.get(key)?;
                let start = w.start?;
                let left = FAILURE_WINDOW.checked_sub(start.elapsed())?;
                (w.failures >= *max).then(|| left.as_secs().max(1))
            })
            .max()
    }

    pub(super) fn fail(&self, keys: &[(String, u32)]) {
        let mut windows = self.windows.lock().unwrap_or_else(PoisonError::into_inner);
        if windows.len() > 100_000 {
            windows.retain(|_, w| w.start.is_some_and(|s| s.elapsed() < FAILURE_WINDOW));
        }
        for (key, _) in keys {
            let w = windows.entry(key.clone()).or_default();
            if w.start.is_none_or(|s| s.elapsed() >= FAILURE_WINDOW) {
                *w = Window {
                    start: Some(Instant::now()),
                    failures: 0,
                };
            }
            w.failures += 1;
        }
    }

    /// Failures of `key` in its current window.
    pub(super) fn failures(&self, key: &str) -> u32 {
        let windows = self.windows.lock().unwrap_or_else(PoisonError::into_inner);
        windows
            .get(key)
            .filter(|w| w.start.is_some_and(|s| s.elapsed() < FAILURE_WINDOW))
            .map_or(0, |w| w.failures)
    }

    pub(super) fn forget(&self, key: &str) {
        self.windows
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(key);
    }
}
