//! Signing up, signing in and out, and who the caller is.

mod authenticate;
mod login;
mod logout;
mod refresh;
mod register;

use domain::{Role, TenantId, UserId};

pub use authenticate::Authenticate;
pub use login::{Login, LoginCommand, TokenPair};
pub use logout::Logout;
pub use refresh::Refresh;
pub use register::{RegisterTenant, RegisterTenantCommand};

use crate::Error;

/// The authenticated caller, as proven by an access token. The tenant every query is
/// scoped to comes from here, never from a request body or header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Principal {
    pub user_id: UserId,
    pub tenant_id: TenantId,
    pub role: Role,
}

impl Principal {
    /// # Errors
    /// `Forbidden` unless the caller is an admin.
    pub fn require_admin(&self) -> Result<(), Error> {
        if self.role == Role::Admin {
            Ok(())
        } else {
            Err(Error::Forbidden)
        }
    }

    #[must_use]
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
}
