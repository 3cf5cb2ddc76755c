//! Counting attempts in this process: sign-ins per email and per client address, and
//! registrations per client address.
//!
//! Each key keeps the instants of its recent attempts (a sliding window). State lives in
//! this process only: with several replicas each counts on its own, which still bounds
//! guessing per replica. `RedisThrottle` shares the counts, and falls back to this one
//! while Redis is unreachable.
//!
//! Memory is bounded twice: each key keeps at most its limit of attempts, and at most
//! `MAX_KEYS` keys are kept, since client addresses and emails cost an attacker nothing.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use application::ports::{Admission, Attempt, Throttle, ThrottleKey};
use async_trait::async_trait;
// Tokio's clock, which a test can pause and move by hand.
use tokio::time::Instant;

use super::{Limit, ThrottleConfig};

/// The most keys kept at once. A key with its attempts takes a few hundred bytes, so
/// this holds the throttle to a few tens of megabytes.
const MAX_KEYS: usize = 100_000;

/// The in-process `Throttle`.
#[derive(Debug)]
pub struct InMemoryThrottle {
    config: ThrottleConfig,
    /// `MAX_KEYS`, but for tests.
    max_keys: usize,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    /// Attempts per key, oldest first, each with the number of the attempt, never more
    /// than the key's limit.
    attempts: HashMap<ThrottleKey, VecDeque<(Instant, u64)>>,
    /// The number of the next attempt let through.
    next: u64,
    /// When to next drop the keys whose attempts have all left their window.
    next_sweep: Instant,
}

impl InMemoryThrottle {
    #[must_use]
    pub fn new(config: ThrottleConfig) -> Self {
        Self {
            config,
            max_keys: MAX_KEYS,
            state: Mutex::new(State {
                attempts: HashMap::new(),
                next: 0,
                next_sweep: Instant::now() + config.longest_window(),
            }),
        }
    }

    /// A panic elsewhere cannot leave the counters inconsistent, so a poisoned lock is
    /// still safe to use.
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Keeps memory bounded by the keys tried within the last window or two: once per
    /// longest window, keys with no recent attempt are dropped.
    fn sweep(&self, state: &mut State, now: Instant) {
        if now < state.next_sweep {
            return;
        }
        state.attempts.retain(|key, attempts| {
            forget_expired(attempts, self.config.limit(key), now);
            !attempts.is_empty()
        });
        state.next_sweep = now + self.config.longest_window();
    }

    /// Makes room for one more key when `max_keys` are kept, by forgetting the key whose
    /// latest attempt is the oldest: the closest to being swept anyway. This scans every
    /// key, but only a flood of new keys gets here.
    fn make_room(&self, state: &mut State) {
        if state.attempts.len() < self.max_keys {
            return;
        }
        let stalest = state
            .attempts
            .iter()
            .min_by_key(|(_, attempts)| attempts.back().map(|(at, _)| *at))
            .map(|(key, _)| key.clone());
        if let Some(key) = stalest {
            state.attempts.remove(&key);
        }
    }
}

fn forget_expired(attempts: &mut VecDeque<(Instant, u64)>, limit: Limit, now: Instant) {
    while attempts
        .front()
        .is_some_and(|(at, _)| now.duration_since(*at) >= limit.window)
    {
        attempts.pop_front();
    }
}

#[async_trait]
impl Throttle for InMemoryThrottle {
    async fn attempt(&self, keys: &[ThrottleKey]) -> anyhow::Result<Admission> {
        let now = Instant::now();
        let mut state = self.state();
        self.sweep(&mut state, now);
        let mut wait: Option<Duration> = None;
        for key in keys {
            let limit = self.config.limit(key);
            let Some(attempts) = state.attempts.get_mut(key) else {
                continue;
            };
            forget_expired(attempts, limit, now);
            if limit.attempts == 0 || attempts.len() < limit.count() {
                continue;
            }
            // Waits until the oldest counted attempt leaves the window.
            if let Some((oldest, _)) = attempts.front() {
                let left = limit.window.saturating_sub(now.duration_since(*oldest));
                wait = wait.max(Some(left));
            }
        }
        if let Some(wait) = wait {
            return Ok(Admission::Wait(wait));
        }
        let number = state.next;
        state.next += 1;
        for key in keys {
            if self.config.limit(key).attempts == 0 {
                continue;
            }
            if !state.attempts.contains_key(key) {
                self.make_room(&mut state);
            }
            state
                .attempts
                .entry(key.clone())
                .or_default()
                .push_back((now, number));
        }
        Ok(Admission::Admitted(Attempt(number.to_string())))
    }

    /// An attempt this throttle did not make (one Redis let through) is not here.
    async fn give_back(&self, keys: &[ThrottleKey], attempt: &Attempt) -> anyhow::Result<()> {
        let Ok(number) = attempt.0.parse::<u64>() else {
            return Ok(());
        };
        let mut state = self.state();
        for key in keys {
            if let Some(attempts) = state.attempts.get_mut(key) {
                attempts.retain(|(_, counted)| *counted != number);
            }
        }
        Ok(())
    }

    async fn reset(&self, key: &ThrottleKey) -> anyhow::Result<()> {
        self.state().attempts.remove(key);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn throttle(per_email: u32, window: Duration) -> InMemoryThrottle {
        InMemoryThrottle::new(ThrottleConfig::with_limits(
            Limit::new(per_email, window),
            Limit::new(100, window),
            Limit::new(100, window),
        ))
    }

    fn email(address: &str) -> ThrottleKey {
        ThrottleKey::Email(address.to_owned())
    }

    async fn admitted(throttle: &InMemoryThrottle, keys: &[ThrottleKey]) -> Attempt {
        match throttle.attempt(keys).await.unwrap() {
            Admission::Admitted(attempt) => attempt,
            Admission::Wait(wait) => panic!("refused for {wait:?}"),
        }
    }

    /// The clock is paused and moved by hand: no test here waits on real time.
    #[tokio::test(start_paused = true)]
    async fn the_wait_ends_when_the_oldest_counted_attempt_leaves_the_window() {
        let window = Duration::from_mins(1);
        let throttle = throttle(2, window);
        let keys = [email("a@example.com")];
        admitted(&throttle, &keys).await;
        tokio::time::advance(Duration::from_secs(20)).await;
        admitted(&throttle, &keys).await;
        assert_eq!(
            throttle.attempt(&keys).await.unwrap(),
            Admission::Wait(Duration::from_secs(40)),
            "counted from the first"
        );
        tokio::time::advance(Duration::from_secs(40)).await;
        admitted(&throttle, &keys).await;
    }

    #[tokio::test(start_paused = true)]
    async fn keys_without_recent_attempts_are_swept_from_memory() {
        let throttle = throttle(5, Duration::from_mins(1));
        admitted(&throttle, &[email("old@example.com")]).await;
        tokio::time::advance(Duration::from_mins(1)).await;
        admitted(&throttle, &[email("new@example.com")]).await;
        let state = throttle.state();
        assert_eq!(state.attempts.len(), 1);
        assert!(state.attempts.contains_key(&email("new@example.com")));
    }

    #[tokio::test(start_paused = true)]
    async fn at_its_key_limit_it_forgets_the_key_tried_least_recently() {
        let mut throttle = throttle(5, Duration::from_mins(1));
        throttle.max_keys = 2;
        for address in ["first@example.com", "second@example.com"] {
            admitted(&throttle, &[email(address)]).await;
            // Distinct instants, so "least recently" has one answer.
            tokio::time::advance(Duration::from_millis(2)).await;
        }
        admitted(&throttle, &[email("first@example.com")]).await;
        admitted(&throttle, &[email("third@example.com")]).await;
        let state = throttle.state();
        assert_eq!(state.attempts.len(), 2);
        assert!(!state.attempts.contains_key(&email("second@example.com")));
        assert_eq!(state.attempts[&email("first@example.com")].len(), 2);
    }
}
