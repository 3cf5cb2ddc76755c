//! Domain events: facts that happened to an aggregate, recorded by the aggregate as it
//! changes and stored with its new state in the same transaction (the outbox).
//!
//! Each aggregate declares its own event type in its module (`TaskEvent`, `UserEvent`):
//! who did it, in which tenant and when (`EventMeta`), which aggregate, and the fact
//! with everything a consumer needs without reading the aggregate back. `DomainEvent`
//! gathers them under the aggregate they happened to, so a consumer matches the
//! aggregates it cares about and ignores the rest, and a new aggregate touches no
//! consumer that does not care about it.
//!
//! Events derive serde's traits, which name no format: the adapter that stores them
//! chooses JSON and pins the shape it writes with golden files.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::task::TaskEvent;
use crate::tenant::TenantId;
use crate::user::{UserEvent, UserId};

/// Who did it, in which tenant, and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventMeta {
    pub tenant_id: TenantId,
    /// The user who caused the event.
    pub actor: UserId,
    pub occurred_at: DateTime<Utc>,
}

/// What every aggregate's event type tells, for the code that treats every event alike
/// (the outbox, the audit log).
pub trait AggregateEvent {
    /// The aggregate's name, as its `Aggregate::NAME`.
    fn aggregate_name(&self) -> &'static str;

    fn aggregate_id(&self) -> uuid::Uuid;

    fn meta(&self) -> &EventMeta;

    /// A stable, dotted name (`task.created`) that stored rows and consumers use.
    fn name(&self) -> &'static str;
}

/// Declares `DomainEvent` over each aggregate's event type: one variant per aggregate,
/// the conversion into it, and the view of any variant as an `AggregateEvent`. Adding an
/// aggregate adds one line to the invocation below.
macro_rules! domain_events {
    ($($aggregate:ident($event:ty)),+ $(,)?) => {
        /// Every event of every aggregate, under the aggregate it happened to.
        #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum DomainEvent {
            $($aggregate($event),)+
        }

        impl DomainEvent {
            fn inner(&self) -> &dyn AggregateEvent {
                match self {
                    $(Self::$aggregate(event) => event,)+
                }
            }
        }

        $(
            impl From<$event> for DomainEvent {
                fn from(event: $event) -> Self {
                    Self::$aggregate(event)
                }
            }
        )+
    };
}

domain_events! {
    Task(TaskEvent),
    User(UserEvent),
}

impl DomainEvent {
    #[must_use]
    pub fn meta(&self) -> &EventMeta {
        self.inner().meta()
    }

    /// A stable, dotted name (`task.created`) that stored rows and consumers use.
    #[must_use]
    pub fn name(&self) -> &'static str {
        self.inner().name()
    }

    /// The name and id of the aggregate the event happened to.
    #[must_use]
    pub fn aggregate(&self) -> (&'static str, uuid::Uuid) {
        let inner = self.inner();
        (inner.aggregate_name(), inner.aggregate_id())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task::{TaskFact, TaskId};

    #[test]
    fn an_event_names_its_aggregate_and_kind() {
        let task = TaskId::from_uuid(uuid::Uuid::now_v7());
        let meta = EventMeta {
            tenant_id: TenantId::from_uuid(uuid::Uuid::now_v7()),
            actor: UserId::from_uuid(uuid::Uuid::now_v7()),
            occurred_at: Utc::now(),
        };
        let event = DomainEvent::from(TaskEvent {
            meta,
            task_id: task,
            fact: TaskFact::Started,
        });
        assert_eq!(event.name(), "task.started");
        assert_eq!(event.aggregate(), ("task", task.as_uuid()));
        assert_eq!(event.meta(), &meta);
    }
}
