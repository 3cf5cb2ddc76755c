use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    big_integer, boolean, pk_uuid, string, string_len, timestamp_with_time_zone,
    timestamp_with_time_zone_null, uuid,
};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Users::Table)
                    .col(pk_uuid(Users::Id))
                    .col(uuid(Users::TenantId))
                    // Stored lower-cased by the domain, so equality is case-insensitive.
                    .col(string_len(Users::Email, 254))
                    .col(string_len(Users::Username, 32))
                    .col(string(Users::PasswordHash))
                    .col(
                        string_len(Users::Role, 16)
                            .check(Expr::col(Users::Role).is_in(["admin", "member"])),
                    )
                    .col(boolean(Users::IsActive))
                    .col(big_integer(Users::Version))
                    .col(timestamp_with_time_zone(Users::CreatedAt))
                    .col(timestamp_with_time_zone(Users::UpdatedAt))
                    .col(timestamp_with_time_zone_null(Users::DeletedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_users_tenant_id")
                            .from(Users::Table, Users::TenantId)
                            .to(Tenants::Table, Tenants::Id)
                            .on_delete(ForeignKeyAction::Restrict),
                    )
                    .to_owned(),
            )
            .await?;
        // Emails are unique across the service: sign-in looks users up by email alone.
        manager
            .create_index(
                Index::create()
                    .name("idx_users_email")
                    .table(Users::Table)
                    .col(Users::Email)
                    .unique()
                    .to_owned(),
            )
            .await?;
        // Every tenant-scoped query filters on the tenant; listing pages by id after it.
        manager
            .create_index(
                Index::create()
                    .name("idx_users_tenant_id_id")
                    .table(Users::Table)
                    .col(Users::TenantId)
                    .col(Users::Id)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Users::Table).to_owned())
            .await
    }

    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }
}

#[derive(DeriveIden)]
enum Tenants {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    TenantId,
    Email,
    Username,
    PasswordHash,
    Role,
    IsActive,
    Version,
    CreatedAt,
    UpdatedAt,
    DeletedAt,
}
