//! HTTP metrics and the `/metrics` endpoint.
//!
//! Requests are counted and timed through the `metrics` facade, so they reach whatever
//! recorder the server installed (and cost next to nothing without one). Labels stay few
//! and bounded, because every distinct set is a time series kept forever: the method
//! (unknown ones as `other`), the matched route pattern (`/api/v1/tasks/{id}`, never the
//! path, which carries ids; `unmatched` when no route matched) and the status class.
//!
//! What `/metrics` serves is rendered by a [`MetricsRenderer`] the server hands in:
//! presentation does not know which exporter that is.

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{HttpResponse, web};
use metrics::Unit;

/// Requests answered, by `method`, `route` and `status_class`.
pub const REQUESTS_TOTAL: &str = "keystone_http_requests_total";
/// Seconds from a request's arrival to its response head, by the same labels.
pub const REQUEST_DURATION: &str = "keystone_http_request_duration_seconds";
/// Requests being answered right now.
pub const REQUESTS_IN_FLIGHT: &str = "keystone_http_requests_in_flight";

/// The `route` label of a request that matched no route.
const UNMATCHED: &str = "unmatched";

/// Renders every metric of the process in Prometheus' text exposition format.
/// Cloning shares the renderer.
#[derive(Clone)]
pub struct MetricsRenderer(Arc<dyn Fn() -> String + Send + Sync>);

impl MetricsRenderer {
    pub fn new(render: impl Fn() -> String + Send + Sync + 'static) -> Self {
        Self(Arc::new(render))
    }

    fn render(&self) -> String {
        (self.0)()
    }
}

impl fmt::Debug for MetricsRenderer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MetricsRenderer")
    }
}

/// Gives the HTTP metrics their help text and units. Call once the recorder is in place.
pub fn describe() {
    metrics::describe_counter!(REQUESTS_TOTAL, Unit::Count, "HTTP requests answered");
    metrics::describe_histogram!(
        REQUEST_DURATION,
        Unit::Seconds,
        "Time from a request's arrival to its response head"
    );
    metrics::describe_gauge!(
        REQUESTS_IN_FLIGHT,
        Unit::Count,
        "HTTP requests being answered"
    );
}

/// `GET /metrics`.
pub(crate) async fn scrape(renderer: web::Data<MetricsRenderer>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(renderer.render())
}

/// Middleware: counts and times every request, and keeps the in-flight gauge.
pub(crate) async fn record(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let method = method_label(request.method());
    let route = request
        .match_pattern()
        .unwrap_or_else(|| UNMATCHED.to_owned());
    let started = Instant::now();
    let in_flight = InFlight::start();
    let outcome = next.call(request).await;
    drop(in_flight);
    let status = match &outcome {
        Ok(response) => response.status(),
        Err(error) => error.as_response_error().status_code(),
    };
    let labels = [
        ("method", method.to_owned()),
        ("route", route),
        ("status_class", status_class(status).to_owned()),
    ];
    metrics::counter!(REQUESTS_TOTAL, &labels).increment(1);
    metrics::histogram!(REQUEST_DURATION, &labels).record(started.elapsed().as_secs_f64());
    outcome
}

/// Counts a request in flight until dropped, also when the client goes away mid-request
/// and actix drops the handler's future.
struct InFlight;

impl InFlight {
    fn start() -> Self {
        metrics::gauge!(REQUESTS_IN_FLIGHT).increment(1.0);
        Self
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        metrics::gauge!(REQUESTS_IN_FLIGHT).decrement(1.0);
    }
}

/// The standard methods by name, anything else as `other`: a client must not be able
/// to mint new time series by inventing methods.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "other",
    }
}

fn status_class(status: StatusCode) -> &'static str {
    match status.as_u16() {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

#[cfg(test)]
mod tests {
    use actix_web::App;
    use actix_web::middleware::from_fn;
    use actix_web::test::{TestRequest, call_service, init_service, read_body};
    use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusRecorder};

    use super::*;

    #[test]
    fn statuses_are_labelled_by_their_class() {
        let classes = [
            (101, "1xx"),
            (204, "2xx"),
            (304, "3xx"),
            (404, "4xx"),
            (503, "5xx"),
        ];
        for (code, class) in classes {
            assert_eq!(status_class(StatusCode::from_u16(code).unwrap()), class);
        }
    }

    #[test]
    fn an_invented_method_is_labelled_other() {
        assert_eq!(method_label(&Method::PATCH), "PATCH");
        assert_eq!(method_label(&Method::from_bytes(b"BREW").unwrap()), "other");
    }

    /// Sends `requests` through the middleware around one route, and renders what a
    /// recorder of this thread saw (actix's test runtime runs everything on it).
    async fn scrape_after(requests: Vec<TestRequest>) -> String {
        let recorder: PrometheusRecorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        let _local = metrics::set_default_local_recorder(&recorder);
        let app = init_service(
            App::new()
                .service(web::resource("/things/{id}").get(HttpResponse::Ok))
                .wrap(from_fn(record)),
        )
        .await;
        for request in requests {
            call_service(&app, request.to_request()).await;
        }
        handle.render()
    }

    #[actix_web::test]
    async fn requests_are_counted_by_method_route_pattern_and_status_class() {
        let rendered = scrape_after(vec![
            TestRequest::get().uri("/things/42"),
            TestRequest::get().uri("/things/43"),
            TestRequest::post().uri("/things/44"),
        ])
        .await;
        let ok = r#"keystone_http_requests_total{method="GET",route="/things/{id}",status_class="2xx"} 2"#;
        assert!(rendered.contains(ok), "{rendered}");
        let refused = r#"keystone_http_requests_total{method="POST",route="/things/{id}",status_class="4xx"} 1"#;
        assert!(rendered.contains(refused), "{rendered}");
        assert!(rendered.contains("keystone_http_request_duration_seconds"));
        assert!(
            rendered.contains("keystone_http_requests_in_flight 0"),
            "{rendered}"
        );
        assert!(!rendered.contains("/things/42"), "{rendered}");
    }

    #[actix_web::test]
    async fn a_path_no_route_matches_is_labelled_unmatched_not_by_its_path() {
        let rendered = scrape_after(vec![TestRequest::get().uri("/secret-token-in-path")]).await;
        let unmatched =
            r#"keystone_http_requests_total{method="GET",route="unmatched",status_class="4xx"} 1"#;
        assert!(rendered.contains(unmatched), "{rendered}");
        assert!(!rendered.contains("secret-token"), "{rendered}");
    }

    #[actix_web::test]
    async fn the_endpoint_serves_what_the_renderer_renders_as_prometheus_text() {
        let renderer = MetricsRenderer::new(|| "up 1\n".to_owned());
        let app = init_service(
            App::new()
                .app_data(web::Data::new(renderer))
                .service(web::resource("/metrics").get(scrape)),
        )
        .await;
        let response = call_service(&app, TestRequest::get().uri("/metrics").to_request()).await;
        assert_eq!(response.status(), StatusCode::OK);
        let content_type = response.headers().get("content-type").unwrap();
        assert!(
            content_type
                .to_str()
                .unwrap()
                .starts_with("text/plain; version=0.0.4")
        );
        assert_eq!(read_body(response).await, "up 1\n");
    }
}
