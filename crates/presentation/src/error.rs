//! `ApiError`: every way a request can fail, and the one place that turns each into an
//! RFC 9457 `application/problem+json` response and a log line.

use std::collections::BTreeMap;
use std::fmt;

use actix_web::body::MessageBody;
use actix_web::dev::ServiceResponse;
use actix_web::http::{StatusCode, header};
use actix_web::middleware::ErrorHandlerResponse;
use actix_web::{HttpResponse, ResponseError};
use application::Error;
use application::ports::TokenRejection;
use serde::Serialize;
use utoipa::ToSchema;

pub(crate) const PROBLEM_JSON: &str = "application/problem+json";

/// One field of a request that was rejected, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub(crate) struct FieldError {
    /// Where the field is, as `email` or `items[0].name`; empty for the body as a whole.
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub(crate) fn new(field: impl Into<String>, message: impl fmt::Display) -> Self {
        Self {
            field: field.into(),
            message: message.to_string(),
        }
    }
}

/// Collects the fields that fail to parse into domain values, so one 422 names them
/// all instead of the first.
#[derive(Debug, Default)]
pub(crate) struct FieldErrors(Vec<FieldError>);

impl FieldErrors {
    /// The parsed value, or `None` after noting why `field` was refused.
    pub(crate) fn check<T, E: fmt::Display>(
        &mut self,
        field: &str,
        parsed: Result<T, E>,
    ) -> Option<T> {
        parsed
            .map_err(|error| self.0.push(FieldError::new(field, error)))
            .ok()
    }

    pub(crate) fn finish(self) -> Result<(), ApiError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(self.into())
        }
    }
}

impl From<FieldErrors> for ApiError {
    fn from(errors: FieldErrors) -> Self {
        Self::Validation(errors.0)
    }
}

/// An RFC 9457 problem document: the body of every error response.
#[derive(Debug, Serialize, ToSchema)]
#[schema(examples(json!({
    "type": "urn:keystone:problem:validation_failed",
    "title": "Validation failed",
    "status": 422,
    "detail": "invalid fields: email",
    "code": "validation_failed",
    "errors": [{"field": "email", "message": "is not a valid email address"}]
})))]
pub(crate) struct Problem {
    /// `urn:keystone:problem:<code>`.
    #[serde(rename = "type")]
    pub type_: String,
    /// A short summary of the problem type; the same for every occurrence.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong this time. Never carries internals for 5xx.
    pub detail: String,
    /// A stable code in `snake_case`, for clients to match on.
    pub code: String,
    /// Every rejected field (`validation_failed` and `assignee_invalid` only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// The state of each dependency (readiness only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checks: Option<BTreeMap<String, String>>,
}

impl Problem {
    pub(crate) fn new(status: StatusCode, code: &str, title: &str, detail: String) -> Self {
        Self {
            type_: format!("urn:keystone:problem:{code}"),
            title: title.to_owned(),
            status: status.as_u16(),
            detail,
            code: code.to_owned(),
            errors: Vec::new(),
            checks: None,
        }
    }

    /// The response carrying this problem, without extra headers.
    pub(crate) fn into_response(self) -> HttpResponse {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        HttpResponse::build(status)
            .content_type(PROBLEM_JSON)
            .body(serde_json::to_string(&self).unwrap_or_default())
    }
}

/// Why a request failed: a use case's error, or input the handlers never got to see.
#[derive(Debug)]
pub(crate) enum ApiError {
    Application(Error),
    /// The body is not JSON (or could not be read completely).
    MalformedJson(String),
    /// A body not declared as JSON (`application/json` or `application/*+json`).
    UnsupportedMediaType,
    PayloadTooLarge,
    /// A path segment does not parse (a non-UUID id).
    InvalidPath(String),
    /// Fields that are missing, unknown, mistyped or break a rule.
    Validation(Vec<FieldError>),
    RouteNotFound,
    MethodNotAllowed,
}

impl From<Error> for ApiError {
    fn from(error: Error) -> Self {
        Self::Application(error)
    }
}

/// How a refused request is told: its status, its stable code and its title.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub status: StatusCode,
    pub code: &'static str,
    pub title: &'static str,
}

impl Refusal {
    /// A rule of an aggregate refused the change: 409 with the rule's own code.
    pub(crate) const fn conflict(code: &'static str, title: &'static str) -> Self {
        Self {
            status: StatusCode::CONFLICT,
            code,
            title,
        }
    }
}

impl ApiError {
    /// Status, stable code and title of each error: the whole HTTP error vocabulary, in
    /// one match (docs/adr/0004), except the rules of each aggregate, which its own
    /// module tells (`users::refusal`, `tasks::refusal`).
    fn refusal(&self) -> Refusal {
        let (status, code, title) = match self {
            Self::Application(Error::User(rule)) => return crate::users::refusal(rule),
            Self::Application(Error::Task(rule)) => return crate::tasks::refusal(rule),
            _ => self.kind(),
        };
        Refusal {
            status,
            code,
            title,
        }
    }

    fn kind(&self) -> (StatusCode, &'static str, &'static str) {
        use StatusCode as S;
        match self {
            Self::Application(error) => application_kind(error),
            Self::RouteNotFound => (S::NOT_FOUND, "not_found", "Not found"),
            Self::MalformedJson(_) => (S::BAD_REQUEST, "malformed_json", "Malformed JSON"),
            Self::UnsupportedMediaType => (
                S::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "Unsupported media type",
            ),
            Self::PayloadTooLarge => (
                S::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "Payload too large",
            ),
            Self::InvalidPath(_) => (S::BAD_REQUEST, "invalid_path", "Invalid path parameter"),
            Self::Validation(_) => (
                S::UNPROCESSABLE_ENTITY,
                "validation_failed",
                "Validation failed",
            ),
            Self::MethodNotAllowed => (
                S::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "Method not allowed",
            ),
        }
    }

    fn problem(&self) -> Problem {
        let Refusal {
            status,
            code,
            title,
        } = self.refusal();
        // 5xx details are fixed sentences: the cause goes to the log, never to the client.
        let detail = match status {
            StatusCode::SERVICE_UNAVAILABLE => {
                "A dependency of the service is unavailable; try again later.".to_owned()
            }
            status if status.is_server_error() => "An unexpected error occurred.".to_owned(),
            _ => self.to_string(),
        };
        let mut problem = Problem::new(status, code, title, detail);
        match self {
            Self::Validation(errors) => problem.errors.clone_from(errors),
            Self::Application(error @ Error::AssigneeInvalid) => {
                problem.errors = vec![FieldError::new("assignee_id", error)];
            }
            _ => {}
        }
        problem
    }

    /// Logs the error once, at the edge: 5xx at error level with the whole cause chain,
    /// 4xx at info with the client-facing message (which never holds a secret: field
    /// errors are named, not echoed).
    pub(crate) fn log(&self) {
        let Refusal { status, code, .. } = self.refusal();
        if status.is_server_error() {
            tracing::error!(status = status.as_u16(), code, error = %Chain(self), "request failed");
        } else {
            tracing::info!(status = status.as_u16(), code, "request refused: {self}");
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Application(error) => error.fmt(f),
            Self::MalformedJson(reason) => write!(f, "the body is not valid JSON: {reason}"),
            Self::UnsupportedMediaType => {
                f.write_str("the body must be sent as application/json or another +json type")
            }
            Self::PayloadTooLarge => write!(
                f,
                "the body is larger than {} KiB",
                crate::extract::MAX_BODY_BYTES / 1024
            ),
            Self::InvalidPath(reason) => write!(f, "the path is not valid: {reason}"),
            Self::Validation(errors) => {
                let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
                write!(f, "invalid fields: {}", fields.join(", "))
            }
            Self::RouteNotFound => f.write_str("there is nothing at this path"),
            Self::MethodNotAllowed => f.write_str("this path does not support this method"),
        }
    }
}

impl std::error::Error for ApiError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            // Display already shows the application error itself; continue below it.
            Self::Application(error) => error.source(),
            _ => None,
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.refusal().status
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = self.problem().into_response();
        let headers = response.headers_mut();
        match self {
            Self::Application(Error::InvalidAccessToken(reason)) => {
                headers.insert(header::WWW_AUTHENTICATE, bearer_challenge(*reason));
            }
            Self::Application(
                Error::Throttled { retry_after_secs }
                | Error::RequestBudgetExhausted { retry_after_secs }
                | Error::Overloaded { retry_after_secs },
            ) => {
                headers.insert(header::RETRY_AFTER, (*retry_after_secs).into());
            }
            // The client learns the version to reload, or to retry against.
            Self::Application(Error::PreconditionFailed { current_version }) => {
                headers.insert(header::ETAG, crate::conditional::etag(*current_version));
            }
            _ => {}
        }
        response
    }
}

/// RFC 6750 §3: no error code when no token was sent at all.
fn bearer_challenge(reason: TokenRejection) -> header::HeaderValue {
    let challenge = match reason {
        TokenRejection::Missing => "Bearer".to_owned(),
        reason => format!(r#"Bearer error="invalid_token", error_description="{reason}""#),
    };
    header::HeaderValue::from_str(&challenge).unwrap_or(header::HeaderValue::from_static("Bearer"))
}

/// Formats an error and its sources as `outer: cause: root cause`.
struct Chain<'a>(&'a dyn std::error::Error);

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(cause) = source {
            write!(f, ": {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}

/// The app's default service: no route matches the path.
pub(crate) async fn route_not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::RouteNotFound)
}

/// Turns actix's empty 405 (a path that exists, a method it lacks) into a problem,
/// keeping the `Allow` header the router computed. The error rides on the response so
/// that the request span logs it like every other refusal.
pub(crate) fn method_not_allowed<B: MessageBody>(
    response: ServiceResponse<B>,
) -> ErrorHandlerResponse<B> {
    let (request, response) = response.into_parts();
    let mut problem = HttpResponse::from_error(ApiError::MethodNotAllowed);
    if let Some(allow) = response.headers().get(header::ALLOW) {
        problem.headers_mut().insert(header::ALLOW, allow.clone());
    }
    ErrorHandlerResponse::Response(ServiceResponse::new(request, problem).map_into_right_body())
}

/// The status, code and title of a refusal by the application.
fn application_kind(error: &Error) -> (StatusCode, &'static str, &'static str) {
    use StatusCode as S;
    match error {
        Error::NotFound(_) => (S::NOT_FOUND, "not_found", "Not found"),
        Error::EmailTaken => (
            S::CONFLICT,
            "email_taken",
            "Email address already registered",
        ),
        Error::ConcurrentModification => (
            S::CONFLICT,
            "concurrent_modification",
            "Concurrent modification",
        ),
        Error::Forbidden => (S::FORBIDDEN, "forbidden", "Forbidden"),
        Error::InvalidCredentials => (
            S::UNAUTHORIZED,
            "invalid_credentials",
            "Invalid credentials",
        ),
        // Not 401: the caller is signed in, and stays so.
        Error::WrongPassword => (S::UNPROCESSABLE_ENTITY, "wrong_password", "Wrong password"),
        Error::PasswordRequired => (
            S::UNPROCESSABLE_ENTITY,
            "current_password_required",
            "Current password required",
        ),
        Error::InvalidRefreshToken => (
            S::UNAUTHORIZED,
            "invalid_refresh_token",
            "Invalid refresh token",
        ),
        Error::InvalidAccessToken(_) => (S::UNAUTHORIZED, "invalid_token", "Invalid access token"),
        Error::Throttled { .. } => (
            S::TOO_MANY_REQUESTS,
            "too_many_requests",
            "Too many requests",
        ),
        Error::RequestBudgetExhausted { .. } => (
            S::TOO_MANY_REQUESTS,
            "request_budget_exhausted",
            "Request budget exhausted",
        ),
        Error::AssigneeInvalid => (
            S::UNPROCESSABLE_ENTITY,
            "assignee_invalid",
            "Invalid assignee",
        ),
        Error::PreconditionFailed { .. } => (
            S::PRECONDITION_FAILED,
            "precondition_failed",
            "Precondition failed",
        ),
        Error::IdempotencyKeyReused => (
            S::UNPROCESSABLE_ENTITY,
            "idempotency_key_reused",
            "Idempotency key reused",
        ),
        Error::IdempotencyInProgress => (
            S::CONFLICT,
            "idempotency_request_in_progress",
            "Request in progress",
        ),
        Error::Unavailable(_) | Error::Overloaded { .. } => (
            S::SERVICE_UNAVAILABLE,
            "service_unavailable",
            "Service unavailable",
        ),
        Error::Unexpected(_) => (
            S::INTERNAL_SERVER_ERROR,
            "internal_error",
            "Internal server error",
        ),
        // Told by the aggregates' modules, in `refusal`.
        Error::User(_) | Error::Task(_) => (S::CONFLICT, "conflict", "Conflict"),
    }
}

#[cfg(test)]
mod tests {
    use actix_web::body::to_bytes;
    use domain::{TaskError, TaskStatus, UserError};
    use serde_json::Value;

    use super::*;

    fn unexpected(message: &str) -> Error {
        Error::Unexpected(std::io::Error::other(message.to_owned()).into())
    }

    async fn body_of(response: HttpResponse) -> Value {
        let bytes = to_bytes(response.into_body()).await.unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[actix_web::test]
    async fn every_application_error_maps_to_its_status_and_code() {
        let cases: Vec<(Error, u16, &str)> = vec![
            (Error::NotFound("user"), 404, "not_found"),
            (Error::EmailTaken, 409, "email_taken"),
            (
                Error::ConcurrentModification,
                409,
                "concurrent_modification",
            ),
            (Error::Forbidden, 403, "forbidden"),
            (Error::InvalidCredentials, 401, "invalid_credentials"),
            (Error::InvalidRefreshToken, 401, "invalid_refresh_token"),
            (
                Error::InvalidAccessToken(TokenRejection::Expired),
                401,
                "invalid_token",
            ),
            (
                Error::Throttled {
                    retry_after_secs: 7,
                },
                429,
                "too_many_requests",
            ),
            (
                Error::RequestBudgetExhausted {
                    retry_after_secs: 7,
                },
                429,
                "request_budget_exhausted",
            ),
            (
                Error::User(UserError::CannotDeactivateSelf),
                409,
                "cannot_deactivate_self",
            ),
            (
                Error::User(UserError::CannotDemoteSelf),
                409,
                "cannot_demote_self",
            ),
            (
                Error::User(UserError::CannotDeleteSelf),
                409,
                "cannot_delete_self",
            ),
            (
                Error::User(UserError::CannotActivateSelf),
                409,
                "cannot_activate_self",
            ),
            (
                Error::User(UserError::CannotRestoreSelf),
                409,
                "cannot_restore_self",
            ),
            (
                Error::User(UserError::LastActiveAdmin),
                409,
                "last_active_admin",
            ),
            (Error::User(UserError::Deleted), 409, "user_deleted"),
            (Error::User(UserError::NotDeleted), 409, "user_not_deleted"),
            (
                Error::Unavailable(std::io::Error::other("down").into()),
                503,
                "service_unavailable",
            ),
            (unexpected("boom"), 500, "internal_error"),
            (Error::NotFound("task"), 404, "not_found"),
            (Error::NotFound("checklist item"), 404, "not_found"),
            (
                Error::Task(TaskError::InvalidTransition {
                    from: TaskStatus::Todo,
                    to: TaskStatus::Done,
                }),
                409,
                "invalid_transition",
            ),
            (
                Error::Task(TaskError::ChecklistIncomplete),
                409,
                "checklist_incomplete",
            ),
            (
                Error::Task(TaskError::DoneIsReadOnly),
                409,
                "task_done_is_read_only",
            ),
            (Error::Task(TaskError::ChecklistFull), 409, "checklist_full"),
            (Error::Task(TaskError::NotDeleted), 409, "task_not_deleted"),
            (Error::AssigneeInvalid, 422, "assignee_invalid"),
            (
                Error::PreconditionFailed { current_version: 4 },
                412,
                "precondition_failed",
            ),
            (Error::IdempotencyKeyReused, 422, "idempotency_key_reused"),
            (
                Error::IdempotencyInProgress,
                409,
                "idempotency_request_in_progress",
            ),
        ];
        for (error, status, code) in cases {
            let response = ApiError::from(error).error_response();
            assert_eq!(response.status().as_u16(), status, "{code}");
            assert_eq!(
                response.headers().get(header::CONTENT_TYPE).unwrap(),
                PROBLEM_JSON,
                "{code}"
            );
            let body = body_of(response).await;
            assert_eq!(body["code"], code);
            assert_eq!(body["status"], status);
            assert_eq!(body["type"], format!("urn:keystone:problem:{code}"));
            assert!(
                body["title"].as_str().is_some_and(|t| !t.is_empty()),
                "{code}"
            );
        }
    }

    #[test]
    fn task_rules_that_use_cases_translate_keep_their_meaning_if_they_arrive_untranslated() {
        for rule in [
            TaskError::NotAllowed,
            TaskError::Deleted,
            TaskError::ChecklistItemNotFound,
        ] {
            let translated = ApiError::from(Error::from(rule.clone())).refusal();
            assert_eq!(ApiError::from(Error::Task(rule)).refusal(), translated);
        }
    }

    #[test]
    fn a_failed_precondition_names_the_current_version_as_etag() {
        let response =
            ApiError::from(Error::PreconditionFailed { current_version: 7 }).error_response();
        assert_eq!(response.headers().get(header::ETAG).unwrap(), "\"7\"");
    }

    #[actix_web::test]
    async fn an_invalid_assignee_is_reported_on_the_assignee_id_field() {
        let body = body_of(ApiError::from(Error::AssigneeInvalid).error_response()).await;
        assert_eq!(body["errors"][0]["field"], "assignee_id");
        assert_eq!(
            body["errors"][0]["message"],
            "the assignee must be an active user of the tenant"
        );
    }

    #[actix_web::test]
    async fn a_server_error_body_carries_no_internals() {
        let error = Error::Unexpected(
            std::io::Error::other("connect to postgres://admin:hunter2@db failed").into(),
        );
        let response = ApiError::from(error).error_response();
        let text = body_of(response).await.to_string();
        assert!(!text.contains("hunter2"), "{text}");
        assert!(!text.contains("postgres"), "{text}");

        let error = Error::Unavailable(std::io::Error::other("pool timed out on db-7").into());
        let text = body_of(ApiError::from(error).error_response())
            .await
            .to_string();
        assert!(!text.contains("db-7"), "{text}");
    }

    #[test]
    fn the_log_line_of_a_server_error_holds_the_whole_cause_chain() {
        let inner = std::io::Error::other("connection refused");
        let error = ApiError::from(Error::Unavailable(
            std::io::Error::new(std::io::ErrorKind::TimedOut, inner).into(),
        ));
        assert_eq!(
            Chain(&error).to_string(),
            "a dependency is unavailable: connection refused"
        );
    }

    #[test]
    fn an_invalid_token_is_challenged_with_its_reason() {
        let response =
            ApiError::from(Error::InvalidAccessToken(TokenRejection::Expired)).error_response();
        assert_eq!(
            response.headers().get(header::WWW_AUTHENTICATE).unwrap(),
            r#"Bearer error="invalid_token", error_description="the token has expired""#
        );
    }

    #[test]
    fn a_missing_token_is_challenged_without_an_error_code() {
        let response =
            ApiError::from(Error::InvalidAccessToken(TokenRejection::Missing)).error_response();
        assert_eq!(
            response.headers().get(header::WWW_AUTHENTICATE).unwrap(),
            "Bearer"
        );
    }

    #[test]
    fn a_throttled_sign_in_says_when_to_retry() {
        let response = ApiError::from(Error::Throttled {
            retry_after_secs: 42,
        })
        .error_response();
        assert_eq!(response.headers().get(header::RETRY_AFTER).unwrap(), "42");
    }

    #[test]
    fn a_spent_request_budget_says_when_to_retry() {
        let response = ApiError::from(Error::RequestBudgetExhausted {
            retry_after_secs: 9,
        })
        .error_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers().get(header::RETRY_AFTER).unwrap(), "9");
    }

    #[actix_web::test]
    async fn a_validation_error_lists_every_field() {
        let error = ApiError::Validation(vec![
            FieldError::new("email", "is not a valid email address"),
            FieldError::new("username", "must be 3 to 32 characters long"),
        ]);
        let response = error.error_response();
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let body = body_of(response).await;
        assert_eq!(body["code"], "validation_failed");
        assert_eq!(body["detail"], "invalid fields: email, username");
        assert_eq!(body["errors"][1]["field"], "username");
        assert_eq!(
            body["errors"][1]["message"],
            "must be 3 to 32 characters long"
        );
    }

    #[actix_web::test]
    async fn a_client_error_explains_itself_in_the_detail() {
        let body = body_of(ApiError::from(Error::EmailTaken).error_response()).await;
        assert_eq!(body["detail"], "the email address is already registered");
        assert!(body.get("errors").is_none());
    }

    #[test]
    fn the_log_line_of_a_refused_request_names_fields_but_never_echoes_their_values() {
        // serde's messages quote what was sent; they go back to the sender, not the log.
        let error = ApiError::Validation(vec![FieldError::new(
            "password",
            r#"invalid type: string "hunter2", expected a number"#,
        )]);
        assert_eq!(error.to_string(), "invalid fields: password");
    }

    #[test]
    fn a_405_keeps_its_allow_header_and_carries_the_error_for_the_request_log() {
        let routed = actix_web::test::TestRequest::default()
            .to_srv_request()
            .into_response(
                HttpResponse::MethodNotAllowed()
                    .insert_header((header::ALLOW, "GET, POST"))
                    .finish(),
            );
        let ErrorHandlerResponse::Response(answer) = method_not_allowed(routed) else {
            panic!("the problem is built synchronously");
        };
        assert_eq!(answer.headers().get(header::ALLOW).unwrap(), "GET, POST");
        let error = answer.response().error().expect("the error is attached");
        assert!(matches!(
            error.as_error::<ApiError>(),
            Some(ApiError::MethodNotAllowed)
        ));
    }
}
