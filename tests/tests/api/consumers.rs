//! A consumer that dies mid-stream: it applied part of a batch and acknowledged none
//! of it. Once another consumer of its group takes the messages over, every event is
//! applied exactly once: the ones the dead consumer applied come back and change
//! nothing (the inbox), the others are applied. On the in-process bus and on Redis.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use application::ports::{
    EventEnvelope, EventHandler, EventPublisher, EventSubscriber, Outbox, RepositoryError,
};
use async_trait::async_trait;
use infrastructure::database::Database;
use infrastructure::redis_pool::Redis;
use infrastructure::{
    InProcessBus, RedisStreamBus, SqlAuditLog, SqlInbox, SqlOutbox, SqlTaskStats, StreamConfig,
    SystemClock,
};
use keystone_tests::{Account, TestApp, embedded_settings, eventually, spawn_app_with};
use serde_json::json;
use server::settings::Settings;
use server::worker::{WorkerConfig, Workers};

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

async fn dies_mid_stream_then_every_event_is_applied_once(
    settings: Settings,
    bus: (Arc<dyn EventPublisher>, Arc<dyn EventSubscriber>),
) {
    let (publisher, subscriber) = bus;
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
    let workers = Workers {
        outbox: Arc::new(outbox),
        publisher,
        subscriber,
        handlers: vec![Arc::new(stats), Arc::new(audit)],
        inbox: SqlInbox::new(db.clone()),
        clock: Arc::new(SystemClock),
        lag: None,
        config: WorkerConfig {
            relay_batch: 100,
            relay_interval: Duration::from_millis(50),
            relay_max_backoff: Duration::from_millis(500),
            retention: Duration::from_hours(1),
            receive_wait: Duration::from_millis(200),
            consumer_name: "survivor".to_owned(),
        },
    }
    .spawn();

    eventually(
        "the survivor takes over",
        Duration::from_secs(20),
        || async {
            (stats_applied.load(Ordering::SeqCst) + stats_duplicates.load(Ordering::SeqCst) >= 16
                && audit_applied.load(Ordering::SeqCst) >= 16)
                .then_some(())
        },
    )
    .await;
    // Let any further redelivery show up before counting.
    actix_web::rt::time::sleep(CLAIM_IDLE * 2).await;
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

fn without_workers(mut settings: Settings) -> Settings {
    settings.events.run_in_server = false;
    settings
}

#[actix_web::test]
async fn a_consumer_that_dies_mid_stream_loses_nothing_and_applies_nothing_twice_in_process() {
    let bus = InProcessBus::new(1_000, CLAIM_IDLE);
    dies_mid_stream_then_every_event_is_applied_once(
        without_workers(embedded_settings().await),
        (Arc::new(bus.clone()), Arc::new(bus)),
    )
    .await;
}

#[actix_web::test]
async fn a_consumer_that_dies_mid_stream_loses_nothing_and_applies_nothing_twice_on_redis() {
    let Some((redis, prefix)): Option<(Redis, String)> = infrastructure::testing::redis() else {
        eprintln!("skipped: set TEST_REDIS_URL to run the consumer test on Redis");
        return;
    };
    let bus = RedisStreamBus::new(
        redis,
        StreamConfig {
            stream: format!("{prefix}:events"),
            max_len: 1_000,
            claim_idle: CLAIM_IDLE,
        },
    );
    dies_mid_stream_then_every_event_is_applied_once(
        without_workers(keystone_tests::test_settings().await),
        (Arc::new(bus.clone()), Arc::new(bus)),
    )
    .await;
}
