//! Keystone's domain: the tenants and users of the service, the value objects they are
//! made of, and the rules that keep them consistent.
//!
//! The domain does not know about HTTP, SQL, async runtimes, JSON or configuration. It
//! reads no clock and makes no random ids: callers pass `now` and ids in. Everything here
//! is synchronous and pure, so the rules are tested in microseconds.

mod id;
pub mod tenant;
pub mod user;

pub use tenant::{Tenant, TenantId, TenantName, TenantNameError};
pub use user::{
    ActiveAdmins, Email, EmailError, Password, PasswordError, PasswordHash, Role, RoleError, User,
    UserError, UserId, UserSnapshot, Username, UsernameError,
};
