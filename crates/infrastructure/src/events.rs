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

mod envelope;
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

/// The contract both buses keep, run on each: the in-process one always, a Redis
/// stream of its own when `TEST_REDIS_URL` is set.
#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::time::Duration;

    use application::ports::{EventEnvelope, EventPublisher, EventSubscriber};
    use chrono::TimeZone;
    use domain::{DomainEvent, EventMeta, TaskId, TenantId, UserId};
    use tokio::time::Instant;
    use uuid::Uuid;

    use super::*;
    use crate::testing;

    /// `count` events of as many tasks, in order.
    pub(super) fn envelopes(count: usize) -> Vec<EventEnvelope> {
        (0..count)
            .map(|n| EventEnvelope {
                id: Uuid::now_v7(),
                aggregate_version: i64::try_from(n).unwrap(),
                event: DomainEvent::TaskCompleted {
                    meta: EventMeta {
                        tenant_id: TenantId::from_uuid(Uuid::now_v7()),
                        actor: UserId::from_uuid(Uuid::now_v7()),
                        occurred_at: Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap(),
                    },
                    task: TaskId::from_uuid(Uuid::now_v7()),
                },
            })
            .collect()
    }

    trait Bus: EventPublisher + EventSubscriber {}
    impl<T: EventPublisher + EventSubscriber> Bus for T {}

    /// How long a test's buses leave a message to its consumer.
    const CLAIM_IDLE: Duration = Duration::from_millis(300);
    /// A wait long enough for anything already published to arrive.
    const PATIENT: Duration = Duration::from_secs(2);

    /// Runs `test` on each bus, printing which first so a failure says where.
    async fn on_every_bus<F, Fut>(test: F)
    where
        F: Fn(Box<dyn Bus>) -> Fut,
        Fut: Future<Output = ()>,
    {
        eprintln!("-- on the in-process bus");
        test(Box::new(InProcessBus::new(1000, CLAIM_IDLE))).await;
        let Some((redis, prefix)) = testing::redis() else {
            eprintln!("-- Redis skipped: {} is not set", testing::TEST_REDIS_URL);
            return;
        };
        eprintln!("-- on a Redis stream");
        let stream = format!("{prefix}:events");
        let config = StreamConfig {
            stream: stream.clone(),
            max_len: 1000,
            claim_idle: CLAIM_IDLE,
        };
        test(Box::new(RedisStreamBus::new(redis.clone(), config))).await;
        delete(&redis, stream).await;
    }

    /// Removes `key` from Redis, so tests leave nothing behind.
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

    #[tokio::test]
    async fn published_events_are_received_in_order_a_batch_at_a_time() {
        on_every_bus(|bus| async move {
            let events = envelopes(5);
            bus.publish(&events[..2]).await.unwrap();
            bus.publish(&events[2..]).await.unwrap();
            let first = bus.receive("g", "c1", 3, PATIENT).await.unwrap();
            assert_eq!(envelopes_of(&first), events[..3]);
            assert!(first.iter().all(|delivery| !delivery.redelivered));
            let rest = bus.receive("g", "c1", 3, PATIENT).await.unwrap();
            assert_eq!(envelopes_of(&rest), events[3..]);
        })
        .await;
    }

    #[tokio::test]
    async fn an_acknowledged_message_is_never_delivered_again() {
        on_every_bus(|bus| async move {
            bus.publish(&envelopes(2)).await.unwrap();
            let received = bus.receive("g", "c1", 10, PATIENT).await.unwrap();
            assert_eq!(received.len(), 2);
            bus.ack("g", &ids_of(&received)).await.unwrap();
            tokio::time::sleep(CLAIM_IDLE * 2).await;
            let again = bus
                .receive("g", "c2", 10, Duration::from_millis(50))
                .await
                .unwrap();
            assert!(again.is_empty(), "{again:?}");
        })
        .await;
    }

    #[tokio::test]
    async fn a_message_left_unacknowledged_goes_to_another_consumer_after_the_claim_timeout() {
        on_every_bus(|bus| async move {
            let events = envelopes(2);
            bus.publish(&events).await.unwrap();
            let taken = bus.receive("g", "dies", 1, PATIENT).await.unwrap();
            assert_eq!(envelopes_of(&taken), events[..1]);
            // Too early to claim: the other consumer gets the next message instead.
            let next = bus.receive("g", "lives", 10, Duration::ZERO).await.unwrap();
            assert_eq!(envelopes_of(&next), events[1..]);
            bus.ack("g", &ids_of(&next)).await.unwrap();

            tokio::time::sleep(CLAIM_IDLE + Duration::from_millis(100)).await;
            let claimed = bus.receive("g", "lives", 10, PATIENT).await.unwrap();
            assert_eq!(envelopes_of(&claimed), events[..1]);
            assert_eq!(ids_of(&claimed), ids_of(&taken));
            assert!(claimed[0].redelivered);
            bus.ack("g", &ids_of(&claimed)).await.unwrap();
            tokio::time::sleep(CLAIM_IDLE + Duration::from_millis(100)).await;
            let nothing = bus.receive("g", "dies", 10, Duration::ZERO).await.unwrap();
            assert!(nothing.is_empty(), "{nothing:?}");
        })
        .await;
    }

    #[tokio::test]
    async fn every_group_receives_every_message() {
        on_every_bus(|bus| async move {
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
        })
        .await;
    }

    #[tokio::test]
    async fn a_receive_with_nothing_to_deliver_waits_then_returns_nothing() {
        on_every_bus(|bus| async move {
            let started = Instant::now();
            // Longer than the Redis client's own response timeout (500 ms), which a
            // blocking read would run into.
            let received = bus
                .receive("g", "c", 10, Duration::from_millis(1_200))
                .await
                .unwrap();
            assert!(received.is_empty());
            assert!(started.elapsed() >= Duration::from_millis(1_150));
        })
        .await;
    }

    #[tokio::test]
    async fn a_waiting_receive_gets_a_message_published_meanwhile() {
        on_every_bus(|bus| async move {
            // The group exists before the wait, so the message is new to it.
            assert!(
                bus.receive("g", "c", 10, Duration::ZERO)
                    .await
                    .unwrap()
                    .is_empty()
            );
            let events = envelopes(1);
            let (received, ()) =
                tokio::join!(bus.receive("g", "c", 10, Duration::from_secs(10)), async {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    bus.publish(&events).await.unwrap();
                });
            assert_eq!(envelopes_of(&received.unwrap()), events);
        })
        .await;
    }

    #[tokio::test]
    async fn a_redis_that_is_down_fails_publish_and_receive_without_hanging() {
        let bus = RedisStreamBus::new(
            testing::dead_redis(),
            StreamConfig {
                stream: "keystone_test:events".to_owned(),
                max_len: 1000,
                claim_idle: CLAIM_IDLE,
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
