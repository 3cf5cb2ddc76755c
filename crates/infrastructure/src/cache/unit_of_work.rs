//! The unit of work that invalidates the cache entries of what it wrote, after the
//! commit.

use std::collections::BTreeSet;
use std::sync::Arc;

use application::ports::{
    Accounts, ClaimToken, IdempotencyKey, RecordedResponse, RepositoryError, Store, Transaction,
    UnitOfWork,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::{ActiveAdmins, DomainEvent, Tenant, TenantId, UserId};

use super::CacheAside;
use super::codec::EntryKey;
use crate::persistence::Persisted;

/// Wraps a unit of work: its transactions note every aggregate added or saved, and
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

/// A transaction that passes every call on to the wrapped one, noting first the
/// aggregates it adds or saves. They are noted before the write, so one whose write
/// failed half-way is invalidated too: invalidating an unchanged entry only costs a miss.
struct InvalidatingTransaction {
    inner: Box<dyn Transaction>,
    cache: CacheAside,
    touched: BTreeSet<EntryKey>,
}

/// Every cached aggregate's store, through one impl.
#[async_trait]
impl<A: Persisted> Store<A> for InvalidatingTransaction
where
    dyn Transaction: Store<A>,
{
    async fn get(&mut self, tenant: TenantId, id: A::Id) -> Result<Option<A>, RepositoryError> {
        Store::<A>::get(self.inner.as_mut(), tenant, id).await
    }

    async fn add(&mut self, aggregate: &A) -> Result<(), RepositoryError> {
        self.touched
            .insert(EntryKey::of::<A>(aggregate.tenant_id(), aggregate.id()));
        Store::<A>::add(self.inner.as_mut(), aggregate).await
    }

    async fn save(&mut self, aggregate: &mut A) -> Result<(), RepositoryError> {
        self.touched
            .insert(EntryKey::of::<A>(aggregate.tenant_id(), aggregate.id()));
        Store::<A>::save(self.inner.as_mut(), aggregate).await
    }
}

#[async_trait]
impl Accounts for InvalidatingTransaction {
    async fn add_tenant(&mut self, tenant: &Tenant) -> Result<(), RepositoryError> {
        self.inner.add_tenant(tenant).await
    }

    async fn active_admins(&mut self, tenant: TenantId) -> Result<ActiveAdmins, RepositoryError> {
        self.inner.active_admins(tenant).await
    }

    async fn can_act(&mut self, tenant: TenantId, user: UserId) -> Result<bool, RepositoryError> {
        self.inner.can_act(tenant, user).await
    }

    async fn end_sessions(
        &mut self,
        tenant: TenantId,
        user: UserId,
        now: DateTime<Utc>,
    ) -> Result<(), RepositoryError> {
        self.inner.end_sessions(tenant, user, now).await
    }
}

#[async_trait]
impl Transaction for InvalidatingTransaction {
    async fn append_events(
        &mut self,
        events: Vec<DomainEvent>,
        aggregate_version: i64,
    ) -> Result<(), RepositoryError> {
        self.inner.append_events(events, aggregate_version).await
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
