//! Keystone's domain: the tenants and users of the service, the value objects they are
//! made of, and the rules that keep them consistent.
//!
//! The domain does not know about HTTP, SQL, async runtimes, JSON or configuration. It
//! reads no clock and makes no random ids: callers pass `now` and ids in. Everything here
//! is synchronous and pure, so the rules are tested in microseconds.

pub mod event;
mod id;
pub mod task;
pub mod tenant;
pub mod user;

pub use event::{AggregateType, DomainEvent, EventMeta};
pub use task::{
    Actor, ChecklistItem, ChecklistItemId, ChecklistText, NewTask, Priority, Task, TaskDescription,
    TaskEdit, TaskError, TaskId, TaskSnapshot, TaskStatus, TaskTitle, TextError, UnknownVariant,
};
pub use tenant::{Tenant, TenantId, TenantName, TenantNameError};
pub use user::{
    ActiveAdmins, Email, EmailError, Password, PasswordError, PasswordHash, Role, RoleError, User,
    UserError, UserId, UserSnapshot, Username, UsernameError,
};
