//! Logs and traces. Logs are structured (JSON for machines, readable text on a terminal),
//! filtered by `RUST_LOG` (default `info`), and carry the trace id of the span they belong to.
//! Every span is also an OpenTelemetry span; when `otlp_endpoint` is set they are exported over
//! OTLP/HTTP in batches, otherwise they only provide trace ids and propagation. A missing
//! collector costs dropped batches, never a failed request.
//!
//! The W3C trace context travels from the API through the outbox and the RabbitMQ message
//! headers into the dispatcher, so one trace shows POST → commit → publish → each attempt.

use std::io::IsTerminal;

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::Level;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// Keeps the tracer provider alive; [`Telemetry::shutdown`] flushes pending spans.
pub struct Telemetry {
    provider: SdkTracerProvider,
}

impl Telemetry {
    /// Flushes and stops span export (call once at exit).
    pub fn shutdown(self) {
        if let Err(err) = self.provider.shutdown() {
            eprintln!("trace export shutdown: {err}");
        }
    }
}

/// Installs the global subscriber for `service`. `format` is `auto`, `json` or `text`;
/// `default_filter` applies when `RUST_LOG` is not set.
pub fn init(
    service: &'static str,
    format: &str,
    otlp_endpoint: Option<&str>,
    default_filter: &str,
) -> Telemetry {
    let mut builder = SdkTracerProvider::builder().with_resource(
        opentelemetry_sdk::Resource::builder()
            .with_service_name(service)
            .build(),
    );
    if let Some(endpoint) = otlp_endpoint {
        match opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_endpoint(format!("{}/v1/traces", endpoint.trim_end_matches('/')))
            .build()
        {
            Ok(exporter) => builder = builder.with_batch_exporter(exporter),
            Err(err) => eprintln!("OTLP exporter disabled: {err}"),
        }
    }
    let provider = builder.build();
    let tracer = provider.tracer(service);
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());

    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let json = match format {
        "json" => true,
        "text" => false,
        _ => !std::io::stderr().is_terminal(),
    };
    let fmt = if json {
        tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .with_writer(std::io::stderr)
            .boxed()
    } else {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .boxed()
    };
    // Spans of our own crates always reach OpenTelemetry, whatever the log filter says, so that
    // trace context propagates even when logs are quiet.
    let traced = Targets::new()
        .with_target("octohooks_api", Level::INFO)
        .with_target("octohooks_dispatcher", Level::INFO)
        .with_target("octohooks_platform", Level::INFO);
    // A second call (several services in one test process) keeps the first subscriber.
    let _ = tracing_subscriber::registry()
        .with(fmt.with_filter(filter))
        .with(
            tracing_opentelemetry::layer()
                .with_tracer(tracer)
                .with_filter(traced),
        )
        .try_init();
    Telemetry { provider }
}

/// The one header the trace context travels in. A carrier holding only it spares the
/// propagator's general map (a hash map and lower-cased keys per call, on every job).
struct Traceparent<T>(T);

impl Injector for Traceparent<Option<String>> {
    fn set(&mut self, key: &str, value: String) {
        if key == "traceparent" {
            self.0 = Some(value);
        }
    }
}

impl Extractor for Traceparent<&str> {
    fn get(&self, key: &str) -> Option<&str> {
        key.eq_ignore_ascii_case("traceparent").then_some(self.0)
    }

    fn keys(&self) -> Vec<&str> {
        vec!["traceparent"]
    }
}

/// The W3C `traceparent` of the current span, if there is a trace.
pub fn current_traceparent() -> Option<String> {
    let context = tracing::Span::current().context();
    let mut carrier = Traceparent(None);
    TraceContextPropagator::new().inject_context(&context, &mut carrier);
    carrier.0
}

/// Makes `span` a child of the trace named by `traceparent` (no-op when absent or invalid).
pub fn continue_trace(span: &tracing::Span, traceparent: Option<&str>) {
    if let Some(traceparent) = traceparent {
        let context = TraceContextPropagator::new().extract(&Traceparent(traceparent));
        let _ = span.set_parent(context);
    }
}

/// The trace id of `span`, for log lines and error reports.
pub fn trace_id(span: &tracing::Span) -> Option<String> {
    use opentelemetry::trace::TraceContextExt;
    let context = span.context();
    let span_context = context.span().span_context().clone();
    span_context
        .is_valid()
        .then(|| span_context.trace_id().to_string())
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::TraceContextExt;

    use super::*;

    const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn the_one_header_carrier_reads_and_writes_the_w3c_traceparent() {
        let propagator = TraceContextPropagator::new();
        let context = propagator.extract(&Traceparent(TRACEPARENT));
        assert_eq!(
            context.span().span_context().trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        let mut carrier = Traceparent(None);
        propagator.inject_context(&context, &mut carrier);
        assert_eq!(carrier.0.as_deref(), Some(TRACEPARENT));
        let nothing = propagator.extract(&Traceparent("not a traceparent"));
        assert!(!nothing.span().span_context().is_valid());
    }
}
