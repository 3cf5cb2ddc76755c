//! The indexes of the task list's three orders hold live tasks only, the rows the list
//! reads unless an admin asks for deleted ones too. Each matches the list's filter
//! (`tenant_id = $1 AND deleted_at IS NULL`) and its order (`key, id`, read forwards or
//! backwards) exactly, so a page is one index range scan that stops after its rows,
//! and the planner has no cheaper plan to mistake it for when the table's statistics
//! are stale (thousands of tasks written since the last ANALYZE): no sort, no filter of
//! deleted rows. A list that includes deleted tasks, an admin's rarer request, finds
//! the tenant's rows by another index (`idx_tasks_tenant_id_status`) and sorts them.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Each order's index, as `m20261121_000005_index_tasks_for_listing` made it, and the
/// key it orders by.
const ORDERS: [(&str, Tasks); 3] = [
    ("idx_tasks_tenant_id_created_at_id", Tasks::CreatedAt),
    ("idx_tasks_tenant_id_due_date_id", Tasks::DueDate),
    ("idx_tasks_tenant_id_priority_id", Tasks::Priority),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (name, key) in ORDERS {
            manager
                .drop_index(Index::drop().name(name).table(Tasks::Table).to_owned())
                .await?;
            manager
                .create_index(
                    Index::create()
                        .name(format!("{name}_live"))
                        .table(Tasks::Table)
                        .col(Tasks::TenantId)
                        .col(key)
                        .col(Tasks::Id)
                        .and_where(Expr::col(Tasks::DeletedAt).is_null())
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (name, key) in ORDERS {
            manager
                .drop_index(
                    Index::drop()
                        .name(format!("{name}_live"))
                        .table(Tasks::Table)
                        .to_owned(),
                )
                .await?;
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(Tasks::Table)
                        .col(Tasks::TenantId)
                        .col(key)
                        .col(Tasks::Id)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum Tasks {
    Table,
    Id,
    TenantId,
    CreatedAt,
    DueDate,
    Priority,
    DeletedAt,
}
