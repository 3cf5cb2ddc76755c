//! The unit of work: one database transaction that every write of a use case goes
//! through, so that an aggregate's new state, the events it recorded and an idempotent
//! response are written together or not at all (docs/adr/0007-unit-of-work.md).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::{ActiveAdmins, Aggregate, DomainEvent, Task, Tenant, TenantId, User, UserId};

use super::{ClaimToken, IdempotencyKey, RecordedResponse, RepositoryError};

#[async_trait]
pub trait UnitOfWork: Send + Sync {
    /// Starts a transaction. Dropping it without `commit` rolls everything back.
    async fn begin(&self) -> Result<Box<dyn Transaction>, RepositoryError>;
}

/// Writes of one kind of aggregate inside a transaction: the same three operations for
/// every aggregate. Events are not the store's business: the use case hands them to
/// `Transaction::append_events` in the same transaction.
#[async_trait]
pub trait Store<A: Aggregate>: Send {
    /// The aggregate with this id in this tenant, deleted or not, locked until the
    /// transaction ends: what the use case decides from it (its version against
    /// `If-Match`, a rule) still holds when it saves.
    async fn get(&mut self, tenant: TenantId, id: A::Id) -> Result<Option<A>, RepositoryError>;

    /// Inserts a new aggregate.
    async fn add(&mut self, aggregate: &A) -> Result<(), RepositoryError>;

    /// Saves a changed aggregate if storage still holds `aggregate.version()`;
    /// afterwards it carries the new version. `Stale` when another write came first.
    async fn save(&mut self, aggregate: &mut A) -> Result<(), RepositoryError>;
}

/// What changes to users need from a transaction besides storing them: their tenant,
/// the count of its admins and their sessions.
#[async_trait]
pub trait Accounts: Send {
    /// A new tenant; its first admin follows with `Store::<User>::add`.
    async fn add_tenant(&mut self, tenant: &Tenant) -> Result<(), RepositoryError>;

    /// The tenant's active, undeleted admins. Locks the tenant until the transaction
    /// ends, so that two changes which each rely on another admin remaining (two
    /// admins deactivating each other) run one after the other, and the second counts
    /// what the first committed.
    async fn active_admins(&mut self, tenant: TenantId) -> Result<ActiveAdmins, RepositoryError>;

    /// Whether `user` is an active, undeleted user of `tenant`; it stays so until the
    /// transaction ends (a deactivation waits), so a task may be assigned to them.
    async fn can_act(&mut self, tenant: TenantId, user: UserId) -> Result<bool, RepositoryError>;

    /// Ends every session of `user`, of `tenant`: their refresh tokens stop working.
    async fn end_sessions(
        &mut self,
        tenant: TenantId,
        user: UserId,
        now: DateTime<Utc>,
    ) -> Result<(), RepositoryError>;
}

/// An open transaction: a store of every aggregate, and the outbox and idempotency
/// records that commit with them. Adding an aggregate adds its `Store` here.
///
/// Each store is reached through its trait, as `Store::<Task>::get(tx, ..)`, or by
/// viewing the transaction as one store (`let tasks: &mut dyn Store<Task> = tx;`).
#[async_trait]
pub trait Transaction: Send + Store<User> + Store<Task> + Accounts {
    /// Appends events to the outbox, stamped with the version their aggregate reached
    /// with the change that recorded them.
    async fn append_events(
        &mut self,
        events: Vec<DomainEvent>,
        aggregate_version: i64,
    ) -> Result<(), RepositoryError>;

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
