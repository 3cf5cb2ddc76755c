use std::sync::Arc;

use domain::Task;

use super::{TaskCursor, TaskFilter, TaskQueries, TaskSort};
use crate::command::Get;
use crate::page::{Page, page_size};
use crate::{Error, Principal};

/// Reads one task of the caller's tenant.
pub type GetTask = Get<Task>;

pub struct ListTasksQuery {
    pub filter: TaskFilter,
    pub sort: TaskSort,
    /// Where the previous page ended; its order must be `sort.order`.
    pub after: Option<TaskCursor>,
    /// Clamped to 1..=100.
    pub limit: u64,
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
    ) -> Result<Page<Task, TaskCursor>, Error> {
        if query.filter.include_deleted {
            principal.require_admin()?;
        }
        let size = page_size(query.limit);
        let items = self
            .queries
            .list(
                principal.tenant_id,
                &query.filter,
                query.sort,
                query.after,
                size + 1,
            )
            .await?;
        let order = query.sort.order;
        Ok(Page::of(items, size, |task| TaskCursor::after(task, order)))
    }
}

#[cfg(test)]
mod tests {
    use domain::{Aggregate, Priority, TaskDescription, TaskTitle};

    use super::*;
    use crate::Precondition;
    use crate::tasks::{CreateTaskCommand, TaskChange, TaskOrder};
    use crate::testing::Fakes;

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
            .tasks()
            .create
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
            .tasks()
            .list
            .execute(&principal, query(None, false))
            .await
            .unwrap();
        assert_eq!(first.items.len(), 2);
        let second = fakes
            .tasks()
            .list
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
            .tasks()
            .change
            .execute(
                &principal,
                task.id(),
                &Precondition::Any,
                TaskChange::Delete,
            )
            .await
            .unwrap();
        let visible = fakes
            .tasks()
            .list
            .execute(&principal, query(None, false))
            .await
            .unwrap();
        assert!(visible.items.is_empty());
        let all = fakes
            .tasks()
            .list
            .execute(&principal, query(None, true))
            .await
            .unwrap();
        assert_eq!(all.items.len(), 1);
        let member_asks = fakes
            .tasks()
            .list
            .execute(&Fakes::principal(&member), query(None, true))
            .await;
        assert!(matches!(member_asks, Err(Error::Forbidden)));
        let read = fakes
            .tasks()
            .get
            .execute(&principal, task.id(), false)
            .await;
        assert!(matches!(read, Err(Error::NotFound("task"))));
        let deleted = fakes.tasks().get.execute(&principal, task.id(), true).await;
        assert!(deleted.unwrap().is_deleted());
        let member_reads = fakes
            .tasks()
            .get
            .execute(&Fakes::principal(&member), task.id(), true)
            .await;
        assert!(matches!(member_reads, Err(Error::Forbidden)));
    }
}
