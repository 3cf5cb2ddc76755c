//! The unit of work: one database transaction that several stores join, so that an
//! aggregate's new state and the events it recorded are written together or not at all
//! (docs/adr/0007-unit-of-work.md).

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{ClaimToken, IdempotencyKey, RecordedResponse, RepositoryError, TaskStore, UserStore};

#[async_trait]
pub trait UnitOfWork: Send + Sync {
    /// Starts a transaction. Dropping it without `commit` rolls everything back.
    async fn begin(&self) -> Result<Box<dyn Transaction>, RepositoryError>;
}

/// An open transaction. Each accessor hands out a store that writes through it.
#[async_trait]
pub trait Transaction: Send {
    fn tasks(&mut self) -> &mut dyn TaskStore;

    fn users(&mut self) -> &mut dyn UserStore;

    /// Records the response to an idempotent request, in this transaction, so it
    /// exists exactly when the resource it describes does. `Stale` when `token` no
    /// longer holds the claim: another request took it over.
    async fn complete_idempotent_request(
        &mut self,
        key: &IdempotencyKey,
        token: ClaimToken,
        response: &RecordedResponse,
        now: DateTime<Utc>,
    ) -> Result<(), RepositoryError>;

    async fn commit(self: Box<Self>) -> Result<(), RepositoryError>;
}
