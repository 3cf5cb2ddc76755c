//! Tasks through the cache, by id.

use std::sync::Arc;

use application::ports::{RepositoryError, TaskCursor, TaskFilter, TaskQueries, TaskSort};
use async_trait::async_trait;
use domain::{Task, TaskId, TenantId};

use super::CacheAside;
use super::codec::EntryKey;

/// A `TaskQueries` that serves `get` from the cache when it can. Lists go to the
/// wrapped queries.
#[derive(Clone)]
pub struct CachedTaskQueries {
    inner: Arc<dyn TaskQueries>,
    cache: CacheAside,
}

impl std::fmt::Debug for CachedTaskQueries {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedTaskQueries")
            .field("cache", &self.cache)
            .finish_non_exhaustive()
    }
}

impl CachedTaskQueries {
    #[must_use]
    pub fn new(inner: Arc<dyn TaskQueries>, cache: CacheAside) -> Self {
        Self { inner, cache }
    }
}

#[async_trait]
impl TaskQueries for CachedTaskQueries {
    #[tracing::instrument(skip_all, fields(tenant_id = %tenant, task_id = %id))]
    async fn get(&self, tenant: TenantId, id: TaskId) -> Result<Option<Task>, RepositoryError> {
        let inner = &self.inner;
        self.cache
            .read_through(&EntryKey::task(tenant, id), || inner.get(tenant, id))
            .await
    }

    async fn list(
        &self,
        tenant: TenantId,
        filter: &TaskFilter,
        sort: TaskSort,
        after: Option<TaskCursor>,
        limit: u64,
    ) -> Result<Vec<Task>, RepositoryError> {
        self.inner.list(tenant, filter, sort, after, limit).await
    }
}
