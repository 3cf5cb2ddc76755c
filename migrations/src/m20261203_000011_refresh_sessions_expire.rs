use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::timestamp_with_time_zone_null;

/// A refresh session ends a fixed time after its sign-in, however often it is rotated:
/// each token carries when its session ends. Existing tokens' sessions end when they
/// do. Nullable only because `SQLite` cannot add a column without a default; every row
/// has a value.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(RefreshTokens::Table)
                    .add_column(timestamp_with_time_zone_null(
                        RefreshTokens::SessionExpiresAt,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .exec_stmt(
                Query::update()
                    .table(RefreshTokens::Table)
                    .value(
                        RefreshTokens::SessionExpiresAt,
                        Expr::col(RefreshTokens::ExpiresAt),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(RefreshTokens::Table)
                    .drop_column(RefreshTokens::SessionExpiresAt)
                    .to_owned(),
            )
            .await
    }

    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }
}

#[derive(DeriveIden)]
enum RefreshTokens {
    Table,
    ExpiresAt,
    SessionExpiresAt,
}
