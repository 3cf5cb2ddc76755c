//! `/api/v1/tasks`: the tasks of the caller's tenant, their status, assignee and
//! checklist.
//!
//! Every answer that carries a task carries its version as `ETag`, and every change
//! takes `If-Match`, so that two clients cannot overwrite each other unknowingly, as for
//! every resource (`resource`, `conditional`). Every change goes through `ChangeTask`.

pub(crate) mod checklist;
mod cursor;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use application::Principal;
use application::tasks::{CreateTaskCommand, ListTasksQuery, TaskChange, TaskFilter};
use chrono::{DateTime, NaiveDate, Utc};
use domain::{
    Aggregate, ChecklistText, Priority, TaskDescription, TaskEdit, TaskError, TaskId, TaskStatus,
    TaskTitle, UserId,
};
use garde::Validate;
use serde::{Deserialize, Serialize};
use utoipa::openapi::schema::{Object, ObjectBuilder, SchemaType, Type};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::AppState;
use crate::conditional::{IfMatch, IfNoneMatch};
use crate::error::{ApiError, FieldErrors, Problem, Refusal};
use crate::extract::{
    Authenticated, DEFAULT_PAGE_SIZE, MAX_CURSOR_LEN, MAX_PAGE_SIZE, ValidJson, ValidQuery,
    from_text,
};
use crate::idempotency::{IdempotentJson, RequestKey, created, respond};
use crate::openapi::{Forbidden, NotFound, ValidationFailed};
use crate::patch::{Patch, required_nullable};
use crate::resource::{ReadParams, current, revalidated, versioned};
use crate::routing::Routes;
use crate::schema;
use crate::values::parse_date;

/// Every route of tasks, in the order the router tries them.
pub(crate) fn routes(routes: Routes) -> Routes {
    routes
        .response::<TaskWithETag>()
        .response::<TaskConflict>()
        .route(__path_list, list)
        .route(__path_create, create)
        .route(__path_get, get)
        .route(__path_update, update)
        .route(__path_delete, delete)
        .route(__path_start, start)
        .route(__path_complete, complete)
        .route(__path_reopen, reopen)
        .route(__path_restore, restore)
        .route(__path_assign, assign)
        .route(checklist::__path_add_item, checklist::add_item)
        .route(checklist::__path_get_item, checklist::get_item)
        .route(checklist::__path_update_item, checklist::update_item)
        .route(checklist::__path_remove_item, checklist::remove_item)
}

/// How each task rule is told to clients. The use case turns the ones about who and what
/// exists into `Forbidden` and `NotFound`; should one arrive as a rule, it means the same.
pub(crate) fn refusal(error: &TaskError) -> Refusal {
    let (code, title) = match error {
        TaskError::NotAllowed => {
            return Refusal {
                status: StatusCode::FORBIDDEN,
                code: "forbidden",
                title: "Forbidden",
            };
        }
        TaskError::Deleted | TaskError::ChecklistItemNotFound => {
            return Refusal {
                status: StatusCode::NOT_FOUND,
                code: "not_found",
                title: "Not found",
            };
        }
        TaskError::InvalidTransition { .. } => ("invalid_transition", "Invalid status transition"),
        TaskError::ChecklistIncomplete => ("checklist_incomplete", "Checklist incomplete"),
        TaskError::DoneIsReadOnly => ("task_done_is_read_only", "Task is done"),
        TaskError::ChecklistFull => ("checklist_full", "Checklist full"),
        TaskError::NotDeleted => ("task_not_deleted", "Task is not deleted"),
    };
    Refusal::conflict(code, title)
}

/// A task as clients see it.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Task {
    id: Uuid,
    tenant_id: Uuid,
    title: String,
    /// May be empty.
    description: String,
    #[schema(schema_with = status_schema)]
    status: &'static str,
    #[schema(schema_with = priority_schema)]
    priority: &'static str,
    /// `null` when the task has no due date.
    #[schema(required = true)]
    due_date: Option<NaiveDate>,
    /// `null` when nobody is assigned.
    #[schema(required = true)]
    assignee_id: Option<Uuid>,
    creator_id: Uuid,
    /// In the order the items were added.
    checklist: Vec<ChecklistItem>,
    /// Grows with every change; the `ETag` is this number in quotes.
    version: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    /// When the task was last completed; `null` unless it is done.
    #[schema(required = true)]
    completed_at: Option<DateTime<Utc>>,
    /// When the task was (softly) deleted; `null` otherwise.
    #[schema(required = true)]
    deleted_at: Option<DateTime<Utc>>,
}

impl From<&domain::Task> for Task {
    fn from(task: &domain::Task) -> Self {
        let state = task.snapshot();
        Self {
            id: state.id.as_uuid(),
            tenant_id: state.tenant_id.as_uuid(),
            title: state.title.as_str().to_owned(),
            description: state.description.as_str().to_owned(),
            status: state.status.as_str(),
            priority: state.priority.as_str(),
            due_date: state.due_date,
            assignee_id: state.assignee.map(UserId::as_uuid),
            creator_id: state.creator.as_uuid(),
            checklist: state.checklist.iter().map(ChecklistItem::from).collect(),
            version: state.version,
            created_at: state.created_at,
            updated_at: state.updated_at,
            completed_at: state.completed_at,
            deleted_at: state.deleted_at,
        }
    }
}

/// One line of a task's checklist.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ChecklistItem {
    id: Uuid,
    text: String,
    done: bool,
}

impl From<&domain::ChecklistItem> for ChecklistItem {
    fn from(item: &domain::ChecklistItem) -> Self {
        Self {
            id: item.id().as_uuid(),
            text: item.text().as_str().to_owned(),
            done: item.is_done(),
        }
    }
}

/// One page of tasks.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TaskPage {
    items: Vec<Task>,
    /// Pass as `cursor`, with the same `sort`, to get the next page; `null` on the last.
    #[schema(required = true)]
    next_cursor: Option<String>,
}

/// A string that is one of `names`, for the schema of a field the domain parses.
fn one_of(names: impl IntoIterator<Item = &'static str>) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(names))
}

// `schema_with` drops the field's doc comment, so these carry their own descriptions.

fn status_schema() -> Object {
    one_of(TaskStatus::ALL.map(TaskStatus::as_str)).build()
}

fn priority_schema() -> Object {
    one_of(Priority::ALL.map(Priority::as_str)).build()
}

fn new_priority_schema() -> Object {
    let names = Priority::ALL.map(|priority| Some(priority.as_str()));
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .enum_values(Some(names.into_iter().chain([None])))
        .default(Some(Priority::default().as_str().into()))
        .description(Some("Left out or `null`: the default."))
        .build()
}

fn status_filter_schema() -> Object {
    one_of(TaskStatus::ALL.map(TaskStatus::as_str))
        .description(Some("Only tasks with this status."))
        .build()
}

fn priority_filter_schema() -> Object {
    one_of(Priority::ALL.map(Priority::as_str))
        .description(Some("Only tasks of this priority."))
        .build()
}

fn sort_schema() -> Object {
    one_of(cursor::SORTS.map(|(name, _)| name))
        .default(Some(cursor::DEFAULT_SORT.into()))
        .description(Some(
            "The order, `-` for descending. Ties are broken by id; tasks without a due \
             date come last in `due_date` and first in `-due_date`.",
        ))
        .build()
}

/// Filters, order and paging for `GET /api/v1/tasks`.
#[derive(Debug, Default, Deserialize, Validate, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListParams {
    #[garde(skip)]
    #[param(schema_with = status_filter_schema)]
    status: Option<String>,
    /// Only tasks assigned to this user.
    #[serde(default, deserialize_with = "from_text")]
    #[garde(skip)]
    assignee_id: Option<Uuid>,
    #[garde(skip)]
    #[param(schema_with = priority_filter_schema)]
    priority: Option<String>,
    /// Only tasks due before this day (`YYYY-MM-DD`); tasks without a due date never are.
    #[garde(skip)]
    #[param(format = Date)]
    due_before: Option<String>,
    /// Part of the title, case-insensitive.
    #[garde(length(chars, max = TaskTitle::MAX_CHARS))]
    #[param(max_length = 200)]
    q: Option<String>,
    #[garde(skip)]
    #[param(schema_with = sort_schema)]
    sort: Option<String>,
    /// Tasks per page.
    #[serde(default, deserialize_with = "from_text")]
    #[garde(range(min = 1, max = MAX_PAGE_SIZE))]
    #[param(minimum = 1, maximum = 100, default = 20)]
    limit: Option<u32>,
    /// The `next_cursor` of the previous page, which must have had the same `sort`.
    /// Opaque: one the server did not issue for this sort is 422 `validation_failed`
    /// on `cursor`.
    #[garde(length(chars, max = MAX_CURSOR_LEN))]
    #[param(max_length = 256)]
    cursor: Option<String>,
    /// Admins only: include deleted tasks.
    #[serde(default, deserialize_with = "from_text")]
    #[garde(skip)]
    include_deleted: Option<bool>,
}

impl ListParams {
    fn into_query(self) -> Result<ListTasksQuery, ApiError> {
        let mut errors = FieldErrors::default();
        let status = self
            .status
            .map(|raw| errors.check("status", TaskStatus::parse(&raw)));
        let priority = self
            .priority
            .map(|raw| errors.check("priority", Priority::parse(&raw)));
        let due_before = self
            .due_before
            .map(|raw| errors.check("due_before", parse_date(&raw)));
        let sort = self.sort.as_deref().unwrap_or(cursor::DEFAULT_SORT);
        let Some(sort) = errors.check("sort", cursor::parse_sort(sort)) else {
            return Err(errors.into());
        };
        let after = self
            .cursor
            .map(|raw| errors.check("cursor", cursor::decode(sort, &raw)));
        errors.finish()?;
        Ok(ListTasksQuery {
            filter: TaskFilter {
                status: status.flatten(),
                assignee: self.assignee_id.map(UserId::from_uuid),
                priority: priority.flatten(),
                due_before: due_before.flatten(),
                q: self.q.filter(|q| !q.is_empty()),
                include_deleted: self.include_deleted.unwrap_or(false),
            },
            sort,
            after: after.flatten(),
            limit: u64::from(self.limit.unwrap_or(DEFAULT_PAGE_SIZE)),
        })
    }
}

/// A new task of the caller's tenant.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
// Every other field is parsed by its domain value object; garde has nothing to add.
#[garde(allow_unvalidated)]
pub(crate) struct NewTask {
    #[schema(schema_with = schema::short_text)]
    title: String,
    /// Empty when left out.
    #[schema(schema_with = schema::long_text_or_null)]
    description: Option<String>,
    #[schema(schema_with = new_priority_schema, required = false)]
    priority: Option<String>,
    /// `YYYY-MM-DD`.
    #[schema(format = Date, examples("2025-06-30"))]
    due_date: Option<String>,
    /// An active user of the tenant.
    assignee_id: Option<Uuid>,
    #[serde(default)]
    #[garde(length(max = domain::Task::MAX_CHECKLIST_ITEMS))]
    #[schema(schema_with = schema::checklist_texts)]
    checklist: Vec<String>,
}

impl NewTask {
    fn into_command(self) -> Result<CreateTaskCommand, ApiError> {
        let mut errors = FieldErrors::default();
        let title = errors.check("title", TaskTitle::parse(&self.title));
        let description = self.description.unwrap_or_default();
        let description = errors.check("description", TaskDescription::parse(&description));
        let priority = self
            .priority
            .as_deref()
            .map_or(Ok(Priority::default()), Priority::parse);
        let priority = errors.check("priority", priority);
        let due_date = self.due_date.as_deref().map(parse_date).transpose();
        let due_date = errors.check("due_date", due_date);
        let checklist: Vec<Option<ChecklistText>> = self
            .checklist
            .iter()
            .enumerate()
            .map(|(at, text)| errors.check(&format!("checklist[{at}]"), ChecklistText::parse(text)))
            .collect();
        let checklist: Option<Vec<ChecklistText>> = checklist.into_iter().collect();
        let (Some(title), Some(description), Some(priority), Some(due_date), Some(checklist)) =
            (title, description, priority, due_date, checklist)
        else {
            return Err(errors.into());
        };
        Ok(CreateTaskCommand {
            title,
            description,
            priority,
            due_date,
            assignee: self.assignee_id.map(UserId::from_uuid),
            checklist,
        })
    }
}

/// The fields to change: absent ones stay as they are, `null` clears the ones that may
/// be empty.
#[derive(Debug, Default, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
// Every field is parsed by its domain value object; garde has nothing to add.
#[garde(allow_unvalidated)]
pub(crate) struct TaskChanges {
    /// Cannot be `null`.
    #[serde(default)]
    #[schema(schema_with = schema::short_text)]
    title: Patch<String>,
    /// `null` empties it.
    #[serde(default)]
    #[schema(schema_with = schema::long_text_or_null)]
    description: Patch<String>,
    #[serde(default)]
    #[schema(schema_with = priority_schema, required = false)]
    priority: Patch<String>,
    /// `YYYY-MM-DD`; `null` removes the due date.
    #[serde(default)]
    #[schema(value_type = Option<String>, format = Date)]
    due_date: Patch<String>,
}

impl TaskChanges {
    fn into_edit(self) -> Result<TaskEdit, ApiError> {
        let mut errors = FieldErrors::default();
        let edit = TaskEdit {
            title: self
                .title
                .parse_required("title", &mut errors, |raw| TaskTitle::parse(&raw)),
            description: self
                .description
                .parse_nullable("description", &mut errors, |raw| {
                    TaskDescription::parse(&raw)
                })
                .map(Option::unwrap_or_default),
            priority: self
                .priority
                .parse_required("priority", &mut errors, |raw| Priority::parse(&raw)),
            due_date: self
                .due_date
                .parse_nullable("due_date", &mut errors, |raw| parse_date(&raw)),
        };
        errors.finish()?;
        Ok(edit)
    }
}

/// Who the task is assigned to.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Assignment {
    /// An active user of the tenant, or `null` to unassign the task.
    #[serde(deserialize_with = "required_nullable")]
    #[garde(skip)]
    #[schema(required = true)]
    assignee_id: Option<Uuid>,
}

// The answer of the routes that return a task: the task, and its version as `ETag`.
crate::resource::versioned_response!(TaskWithETag, "Task", "The task as it is now");

// 409 for tasks: a rule of theirs, or another change that came first.
crate::openapi::problem_responses! {
    TaskConflict => "The change breaks a rule of the task: `invalid_transition`, \
        `checklist_incomplete`, `task_done_is_read_only`, `checklist_full` or \
        `task_not_deleted`; or another change came first (`concurrent_modification`)";
}

fn location(task: TaskId) -> String {
    format!("/api/v1/tasks/{task}")
}

/// 200 with the task and its `ETag`.
fn task_response(task: &domain::Task) -> HttpResponse {
    current(task.version(), &Task::from(task))
}

/// Applies one change to the task `id`, at the version `If-Match` expects.
async fn change(
    state: &AppState,
    principal: &Principal,
    id: Uuid,
    if_match: IfMatch,
    change: TaskChange,
) -> Result<domain::Task, ApiError> {
    let id = TaskId::from_uuid(id);
    Ok(state
        .tasks
        .change
        .execute(principal, id, if_match.check(), change)
        .await?)
}

#[utoipa::path(
    get, operation_id = "list_tasks", path = "/api/v1/tasks", tag = "tasks",
    security(("bearer" = [])),
    summary = "List the tasks of the caller's tenant, a page at a time",
    params(ListParams),
    responses(
        (status = 200, description = "One page of tasks", body = TaskPage),
        (status = 403, response = Forbidden),
        (status = 422, response = ValidationFailed),
    ),
)]
pub(crate) async fn list(
    state: web::Data<AppState>,
    Authenticated(principal): Authenticated,
    ValidQuery(params): ValidQuery<ListParams>,
) -> Result<web::Json<TaskPage>, ApiError> {
    let query = params.into_query()?;
    let sort = query.sort;
    let page = state.tasks.list.execute(&principal, query).await?;
    Ok(web::Json(TaskPage {
        items: page.items.iter().map(Task::from).collect(),
        next_cursor: page.next.map(|last| cursor::encode(sort, last)),
    }))
}

#[utoipa::path(
    post, operation_id = "create_task", path = "/api/v1/tasks", tag = "tasks",
    security(("bearer" = [])),
    summary = "Create a task in the caller's tenant",
    params(RequestKey),
    request_body = NewTask,
    responses(
        (status = 201, description = "Created; a replay when `Idempotent-Replayed` is \
            `true`, whose `ETag` names the version in its body, as first created", body = Task,
            headers(
                ("Location" = String, description = "The new task's URL"),
                ("ETag" = String, description = "The version of the task in the body, as `\"<version>\"`"),
                ("Idempotent-Replayed" = String,
                    description = "`true` when this is the answer to an earlier request"),
            )),
        (status = 409, description = "A request with this `Idempotency-Key` is still \
            running (`idempotency_request_in_progress`)",
            body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Fields are missing, unknown, mistyped or invalid \
            (`validation_failed`), the assignee is not an active user of the tenant \
            (`assignee_invalid`), or the `Idempotency-Key` was used for another request \
            (`idempotency_key_reused`)",
            body = Problem, content_type = "application/problem+json"),
    ),
)]
pub(crate) async fn create(
    state: web::Data<AppState>,
    Authenticated(principal): Authenticated,
    IdempotentJson { body, key }: IdempotentJson<NewTask>,
) -> Result<HttpResponse, ApiError> {
    let command = body.into_command()?;
    let render = |task: &domain::Task| created(location(task.id()), &Task::from(task));
    let idempotent = key.map(|key| key.scoped(&principal, &render));
    let outcome = state
        .tasks
        .create
        .execute(&principal, command, idempotent.as_ref())
        .await?;
    Ok(respond(&outcome, render))
}

#[utoipa::path(
    get, operation_id = "get_task", path = "/api/v1/tasks/{id}", tag = "tasks",
    security(("bearer" = [])),
    summary = "One task of the caller's tenant",
    params(("id" = Uuid, Path, description = "The task's id"), ReadParams, IfNoneMatch),
    responses(
        (status = 200, response = TaskWithETag),
        (status = 304, description = "The task is still at the version `If-None-Match` \
            names; no body",
            headers(("ETag" = String, description = "The task's version"))),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
    ),
)]
pub(crate) async fn get(
    state: web::Data<AppState>,
    Authenticated(principal): Authenticated,
    id: web::Path<Uuid>,
    ValidQuery(params): ValidQuery<ReadParams>,
    if_none_match: IfNoneMatch,
) -> Result<HttpResponse, ApiError> {
    let task = state
        .tasks
        .get
        .execute(&principal, TaskId::from_uuid(*id), params.include_deleted())
        .await?;
    Ok(revalidated(&if_none_match, task.version(), || {
        task_response(&task)
    }))
}

#[utoipa::path(
    patch, operation_id = "update_task", path = "/api/v1/tasks/{id}", tag = "tasks",
    security(("bearer" = [])),
    summary = "Change a task's title, description, priority or due date",
    params(("id" = Uuid, Path, description = "The task's id"), IfMatch),
    request_body = TaskChanges,
    responses(
        (status = 200, response = TaskWithETag),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = TaskConflict),
    ),
)]
pub(crate) async fn update(
    state: web::Data<AppState>,
    Authenticated(principal): Authenticated,
    id: web::Path<Uuid>,
    if_match: IfMatch,
    ValidJson(body): ValidJson<TaskChanges>,
) -> Result<HttpResponse, ApiError> {
    let edit = TaskChange::Edit(body.into_edit()?);
    let task = change(&state, &principal, *id, if_match, edit).await?;
    Ok(task_response(&task))
}

#[utoipa::path(
    post, operation_id = "start_task", path = "/api/v1/tasks/{id}/start", tag = "tasks",
    security(("bearer" = [])),
    summary = "Start a task: todo to in progress",
    params(("id" = Uuid, Path, description = "The task's id"), IfMatch),
    responses(
        (status = 200, response = TaskWithETag),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = TaskConflict),
    ),
)]
pub(crate) async fn start(
    state: web::Data<AppState>,
    Authenticated(principal): Authenticated,
    id: web::Path<Uuid>,
    if_match: IfMatch,
) -> Result<HttpResponse, ApiError> {
    let task = change(&state, &principal, *id, if_match, TaskChange::Start).await?;
    Ok(task_response(&task))
}

#[utoipa::path(
    post, operation_id = "complete_task", path = "/api/v1/tasks/{id}/complete", tag = "tasks",
    security(("bearer" = [])),
    summary = "Complete a task: in progress to done, once every checklist item is done",
    params(("id" = Uuid, Path, description = "The task's id"), IfMatch),
    responses(
        (status = 200, response = TaskWithETag),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = TaskConflict),
    ),
)]
pub(crate) async fn complete(
    state: web::Data<AppState>,
    Authenticated(principal): Authenticated,
    id: web::Path<Uuid>,
    if_match: IfMatch,
) -> Result<HttpResponse, ApiError> {
    let task = change(&state, &principal, *id, if_match, TaskChange::Complete).await?;
    Ok(task_response(&task))
}

#[utoipa::path(
    post, operation_id = "reopen_task", path = "/api/v1/tasks/{id}/reopen", tag = "tasks",
    security(("bearer" = [])),
    summary = "Reopen a task: done to todo",
    params(("id" = Uuid, Path, description = "The task's id"), IfMatch),
    responses(
        (status = 200, response = TaskWithETag),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = TaskConflict),
    ),
)]
pub(crate) async fn reopen(
    state: web::Data<AppState>,
    Authenticated(principal): Authenticated,
    id: web::Path<Uuid>,
    if_match: IfMatch,
) -> Result<HttpResponse, ApiError> {
    let task = change(&state, &principal, *id, if_match, TaskChange::Reopen).await?;
    Ok(task_response(&task))
}

#[utoipa::path(
    put, operation_id = "assign_task", path = "/api/v1/tasks/{id}/assignee", tag = "tasks",
    security(("bearer" = [])),
    summary = "Assign a task to a user of the tenant, or unassign it",
    params(("id" = Uuid, Path, description = "The task's id"), IfMatch),
    request_body = Assignment,
    responses(
        (status = 200, response = TaskWithETag),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = TaskConflict),
        (status = 422, description = "Fields are missing, unknown or mistyped \
            (`validation_failed`), or the assignee is not an active user of the tenant \
            (`assignee_invalid`)",
            body = Problem, content_type = "application/problem+json"),
    ),
)]
pub(crate) async fn assign(
    state: web::Data<AppState>,
    Authenticated(principal): Authenticated,
    id: web::Path<Uuid>,
    if_match: IfMatch,
    ValidJson(body): ValidJson<Assignment>,
) -> Result<HttpResponse, ApiError> {
    let assign = TaskChange::Assign(body.assignee_id.map(UserId::from_uuid));
    let task = change(&state, &principal, *id, if_match, assign).await?;
    Ok(task_response(&task))
}

#[utoipa::path(
    delete, operation_id = "delete_task", path = "/api/v1/tasks/{id}", tag = "tasks",
    security(("bearer" = [])),
    summary = "Delete a task softly; admins can restore it",
    params(("id" = Uuid, Path, description = "The task's id"), IfMatch),
    responses(
        (status = 204, description = "Deleted",
            headers(("ETag" = String, description = "The task's new version"))),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = TaskConflict),
    ),
)]
pub(crate) async fn delete(
    state: web::Data<AppState>,
    Authenticated(principal): Authenticated,
    id: web::Path<Uuid>,
    if_match: IfMatch,
) -> Result<HttpResponse, ApiError> {
    let task = change(&state, &principal, *id, if_match, TaskChange::Delete).await?;
    Ok(versioned(StatusCode::NO_CONTENT, task.version()).finish())
}

#[utoipa::path(
    post, operation_id = "restore_task", path = "/api/v1/tasks/{id}/restore", tag = "tasks",
    security(("bearer" = [])),
    summary = "Bring a deleted task back (admins only)",
    params(("id" = Uuid, Path, description = "The task's id"), IfMatch),
    responses(
        (status = 200, response = TaskWithETag),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = TaskConflict),
    ),
)]
pub(crate) async fn restore(
    state: web::Data<AppState>,
    Authenticated(principal): Authenticated,
    id: web::Path<Uuid>,
    if_match: IfMatch,
) -> Result<HttpResponse, ApiError> {
    let task = change(&state, &principal, *id, if_match, TaskChange::Restore).await?;
    Ok(task_response(&task))
}

#[cfg(test)]
mod tests;
