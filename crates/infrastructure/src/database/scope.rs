//! Whose rows an operation may touch, told to the database.
//!
//! On `PostgreSQL` every table holding a tenant's rows has a row-level security policy
//! (migration `m20261203_000013_row_level_security`): a statement sees, and may write,
//! only the rows of the tenant its transaction names in `app.tenant_id`, or every
//! tenant's while its transaction sets `app.all_tenants`. Every query filters by tenant
//! itself; the policy is the second lock, for the query that forgets to. Both settings
//! are local to the transaction (`set_config(..., true)`), so nothing carries over to
//! the next user of a pooled connection. The service's role must not own the tables or
//! bypass row-level security for the policy to bind (docs/deploy.md).
//!
//! `SQLite` has no row-level security: a scope costs it nothing and changes nothing.

use std::ops::Deref;

use anyhow::Context;
use application::ports::RepositoryError;
use domain::TenantId;
use sea_orm::{
    ConnectionTrait, DatabaseTransaction, DbBackend, DbErr, SqliteTransactionMode, Statement,
    TransactionOptions, TransactionTrait,
};

use super::{Database, Turn};
use crate::persistence::repository_error;

/// The rows an operation works on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    /// One tenant's: the work of every request once its tenant is known.
    Tenant(TenantId),
    /// Every tenant's: the relay, the upkeep that purges, the rebuild of read models, and
    /// the two lookups that find the tenant (sign-in by email, refresh by token).
    AllTenants,
}

impl Scope {
    /// Tells the database, inside `tx`, which rows its statements may touch from now on.
    pub(crate) async fn enter(self, tx: &DatabaseTransaction) -> Result<(), DbErr> {
        if tx.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        let statement = match self {
            Self::Tenant(tenant) => Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT set_config('app.tenant_id', $1, true)",
                [tenant.to_string().into()],
            ),
            Self::AllTenants => Statement::from_string(
                DbBackend::Postgres,
                "SELECT set_config('app.all_tenants', 'on', true)",
            ),
        };
        tx.query_one_raw(statement).await.map(drop)
    }
}

/// A transaction in one scope, and the turn at the pool it holds. The fields drop in
/// order: the transaction (rolling back unless committed) lets go of its connection
/// before the turn is given back.
pub(crate) struct Session {
    tx: DatabaseTransaction,
    _turn: Turn,
}

/// Whether a session reads only, or writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    Read,
    /// Takes `SQLite`'s write lock at once, as the unit of work does: a deferred
    /// transaction that read first would fail with `SQLITE_BUSY` when it came to write
    /// after another writer committed.
    Write,
}

impl Database {
    /// Begins a transaction in `scope`, after waiting for a turn at the pool.
    ///
    /// # Errors
    /// `Unavailable` when no turn or connection came free in time; as `repository_error`
    /// when the database refuses the transaction.
    pub(crate) async fn session(
        &self,
        scope: Scope,
        access: Access,
    ) -> Result<Session, RepositoryError> {
        let turn = self.acquire().await?;
        let mode = (access == Access::Write).then_some(SqliteTransactionMode::Immediate);
        let tx = turn
            .begin_with_options(TransactionOptions {
                sqlite_transaction_mode: mode,
                ..TransactionOptions::default()
            })
            .await
            .map_err(|error| repository_error(error, "starting a transaction"))?;
        scope
            .enter(&tx)
            .await
            .map_err(|error| repository_error(error, "naming the transaction's tenant"))?;
        Ok(Session { tx, _turn: turn })
    }
}

impl Session {
    /// Commits; a session dropped without it rolls back.
    ///
    /// # Errors
    /// As `repository_error`.
    pub(crate) async fn commit(self) -> Result<(), RepositoryError> {
        self.tx
            .commit()
            .await
            .map_err(|error| repository_error(error, "committing a transaction"))
    }
}

impl Deref for Session {
    type Target = DatabaseTransaction;

    fn deref(&self) -> &DatabaseTransaction {
        &self.tx
    }
}

/// Why row-level security would not bind the role `db` connects as, if it would not: a
/// superuser or a role with `BYPASSRLS` skips every policy, and the owner of a table
/// (or a member of the owning role) skips its policy. `None` when it binds, and on
/// `SQLite`, which has none.
///
/// # Errors
/// When the database cannot be asked.
pub async fn row_security_exemption(db: &Database) -> anyhow::Result<Option<String>> {
    let db = db.ungated();
    if db.get_database_backend() != DbBackend::Postgres {
        return Ok(None);
    }
    let row = db
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT current_user::text AS role, r.rolsuper AS superuser, \
             r.rolbypassrls AS bypasses, \
             EXISTS (SELECT 1 FROM pg_class c \
                     WHERE c.relnamespace = current_schema()::regnamespace \
                     AND c.relrowsecurity \
                     AND pg_has_role(current_user, c.relowner, 'USAGE')) AS owns \
             FROM pg_roles r WHERE r.rolname = current_user",
        ))
        .await?
        .context("the database does not know its current role")?;
    let role: String = row.try_get("", "role")?;
    let reason = if row.try_get("", "superuser")? {
        Some("is a superuser")
    } else if row.try_get("", "bypasses")? {
        Some("has BYPASSRLS")
    } else if row.try_get("", "owns")? {
        Some("owns the tables")
    } else {
        None
    };
    Ok(reason.map(|reason| format!("the database role {role} {reason}")))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use application::ports::{
        EventHandler, IdempotencyKey, IdempotencyKeys, RefreshTokens, UnitOfWork,
    };
    use chrono::Utc;
    use domain::{Aggregate, ChecklistItemId, ChecklistText, DomainEvent};
    use sea_orm::ConnectionTrait;
    use uuid::Uuid;

    use super::*;
    use crate::persistence::{SqlIdempotencyKeys, SqlRefreshTokens, SqlUnitOfWork};
    use crate::read_models::fixtures::WriteSide;
    use crate::read_models::{SqlAuditLog, SqlTaskStats};
    use crate::testing::{Backend, connect};

    /// The tables holding a tenant's rows (a `tenant_id` column, or `tenants` itself),
    /// and whether each has row-level security on with the tenant policy.
    async fn tenant_tables(db: &Database) -> Vec<(String, bool)> {
        let rows = db
            .ungated()
            .query_all_raw(Statement::from_string(
                DbBackend::Postgres,
                "SELECT c.relname::text AS name, c.relrowsecurity AND EXISTS ( \
                     SELECT 1 FROM pg_policy p \
                     WHERE p.polrelid = c.oid AND p.polname = 'tenant_isolation') AS guarded \
                 FROM pg_class c \
                 WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r' \
                 AND (c.relname = 'tenants' OR EXISTS ( \
                     SELECT 1 FROM pg_attribute a \
                     WHERE a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped)) \
                 ORDER BY 1",
            ))
            .await
            .unwrap();
        rows.iter()
            .map(|row| {
                (
                    row.try_get("", "name").unwrap(),
                    row.try_get("", "guarded").unwrap(),
                )
            })
            .collect()
    }

    /// A fork's new table is caught too: the check lists a table it did not know of.
    #[tokio::test]
    #[ignore = "needs PostgreSQL: TEST_DATABASE_URL, run by `just test-all`"]
    async fn every_table_of_a_tenants_rows_has_the_tenant_policy_and_a_new_one_without_is_named() {
        let db = Backend::postgres().fresh_database().await;
        let tables = tenant_tables(&db).await;
        assert!(tables.len() >= 11, "{tables:?}");
        let unguarded: Vec<_> = tables.iter().filter(|(_, guarded)| !guarded).collect();
        assert!(
            unguarded.is_empty(),
            "tables without the tenant policy: {unguarded:?}"
        );

        db.ungated()
            .execute_unprepared("CREATE TABLE invoices (id uuid PRIMARY KEY, tenant_id uuid)")
            .await
            .unwrap();
        let tables = tenant_tables(&db).await;
        assert!(
            tables.contains(&("invoices".to_owned(), false)),
            "{tables:?}"
        );
    }

    /// Counts `table`'s rows that `db` sees in `scope` (none: no scope named), and how
    /// many of them are not `tenant`'s.
    async fn visible(
        db: &Database,
        scope: Option<Scope>,
        table: &str,
        tenant: TenantId,
    ) -> (i64, i64) {
        let column = if table == "tenants" {
            "id"
        } else {
            "tenant_id"
        };
        let session = db
            .session(scope.unwrap_or(Scope::Tenant(tenant)), Access::Read)
            .await
            .unwrap();
        if scope.is_none() {
            // A session names its scope as it begins: forget it again.
            session
                .execute_unprepared("SELECT set_config('app.tenant_id', '', true)")
                .await
                .unwrap();
        }
        let row = session
            .query_one_raw(Statement::from_string(
                DbBackend::Postgres,
                format!(
                    "SELECT count(*) AS total, \
                     count(*) FILTER (WHERE {column} <> '{tenant}') AS others FROM {table}"
                ),
            ))
            .await
            .unwrap()
            .unwrap();
        session.commit().await.unwrap();
        (
            row.try_get("", "total").unwrap(),
            row.try_get("", "others").unwrap(),
        )
    }

    /// Rows of two tenants in every tenant table, written through the adapters as the
    /// service's role; then statements without a tenant filter, as that role.
    #[tokio::test]
    #[ignore = "needs PostgreSQL: TEST_DATABASE_URL, run by `just test-all`"]
    async fn as_the_service_role_a_query_without_its_tenant_filter_sees_no_other_tenants_row() {
        let (url, _place) = Backend::postgres().fresh_service_database_url().await;
        let db = connect(url).await;
        assert_eq!(row_security_exemption(&db).await.unwrap(), None);
        let mut tenants = Vec::new();
        for _ in 0..2 {
            let side = WriteSide::new(SqlUnitOfWork::new(db.clone())).await;
            let mut task = side.create(Some(side.member.id()), None, 1);
            task.add_checklist_item(
                side.actor(),
                ChecklistItemId::from_uuid(Uuid::now_v7()),
                ChecklistText::parse("one").unwrap(),
                Utc::now(),
            )
            .unwrap();
            let envelopes = side.add(&mut task).await;
            let events: Vec<DomainEvent> = envelopes
                .iter()
                .map(|envelope| envelope.event.clone())
                .collect();
            let mut tx = side.uow.begin().await.unwrap();
            tx.append_events(events, task.version()).await.unwrap();
            tx.commit().await.unwrap();
            for envelope in &envelopes {
                SqlTaskStats::new(db.clone())
                    .handle(envelope)
                    .await
                    .unwrap();
                SqlAuditLog::new(db.clone()).handle(envelope).await.unwrap();
            }
            SqlRefreshTokens::new(db.clone(), Duration::from_mins(1), Duration::from_mins(1))
                .issue(&side.admin, None, Utc::now())
                .await
                .unwrap();
            let key = IdempotencyKey {
                tenant: side.tenant(),
                key: "key".to_owned(),
                fingerprint: "request".to_owned(),
            };
            SqlIdempotencyKeys::new(db.clone())
                .claim(&key, Utc::now())
                .await
                .unwrap();
            tenants.push(side.tenant());
        }
        let (a, _) = (tenants[0], tenants[1]);

        // A fork's own tables stay empty here; the policy test covers them.
        let mut covered = Vec::new();
        for (table, _) in tenant_tables(&db).await {
            let (everyone, others) = visible(&db, Some(Scope::AllTenants), &table, a).await;
            if everyone == 0 {
                continue;
            }
            assert!(others > 0, "{table}: the other tenant has rows");
            let (total, hidden) = visible(&db, Some(Scope::Tenant(a)), &table, a).await;
            assert!(total > 0, "{table}: tenant A's own rows are visible");
            assert_eq!(hidden, 0, "{table}: another tenant's rows are hidden");
            assert_eq!(everyone, total + others, "{table}: every tenant's rows");
            let (unscoped, _) = visible(&db, None, &table, a).await;
            assert_eq!(unscoped, 0, "{table}: no tenant named, no row");
            covered.push(table);
        }
        assert!(covered.len() >= 11, "{covered:?}");

        // Nor can a row be moved to, or written for, another tenant.
        let session = db.session(Scope::Tenant(a), Access::Write).await.unwrap();
        let moved = session
            .execute_unprepared(&format!("UPDATE tasks SET tenant_id = '{}'", tenants[1]))
            .await
            .unwrap_err();
        assert!(moved.to_string().contains("row-level security"), "{moved}");
    }

    /// What production refuses to serve as (`server` checks it at start).
    #[tokio::test]
    #[ignore = "needs PostgreSQL: TEST_DATABASE_URL, run by `just test-all`"]
    async fn a_superuser_or_the_tables_owner_is_named_as_exempt_from_row_security() {
        let superuser = Backend::postgres().fresh_database().await;
        let reason = row_security_exemption(&superuser).await.unwrap().unwrap();
        assert!(reason.contains("is a superuser"), "{reason}");

        let (url, _place) = Backend::postgres().fresh_service_database_url().await;
        let owner = connect(url.replace("keystone_test_app", "keystone_test_owner")).await;
        let reason = row_security_exemption(&owner).await.unwrap().unwrap();
        assert!(
            reason.contains("keystone_test_owner owns the tables"),
            "{reason}"
        );
    }

    #[tokio::test]
    async fn sqlite_has_no_row_security_to_be_exempt_from() {
        let db = Backend::Sqlite.fresh_database().await;
        assert_eq!(row_security_exemption(&db).await.unwrap(), None);
    }
}
