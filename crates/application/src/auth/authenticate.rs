use std::sync::Arc;

use crate::ports::AccessTokens;
use crate::{Error, Principal};

/// Turns a bearer token into the caller's principal.
pub struct Authenticate {
    pub tokens: Arc<dyn AccessTokens>,
}

impl Authenticate {
    /// # Errors
    /// `InvalidAccessToken` with the reason the token was refused.
    pub fn execute(&self, bearer: Option<&str>) -> Result<Principal, Error> {
        let token = bearer.ok_or(Error::InvalidAccessToken(
            crate::ports::TokenRejection::Missing,
        ))?;
        self.tokens.verify(token).map_err(Error::InvalidAccessToken)
    }
}
