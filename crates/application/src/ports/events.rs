//! Domain events after commit: the outbox that holds them, the bus that carries them,
//! and the handlers that apply them (docs/adr/0011, docs/adr/0012).
//!
//! Delivery is at least once: a relay publishes outbox rows and marks them published
//! after the bus took them, and a consumer acknowledges a message only after its handler
//! committed. Handlers make that exactly once in effect by recording the ids of the
//! events they applied in the transaction that applies them.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::DomainEvent;
use uuid::Uuid;

use super::RepositoryError;

/// An event as it travels: its id (the outbox row's, UUIDv7), the version its aggregate
/// reached with the change that recorded it, and the event itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventEnvelope {
    pub id: Uuid,
    pub aggregate_version: i64,
    pub event: DomainEvent,
}

/// Unpublished events, for the backlog metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OutboxBacklog {
    pub unpublished: u64,
    pub oldest: Option<DateTime<Utc>>,
}

/// The outbox, from the relay's side.
#[async_trait]
pub trait Outbox: Send + Sync {
    /// Publishes up to `limit` unpublished events, in order of occurrence per
    /// aggregate, and marks them published once `publisher` took them. Relays on
    /// several replicas may call this at once: none publishes what another is
    /// publishing. Returns how many were published; when `publisher` fails, nothing
    /// of the batch is marked and the error is returned.
    async fn relay(&self, limit: u64, publisher: &dyn EventPublisher) -> Result<u64, RelayError>;

    /// Deletes events published before `before`; returns how many.
    async fn purge_published(&self, before: DateTime<Utc>) -> Result<u64, RepositoryError>;

    async fn backlog(&self) -> Result<OutboxBacklog, RepositoryError>;

    /// Returns once events may have been written since it last returned, or after
    /// `at_most`: a drained relay waits here instead of polling.
    async fn written(&self, at_most: Duration);
}

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("the outbox could not be read or updated")]
    Outbox(#[from] RepositoryError),
    #[error("the event bus refused the events")]
    Publish(#[source] anyhow::Error),
}

#[async_trait]
pub trait EventPublisher: Send + Sync {
    /// Hands `events` to the bus, in order. On success every one of them will be
    /// delivered to every consumer group at least once.
    async fn publish(&self, events: &[EventEnvelope]) -> anyhow::Result<()>;
}

/// One message handed to a consumer, to be acknowledged once handled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The bus's id for the message, what `ack` takes.
    pub id: String,
    /// `None` when the message could not be decoded: the consumer acknowledges it and
    /// reports it, because no retry will make it readable.
    pub envelope: Option<EventEnvelope>,
    /// Whether the message was delivered before and not acknowledged (the consumer
    /// that had it died or failed).
    pub redelivered: bool,
}

#[async_trait]
pub trait EventSubscriber: Send + Sync {
    /// Up to `max` messages for `consumer` of `group`, waiting at most `wait` when
    /// there are none. Messages another consumer of the group left unacknowledged for
    /// longer than the bus's claim timeout come first, marked redelivered.
    async fn receive(
        &self,
        group: &str,
        consumer: &str,
        max: usize,
        wait: Duration,
    ) -> anyhow::Result<Vec<Delivery>>;

    async fn ack(&self, group: &str, ids: &[String]) -> anyhow::Result<()>;

    /// How many messages `group` has not yet been handed, when the bus can tell.
    async fn lag(&self, group: &str) -> anyhow::Result<Option<u64>>;
}

/// The record of the events consumers applied, from the housekeeping's side.
#[async_trait]
pub trait Inbox: Send + Sync {
    /// Forgets the events applied before `before`; returns how many. An event
    /// redelivered after that would be applied again, so `before` lies beyond any
    /// redelivery (the outbox's retention).
    async fn purge_processed(&self, before: DateTime<Utc>) -> Result<u64, RepositoryError>;
}

/// A consumer's effect. Its name is its consumer group and its key in the inbox.
#[async_trait]
pub trait EventHandler: Send + Sync {
    fn name(&self) -> &'static str;

    /// Applies the event and records its id, in one transaction; `false` when the id
    /// was recorded before and nothing changed.
    async fn handle(&self, envelope: &EventEnvelope) -> Result<bool, RepositoryError>;
}
