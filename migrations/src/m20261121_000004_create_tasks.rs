use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    big_integer, boolean, date_null, integer, pk_uuid, small_integer, string_len, text,
    timestamp_with_time_zone, timestamp_with_time_zone_null, uuid, uuid_null,
};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Tasks::Table)
                    .col(pk_uuid(Tasks::Id))
                    .col(uuid(Tasks::TenantId))
                    .col(string_len(Tasks::Title, 200))
                    .col(text(Tasks::Description))
                    .col(
                        string_len(Tasks::Status, 16).check(Expr::col(Tasks::Status).is_in([
                            "todo",
                            "in_progress",
                            "done",
                        ])),
                    )
                    // The priority's rank (low = 0 … urgent = 3), so it sorts by urgency.
                    .col(
                        small_integer(Tasks::Priority)
                            .check(Expr::col(Tasks::Priority).between(0, 3)),
                    )
                    .col(date_null(Tasks::DueDate))
                    .col(uuid_null(Tasks::AssigneeId))
                    .col(uuid(Tasks::CreatorId))
                    .col(big_integer(Tasks::Version))
                    .col(timestamp_with_time_zone(Tasks::CreatedAt))
                    .col(timestamp_with_time_zone(Tasks::UpdatedAt))
                    .col(timestamp_with_time_zone_null(Tasks::CompletedAt))
                    .col(timestamp_with_time_zone_null(Tasks::DeletedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_tasks_tenant_id")
                            .from(Tasks::Table, Tasks::TenantId)
                            .to(Tenants::Table, Tenants::Id)
                            .on_delete(ForeignKeyAction::Restrict),
                    )
                    // Users are soft-deleted, so these never cascade.
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_tasks_assignee_id")
                            .from(Tasks::Table, Tasks::AssigneeId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Restrict),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_tasks_creator_id")
                            .from(Tasks::Table, Tasks::CreatorId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Restrict),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(TaskChecklistItems::Table)
                    .col(pk_uuid(TaskChecklistItems::Id))
                    .col(uuid(TaskChecklistItems::TaskId))
                    // Denormalised from the task, so every query can filter by tenant.
                    .col(uuid(TaskChecklistItems::TenantId))
                    // The item's index in the checklist. Not unique: the checklist is
                    // rewritten whole, and uniqueness would only order the rewrite.
                    .col(integer(TaskChecklistItems::Position))
                    .col(string_len(TaskChecklistItems::Text, 200))
                    .col(boolean(TaskChecklistItems::Done))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_task_checklist_items_task_id")
                            .from(TaskChecklistItems::Table, TaskChecklistItems::TaskId)
                            .to(Tasks::Table, Tasks::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // A task's checklist is always read in order, and deleted by task.
        manager
            .create_index(
                Index::create()
                    .name("idx_task_checklist_items_task_id_position")
                    .table(TaskChecklistItems::Table)
                    .col(TaskChecklistItems::TaskId)
                    .col(TaskChecklistItems::Position)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(TaskChecklistItems::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Tasks::Table).to_owned())
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
}

#[derive(DeriveIden)]
enum Tasks {
    Table,
    Id,
    TenantId,
    Title,
    Description,
    Status,
    Priority,
    DueDate,
    AssigneeId,
    CreatorId,
    Version,
    CreatedAt,
    UpdatedAt,
    CompletedAt,
    DeletedAt,
}

#[derive(DeriveIden)]
enum TaskChecklistItems {
    Table,
    Id,
    TaskId,
    TenantId,
    Position,
    Text,
    Done,
}
