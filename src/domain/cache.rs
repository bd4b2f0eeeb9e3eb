//! Small in-memory caches of metadata reads, valid while the metadata is unchanged.
//!
//! An entry carries the metadata generation (`RedbMeta::generation`) read *before* the read
//! transaction that produced it, and is served only while no write has been committed since.
//! Any commit anywhere invalidates every entry: correctness stays trivial, at the price of
//! misses while writes are frequent. A hit needs no read transaction, so the HTTP layer may
//! serve it on its executor instead of hopping to the blocking pool — the pull path of every
//! `docker pull` and Kubernetes node.

use std::collections::HashMap;
use std::sync::Mutex;

use super::lock;

pub(super) struct GenCache<V> {
    inner: Mutex<Inner<V>>,
    max_entries: usize,
    max_weight: usize,
}

struct Inner<V> {
    generation: u64,
    weight: usize,
    map: HashMap<String, V>,
}

impl<V: Clone> GenCache<V> {
    /// A cache of at most `max_entries` entries weighing at most `max_weight` together
    /// (bytes, as the caller weighs them).
    pub(super) fn new(max_entries: usize, max_weight: usize) -> Self {
        Self {
            inner: Mutex::new(Inner {
                generation: 0,
                weight: 0,
                map: HashMap::new(),
            }),
            max_entries,
            max_weight,
        }
    }

    /// The entry for `key` if it was read at `generation`, the current one.
    pub(super) fn get(&self, key: &str, generation: u64) -> Option<V> {
        let inner = lock(&self.inner);
        if inner.generation != generation {
            return None;
        }
        inner.map.get(key).cloned()
    }

    /// Remembers `value`, read in a transaction begun at `generation`. A value from an older
    /// generation than the cache holds is dropped; a newer one clears the stale entries.
    pub(super) fn put(&self, key: String, generation: u64, value: V, weight: usize) {
        if weight > self.max_weight {
            return;
        }
        let mut inner = lock(&self.inner);
        if generation < inner.generation {
            return;
        }
        if generation > inner.generation
            || inner.map.len() >= self.max_entries
            || inner.weight + weight > self.max_weight
        {
            inner.map = HashMap::new();
            inner.weight = 0;
            inner.generation = generation;
        }
        // Two readers racing to fill one key count its weight twice until the next clear,
        // which only brings that clear a little sooner.
        inner.map.insert(key, value);
        inner.weight += weight;
    }
}

#[cfg(test)]
mod tests {
    use super::GenCache;

    #[test]
    fn entries_live_only_while_the_generation_holds() {
        let c = GenCache::new(10, 100);
        c.put("a".to_owned(), 1, 7, 1);
        assert_eq!(c.get("a", 1), Some(7));
        assert_eq!(
            c.get("a", 2),
            None,
            "a commit since the read invalidates it"
        );
        assert_eq!(c.get("b", 1), None);
        // A slow reader that began before the commit cannot put back an old value.
        c.put("a".to_owned(), 2, 8, 1);
        c.put("a".to_owned(), 1, 7, 1);
        assert_eq!(c.get("a", 2), Some(8));
    }

    #[test]
    fn limits_clear_the_cache_instead_of_growing_it() {
        let c = GenCache::new(2, 10);
        c.put("a".to_owned(), 1, 1, 1);
        c.put("b".to_owned(), 1, 2, 1);
        c.put("c".to_owned(), 1, 3, 1);
        assert_eq!((c.get("a", 1), c.get("c", 1)), (None, Some(3)));
        c.put("heavy".to_owned(), 1, 4, 11);
        assert_eq!(c.get("heavy", 1), None, "heavier than the whole cache");
        c.put("d".to_owned(), 1, 5, 10);
        assert_eq!((c.get("c", 1), c.get("d", 1)), (None, Some(5)));
    }
}
