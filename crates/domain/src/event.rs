//! Domain events: facts that happened to an aggregate, recorded by the aggregate as it
//! changes and stored with its new state in the same transaction (the outbox).
//!
//! Each event carries its tenant, the actor, when it happened, and the facts a consumer
//! needs without reading the aggregate back. The wire format (JSON) is chosen by the
//! adapter that stores them, not here.

use chrono::{DateTime, NaiveDate, Utc};

use crate::task::{Priority, TaskId};
use crate::tenant::TenantId;
use crate::user::{Role, UserId};

/// Who did it, in which tenant, and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventMeta {
    pub tenant_id: TenantId,
    /// The user who caused the event.
    pub actor: UserId,
    pub occurred_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DomainEvent {
    TaskCreated {
        meta: EventMeta,
        task: TaskId,
        title: String,
        creator: UserId,
        assignee: Option<UserId>,
        priority: Priority,
        due_date: Option<NaiveDate>,
    },
    /// Title, description, priority or due date changed; carries the new values a
    /// consumer may show or act on.
    TaskEdited {
        meta: EventMeta,
        task: TaskId,
        title: String,
        priority: Priority,
        due_date: Option<NaiveDate>,
    },
    TaskAssigned {
        meta: EventMeta,
        task: TaskId,
        assignee: Option<UserId>,
        previous: Option<UserId>,
    },
    TaskStarted {
        meta: EventMeta,
        task: TaskId,
    },
    TaskCompleted {
        meta: EventMeta,
        task: TaskId,
    },
    TaskReopened {
        meta: EventMeta,
        task: TaskId,
    },
    TaskDeleted {
        meta: EventMeta,
        task: TaskId,
    },
    TaskRestored {
        meta: EventMeta,
        task: TaskId,
    },
    UserRegistered {
        meta: EventMeta,
        user: UserId,
        role: Role,
    },
    UserDeactivated {
        meta: EventMeta,
        user: UserId,
    },
}

/// The kind of aggregate an event belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggregateType {
    Task,
    User,
}

impl AggregateType {
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Task => "task",
            Self::User => "user",
        }
    }
}

impl DomainEvent {
    #[must_use]
    pub fn meta(&self) -> &EventMeta {
        match self {
            Self::TaskCreated { meta, .. }
            | Self::TaskEdited { meta, .. }
            | Self::TaskAssigned { meta, .. }
            | Self::TaskStarted { meta, .. }
            | Self::TaskCompleted { meta, .. }
            | Self::TaskReopened { meta, .. }
            | Self::TaskDeleted { meta, .. }
            | Self::TaskRestored { meta, .. }
            | Self::UserRegistered { meta, .. }
            | Self::UserDeactivated { meta, .. } => meta,
        }
    }

    /// A stable, dotted name (`task.created`) that consumers dispatch on.
    #[must_use]
    pub const fn name(&self) -> &'static str {
        match self {
            Self::TaskCreated { .. } => "task.created",
            Self::TaskEdited { .. } => "task.edited",
            Self::TaskAssigned { .. } => "task.assigned",
            Self::TaskStarted { .. } => "task.started",
            Self::TaskCompleted { .. } => "task.completed",
            Self::TaskReopened { .. } => "task.reopened",
            Self::TaskDeleted { .. } => "task.deleted",
            Self::TaskRestored { .. } => "task.restored",
            Self::UserRegistered { .. } => "user.registered",
            Self::UserDeactivated { .. } => "user.deactivated",
        }
    }

    /// The aggregate the event happened to.
    #[must_use]
    pub fn aggregate(&self) -> (AggregateType, uuid::Uuid) {
        match self {
            Self::TaskCreated { task, .. }
            | Self::TaskEdited { task, .. }
            | Self::TaskAssigned { task, .. }
            | Self::TaskStarted { task, .. }
            | Self::TaskCompleted { task, .. }
            | Self::TaskReopened { task, .. }
            | Self::TaskDeleted { task, .. }
            | Self::TaskRestored { task, .. } => (AggregateType::Task, task.as_uuid()),
            Self::UserRegistered { user, .. } | Self::UserDeactivated { user, .. } => {
                (AggregateType::User, user.as_uuid())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_names_its_aggregate_and_kind() {
        let task = TaskId::from_uuid(uuid::Uuid::now_v7());
        let event = DomainEvent::TaskStarted {
            meta: EventMeta {
                tenant_id: TenantId::from_uuid(uuid::Uuid::now_v7()),
                actor: UserId::from_uuid(uuid::Uuid::now_v7()),
                occurred_at: Utc::now(),
            },
            task,
        };
        assert_eq!(event.name(), "task.started");
        assert_eq!(event.aggregate(), (AggregateType::Task, task.as_uuid()));
        assert_eq!(event.aggregate().0.as_str(), "task");
    }
}
