//! Request ids and the request span. Every request runs inside an `http_request` span
//! carrying its id, taken from a sane `X-Request-Id` header or made up (a UUID v7); the
//! response echoes the id; and a failed request is logged once, when it ends.

use actix_web::HttpMessage;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::error::InternalError;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use tracing::Span;
use tracing_actix_web::RootSpanBuilder;

use crate::error::ApiError;

pub(crate) const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The id of one request, as logged and as echoed in `X-Request-Id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RequestId(String);

impl RequestId {
    const MAX_LEN: usize = 64;

    /// The caller's id when it is 1 to 64 characters of `[A-Za-z0-9._-]`, so it cannot
    /// forge log lines or bloat them; otherwise a new one.
    pub(crate) fn from_header(value: Option<&HeaderValue>) -> Self {
        value
            .and_then(|value| value.to_str().ok())
            .filter(|candidate| Self::is_sane(candidate))
            .map_or_else(
                || Self(uuid::Uuid::now_v7().to_string()),
                |candidate| Self(candidate.to_owned()),
            )
    }

    fn is_sane(candidate: &str) -> bool {
        (1..=Self::MAX_LEN).contains(&candidate.len())
            && candidate
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

/// Middleware: gives the request its id before the span is opened, and puts the id on
/// the response. Handlers' and extractors' errors are responses by the time they get
/// here; a middleware further in may still fail instead of answering (actix-cors does),
/// and the response actix makes of that error later carries the id too.
pub(crate) async fn request_id(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let id = RequestId::from_header(request.headers().get(X_REQUEST_ID));
    // Sane and generated ids are visible ASCII, so this cannot fail.
    let header = HeaderValue::from_str(id.as_str()).ok();
    request.extensions_mut().insert(id);
    let outcome = next.call(request).await;
    let Some(header) = header else {
        return outcome;
    };
    match outcome {
        Ok(mut response) => {
            response.headers_mut().insert(X_REQUEST_ID, header);
            Ok(response)
        }
        Err(error) => {
            let mut response = error.error_response();
            response.headers_mut().insert(X_REQUEST_ID, header);
            Err(InternalError::from_response(error, response).into())
        }
    }
}

/// The root span of every request, for `tracing_actix_web::TracingLogger`. Only the
/// route pattern is recorded, never the path or query, which may carry ids or emails.
pub(crate) struct RequestSpan;

impl RootSpanBuilder for RequestSpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        let request_id = request
            .extensions()
            .get::<RequestId>()
            .map(|id| id.as_str().to_owned())
            .unwrap_or_default();
        tracing::info_span!(
            "http_request",
            method = %request.method(),
            route = request.match_pattern().as_deref().unwrap_or("(none)"),
            request_id,
            status = tracing::field::Empty,
        )
    }

    fn on_request_end<B: MessageBody>(
        span: Span,
        outcome: &Result<ServiceResponse<B>, actix_web::Error>,
    ) {
        let (status, error) = match outcome {
            Ok(response) => (response.status(), response.response().error()),
            Err(error) => (error.as_response_error().status_code(), Some(error)),
        };
        span.record("status", status.as_u16());
        let Some(error) = error else {
            return;
        };
        match error.as_error::<ApiError>() {
            Some(error) => error.log(),
            // Actix's own errors (a handler with an unconfigured extractor, say).
            None if status.is_server_error() => {
                tracing::error!(status = status.as_u16(), error = %error, "request failed");
            }
            None => tracing::info!(status = status.as_u16(), "request refused: {error}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use actix_web::dev::Service as _;
    use actix_web::http::StatusCode;
    use actix_web::middleware::from_fn;
    use actix_web::test::{TestRequest, call_service, init_service, read_body};
    use actix_web::{App, HttpResponse, web};

    use super::*;

    fn id_from(value: &'static str) -> String {
        RequestId::from_header(Some(&HeaderValue::from_static(value))).0
    }

    fn is_generated(id: &str) -> bool {
        uuid::Uuid::parse_str(id).is_ok_and(|uuid| uuid.get_version_num() == 7)
    }

    #[test]
    fn a_sane_request_id_is_kept() {
        assert_eq!(id_from("req-42_a.b"), "req-42_a.b");
        let longest = "a".repeat(64);
        let kept = RequestId::from_header(Some(&HeaderValue::from_str(&longest).unwrap())).0;
        assert_eq!(kept, longest);
    }

    #[test]
    fn an_unsafe_or_oversized_request_id_is_replaced_by_a_uuid_v7() {
        for value in ["", "has space", "new\tline", "quote\"", "ünicode", "a/b"] {
            let header = HeaderValue::from_bytes(value.as_bytes()).unwrap();
            assert!(
                is_generated(&RequestId::from_header(Some(&header)).0),
                "{value:?}"
            );
        }
        let oversized = HeaderValue::from_str(&"a".repeat(65)).unwrap();
        assert!(is_generated(&RequestId::from_header(Some(&oversized)).0));
        assert!(is_generated(&RequestId::from_header(None).0));
    }

    async fn echo_id(request: actix_web::HttpRequest) -> HttpResponse {
        let id = request
            .extensions()
            .get::<RequestId>()
            .map(|id| id.0.clone());
        HttpResponse::Ok().body(id.unwrap_or_default())
    }

    fn from_the_caller() -> TestRequest {
        TestRequest::get()
            .uri("/")
            .insert_header((X_REQUEST_ID, "from-the-caller"))
    }

    #[actix_web::test]
    async fn the_response_carries_the_id_the_handlers_saw() {
        let app = init_service(
            App::new()
                .route("/", web::get().to(echo_id))
                .wrap(from_fn(request_id)),
        )
        .await;
        let response = call_service(&app, from_the_caller().to_request()).await;
        assert_eq!(
            response.headers().get(X_REQUEST_ID).unwrap(),
            "from-the-caller"
        );
        assert_eq!(read_body(response).await, "from-the-caller");

        let response = call_service(&app, TestRequest::get().uri("/").to_request()).await;
        let generated = response
            .headers()
            .get(X_REQUEST_ID)
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        assert!(is_generated(&generated));
        assert_eq!(read_body(response).await, generated);
    }

    #[actix_web::test]
    async fn a_middleware_that_fails_instead_of_answering_still_gets_the_id() {
        let app = init_service(
            App::new()
                .route("/", web::get().to(HttpResponse::Ok))
                .wrap_fn(|_, _| async { Err::<ServiceResponse, _>(ApiError::RouteNotFound.into()) })
                .wrap(from_fn(request_id)),
        )
        .await;
        let Err(error) = app.call(from_the_caller().to_request()).await else {
            panic!("the inner middleware fails");
        };
        // What actix's dispatcher sends for an error that reaches it.
        let response = error.error_response();
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert_eq!(
            response.headers().get(X_REQUEST_ID).unwrap(),
            "from-the-caller"
        );
    }
}
