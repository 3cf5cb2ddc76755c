//! `SqlAuditLog`: who did what to which aggregate, when, written by the `audit` handler
//! from every event and read a page at a time, newest first.
//!
//! An entry's key is its event's id, so an event is logged once however often it is
//! delivered, even past the purge of its inbox record; and, the id being a UUIDv7,
//! ordering by it orders by time, which makes it the paging cursor too.

use application::ports::{AuditEntry, AuditLog, EventEnvelope, EventHandler, RepositoryError};
use async_trait::async_trait;
use domain::{TenantId, UserId};
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use uuid::Uuid;

use super::entity::audit_log::{self, Column};
use super::inbox::begin_applying;
use crate::database::{Access, Database, Scope};
use crate::persistence::repository_error;

/// The handler's name: its consumer group and its key in the inbox.
const NAME: &str = "audit";

/// The audit log in the `audit_log` table.
#[derive(Debug, Clone)]
pub struct SqlAuditLog {
    db: Database,
}

impl SqlAuditLog {
    #[must_use]
    pub fn new(db: Database) -> Self {
        Self { db }
    }
}

/// The entry an event makes.
fn entry(envelope: &EventEnvelope) -> audit_log::ActiveModel {
    let event = &envelope.event;
    let meta = event.meta();
    let (aggregate_type, aggregate_id) = event.aggregate();
    audit_log::ActiveModel {
        id: Set(envelope.id),
        tenant_id: Set(meta.tenant_id.as_uuid()),
        actor_id: Set(meta.actor.as_uuid()),
        action: Set(event.name().to_owned()),
        aggregate_type: Set(aggregate_type.to_owned()),
        aggregate_id: Set(aggregate_id),
        occurred_at: Set(meta.occurred_at),
    }
}

#[async_trait]
impl EventHandler for SqlAuditLog {
    fn name(&self) -> &'static str {
        NAME
    }

    #[tracing::instrument(
        skip_all,
        fields(event_id = %envelope.id, event = envelope.event.name())
    )]
    async fn handle(&self, envelope: &EventEnvelope) -> Result<bool, RepositoryError> {
        let Some(write) = begin_applying(&self.db, NAME, envelope).await? else {
            return Ok(false);
        };
        audit_log::Entity::insert(entry(envelope))
            .on_conflict(OnConflict::column(Column::Id).do_nothing().to_owned())
            .exec_without_returning(&*write)
            .await
            .map_err(|error| repository_error(error, "writing an audit entry"))?;
        write.commit().await?;
        Ok(true)
    }
}

#[async_trait]
impl AuditLog for SqlAuditLog {
    #[tracing::instrument(skip_all, fields(tenant_id = %tenant))]
    async fn list(
        &self,
        tenant: TenantId,
        before: Option<Uuid>,
        limit: u64,
    ) -> Result<Vec<AuditEntry>, RepositoryError> {
        let db = self.db.session(Scope::Tenant(tenant), Access::Read).await?;
        let mut query = audit_log::Entity::find().filter(Column::TenantId.eq(tenant.as_uuid()));
        if let Some(before) = before {
            query = query.filter(Column::Id.lt(before));
        }
        let rows = query
            .order_by_desc(Column::Id)
            .limit(limit)
            .all(&*db)
            .await
            .map_err(|error| repository_error(error, "listing audit entries"))?;
        db.commit().await?;
        Ok(rows
            .into_iter()
            .map(|row| AuditEntry {
                id: row.id,
                actor: UserId::from_uuid(row.actor_id),
                action: row.action,
                aggregate_type: row.aggregate_type,
                aggregate_id: row.aggregate_id,
                occurred_at: row.occurred_at,
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use crate::database::Database;
    use domain::{DomainEvent, TaskEvent, TaskFact, TaskId};

    use super::*;
    use crate::read_models::SqlInbox;
    use crate::read_models::fixtures::{at, created, envelope, meta, new_id, task, user};
    use application::ports::Inbox;

    fn tenant() -> TenantId {
        TenantId::from_uuid(new_id())
    }

    fn completed(tenant: TenantId, task: TaskId, minute: u32) -> EventEnvelope {
        envelope(
            1,
            DomainEvent::from(TaskEvent {
                meta: meta(tenant, minute),
                task_id: task,
                fact: TaskFact::Completed,
            }),
        )
    }

    async fn ids(log: &SqlAuditLog, tenant: TenantId, before: Option<Uuid>) -> Vec<Uuid> {
        let entries = log.list(tenant, before, 2).await.unwrap();
        entries.iter().map(|entry| entry.id).collect()
    }

    async fn an_event_is_logged_once_with_who_did_what_to_which_aggregate_and_when(db: Database) {
        let log = SqlAuditLog::new(db);
        let (tenant, id) = (tenant(), task());
        let actor = user();
        let mut event = completed(tenant, id, 3);
        if let DomainEvent::Task(TaskEvent { meta, .. }) = &mut event.event {
            meta.actor = actor;
        }
        assert!(log.handle(&event).await.unwrap());
        assert!(!log.handle(&event).await.unwrap());
        let entries = log.list(tenant, None, 10).await.unwrap();
        assert_eq!(
            entries,
            [AuditEntry {
                id: event.id,
                actor,
                action: "task.completed".to_owned(),
                aggregate_type: "task".to_owned(),
                aggregate_id: id.as_uuid(),
                occurred_at: at(3),
            }]
        );
    }

    async fn the_log_is_listed_newest_first_a_page_at_a_time(db: Database) {
        let log = SqlAuditLog::new(db);
        let tenant = tenant();
        let events: Vec<_> = (0..5)
            .map(|minute| created(tenant, task(), None, None, minute))
            .collect();
        // Handled in another order than they happened: the id orders them.
        for event in events.iter().rev() {
            log.handle(event).await.unwrap();
        }
        let newest: Vec<Uuid> = events.iter().rev().map(|event| event.id).collect();
        assert_eq!(ids(&log, tenant, None).await, newest[..2]);
        assert_eq!(ids(&log, tenant, Some(newest[1])).await, newest[2..4]);
        assert_eq!(ids(&log, tenant, Some(newest[3])).await, newest[4..]);
        assert!(ids(&log, tenant, Some(newest[4])).await.is_empty());
    }

    async fn another_tenants_entries_are_never_listed(db: Database) {
        let log = SqlAuditLog::new(db);
        let (ours, theirs) = (tenant(), tenant());
        let mine = created(ours, task(), None, None, 1);
        let other = created(theirs, task(), None, None, 2);
        log.handle(&mine).await.unwrap();
        log.handle(&other).await.unwrap();
        assert_eq!(ids(&log, ours, None).await, [mine.id]);
        // A cursor from their log shows nothing of theirs either.
        let later = Uuid::now_v7();
        assert_eq!(ids(&log, ours, Some(later)).await, [mine.id]);
        assert_eq!(ids(&log, theirs, None).await, [other.id]);
    }

    async fn an_event_redelivered_after_its_inbox_record_was_purged_is_still_logged_once(
        db: Database,
    ) {
        let log = SqlAuditLog::new(db.clone());
        let inbox = SqlInbox::new(db);
        let tenant = tenant();
        let event = created(tenant, task(), None, None, 1);
        assert!(log.handle(&event).await.unwrap());
        let an_hour_ago = chrono::Utc::now() - chrono::TimeDelta::hours(1);
        assert_eq!(inbox.purge_processed(an_hour_ago).await.unwrap(), 0);
        let soon = chrono::Utc::now() + chrono::TimeDelta::seconds(1);
        assert_eq!(inbox.purge_processed(soon).await.unwrap(), 1);
        assert!(log.handle(&event).await.unwrap(), "the inbox forgot it");
        assert_eq!(ids(&log, tenant, None).await, [event.id]);
    }

    crate::on_every_backend!(
        an_event_is_logged_once_with_who_did_what_to_which_aggregate_and_when,
        the_log_is_listed_newest_first_a_page_at_a_time,
        another_tenants_entries_are_never_listed,
        an_event_redelivered_after_its_inbox_record_was_purged_is_still_logged_once,
    );
}
