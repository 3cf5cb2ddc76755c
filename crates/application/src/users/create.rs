use std::sync::Arc;

use domain::{Email, Password, Role, User, UserId, Username};

use crate::ports::{Clock, IdGenerator, PasswordHasher, UserRepository};
use crate::{Error, Principal};

pub struct CreateUserCommand {
    pub email: Email,
    pub username: Username,
    pub password: Password,
    pub role: Role,
}

/// An admin adds a user to their tenant.
pub struct CreateUser {
    pub users: Arc<dyn UserRepository>,
    pub hasher: Arc<dyn PasswordHasher>,
    pub clock: Arc<dyn Clock>,
    pub ids: Arc<dyn IdGenerator>,
}

impl CreateUser {
    /// # Errors
    /// `Forbidden` for members; `EmailTaken` when the email is in use anywhere.
    #[tracing::instrument(skip_all)]
    pub async fn execute(
        &self,
        principal: &Principal,
        command: CreateUserCommand,
    ) -> Result<User, Error> {
        principal.require_admin()?;
        let hash = self
            .hasher
            .hash(&command.password)
            .await
            .map_err(Error::Unexpected)?;
        let user = User::register(
            UserId::from_uuid(self.ids.new_id()),
            principal.tenant_id,
            command.email,
            command.username,
            hash,
            command.role,
            self.clock.now(),
        );
        self.users.add(&user).await?;
        tracing::info!(user_id = %user.id(), "user created");
        Ok(user)
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
            .execute(&Fakes::principal(&admin), command("new@example.com"))
            .await
            .unwrap();
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
            .execute(&Fakes::principal(&member), command("new@example.com"))
            .await
            .unwrap_err();
        assert!(matches!(error, Error::Forbidden));
        assert_eq!(fakes.users.all().len(), 2);
    }

    #[tokio::test]
    async fn an_email_used_in_another_tenant_is_taken() {
        let fakes = Fakes::new();
        let admin = fakes.seed_admin("a@example.com").await;
        fakes.seed_admin("b@example.com").await;
        let error = fakes
            .create_user()
            .execute(&Fakes::principal(&admin), command("b@example.com"))
            .await
            .unwrap_err();
        assert!(matches!(error, Error::EmailTaken));
    }
}
