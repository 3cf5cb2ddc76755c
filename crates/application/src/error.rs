//! The error every use case returns.
//!
//! One enum for the whole layer, not one per use case: the variants would be the same
//! in all of them, and the HTTP layer turns this one type into problem+json in a single
//! `match` (see docs/adr/0004-error-strategy.md). Each aggregate's rules arrive as its
//! own variant (`User`, `Task`), named after the aggregate.

use domain::{TaskError, UserError};

use crate::ports::RepositoryError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Missing, or in another tenant, or deleted and not asked for: never told apart.
    /// Names what was not found (`task`, `checklist item`).
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("the email address is already registered")]
    EmailTaken,
    #[error("the resource was modified concurrently; reload it and try again")]
    ConcurrentModification,
    #[error("you are not allowed to do this")]
    Forbidden,
    /// Unknown email, wrong password, inactive or deleted user: deliberately one case.
    #[error("invalid email or password")]
    InvalidCredentials,
    /// A signed-in caller gave a current password that is not theirs.
    #[error("the current password does not match")]
    WrongPassword,
    /// The change (of the caller's own email) needs the caller's current password.
    #[error("the current password is required for this change")]
    PasswordRequired,
    #[error("the refresh token is invalid, expired, revoked or already used")]
    InvalidRefreshToken,
    #[error("the access token is missing or invalid: {0}")]
    InvalidAccessToken(crate::ports::TokenRejection),
    #[error("too many failed attempts; retry in {retry_after_secs} seconds")]
    Throttled { retry_after_secs: u64 },
    /// The caller's tenant has spent its request budget for the current window.
    #[error(
        "the tenant's request budget for this period is spent; retry in {retry_after_secs} seconds"
    )]
    RequestBudgetExhausted { retry_after_secs: u64 },
    /// A user rule refused the change.
    #[error(transparent)]
    User(#[from] UserError),
    /// A task rule refused the change (`NotAllowed`, `Deleted` and a missing checklist
    /// item arrive as `Forbidden` and `NotFound` instead).
    #[error(transparent)]
    Task(TaskError),
    #[error("the assignee must be an active user of the tenant")]
    AssigneeInvalid,
    /// The client's `If-Match` names a version that is no longer current.
    #[error("the resource is now at version {current_version}, not the one the client read")]
    PreconditionFailed { current_version: i64 },
    #[error("this idempotency key was already used for a different request")]
    IdempotencyKeyReused,
    #[error("a request with this idempotency key is still being processed")]
    IdempotencyInProgress,
    #[error("a dependency is unavailable")]
    Unavailable(#[source] anyhow::Error),
    /// This replica has as much work of a kind as it takes (passwords to check): the
    /// client is told to retry shortly instead of waiting without end.
    #[error("the service is busy; retry in {retry_after_secs} seconds")]
    Overloaded { retry_after_secs: u64 },
    #[error(transparent)]
    Unexpected(anyhow::Error),
}

impl From<TaskError> for Error {
    fn from(error: TaskError) -> Self {
        match error {
            TaskError::NotAllowed => Self::Forbidden,
            TaskError::Deleted => Self::NotFound("task"),
            TaskError::ChecklistItemNotFound => Self::NotFound("checklist item"),
            rule => Self::Task(rule),
        }
    }
}

impl From<crate::ports::HashError> for Error {
    fn from(error: crate::ports::HashError) -> Self {
        match error {
            crate::ports::HashError::Busy => Self::Overloaded {
                retry_after_secs: 1,
            },
            crate::ports::HashError::Failed(source) => Self::Unexpected(source),
        }
    }
}

impl From<RepositoryError> for Error {
    fn from(error: RepositoryError) -> Self {
        match error {
            RepositoryError::EmailTaken => Self::EmailTaken,
            RepositoryError::Stale => Self::ConcurrentModification,
            RepositoryError::Unavailable(source) => Self::Unavailable(source),
            RepositoryError::Unexpected(source) => Self::Unexpected(source),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_errors_keep_their_meaning_in_use_case_errors() {
        assert!(matches!(
            Error::from(RepositoryError::EmailTaken),
            Error::EmailTaken
        ));
        assert!(matches!(
            Error::from(RepositoryError::Stale),
            Error::ConcurrentModification
        ));
        assert!(matches!(
            Error::from(RepositoryError::Unavailable(anyhow::anyhow!("down"))),
            Error::Unavailable(_)
        ));
    }

    #[test]
    fn a_task_rule_about_who_or_what_exists_reads_as_forbidden_or_not_found() {
        assert!(matches!(
            Error::from(TaskError::NotAllowed),
            Error::Forbidden
        ));
        assert!(matches!(
            Error::from(TaskError::Deleted),
            Error::NotFound("task")
        ));
        assert!(matches!(
            Error::from(TaskError::ChecklistFull),
            Error::Task(TaskError::ChecklistFull)
        ));
    }
}
