//! The task aggregate: a piece of work in a tenant, with a status that moves through
//! todo → in progress → done, and a checklist that must be finished before the task can
//! be. Checklist items are child entities: they change only through the task.

mod values;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

pub use values::{ChecklistText, Priority, TaskDescription, TaskStatus, TaskTitle, UnknownVariant};

use crate::aggregate::Aggregate;
use crate::event::{AggregateEvent, EventMeta};
use crate::id::id_type;
use crate::tenant::TenantId;
use crate::user::{Role, UserId};

id_type!(
    /// Identifies a task.
    TaskId
);

id_type!(
    /// Identifies a checklist item within its task.
    ChecklistItemId
);

/// The user acting on a task, with what the rules need to know about them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Actor {
    pub id: UserId,
    pub role: Role,
}

/// The rules a task change can break.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TaskError {
    /// Members act only on tasks they created or are assigned to.
    #[error("only admins, the task's creator and its assignee may change it")]
    NotAllowed,
    #[error("a task cannot go from {from} to {to}")]
    InvalidTransition { from: TaskStatus, to: TaskStatus },
    #[error("every checklist item must be done before the task can be completed")]
    ChecklistIncomplete,
    #[error("a done task cannot be changed until it is reopened")]
    DoneIsReadOnly,
    #[error("a task has at most {max} checklist items", max = Task::MAX_CHECKLIST_ITEMS)]
    ChecklistFull,
    #[error("the checklist item does not exist")]
    ChecklistItemNotFound,
    #[error("the task is deleted")]
    Deleted,
    #[error("the task is not deleted")]
    NotDeleted,
}

/// Something that happened to a task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskEvent {
    pub meta: EventMeta,
    pub task_id: TaskId,
    pub fact: TaskFact,
}

/// What happened to the task, with the facts a consumer needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TaskFact {
    /// Carries the first assignee; `Assigned` records later changes of it.
    Created {
        title: String,
        creator: UserId,
        assignee: Option<UserId>,
        priority: Priority,
        due_date: Option<NaiveDate>,
    },
    /// Title, description, priority or due date changed; carries the new values a
    /// consumer may show or act on.
    Edited {
        title: String,
        priority: Priority,
        due_date: Option<NaiveDate>,
    },
    Assigned {
        assignee: Option<UserId>,
        previous: Option<UserId>,
    },
    Started,
    Completed,
    Reopened,
    Deleted,
    Restored,
}

impl AggregateEvent for TaskEvent {
    fn aggregate_name(&self) -> &'static str {
        Task::NAME
    }

    fn aggregate_id(&self) -> uuid::Uuid {
        self.task_id.as_uuid()
    }

    fn meta(&self) -> &EventMeta {
        &self.meta
    }

    fn name(&self) -> &'static str {
        match self.fact {
            TaskFact::Created { .. } => "task.created",
            TaskFact::Edited { .. } => "task.edited",
            TaskFact::Assigned { .. } => "task.assigned",
            TaskFact::Started => "task.started",
            TaskFact::Completed => "task.completed",
            TaskFact::Reopened => "task.reopened",
            TaskFact::Deleted => "task.deleted",
            TaskFact::Restored => "task.restored",
        }
    }
}

/// A checklist item: a line of text that is done or not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChecklistItem {
    id: ChecklistItemId,
    text: ChecklistText,
    done: bool,
}

impl ChecklistItem {
    /// Rebuilds an item from stored state; only persistence adapters call this.
    #[must_use]
    pub fn reconstitute(id: ChecklistItemId, text: ChecklistText, done: bool) -> Self {
        Self { id, text, done }
    }

    #[must_use]
    pub fn id(&self) -> ChecklistItemId {
        self.id
    }

    #[must_use]
    pub fn text(&self) -> &ChecklistText {
        &self.text
    }

    #[must_use]
    pub fn is_done(&self) -> bool {
        self.done
    }
}

/// What a new task starts with.
#[derive(Debug, Clone)]
pub struct NewTask {
    pub title: TaskTitle,
    pub description: TaskDescription,
    pub priority: Priority,
    pub due_date: Option<NaiveDate>,
    /// Checked to be an active user of the tenant by the caller, before creation.
    pub assignee: Option<UserId>,
    pub checklist: Vec<(ChecklistItemId, ChecklistText)>,
}

/// A partial edit; `None` leaves a field as it is. `due_date: Some(None)` clears it.
#[derive(Debug, Clone, Default)]
pub struct TaskEdit {
    pub title: Option<TaskTitle>,
    pub description: Option<TaskDescription>,
    pub priority: Option<Priority>,
    pub due_date: Option<Option<NaiveDate>>,
}

/// A task's whole state, as persistence adapters store and load it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskSnapshot {
    pub id: TaskId,
    pub tenant_id: TenantId,
    pub title: TaskTitle,
    pub description: TaskDescription,
    pub status: TaskStatus,
    pub priority: Priority,
    pub due_date: Option<NaiveDate>,
    pub assignee: Option<UserId>,
    pub creator: UserId,
    pub checklist: Vec<ChecklistItem>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    pub deleted_at: Option<DateTime<Utc>>,
}

/// The task aggregate. Every change goes through a method that checks who acts and
/// whether the rules allow it, and records the event that says what happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    state: TaskSnapshot,
    events: Vec<TaskEvent>,
}

impl Task {
    pub const MAX_CHECKLIST_ITEMS: usize = 50;

    /// Any user of the tenant may create a task. `TaskCreated` carries the first
    /// assignee; `TaskAssigned` records later changes of it.
    ///
    /// # Errors
    /// `ChecklistFull` for more than 50 checklist items.
    pub fn create(
        id: TaskId,
        tenant_id: TenantId,
        actor: Actor,
        new: NewTask,
        now: DateTime<Utc>,
    ) -> Result<Self, TaskError> {
        if new.checklist.len() > Self::MAX_CHECKLIST_ITEMS {
            return Err(TaskError::ChecklistFull);
        }
        let checklist = new
            .checklist
            .into_iter()
            .map(|(id, text)| ChecklistItem {
                id,
                text,
                done: false,
            })
            .collect();
        let mut task = Self {
            state: TaskSnapshot {
                id,
                tenant_id,
                title: new.title,
                description: new.description,
                status: TaskStatus::Todo,
                priority: new.priority,
                due_date: new.due_date,
                assignee: new.assignee,
                creator: actor.id,
                checklist,
                version: 0,
                created_at: now,
                updated_at: now,
                completed_at: None,
                deleted_at: None,
            },
            events: Vec::new(),
        };
        task.record(actor, now, |task| TaskFact::Created {
            title: task.title.as_str().to_owned(),
            creator: task.creator,
            assignee: task.assignee,
            priority: task.priority,
            due_date: task.due_date,
        });
        Ok(task)
    }

    /// Rebuilds a task from stored state; only persistence adapters call this.
    #[must_use]
    pub fn reconstitute(snapshot: TaskSnapshot) -> Self {
        Self {
            state: snapshot,
            events: Vec::new(),
        }
    }

    #[must_use]
    pub fn snapshot(&self) -> &TaskSnapshot {
        &self.state
    }

    #[must_use]
    pub fn status(&self) -> TaskStatus {
        self.state.status
    }

    #[must_use]
    pub fn assignee(&self) -> Option<UserId> {
        self.state.assignee
    }

    #[must_use]
    pub fn creator(&self) -> UserId {
        self.state.creator
    }

    #[must_use]
    pub fn checklist(&self) -> &[ChecklistItem] {
        &self.state.checklist
    }

    /// Admins act on every task of their tenant; members on the tasks they created or
    /// are assigned to.
    #[must_use]
    pub fn may_be_changed_by(&self, actor: Actor) -> bool {
        actor.role == Role::Admin
            || actor.id == self.state.creator
            || Some(actor.id) == self.state.assignee
    }

    fn record(
        &mut self,
        actor: Actor,
        now: DateTime<Utc>,
        fact: impl FnOnce(&TaskSnapshot) -> TaskFact,
    ) {
        let fact = fact(&self.state);
        self.events.push(TaskEvent {
            meta: EventMeta {
                tenant_id: self.state.tenant_id,
                actor: actor.id,
                occurred_at: now,
            },
            task_id: self.state.id,
            fact,
        });
    }

    /// The checks every change makes, in the order callers see them: gone, then who,
    /// then whether a done task may change.
    fn ensure_may_change(&self, actor: Actor, even_when_done: bool) -> Result<(), TaskError> {
        if self.is_deleted() {
            return Err(TaskError::Deleted);
        }
        if !self.may_be_changed_by(actor) {
            return Err(TaskError::NotAllowed);
        }
        if !even_when_done && self.state.status == TaskStatus::Done {
            return Err(TaskError::DoneIsReadOnly);
        }
        Ok(())
    }

    fn transition(&mut self, from: TaskStatus, to: TaskStatus) -> Result<(), TaskError> {
        if self.state.status != from {
            return Err(TaskError::InvalidTransition {
                from: self.state.status,
                to,
            });
        }
        self.state.status = to;
        Ok(())
    }

    /// # Errors
    /// `Deleted`, `NotAllowed`, `DoneIsReadOnly`.
    pub fn edit(
        &mut self,
        actor: Actor,
        edit: TaskEdit,
        now: DateTime<Utc>,
    ) -> Result<(), TaskError> {
        self.ensure_may_change(actor, false)?;
        let before = self.state.clone();
        if let Some(title) = edit.title {
            self.state.title = title;
        }
        if let Some(description) = edit.description {
            self.state.description = description;
        }
        if let Some(priority) = edit.priority {
            self.state.priority = priority;
        }
        if let Some(due_date) = edit.due_date {
            self.state.due_date = due_date;
        }
        if self.state != before {
            self.state.updated_at = now;
            self.record(actor, now, |task| TaskFact::Edited {
                title: task.title.as_str().to_owned(),
                priority: task.priority,
                due_date: task.due_date,
            });
        }
        Ok(())
    }

    /// Assigns the task, or unassigns it with `None`. The caller has checked that the
    /// assignee is an active user of the tenant.
    ///
    /// # Errors
    /// `Deleted`, `NotAllowed`, `DoneIsReadOnly`.
    pub fn assign(
        &mut self,
        actor: Actor,
        assignee: Option<UserId>,
        now: DateTime<Utc>,
    ) -> Result<(), TaskError> {
        self.ensure_may_change(actor, false)?;
        let previous = self.state.assignee;
        if previous == assignee {
            return Ok(());
        }
        self.state.assignee = assignee;
        self.state.updated_at = now;
        self.record(actor, now, |_| TaskFact::Assigned { assignee, previous });
        Ok(())
    }

    /// todo → in progress.
    ///
    /// # Errors
    /// `Deleted`, `NotAllowed`, `InvalidTransition`.
    pub fn start(&mut self, actor: Actor, now: DateTime<Utc>) -> Result<(), TaskError> {
        self.ensure_may_change(actor, true)?;
        self.transition(TaskStatus::Todo, TaskStatus::InProgress)?;
        self.state.updated_at = now;
        self.record(actor, now, |_| TaskFact::Started);
        Ok(())
    }

    /// in progress → done, once every checklist item is done.
    ///
    /// # Errors
    /// `Deleted`, `NotAllowed`, `InvalidTransition`, `ChecklistIncomplete`.
    pub fn complete(&mut self, actor: Actor, now: DateTime<Utc>) -> Result<(), TaskError> {
        self.ensure_may_change(actor, true)?;
        if self.state.status == TaskStatus::InProgress
            && !self.state.checklist.iter().all(ChecklistItem::is_done)
        {
            return Err(TaskError::ChecklistIncomplete);
        }
        self.transition(TaskStatus::InProgress, TaskStatus::Done)?;
        self.state.completed_at = Some(now);
        self.state.updated_at = now;
        self.record(actor, now, |_| TaskFact::Completed);
        Ok(())
    }

    /// done → todo.
    ///
    /// # Errors
    /// `Deleted`, `NotAllowed`, `InvalidTransition`.
    pub fn reopen(&mut self, actor: Actor, now: DateTime<Utc>) -> Result<(), TaskError> {
        self.ensure_may_change(actor, true)?;
        self.transition(TaskStatus::Done, TaskStatus::Todo)?;
        self.state.completed_at = None;
        self.state.updated_at = now;
        self.record(actor, now, |_| TaskFact::Reopened);
        Ok(())
    }

    /// # Errors
    /// `Deleted`, `NotAllowed`, `DoneIsReadOnly`, `ChecklistFull`.
    pub fn add_checklist_item(
        &mut self,
        actor: Actor,
        id: ChecklistItemId,
        text: ChecklistText,
        now: DateTime<Utc>,
    ) -> Result<(), TaskError> {
        self.ensure_may_change(actor, false)?;
        if self.state.checklist.len() >= Self::MAX_CHECKLIST_ITEMS {
            return Err(TaskError::ChecklistFull);
        }
        self.state.checklist.push(ChecklistItem {
            id,
            text,
            done: false,
        });
        self.state.updated_at = now;
        Ok(())
    }

    /// # Errors
    /// `Deleted`, `NotAllowed`, `DoneIsReadOnly`, `ChecklistItemNotFound`.
    pub fn update_checklist_item(
        &mut self,
        actor: Actor,
        id: ChecklistItemId,
        text: Option<ChecklistText>,
        done: Option<bool>,
        now: DateTime<Utc>,
    ) -> Result<(), TaskError> {
        self.ensure_may_change(actor, false)?;
        let item = self
            .state
            .checklist
            .iter_mut()
            .find(|item| item.id == id)
            .ok_or(TaskError::ChecklistItemNotFound)?;
        let before = item.clone();
        if let Some(text) = text {
            item.text = text;
        }
        if let Some(done) = done {
            item.done = done;
        }
        if *item != before {
            self.state.updated_at = now;
        }
        Ok(())
    }

    /// # Errors
    /// `Deleted`, `NotAllowed`, `DoneIsReadOnly`, `ChecklistItemNotFound`.
    pub fn remove_checklist_item(
        &mut self,
        actor: Actor,
        id: ChecklistItemId,
        now: DateTime<Utc>,
    ) -> Result<(), TaskError> {
        self.ensure_may_change(actor, false)?;
        let before = self.state.checklist.len();
        self.state.checklist.retain(|item| item.id != id);
        if self.state.checklist.len() == before {
            return Err(TaskError::ChecklistItemNotFound);
        }
        self.state.updated_at = now;
        Ok(())
    }

    /// Soft delete.
    ///
    /// # Errors
    /// `Deleted`, `NotAllowed`.
    pub fn delete(&mut self, actor: Actor, now: DateTime<Utc>) -> Result<(), TaskError> {
        self.ensure_may_change(actor, true)?;
        self.state.deleted_at = Some(now);
        self.state.updated_at = now;
        self.record(actor, now, |_| TaskFact::Deleted);
        Ok(())
    }

    /// Only admins restore.
    ///
    /// # Errors
    /// `NotAllowed` for members, `NotDeleted`.
    pub fn restore(&mut self, actor: Actor, now: DateTime<Utc>) -> Result<(), TaskError> {
        if actor.role != Role::Admin {
            return Err(TaskError::NotAllowed);
        }
        if !self.is_deleted() {
            return Err(TaskError::NotDeleted);
        }
        self.state.deleted_at = None;
        self.state.updated_at = now;
        self.record(actor, now, |_| TaskFact::Restored);
        Ok(())
    }
}

impl Aggregate for Task {
    const NAME: &'static str = "task";
    type Id = TaskId;
    type Event = TaskEvent;

    fn id(&self) -> TaskId {
        self.state.id
    }

    fn tenant_id(&self) -> TenantId {
        self.state.tenant_id
    }

    fn version(&self) -> i64 {
        self.state.version
    }

    fn is_deleted(&self) -> bool {
        self.state.deleted_at.is_some()
    }

    fn events(&self) -> &[TaskEvent] {
        &self.events
    }

    fn take_events(&mut self) -> Vec<TaskEvent> {
        std::mem::take(&mut self.events)
    }

    fn saved(&mut self) {
        self.state.version += 1;
    }
}

#[cfg(test)]
mod tests;
