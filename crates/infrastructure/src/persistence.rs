//! The SQL adapters of the repository ports, on sea-orm (`SQLite` and `PostgreSQL`).
//!
//! Every query of tenant-owned rows filters by the tenant the caller passes in; the one
//! cross-tenant lookup is `find_by_email`, for sign-in. Errors leave this module as
//! `RepositoryError`: connection failures as `Unavailable`, known constraint violations
//! as their business meaning, everything else `Unexpected` with what was being done.

mod entity;
mod mapping;
mod refresh_tokens;
mod users;

use application::ports::RepositoryError;
use sea_orm::{
    DatabaseConnection, DatabaseTransaction, DbErr, RuntimeErr, SqliteTransactionMode,
    TransactionOptions, TransactionTrait, sqlx,
};

pub use refresh_tokens::SqlRefreshTokens;
pub use users::SqlUsers;

/// Translates a database error, with `doing` ("saving a user") as its context.
fn repository_error(error: DbErr, doing: &'static str) -> RepositoryError {
    let unavailable = is_connection_failure(&error);
    let error = anyhow::Error::new(error).context(doing);
    if unavailable {
        RepositoryError::Unavailable(error)
    } else {
        RepositoryError::Unexpected(error)
    }
}

/// Whether the database could not be reached at all (no pooled connection in time, the
/// pool closed, the socket refused or dropped), as opposed to refusing a statement.
fn is_connection_failure(error: &DbErr) -> bool {
    match error {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => true,
        DbErr::Exec(RuntimeErr::SqlxError(error)) | DbErr::Query(RuntimeErr::SqlxError(error)) => {
            matches!(
                **error,
                sqlx::Error::Io(_)
                    | sqlx::Error::Tls(_)
                    | sqlx::Error::PoolTimedOut
                    | sqlx::Error::PoolClosed
                    | sqlx::Error::WorkerCrashed
            )
        }
        _ => false,
    }
}

/// Starts a transaction that will write. On `SQLite` it takes the write lock at once
/// (`BEGIN IMMEDIATE`), so concurrent writers queue on the busy timeout instead of one
/// failing when it upgrades a read lock; `PostgreSQL` ignores the mode.
async fn begin_write(
    db: &DatabaseConnection,
    doing: &'static str,
) -> Result<DatabaseTransaction, RepositoryError> {
    db.begin_with_options(TransactionOptions {
        sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
        ..TransactionOptions::default()
    })
    .await
    .map_err(|error| repository_error(error, doing))
}

/// Commits `transaction` if `outcome` is a success, rolls it back otherwise.
async fn finish<T>(
    transaction: DatabaseTransaction,
    outcome: Result<T, RepositoryError>,
    doing: &'static str,
) -> Result<T, RepositoryError> {
    match outcome {
        Ok(value) => {
            transaction
                .commit()
                .await
                .map_err(|error| repository_error(error, doing))?;
            Ok(value)
        }
        Err(error) => {
            // The original error matters more; a failed rollback ends with the connection.
            if let Err(rollback) = transaction.rollback().await {
                tracing::warn!(error = %rollback, "rolling back failed");
            }
            Err(error)
        }
    }
}

#[cfg(test)]
mod tests {
    use sea_orm::ConnAcquireErr;

    use super::*;

    #[test]
    fn a_pool_timeout_or_a_closed_pool_is_unavailable() {
        for error in [
            DbErr::ConnectionAcquire(ConnAcquireErr::Timeout),
            DbErr::ConnectionAcquire(ConnAcquireErr::ConnectionClosed),
            DbErr::Query(RuntimeErr::SqlxError(sqlx::Error::PoolTimedOut.into())),
        ] {
            assert!(matches!(
                repository_error(error, "reading"),
                RepositoryError::Unavailable(_)
            ));
        }
    }

    #[test]
    fn a_refused_statement_is_unexpected_and_says_what_was_being_done() {
        let error = repository_error(DbErr::Custom("no such column".to_owned()), "listing users");
        let RepositoryError::Unexpected(error) = error else {
            panic!("expected Unexpected, got {error:?}");
        };
        assert_eq!(error.to_string(), "listing users");
        assert!(format!("{error:#}").contains("no such column"));
    }
}
