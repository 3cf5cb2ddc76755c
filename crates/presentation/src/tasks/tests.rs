use actix_web::body::to_bytes;
use actix_web::http::header;
use domain::{Actor, ChecklistItemId, NewTask as DomainNewTask, Role, TenantId};
use serde_json::{Value, json};

use super::*;

fn fields<T>(result: Result<T, ApiError>) -> Vec<String> {
    match result.err() {
        Some(ApiError::Validation(errors)) => errors.into_iter().map(|e| e.field).collect(),
        other => panic!("expected a validation error, got {other:?}"),
    }
}

fn body<T: serde::de::DeserializeOwned>(json: Value) -> T {
    serde_json::from_value(json).unwrap()
}

fn domain_task() -> domain::Task {
    let creator = UserId::from_uuid(Uuid::now_v7());
    let new = DomainNewTask {
        title: TaskTitle::parse("Ship").unwrap(),
        description: TaskDescription::default(),
        priority: Priority::High,
        due_date: NaiveDate::from_ymd_opt(2025, 6, 30),
        assignee: None,
        checklist: vec![(
            ChecklistItemId::from_uuid(Uuid::now_v7()),
            ChecklistText::parse("test").unwrap(),
        )],
    };
    let actor = Actor {
        id: creator,
        role: Role::Member,
    };
    let id = TaskId::from_uuid(Uuid::now_v7());
    let tenant = TenantId::from_uuid(Uuid::now_v7());
    domain::Task::create(id, tenant, actor, new, Utc::now()).unwrap()
}

#[test]
fn a_new_task_defaults_to_medium_priority_and_an_empty_description() {
    let new: NewTask = body(json!({"title": " Ship ", "checklist": ["a", "b"]}));
    let command = new.into_command().unwrap();
    assert_eq!(command.title.as_str(), "Ship");
    assert_eq!(command.priority, Priority::Medium);
    assert_eq!(command.description.as_str(), "");
    assert_eq!((command.due_date, command.assignee), (None, None));
    assert_eq!(command.checklist.len(), 2);
}

#[test]
fn every_invalid_field_of_a_new_task_is_reported_at_once() {
    let new: NewTask = body(json!({
        "title": "",
        "description": "x".repeat(10_001),
        "priority": "critical",
        "due_date": "tomorrow",
        "checklist": ["fine", " ", "also fine", ""],
    }));
    assert_eq!(
        fields(new.into_command()),
        [
            "title",
            "description",
            "priority",
            "due_date",
            "checklist[1]",
            "checklist[3]"
        ]
    );
}

#[test]
fn a_checklist_of_more_than_50_items_is_refused_before_parsing() {
    let items = |count: usize| json!({"title": "t", "checklist": vec!["x"; count]});
    assert!(body::<NewTask>(items(50)).validate().is_ok());
    assert!(body::<NewTask>(items(51)).validate().is_err());
}

#[test]
fn a_patch_leaves_absent_fields_and_clears_nullable_ones() {
    let changes: TaskChanges = body(json!({"description": null, "due_date": null}));
    let edit = changes.into_edit().unwrap();
    assert!(edit.title.is_none() && edit.priority.is_none());
    assert_eq!(edit.description, Some(TaskDescription::default()));
    assert_eq!(edit.due_date, Some(None));
    let changes: TaskChanges = body(json!({"title": "New", "due_date": "2025-01-02"}));
    let edit = changes.into_edit().unwrap();
    assert_eq!(edit.title.unwrap().as_str(), "New");
    assert_eq!(edit.due_date, Some(NaiveDate::from_ymd_opt(2025, 1, 2)));
    assert!(edit.description.is_none());
}

#[test]
fn a_patch_may_not_clear_the_title_or_the_priority() {
    let changes: TaskChanges = body(json!({"title": null, "priority": null, "due_date": "soon"}));
    assert_eq!(
        fields(changes.into_edit()),
        ["title", "priority", "due_date"]
    );
}

#[test]
fn unassigning_needs_an_explicit_null() {
    let assignment: Assignment = body(json!({"assignee_id": null}));
    assert_eq!(assignment.assignee_id, None);
    assert!(serde_json::from_value::<Assignment>(json!({})).is_err());
}

#[test]
fn listing_defaults_to_twenty_newest_tasks_without_deleted_ones() {
    let query = ListParams::default().into_query().unwrap();
    assert_eq!(query.limit, 20);
    assert_eq!(query.sort, cursor::parse_sort("-created_at").unwrap());
    assert_eq!(query.after, None);
    assert_eq!(query.filter, TaskFilter::default());
}

#[test]
fn list_filters_are_parsed_and_every_bad_one_is_reported() {
    let params = ListParams {
        status: Some("in_progress".to_owned()),
        priority: Some("urgent".to_owned()),
        due_before: Some("2025-06-30".to_owned()),
        ..ListParams::default()
    };
    let filter = params.into_query().unwrap().filter;
    assert_eq!(filter.status, Some(TaskStatus::InProgress));
    assert_eq!(filter.priority, Some(Priority::Urgent));
    assert_eq!(filter.due_before, NaiveDate::from_ymd_opt(2025, 6, 30));
    let params = ListParams {
        status: Some("blocked".to_owned()),
        priority: Some("critical".to_owned()),
        due_before: Some("June".to_owned()),
        cursor: Some("nope".to_owned()),
        ..ListParams::default()
    };
    assert_eq!(
        fields(params.into_query()),
        ["status", "priority", "due_before", "cursor"]
    );
    let unknown_sort = ListParams {
        sort: Some("title".to_owned()),
        ..ListParams::default()
    };
    assert_eq!(fields(unknown_sort.into_query()), ["sort"]);
}

#[test]
fn a_cursor_continues_only_the_sort_it_was_made_for() {
    let task = domain_task();
    let due = cursor::parse_sort("due_date").unwrap();
    let next = cursor::encode(due, application::tasks::TaskCursor::after(&task, due.order));
    let same_sort = ListParams {
        sort: Some("due_date".to_owned()),
        cursor: Some(next.clone()),
        ..ListParams::default()
    };
    assert!(same_sort.into_query().unwrap().after.is_some());
    let other_sort = ListParams {
        cursor: Some(next),
        ..ListParams::default()
    };
    assert_eq!(fields(other_sort.into_query()), ["cursor"]);
}

#[test]
fn the_task_json_has_the_documented_fields() {
    let json = serde_json::to_value(Task::from(&domain_task())).unwrap();
    let mut keys: Vec<&str> = json
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "assignee_id",
            "checklist",
            "completed_at",
            "created_at",
            "creator_id",
            "deleted_at",
            "description",
            "due_date",
            "id",
            "priority",
            "status",
            "tenant_id",
            "title",
            "updated_at",
            "version"
        ]
    );
    assert_eq!(json["status"], "todo");
    assert_eq!(json["priority"], "high");
    assert_eq!(json["due_date"], "2025-06-30");
    assert_eq!(json["checklist"][0]["text"], "test");
    assert_eq!(json["checklist"][0]["done"], false);
    assert_eq!(json["version"], 0);
}

#[actix_web::test]
async fn a_task_response_carries_the_version_as_a_strong_etag() {
    let task = domain_task();
    let response = task_response(&task);
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers().get(header::ETAG).unwrap(), "\"0\"");
    let bytes = to_bytes(response.into_body()).await.unwrap();
    let json: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(json["id"], task.id().to_string());
    let not_modified = versioned(StatusCode::NOT_MODIFIED, task.version()).finish();
    assert_eq!(not_modified.headers().get(header::ETAG).unwrap(), "\"0\"");
    assert!(to_bytes(not_modified.into_body()).await.unwrap().is_empty());
}
