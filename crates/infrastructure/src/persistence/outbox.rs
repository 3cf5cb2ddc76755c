//! The outbox: events stored in the transaction that changed their aggregate, for a
//! relay to publish after commit. An event is never published for a change that was
//! rolled back, and never lost for one that committed.
//!
//! `SqlOutbox` is the relay's side. It publishes the oldest unpublished events, in the
//! order they occurred (then by id, which orders the events of one change), and marks
//! them published only once the bus took them: delivery is at least once, and a bus
//! that is down costs a retry, never an event.
//!
//! Only one relay works at a time, per database. On `PostgreSQL` several replicas run
//! relays and each batch starts by taking a transaction-scoped advisory lock with
//! `pg_try_advisory_xact_lock`; a relay that finds it taken publishes nothing this time
//! round. `FOR UPDATE SKIP LOCKED` would spread the work across replicas but break the
//! order: while one relay holds the oldest batch, another would skip past it, take the
//! next one and could publish an aggregate's later events before its earlier ones. One
//! relay at a time publishes in order, and a batch of a few hundred events per round
//! trip is more than the write side produces. On `SQLite` there is one relay per
//! process; a lock inside `SqlOutbox` keeps the clones of one outbox from overlapping.
//! That relay does not hold `SQLite`'s one write lock while the bus takes the batch, as
//! a transaction would: every writer of the service would wait for the bus (up to its
//! timeout when it is down). It reads, publishes, then marks, which is safe because
//! nothing else writes the rows it read in between (the purge deletes published rows
//! only).
//!
//! A row that does not decode into an event (written by hand, or by a newer version that
//! knows a type this one does not) is marked published with its batch, logged as an
//! error and counted (`keystone_outbox_undecodable_total`), instead of blocking every
//! event after it forever. It stays in the table until the retention purges it, for
//! whoever investigates.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use application::ports::{
    EventEnvelope, EventPublisher, Outbox, OutboxBacklog, RelayError, RepositoryError,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::DomainEvent;
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseTransaction, DbBackend, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, Statement, TransactionTrait,
};
use tokio::sync::Mutex;
use uuid::Uuid;

use super::entity::outbox::{self, Column};
use super::repository_error;
use crate::database::{Access, Database, Scope};
use crate::events::{OUTBOX_RELAY_FAILURES, OUTBOX_RELAYED, OUTBOX_UNDECODABLE, envelope};

/// The key of the advisory lock a relay holds on `PostgreSQL` while it publishes a
/// batch: "keystone" in ASCII, so it is recognisable in `pg_locks`.
const RELAY_LOCK_KEY: i64 = 0x6b65_7973_746f_6e65;

/// Stores `events` in the outbox, with the version their aggregate reached with this
/// change. It takes a transaction, not a connection, because events written apart from
/// their aggregate's rows would defeat the point.
pub(super) async fn append(
    transaction: &DatabaseTransaction,
    events: &[DomainEvent],
    aggregate_version: i64,
) -> Result<(), RepositoryError> {
    // UUIDv7 ids made here, in order, keep the events of one change in order.
    let rows = events
        .iter()
        .map(|event| outbox_row(Uuid::now_v7(), event, aggregate_version));
    outbox::Entity::insert_many(rows.collect::<Vec<_>>())
        .exec_without_returning(transaction)
        .await
        .map_err(|error| repository_error(error, "storing events in the outbox"))?;
    Ok(())
}

/// The outbox row of `event`, unpublished, with `id` as its key. The columns beside the
/// payload say what the relay and the purge select by; the payload is the event's one
/// JSON (`events::envelope`), the message the bus will carry.
fn outbox_row(id: Uuid, event: &DomainEvent, aggregate_version: i64) -> outbox::ActiveModel {
    let meta = event.meta();
    let (aggregate_type, aggregate_id) = event.aggregate();
    outbox::ActiveModel {
        id: Set(id),
        tenant_id: Set(meta.tenant_id.as_uuid()),
        aggregate_type: Set(aggregate_type.to_owned()),
        aggregate_id: Set(aggregate_id),
        event_type: Set(event.name().to_owned()),
        payload: Set(envelope::encode(id, aggregate_version, event)),
        occurred_at: Set(meta.occurred_at),
        published_at: Set(None),
        aggregate_version: Set(aggregate_version),
    }
}

/// The event a stored row holds, as long as its payload agrees with its columns.
fn envelope_from_row(row: &outbox::Model) -> anyhow::Result<EventEnvelope> {
    let envelope = envelope::decode(&row.payload)?;
    anyhow::ensure!(
        envelope.id == row.id
            && envelope.aggregate_version == row.aggregate_version
            && envelope.event.name() == row.event_type
            && envelope.event.aggregate().1 == row.aggregate_id,
        "the payload contradicts its row"
    );
    Ok(envelope)
}

/// The outbox table, from the relay's side. Cloning it is cheap and shares the lock
/// that keeps its relays one at a time.
#[derive(Debug, Clone)]
pub struct SqlOutbox {
    db: Database,
    relaying: Arc<Mutex<()>>,
}

impl SqlOutbox {
    /// The relay's side of the outbox of `db`. On `SQLite` make one per process and
    /// share it (clone it): two separate ones could publish the same batch twice.
    #[must_use]
    pub fn new(db: Database) -> Self {
        Self {
            db,
            relaying: Arc::default(),
        }
    }
}

#[async_trait]
impl Outbox for SqlOutbox {
    /// Woken by this process's commits and, on `PostgreSQL`, by every replica's
    /// (`database::wake`); no query runs while it waits.
    async fn written(&self, at_most: Duration) {
        self.db.wake().wait(self.db.ungated(), at_most).await;
    }

    /// Publishes the oldest `limit` unpublished events, or nothing (`Ok(0)`) when
    /// another relay is at work. Returns how many events the bus took; undecodable rows
    /// in the batch are marked too but not counted.
    #[tracing::instrument(skip_all, fields(limit = limit))]
    async fn relay(&self, limit: u64, publisher: &dyn EventPublisher) -> Result<u64, RelayError> {
        let Ok(_relaying) = self.relaying.try_lock() else {
            return Ok(0);
        };
        let db = self.db.acquire().await?;
        if db.get_database_backend() != DbBackend::Postgres {
            // No transaction, so the write lock is not held while the bus is called;
            // this process's one relay at a time is the lock above.
            return relay_batch(&*db, limit, publisher).await;
        }
        let transaction = db
            .begin()
            .await
            .map_err(|error| repository_error(error, "starting the relay's transaction"))?;
        // The relay publishes every tenant's events.
        Scope::AllTenants
            .enter(&transaction)
            .await
            .map_err(|error| repository_error(error, "naming the relay's scope"))?;
        if !take_relay_lock(&transaction).await? {
            return Ok(0);
        }
        let published = relay_batch(&transaction, limit, publisher).await?;
        transaction
            .commit()
            .await
            .map_err(|error| repository_error(error, "committing the relayed events"))?;
        Ok(published)
    }

    #[tracing::instrument(skip_all, fields(%before))]
    async fn purge_published(&self, before: DateTime<Utc>) -> Result<u64, RepositoryError> {
        let db = self.db.session(Scope::AllTenants, Access::Write).await?;
        let purged = outbox::Entity::delete_many()
            .filter(Column::PublishedAt.is_not_null())
            .filter(Column::PublishedAt.lt(before))
            .exec(&*db)
            .await
            .map_err(|error| repository_error(error, "purging published events"))?;
        db.commit().await?;
        Ok(purged.rows_affected)
    }

    #[tracing::instrument(skip_all)]
    async fn backlog(&self) -> Result<OutboxBacklog, RepositoryError> {
        let db = self.db.session(Scope::AllTenants, Access::Read).await?;
        let unpublished = outbox::Entity::find()
            .filter(Column::PublishedAt.is_null())
            .count(&*db)
            .await
            .map_err(|error| repository_error(error, "counting unpublished events"))?;
        let oldest = oldest_unpublished(&db).await?;
        db.commit().await?;
        Ok(OutboxBacklog {
            unpublished,
            oldest,
        })
    }
}

/// Whether this transaction now holds the relay's lock (until it ends), rather than
/// another relay.
async fn take_relay_lock(transaction: &DatabaseTransaction) -> Result<bool, RepositoryError> {
    let statement = Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT pg_try_advisory_xact_lock($1) AS locked",
        [RELAY_LOCK_KEY.into()],
    );
    let doing = "taking the relay's lock";
    transaction
        .query_one_raw(statement)
        .await
        .map_err(|error| repository_error(error, doing))?
        .map(|row| row.try_get::<bool>("", "locked"))
        .transpose()
        .map_err(|error| repository_error(error, doing))
        .map(|locked| locked.unwrap_or(false))
}

/// Reads the oldest `limit` unpublished rows, hands their events to `publisher` and
/// marks the rows published once it took them.
async fn relay_batch(
    db: &impl ConnectionTrait,
    limit: u64,
    publisher: &dyn EventPublisher,
) -> Result<u64, RelayError> {
    let rows = outbox::Entity::find()
        .filter(Column::PublishedAt.is_null())
        .order_by_asc(Column::OccurredAt)
        .order_by_asc(Column::Id)
        .limit(limit)
        .all(db)
        .await
        .map_err(|error| repository_error(error, "reading unpublished events"))?;
    let rows = in_version_order(rows);
    if rows.is_empty() {
        return Ok(0);
    }
    let ids: Vec<Uuid> = rows.iter().map(|row| row.id).collect();
    let batch: Vec<EventEnvelope> = rows.iter().filter_map(decoded).collect();
    if !batch.is_empty()
        && let Err(error) = publisher.publish(&batch).await
    {
        metrics::counter!(OUTBOX_RELAY_FAILURES).increment(1);
        return Err(RelayError::Publish(error));
    }
    outbox::Entity::update_many()
        .col_expr(Column::PublishedAt, Expr::value(Utc::now()))
        .filter(Column::Id.is_in(ids))
        .exec(db)
        .await
        .map_err(|error| repository_error(error, "marking events published"))?;
    let relayed = batch.len() as u64;
    metrics::counter!(OUTBOX_RELAYED).increment(relayed);
    Ok(relayed)
}

/// The batch with the events of each aggregate in the order of the versions they
/// recorded, in the places the batch gave that aggregate. Occurrence times come from
/// the clocks of the replicas that made the changes; a replica whose clock is behind
/// can stamp a later change of an aggregate with an earlier time. Versions cannot go
/// back: a change reads the aggregate under a row lock after the previous one
/// committed. Events stored before versions existed (-1) keep their order.
fn in_version_order(rows: Vec<outbox::Model>) -> Vec<outbox::Model> {
    let mut places: HashMap<Uuid, Vec<usize>> = HashMap::new();
    for (place, row) in rows.iter().enumerate() {
        places.entry(row.aggregate_id).or_default().push(place);
    }
    let mut slots: Vec<Option<outbox::Model>> = rows.into_iter().map(Some).collect();
    let mut ordered: Vec<Option<outbox::Model>> = vec![None; slots.len()];
    for places in places.into_values() {
        let mut group: Vec<outbox::Model> = places
            .iter()
            .filter_map(|&place| slots[place].take())
            .collect();
        // Stable: events of one change (one version) keep the order they were stored in.
        group.sort_by_key(|row| row.aggregate_version);
        for (place, row) in places.into_iter().zip(group) {
            ordered[place] = Some(row);
        }
    }
    ordered.into_iter().flatten().collect()
}

/// The event `row` holds; `None`, logged and counted, when it holds none this version
/// can read.
fn decoded(row: &outbox::Model) -> Option<EventEnvelope> {
    match envelope_from_row(row) {
        Ok(envelope) => Some(envelope),
        Err(error) => {
            metrics::counter!(OUTBOX_UNDECODABLE).increment(1);
            tracing::error!(
                event_id = %row.id,
                event_type = %row.event_type,
                error = format!("{error:#}"),
                "an outbox row holds no event this version can read; it is set aside, unpublished"
            );
            None
        }
    }
}

async fn oldest_unpublished(
    db: &DatabaseTransaction,
) -> Result<Option<DateTime<Utc>>, RepositoryError> {
    outbox::Entity::find()
        .select_only()
        .column(Column::OccurredAt)
        .filter(Column::PublishedAt.is_null())
        .order_by_asc(Column::OccurredAt)
        .order_by_asc(Column::Id)
        .into_tuple::<DateTime<Utc>>()
        .one(db)
        .await
        .map_err(|error| repository_error(error, "reading the oldest unpublished event"))
}

/// Every stored event, oldest first.
#[cfg(test)]
pub(super) async fn stored(db: &crate::database::Database) -> Vec<outbox::Model> {
    outbox::Entity::find()
        .order_by_asc(Column::Id)
        .all(db.ungated())
        .await
        .expect("reading the outbox")
}

#[cfg(test)]
mod tests {
    use crate::database::Database;
    use domain::Aggregate;
    use std::collections::HashMap;
    use std::sync::Mutex as StdMutex;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    use application::ports::UnitOfWork as _;
    use chrono::{TimeDelta, TimeZone};
    use domain::{
        ActiveAdmins, Email, EventMeta, PasswordHash, Role, TaskId, Tenant, TenantId, TenantName,
        User, UserId, Username,
    };
    use sea_orm::ActiveValue::Set;

    use super::*;
    use crate::persistence::SqlUnitOfWork;
    use crate::testing::open_two_connections;

    fn at(second: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, second).unwrap()
    }

    /// A bus that remembers what it was handed, or refuses it while told to.
    #[derive(Default)]
    struct Bus {
        published: StdMutex<Vec<EventEnvelope>>,
        refusing: AtomicBool,
        /// How long it takes to accept a batch, so relays overlap.
        latency: Duration,
    }

    impl Bus {
        fn published(&self) -> Vec<EventEnvelope> {
            self.published.lock().unwrap().clone()
        }

        fn published_ids(&self) -> Vec<Uuid> {
            self.published()
                .iter()
                .map(|envelope| envelope.id)
                .collect()
        }
    }

    #[async_trait]
    impl EventPublisher for Bus {
        async fn publish(&self, events: &[EventEnvelope]) -> anyhow::Result<()> {
            tokio::time::sleep(self.latency).await;
            anyhow::ensure!(!self.refusing.load(Ordering::SeqCst), "the bus is down");
            self.published.lock().unwrap().extend_from_slice(events);
            Ok(())
        }
    }

    struct Stored {
        id: Uuid,
        event: DomainEvent,
    }

    fn started(task: TaskId, occurred_at: DateTime<Utc>) -> DomainEvent {
        DomainEvent::from(domain::TaskEvent {
            meta: EventMeta {
                tenant_id: TenantId::from_uuid(Uuid::nil()),
                actor: UserId::from_uuid(Uuid::now_v7()),
                occurred_at,
            },
            task_id: task,
            fact: domain::TaskFact::Started,
        })
    }

    /// Stores `events`, each in a change of its own, in this order.
    async fn store(db: &Database, events: Vec<DomainEvent>) -> Vec<Stored> {
        let transaction = db.ungated().begin().await.unwrap();
        for event in &events {
            append(&transaction, std::slice::from_ref(event), 1)
                .await
                .unwrap();
        }
        transaction.commit().await.unwrap();
        let rows = stored(db).await;
        let rows = &rows[rows.len() - events.len()..];
        rows.iter()
            .zip(events)
            .map(|(row, event)| Stored { id: row.id, event })
            .collect()
    }

    async fn store_tasks_started(db: &Database, count: u32) -> Vec<Stored> {
        let events = (0..count)
            .map(|n| started(TaskId::from_uuid(Uuid::now_v7()), at(n % 60)))
            .collect();
        store(db, events).await
    }

    /// Relays until the backlog is empty; how many relays published something.
    async fn drain(outbox: &SqlOutbox, limit: u64, bus: &Bus) -> usize {
        let mut rounds = 0;
        while outbox.backlog().await.unwrap().unpublished > 0 {
            if outbox.relay(limit, bus).await.unwrap() > 0 {
                rounds += 1;
            } else {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        rounds
    }

    async fn events_are_published_in_order_of_occurrence_and_so_in_order_per_aggregate(
        db: Database,
    ) {
        let (a, b) = (
            TaskId::from_uuid(Uuid::now_v7()),
            TaskId::from_uuid(Uuid::now_v7()),
        );
        // Stored out of order: occurrence, not storage, decides; two events of one
        // instant keep the order they were stored in.
        let stored = store(
            &db,
            vec![
                started(a, at(5)),
                started(a, at(1)),
                started(b, at(2)),
                started(a, at(3)),
                started(b, at(3)),
            ],
        )
        .await;
        let bus = Bus::default();
        let outbox = SqlOutbox::new(db);
        assert_eq!(drain(&outbox, 2, &bus).await, 3, "batches of two");
        let expected: Vec<Uuid> = [1, 2, 3, 4, 0].iter().map(|&i| stored[i].id).collect();
        assert_eq!(bus.published_ids(), expected);
        let of_a: Vec<DateTime<Utc>> = bus
            .published()
            .iter()
            .filter(|envelope| envelope.event.aggregate().1 == a.as_uuid())
            .map(|envelope| envelope.event.meta().occurred_at)
            .collect();
        assert_eq!(of_a, [at(1), at(3), at(5)]);
        let first = &bus.published()[0];
        assert_eq!(first.event, stored[1].event);
        assert_eq!(first.aggregate_version, 1);
    }

    /// A replica with a clock behind stamped the second change of `a` earlier than the
    /// first: within a batch, the versions decide an aggregate's order.
    async fn a_skewed_clock_cannot_reorder_the_changes_of_an_aggregate_within_a_batch(
        db: Database,
    ) {
        let (a, b) = (
            TaskId::from_uuid(Uuid::now_v7()),
            TaskId::from_uuid(Uuid::now_v7()),
        );
        let transaction = db.ungated().begin().await.unwrap();
        for (event, version) in [
            (started(a, at(3)), 1),
            (started(b, at(2)), 1),
            (started(a, at(1)), 2),
        ] {
            append(&transaction, std::slice::from_ref(&event), version)
                .await
                .unwrap();
        }
        transaction.commit().await.unwrap();
        let bus = Bus::default();
        assert_eq!(SqlOutbox::new(db).relay(10, &bus).await.unwrap(), 3);
        let published: Vec<(Uuid, i64)> = bus
            .published()
            .iter()
            .map(|envelope| (envelope.event.aggregate().1, envelope.aggregate_version))
            .collect();
        // a's places are first and last (by time); its versions fill them in order.
        assert_eq!(
            published,
            [(a.as_uuid(), 1), (b.as_uuid(), 1), (a.as_uuid(), 2)]
        );
    }

    async fn a_refused_batch_stays_unpublished_and_a_later_relay_publishes_it_once(db: Database) {
        let stored = store_tasks_started(&db, 5).await;
        let outbox = SqlOutbox::new(db);
        let bus = Bus::default();
        bus.refusing.store(true, Ordering::SeqCst);
        let refused = outbox.relay(10, &bus).await;
        assert!(
            matches!(refused, Err(RelayError::Publish(_))),
            "{refused:?}"
        );
        assert_eq!(outbox.backlog().await.unwrap().unpublished, 5);

        bus.refusing.store(false, Ordering::SeqCst);
        assert_eq!(outbox.relay(10, &bus).await.unwrap(), 5);
        assert_eq!(outbox.relay(10, &bus).await.unwrap(), 0);
        let ids: Vec<Uuid> = stored.iter().map(|stored| stored.id).collect();
        assert_eq!(bus.published_ids(), ids);
        assert_eq!(outbox.backlog().await.unwrap(), OutboxBacklog::default());
    }

    async fn relays_running_at_once_publish_every_event_exactly_once_and_in_order(db: Database) {
        let stored = store_tasks_started(&db, 40).await;
        open_two_connections(&db).await;
        // Replicas on PostgreSQL share nothing but the database; on SQLite the
        // relays of one process share the outbox.
        let first = SqlOutbox::new(db.clone());
        let second = match db.ungated().get_database_backend() {
            DbBackend::Postgres => SqlOutbox::new(db.clone()),
            _ => first.clone(),
        };
        let bus = Bus {
            latency: Duration::from_millis(20),
            ..Bus::default()
        };
        tokio::join!(drain(&first, 3, &bus), drain(&second, 3, &bus));
        let mut counts: HashMap<Uuid, usize> = HashMap::new();
        for id in bus.published_ids() {
            *counts.entry(id).or_default() += 1;
        }
        assert_eq!(counts.len(), 40);
        assert!(counts.values().all(|&count| count == 1), "{counts:?}");
        let ids: Vec<Uuid> = stored.iter().map(|stored| stored.id).collect();
        let mut expected: Vec<(DateTime<Utc>, Uuid)> = stored
            .iter()
            .map(|stored| (stored.event.meta().occurred_at, stored.id))
            .collect();
        expected.sort();
        let expected: Vec<Uuid> = expected.into_iter().map(|(_, id)| id).collect();
        assert_eq!(bus.published_ids(), expected);
        assert_eq!(ids.len(), 40);
    }

    async fn a_relay_publishes_nothing_while_another_holds_the_lock_on_postgres(db: Database) {
        if db.ungated().get_database_backend() != DbBackend::Postgres {
            return;
        }
        store_tasks_started(&db, 2).await;
        let other = db.ungated().begin().await.unwrap();
        other
            .execute_unprepared(&format!("SELECT pg_advisory_xact_lock({RELAY_LOCK_KEY})"))
            .await
            .unwrap();
        let outbox = SqlOutbox::new(db);
        let bus = Bus::default();
        assert_eq!(outbox.relay(10, &bus).await.unwrap(), 0);
        assert!(bus.published().is_empty());
        other.rollback().await.unwrap();
        assert_eq!(outbox.relay(10, &bus).await.unwrap(), 2);
    }

    async fn a_row_that_holds_no_known_event_is_set_aside_without_blocking_the_others(
        db: Database,
    ) {
        let task = TaskId::from_uuid(Uuid::now_v7());
        let stored = store(&db, vec![started(task, at(1)), started(task, at(3))]).await;
        let unknown = outbox::ActiveModel {
            id: Set(Uuid::now_v7()),
            tenant_id: Set(Uuid::nil()),
            aggregate_type: Set("task".to_owned()),
            aggregate_id: Set(task.as_uuid()),
            event_type: Set("task.archived".to_owned()),
            payload: Set("{}".to_owned()),
            occurred_at: Set(at(2)),
            published_at: Set(None),
            aggregate_version: Set(2),
        };
        outbox::Entity::insert(unknown)
            .exec_without_returning(db.ungated())
            .await
            .unwrap();
        let outbox = SqlOutbox::new(db.clone());
        let bus = Bus::default();
        assert_eq!(outbox.relay(10, &bus).await.unwrap(), 2);
        assert_eq!(bus.published_ids(), [stored[0].id, stored[1].id]);
        assert_eq!(outbox.backlog().await.unwrap().unpublished, 0);
        let kept = stored_rows_of_type(&db, "task.archived").await;
        assert_eq!(kept.len(), 1, "kept for whoever investigates");
        assert!(kept[0].published_at.is_some());
    }

    async fn stored_rows_of_type(db: &Database, event_type: &str) -> Vec<outbox::Model> {
        stored(db)
            .await
            .into_iter()
            .filter(|row| row.event_type == event_type)
            .collect()
    }

    async fn the_purge_removes_only_events_published_before_the_cutoff(db: Database) {
        let stored = store_tasks_started(&db, 3).await;
        let outbox = SqlOutbox::new(db.clone());
        let bus = Bus::default();
        assert_eq!(outbox.relay(2, &bus).await.unwrap(), 2);
        // The first was published a day ago.
        let day_ago = Utc::now() - TimeDelta::days(1);
        outbox::Entity::update_many()
            .col_expr(Column::PublishedAt, Expr::value(day_ago))
            .filter(Column::Id.eq(stored[0].id))
            .exec(db.ungated())
            .await
            .unwrap();

        let hour_ago = Utc::now() - TimeDelta::hours(1);
        assert_eq!(outbox.purge_published(hour_ago).await.unwrap(), 1);
        let left: Vec<Uuid> = stored_ids(&db).await;
        assert_eq!(left, [stored[1].id, stored[2].id]);

        let later = Utc::now() + TimeDelta::minutes(1);
        assert_eq!(outbox.purge_published(later).await.unwrap(), 1);
        assert_eq!(stored_ids(&db).await, [stored[2].id], "unpublished stays");
        assert_eq!(outbox.backlog().await.unwrap().unpublished, 1);
    }

    async fn stored_ids(db: &Database) -> Vec<Uuid> {
        stored(db).await.iter().map(|row| row.id).collect()
    }

    async fn the_backlog_counts_unpublished_events_and_names_the_oldest(db: Database) {
        let outbox = SqlOutbox::new(db.clone());
        assert_eq!(outbox.backlog().await.unwrap(), OutboxBacklog::default());
        let task = TaskId::from_uuid(Uuid::now_v7());
        let events = [5, 2, 9].map(|second| started(task, at(second)));
        store(&db, events.to_vec()).await;
        assert_eq!(
            outbox.backlog().await.unwrap(),
            OutboxBacklog {
                unpublished: 3,
                oldest: Some(at(2)),
            }
        );
        outbox.relay(1, &Bus::default()).await.unwrap();
        assert_eq!(
            outbox.backlog().await.unwrap(),
            OutboxBacklog {
                unpublished: 2,
                oldest: Some(at(5)),
            }
        );
    }

    async fn an_event_carries_the_version_its_aggregate_reached_with_the_change(db: Database) {
        let uow = SqlUnitOfWork::new(db.clone());
        let tenant = Tenant::create(
            TenantId::from_uuid(Uuid::now_v7()),
            TenantName::parse("Acme").unwrap(),
            at(0),
        );
        let user = |email: &str, role| {
            let id = UserId::from_uuid(Uuid::now_v7());
            User::register(
                id,
                id,
                tenant.id(),
                Email::parse(email).unwrap(),
                Username::parse("someone").unwrap(),
                PasswordHash::new("hash".to_owned()),
                role,
                at(0),
            )
        };
        let mut admin = user("admin@example.com", Role::Admin);
        let mut member = user("member@example.com", Role::Member);
        let mut tx = uow.begin().await.unwrap();
        tx.add_tenant(&tenant).await.unwrap();
        for user in [&mut admin, &mut member] {
            let events = user.take_events().into_iter().map(Into::into).collect();
            application::ports::Store::<User>::add(tx.as_mut(), user)
                .await
                .unwrap();
            tx.append_events(events, 0).await.unwrap();
        }
        tx.commit().await.unwrap();
        member
            .deactivate(admin.id(), ActiveAdmins(1), at(1))
            .unwrap();
        let mut tx = uow.begin().await.unwrap();
        let events = member.take_events().into_iter().map(Into::into).collect();
        application::ports::Store::<User>::save(tx.as_mut(), &mut member)
            .await
            .unwrap();
        tx.append_events(events, member.version()).await.unwrap();
        tx.commit().await.unwrap();

        let bus = Bus::default();
        SqlOutbox::new(db).relay(10, &bus).await.unwrap();
        let published: Vec<(&str, i64)> = bus
            .published()
            .iter()
            .map(|envelope| (envelope.event.name(), envelope.aggregate_version))
            .collect();
        assert_eq!(
            published,
            [
                ("user.registered", 0),
                ("user.registered", 0),
                ("user.deactivated", 1)
            ]
        );
    }

    /// On `PostgreSQL`, starts the outbox's listener and waits until it listens, then
    /// takes the wake-up it gives when it starts; on `SQLite` there is nothing to start.
    async fn listening(outbox: &SqlOutbox, db: &Database) {
        if db.ungated().get_database_backend() != DbBackend::Postgres {
            return;
        }
        let started = outbox.written(Duration::from_secs(10));
        let listeners = async {
            let sql = "SELECT COUNT(*) AS n FROM pg_stat_activity \
                WHERE datname = current_database() AND query LIKE 'LISTEN%'";
            for _ in 0..1000 {
                let statement = sea_orm::Statement::from_string(DbBackend::Postgres, sql);
                let row = db
                    .ungated()
                    .query_one_raw(statement)
                    .await
                    .unwrap()
                    .unwrap();
                if row.try_get::<i64>("", "n").unwrap() > 0 {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            panic!("the outbox never listened");
        };
        tokio::join!(started, listeners);
    }

    /// A relay waits on its outbox for up to an hour; the wait must end at `write`.
    async fn wakes_at(outbox: &SqlOutbox, write: impl std::future::Future<Output = ()>) {
        let waiting = tokio::spawn({
            let outbox = outbox.clone();
            async move { outbox.written(Duration::from_hours(1)).await }
        });
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert!(!waiting.is_finished(), "woken before anything was written");
        write.await;
        tokio::time::timeout(Duration::from_secs(10), waiting)
            .await
            .expect("the write woke the waiting relay")
            .unwrap();
    }

    async fn a_commit_that_wrote_events_wakes_the_waiting_relay(db: Database) {
        let outbox = SqlOutbox::new(db.clone());
        listening(&outbox, &db).await;
        let write = async {
            let mut transaction = SqlUnitOfWork::new(db.clone()).begin().await.unwrap();
            let event = started(TaskId::from_uuid(Uuid::now_v7()), at(1));
            transaction.append_events(vec![event], 1).await.unwrap();
            transaction.commit().await.unwrap();
        };
        wakes_at(&outbox, write).await;
    }

    /// Written on another connection, as another replica would: only `NOTIFY` can
    /// tell this process.
    async fn events_another_replica_writes_wake_the_relay_on_postgres(db: Database) {
        if db.ungated().get_database_backend() != DbBackend::Postgres {
            return;
        }
        let outbox = SqlOutbox::new(db.clone());
        listening(&outbox, &db).await;
        let write = async {
            store_tasks_started(&db, 1).await;
        };
        wakes_at(&outbox, write).await;
    }

    crate::on_every_backend!(
        events_are_published_in_order_of_occurrence_and_so_in_order_per_aggregate,
        a_skewed_clock_cannot_reorder_the_changes_of_an_aggregate_within_a_batch,
        a_refused_batch_stays_unpublished_and_a_later_relay_publishes_it_once,
        relays_running_at_once_publish_every_event_exactly_once_and_in_order,
        a_relay_publishes_nothing_while_another_holds_the_lock_on_postgres,
        a_row_that_holds_no_known_event_is_set_aside_without_blocking_the_others,
        the_purge_removes_only_events_published_before_the_cutoff,
        the_backlog_counts_unpublished_events_and_names_the_oldest,
        an_event_carries_the_version_its_aggregate_reached_with_the_change,
        a_commit_that_wrote_events_wakes_the_waiting_relay,
        events_another_replica_writes_wake_the_relay_on_postgres,
    );
}
