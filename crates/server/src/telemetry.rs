//! Logging: human-readable in development, one JSON object per line in production.
//! Logs go to standard error, so standard output stays clean for command output such
//! as `server openapi` and `server migrate status`.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::settings::{LogFormat, Settings};

/// Installs the global subscriber. `RUST_LOG`, when set, wins over the settings.
///
/// # Errors
/// When the filter does not parse or a subscriber is already installed.
pub fn init(settings: &Settings) -> anyhow::Result<()> {
    let filter =
        EnvFilter::try_from_default_env().or_else(|_| EnvFilter::try_new(&settings.log.filter))?;
    let registry = tracing_subscriber::registry().with(filter);
    match settings.log_format() {
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::stderr)
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_span_list(false),
            )
            .try_init()?,
        LogFormat::Pretty => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::stderr)
                    .compact(),
            )
            .try_init()?,
    }
    Ok(())
}
