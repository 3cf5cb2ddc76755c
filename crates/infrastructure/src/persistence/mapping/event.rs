//! Domain events to outbox rows and back. The JSON payload is the event's wire format: a
//! consumer reads it without the aggregate, so it carries every fact of the event. Ids
//! are strings, priorities and roles their wire names, dates ISO 8601. The envelope
//! (tenant, aggregate, type, time, version) is in the row's columns, or in the bus
//! message around the payload (`crate::events`).
//!
//! Decoding is the inverse of encoding for every event (`decode(encode(e)) == e`), and
//! strict: an unknown type, a missing fact or one that breaks a domain rule is an
//! error, never a guess. Facts it does not know are ignored, so a payload may grow.

use anyhow::{Context, anyhow, ensure};
use application::ports::EventEnvelope;
use chrono::{DateTime, NaiveDate, Utc};
use domain::{DomainEvent, EventMeta, Priority, Role, TaskId, TenantId, UserId};
use sea_orm::ActiveValue::Set;
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::persistence::entity::outbox;

/// The outbox row of `event`, unpublished, with `id` as its key. `aggregate_version` is
/// the version the aggregate reached with the change that recorded the event.
pub(in crate::persistence) fn outbox_row(
    id: Uuid,
    event: &DomainEvent,
    aggregate_version: i64,
) -> outbox::ActiveModel {
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
        aggregate_version: Set(aggregate_version),
    }
}

/// The event a stored row holds, in its envelope.
///
/// # Errors
/// When the row does not hold an event this version knows (see `decode`).
pub(in crate::persistence) fn envelope_from_row(
    row: &outbox::Model,
) -> anyhow::Result<EventEnvelope> {
    let payload: Value = serde_json::from_str(&row.payload).context("the payload is not JSON")?;
    let event = decode(
        &row.event_type,
        TenantId::from_uuid(row.tenant_id),
        row.aggregate_id,
        row.occurred_at,
        payload,
    )?;
    Ok(EventEnvelope {
        id: row.id,
        aggregate_version: row.aggregate_version,
        event,
    })
}

/// The JSON payload of `event`: every fact but those of the envelope.
pub(crate) fn payload(event: &DomainEvent) -> Value {
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

/// The facts a payload may carry; which of them an event needs depends on its type.
#[derive(Deserialize)]
struct Facts {
    actor_id: Uuid,
    task_id: Option<Uuid>,
    user_id: Option<Uuid>,
    title: Option<String>,
    creator_id: Option<Uuid>,
    assignee_id: Option<Uuid>,
    previous_assignee_id: Option<Uuid>,
    priority: Option<String>,
    due_date: Option<NaiveDate>,
    role: Option<String>,
}

/// A fact the event's type requires.
fn required<T>(fact: Option<T>, name: &str) -> anyhow::Result<T> {
    fact.ok_or_else(|| anyhow!("the payload has no {name}"))
}

/// The event of type `event_type` that happened to the aggregate `aggregate_id` of
/// `tenant` at `occurred_at`, with the facts of `payload`: the inverse of `payload`.
///
/// # Errors
/// When the type is unknown, a fact it requires is missing or invalid, or the payload
/// names another aggregate than the envelope.
pub(crate) fn decode(
    event_type: &str,
    tenant: TenantId,
    aggregate_id: Uuid,
    occurred_at: DateTime<Utc>,
    payload: Value,
) -> anyhow::Result<DomainEvent> {
    let facts: Facts = serde_json::from_value(payload)
        .with_context(|| format!("the payload of a {event_type} event is malformed"))?;
    let meta = EventMeta {
        tenant_id: tenant,
        actor: UserId::from_uuid(facts.actor_id),
        occurred_at,
    };
    let (aggregate, key) = match event_type.split_once('.') {
        Some(("task", _)) => (facts.task_id, "task_id"),
        Some(("user", _)) => (facts.user_id, "user_id"),
        _ => return Err(anyhow!("unknown event type {event_type:?}")),
    };
    ensure!(
        required(aggregate, key)? == aggregate_id,
        "the payload of a {event_type} event names another aggregate than its envelope"
    );
    let task = TaskId::from_uuid(aggregate_id);
    let user = UserId::from_uuid(aggregate_id);
    let priority = |raw: Option<String>| -> anyhow::Result<Priority> {
        let raw = required(raw, "priority")?;
        Priority::parse(&raw).map_err(|_| anyhow!("unknown priority {raw:?}"))
    };
    let event = match event_type {
        "task.created" => DomainEvent::TaskCreated {
            meta,
            task,
            title: required(facts.title, "title")?,
            creator: UserId::from_uuid(required(facts.creator_id, "creator_id")?),
            assignee: facts.assignee_id.map(UserId::from_uuid),
            priority: priority(facts.priority)?,
            due_date: facts.due_date,
        },
        "task.edited" => DomainEvent::TaskEdited {
            meta,
            task,
            title: required(facts.title, "title")?,
            priority: priority(facts.priority)?,
            due_date: facts.due_date,
        },
        "task.assigned" => DomainEvent::TaskAssigned {
            meta,
            task,
            assignee: facts.assignee_id.map(UserId::from_uuid),
            previous: facts.previous_assignee_id.map(UserId::from_uuid),
        },
        "task.started" => DomainEvent::TaskStarted { meta, task },
        "task.completed" => DomainEvent::TaskCompleted { meta, task },
        "task.reopened" => DomainEvent::TaskReopened { meta, task },
        "task.deleted" => DomainEvent::TaskDeleted { meta, task },
        "task.restored" => DomainEvent::TaskRestored { meta, task },
        "user.registered" => {
            let raw = required(facts.role, "role")?;
            let role = Role::parse(&raw).map_err(|_| anyhow!("unknown role {raw:?}"))?;
            DomainEvent::UserRegistered { meta, user, role }
        }
        "user.deactivated" => DomainEvent::UserDeactivated { meta, user },
        _ => return Err(anyhow!("unknown event type {event_type:?}")),
    };
    Ok(event)
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
        let row = outbox_row(id, &DomainEvent::TaskCompleted { meta, task }, 7);
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
        assert_eq!(row.aggregate_version.as_ref(), &7);
        let payload: Value = serde_json::from_str(row.payload.as_ref()).unwrap();
        assert_eq!(payload["task_id"], task.to_string());
        assert_eq!(payload["actor_id"], meta.actor.to_string());
    }

    /// One event of every type, with every optional fact set in one and unset in
    /// another where the type has any.
    fn one_of_each() -> Vec<DomainEvent> {
        let task = TaskId::from_uuid(Uuid::now_v7());
        let created = |assignee, due_date| DomainEvent::TaskCreated {
            meta: meta(),
            task,
            title: "Ship \"it\" \u{2014} now".to_owned(),
            creator: user(),
            assignee,
            priority: Priority::Urgent,
            due_date,
        };
        let edited = |due_date| DomainEvent::TaskEdited {
            meta: meta(),
            task,
            title: "Renamed".to_owned(),
            priority: Priority::Low,
            due_date,
        };
        let assigned = |assignee, previous| DomainEvent::TaskAssigned {
            meta: meta(),
            task,
            assignee,
            previous,
        };
        vec![
            created(Some(user()), NaiveDate::from_ymd_opt(2026, 2, 28)),
            created(None, None),
            edited(NaiveDate::from_ymd_opt(2027, 12, 31)),
            edited(None),
            assigned(Some(user()), None),
            assigned(None, Some(user())),
            DomainEvent::TaskStarted { meta: meta(), task },
            DomainEvent::TaskCompleted { meta: meta(), task },
            DomainEvent::TaskReopened { meta: meta(), task },
            DomainEvent::TaskDeleted { meta: meta(), task },
            DomainEvent::TaskRestored { meta: meta(), task },
            DomainEvent::UserRegistered {
                meta: meta(),
                user: user(),
                role: Role::Member,
            },
            DomainEvent::UserRegistered {
                meta: meta(),
                user: user(),
                role: Role::Admin,
            },
            DomainEvent::UserDeactivated {
                meta: meta(),
                user: user(),
            },
        ]
    }

    /// `event` encoded as the outbox stores it and decoded back.
    fn round_trip(event: &DomainEvent) -> anyhow::Result<DomainEvent> {
        let meta = event.meta();
        decode(
            event.name(),
            meta.tenant_id,
            event.aggregate().1,
            meta.occurred_at,
            payload(event),
        )
    }

    #[test]
    fn every_event_decodes_back_to_itself() {
        let events = one_of_each();
        let mut names: Vec<&str> = events.iter().map(DomainEvent::name).collect();
        names.dedup();
        assert_eq!(names.len(), 10, "every type is covered: {names:?}");
        for event in events {
            assert_eq!(round_trip(&event).unwrap(), event);
        }
    }

    #[test]
    fn a_stored_row_reads_back_as_its_envelope() {
        let event = DomainEvent::TaskStarted {
            meta: meta(),
            task: TaskId::from_uuid(Uuid::now_v7()),
        };
        let id = Uuid::now_v7();
        let row = outbox_row(id, &event, 3);
        let model = outbox::Model {
            id,
            tenant_id: *row.tenant_id.as_ref(),
            aggregate_type: row.aggregate_type.as_ref().clone(),
            aggregate_id: *row.aggregate_id.as_ref(),
            event_type: row.event_type.as_ref().clone(),
            payload: row.payload.as_ref().clone(),
            occurred_at: *row.occurred_at.as_ref(),
            published_at: None,
            aggregate_version: 3,
        };
        assert_eq!(
            envelope_from_row(&model).unwrap(),
            EventEnvelope {
                id,
                aggregate_version: 3,
                event,
            }
        );
    }

    #[test]
    fn an_unknown_type_a_missing_fact_or_an_invalid_one_is_refused() {
        let meta = meta();
        let task = Uuid::now_v7();
        let decode = |event_type: &str, payload: Value| {
            decode(event_type, meta.tenant_id, task, meta.occurred_at, payload)
        };
        let actor = meta.actor.to_string();
        let started = json!({ "actor_id": actor, "task_id": task.to_string() });
        assert!(decode("task.started", started.clone()).is_ok());
        assert!(decode("task.archived", started.clone()).is_err());
        assert!(decode("invoice.paid", started.clone()).is_err());
        assert!(decode("task.started", json!({ "task_id": task.to_string() })).is_err());
        assert!(decode("task.started", json!({ "actor_id": actor })).is_err());
        assert!(decode("task.started", json!("not an object")).is_err());
        let other = json!({ "actor_id": actor, "task_id": Uuid::now_v7().to_string() });
        assert!(decode("task.started", other).is_err(), "another aggregate");
        let edited = |priority: &str| {
            json!({
                "actor_id": actor,
                "task_id": task.to_string(),
                "title": "t",
                "priority": priority,
                "due_date": null,
            })
        };
        assert!(decode("task.edited", edited("high")).is_ok());
        assert!(decode("task.edited", edited("whenever")).is_err());
        let untitled =
            json!({ "actor_id": actor, "task_id": task.to_string(), "priority": "high" });
        assert!(decode("task.edited", untitled).is_err());
    }

    #[test]
    fn facts_a_payload_gains_later_are_ignored() {
        let meta = meta();
        let user = user();
        let payload = json!({
            "actor_id": meta.actor.to_string(),
            "user_id": user.to_string(),
            "reason": "left the company",
        });
        let event = decode(
            "user.deactivated",
            meta.tenant_id,
            user.as_uuid(),
            meta.occurred_at,
            payload,
        )
        .unwrap();
        assert_eq!(event, DomainEvent::UserDeactivated { meta, user });
    }
}
