//! Tracing subscriber setup: human-readable text for development, JSON lines
//! for log shippers. `RUST_LOG` overrides the default filter of the logs.
//!
//! With the `otel` feature and `OTEL_EXPORTER_OTLP_ENDPOINT` set, the spans
//! (one `request` span per HTTP request, named after its method and route
//! template) are also exported as OTLP/HTTP JSON to `{endpoint}/v1/traces`
//! by the OpenTelemetry SDK's batch thread. The export has its own filter
//! (info, without the driver's and tower-http's chatter), so `RUST_LOG=warn`
//! quiets the logs without dropping the request spans. [`Telemetry::shutdown`]
//! flushes what is buffered; `main` calls it after the server has drained.

use tracing_subscriber::{fmt, prelude::*, EnvFilter, Layer, Registry};

use crate::config::LogFormat;

const DEFAULT_FILTER: &str = "info,tower_http=warn,mongodb=warn";

/// The installed telemetry; [`shutdown`](Self::shutdown) it before exiting
/// or the last buffered spans are lost.
#[must_use = "call shutdown() before the process exits"]
pub struct Telemetry {
    #[cfg(feature = "otel")]
    provider: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
}

impl Telemetry {
    /// Flushes and stops the span export (blocks up to its timeout; call it
    /// from a blocking task). Nothing to do without an export.
    pub fn shutdown(self) {
        #[cfg(feature = "otel")]
        if let Some(provider) = self.provider {
            match provider.shutdown() {
                Ok(()) => tracing::info!("trace export: flushed and stopped"),
                Err(e) => tracing::warn!("trace export: shutdown failed: {e}"),
            }
        }
    }

    /// Whether spans are being exported.
    pub fn exporting(&self) -> bool {
        #[cfg(feature = "otel")]
        return self.provider.is_some();
        #[cfg(not(feature = "otel"))]
        false
    }
}

/// Installs the global subscriber (a second call, as in tests, changes
/// nothing) and, with the `otel` feature, the span export to
/// `otel_endpoint` when one is given.
pub fn init(format: LogFormat, otel_endpoint: Option<&str>) -> Telemetry {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let logs: Box<dyn Layer<Registry> + Send + Sync> = match format {
        LogFormat::Text => fmt::layer().with_target(false).boxed(),
        LogFormat::Json => fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .boxed(),
    };
    // A per-layer filter: RUST_LOG governs the logs only.
    let registry = tracing_subscriber::registry().with(logs.with_filter(filter));

    #[cfg(not(feature = "otel"))]
    {
        let _ = registry.try_init();
        if let Some(endpoint) = otel_endpoint {
            tracing::warn!(
                %endpoint,
                "OTEL_EXPORTER_OTLP_ENDPOINT is set but this build has no trace export \
                 (build with --features otel)"
            );
        }
        Telemetry {}
    }

    #[cfg(feature = "otel")]
    {
        let provider = match otel_endpoint.map(otel::provider) {
            Some(Ok(p)) => Some(p),
            Some(Err(e)) => {
                let _ = registry.try_init();
                tracing::warn!("trace export off: {e}");
                return Telemetry { provider: None };
            }
            None => None,
        };
        let export = provider.as_ref().map(otel::layer);
        if registry.with(export).try_init().is_err() {
            // Already installed (tests): this export would see nothing.
            if let Some(p) = provider {
                let _ = p.shutdown();
            }
            return Telemetry { provider: None };
        }
        if let (Some(endpoint), Some(_)) = (otel_endpoint, &provider) {
            tracing::info!(%endpoint, "trace export on: OTLP/HTTP JSON to {endpoint}/v1/traces");
        }
        Telemetry { provider }
    }
}

#[cfg(feature = "otel")]
mod otel {
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_otlp::{Protocol, SpanExporter, WithExportConfig};
    use opentelemetry_sdk::{trace::SdkTracerProvider, Resource};
    use tracing::{level_filters::LevelFilter, Subscriber};
    use tracing_subscriber::{filter::Targets, registry::LookupSpan, Layer};

    /// A tracer provider exporting to `{endpoint}/v1/traces` in batches
    /// (the SDK's own thread: no async runtime needed). The standard
    /// `OTEL_EXPORTER_OTLP_HEADERS`, `_TIMEOUT`, `OTEL_BSP_*`,
    /// `OTEL_SERVICE_NAME` and `OTEL_RESOURCE_ATTRIBUTES` apply.
    pub fn provider(endpoint: &str) -> Result<SdkTracerProvider, String> {
        let url = format!("{}/v1/traces", endpoint.trim_end_matches('/'));
        let exporter = SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpJson)
            .with_endpoint(url)
            .build()
            .map_err(|e| e.to_string())?;
        let mut resource = Resource::builder();
        if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
            resource = resource.with_service_name(env!("CARGO_PKG_NAME"));
        }
        Ok(SdkTracerProvider::builder()
            .with_resource(resource.build())
            .with_batch_exporter(exporter)
            .build())
    }

    /// The layer turning spans into OpenTelemetry spans, with its own
    /// filter (the SDK's own events never feed back into the export).
    pub fn layer<S>(provider: &SdkTracerProvider) -> impl Layer<S>
    where
        S: Subscriber + for<'a> LookupSpan<'a> + 'static,
    {
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer(env!("CARGO_PKG_NAME")))
            .with_filter(
                Targets::new()
                    .with_default(LevelFilter::INFO)
                    .with_target("tower_http", LevelFilter::WARN)
                    .with_target("mongodb", LevelFilter::WARN)
                    .with_target("opentelemetry", LevelFilter::OFF)
                    .with_target("opentelemetry_sdk", LevelFilter::OFF)
                    .with_target("opentelemetry_otlp", LevelFilter::OFF)
                    .with_target("opentelemetry_http", LevelFilter::OFF),
            )
    }
}
