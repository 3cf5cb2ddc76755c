//! Keystone's adapters: the real implementations of the application's ports.
//!
//! This is the only crate that knows sea-orm and SQL, Redis, Argon2, JWT and the system
//! clock. It owns how each aggregate maps to its tables (`Persisted`, served by one
//! generic store and lookup for every aggregate), the one JSON envelope events travel
//! in (the outbox's payload and the bus's message), the unit of work that makes a use
//! case's writes one transaction, the translation of driver errors into
//! `RepositoryError`, the database lifecycle (connecting, migrating, health), the cache
//! and its two decorators, the outbox's relay side and the event buses, the read models
//! and the rate limiters. Each Redis-backed adapter has an in-process twin for the
//! embedded default. It does not know HTTP, actix or configuration files: the server
//! reads settings and hands plain config structs in.

mod cache;
pub mod database;
mod events;
mod password;
mod persistence;
mod read_models;
pub mod redis_pool;
mod system;
#[cfg(test)]
mod test_tls;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
mod throttle;
mod tokens;

pub use cache::{
    CacheAside, CacheConfig, CachedLookup, InMemoryCache, InvalidatingUnitOfWork, RedisCache,
    describe_metrics as describe_cache_metrics,
};
pub use events::{
    InProcessBus, RedisStreamBus, StreamConfig, describe_metrics as describe_event_metrics,
    record_backlog, record_consumer_lag,
};
pub use password::{
    Argon2Hasher, Argon2Params, HASHES_WAITING, describe_metrics as describe_password_metrics,
};
pub use persistence::{
    SqlIdempotencyKeys, SqlLookup, SqlOutbox, SqlRefreshTokens, SqlTaskQueries, SqlTransaction,
    SqlUnitOfWork, SqlUsers,
};
pub use read_models::{SqlAuditLog, SqlInbox, SqlTaskStats};
pub use system::{SystemClock, UuidV7Ids};
pub use throttle::{
    InMemoryRequestBudget, InMemoryThrottle, Limit, RATE_LIMIT_BACKEND_ERRORS, RedisRequestBudget,
    RedisThrottle, ThrottleConfig, describe_metrics as describe_rate_limit_metrics,
};
pub use tokens::{JwtAccessTokens, JwtConfig, JwtKey};

/// A probe's `check`, cut off at `limit`.
async fn within(
    limit: std::time::Duration,
    check: impl std::future::Future<Output = anyhow::Result<()>>,
) -> Result<(), application::ports::ProbeError> {
    use application::ports::ProbeError;
    match tokio::time::timeout(limit, check).await {
        Ok(result) => result.map_err(ProbeError::Failed),
        Err(_elapsed) => Err(ProbeError::TimedOut),
    }
}
