//! Domain events to outbox rows. The JSON payload is the event's wire format: a
//! consumer reads it without the aggregate, so it carries every fact of the event. Ids
//! are strings, priorities and roles their wire names, dates ISO 8601. The envelope
//! (tenant, aggregate, type, time) is in the row's columns.

use domain::{DomainEvent, UserId};
use sea_orm::ActiveValue::Set;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::persistence::entity::outbox;

/// The outbox row of `event`, unpublished, with `id` as its key.
pub(in crate::persistence) fn outbox_row(id: Uuid, event: &DomainEvent) -> outbox::ActiveModel {
    let meta = event.meta();
    let (aggregate_type, aggregate_id) = event.aggregate();
    outbox::ActiveModel {
        id: Set(id),
        tenant_id: Set(meta.tenant_id.as_uuid()),
        aggregate_type: Set(aggregate_type.as_str().to_owned()),
        aggregate_id: Set(aggregate_id),
        event_type: Set(event.name().to_owned()),
        payload: Set(payload(event).to_string()),
        occurred_at: Set(meta.occurred_at),
        published_at: Set(None),
    }
}

fn payload(event: &DomainEvent) -> Value {
    let actor = event.meta().actor.to_string();
    let id = |user: Option<UserId>| user.map(|user| user.to_string());
    match event {
        DomainEvent::TaskCreated {
            task,
            title,
            creator,
            assignee,
            priority,
            due_date,
            ..
        } => json!({
            "actor_id": actor,
            "task_id": task.to_string(),
            "title": title,
            "creator_id": creator.to_string(),
            "assignee_id": id(*assignee),
            "priority": priority.as_str(),
            "due_date": due_date.map(|date| date.to_string()),
        }),
        DomainEvent::TaskEdited {
            task,
            title,
            priority,
            due_date,
            ..
        } => json!({
            "actor_id": actor,
            "task_id": task.to_string(),
            "title": title,
            "priority": priority.as_str(),
            "due_date": due_date.map(|date| date.to_string()),
        }),
        DomainEvent::TaskAssigned {
            task,
            assignee,
            previous,
            ..
        } => json!({
            "actor_id": actor,
            "task_id": task.to_string(),
            "assignee_id": id(*assignee),
            "previous_assignee_id": id(*previous),
        }),
        DomainEvent::TaskStarted { task, .. }
        | DomainEvent::TaskCompleted { task, .. }
        | DomainEvent::TaskReopened { task, .. }
        | DomainEvent::TaskDeleted { task, .. }
        | DomainEvent::TaskRestored { task, .. } => json!({
            "actor_id": actor,
            "task_id": task.to_string(),
        }),
        DomainEvent::UserRegistered { user, role, .. } => json!({
            "actor_id": actor,
            "user_id": user.to_string(),
            "role": role.as_str(),
        }),
        DomainEvent::UserDeactivated { user, .. } => json!({
            "actor_id": actor,
            "user_id": user.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use chrono::{NaiveDate, TimeZone, Utc};
    use domain::{EventMeta, Priority, Role, TaskId, TenantId};
    use sea_orm::{ActiveModelTrait, Iterable};

    use super::*;

    fn meta() -> EventMeta {
        EventMeta {
            tenant_id: TenantId::from_uuid(Uuid::now_v7()),
            actor: UserId::from_uuid(Uuid::now_v7()),
            occurred_at: Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap(),
        }
    }

    fn user() -> UserId {
        UserId::from_uuid(Uuid::now_v7())
    }

    #[test]
    fn a_created_task_is_told_with_every_fact_in_wire_formats() {
        let meta = meta();
        let task = TaskId::from_uuid(Uuid::now_v7());
        let creator = user();
        let event = DomainEvent::TaskCreated {
            meta,
            task,
            title: "Ship \"it\"".to_owned(),
            creator,
            assignee: None,
            priority: Priority::High,
            due_date: NaiveDate::from_ymd_opt(2026, 2, 28),
        };
        assert_eq!(
            payload(&event),
            json!({
                "actor_id": meta.actor.to_string(),
                "task_id": task.to_string(),
                "title": "Ship \"it\"",
                "creator_id": creator.to_string(),
                "assignee_id": null,
                "priority": "high",
                "due_date": "2026-02-28",
            })
        );
    }

    #[test]
    fn an_assignment_names_the_new_and_the_previous_assignee() {
        let (assignee, previous) = (user(), user());
        let event = DomainEvent::TaskAssigned {
            meta: meta(),
            task: TaskId::from_uuid(Uuid::now_v7()),
            assignee: Some(assignee),
            previous: Some(previous),
        };
        let payload = payload(&event);
        assert_eq!(payload["assignee_id"], assignee.to_string());
        assert_eq!(payload["previous_assignee_id"], previous.to_string());
    }

    #[test]
    fn a_registered_user_is_told_with_their_role() {
        let registered = user();
        let event = DomainEvent::UserRegistered {
            meta: meta(),
            user: registered,
            role: Role::Admin,
        };
        let payload = payload(&event);
        assert_eq!(payload["user_id"], registered.to_string());
        assert_eq!(payload["role"], "admin");
    }

    #[test]
    fn the_row_carries_the_envelope_and_is_unpublished() {
        let meta = meta();
        let task = TaskId::from_uuid(Uuid::now_v7());
        let id = Uuid::now_v7();
        let row = outbox_row(id, &DomainEvent::TaskCompleted { meta, task });
        for column in outbox::Column::iter() {
            assert!(row.get(column).is_set(), "{column:?}");
        }
        assert_eq!(row.id.as_ref(), &id);
        assert_eq!(row.tenant_id.as_ref(), &meta.tenant_id.as_uuid());
        assert_eq!(row.aggregate_type.as_ref(), "task");
        assert_eq!(row.aggregate_id.as_ref(), &task.as_uuid());
        assert_eq!(row.event_type.as_ref(), "task.completed");
        assert_eq!(row.occurred_at.as_ref(), &meta.occurred_at);
        assert_eq!(row.published_at.as_ref(), &None);
        let payload: Value = serde_json::from_str(row.payload.as_ref()).unwrap();
        assert_eq!(payload["task_id"], task.to_string());
        assert_eq!(payload["actor_id"], meta.actor.to_string());
    }
}
