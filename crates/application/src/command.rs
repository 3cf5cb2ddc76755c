//! The flows every aggregate's use cases share, written once so that every aggregate
//! gets the same guarantees (docs/adr/0013-one-pattern-for-every-aggregate.md):
//!
//! - `create`: claim the idempotency key, begin, build the aggregate, add it, append
//!   its events, record the idempotent response, commit.
//! - `change`: begin, load the aggregate with its row lock, authorize, check the
//!   precondition (`If-Match`), apply the change through the aggregate's methods, save
//!   it and append its events, commit. Whatever else the change calls for (ending a
//!   user's sessions) happens in the same transaction, never after the commit.
//! - `get`: read by id, deleted ones only for admins who ask.
//!
//! What differs per aggregate is what it is built from and which changes it accepts:
//! each aggregate's module says so with a `Change` implementation.

use std::marker::PhantomData;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use domain::Aggregate;

use crate::idempotency::{Idempotent, Outcome, run_once};
use crate::ports::{Clock, IdGenerator, IdempotencyKeys, Lookup, Store, Transaction, UnitOfWork};
use crate::{Error, Ports, Precondition, Principal};

/// What a change may use besides the aggregate.
pub struct Context<'a> {
    /// The transaction the change runs in: reads made here hold until the commit.
    pub tx: &'a mut (dyn Transaction + 'static),
    pub principal: &'a Principal,
    /// Read once the aggregate is locked, so its events are stamped in the order its
    /// changes commit.
    pub now: DateTime<Utc>,
    pub ids: &'a dyn IdGenerator,
}

/// A change to one existing aggregate of type `A`: each aggregate's module implements
/// it for the enum of the changes clients can make.
#[allow(
    async_fn_in_trait,
    reason = "implemented and called only in this crate"
)]
pub trait Change<A: Aggregate> {
    /// Whether the change reaches a deleted aggregate (restoring does); any other finds
    /// a deleted aggregate missing.
    fn reaches_deleted(&self) -> bool {
        false
    }

    /// Who may make the change. Checked before the precondition, so that a caller who
    /// may not change the aggregate gets 403 whatever its `If-Match` says (RFC 9110
    /// §13.2.1).
    ///
    /// # Errors
    /// `Forbidden`, or the rule that refuses the caller.
    fn authorize(&self, principal: &Principal, aggregate: &A) -> Result<(), Error>;

    /// Makes the change through the aggregate's own methods.
    ///
    /// # Errors
    /// The rule the change breaks.
    async fn apply(self, aggregate: &mut A, cx: &mut Context<'_>) -> Result<(), Error>;
}

/// Changes aggregates of type `A`; each aggregate's module names its own
/// (`ChangeTask`), whose changes are the `Change<A>` enum beside it.
pub struct Changes<A> {
    uow: Arc<dyn UnitOfWork>,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdGenerator>,
    aggregate: PhantomData<fn() -> A>,
}

impl<A> Changes<A> {
    pub(crate) fn new(ports: &Ports) -> Self {
        Self {
            uow: ports.uow.clone(),
            clock: ports.clock.clone(),
            ids: ports.ids.clone(),
            aggregate: PhantomData,
        }
    }
}

impl<A: Aggregate> Changes<A>
where
    dyn Transaction: Store<A>,
{
    /// Applies `change` to the aggregate `id` of the caller's tenant, at a version
    /// `precondition` allows. A change that changes nothing writes nothing and keeps
    /// the version; a concurrent write makes the save fail (`ConcurrentModification`),
    /// never overwrite.
    ///
    /// # Errors
    /// `NotFound` (also for a deleted aggregate, unless the change reaches deleted
    /// ones), then what `authorize` refuses, then `PreconditionFailed`, then the rule
    /// `apply` breaks, then `ConcurrentModification` or a storage failure.
    #[tracing::instrument(skip_all, fields(aggregate = A::NAME, id = %id))]
    pub async fn execute<C: Change<A>>(
        &self,
        principal: &Principal,
        id: A::Id,
        precondition: &Precondition,
        change: C,
    ) -> Result<A, Error> {
        self.run(principal, id, precondition, change).await
    }

    async fn run<C: Change<A>>(
        &self,
        principal: &Principal,
        id: A::Id,
        precondition: &Precondition,
        change: C,
    ) -> Result<A, Error> {
        let mut tx = self.uow.begin().await?;
        let mut aggregate = Store::<A>::get(tx.as_mut(), principal.tenant_id, id)
            .await?
            .filter(|aggregate| change.reaches_deleted() || !aggregate.is_deleted())
            .ok_or(Error::NotFound(A::NAME))?;
        change.authorize(principal, &aggregate)?;
        precondition.check(aggregate.version())?;
        let before = aggregate.clone();
        let mut cx = Context {
            tx: tx.as_mut(),
            principal,
            now: self.clock.now(),
            ids: self.ids.as_ref(),
        };
        change.apply(&mut aggregate, &mut cx).await?;
        if aggregate == before {
            return Ok(aggregate);
        }
        save(tx.as_mut(), &mut aggregate).await?;
        tx.commit().await?;
        Ok(aggregate)
    }
}

/// Saves a changed aggregate and appends the events it recorded, in `tx`.
pub(crate) async fn save<A>(
    tx: &mut (dyn Transaction + 'static),
    aggregate: &mut A,
) -> Result<(), Error>
where
    A: Aggregate,
    dyn Transaction: Store<A>,
{
    let events = aggregate.take_events();
    Store::<A>::save(tx, aggregate).await?;
    append(tx, events, aggregate.version()).await
}

/// Adds a new aggregate and appends the events it recorded, in `tx`.
pub(crate) async fn add<A>(
    tx: &mut (dyn Transaction + 'static),
    aggregate: &mut A,
) -> Result<(), Error>
where
    A: Aggregate,
    dyn Transaction: Store<A>,
{
    let events = aggregate.take_events();
    Store::<A>::add(tx, aggregate).await?;
    append(tx, events, aggregate.version()).await
}

/// Appends an aggregate's events, stamped with the version it reached.
async fn append<E: Into<domain::DomainEvent>>(
    tx: &mut dyn Transaction,
    events: Vec<E>,
    version: i64,
) -> Result<(), Error> {
    if events.is_empty() {
        return Ok(());
    }
    let events = events.into_iter().map(Into::into).collect();
    Ok(tx.append_events(events, version).await?)
}

/// Creates the aggregate `build` makes in the transaction, at most once per
/// idempotency key: adds it, appends its events and records the idempotent response,
/// all in one transaction. Work that needs no transaction (hashing a password) is done
/// before, so the transaction stays short.
///
/// # Errors
/// `IdempotencyInProgress` / `IdempotencyKeyReused`, what `build` refuses, or a
/// storage failure.
pub(crate) async fn create<A, F>(
    uow: &dyn UnitOfWork,
    keys: &dyn IdempotencyKeys,
    now: DateTime<Utc>,
    idempotent: Option<&Idempotent<'_, A>>,
    build: F,
) -> Result<Outcome<A>, Error>
where
    A: Aggregate,
    F: AsyncFnOnce(&mut dyn Transaction) -> Result<A, Error>,
    dyn Transaction: Store<A>,
{
    run_once(keys, idempotent, now, |completion| async move {
        let mut tx = uow.begin().await?;
        let mut aggregate = build(tx.as_mut()).await?;
        add(tx.as_mut(), &mut aggregate).await?;
        if let Some(completion) = completion {
            let response = (completion.respond)(&aggregate);
            tx.complete_idempotent_request(completion.key, completion.token, &response, now)
                .await?;
        }
        tx.commit().await?;
        tracing::info!(aggregate = A::NAME, id = %aggregate.id(), "created");
        Ok(aggregate)
    })
    .await
}

/// Reads one aggregate of type `A` of the caller's tenant; each aggregate's module
/// names its own (`GetTask`).
pub struct Get<A> {
    lookup: Arc<dyn Lookup<A>>,
}

impl<A: Aggregate> Get<A> {
    #[must_use]
    pub fn new(lookup: Arc<dyn Lookup<A>>) -> Self {
        Self { lookup }
    }

    /// The aggregate `id` of the caller's tenant. A deleted one is found only when an
    /// admin asks for it with `include_deleted`.
    ///
    /// # Errors
    /// `Forbidden` for a member asking for deleted ones; `NotFound` for a missing,
    /// another tenant's or (unless asked for) deleted aggregate.
    #[tracing::instrument(skip_all, fields(aggregate = A::NAME, id = %id))]
    pub async fn execute(
        &self,
        principal: &Principal,
        id: A::Id,
        include_deleted: bool,
    ) -> Result<A, Error> {
        if include_deleted {
            principal.require_admin()?;
        }
        self.lookup
            .get(principal.tenant_id, id)
            .await?
            .filter(|aggregate| include_deleted || !aggregate.is_deleted())
            .ok_or(Error::NotFound(A::NAME))
    }
}
