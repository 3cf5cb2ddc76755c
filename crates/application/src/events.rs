//! The life of events after the commit, as steps the composition root runs in loops:
//! the relay publishes the outbox to the bus, each consumer hands its group's messages
//! to its handler, and the housekeeping reports the backlog and forgets what is past
//! its retention (docs/adr/0011, docs/adr/0012).
//!
//! Each step does one batch and says how long to wait before the next, so the policy
//! (when to go on at once, how to back off while something fails, what to acknowledge)
//! lives here and is tested against fakes, while the runtime, the timers and the stop
//! signal stay with the server. A stop is only ever seen between steps, so it never
//! leaves half a batch applied.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::ports::{
    Clock, Delivery, EventHandler, EventPublisher, EventSubscriber, IdempotencyKeys, Inbox, Outbox,
    OutboxBacklog, RefreshTokens,
};

/// The wait after another failure: doubled from `initial`, at most `max`.
fn back_off(current: Duration, initial: Duration, max: Duration) -> Duration {
    current.max(initial).saturating_mul(2).min(max)
}

/// How the relay paces itself.
#[derive(Debug, Clone, Copy)]
pub struct RelayPolicy {
    /// Events per batch.
    pub batch: u64,
    /// The longest a drained relay waits for a write to wake it (`wait_for_events`);
    /// a write wakes it at once, so this is only how late a lost wake-up is made good.
    pub interval: Duration,
    /// The first wait after the bus failed, doubled with each failure after it.
    pub initial_backoff: Duration,
    /// The longest wait while the bus fails.
    pub max_backoff: Duration,
}

/// Publishes committed outbox events and marks them published. While the bus fails it
/// backs off, doubling its wait up to the policy's maximum; the events stay in the
/// outbox, so nothing is lost.
pub struct Relay {
    outbox: Arc<dyn Outbox>,
    publisher: Arc<dyn EventPublisher>,
    policy: RelayPolicy,
    backoff: Duration,
}

impl Relay {
    #[must_use]
    pub fn new(
        outbox: Arc<dyn Outbox>,
        publisher: Arc<dyn EventPublisher>,
        policy: RelayPolicy,
    ) -> Self {
        Self {
            outbox,
            publisher,
            policy,
            backoff: Duration::ZERO,
        }
    }

    /// Waits for events to be written, at most `wait`, after a step that drained the
    /// outbox. While the bus fails it does not wait here: events written meanwhile
    /// must not cut the backoff short.
    ///
    /// Returns `false` when the relay is backing off and the caller must sleep `wait`.
    pub async fn wait_for_events(&self, wait: Duration) -> bool {
        if !self.backoff.is_zero() {
            return false;
        }
        self.outbox.written(wait).await;
        true
    }

    /// Publishes one batch; returns how long to wait before the next. A full batch
    /// means more may be waiting, so it goes on at once.
    pub async fn step(&mut self) -> Duration {
        match self
            .outbox
            .relay(self.policy.batch, self.publisher.as_ref())
            .await
        {
            Ok(relayed) => {
                if !self.backoff.is_zero() {
                    tracing::info!("the relay publishes again");
                }
                self.backoff = Duration::ZERO;
                if relayed >= self.policy.batch {
                    Duration::ZERO
                } else {
                    self.policy.interval
                }
            }
            Err(error) => {
                let policy = self.policy;
                self.backoff = back_off(self.backoff, policy.initial_backoff, policy.max_backoff);
                tracing::warn!(
                    error = format!("{:#}", anyhow::Error::new(error)),
                    retry_in_ms = self.backoff.as_millis(),
                    "the relay could not publish; the events stay in the outbox"
                );
                self.backoff
            }
        }
    }
}

/// How a consumer reads its group's messages.
#[derive(Debug, Clone)]
pub struct ConsumerPolicy {
    /// This process's name among the consumers of a group.
    pub name: String,
    /// Messages per batch.
    pub batch: usize,
    /// How long a read waits for messages before the step ends empty-handed.
    pub receive_wait: Duration,
    /// The first wait after a failure, doubled with each one after it.
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
}

/// What a consumer's step did, for its metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchReport {
    pub applied: u64,
    pub duplicate: u64,
    pub failed: u64,
    pub undecodable: u64,
    /// When the last event it handled occurred.
    pub last_occurred_at: Option<DateTime<Utc>>,
}

/// Hands each message of its group to its handler and acknowledges it once the handler
/// committed. A handler that fails leaves the message unacknowledged: the bus hands it
/// out again after its claim timeout, and the rest of the batch goes on (the handlers
/// accept events in any order). There is no dead-letter stream: an event that always
/// fails comes back every claim timeout, counted as failed, until it is fixed.
pub struct Consumer {
    subscriber: Arc<dyn EventSubscriber>,
    handler: Arc<dyn EventHandler>,
    policy: ConsumerPolicy,
    backoff: Duration,
}

impl Consumer {
    #[must_use]
    pub fn new(
        subscriber: Arc<dyn EventSubscriber>,
        handler: Arc<dyn EventHandler>,
        policy: ConsumerPolicy,
    ) -> Self {
        Self {
            subscriber,
            handler,
            policy,
            backoff: Duration::ZERO,
        }
    }

    /// The consumer group: the handler's name.
    #[must_use]
    pub fn group(&self) -> &'static str {
        self.handler.name()
    }

    /// Reads and handles one batch; returns what it did and how long to wait before
    /// the next, which is at once unless something failed.
    pub async fn step(&mut self) -> (BatchReport, Duration) {
        let group = self.group();
        let policy = &self.policy;
        let received = self
            .subscriber
            .receive(group, &policy.name, policy.batch, policy.receive_wait)
            .await;
        let (report, failed) = match received {
            Ok(deliveries) => self.handle(deliveries).await,
            Err(error) => {
                tracing::warn!(
                    consumer = group,
                    error = format!("{error:#}"),
                    "receiving events"
                );
                (BatchReport::default(), true)
            }
        };
        let wait = if failed {
            self.backoff = back_off(self.backoff, policy.initial_backoff, policy.max_backoff);
            self.backoff
        } else {
            self.backoff = Duration::ZERO;
            Duration::ZERO
        };
        (report, wait)
    }

    /// Handles a batch in order and acknowledges what was handled; the flag says
    /// whether anything failed.
    async fn handle(&self, deliveries: Vec<Delivery>) -> (BatchReport, bool) {
        let group = self.group();
        let mut report = BatchReport::default();
        let mut done = Vec::with_capacity(deliveries.len());
        for delivery in deliveries {
            let Some(envelope) = &delivery.envelope else {
                // No retry makes it readable: acknowledge it, and say so loudly.
                tracing::error!(consumer = group, message = %delivery.id, "skipping an event that cannot be decoded");
                report.undecodable += 1;
                done.push(delivery.id);
                continue;
            };
            match self.handler.handle(envelope).await {
                Ok(applied) => {
                    if applied {
                        report.applied += 1;
                    } else {
                        report.duplicate += 1;
                    }
                    report.last_occurred_at = Some(envelope.event.meta().occurred_at);
                    done.push(delivery.id);
                }
                Err(error) => {
                    report.failed += 1;
                    tracing::warn!(
                        consumer = group,
                        event = %envelope.id,
                        error = %error,
                        "handling an event failed; it will be delivered again"
                    );
                }
            }
        }
        let mut failed = report.failed > 0;
        if !done.is_empty()
            && let Err(error) = self.subscriber.ack(group, &done).await
        {
            // Handled but unacknowledged: it comes back, and the inbox makes it a no-op.
            tracing::warn!(consumer = group, error = %error, "acknowledging events");
            failed = true;
        }
        (report, failed)
    }
}

/// What the housekeeping found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Backlog {
    /// The outbox's unpublished events; `None` when it could not be read.
    pub outbox: Option<OutboxBacklog>,
    /// Messages each consumer group has not been handed yet, where the bus can tell.
    pub behind: Vec<(&'static str, u64)>,
}

/// Reports how far behind the events are, and forgets published events and the
/// consumers' records of them once past their retention, and expired refresh tokens
/// and idempotency keys.
pub struct Housekeeping {
    pub outbox: Arc<dyn Outbox>,
    pub inbox: Arc<dyn Inbox>,
    pub refresh_tokens: Arc<dyn RefreshTokens>,
    pub keys: Arc<dyn IdempotencyKeys>,
    pub subscriber: Arc<dyn EventSubscriber>,
    pub clock: Arc<dyn Clock>,
    /// The consumer groups to report on.
    pub groups: Vec<&'static str>,
    /// How long published events, and the records of applying them, are kept.
    pub retention: chrono::Duration,
}

impl Housekeeping {
    pub async fn backlog(&self) -> Backlog {
        let outbox = match self.outbox.backlog().await {
            Ok(backlog) => Some(backlog),
            Err(error) => {
                tracing::warn!(error = %error, "reading the outbox backlog");
                None
            }
        };
        let mut behind = Vec::new();
        for group in &self.groups {
            match self.subscriber.lag(group).await {
                Ok(Some(count)) => behind.push((*group, count)),
                Ok(None) => {}
                Err(error) => tracing::warn!(consumer = group, error = %error, "reading a lag"),
            }
        }
        Backlog { outbox, behind }
    }

    /// Purges what is past the retention; returns how many events and records went.
    pub async fn purge(&self) -> (u64, u64) {
        let before = self.clock.now() - self.retention;
        let events = match self.outbox.purge_published(before).await {
            Ok(purged) => purged,
            Err(error) => {
                tracing::warn!(error = %error, "purging published events");
                0
            }
        };
        let records = match self.inbox.purge_processed(before).await {
            Ok(purged) => purged,
            Err(error) => {
                tracing::warn!(error = %error, "purging consumers' records");
                0
            }
        };
        let now = self.clock.now();
        let tokens = match self.refresh_tokens.purge_expired(now).await {
            Ok(purged) => purged,
            Err(error) => {
                tracing::warn!(error = %error, "purging expired refresh tokens");
                0
            }
        };
        let keys = match self.keys.purge_expired(now).await {
            Ok(purged) => purged,
            Err(error) => {
                tracing::warn!(error = %error, "purging expired idempotency keys");
                0
            }
        };
        if events + records + tokens + keys > 0 {
            tracing::info!(
                events,
                records,
                tokens,
                keys,
                "purged what is past its time"
            );
        }
        (events, records)
    }
}

#[cfg(test)]
mod tests;
