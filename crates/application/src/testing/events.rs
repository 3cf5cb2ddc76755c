//! The event pipeline in memory: an outbox of envelopes, a bus that can be told to fail,
//! and a handler that records what it was handed.

use std::collections::{BTreeSet, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::ports::{
    Delivery, EventEnvelope, EventHandler, EventPublisher, EventSubscriber, Inbox, Outbox,
    OutboxBacklog, RelayError, RepositoryError,
};

/// Unpublished envelopes, oldest first, and what was purged.
#[derive(Default)]
pub struct FakeOutbox {
    unpublished: Mutex<VecDeque<EventEnvelope>>,
    purged_before: Mutex<Vec<DateTime<Utc>>>,
}

impl FakeOutbox {
    pub fn push(&self, envelope: EventEnvelope) {
        self.unpublished.lock().unwrap().push_back(envelope);
    }

    pub fn unpublished(&self) -> usize {
        self.unpublished.lock().unwrap().len()
    }

    /// The cut-off of every purge asked for.
    pub fn purged_before(&self) -> Vec<DateTime<Utc>> {
        self.purged_before.lock().unwrap().clone()
    }
}

#[async_trait]
impl Outbox for FakeOutbox {
    /// At once: the fakes have no clock to wait on.
    async fn written(&self, _at_most: std::time::Duration) {}

    async fn relay(&self, limit: u64, publisher: &dyn EventPublisher) -> Result<u64, RelayError> {
        let batch: Vec<EventEnvelope> = self
            .unpublished
            .lock()
            .unwrap()
            .iter()
            .take(usize::try_from(limit).unwrap_or(usize::MAX))
            .cloned()
            .collect();
        if batch.is_empty() {
            return Ok(0);
        }
        publisher
            .publish(&batch)
            .await
            .map_err(RelayError::Publish)?;
        self.unpublished.lock().unwrap().drain(..batch.len());
        Ok(batch.len() as u64)
    }

    async fn purge_published(&self, before: DateTime<Utc>) -> Result<u64, RepositoryError> {
        self.purged_before.lock().unwrap().push(before);
        Ok(0)
    }

    async fn backlog(&self) -> Result<OutboxBacklog, RepositoryError> {
        let unpublished = self.unpublished.lock().unwrap();
        Ok(OutboxBacklog {
            unpublished: unpublished.len() as u64,
            oldest: unpublished
                .front()
                .map(|envelope| envelope.event.meta().occurred_at),
        })
    }
}

/// The consumers' records, purged as asked.
#[derive(Default)]
pub struct FakeInbox {
    purged_before: Mutex<Vec<DateTime<Utc>>>,
}

impl FakeInbox {
    pub fn purged_before(&self) -> Vec<DateTime<Utc>> {
        self.purged_before.lock().unwrap().clone()
    }
}

#[async_trait]
impl Inbox for FakeInbox {
    async fn purge_processed(&self, before: DateTime<Utc>) -> Result<u64, RepositoryError> {
        self.purged_before.lock().unwrap().push(before);
        Ok(0)
    }
}

/// A bus in one queue: what is published is delivered, in order, to whoever receives.
/// Publishing, receiving and acknowledging can each be made to fail.
#[derive(Default)]
pub struct FakeBus {
    published: Mutex<Vec<EventEnvelope>>,
    queue: Mutex<VecDeque<Delivery>>,
    acked: Mutex<Vec<String>>,
    failing_publishes: Mutex<u32>,
    failing_receives: Mutex<u32>,
    failing_acks: Mutex<u32>,
}

impl FakeBus {
    /// Makes the next `times` publishes fail.
    pub fn fail_publishes(&self, times: u32) {
        *self.failing_publishes.lock().unwrap() = times;
    }

    pub fn fail_receives(&self, times: u32) {
        *self.failing_receives.lock().unwrap() = times;
    }

    pub fn fail_acks(&self, times: u32) {
        *self.failing_acks.lock().unwrap() = times;
    }

    pub fn published(&self) -> Vec<EventEnvelope> {
        self.published.lock().unwrap().clone()
    }

    /// Queues a message for the next receive, as the bus would hand it out.
    pub fn deliver(&self, delivery: Delivery) {
        self.queue.lock().unwrap().push_back(delivery);
    }

    pub fn acked(&self) -> Vec<String> {
        self.acked.lock().unwrap().clone()
    }

    fn take_failure(counter: &Mutex<u32>) -> bool {
        let mut left = counter.lock().unwrap();
        let fails = *left > 0;
        *left = left.saturating_sub(1);
        fails
    }
}

#[async_trait]
impl EventPublisher for FakeBus {
    async fn publish(&self, events: &[EventEnvelope]) -> anyhow::Result<()> {
        if Self::take_failure(&self.failing_publishes) {
            anyhow::bail!("the bus is down");
        }
        self.published.lock().unwrap().extend_from_slice(events);
        for envelope in events {
            self.deliver(Delivery {
                id: envelope.id.to_string(),
                envelope: Some(envelope.clone()),
                redelivered: false,
            });
        }
        Ok(())
    }
}

#[async_trait]
impl EventSubscriber for FakeBus {
    async fn receive(
        &self,
        _group: &str,
        _consumer: &str,
        max: usize,
        _wait: Duration,
    ) -> anyhow::Result<Vec<Delivery>> {
        if Self::take_failure(&self.failing_receives) {
            anyhow::bail!("the bus is down");
        }
        let mut queue = self.queue.lock().unwrap();
        let count = max.min(queue.len());
        Ok(queue.drain(..count).collect())
    }

    async fn ack(&self, _group: &str, ids: &[String]) -> anyhow::Result<()> {
        if Self::take_failure(&self.failing_acks) {
            anyhow::bail!("the bus is down");
        }
        self.acked.lock().unwrap().extend_from_slice(ids);
        Ok(())
    }

    async fn lag(&self, _group: &str) -> anyhow::Result<Option<u64>> {
        Ok(Some(self.queue.lock().unwrap().len() as u64))
    }
}

/// A handler that applies every event once, fails those it is told to, and records the
/// ids it applied.
pub struct FakeHandler {
    name: &'static str,
    failing: Mutex<BTreeSet<Uuid>>,
    applied: Mutex<Vec<Uuid>>,
}

impl FakeHandler {
    #[must_use]
    pub fn new(name: &'static str) -> Self {
        Self {
            name,
            failing: Mutex::default(),
            applied: Mutex::default(),
        }
    }

    pub fn fail_on(&self, event: Uuid) {
        self.failing.lock().unwrap().insert(event);
    }

    pub fn applied(&self) -> Vec<Uuid> {
        self.applied.lock().unwrap().clone()
    }
}

#[async_trait]
impl EventHandler for FakeHandler {
    fn name(&self) -> &'static str {
        self.name
    }

    async fn handle(&self, envelope: &EventEnvelope) -> Result<bool, RepositoryError> {
        if self.failing.lock().unwrap().contains(&envelope.id) {
            return Err(RepositoryError::Unexpected(anyhow::anyhow!(
                "the handler fails on this event"
            )));
        }
        let mut applied = self.applied.lock().unwrap();
        if applied.contains(&envelope.id) {
            return Ok(false);
        }
        applied.push(envelope.id);
        Ok(true)
    }
}
