use std::sync::Arc;

use domain::{ChecklistItemId, ChecklistText, Task, TaskEdit, TaskId, UserId};

use crate::ports::{Clock, IdGenerator, UnitOfWork};
use crate::{Error, Principal};

/// Every change a client can make to an existing task.
#[derive(Debug, Clone)]
pub enum TaskChange {
    Edit(TaskEdit),
    Start,
    Complete,
    Reopen,
    /// `None` unassigns.
    Assign(Option<UserId>),
    AddChecklistItem(ChecklistText),
    UpdateChecklistItem {
        item: ChecklistItemId,
        text: Option<ChecklistText>,
        done: Option<bool>,
    },
    RemoveChecklistItem(ChecklistItemId),
    Delete,
    Restore,
}

/// The versions a change may apply to: what the client's `If-Match` said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VersionCheck {
    /// No precondition: apply to whatever version is current (a concurrent write still
    /// makes the save fail rather than overwrite).
    Any,
    /// Apply only if the current version is one of these; an empty list matches nothing.
    OneOf(Vec<i64>),
}

/// Changes a task: one flow for every change, so each one gets the same guarantees.
/// It loads the task in a transaction, checks the version the client last saw
/// (`If-Match`), lets the aggregate apply the change, and saves the new state with
/// the recorded events. A concurrent write makes the save fail, never overwrite.
pub struct ChangeTask {
    pub uow: Arc<dyn UnitOfWork>,
    pub clock: Arc<dyn Clock>,
    pub ids: Arc<dyn IdGenerator>,
}

impl ChangeTask {
    /// # Errors
    /// `NotFound` (also for a deleted task, except to restore it); `PreconditionFailed`
    /// when the current version fails `check`; `Forbidden`; `Task(..)` for a
    /// rule the change breaks; `AssigneeInvalid`; `ConcurrentModification`.
    #[tracing::instrument(skip_all, fields(task_id = %id))]
    pub async fn execute(
        &self,
        principal: &Principal,
        id: TaskId,
        check: &VersionCheck,
        change: TaskChange,
    ) -> Result<Task, Error> {
        let actor = principal.actor();
        let mut tx = self.uow.begin().await?;
        let stored = tx.tasks().get(principal.tenant_id, id).await?;
        let restoring = matches!(change, TaskChange::Restore);
        let mut task = super::visible(stored, restoring)?;
        // Who may act comes before preconditions: a caller who may not change the task
        // gets 403 whatever its If-Match says (RFC 9110 §13.2.1).
        let allowed = if restoring {
            principal.is_admin()
        } else {
            task.may_be_changed_by(actor)
        };
        if !allowed {
            return Err(Error::Forbidden);
        }
        if let VersionCheck::OneOf(versions) = check
            && !versions.contains(&task.version())
        {
            return Err(Error::PreconditionFailed {
                current_version: task.version(),
            });
        }
        if let TaskChange::Assign(Some(assignee)) = change {
            super::ensure_assignable(tx.as_mut(), principal, assignee).await?;
        }
        // Read after the task's row is locked, so one task's events are stamped in the
        // order its changes commit.
        let now = self.clock.now();
        let before = task.clone();
        match change {
            TaskChange::Edit(edit) => task.edit(actor, edit, now),
            TaskChange::Start => task.start(actor, now),
            TaskChange::Complete => task.complete(actor, now),
            TaskChange::Reopen => task.reopen(actor, now),
            TaskChange::Assign(assignee) => task.assign(actor, assignee, now),
            TaskChange::AddChecklistItem(text) => {
                let item = ChecklistItemId::from_uuid(self.ids.new_id());
                task.add_checklist_item(actor, item, text, now)
            }
            TaskChange::UpdateChecklistItem { item, text, done } => {
                task.update_checklist_item(actor, item, text, done, now)
            }
            TaskChange::RemoveChecklistItem(item) => task.remove_checklist_item(actor, item, now),
            TaskChange::Delete => task.delete(actor, now),
            TaskChange::Restore => task.restore(actor, now),
        }?;
        if task == before {
            return Ok(task);
        }
        tx.tasks().save(&mut task).await?;
        tx.commit().await?;
        Ok(task)
    }
}

#[cfg(test)]
mod tests {
    use domain::{Priority, TaskDescription, TaskError, TaskStatus, TaskTitle, User};

    use super::*;
    use crate::fakes::Fakes;
    use crate::tasks::CreateTaskCommand;

    async fn task_of(fakes: &Fakes, creator: &User, checklist: &[&str]) -> Task {
        let command = CreateTaskCommand {
            title: TaskTitle::parse("Ship").unwrap(),
            description: TaskDescription::default(),
            priority: Priority::Medium,
            due_date: None,
            assignee: None,
            checklist: checklist
                .iter()
                .map(|text| ChecklistText::parse(text).unwrap())
                .collect(),
        };
        fakes
            .create_task()
            .execute(&Fakes::principal(creator), command, None)
            .await
            .unwrap()
            .created()
    }

    #[tokio::test]
    async fn a_change_is_saved_with_a_new_version_and_its_event() {
        let fakes = Fakes::new();
        let admin = fakes.seed_admin("a@example.com").await;
        let task = task_of(&fakes, &admin, &[]).await;
        let started = fakes
            .change_task()
            .execute(
                &Fakes::principal(&admin),
                task.id(),
                &VersionCheck::OneOf(vec![0]),
                TaskChange::Start,
            )
            .await
            .unwrap();
        assert_eq!(started.status(), TaskStatus::InProgress);
        assert_eq!(started.version(), 1);
        assert_eq!(fakes.db.tasks()[0].version(), 1);
        assert_eq!(fakes.db.outbox_names().last(), Some(&"task.started"));
    }

    #[tokio::test]
    async fn a_stale_if_match_is_a_failed_precondition_naming_the_current_version() {
        let fakes = Fakes::new();
        let admin = fakes.seed_admin("a@example.com").await;
        let task = task_of(&fakes, &admin, &[]).await;
        let principal = Fakes::principal(&admin);
        fakes
            .change_task()
            .execute(&principal, task.id(), &VersionCheck::Any, TaskChange::Start)
            .await
            .unwrap();
        let result = fakes
            .change_task()
            .execute(
                &principal,
                task.id(),
                &VersionCheck::OneOf(vec![0]),
                TaskChange::Complete,
            )
            .await;
        assert!(matches!(
            result,
            Err(Error::PreconditionFailed { current_version: 1 })
        ));
        assert_eq!(fakes.db.tasks()[0].status(), TaskStatus::InProgress);
    }

    #[tokio::test]
    async fn an_if_match_listing_the_current_version_passes_and_an_empty_one_never_does() {
        let fakes = Fakes::new();
        let admin = fakes.seed_admin("a@example.com").await;
        let task = task_of(&fakes, &admin, &[]).await;
        let principal = Fakes::principal(&admin);
        let nothing = fakes
            .change_task()
            .execute(
                &principal,
                task.id(),
                &VersionCheck::OneOf(vec![]),
                TaskChange::Start,
            )
            .await;
        assert!(matches!(
            nothing,
            Err(Error::PreconditionFailed { current_version: 0 })
        ));
        fakes
            .change_task()
            .execute(
                &principal,
                task.id(),
                &VersionCheck::OneOf(vec![7, 0]),
                TaskChange::Start,
            )
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_caller_who_may_not_change_the_task_gets_403_whatever_its_if_match() {
        let fakes = Fakes::new();
        let admin = fakes.seed_admin("a@example.com").await;
        let member = fakes.seed_member(&admin, "m@example.com").await;
        let task = task_of(&fakes, &admin, &[]).await;
        let stale = VersionCheck::OneOf(vec![41]);
        let result = fakes
            .change_task()
            .execute(
                &Fakes::principal(&member),
                task.id(),
                &stale,
                TaskChange::Start,
            )
            .await;
        assert!(matches!(result, Err(Error::Forbidden)));
    }

    #[tokio::test]
    async fn a_concurrent_write_is_a_conflict_not_an_overwrite() {
        let fakes = Fakes::new();
        let admin = fakes.seed_admin("a@example.com").await;
        let task = task_of(&fakes, &admin, &[]).await;
        fakes.db.write_concurrently_before_next_save();
        let result = fakes
            .change_task()
            .execute(
                &Fakes::principal(&admin),
                task.id(),
                &VersionCheck::Any,
                TaskChange::Start,
            )
            .await;
        assert!(matches!(result, Err(Error::ConcurrentModification)));
        assert_eq!(fakes.db.tasks()[0].status(), TaskStatus::Todo);
    }

    #[tokio::test]
    async fn a_member_who_neither_created_nor_is_assigned_is_forbidden() {
        let fakes = Fakes::new();
        let admin = fakes.seed_admin("a@example.com").await;
        let member = fakes.seed_member(&admin, "m@example.com").await;
        let task = task_of(&fakes, &admin, &[]).await;
        let principal = Fakes::principal(&member);
        let result = fakes
            .change_task()
            .execute(&principal, task.id(), &VersionCheck::Any, TaskChange::Start)
            .await;
        assert!(matches!(result, Err(Error::Forbidden)));
        fakes
            .change_task()
            .execute(
                &Fakes::principal(&admin),
                task.id(),
                &VersionCheck::Any,
                TaskChange::Assign(Some(member.id())),
            )
            .await
            .unwrap();
        fakes
            .change_task()
            .execute(&principal, task.id(), &VersionCheck::Any, TaskChange::Start)
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn completing_with_an_open_checklist_item_breaks_a_rule() {
        let fakes = Fakes::new();
        let admin = fakes.seed_admin("a@example.com").await;
        let task = task_of(&fakes, &admin, &["check"]).await;
        let principal = Fakes::principal(&admin);
        let change = fakes.change_task();
        change
            .execute(&principal, task.id(), &VersionCheck::Any, TaskChange::Start)
            .await
            .unwrap();
        let result = change
            .execute(
                &principal,
                task.id(),
                &VersionCheck::Any,
                TaskChange::Complete,
            )
            .await;
        assert!(matches!(
            result,
            Err(Error::Task(TaskError::ChecklistIncomplete))
        ));
        let item = task.checklist()[0].id();
        let tick = TaskChange::UpdateChecklistItem {
            item,
            text: None,
            done: Some(true),
        };
        change
            .execute(&principal, task.id(), &VersionCheck::Any, tick)
            .await
            .unwrap();
        let done = change
            .execute(
                &principal,
                task.id(),
                &VersionCheck::Any,
                TaskChange::Complete,
            )
            .await
            .unwrap();
        assert_eq!(done.status(), TaskStatus::Done);
    }

    #[tokio::test]
    async fn a_deleted_task_is_not_found_until_an_admin_restores_it() {
        let fakes = Fakes::new();
        let admin = fakes.seed_admin("a@example.com").await;
        let task = task_of(&fakes, &admin, &[]).await;
        let principal = Fakes::principal(&admin);
        let change = fakes.change_task();
        change
            .execute(
                &principal,
                task.id(),
                &VersionCheck::Any,
                TaskChange::Delete,
            )
            .await
            .unwrap();
        let result = change
            .execute(&principal, task.id(), &VersionCheck::Any, TaskChange::Start)
            .await;
        assert!(matches!(
            result,
            Err(Error::NotFound(crate::Resource::Task))
        ));
        let restored = change
            .execute(
                &principal,
                task.id(),
                &VersionCheck::Any,
                TaskChange::Restore,
            )
            .await
            .unwrap();
        assert!(!restored.is_deleted());
    }

    #[tokio::test]
    async fn a_change_that_changes_nothing_keeps_the_version() {
        let fakes = Fakes::new();
        let admin = fakes.seed_admin("a@example.com").await;
        let task = task_of(&fakes, &admin, &[]).await;
        let same = fakes
            .change_task()
            .execute(
                &Fakes::principal(&admin),
                task.id(),
                &VersionCheck::Any,
                TaskChange::Assign(None),
            )
            .await
            .unwrap();
        assert_eq!(same.version(), 0);
    }

    #[tokio::test]
    async fn an_unknown_checklist_item_is_not_found() {
        let fakes = Fakes::new();
        let admin = fakes.seed_admin("a@example.com").await;
        let task = task_of(&fakes, &admin, &[]).await;
        let missing = ChecklistItemId::from_uuid(uuid::Uuid::now_v7());
        let result = fakes
            .change_task()
            .execute(
                &Fakes::principal(&admin),
                task.id(),
                &VersionCheck::Any,
                TaskChange::RemoveChecklistItem(missing),
            )
            .await;
        assert!(matches!(
            result,
            Err(Error::NotFound(crate::Resource::ChecklistItem))
        ));
    }
}
