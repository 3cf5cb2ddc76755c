//! Project automation that needs nothing beyond Cargo, run as `cargo xtask <task>`.
//!
//! - `arch`, the architecture check: it reads the dependency graph that `cargo
//!   metadata` resolves, and the rules in `arch.toml`, and reports every dependency
//!   that crosses a layer boundary. The check is a pure function ([`check`]) so the
//!   rules can be proven to bite by feeding it doctored graphs.
//! - `scaffold` ([`scaffold`]): a new aggregate in every layer, from templates, in the
//!   one pattern every aggregate follows.
//! - `rename` ([`rename`]): the fork becomes a project of its own name.
//!
//! xtask formats, builds and lints nothing itself; after a scaffold it runs the tools
//! that do.

mod arch;
pub mod metadata;
pub mod rename;
mod rules;
pub mod scaffold;

use std::fmt;

pub use arch::{Rule, Violation, check};
pub use metadata::Metadata;
pub use rules::Rules;

/// Why the check could not run at all: `cargo metadata` failed, or its output or
/// `arch.toml` could not be understood. Callers only print it, so it is a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(String);

impl Error {
    /// An error with this message, for callers that add their own failures.
    #[must_use]
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}
