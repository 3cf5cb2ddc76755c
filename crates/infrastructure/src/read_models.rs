//! The read side on SQL: the event handlers that keep the read models (task statistics
//! per user, the audit log), the queries that serve them, and the inbox that makes each
//! handler apply an event once however often the bus delivers it.
//!
//! A handler records the event's id in `processed_events` and applies its effect in one
//! transaction, so a redelivered event finds its id and changes nothing, and a failure
//! leaves neither the record nor the effect. Requests read these tables only: the task
//! statistics are never computed from the tasks table while a request waits. Only a
//! rebuild reads the write side, in one transaction per tenant.

mod audit;
mod entity;
mod inbox;
mod task_stats;

pub use audit::SqlAuditLog;
pub use inbox::SqlInbox;
pub use task_stats::SqlTaskStats;

#[cfg(test)]
pub(crate) mod fixtures;
