//! On `PostgreSQL`, row-level security on every table that holds a tenant's rows: a
//! statement sees, and may write, only the rows of the tenant its transaction names in
//! `app.tenant_id`, or of every tenant when the transaction says `app.all_tenants` is
//! `on` (the relay, the upkeep, sign-in by email). A query that forgets its tenant
//! filter then returns no other tenant's row.
//!
//! The policy binds roles that neither own the tables nor bypass row-level security,
//! which is what the service runs as in production (docs/deploy.md). The tables' owner,
//! which runs the migrations, is not bound, and neither is a superuser. `SQLite` has no
//! row-level security, and a single process.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Each tenant-owned table and the column naming its tenant.
const TABLES: [(&str, &str); 11] = [
    ("tenants", "id"),
    ("users", "tenant_id"),
    ("refresh_tokens", "tenant_id"),
    ("tasks", "tenant_id"),
    ("task_checklist_items", "tenant_id"),
    ("outbox", "tenant_id"),
    ("idempotency_keys", "tenant_id"),
    ("task_stats_tasks", "tenant_id"),
    ("task_stats_users", "tenant_id"),
    ("projection_positions", "tenant_id"),
    ("audit_log", "tenant_id"),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != sea_orm::DbBackend::Postgres {
            return Ok(());
        }
        let db = manager.get_connection();
        for (table, column) in TABLES {
            // `NULLIF`: a setting once set in a session reads as '' after its
            // transaction, and '' is no uuid.
            let rows = format!(
                "{column} = NULLIF(current_setting('app.tenant_id', true), '')::uuid \
                 OR current_setting('app.all_tenants', true) = 'on'"
            );
            db.execute_unprepared(&format!(
                "ALTER TABLE {table} ENABLE ROW LEVEL SECURITY; \
                 CREATE POLICY tenant_isolation ON {table} USING ({rows}) WITH CHECK ({rows})"
            ))
            .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != sea_orm::DbBackend::Postgres {
            return Ok(());
        }
        let db = manager.get_connection();
        for (table, _) in TABLES {
            db.execute_unprepared(&format!(
                "DROP POLICY IF EXISTS tenant_isolation ON {table}; \
                 ALTER TABLE {table} DISABLE ROW LEVEL SECURITY"
            ))
            .await?;
        }
        Ok(())
    }

    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }
}
