//! `/api/v1/users/{id}/task-stats` and `/api/v1/audit`: the read models the event
//! handlers keep. Both are eventually consistent, and say so in the API's description.

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use application::ports::{AuditEntry as AuditRecord, TaskStats as Figures};
use application::reports::ListAuditQuery;
use chrono::{DateTime, Utc};
use domain::UserId;
use garde::Validate;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::AppState;
use crate::error::{ApiError, FieldError};
use crate::extract::{
    Authenticated, DEFAULT_PAGE_SIZE, MAX_CURSOR_LEN, MAX_PAGE_SIZE, ValidQuery, from_text,
};
use crate::openapi::{Forbidden, NotFound, ValidationFailed};
use crate::routing::Routes;

/// Every route of the reports.
pub(crate) fn routes(routes: Routes) -> Routes {
    routes
        .route(__path_task_stats, task_stats)
        .route(__path_audit, audit)
}

/// A user's tasks, counted by the read model the task events keep. The figures lag the
/// tasks by as long as the events take to be applied; `as_of` says how fresh they are.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TaskStats {
    open: u64,
    in_progress: u64,
    done: u64,
    /// Not done and due before today (UTC).
    overdue: u64,
    /// Tasks assigned to the user, whatever their status; deleted ones excluded.
    assigned_total: u64,
    /// When an event last changed these figures; `null` if none ever did.
    #[schema(required = true)]
    updated_at: Option<DateTime<Utc>>,
    /// When the latest event of the tenant that the read model applied occurred; `null`
    /// before the first. A change made after it is not counted yet; one made before it
    /// almost always is (an event committed late or being redelivered can still come).
    #[schema(required = true)]
    as_of: Option<DateTime<Utc>>,
}

impl From<Figures> for TaskStats {
    fn from(figures: Figures) -> Self {
        Self {
            open: figures.open,
            in_progress: figures.in_progress,
            done: figures.done,
            overdue: figures.overdue,
            assigned_total: figures.assigned_total,
            updated_at: figures.updated_at,
            as_of: figures.as_of,
        }
    }
}

/// Who did what to which aggregate, and when.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AuditEntry {
    /// The id of the event the entry records.
    id: Uuid,
    /// The user who made the change.
    actor_id: Uuid,
    /// What happened, as `task.completed`.
    #[schema(examples("task.completed"))]
    action: String,
    /// `task` or `user`.
    #[schema(examples("task"))]
    aggregate_type: String,
    aggregate_id: Uuid,
    occurred_at: DateTime<Utc>,
}

impl From<&AuditRecord> for AuditEntry {
    fn from(entry: &AuditRecord) -> Self {
        Self {
            id: entry.id,
            actor_id: entry.actor.as_uuid(),
            action: entry.action.clone(),
            aggregate_type: entry.aggregate_type.clone(),
            aggregate_id: entry.aggregate_id,
            occurred_at: entry.occurred_at,
        }
    }
}

/// One page of the audit log, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AuditPage {
    items: Vec<AuditEntry>,
    /// Pass as `cursor` to get the next (older) page; `null` on the last page.
    #[schema(required = true)]
    next_cursor: Option<String>,
}

/// Paging for `GET /api/v1/audit`.
#[derive(Debug, Deserialize, Validate, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct AuditParams {
    /// Entries per page.
    #[serde(default, deserialize_with = "from_text")]
    #[garde(range(min = 1, max = MAX_PAGE_SIZE))]
    #[param(minimum = 1, maximum = 100, default = 20)]
    limit: Option<u32>,
    /// The `next_cursor` of the previous page. Opaque: one the server did not issue is
    /// 422 `validation_failed` on `cursor`.
    #[garde(length(chars, max = MAX_CURSOR_LEN))]
    #[param(max_length = 256)]
    cursor: Option<String>,
}

impl AuditParams {
    fn into_query(self) -> Result<ListAuditQuery, ApiError> {
        let before = self
            .cursor
            .as_deref()
            .map(decode_cursor)
            .transpose()
            .map_err(|message| ApiError::Validation(vec![FieldError::new("cursor", message)]))?;
        Ok(ListAuditQuery {
            before,
            limit: u64::from(self.limit.unwrap_or(DEFAULT_PAGE_SIZE)),
        })
    }
}

/// Cursors are opaque to clients so paging can change; today a cursor is the id of the
/// last entry of the page, in simple (unhyphenated) hex, as for users.
fn encode_cursor(last: Uuid) -> String {
    last.simple().to_string()
}

fn decode_cursor(cursor: &str) -> Result<Uuid, &'static str> {
    (cursor.len() == 32)
        .then(|| Uuid::try_parse(cursor).ok())
        .flatten()
        .ok_or("is not a cursor this API issued")
}

#[utoipa::path(
    get, operation_id = "get_user_task_stats", path = "/api/v1/users/{id}/task-stats",
    tag = "reports",
    security(("bearer" = [])),
    summary = "How many tasks a user of the caller's tenant has, by status",
    description = "Served from a read model that the task events keep, never counted from \
        the tasks at request time: the figures are eventually consistent, usually a \
        moment behind the latest change. `as_of` says how fresh they are: the time of the \
        latest event of the tenant applied, so a change made after it is not counted \
        yet. Any member of the tenant may read them.",
    params(("id" = Uuid, Path, description = "The user's id")),
    responses(
        (status = 200, description = "The user's figures", body = TaskStats,
            headers(("Cache-Control" = String,
                description = "`no-store`: the figures change as events arrive"))),
        (status = 404, response = NotFound),
    ),
)]
pub(crate) async fn task_stats(
    state: web::Data<AppState>,
    Authenticated(principal): Authenticated,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let figures = state
        .reports
        .task_stats
        .execute(&principal, UserId::from_uuid(*id))
        .await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(TaskStats::from(figures)))
}

#[utoipa::path(
    get, operation_id = "list_audit_entries", path = "/api/v1/audit", tag = "reports",
    security(("bearer" = [])),
    summary = "The caller's tenant's audit log, newest first (admins only)",
    description = "Written from the domain events by a consumer of its own, so the newest \
        changes may take a moment to appear.",
    params(AuditParams),
    responses(
        (status = 200, description = "One page of entries", body = AuditPage),
        (status = 403, response = Forbidden),
        (status = 422, response = ValidationFailed),
    ),
)]
pub(crate) async fn audit(
    state: web::Data<AppState>,
    Authenticated(principal): Authenticated,
    ValidQuery(params): ValidQuery<AuditParams>,
) -> Result<web::Json<AuditPage>, ApiError> {
    let page = state
        .reports
        .audit
        .execute(&principal, params.into_query()?)
        .await?;
    Ok(web::Json(AuditPage {
        items: page.items.iter().map(AuditEntry::from).collect(),
        next_cursor: page.next.map(encode_cursor),
    }))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use actix_web::http::StatusCode;
    use actix_web::test::TestRequest;
    use chrono::NaiveDate;
    use domain::{Aggregate, User};
    use serde_json::{Value, json};

    use super::*;
    use crate::testing::{TestApp, now};

    fn get(uri: &str, user: &User) -> TestRequest {
        TestApp::as_user(TestRequest::get().uri(uri), user)
    }

    fn stats_uri(id: UserId) -> String {
        format!("/api/v1/users/{id}/task-stats")
    }

    #[actix_web::test]
    async fn a_member_reads_a_colleagues_figures_which_must_not_be_cached() {
        let app = TestApp::new().await;
        app.fakes.task_stats.set(
            app.admin.id(),
            Figures {
                open: 3,
                in_progress: 1,
                done: 7,
                overdue: 2,
                assigned_total: 11,
                updated_at: Some(now()),
                as_of: None,
            },
        );
        let request = get(&stats_uri(app.admin.id()), &app.member);
        let (status, headers, body) = app.send(request).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers.get(header::CACHE_CONTROL).unwrap(), "no-store");
        assert_eq!(
            body,
            json!({
                "open": 3,
                "in_progress": 1,
                "done": 7,
                "overdue": 2,
                "assigned_total": 11,
                "updated_at": "2026-03-10T23:30:00Z",
                "as_of": null,
            })
        );
        let today = NaiveDate::from_ymd_opt(2026, 3, 10).unwrap();
        let asked = app.fakes.task_stats.questions();
        assert_eq!(asked, [(app.admin.tenant_id(), app.admin.id(), today)]);
    }

    #[actix_web::test]
    async fn the_figures_of_an_unknown_user_are_a_404_problem() {
        let app = TestApp::new().await;
        let stranger = UserId::from_uuid(Uuid::now_v7());
        let (status, headers, body) = app.send(get(&stats_uri(stranger), &app.admin)).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(
            headers.get(header::CONTENT_TYPE).unwrap(),
            "application/problem+json"
        );
        assert_eq!(body["code"], "not_found");
        assert!(app.fakes.task_stats.questions().is_empty());
    }

    #[actix_web::test]
    async fn a_user_id_that_is_not_a_uuid_is_a_400_problem() {
        let app = TestApp::new().await;
        let request = get("/api/v1/users/42/task-stats", &app.admin);
        let (status, _, body) = app.send(request).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["code"], "invalid_path");
    }

    #[actix_web::test]
    async fn an_admin_pages_through_the_audit_log_newest_first() {
        let app = TestApp::new().await;
        let ids: Vec<Uuid> = ["task.created", "task.assigned", "task.completed"]
            .map(|action| app.fakes.audit.record(&app.admin, action, now()))
            .into();
        let (status, _, first) = app.send(get("/api/v1/audit?limit=2", &app.admin)).await;
        assert_eq!(status, StatusCode::OK);
        let entry = &first["items"][0];
        assert_eq!(entry["id"], ids[2].to_string());
        assert_eq!(entry["actor_id"], app.admin.id().to_string());
        assert_eq!(entry["action"], "task.completed");
        assert_eq!(entry["aggregate_type"], "user");
        assert_eq!(entry["aggregate_id"], app.admin.id().to_string());
        assert_eq!(entry["occurred_at"], "2026-03-10T23:30:00Z");
        assert_eq!(entry.as_object().unwrap().len(), 6);
        assert_eq!(first["items"][1]["id"], ids[1].to_string());
        let cursor = first["next_cursor"].as_str().unwrap();
        let uri = format!("/api/v1/audit?limit=2&cursor={cursor}");
        let (_, _, second) = app.send(get(&uri, &app.admin)).await;
        assert_eq!(second["items"].as_array().unwrap().len(), 1);
        assert_eq!(second["items"][0]["id"], ids[0].to_string());
        assert_eq!(second["next_cursor"], Value::Null);
    }

    #[actix_web::test]
    async fn a_member_reading_the_audit_log_is_a_403_problem() {
        let app = TestApp::new().await;
        app.fakes.audit.record(&app.admin, "user.created", now());
        let (status, headers, body) = app.send(get("/api/v1/audit", &app.member)).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(
            headers.get(header::CONTENT_TYPE).unwrap(),
            "application/problem+json"
        );
        assert_eq!(body["code"], "forbidden");
    }

    #[actix_web::test]
    async fn a_cursor_the_api_did_not_issue_is_a_422_on_the_cursor_field() {
        let app = TestApp::new().await;
        for uri in ["/api/v1/audit?cursor=nope", "/api/v1/audit?limit=0"] {
            let (status, _, body) = app.send(get(uri, &app.admin)).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{uri}");
            assert_eq!(body["code"], "validation_failed", "{uri}");
        }
        let (_, _, body) = app.send(get("/api/v1/audit?cursor=nope", &app.admin)).await;
        assert_eq!(body["errors"][0]["field"], "cursor");
    }

    #[actix_web::test]
    async fn a_spent_request_budget_is_a_429_that_says_when_to_retry() {
        let mut app = TestApp::new().await;
        app.with_budget = true;
        app.fakes.budget.exhaust_for(Duration::from_millis(41_500));
        let uri = stats_uri(app.member.id());
        let (status, headers, body) = app.send(get(&uri, &app.member)).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(headers.get(header::RETRY_AFTER).unwrap(), "42");
        assert_eq!(body["code"], "request_budget_exhausted");
        assert!(!body["detail"].as_str().unwrap().contains("failed attempts"));
        assert_eq!(app.fakes.budget.spent_by(), [app.member.tenant_id()]);
    }

    #[actix_web::test]
    async fn without_a_budget_no_request_is_refused_for_it() {
        let app = TestApp::new().await;
        app.fakes.budget.exhaust_for(Duration::from_mins(1));
        let uri = stats_uri(app.member.id());
        let (status, _, _) = app.send(get(&uri, &app.member)).await;
        assert_eq!(status, StatusCode::OK);
        assert!(app.fakes.budget.spent_by().is_empty());
    }

    #[test]
    fn an_audit_cursor_decodes_to_the_id_it_was_encoded_from_and_no_other_text_does() {
        let id = Uuid::now_v7();
        assert_eq!(decode_cursor(&encode_cursor(id)), Ok(id));
        let hyphenated = id.to_string();
        for cursor in ["", "abc", "zz".repeat(16).as_str(), hyphenated.as_str()] {
            assert!(decode_cursor(cursor).is_err(), "{cursor:?}");
        }
    }
}
