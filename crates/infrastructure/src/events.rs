//! The event bus: what carries the events the outbox relay publishes to the consumers
//! that apply them, behind the application's `EventPublisher` and `EventSubscriber`.
//!
//! Two adapters with the same delivery semantics, so consumers are written once and
//! tested on both: `RedisStreamBus`, one Redis stream read by consumer groups, for
//! production and several replicas; and `InProcessBus`, a bounded log in memory, the
//! embedded default when Redis is not configured. Both deliver at least once: a message
//! stays pending in its group until acknowledged, and one left unacknowledged longer
//! than the claim timeout goes to the next consumer of the group that asks, marked
//! redelivered. The envelope's JSON, what the stream carries, is in `envelope`.
//!
//! The metrics of the relay and of the bus are named here, and described by
//! `describe_metrics`.

pub(crate) mod envelope;
mod in_process;
mod redis_stream;

use application::ports::{Delivery, OutboxBacklog};
use chrono::{DateTime, Utc};
use metrics::Unit;

pub use in_process::InProcessBus;
pub use redis_stream::{RedisStreamBus, StreamConfig};

/// Events the relay published and marked published.
pub const OUTBOX_RELAYED: &str = "keystone_outbox_relayed_total";
/// Batches the bus refused; they stay unpublished and are retried.
pub const OUTBOX_RELAY_FAILURES: &str = "keystone_outbox_relay_failures_total";
/// Outbox rows that held no event this version can read, set aside by the relay.
pub const OUTBOX_UNDECODABLE: &str = "keystone_outbox_undecodable_total";
/// Unpublished events in the outbox (`record_backlog`).
pub const OUTBOX_UNPUBLISHED: &str = "keystone_outbox_unpublished";
/// Seconds since the oldest unpublished event occurred, 0 without one (`record_backlog`).
pub const OUTBOX_OLDEST_AGE: &str = "keystone_outbox_oldest_unpublished_age_seconds";
/// Messages handed to a consumer again after another left them unacknowledged, by
/// `group`.
pub const EVENTS_REDELIVERED: &str = "keystone_events_redelivered_total";
/// Messages that held no event this version can read, by `group`.
pub const EVENTS_UNDECODABLE: &str = "keystone_events_undecodable_total";
/// Messages of the bus a consumer group has not been handed yet, by `group`
/// (`record_consumer_lag`).
pub const EVENTS_CONSUMER_LAG: &str = "keystone_events_consumer_lag";

/// Gives the metrics of the relay and the bus their help text and units. Call once the
/// recorder is in place.
pub fn describe_metrics() {
    metrics::describe_counter!(
        OUTBOX_RELAYED,
        Unit::Count,
        "Events the outbox relay published"
    );
    metrics::describe_counter!(
        OUTBOX_RELAY_FAILURES,
        Unit::Count,
        "Outbox batches the event bus refused (retried later)"
    );
    metrics::describe_counter!(
        OUTBOX_UNDECODABLE,
        Unit::Count,
        "Outbox rows holding no readable event, set aside by the relay"
    );
    metrics::describe_gauge!(OUTBOX_UNPUBLISHED, Unit::Count, "Unpublished outbox events");
    metrics::describe_gauge!(
        OUTBOX_OLDEST_AGE,
        Unit::Seconds,
        "Age of the oldest unpublished outbox event"
    );
    metrics::describe_counter!(
        EVENTS_REDELIVERED,
        Unit::Count,
        "Event messages redelivered after a consumer left them unacknowledged"
    );
    metrics::describe_counter!(
        EVENTS_UNDECODABLE,
        Unit::Count,
        "Event messages holding no readable event"
    );
    metrics::describe_gauge!(
        EVENTS_CONSUMER_LAG,
        Unit::Count,
        "Event messages a consumer group has not been handed yet"
    );
}

/// Sets the backlog gauges from what `Outbox::backlog` found at `now`.
pub fn record_backlog(backlog: &OutboxBacklog, now: DateTime<Utc>) {
    #[allow(clippy::cast_precision_loss, reason = "a gauge is a float")]
    metrics::gauge!(OUTBOX_UNPUBLISHED).set(backlog.unpublished as f64);
    metrics::gauge!(OUTBOX_OLDEST_AGE).set(oldest_age(backlog, now).as_secs_f64());
}

/// How long the oldest unpublished event has waited at `now`; zero without one, or
/// when it occurred on a clock ahead of this one.
fn oldest_age(backlog: &OutboxBacklog, now: DateTime<Utc>) -> std::time::Duration {
    backlog
        .oldest
        .and_then(|oldest| (now - oldest).to_std().ok())
        .unwrap_or_default()
}

/// Sets the lag gauge of `group` (from `RedisStreamBus::lag` or `InProcessBus::lag`).
pub fn record_consumer_lag(group: &str, lag: u64) {
    #[allow(clippy::cast_precision_loss, reason = "a gauge is a float")]
    metrics::gauge!(EVENTS_CONSUMER_LAG, "group" => group.to_owned()).set(lag as f64);
}

/// Counts the redelivered and the undecodable among `deliveries` to `group`.
fn count_redelivered(group: &str, deliveries: &[Delivery]) {
    let redelivered = deliveries.iter().filter(|d| d.redelivered).count() as u64;
    if redelivered > 0 {
        metrics::counter!(EVENTS_REDELIVERED, "group" => group.to_owned()).increment(redelivered);
    }
    let undecodable = deliveries.iter().filter(|d| d.envelope.is_none()).count() as u64;
    if undecodable > 0 {
        metrics::counter!(EVENTS_UNDECODABLE, "group" => group.to_owned()).increment(undecodable);
    }
}

/// The contract both buses keep, run on each: the in-process one always, a Redis stream
/// of its own when the run includes the tests that need Redis. No test waits on the
/// clock to prove something: a claim that must not happen yet is asked of a patient
/// handle (claim timeout of an hour), one that must happen of an eager handle (a
/// millisecond), polled until it does; "never again" is the group's pending count.
#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::pin::Pin;
    use std::time::Duration;

    use application::ports::{EventEnvelope, EventPublisher, EventSubscriber};
    use chrono::TimeZone;
    use domain::{DomainEvent, EventMeta, TaskEvent, TaskFact, TaskId, TenantId, UserId};
    use tokio::time::Instant;
    use uuid::Uuid;

    use super::*;
    use crate::testing::{self, TestRedis};

    /// `count` events of as many tasks, in order.
    pub(super) fn envelopes(count: usize) -> Vec<EventEnvelope> {
        (0..count)
            .map(|n| EventEnvelope {
                id: Uuid::now_v7(),
                aggregate_version: i64::try_from(n).unwrap(),
                event: DomainEvent::from(TaskEvent {
                    meta: EventMeta {
                        tenant_id: TenantId::from_uuid(Uuid::now_v7()),
                        actor: UserId::from_uuid(Uuid::now_v7()),
                        occurred_at: Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap(),
                    },
                    task_id: TaskId::from_uuid(Uuid::now_v7()),
                    fact: TaskFact::Completed,
                }),
            })
            .collect()
    }

    trait Bus: EventPublisher + EventSubscriber {}
    impl<T: EventPublisher + EventSubscriber> Bus for T {}

    /// A wait long enough for anything already published to arrive.
    const PATIENT: Duration = Duration::from_secs(2);

    /// How many of a group's messages were handed out and not acknowledged.
    type PendingCount =
        Box<dyn Fn(&'static str) -> Pin<Box<dyn Future<Output = u64> + Send>> + Send>;

    /// Two handles on one bus: one that never claims what another consumer left (in
    /// the span of a test), one that claims it after a millisecond.
    struct Buses {
        patient: Box<dyn Bus>,
        eager: Box<dyn Bus>,
        pending: PendingCount,
        _redis: Option<TestRedis>,
    }

    fn in_process() -> Buses {
        let patient = InProcessBus::new(1000, Duration::from_hours(1));
        let eager = patient.with_claim_idle(Duration::from_millis(1));
        let counted = patient.clone();
        Buses {
            patient: Box::new(patient),
            eager: Box::new(eager),
            pending: Box::new(move |group| {
                let pending = counted.pending(group);
                Box::pin(async move { pending })
            }),
            _redis: None,
        }
    }

    async fn on_redis() -> Buses {
        let redis = TestRedis::new().await;
        let config = |claim_idle| StreamConfig {
            stream: format!("{}:events", redis.namespace),
            max_len: 1000,
            claim_idle,
        };
        let patient = RedisStreamBus::new(redis.redis.clone(), config(Duration::from_hours(1)));
        let eager = RedisStreamBus::new(redis.redis.clone(), config(Duration::from_millis(1)));
        let counted = patient.clone();
        Buses {
            patient: Box::new(patient),
            eager: Box::new(eager),
            pending: Box::new(move |group| {
                let counted = counted.clone();
                Box::pin(async move { counted.pending(group).await })
            }),
            _redis: Some(redis),
        }
    }

    /// Removes `key` from Redis.
    pub(super) async fn delete(redis: &crate::redis_pool::Redis, key: String) {
        redis
            .run(|mut connection| async move {
                redis::cmd("DEL")
                    .arg(&key)
                    .query_async::<()>(&mut connection)
                    .await
            })
            .await
            .unwrap();
    }

    fn envelopes_of(deliveries: &[Delivery]) -> Vec<EventEnvelope> {
        deliveries
            .iter()
            .map(|delivery| delivery.envelope.clone().expect("an event"))
            .collect()
    }

    fn ids_of(deliveries: &[Delivery]) -> Vec<String> {
        deliveries
            .iter()
            .map(|delivery| delivery.id.clone())
            .collect()
    }

    crate::with_and_without!(
        in_process = in_process(),
        on_redis = on_redis().await;
        published_events_are_received_in_order_a_batch_at_a_time,
        an_acknowledged_message_is_never_delivered_again,
        a_message_left_unacknowledged_goes_to_another_consumer_after_the_claim_timeout,
        every_group_receives_every_message,
        a_receive_with_nothing_to_deliver_waits_then_returns_nothing,
        a_waiting_receive_gets_a_message_published_meanwhile,
    );

    async fn published_events_are_received_in_order_a_batch_at_a_time(buses: Buses) {
        let bus = buses.patient;
        let events = envelopes(5);
        bus.publish(&events[..2]).await.unwrap();
        bus.publish(&events[2..]).await.unwrap();
        let first = bus.receive("g", "c1", 3, PATIENT).await.unwrap();
        assert_eq!(envelopes_of(&first), events[..3]);
        assert!(first.iter().all(|delivery| !delivery.redelivered));
        let rest = bus.receive("g", "c1", 3, PATIENT).await.unwrap();
        assert_eq!(envelopes_of(&rest), events[3..]);
    }

    async fn an_acknowledged_message_is_never_delivered_again(buses: Buses) {
        let bus = &buses.patient;
        bus.publish(&envelopes(2)).await.unwrap();
        let received = bus.receive("g", "c1", 10, PATIENT).await.unwrap();
        assert_eq!(received.len(), 2);
        assert_eq!((buses.pending)("g").await, 2);
        bus.ack("g", &ids_of(&received)).await.unwrap();
        // Nothing pending and nothing new: nothing left to deliver, then or ever.
        assert_eq!((buses.pending)("g").await, 0);
        assert_eq!(bus.lag("g").await.unwrap().unwrap_or(0), 0);
        let again = buses.eager.receive("g", "c2", 10, Duration::ZERO).await;
        assert!(again.unwrap().is_empty());
    }

    async fn a_message_left_unacknowledged_goes_to_another_consumer_after_the_claim_timeout(
        buses: Buses,
    ) {
        let events = envelopes(2);
        buses.patient.publish(&events).await.unwrap();
        let taken = buses
            .patient
            .receive("g", "dies", 1, PATIENT)
            .await
            .unwrap();
        assert_eq!(envelopes_of(&taken), events[..1]);
        // Before the claim timeout, another consumer gets the next message instead.
        let next = buses.patient.receive("g", "lives", 10, Duration::ZERO);
        let next = next.await.unwrap();
        assert_eq!(envelopes_of(&next), events[1..]);
        buses.patient.ack("g", &ids_of(&next)).await.unwrap();
        // After it, the message left behind is claimed, marked redelivered.
        let claimed = testing_eventually("the message is claimed", || async {
            let claimed = buses.eager.receive("g", "lives", 10, Duration::ZERO);
            Some(claimed.await.unwrap()).filter(|claimed| !claimed.is_empty())
        })
        .await;
        assert_eq!(envelopes_of(&claimed), events[..1]);
        assert_eq!(ids_of(&claimed), ids_of(&taken));
        assert!(claimed[0].redelivered);
        buses.eager.ack("g", &ids_of(&claimed)).await.unwrap();
        assert_eq!((buses.pending)("g").await, 0, "nothing left to claim");
    }

    async fn every_group_receives_every_message(buses: Buses) {
        let bus = buses.patient;
        let events = envelopes(3);
        bus.publish(&events).await.unwrap();
        for group in ["stats", "audit"] {
            let received = bus.receive(group, "c", 10, PATIENT).await.unwrap();
            assert_eq!(envelopes_of(&received), events, "{group}");
            bus.ack(group, &ids_of(&received)).await.unwrap();
        }
        // A group created later starts from the oldest message kept.
        let late = bus.receive("late", "c", 10, PATIENT).await.unwrap();
        assert_eq!(envelopes_of(&late), events);
    }

    /// The wait is a lower bound the bus promises, measured as such: longer than the
    /// Redis client's own response timeout (500 ms), which a blocking read would run into.
    async fn a_receive_with_nothing_to_deliver_waits_then_returns_nothing(buses: Buses) {
        let started = Instant::now();
        let received = buses
            .patient
            .receive("g", "c", 10, Duration::from_millis(1_200))
            .await
            .unwrap();
        assert!(received.is_empty());
        assert!(started.elapsed() >= Duration::from_millis(1_200));
    }

    async fn a_waiting_receive_gets_a_message_published_meanwhile(buses: Buses) {
        let bus = buses.patient;
        // The group exists before the wait, so the message is new to it.
        assert!(
            bus.receive("g", "c", 10, Duration::ZERO)
                .await
                .unwrap()
                .is_empty()
        );
        let events = envelopes(1);
        let receiving = bus.receive("g", "c", 10, Duration::from_secs(10));
        tokio::pin!(receiving);
        // Polled once, the receive has found nothing and waits.
        let first =
            std::future::poll_fn(|cx| std::task::Poll::Ready(receiving.as_mut().poll(cx))).await;
        assert!(first.is_pending());
        bus.publish(&events).await.unwrap();
        assert_eq!(envelopes_of(&receiving.await.unwrap()), events);
    }

    /// Polls `check` until it answers, for at most ten seconds.
    async fn testing_eventually<T, F, Fut>(what: &str, mut check: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Option<T>>,
    {
        for _ in 0..1000 {
            if let Some(value) = check().await {
                return value;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("{what} did not happen within ten seconds");
    }

    #[tokio::test]
    async fn a_redis_that_is_down_fails_publish_and_receive_without_hanging() {
        let bus = RedisStreamBus::new(
            testing::dead_redis(),
            StreamConfig {
                stream: "keystone_test:events".to_owned(),
                max_len: 1000,
                claim_idle: Duration::from_secs(1),
            },
        );
        // The bounds only tell a failure from a hang; the pool's deadline is 200 ms.
        let bound = Duration::from_secs(10);
        let published = tokio::time::timeout(bound, bus.publish(&envelopes(1))).await;
        assert!(matches!(published, Ok(Err(_))), "{published:?}");
        let received = tokio::time::timeout(bound, bus.receive("g", "c", 10, PATIENT)).await;
        assert!(matches!(received, Ok(Err(_))), "{received:?}");
        let acked = tokio::time::timeout(bound, bus.ack("g", &["1-0".to_owned()])).await;
        assert!(matches!(acked, Ok(Err(_))), "{acked:?}");
    }

    #[test]
    fn the_oldest_events_age_is_counted_from_when_it_occurred_and_never_below_zero() {
        let now = Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 30).unwrap();
        let backlog = |oldest| OutboxBacklog {
            unpublished: 1,
            oldest: Some(oldest),
        };
        let half_a_minute_ago = Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap();
        assert_eq!(
            oldest_age(&backlog(half_a_minute_ago), now),
            Duration::from_secs(30)
        );
        let ahead = Utc.with_ymd_and_hms(2026, 1, 1, 12, 1, 0).unwrap();
        assert_eq!(
            oldest_age(&backlog(ahead), now),
            Duration::ZERO,
            "a clock ahead"
        );
        assert_eq!(oldest_age(&OutboxBacklog::default(), now), Duration::ZERO);
    }
}
