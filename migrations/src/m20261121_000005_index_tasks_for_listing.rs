//! The indexes the task list needs, apart from the tables so that changing how tasks
//! are listed never means touching the migration that made them.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Each keyset order ends with the id, so its index does too: the next page is one
/// index range scan from the cursor. Status and assignee are filters, not orders.
const INDEXES: [(&str, &[Tasks]); 5] = [
    (
        "idx_tasks_tenant_id_created_at_id",
        &[Tasks::TenantId, Tasks::CreatedAt, Tasks::Id],
    ),
    (
        "idx_tasks_tenant_id_due_date_id",
        &[Tasks::TenantId, Tasks::DueDate, Tasks::Id],
    ),
    (
        "idx_tasks_tenant_id_priority_id",
        &[Tasks::TenantId, Tasks::Priority, Tasks::Id],
    ),
    (
        "idx_tasks_tenant_id_status",
        &[Tasks::TenantId, Tasks::Status],
    ),
    (
        "idx_tasks_tenant_id_assignee_id",
        &[Tasks::TenantId, Tasks::AssigneeId],
    ),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (name, columns) in INDEXES {
            let mut index = Index::create();
            index.name(name).table(Tasks::Table);
            for column in columns {
                index.col(*column);
            }
            manager.create_index(index).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (name, _) in INDEXES {
            manager
                .drop_index(Index::drop().name(name).table(Tasks::Table).to_owned())
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
    Status,
    AssigneeId,
}
