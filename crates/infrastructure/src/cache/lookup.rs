//! Reads by id through the cache: one decorator for every cached aggregate.

use std::sync::Arc;

use application::ports::{Lookup, RepositoryError};
use async_trait::async_trait;
use domain::TenantId;

use super::CacheAside;
use super::codec::EntryKey;
use crate::persistence::Persisted;

/// A `Lookup` that serves reads from the cache when it can, and fills it from the
/// wrapped lookup when it cannot.
pub struct CachedLookup<A> {
    inner: Arc<dyn Lookup<A>>,
    cache: CacheAside,
}

impl<A> Clone for CachedLookup<A> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
            cache: self.cache.clone(),
        }
    }
}

impl<A> CachedLookup<A> {
    #[must_use]
    pub fn new(inner: Arc<dyn Lookup<A>>, cache: CacheAside) -> Self {
        Self { inner, cache }
    }
}

impl<A> std::fmt::Debug for CachedLookup<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedLookup")
            .field("cache", &self.cache)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl<A: Persisted> Lookup<A> for CachedLookup<A> {
    #[tracing::instrument(skip_all, fields(aggregate = A::NAME, tenant_id = %tenant, id = %id))]
    async fn get(&self, tenant: TenantId, id: A::Id) -> Result<Option<A>, RepositoryError> {
        let inner = &self.inner;
        self.cache
            .read_through(&EntryKey::of::<A>(tenant, id), || inner.get(tenant, id))
            .await
    }
}
