//! Keystone's domain: the tenants, users and tasks of the service, the value objects
//! they are made of, the rules that keep them consistent, and the events they record.
//! What every aggregate has in common (an id within a tenant, a version, a soft delete,
//! its recorded events) is one trait, `Aggregate`, so the layers around the domain store,
//! cache and publish every aggregate the same way; `DomainEvent` groups each aggregate's
//! events under it.
//!
//! The domain does not know about HTTP, SQL, async runtimes, JSON or configuration: its
//! events and ids derive serde's traits, which name no format. It reads no clock and
//! makes no random ids: callers pass `now` and ids in. Everything here is synchronous
//! and pure, so the rules are tested in microseconds.

mod aggregate;
pub mod event;
mod id;
#[cfg(test)]
mod patterns;
pub mod task;
pub mod tenant;
pub mod text;
pub mod user;

pub use aggregate::{Aggregate, AggregateId};
pub use event::{AggregateEvent, DomainEvent, EventMeta};
pub use task::{
    Actor, ChecklistItem, ChecklistItemId, ChecklistText, NewTask, Priority, Task, TaskDescription,
    TaskEdit, TaskError, TaskEvent, TaskFact, TaskId, TaskSnapshot, TaskStatus, TaskTitle,
    UnknownVariant,
};
pub use tenant::{Tenant, TenantId, TenantName, TenantNameError};
pub use text::{LongText, ShortText, TextError};
pub use user::{
    ActiveAdmins, Email, EmailError, Password, PasswordError, PasswordHash, Role, RoleError, User,
    UserError, UserEvent, UserFact, UserId, UserSnapshot, Username, UsernameError,
};
