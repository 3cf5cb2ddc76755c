use std::sync::Arc;

use domain::{ActiveAdmins, Email, Role, User, UserId, Username};

use crate::ports::{Clock, RefreshTokens, UnitOfWork, UserRepository};
use crate::{Error, Principal};

/// A partial change; `None` leaves a field as it is.
#[derive(Default)]
pub struct UpdateUserCommand {
    pub username: Option<Username>,
    pub email: Option<Email>,
    pub role: Option<Role>,
}

/// Changes a user's username, email or role. Members may change their own username and
/// email; everything else is for admins.
pub struct UpdateUser {
    pub users: Arc<dyn UserRepository>,
    pub uow: Arc<dyn UnitOfWork>,
    pub refresh_tokens: Arc<dyn RefreshTokens>,
    pub clock: Arc<dyn Clock>,
}

impl UpdateUser {
    /// # Errors
    /// `NotFound`; `Forbidden` for a member changing someone else or any role;
    /// `EmailTaken`; the domain rule that refused a role change.
    #[tracing::instrument(skip_all, fields(user_id = %id))]
    pub async fn execute(
        &self,
        principal: &Principal,
        id: UserId,
        command: UpdateUserCommand,
    ) -> Result<User, Error> {
        let mut user = super::load(self.users.as_ref(), principal, id, false).await?;
        if !principal.is_admin() && (id != principal.user_id || command.role.is_some()) {
            return Err(Error::Forbidden);
        }
        let now = self.clock.now();
        let before = user.clone();
        if let Some(username) = command.username {
            user.rename(username, now)?;
        }
        if let Some(email) = command.email {
            user.change_email(email, now)?;
        }
        if let Some(role) = command.role {
            let admins = ActiveAdmins(self.users.count_active_admins(principal.tenant_id).await?);
            user.change_role(principal.user_id, role, admins, now)?;
        }
        if user == before {
            return Ok(user);
        }
        let mut tx = self.uow.begin().await?;
        tx.users().save(&mut user).await?;
        tx.commit().await?;
        if user.role() != before.role() {
            // Access tokens carry the role: make the user sign in again soon.
            self.refresh_tokens.revoke_user(id, now).await?;
        }
        Ok(user)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fakes::Fakes;

    fn rename(to: &str) -> UpdateUserCommand {
        UpdateUserCommand {
            username: Some(Username::parse(to).unwrap()),
            ..UpdateUserCommand::default()
        }
    }

    #[tokio::test]
    async fn a_member_renames_themself() {
        let fakes = Fakes::new();
        let admin = fakes.seed_admin("a@example.com").await;
        let member = fakes.seed_member(&admin, "m@example.com").await;
        let user = fakes
            .update_user()
            .execute(&Fakes::principal(&member), member.id(), rename("renamed"))
            .await
            .unwrap();
        assert_eq!(user.username().as_str(), "renamed");
        assert_eq!(fakes.db.user(member.id()).username().as_str(), "renamed");
    }

    #[tokio::test]
    async fn a_member_may_not_rename_a_colleague_or_change_their_own_role() {
        let fakes = Fakes::new();
        let admin = fakes.seed_admin("a@example.com").await;
        let member = fakes.seed_member(&admin, "m@example.com").await;
        let principal = Fakes::principal(&member);
        let other = fakes
            .update_user()
            .execute(&principal, admin.id(), rename("x-x-x"))
            .await;
        assert!(matches!(other, Err(Error::Forbidden)));
        let promote = UpdateUserCommand {
            role: Some(Role::Admin),
            ..UpdateUserCommand::default()
        };
        let own_role = fakes
            .update_user()
            .execute(&principal, member.id(), promote)
            .await;
        assert!(matches!(own_role, Err(Error::Forbidden)));
        assert_eq!(fakes.db.user(member.id()).role(), Role::Member);
    }

    #[tokio::test]
    async fn an_admin_promotes_a_member_and_their_sessions_end() {
        let fakes = Fakes::new();
        let admin = fakes.seed_admin("a@example.com").await;
        let member = fakes.seed_member(&admin, "m@example.com").await;
        let token = fakes
            .refresh_tokens
            .issue(&member, None, fakes.clock.now())
            .await
            .unwrap();
        fakes.promote(&admin, &member).await;
        assert_eq!(fakes.db.user(member.id()).role(), Role::Admin);
        assert!(fakes.refresh().execute(&token).await.is_err());
    }

    #[tokio::test]
    async fn the_only_admin_cannot_demote_themself() {
        let fakes = Fakes::new();
        let admin = fakes.seed_admin("a@example.com").await;
        let demote = UpdateUserCommand {
            role: Some(Role::Member),
            ..UpdateUserCommand::default()
        };
        let error = fakes
            .update_user()
            .execute(&Fakes::principal(&admin), admin.id(), demote)
            .await
            .unwrap_err();
        assert!(matches!(
            error,
            Error::Rule(domain::UserError::CannotDemoteSelf)
        ));
    }
}
