//! On `PostgreSQL`, a transaction that writes events notifies `outbox_written` when it
//! commits, so the relays of every replica wake at once instead of polling. One
//! notification per statement, and `PostgreSQL` folds a transaction's identical ones
//! into one, sent at the commit. `SQLite` has one process, which wakes its relay itself.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != sea_orm::DbBackend::Postgres {
            return Ok(());
        }
        let db = manager.get_connection();
        db.execute_unprepared(
            "CREATE OR REPLACE FUNCTION notify_outbox_written() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN PERFORM pg_notify('outbox_written', ''); RETURN NULL; END $$",
        )
        .await?;
        db.execute_unprepared(
            "CREATE TRIGGER outbox_written AFTER INSERT ON outbox \
             FOR EACH STATEMENT EXECUTE FUNCTION notify_outbox_written()",
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != sea_orm::DbBackend::Postgres {
            return Ok(());
        }
        let db = manager.get_connection();
        db.execute_unprepared("DROP TRIGGER IF EXISTS outbox_written ON outbox")
            .await?;
        db.execute_unprepared("DROP FUNCTION IF EXISTS notify_outbox_written()")
            .await?;
        Ok(())
    }

    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }
}
