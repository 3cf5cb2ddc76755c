//! The bus's wire format: one JSON object per event, the envelope's facts beside the
//! event's payload, so a consumer in any language reads it without the database.
//!
//! ```json
//! {"id": "…", "type": "task.created", "tenant_id": "…", "aggregate_type": "task",
//!  "aggregate_id": "…", "aggregate_version": 0, "occurred_at": "2026-01-01T12:00:00Z",
//!  "payload": {"actor_id": "…", "task_id": "…", …}}
//! ```
//!
//! The payload is the outbox's (`persistence::mapping`), so the two never drift.

use anyhow::{Context, ensure};
use application::ports::EventEnvelope;
use chrono::{DateTime, Utc};
use domain::TenantId;
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::persistence::{decode_event, event_payload};

#[derive(Deserialize)]
struct Wire {
    id: Uuid,
    #[serde(rename = "type")]
    event_type: String,
    tenant_id: Uuid,
    aggregate_type: String,
    aggregate_id: Uuid,
    aggregate_version: i64,
    occurred_at: DateTime<Utc>,
    payload: Value,
}

/// `envelope` as the JSON the bus carries.
pub(crate) fn encode(envelope: &EventEnvelope) -> String {
    let event = &envelope.event;
    let meta = event.meta();
    let (aggregate_type, aggregate_id) = event.aggregate();
    json!({
        "id": envelope.id,
        "type": event.name(),
        "tenant_id": meta.tenant_id.as_uuid(),
        "aggregate_type": aggregate_type.as_str(),
        "aggregate_id": aggregate_id,
        "aggregate_version": envelope.aggregate_version,
        "occurred_at": meta.occurred_at,
        "payload": event_payload(event),
    })
    .to_string()
}

/// The envelope `json` carries: the inverse of `encode`.
///
/// # Errors
/// When `json` is not an envelope, or holds no event this version knows.
pub(crate) fn decode(json: &str) -> anyhow::Result<EventEnvelope> {
    let wire: Wire = serde_json::from_str(json).context("the message is not an event envelope")?;
    let event = decode_event(
        &wire.event_type,
        TenantId::from_uuid(wire.tenant_id),
        wire.aggregate_id,
        wire.occurred_at,
        wire.payload,
    )?;
    ensure!(
        event.aggregate().0.as_str() == wire.aggregate_type,
        "a {} event cannot happen to a {}",
        wire.event_type,
        wire.aggregate_type
    );
    Ok(EventEnvelope {
        id: wire.id,
        aggregate_version: wire.aggregate_version,
        event,
    })
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Timelike};
    use domain::{DomainEvent, EventMeta, Priority, TaskId, UserId};

    use super::*;

    fn envelope() -> EventEnvelope {
        EventEnvelope {
            id: Uuid::now_v7(),
            aggregate_version: 4,
            event: DomainEvent::TaskEdited {
                meta: EventMeta {
                    tenant_id: TenantId::from_uuid(Uuid::now_v7()),
                    actor: UserId::from_uuid(Uuid::now_v7()),
                    occurred_at: Utc
                        .with_ymd_and_hms(2026, 1, 1, 12, 0, 0)
                        .unwrap()
                        .with_nanosecond(123_456_000)
                        .unwrap(),
                },
                task: TaskId::from_uuid(Uuid::now_v7()),
                title: "Ship".to_owned(),
                priority: Priority::High,
                due_date: None,
            },
        }
    }

    #[test]
    fn an_envelope_decodes_back_to_itself() {
        let envelope = envelope();
        assert_eq!(decode(&encode(&envelope)).unwrap(), envelope);
    }

    #[test]
    fn the_envelope_names_every_fact_beside_the_payload() {
        let envelope = envelope();
        let json: Value = serde_json::from_str(&encode(&envelope)).unwrap();
        let meta = envelope.event.meta();
        assert_eq!(json["id"], envelope.id.to_string());
        assert_eq!(json["type"], "task.edited");
        assert_eq!(json["tenant_id"], meta.tenant_id.to_string());
        assert_eq!(json["aggregate_type"], "task");
        assert_eq!(
            json["aggregate_id"],
            envelope.event.aggregate().1.to_string()
        );
        assert_eq!(json["aggregate_version"], 4);
        assert_eq!(json["occurred_at"], "2026-01-01T12:00:00.123456Z");
        assert_eq!(json["payload"], event_payload(&envelope.event));
    }

    #[test]
    fn a_message_that_is_no_envelope_or_contradicts_itself_is_refused() {
        assert!(decode("not json").is_err());
        assert!(decode("{}").is_err());
        let mut json: Value = serde_json::from_str(&encode(&envelope())).unwrap();
        json["aggregate_type"] = json!("user");
        assert!(decode(&json.to_string()).is_err());
        json["aggregate_type"] = json!("task");
        json["type"] = json!("task.archived");
        assert!(decode(&json.to_string()).is_err());
    }
}
