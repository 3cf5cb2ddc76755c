//! The in-process cache: the embedded default when no Redis is configured.
//!
//! Values and guards are kept in two bounded maps, each entry with an expiry. When a
//! map is full, the entry that would expire soonest goes first (with one TTL per map,
//! that is also the oldest written). A guard that is forgotten, expired or evicted,
//! must not read as an older generation afterwards, or a reader that noted it before a
//! writer's bump could fill once the bumped guard is gone. So generations come from one
//! counter that only grows, and every forgotten guard raises a floor that a missing
//! guard reads as: a fill is accepted only if nothing was bumped or forgotten since.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
// Tokio's clock, which a test can pause and move by hand.
use tokio::time::Instant;

use super::port::{Cache, CacheEntry, CacheError};

/// A cache in this process's memory, bounded and with a TTL. Each process has its own,
/// so it suits a single process, not several replicas (see the module docs of `cache`).
///
/// A guard that does not exist reads as the highest generation this cache has
/// forgotten (0 until it forgets one), not always 0: see the module docs.
#[derive(Debug)]
pub struct InMemoryCache {
    ttl: Duration,
    guard_ttl: Duration,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    values: Bounded<Vec<u8>>,
    guards: Bounded<u64>,
    /// The last generation handed out.
    last_generation: u64,
    /// The highest generation of a guard that was forgotten.
    floor: u64,
}

impl InMemoryCache {
    /// Keeps at most `capacity` values (and as many guards), each for `ttl`. A capacity
    /// of 0 is taken as 1.
    #[must_use]
    pub fn new(capacity: usize, ttl: Duration) -> Self {
        Self {
            ttl,
            guard_ttl: super::guard_ttl(ttl),
            state: Mutex::new(State {
                values: Bounded::new(capacity),
                guards: Bounded::new(capacity),
                last_generation: 0,
                floor: 0,
            }),
        }
    }

    /// The state with expired entries dropped. A panic elsewhere cannot leave the maps
    /// half-updated in a way that matters (every operation is a few map calls), so a
    /// poisoned lock is taken over.
    fn state(&self) -> MutexGuard<'_, State> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        state.values.purge_expired(now);
        let forgotten = state.guards.purge_expired(now);
        state.forget(forgotten);
        state
    }
}

impl State {
    fn generation(&self, guard: &str) -> u64 {
        self.guards.get(guard).copied().unwrap_or(self.floor)
    }

    fn forget(&mut self, guards: impl IntoIterator<Item = u64>) {
        self.floor = guards.into_iter().fold(self.floor, u64::max);
    }
}

#[async_trait]
impl Cache for InMemoryCache {
    async fn lookup(&self, key: &str, guard: &str) -> Result<CacheEntry, CacheError> {
        let state = self.state();
        Ok(CacheEntry {
            value: state.values.get(key).cloned(),
            generation: state.generation(guard),
        })
    }

    async fn fill(
        &self,
        key: &str,
        value: &[u8],
        guard: &str,
        generation: u64,
    ) -> Result<bool, CacheError> {
        let mut state = self.state();
        if state.generation(guard) != generation {
            return Ok(false);
        }
        let expires = Instant::now() + self.ttl;
        state.values.insert(key.to_owned(), value.to_vec(), expires);
        Ok(true)
    }

    async fn invalidate(&self, guards: &[String], keys: &[String]) -> Result<(), CacheError> {
        let mut state = self.state();
        let expires = Instant::now() + self.guard_ttl;
        for guard in guards {
            state.last_generation += 1;
            let generation = state.last_generation;
            let evicted = state.guards.insert(guard.clone(), generation, expires);
            state.forget(evicted);
        }
        for key in keys {
            state.values.remove(key);
        }
        Ok(())
    }
}

/// A map of at most `capacity` entries that each expire, ordered by expiry so that the
/// expired and the soonest-expiring are found first.
#[derive(Debug)]
struct Bounded<V> {
    capacity: usize,
    entries: HashMap<String, Slot<V>>,
    by_expiry: BTreeMap<(Instant, u64), String>,
    /// Breaks ties between entries with the same expiry, in insertion order.
    next_seq: u64,
}

#[derive(Debug)]
struct Slot<V> {
    value: V,
    position: (Instant, u64),
}

impl<V> Bounded<V> {
    fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            entries: HashMap::new(),
            by_expiry: BTreeMap::new(),
            next_seq: 0,
        }
    }

    fn get(&self, key: &str) -> Option<&V> {
        self.entries.get(key).map(|slot| &slot.value)
    }

    /// Stores `value` until `expires`, replacing any value at `key`; the values evicted
    /// to make room.
    fn insert(&mut self, key: String, value: V, expires: Instant) -> Vec<V> {
        self.remove(&key);
        let mut evicted = Vec::new();
        while self.entries.len() >= self.capacity {
            let Some((_, oldest)) = self.by_expiry.pop_first() else {
                break;
            };
            evicted.extend(self.entries.remove(&oldest).map(|slot| slot.value));
        }
        let position = (expires, self.next_seq);
        self.next_seq += 1;
        self.by_expiry.insert(position, key.clone());
        self.entries.insert(key, Slot { value, position });
        evicted
    }

    fn remove(&mut self, key: &str) -> Option<V> {
        let slot = self.entries.remove(key)?;
        self.by_expiry.remove(&slot.position);
        Some(slot.value)
    }

    /// Drops the entries expired at `now`; their values.
    fn purge_expired(&mut self, now: Instant) -> Vec<V> {
        let mut expired = Vec::new();
        while let Some(entry) = self.by_expiry.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let key = entry.remove();
            expired.extend(self.entries.remove(&key).map(|slot| slot.value));
        }
        expired
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(name: &str) -> String {
        format!("{name}:gen")
    }

    async fn put(cache: &InMemoryCache, key: &str, value: &[u8]) {
        assert!(cache.fill(key, value, &guard(key), 0).await.unwrap());
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_cache_evicts_the_entry_that_would_expire_first() {
        let cache = InMemoryCache::new(2, Duration::from_mins(1));
        put(&cache, "first", b"1").await;
        tokio::time::advance(Duration::from_millis(1)).await;
        put(&cache, "second", b"2").await;
        tokio::time::advance(Duration::from_millis(1)).await;
        put(&cache, "third", b"3").await;
        let value = |key: &'static str| {
            let cache = &cache;
            async move { cache.lookup(key, "g").await.unwrap().value }
        };
        assert_eq!(value("first").await, None);
        assert_eq!(value("second").await, Some(b"2".to_vec()));
        assert_eq!(value("third").await, Some(b"3".to_vec()));
    }

    #[tokio::test]
    async fn rewriting_a_key_does_not_count_twice_against_the_capacity() {
        let cache = InMemoryCache::new(2, Duration::from_mins(1));
        put(&cache, "first", b"1").await;
        put(&cache, "second", b"2").await;
        put(&cache, "second", b"two").await;
        assert_eq!(
            cache.lookup("first", "g").await.unwrap().value,
            Some(b"1".to_vec())
        );
        assert_eq!(
            cache.lookup("second", "g").await.unwrap().value,
            Some(b"two".to_vec())
        );
    }

    #[tokio::test]
    async fn a_bumped_guard_that_is_evicted_still_refuses_the_fill_of_a_reader_that_saw_it_before()
    {
        // Room for one guard: bumping a second evicts the first.
        let cache = InMemoryCache::new(1, Duration::from_mins(1));
        let before = cache.lookup("k", &guard("k")).await.unwrap().generation;
        cache.invalidate(&[guard("k")], &[]).await.unwrap();
        cache.invalidate(&[guard("other")], &[]).await.unwrap();
        let filled = cache.fill("k", b"old", &guard("k"), before).await.unwrap();
        assert!(!filled, "the reader saw the guard before the bump");
        let now = cache.lookup("k", &guard("k")).await.unwrap().generation;
        assert!(cache.fill("k", b"new", &guard("k"), now).await.unwrap());
    }

    #[tokio::test(start_paused = true)]
    async fn an_expired_bumped_guard_still_refuses_the_fill_of_a_reader_that_saw_it_before() {
        let cache = InMemoryCache::new(10, Duration::from_mins(1));
        let before = cache.lookup("k", &guard("k")).await.unwrap().generation;
        cache.invalidate(&[guard("k")], &[]).await.unwrap();
        tokio::time::advance(cache.guard_ttl + Duration::from_secs(1)).await;
        let after = cache.lookup("k", &guard("k")).await.unwrap().generation;
        assert_ne!(
            after, before,
            "the forgotten guard reads as the floor it raised"
        );
        assert!(!cache.fill("k", b"old", &guard("k"), before).await.unwrap());
    }

    #[tokio::test(start_paused = true)]
    async fn a_value_expires_after_the_ttl_and_not_before() {
        let cache = InMemoryCache::new(10, Duration::from_mins(1));
        put(&cache, "k", b"v").await;
        tokio::time::advance(Duration::from_secs(59)).await;
        assert!(cache.lookup("k", "g").await.unwrap().value.is_some());
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(cache.lookup("k", "g").await.unwrap().value, None);
    }
}
