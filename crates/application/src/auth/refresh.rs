use std::sync::Arc;

use crate::Error;
use crate::auth::TokenPair;
use domain::User;

use crate::ports::{AccessTokens, Clock, Lookup, RefreshOutcome, RefreshTokens};

/// Trades a refresh token for a new pair. The presented token is used up; presenting a
/// used one again means it leaked, so the whole session it belongs to ends.
pub struct Refresh {
    pub users: Arc<dyn Lookup<User>>,
    pub access_tokens: Arc<dyn AccessTokens>,
    pub refresh_tokens: Arc<dyn RefreshTokens>,
    pub clock: Arc<dyn Clock>,
}

impl Refresh {
    /// # Errors
    /// `InvalidRefreshToken` for an unknown, expired, revoked or reused token, or when
    /// the user may no longer sign in.
    #[tracing::instrument(skip_all)]
    pub async fn execute(&self, refresh_token: &str) -> Result<TokenPair, Error> {
        let now = self.clock.now();
        let (user_id, tenant_id, session) = match self
            .refresh_tokens
            .consume(refresh_token, now)
            .await?
        {
            RefreshOutcome::Consumed {
                user,
                tenant,
                session,
            } => (user, tenant, session),
            RefreshOutcome::Reused { session } => {
                tracing::warn!(session = %session.0, "refresh token reused; revoking its session");
                self.refresh_tokens.revoke_session(session, now).await?;
                return Err(Error::InvalidRefreshToken);
            }
            RefreshOutcome::Invalid => return Err(Error::InvalidRefreshToken),
        };
        let user = self
            .users
            .get(tenant_id, user_id)
            .await?
            .filter(User::can_sign_in)
            .ok_or(Error::InvalidRefreshToken)?;
        let access = self
            .access_tokens
            .issue(&user, now)
            .map_err(Error::Unexpected)?;
        let refresh_token = self.refresh_tokens.issue(&user, Some(session), now).await?;
        Ok(TokenPair {
            access,
            refresh_token,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::Fakes;

    #[tokio::test]
    async fn a_refresh_token_works_once_and_its_successor_works_next() {
        let fakes = Fakes::new();
        let admin = fakes.seed_admin("admin@example.com").await;
        let first = fakes.sign_in_token(&admin).await;
        let second = fakes.auth().refresh.execute(&first).await.unwrap();
        assert_ne!(second.refresh_token, first);
        fakes
            .auth()
            .refresh
            .execute(&second.refresh_token)
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn reusing_a_refresh_token_revokes_every_token_descended_from_it() {
        let fakes = Fakes::new();
        let admin = fakes.seed_admin("admin@example.com").await;
        let first = fakes.sign_in_token(&admin).await;
        let second = fakes.auth().refresh.execute(&first).await.unwrap();
        let replay = fakes.auth().refresh.execute(&first).await.unwrap_err();
        assert!(matches!(replay, Error::InvalidRefreshToken));
        let descendant = fakes
            .auth()
            .refresh
            .execute(&second.refresh_token)
            .await
            .unwrap_err();
        assert!(matches!(descendant, Error::InvalidRefreshToken));
    }

    #[tokio::test]
    async fn a_deactivated_user_cannot_refresh() {
        let fakes = Fakes::new();
        let admin = fakes.seed_admin("admin@example.com").await;
        let member = fakes.seed_member(&admin, "member@example.com").await;
        let token = fakes.sign_in_token(&member).await;
        fakes.deactivate(&admin, &member).await;
        let error = fakes.auth().refresh.execute(&token).await.unwrap_err();
        assert!(matches!(error, Error::InvalidRefreshToken));
    }
}
