//! The cache in Redis, shared by every replica.
//!
//! Each operation is one round trip, within the pool's per-call deadline: a lookup is
//! one `MGET` of the entry and its guard; a fill is a Lua script that compares the guard
//! and sets the entry atomically, so no bump can slip between the two; an invalidation
//! is one `MULTI` that bumps every guard (and sets its expiry), then deletes every entry.
//!
//! A lookup, a fill and an invalidation each name several keys, which Redis Cluster only
//! accepts within one hash slot: this adapter is for a single Redis (with replicas or
//! Sentinel), not a cluster.

use std::time::Duration;

use super::port::{Cache, CacheEntry, CacheError};
use ::redis::Script;
use anyhow::anyhow;
use async_trait::async_trait;

use crate::redis_pool::{Redis, RedisError};

/// Sets the entry only while the guard still holds the reader's generation (a missing
/// guard is generation 0).
const FILL_IF_UNCHANGED: &str = r"
local g = redis.call('GET', KEYS[2]) or '0'
if g == ARGV[2] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
  return 1
end
return 0
";

/// The cache in Redis. Every key it touches starts with its namespace.
#[derive(Debug, Clone)]
pub struct RedisCache {
    redis: Redis,
    namespace: String,
    ttl_ms: u64,
    guard_ttl_ms: u64,
    fill: Script,
}

impl RedisCache {
    /// Keeps values for `ttl` under keys starting with `namespace` and a colon.
    #[must_use]
    pub fn new(redis: Redis, namespace: String, ttl: Duration) -> Self {
        Self {
            redis,
            namespace,
            ttl_ms: millis(ttl),
            guard_ttl_ms: millis(super::guard_ttl(ttl)),
            fill: Script::new(FILL_IF_UNCHANGED),
        }
    }

    fn key(&self, key: &str) -> String {
        format!("{}:{key}", self.namespace)
    }
}

/// At least one millisecond: Redis refuses an expiry of zero.
fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis())
        .unwrap_or(u64::MAX)
        .max(1)
}

fn cache_error(error: RedisError) -> CacheError {
    match error {
        RedisError::Timeout(_) => CacheError::Timeout,
        RedisError::Unavailable(error) => CacheError::Unavailable(error),
    }
}

/// A guard's value as a generation.
fn generation(stored: Option<&[u8]>) -> Result<u64, CacheError> {
    let Some(stored) = stored else {
        return Ok(0);
    };
    std::str::from_utf8(stored)
        .ok()
        .and_then(|text| text.parse().ok())
        .ok_or_else(|| CacheError::Unavailable(anyhow!("a cache guard holds no generation")))
}

#[async_trait]
impl Cache for RedisCache {
    async fn lookup(&self, key: &str, guard: &str) -> Result<CacheEntry, CacheError> {
        let mut read = ::redis::cmd("MGET");
        read.arg(self.key(key)).arg(self.key(guard));
        let found: Vec<Option<Vec<u8>>> = self
            .redis
            .run(|mut connection| async move { read.query_async(&mut connection).await })
            .await
            .map_err(cache_error)?;
        let mut found = found.into_iter();
        let (value, guard) = (found.next().flatten(), found.next().flatten());
        Ok(CacheEntry {
            value,
            generation: generation(guard.as_deref())?,
        })
    }

    async fn fill(
        &self,
        key: &str,
        value: &[u8],
        guard: &str,
        generation: u64,
    ) -> Result<bool, CacheError> {
        let (key, guard) = (self.key(key), self.key(guard));
        let fill = &self.fill;
        let ttl_ms = self.ttl_ms;
        let stored: i64 = self
            .redis
            .run(|mut connection| async move {
                fill.key(key)
                    .key(guard)
                    .arg(value)
                    .arg(generation.to_string())
                    .arg(ttl_ms)
                    .invoke_async(&mut connection)
                    .await
            })
            .await
            .map_err(cache_error)?;
        Ok(stored == 1)
    }

    async fn invalidate(&self, guards: &[String], keys: &[String]) -> Result<(), CacheError> {
        if guards.is_empty() && keys.is_empty() {
            return Ok(());
        }
        let mut pipeline = ::redis::pipe();
        pipeline.atomic();
        for guard in guards {
            let guard = self.key(guard);
            pipeline.cmd("INCR").arg(&guard).ignore();
            pipeline
                .cmd("PEXPIRE")
                .arg(&guard)
                .arg(self.guard_ttl_ms)
                .ignore();
        }
        if !keys.is_empty() {
            let keys: Vec<String> = keys.iter().map(|key| self.key(key)).collect();
            pipeline.cmd("DEL").arg(keys).ignore();
        }
        self.redis
            .run(|mut connection| async move { pipeline.query_async::<()>(&mut connection).await })
            .await
            .map_err(cache_error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{self, TestRedis};

    #[tokio::test]
    #[ignore = "needs Redis: TEST_REDIS_URL, run by `just test-all`"]
    async fn every_key_the_redis_cache_writes_is_under_its_namespace_and_expires() {
        let test = TestRedis::new().await;
        let (redis, namespace) = (test.redis.clone(), test.namespace.clone());
        let cache = RedisCache::new(redis.clone(), namespace.clone(), Duration::from_secs(30));
        cache.fill("entry", b"e", "entry:gen", 0).await.unwrap();
        cache
            .invalidate(&["other:gen".to_owned()], &[])
            .await
            .unwrap();

        let pattern = format!("{namespace}:*");
        let mut keys: Vec<String> = redis
            .run(|mut connection| async move {
                ::redis::cmd("KEYS")
                    .arg(pattern)
                    .query_async(&mut connection)
                    .await
            })
            .await
            .unwrap();
        keys.sort();
        let expected: Vec<String> = ["entry", "other:gen"]
            .iter()
            .map(|key| format!("{namespace}:{key}"))
            .collect();
        assert_eq!(keys, expected);
        for key in keys {
            let ttl: i64 = redis
                .run(|mut connection| async move {
                    ::redis::cmd("PTTL")
                        .arg(key)
                        .query_async(&mut connection)
                        .await
                })
                .await
                .unwrap();
            assert!(ttl > 0, "every key expires, got {ttl}");
        }
    }

    #[tokio::test]
    #[ignore = "needs Redis: TEST_REDIS_URL, run by `just test-all`"]
    async fn a_guard_holding_something_else_than_a_generation_fails_the_lookup() {
        let test = TestRedis::new().await;
        let cache = RedisCache::new(
            test.redis.clone(),
            test.namespace.clone(),
            Duration::from_secs(30),
        );
        let guard = format!("{}:k:gen", test.namespace);
        test.redis
            .run(|mut connection| async move {
                ::redis::cmd("SET")
                    .arg(guard)
                    .arg("not a number")
                    .query_async::<()>(&mut connection)
                    .await
            })
            .await
            .unwrap();
        let lookup = cache.lookup("k", "k:gen").await;
        assert!(
            matches!(lookup, Err(CacheError::Unavailable(_))),
            "{lookup:?}"
        );
    }

    #[tokio::test]
    async fn a_redis_nobody_listens_on_fails_every_call() {
        let cache = RedisCache::new(
            testing::dead_redis(),
            "dead".to_owned(),
            Duration::from_secs(30),
        );
        assert!(cache.lookup("k", "g").await.is_err());
        assert!(cache.fill("k", b"v", "g", 0).await.is_err());
        assert!(
            cache
                .invalidate(&["g".to_owned()], &["k".to_owned()])
                .await
                .is_err()
        );
    }
}
