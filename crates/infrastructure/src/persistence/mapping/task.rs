//! Tasks and their checklist items.

use anyhow::{Context, anyhow};
use domain::{
    ChecklistItem, ChecklistItemId, ChecklistText, Priority, Task, TaskDescription, TaskId,
    TaskSnapshot, TaskStatus, TaskTitle, TenantId, UserId,
};
use sea_orm::ActiveValue::{NotSet, Set};

use crate::persistence::entity::{task_checklist_items, tasks};

/// Every column of a new task's row.
pub(crate) fn task_row(task: &Task) -> tasks::ActiveModel {
    let task = task.snapshot();
    tasks::ActiveModel {
        id: Set(task.id.as_uuid()),
        tenant_id: Set(task.tenant_id.as_uuid()),
        creator_id: Set(task.creator.as_uuid()),
        version: Set(task.version),
        created_at: Set(task.created_at),
        ..task_changes(task)
    }
}

/// The columns a saved change may touch. Id, tenant, creator and creation time never
/// change; the version is bumped by the UPDATE itself.
pub(in crate::persistence) fn task_changes(task: &TaskSnapshot) -> tasks::ActiveModel {
    tasks::ActiveModel {
        id: NotSet,
        tenant_id: NotSet,
        title: Set(task.title.as_str().to_owned()),
        description: Set(task.description.as_str().to_owned()),
        status: Set(task.status.as_str().to_owned()),
        priority: Set(task.priority.rank()),
        due_date: Set(task.due_date),
        assignee_id: Set(task.assignee.map(UserId::as_uuid)),
        creator_id: NotSet,
        version: NotSet,
        created_at: NotSet,
        updated_at: Set(task.updated_at),
        completed_at: Set(task.completed_at),
        deleted_at: Set(task.deleted_at),
    }
}

/// The checklist's rows, positioned in checklist order. Plain models, so they can be
/// compared with the stored ones as well as inserted.
pub(crate) fn checklist_rows(task: &Task) -> Vec<task_checklist_items::Model> {
    task.checklist()
        .iter()
        .zip(0..)
        .map(|(item, position)| task_checklist_items::Model {
            id: item.id().as_uuid(),
            task_id: task.id().as_uuid(),
            tenant_id: task.tenant_id().as_uuid(),
            position,
            text: item.text().as_str().to_owned(),
            done: item.is_done(),
        })
        .collect()
}

/// A task from its row and its checklist rows, already in position order.
///
/// # Errors
/// When a stored value no longer parses; the message names the task and the column,
/// never the value.
pub(crate) fn task_from_rows(
    row: &tasks::Model,
    items: Vec<task_checklist_items::Model>,
) -> anyhow::Result<Task> {
    let id = row.id;
    let checklist = items
        .into_iter()
        .map(|item| {
            let text = ChecklistText::parse(&item.text)
                .with_context(|| format!("task {id}: stored checklist item {}", item.id))?;
            Ok(ChecklistItem::reconstitute(
                ChecklistItemId::from_uuid(item.id),
                text,
                item.done,
            ))
        })
        .collect::<anyhow::Result<_>>()?;
    Ok(Task::reconstitute(TaskSnapshot {
        id: TaskId::from_uuid(row.id),
        tenant_id: TenantId::from_uuid(row.tenant_id),
        title: TaskTitle::parse(&row.title).with_context(|| format!("task {id}: stored title"))?,
        description: TaskDescription::parse(&row.description)
            .with_context(|| format!("task {id}: stored description"))?,
        status: TaskStatus::parse(&row.status)
            .with_context(|| format!("task {id}: stored status"))?,
        priority: Priority::from_rank(row.priority)
            .ok_or_else(|| anyhow!("task {id}: stored priority is not a rank"))?,
        due_date: row.due_date,
        assignee: row.assignee_id.map(UserId::from_uuid),
        creator: UserId::from_uuid(row.creator_id),
        checklist,
        version: row.version,
        created_at: row.created_at,
        updated_at: row.updated_at,
        completed_at: row.completed_at,
        deleted_at: row.deleted_at,
    }))
}

#[cfg(test)]
mod tests {
    use chrono::{NaiveDate, TimeZone, Utc};
    use domain::{Actor, NewTask, Role};
    use sea_orm::{ActiveModelTrait, Iterable};
    use uuid::Uuid;

    use super::*;

    fn task() -> Task {
        let at = Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap();
        let actor = Actor {
            id: UserId::from_uuid(Uuid::now_v7()),
            role: Role::Admin,
        };
        let mut task = Task::create(
            TaskId::from_uuid(Uuid::now_v7()),
            TenantId::from_uuid(Uuid::now_v7()),
            actor,
            NewTask {
                title: TaskTitle::parse("Ship it").unwrap(),
                description: TaskDescription::parse("All of it").unwrap(),
                priority: Priority::Urgent,
                due_date: NaiveDate::from_ymd_opt(2026, 2, 1),
                assignee: Some(UserId::from_uuid(Uuid::now_v7())),
                checklist: ["first", "second"]
                    .map(|text| {
                        (
                            ChecklistItemId::from_uuid(Uuid::now_v7()),
                            ChecklistText::parse(text).unwrap(),
                        )
                    })
                    .into(),
            },
            at,
        )
        .unwrap();
        let second = task.checklist()[1].id();
        task.update_checklist_item(actor, second, None, Some(true), at)
            .unwrap();
        task.start(actor, at).unwrap();
        task.delete(actor, at).unwrap();
        task
    }

    fn row_of(task: &Task) -> tasks::Model {
        let snapshot = task.snapshot();
        tasks::Model {
            id: snapshot.id.as_uuid(),
            tenant_id: snapshot.tenant_id.as_uuid(),
            title: snapshot.title.as_str().to_owned(),
            description: snapshot.description.as_str().to_owned(),
            status: snapshot.status.as_str().to_owned(),
            priority: snapshot.priority.rank(),
            due_date: snapshot.due_date,
            assignee_id: snapshot.assignee.map(UserId::as_uuid),
            creator_id: snapshot.creator.as_uuid(),
            version: 4,
            created_at: snapshot.created_at,
            updated_at: snapshot.updated_at,
            completed_at: snapshot.completed_at,
            deleted_at: snapshot.deleted_at,
        }
    }

    #[test]
    fn a_task_and_its_checklist_survive_the_trip_through_rows() {
        let task = task();
        let items = checklist_rows(&task);
        assert_eq!(
            items.iter().map(|item| item.position).collect::<Vec<_>>(),
            [0, 1]
        );
        let read = task_from_rows(&row_of(&task), items).unwrap();
        assert_eq!(
            read.snapshot(),
            &TaskSnapshot {
                version: 4,
                ..task.snapshot().clone()
            }
        );
        assert!(read.events().is_empty());
    }

    #[test]
    fn a_new_tasks_row_sets_every_column() {
        let row = task_row(&task());
        for column in tasks::Column::iter() {
            assert!(row.get(column).is_set(), "{column:?}");
        }
    }

    #[test]
    fn a_saved_change_sets_every_column_but_identity_tenant_creator_version_and_creation_time() {
        let changes = task_changes(task().snapshot());
        for column in tasks::Column::iter() {
            let fixed = matches!(
                column,
                tasks::Column::Id
                    | tasks::Column::TenantId
                    | tasks::Column::CreatorId
                    | tasks::Column::Version
                    | tasks::Column::CreatedAt
            );
            assert_eq!(changes.get(column).is_set(), !fixed, "{column:?}");
        }
    }

    #[test]
    fn a_stored_row_that_breaks_a_rule_is_an_error_naming_the_column_not_the_value() {
        let task = task();
        let mut row = row_of(&task);
        row.status = "blocked".to_owned();
        let message = format!("{:#}", task_from_rows(&row, Vec::new()).unwrap_err());
        assert!(message.contains("stored status"), "{message}");
        assert!(!message.contains("blocked"), "{message}");

        let mut row = row_of(&task);
        row.priority = 9;
        let message = format!("{:#}", task_from_rows(&row, Vec::new()).unwrap_err());
        assert!(message.contains("stored priority"), "{message}");

        let mut items = checklist_rows(&task);
        items[1].text = "   ".to_owned();
        let message = format!("{:#}", task_from_rows(&row_of(&task), items).unwrap_err());
        assert!(message.contains("checklist item"), "{message}");
    }
}
