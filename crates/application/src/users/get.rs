use std::sync::Arc;

use domain::{User, UserId};

use crate::ports::UserRepository;
use crate::{Error, Principal};

/// Reads one user of the caller's tenant (also serves `GET /users/me`).
pub struct GetUser {
    pub users: Arc<dyn UserRepository>,
}

impl GetUser {
    /// # Errors
    /// `NotFound` for a missing, deleted or other tenant's user.
    #[tracing::instrument(skip_all, fields(user_id = %id))]
    pub async fn execute(&self, principal: &Principal, id: UserId) -> Result<User, Error> {
        super::load(self.users.as_ref(), principal, id, false).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fakes::Fakes;

    #[tokio::test]
    async fn a_user_of_another_tenant_is_not_found() {
        let fakes = Fakes::new();
        let admin = fakes.seed_admin("a@example.com").await;
        let stranger = fakes.seed_admin("b@example.com").await;
        let error = fakes
            .get_user()
            .execute(&Fakes::principal(&admin), stranger.id())
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
            .get_user()
            .execute(&Fakes::principal(&admin), member.id())
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
            .get_user()
            .execute(&Fakes::principal(&member), admin.id())
            .await
            .unwrap();
        assert_eq!(read.id(), admin.id());
    }
}
