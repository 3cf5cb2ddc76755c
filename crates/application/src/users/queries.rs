//! What user lists and sign-in need from storage.

use async_trait::async_trait;
use domain::{Email, TenantId, User, UserId};

use crate::ports::RepositoryError;

/// Filters for listing the users of one tenant.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserFilter {
    /// Matches a substring of the email or the username, case-insensitively.
    pub q: Option<String>,
    pub is_active: Option<bool>,
    pub include_deleted: bool,
}

/// Reads of users beyond one by id, outside any transaction. Every method but
/// `find_by_email` is scoped to a tenant.
#[async_trait]
pub trait UserQueries: Send + Sync {
    /// The user with this email in any tenant: emails are unique across the service,
    /// and sign-in is the one place that does not know the tenant yet.
    async fn find_by_email(&self, email: &Email) -> Result<Option<User>, RepositoryError>;

    /// Users of `tenant` that pass `filter`, in id order (UUIDv7, so creation order)
    /// after `after`, at most `limit`.
    async fn list(
        &self,
        tenant: TenantId,
        filter: &UserFilter,
        after: Option<UserId>,
        limit: u64,
    ) -> Result<Vec<User>, RepositoryError>;
}

/// The in-memory database's answers, filtering as the adapter does.
#[cfg(any(test, feature = "testing"))]
mod fake {
    use std::sync::Arc;

    use async_trait::async_trait;
    use domain::{Aggregate, Email, TenantId, User, UserId};

    use super::{UserFilter, UserQueries};
    use crate::ports::RepositoryError;
    use crate::testing::FakeDb;

    #[async_trait]
    impl UserQueries for Arc<FakeDb> {
        async fn find_by_email(&self, email: &Email) -> Result<Option<User>, RepositoryError> {
            Ok(self.all::<User>().into_iter().find(|u| u.email() == email))
        }

        async fn list(
            &self,
            tenant: TenantId,
            filter: &UserFilter,
            after: Option<UserId>,
            limit: u64,
        ) -> Result<Vec<User>, RepositoryError> {
            let mut users: Vec<User> = self
                .all::<User>()
                .into_iter()
                .filter(|u| u.tenant_id() == tenant)
                .filter(|u| filter.include_deleted || !u.is_deleted())
                .filter(|u| {
                    filter
                        .is_active
                        .is_none_or(|active| u.is_active() == active)
                })
                .filter(|u| after.is_none_or(|after| u.id() > after))
                .collect();
            users.truncate(usize::try_from(limit).unwrap());
            Ok(users)
        }
    }
}
