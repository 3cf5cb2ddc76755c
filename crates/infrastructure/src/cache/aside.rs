//! The cache-aside flow every decorator shares, and the invalidations this process owes.

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use application::ports::RepositoryError;

use super::codec::{self, EntryKey};
use super::port::{Cache, CacheEntry, CacheError};
use super::{CacheConfig, ERRORS_TOTAL, HITS_TOTAL, MISSES_TOTAL};
use crate::persistence::Persisted;

/// The cache as the decorators and the invalidating unit of work share it: the port, how
/// values are packed, and the invalidations this process still owes. Build one per
/// cache and hand clones of it to every [`CachedLookup`](super::CachedLookup) and to the
/// [`InvalidatingUnitOfWork`](super::InvalidatingUnitOfWork): the owed invalidations
/// only protect reads that go through the same `CacheAside`.
#[derive(Clone)]
pub struct CacheAside {
    shared: Arc<Shared>,
}

struct Shared {
    cache: Arc<dyn Cache>,
    compress_above: usize,
    /// Entries written by a commit whose invalidation failed. Reads bypass the cache
    /// until every one of them is delivered. It grows with the distinct aggregates
    /// written while the cache is unreachable, and empties at the first delivery.
    owed: Mutex<BTreeSet<EntryKey>>,
}

impl std::fmt::Debug for CacheAside {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CacheAside")
            .field("compress_above", &self.shared.compress_above)
            .field("owed", &self.owed().len())
            .finish_non_exhaustive()
    }
}

/// What the cache said about an entry.
enum Found<T> {
    Hit(T),
    /// Not there (or not readable); the generation to fill with.
    Miss(u64),
    /// The cache cannot be trusted or reached: read the database, fill nothing.
    Bypass,
}

impl CacheAside {
    /// `cache` with the packing of `config` (its `ttl` belongs to the cache's
    /// constructor).
    #[must_use]
    pub fn new(cache: Arc<dyn Cache>, config: CacheConfig) -> Self {
        Self {
            shared: Arc::new(Shared {
                cache,
                compress_above: config.compress_above,
                owed: Mutex::new(BTreeSet::new()),
            }),
        }
    }

    /// The owed invalidations. Never held across an await; a panic cannot leave a set
    /// half-updated, so a poisoned lock is taken over.
    fn owed(&self) -> MutexGuard<'_, BTreeSet<EntryKey>> {
        self.shared
            .owed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The aggregate at `entry`: from the cache if it is there, otherwise from `load`,
    /// then cached if no writer invalidated it meanwhile. `None` is never cached.
    pub(super) async fn read_through<T, F, Fut>(
        &self,
        entry: &EntryKey,
        load: F,
    ) -> Result<Option<T>, RepositoryError>
    where
        T: Persisted,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Option<T>, RepositoryError>>,
    {
        let generation = match self.find::<T>(entry).await {
            Found::Hit(value) => return Ok(Some(value)),
            Found::Miss(generation) => generation,
            Found::Bypass => return load().await,
        };
        let loaded = load().await?;
        if let Some(value) = &loaded {
            self.fill(entry, value, generation).await;
        }
        Ok(loaded)
    }

    /// Looks `entry` up, once every owed invalidation is delivered; counts the outcome.
    async fn find<T: Persisted>(&self, entry: &EntryKey) -> Found<T> {
        if !self.settle().await {
            Self::missed::<T>();
            return Found::Bypass;
        }
        match self.shared.cache.lookup(&entry.key, &entry.guard).await {
            Ok(CacheEntry {
                value: Some(packed),
                generation,
            }) => match codec::unpack(&packed) {
                Ok(value) => {
                    metrics::counter!(HITS_TOTAL, "entity" => T::NAME).increment(1);
                    Found::Hit(value)
                }
                Err(error) => {
                    // Overwritten by the fill that follows: the guard is unchanged.
                    tracing::warn!(
                        entity = T::NAME,
                        error = format!("{error:#}"),
                        "a cached value did not decode; reading the database"
                    );
                    Self::missed::<T>();
                    Found::Miss(generation)
                }
            },
            Ok(CacheEntry {
                value: None,
                generation,
            }) => {
                Self::missed::<T>();
                Found::Miss(generation)
            }
            Err(error) => {
                failed("lookup", &error);
                Self::missed::<T>();
                Found::Bypass
            }
        }
    }

    /// Caches `value` unless its guard moved past `generation`. Skipped while this
    /// process owes invalidations: the value may predate one of them.
    async fn fill<T: Persisted>(&self, entry: &EntryKey, value: &T, generation: u64) {
        if !self.owed().is_empty() {
            return;
        }
        let packed = match codec::pack(value, self.shared.compress_above) {
            Ok(packed) => packed,
            Err(error) => {
                tracing::warn!(
                    entity = T::NAME,
                    error = format!("{error:#}"),
                    "a value could not be packed for the cache"
                );
                return;
            }
        };
        let filled = self
            .shared
            .cache
            .fill(&entry.key, &packed, &entry.guard, generation)
            .await;
        if let Err(error) = filled {
            failed("fill", &error);
        }
    }

    /// Counts a read of `T` the cache could not serve.
    fn missed<T: Persisted>() {
        metrics::counter!(MISSES_TOTAL, "entity" => T::NAME).increment(1);
    }

    /// Invalidates `entries`, and whatever this process still owes, after a commit.
    /// When the cache fails, `entries` are owed in turn.
    pub(super) async fn invalidate(&self, entries: BTreeSet<EntryKey>) {
        let mut all = self.owed().clone();
        all.extend(entries.iter().cloned());
        if !all.is_empty() && !self.deliver(&all).await {
            self.owed().extend(entries);
        }
    }

    /// Delivers the owed invalidations; whether none is left.
    async fn settle(&self) -> bool {
        let owed = self.owed().clone();
        owed.is_empty() || self.deliver(&owed).await
    }

    /// Bumps the guards and deletes the entries of `entries`, and forgets them as owed;
    /// whether that worked.
    async fn deliver(&self, entries: &BTreeSet<EntryKey>) -> bool {
        let guards: Vec<String> = entries.iter().map(|entry| entry.guard.clone()).collect();
        let keys: Vec<String> = entries.iter().map(|entry| entry.key.clone()).collect();
        match self.shared.cache.invalidate(&guards, &keys).await {
            Ok(()) => {
                let mut owed = self.owed();
                for entry in entries {
                    owed.remove(entry);
                }
                owed.is_empty()
            }
            Err(error) => {
                failed("invalidate", &error);
                false
            }
        }
    }
}

/// Logs and counts a cache call that failed; the caller goes on without the cache.
/// The message carries the cause chain, never a key or a value.
fn failed(operation: &'static str, error: &CacheError) {
    metrics::counter!(ERRORS_TOTAL, "operation" => operation).increment(1);
    let mut message = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    tracing::warn!(operation, error = %message, "the cache failed; serving from the database");
}
