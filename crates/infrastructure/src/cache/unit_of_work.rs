//! The unit of work that invalidates the cache entries of what it wrote, after the
//! commit.

use std::collections::BTreeSet;
use std::sync::Arc;

use application::ports::{
    ClaimToken, IdempotencyKey, RecordedResponse, RepositoryError, TaskStore, Transaction,
    UnitOfWork, UserStore,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::{Task, TaskId, Tenant, TenantId, User, UserId};

use super::CacheAside;
use super::codec::EntryKey;

/// Wraps a unit of work: its transactions note every user and task added or saved, and
/// once the commit has run, bump the guards and delete the cache entries of each.
#[derive(Clone)]
pub struct InvalidatingUnitOfWork {
    inner: Arc<dyn UnitOfWork>,
    cache: CacheAside,
}

impl std::fmt::Debug for InvalidatingUnitOfWork {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InvalidatingUnitOfWork")
            .field("cache", &self.cache)
            .finish_non_exhaustive()
    }
}

impl InvalidatingUnitOfWork {
    #[must_use]
    pub fn new(inner: Arc<dyn UnitOfWork>, cache: CacheAside) -> Self {
        Self { inner, cache }
    }
}

#[async_trait]
impl UnitOfWork for InvalidatingUnitOfWork {
    async fn begin(&self) -> Result<Box<dyn Transaction>, RepositoryError> {
        Ok(Box::new(InvalidatingTransaction {
            inner: self.inner.begin().await?,
            cache: self.cache.clone(),
            touched: BTreeSet::new(),
        }))
    }
}

/// A transaction that is its own task and user store, like the SQL one: each store call
/// is passed on to the wrapped transaction's store, after noting the aggregate it
/// writes. Aggregates are noted before the write, so one whose write failed half-way is
/// invalidated too: invalidating an unchanged entry only costs a miss.
struct InvalidatingTransaction {
    inner: Box<dyn Transaction>,
    cache: CacheAside,
    touched: BTreeSet<EntryKey>,
}

#[async_trait]
impl Transaction for InvalidatingTransaction {
    fn tasks(&mut self) -> &mut dyn TaskStore {
        self
    }

    fn users(&mut self) -> &mut dyn UserStore {
        self
    }

    async fn complete_idempotent_request(
        &mut self,
        key: &IdempotencyKey,
        token: ClaimToken,
        response: &RecordedResponse,
        now: DateTime<Utc>,
    ) -> Result<(), RepositoryError> {
        self.inner
            .complete_idempotent_request(key, token, response, now)
            .await
    }

    /// Invalidates after the commit, whatever its outcome: an error from COMMIT does
    /// not prove nothing was written (the connection may have dropped after the server
    /// committed), and an invalidation too many only costs a miss.
    ///
    /// Both run in a task of their own, so that a caller dropped between the two (a
    /// client that hung up, a drain that timed out) cannot leave a committed change
    /// uninvalidated: the task runs to its end either way.
    async fn commit(self: Box<Self>) -> Result<(), RepositoryError> {
        let Self {
            inner,
            cache,
            touched,
        } = *self;
        let finishing = tokio::spawn(async move {
            let committed = inner.commit().await;
            cache.invalidate(touched).await;
            committed
        });
        finishing.await.unwrap_or_else(|error| {
            Err(RepositoryError::Unexpected(anyhow::anyhow!(
                "committing and invalidating stopped: {error}"
            )))
        })
    }
}

#[async_trait]
impl TaskStore for InvalidatingTransaction {
    async fn get(&mut self, tenant: TenantId, id: TaskId) -> Result<Option<Task>, RepositoryError> {
        self.inner.tasks().get(tenant, id).await
    }

    async fn add(&mut self, task: &mut Task) -> Result<(), RepositoryError> {
        self.touched
            .insert(EntryKey::task(task.tenant_id(), task.id()));
        self.inner.tasks().add(task).await
    }

    async fn save(&mut self, task: &mut Task) -> Result<(), RepositoryError> {
        self.touched
            .insert(EntryKey::task(task.tenant_id(), task.id()));
        self.inner.tasks().save(task).await
    }
}

#[async_trait]
impl UserStore for InvalidatingTransaction {
    async fn get(&mut self, tenant: TenantId, id: UserId) -> Result<Option<User>, RepositoryError> {
        self.inner.users().get(tenant, id).await
    }

    async fn add_tenant(&mut self, tenant: &Tenant) -> Result<(), RepositoryError> {
        self.inner.users().add_tenant(tenant).await
    }

    async fn add(&mut self, user: &mut User) -> Result<(), RepositoryError> {
        self.touched
            .insert(EntryKey::user(user.tenant_id(), user.id()));
        self.inner.users().add(user).await
    }

    async fn save(&mut self, user: &mut User) -> Result<(), RepositoryError> {
        self.touched
            .insert(EntryKey::user(user.tenant_id(), user.id()));
        self.inner.users().save(user).await
    }
}
