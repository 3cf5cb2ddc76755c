//! Users through the cache: by id, and by email through an index checked on use.

use std::sync::Arc;

use application::ports::{RepositoryError, UserFilter, UserRepository};
use async_trait::async_trait;
use domain::{Email, TenantId, User, UserId};

use super::CacheAside;
use super::codec::{self, EntryKey};

/// A `UserRepository` that serves `get` and `find_by_email` from the cache when it can.
/// Listing and counting go to the wrapped repository.
#[derive(Clone)]
pub struct CachedUsers {
    inner: Arc<dyn UserRepository>,
    cache: CacheAside,
}

impl std::fmt::Debug for CachedUsers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedUsers")
            .field("cache", &self.cache)
            .finish_non_exhaustive()
    }
}

impl CachedUsers {
    #[must_use]
    pub fn new(inner: Arc<dyn UserRepository>, cache: CacheAside) -> Self {
        Self { inner, cache }
    }

    /// The user the email's index entry points at, if it still has that email.
    async fn indexed(&self, email: &Email) -> Result<Option<User>, RepositoryError> {
        let Some((tenant, id)) = self
            .cache
            .index(&EntryKey::email(email))
            .await
            .as_deref()
            .and_then(codec::unpack_user_ref)
        else {
            return Ok(None);
        };
        let user = self.get(tenant, id).await?;
        Ok(user.filter(|user| user.email() == email))
    }
}

#[async_trait]
impl UserRepository for CachedUsers {
    #[tracing::instrument(skip_all, fields(tenant_id = %tenant, user_id = %id))]
    async fn get(&self, tenant: TenantId, id: UserId) -> Result<Option<User>, RepositoryError> {
        let inner = &self.inner;
        self.cache
            .read_through(&EntryKey::user(tenant, id), || inner.get(tenant, id))
            .await
    }

    /// The index leads to a user id; the user is then read by id (from the cache or the
    /// database) and returned only if its email is still `email`. Otherwise, or without
    /// an index entry, the database answers and the index is pointed at its answer.
    #[tracing::instrument(skip_all)]
    async fn find_by_email(&self, email: &Email) -> Result<Option<User>, RepositoryError> {
        if let Some(user) = self.indexed(email).await? {
            return Ok(Some(user));
        }
        CacheAside::missed::<User>();
        let user = self.inner.find_by_email(email).await?;
        if let Some(user) = &user {
            let entry = EntryKey::email(email);
            let target = codec::pack_user_ref(user.tenant_id(), user.id());
            self.cache.put_index(&entry, &target).await;
        }
        Ok(user)
    }

    async fn count_active_admins(&self, tenant: TenantId) -> Result<u64, RepositoryError> {
        self.inner.count_active_admins(tenant).await
    }

    async fn list(
        &self,
        tenant: TenantId,
        filter: &UserFilter,
        after: Option<UserId>,
        limit: u64,
    ) -> Result<Vec<User>, RepositoryError> {
        self.inner.list(tenant, filter, after, limit).await
    }
}
