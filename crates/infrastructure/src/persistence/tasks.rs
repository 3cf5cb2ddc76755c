//! Tasks on SQL: `SqlTaskQueries` for reads, and the `TaskStore` writes of a
//! `SqlTransaction`.

use std::collections::HashMap;

use anyhow::anyhow;
use application::ports::{
    RepositoryError, TaskCursor, TaskFilter, TaskOrder, TaskQueries, TaskSort, TaskStore,
};
use async_trait::async_trait;
use domain::{Task, TaskId, TenantId};
use sea_orm::sea_query::{Expr, ExprTrait, Func, LockType, NullOrdering};
use sea_orm::{
    AccessMode, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DatabaseTransaction,
    DbBackend, EntityTrait, IntoActiveModel, IsolationLevel, Order, QueryFilter, QueryOrder,
    QuerySelect, Select, TransactionTrait,
};
use uuid::Uuid;

use super::entity::task_checklist_items as items;
use super::entity::tasks::{self, Column};
use super::mapping::{checklist_rows, task_changes, task_from_rows, task_row};
use super::unit_of_work::SqlTransaction;
use super::{contains_pattern, outbox, repository_error};
use crate::database::Database;

/// Reads of the `tasks` and `task_checklist_items` tables, on the pool.
#[derive(Debug, Clone)]
pub struct SqlTaskQueries {
    db: Database,
}

impl SqlTaskQueries {
    #[must_use]
    pub fn new(db: Database) -> Self {
        Self { db }
    }
}

fn into_task(row: &tasks::Model, items: Vec<items::Model>) -> Result<Task, RepositoryError> {
    task_from_rows(row, items)
        .map_err(|error| RepositoryError::Unexpected(error.context("reading a task")))
}

/// The checklist rows of `tasks`, by task, each in position order: one query for any
/// number of tasks.
async fn checklists(
    db: &impl ConnectionTrait,
    tenant: TenantId,
    tasks: &[Uuid],
) -> Result<HashMap<Uuid, Vec<items::Model>>, RepositoryError> {
    let mut by_task: HashMap<Uuid, Vec<items::Model>> = HashMap::new();
    if tasks.is_empty() {
        return Ok(by_task);
    }
    let rows = items::Entity::find()
        .filter(items::Column::TenantId.eq(tenant.as_uuid()))
        .filter(items::Column::TaskId.is_in(tasks.iter().copied()))
        .order_by_asc(items::Column::TaskId)
        .order_by_asc(items::Column::Position)
        .all(db)
        .await
        .map_err(|error| repository_error(error, "loading checklists"))?;
    for row in rows {
        by_task.entry(row.task_id).or_default().push(row);
    }
    Ok(by_task)
}

async fn insert_checklist(
    transaction: &DatabaseTransaction,
    rows: Vec<items::Model>,
) -> Result<(), RepositoryError> {
    items::Entity::insert_many(rows.into_iter().map(IntoActiveModel::into_active_model))
        .exec_without_returning(transaction)
        .await
        .map_err(|error| repository_error(error, "inserting a task's checklist"))?;
    Ok(())
}

/// The task with its checklist, read in two statements. Callers run them in one
/// transaction so that they see one state: a snapshot for reads, a locked row for
/// writes.
async fn load(
    db: &impl ConnectionTrait,
    tenant: TenantId,
    id: TaskId,
    lock: Option<LockType>,
) -> Result<Option<Task>, RepositoryError> {
    let mut query =
        tasks::Entity::find_by_id(id.as_uuid()).filter(Column::TenantId.eq(tenant.as_uuid()));
    // SQLite has no row locks and needs none: its write transaction holds the database.
    if let Some(lock) = lock
        && db.get_database_backend() == DbBackend::Postgres
    {
        query = query.lock(lock);
    }
    let row = query
        .one(db)
        .await
        .map_err(|error| repository_error(error, "loading a task"))?;
    let Some(row) = row else {
        return Ok(None);
    };
    let items = checklists(db, tenant, &[row.id])
        .await?
        .remove(&row.id)
        .unwrap_or_default();
    into_task(&row, items).map(Some)
}

#[async_trait]
impl TaskStore for SqlTransaction {
    /// Locks the task's row until the transaction ends, so the version the use case
    /// checks against `If-Match` stays current until its save: a concurrent writer
    /// waits instead of slipping in between (which would turn a 412 into a 409).
    #[tracing::instrument(skip_all, fields(tenant_id = %tenant, task_id = %id))]
    async fn get(&mut self, tenant: TenantId, id: TaskId) -> Result<Option<Task>, RepositoryError> {
        load(&self.transaction, tenant, id, Some(LockType::NoKeyUpdate)).await
    }

    #[tracing::instrument(skip_all, fields(tenant_id = %task.tenant_id(), task_id = %task.id()))]
    async fn add(&mut self, task: &mut Task) -> Result<(), RepositoryError> {
        tasks::Entity::insert(task_row(task))
            .exec_without_returning(&self.transaction)
            .await
            .map_err(|error| repository_error(error, "inserting a task"))?;
        insert_checklist(&self.transaction, checklist_rows(task)).await?;
        outbox::append(&self.transaction, task.events(), task.version()).await?;
        task.take_events();
        Ok(())
    }

    /// The UPDATE carries the version check, so of two concurrent saves the second
    /// waits for the first's row lock and then matches nothing: `Stale`, not a lost
    /// update. The checklist is rewritten only when it differs from the stored one:
    /// most changes (start, assign, edit) leave it alone, and reading it back by its
    /// index is cheaper than deleting and inserting up to 50 rows, and their index
    /// entries, on every save. Every checklist write follows the UPDATE of its task's
    /// row, so the lock that UPDATE took keeps the stored checklist still meanwhile.
    ///
    /// `task` is replaced by its saved state (new version, no events) only once every
    /// statement has succeeded; on an error it is left as it was.
    #[tracing::instrument(skip_all, fields(tenant_id = %task.tenant_id(), task_id = %task.id()))]
    async fn save(&mut self, task: &mut Task) -> Result<(), RepositoryError> {
        let transaction = &self.transaction;
        let (tenant, id) = (task.tenant_id(), task.id().as_uuid());
        let updated = tasks::Entity::update_many()
            .set(task_changes(task.snapshot()))
            .col_expr(Column::Version, Expr::col(Column::Version).add(1))
            .filter(Column::Id.eq(id))
            .filter(Column::TenantId.eq(tenant.as_uuid()))
            .filter(Column::Version.eq(task.version()))
            .exec(transaction)
            .await
            .map_err(|error| repository_error(error, "updating a task"))?;
        if updated.rows_affected == 0 {
            return Err(RepositoryError::Stale);
        }
        let checklist = checklist_rows(task);
        let stored = checklists(transaction, tenant, &[id])
            .await?
            .remove(&id)
            .unwrap_or_default();
        if stored != checklist {
            items::Entity::delete_many()
                .filter(items::Column::TaskId.eq(id))
                .filter(items::Column::TenantId.eq(tenant.as_uuid()))
                .exec(transaction)
                .await
                .map_err(|error| repository_error(error, "clearing a task's checklist"))?;
            insert_checklist(transaction, checklist).await?;
        }
        outbox::append(transaction, task.events(), task.version() + 1).await?;
        let mut saved = task.snapshot().clone();
        saved.version += 1;
        *task = Task::reconstitute(saved);
        Ok(())
    }
}

/// The tenant's tasks that pass `filter`, unordered.
fn filtered(tenant: TenantId, filter: &TaskFilter) -> Select<tasks::Entity> {
    let mut query = tasks::Entity::find().filter(Column::TenantId.eq(tenant.as_uuid()));
    if !filter.include_deleted {
        query = query.filter(Column::DeletedAt.is_null());
    }
    if let Some(status) = filter.status {
        query = query.filter(Column::Status.eq(status.as_str()));
    }
    if let Some(assignee) = filter.assignee {
        query = query.filter(Column::AssigneeId.eq(assignee.as_uuid()));
    }
    if let Some(priority) = filter.priority {
        query = query.filter(Column::Priority.eq(priority.rank()));
    }
    if let Some(due_before) = filter.due_before {
        // A missing due date compares as NULL, so tasks without one never match.
        query = query.filter(Column::DueDate.lt(due_before));
    }
    if let Some(q) = &filter.q {
        // Titles keep their case, so both sides are lower-cased. SQLite's LOWER folds
        // ASCII letters only; PostgreSQL's folds every letter.
        let title = Expr::expr(Func::lower(Expr::col(Column::Title)));
        query = query.filter(title.like(contains_pattern(&q.to_lowercase())));
    }
    query
}

/// Orders by `sort`, then by id in the same direction, so the order is total.
fn sorted(query: Select<tasks::Entity>, sort: TaskSort) -> Select<tasks::Entity> {
    let direction = || {
        if sort.descending {
            Order::Desc
        } else {
            Order::Asc
        }
    };
    let query = match sort.order {
        TaskOrder::CreatedAt => query.order_by(Column::CreatedAt, direction()),
        TaskOrder::Priority => query.order_by(Column::Priority, direction()),
        TaskOrder::DueDate => {
            let nulls = if sort.descending {
                NullOrdering::First
            } else {
                NullOrdering::Last
            };
            query.order_by_with_nulls(Column::DueDate, direction(), nulls)
        }
    };
    query.order_by(Column::Id, direction())
}

/// The tasks strictly beyond `cursor` in its order. A row comparison, `(key, id) >
/// (cursor key, cursor id)`, lets the database seek the `(tenant_id, key, id)` index to
/// the cursor and read on from there. Due dates add NULL, which compares as neither
/// before nor after anything, so the tasks without one are matched apart: they come
/// last ascending, first descending. Where that takes an OR, `PostgreSQL` still reads
/// the index in order but filters instead of seeking.
fn beyond(cursor: TaskCursor, descending: bool) -> Condition {
    let past = |key: Column, value: Expr, id: TaskId| {
        let row = Expr::tuple([Expr::col(key), Expr::col(Column::Id)]);
        let cursor = Expr::tuple([value, Expr::val(id.as_uuid())]);
        Condition::all().add(if descending {
            row.lt(cursor)
        } else {
            row.gt(cursor)
        })
    };
    let undated_past = |id: TaskId| {
        let id = id.as_uuid();
        Condition::all()
            .add(Column::DueDate.is_null())
            .add(if descending {
                Column::Id.lt(id)
            } else {
                Column::Id.gt(id)
            })
    };
    match cursor {
        TaskCursor::CreatedAt(at, id) => past(Column::CreatedAt, Expr::val(at), id),
        TaskCursor::Priority(priority, id) => {
            past(Column::Priority, Expr::val(priority.rank()), id)
        }
        // Ascending, the undated tasks are all still to come.
        TaskCursor::DueDate(Some(due), id) if !descending => Condition::any()
            .add(past(Column::DueDate, Expr::val(due), id))
            .add(Column::DueDate.is_null()),
        // Descending, they were all listed already.
        TaskCursor::DueDate(Some(due), id) => past(Column::DueDate, Expr::val(due), id),
        // Ascending, only undated tasks are left.
        TaskCursor::DueDate(None, id) if !descending => undated_past(id),
        // Descending, every dated task is still to come.
        TaskCursor::DueDate(None, id) => Condition::any()
            .add(undated_past(id))
            .add(Column::DueDate.is_not_null()),
    }
}

/// A read-only transaction whose statements all see one committed state, so a task
/// and its checklist always belong together and its `ETag` names a state that existed.
/// `PostgreSQL` needs `REPEATABLE READ` for that; an `SQLite` read transaction is a
/// snapshot already. Dropped without commit: there is nothing to commit.
async fn read_snapshot(db: &DatabaseConnection) -> Result<DatabaseTransaction, RepositoryError> {
    let isolation = (db.get_database_backend() == DbBackend::Postgres)
        .then_some(IsolationLevel::RepeatableRead);
    db.begin_with_config(isolation, Some(AccessMode::ReadOnly))
        .await
        .map_err(|error| repository_error(error, "starting a read snapshot"))
}

#[async_trait]
impl TaskQueries for SqlTaskQueries {
    #[tracing::instrument(skip_all, fields(tenant_id = %tenant, task_id = %id))]
    async fn get(&self, tenant: TenantId, id: TaskId) -> Result<Option<Task>, RepositoryError> {
        let db = self.db.acquire().await?;
        let snapshot = read_snapshot(&db).await?;
        load(&snapshot, tenant, id, None).await
    }

    /// One query for the page and one for all of its checklists, in one snapshot.
    #[tracing::instrument(skip_all, fields(tenant_id = %tenant))]
    async fn list(
        &self,
        tenant: TenantId,
        filter: &TaskFilter,
        sort: TaskSort,
        after: Option<TaskCursor>,
        limit: u64,
    ) -> Result<Vec<Task>, RepositoryError> {
        let mut query = filtered(tenant, filter);
        if let Some(cursor) = after {
            if cursor.order() != sort.order {
                return Err(RepositoryError::Unexpected(anyhow!(
                    "a cursor of the {:?} order cannot continue a list in the {:?} order",
                    cursor.order(),
                    sort.order
                )));
            }
            query = query.filter(beyond(cursor, sort.descending));
        }
        let db = self.db.acquire().await?;
        let snapshot = read_snapshot(&db).await?;
        let rows = sorted(query, sort)
            .limit(limit)
            .all(&snapshot)
            .await
            .map_err(|error| repository_error(error, "listing tasks"))?;
        let ids: Vec<Uuid> = rows.iter().map(|row| row.id).collect();
        let mut checklists = checklists(&snapshot, tenant, &ids).await?;
        rows.into_iter()
            .map(|row| {
                let items = checklists.remove(&row.id).unwrap_or_default();
                into_task(&row, items)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use application::ports::UnitOfWork;
    use chrono::{DateTime, NaiveDate, TimeZone, Utc};
    use domain::{
        Actor, ChecklistItemId, ChecklistText, NewTask, PasswordHash, Priority, Role,
        TaskDescription, TaskEdit, TaskStatus, TaskTitle, Tenant, TenantName, User, UserId,
        Username,
    };
    use sea_orm::ConnectionTrait;

    use super::*;
    use crate::persistence::SqlUnitOfWork;
    use crate::testing::{Backend, on_every_backend, open_two_connections};

    fn at(minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 12, minute, 0).unwrap()
    }

    fn day(day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 3, day).unwrap()
    }

    fn actor(user: &User) -> Actor {
        Actor {
            id: user.id(),
            role: user.role(),
        }
    }

    fn untitled() -> NewTask {
        NewTask {
            title: TaskTitle::parse("Untitled").unwrap(),
            description: TaskDescription::default(),
            priority: Priority::Medium,
            due_date: None,
            assignee: None,
            checklist: Vec::new(),
        }
    }

    fn titled(title: &str) -> NewTask {
        NewTask {
            title: TaskTitle::parse(title).unwrap(),
            ..untitled()
        }
    }

    fn checklist(texts: &[&str]) -> Vec<(ChecklistItemId, ChecklistText)> {
        texts
            .iter()
            .map(|text| {
                (
                    ChecklistItemId::from_uuid(Uuid::now_v7()),
                    ChecklistText::parse(text).unwrap(),
                )
            })
            .collect()
    }

    /// A tenant with an admin and a member, and the task adapters of its database.
    struct Fixture {
        db: Database,
        read: SqlTaskQueries,
        uow: SqlUnitOfWork,
        admin: User,
        member: User,
    }

    /// Stores a new tenant with its admin and, if asked, a member.
    async fn register(uow: &SqlUnitOfWork, email: &str, member: Option<&str>) -> Vec<User> {
        let tenant = Tenant::create(
            TenantId::from_uuid(Uuid::now_v7()),
            TenantName::parse("Acme").unwrap(),
            at(0),
        );
        let user = |email: &str, role| {
            let id = UserId::from_uuid(Uuid::now_v7());
            User::register(
                id,
                id,
                tenant.id(),
                domain::Email::parse(email).unwrap(),
                Username::parse("someone").unwrap(),
                PasswordHash::new("hash".to_owned()),
                role,
                at(0),
            )
        };
        let mut users: Vec<User> = std::iter::once(user(email, Role::Admin))
            .chain(member.map(|email| user(email, Role::Member)))
            .collect();
        let mut tx = uow.begin().await.unwrap();
        tx.users().add_tenant(&tenant).await.unwrap();
        for user in &mut users {
            tx.users().add(user).await.unwrap();
        }
        tx.commit().await.unwrap();
        users
    }

    impl Fixture {
        async fn new(db: Database) -> Self {
            let uow = SqlUnitOfWork::new(db.clone());
            let mut users = register(&uow, "admin@example.com", Some("member@example.com")).await;
            let member = users.pop().unwrap();
            let admin = users.pop().unwrap();
            Self {
                read: SqlTaskQueries::new(db.clone()),
                db,
                uow,
                admin,
                member,
            }
        }

        fn tenant(&self) -> TenantId {
            self.admin.tenant_id()
        }

        fn actor(&self) -> Actor {
            actor(&self.admin)
        }

        fn create(&self, new: NewTask, now: DateTime<Utc>) -> Task {
            let id = TaskId::from_uuid(Uuid::now_v7());
            Task::create(id, self.tenant(), self.actor(), new, now).unwrap()
        }

        /// The task as stored, in a transaction of its own.
        async fn try_add(&self, task: &Task) -> Result<Task, RepositoryError> {
            let mut task = task.clone();
            let mut tx = self.uow.begin().await?;
            tx.tasks().add(&mut task).await?;
            tx.commit().await?;
            Ok(task)
        }

        async fn add(&self, new: NewTask, now: DateTime<Utc>) -> Task {
            self.try_add(&self.create(new, now)).await.unwrap()
        }

        /// The task as saved, in a transaction of its own.
        async fn save(&self, task: &Task) -> Result<Task, RepositoryError> {
            let mut task = task.clone();
            let mut tx = self.uow.begin().await?;
            tx.tasks().save(&mut task).await?;
            tx.commit().await?;
            Ok(task)
        }

        async fn reload(&self, task: &Task) -> Option<Task> {
            self.read.get(task.tenant_id(), task.id()).await.unwrap()
        }

        async fn list(&self, filter: TaskFilter) -> Vec<TaskId> {
            let sort = TaskSort {
                order: TaskOrder::CreatedAt,
                descending: false,
            };
            let tasks = self
                .read
                .list(self.tenant(), &filter, sort, None, 100)
                .await
                .unwrap();
            tasks.iter().map(Task::id).collect()
        }

        async fn outbox(&self) -> Vec<crate::persistence::entity::outbox::Model> {
            outbox::stored(&self.db).await
        }
    }

    /// A handle on the same pool that records the SQL of every statement run through
    /// it, in transactions too.
    fn recording(db: &Database) -> (Database, Arc<Mutex<Vec<String>>>) {
        let statements = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&statements);
        let mut db = db.clone();
        db.set_metric_callback(move |info| log.lock().unwrap().push(info.statement.sql.clone()));
        (db, statements)
    }

    #[tokio::test]
    async fn a_stored_task_reads_back_with_every_field_and_its_checklist_in_order() {
        on_every_backend(|db| async move {
            let f = Fixture::new(db).await;
            // Positions, not ids, give the order: the ids here run the other way.
            let items = checklist(&["first", "second", "third"]);
            let (mut ids, texts): (Vec<_>, Vec<_>) = items.into_iter().unzip();
            ids.reverse();
            let items = ids.into_iter().zip(texts).collect();
            let new = NewTask {
                title: TaskTitle::parse("Ship the release").unwrap(),
                description: TaskDescription::parse("Tag, build, announce.").unwrap(),
                priority: Priority::Urgent,
                due_date: Some(day(31)),
                assignee: Some(f.member.id()),
                checklist: items,
            };
            let mut task = f.create(new, at(1));
            let second = task.checklist()[1].id();
            task.update_checklist_item(f.actor(), second, None, Some(true), at(1))
                .unwrap();
            let added = f.try_add(&task).await.unwrap();
            assert_eq!(added.version(), 0);
            assert!(added.events().is_empty());
            assert_eq!(f.reload(&task).await.as_ref(), Some(&added));
            let mut tx = f.uow.begin().await.unwrap();
            let in_transaction = tx.tasks().get(f.tenant(), task.id()).await.unwrap();
            assert_eq!(in_transaction.as_ref(), Some(&added));
            drop(tx);

            // Every column that can change, changed at once, and the checklist reshaped.
            let mut changed = added;
            let actor = f.actor();
            changed.remove_checklist_item(actor, second, at(2)).unwrap();
            let text = ChecklistText::parse("fourth").unwrap();
            let fourth = ChecklistItemId::from_uuid(Uuid::now_v7());
            changed
                .add_checklist_item(actor, fourth, text, at(2))
                .unwrap();
            changed.start(actor, at(2)).unwrap();
            for item in changed.clone().checklist() {
                changed
                    .update_checklist_item(actor, item.id(), None, Some(true), at(2))
                    .unwrap();
            }
            changed.complete(actor, at(3)).unwrap();
            changed.delete(actor, at(4)).unwrap();
            let saved = f.save(&changed).await.unwrap();
            assert_eq!(saved.version(), 1);
            assert_eq!(saved.status(), TaskStatus::Done);
            let texts: Vec<&str> = saved
                .checklist()
                .iter()
                .map(|i| i.text().as_str())
                .collect();
            assert_eq!(texts, ["first", "third", "fourth"]);
            assert_eq!(f.reload(&task).await, Some(saved));
        })
        .await;
    }

    #[tokio::test]
    async fn another_tenants_task_is_neither_found_nor_listed_nor_saved() {
        on_every_backend(|db| async move {
            let f = Fixture::new(db).await;
            let ours = f.add(titled("Ours"), at(1)).await;
            let theirs = register(&f.uow, "other@example.com", None).await.remove(0);
            let elsewhere = theirs.tenant_id();
            assert_eq!(f.read.get(elsewhere, ours.id()).await.unwrap(), None);
            let mut tx = f.uow.begin().await.unwrap();
            assert_eq!(tx.tasks().get(elsewhere, ours.id()).await.unwrap(), None);
            drop(tx);
            let everything = TaskFilter {
                include_deleted: true,
                ..TaskFilter::default()
            };
            let sort = TaskSort {
                order: TaskOrder::CreatedAt,
                descending: false,
            };
            let listed = f.read.list(elsewhere, &everything, sort, None, 100).await;
            assert!(listed.unwrap().is_empty());

            let mut snapshot = ours.snapshot().clone();
            snapshot.tenant_id = elsewhere;
            snapshot.title = TaskTitle::parse("Hijacked").unwrap();
            let hijacked = Task::reconstitute(snapshot);
            assert!(matches!(
                f.save(&hijacked).await,
                Err(RepositoryError::Stale)
            ));
            assert_eq!(f.reload(&ours).await, Some(ours));
        })
        .await;
    }

    #[tokio::test]
    async fn a_save_from_an_older_read_is_stale_and_changes_nothing() {
        on_every_backend(|db| async move {
            let f = Fixture::new(db).await;
            let task = f.add(untitled(), at(1)).await;
            let mut first = task.clone();
            first.start(f.actor(), at(2)).unwrap();
            let first = f.save(&first).await.unwrap();
            let mut second = task.clone();
            second
                .add_checklist_item(
                    f.actor(),
                    ChecklistItemId::from_uuid(Uuid::now_v7()),
                    ChecklistText::parse("late").unwrap(),
                    at(3),
                )
                .unwrap();
            second.delete(f.actor(), at(3)).unwrap();
            let before = second.clone();
            let mut tx = f.uow.begin().await.unwrap();
            let saved = tx.tasks().save(&mut second).await;
            assert!(matches!(saved, Err(RepositoryError::Stale)), "{saved:?}");
            assert_eq!(
                second, before,
                "the refused task keeps its state and events"
            );
            drop(tx);
            assert_eq!(f.reload(&task).await, Some(first));
            let names: Vec<String> = f
                .outbox()
                .await
                .into_iter()
                .filter(|event| event.aggregate_type == "task")
                .map(|event| event.event_type)
                .collect();
            assert_eq!(names, ["task.created", "task.started"]);
        })
        .await;
    }

    #[tokio::test]
    async fn a_tasks_events_reach_the_outbox_with_their_type_aggregate_and_payload() {
        on_every_backend(|db| async move {
            let f = Fixture::new(db).await;
            let new = NewTask {
                priority: Priority::High,
                due_date: Some(day(9)),
                ..titled("Ship")
            };
            let mut task = f.add(new, at(1)).await;
            task.start(f.actor(), at(2)).unwrap();
            task.assign(f.actor(), Some(f.member.id()), at(3)).unwrap();
            f.save(&task).await.unwrap();

            let events = f.outbox().await;
            // Two registrations came first.
            let events = &events[2..];
            let names: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
            assert_eq!(names, ["task.created", "task.started", "task.assigned"]);
            for event in events {
                assert_eq!(event.aggregate_type, "task");
                assert_eq!(event.aggregate_id, task.id().as_uuid());
                assert_eq!(event.tenant_id, f.tenant().as_uuid());
                assert_eq!(event.published_at, None);
            }
            assert_eq!(events[1].occurred_at, at(2));
            let created: serde_json::Value = serde_json::from_str(&events[0].payload).unwrap();
            assert_eq!(
                created,
                serde_json::json!({
                    "actor_id": f.admin.id().to_string(),
                    "task_id": task.id().to_string(),
                    "title": "Ship",
                    "creator_id": f.admin.id().to_string(),
                    "assignee_id": null,
                    "priority": "high",
                    "due_date": "2026-03-09",
                })
            );
            let assigned: serde_json::Value = serde_json::from_str(&events[2].payload).unwrap();
            assert_eq!(assigned["assignee_id"], f.member.id().to_string());
            assert_eq!(assigned["previous_assignee_id"], serde_json::Value::Null);
        })
        .await;
    }

    #[tokio::test]
    async fn a_task_whose_events_cannot_be_stored_is_not_stored_either() {
        on_every_backend(|db| async move {
            let f = Fixture::new(db.clone()).await;
            let first = f.add(titled("First"), at(1)).await;
            // From now on the outbox refuses a second task event of a type it holds, so
            // the next task's rows are written and then its `task.created` is refused.
            db.ungated()
                .execute_unprepared(
                    "CREATE UNIQUE INDEX test_refusal ON outbox (event_type) \
                 WHERE aggregate_type = 'task'",
                )
                .await
                .unwrap();
            let second = f.create(titled("Second"), at(2));
            let added = f.try_add(&second).await;
            assert!(
                matches!(added, Err(RepositoryError::Unexpected(_))),
                "{added:?}"
            );
            assert_eq!(f.reload(&second).await, None);
            assert_eq!(f.list(TaskFilter::default()).await, [first.id()]);
            let tasks_events = f
                .outbox()
                .await
                .into_iter()
                .filter(|e| e.aggregate_type == "task");
            let aggregates: Vec<Uuid> = tasks_events.map(|e| e.aggregate_id).collect();
            assert_eq!(aggregates, [first.id().as_uuid()]);
        })
        .await;
    }

    #[tokio::test]
    async fn a_task_whose_checklist_cannot_be_stored_is_not_stored_nor_are_its_events() {
        on_every_backend(|db| async move {
            let f = Fixture::new(db.clone()).await;
            let stored = f
                .add(
                    NewTask {
                        checklist: checklist(&["once"]),
                        ..titled("Stored")
                    },
                    at(1),
                )
                .await;
            // From now on a checklist item whose text another item has is refused.
            db.ungated()
                .execute_unprepared(
                    "CREATE UNIQUE INDEX test_refusal ON task_checklist_items (text)",
                )
                .await
                .unwrap();
            let events_before = f.outbox().await;

            // Added: the task's row is written, then its checklist is refused.
            let refused = f.create(
                NewTask {
                    checklist: checklist(&["twice", "twice"]),
                    ..titled("Refused")
                },
                at(2),
            );
            let added = f.try_add(&refused).await;
            assert!(
                matches!(added, Err(RepositoryError::Unexpected(_))),
                "{added:?}"
            );
            assert_eq!(f.reload(&refused).await, None);

            // Saved: the task's row is updated, then its checklist is refused.
            let mut changed = stored.clone();
            let edit = TaskEdit {
                title: Some(TaskTitle::parse("Renamed").unwrap()),
                ..TaskEdit::default()
            };
            changed.edit(f.actor(), edit, at(3)).unwrap();
            let text = ChecklistText::parse("once").unwrap();
            changed
                .add_checklist_item(
                    f.actor(),
                    ChecklistItemId::from_uuid(Uuid::now_v7()),
                    text,
                    at(3),
                )
                .unwrap();
            let saved = f.save(&changed).await;
            assert!(
                matches!(saved, Err(RepositoryError::Unexpected(_))),
                "{saved:?}"
            );
            assert_eq!(f.reload(&stored).await, Some(stored));

            assert_eq!(f.outbox().await, events_before);
        })
        .await;
    }

    #[tokio::test]
    async fn of_two_saves_of_the_same_version_at_once_exactly_one_commits() {
        on_every_backend(|db| async move {
            let f = Fixture::new(db.clone()).await;
            let task = f.add(untitled(), at(1)).await;
            let mut started = task.clone();
            started.start(f.actor(), at(2)).unwrap();
            let mut deleted = task.clone();
            deleted.delete(f.actor(), at(2)).unwrap();
            open_two_connections(&db).await;
            let (one, other) = tokio::join!(f.save(&started), f.save(&deleted));
            let stale = [&one, &other]
                .iter()
                .filter(|saved| matches!(saved, Err(RepositoryError::Stale)))
                .count();
            assert_eq!(stale, 1, "{one:?} {other:?}");
            let winner = one.or(other).unwrap();
            assert_eq!(f.reload(&task).await, Some(winner));
        })
        .await;
    }

    /// Two transactions never both read the version a change is based on: `SQLite`'s
    /// second transaction waits in `begin`, `PostgreSQL`'s waits for the row lock the
    /// first one's read took. So an `If-Match` checked after the read stays true until
    /// the save, and concurrent changes queue instead of failing.
    #[tokio::test]
    async fn a_transaction_reading_a_task_waits_for_the_open_one_and_reads_what_it_committed() {
        for backend in Backend::all() {
            let f = Fixture::new(backend.fresh_database().await).await;
            let task = f.add(untitled(), at(1)).await;
            open_two_connections(&f.db).await;
            let mut first = f.uow.begin().await.unwrap();
            let mut started = first
                .tasks()
                .get(f.tenant(), task.id())
                .await
                .unwrap()
                .unwrap();
            started.start(f.actor(), at(2)).unwrap();
            first.tasks().save(&mut started).await.unwrap();
            let commit_later = async {
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                first.commit().await.unwrap();
            };
            let second = async {
                let mut tx = f.uow.begin().await.unwrap();
                tx.tasks()
                    .get(f.tenant(), task.id())
                    .await
                    .unwrap()
                    .unwrap()
            };
            let ((), seen) = tokio::join!(commit_later, second);
            assert_eq!(seen.version(), 1, "{backend:?}");
            assert_eq!(seen.status(), TaskStatus::InProgress);
        }
    }

    #[tokio::test]
    async fn a_save_rewrites_the_checklist_only_when_it_changed() {
        on_every_backend(|db| async move {
            let f = Fixture::new(db.clone()).await;
            let (recorded, statements) = recording(&db);
            let uow = SqlUnitOfWork::new(recorded);
            let task = f
                .add(
                    NewTask {
                        checklist: checklist(&["one", "two"]),
                        ..untitled()
                    },
                    at(1),
                )
                .await;
            let save = |task: Task| async {
                let mut task = task;
                statements.lock().unwrap().clear();
                let mut tx = uow.begin().await.unwrap();
                tx.tasks().save(&mut task).await.unwrap();
                tx.commit().await.unwrap();
                let rewrote = statements
                    .lock()
                    .unwrap()
                    .iter()
                    .any(|sql| sql.starts_with(r#"DELETE FROM "task_checklist_items""#));
                (task, rewrote)
            };
            let mut started = task;
            started.start(f.actor(), at(2)).unwrap();
            let (mut ticked, rewrote) = save(started).await;
            assert!(!rewrote, "starting leaves the checklist alone");
            let first = ticked.checklist()[0].id();
            ticked
                .update_checklist_item(f.actor(), first, None, Some(true), at(3))
                .unwrap();
            let (saved, rewrote) = save(ticked).await;
            assert!(rewrote, "ticking an item rewrites the checklist");
            assert_eq!(f.reload(&saved).await, Some(saved));
        })
        .await;
    }

    /// Seven tasks with ties on every key and three without a due date, made so that
    /// id order (creation) is neither created-at, priority nor due-date order.
    async fn seven_tasks(f: &Fixture) -> Vec<Task> {
        let specs = [
            (5, Priority::High, None),
            (3, Priority::Low, Some(day(10))),
            (3, Priority::High, Some(day(5))),
            (1, Priority::Urgent, None),
            (5, Priority::Low, Some(day(10))),
            (0, Priority::High, None),
            (3, Priority::Medium, Some(day(1))),
        ];
        let mut tasks = Vec::new();
        for (minute, priority, due_date) in specs {
            let new = NewTask {
                priority,
                due_date,
                ..untitled()
            };
            tasks.push(f.add(new, at(minute)).await);
        }
        tasks
    }

    /// `tasks` in `sort` order, worked out here rather than by the database.
    fn sorted_here(mut tasks: Vec<Task>, sort: TaskSort) -> Vec<TaskId> {
        tasks.sort_by(|a, b| {
            let (a, b) = (a.snapshot(), b.snapshot());
            let by_key = match sort.order {
                TaskOrder::CreatedAt => a.created_at.cmp(&b.created_at),
                TaskOrder::Priority => a.priority.cmp(&b.priority),
                // Ascending: dated first, by date; undated last.
                TaskOrder::DueDate => {
                    (a.due_date.is_none(), a.due_date).cmp(&(b.due_date.is_none(), b.due_date))
                }
            };
            by_key.then(a.id.cmp(&b.id))
        });
        if sort.descending {
            tasks.reverse();
        }
        tasks.iter().map(Task::id).collect()
    }

    #[tokio::test]
    async fn every_order_pages_through_each_task_once_in_order_two_at_a_time() {
        on_every_backend(|db| async move {
            let f = Fixture::new(db).await;
            let tasks = seven_tasks(&f).await;
            for order in [
                TaskOrder::CreatedAt,
                TaskOrder::DueDate,
                TaskOrder::Priority,
            ] {
                for descending in [false, true] {
                    let sort = TaskSort { order, descending };
                    let mut seen = Vec::new();
                    let mut after = None;
                    for _ in 0..10 {
                        let page = f
                            .read
                            .list(f.tenant(), &TaskFilter::default(), sort, after, 2)
                            .await
                            .unwrap();
                        assert!(page.len() <= 2);
                        let Some(last) = page.last() else { break };
                        after = Some(TaskCursor::after(last, order));
                        seen.extend(page.iter().map(Task::id));
                    }
                    assert_eq!(seen, sorted_here(tasks.clone(), sort), "{sort:?}");
                }
            }
        })
        .await;
    }

    #[tokio::test]
    async fn a_page_after_an_undated_task_continues_in_the_right_place() {
        on_every_backend(|db| async move {
            let f = Fixture::new(db).await;
            let tasks = seven_tasks(&f).await;
            for descending in [false, true] {
                let sort = TaskSort {
                    order: TaskOrder::DueDate,
                    descending,
                };
                let expected = sorted_here(tasks.clone(), sort);
                let undated = tasks.iter().find(|task| task.snapshot().due_date.is_none());
                let cursor = TaskCursor::after(undated.unwrap(), TaskOrder::DueDate);
                let TaskCursor::DueDate(None, id) = cursor else {
                    panic!("an undated cursor")
                };
                let rest = f
                    .read
                    .list(f.tenant(), &TaskFilter::default(), sort, Some(cursor), 100)
                    .await
                    .unwrap();
                let at = expected.iter().position(|task| *task == id).unwrap();
                let rest: Vec<TaskId> = rest.iter().map(Task::id).collect();
                assert_eq!(rest, expected[at + 1..], "{sort:?}");
            }
        })
        .await;
    }

    #[tokio::test]
    async fn a_cursor_of_another_order_is_refused() {
        on_every_backend(|db| async move {
            let f = Fixture::new(db).await;
            let task = f.add(untitled(), at(1)).await;
            let sort = TaskSort {
                order: TaskOrder::Priority,
                descending: false,
            };
            let cursor = TaskCursor::after(&task, TaskOrder::CreatedAt);
            let listed = f
                .read
                .list(f.tenant(), &TaskFilter::default(), sort, Some(cursor), 10)
                .await;
            assert!(matches!(listed, Err(RepositoryError::Unexpected(_))));
        })
        .await;
    }

    #[tokio::test]
    async fn a_page_of_tasks_and_all_their_checklists_take_two_queries() {
        on_every_backend(|db| async move {
            let f = Fixture::new(db.clone()).await;
            let mut expected = Vec::new();
            for texts in [&["a", "b"][..], &[], &["c", "d", "e"]] {
                let new = NewTask {
                    checklist: checklist(texts),
                    ..untitled()
                };
                expected.push(f.add(new, at(1)).await);
            }
            let (recorded, statements) = recording(&db);
            let sort = TaskSort {
                order: TaskOrder::CreatedAt,
                descending: false,
            };
            let listed = SqlTaskQueries::new(recorded)
                .list(f.tenant(), &TaskFilter::default(), sort, None, 10)
                .await
                .unwrap();
            assert_eq!(listed, expected);
            assert_eq!(statements.lock().unwrap().len(), 2);
        })
        .await;
    }

    /// A filter: the default one, changed.
    fn filter(change: impl FnOnce(&mut TaskFilter)) -> TaskFilter {
        let mut filter = TaskFilter::default();
        change(&mut filter);
        filter
    }

    /// Adds a task, then saves it changed by `change`; its id.
    async fn add_changed(
        f: &Fixture,
        new: NewTask,
        minute: u32,
        change: impl FnOnce(&mut Task, Actor),
    ) -> TaskId {
        let mut task = f.add(new, at(minute)).await;
        change(&mut task, f.actor());
        if !task.events().is_empty() {
            f.save(&task).await.unwrap();
        }
        task.id()
    }

    #[tokio::test]
    async fn every_filter_narrows_the_list_and_deleted_tasks_show_only_when_asked_for() {
        on_every_backend(|db| async move {
            let f = Fixture::new(db).await;
            let member = Some(f.member.id());
            let new = |title, priority, due_date, assignee| NewTask {
                priority,
                due_date,
                assignee,
                ..titled(title)
            };
            let report = new("Write the REPORT", Priority::High, Some(day(10)), member);
            let report = add_changed(&f, report, 0, |_, _| ()).await;
            let review = new("Review report", Priority::Low, Some(day(5)), None);
            let review = add_changed(&f, review, 1, |task, actor| {
                task.start(actor, at(4)).unwrap();
            })
            .await;
            let deploy = new("Deploy", Priority::High, None, member);
            let deploy = add_changed(&f, deploy, 2, |task, actor| {
                task.start(actor, at(4)).unwrap();
                task.complete(actor, at(4)).unwrap();
            })
            .await;
            let gone = new("Old report", Priority::Low, Some(day(1)), None);
            let gone = add_changed(&f, gone, 3, |task, actor| {
                task.delete(actor, at(4)).unwrap();
            })
            .await;

            let cases = [
                (filter(|_| ()), vec![report, review, deploy]),
                (
                    filter(|f| f.include_deleted = true),
                    vec![report, review, deploy, gone],
                ),
                (filter(|f| f.status = Some(TaskStatus::Todo)), vec![report]),
                (
                    filter(|f| f.status = Some(TaskStatus::InProgress)),
                    vec![review],
                ),
                (filter(|f| f.status = Some(TaskStatus::Done)), vec![deploy]),
                (filter(|f| f.assignee = member), vec![report, deploy]),
                (
                    filter(|f| {
                        f.priority = Some(Priority::Low);
                        f.include_deleted = true;
                    }),
                    vec![review, gone],
                ),
                // Strictly before, and undated tasks never match.
                (filter(|f| f.due_before = Some(day(10))), vec![review]),
                (
                    filter(|f| {
                        f.due_before = Some(day(11));
                        f.include_deleted = true;
                    }),
                    vec![report, review, gone],
                ),
                (
                    filter(|f| f.q = Some("report".to_owned())),
                    vec![report, review],
                ),
                (
                    filter(|f| {
                        f.q = Some("RePoRt".to_owned());
                        f.priority = Some(Priority::Low);
                        f.include_deleted = true;
                    }),
                    vec![review, gone],
                ),
            ];
            for (filter, expected) in cases {
                assert_eq!(f.list(filter.clone()).await, expected, "{filter:?}");
            }
        })
        .await;
    }

    #[tokio::test]
    async fn like_wildcards_in_the_search_are_taken_literally() {
        on_every_backend(|db| async move {
            let f = Fixture::new(db).await;
            let mut ids = HashMap::new();
            for (minute, title) in (0..).zip([
                "100% done",
                "100 done",
                "snake_case",
                "snakeXcase",
                "back\\slash",
                "backslash",
            ]) {
                ids.insert(title, f.add(titled(title), at(minute)).await.id());
            }
            let search = |q: &str| TaskFilter {
                q: Some(q.to_owned()),
                ..TaskFilter::default()
            };
            assert_eq!(f.list(search("%")).await, [ids["100% done"]]);
            assert_eq!(f.list(search("0 d")).await, [ids["100 done"]]);
            assert_eq!(f.list(search("_")).await, [ids["snake_case"]]);
            assert_eq!(f.list(search("E_C")).await, [ids["snake_case"]]);
            assert_eq!(f.list(search("\\")).await, [ids["back\\slash"]]);
        })
        .await;
    }
}
