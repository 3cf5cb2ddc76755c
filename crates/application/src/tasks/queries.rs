//! What task lists need from storage: a query port with the filters and orders tasks
//! are listed by.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use domain::{Aggregate, Priority, Task, TaskId, TaskStatus, TenantId, UserId};

use crate::ports::RepositoryError;

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
            TaskOrder::CreatedAt => Self::CreatedAt(state.created_at, task.id()),
            TaskOrder::DueDate => Self::DueDate(state.due_date, task.id()),
            TaskOrder::Priority => Self::Priority(state.priority, task.id()),
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

/// Lists of tasks, outside any transaction.
#[async_trait]
pub trait TaskQueries: Send + Sync {
    /// At most `limit` tasks of `tenant` that pass `filter`, in `sort` order, strictly
    /// after `after`.
    async fn list(
        &self,
        tenant: TenantId,
        filter: &TaskFilter,
        sort: TaskSort,
        after: Option<TaskCursor>,
        limit: u64,
    ) -> Result<Vec<Task>, RepositoryError>;
}

/// The in-memory database's answers, filtering as the adapter does.
#[cfg(any(test, feature = "testing"))]
mod fake {
    use std::sync::Arc;

    use async_trait::async_trait;
    use domain::{Aggregate, Task, TenantId};

    use super::{TaskCursor, TaskFilter, TaskQueries, TaskSort};
    use crate::ports::RepositoryError;
    use crate::testing::FakeDb;

    #[async_trait]
    impl TaskQueries for Arc<FakeDb> {
        /// Orders by creation time only (the other orders are the database's business and
        /// are tested against it); filters like the adapter does.
        async fn list(
            &self,
            tenant: TenantId,
            filter: &TaskFilter,
            sort: TaskSort,
            after: Option<TaskCursor>,
            limit: u64,
        ) -> Result<Vec<Task>, RepositoryError> {
            let key = |task: &Task| (task.snapshot().created_at, task.id());
            let mut tasks: Vec<Task> = self
                .all::<Task>()
                .into_iter()
                .filter(|task| task.tenant_id() == tenant)
                .filter(|task| filter.include_deleted || !task.is_deleted())
                .filter(|task| filter.status.is_none_or(|status| task.status() == status))
                .filter(|task| {
                    filter
                        .assignee
                        .is_none_or(|user| task.assignee() == Some(user))
                })
                .filter(|task| {
                    filter
                        .priority
                        .is_none_or(|p| task.snapshot().priority == p)
                })
                .filter(|task| {
                    filter
                        .due_before
                        .is_none_or(|date| task.snapshot().due_date.is_some_and(|due| due < date))
                })
                .filter(|task| {
                    filter.q.as_ref().is_none_or(|q| {
                        let title = task.snapshot().title.as_str().to_lowercase();
                        title.contains(&q.to_lowercase())
                    })
                })
                .collect();
            assert!(
                matches!(after, None | Some(TaskCursor::CreatedAt(..))),
                "the fake pages by creation time only"
            );
            tasks.sort_by_key(key);
            if sort.descending {
                tasks.reverse();
            }
            if let Some(TaskCursor::CreatedAt(at, id)) = after {
                tasks.retain(|task| {
                    (key(task) < (at, id)) == sort.descending && key(task) != (at, id)
                });
            }
            tasks.truncate(usize::try_from(limit).unwrap());
            Ok(tasks)
        }
    }
}
