//! A consumer that dies mid-stream: it applied part of a batch and acknowledged none
//! of it. Once another consumer of its group takes the messages over, every event is
//! applied exactly once: the ones the dead consumer applied come back and change
//! nothing (the inbox), the others are applied. On the in-process bus and on Redis.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use application::events::{Consumer, ConsumerPolicy, Housekeeping, Relay, RelayPolicy};
use application::ports::{
    EventEnvelope, EventHandler, EventPublisher, EventSubscriber, Outbox, RepositoryError,
};
use async_trait::async_trait;
use infrastructure::database::Database;
use infrastructure::testing::TestRedis;
use infrastructure::{
    InProcessBus, RedisStreamBus, SqlAuditLog, SqlIdempotencyKeys, SqlInbox, SqlOutbox,
    SqlRefreshTokens, SqlTaskStats, StreamConfig, SystemClock,
};
use keystone_tests::{
    Account, TestApp, TestSettings, embedded_settings, eventually, services_settings,
    spawn_app_with,
};
use serde_json::json;
use server::worker::Workers;

const CLAIM_IDLE: Duration = Duration::from_secs(1);

/// Counts what its handler did.
struct Counting<H> {
    inner: H,
    applied: Arc<AtomicU64>,
    duplicates: Arc<AtomicU64>,
}

impl<H> Counting<H> {
    fn new(inner: H) -> Self {
        Self {
            inner,
            applied: Arc::default(),
            duplicates: Arc::default(),
        }
    }
}

#[async_trait]
impl<H: EventHandler> EventHandler for Counting<H> {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    async fn handle(&self, envelope: &EventEnvelope) -> Result<bool, RepositoryError> {
        let applied = self.inner.handle(envelope).await?;
        let counter = if applied {
            &self.applied
        } else {
            &self.duplicates
        };
        counter.fetch_add(1, Ordering::SeqCst);
        Ok(applied)
    }
}

async fn history(app: &TestApp) -> Account {
    let admin = app.register("ada@example.com").await;
    for title in ["one", "two", "three", "four", "five"] {
        let task = app
            .create_task(
                &admin,
                &json!({"title": title, "assignee_id": admin.user_id}),
            )
            .await;
        let id = task["id"].as_str().unwrap();
        for action in ["start", "complete"] {
            app.request(
                "POST",
                &format!("/api/v1/tasks/{id}/{action}"),
                Some(&admin.access_token),
                None,
            )
            .await;
        }
    }
    admin
}

/// The relay and a consumer per handler, named "survivor", on `bus`.
fn survivor(
    db: Database,
    outbox: Arc<dyn Outbox>,
    bus: (Arc<dyn EventPublisher>, Arc<dyn EventSubscriber>),
    handlers: Vec<Arc<dyn EventHandler>>,
) -> Workers {
    let (publisher, subscriber) = bus;
    Workers {
        relay: Relay::new(
            outbox.clone(),
            publisher,
            RelayPolicy {
                batch: 100,
                interval: Duration::from_millis(50),
                initial_backoff: Duration::from_millis(50),
                max_backoff: Duration::from_millis(500),
            },
        ),
        housekeeping: Housekeeping {
            outbox,
            inbox: Arc::new(SqlInbox::new(db.clone())),
            refresh_tokens: Arc::new(SqlRefreshTokens::new(
                db.clone(),
                Duration::from_hours(1),
                Duration::from_hours(1),
            )),
            keys: Arc::new(SqlIdempotencyKeys::new(db)),
            subscriber: subscriber.clone(),
            clock: Arc::new(SystemClock),
            groups: handlers.iter().map(|handler| handler.name()).collect(),
            retention: chrono::Duration::hours(1),
        },
        consumers: handlers
            .into_iter()
            .map(|handler| {
                let policy = ConsumerPolicy {
                    name: "survivor".to_owned(),
                    batch: 100,
                    receive_wait: Duration::from_millis(200),
                    initial_backoff: Duration::from_millis(50),
                    max_backoff: Duration::from_millis(500),
                };
                Consumer::new(subscriber.clone(), handler, policy)
            })
            .collect(),
    }
}

/// A bus that can tell how many messages a group was handed and has not acknowledged.
trait Bus: EventPublisher + EventSubscriber + Clone + 'static {
    async fn pending(&self, group: &'static str) -> u64;
}

impl Bus for InProcessBus {
    async fn pending(&self, group: &'static str) -> u64 {
        InProcessBus::pending(self, group)
    }
}

impl Bus for RedisStreamBus {
    async fn pending(&self, group: &'static str) -> u64 {
        RedisStreamBus::pending(self, group).await
    }
}

async fn dies_mid_stream_then_every_event_is_applied_once(settings: TestSettings, bus: impl Bus) {
    let (publisher, subscriber): (Arc<dyn EventPublisher>, Arc<dyn EventSubscriber>) =
        (Arc::new(bus.clone()), Arc::new(bus.clone()));
    let app = spawn_app_with(settings.clone()).await;
    let admin = history(&app).await;
    let db: Database =
        infrastructure::testing::connect(settings.database.url.expose().to_owned()).await;
    let outbox = SqlOutbox::new(db.clone());
    let mut relayed = 0;
    loop {
        let batch = outbox.relay(1_000, publisher.as_ref()).await.unwrap();
        if batch == 0 {
            break;
        }
        relayed += batch;
    }
    // user.registered, then created, started and completed for each of five tasks.
    assert_eq!(relayed, 16);

    // The doomed consumer applies the first half of its batch, then dies: no ack.
    let stats = Counting::new(SqlTaskStats::new(db.clone()));
    let doomed = Counting::new(SqlTaskStats::new(db.clone()));
    let batch = subscriber
        .receive(stats.name(), "doomed", 100, Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(batch.len(), 16);
    for delivery in &batch[..8] {
        assert!(
            doomed
                .handle(delivery.envelope.as_ref().unwrap())
                .await
                .unwrap()
        );
    }
    drop(batch);

    let stats_applied = stats.applied.clone();
    let stats_duplicates = stats.duplicates.clone();
    let audit = Counting::new(SqlAuditLog::new(db.clone()));
    let audit_applied = audit.applied.clone();
    let groups = [stats.name(), audit.name()];
    let workers = survivor(
        db.clone(),
        Arc::new(outbox),
        (publisher, subscriber),
        vec![Arc::new(stats), Arc::new(audit)],
    )
    .spawn();

    // Once both groups handled all 16 and acknowledged every message, nothing is left
    // that could come back: the counts below are final.
    eventually(
        "the survivor takes over and acknowledges everything",
        Duration::from_secs(20),
        || async {
            let handled = stats_applied.load(Ordering::SeqCst)
                + stats_duplicates.load(Ordering::SeqCst)
                >= 16
                && audit_applied.load(Ordering::SeqCst) >= 16;
            let acknowledged =
                bus.pending(groups[0]).await == 0 && bus.pending(groups[1]).await == 0;
            (handled && acknowledged).then_some(())
        },
    )
    .await;
    workers.stop().await;

    assert_eq!(doomed.applied.load(Ordering::SeqCst), 8);
    assert_eq!(
        stats_applied.load(Ordering::SeqCst),
        8,
        "the other half, once"
    );
    assert_eq!(
        stats_duplicates.load(Ordering::SeqCst),
        8,
        "the dead consumer's half came back and changed nothing"
    );
    assert_eq!(audit_applied.load(Ordering::SeqCst), 16);
    let figures = app
        .get(
            &format!("/api/v1/users/{}/task-stats", admin.user_id),
            &admin.access_token,
        )
        .await;
    assert_eq!(figures.body["done"], 5, "{}", figures.text);
    assert_eq!(figures.body["assigned_total"], 5, "{}", figures.text);
    assert_eq!(figures.body["in_progress"], 0, "{}", figures.text);
}

fn without_workers(mut settings: TestSettings) -> TestSettings {
    settings.events.run_in_server = false;
    settings
}

#[actix_web::test]
async fn a_consumer_that_dies_mid_stream_loses_nothing_and_applies_nothing_twice_in_process() {
    let bus = InProcessBus::new(1_000, CLAIM_IDLE);
    dies_mid_stream_then_every_event_is_applied_once(
        without_workers(embedded_settings().await),
        bus,
    )
    .await;
}

#[actix_web::test]
#[ignore = "needs PostgreSQL and Redis, run by `just test-all`"]
async fn a_consumer_that_dies_mid_stream_loses_nothing_and_applies_nothing_twice_on_redis() {
    let settings = without_workers(services_settings().await);
    // A stream of its own beside the app's namespace, dropped with the test's keys.
    let redis = TestRedis::new().await;
    let bus = RedisStreamBus::new(
        redis.redis.clone(),
        StreamConfig {
            stream: format!("{}:events", redis.namespace),
            max_len: 1_000,
            claim_idle: CLAIM_IDLE,
        },
    );
    dies_mid_stream_then_every_event_is_applied_once(settings, bus).await;
    drop(redis);
}
