//! `SqlTaskStats`: each user's task figures, kept by the `task-stats` handler from task
//! events, and rebuilt from the tasks table on demand.
//!
//! The projection keeps one row per task in `task_stats_tasks` (its assignee, status,
//! due date and whether it is deleted), so a user's figures are one aggregate query
//! over their rows, with "overdue" decided by the `today` of the request.
//!
//! Every figure of a row carries the aggregate version that last set it, and an event
//! sets a figure only if its version is at least that one. Each event sets figures to
//! absolute values, so this makes their order irrelevant: two handlers applying events
//! of one task at once, or a late redelivery, never leave an older value over a newer
//! one. It is what makes a rebuild safe while events keep arriving: the rebuild stamps
//! every figure with the task's current version, so an event older than the rebuilt
//! state changes nothing and a newer one applies as usual. (Events of the same version
//! as the rebuilt state set what it already holds.) Versions are per figure, not per
//! row, because an event carries only the figures it changed: with one version per
//! row, an assignment applied before the start that preceded it would make the start
//! look stale and lose it.
//!
//! An event about a task the projection has no row for (it arrived before the task's
//! creation, or the task predates the projection) makes a row with what it knows; the
//! figures no event has set yet are stamped `UNSET` so the first event that knows them
//! wins. Tasks that predate the projection are complete after a rebuild.

use std::collections::BTreeSet;

use application::ports::{
    EventEnvelope, EventHandler, RepositoryError, TaskStats, TaskStatsQueries,
};
use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use domain::{DomainEvent, TaskFact, TaskStatus, TenantId, UserId};
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::{Expr, ExprTrait, Func, OnConflict, Query, SimpleExpr};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, QueryTrait,
};
use uuid::Uuid;

use super::entity::{projection_positions, task_stats_tasks, task_stats_users};
use super::inbox::begin_applying;
use crate::database::{Access, Database, Scope};
use crate::persistence::entity::{tasks, tenants};
use crate::persistence::repository_error;

/// The handler's name: its consumer group, its key in the inbox and in
/// `projection_positions`.
const NAME: &str = "task-stats";

/// The version of a figure no event has set yet: below every real version (0 and up).
const UNSET: i64 = -1;

/// The task statistics read model in the `task_stats_*` tables.
#[derive(Debug, Clone)]
pub struct SqlTaskStats {
    db: Database,
}

impl SqlTaskStats {
    #[must_use]
    pub fn new(db: Database) -> Self {
        Self { db }
    }
}

/// One figure of a task, as an event sets it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Figure {
    Assignee(Option<Uuid>),
    Status(TaskStatus),
    DueDate(Option<NaiveDate>),
    Deleted(bool),
}

impl Figure {
    /// The column of the figure's version, as SQL names it.
    fn version_column(self) -> &'static str {
        match self {
            Self::Assignee(_) => "assignee_version",
            Self::Status(_) => "status_version",
            Self::DueDate(_) => "due_date_version",
            Self::Deleted(_) => "deleted_version",
        }
    }

    /// Sets this figure of `row`, stamped with `version`.
    fn set(self, row: &mut task_stats_tasks::ActiveModel, version: i64) {
        match self {
            Self::Assignee(assignee) => {
                row.assignee_id = Set(assignee);
                row.assignee_version = Set(version);
            }
            Self::Status(status) => {
                row.status = Set(status.as_str().to_owned());
                row.status_version = Set(version);
            }
            Self::DueDate(due) => {
                row.due_date = Set(due);
                row.due_date_version = Set(version);
            }
            Self::Deleted(deleted) => {
                row.deleted = Set(deleted);
                row.deleted_version = Set(version);
            }
        }
    }
}

/// A task's row holding `figures` at `version`, and every other figure `UNSET`.
fn row_of(
    tenant: Uuid,
    task: Uuid,
    figures: &[Figure],
    version: i64,
    at: DateTime<Utc>,
) -> task_stats_tasks::ActiveModel {
    let mut row = task_stats_tasks::ActiveModel {
        task_id: Set(task),
        tenant_id: Set(tenant),
        assignee_id: Set(None),
        assignee_version: Set(UNSET),
        status: Set(TaskStatus::Todo.as_str().to_owned()),
        status_version: Set(UNSET),
        due_date: Set(None),
        due_date_version: Set(UNSET),
        deleted: Set(false),
        deleted_version: Set(UNSET),
        updated_at: Set(at),
    };
    for figure in figures {
        figure.set(&mut row, version);
    }
    row
}

/// The task an event is about, the figures it sets, and the users whose figures it may
/// change besides the task's assignee (the previous one of an assignment). `None` for
/// events of other aggregates, which this projection ignores.
fn figures(event: &DomainEvent) -> Option<(Uuid, Vec<Figure>, Option<UserId>)> {
    let DomainEvent::Task(event) = event else {
        return None;
    };
    let uuid = |user: Option<UserId>| user.map(UserId::as_uuid);
    let (figures, previous) = match &event.fact {
        TaskFact::Created {
            assignee, due_date, ..
        } => (
            vec![
                Figure::Assignee(uuid(*assignee)),
                Figure::Status(TaskStatus::Todo),
                Figure::DueDate(*due_date),
                Figure::Deleted(false),
            ],
            None,
        ),
        TaskFact::Edited { due_date, .. } => (vec![Figure::DueDate(*due_date)], None),
        TaskFact::Assigned { assignee, previous } => {
            (vec![Figure::Assignee(uuid(*assignee))], *previous)
        }
        TaskFact::Started => (vec![Figure::Status(TaskStatus::InProgress)], None),
        TaskFact::Completed => (vec![Figure::Status(TaskStatus::Done)], None),
        TaskFact::Reopened => (vec![Figure::Status(TaskStatus::Todo)], None),
        TaskFact::Deleted => (vec![Figure::Deleted(true)], None),
        TaskFact::Restored => (vec![Figure::Deleted(false)], None),
    };
    Some((event.task_id.as_uuid(), figures, previous))
}

/// Records that `user`'s figures changed at `at`, unless a later change is recorded.
async fn touch(
    tx: &DatabaseTransaction,
    tenant: Uuid,
    user: Uuid,
    at: DateTime<Utc>,
) -> Result<(), RepositoryError> {
    use task_stats_users::Column;
    task_stats_users::Entity::insert(task_stats_users::ActiveModel {
        tenant_id: Set(tenant),
        user_id: Set(user),
        updated_at: Set(at),
    })
    .on_conflict(
        OnConflict::columns([Column::TenantId, Column::UserId])
            .value(
                Column::UpdatedAt,
                later_of("task_stats_users", "updated_at"),
            )
            .to_owned(),
    )
    .exec_without_returning(tx)
    .await
    .map_err(|error| repository_error(error, "recording when a user's figures changed"))?;
    Ok(())
}

/// Moves the tenant's position forward to `at`; never back.
async fn advance(
    tx: &DatabaseTransaction,
    tenant: Uuid,
    at: DateTime<Utc>,
) -> Result<(), RepositoryError> {
    use projection_positions::Column;
    projection_positions::Entity::insert(projection_positions::ActiveModel {
        projection: Set(NAME.to_owned()),
        tenant_id: Set(tenant),
        as_of: Set(at),
    })
    .on_conflict(
        OnConflict::columns([Column::Projection, Column::TenantId])
            .value(Column::AsOf, later_of("projection_positions", "as_of"))
            .to_owned(),
    )
    .exec_without_returning(tx)
    .await
    .map_err(|error| repository_error(error, "advancing the task statistics' position"))?;
    Ok(())
}

/// In an upsert's update, the later of the stored and the incoming `column`.
fn later_of(table: &str, column: &str) -> SimpleExpr {
    Expr::cust(format!(
        "CASE WHEN excluded.{column} > {table}.{column} \
         THEN excluded.{column} ELSE {table}.{column} END"
    ))
}

/// Applies a task event's figures in one statement, an upsert of the task's row in
/// which each figure takes the event's value where the event's version is at least the
/// figure's (`newer_figures`), and records when the figures of the users it concerns
/// changed: the task's assignee, as the upsert returns it, and the previous one of an
/// assignment. An event whose every figure is older than the row's changes nothing.
async fn apply_event(
    tx: &DatabaseTransaction,
    envelope: &EventEnvelope,
) -> Result<(), RepositoryError> {
    use task_stats_tasks::Column;
    let Some((task, figures, previous)) = figures(&envelope.event) else {
        return Ok(());
    };
    let meta = envelope.event.meta();
    let (tenant, at) = (meta.tenant_id.as_uuid(), meta.occurred_at);
    let mut conflict = newer_figures();
    let any_newer = figures
        .iter()
        .map(|figure| {
            let version = figure.version_column();
            Expr::cust(format!("excluded.{version} >= task_stats_tasks.{version}"))
        })
        .reduce(ExprTrait::or);
    // An event never changes the row of another tenant's task, whatever id it names.
    conflict.action_and_where(Expr::cust(
        "task_stats_tasks.tenant_id = excluded.tenant_id",
    ));
    conflict.action_and_where_option(any_newer);
    let upsert = task_stats_tasks::Entity::insert(row_of(
        tenant,
        task,
        &figures,
        envelope.aggregate_version,
        at,
    ))
    .on_conflict(conflict)
    .into_query()
    .returning_col(Column::AssigneeId)
    .to_owned();
    let Some(row) = tx
        .query_one(&upsert)
        .await
        .map_err(|error| repository_error(error, "applying an event to the task statistics"))?
    else {
        return Ok(());
    };
    let assignee: Option<Uuid> = row
        .try_get("", "assignee_id")
        .map_err(|error| repository_error(error, "reading a task's assignee"))?;
    let users: BTreeSet<Uuid> = assignee
        .into_iter()
        .chain(previous.map(UserId::as_uuid))
        .collect();
    for user in users {
        touch(tx, tenant, user, at).await?;
    }
    Ok(())
}

#[async_trait]
impl EventHandler for SqlTaskStats {
    fn name(&self) -> &'static str {
        NAME
    }

    #[tracing::instrument(
        skip_all,
        fields(event_id = %envelope.id, event = envelope.event.name())
    )]
    async fn handle(&self, envelope: &EventEnvelope) -> Result<bool, RepositoryError> {
        let Some(write) = begin_applying(&self.db, NAME, envelope).await? else {
            return Ok(false);
        };
        apply_event(&write, envelope).await?;
        let meta = envelope.event.meta();
        advance(&write, meta.tenant_id.as_uuid(), meta.occurred_at).await?;
        write.commit().await?;
        Ok(true)
    }
}

/// `SUM(CASE WHEN condition THEN 1 ELSE 0 END)`: how many rows match.
fn count_where(condition: Expr) -> Expr {
    Func::sum(Expr::case(condition, 1).finally(0)).into()
}

/// A count read back from SQL (`NULL` for no rows).
fn count(value: Option<i64>) -> u64 {
    value
        .and_then(|value| u64::try_from(value).ok())
        .unwrap_or(0)
}

#[async_trait]
impl TaskStatsQueries for SqlTaskStats {
    #[tracing::instrument(skip_all, fields(tenant_id = %tenant, user_id = %user))]
    async fn stats(
        &self,
        tenant: TenantId,
        user: UserId,
        today: NaiveDate,
    ) -> Result<TaskStats, RepositoryError> {
        use task_stats_tasks::Column;
        let db = self.db.session(Scope::Tenant(tenant), Access::Read).await?;
        let status = |status: TaskStatus| Column::Status.eq(status.as_str());
        let figures: Option<(Option<i64>, Option<i64>, Option<i64>, Option<i64>, i64)> =
            task_stats_tasks::Entity::find()
                .select_only()
                .column_as(count_where(status(TaskStatus::Todo)), "open")
                .column_as(count_where(status(TaskStatus::InProgress)), "in_progress")
                .column_as(count_where(status(TaskStatus::Done)), "done")
                .column_as(
                    count_where(
                        Column::Status
                            .ne(TaskStatus::Done.as_str())
                            .and(Column::DueDate.lt(today)),
                    ),
                    "overdue",
                )
                .column_as(
                    Expr::expr(Func::count(Expr::col(Column::TaskId))),
                    "assigned_total",
                )
                .filter(Column::TenantId.eq(tenant.as_uuid()))
                .filter(Column::AssigneeId.eq(user.as_uuid()))
                .filter(Column::Deleted.eq(false))
                .into_tuple()
                .one(&*db)
                .await
                .map_err(|error| repository_error(error, "reading a user's task statistics"))?;
        let (open, in_progress, done, overdue, total) = figures.unwrap_or_default();
        let updated_at = task_stats_users::Entity::find_by_id((tenant.as_uuid(), user.as_uuid()))
            .one(&*db)
            .await
            .map_err(|error| repository_error(error, "reading when a user's figures changed"))?
            .map(|row| row.updated_at);
        let as_of = projection_positions::Entity::find_by_id((NAME.to_owned(), tenant.as_uuid()))
            .one(&*db)
            .await
            .map_err(|error| repository_error(error, "reading the task statistics' position"))?
            .map(|row| row.as_of);
        db.commit().await?;
        Ok(TaskStats {
            open: count(open),
            in_progress: count(in_progress),
            done: count(done),
            overdue: count(overdue),
            assigned_total: count(Some(total)),
            updated_at,
            as_of,
        })
    }
}

/// Sets the tenant's rows to the tasks table's, in `tx`. Not a delete and an insert: a
/// handler may insert a task's row meanwhile (its event committed after this read),
/// so every row is upserted, and each figure takes the task's value only where the
/// task's version is at least the figure's, the same rule the handlers follow. Tasks
/// are never removed from the tasks table, so no row needs deleting.
async fn rebuild_tenant(tx: &DatabaseTransaction, tenant: Uuid) -> Result<(), RepositoryError> {
    use task_stats_tasks::Column;
    // Every figure is stamped with the task's version: the state the rebuild read holds
    // every event up to it.
    let version = || Expr::col(tasks::Column::Version);
    let from_tasks = Query::select()
        .expr(Expr::col(tasks::Column::Id))
        .expr(Expr::col(tasks::Column::TenantId))
        .expr(Expr::col(tasks::Column::AssigneeId))
        .expr(version())
        .expr(Expr::col(tasks::Column::Status))
        .expr(version())
        .expr(Expr::col(tasks::Column::DueDate))
        .expr(version())
        .expr(Expr::col(tasks::Column::DeletedAt).is_not_null())
        .expr(version())
        .expr(Expr::col(tasks::Column::UpdatedAt))
        .from(tasks::Entity)
        .and_where(tasks::Column::TenantId.eq(tenant))
        .to_owned();
    let insert = Query::insert()
        .into_table(task_stats_tasks::Entity)
        .columns([
            Column::TaskId,
            Column::TenantId,
            Column::AssigneeId,
            Column::AssigneeVersion,
            Column::Status,
            Column::StatusVersion,
            Column::DueDate,
            Column::DueDateVersion,
            Column::Deleted,
            Column::DeletedVersion,
            Column::UpdatedAt,
        ])
        .select_from(from_tasks)
        .map_err(|error| {
            RepositoryError::Unexpected(
                anyhow::Error::new(error).context("building the task statistics' rebuild"),
            )
        })?
        .on_conflict(newer_figures())
        .to_owned();
    tx.execute(&insert)
        .await
        .map_err(|error| repository_error(error, "rebuilding a tenant's task statistics"))?;
    let assignees: Vec<(Uuid, DateTime<Utc>)> = tasks::Entity::find()
        .select_only()
        .column(tasks::Column::AssigneeId)
        .column_as(
            Expr::expr(Func::max(Expr::col(tasks::Column::UpdatedAt))),
            "updated_at",
        )
        .filter(tasks::Column::TenantId.eq(tenant))
        .filter(tasks::Column::AssigneeId.is_not_null())
        .group_by(tasks::Column::AssigneeId)
        // The order handlers lock users in, so a rebuild never deadlocks with them.
        .order_by_asc(tasks::Column::AssigneeId)
        .into_tuple()
        .all(tx)
        .await
        .map_err(|error| repository_error(error, "reading when assignees' tasks changed"))?;
    for (user, at) in &assignees {
        touch(tx, tenant, *user, *at).await?;
    }
    let latest: Option<Option<DateTime<Utc>>> = tasks::Entity::find()
        .select_only()
        .column_as(
            Expr::expr(Func::max(Expr::col(tasks::Column::UpdatedAt))),
            "updated_at",
        )
        .filter(tasks::Column::TenantId.eq(tenant))
        .into_tuple()
        .one(tx)
        .await
        .map_err(|error| repository_error(error, "reading when a tenant's tasks changed"))?;
    if let Some(latest) = latest.flatten() {
        advance(tx, tenant, latest).await?;
    }
    Ok(())
}

/// On a row that exists: each figure and its version from the incoming row (an event's,
/// a rebuild's) where its version is at least the figure's, else kept; `updated_at` the
/// later one.
fn newer_figures() -> OnConflict {
    use task_stats_tasks::Column;
    let table = "task_stats_tasks";
    let newer = |value: &str, version: &str| {
        Expr::cust(format!(
            "CASE WHEN excluded.{version} >= {table}.{version} \
             THEN excluded.{value} ELSE {table}.{value} END"
        ))
    };
    let mut conflict = OnConflict::column(Column::TaskId);
    for (value, version, value_column, version_column) in [
        (
            "assignee_id",
            "assignee_version",
            Column::AssigneeId,
            Column::AssigneeVersion,
        ),
        (
            "status",
            "status_version",
            Column::Status,
            Column::StatusVersion,
        ),
        (
            "due_date",
            "due_date_version",
            Column::DueDate,
            Column::DueDateVersion,
        ),
        (
            "deleted",
            "deleted_version",
            Column::Deleted,
            Column::DeletedVersion,
        ),
    ] {
        // Every SET expression sees the row as it was before the update.
        conflict.value(value_column, newer(value, version));
        conflict.value(version_column, newer(version, version));
    }
    conflict.value(Column::UpdatedAt, later_of(table, "updated_at"));
    conflict
}

async fn every_tenant(db: &Database) -> Result<Vec<Uuid>, RepositoryError> {
    let db = db.session(Scope::AllTenants, Access::Read).await?;
    let tenants = tenants::Entity::find()
        .select_only()
        .column(tenants::Column::Id)
        .into_tuple()
        .all(&*db)
        .await
        .map_err(|error| repository_error(error, "listing tenants to rebuild"))?;
    db.commit().await?;
    Ok(tenants)
}

impl SqlTaskStats {
    /// Replaces the task statistics of `tenant` (every tenant with `None`) with what the
    /// tasks table holds now, in one transaction per tenant, while handlers keep applying
    /// events: an event older than the rebuilt state changes nothing. Returns how many
    /// tenants were rebuilt. An operator's command, run by `server projections rebuild`.
    ///
    /// # Errors
    /// When the database fails.
    #[tracing::instrument(skip_all, fields(tenant_id = ?tenant.map(|tenant| tenant.to_string())))]
    pub async fn rebuild(&self, tenant: Option<TenantId>) -> Result<u64, RepositoryError> {
        let tenants = if let Some(tenant) = tenant {
            vec![tenant.as_uuid()]
        } else {
            every_tenant(&self.db).await?
        };
        for tenant in &tenants {
            let scope = Scope::Tenant(TenantId::from_uuid(*tenant));
            let write = self.db.session(scope, Access::Write).await?;
            rebuild_tenant(&write, *tenant).await?;
            write.commit().await?;
        }
        Ok(u64::try_from(tenants.len()).unwrap_or(u64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use crate::database::Database;
    use domain::Aggregate;
    use domain::{EventMeta, TaskEvent, TaskFact, TaskId};
    use sea_orm::ConnectionTrait;

    use super::*;
    use crate::persistence::SqlUnitOfWork;
    use crate::read_models::fixtures::{
        WriteSide, at, created, day, envelope, meta, new_id, task, user,
    };

    fn tenant() -> TenantId {
        TenantId::from_uuid(new_id())
    }

    /// A figure-only view of the stats, for comparing counts.
    fn counts(stats: TaskStats) -> [u64; 5] {
        [
            stats.open,
            stats.in_progress,
            stats.done,
            stats.overdue,
            stats.assigned_total,
        ]
    }

    async fn handle_all(stats: &SqlTaskStats, envelopes: &[EventEnvelope]) {
        for envelope in envelopes {
            assert!(stats.handle(envelope).await.unwrap(), "{envelope:?}");
        }
    }

    fn status_change(
        tenant: TenantId,
        task: TaskId,
        version: i64,
        minute: u32,
        change: fn(EventMeta, TaskId) -> DomainEvent,
    ) -> EventEnvelope {
        envelope(version, change(meta(tenant, minute), task))
    }

    fn fact(meta: EventMeta, task: TaskId, fact: TaskFact) -> DomainEvent {
        DomainEvent::from(TaskEvent {
            meta,
            task_id: task,
            fact,
        })
    }

    fn started(meta: EventMeta, task: TaskId) -> DomainEvent {
        fact(meta, task, TaskFact::Started)
    }

    fn completed(meta: EventMeta, task: TaskId) -> DomainEvent {
        fact(meta, task, TaskFact::Completed)
    }

    fn deleted(meta: EventMeta, task: TaskId) -> DomainEvent {
        fact(meta, task, TaskFact::Deleted)
    }

    fn restored(meta: EventMeta, task: TaskId) -> DomainEvent {
        fact(meta, task, TaskFact::Restored)
    }

    fn assigned(
        tenant: TenantId,
        task: TaskId,
        version: i64,
        minute: u32,
        assignee: Option<UserId>,
        previous: Option<UserId>,
    ) -> EventEnvelope {
        envelope(
            version,
            fact(
                meta(tenant, minute),
                task,
                TaskFact::Assigned { assignee, previous },
            ),
        )
    }

    async fn an_event_handled_twice_changes_nothing_the_second_time(db: Database) {
        let stats = SqlTaskStats::new(db);
        let (tenant, alice) = (tenant(), user());
        let event = created(tenant, task(), Some(alice), None, 1);
        assert!(stats.handle(&event).await.unwrap());
        let first = stats.stats(tenant, alice, day(1)).await.unwrap();
        assert_eq!(counts(first), [1, 0, 0, 0, 1]);
        assert!(!stats.handle(&event).await.unwrap());
        assert_eq!(stats.stats(tenant, alice, day(1)).await.unwrap(), first);
    }

    async fn a_task_through_its_life_counts_for_its_assignee_and_no_longer_for_the_previous_one(
        db: Database,
    ) {
        let stats = SqlTaskStats::new(db);
        let (tenant, alice, bob, id) = (tenant(), user(), user(), task());
        handle_all(
            &stats,
            &[
                created(tenant, id, Some(alice), None, 1),
                assigned(tenant, id, 1, 2, Some(bob), Some(alice)),
            ],
        )
        .await;
        let bobs = stats.stats(tenant, bob, day(1)).await.unwrap();
        assert_eq!(counts(bobs), [1, 0, 0, 0, 1]);
        handle_all(
            &stats,
            &[
                status_change(tenant, id, 2, 3, started),
                status_change(tenant, id, 3, 4, completed),
            ],
        )
        .await;
        let alices = stats.stats(tenant, alice, day(1)).await.unwrap();
        assert_eq!(counts(alices), [0; 5]);
        assert_eq!(alices.updated_at, Some(at(2)), "when she lost the task");
        let bobs = stats.stats(tenant, bob, day(1)).await.unwrap();
        assert_eq!(counts(bobs), [0, 0, 1, 0, 1]);
        assert_eq!(bobs.updated_at, Some(at(4)));
        assert_eq!(bobs.as_of, Some(at(4)));
    }

    async fn overdue_counts_unfinished_tasks_due_before_today(db: Database) {
        let stats = SqlTaskStats::new(db);
        let (tenant, alice) = (tenant(), user());
        let (todo, doing, done) = (task(), task(), task());
        handle_all(
            &stats,
            &[
                created(tenant, todo, Some(alice), Some(day(10)), 1),
                created(tenant, doing, Some(alice), Some(day(10)), 1),
                created(tenant, done, Some(alice), Some(day(10)), 1),
                created(tenant, task(), Some(alice), Some(day(20)), 1),
                created(tenant, task(), Some(alice), None, 1),
                status_change(tenant, doing, 1, 2, started),
                status_change(tenant, done, 1, 2, started),
                status_change(tenant, done, 2, 3, completed),
            ],
        )
        .await;
        let on = |today| stats.stats(tenant, alice, today);
        assert_eq!(
            on(day(10)).await.unwrap().overdue,
            0,
            "due today is not late"
        );
        assert_eq!(on(day(11)).await.unwrap().overdue, 2);
        assert_eq!(on(day(21)).await.unwrap().overdue, 3);
        // An edit that moves the due date is applied too.
        let edited = envelope(
            1,
            fact(
                meta(tenant, 4),
                todo,
                TaskFact::Edited {
                    title: "Untitled".to_owned(),
                    priority: domain::Priority::Medium,
                    due_date: Some(day(30)),
                },
            ),
        );
        handle_all(&stats, &[edited]).await;
        assert_eq!(on(day(21)).await.unwrap().overdue, 2);
        assert_eq!(counts(on(day(1)).await.unwrap()), [3, 1, 1, 0, 5]);
    }

    async fn a_deleted_task_is_not_counted_until_it_is_restored(db: Database) {
        let stats = SqlTaskStats::new(db);
        let (tenant, alice, id) = (tenant(), user(), task());
        handle_all(
            &stats,
            &[
                created(tenant, id, Some(alice), None, 1),
                status_change(tenant, id, 1, 2, deleted),
            ],
        )
        .await;
        let gone = stats.stats(tenant, alice, day(1)).await.unwrap();
        assert_eq!(counts(gone), [0; 5]);
        assert_eq!(gone.updated_at, Some(at(2)));
        handle_all(&stats, &[status_change(tenant, id, 2, 3, restored)]).await;
        let back = stats.stats(tenant, alice, day(1)).await.unwrap();
        assert_eq!(counts(back), [1, 0, 0, 0, 1]);
        assert_eq!(back.updated_at, Some(at(3)));
    }

    async fn another_tenants_figures_are_never_visible(db: Database) {
        let stats = SqlTaskStats::new(db);
        let (ours, theirs, alice) = (tenant(), tenant(), user());
        let id = task();
        handle_all(&stats, &[created(theirs, id, Some(alice), None, 1)]).await;
        // Not even an event naming a task of theirs reaches it from our tenant.
        handle_all(&stats, &[status_change(ours, id, 1, 2, completed)]).await;
        let mine = stats.stats(ours, alice, day(1)).await.unwrap();
        assert_eq!(counts(mine), [0; 5]);
        assert_eq!(mine.updated_at, None);
        let theirs = stats.stats(theirs, alice, day(1)).await.unwrap();
        assert_eq!(counts(theirs), [1, 0, 0, 0, 1]);
        assert_eq!(theirs.as_of, Some(at(1)));
    }

    async fn events_applied_out_of_order_leave_the_latest_figures(db: Database) {
        let stats = SqlTaskStats::new(db);
        let (tenant, alice, bob, id) = (tenant(), user(), user(), task());
        // The creation arrives last: everything it says is older.
        handle_all(
            &stats,
            &[
                status_change(tenant, id, 2, 3, started),
                assigned(tenant, id, 1, 2, Some(bob), Some(alice)),
                created(tenant, id, Some(alice), Some(day(1)), 1),
            ],
        )
        .await;
        let bobs = stats.stats(tenant, bob, day(5)).await.unwrap();
        assert_eq!(counts(bobs), [0, 1, 0, 1, 1]);
        assert_eq!(
            counts(stats.stats(tenant, alice, day(5)).await.unwrap()),
            [0; 5]
        );
        assert_eq!(bobs.as_of, Some(at(3)), "the position never moves back");
    }

    async fn events_handled_at_once_end_with_the_right_counts(db: Database) {
        let stats = SqlTaskStats::new(db);
        let (tenant, alice) = (tenant(), user());
        let mut envelopes = Vec::new();
        for _ in 0..4 {
            let id = task();
            envelopes.push(created(tenant, id, Some(alice), None, 1));
            envelopes.push(status_change(tenant, id, 1, 2, started));
        }
        // Each event of a task handled twice, in any order.
        let handlers: Vec<_> = envelopes
            .iter()
            .chain(&envelopes)
            .cloned()
            .map(|envelope| {
                let stats = stats.clone();
                tokio::spawn(async move { stats.handle(&envelope).await.unwrap() })
            })
            .collect();
        let mut applied = 0;
        for handler in handlers {
            applied += usize::from(handler.await.unwrap());
        }
        assert_eq!(applied, envelopes.len(), "each event applied once");
        let alices = stats.stats(tenant, alice, day(1)).await.unwrap();
        assert_eq!(counts(alices), [0, 4, 0, 0, 4]);
    }

    /// Empties the projection, as on a database that never ran it.
    async fn forget_everything(db: &Database) {
        for table in [
            "task_stats_tasks",
            "task_stats_users",
            "projection_positions",
        ] {
            db.ungated()
                .execute_unprepared(&format!("DELETE FROM {table}"))
                .await
                .unwrap();
        }
    }

    async fn a_rebuild_from_the_tasks_table_matches_what_the_events_produced(db: Database) {
        let stats = SqlTaskStats::new(db.clone());
        let w = WriteSide::new(SqlUnitOfWork::new(db.clone())).await;
        let (admin, member) = (w.admin.id(), w.member.id());
        let mut events = Vec::new();
        let mut first = w.create(Some(admin), Some(day(2)), 1);
        events.extend(w.add(&mut first).await);
        first.assign(w.actor(), Some(member), at(2)).unwrap();
        first.start(w.actor(), at(2)).unwrap();
        events.extend(w.save(&mut first).await);
        let mut second = w.create(Some(member), None, 3);
        events.extend(w.add(&mut second).await);
        second.delete(w.actor(), at(4)).unwrap();
        events.extend(w.save(&mut second).await);
        let mut third = w.create(Some(admin), None, 5);
        events.extend(w.add(&mut third).await);
        handle_all(&stats, &events).await;
        let from_events = (
            stats.stats(w.tenant(), admin, day(9)).await.unwrap(),
            stats.stats(w.tenant(), member, day(9)).await.unwrap(),
        );
        assert_eq!(counts(from_events.1), [0, 1, 0, 1, 1]);

        forget_everything(&db).await;
        // Another tenant is rebuilt too when no tenant is named.
        WriteSide::new(SqlUnitOfWork::new(db.clone())).await;
        assert_eq!(stats.rebuild(None).await.unwrap(), 2);
        let rebuilt = (
            stats.stats(w.tenant(), admin, day(9)).await.unwrap(),
            stats.stats(w.tenant(), member, day(9)).await.unwrap(),
        );
        assert_eq!(rebuilt, from_events);
        // Rebuilding what is already right changes nothing.
        assert_eq!(stats.rebuild(Some(w.tenant())).await.unwrap(), 1);
        let again = stats.stats(w.tenant(), member, day(9)).await.unwrap();
        assert_eq!(again, from_events.1);
    }

    async fn after_a_rebuild_an_older_event_changes_nothing_and_a_newer_one_applies(db: Database) {
        let stats = SqlTaskStats::new(db.clone());
        let w = WriteSide::new(SqlUnitOfWork::new(db)).await;
        let member = w.member.id();
        let mut task = w.create(Some(member), None, 1);
        let mut late = w.add(&mut task).await;
        task.start(w.actor(), at(2)).unwrap();
        late.extend(w.save(&mut task).await);
        task.complete(w.actor(), at(3)).unwrap();
        late.extend(w.save(&mut task).await);
        stats.rebuild(Some(w.tenant())).await.unwrap();
        let rebuilt = stats.stats(w.tenant(), member, day(1)).await.unwrap();
        assert_eq!(counts(rebuilt), [0, 0, 1, 0, 1]);

        // The events the rebuild already holds arrive afterwards, oldest first.
        handle_all(&stats, &late).await;
        assert_eq!(
            stats.stats(w.tenant(), member, day(1)).await.unwrap(),
            rebuilt
        );

        task.reopen(w.actor(), at(4)).unwrap();
        let newer = w.save(&mut task).await;
        handle_all(&stats, &newer).await;
        let reopened = stats.stats(w.tenant(), member, day(1)).await.unwrap();
        assert_eq!(counts(reopened), [1, 0, 0, 0, 1]);
        assert_eq!(reopened.updated_at, Some(at(4)));
    }

    /// A handler may apply an event newer than the tasks table the rebuild read (its
    /// change committed after the read): the rebuild keeps that figure.
    async fn a_rebuild_keeps_a_figure_that_a_newer_event_already_set(db: Database) {
        let stats = SqlTaskStats::new(db.clone());
        let w = WriteSide::new(SqlUnitOfWork::new(db)).await;
        let member = w.member.id();
        let mut task = w.create(Some(member), None, 1);
        let created = w.add(&mut task).await;
        handle_all(&stats, &created).await;
        let completed_later = envelope(5, completed(meta(w.tenant(), 9), task.id()));
        assert!(stats.handle(&completed_later).await.unwrap());

        stats.rebuild(Some(w.tenant())).await.unwrap();
        let figures = stats.stats(w.tenant(), member, day(1)).await.unwrap();
        assert_eq!(
            counts(figures),
            [0, 0, 1, 0, 1],
            "open, in progress, done, overdue, total"
        );
    }

    async fn events_of_users_are_recorded_and_move_only_the_position(db: Database) {
        let stats = SqlTaskStats::new(db);
        let (tenant, alice) = (tenant(), user());
        let registered = envelope(
            0,
            DomainEvent::from(domain::UserEvent {
                meta: meta(tenant, 7),
                user_id: alice,
                fact: domain::UserFact::Registered {
                    role: domain::Role::Member,
                },
            }),
        );
        assert!(stats.handle(&registered).await.unwrap());
        assert!(!stats.handle(&registered).await.unwrap());
        let alices = stats.stats(tenant, alice, day(1)).await.unwrap();
        assert_eq!(counts(alices), [0; 5]);
        assert_eq!(alices.updated_at, None);
        assert_eq!(alices.as_of, Some(at(7)));
    }

    crate::on_every_backend!(
        an_event_handled_twice_changes_nothing_the_second_time,
        a_task_through_its_life_counts_for_its_assignee_and_no_longer_for_the_previous_one,
        overdue_counts_unfinished_tasks_due_before_today,
        a_deleted_task_is_not_counted_until_it_is_restored,
        another_tenants_figures_are_never_visible,
        events_applied_out_of_order_leave_the_latest_figures,
        events_handled_at_once_end_with_the_right_counts,
        a_rebuild_from_the_tasks_table_matches_what_the_events_produced,
        after_a_rebuild_an_older_event_changes_nothing_and_a_newer_one_applies,
        a_rebuild_keeps_a_figure_that_a_newer_event_already_set,
        events_of_users_are_recorded_and_move_only_the_position,
    );
}
