//! Keystone's application layer: one use case per operation, and the ports (traits)
//! those use cases need from the outside world.
//!
//! It owns the flow of each operation (load, authorize, call the domain, save) and the
//! error vocabulary the HTTP layer translates. It does not know how anything is stored,
//! hashed, signed or served: no SQL, no HTTP, no JWT library, no async runtime. The
//! adapters in `infrastructure` implement the ports; tests use the fakes in `fakes`.

pub mod auth;
mod error;
#[cfg(test)]
mod fakes;
mod idempotency;
pub mod ports;
pub mod reports;
pub mod tasks;
pub mod users;

pub use auth::Principal;
pub use error::{Error, Resource};
pub use idempotency::{Idempotent, Outcome};

/// The largest page a list use case returns, whatever the caller asks for.
pub const MAX_PAGE_SIZE: u32 = 100;
