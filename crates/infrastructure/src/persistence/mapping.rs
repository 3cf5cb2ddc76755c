//! Rows to domain types and back: the one seam between the database and the domain.
//!
//! Reading parses every value through the domain's constructors, so a row that breaks
//! a rule (edited by hand, written by an older version) is an error, not an aggregate.
//! Events go into the outbox as JSON and come back out of it for the relay.

mod event;
mod task;
mod user;

pub(crate) use event::{decode as decode_event, payload as event_payload};
pub(super) use event::{envelope_from_row, outbox_row};
pub(super) use task::task_changes;
pub(crate) use task::{checklist_rows, task_from_rows, task_row};
pub(super) use user::{tenant_row, user_changes};
pub(crate) use user::{user_from_row, user_row};
