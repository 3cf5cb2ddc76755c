//! Request ids, trace ids and the request span. Every request runs inside an
//! `http_request` span carrying its id, taken from a sane `X-Request-Id` header or made
//! up (a UUID v7), and its W3C trace id; the response carries both (`X-Request-Id`,
//! `X-Trace-Id`), errors included; and a failed request is logged once, when it ends.
//!
//! The trace id is the caller's when the request carries a trace context the globally
//! installed propagator reads (the server installs W3C `traceparent`), so the request's
//! logs and spans join the caller's trace. With an OpenTelemetry layer installed it is
//! the id of the span that layer exports; without one, a trace id is still made, so
//! logs can be correlated the same way whether traces are exported or not.

use actix_web::HttpMessage;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::error::InternalError;
use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use opentelemetry::propagation::Extractor;
use opentelemetry::trace::{TraceContextExt, TraceId};
use tracing::Span;
use tracing_actix_web::RootSpanBuilder;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::error::ApiError;

pub(crate) const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
pub(crate) const X_TRACE_ID: HeaderName = HeaderName::from_static("x-trace-id");

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

/// The W3C trace id of one request, as logged and as sent back in `X-Trace-Id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RequestTraceId(TraceId);

impl RequestTraceId {
    /// Joins the caller's trace, when the headers carry one, and says which trace the
    /// request is in. The request span is a root: it continues the caller's trace or
    /// starts a new one, never the trace of whatever span happens to be current.
    fn join(span: &Span, headers: &HeaderMap) -> Self {
        let caller = opentelemetry::global::get_text_map_propagator(|propagator| {
            propagator.extract_with_context(&opentelemetry::Context::new(), &Carrier(headers))
        });
        let caller_trace = caller.span().span_context().trace_id();
        // Fails, as it may, when no OpenTelemetry layer is installed: then the span has
        // no trace of its own and the caller's, or a new one, is used for the logs.
        let _ = span.set_parent(caller);
        let own_trace = span.context().span().span_context().trace_id();
        [own_trace, caller_trace]
            .into_iter()
            .find(|id| *id != TraceId::INVALID)
            // Only logs see this one, no sampler, so unique (a UUID v7) is enough.
            .map_or_else(|| Self(uuid::Uuid::now_v7().as_u128().into()), Self)
    }
}

/// Request headers, as the OpenTelemetry propagator reads them.
struct Carrier<'a>(&'a HeaderMap);

impl Extractor for Carrier<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(HeaderName::as_str).collect()
    }
}

/// Middleware, just inside `TracingLogger`: puts the request id and the trace id that
/// the request span gave the request on its response. Handlers' and extractors' errors
/// are responses by the time they get here; a middleware further in may still fail
/// instead of answering (actix-cors does), and the response actix makes of that error
/// later carries the ids too.
pub(crate) async fn correlation_ids(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let ids = id_headers(&request);
    match next.call(request).await {
        Ok(mut response) => {
            add(response.headers_mut(), ids);
            Ok(response)
        }
        Err(error) => {
            let mut response = error.error_response();
            add(response.headers_mut(), ids);
            Err(InternalError::from_response(error, response).into())
        }
    }
}

/// `X-Request-Id` and `X-Trace-Id`, for the ids the request span recorded. Sane and
/// generated request ids and hex trace ids are visible ASCII, so neither is ever lost.
fn id_headers(request: &ServiceRequest) -> Vec<(HeaderName, HeaderValue)> {
    let extensions = request.extensions();
    let request_id = extensions
        .get::<RequestId>()
        .and_then(|id| HeaderValue::from_str(id.as_str()).ok())
        .map(|value| (X_REQUEST_ID, value));
    let trace_id = extensions
        .get::<RequestTraceId>()
        .and_then(|id| HeaderValue::from_str(&id.0.to_string()).ok())
        .map(|value| (X_TRACE_ID, value));
    request_id.into_iter().chain(trace_id).collect()
}

fn add(headers: &mut HeaderMap, ids: Vec<(HeaderName, HeaderValue)>) {
    for (name, value) in ids {
        headers.insert(name, value);
    }
}

/// The root span of every request, for `tracing_actix_web::TracingLogger`. It gives the
/// request its ids, request id and trace id, and leaves them in the request's
/// extensions for the handlers and for `correlation_ids`. Only the route pattern is
/// recorded, never the path or query, which may carry ids or emails. `otel.name` and
/// `otel.kind` name the exported span the way OpenTelemetry's HTTP conventions do
/// (`GET /api/v1/tasks/{id}`, a server span).
pub(crate) struct RequestSpan;

impl RootSpanBuilder for RequestSpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        let request_id = RequestId::from_header(request.headers().get(X_REQUEST_ID));
        let route = request.match_pattern();
        let span_name = match &route {
            Some(route) => format!("{} {route}", request.method()),
            None => request.method().to_string(),
        };
        let span = tracing::info_span!(
            "http_request",
            otel.name = span_name,
            otel.kind = "server",
            method = %request.method(),
            route = route.as_deref().unwrap_or("(none)"),
            request_id = request_id.as_str(),
            client = %crate::client::ClientAddress::of(request.request()).0,
            trace_id = tracing::field::Empty,
            status = tracing::field::Empty,
        );
        let trace_id = RequestTraceId::join(&span, request.headers());
        span.record("trace_id", tracing::field::display(trace_id.0));
        let mut extensions = request.extensions_mut();
        extensions.insert(request_id);
        extensions.insert(trace_id);
        span
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
    use tracing_actix_web::TracingLogger;

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
                .wrap(from_fn(correlation_ids))
                .wrap(TracingLogger::<RequestSpan>::new()),
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
    async fn a_middleware_that_fails_instead_of_answering_still_gets_the_ids() {
        w3c_propagator();
        let app = init_service(
            App::new()
                .route("/", web::get().to(HttpResponse::Ok))
                .wrap_fn(|_, _| async { Err::<ServiceResponse, _>(ApiError::RouteNotFound.into()) })
                .wrap(from_fn(correlation_ids))
                .wrap(TracingLogger::<RequestSpan>::new()),
        )
        .await;
        let request = from_the_caller().insert_header(("traceparent", TRACEPARENT));
        let Err(error) = app.call(request.to_request()).await else {
            panic!("the inner middleware fails");
        };
        // What actix's dispatcher sends for an error that reaches it.
        let response = error.error_response();
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert_eq!(
            response.headers().get(X_REQUEST_ID).unwrap(),
            "from-the-caller"
        );
        assert_eq!(response.headers().get(X_TRACE_ID).unwrap(), CALLER_TRACE);
    }

    const CALLER_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
    const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    /// Installs what the server installs; the propagator is global, so this is too.
    fn w3c_propagator() {
        opentelemetry::global::set_text_map_propagator(
            opentelemetry_sdk::propagation::TraceContextPropagator::new(),
        );
    }

    async fn trace_id_of(request: TestRequest) -> (StatusCode, String) {
        let app = init_service(crate::around(|config| {
            config.service(web::resource("/").get(HttpResponse::Ok));
        }))
        .await;
        let response = call_service(&app, request.to_request()).await;
        let trace_id = response
            .headers()
            .get(X_TRACE_ID)
            .map(|id| id.to_str().expect("a trace id is visible ASCII").to_owned());
        (response.status(), trace_id.expect("an X-Trace-Id header"))
    }

    fn is_trace_id(id: &str) -> bool {
        id.len() == 32
            && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
            && TraceId::from_hex(id).is_ok_and(|id| id != TraceId::INVALID)
    }

    #[actix_web::test]
    async fn a_caller_traceparent_gives_the_request_its_trace_id_errors_included() {
        w3c_propagator();
        for uri in ["/", "/nowhere"] {
            let request = TestRequest::get()
                .uri(uri)
                .insert_header(("traceparent", TRACEPARENT));
            let (status, trace_id) = trace_id_of(request).await;
            assert_eq!(trace_id, CALLER_TRACE, "{uri}: {status}");
        }
    }

    #[actix_web::test]
    async fn without_a_usable_traceparent_each_request_gets_a_new_trace_id() {
        w3c_propagator();
        let (_, first) = trace_id_of(TestRequest::get().uri("/")).await;
        let (status, second) = trace_id_of(TestRequest::get().uri("/nowhere")).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(is_trace_id(&first), "{first}");
        assert!(is_trace_id(&second), "{second}");
        assert_ne!(first, second);
        // An all-zero trace id is invalid: W3C says to start a new trace.
        let zero = "00-00000000000000000000000000000000-00f067aa0ba902b7-01";
        let (_, fresh) = trace_id_of(
            TestRequest::get()
                .uri("/")
                .insert_header(("traceparent", zero)),
        )
        .await;
        assert!(is_trace_id(&fresh), "{fresh}");
    }

    #[actix_web::test]
    async fn the_logs_of_a_request_carry_the_trace_id_of_its_response() {
        w3c_propagator();
        let captured = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || Writer(writer.clone()))
            .finish();
        // This test's thread only: the runtime of an actix test runs on it.
        let _default = tracing::subscriber::set_default(subscriber);
        let app = init_service(crate::around(|config| {
            config.service(web::resource("/").get(|| async {
                tracing::info!("handled");
                HttpResponse::Ok().finish()
            }));
        }))
        .await;
        // `tracing` caches per call site whether anyone listens. Other tests, on other
        // threads, may have registered these call sites before this subscriber existed;
        // one request makes sure they are registered, then the cache is rebuilt.
        call_service(&app, TestRequest::get().uri("/").to_request()).await;
        tracing::callsite::rebuild_interest_cache();
        captured.lock().unwrap().clear();
        let response = call_service(&app, TestRequest::get().uri("/").to_request()).await;
        let trace_id = response
            .headers()
            .get(X_TRACE_ID)
            .unwrap()
            .to_str()
            .unwrap();
        let logs = String::from_utf8(captured.lock().unwrap().clone()).unwrap();
        let line = logs.lines().find(|line| line.contains("handled")).unwrap();
        assert!(line.contains(&format!("trace_id={trace_id}")), "{line}");
    }

    /// Appends what a subscriber writes to a shared buffer.
    struct Writer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Writer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
}
