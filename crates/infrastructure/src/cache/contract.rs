//! The contract of the `Cache` port, checked on both adapters: in memory always, on
//! Redis (under a namespace of its own) when the run includes the tests that need it.
//! Expiry is each adapter's own test: on a paused clock in memory, by the keys' TTLs in
//! Redis.

use std::sync::Arc;
use std::time::Duration;

use super::port::Cache;
use super::{InMemoryCache, RedisCache};
use crate::testing::TestRedis;

/// A cache under test, and the Redis namespace it lives in, removed at the end.
struct Subject {
    cache: Arc<dyn Cache>,
    _redis: Option<TestRedis>,
}

const TTL: Duration = Duration::from_secs(30);

fn in_memory() -> Subject {
    Subject {
        cache: Arc::new(InMemoryCache::new(100, TTL)),
        _redis: None,
    }
}

async fn in_redis() -> Subject {
    let redis = TestRedis::new().await;
    let cache = RedisCache::new(redis.redis.clone(), redis.namespace.clone(), TTL);
    Subject {
        cache: Arc::new(cache),
        _redis: Some(redis),
    }
}

fn guard(key: &str) -> String {
    format!("{key}:gen")
}

crate::with_and_without!(
    in_memory = in_memory(),
    on_redis = in_redis().await;
    a_filled_value_is_found_with_its_guards_generation,
    a_fill_is_refused_once_a_writer_bumped_the_guard_since_the_lookup,
    invalidating_bumps_every_guard_and_deletes_every_key,
    a_bumped_guard_does_not_refuse_the_fills_of_other_entries,
    invalidating_nothing_is_fine,
);

async fn a_filled_value_is_found_with_its_guards_generation(subject: Subject) {
    let cache = subject.cache;
    let empty = cache.lookup("k", &guard("k")).await.unwrap();
    assert_eq!(empty.value, None);
    assert_eq!(empty.generation, 0, "a guard nobody bumped");
    assert!(
        cache
            .fill("k", b"value", &guard("k"), empty.generation)
            .await
            .unwrap()
    );
    let found = cache.lookup("k", &guard("k")).await.unwrap();
    assert_eq!(found.value.as_deref(), Some(&b"value"[..]));
    assert_eq!(found.generation, empty.generation);
}

async fn a_fill_is_refused_once_a_writer_bumped_the_guard_since_the_lookup(subject: Subject) {
    let cache = subject.cache;
    let before = cache.lookup("k", &guard("k")).await.unwrap().generation;
    cache
        .invalidate(&[guard("k")], &["k".to_owned()])
        .await
        .unwrap();
    let filled = cache.fill("k", b"old", &guard("k"), before).await.unwrap();
    assert!(!filled);
    let after = cache.lookup("k", &guard("k")).await.unwrap();
    assert_eq!(after.value, None, "the refused fill stored nothing");
    assert_ne!(after.generation, before);
    assert!(
        cache
            .fill("k", b"new", &guard("k"), after.generation)
            .await
            .unwrap()
    );
    let found = cache.lookup("k", &guard("k")).await.unwrap();
    assert_eq!(found.value.as_deref(), Some(&b"new"[..]));
}

async fn invalidating_bumps_every_guard_and_deletes_every_key(subject: Subject) {
    let cache = subject.cache;
    let mut before = Vec::new();
    for key in ["a", "b"] {
        let generation = cache.lookup(key, &guard(key)).await.unwrap().generation;
        assert!(
            cache
                .fill(key, b"v", &guard(key), generation)
                .await
                .unwrap()
        );
        before.push(generation);
    }
    cache
        .invalidate(&[guard("a"), guard("b")], &["a".to_owned(), "b".to_owned()])
        .await
        .unwrap();
    for (key, before) in ["a", "b"].into_iter().zip(before) {
        let after = cache.lookup(key, &guard(key)).await.unwrap();
        assert_eq!(after.value, None, "{key} was deleted");
        assert!(after.generation > before, "{key}'s guard was bumped");
    }
    // Bumping again moves the guard again.
    let once = cache.lookup("a", &guard("a")).await.unwrap().generation;
    cache.invalidate(&[guard("a")], &[]).await.unwrap();
    let twice = cache.lookup("a", &guard("a")).await.unwrap().generation;
    assert!(twice > once);
}

async fn a_bumped_guard_does_not_refuse_the_fills_of_other_entries(subject: Subject) {
    let cache = subject.cache;
    let other = cache
        .lookup("other", &guard("other"))
        .await
        .unwrap()
        .generation;
    cache
        .invalidate(&[guard("k")], &["k".to_owned()])
        .await
        .unwrap();
    assert!(
        cache
            .fill("other", b"v", &guard("other"), other)
            .await
            .unwrap()
    );
}

async fn invalidating_nothing_is_fine(subject: Subject) {
    let cache = subject.cache;
    cache.invalidate(&[], &[]).await.unwrap();
    assert_eq!(cache.lookup("k", &guard("k")).await.unwrap().generation, 0);
}
