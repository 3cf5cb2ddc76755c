//! Rate limiting: failed sign-ins per email and per client (`LoginThrottle`) and a
//! budget of requests per tenant (`RequestBudget`), each in this process or in Redis.
//!
//! The in-process limiters are the embedded default; with several replicas each counts
//! on its own. The Redis ones keep the counts in Redis, so a limit holds across every
//! replica of the service. When Redis errors or does not answer in time, a Redis limiter
//! counts in an in-process limiter it holds instead: limits then hold per replica only
//! (degraded, never off), a warning is logged and `keystone_rate_limit_backend_errors_total`
//! counts the failure. Failing open would let anyone who can slow Redis down lift the
//! limits; failing closed would take sign-in and the API down with Redis.

mod budget;
mod login_memory;
mod login_redis;

use std::time::Duration;

use application::ports::ThrottleKey;

use crate::redis_pool::RedisError;

pub use budget::{InMemoryRequestBudget, RedisRequestBudget};
pub use login_memory::InMemoryLoginThrottle;
pub use login_redis::RedisLoginThrottle;

/// How many failures each kind of key may have within `window`. A limit of 0 turns
/// throttling of that kind off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleConfig {
    pub max_failures_per_email: u32,
    pub max_failures_per_client: u32,
    pub window: Duration,
}

impl ThrottleConfig {
    /// The failures `key` may have within the window; 0 when its kind is not throttled.
    fn limit(&self, key: &ThrottleKey) -> u32 {
        match key {
            ThrottleKey::Email(_) => self.max_failures_per_email,
            ThrottleKey::Client(_) => self.max_failures_per_client,
        }
    }
}

/// Calls to Redis by a rate limiter that failed, so that the limiter counted in this
/// process instead; labelled by `limiter` (`login`, `request_budget`).
pub const RATE_LIMIT_BACKEND_ERRORS: &str = "keystone_rate_limit_backend_errors_total";

/// Gives the rate limiters' metrics their help text. Call once the recorder is in place.
pub fn describe_metrics() {
    metrics::describe_counter!(
        RATE_LIMIT_BACKEND_ERRORS,
        metrics::Unit::Count,
        "Rate limiter calls to Redis that failed and were counted in process instead"
    );
}

/// Notes that `limiter` could not reach Redis and limits in this process for this call.
fn degraded(limiter: &'static str, error: RedisError) {
    let error = anyhow::Error::from(error);
    tracing::warn!(
        limiter,
        error = format!("{error:#}"),
        "rate limiter cannot reach redis; limiting in this process only"
    );
    metrics::counter!(RATE_LIMIT_BACKEND_ERRORS, "limiter" => limiter).increment(1);
}

/// A duration in whole milliseconds, at least one: what Redis expiries and the Lua
/// scripts count in.
fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis())
        .unwrap_or(u64::MAX)
        .max(1)
}

/// The same tests for every `LoginThrottle`: in process always, in Redis when the run
/// includes the tests that need it.
#[cfg(test)]
mod contract {
    use std::sync::Arc;

    use application::ports::LoginThrottle;

    use super::*;
    use crate::testing::TestRedis;

    /// Makes throttles of one adapter: in process, or in Redis under a test namespace.
    struct Throttles {
        redis: Option<TestRedis>,
    }

    /// A throttle, and its Redis adapter when it has one, to check it answered itself.
    struct Throttle {
        all: Vec<Arc<dyn LoginThrottle>>,
        redis: Option<Arc<RedisLoginThrottle>>,
    }

    impl Throttles {
        fn make(&self, per_email: u32, per_client: u32, window: Duration) -> Throttle {
            let config = ThrottleConfig {
                max_failures_per_email: per_email,
                max_failures_per_client: per_client,
                window,
            };
            match &self.redis {
                Some(test) => {
                    let throttle = Arc::new(RedisLoginThrottle::new(
                        test.redis.clone(),
                        test.namespace.clone(),
                        config,
                    ));
                    Throttle {
                        all: vec![throttle.clone()],
                        redis: Some(throttle),
                    }
                }
                None => Throttle {
                    all: vec![Arc::new(InMemoryLoginThrottle::new(config))],
                    redis: None,
                },
            }
        }
    }

    impl Throttle {
        /// A fallback would pass these tests in place of a broken Redis script.
        fn assert_redis_answered(&self) {
            if let Some(throttle) = &self.redis {
                assert_eq!(throttle.fallbacks(), 0);
            }
        }
    }

    crate::with_and_without!(
        in_memory = Throttles { redis: None },
        on_redis = Throttles { redis: Some(TestRedis::new().await) };
        an_email_is_blocked_after_its_limit_of_failures_and_told_how_long_to_wait,
        each_key_counts_against_its_own_limit,
        a_reset_clears_the_failures_of_a_key,
        a_limit_of_zero_never_blocks,
    );

    fn email(address: &str) -> ThrottleKey {
        ThrottleKey::Email(address.to_owned())
    }

    fn client(address: &str) -> ThrottleKey {
        ThrottleKey::Client(address.to_owned())
    }

    async fn an_email_is_blocked_after_its_limit_of_failures_and_told_how_long_to_wait(
        throttles: Throttles,
    ) {
        let window = Duration::from_mins(1);
        let throttles = throttles.make(3, 100, window);
        for throttle in &throttles.all {
            let keys = [email("a@example.com")];
            for _ in 0..2 {
                throttle.record_failure(&keys).await.unwrap();
            }
            assert_eq!(throttle.blocked_for(&keys).await.unwrap(), None);
            throttle.record_failure(&keys).await.unwrap();
            let wait = throttle.blocked_for(&keys).await.unwrap().expect("blocked");
            assert!(wait > Duration::ZERO && wait <= window, "{wait:?}");
        }
        throttles.assert_redis_answered();
    }

    async fn each_key_counts_against_its_own_limit(throttles: Throttles) {
        let throttles = throttles.make(5, 2, Duration::from_mins(1));
        for throttle in &throttles.all {
            for n in 0..2 {
                let keys = [email(&format!("user{n}@example.com")), client("10.0.0.1")];
                throttle.record_failure(&keys).await.unwrap();
            }
            let client_blocked = throttle.blocked_for(&[client("10.0.0.1")]).await;
            assert!(client_blocked.unwrap().is_some());
            let email_blocked = throttle.blocked_for(&[email("user0@example.com")]).await;
            assert_eq!(email_blocked.unwrap(), None);
            let other = [email("user0@example.com"), client("10.0.0.2")];
            assert_eq!(throttle.blocked_for(&other).await.unwrap(), None);
        }
        throttles.assert_redis_answered();
    }

    async fn a_reset_clears_the_failures_of_a_key(throttles: Throttles) {
        let throttles = throttles.make(1, 100, Duration::from_mins(1));
        for throttle in &throttles.all {
            let keys = [email("a@example.com")];
            throttle.record_failure(&keys).await.unwrap();
            assert!(throttle.blocked_for(&keys).await.unwrap().is_some());
            throttle.reset(&keys[0]).await.unwrap();
            assert_eq!(throttle.blocked_for(&keys).await.unwrap(), None);
        }
        throttles.assert_redis_answered();
    }

    async fn a_limit_of_zero_never_blocks(throttles: Throttles) {
        let throttles = throttles.make(0, 1, Duration::from_mins(1));
        for throttle in &throttles.all {
            let keys = [email("a@example.com")];
            for _ in 0..10 {
                throttle.record_failure(&keys).await.unwrap();
            }
            assert_eq!(throttle.blocked_for(&keys).await.unwrap(), None);
        }
        throttles.assert_redis_answered();
    }
}
