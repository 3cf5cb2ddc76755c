use domain::{Aggregate, Email, Role, User, Username};

use crate::auth::PasswordConfirmed;
use crate::command::{Change, Changes, Context};
use crate::{Error, Principal};

/// A partial edit; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct UserEdit {
    pub username: Option<Username>,
    pub email: Option<Email>,
    pub role: Option<Role>,
    /// A user's email is how they sign in, so a user changing their own email must
    /// have given their current password: a stolen access token alone does not take
    /// over the account.
    pub confirmed: Option<PasswordConfirmed>,
}

/// Every change a client can make to an existing user.
#[derive(Debug, Clone)]
pub enum UserChange {
    Edit(UserEdit),
    Activate,
    /// Also ends every session of the user.
    Deactivate,
    /// Soft delete; also ends every session of the user.
    Delete,
    Restore,
}

impl Change<User> for UserChange {
    fn reaches_deleted(&self) -> bool {
        matches!(self, Self::Restore)
    }

    /// Members may edit their own username and email; everything else is for admins.
    /// Anyone changing their own email gives their current password first.
    fn authorize(&self, principal: &Principal, user: &User) -> Result<(), Error> {
        let is_self = principal.user_id == user.id();
        let allowed = match self {
            Self::Edit(edit) => principal.is_admin() || (is_self && edit.role.is_none()),
            _ => principal.is_admin(),
        };
        if !allowed {
            return Err(Error::Forbidden);
        }
        match self {
            Self::Edit(edit)
                if is_self
                    && edit.email.is_some()
                    && edit.confirmed.map(PasswordConfirmed::user) != Some(user.id()) =>
            {
                Err(Error::PasswordRequired)
            }
            _ => Ok(()),
        }
    }

    /// A change that could leave the tenant without an active admin counts its admins
    /// in the transaction, under the tenant's lock. A change of role ends the user's
    /// sessions, since access tokens carry the role; so do deactivating and deleting.
    async fn apply(self, user: &mut User, cx: &mut Context<'_>) -> Result<(), Error> {
        let (actor, tenant, now) = (cx.principal.user_id, cx.principal.tenant_id, cx.now);
        let ends_sessions = match self {
            Self::Edit(edit) => {
                if let Some(username) = edit.username {
                    user.rename(actor, username, now)?;
                }
                if let Some(email) = edit.email {
                    user.change_email(actor, email, now)?;
                }
                match edit.role {
                    Some(role) if role != user.role() => {
                        let admins = cx.tx.active_admins(tenant).await?;
                        user.change_role(actor, role, admins, now)?;
                        true
                    }
                    _ => false,
                }
            }
            Self::Activate => {
                user.activate(actor, now)?;
                false
            }
            Self::Deactivate => {
                let admins = cx.tx.active_admins(tenant).await?;
                user.deactivate(actor, admins, now)?;
                true
            }
            Self::Delete => {
                let admins = cx.tx.active_admins(tenant).await?;
                user.delete(actor, admins, now)?;
                true
            }
            Self::Restore => {
                user.restore(actor, now)?;
                false
            }
        };
        if ends_sessions {
            cx.tx.end_sessions(user.tenant_id(), user.id(), now).await?;
        }
        Ok(())
    }
}

/// Changes a user through the one flow of every change (`command::Changes`): load
/// them locked, authorize, check `If-Match`, apply, save with the events, and end their
/// sessions in the same transaction when the change calls for it. Its errors beside the
/// flow's: `User(..)` for a rule the change breaks, `EmailTaken`.
pub type ChangeUser = Changes<User>;

#[cfg(test)]
mod tests {
    use domain::UserError;

    use super::*;
    use crate::Precondition;
    use crate::testing::Fakes;

    fn rename(to: &str) -> UserChange {
        UserChange::Edit(UserEdit {
            username: Some(Username::parse(to).unwrap()),
            ..UserEdit::default()
        })
    }

    fn role(role: Role) -> UserChange {
        UserChange::Edit(UserEdit {
            role: Some(role),
            ..UserEdit::default()
        })
    }

    async fn change(
        fakes: &Fakes,
        by: &User,
        user: &User,
        change: UserChange,
    ) -> Result<User, Error> {
        fakes
            .users()
            .change
            .execute(&Fakes::principal(by), user.id(), &Precondition::Any, change)
            .await
    }

    #[tokio::test]
    async fn a_member_renames_themself_and_the_rename_is_announced() {
        let fakes = Fakes::new();
        let admin = fakes.seed_admin("a@example.com").await;
        let member = fakes.seed_member(&admin, "m@example.com").await;
        let user = change(&fakes, &member, &member, rename("renamed"))
            .await
            .unwrap();
        assert_eq!(user.username().as_str(), "renamed");
        assert_eq!(user.version(), 1);
        assert_eq!(fakes.db.user(member.id()), user);
        assert_eq!(
            fakes.db.outbox_of(member.id().as_uuid()),
            [("user.registered", 0), ("user.renamed", 1)]
        );
    }

    fn email(to: &str, confirmed: Option<crate::auth::PasswordConfirmed>) -> UserChange {
        UserChange::Edit(UserEdit {
            email: Some(Email::parse(to).unwrap()),
            confirmed,
            ..UserEdit::default()
        })
    }

    #[tokio::test]
    async fn changing_ones_own_email_takes_the_current_password() {
        let fakes = Fakes::new();
        let admin = fakes.seed_admin("a@example.com").await;
        let member = fakes.seed_member(&admin, "m@example.com").await;
        let bare = change(&fakes, &member, &member, email("new@example.com", None)).await;
        assert!(matches!(bare, Err(Error::PasswordRequired)), "{bare:?}");
        assert_eq!(fakes.db.user(member.id()).email().as_str(), "m@example.com");

        // A proof for someone else (the admin's) is no proof for the member.
        let admins = fakes
            .auth()
            .confirm_password
            .execute(
                &Fakes::principal(&admin),
                "password123",
                "10.0.0.1".to_owned(),
            )
            .await
            .unwrap();
        let borrowed = change(
            &fakes,
            &member,
            &member,
            email("new@example.com", Some(admins)),
        );
        assert!(matches!(borrowed.await, Err(Error::PasswordRequired)));

        let own = fakes
            .auth()
            .confirm_password
            .execute(
                &Fakes::principal(&member),
                "password123",
                "10.0.0.1".to_owned(),
            )
            .await
            .unwrap();
        let user = change(
            &fakes,
            &member,
            &member,
            email("new@example.com", Some(own)),
        )
        .await
        .unwrap();
        assert_eq!(user.email().as_str(), "new@example.com");
    }

    #[tokio::test]
    async fn an_admin_changes_a_members_email_without_a_password() {
        let fakes = Fakes::new();
        let admin = fakes.seed_admin("a@example.com").await;
        let member = fakes.seed_member(&admin, "m@example.com").await;
        let user = change(&fakes, &admin, &member, email("new@example.com", None))
            .await
            .unwrap();
        assert_eq!(user.email().as_str(), "new@example.com");
    }

    #[tokio::test]
    async fn a_member_may_not_rename_a_colleague_or_change_their_own_role() {
        let fakes = Fakes::new();
        let admin = fakes.seed_admin("a@example.com").await;
        let member = fakes.seed_member(&admin, "m@example.com").await;
        let other = change(&fakes, &member, &admin, rename("x-x-x")).await;
        assert!(matches!(other, Err(Error::Forbidden)));
        let own_role = change(&fakes, &member, &member, role(Role::Admin)).await;
        assert!(matches!(own_role, Err(Error::Forbidden)));
        assert_eq!(fakes.db.user(member.id()).role(), Role::Member);
    }

    #[tokio::test]
    async fn a_caller_who_may_not_change_the_user_gets_403_whatever_its_if_match() {
        let fakes = Fakes::new();
        let admin = fakes.seed_admin("a@example.com").await;
        let member = fakes.seed_member(&admin, "m@example.com").await;
        let result = fakes
            .users()
            .change
            .execute(
                &Fakes::principal(&member),
                admin.id(),
                &Precondition::OneOf(vec![41]),
                UserChange::Deactivate,
            )
            .await;
        assert!(matches!(result, Err(Error::Forbidden)));
    }

    #[tokio::test]
    async fn a_stale_if_match_fails_naming_the_current_version_and_changes_nothing() {
        let fakes = Fakes::new();
        let admin = fakes.seed_admin("a@example.com").await;
        let member = fakes.seed_member(&admin, "m@example.com").await;
        change(&fakes, &admin, &member, rename("first"))
            .await
            .unwrap();
        let result = fakes
            .users()
            .change
            .execute(
                &Fakes::principal(&admin),
                member.id(),
                &Precondition::OneOf(vec![0]),
                UserChange::Deactivate,
            )
            .await;
        assert!(matches!(
            result,
            Err(Error::PreconditionFailed { current_version: 1 })
        ));
        assert!(fakes.db.user(member.id()).is_active());
    }

    #[tokio::test]
    async fn promoting_a_member_ends_their_sessions_in_the_same_transaction() {
        let fakes = Fakes::new();
        let admin = fakes.seed_admin("a@example.com").await;
        let member = fakes.seed_member(&admin, "m@example.com").await;
        let token = fakes.sign_in_token(&member).await;
        change(&fakes, &admin, &member, role(Role::Admin))
            .await
            .unwrap();
        assert_eq!(fakes.db.user(member.id()).role(), Role::Admin);
        assert!(fakes.auth().refresh.execute(&token).await.is_err());
        assert_eq!(fakes.db.outbox_names().last(), Some(&"user.role_changed"));
    }

    #[tokio::test]
    async fn deactivating_a_member_ends_their_sessions() {
        let fakes = Fakes::new();
        let admin = fakes.seed_admin("a@example.com").await;
        let member = fakes.seed_member(&admin, "m@example.com").await;
        let token = fakes.sign_in_token(&member).await;
        let user = change(&fakes, &admin, &member, UserChange::Deactivate)
            .await
            .unwrap();
        assert!(!user.is_active());
        assert!(!fakes.db.user(member.id()).is_active());
        assert!(fakes.auth().refresh.execute(&token).await.is_err());
    }

    #[tokio::test]
    async fn when_the_commit_fails_the_user_keeps_their_state_and_their_sessions() {
        let fakes = Fakes::new();
        let admin = fakes.seed_admin("a@example.com").await;
        let member = fakes.seed_member(&admin, "m@example.com").await;
        let token = fakes.sign_in_token(&member).await;
        let events_before = fakes.db.outbox_names().len();
        fakes.db.fail_next_commit();
        let result = change(&fakes, &admin, &member, UserChange::Delete).await;
        assert!(matches!(result, Err(Error::Unexpected(_))));
        assert!(!fakes.db.user(member.id()).is_deleted());
        assert_eq!(fakes.db.outbox_names().len(), events_before);
        assert!(fakes.auth().refresh.execute(&token).await.is_ok());
    }

    #[tokio::test]
    async fn an_admin_cannot_delete_themself() {
        let fakes = Fakes::new();
        let admin = fakes.seed_admin("a@example.com").await;
        let error = change(&fakes, &admin, &admin, UserChange::Delete)
            .await
            .unwrap_err();
        assert!(matches!(error, Error::User(UserError::CannotDeleteSelf)));
    }

    #[tokio::test]
    async fn the_only_admin_cannot_demote_themself() {
        let fakes = Fakes::new();
        let admin = fakes.seed_admin("a@example.com").await;
        let error = change(&fakes, &admin, &admin, role(Role::Member))
            .await
            .unwrap_err();
        assert!(matches!(error, Error::User(UserError::CannotDemoteSelf)));
    }

    #[tokio::test]
    async fn the_last_active_admin_cannot_be_deactivated_by_another_admin_who_is_inactive() {
        // Two admins, one already inactive: the active one is the last.
        let fakes = Fakes::new();
        let admin = fakes.seed_admin("a@example.com").await;
        let second = fakes.seed_member(&admin, "b@example.com").await;
        fakes.promote(&admin, &second).await;
        fakes.deactivate(&admin, &second).await;
        let error = change(
            &fakes,
            &fakes.db.user(second.id()),
            &admin,
            UserChange::Deactivate,
        )
        .await
        .unwrap_err();
        assert!(matches!(error, Error::User(UserError::LastActiveAdmin)));
    }

    #[tokio::test]
    async fn a_deleted_user_is_not_found_until_an_admin_restores_them() {
        let fakes = Fakes::new();
        let admin = fakes.seed_admin("a@example.com").await;
        let member = fakes.seed_member(&admin, "m@example.com").await;
        change(&fakes, &admin, &member, UserChange::Delete)
            .await
            .unwrap();
        assert!(fakes.db.user(member.id()).is_deleted());
        let renamed = change(&fakes, &admin, &member, rename("ghost")).await;
        assert!(matches!(renamed, Err(Error::NotFound("user"))));
        let restored = change(&fakes, &admin, &member, UserChange::Restore)
            .await
            .unwrap();
        assert!(!restored.is_deleted());
        assert_eq!(
            fakes.db.outbox_names()[fakes.db.outbox_names().len() - 2..],
            ["user.deleted", "user.restored"]
        );
    }

    #[tokio::test]
    async fn a_concurrent_write_is_a_conflict_not_an_overwrite() {
        let fakes = Fakes::new();
        let admin = fakes.seed_admin("a@example.com").await;
        let member = fakes.seed_member(&admin, "m@example.com").await;
        fakes.db.write_concurrently_before_next_save();
        let error = change(&fakes, &admin, &member, UserChange::Deactivate)
            .await
            .unwrap_err();
        assert!(matches!(error, Error::ConcurrentModification));
        assert!(fakes.db.user(member.id()).is_active());
    }

    #[tokio::test]
    async fn a_change_that_changes_nothing_keeps_the_version_and_writes_nothing() {
        let fakes = Fakes::new();
        let admin = fakes.seed_admin("a@example.com").await;
        let member = fakes.seed_member(&admin, "m@example.com").await;
        let events_before = fakes.db.outbox_names().len();
        let same = change(&fakes, &admin, &member, UserChange::Activate)
            .await
            .unwrap();
        assert_eq!(same.version(), 0);
        assert_eq!(fakes.db.outbox_names().len(), events_before);
    }
}
