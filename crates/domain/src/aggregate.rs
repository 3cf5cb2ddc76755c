//! What every aggregate has in common: an id within a tenant, a version, a soft delete
//! and the events it records. The layers around the domain store, cache, version and
//! publish every aggregate through this one trait, so what differs between aggregates
//! is only their state and their rules.

use std::fmt::{Debug, Display};
use std::hash::Hash;

use crate::event::DomainEvent;
use crate::tenant::TenantId;

/// The id of an aggregate: a UUID with a type of its own (see `id_type!`).
pub trait AggregateId: Copy + Eq + Ord + Hash + Debug + Display + Send + Sync + 'static {
    fn from_uuid(id: uuid::Uuid) -> Self;

    fn as_uuid(self) -> uuid::Uuid;
}

/// The root of an aggregate. Its methods are the ones storage needs; changes go through
/// the aggregate's own intention-revealing methods, never through this trait.
pub trait Aggregate: Clone + Debug + PartialEq + Send + Sync + 'static {
    /// The aggregate's name in event types, cache keys and messages (`task`).
    const NAME: &'static str;

    type Id: AggregateId;

    /// What the aggregate records as it changes.
    type Event: Into<DomainEvent> + Clone + Debug + PartialEq + Send + Sync + 'static;

    fn id(&self) -> Self::Id;

    fn tenant_id(&self) -> TenantId;

    /// The version read from storage (0 before the first save): a save succeeds only
    /// while storage still holds it, so no write overwrites one it did not see.
    fn version(&self) -> i64;

    fn is_deleted(&self) -> bool;

    /// The events recorded since the aggregate was loaded or created, oldest first.
    fn events(&self) -> &[Self::Event];

    /// Hands the recorded events over for storing, leaving none behind.
    fn take_events(&mut self) -> Vec<Self::Event>;

    /// Notes that storage now holds this state: the version moves on by one. Only the
    /// stores call this, once their write has succeeded.
    fn saved(&mut self);
}
