//! `InProcessBus`: the embedded default, for a service that runs without Redis. It keeps
//! the delivery semantics of the Redis stream as far as one process allows, so the
//! consumers cannot tell the two apart:
//!
//! - one append-only log of every event, bounded like `MAXLEN`: the oldest are dropped;
//! - per consumer group, a cursor (the next event to deliver) and the delivered but
//!   unacknowledged events, with when each was last delivered;
//! - a group is created on its first `receive` and starts from the oldest event still
//!   in the log (`XGROUP CREATE … 0`);
//! - `receive` first claims events left unacknowledged longer than the claim timeout
//!   (`XAUTOCLAIM`), marked redelivered, then reads new ones (`XREADGROUP … >`), and
//!   waits for a publish when there are none (`BLOCK`).
//!
//! What it cannot keep is durability: the log lives in memory, so events the relay had
//! published but the consumers had not yet applied when the process stopped are not
//! delivered after it restarts. That is the embedded default's trade (one process, no
//! Redis); a deployment that cannot afford it uses the Redis stream. Consumers are
//! not told apart within a group: any of them may claim what another left.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use anyhow::Context;
use application::ports::{Delivery, EventEnvelope, EventPublisher, EventSubscriber};
use async_trait::async_trait;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::count_redelivered;

/// An event bus inside the process. Cloning it is cheap and shares the log.
#[derive(Debug, Clone)]
pub struct InProcessBus {
    shared: Arc<Shared>,
    claim_idle: Duration,
}

#[derive(Debug)]
struct Shared {
    log: Mutex<Log>,
    /// Woken on every publish, for the receivers waiting for one.
    published: Notify,
    capacity: usize,
}

#[derive(Debug, Default)]
struct Log {
    entries: VecDeque<EventEnvelope>,
    /// The sequence number of `entries[0]`; numbers never repeat, so a message id
    /// (its sequence number) outlives the message.
    first: u64,
    groups: HashMap<String, Group>,
}

#[derive(Debug)]
struct Group {
    /// The sequence number of the next event never delivered to the group.
    next: u64,
    /// Delivered, unacknowledged events, and when each was last delivered.
    pending: BTreeMap<u64, Instant>,
}

impl InProcessBus {
    /// A bus that keeps the last `capacity` events (at least one), and hands an event a
    /// consumer left unacknowledged for `claim_idle` to the next consumer of its group
    /// that asks.
    #[must_use]
    pub fn new(capacity: usize, claim_idle: Duration) -> Self {
        Self {
            shared: Arc::new(Shared {
                log: Mutex::default(),
                published: Notify::new(),
                capacity: capacity.max(1),
            }),
            claim_idle,
        }
    }

    /// Another handle on the same log, whose consumers claim after `claim_idle`.
    #[cfg(test)]
    pub(crate) fn with_claim_idle(&self, claim_idle: Duration) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
            claim_idle,
        }
    }

    /// How many events `group` was handed and has not acknowledged.
    #[cfg(any(test, feature = "testing"))]
    #[must_use]
    pub fn pending(&self, group: &str) -> u64 {
        self.log()
            .groups
            .get(group)
            .map_or(0, |group| group.pending.len() as u64)
    }

    /// How many events of the log `group` has not been handed yet; `None` before its
    /// first `receive`.
    #[must_use]
    pub fn lag(&self, group: &str) -> Option<u64> {
        let log = self.log();
        let group = log.groups.get(group)?;
        Some(log.end().saturating_sub(group.next.max(log.first)))
    }

    /// A poisoned lock is taken anyway: no update of the log can panic half-way.
    fn log(&self) -> MutexGuard<'_, Log> {
        self.shared
            .log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl Log {
    /// The sequence number the next event will get.
    fn end(&self) -> u64 {
        self.first + self.entries.len() as u64
    }

    fn entry(&self, sequence: u64) -> Option<&EventEnvelope> {
        let index = usize::try_from(sequence.checked_sub(self.first)?).ok()?;
        self.entries.get(index)
    }

    /// Up to `max` deliveries for `group`: the events left unacknowledged too long if
    /// any, otherwise new ones.
    fn take(&mut self, group: &str, max: usize, claim_idle: Duration) -> Vec<Delivery> {
        let first = self.first;
        let group = self
            .groups
            .entry(group.to_owned())
            .or_insert_with(|| Group {
                next: first,
                pending: BTreeMap::new(),
            });
        let now = Instant::now();
        let idle: Vec<u64> = group
            .pending
            .iter()
            .filter(|(_, delivered)| now.duration_since(**delivered) >= claim_idle)
            .map(|(sequence, _)| *sequence)
            .collect();
        let mut claimed = Vec::new();
        for sequence in idle {
            if claimed.len() == max {
                break;
            }
            // An event dropped from the log while pending is gone for good, as
            // XAUTOCLAIM drops the ids of deleted entries.
            if sequence < first {
                group.pending.remove(&sequence);
            } else {
                group.pending.insert(sequence, now);
                claimed.push(sequence);
            }
        }
        let redelivered = !claimed.is_empty();
        let sequences = if redelivered {
            claimed
        } else {
            // Events dropped before the group read them are skipped, as with MAXLEN.
            let start = group.next.max(first);
            let end = (start + max as u64).min(first + self.entries.len() as u64);
            group.next = end.max(group.next);
            for sequence in start..end {
                group.pending.insert(sequence, now);
            }
            (start..end).collect()
        };
        sequences
            .into_iter()
            .filter_map(|sequence| {
                Some(Delivery {
                    id: sequence.to_string(),
                    envelope: Some(self.entry(sequence)?.clone()),
                    redelivered,
                })
            })
            .collect()
    }
}

#[async_trait]
impl EventPublisher for InProcessBus {
    async fn publish(&self, events: &[EventEnvelope]) -> anyhow::Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        {
            let mut log = self.log();
            log.entries.extend(events.iter().cloned());
            let excess = log.entries.len().saturating_sub(self.shared.capacity);
            log.entries.drain(..excess);
            log.first += excess as u64;
        }
        self.shared.published.notify_waiters();
        Ok(())
    }
}

#[async_trait]
impl EventSubscriber for InProcessBus {
    async fn receive(
        &self,
        group: &str,
        _consumer: &str,
        max: usize,
        wait: Duration,
    ) -> anyhow::Result<Vec<Delivery>> {
        let deadline = Instant::now() + wait;
        loop {
            // Registered before looking, so a publish between the look and the wait
            // still wakes it.
            let published = self.shared.published.notified();
            tokio::pin!(published);
            published.as_mut().enable();
            let deliveries = self.log().take(group, max, self.claim_idle);
            if !deliveries.is_empty() || max == 0 || Instant::now() >= deadline {
                count_redelivered(group, &deliveries);
                return Ok(deliveries);
            }
            // Timing out is the normal end of a quiet wait: look once more, then return.
            let _ = tokio::time::timeout_at(deadline, published).await;
        }
    }

    async fn ack(&self, group: &str, ids: &[String]) -> anyhow::Result<()> {
        let sequences = ids
            .iter()
            .map(|id| id.parse::<u64>())
            .collect::<Result<Vec<_>, _>>()
            .context("acknowledging a message id this bus never handed out")?;
        if let Some(group) = self.log().groups.get_mut(group) {
            for sequence in sequences {
                group.pending.remove(&sequence);
            }
        }
        Ok(())
    }

    async fn lag(&self, group: &str) -> anyhow::Result<Option<u64>> {
        Ok(InProcessBus::lag(self, group))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::tests::envelopes;

    const WAIT: Duration = Duration::from_millis(50);

    #[tokio::test]
    async fn the_log_keeps_only_the_newest_events_up_to_its_capacity() {
        let bus = InProcessBus::new(3, Duration::from_mins(1));
        let events = envelopes(5);
        bus.publish(&events).await.unwrap();
        let received = bus.receive("g", "c", 10, WAIT).await.unwrap();
        let received: Vec<EventEnvelope> =
            received.into_iter().filter_map(|d| d.envelope).collect();
        assert_eq!(received, events[2..]);
    }

    #[tokio::test]
    async fn a_group_behind_the_log_skips_what_was_dropped_and_its_lag_says_so() {
        let bus = InProcessBus::new(3, Duration::from_mins(1));
        assert_eq!(bus.lag("g"), None);
        let events = envelopes(2);
        bus.publish(&events).await.unwrap();
        assert!(bus.receive("g", "c", 0, WAIT).await.unwrap().is_empty());
        assert_eq!(bus.lag("g"), Some(2));
        bus.publish(&envelopes(4)).await.unwrap();
        assert_eq!(bus.lag("g"), Some(3), "the log holds three");
        let received = bus.receive("g", "c", 10, WAIT).await.unwrap();
        assert_eq!(received.len(), 3);
        assert_eq!(bus.lag("g"), Some(0));
    }

    #[tokio::test]
    async fn an_id_the_bus_never_handed_out_is_refused() {
        let bus = InProcessBus::new(3, Duration::from_mins(1));
        assert!(bus.ack("g", &["1-0".to_owned()]).await.is_err());
        assert!(bus.ack("g", &["7".to_owned()]).await.is_ok());
    }
}
