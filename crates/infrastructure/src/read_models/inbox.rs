//! The inbox: the ids of the events each handler applied, recorded in the write
//! transaction of the handler's effect (a `database::Session` in the event's tenant).

use application::ports::{EventEnvelope, Inbox, RepositoryError};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, DatabaseTransaction, EntityTrait, QueryFilter};
use uuid::Uuid;

use super::entity::processed_events::{self, Column};
use crate::database::{Access, Database, Scope, Session};
use crate::persistence::repository_error;

/// The write transaction `consumer` applies `envelope` in, in the event's tenant, with
/// the event recorded as applied; `None` when it had been already, and nothing must
/// change.
pub(super) async fn begin_applying(
    db: &Database,
    consumer: &str,
    envelope: &EventEnvelope,
) -> Result<Option<Session>, RepositoryError> {
    let tenant = envelope.event.meta().tenant_id;
    let write = db.session(Scope::Tenant(tenant), Access::Write).await?;
    let first = record(&write, consumer, envelope.id, Utc::now()).await?;
    Ok(first.then_some(write))
}

/// Records that `consumer` applied `event`; `false` when it had already, and the caller
/// must then change nothing. Concurrent deliveries of one event race on the primary
/// key: the second waits for the first transaction and then finds the record.
pub(super) async fn record(
    tx: &DatabaseTransaction,
    consumer: &str,
    event: Uuid,
    now: DateTime<Utc>,
) -> Result<bool, RepositoryError> {
    let inserted = processed_events::Entity::insert(processed_events::ActiveModel {
        consumer: Set(consumer.to_owned()),
        event_id: Set(event),
        processed_at: Set(now),
    })
    .on_conflict(
        OnConflict::columns([Column::Consumer, Column::EventId])
            .do_nothing()
            .to_owned(),
    )
    .exec_without_returning(tx)
    .await
    .map_err(|error| repository_error(error, "recording a processed event"))?;
    Ok(inserted == 1)
}

/// The inbox's upkeep. Its records only need to outlive the redeliveries of their
/// events: once the bus has dropped an event (acknowledged, trimmed from the stream),
/// its record is dead weight.
#[derive(Debug, Clone)]
pub struct SqlInbox {
    db: Database,
}

impl SqlInbox {
    #[must_use]
    pub fn new(db: Database) -> Self {
        Self { db }
    }
}

#[async_trait]
impl Inbox for SqlInbox {
    /// Deletes the records, of every handler, of events processed before `before`;
    /// returns how many. Choose `before` well past the bus's longest redelivery
    /// window: an event redelivered after its record is gone is applied again.
    #[tracing::instrument(skip_all)]
    async fn purge_processed(&self, before: DateTime<Utc>) -> Result<u64, RepositoryError> {
        let db = self.db.session(Scope::AllTenants, Access::Write).await?;
        let deleted = processed_events::Entity::delete_many()
            .filter(Column::ProcessedAt.lt(before))
            .exec(&*db)
            .await
            .map_err(|error| repository_error(error, "purging processed events"))?;
        db.commit().await?;
        Ok(deleted.rows_affected)
    }
}

#[cfg(test)]
mod tests {
    use crate::database::Database;
    use application::ports::EventHandler;
    use domain::TenantId;

    use super::*;
    use crate::read_models::fixtures::{created, new_id, task};
    use crate::read_models::{SqlAuditLog, SqlTaskStats};

    async fn each_handler_has_its_own_record_of_an_event(db: Database) {
        let handlers: [Box<dyn EventHandler>; 2] = [
            Box::new(SqlTaskStats::new(db.clone())),
            Box::new(SqlAuditLog::new(db)),
        ];
        let event = created(TenantId::from_uuid(new_id()), task(), None, None, 1);
        for handler in &handlers {
            assert!(handler.handle(&event).await.unwrap(), "{}", handler.name());
        }
        for handler in &handlers {
            assert!(!handler.handle(&event).await.unwrap(), "{}", handler.name());
        }
    }

    async fn purging_forgets_only_the_events_processed_before_the_cutoff(db: Database) {
        let inbox = SqlInbox::new(db.clone());
        let write = db.session(Scope::AllTenants, Access::Write).await.unwrap();
        let (old, recent) = (new_id(), new_id());
        let cutoff = Utc::now();
        let an_hour = chrono::TimeDelta::hours(1);
        assert!(record(&write, "a", old, cutoff - an_hour).await.unwrap());
        assert!(record(&write, "b", old, cutoff - an_hour).await.unwrap());
        assert!(record(&write, "a", recent, cutoff).await.unwrap());
        write.commit().await.unwrap();
        assert_eq!(inbox.purge_processed(cutoff).await.unwrap(), 2);
        let write = db.session(Scope::AllTenants, Access::Write).await.unwrap();
        assert!(record(&write, "a", old, cutoff).await.unwrap(), "forgotten");
        assert!(!record(&write, "a", recent, cutoff).await.unwrap(), "kept");
    }

    crate::on_every_backend!(
        each_handler_has_its_own_record_of_an_event,
        purging_forgets_only_the_events_processed_before_the_cutoff,
    );
}
