use std::sync::Arc;

use domain::{Aggregate, Email};

use crate::Error;
use crate::ports::{
    AccessToken, AccessTokens, Clock, PasswordHasher, RefreshTokens, Throttle, ThrottleKey,
};
use crate::users::UserQueries;

pub struct LoginCommand {
    /// As typed: an address that does not parse is just an unknown one.
    pub email: String,
    pub password: String,
    /// The client's network address, for throttling.
    pub client: String,
}

/// What a successful sign-in or refresh hands out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenPair {
    pub access: AccessToken,
    pub refresh_token: String,
}

/// Signs in with email and password.
pub struct Login {
    pub users: Arc<dyn UserQueries>,
    pub hasher: Arc<dyn PasswordHasher>,
    pub access_tokens: Arc<dyn AccessTokens>,
    pub refresh_tokens: Arc<dyn RefreshTokens>,
    pub throttle: Arc<dyn Throttle>,
    pub clock: Arc<dyn Clock>,
}

impl Login {
    /// # Errors
    /// `InvalidCredentials` for an unknown email, a wrong password or a user who may not
    /// sign in, all alike; `Throttled` after too many failures for the email or client.
    #[tracing::instrument(skip_all)]
    pub async fn execute(&self, command: LoginCommand) -> Result<TokenPair, Error> {
        // Typed, not stored: a sign-in forgives the white space around the address.
        let email = Email::parse(command.email.trim()).ok();
        let email_key = email.as_ref().map_or_else(
            || command.email.trim().to_lowercase(),
            |e| e.as_str().to_owned(),
        );
        let keys = [
            ThrottleKey::Email(email_key),
            ThrottleKey::Client(command.client),
        ];
        let attempt = super::admit(self.throttle.as_ref(), &keys).await?;

        let user = match &email {
            Some(email) => self.users.find_by_email(email).await?,
            None => None,
        };
        // Verify even when there is no user, so the answer takes as long either way.
        let checked = self
            .hasher
            .verify(
                &command.password,
                user.as_ref().map(domain::User::password_hash),
            )
            .await;
        let matches = match checked {
            Ok(matches) => matches,
            // Not checked (the hasher is busy, or failed): the attempt does not count.
            Err(error) => {
                self.throttle
                    .give_back(&keys, &attempt)
                    .await
                    .map_err(Error::Unexpected)?;
                return Err(error.into());
            }
        };
        let Some(user) = user.filter(|user| matches && user.can_sign_in()) else {
            // The attempt stays counted: it failed.
            tracing::info!("sign-in refused");
            return Err(Error::InvalidCredentials);
        };

        self.throttle
            .give_back(&keys, &attempt)
            .await
            .map_err(Error::Unexpected)?;
        self.throttle
            .reset(&keys[0])
            .await
            .map_err(Error::Unexpected)?;
        let now = self.clock.now();
        let access = self
            .access_tokens
            .issue(&user, now)
            .map_err(Error::Unexpected)?;
        let refresh_token = self.refresh_tokens.issue(&user, None, now).await?;
        tracing::info!(user_id = %user.id(), tenant_id = %user.tenant_id(), "signed in");
        Ok(TokenPair {
            access,
            refresh_token,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::testing::Fakes;

    fn command(email: &str, password: &str) -> LoginCommand {
        LoginCommand {
            email: email.to_owned(),
            password: password.to_owned(),
            client: "10.0.0.1".to_owned(),
        }
    }

    #[tokio::test]
    async fn the_right_password_gives_an_access_and_a_refresh_token() {
        let fakes = Fakes::new();
        let admin = fakes.seed_admin("admin@example.com").await;
        let pair = fakes
            .auth()
            .login
            .execute(command(" Admin@Example.com", "password123"))
            .await
            .unwrap();
        assert_eq!(pair.access.token, Fakes::access_token(&admin));
        assert!(!pair.refresh_token.is_empty());
    }

    #[tokio::test]
    async fn unknown_email_wrong_password_and_inactive_user_fail_alike() {
        let fakes = Fakes::new();
        let admin = fakes.seed_admin("admin@example.com").await;
        let member = fakes.seed_member(&admin, "member@example.com").await;
        fakes.deactivate(&admin, &member).await;
        for (email, password) in [
            ("nobody@example.com", "password123"),
            ("not an email", "password123"),
            ("admin@example.com", "wrong password"),
            ("member@example.com", "password123"),
        ] {
            let error = fakes
                .auth()
                .login
                .execute(command(email, password))
                .await
                .unwrap_err();
            assert!(matches!(error, Error::InvalidCredentials), "{email}");
        }
        assert_eq!(
            fakes.hasher.verifications(),
            4,
            "every attempt pays for a hash"
        );
    }

    #[tokio::test]
    async fn a_throttled_email_is_refused_before_the_password_is_checked() {
        let fakes = Fakes::new();
        fakes.seed_admin("admin@example.com").await;
        let email = ThrottleKey::Email("admin@example.com".to_owned());
        fakes.throttle.block(email, Duration::from_secs(30));
        let error = fakes
            .auth()
            .login
            .execute(command(" Admin@Example.com", "password123"))
            .await
            .unwrap_err();
        assert!(matches!(
            error,
            Error::Throttled {
                retry_after_secs: 30
            }
        ));
        assert_eq!(fakes.hasher.verifications(), 0);
    }

    #[tokio::test]
    async fn a_throttled_client_is_refused_whatever_the_email() {
        let fakes = Fakes::new();
        fakes.seed_admin("admin@example.com").await;
        let client = ThrottleKey::Client("10.0.0.1".to_owned());
        fakes.throttle.block(client, Duration::from_millis(500));
        let error = fakes
            .auth()
            .login
            .execute(command("admin@example.com", "password123"))
            .await
            .unwrap_err();
        assert!(
            matches!(
                error,
                Error::Throttled {
                    retry_after_secs: 1
                }
            ),
            "a wait under a second is told as one second"
        );
    }

    #[tokio::test]
    async fn another_email_being_throttled_does_not_refuse_this_one() {
        let fakes = Fakes::new();
        fakes.seed_admin("admin@example.com").await;
        let other = ThrottleKey::Email("someone-else@example.com".to_owned());
        fakes.throttle.block(other, Duration::from_secs(30));
        fakes
            .auth()
            .login
            .execute(command("admin@example.com", "password123"))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn each_attempt_counts_against_email_and_client_before_the_hash_and_success_gives_it_back()
     {
        let fakes = Fakes::new();
        fakes.seed_admin("admin@example.com").await;
        let keys = [
            ThrottleKey::Email("admin@example.com".to_owned()),
            ThrottleKey::Client("10.0.0.1".to_owned()),
        ];
        let registered = fakes.throttle.counted().len();
        let _ = fakes
            .auth()
            .login
            .execute(command("admin@example.com", "nope nope"))
            .await;
        assert_eq!(
            fakes.throttle.counted()[registered..],
            keys,
            "the failure stays counted"
        );
        assert_eq!(
            fakes.throttle.verifications_when_counted().last(),
            Some(&0),
            "counted before the password was checked"
        );
        fakes
            .auth()
            .login
            .execute(command("admin@example.com", "password123"))
            .await
            .unwrap();
        assert_eq!(
            fakes.throttle.counted()[registered..],
            keys,
            "the success was given back"
        );
        assert_eq!(fakes.throttle.resets(), [keys[0].clone()]);
    }
}
