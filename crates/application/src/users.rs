//! Managing the users of a tenant.

mod create;
mod get;
mod lifecycle;
mod list;
mod update;

use domain::{User, UserId};

pub use create::{CreateUser, CreateUserCommand};
pub use get::GetUser;
pub use lifecycle::UserLifecycle;
pub use list::{ListUsers, ListUsersQuery, UserPage};
pub use update::{UpdateUser, UpdateUserCommand};

use crate::ports::UserRepository;
use crate::{Error, Principal, Resource};

/// The user `id` of the caller's tenant. Deleted users count as missing unless
/// `include_deleted`: a 404 either way, so nothing leaks across tenants.
async fn load(
    users: &dyn UserRepository,
    principal: &Principal,
    id: UserId,
    include_deleted: bool,
) -> Result<User, Error> {
    users
        .get(principal.tenant_id, id)
        .await?
        .filter(|user| include_deleted || !user.is_deleted())
        .ok_or(Error::NotFound(Resource::User))
}
