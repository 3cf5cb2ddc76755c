//! Traces: with `telemetry.otlp_endpoint` set, a request's span reaches an OTLP/HTTP
//! collector, in its caller's trace, and the response names that trace in `X-Trace-Id`.
//!
//! The collector is a small actix server that decodes what it receives. Telemetry is
//! global to a process, so the first of these tests installs it, once, pointed at a
//! collector that lives as long as the process. Other tests' spans reach it too; each
//! test looks only for the trace it made.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use actix_web::{App, HttpResponse, HttpServer, web};
use keystone_tests::{TestApp, spawn_app};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use prost::Message;
use server::settings::{Environment, Settings};
use server::telemetry::Telemetry;

/// The batch exporter sends every 5 seconds; this leaves room for a slow machine.
const ARRIVAL_TIMEOUT: Duration = Duration::from_secs(30);
const CALLER_SPAN: &str = "00f067aa0ba902b7";

/// Every export the collector received, in order of arrival.
type Store = Arc<Mutex<Vec<ExportTraceServiceRequest>>>;

struct Collector {
    received: Store,
    _telemetry: Telemetry,
}

/// Starts the collector on a thread of its own and installs telemetry exporting to it,
/// the first time it is called in this process.
fn collector() -> &'static Collector {
    static COLLECTOR: OnceLock<Collector> = OnceLock::new();
    COLLECTOR.get_or_init(|| {
        let received = Store::default();
        let port = serve_otlp(received.clone());
        let mut settings = Settings {
            environment: Environment::Test,
            ..Settings::default()
        };
        settings.telemetry.otlp_endpoint = Some(format!("http://127.0.0.1:{port}"));
        // The log layer stays quiet; the trace layer has its own filter.
        "off".clone_into(&mut settings.log.filter);
        let telemetry = server::telemetry::init(&settings).expect("telemetry starts");
        assert!(telemetry.exports_traces());
        Collector {
            received,
            _telemetry: telemetry,
        }
    })
}

/// An OTLP/HTTP receiver of traces on a free local port: protobuf in, 200 out.
fn serve_otlp(received: Store) -> u16 {
    let (port_sender, port) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let server = HttpServer::new(move || {
                App::new()
                    .app_data(web::Data::new(received.clone()))
                    .app_data(web::PayloadConfig::new(16 << 20))
                    .route("/v1/traces", web::post().to(receive))
            })
            .workers(1)
            // Longer than the exporter's 5-second interval, as real collectors' idle
            // timeouts are: with actix's 5-second default, the server closing a pooled
            // connection races the next export, which then fails.
            .keep_alive(Duration::from_mins(1))
            .bind(("127.0.0.1", 0))
            .expect("the collector binds");
            port_sender
                .send(server.addrs()[0].port())
                .expect("the test waits for the port");
            server.run().await
        })
    });
    port.recv().expect("the collector starts")
}

async fn receive(
    request: actix_web::HttpRequest,
    body: web::Bytes,
    store: web::Data<Store>,
) -> HttpResponse {
    let content_type = request.headers().get("content-type");
    if content_type.is_none_or(|value| value != "application/x-protobuf") {
        return HttpResponse::UnsupportedMediaType().finish();
    }
    let Ok(export) = ExportTraceServiceRequest::decode(body) else {
        return HttpResponse::BadRequest().finish();
    };
    store.lock().unwrap().push(export);
    HttpResponse::Ok()
        .content_type("application/x-protobuf")
        .finish()
}

/// The application, with telemetry exporting to the collector.
async fn traced_app() -> (TestApp, &'static Collector) {
    let collector = collector();
    let app = spawn_app().await;
    // `tracing` caches per call site whether any subscriber listens. A call site that
    // another test was registering while the subscriber was installed may have cached
    // "no"; by now every such registration has finished, and this corrects them.
    tracing::callsite::rebuild_interest_cache();
    (app, collector)
}

/// A trace id no other test uses.
fn new_trace_id() -> String {
    format!("{:032x}", uuid::Uuid::now_v7().as_u128())
}

fn traceparent(trace_id: &str, flags: &str) -> String {
    format!("00-{trace_id}-{CALLER_SPAN}-{flags}")
}

/// Sends a GET with these headers; returns the status and the `X-Trace-Id` header.
async fn get(app: &TestApp, path: &str, headers: &[(&str, &str)]) -> (StatusCode, String) {
    let mut request = app.client.get(app.url(path));
    for header in headers {
        request = request.insert_header(*header);
    }
    let response = request.send().await.expect("the server answers");
    let trace_id = response
        .headers()
        .get("x-trace-id")
        .expect("every response carries X-Trace-Id")
        .to_str()
        .expect("a trace id is ASCII")
        .to_owned();
    (response.status(), trace_id)
}

/// A span received in this trace, and the resource that sent it.
struct ReceivedSpan {
    span: Span,
    resource: Vec<(String, String)>,
}

impl Collector {
    fn find(&self, trace_id: &str, name: &str) -> Option<ReceivedSpan> {
        let trace_id = hex(trace_id);
        let received = self.received.lock().unwrap();
        received
            .iter()
            .flat_map(|export| &export.resource_spans)
            .find_map(|resource_spans| {
                let span = resource_spans
                    .scope_spans
                    .iter()
                    .flat_map(|scope| &scope.spans)
                    .find(|span| span.trace_id == trace_id && span.name == name)?;
                let resource = resource_spans
                    .resource
                    .iter()
                    .flat_map(|resource| &resource.attributes)
                    .filter_map(
                        |attribute| match attribute.value.as_ref()?.value.as_ref()? {
                            Value::StringValue(value) => {
                                Some((attribute.key.clone(), value.clone()))
                            }
                            _ => None,
                        },
                    )
                    .collect();
                Some(ReceivedSpan {
                    span: span.clone(),
                    resource,
                })
            })
    }

    /// Waits, a bounded time, for the span `name` of `trace_id` to arrive.
    async fn wait_for(&self, trace_id: &str, name: &str) -> ReceivedSpan {
        let deadline = Instant::now() + ARRIVAL_TIMEOUT;
        loop {
            if let Some(received) = self.find(trace_id, name) {
                return received;
            }
            assert!(
                Instant::now() < deadline,
                "no span {name:?} of trace {trace_id} reached the collector in {ARRIVAL_TIMEOUT:?}"
            );
            actix_web::rt::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn hex(value: &str) -> Vec<u8> {
    (0..value.len())
        .step_by(2)
        .map(|at| u8::from_str_radix(&value[at..at + 2], 16).expect("hex"))
        .collect()
}

#[actix_web::test]
async fn a_request_joins_its_callers_trace_and_its_span_reaches_the_collector() {
    let (app, collector) = traced_app().await;
    let trace_id = new_trace_id();
    let parent = traceparent(&trace_id, "01");
    let (status, echoed) = get(&app, "/health/live", &[("traceparent", &parent)]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(echoed, trace_id);

    let received = collector.wait_for(&trace_id, "GET /health/live").await;
    assert_eq!(received.span.parent_span_id, hex(CALLER_SPAN));
    assert_eq!(received.span.kind, SpanKind::Server as i32);
    for (key, value) in [
        ("service.name", "keystone"),
        ("service.version", env!("CARGO_PKG_VERSION")),
        ("deployment.environment.name", "test"),
    ] {
        assert!(
            received
                .resource
                .contains(&(key.to_owned(), value.to_owned())),
            "{key}={value} in {:?}",
            received.resource
        );
    }
}

#[actix_web::test]
async fn a_request_without_a_caller_starts_the_trace_its_response_names() {
    let (app, collector) = traced_app().await;
    let (status, trace_id) = get(&app, "/nowhere", &[]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(trace_id.len(), 32, "{trace_id}");
    let received = collector.wait_for(&trace_id, "GET").await;
    assert!(received.span.parent_span_id.is_empty());
}

#[actix_web::test]
async fn a_trace_its_caller_did_not_sample_is_not_exported() {
    let (app, collector) = traced_app().await;
    let unsampled = new_trace_id();
    let parent = traceparent(&unsampled, "00");
    let (status, echoed) = get(&app, "/health/live", &[("traceparent", &parent)]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(echoed, unsampled, "the logs still carry the caller's trace");
    // Spans are exported in the order they end, so once a later request's span has
    // arrived, the first one would have too, had it been sampled.
    let sampled = new_trace_id();
    let parent = traceparent(&sampled, "01");
    get(&app, "/health/live", &[("traceparent", &parent)]).await;
    collector.wait_for(&sampled, "GET /health/live").await;
    assert!(collector.find(&unsampled, "GET /health/live").is_none());
}
