//! Events and write-side rows for the read models' tests.

use application::ports::{EventEnvelope, Store, UnitOfWork};
use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use domain::{
    Actor, Aggregate, DomainEvent, EventMeta, NewTask, PasswordHash, Priority, Role, Task,
    TaskDescription, TaskEvent, TaskFact, TaskId, TaskTitle, Tenant, TenantId, TenantName, User,
    UserId, Username,
};
use uuid::Uuid;

use crate::persistence::SqlUnitOfWork;

pub(super) fn at(minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 12, minute, 0).unwrap()
}

pub(super) fn day(day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 3, day).unwrap()
}

pub(super) fn new_id() -> Uuid {
    Uuid::now_v7()
}

pub(super) fn user() -> UserId {
    UserId::from_uuid(new_id())
}

pub(super) fn task() -> TaskId {
    TaskId::from_uuid(new_id())
}

/// Who acts in one tenant, and when.
pub(super) fn meta(tenant: TenantId, minute: u32) -> EventMeta {
    EventMeta {
        tenant_id: tenant,
        actor: UserId::from_uuid(Uuid::nil()),
        occurred_at: at(minute),
    }
}

/// `event` as delivered, with a new id.
pub(super) fn envelope(aggregate_version: i64, event: DomainEvent) -> EventEnvelope {
    EventEnvelope {
        id: new_id(),
        aggregate_version,
        event,
    }
}

/// An event of `task` in `tenant`, at `minute`.
pub(super) fn task_event(
    tenant: TenantId,
    task: TaskId,
    minute: u32,
    fact: TaskFact,
) -> DomainEvent {
    DomainEvent::from(TaskEvent {
        meta: meta(tenant, minute),
        task_id: task,
        fact,
    })
}

/// A task created (version 0) in `tenant`.
pub(super) fn created(
    tenant: TenantId,
    task: TaskId,
    assignee: Option<UserId>,
    due_date: Option<NaiveDate>,
    minute: u32,
) -> EventEnvelope {
    let fact = TaskFact::Created {
        title: "Untitled".to_owned(),
        creator: user(),
        assignee,
        priority: Priority::Medium,
        due_date,
    };
    envelope(0, task_event(tenant, task, minute, fact))
}

/// A tenant with an admin and a member, stored through the unit of work.
pub(crate) struct WriteSide {
    pub uow: SqlUnitOfWork,
    pub admin: User,
    pub member: User,
}

impl WriteSide {
    pub async fn new(uow: SqlUnitOfWork) -> Self {
        let tenant = Tenant::create(
            TenantId::from_uuid(new_id()),
            TenantName::parse("Acme").unwrap(),
            at(0),
        );
        let user = |role| {
            let id = user();
            User::register(
                id,
                id,
                tenant.id(),
                domain::Email::parse(&format!("{}@example.com", id.as_uuid().simple())).unwrap(),
                Username::parse("someone").unwrap(),
                PasswordHash::new("hash".to_owned()),
                role,
                at(0),
            )
        };
        let (admin, member) = (user(Role::Admin), user(Role::Member));
        let mut tx = uow.begin().await.unwrap();
        tx.add_tenant(&tenant).await.unwrap();
        Store::<User>::add(tx.as_mut(), &admin).await.unwrap();
        Store::<User>::add(tx.as_mut(), &member).await.unwrap();
        tx.commit().await.unwrap();
        Self { uow, admin, member }
    }

    pub fn tenant(&self) -> TenantId {
        self.admin.tenant_id()
    }

    pub fn actor(&self) -> Actor {
        Actor {
            id: self.admin.id(),
            role: self.admin.role(),
        }
    }

    pub fn create(
        &self,
        assignee: Option<UserId>,
        due_date: Option<NaiveDate>,
        minute: u32,
    ) -> Task {
        let new = NewTask {
            title: TaskTitle::parse("Untitled").unwrap(),
            description: TaskDescription::default(),
            priority: Priority::Medium,
            due_date,
            assignee,
            checklist: Vec::new(),
        };
        Task::create(task(), self.tenant(), self.actor(), new, at(minute)).unwrap()
    }

    /// Stores a new task; the events it recorded, as the relay would deliver them.
    pub async fn add(&self, task: &mut Task) -> Vec<EventEnvelope> {
        let events = task.take_events();
        let mut tx = self.uow.begin().await.unwrap();
        Store::<Task>::add(tx.as_mut(), task).await.unwrap();
        tx.commit().await.unwrap();
        enveloped(events, task.version())
    }

    /// Saves a changed task; the events it recorded, as the relay would deliver them.
    pub async fn save(&self, task: &mut Task) -> Vec<EventEnvelope> {
        let events = task.take_events();
        let mut tx = self.uow.begin().await.unwrap();
        Store::<Task>::save(tx.as_mut(), task).await.unwrap();
        tx.commit().await.unwrap();
        enveloped(events, task.version())
    }
}

fn enveloped(events: Vec<TaskEvent>, version: i64) -> Vec<EventEnvelope> {
    events
        .into_iter()
        .map(|event| envelope(version, event.into()))
        .collect()
}
