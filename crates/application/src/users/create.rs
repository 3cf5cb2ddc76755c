use std::sync::Arc;

use domain::{Email, Password, Role, User, UserId, Username};

use crate::command;
use crate::idempotency::{Idempotent, Outcome};
use crate::ports::{Clock, IdGenerator, IdempotencyKeys, PasswordHasher, UnitOfWork};
use crate::{Error, Principal};

pub struct CreateUserCommand {
    pub email: Email,
    pub username: Username,
    pub password: Password,
    pub role: Role,
}

/// An admin adds a user to their tenant, at most once per idempotency key.
pub struct CreateUser {
    pub uow: Arc<dyn UnitOfWork>,
    pub keys: Arc<dyn IdempotencyKeys>,
    pub hasher: Arc<dyn PasswordHasher>,
    pub clock: Arc<dyn Clock>,
    pub ids: Arc<dyn IdGenerator>,
}

impl CreateUser {
    /// # Errors
    /// `Forbidden` for members; `EmailTaken` when the email is in use anywhere;
    /// `IdempotencyInProgress` / `IdempotencyKeyReused`.
    #[tracing::instrument(skip_all)]
    pub async fn execute(
        &self,
        principal: &Principal,
        command: CreateUserCommand,
        idempotent: Option<&Idempotent<'_, User>>,
    ) -> Result<Outcome<User>, Error> {
        principal.require_admin()?;
        let now = self.clock.now();
        // Hashed before the transaction begins: it is slow on purpose, and a transaction
        // held open meanwhile would hold a pooled connection for nothing.
        let hash = self.hasher.hash(&command.password).await?;
        let id = UserId::from_uuid(self.ids.new_id());
        command::create(
            self.uow.as_ref(),
            self.keys.as_ref(),
            now,
            idempotent,
            async |_| {
                Ok(User::register(
                    principal.user_id,
                    id,
                    principal.tenant_id,
                    command.email,
                    command.username,
                    hash,
                    command.role,
                    now,
                ))
            },
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use domain::Aggregate;

    use super::*;
    use crate::testing::Fakes;

    fn command(email: &str) -> CreateUserCommand {
        CreateUserCommand {
            email: Email::parse(email).unwrap(),
            username: Username::parse("newbie").unwrap(),
            password: Password::parse("password123").unwrap(),
            role: Role::Member,
        }
    }

    #[tokio::test]
    async fn an_admin_creates_a_user_in_their_own_tenant_and_it_is_announced() {
        let fakes = Fakes::new();
        let admin = fakes.seed_admin("a@example.com").await;
        let user = fakes
            .users()
            .create
            .execute(&Fakes::principal(&admin), command("new@example.com"), None)
            .await
            .unwrap()
            .created();
        assert_eq!(user.tenant_id(), admin.tenant_id());
        assert_eq!(user.role(), Role::Member);
        assert_eq!(fakes.db.user(user.id()), user);
        assert_eq!(
            fakes.db.outbox_of(user.id().as_uuid()),
            [("user.registered", 0)]
        );
    }

    #[tokio::test]
    async fn when_the_commit_fails_neither_the_user_nor_its_event_exists() {
        let fakes = Fakes::new();
        let admin = fakes.seed_admin("a@example.com").await;
        let events_before = fakes.db.outbox_names().len();
        fakes.db.fail_next_commit();
        let result = fakes
            .users()
            .create
            .execute(&Fakes::principal(&admin), command("new@example.com"), None)
            .await;
        assert!(matches!(result, Err(Error::Unexpected(_))));
        assert_eq!(fakes.db.all::<User>(), [admin]);
        assert_eq!(fakes.db.outbox_names().len(), events_before);
    }

    #[tokio::test]
    async fn a_member_may_not_create_users() {
        let fakes = Fakes::new();
        let admin = fakes.seed_admin("a@example.com").await;
        let member = fakes.seed_member(&admin, "m@example.com").await;
        let error = fakes
            .users()
            .create
            .execute(&Fakes::principal(&member), command("new@example.com"), None)
            .await
            .unwrap_err();
        assert!(matches!(error, Error::Forbidden));
        assert_eq!(fakes.db.all::<User>().len(), 2);
    }

    #[tokio::test]
    async fn an_email_used_in_another_tenant_is_taken() {
        let fakes = Fakes::new();
        let admin = fakes.seed_admin("a@example.com").await;
        fakes.seed_admin("b@example.com").await;
        let error = fakes
            .users()
            .create
            .execute(&Fakes::principal(&admin), command("b@example.com"), None)
            .await
            .unwrap_err();
        assert!(matches!(error, Error::EmailTaken));
    }
}
