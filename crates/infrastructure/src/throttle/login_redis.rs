//! Counting failed sign-ins in Redis, so that every replica sees every failure.
//!
//! The semantics are the in-process throttle's, exactly: a sliding window per key, a key
//! blocked while it has its limit of failures within the window, until the oldest of
//! them leaves it. Each key is a sorted set of failures scored by the time they
//! happened, trimmed to the newest `limit` and expiring one window after the last
//! failure, so memory stays bounded as in process. Two Lua scripts read and write a
//! key atomically, and take the time from Redis (`TIME`): replicas whose clocks differ
//! still agree on the window.
//!
//! Keys hold a SHA-256 digest of the email or address, not the value: a look at Redis
//! does not list who tried to sign in from where.
//!
//! When Redis fails, the same call goes to the in-process throttle held as a fallback
//! (see the parent module).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use application::ports::{LoginThrottle, ThrottleKey};
use async_trait::async_trait;
use redis::Script;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::{InMemoryLoginThrottle, ThrottleConfig, degraded, millis};
use crate::redis_pool::{Redis, RedisError};

/// Records one failure against every key. KEYS: the failure sets. ARGV[1]: the window
/// in ms; ARGV[2]: a member unique to this failure; ARGV[2 + i]: the limit of KEYS[i].
const RECORD_FAILURE: &str = r"
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local window = tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
    local limit = tonumber(ARGV[2 + i])
    redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
    redis.call('ZADD', key, now, ARGV[2])
    redis.call('ZREMRANGEBYRANK', key, 0, -limit - 1)
    redis.call('PEXPIRE', key, window)
end
return 0
";

/// How many ms until no key is at its limit, 0 when none is. KEYS: the failure sets.
/// ARGV[1]: the window in ms; ARGV[1 + i]: the limit of KEYS[i].
const BLOCKED_FOR: &str = r"
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local window = tonumber(ARGV[1])
local wait = 0
for i, key in ipairs(KEYS) do
    local limit = tonumber(ARGV[1 + i])
    local recent = redis.call('ZRANGEBYSCORE', key, '(' .. (now - window), '+inf', 'WITHSCORES')
    if #recent / 2 >= limit then
        local left = window - (now - tonumber(recent[2]))
        if left > wait then wait = left end
    end
end
return wait
";

/// The `LoginThrottle` shared by every replica through Redis.
pub struct RedisLoginThrottle {
    redis: Redis,
    namespace: String,
    config: ThrottleConfig,
    fallback: InMemoryLoginThrottle,
    /// Calls the fallback answered, for tests that must reach Redis.
    fallbacks: AtomicU64,
    record_failure: Script,
    blocked_for: Script,
}

impl std::fmt::Debug for RedisLoginThrottle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisLoginThrottle")
            .field("namespace", &self.namespace)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl RedisLoginThrottle {
    /// Counts in Redis under `<namespace>:login_failures:`, with `config`'s limits.
    #[must_use]
    pub fn new(redis: Redis, namespace: String, config: ThrottleConfig) -> Self {
        Self {
            redis,
            namespace,
            config,
            fallback: InMemoryLoginThrottle::new(config),
            fallbacks: AtomicU64::new(0),
            record_failure: Script::new(RECORD_FAILURE),
            blocked_for: Script::new(BLOCKED_FOR),
        }
    }

    /// Notes that Redis failed and the fallback answers this call.
    fn degrade(&self, error: RedisError) {
        self.fallbacks.fetch_add(1, Ordering::Relaxed);
        degraded("login", error);
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
        };
        let digest = Sha256::digest(value.as_bytes());
        format!("{}:login_failures:{kind}:{digest:x}", self.namespace)
    }

    /// The Redis keys of the throttled `keys`, with their limits; kinds with a limit of
    /// 0 are left out, as the in-process throttle ignores them.
    fn limited(&self, keys: &[ThrottleKey]) -> Vec<(String, u32)> {
        keys.iter()
            .map(|key| (self.redis_key(key), self.config.limit(key)))
            .filter(|(_, limit)| *limit > 0)
            .collect()
    }

    fn window_ms(&self) -> u64 {
        millis(self.config.window)
    }

    async fn blocked_in_redis(&self, keys: &[ThrottleKey]) -> Result<Option<Duration>, RedisError> {
        let limited = self.limited(keys);
        if limited.is_empty() {
            return Ok(None);
        }
        let mut invocation = self.blocked_for.prepare_invoke();
        invocation.arg(self.window_ms());
        for (key, limit) in &limited {
            invocation.key(key).arg(limit);
        }
        let wait_ms: u64 = self
            .redis
            .run(|mut connection| async move { invocation.invoke_async(&mut connection).await })
            .await?;
        Ok((wait_ms > 0).then(|| Duration::from_millis(wait_ms)))
    }

    async fn record_in_redis(&self, keys: &[ThrottleKey]) -> Result<(), RedisError> {
        let limited = self.limited(keys);
        if limited.is_empty() {
            return Ok(());
        }
        let mut invocation = self.record_failure.prepare_invoke();
        invocation
            .arg(self.window_ms())
            .arg(Uuid::now_v7().simple().to_string());
        for (key, _) in &limited {
            invocation.key(key);
        }
        for (_, limit) in &limited {
            invocation.arg(limit);
        }
        self.redis
            .run(|mut connection| async move {
                invocation.invoke_async::<()>(&mut connection).await
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
impl LoginThrottle for RedisLoginThrottle {
    async fn blocked_for(&self, keys: &[ThrottleKey]) -> anyhow::Result<Option<Duration>> {
        match self.blocked_in_redis(keys).await {
            Ok(wait) => Ok(wait),
            Err(error) => {
                self.degrade(error);
                self.fallback.blocked_for(keys).await
            }
        }
    }

    async fn record_failure(&self, keys: &[ThrottleKey]) -> anyhow::Result<()> {
        match self.record_in_redis(keys).await {
            Ok(()) => Ok(()),
            Err(error) => {
                self.degrade(error);
                self.fallback.record_failure(keys).await
            }
        }
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

    fn config(per_email: u32) -> ThrottleConfig {
        ThrottleConfig {
            max_failures_per_email: per_email,
            max_failures_per_client: 100,
            window: Duration::from_mins(1),
        }
    }

    fn email(address: &str) -> ThrottleKey {
        ThrottleKey::Email(address.to_owned())
    }

    #[tokio::test]
    #[ignore = "needs Redis: TEST_REDIS_URL, run by `just test-all`"]
    async fn two_replicas_on_the_same_redis_and_namespace_share_their_counts() {
        let test = TestRedis::new().await;
        let (redis, namespace) = (test.redis.clone(), test.namespace.clone());
        let first = RedisLoginThrottle::new(redis.clone(), namespace.clone(), config(2));
        let second = RedisLoginThrottle::new(redis, namespace, config(2));
        let keys = [email("a@example.com")];
        first.record_failure(&keys).await.unwrap();
        assert_eq!(second.blocked_for(&keys).await.unwrap(), None);
        second.record_failure(&keys).await.unwrap();
        assert!(first.blocked_for(&keys).await.unwrap().is_some());
        assert!(second.blocked_for(&keys).await.unwrap().is_some());
        first.reset(&keys[0]).await.unwrap();
        assert_eq!(second.blocked_for(&keys).await.unwrap(), None);
    }

    #[tokio::test]
    #[ignore = "needs Redis: TEST_REDIS_URL, run by `just test-all`"]
    async fn another_namespace_counts_on_its_own() {
        let test = TestRedis::new().await;
        let (redis, namespace) = (test.redis.clone(), test.namespace.clone());
        let ours = RedisLoginThrottle::new(redis.clone(), namespace.clone(), config(1));
        let theirs = RedisLoginThrottle::new(redis, format!("{namespace}_other"), config(1));
        let keys = [email("a@example.com")];
        ours.record_failure(&keys).await.unwrap();
        assert!(ours.blocked_for(&keys).await.unwrap().is_some());
        assert_eq!(theirs.blocked_for(&keys).await.unwrap(), None);
    }

    #[tokio::test]
    #[ignore = "needs Redis: TEST_REDIS_URL, run by `just test-all`"]
    async fn redis_keys_hold_a_digest_of_the_email_not_the_email() {
        let test = TestRedis::new().await;
        let (redis, namespace) = (test.redis.clone(), test.namespace.clone());
        let throttle = RedisLoginThrottle::new(redis.clone(), namespace.clone(), config(5));
        throttle
            .record_failure(&[email("grace@example.com")])
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
        assert!(keys[0].starts_with(&format!("{namespace}:login_failures:email:")));
        assert!(!keys[0].contains("grace"), "{}", keys[0]);
    }

    /// The window is Redis' clock's, so instead of waiting on it the test writes a
    /// failure as old as a window, and one just inside it.
    #[tokio::test]
    #[ignore = "needs Redis: TEST_REDIS_URL, run by `just test-all`"]
    async fn failures_older_than_the_window_no_longer_count() {
        let test = TestRedis::new().await;
        let (redis, namespace) = (test.redis.clone(), test.namespace.clone());
        let throttle = RedisLoginThrottle::new(redis.clone(), namespace, config(2));
        let keys = [email("a@example.com")];
        throttle.record_failure(&keys).await.unwrap();
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
        assert_eq!(throttle.blocked_for(&keys).await.unwrap(), None);
        seed(59_000, "recent").await.unwrap();
        let wait = throttle.blocked_for(&keys).await.unwrap().expect("blocked");
        assert!(wait <= Duration::from_secs(1), "{wait:?}");
        assert_eq!(throttle.fallbacks(), 0);
    }

    #[tokio::test]
    async fn with_redis_down_it_still_limits_in_process() {
        let throttle = RedisLoginThrottle::new(testing::dead_redis(), "dead".to_owned(), config(2));
        let keys = [email("a@example.com")];
        throttle.record_failure(&keys).await.unwrap();
        assert_eq!(throttle.blocked_for(&keys).await.unwrap(), None);
        throttle.record_failure(&keys).await.unwrap();
        let wait = throttle.blocked_for(&keys).await.unwrap().expect("blocked");
        assert!(wait <= Duration::from_mins(1), "{wait:?}");
        throttle.reset(&keys[0]).await.unwrap();
        assert_eq!(throttle.blocked_for(&keys).await.unwrap(), None);
        assert!(throttle.fallbacks() >= 6, "{}", throttle.fallbacks());
    }
}
