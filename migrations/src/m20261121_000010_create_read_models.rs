//! The read side: the inbox of the event handlers, the task statistics they keep and the
//! audit log. Only event handlers (and a rebuild) write these tables; requests read them.
//! No foreign keys: a read model holds what the events said, and outlives whatever they
//! were about.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    big_integer, boolean, date_null, pk_uuid, string_len, timestamp_with_time_zone, uuid, uuid_null,
};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        create_processed_events(manager).await?;
        create_task_stats(manager).await?;
        create_projection_positions(manager).await?;
        create_audit_log(manager).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            AuditLog::Table.into_iden(),
            ProjectionPositions::Table.into_iden(),
            TaskStatsUsers::Table.into_iden(),
            TaskStatsTasks::Table.into_iden(),
            ProcessedEvents::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }

    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }
}

/// The inbox: the events each handler applied, written in the transaction of the effect.
async fn create_processed_events(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table(ProcessedEvents::Table)
                // The handler's name, which is also its consumer group.
                .col(string_len(ProcessedEvents::Consumer, 64))
                .col(uuid(ProcessedEvents::EventId))
                .col(timestamp_with_time_zone(ProcessedEvents::ProcessedAt))
                .primary_key(
                    Index::create()
                        .col(ProcessedEvents::Consumer)
                        .col(ProcessedEvents::EventId),
                )
                .to_owned(),
        )
        .await?;
    // Old records are purged by age, once no redelivery can bring their event back.
    manager
        .create_index(
            Index::create()
                .name("idx_processed_events_processed_at")
                .table(ProcessedEvents::Table)
                .col(ProcessedEvents::ProcessedAt)
                .to_owned(),
        )
        .await
}

async fn create_task_stats(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table(TaskStatsTasks::Table)
                .col(pk_uuid(TaskStatsTasks::TaskId))
                .col(uuid(TaskStatsTasks::TenantId))
                // Each figure carries the aggregate version that last set it, so events
                // applied out of order (or after a rebuild) never overwrite a newer value.
                .col(uuid_null(TaskStatsTasks::AssigneeId))
                .col(big_integer(TaskStatsTasks::AssigneeVersion))
                .col(string_len(TaskStatsTasks::Status, 16).check(
                    Expr::col(TaskStatsTasks::Status).is_in(["todo", "in_progress", "done"]),
                ))
                .col(big_integer(TaskStatsTasks::StatusVersion))
                .col(date_null(TaskStatsTasks::DueDate))
                .col(big_integer(TaskStatsTasks::DueDateVersion))
                .col(boolean(TaskStatsTasks::Deleted))
                .col(big_integer(TaskStatsTasks::DeletedVersion))
                .col(timestamp_with_time_zone(TaskStatsTasks::UpdatedAt))
                .to_owned(),
        )
        .await?;
    // A user's figures are one range of this index.
    manager
        .create_index(
            Index::create()
                .name("idx_task_stats_tasks_tenant_id_assignee_id")
                .table(TaskStatsTasks::Table)
                .col(TaskStatsTasks::TenantId)
                .col(TaskStatsTasks::AssigneeId)
                .to_owned(),
        )
        .await?;
    manager
        .create_table(
            Table::create()
                .table(TaskStatsUsers::Table)
                .col(uuid(TaskStatsUsers::TenantId))
                .col(uuid(TaskStatsUsers::UserId))
                // When an event last changed this user's figures.
                .col(timestamp_with_time_zone(TaskStatsUsers::UpdatedAt))
                .primary_key(
                    Index::create()
                        .col(TaskStatsUsers::TenantId)
                        .col(TaskStatsUsers::UserId),
                )
                .to_owned(),
        )
        .await
}

/// How far each read model got, per tenant: the latest event time it applied.
async fn create_projection_positions(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table(ProjectionPositions::Table)
                .col(string_len(ProjectionPositions::Projection, 64))
                .col(uuid(ProjectionPositions::TenantId))
                .col(timestamp_with_time_zone(ProjectionPositions::AsOf))
                .primary_key(
                    Index::create()
                        .col(ProjectionPositions::Projection)
                        .col(ProjectionPositions::TenantId),
                )
                .to_owned(),
        )
        .await
}

async fn create_audit_log(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table(AuditLog::Table)
                // The event's id (UUIDv7), so entries sort by time and an event is
                // logged once however often it is delivered.
                .col(pk_uuid(AuditLog::Id))
                .col(uuid(AuditLog::TenantId))
                .col(uuid(AuditLog::ActorId))
                .col(string_len(AuditLog::Action, 64))
                .col(string_len(AuditLog::AggregateType, 32))
                .col(uuid(AuditLog::AggregateId))
                .col(timestamp_with_time_zone(AuditLog::OccurredAt))
                .to_owned(),
        )
        .await?;
    // A tenant's log is read newest first, a page at a time from a cursor.
    manager
        .create_index(
            Index::create()
                .name("idx_audit_log_tenant_id_id")
                .table(AuditLog::Table)
                .col(AuditLog::TenantId)
                .col(AuditLog::Id)
                .to_owned(),
        )
        .await
}

#[derive(DeriveIden)]
enum ProcessedEvents {
    Table,
    Consumer,
    EventId,
    ProcessedAt,
}

#[derive(DeriveIden)]
enum TaskStatsTasks {
    Table,
    TaskId,
    TenantId,
    AssigneeId,
    AssigneeVersion,
    Status,
    StatusVersion,
    DueDate,
    DueDateVersion,
    Deleted,
    DeletedVersion,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum TaskStatsUsers {
    Table,
    TenantId,
    UserId,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum ProjectionPositions {
    Table,
    Projection,
    TenantId,
    AsOf,
}

#[derive(DeriveIden)]
enum AuditLog {
    Table,
    Id,
    TenantId,
    ActorId,
    Action,
    AggregateType,
    AggregateId,
    OccurredAt,
}
