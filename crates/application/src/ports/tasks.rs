//! What task use cases need: a store that joins a unit of work for writes, and a
//! query port for reads.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use domain::{Priority, Task, TaskId, TaskStatus, TenantId, UserId};

use super::RepositoryError;

/// Writes of tasks inside a transaction. Saving a task also stores the events it
/// recorded, in the same transaction, and leaves it holding none.
#[async_trait]
pub trait TaskStore: Send {
    /// The task with this id in this tenant, deleted or not.
    async fn get(&mut self, tenant: TenantId, id: TaskId) -> Result<Option<Task>, RepositoryError>;

    /// Inserts a new task, its checklist and its events.
    async fn add(&mut self, task: &mut Task) -> Result<(), RepositoryError>;

    /// Saves a changed task if storage still holds `task.version()`; afterwards `task`
    /// carries the new version. `Stale` when another write came first.
    async fn save(&mut self, task: &mut Task) -> Result<(), RepositoryError>;
}

/// Filters for listing the tasks of one tenant.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskFilter {
    pub status: Option<TaskStatus>,
    pub assignee: Option<UserId>,
    pub priority: Option<Priority>,
    /// Tasks due strictly before this date (tasks without a due date never match).
    pub due_before: Option<NaiveDate>,
    /// Matches a substring of the title, case-insensitively.
    pub q: Option<String>,
    pub include_deleted: bool,
}

/// What a task list is ordered by; every order ends with the id, so it is total.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskOrder {
    CreatedAt,
    /// Tasks without a due date come last when ascending, first when descending.
    DueDate,
    Priority,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskSort {
    pub order: TaskOrder,
    pub descending: bool,
}

/// Where a page ends: the sort key and id of its last task. The next page starts
/// strictly after it, so pages never overlap or skip, whatever is inserted meanwhile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskCursor {
    CreatedAt(DateTime<Utc>, TaskId),
    DueDate(Option<NaiveDate>, TaskId),
    Priority(Priority, TaskId),
}

impl TaskCursor {
    /// The cursor just after `task` in `order`.
    #[must_use]
    pub fn after(task: &Task, order: TaskOrder) -> Self {
        let state = task.snapshot();
        match order {
            TaskOrder::CreatedAt => Self::CreatedAt(state.created_at, state.id),
            TaskOrder::DueDate => Self::DueDate(state.due_date, state.id),
            TaskOrder::Priority => Self::Priority(state.priority, state.id),
        }
    }

    #[must_use]
    pub fn order(&self) -> TaskOrder {
        match self {
            Self::CreatedAt(..) => TaskOrder::CreatedAt,
            Self::DueDate(..) => TaskOrder::DueDate,
            Self::Priority(..) => TaskOrder::Priority,
        }
    }
}

/// Reads of tasks, outside any transaction.
#[async_trait]
pub trait TaskQueries: Send + Sync {
    async fn get(&self, tenant: TenantId, id: TaskId) -> Result<Option<Task>, RepositoryError>;

    /// At most `limit` tasks in `sort` order, strictly after `after`.
    async fn list(
        &self,
        tenant: TenantId,
        filter: &TaskFilter,
        sort: TaskSort,
        after: Option<TaskCursor>,
        limit: u64,
    ) -> Result<Vec<Task>, RepositoryError>;
}
