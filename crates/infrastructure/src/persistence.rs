//! The SQL adapters of the repository ports, on sea-orm (`SQLite` and `PostgreSQL`).
//!
//! Every aggregate is stored and read by id through one generic store (`store`), over
//! what its own module says of its tables (`Persisted`); the queries of lists are the
//! aggregate's own. Every query of tenant-owned rows filters by the tenant the caller
//! passes in, and runs in a transaction that names that tenant to the database
//! (`database::Scope`), whose row-level security is the second lock; the lookups that
//! find a tenant (`find_by_email` for sign-in, refresh tokens by their hash) and the
//! upkeep span tenants, by name. Reads run in a `Session` of their own; writes run in a
//! `SqlTransaction`, which also stores the events the use case appends (the outbox) and
//! the responses of idempotent requests, so all of them commit or none does. Every public operation first takes a turn at the pool's gate, held for its
//! whole duration (a transaction's until it ends), so the callers waiting for a connection
//! are counted. Errors leave this module as `RepositoryError`: connection failures as
//! `Unavailable`, known constraint violations as their business meaning, everything
//! else `Unexpected` with what was being done.

pub(crate) mod entity;
#[cfg(test)]
pub(crate) mod fixtures;
mod idempotency;
mod outbox;
mod refresh_tokens;
mod store;
mod tasks;
mod unit_of_work;
mod users;

use application::ports::RepositoryError;
use sea_orm::sea_query::LikeExpr;
use sea_orm::{DbErr, RuntimeErr, sqlx};

pub use idempotency::SqlIdempotencyKeys;
pub use outbox::SqlOutbox;
pub use refresh_tokens::SqlRefreshTokens;
pub(crate) use store::Persisted;
pub use store::SqlLookup;
pub use tasks::SqlTaskQueries;
pub use unit_of_work::{SqlTransaction, SqlUnitOfWork};
pub use users::SqlUsers;

/// Translates a database error, with `doing` ("saving a user") as its context.
pub(crate) fn repository_error(error: DbErr, doing: &'static str) -> RepositoryError {
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

/// `raw` as a LIKE pattern matching it anywhere, with `\`, `%` and `_` taken literally.
fn contains_pattern(raw: &str) -> LikeExpr {
    let mut pattern = String::with_capacity(raw.len() + 2);
    pattern.push('%');
    for c in raw.chars() {
        if matches!(c, '\\' | '%' | '_') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    // Explicit, because SQLite's LIKE has no escape character unless told one.
    LikeExpr::new(pattern).escape('\\')
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
    #[ignore = "needs PostgreSQL: TEST_DATABASE_URL, run by `just test-all`"]
    async fn a_connection_the_server_terminates_is_unavailable() {
        {
            let db = Backend::postgres().fresh_database().await;
            let error = db
                .ungated()
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
