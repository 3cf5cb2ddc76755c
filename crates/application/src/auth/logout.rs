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
    use crate::testing::Fakes;

    #[tokio::test]
    async fn logging_out_revokes_the_presented_token_at_the_clocks_time() {
        let fakes = Fakes::new();
        let admin = fakes.seed_admin("admin@example.com").await;
        let token = fakes.sign_in_token(&admin).await;
        fakes.auth().logout.execute(&token).await.unwrap();
        assert_eq!(fakes.db.revocations(), [(token, fakes.clock.now())]);
    }

    #[tokio::test]
    async fn when_storage_fails_logging_out_fails() {
        let fakes = Fakes::new();
        fakes.db.fail_next_write();
        let error = fakes.auth().logout.execute("some-token").await.unwrap_err();
        assert!(matches!(error, Error::Unexpected(_)));
    }
}
