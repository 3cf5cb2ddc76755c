use std::sync::Arc;

use domain::{Aggregate, User, UserId};

use super::{UserFilter, UserQueries};
use crate::command::Get;
use crate::page::{Page, page_size};
use crate::{Error, Principal};

/// Reads one user of the caller's tenant (also serves `GET /users/me`).
pub type GetUser = Get<User>;

pub struct ListUsersQuery {
    pub filter: UserFilter,
    /// The id of the last user of the previous page.
    pub after: Option<UserId>,
    /// Clamped to 1..=100.
    pub limit: u64,
}

/// Lists the users of the caller's tenant, a page at a time (keyset on the id).
pub struct ListUsers {
    pub queries: Arc<dyn UserQueries>,
}

impl ListUsers {
    /// # Errors
    /// `Forbidden` when a member asks for deleted users.
    #[tracing::instrument(skip_all)]
    pub async fn execute(
        &self,
        principal: &Principal,
        query: ListUsersQuery,
    ) -> Result<Page<User, UserId>, Error> {
        if query.filter.include_deleted {
            principal.require_admin()?;
        }
        let size = page_size(query.limit);
        let items = self
            .queries
            .list(principal.tenant_id, &query.filter, query.after, size + 1)
            .await?;
        Ok(Page::of(items, size, User::id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::Fakes;

    #[tokio::test]
    async fn a_user_of_another_tenant_is_not_found() {
        let fakes = Fakes::new();
        let admin = fakes.seed_admin("a@example.com").await;
        let stranger = fakes.seed_admin("b@example.com").await;
        let error = fakes
            .users()
            .get
            .execute(&Fakes::principal(&admin), stranger.id(), false)
            .await
            .unwrap_err();
        assert!(matches!(error, Error::NotFound(_)));
    }

    #[tokio::test]
    async fn a_deleted_user_is_not_found() {
        let fakes = Fakes::new();
        let admin = fakes.seed_admin("a@example.com").await;
        let member = fakes.seed_member(&admin, "m@example.com").await;
        fakes.delete(&admin, &member).await;
        let error = fakes
            .users()
            .get
            .execute(&Fakes::principal(&admin), member.id(), false)
            .await
            .unwrap_err();
        assert!(matches!(error, Error::NotFound(_)));
    }

    #[tokio::test]
    async fn a_member_reads_a_colleague() {
        let fakes = Fakes::new();
        let admin = fakes.seed_admin("a@example.com").await;
        let member = fakes.seed_member(&admin, "m@example.com").await;
        let read = fakes
            .users()
            .get
            .execute(&Fakes::principal(&member), admin.id(), false)
            .await
            .unwrap();
        assert_eq!(read.id(), admin.id());
    }
    #[tokio::test]
    async fn an_admin_reads_a_deleted_user_when_asking_for_deleted_ones_and_a_member_may_not() {
        let fakes = Fakes::new();
        let admin = fakes.seed_admin("a@example.com").await;
        let member = fakes.seed_member(&admin, "m@example.com").await;
        let gone = fakes.seed_member(&admin, "g@example.com").await;
        fakes.delete(&admin, &gone).await;
        let read = fakes
            .users()
            .get
            .execute(&Fakes::principal(&admin), gone.id(), true)
            .await
            .unwrap();
        assert!(read.is_deleted());
        let refused = fakes
            .users()
            .get
            .execute(&Fakes::principal(&member), gone.id(), true)
            .await;
        assert!(matches!(refused, Err(Error::Forbidden)));
    }

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
            .users()
            .list
            .execute(&principal, query(None, 2))
            .await
            .unwrap();
        let second = fakes
            .users()
            .list
            .execute(&principal, query(first.next, 2))
            .await
            .unwrap();
        let third = fakes
            .users()
            .list
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
            .users()
            .list
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
            .users()
            .list
            .execute(&Fakes::principal(&admin), query(None, 10))
            .await
            .unwrap();
        assert_eq!(page.items.len(), 1);
        assert_eq!(page.items[0].id(), admin.id());
    }
}
