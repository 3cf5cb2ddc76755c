use domain::{ChecklistItemId, ChecklistText, Task, TaskEdit, UserId};

use crate::command::{Change, Changes, Context};
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

impl Change<Task> for TaskChange {
    fn reaches_deleted(&self) -> bool {
        matches!(self, Self::Restore)
    }

    /// Admins restore; every other change is for admins, the creator and the assignee.
    fn authorize(&self, principal: &Principal, task: &Task) -> Result<(), Error> {
        let allowed = match self {
            Self::Restore => principal.is_admin(),
            _ => task.may_be_changed_by(principal.actor()),
        };
        if allowed {
            Ok(())
        } else {
            Err(Error::Forbidden)
        }
    }

    async fn apply(self, task: &mut Task, cx: &mut Context<'_>) -> Result<(), Error> {
        let (actor, now) = (cx.principal.actor(), cx.now);
        if let Self::Assign(Some(assignee)) = self {
            super::ensure_assignable(cx.tx, cx.principal.tenant_id, assignee).await?;
        }
        match self {
            Self::Edit(edit) => task.edit(actor, edit, now),
            Self::Start => task.start(actor, now),
            Self::Complete => task.complete(actor, now),
            Self::Reopen => task.reopen(actor, now),
            Self::Assign(assignee) => task.assign(actor, assignee, now),
            Self::AddChecklistItem(text) => {
                let item = ChecklistItemId::from_uuid(cx.ids.new_id());
                task.add_checklist_item(actor, item, text, now)
            }
            Self::UpdateChecklistItem { item, text, done } => {
                task.update_checklist_item(actor, item, text, done, now)
            }
            Self::RemoveChecklistItem(item) => task.remove_checklist_item(actor, item, now),
            Self::Delete => task.delete(actor, now),
            Self::Restore => task.restore(actor, now),
        }?;
        Ok(())
    }
}

/// Changes a task through the one flow of every change (`command::Changes`): load it
/// locked, authorize, check `If-Match`, apply, save with its events. Its errors beside
/// the flow's: `Task(..)` for a rule the change breaks, `AssigneeInvalid`.
pub type ChangeTask = Changes<Task>;

#[cfg(test)]
mod tests {
    use domain::{Aggregate, Priority, TaskDescription, TaskError, TaskStatus, TaskTitle, User};

    use super::*;
    use crate::Precondition;
    use crate::tasks::CreateTaskCommand;
    use crate::testing::Fakes;

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
            .tasks()
            .create
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
            .tasks()
            .change
            .execute(
                &Fakes::principal(&admin),
                task.id(),
                &Precondition::OneOf(vec![0]),
                TaskChange::Start,
            )
            .await
            .unwrap();
        assert_eq!(started.status(), TaskStatus::InProgress);
        assert_eq!(started.version(), 1);
        assert_eq!(fakes.db.all::<Task>()[0].version(), 1);
        assert_eq!(fakes.db.outbox_names().last(), Some(&"task.started"));
    }

    #[tokio::test]
    async fn a_stale_if_match_is_a_failed_precondition_naming_the_current_version() {
        let fakes = Fakes::new();
        let admin = fakes.seed_admin("a@example.com").await;
        let task = task_of(&fakes, &admin, &[]).await;
        let principal = Fakes::principal(&admin);
        fakes
            .tasks()
            .change
            .execute(&principal, task.id(), &Precondition::Any, TaskChange::Start)
            .await
            .unwrap();
        let result = fakes
            .tasks()
            .change
            .execute(
                &principal,
                task.id(),
                &Precondition::OneOf(vec![0]),
                TaskChange::Complete,
            )
            .await;
        assert!(matches!(
            result,
            Err(Error::PreconditionFailed { current_version: 1 })
        ));
        assert_eq!(fakes.db.all::<Task>()[0].status(), TaskStatus::InProgress);
    }

    #[tokio::test]
    async fn an_if_match_listing_the_current_version_passes_and_an_empty_one_never_does() {
        let fakes = Fakes::new();
        let admin = fakes.seed_admin("a@example.com").await;
        let task = task_of(&fakes, &admin, &[]).await;
        let principal = Fakes::principal(&admin);
        let nothing = fakes
            .tasks()
            .change
            .execute(
                &principal,
                task.id(),
                &Precondition::OneOf(vec![]),
                TaskChange::Start,
            )
            .await;
        assert!(matches!(
            nothing,
            Err(Error::PreconditionFailed { current_version: 0 })
        ));
        fakes
            .tasks()
            .change
            .execute(
                &principal,
                task.id(),
                &Precondition::OneOf(vec![7, 0]),
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
        let stale = Precondition::OneOf(vec![41]);
        let result = fakes
            .tasks()
            .change
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
            .tasks()
            .change
            .execute(
                &Fakes::principal(&admin),
                task.id(),
                &Precondition::Any,
                TaskChange::Start,
            )
            .await;
        assert!(matches!(result, Err(Error::ConcurrentModification)));
        assert_eq!(fakes.db.all::<Task>()[0].status(), TaskStatus::Todo);
    }

    #[tokio::test]
    async fn a_member_who_neither_created_nor_is_assigned_is_forbidden() {
        let fakes = Fakes::new();
        let admin = fakes.seed_admin("a@example.com").await;
        let member = fakes.seed_member(&admin, "m@example.com").await;
        let task = task_of(&fakes, &admin, &[]).await;
        let principal = Fakes::principal(&member);
        let result = fakes
            .tasks()
            .change
            .execute(&principal, task.id(), &Precondition::Any, TaskChange::Start)
            .await;
        assert!(matches!(result, Err(Error::Forbidden)));
        fakes
            .tasks()
            .change
            .execute(
                &Fakes::principal(&admin),
                task.id(),
                &Precondition::Any,
                TaskChange::Assign(Some(member.id())),
            )
            .await
            .unwrap();
        fakes
            .tasks()
            .change
            .execute(&principal, task.id(), &Precondition::Any, TaskChange::Start)
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn completing_with_an_open_checklist_item_breaks_a_rule() {
        let fakes = Fakes::new();
        let admin = fakes.seed_admin("a@example.com").await;
        let task = task_of(&fakes, &admin, &["check"]).await;
        let principal = Fakes::principal(&admin);
        let change = fakes.tasks().change;
        change
            .execute(&principal, task.id(), &Precondition::Any, TaskChange::Start)
            .await
            .unwrap();
        let result = change
            .execute(
                &principal,
                task.id(),
                &Precondition::Any,
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
            .execute(&principal, task.id(), &Precondition::Any, tick)
            .await
            .unwrap();
        let done = change
            .execute(
                &principal,
                task.id(),
                &Precondition::Any,
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
        let change = fakes.tasks().change;
        change
            .execute(
                &principal,
                task.id(),
                &Precondition::Any,
                TaskChange::Delete,
            )
            .await
            .unwrap();
        let result = change
            .execute(&principal, task.id(), &Precondition::Any, TaskChange::Start)
            .await;
        assert!(matches!(result, Err(Error::NotFound("task"))));
        let restored = change
            .execute(
                &principal,
                task.id(),
                &Precondition::Any,
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
            .tasks()
            .change
            .execute(
                &Fakes::principal(&admin),
                task.id(),
                &Precondition::Any,
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
            .tasks()
            .change
            .execute(
                &Fakes::principal(&admin),
                task.id(),
                &Precondition::Any,
                TaskChange::RemoveChecklistItem(missing),
            )
            .await;
        assert!(matches!(result, Err(Error::NotFound("checklist item"))));
    }
}
