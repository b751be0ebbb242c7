//! Tracing subscriber setup: human-readable text for development, JSON lines
//! for log shippers. `RUST_LOG` overrides the default filter.

use tracing_subscriber::{fmt, prelude::*, EnvFilter};

use crate::config::LogFormat;

pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,tower_http=warn,mongodb=warn"));
    let registry = tracing_subscriber::registry().with(filter);
    // `try_init` so a second call (tests, the seed binary) is harmless.
    let _ = match format {
        LogFormat::Text => registry.with(fmt::layer().with_target(false)).try_init(),
        LogFormat::Json => registry
            .with(
                fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true),
            )
            .try_init(),
    };
}
