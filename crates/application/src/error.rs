//! The error every use case returns.
//!
//! One enum for the whole layer, not one per use case: the variants would be the same
//! in all of them, and the HTTP layer turns this one type into problem+json in a single
//! `match` (see docs/adr/0004-error-strategy.md).

use domain::{TaskError, UserError};

use crate::ports::RepositoryError;

/// What was not found, for the error message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    User,
    Task,
    ChecklistItem,
}

impl std::fmt::Display for Resource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::User => "user",
            Self::Task => "task",
            Self::ChecklistItem => "checklist item",
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Missing, or in another tenant, or deleted and not asked for: never told apart.
    #[error("{0} not found")]
    NotFound(Resource),
    #[error("the email address is already registered")]
    EmailTaken,
    #[error("the resource was modified concurrently; reload it and try again")]
    ConcurrentModification,
    #[error("you are not allowed to do this")]
    Forbidden,
    /// Unknown email, wrong password, inactive or deleted user: deliberately one case.
    #[error("invalid email or password")]
    InvalidCredentials,
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
    #[error(transparent)]
    Rule(#[from] UserError),
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
    #[error(transparent)]
    Unexpected(anyhow::Error),
}

impl From<TaskError> for Error {
    fn from(error: TaskError) -> Self {
        match error {
            TaskError::NotAllowed => Self::Forbidden,
            TaskError::Deleted => Self::NotFound(Resource::Task),
            TaskError::ChecklistItemNotFound => Self::NotFound(Resource::ChecklistItem),
            rule => Self::Task(rule),
        }
    }
}

impl From<RepositoryError> for Error {
    fn from(error: RepositoryError) -> Self {
        match error {
            RepositoryError::EmailTaken => Self::EmailTaken,
            RepositoryError::Stale => Self::ConcurrentModification,
            RepositoryError::NoActiveAdminLeft => Self::Rule(UserError::LastActiveAdmin),
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
            Error::from(RepositoryError::NoActiveAdminLeft),
            Error::Rule(UserError::LastActiveAdmin)
        ));
        assert!(matches!(
            Error::from(RepositoryError::Unavailable(anyhow::anyhow!("down"))),
            Error::Unavailable(_)
        ));
    }
}
