use std::sync::Arc;

use domain::{User, UserId};

use crate::ports::{UserFilter, UserRepository};
use crate::{Error, Principal};

pub struct ListUsersQuery {
    pub filter: UserFilter,
    /// The id of the last user of the previous page.
    pub after: Option<UserId>,
    /// Clamped to 1..=100.
    pub limit: u64,
}

pub struct UserPage {
    pub items: Vec<User>,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<UserId>,
}

/// Lists the users of the caller's tenant, a page at a time (keyset on the id).
pub struct ListUsers {
    pub users: Arc<dyn UserRepository>,
}

impl ListUsers {
    /// # Errors
    /// `Forbidden` when a member asks for deleted users.
    #[tracing::instrument(skip_all)]
    pub async fn execute(
        &self,
        principal: &Principal,
        query: ListUsersQuery,
    ) -> Result<UserPage, Error> {
        if query.filter.include_deleted {
            principal.require_admin()?;
        }
        let limit = query.limit.clamp(1, u64::from(crate::MAX_PAGE_SIZE));
        // One extra row tells whether another page follows, without a COUNT.
        let mut items = self
            .users
            .list(principal.tenant_id, &query.filter, query.after, limit + 1)
            .await?;
        let next = if items.len() as u64 > limit {
            items.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
            items.last().map(User::id)
        } else {
            None
        };
        Ok(UserPage { items, next })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fakes::Fakes;

    fn query(after: Option<UserId>, limit: u64) -> ListUsersQuery {
        ListUsersQuery {
            filter: UserFilter::default(),
            after,
            limit,
        }
    }

    #[tokio::test]
    async fn pages_follow_each_other_without_gaps_or_repeats() {
        let fakes = Fakes::new();
        let admin = fakes.seed_admin("a@example.com").await;
        for n in 0..4 {
            fakes
                .seed_member(&admin, &format!("m{n}@example.com"))
                .await;
        }
        let principal = Fakes::principal(&admin);
        let first = fakes
            .list_users()
            .execute(&principal, query(None, 2))
            .await
            .unwrap();
        let second = fakes
            .list_users()
            .execute(&principal, query(first.next, 2))
            .await
            .unwrap();
        let third = fakes
            .list_users()
            .execute(&principal, query(second.next, 2))
            .await
            .unwrap();
        let ids: Vec<UserId> = [first.items, second.items, third.items]
            .concat()
            .iter()
            .map(User::id)
            .collect();
        assert_eq!(ids.len(), 5);
        assert!(ids.windows(2).all(|pair| pair[0] < pair[1]));
        assert_eq!(third.next, None);
    }

    #[tokio::test]
    async fn a_member_may_not_list_deleted_users() {
        let fakes = Fakes::new();
        let admin = fakes.seed_admin("a@example.com").await;
        let member = fakes.seed_member(&admin, "m@example.com").await;
        let mut query = query(None, 10);
        query.filter.include_deleted = true;
        let error = fakes
            .list_users()
            .execute(&Fakes::principal(&member), query)
            .await
            .err();
        assert!(matches!(error, Some(Error::Forbidden)));
    }

    #[tokio::test]
    async fn only_the_callers_tenant_is_listed() {
        let fakes = Fakes::new();
        let admin = fakes.seed_admin("a@example.com").await;
        fakes.seed_admin("b@example.com").await;
        let page = fakes
            .list_users()
            .execute(&Fakes::principal(&admin), query(None, 10))
            .await
            .unwrap();
        assert_eq!(page.items.len(), 1);
        assert_eq!(page.items[0].id(), admin.id());
    }
}
