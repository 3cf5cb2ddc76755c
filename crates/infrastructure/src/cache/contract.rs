//! The contract of the `Cache` port, checked on every adapter: the in-memory cache
//! always, Redis when `TEST_REDIS_URL` is set (each test under a namespace of its own).

use std::sync::Arc;
use std::time::Duration;

use application::ports::Cache;

use super::{InMemoryCache, RedisCache};
use crate::testing;

/// Builds a cache with this TTL, or `None` when its server is not configured.
type Make = fn(Duration) -> Option<Arc<dyn Cache>>;

// Every `Make` may find its server missing; this one never does.
#[allow(clippy::unnecessary_wraps)]
fn in_memory(ttl: Duration) -> Option<Arc<dyn Cache>> {
    Some(Arc::new(InMemoryCache::new(100, ttl)))
}

fn in_redis(ttl: Duration) -> Option<Arc<dyn Cache>> {
    let Some((redis, namespace)) = testing::redis() else {
        eprintln!("skipped: TEST_REDIS_URL is not set");
        return None;
    };
    Some(Arc::new(RedisCache::new(redis, namespace, ttl)))
}

const TTL: Duration = Duration::from_secs(30);

fn guard(key: &str) -> String {
    format!("{key}:gen")
}

/// Runs each contract check on each adapter, as a test of its own.
macro_rules! on_every_cache {
    ($($check:ident),* $(,)?) => {
        mod in_memory {
            $(
                #[tokio::test]
                async fn $check() {
                    super::$check(super::in_memory).await;
                }
            )*
        }
        mod in_redis {
            $(
                #[tokio::test]
                async fn $check() {
                    super::$check(super::in_redis).await;
                }
            )*
        }
    };
}

on_every_cache!(
    a_filled_value_is_found_with_its_guards_generation,
    a_fill_is_refused_once_a_writer_bumped_the_guard_since_the_lookup,
    invalidating_bumps_every_guard_and_deletes_every_key,
    a_bumped_guard_does_not_refuse_the_fills_of_other_entries,
    an_unguarded_put_is_stored_whatever_its_guard_says,
    values_expire_after_the_ttl,
    invalidating_nothing_is_fine,
);

async fn a_filled_value_is_found_with_its_guards_generation(make: Make) {
    let Some(cache) = make(TTL) else { return };
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

async fn a_fill_is_refused_once_a_writer_bumped_the_guard_since_the_lookup(make: Make) {
    let Some(cache) = make(TTL) else { return };
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

async fn invalidating_bumps_every_guard_and_deletes_every_key(make: Make) {
    let Some(cache) = make(TTL) else { return };
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

async fn a_bumped_guard_does_not_refuse_the_fills_of_other_entries(make: Make) {
    let Some(cache) = make(TTL) else { return };
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

async fn an_unguarded_put_is_stored_whatever_its_guard_says(make: Make) {
    let Some(cache) = make(TTL) else { return };
    cache.invalidate(&[guard("index")], &[]).await.unwrap();
    cache.put("index", b"target").await.unwrap();
    let found = cache.lookup("index", &guard("index")).await.unwrap();
    assert_eq!(found.value.as_deref(), Some(&b"target"[..]));
    cache.put("index", b"moved").await.unwrap();
    let found = cache.lookup("index", &guard("index")).await.unwrap();
    assert_eq!(found.value.as_deref(), Some(&b"moved"[..]));
}

async fn values_expire_after_the_ttl(make: Make) {
    let Some(cache) = make(Duration::from_millis(200)) else {
        return;
    };
    let generation = cache.lookup("k", &guard("k")).await.unwrap().generation;
    assert!(
        cache
            .fill("k", b"v", &guard("k"), generation)
            .await
            .unwrap()
    );
    cache.put("index", b"i").await.unwrap();
    assert!(
        cache
            .lookup("k", &guard("k"))
            .await
            .unwrap()
            .value
            .is_some()
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(cache.lookup("k", &guard("k")).await.unwrap().value, None);
    let index = cache.lookup("index", &guard("index")).await.unwrap();
    assert_eq!(index.value, None);
}

async fn invalidating_nothing_is_fine(make: Make) {
    let Some(cache) = make(TTL) else { return };
    cache.invalidate(&[], &[]).await.unwrap();
    assert_eq!(cache.lookup("k", &guard("k")).await.unwrap().generation, 0);
}
