use std::sync::Arc;

use chrono::{DateTime, Utc};
use domain::{ActiveAdmins, User, UserError, UserId};

use crate::ports::{Clock, RefreshTokens, UnitOfWork, UserRepository};
use crate::{Error, Principal};

/// An admin activates, deactivates, deletes (softly) or restores a user of their tenant.
///
/// Four tiny use cases share one struct because they are the same flow (authorize,
/// load, apply one domain transition, save) and differ only in the transition.
pub struct UserLifecycle {
    pub users: Arc<dyn UserRepository>,
    pub uow: Arc<dyn UnitOfWork>,
    pub refresh_tokens: Arc<dyn RefreshTokens>,
    pub clock: Arc<dyn Clock>,
}

impl UserLifecycle {
    /// # Errors
    /// `Forbidden` for members, `NotFound`, or the domain rule that refused.
    #[tracing::instrument(skip_all, fields(user_id = %id))]
    pub async fn activate(&self, principal: &Principal, id: UserId) -> Result<User, Error> {
        self.apply(principal, id, false, |user, _, now| user.activate(now))
            .await
    }

    /// Also ends every session of the user.
    ///
    /// # Errors
    /// `Forbidden`, `NotFound`, `CannotDeactivateSelf`, `LastActiveAdmin`.
    #[tracing::instrument(skip_all, fields(user_id = %id))]
    pub async fn deactivate(&self, principal: &Principal, id: UserId) -> Result<User, Error> {
        let actor = principal.user_id;
        let user = self
            .apply(principal, id, false, |user, admins, now| {
                user.deactivate(actor, admins, now)
            })
            .await?;
        self.refresh_tokens
            .revoke_user(id, self.clock.now())
            .await?;
        Ok(user)
    }

    /// Also ends every session of the user.
    ///
    /// # Errors
    /// `Forbidden`, `NotFound`, `CannotDeleteSelf`, `LastActiveAdmin`.
    #[tracing::instrument(skip_all, fields(user_id = %id))]
    pub async fn delete(&self, principal: &Principal, id: UserId) -> Result<(), Error> {
        let actor = principal.user_id;
        self.apply(principal, id, false, |user, admins, now| {
            user.delete(actor, admins, now)
        })
        .await?;
        self.refresh_tokens
            .revoke_user(id, self.clock.now())
            .await?;
        Ok(())
    }

    /// # Errors
    /// `Forbidden`, `NotFound`, `NotDeleted` for a user that is not deleted.
    #[tracing::instrument(skip_all, fields(user_id = %id))]
    pub async fn restore(&self, principal: &Principal, id: UserId) -> Result<User, Error> {
        self.apply(principal, id, true, |user, _, now| user.restore(now))
            .await
    }

    async fn apply(
        &self,
        principal: &Principal,
        id: UserId,
        include_deleted: bool,
        transition: impl FnOnce(&mut User, ActiveAdmins, DateTime<Utc>) -> Result<(), UserError>,
    ) -> Result<User, Error> {
        principal.require_admin()?;
        let mut user = super::load(self.users.as_ref(), principal, id, include_deleted).await?;
        let admins = ActiveAdmins(self.users.count_active_admins(principal.tenant_id).await?);
        let before = user.clone();
        transition(&mut user, admins, self.clock.now())?;
        if user != before {
            let mut tx = self.uow.begin().await?;
            tx.users().save(&mut user).await?;
            tx.commit().await?;
        }
        Ok(user)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fakes::Fakes;

    #[tokio::test]
    async fn a_member_may_not_deactivate_anyone() {
        let fakes = Fakes::new();
        let admin = fakes.seed_admin("a@example.com").await;
        let member = fakes.seed_member(&admin, "m@example.com").await;
        let error = fakes
            .lifecycle()
            .deactivate(&Fakes::principal(&member), admin.id())
            .await
            .unwrap_err();
        assert!(matches!(error, Error::Forbidden));
    }

    #[tokio::test]
    async fn deactivating_a_member_ends_their_sessions() {
        let fakes = Fakes::new();
        let admin = fakes.seed_admin("a@example.com").await;
        let member = fakes.seed_member(&admin, "m@example.com").await;
        let token = fakes
            .refresh_tokens
            .issue(&member, None, fakes.clock.now())
            .await
            .unwrap();
        let user = fakes
            .lifecycle()
            .deactivate(&Fakes::principal(&admin), member.id())
            .await
            .unwrap();
        assert!(!user.is_active());
        assert!(!fakes.db.user(member.id()).is_active());
        assert!(fakes.refresh().execute(&token).await.is_err());
    }

    #[tokio::test]
    async fn an_admin_cannot_delete_themself() {
        let fakes = Fakes::new();
        let admin = fakes.seed_admin("a@example.com").await;
        let error = fakes
            .lifecycle()
            .delete(&Fakes::principal(&admin), admin.id())
            .await
            .unwrap_err();
        assert!(matches!(error, Error::Rule(UserError::CannotDeleteSelf)));
    }

    #[tokio::test]
    async fn the_last_active_admin_cannot_be_deactivated_by_another_admin_who_is_inactive() {
        // Two admins, one already inactive: the active one is the last.
        let fakes = Fakes::new();
        let admin = fakes.seed_admin("a@example.com").await;
        let second = fakes.seed_member(&admin, "b@example.com").await;
        fakes.promote(&admin, &second).await;
        fakes.deactivate(&admin, &second).await;
        let error = fakes
            .lifecycle()
            .deactivate(&Fakes::principal(&fakes.db.user(second.id())), admin.id())
            .await
            .unwrap_err();
        assert!(matches!(error, Error::Rule(UserError::LastActiveAdmin)));
    }

    #[tokio::test]
    async fn deleting_then_restoring_brings_a_user_back() {
        let fakes = Fakes::new();
        let admin = fakes.seed_admin("a@example.com").await;
        let member = fakes.seed_member(&admin, "m@example.com").await;
        let principal = Fakes::principal(&admin);
        fakes
            .lifecycle()
            .delete(&principal, member.id())
            .await
            .unwrap();
        assert!(fakes.db.user(member.id()).is_deleted());
        let restored = fakes
            .lifecycle()
            .restore(&principal, member.id())
            .await
            .unwrap();
        assert!(!restored.is_deleted());
    }

    #[tokio::test]
    async fn a_stale_save_is_a_concurrent_modification() {
        let fakes = Fakes::new();
        let admin = fakes.seed_admin("a@example.com").await;
        let member = fakes.seed_member(&admin, "m@example.com").await;
        fakes.db.write_concurrently_before_next_save();
        let error = fakes
            .lifecycle()
            .deactivate(&Fakes::principal(&admin), member.id())
            .await
            .unwrap_err();
        assert!(matches!(error, Error::ConcurrentModification));
    }
}
