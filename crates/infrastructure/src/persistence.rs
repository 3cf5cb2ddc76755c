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
/// pool closed, the socket refused or dropped, the server going away), as opposed to
/// refusing a statement.
fn is_connection_failure(error: &DbErr) -> bool {
    match error {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => true,
        DbErr::Exec(RuntimeErr::SqlxError(error)) | DbErr::Query(RuntimeErr::SqlxError(error)) => {
            match &**error {
                sqlx::Error::Io(_)
                | sqlx::Error::Tls(_)
                | sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::WorkerCrashed => true,
                sqlx::Error::Database(error) => {
                    error.code().is_some_and(|code| is_lost_connection(&code))
                }
                _ => false,
            }
        }
        _ => false,
    }
}

/// A server that shuts down, restarts or fails over does not drop the socket silently:
/// it answers the statement in flight with a `PostgreSQL` SQLSTATE of class 08
/// (connection exception) or 57P (`admin_shutdown`, `cannot_connect_now`, ...).
/// `SQLite`'s codes are plain numbers and never match.
fn is_lost_connection(sqlstate: &str) -> bool {
    sqlstate.starts_with("08") || sqlstate.starts_with("57P")
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
    use sea_orm::{ConnAcquireErr, ConnectionTrait};

    use super::*;
    use crate::testing::Backend;

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
    fn only_the_sqlstates_of_a_lost_connection_count_as_one() {
        for lost in ["08006", "08001", "57P01", "57P03"] {
            assert!(is_lost_connection(lost), "{lost}");
        }
        // Unique violation, query cancelled by a timeout, SQLite's SQLITE_BUSY.
        for refused in ["23505", "57014", "5"] {
            assert!(!is_lost_connection(refused), "{refused}");
        }
    }

    #[tokio::test]
    async fn a_connection_the_server_terminates_is_unavailable() {
        for backend in Backend::all() {
            let Backend::Postgres { .. } = backend else {
                continue;
            };
            let db = backend.fresh_database().await;
            let error = db
                .execute_unprepared("SELECT pg_terminate_backend(pg_backend_pid())")
                .await
                .unwrap_err();
            let error = repository_error(error, "reading");
            assert!(
                matches!(error, RepositoryError::Unavailable(_)),
                "{error:?}"
            );
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
