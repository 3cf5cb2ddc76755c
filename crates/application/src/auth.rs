//! Signing up, signing in and out, and who the caller is.

mod authenticate;
mod login;
mod logout;
mod password;
mod refresh;
mod register;

use std::sync::Arc;

use domain::{Role, TenantId, User, UserId};

pub use authenticate::Authenticate;
pub use login::{Login, LoginCommand, TokenPair};
pub use logout::Logout;
pub use password::{ChangePassword, ChangePasswordCommand, ConfirmPassword, PasswordConfirmed};
pub use refresh::Refresh;
pub use register::{RegisterTenant, RegisterTenantCommand};

use crate::ports::{
    AccessTokens, Admission, Attempt, Lookup, PasswordHasher, RefreshTokens, RequestBudget,
    Throttle, ThrottleKey,
};
use crate::users::UserQueries;
use crate::{Error, Ports};

/// Every sign-up and sign-in use case, built once from the ports they share.
pub struct Auth {
    pub register: RegisterTenant,
    pub login: Login,
    pub refresh: Refresh,
    pub logout: Logout,
    pub authenticate: Authenticate,
    pub confirm_password: ConfirmPassword,
    pub change_password: ChangePassword,
}

/// The ports signing in needs beyond the shared ones.
pub struct AuthPorts {
    pub hasher: Arc<dyn PasswordHasher>,
    pub access_tokens: Arc<dyn AccessTokens>,
    pub refresh_tokens: Arc<dyn RefreshTokens>,
    pub throttle: Arc<dyn Throttle>,
    /// The per-tenant request budget; `None` when requests are not limited.
    pub budget: Option<Arc<dyn RequestBudget>>,
    pub users: Arc<dyn Lookup<User>>,
    pub user_queries: Arc<dyn UserQueries>,
}

impl Auth {
    #[must_use]
    pub fn new(ports: &Ports, auth: AuthPorts) -> Self {
        let confirm = ConfirmPassword {
            users: auth.users.clone(),
            hasher: auth.hasher.clone(),
            throttle: auth.throttle.clone(),
        };
        Self {
            register: RegisterTenant {
                uow: ports.uow.clone(),
                hasher: auth.hasher.clone(),
                throttle: auth.throttle.clone(),
                clock: ports.clock.clone(),
                ids: ports.ids.clone(),
            },
            login: Login {
                users: auth.user_queries,
                hasher: auth.hasher.clone(),
                access_tokens: auth.access_tokens.clone(),
                refresh_tokens: auth.refresh_tokens.clone(),
                throttle: auth.throttle.clone(),
                clock: ports.clock.clone(),
            },
            refresh: Refresh {
                users: auth.users.clone(),
                access_tokens: auth.access_tokens.clone(),
                refresh_tokens: auth.refresh_tokens.clone(),
                clock: ports.clock.clone(),
            },
            logout: Logout {
                refresh_tokens: auth.refresh_tokens.clone(),
                clock: ports.clock.clone(),
            },
            authenticate: Authenticate {
                tokens: auth.access_tokens.clone(),
                users: auth.users.clone(),
                budget: auth.budget,
            },
            confirm_password: confirm.clone(),
            change_password: ChangePassword {
                confirm,
                uow: ports.uow.clone(),
                access_tokens: auth.access_tokens,
                refresh_tokens: auth.refresh_tokens,
                clock: ports.clock.clone(),
            },
        }
    }
}

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

/// Reserves an attempt under every key, or refuses with how long to wait. Reserved
/// before the password is checked: concurrent guesses cannot all pass a count made
/// before any of them failed, and each costs a hash.
async fn admit(throttle: &dyn Throttle, keys: &[ThrottleKey]) -> Result<Attempt, Error> {
    match throttle.attempt(keys).await.map_err(Error::Unexpected)? {
        Admission::Admitted(attempt) => Ok(attempt),
        Admission::Wait(wait) => Err(Error::Throttled {
            retry_after_secs: wait.as_secs().max(1),
        }),
    }
}
