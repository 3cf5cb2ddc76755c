//! Keystone's composition root. It reads settings, starts telemetry, builds the
//! adapters, hands them to the use cases, mounts the HTTP application and starts
//! serving, and runs the application's event steps in loops (`worker`). It holds no
//! business rules and answers no requests itself: everything it wires lives in the
//! layer crates.

pub mod cli;
mod metrics;
pub mod settings;
pub mod shutdown;
pub mod startup;
pub mod telemetry;
mod wiring;
pub mod worker;
