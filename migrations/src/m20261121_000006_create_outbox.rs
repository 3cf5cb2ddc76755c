use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    pk_uuid, string_len, text, timestamp_with_time_zone, timestamp_with_time_zone_null, uuid,
};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Outbox::Table)
                    // UUIDv7: time-ordered, so events of one instant keep their order.
                    .col(pk_uuid(Outbox::Id))
                    // No foreign keys: an event is a record of the past and outlives
                    // whatever it is about.
                    .col(uuid(Outbox::TenantId))
                    .col(string_len(Outbox::AggregateType, 32))
                    .col(uuid(Outbox::AggregateId))
                    .col(string_len(Outbox::EventType, 64))
                    // JSON; text rather than a JSON type so both databases store it alike.
                    .col(text(Outbox::Payload))
                    .col(timestamp_with_time_zone(Outbox::OccurredAt))
                    // Set by the relay once the event is delivered.
                    .col(timestamp_with_time_zone_null(Outbox::PublishedAt))
                    .to_owned(),
            )
            .await?;
        // The relay reads the unpublished events, oldest first.
        manager
            .create_index(
                Index::create()
                    .name("idx_outbox_published_at_occurred_at")
                    .table(Outbox::Table)
                    .col(Outbox::PublishedAt)
                    .col(Outbox::OccurredAt)
                    .to_owned(),
            )
            .await?;
        // An aggregate's history.
        manager
            .create_index(
                Index::create()
                    .name("idx_outbox_aggregate_type_aggregate_id")
                    .table(Outbox::Table)
                    .col(Outbox::AggregateType)
                    .col(Outbox::AggregateId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Outbox::Table).to_owned())
            .await
    }

    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }
}

#[derive(DeriveIden)]
enum Outbox {
    Table,
    Id,
    TenantId,
    AggregateType,
    AggregateId,
    EventType,
    Payload,
    OccurredAt,
    PublishedAt,
}
