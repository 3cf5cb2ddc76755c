use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    blob_null, integer_null, string_len, text_null, timestamp_with_time_zone, uuid,
};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(IdempotencyKeys::Table)
                    .col(uuid(IdempotencyKeys::TenantId))
                    // The client's key, unique within its tenant.
                    .col(string_len(IdempotencyKeys::Key, 255))
                    // Hex SHA-256 of the request the key was first used with.
                    .col(string_len(IdempotencyKeys::Fingerprint, 64))
                    .col(string_len(IdempotencyKeys::State, 16).check(
                        Expr::col(IdempotencyKeys::State).is_in(["in_progress", "completed"]),
                    ))
                    // The recorded response, once completed.
                    .col(integer_null(IdempotencyKeys::ResponseStatus))
                    .col(text_null(IdempotencyKeys::ResponseLocation))
                    .col(blob_null(IdempotencyKeys::ResponseBody))
                    // Until when the request holding the claim is presumed alive.
                    .col(timestamp_with_time_zone(IdempotencyKeys::LockedUntil))
                    // After this the key is free for a new request.
                    .col(timestamp_with_time_zone(IdempotencyKeys::ExpiresAt))
                    .col(timestamp_with_time_zone(IdempotencyKeys::CreatedAt))
                    .primary_key(
                        Index::create()
                            .col(IdempotencyKeys::TenantId)
                            .col(IdempotencyKeys::Key),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(IdempotencyKeys::Table).to_owned())
            .await
    }

    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }
}

#[derive(DeriveIden)]
enum IdempotencyKeys {
    Table,
    TenantId,
    Key,
    Fingerprint,
    State,
    ResponseStatus,
    ResponseLocation,
    ResponseBody,
    LockedUntil,
    ExpiresAt,
    CreatedAt,
}
