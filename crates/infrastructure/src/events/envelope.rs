//! The one JSON an event has wherever it goes: an outbox row's `payload` is the message
//! the bus carries, so the two never drift. It is derived with serde from the domain's
//! event types, and carries a schema version:
//!
//! ```json
//! {"schema_version": 1, "id": "…", "aggregate_version": 3, "type": "task.assigned",
//!  "event": {"task": {"meta": {"tenant_id": "…", "actor": "…", "occurred_at": "…"},
//!                     "task_id": "…", "fact": {"type": "assigned", "assignee": "…",
//!                                              "previous": null}}}}
//! ```
//!
//! `type` repeats the event's name at the top, so a consumer routes a message without
//! decoding it. Events already stored or in flight must stay readable: the golden files
//! under `tests/golden/events/` pin the JSON of every kind of event, and a change that
//! alters one fails its test. A change that must alter the shape bumps
//! `SCHEMA_VERSION` and keeps decoding the versions before it.
//!
//! Decoding is strict: an unknown schema version, an unknown event or a fact missing is
//! an error, never a guess; facts it does not know are ignored, so an event may grow.

use anyhow::{Context, ensure};
use application::ports::EventEnvelope;
use domain::DomainEvent;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The version of the shape `encode` writes.
pub(crate) const SCHEMA_VERSION: u32 = 1;

#[derive(Serialize)]
struct Outgoing<'a> {
    schema_version: u32,
    id: Uuid,
    aggregate_version: i64,
    #[serde(rename = "type")]
    name: &'a str,
    event: &'a DomainEvent,
}

#[derive(Deserialize)]
struct Incoming {
    schema_version: u32,
    id: Uuid,
    aggregate_version: i64,
    #[serde(rename = "type")]
    name: String,
    event: DomainEvent,
}

/// The JSON of `event`, with its id and the version its aggregate reached.
pub(crate) fn encode(id: Uuid, aggregate_version: i64, event: &DomainEvent) -> String {
    let outgoing = Outgoing {
        schema_version: SCHEMA_VERSION,
        id,
        aggregate_version,
        name: event.name(),
        event,
    };
    // Ids, numbers, strings and dates only: serialising cannot fail.
    serde_json::to_string(&outgoing).unwrap_or_default()
}

/// The envelope `json` carries: the inverse of `encode`.
///
/// # Errors
/// When `json` is not an event of a schema version this one reads, or its `type`
/// contradicts its event.
pub(crate) fn decode(json: &str) -> anyhow::Result<EventEnvelope> {
    let incoming: Incoming =
        serde_json::from_str(json).context("the message is not an event this version reads")?;
    ensure!(
        incoming.schema_version == SCHEMA_VERSION,
        "the event's schema version {} is not {SCHEMA_VERSION}",
        incoming.schema_version
    );
    ensure!(
        incoming.name == incoming.event.name(),
        "the event says it is a {} but holds a {}",
        incoming.name,
        incoming.event.name()
    );
    Ok(EventEnvelope {
        id: incoming.id,
        aggregate_version: incoming.aggregate_version,
        event: incoming.event,
    })
}

#[cfg(test)]
mod tests;
