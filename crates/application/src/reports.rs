//! Reports served from the read models the event handlers keep: a user's task figures
//! and the tenant's audit log.
//!
//! They are eventually consistent on purpose: requests read what the handlers have
//! applied so far and never compute from the write side, so a report costs the same
//! however many tasks a tenant has.

mod audit;
mod task_stats;

pub use audit::{AuditPage, ListAuditEntries, ListAuditQuery};
pub use task_stats::GetTaskStats;
