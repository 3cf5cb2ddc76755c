use std::sync::Arc;

use domain::{Email, Password, Role, User, UserId, Username};

use crate::idempotency::{Idempotent, Outcome, run_once};
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
        run_once(
            self.keys.as_ref(),
            idempotent,
            now,
            |completion| async move {
                let hash = self
                    .hasher
                    .hash(&command.password)
                    .await
                    .map_err(Error::Unexpected)?;
                let mut user = User::register(
                    principal.user_id,
                    UserId::from_uuid(self.ids.new_id()),
                    principal.tenant_id,
                    command.email,
                    command.username,
                    hash,
                    command.role,
                    now,
                );
                let mut tx = self.uow.begin().await?;
                tx.users().add(&mut user).await?;
                if let Some(completion) = completion {
                    let response = (completion.respond)(&user);
                    tx.complete_idempotent_request(
                        completion.key,
                        completion.token,
                        &response,
                        now,
                    )
                    .await?;
                }
                tx.commit().await?;
                tracing::info!(user_id = %user.id(), "user created");
                Ok(user)
            },
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fakes::Fakes;

    fn command(email: &str) -> CreateUserCommand {
        CreateUserCommand {
            email: Email::parse(email).unwrap(),
            username: Username::parse("newbie").unwrap(),
            password: Password::parse("password123").unwrap(),
            role: Role::Member,
        }
    }

    #[tokio::test]
    async fn an_admin_creates_a_user_in_their_own_tenant() {
        let fakes = Fakes::new();
        let admin = fakes.seed_admin("a@example.com").await;
        let user = fakes
            .create_user()
            .execute(&Fakes::principal(&admin), command("new@example.com"), None)
            .await
            .unwrap()
            .created();
        assert_eq!(user.tenant_id(), admin.tenant_id());
        assert_eq!(user.role(), Role::Member);
    }

    #[tokio::test]
    async fn a_member_may_not_create_users() {
        let fakes = Fakes::new();
        let admin = fakes.seed_admin("a@example.com").await;
        let member = fakes.seed_member(&admin, "m@example.com").await;
        let error = fakes
            .create_user()
            .execute(&Fakes::principal(&member), command("new@example.com"), None)
            .await
            .unwrap_err();
        assert!(matches!(error, Error::Forbidden));
        assert_eq!(fakes.db.users().len(), 2);
    }

    #[tokio::test]
    async fn an_email_used_in_another_tenant_is_taken() {
        let fakes = Fakes::new();
        let admin = fakes.seed_admin("a@example.com").await;
        fakes.seed_admin("b@example.com").await;
        let error = fakes
            .create_user()
            .execute(&Fakes::principal(&admin), command("b@example.com"), None)
            .await
            .unwrap_err();
        assert!(matches!(error, Error::EmailTaken));
    }
}
