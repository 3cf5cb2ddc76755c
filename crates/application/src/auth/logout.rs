use std::sync::Arc;

use crate::Error;
use crate::ports::{Clock, RefreshTokens};

/// Signs out: ends the session the refresh token belongs to. Unknown tokens are
/// accepted silently, so logout is idempotent and reveals nothing.
pub struct Logout {
    pub refresh_tokens: Arc<dyn RefreshTokens>,
    pub clock: Arc<dyn Clock>,
}

impl Logout {
    /// # Errors
    /// Only when storage fails.
    #[tracing::instrument(skip_all)]
    pub async fn execute(&self, refresh_token: &str) -> Result<(), Error> {
        self.refresh_tokens
            .revoke(refresh_token, self.clock.now())
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fakes::Fakes;

    #[tokio::test]
    async fn after_logout_the_refresh_token_no_longer_works() {
        let fakes = Fakes::new();
        let admin = fakes.seed_admin("admin@example.com").await;
        let token = fakes
            .refresh_tokens
            .issue(&admin, None, fakes.clock.now())
            .await
            .unwrap();
        fakes.logout().execute(&token).await.unwrap();
        assert!(matches!(
            fakes.refresh().execute(&token).await,
            Err(Error::InvalidRefreshToken)
        ));
    }

    #[tokio::test]
    async fn logging_out_with_an_unknown_token_succeeds() {
        let fakes = Fakes::new();
        fakes.logout().execute("never-issued").await.unwrap();
    }
}
