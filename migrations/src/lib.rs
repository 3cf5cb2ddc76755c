//! Keystone's database schema, as sea-orm migrations.
//!
//! Migrations are written with the schema builder, so the same files run on `SQLite` and
//! `PostgreSQL`; only what `SQLite` lacks (a trigger that notifies, row-level security)
//! is raw SQL, run on `PostgreSQL` alone. Each one is a frozen snapshot: it names its
//! own tables and columns instead of sharing identifiers, so a later change cannot
//! rewrite history.
//! Every migration runs in a transaction with its bookkeeping row (`SQLite` has
//! transactional DDL too), so a failure leaves the schema as it was.
//!
//! This crate knows the schema and nothing else: no entities, no domain types. The
//! `infrastructure` crate applies it and maps rows to the domain.

use sea_orm_migration::prelude::*;

mod m20261121_000001_create_tenants;
mod m20261121_000002_create_users;
mod m20261121_000003_create_refresh_tokens;
mod m20261121_000004_create_tasks;
mod m20261121_000005_index_tasks_for_listing;
mod m20261121_000006_create_outbox;
mod m20261121_000007_create_idempotency_keys;
mod m20261121_000008_add_claim_token_to_idempotency_keys;
mod m20261121_000009_outbox_relay;
mod m20261121_000010_create_read_models;
mod m20261203_000011_refresh_sessions_expire;
mod m20261203_000012_notify_outbox_writes;
mod m20261203_000013_row_level_security;
mod m20261203_000014_index_live_tasks_for_listing;

/// Every migration, oldest first.
pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261121_000001_create_tenants::Migration),
            Box::new(m20261121_000002_create_users::Migration),
            Box::new(m20261121_000003_create_refresh_tokens::Migration),
            Box::new(m20261121_000004_create_tasks::Migration),
            Box::new(m20261121_000005_index_tasks_for_listing::Migration),
            Box::new(m20261121_000006_create_outbox::Migration),
            Box::new(m20261121_000007_create_idempotency_keys::Migration),
            Box::new(m20261121_000008_add_claim_token_to_idempotency_keys::Migration),
            Box::new(m20261121_000009_outbox_relay::Migration),
            Box::new(m20261121_000010_create_read_models::Migration),
            Box::new(m20261203_000011_refresh_sessions_expire::Migration),
            Box::new(m20261203_000012_notify_outbox_writes::Migration),
            Box::new(m20261203_000013_row_level_security::Migration),
            Box::new(m20261203_000014_index_live_tasks_for_listing::Migration),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_listed_in_the_order_their_names_sort() {
        let names: Vec<String> = Migrator::migrations()
            .iter()
            .map(|migration| migration.name().to_owned())
            .collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
        assert_eq!(names[0], "m20261121_000001_create_tenants");
    }
}
