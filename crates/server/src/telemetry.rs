//! Logs and traces.
//!
//! Logs are human-readable in development, one JSON object per line in production, and
//! go to standard error, so standard output stays clean for command output such as
//! `server openapi` and `server migrate status`. An event inside a request carries the
//! fields of every span around it, the request's `request_id` and `trace_id` among them.
//!
//! Traces are exported only when `telemetry.otlp_endpoint` is set: then spans at INFO
//! and above go, in batches, to that OpenTelemetry collector over OTLP/HTTP (protobuf),
//! whatever the log filter says. Otherwise no exporter is built and no OpenTelemetry
//! layer is installed. Either way, a request carrying a W3C `traceparent` joins its
//! caller's trace, so its trace id is the one the caller logged.

use std::io::IsTerminal;
use std::time::Duration;

use anyhow::Context;
use opentelemetry::KeyValue;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, SpanExporter, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use tracing::Subscriber;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::settings::{Environment, LogFormat, Settings};

/// The `service.name` of every span this service exports.
pub const SERVICE_NAME: &str = "keystone";

/// How long the exit waits for the last spans to reach the collector. Kubernetes kills
/// the pod when its grace period ends, and the HTTP drain has used most of it by then.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(3);

/// What `init` started that must be stopped on the way out: the span exporter, when
/// there is one. Dropping it stops it too, so an early return still flushes.
#[must_use = "dropping it stops the span exporter"]
pub struct Telemetry {
    tracer_provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Whether spans are being exported.
    #[must_use]
    pub fn exports_traces(&self) -> bool {
        self.tracer_provider.is_some()
    }

    /// Sends the spans not yet exported and stops the exporter. Call it after the HTTP
    /// server has stopped, so the last requests' spans are in the batch.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        let Some(provider) = self.tracer_provider.take() else {
            return;
        };
        if let Err(error) = provider.shutdown_with_timeout(FLUSH_TIMEOUT) {
            tracing::warn!(%error, "the last spans may not have reached the collector");
        }
    }
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Installs the W3C trace-context propagator and the global subscriber: the log layer,
/// filtered by `RUST_LOG` when set or else the settings, and, when an OTLP endpoint is
/// configured, the OpenTelemetry layer with its exporter.
///
/// # Errors
/// When the filter does not parse, the exporter cannot be built, or a subscriber is
/// already installed (so call it once per process).
pub fn init(settings: &Settings) -> anyhow::Result<Telemetry> {
    let filter =
        EnvFilter::try_from_default_env().or_else(|_| EnvFilter::try_new(&settings.log.filter))?;
    let log = log_layer(
        settings.log_format(),
        std::io::stderr,
        std::io::stderr().is_terminal(),
    )
    .with_filter(filter);
    let tracer_provider = tracer_provider(settings)?;
    // Per-layer filters: quieting the logs must not switch the traces off.
    let traces = tracer_provider.as_ref().map(|provider| {
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer(SERVICE_NAME))
            .with_filter(LevelFilter::INFO)
    });
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    tracing_subscriber::registry()
        .with(log)
        .with(traces)
        .try_init()?;
    Ok(Telemetry { tracer_provider })
}

/// The exporting tracer provider, or `None` when no endpoint is configured: then
/// nothing is built, no thread is started and nothing is ever sent.
fn tracer_provider(settings: &Settings) -> anyhow::Result<Option<SdkTracerProvider>> {
    let Some(url) = settings.telemetry.traces_url() else {
        return Ok(None);
    };
    let exporter = SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(url)
        .build()
        .context("building the OTLP span exporter")?;
    let environment = match settings.environment {
        Environment::Development => "development",
        Environment::Test => "test",
        Environment::Production => "production",
    };
    let resource = Resource::builder()
        .with_service_name(SERVICE_NAME)
        .with_attributes([
            KeyValue::new("service.version", env!("CARGO_PKG_VERSION")),
            KeyValue::new("deployment.environment.name", environment),
        ])
        .build();
    // A caller's sampling decision, carried in `traceparent`, wins over the ratio.
    let sampler = Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
        settings.telemetry.sampling_ratio,
    )));
    Ok(Some(
        SdkTracerProvider::builder()
            .with_resource(resource)
            .with_sampler(sampler)
            .with_batch_exporter(exporter)
            .build(),
    ))
}

/// The log layer. JSON lists every span around an event (`spans`, outermost first), so
/// the request's ids are on every line, even inside a use case's span; the compact
/// format appends the fields of every span around it.
fn log_layer<S, W>(format: LogFormat, writer: W, ansi: bool) -> Box<dyn Layer<S> + Send + Sync>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .with_ansi(ansi);
    match format {
        LogFormat::Json => layer
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(true)
            .boxed(),
        LogFormat::Pretty => layer.compact().boxed(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::settings::TelemetrySettings;

    #[test]
    fn without_an_otlp_endpoint_no_exporter_is_built() {
        let settings = Settings::default();
        assert!(settings.telemetry.otlp_endpoint.is_none());
        assert!(tracer_provider(&settings).unwrap().is_none());
        let empty = Settings {
            telemetry: TelemetrySettings {
                otlp_endpoint: Some(String::new()),
                ..settings.telemetry
            },
            ..Settings::default()
        };
        assert!(tracer_provider(&empty).unwrap().is_none());
    }

    #[test]
    fn with_an_otlp_endpoint_an_exporter_is_built_and_stopped_on_shutdown() {
        let mut settings = Settings::default();
        // Nothing listens there; nothing is sent either, as no span is made.
        settings.telemetry.otlp_endpoint = Some("http://127.0.0.1:9".to_owned());
        let telemetry = Telemetry {
            tracer_provider: tracer_provider(&settings).unwrap(),
        };
        assert!(telemetry.exports_traces());
        telemetry.shutdown();
    }

    /// Writes what the log layer prints into a shared buffer.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn log_inside_a_use_case_of_a_request(format: LogFormat) -> String {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber =
            tracing_subscriber::registry().with(log_layer(format, move || writer.clone(), false));
        tracing::subscriber::with_default(subscriber, || {
            let request = tracing::info_span!(
                "http_request",
                request_id = "req-1",
                trace_id = tracing::field::Empty
            );
            request.record(
                "trace_id",
                tracing::field::display("4bf92f3577b34da6a3ce929d0e0e4736"),
            );
            let _request = request.enter();
            let _use_case = tracing::info_span!("create_task", tenant = "t-1").entered();
            tracing::info!("task created");
        });
        String::from_utf8(captured.0.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn json_logs_carry_the_request_ids_even_inside_a_nested_span() {
        let line = log_inside_a_use_case_of_a_request(LogFormat::Json);
        let event: serde_json::Value = serde_json::from_str(line.trim()).unwrap();
        assert_eq!(event["message"], "task created");
        assert_eq!(event["spans"][0]["name"], "http_request");
        assert_eq!(event["spans"][0]["request_id"], "req-1");
        assert_eq!(
            event["spans"][0]["trace_id"],
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(event["spans"][1]["tenant"], "t-1");
    }

    #[test]
    fn pretty_logs_carry_the_request_ids_even_inside_a_nested_span() {
        let line = log_inside_a_use_case_of_a_request(LogFormat::Pretty);
        assert!(line.contains("task created"), "{line}");
        assert!(line.contains("request_id=\"req-1\""), "{line}");
        assert!(
            line.contains("trace_id=4bf92f3577b34da6a3ce929d0e0e4736"),
            "{line}"
        );
    }
}
