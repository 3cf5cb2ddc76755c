//! Rate limiting: attempts at signing in per email and per client and at signing up per
//! client (`Throttle`), and a budget of requests per tenant (`RequestBudget`), each in
//! this process or in Redis.
//!
//! The in-process limiters are the embedded default; with several replicas each counts
//! on its own. The Redis ones keep the counts in Redis, so a limit holds across every
//! replica of the service. When Redis errors or does not answer in time, a Redis limiter
//! counts in an in-process limiter it holds instead: limits then hold per replica only
//! (degraded, never off), a warning is logged and `keystone_rate_limit_backend_errors_total`
//! counts the failure. Failing open would let anyone who can slow Redis down lift the
//! limits; failing closed would take sign-in and the API down with Redis.

mod attempts_memory;
mod attempts_redis;
mod budget;

use std::time::Duration;

use application::ports::ThrottleKey;

use crate::redis_pool::RedisError;

pub use attempts_memory::InMemoryThrottle;
pub use attempts_redis::RedisThrottle;
pub use budget::{InMemoryRequestBudget, RedisRequestBudget};

/// How many attempts a key may make within its window. 0 turns throttling off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub attempts: u32,
    pub window: Duration,
}

impl Limit {
    #[must_use]
    pub const fn new(attempts: u32, window: Duration) -> Self {
        Self { attempts, window }
    }

    fn count(self) -> usize {
        usize::try_from(self.attempts).unwrap_or(usize::MAX)
    }
}

/// The limit of each kind of key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleConfig {
    /// Failed sign-ins per email (a success is given back, and clears the email).
    pub per_email: Limit,
    /// Failed sign-ins per client address.
    pub per_client: Limit,
    /// Registrations per client address, kept or not.
    pub registrations_per_client: Limit,
}

impl ThrottleConfig {
    #[must_use]
    pub const fn with_limits(per_email: Limit, per_client: Limit, registrations: Limit) -> Self {
        Self {
            per_email,
            per_client,
            registrations_per_client: registrations,
        }
    }

    fn limit(&self, key: &ThrottleKey) -> Limit {
        match key {
            ThrottleKey::Email(_) => self.per_email,
            ThrottleKey::Client(_) => self.per_client,
            ThrottleKey::Registration(_) => self.registrations_per_client,
        }
    }

    fn longest_window(&self) -> Duration {
        self.per_email
            .window
            .max(self.per_client.window)
            .max(self.registrations_per_client.window)
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

/// The same tests for every `Throttle`: in process always, in Redis when the run
/// includes the tests that need it.
#[cfg(test)]
mod contract {
    use std::sync::Arc;

    use application::ports::{Admission, Attempt, Throttle};

    use super::*;
    use crate::testing::TestRedis;

    /// Makes throttles of one adapter: in process, or in Redis under a test namespace.
    struct Throttles {
        redis: Option<TestRedis>,
    }

    /// A throttle, and its Redis adapter when it has one, to check it answered itself.
    struct Made {
        throttle: Arc<dyn Throttle>,
        redis: Option<Arc<RedisThrottle>>,
    }

    impl Throttles {
        fn make(&self, per_email: u32, per_client: u32, window: Duration) -> Made {
            let config = ThrottleConfig::with_limits(
                Limit::new(per_email, window),
                Limit::new(per_client, window),
                Limit::new(2, window),
            );
            match &self.redis {
                Some(test) => {
                    let throttle = Arc::new(RedisThrottle::new(
                        test.redis.clone(),
                        test.namespace.clone(),
                        config,
                    ));
                    Made {
                        throttle: throttle.clone(),
                        redis: Some(throttle),
                    }
                }
                None => Made {
                    throttle: Arc::new(InMemoryThrottle::new(config)),
                    redis: None,
                },
            }
        }
    }

    impl Made {
        async fn attempt(&self, keys: &[ThrottleKey]) -> Admission {
            self.throttle.attempt(keys).await.unwrap()
        }

        async fn admitted(&self, keys: &[ThrottleKey]) -> Attempt {
            match self.attempt(keys).await {
                Admission::Admitted(attempt) => attempt,
                Admission::Wait(wait) => panic!("refused for {wait:?}"),
            }
        }

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
        an_email_is_refused_after_its_limit_of_attempts_and_told_how_long_to_wait,
        of_a_burst_of_attempts_at_once_only_the_limit_get_through,
        each_key_counts_against_its_own_limit_and_a_refusal_counts_on_none,
        an_attempt_given_back_no_longer_counts_and_a_reset_clears_a_key,
        registrations_are_counted_apart_from_sign_ins,
        a_limit_of_zero_never_refuses,
    );

    fn email(address: &str) -> ThrottleKey {
        ThrottleKey::Email(address.to_owned())
    }

    fn client(address: &str) -> ThrottleKey {
        ThrottleKey::Client(address.to_owned())
    }

    async fn an_email_is_refused_after_its_limit_of_attempts_and_told_how_long_to_wait(
        throttles: Throttles,
    ) {
        let window = Duration::from_mins(1);
        let made = throttles.make(3, 100, window);
        let keys = [email("a@example.com")];
        for _ in 0..3 {
            made.admitted(&keys).await;
        }
        let Admission::Wait(wait) = made.attempt(&keys).await else {
            panic!("the fourth attempt of three: refused");
        };
        assert!(wait > Duration::ZERO && wait <= window, "{wait:?}");
        made.assert_redis_answered();
    }

    async fn of_a_burst_of_attempts_at_once_only_the_limit_get_through(throttles: Throttles) {
        let made = Arc::new(throttles.make(3, 100, Duration::from_mins(1)));
        let burst: Vec<_> = (0..20)
            .map(|_| {
                let made = made.clone();
                tokio::spawn(async move { made.attempt(&[email("a@example.com")]).await })
            })
            .collect();
        let mut admitted = 0;
        for attempt in burst {
            if matches!(attempt.await.unwrap(), Admission::Admitted(_)) {
                admitted += 1;
            }
        }
        assert_eq!(admitted, 3);
        made.assert_redis_answered();
    }

    async fn each_key_counts_against_its_own_limit_and_a_refusal_counts_on_none(
        throttles: Throttles,
    ) {
        let made = throttles.make(5, 2, Duration::from_mins(1));
        for n in 0..2 {
            made.admitted(&[email(&format!("user{n}@example.com")), client("10.0.0.1")])
                .await;
        }
        // The client is at its limit: refused, and the new email's attempt not counted.
        let refused = [email("user2@example.com"), client("10.0.0.1")];
        assert!(matches!(made.attempt(&refused).await, Admission::Wait(_)));
        for n in 0..5 {
            made.admitted(&[email("user2@example.com"), client(&format!("10.0.1.{n}"))])
                .await;
        }
        made.admitted(&[email("user0@example.com")]).await;
        made.assert_redis_answered();
    }

    async fn an_attempt_given_back_no_longer_counts_and_a_reset_clears_a_key(throttles: Throttles) {
        let made = throttles.make(2, 100, Duration::from_mins(1));
        let keys = [email("a@example.com"), client("10.0.0.1")];
        made.admitted(&keys).await;
        let succeeded = made.admitted(&keys).await;
        assert!(matches!(made.attempt(&keys).await, Admission::Wait(_)));
        made.throttle.give_back(&keys, &succeeded).await.unwrap();
        made.admitted(&keys).await;
        assert!(matches!(made.attempt(&keys).await, Admission::Wait(_)));
        made.throttle.reset(&keys[0]).await.unwrap();
        made.admitted(&keys[..1]).await;
        made.assert_redis_answered();
    }

    async fn registrations_are_counted_apart_from_sign_ins(throttles: Throttles) {
        let made = throttles.make(100, 100, Duration::from_mins(1));
        let registration = [ThrottleKey::Registration("10.0.0.1".to_owned())];
        made.admitted(&registration).await;
        made.admitted(&registration).await;
        assert!(matches!(
            made.attempt(&registration).await,
            Admission::Wait(_)
        ));
        made.admitted(&[client("10.0.0.1")]).await;
        made.assert_redis_answered();
    }

    async fn a_limit_of_zero_never_refuses(throttles: Throttles) {
        let made = throttles.make(0, 1, Duration::from_mins(1));
        for _ in 0..10 {
            made.admitted(&[email("a@example.com")]).await;
        }
        made.assert_redis_answered();
    }
}
