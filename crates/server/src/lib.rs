//! Keystone's composition root. It reads settings, starts telemetry, builds the
//! adapters, hands them to the use cases, mounts the HTTP routes and starts serving.
//! It holds no business rules and answers no requests itself: everything it wires
//! lives in the layer crates.

pub mod cli;
mod metrics;
pub mod settings;
pub mod shutdown;
pub mod startup;
pub mod telemetry;
mod wiring;
pub mod worker;
