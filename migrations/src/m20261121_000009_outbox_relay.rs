//! What the relay needs from the outbox: the version each event's aggregate reached,
//! carried to consumers, and indexes shaped for the relay's and the purge's queries.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::big_integer;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The index the outbox was created with, which this migration replaces.
const OLD_INDEX: &str = "idx_outbox_published_at_occurred_at";
/// The relay's: the unpublished events in the order it publishes them.
const UNPUBLISHED_INDEX: &str = "idx_outbox_unpublished_occurred_at_id";
/// The purge's: the published events, oldest first.
const PUBLISHED_INDEX: &str = "idx_outbox_published_at";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Outbox::Table)
                    // The version the aggregate reached with the change that recorded
                    // the event: 0 for its creation. Events stored before this column
                    // existed read -1, below every real version: the task statistics
                    // apply them in the order they arrive, and any later event or a
                    // rebuild (`server projections rebuild`) takes precedence.
                    .add_column(big_integer(Outbox::AggregateVersion).default(-1))
                    .to_owned(),
            )
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name(OLD_INDEX)
                    .table(Outbox::Table)
                    .to_owned(),
            )
            .await?;
        // Partial, so it holds only the backlog: it stays small however many published
        // events the retention keeps, and the relay reads it in order without sorting.
        manager
            .create_index(
                Index::create()
                    .name(UNPUBLISHED_INDEX)
                    .table(Outbox::Table)
                    .col(Outbox::OccurredAt)
                    .col(Outbox::Id)
                    .and_where(Expr::col(Outbox::PublishedAt).is_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(PUBLISHED_INDEX)
                    .table(Outbox::Table)
                    .col(Outbox::PublishedAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for name in [PUBLISHED_INDEX, UNPUBLISHED_INDEX] {
            manager
                .drop_index(Index::drop().name(name).table(Outbox::Table).to_owned())
                .await?;
        }
        manager
            .create_index(
                Index::create()
                    .name(OLD_INDEX)
                    .table(Outbox::Table)
                    .col(Outbox::PublishedAt)
                    .col(Outbox::OccurredAt)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Outbox::Table)
                    .drop_column(Outbox::AggregateVersion)
                    .to_owned(),
            )
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
    AggregateVersion,
    OccurredAt,
    PublishedAt,
}
