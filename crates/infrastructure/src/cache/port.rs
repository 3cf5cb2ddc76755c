//! The cache the cache-aside decorator keeps aggregates in (docs/adr/0010), with two
//! adapters: Redis, shared by every replica, and in memory, for one process.
//!
//! Values are opaque bytes: what is cached, and in which shape, is the decorator's
//! business. Every entry that may be filled from a database read has a *guard*: a
//! generation counter that writers bump after commit. A reader notes the generation
//! before it reads the database and fills only if it is unchanged, so a reader that
//! raced a writer cannot put the old state back after the writer's invalidation.

use async_trait::async_trait;

/// Why a cache call failed. Callers treat every failure the same way: they bypass the
/// cache and serve from the database.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("the cache did not answer in time")]
    Timeout,
    #[error("the cache is unavailable")]
    Unavailable(#[source] anyhow::Error),
}

/// What a read found: the value, if any, and the guard's generation at that moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheEntry {
    pub value: Option<Vec<u8>>,
    /// 0 when the guard does not exist.
    pub generation: u64,
}

#[async_trait]
pub trait Cache: Send + Sync {
    /// The value at `key` and the generation of `guard`, read together.
    async fn lookup(&self, key: &str, guard: &str) -> Result<CacheEntry, CacheError>;

    /// Stores `value` at `key` for the cache's TTL if `guard` is still at
    /// `generation`; `false` when a writer bumped it meanwhile and nothing was stored.
    async fn fill(
        &self,
        key: &str,
        value: &[u8],
        guard: &str,
        generation: u64,
    ) -> Result<bool, CacheError>;

    /// Bumps every guard, then deletes every key. Called after a commit.
    async fn invalidate(&self, guards: &[String], keys: &[String]) -> Result<(), CacheError>;
}
