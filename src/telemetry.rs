//! Logs and metrics set-up for the relay process.
//!
//! Logs go to stderr through `tracing-subscriber`, as human-readable lines
//! (`[log] format = "pretty"`) or one JSON object per line (`"json"`), filtered by
//! `[log] level` (an `EnvFilter` directive) unless `RUST_LOG` is set. stdout stays
//! free for the few lines the CLI prints on purpose (bound address, one-time key).
//! Numbers are masked in logs by their type ([`crate::numbers::E164`]), not here.
//!
//! Metrics use the `metrics` facade with the Prometheus recorder installed globally;
//! [`init`] returns the [`PrometheusHandle`] that `/metrics` renders. Metrics whose
//! name ends in `_seconds` are exported as histograms with latency buckets, so they
//! aggregate across relays.

use std::io::IsTerminal;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;

use crate::config::LogConfig;

/// Why telemetry could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// The log filter (from `[log] level` or `RUST_LOG`) does not parse.
    #[error("{source_name}: {message}")]
    Filter {
        /// `log.level` or `RUST_LOG`.
        source_name: &'static str,
        /// The parse error.
        message: String,
    },
    /// `[log] format` is neither `pretty` nor `json`.
    #[error("log.format: unknown format {0:?} (expected \"pretty\" or \"json\")")]
    Format(String),
    /// A global logger or metrics recorder is already installed.
    #[error("telemetry already initialised: {0}")]
    AlreadyInstalled(String),
}

/// Latency buckets (seconds) for `*_seconds` histograms: 100 µs to 10 s.
const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// The log filter: `RUST_LOG` when set and not empty, else `[log] level`.
pub fn log_filter(log: &LogConfig, rust_log: Option<&str>) -> Result<EnvFilter, TelemetryError> {
    match rust_log.filter(|s| !s.trim().is_empty()) {
        Some(directives) => EnvFilter::try_new(directives).map_err(|e| TelemetryError::Filter {
            source_name: "RUST_LOG",
            message: e.to_string(),
        }),
        None => EnvFilter::try_new(&log.level).map_err(|e| TelemetryError::Filter {
            source_name: "log.level",
            message: e.to_string(),
        }),
    }
}

/// A Prometheus recorder configured as the relay uses it (not installed).
pub fn prometheus_builder() -> Result<PrometheusBuilder, TelemetryError> {
    PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
        .map_err(|e| TelemetryError::AlreadyInstalled(e.to_string()))
}

/// Installs the global log subscriber and metrics recorder. Call once, early in
/// `serve`. Returns the handle `/metrics` renders from.
pub fn init(log: &LogConfig) -> Result<PrometheusHandle, TelemetryError> {
    let rust_log = std::env::var("RUST_LOG").ok();
    let filter = log_filter(log, rust_log.as_deref())?;
    // Colours only when a person watches a terminal, never in files or collectors.
    let ansi = log.format == "pretty" && std::io::stderr().is_terminal();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    let installed = match log.format.as_str() {
        "json" => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
        "pretty" => builder.try_init(),
        other => return Err(TelemetryError::Format(other.to_string())),
    };
    installed.map_err(|e| TelemetryError::AlreadyInstalled(e.to_string()))?;
    let handle = prometheus_builder()?
        .install_recorder()
        .map_err(|e| TelemetryError::AlreadyInstalled(e.to_string()))?;
    Ok(handle)
}

/// Runs the recorder's periodic upkeep (drains histogram buffers) until the
/// returned task is dropped or aborted. Needs a Tokio runtime.
pub fn spawn_upkeep(handle: PrometheusHandle) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tick.tick().await;
            handle.run_upkeep();
        }
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn log(level: &str) -> LogConfig {
        LogConfig {
            format: "pretty".into(),
            level: level.into(),
        }
    }

    #[test]
    fn rust_log_overrides_the_configured_level() {
        let f = log_filter(&log("info"), Some("maskline=trace")).unwrap();
        assert!(f.to_string().contains("maskline=trace"));
        let f = log_filter(&log("warn"), None).unwrap();
        assert_eq!(f.to_string(), "warn");
        // An empty RUST_LOG does not wipe the configured level.
        let f = log_filter(&log("debug"), Some(" ")).unwrap();
        assert_eq!(f.to_string(), "debug");
    }

    #[test]
    fn bad_filters_name_their_source() {
        let e = log_filter(&log("maskline=loud"), None).unwrap_err();
        assert!(e.to_string().starts_with("log.level: "), "{e}");
        let e = log_filter(&log("info"), Some("x=[")).unwrap_err();
        assert!(e.to_string().starts_with("RUST_LOG: "), "{e}");
    }

    #[test]
    fn seconds_metrics_render_as_prometheus_histograms() {
        let recorder = prometheus_builder().unwrap().build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, || {
            metrics::counter!("maskline_test_total", "route" => "create").increment(3);
            metrics::histogram!("maskline_test_latency_seconds").record(0.002);
        });
        let text = handle.render();
        assert!(
            text.contains("maskline_test_total{route=\"create\"} 3"),
            "{text}"
        );
        assert!(
            text.contains("maskline_test_latency_seconds_bucket{le=\"0.0025\"} 1"),
            "{text}"
        );
    }
}
