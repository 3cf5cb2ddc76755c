//! `/api/v1/tasks/{id}/checklist`: the items of a task's checklist. They change only
//! through their task, so every answer carries the task's new `ETag`.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, web};
use application::Error;
use application::tasks::TaskChange;
use domain::{Aggregate, ChecklistItemId, ChecklistText};
use garde::Validate;
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{ChecklistItem, TaskConflict, TaskWithETag, change, location, task_response};
use crate::AppState;
use crate::conditional::IfMatch;
use crate::error::{ApiError, FieldError, FieldErrors};
use crate::extract::{Authenticated, ValidJson};
use crate::openapi::{Forbidden, NotFound};
use crate::patch::Patch;
use crate::resource::versioned;

/// A new checklist item; it starts not done.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
// Parsed by the domain's `ChecklistText`; garde has nothing to add.
#[garde(allow_unvalidated)]
pub(crate) struct NewChecklistItem {
    #[schema(schema_with = crate::schema::short_text)]
    text: String,
}

impl NewChecklistItem {
    fn into_change(self) -> Result<TaskChange, ApiError> {
        let text = ChecklistText::parse(&self.text)
            .map_err(|error| ApiError::Validation(vec![FieldError::new("text", error)]))?;
        Ok(TaskChange::AddChecklistItem(text))
    }
}

/// The checklist item's fields to change; absent ones stay as they are.
#[derive(Debug, Default, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
// Parsed by the domain's `ChecklistText`; garde has nothing to add.
#[garde(allow_unvalidated)]
pub(crate) struct ChecklistItemChanges {
    /// Cannot be `null`.
    #[serde(default)]
    #[schema(schema_with = crate::schema::short_text)]
    text: Patch<String>,
    /// Cannot be `null`.
    #[serde(default)]
    #[schema(value_type = bool)]
    done: Patch<bool>,
}

impl ChecklistItemChanges {
    fn into_change(self, item: Uuid) -> Result<TaskChange, ApiError> {
        let mut errors = FieldErrors::default();
        let text = self
            .text
            .parse_required("text", &mut errors, |raw| ChecklistText::parse(&raw));
        let done = self
            .done
            .parse_required("done", &mut errors, Ok::<_, std::convert::Infallible>);
        errors.finish()?;
        Ok(TaskChange::UpdateChecklistItem {
            item: ChecklistItemId::from_uuid(item),
            text,
            done,
        })
    }
}

#[utoipa::path(
    post, operation_id = "add_checklist_item", path = "/api/v1/tasks/{id}/checklist",
    tag = "tasks",
    security(("bearer" = [])),
    summary = "Add an item to the end of a task's checklist",
    params(("id" = Uuid, Path, description = "The task's id"), IfMatch),
    request_body = NewChecklistItem,
    responses(
        (status = 201, description = "The new item", body = ChecklistItem,
            headers(
                ("Location" = String, description = "The new item's URL"),
                ("ETag" = String, description = "The task's new version"),
            )),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = TaskConflict),
    ),
)]
pub(crate) async fn add_item(
    state: web::Data<AppState>,
    Authenticated(principal): Authenticated,
    id: web::Path<Uuid>,
    if_match: IfMatch,
    ValidJson(body): ValidJson<NewChecklistItem>,
) -> Result<HttpResponse, ApiError> {
    let add = body.into_change()?;
    let task = change(&state, &principal, *id, if_match, add).await?;
    // The use case adds the item at the end of the checklist.
    let item = task.checklist().last().ok_or_else(|| {
        Error::Unexpected(std::io::Error::other("the added checklist item is missing").into())
    })?;
    let url = format!("{}/checklist/{}", location(task.id()), item.id());
    Ok(versioned(StatusCode::CREATED, task.version())
        .insert_header((header::LOCATION, url))
        .json(ChecklistItem::from(item)))
}

#[utoipa::path(
    get, operation_id = "get_checklist_item",
    path = "/api/v1/tasks/{id}/checklist/{item_id}", tag = "tasks",
    security(("bearer" = [])),
    summary = "Read one item of a task's checklist (where a new item's Location points)",
    params(
        ("id" = Uuid, Path, description = "The task's id"),
        ("item_id" = Uuid, Path, description = "The checklist item's id"),
    ),
    responses(
        (status = 200, description = "The item", body = ChecklistItem,
            headers(("ETag" = String, description = "The task's version"))),
        (status = 404, response = NotFound),
    ),
)]
pub(crate) async fn get_item(
    state: web::Data<AppState>,
    Authenticated(principal): Authenticated,
    path: web::Path<(Uuid, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let (id, item) = path.into_inner();
    let task = state
        .tasks
        .get
        .execute(&principal, domain::TaskId::from_uuid(id), false)
        .await?;
    let item = ChecklistItemId::from_uuid(item);
    let found = task
        .checklist()
        .iter()
        .find(|candidate| candidate.id() == item)
        .ok_or(Error::NotFound("checklist item"))?;
    Ok(versioned(StatusCode::OK, task.version()).json(ChecklistItem::from(found)))
}

#[utoipa::path(
    patch, operation_id = "update_checklist_item",
    path = "/api/v1/tasks/{id}/checklist/{item_id}", tag = "tasks",
    security(("bearer" = [])),
    summary = "Change a checklist item's text or tick it off",
    params(
        ("id" = Uuid, Path, description = "The task's id"),
        ("item_id" = Uuid, Path, description = "The checklist item's id"),
        IfMatch,
    ),
    request_body = ChecklistItemChanges,
    responses(
        (status = 200, response = TaskWithETag),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = TaskConflict),
    ),
)]
pub(crate) async fn update_item(
    state: web::Data<AppState>,
    Authenticated(principal): Authenticated,
    path: web::Path<(Uuid, Uuid)>,
    if_match: IfMatch,
    ValidJson(body): ValidJson<ChecklistItemChanges>,
) -> Result<HttpResponse, ApiError> {
    let (id, item) = path.into_inner();
    let update = body.into_change(item)?;
    let task = change(&state, &principal, id, if_match, update).await?;
    Ok(task_response(&task))
}

#[utoipa::path(
    delete, operation_id = "remove_checklist_item",
    path = "/api/v1/tasks/{id}/checklist/{item_id}", tag = "tasks",
    security(("bearer" = [])),
    summary = "Remove an item from a task's checklist",
    params(
        ("id" = Uuid, Path, description = "The task's id"),
        ("item_id" = Uuid, Path, description = "The checklist item's id"),
        IfMatch,
    ),
    responses(
        (status = 204, description = "Removed",
            headers(("ETag" = String, description = "The task's new version"))),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = TaskConflict),
    ),
)]
pub(crate) async fn remove_item(
    state: web::Data<AppState>,
    Authenticated(principal): Authenticated,
    path: web::Path<(Uuid, Uuid)>,
    if_match: IfMatch,
) -> Result<HttpResponse, ApiError> {
    let (id, item) = path.into_inner();
    let remove = TaskChange::RemoveChecklistItem(ChecklistItemId::from_uuid(item));
    let task = change(&state, &principal, id, if_match, remove).await?;
    Ok(versioned(StatusCode::NO_CONTENT, task.version()).finish())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn changes(body: serde_json::Value) -> ChecklistItemChanges {
        serde_json::from_value(body).unwrap()
    }

    #[test]
    fn a_new_item_needs_text() {
        let item: NewChecklistItem = serde_json::from_value(json!({"text": "  "})).unwrap();
        let Some(ApiError::Validation(errors)) = item.into_change().err() else {
            panic!("expected a validation error");
        };
        assert_eq!(errors[0].field, "text");
    }

    #[test]
    fn an_item_change_refuses_null() {
        let null = changes(json!({"text": null, "done": null}));
        let Some(ApiError::Validation(errors)) = null.into_change(Uuid::now_v7()).err() else {
            panic!("expected a validation error");
        };
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["text", "done"]);
    }

    #[test]
    fn an_item_change_leaves_absent_fields() {
        let item = Uuid::now_v7();
        let Ok(TaskChange::UpdateChecklistItem {
            item: id,
            text,
            done,
        }) = changes(json!({"done": true})).into_change(item)
        else {
            panic!("expected a checklist item update");
        };
        assert_eq!((id.as_uuid(), text, done), (item, None, Some(true)));
    }
}
