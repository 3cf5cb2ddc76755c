//! Managing the users of a tenant. Every change runs the one flow of
//! `command::change`; what this module adds is who may make which change, the rules
//! that need the count of the tenant's admins, and the sessions a change ends.

mod change;
mod create;
mod queries;
mod read;

use std::sync::Arc;

use domain::User;

pub use change::{ChangeUser, UserChange, UserEdit};
pub use create::{CreateUser, CreateUserCommand};
pub use queries::{UserFilter, UserQueries};
pub use read::{GetUser, ListUsers, ListUsersQuery};

use crate::Ports;
use crate::ports::{Lookup, PasswordHasher};

/// Every user use case, built once from the ports they share.
pub struct Users {
    pub create: CreateUser,
    pub get: GetUser,
    pub list: ListUsers,
    pub change: ChangeUser,
}

impl Users {
    #[must_use]
    pub fn new(
        ports: &Ports,
        hasher: Arc<dyn PasswordHasher>,
        lookup: Arc<dyn Lookup<User>>,
        queries: Arc<dyn UserQueries>,
    ) -> Self {
        Self {
            create: CreateUser {
                uow: ports.uow.clone(),
                keys: ports.keys.clone(),
                hasher,
                clock: ports.clock.clone(),
                ids: ports.ids.clone(),
            },
            get: GetUser::new(lookup),
            list: ListUsers { queries },
            change: ChangeUser::new(ports),
        }
    }
}
