//! The caller's password: proving they know it (before a change that hands the
//! account to whoever holds its email), and changing it.

use std::sync::Arc;

use domain::{Aggregate, Password, User, UserId};

use super::TokenPair;
use crate::ports::{
    AccessTokens, Clock, Lookup, PasswordHasher, RefreshTokens, Store, Throttle, ThrottleKey,
    UnitOfWork,
};
use crate::{Error, Principal, command};

/// Proof that the caller gave their current password just now. Only
/// `ConfirmPassword` makes one, so a change that asks for it (a user changing their own
/// email) cannot be made without the password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordConfirmed {
    user: UserId,
}

impl PasswordConfirmed {
    /// The user whose password it was.
    #[must_use]
    pub fn user(self) -> UserId {
        self.user
    }
}

/// Whether the caller knows their current password: every check counts as a sign-in
/// attempt for their email and address, so this is no side door for guessing.
#[derive(Clone)]
pub struct ConfirmPassword {
    pub users: Arc<dyn Lookup<User>>,
    pub hasher: Arc<dyn PasswordHasher>,
    pub throttle: Arc<dyn Throttle>,
}

impl ConfirmPassword {
    /// # Errors
    /// `WrongPassword`; `Throttled` after too many failures for the email or client;
    /// `Overloaded` when too many passwords are being checked.
    #[tracing::instrument(skip_all, fields(user_id = %principal.user_id))]
    pub async fn execute(
        &self,
        principal: &Principal,
        password: &str,
        client: String,
    ) -> Result<PasswordConfirmed, Error> {
        let user = self.check(principal, password, client).await?;
        Ok(PasswordConfirmed { user: user.id() })
    }

    /// The caller as they are, once their password is confirmed.
    async fn check(
        &self,
        principal: &Principal,
        password: &str,
        client: String,
    ) -> Result<User, Error> {
        let user = self
            .users
            .get(principal.tenant_id, principal.user_id)
            .await?
            .filter(User::can_sign_in)
            .ok_or(Error::InvalidAccessToken(
                crate::ports::TokenRejection::Revoked,
            ))?;
        let keys = [
            ThrottleKey::Email(user.email().as_str().to_owned()),
            ThrottleKey::Client(client),
        ];
        let attempt = super::admit(self.throttle.as_ref(), &keys).await?;
        match self
            .hasher
            .verify(password, Some(user.password_hash()))
            .await
        {
            Ok(true) => {
                self.throttle
                    .give_back(&keys, &attempt)
                    .await
                    .map_err(Error::Unexpected)?;
                Ok(user)
            }
            Ok(false) => Err(Error::WrongPassword),
            Err(error) => {
                self.throttle
                    .give_back(&keys, &attempt)
                    .await
                    .map_err(Error::Unexpected)?;
                Err(error.into())
            }
        }
    }
}

pub struct ChangePasswordCommand {
    pub current: String,
    pub new: Password,
    /// The client's network address, for throttling.
    pub client: String,
}

/// Changes the caller's password, given the current one. Every session of the user
/// ends in the same transaction (whoever held a stolen refresh token is out), and the
/// caller gets a new pair of tokens, so they stay signed in.
pub struct ChangePassword {
    pub confirm: ConfirmPassword,
    pub uow: Arc<dyn UnitOfWork>,
    pub access_tokens: Arc<dyn AccessTokens>,
    pub refresh_tokens: Arc<dyn RefreshTokens>,
    pub clock: Arc<dyn Clock>,
}

impl ChangePassword {
    /// # Errors
    /// As `ConfirmPassword`; `ConcurrentModification` when the password changed
    /// meanwhile.
    #[tracing::instrument(skip_all, fields(user_id = %principal.user_id))]
    pub async fn execute(
        &self,
        principal: &Principal,
        command: ChangePasswordCommand,
    ) -> Result<TokenPair, Error> {
        let confirmed = self
            .confirm
            .check(principal, &command.current, command.client)
            .await?;
        // Hashed before the transaction, which then stays short.
        let hash = self.confirm.hasher.hash(&command.new).await?;
        let now = self.clock.now();
        let mut tx = self.uow.begin().await?;
        let mut user = Store::<User>::get(tx.as_mut(), principal.tenant_id, principal.user_id)
            .await?
            .filter(|user| user.password_hash() == confirmed.password_hash())
            .ok_or(Error::ConcurrentModification)?;
        user.change_password(principal.user_id, hash, now)?;
        tx.end_sessions(user.tenant_id(), user.id(), now).await?;
        command::save(tx.as_mut(), &mut user).await?;
        tx.commit().await?;
        tracing::info!("password changed; every session ended");
        let access = self
            .access_tokens
            .issue(&user, now)
            .map_err(Error::Unexpected)?;
        let refresh_token = self.refresh_tokens.issue(&user, None, now).await?;
        Ok(TokenPair {
            access,
            refresh_token,
        })
    }
}

#[cfg(test)]
mod tests {
    use domain::{Password, User};

    use super::*;
    use crate::testing::Fakes;

    fn command(current: &str, new: &str) -> ChangePasswordCommand {
        ChangePasswordCommand {
            current: current.to_owned(),
            new: Password::parse(new).unwrap(),
            client: "10.0.0.1".to_owned(),
        }
    }

    #[tokio::test]
    async fn the_right_current_password_changes_it_ends_every_session_and_signs_in_anew() {
        let fakes = Fakes::new();
        let admin = fakes.seed_admin("a@example.com").await;
        let old_session = fakes.sign_in_token(&admin).await;
        let pair = fakes
            .auth()
            .change_password
            .execute(
                &Fakes::principal(&admin),
                command("password123", "a new secret"),
            )
            .await
            .unwrap();
        let stored = fakes.db.user(admin.id());
        assert_eq!(stored.password_hash().as_str(), "hashed:a new secret");
        assert_eq!(
            fakes.db.outbox_of(admin.id().as_uuid()).last(),
            Some(&("user.password_changed", 1))
        );
        let refreshed = fakes.auth().refresh.execute(&old_session).await;
        assert!(
            matches!(refreshed, Err(Error::InvalidRefreshToken)),
            "{refreshed:?}"
        );
        fakes
            .auth()
            .refresh
            .execute(&pair.refresh_token)
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_wrong_current_password_changes_nothing_and_counts_as_a_failed_sign_in() {
        let fakes = Fakes::new();
        let admin = fakes.seed_admin("a@example.com").await;
        let before = fakes.db.all::<User>();
        let refused = fakes
            .auth()
            .change_password
            .execute(&Fakes::principal(&admin), command("not it", "a new secret"))
            .await;
        assert!(matches!(refused, Err(Error::WrongPassword)), "{refused:?}");
        assert_eq!(fakes.db.all::<User>(), before);
        let counted = fakes.throttle.counted();
        assert!(counted.contains(&ThrottleKey::Email("a@example.com".to_owned())));
        assert_eq!(fakes.hasher.hashes(), 1, "only the registration hashed");
    }

    #[tokio::test]
    async fn a_throttled_caller_is_refused_before_the_password_is_checked() {
        let fakes = Fakes::new();
        let admin = fakes.seed_admin("a@example.com").await;
        let email = ThrottleKey::Email("a@example.com".to_owned());
        fakes
            .throttle
            .block(email, std::time::Duration::from_mins(1));
        let refused = fakes
            .auth()
            .change_password
            .execute(
                &Fakes::principal(&admin),
                command("password123", "a new secret"),
            )
            .await;
        assert!(
            matches!(refused, Err(Error::Throttled { .. })),
            "{refused:?}"
        );
        assert_eq!(fakes.hasher.verifications(), 0);
    }
}
