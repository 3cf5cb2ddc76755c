use std::sync::Arc;

use chrono::TimeZone;
use domain::{DomainEvent, EventMeta, TaskEvent, TaskFact, TaskId, TenantId, UserId};
use uuid::Uuid;

use super::*;
use crate::ports::EventEnvelope;
use crate::testing::{FakeBus, FakeClock, FakeDb, FakeHandler, FakeInbox, FakeOutbox};

fn envelope() -> EventEnvelope {
    EventEnvelope {
        id: Uuid::now_v7(),
        aggregate_version: 0,
        event: DomainEvent::from(TaskEvent {
            meta: EventMeta {
                tenant_id: TenantId::from_uuid(Uuid::now_v7()),
                actor: UserId::from_uuid(Uuid::now_v7()),
                occurred_at: Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap(),
            },
            task_id: TaskId::from_uuid(Uuid::now_v7()),
            fact: TaskFact::Started,
        }),
    }
}

const INTERVAL: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(1);

fn relay(outbox: &Arc<FakeOutbox>, bus: &Arc<FakeBus>, batch: u64) -> Relay {
    Relay::new(
        outbox.clone(),
        bus.clone(),
        RelayPolicy {
            batch,
            interval: Duration::from_secs(30),
            initial_backoff: INTERVAL,
            max_backoff: MAX_BACKOFF,
        },
    )
}

fn consumer(bus: &Arc<FakeBus>, handler: &Arc<FakeHandler>) -> Consumer {
    Consumer::new(
        bus.clone(),
        handler.clone(),
        ConsumerPolicy {
            name: "replica-1".to_owned(),
            batch: 10,
            receive_wait: Duration::from_secs(1),
            initial_backoff: INTERVAL,
            max_backoff: MAX_BACKOFF,
        },
    )
}

#[test]
fn back_off_doubles_from_the_initial_wait_up_to_the_maximum() {
    let first = back_off(Duration::ZERO, INTERVAL, MAX_BACKOFF);
    assert_eq!(first, Duration::from_millis(400));
    assert_eq!(
        back_off(first, INTERVAL, MAX_BACKOFF),
        Duration::from_millis(800)
    );
    assert_eq!(
        back_off(Duration::from_millis(800), INTERVAL, MAX_BACKOFF),
        MAX_BACKOFF
    );
    assert_eq!(back_off(MAX_BACKOFF, INTERVAL, MAX_BACKOFF), MAX_BACKOFF);
}

#[tokio::test]
async fn a_full_batch_goes_on_at_once_and_a_drained_outbox_waits_the_interval() {
    let (outbox, bus) = (
        Arc::new(FakeOutbox::default()),
        Arc::new(FakeBus::default()),
    );
    for _ in 0..3 {
        outbox.push(envelope());
    }
    let mut relay = relay(&outbox, &bus, 2);
    assert_eq!(relay.step().await, Duration::ZERO);
    assert_eq!(relay.step().await, Duration::from_secs(30));
    assert_eq!(bus.published().len(), 3);
    assert_eq!(outbox.unpublished(), 0);
}

#[tokio::test]
async fn while_the_bus_fails_the_relay_backs_off_keeps_the_events_and_recovers() {
    let (outbox, bus) = (
        Arc::new(FakeOutbox::default()),
        Arc::new(FakeBus::default()),
    );
    outbox.push(envelope());
    bus.fail_publishes(3);
    let mut relay = relay(&outbox, &bus, 10);
    let waits = [relay.step().await, relay.step().await, relay.step().await];
    assert_eq!(
        waits,
        [
            Duration::from_millis(400),
            Duration::from_millis(800),
            MAX_BACKOFF
        ]
    );
    assert_eq!(
        outbox.unpublished(),
        1,
        "nothing is lost while the bus fails"
    );
    assert_eq!(relay.step().await, Duration::from_secs(30));
    assert_eq!(outbox.unpublished(), 0);
    assert_eq!(
        relay.step().await,
        Duration::from_secs(30),
        "a success resets the back-off"
    );
    assert!(relay.wait_for_events(Duration::from_secs(30)).await);
}

#[tokio::test]
async fn a_consumer_acknowledges_what_it_handled_and_reports_it() {
    let (bus, handler) = (
        Arc::new(FakeBus::default()),
        Arc::new(FakeHandler::new("stats")),
    );
    let events = [envelope(), envelope()];
    bus.publish(&events).await.unwrap();
    let mut consumer = consumer(&bus, &handler);
    let (report, wait) = consumer.step().await;
    assert_eq!(wait, Duration::ZERO);
    assert_eq!(report.applied, 2);
    assert_eq!(
        report.last_occurred_at,
        Some(events[1].event.meta().occurred_at)
    );
    assert_eq!(handler.applied(), [events[0].id, events[1].id]);
    assert_eq!(
        bus.acked(),
        [events[0].id.to_string(), events[1].id.to_string()]
    );
}

#[tokio::test]
async fn a_failed_event_stays_unacknowledged_while_the_rest_of_the_batch_goes_on() {
    let (bus, handler) = (
        Arc::new(FakeBus::default()),
        Arc::new(FakeHandler::new("stats")),
    );
    let events = [envelope(), envelope(), envelope()];
    handler.fail_on(events[1].id);
    bus.publish(&events).await.unwrap();
    let mut consumer = consumer(&bus, &handler);
    let (report, wait) = consumer.step().await;
    assert_eq!((report.applied, report.failed), (2, 1));
    assert_eq!(wait, Duration::from_millis(400), "a failure backs off");
    assert_eq!(
        bus.acked(),
        [events[0].id.to_string(), events[2].id.to_string()]
    );
}

#[tokio::test]
async fn an_undecodable_message_is_acknowledged_and_counted() {
    let (bus, handler) = (
        Arc::new(FakeBus::default()),
        Arc::new(FakeHandler::new("stats")),
    );
    bus.deliver(Delivery {
        id: "1-0".to_owned(),
        envelope: None,
        redelivered: false,
    });
    let (report, wait) = consumer(&bus, &handler).step().await;
    assert_eq!(report.undecodable, 1);
    assert_eq!(wait, Duration::ZERO);
    assert_eq!(bus.acked(), ["1-0"]);
    assert!(handler.applied().is_empty());
}

#[tokio::test]
async fn a_redelivered_event_already_applied_is_a_duplicate() {
    let (bus, handler) = (
        Arc::new(FakeBus::default()),
        Arc::new(FakeHandler::new("stats")),
    );
    let event = envelope();
    bus.publish(std::slice::from_ref(&event)).await.unwrap();
    let mut consumer = consumer(&bus, &handler);
    consumer.step().await;
    bus.deliver(Delivery {
        id: event.id.to_string(),
        envelope: Some(event.clone()),
        redelivered: true,
    });
    let (report, _) = consumer.step().await;
    assert_eq!((report.applied, report.duplicate), (0, 1));
    assert_eq!(handler.applied(), [event.id]);
}

#[tokio::test]
async fn failing_to_receive_or_to_acknowledge_backs_off() {
    let (bus, handler) = (
        Arc::new(FakeBus::default()),
        Arc::new(FakeHandler::new("stats")),
    );
    let mut consumer = consumer(&bus, &handler);
    bus.fail_receives(1);
    assert_eq!(consumer.step().await.1, Duration::from_millis(400));
    bus.publish(&[envelope()]).await.unwrap();
    bus.fail_acks(1);
    let (report, wait) = consumer.step().await;
    assert_eq!(report.applied, 1);
    assert_eq!(wait, Duration::from_millis(800));
    assert!(bus.acked().is_empty());
    assert_eq!(consumer.step().await.1, Duration::ZERO);
}

#[tokio::test]
async fn the_housekeeping_reports_the_backlog_and_purges_past_the_retention() {
    let (outbox, bus) = (
        Arc::new(FakeOutbox::default()),
        Arc::new(FakeBus::default()),
    );
    let inbox = Arc::new(FakeInbox::default());
    let clock = Arc::new(FakeClock::default());
    let db = Arc::new(FakeDb::default());
    let event = envelope();
    outbox.push(event.clone());
    bus.publish(&[envelope(), envelope()]).await.unwrap();
    let housekeeping = Housekeeping {
        outbox: outbox.clone(),
        inbox: inbox.clone(),
        refresh_tokens: Arc::new(db.clone()),
        keys: Arc::new(db.clone()),
        subscriber: bus.clone(),
        clock: clock.clone(),
        groups: vec!["stats"],
        retention: chrono::Duration::hours(168),
    };
    let backlog = housekeeping.backlog().await;
    assert_eq!(
        backlog.outbox,
        Some(OutboxBacklog {
            unpublished: 1,
            oldest: Some(event.event.meta().occurred_at)
        })
    );
    assert_eq!(backlog.behind, [("stats", 2)]);
    housekeeping.purge().await;
    let cut_off = clock.now() - chrono::Duration::hours(168);
    assert_eq!(outbox.purged_before(), [cut_off]);
    assert_eq!(inbox.purged_before(), [cut_off]);
    assert_eq!(
        db.purges(),
        [
            ("refresh tokens", clock.now()),
            ("idempotency keys", clock.now())
        ],
        "what has expired goes whatever the retention"
    );
}
