//! Cache-aside reads of every aggregate by id, and the two caches they can sit on.
//!
//! # What this module owns
//!
//! - The `Cache` port (`port`), with two adapters: [`InMemoryCache`] (bounded, with a
//!   TTL, for the embedded single-process default) and [`RedisCache`] (shared by every
//!   replica).
//! - [`CachedLookup`], one decorator of the application's `Lookup` port for every
//!   aggregate, which the use cases do not know about. Lists, searches and counts
//!   always go to the database: their results depend on many rows, and no single write
//!   could say which cached pages it spoiled.
//! - [`InvalidatingUnitOfWork`], which wraps the unit of work, records every aggregate
//!   a transaction adds or saves, and invalidates their entries after the commit.
//! - The cached shape of the aggregates (`codec`): the rows the database holds, read
//!   back through the same mapping (`persistence::Persisted`), JSON, zstd above
//!   [`CacheConfig::compress_above`] bytes.
//!
//! # The stale-fill race, and the guards that close it
//!
//! Plain cache-aside has a race: a reader misses, reads the old row, and is slow to put
//! it in the cache; meanwhile a writer commits and deletes the key; then the reader's
//! put lands and the old state stays cached for a whole TTL. Deleting after the commit
//! cannot prevent that, since the reader's put comes later still.
//!
//! So every entry has a *guard*, a generation counter next to it. A reader reads the
//! entry and its guard's generation together (one `MGET`); on a miss it reads the
//! database, then fills only if the guard still holds the generation it saw (one Lua
//! script, atomic in Redis). A writer, after its commit, first bumps the guard of every
//! aggregate it touched, then deletes their entries. Whatever the interleaving:
//!
//! - the reader read the database before the commit: the bump happens after its lookup,
//!   so its fill is refused (or, if the fill came before the bump, the delete that
//!   follows the bump removes it);
//! - the reader read the database after the commit: it holds the new state, which is
//!   fine to cache.
//!
//! Invalidation happens after the commit, never before: a reader in between would read
//! the old row under the new generation, and its fill would be accepted. Guards live
//! longer than any database read (their TTL is the cache TTL, at least 60 s): a guard
//! that expired while a reader was reading would look untouched again. For the same
//! reason Redis must not evict guards under memory pressure before their TTL; size it
//! so that it does not (or use `noeviction`). The in-memory cache raises a floor
//! instead, so that a forgotten guard never reads as an older generation.
//!
//! `None` is never cached, so a new aggregate needs no invalidation (its entry is
//! invalidated anyway, which costs nothing). Sign-in looks users up by email in the
//! database: its argon2 check costs a thousand such reads, and an index from emails to
//! users would be one more thing to keep true.
//!
//! # Keys
//!
//! `v{SCHEMA_VERSION}:t:{tenant}:{aggregate}:{id}` (guard: the same with `:gen`); the
//! Redis cache puts its namespace in front of each. The tenant in the key means a read
//! in one tenant can never find another's aggregate. The schema version is bumped
//! whenever the cached shape changes, so a deploy never decodes what an older one wrote
//! (and an entry that fails to decode anyway is a miss). Key names, which show in
//! Redis' `MONITOR`, `SCAN` and slow log, carry no personal data; the values do (a
//! user's email and password hash), so Redis deserves the protection the database has.
//!
//! # When the cache fails
//!
//! A cache that errors or times out (each Redis call has a short deadline) is bypassed:
//! the read is served from the database, a warning is logged (never a value) and
//! `keystone_cache_errors_total` counted. A write whose invalidation fails still
//! succeeds; its entries are kept as *owed* invalidations in this process. Before any
//! later cache read, this process delivers what it owes, and while it cannot, it reads
//! the database, so it never serves anything older than its own writes.
//!
//! Other replicas are not so covered. Until the owed invalidation is delivered (on this
//! replica's next cache read or commit once Redis answers again) or the entry's TTL runs
//! out, a replica that can reach Redis may serve the state from before the write. That
//! takes a partial failure (Redis reachable from them but not from the writer, or a
//! timeout on a call that did not run) and is bounded by the TTL; a replica that dies
//! while it owes invalidations leaves the TTL as the only bound. Between a commit and
//! its invalidation, a few milliseconds, any replica may serve the previous state; the
//! writer's own response is sent only after the invalidation, so a client that waits
//! for it reads its write. With [`InMemoryCache`] every process has its own cache and
//! sees only its own invalidations: it suits one process, not several replicas.

mod aside;
mod codec;
mod lookup;
mod memory;
mod port;
mod redis;
mod unit_of_work;

#[cfg(test)]
mod contract;
#[cfg(test)]
mod tests;

use std::time::Duration;

use metrics::Unit;

pub use aside::CacheAside;
pub use lookup::CachedLookup;
pub use memory::InMemoryCache;

pub use redis::RedisCache;
pub use unit_of_work::InvalidatingUnitOfWork;

/// Reads served from the cache, by `entity` (the aggregate: `user`, `task`).
pub const HITS_TOTAL: &str = "keystone_cache_hits_total";
/// Reads the cache could not serve and the database did, by `entity`.
pub const MISSES_TOTAL: &str = "keystone_cache_misses_total";
/// Cache calls that failed or timed out and were bypassed, by `operation` (`lookup`,
/// `fill`, `invalidate`).
pub const ERRORS_TOTAL: &str = "keystone_cache_errors_total";

/// Gives the cache metrics their help text and units. Call once the recorder is in place.
pub fn describe_metrics() {
    metrics::describe_counter!(HITS_TOTAL, Unit::Count, "Reads served from the cache");
    metrics::describe_counter!(
        MISSES_TOTAL,
        Unit::Count,
        "Reads the cache could not serve, served from the database"
    );
    metrics::describe_counter!(
        ERRORS_TOTAL,
        Unit::Count,
        "Cache calls that failed or timed out; the cache was bypassed"
    );
}

/// How cached values are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheConfig {
    /// How long an entry lives; hand it to the cache's constructor.
    pub ttl: Duration,
    /// Values larger than this many bytes are compressed with zstd.
    pub compress_above: usize,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            ttl: Duration::from_mins(5),
            compress_above: 1024,
        }
    }
}

/// How long a guard lives: longer than any database read, so that a reader's
/// generation cannot be forgotten while it reads (see the module docs).
fn guard_ttl(ttl: Duration) -> Duration {
    ttl.max(Duration::from_mins(1))
}
