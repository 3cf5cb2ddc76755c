use std::sync::Arc;

use domain::{
    Aggregate, Email, Password, Role, Tenant, TenantId, TenantName, User, UserId, Username,
};

use crate::ports::{Clock, IdGenerator, PasswordHasher, Throttle, ThrottleKey, UnitOfWork};
use crate::{Error, command};

pub struct RegisterTenantCommand {
    pub tenant_name: TenantName,
    pub email: Email,
    pub username: Username,
    pub password: Password,
    /// The client's network address, for throttling.
    pub client: String,
}

/// Signs up: a new tenant whose first user is its admin.
pub struct RegisterTenant {
    pub uow: Arc<dyn UnitOfWork>,
    pub hasher: Arc<dyn PasswordHasher>,
    pub throttle: Arc<dyn Throttle>,
    pub clock: Arc<dyn Clock>,
    pub ids: Arc<dyn IdGenerator>,
}

impl RegisterTenant {
    /// # Errors
    /// `Throttled` after too many registrations from the client; `EmailTaken` when the
    /// email belongs to any user of any tenant.
    #[tracing::instrument(skip_all)]
    pub async fn execute(&self, command: RegisterTenantCommand) -> Result<(Tenant, User), Error> {
        // Every registration counts, kept or not: signing up costs a hash, and tells
        // whether an email is taken.
        let key = [ThrottleKey::Registration(command.client)];
        super::admit(self.throttle.as_ref(), &key).await?;
        let now = self.clock.now();
        let hash = self.hasher.hash(&command.password).await?;
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
            client: "10.0.0.1".to_owned(),
        }
    }

    #[tokio::test]
    async fn a_client_that_registered_too_often_is_refused_before_hashing() {
        let fakes = Fakes::new();
        let key = ThrottleKey::Registration("10.0.0.1".to_owned());
        fakes
            .throttle
            .block(key.clone(), std::time::Duration::from_secs(90));
        let refused = fakes
            .auth()
            .register
            .execute(command("a@example.com"))
            .await;
        assert!(
            matches!(
                refused,
                Err(Error::Throttled {
                    retry_after_secs: 90
                })
            ),
            "{refused:?}"
        );
        assert_eq!(fakes.hasher.hashes(), 0);
        assert!(fakes.db.all::<User>().is_empty());
    }

    #[tokio::test]
    async fn every_registration_counts_against_its_client() {
        let fakes = Fakes::new();
        fakes
            .auth()
            .register
            .execute(command("a@example.com"))
            .await
            .unwrap();
        let _taken = fakes
            .auth()
            .register
            .execute(command("a@example.com"))
            .await;
        let key = ThrottleKey::Registration("10.0.0.1".to_owned());
        assert_eq!(fakes.throttle.counted(), [key.clone(), key]);
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
