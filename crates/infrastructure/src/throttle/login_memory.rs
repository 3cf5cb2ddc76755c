//! Counting failed sign-ins in this process, per email and per client address.
//!
//! Each key keeps the instants of its recent failures (a sliding window). State lives in
//! this process only: with several replicas each counts on its own, which still bounds
//! guessing per replica. `RedisLoginThrottle` shares the counts, and falls back to this
//! one while Redis is unreachable.
//!
//! Memory is bounded twice: each key keeps at most its limit of failures, and at most
//! `MAX_KEYS` keys are kept, since client addresses and emails cost an attacker nothing.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use application::ports::{LoginThrottle, ThrottleKey};
use async_trait::async_trait;
// Tokio's clock, which a test can pause and move by hand.
use tokio::time::Instant;

use super::ThrottleConfig;

/// The most keys kept at once. A key with its failures takes a few hundred bytes, so
/// this holds the throttle to a few tens of megabytes.
const MAX_KEYS: usize = 100_000;

/// The in-process `LoginThrottle`.
#[derive(Debug)]
pub struct InMemoryLoginThrottle {
    config: ThrottleConfig,
    /// `MAX_KEYS`, but for tests.
    max_keys: usize,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    /// Failures per key, oldest first, never more than the key's limit.
    failures: HashMap<ThrottleKey, VecDeque<Instant>>,
    /// When to next drop the keys whose failures have all left the window.
    next_sweep: Instant,
}

impl InMemoryLoginThrottle {
    #[must_use]
    pub fn new(config: ThrottleConfig) -> Self {
        Self {
            config,
            max_keys: MAX_KEYS,
            state: Mutex::new(State {
                failures: HashMap::new(),
                next_sweep: Instant::now() + config.window,
            }),
        }
    }

    fn limit(&self, key: &ThrottleKey) -> usize {
        usize::try_from(self.config.limit(key)).unwrap_or(usize::MAX)
    }

    /// A panic elsewhere cannot leave the counters inconsistent, so a poisoned lock is
    /// still safe to use.
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn forget_expired(&self, failures: &mut VecDeque<Instant>, now: Instant) {
        while failures
            .front()
            .is_some_and(|&at| now.duration_since(at) >= self.config.window)
        {
            failures.pop_front();
        }
    }

    /// Keeps memory bounded by the keys that failed within the last window or two: once
    /// per window, keys with no recent failure are dropped.
    fn sweep(&self, state: &mut State, now: Instant) {
        if now < state.next_sweep {
            return;
        }
        state.failures.retain(|_, failures| {
            self.forget_expired(failures, now);
            !failures.is_empty()
        });
        state.next_sweep = now + self.config.window;
    }

    /// Makes room for one more key when `max_keys` are kept, by forgetting the key whose
    /// latest failure is the oldest: the closest to being swept anyway (an expired key
    /// goes first). This scans every key, but only a flood of new keys gets here.
    fn make_room(&self, state: &mut State) {
        if state.failures.len() < self.max_keys {
            return;
        }
        let stalest = state
            .failures
            .iter()
            .min_by_key(|(_, failures)| failures.back().copied())
            .map(|(key, _)| key.clone());
        if let Some(key) = stalest {
            state.failures.remove(&key);
        }
    }
}

#[async_trait]
impl LoginThrottle for InMemoryLoginThrottle {
    async fn blocked_for(&self, keys: &[ThrottleKey]) -> anyhow::Result<Option<Duration>> {
        let now = Instant::now();
        let mut state = self.state();
        let mut wait: Option<Duration> = None;
        for key in keys {
            let limit = self.limit(key);
            let Some(failures) = state.failures.get_mut(key) else {
                continue;
            };
            self.forget_expired(failures, now);
            if limit == 0 || failures.len() < limit {
                continue;
            }
            // Blocked until the oldest counted failure leaves the window.
            if let Some(&oldest) = failures.front() {
                let left = self
                    .config
                    .window
                    .saturating_sub(now.duration_since(oldest));
                wait = wait.max(Some(left));
            }
        }
        Ok(wait)
    }

    async fn record_failure(&self, keys: &[ThrottleKey]) -> anyhow::Result<()> {
        let now = Instant::now();
        let mut state = self.state();
        self.sweep(&mut state, now);
        for key in keys {
            let limit = self.limit(key);
            if limit == 0 {
                continue;
            }
            if !state.failures.contains_key(key) {
                self.make_room(&mut state);
            }
            let failures = state.failures.entry(key.clone()).or_default();
            self.forget_expired(failures, now);
            failures.push_back(now);
            // The newest `limit` failures decide when the key is free again; older ones
            // would only cost memory.
            if failures.len() > limit {
                failures.pop_front();
            }
        }
        Ok(())
    }

    async fn reset(&self, key: &ThrottleKey) -> anyhow::Result<()> {
        self.state().failures.remove(key);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn throttle(per_email: u32, per_client: u32, window: Duration) -> InMemoryLoginThrottle {
        InMemoryLoginThrottle::new(ThrottleConfig {
            max_failures_per_email: per_email,
            max_failures_per_client: per_client,
            window,
        })
    }

    fn email(address: &str) -> ThrottleKey {
        ThrottleKey::Email(address.to_owned())
    }

    /// The clock is paused and moved by hand: no test here waits on real time.
    #[tokio::test(start_paused = true)]
    async fn the_wait_ends_when_the_oldest_counted_failure_leaves_the_window() {
        let window = Duration::from_mins(1);
        let throttle = throttle(2, 100, window);
        let keys = [email("a@example.com")];
        throttle.record_failure(&keys).await.unwrap();
        tokio::time::advance(Duration::from_secs(20)).await;
        throttle.record_failure(&keys).await.unwrap();
        let wait = throttle.blocked_for(&keys).await.unwrap();
        assert_eq!(
            wait,
            Some(Duration::from_secs(40)),
            "counted from the first"
        );
        tokio::time::advance(Duration::from_secs(40)).await;
        assert_eq!(throttle.blocked_for(&keys).await.unwrap(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn failures_older_than_the_window_no_longer_count() {
        let throttle = throttle(2, 100, Duration::from_mins(1));
        let keys = [email("a@example.com")];
        throttle.record_failure(&keys).await.unwrap();
        throttle.record_failure(&keys).await.unwrap();
        tokio::time::advance(Duration::from_secs(59)).await;
        assert!(throttle.blocked_for(&keys).await.unwrap().is_some());
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(throttle.blocked_for(&keys).await.unwrap(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn keys_without_recent_failures_are_swept_from_memory() {
        let throttle = throttle(5, 5, Duration::from_mins(1));
        throttle
            .record_failure(&[email("old@example.com")])
            .await
            .unwrap();
        tokio::time::advance(Duration::from_mins(1)).await;
        throttle
            .record_failure(&[email("new@example.com")])
            .await
            .unwrap();
        let state = throttle.state();
        assert_eq!(state.failures.len(), 1);
        assert!(state.failures.contains_key(&email("new@example.com")));
    }

    #[tokio::test(start_paused = true)]
    async fn at_its_key_limit_it_forgets_the_key_that_failed_least_recently() {
        let mut throttle = throttle(5, 5, Duration::from_mins(1));
        throttle.max_keys = 2;
        for address in ["first@example.com", "second@example.com"] {
            throttle.record_failure(&[email(address)]).await.unwrap();
            // Distinct instants, so "least recently" has one answer.
            tokio::time::advance(Duration::from_millis(2)).await;
        }
        throttle
            .record_failure(&[email("first@example.com")])
            .await
            .unwrap();
        throttle
            .record_failure(&[email("third@example.com")])
            .await
            .unwrap();
        let state = throttle.state();
        assert_eq!(state.failures.len(), 2);
        assert!(!state.failures.contains_key(&email("second@example.com")));
        assert_eq!(state.failures[&email("first@example.com")].len(), 2);
    }
}
