//! The unit of work on SQL: one database transaction that every store writes through,
//! so an aggregate's rows, its events and an idempotent response commit together or not
//! at all.

use application::ports::{
    ClaimToken, IdempotencyKey, RecordedResponse, RepositoryError, Transaction, UnitOfWork,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::{DomainEvent, TenantId};
use sea_orm::{DatabaseTransaction, SqliteTransactionMode, TransactionOptions, TransactionTrait};

use std::sync::Arc;

use super::{idempotency, outbox, repository_error};
use crate::database::wake::Wake;
use crate::database::{Database, Scope, Turn};

/// Starts transactions on a connection pool.
#[derive(Debug, Clone)]
pub struct SqlUnitOfWork {
    db: Database,
}

impl SqlUnitOfWork {
    #[must_use]
    pub fn new(db: Database) -> Self {
        Self { db }
    }
}

#[async_trait]
impl UnitOfWork for SqlUnitOfWork {
    /// On `SQLite` the transaction takes the database's one write lock at once
    /// (`BEGIN IMMEDIATE`). A deferred transaction would read first and fail with
    /// `SQLITE_BUSY` when it later tried to write after another writer committed, and
    /// the re-checks made inside the transaction (the tenant's active admins) would
    /// read a snapshot that may be stale by the time they write. Holding the lock from
    /// the start makes writers queue on the busy timeout and each see the last commit.
    /// `PostgreSQL` ignores the mode: row locks and conditional UPDATEs do that work.
    async fn begin(&self) -> Result<Box<dyn Transaction>, RepositoryError> {
        let db = self.db.acquire().await?;
        let transaction = db
            .begin_with_options(TransactionOptions {
                sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
                ..TransactionOptions::default()
            })
            .await
            .map_err(|error| repository_error(error, "starting a transaction"))?;
        Ok(Box::new(SqlTransaction {
            transaction,
            tenant: None,
            wake: Arc::clone(self.db.wake()),
            wrote_events: false,
            _turn: db,
        }))
    }
}

/// An open transaction. It is the store of every aggregate (`store::Persisted`) and
/// the user accounts, so every write shares the one connection, and the borrow checker
/// forbids using a store after `commit` has consumed the transaction.
///
/// Dropping it without `commit` rolls back: sea-orm's `DatabaseTransaction` queues a
/// ROLLBACK when dropped, which runs before its connection is reused. So an early
/// return with `?` anywhere in a use case undoes every write made so far.
///
/// Its statements reach the transaction only through [`SqlTransaction::enter`], which
/// first names their tenant to the database (`database::Scope`), so row-level security
/// holds every write to the tenant it is for.
///
/// It holds its turn at the pool until it commits or is dropped; the fields drop in
/// order, so the transaction lets go of its connection before the turn is given back.
pub struct SqlTransaction {
    transaction: DatabaseTransaction,
    /// The tenant last named to the database; `None` before the first statement.
    tenant: Option<TenantId>,
    /// Told after a commit that wrote events, so the relay need not poll.
    wake: Arc<Wake>,
    wrote_events: bool,
    _turn: Turn,
}

impl SqlTransaction {
    /// The transaction, for statements on `tenant`'s rows: named to the database first,
    /// unless it already is.
    pub(super) async fn enter(
        &mut self,
        tenant: TenantId,
    ) -> Result<&DatabaseTransaction, RepositoryError> {
        if self.tenant != Some(tenant) {
            Scope::Tenant(tenant)
                .enter(&self.transaction)
                .await
                .map_err(|error| repository_error(error, "naming the transaction's tenant"))?;
            self.tenant = Some(tenant);
        }
        Ok(&self.transaction)
    }
}

#[async_trait]
impl Transaction for SqlTransaction {
    async fn append_events(
        &mut self,
        events: Vec<DomainEvent>,
        aggregate_version: i64,
    ) -> Result<(), RepositoryError> {
        let Some(first) = events.first() else {
            return Ok(());
        };
        // The events of one change are of one aggregate, so of one tenant.
        let transaction = self.enter(first.meta().tenant_id).await?;
        outbox::append(transaction, &events, aggregate_version).await?;
        self.wrote_events = true;
        Ok(())
    }

    async fn complete_idempotent_request(
        &mut self,
        key: &IdempotencyKey,
        token: ClaimToken,
        response: &RecordedResponse,
        now: DateTime<Utc>,
    ) -> Result<(), RepositoryError> {
        let transaction = self.enter(key.tenant).await?;
        idempotency::complete(transaction, key, token, response, now).await
    }

    async fn commit(self: Box<Self>) -> Result<(), RepositoryError> {
        let (wake, wrote_events) = (Arc::clone(&self.wake), self.wrote_events);
        self.transaction
            .commit()
            .await
            .map_err(|error| repository_error(error, "committing a transaction"))?;
        if wrote_events {
            wake.written();
        }
        Ok(())
    }
}
