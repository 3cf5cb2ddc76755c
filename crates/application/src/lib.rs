//! Keystone's application layer: one use case per operation, and the ports (traits)
//! those use cases need from the outside world.
//!
//! It owns the flow of each operation (load, authorize, call the domain, save) and the
//! error vocabulary the HTTP layer translates. The flows every aggregate shares are
//! written once (`command`, `page`, `precondition`, `idempotency`); each aggregate's
//! module (`users`, `tasks`) adds what differs: its commands, its queries, who may do
//! what. It also owns the policy of what happens after a commit (`events`: the relay,
//! the consumers, the housekeeping) and of readiness (`health`), which the server only
//! runs. It does not know how anything is stored, hashed, signed or served: no SQL, no
//! HTTP, no JWT library, no async runtime. The adapters in `infrastructure` implement
//! the ports; tests use the fakes in `testing`.

use std::sync::Arc;

pub mod auth;
mod command;
mod error;
pub mod events;
pub mod health;
mod idempotency;
mod page;
pub mod ports;
mod precondition;
pub mod reports;
pub mod tasks;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod users;

pub use auth::Principal;
pub use command::{Change, Changes, Context, Get};
pub use error::Error;
pub use idempotency::{Idempotent, Outcome};
pub use page::{MAX_PAGE_SIZE, Page, page_size};
pub use precondition::Precondition;

use ports::{Clock, IdGenerator, IdempotencyKeys, UnitOfWork};

/// The ports every aggregate's use cases share, built once by the composition root.
#[derive(Clone)]
pub struct Ports {
    pub uow: Arc<dyn UnitOfWork>,
    pub keys: Arc<dyn IdempotencyKeys>,
    pub clock: Arc<dyn Clock>,
    pub ids: Arc<dyn IdGenerator>,
}
