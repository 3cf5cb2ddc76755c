//! Counting attempts in Redis, so that every replica sees every attempt.
//!
//! The semantics are the in-process throttle's, exactly: a sliding window per key, a key
//! refused while it has its limit of attempts within its window, until the oldest of
//! them leaves it. Each key is a sorted set of attempts scored by the time they were
//! made, expiring one window after the last, so memory stays bounded as in process. A
//! Lua script checks every key and counts the attempt on all of them at once, taking
//! the time from Redis (`TIME`): two replicas cannot both let an attempt through that
//! only one of them may, and replicas whose clocks differ still agree on the window.
//!
//! Keys hold a SHA-256 digest of the email or address, not the value: a look at Redis
//! does not list who tried to sign in from where.
//!
//! When Redis fails, the same call goes to the in-process throttle held as a fallback
//! (see the parent module).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use application::ports::{Admission, Attempt, Throttle, ThrottleKey};
use async_trait::async_trait;
use redis::Script;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::{InMemoryThrottle, ThrottleConfig, degraded, millis};
use crate::redis_pool::{Redis, RedisError};

/// Counts one attempt against every key, or none when a key is at its limit. KEYS: the
/// attempt sets. ARGV[1]: a member unique to this attempt; ARGV[2i] and ARGV[2i + 1]:
/// the limit and the window in ms of KEYS[i]. Returns 0 when counted, else how many ms
/// until every key is below its limit.
const ATTEMPT: &str = r"
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local wait = 0
for i, key in ipairs(KEYS) do
    local limit = tonumber(ARGV[2 * i])
    local window = tonumber(ARGV[2 * i + 1])
    redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
    if redis.call('ZCARD', key) >= limit then
        local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
        local left = window - (now - tonumber(oldest[2]))
        if left > wait then wait = left end
    end
end
if wait > 0 then return wait end
for i, key in ipairs(KEYS) do
    redis.call('ZADD', key, now, ARGV[1])
    redis.call('PEXPIRE', key, tonumber(ARGV[2 * i + 1]))
end
return 0
";

/// The `Throttle` shared by every replica through Redis.
pub struct RedisThrottle {
    redis: Redis,
    namespace: String,
    config: ThrottleConfig,
    fallback: InMemoryThrottle,
    /// Calls the fallback answered, for tests that must reach Redis.
    fallbacks: AtomicU64,
    attempt: Script,
}

impl std::fmt::Debug for RedisThrottle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisThrottle")
            .field("namespace", &self.namespace)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl RedisThrottle {
    /// Counts in Redis under `<namespace>:throttle:`, with `config`'s limits.
    #[must_use]
    pub fn new(redis: Redis, namespace: String, config: ThrottleConfig) -> Self {
        Self {
            redis,
            namespace,
            config,
            fallback: InMemoryThrottle::new(config),
            fallbacks: AtomicU64::new(0),
            attempt: Script::new(ATTEMPT),
        }
    }

    /// Notes that Redis failed and the fallback answers this call.
    fn degrade(&self, error: RedisError) {
        self.fallbacks.fetch_add(1, Ordering::Relaxed);
        degraded("throttle", error);
    }

    /// How many calls the in-process fallback answered since this throttle was built.
    #[cfg(test)]
    pub(super) fn fallbacks(&self) -> u64 {
        self.fallbacks.load(Ordering::Relaxed)
    }

    fn redis_key(&self, key: &ThrottleKey) -> String {
        let (kind, value) = match key {
            ThrottleKey::Email(email) => ("email", email),
            ThrottleKey::Client(client) => ("client", client),
            ThrottleKey::Registration(client) => ("registration", client),
        };
        let digest = Sha256::digest(value.as_bytes());
        format!("{}:throttle:{kind}:{digest:x}", self.namespace)
    }

    /// The Redis keys of the throttled `keys`; kinds with a limit of 0 are left out, as
    /// the in-process throttle ignores them.
    fn limited(&self, keys: &[ThrottleKey]) -> Vec<(String, super::Limit)> {
        keys.iter()
            .map(|key| (self.redis_key(key), self.config.limit(key)))
            .filter(|(_, limit)| limit.attempts > 0)
            .collect()
    }

    async fn attempt_in_redis(&self, keys: &[ThrottleKey]) -> Result<Admission, RedisError> {
        let member = Uuid::now_v7().simple().to_string();
        let limited = self.limited(keys);
        if limited.is_empty() {
            return Ok(Admission::Admitted(Attempt(member)));
        }
        let mut invocation = self.attempt.prepare_invoke();
        invocation.arg(&member);
        for (key, limit) in &limited {
            invocation
                .key(key)
                .arg(limit.attempts)
                .arg(millis(limit.window));
        }
        let wait_ms: u64 = self
            .redis
            .run(|mut connection| async move { invocation.invoke_async(&mut connection).await })
            .await?;
        Ok(if wait_ms == 0 {
            Admission::Admitted(Attempt(member))
        } else {
            Admission::Wait(Duration::from_millis(wait_ms))
        })
    }

    async fn give_back_in_redis(
        &self,
        keys: &[ThrottleKey],
        member: &str,
    ) -> Result<(), RedisError> {
        let keys: Vec<String> = self.limited(keys).into_iter().map(|(key, _)| key).collect();
        if keys.is_empty() {
            return Ok(());
        }
        let member = member.to_owned();
        self.redis
            .run(|mut connection| async move {
                let mut pipe = redis::pipe();
                for key in &keys {
                    pipe.cmd("ZREM").arg(key).arg(&member).ignore();
                }
                pipe.query_async::<()>(&mut connection).await
            })
            .await
    }

    async fn reset_in_redis(&self, key: &ThrottleKey) -> Result<(), RedisError> {
        let key = self.redis_key(key);
        self.redis
            .run(|mut connection| async move {
                redis::cmd("DEL")
                    .arg(&key)
                    .query_async::<()>(&mut connection)
                    .await
            })
            .await
    }
}

#[async_trait]
impl Throttle for RedisThrottle {
    async fn attempt(&self, keys: &[ThrottleKey]) -> anyhow::Result<Admission> {
        match self.attempt_in_redis(keys).await {
            Ok(admission) => Ok(admission),
            Err(error) => {
                self.degrade(error);
                self.fallback.attempt(keys).await
            }
        }
    }

    /// Gives the attempt back wherever it was counted: in Redis, or in the fallback
    /// during an outage (each ignores an attempt the other made).
    async fn give_back(&self, keys: &[ThrottleKey], attempt: &Attempt) -> anyhow::Result<()> {
        self.fallback.give_back(keys, attempt).await?;
        if let Err(error) = self.give_back_in_redis(keys, &attempt.0).await {
            self.degrade(error);
        }
        Ok(())
    }

    async fn reset(&self, key: &ThrottleKey) -> anyhow::Result<()> {
        // Whatever the fallback counted during an outage is forgotten too, so a
        // successful sign-in frees the key on this replica whichever store answers.
        self.fallback.reset(key).await?;
        if let Err(error) = self.reset_in_redis(key).await {
            self.degrade(error);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{self, TestRedis};
    use crate::throttle::Limit;

    fn config(per_email: u32) -> ThrottleConfig {
        let window = Duration::from_mins(1);
        ThrottleConfig::with_limits(
            Limit::new(per_email, window),
            Limit::new(100, window),
            Limit::new(100, window),
        )
    }

    fn email(address: &str) -> ThrottleKey {
        ThrottleKey::Email(address.to_owned())
    }

    fn is_admitted(admission: &Admission) -> bool {
        matches!(admission, Admission::Admitted(_))
    }

    #[tokio::test]
    #[ignore = "needs Redis: TEST_REDIS_URL, run by `just test-all`"]
    async fn two_replicas_on_the_same_redis_and_namespace_share_their_counts() {
        let test = TestRedis::new().await;
        let (redis, namespace) = (test.redis.clone(), test.namespace.clone());
        let first = RedisThrottle::new(redis.clone(), namespace.clone(), config(2));
        let second = RedisThrottle::new(redis, namespace, config(2));
        let keys = [email("a@example.com")];
        assert!(is_admitted(&first.attempt(&keys).await.unwrap()));
        assert!(is_admitted(&second.attempt(&keys).await.unwrap()));
        assert!(!is_admitted(&first.attempt(&keys).await.unwrap()));
        assert!(!is_admitted(&second.attempt(&keys).await.unwrap()));
        first.reset(&keys[0]).await.unwrap();
        assert!(is_admitted(&second.attempt(&keys).await.unwrap()));
        assert_eq!(first.fallbacks() + second.fallbacks(), 0);
    }

    #[tokio::test]
    #[ignore = "needs Redis: TEST_REDIS_URL, run by `just test-all`"]
    async fn another_namespace_counts_on_its_own() {
        let test = TestRedis::new().await;
        let (redis, namespace) = (test.redis.clone(), test.namespace.clone());
        let ours = RedisThrottle::new(redis.clone(), namespace.clone(), config(1));
        let theirs = RedisThrottle::new(redis, format!("{namespace}_other"), config(1));
        let keys = [email("a@example.com")];
        assert!(is_admitted(&ours.attempt(&keys).await.unwrap()));
        assert!(!is_admitted(&ours.attempt(&keys).await.unwrap()));
        assert!(is_admitted(&theirs.attempt(&keys).await.unwrap()));
    }

    #[tokio::test]
    #[ignore = "needs Redis: TEST_REDIS_URL, run by `just test-all`"]
    async fn redis_keys_hold_a_digest_of_the_email_not_the_email() {
        let test = TestRedis::new().await;
        let (redis, namespace) = (test.redis.clone(), test.namespace.clone());
        let throttle = RedisThrottle::new(redis.clone(), namespace.clone(), config(5));
        throttle
            .attempt(&[email("grace@example.com")])
            .await
            .unwrap();
        let pattern = format!("{namespace}:*");
        let keys: Vec<String> = redis
            .run(|mut connection| async move {
                redis::cmd("KEYS")
                    .arg(&pattern)
                    .query_async(&mut connection)
                    .await
            })
            .await
            .unwrap();
        assert_eq!(keys.len(), 1);
        assert!(keys[0].starts_with(&format!("{namespace}:throttle:email:")));
        assert!(!keys[0].contains("grace"), "{}", keys[0]);
    }

    /// The window is Redis' clock's, so instead of waiting on it the test writes an
    /// attempt as old as a window, and one just inside it.
    #[tokio::test]
    #[ignore = "needs Redis: TEST_REDIS_URL, run by `just test-all`"]
    async fn attempts_older_than_the_window_no_longer_count() {
        let test = TestRedis::new().await;
        let (redis, namespace) = (test.redis.clone(), test.namespace.clone());
        let throttle = RedisThrottle::new(redis.clone(), namespace, config(2));
        let keys = [email("a@example.com")];
        let key = throttle.redis_key(&keys[0]);
        let seed = |age_ms: u64, member: &'static str| {
            let key = key.clone();
            redis.run(move |mut connection| async move {
                let time: (u64, u64) = redis::cmd("TIME").query_async(&mut connection).await?;
                let now = time.0 * 1000 + time.1 / 1000;
                redis::cmd("ZADD")
                    .arg(&key)
                    .arg(now - age_ms)
                    .arg(member)
                    .query_async::<()>(&mut connection)
                    .await
            })
        };
        seed(60_001, "expired").await.unwrap();
        seed(60_000, "expired too").await.unwrap();
        seed(59_000, "recent").await.unwrap();
        assert!(is_admitted(&throttle.attempt(&keys).await.unwrap()));
        let Admission::Wait(wait) = throttle.attempt(&keys).await.unwrap() else {
            panic!("two recent attempts of two: refused");
        };
        assert!(wait <= Duration::from_secs(1), "{wait:?}");
        assert_eq!(throttle.fallbacks(), 0);
    }

    #[tokio::test]
    async fn with_redis_down_it_still_limits_in_process() {
        let throttle = RedisThrottle::new(testing::dead_redis(), "dead".to_owned(), config(2));
        let keys = [email("a@example.com")];
        assert!(is_admitted(&throttle.attempt(&keys).await.unwrap()));
        let Admission::Admitted(second) = throttle.attempt(&keys).await.unwrap() else {
            panic!("the second of two attempts: admitted");
        };
        assert!(!is_admitted(&throttle.attempt(&keys).await.unwrap()));
        throttle.give_back(&keys, &second).await.unwrap();
        assert!(is_admitted(&throttle.attempt(&keys).await.unwrap()));
        throttle.reset(&keys[0]).await.unwrap();
        assert!(is_admitted(&throttle.attempt(&keys).await.unwrap()));
        assert!(throttle.fallbacks() >= 6, "{}", throttle.fallbacks());
    }
}
