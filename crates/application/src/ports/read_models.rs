//! Read models kept by event handlers: per-user task statistics and the audit log. Only
//! their handlers write them; requests read them and never the tasks table.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use domain::{TenantId, UserId};
use uuid::Uuid;

use super::RepositoryError;

/// One user's tasks as the read model last saw them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TaskStats {
    pub open: u64,
    pub in_progress: u64,
    pub done: u64,
    /// Not done and due before today.
    pub overdue: u64,
    /// Tasks assigned to the user, whatever their status (deleted ones excluded).
    pub assigned_total: u64,
    /// When an event last changed this user's figures; `None` if none ever did.
    pub updated_at: Option<DateTime<Utc>>,
    /// When the latest event of the tenant the read model applied occurred; `None`
    /// before the first. A watermark of what is surely missing (anything later), not a
    /// promise that everything earlier arrived: an event committed late or waiting for
    /// redelivery can still come.
    pub as_of: Option<DateTime<Utc>>,
}

#[async_trait]
pub trait TaskStatsQueries: Send + Sync {
    /// The figures of `user` with "overdue" meaning due before `today`.
    async fn stats(
        &self,
        tenant: TenantId,
        user: UserId,
        today: NaiveDate,
    ) -> Result<TaskStats, RepositoryError>;
}

/// Who did what to which aggregate, when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// The event's id: UUIDv7, so entries sort by time.
    pub id: Uuid,
    pub actor: UserId,
    /// The event's name, `task.completed`.
    pub action: String,
    /// `task` or `user`.
    pub aggregate_type: String,
    pub aggregate_id: Uuid,
    pub occurred_at: DateTime<Utc>,
}

#[async_trait]
pub trait AuditLog: Send + Sync {
    /// Newest first, strictly older than `before`, at most `limit`.
    async fn list(
        &self,
        tenant: TenantId,
        before: Option<Uuid>,
        limit: u64,
    ) -> Result<Vec<AuditEntry>, RepositoryError>;
}
