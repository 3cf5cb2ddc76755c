use std::sync::Arc;

use domain::{Task, TaskId};

use crate::ports::{TaskCursor, TaskFilter, TaskQueries, TaskSort};
use crate::{Error, Principal};

/// Reads one task of the caller's tenant.
pub struct GetTask {
    pub queries: Arc<dyn TaskQueries>,
}

impl GetTask {
    /// # Errors
    /// `NotFound` for a missing, deleted or other tenant's task.
    #[tracing::instrument(skip_all, fields(task_id = %id))]
    pub async fn execute(&self, principal: &Principal, id: TaskId) -> Result<Task, Error> {
        super::visible(self.queries.get(principal.tenant_id, id).await?, false)
    }
}

pub struct ListTasksQuery {
    pub filter: TaskFilter,
    pub sort: TaskSort,
    /// Where the previous page ended; its order must be `sort.order`.
    pub after: Option<TaskCursor>,
    /// Clamped to 1..=100.
    pub limit: u64,
}

pub struct TaskPage {
    pub items: Vec<Task>,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<TaskCursor>,
}

/// Lists the tasks of the caller's tenant, a page at a time, without OFFSET.
pub struct ListTasks {
    pub queries: Arc<dyn TaskQueries>,
}

impl ListTasks {
    /// # Errors
    /// `Forbidden` when a member asks for deleted tasks.
    #[tracing::instrument(skip_all)]
    pub async fn execute(
        &self,
        principal: &Principal,
        query: ListTasksQuery,
    ) -> Result<TaskPage, Error> {
        if query.filter.include_deleted {
            principal.require_admin()?;
        }
        let limit = query.limit.clamp(1, u64::from(crate::MAX_PAGE_SIZE));
        let mut items = self
            .queries
            .list(
                principal.tenant_id,
                &query.filter,
                query.sort,
                query.after,
                limit + 1,
            )
            .await?;
        let next = if items.len() as u64 > limit {
            items.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
            items
                .last()
                .map(|task| TaskCursor::after(task, query.sort.order))
        } else {
            None
        };
        Ok(TaskPage { items, next })
    }
}

#[cfg(test)]
mod tests {
    use domain::{Priority, TaskDescription, TaskTitle};

    use super::*;
    use crate::fakes::Fakes;
    use crate::ports::TaskOrder;
    use crate::tasks::{CreateTaskCommand, TaskChange, VersionCheck};

    fn query(after: Option<TaskCursor>, include_deleted: bool) -> ListTasksQuery {
        ListTasksQuery {
            filter: TaskFilter {
                include_deleted,
                ..TaskFilter::default()
            },
            sort: TaskSort {
                order: TaskOrder::CreatedAt,
                descending: false,
            },
            after,
            limit: 2,
        }
    }

    async fn create(fakes: &Fakes, principal: &Principal, title: &str) -> Task {
        let command = CreateTaskCommand {
            title: TaskTitle::parse(title).unwrap(),
            description: TaskDescription::default(),
            priority: Priority::Low,
            due_date: None,
            assignee: None,
            checklist: Vec::new(),
        };
        fakes
            .create_task()
            .execute(principal, command, None)
            .await
            .unwrap()
            .created()
    }

    #[tokio::test]
    async fn pages_end_with_a_cursor_until_the_last() {
        let fakes = Fakes::new();
        let admin = fakes.seed_admin("a@example.com").await;
        let principal = Fakes::principal(&admin);
        for title in ["one", "two", "three"] {
            create(&fakes, &principal, title).await;
        }
        let first = fakes
            .list_tasks()
            .execute(&principal, query(None, false))
            .await
            .unwrap();
        assert_eq!(first.items.len(), 2);
        let second = fakes
            .list_tasks()
            .execute(&principal, query(first.next, false))
            .await
            .unwrap();
        assert_eq!(second.items.len(), 1);
        assert_eq!(second.next, None);
    }

    #[tokio::test]
    async fn deleted_tasks_are_hidden_and_only_admins_may_ask_for_them() {
        let fakes = Fakes::new();
        let admin = fakes.seed_admin("a@example.com").await;
        let member = fakes.seed_member(&admin, "m@example.com").await;
        let principal = Fakes::principal(&admin);
        let task = create(&fakes, &principal, "gone").await;
        fakes
            .change_task()
            .execute(
                &principal,
                task.id(),
                &VersionCheck::Any,
                TaskChange::Delete,
            )
            .await
            .unwrap();
        let visible = fakes
            .list_tasks()
            .execute(&principal, query(None, false))
            .await
            .unwrap();
        assert!(visible.items.is_empty());
        let all = fakes
            .list_tasks()
            .execute(&principal, query(None, true))
            .await
            .unwrap();
        assert_eq!(all.items.len(), 1);
        let member_asks = fakes
            .list_tasks()
            .execute(&Fakes::principal(&member), query(None, true))
            .await;
        assert!(matches!(member_asks, Err(Error::Forbidden)));
        let read = fakes.get_task().execute(&principal, task.id()).await;
        assert!(matches!(read, Err(Error::NotFound(_))));
    }
}
