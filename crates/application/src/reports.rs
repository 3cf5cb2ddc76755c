//! Reports served from the read models the event handlers keep: a user's task figures
//! and the tenant's audit log.
//!
//! They are eventually consistent on purpose: requests read what the handlers have
//! applied so far and never compute from the write side, so a report costs the same
//! however many tasks a tenant has.

mod audit;
mod task_stats;

use std::sync::Arc;

use domain::User;

pub use audit::{ListAuditEntries, ListAuditQuery};
pub use task_stats::GetTaskStats;

use crate::ports::{AuditLog, Clock, Lookup, TaskStatsQueries};

/// Every report use case.
pub struct Reports {
    pub task_stats: GetTaskStats,
    pub audit: ListAuditEntries,
}

impl Reports {
    #[must_use]
    pub fn new(
        clock: Arc<dyn Clock>,
        users: Arc<dyn Lookup<User>>,
        stats: Arc<dyn TaskStatsQueries>,
        audit: Arc<dyn AuditLog>,
    ) -> Self {
        Self {
            task_stats: GetTaskStats {
                users,
                stats,
                clock,
            },
            audit: ListAuditEntries { audit },
        }
    }
}
