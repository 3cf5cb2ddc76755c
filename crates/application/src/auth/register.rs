use std::sync::Arc;

use domain::{
    Aggregate, Email, Password, Role, Tenant, TenantId, TenantName, User, UserId, Username,
};

use crate::ports::{Clock, IdGenerator, PasswordHasher, UnitOfWork};
use crate::{Error, command};

pub struct RegisterTenantCommand {
    pub tenant_name: TenantName,
    pub email: Email,
    pub username: Username,
    pub password: Password,
}

/// Signs up: a new tenant whose first user is its admin.
pub struct RegisterTenant {
    pub uow: Arc<dyn UnitOfWork>,
    pub hasher: Arc<dyn PasswordHasher>,
    pub clock: Arc<dyn Clock>,
    pub ids: Arc<dyn IdGenerator>,
}

impl RegisterTenant {
    /// # Errors
    /// `EmailTaken` when the email belongs to any user of any tenant.
    #[tracing::instrument(skip_all)]
    pub async fn execute(&self, command: RegisterTenantCommand) -> Result<(Tenant, User), Error> {
        let now = self.clock.now();
        let hash = self
            .hasher
            .hash(&command.password)
            .await
            .map_err(Error::Unexpected)?;
        let tenant = Tenant::create(
            TenantId::from_uuid(self.ids.new_id()),
            command.tenant_name,
            now,
        );
        let admin_id = UserId::from_uuid(self.ids.new_id());
        let mut admin = User::register(
            admin_id,
            admin_id,
            tenant.id(),
            command.email,
            command.username,
            hash,
            Role::Admin,
            now,
        );
        let mut tx = self.uow.begin().await?;
        tx.add_tenant(&tenant).await?;
        command::add(tx.as_mut(), &mut admin).await?;
        tx.commit().await?;
        tracing::info!(tenant_id = %tenant.id(), user_id = %admin.id(), "tenant registered");
        Ok((tenant, admin))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::Fakes;

    fn command(email: &str) -> RegisterTenantCommand {
        RegisterTenantCommand {
            tenant_name: TenantName::parse("Acme").unwrap(),
            email: Email::parse(email).unwrap(),
            username: Username::parse("founder").unwrap(),
            password: Password::parse("long enough secret").unwrap(),
        }
    }

    #[tokio::test]
    async fn registering_creates_a_tenant_whose_first_user_is_an_active_admin() {
        let fakes = Fakes::new();
        let (tenant, admin) = fakes
            .auth()
            .register
            .execute(command("a@example.com"))
            .await
            .unwrap();
        assert_eq!(admin.tenant_id(), tenant.id());
        assert_eq!(admin.role(), Role::Admin);
        assert!(admin.can_sign_in());
        assert_eq!(admin.password_hash().as_str(), "hashed:long enough secret");
        assert_eq!(fakes.db.all::<User>(), std::slice::from_ref(&admin));
        assert_eq!(
            fakes.db.outbox_of(admin.id().as_uuid()),
            [("user.registered", 0)]
        );
    }

    #[tokio::test]
    async fn registering_an_email_already_in_use_is_a_conflict_and_creates_nothing() {
        let fakes = Fakes::new();
        fakes
            .auth()
            .register
            .execute(command("a@example.com"))
            .await
            .unwrap();
        let error = fakes
            .auth()
            .register
            .execute(command("A@example.com"))
            .await
            .unwrap_err();
        assert!(matches!(error, Error::EmailTaken));
        assert_eq!(fakes.db.all::<User>().len(), 1);
        assert_eq!(fakes.db.tenant_count(), 1, "the tenant was rolled back too");
    }
}
