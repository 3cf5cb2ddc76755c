//! The Prometheus recorder behind `/metrics`: installed once per process, with the build
//! info, and the database pool's gauges read at every scrape.

use std::sync::OnceLock;
use std::time::Duration;

use anyhow::anyhow;
use infrastructure::database::{self, Database};
use metrics::Unit;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use presentation::MetricsRenderer;

/// Always 1, labelled with the `version` and the `git_sha` of the binary.
pub const BUILD_INFO: &str = "keystone_build_info";
/// Open connections of the database pool, in use or idle.
pub const POOL_CONNECTIONS: &str = "keystone_db_pool_connections";
/// Open connections nobody is using.
pub const POOL_IDLE: &str = "keystone_db_pool_idle_connections";
/// The most connections the pool opens (`database.max_connections`).
pub const POOL_MAX: &str = "keystone_db_pool_max_connections";
/// Callers waiting for a connection because every one is in use.
pub const POOL_WAITERS: &str = "keystone_db_pool_waiters";

/// The commit the binary was built from, when the build was told:
/// `KEYSTONE_GIT_SHA=$(git rev-parse HEAD) cargo build` (the Dockerfile's build argument).
const GIT_SHA: &str = match option_env!("KEYSTONE_GIT_SHA") {
    Some(sha) => sha,
    None => "unknown",
};

/// Upper bounds of the latency histograms' buckets, in seconds: from a cached read to a
/// request that waited out the pool's acquire timeout.
const SECONDS_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// How often recorded histogram samples are folded into their buckets, so that memory
/// stays flat between scrapes.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// The process's recorder, or why it could not be installed.
///
/// This is the service's one global, because the recorder is one by nature: the
/// `metrics` macros, ours and any library's, report to the single recorder installed in
/// the process, and installing a second fails. A process may build several applications
/// (the API tests build one per test), so the first build installs it and every later
/// one shares it.
static RECORDER: OnceLock<Result<PrometheusHandle, String>> = OnceLock::new();

/// The process's Prometheus recorder, installed on first use.
///
/// # Errors
/// When another recorder was installed first, or the upkeep thread cannot start.
pub fn recorder() -> anyhow::Result<PrometheusHandle> {
    RECORDER
        .get_or_init(|| install().map_err(|error| format!("{error:#}")))
        .clone()
        .map_err(|error| anyhow!("installing the metrics recorder: {error}"))
}

fn install() -> anyhow::Result<PrometheusHandle> {
    let handle = PrometheusBuilder::new()
        // Histograms rather than summaries: buckets add up across replicas.
        .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), SECONDS_BUCKETS)?
        .install_recorder()?;
    let upkeep = handle.clone();
    std::thread::Builder::new()
        .name("metrics-upkeep".to_owned())
        .spawn(move || {
            loop {
                std::thread::sleep(UPKEEP_INTERVAL);
                upkeep.run_upkeep();
            }
        })?;
    presentation::describe_metrics();
    infrastructure::describe_cache_metrics();
    infrastructure::describe_event_metrics();
    infrastructure::describe_rate_limit_metrics();
    infrastructure::describe_password_metrics();
    crate::worker::describe_metrics();
    metrics::describe_gauge!(BUILD_INFO, "The version and commit of the running binary");
    metrics::describe_gauge!(POOL_CONNECTIONS, Unit::Count, "Open database connections");
    metrics::describe_gauge!(
        POOL_IDLE,
        Unit::Count,
        "Open database connections not in use"
    );
    metrics::describe_gauge!(
        POOL_MAX,
        Unit::Count,
        "Most database connections the pool opens"
    );
    metrics::describe_gauge!(
        POOL_WAITERS,
        Unit::Count,
        "Callers waiting for a database connection"
    );
    let version = env!("CARGO_PKG_VERSION");
    metrics::gauge!(BUILD_INFO, "version" => version, "git_sha" => GIT_SHA).set(1.0);
    Ok(handle)
}

/// Renders `/metrics`: the pool's gauges are read from `db` first, so they are as fresh
/// as the scrape. (In a process running several applications, as the tests do, the
/// gauges show the pool of whichever was scraped last.)
pub fn renderer(handle: PrometheusHandle, db: Database) -> MetricsRenderer {
    MetricsRenderer::new(move || {
        if let Some(pool) = database::pool_status(&db) {
            metrics::gauge!(POOL_CONNECTIONS).set(pool.size);
            metrics::gauge!(POOL_IDLE).set(pool.idle);
            metrics::gauge!(POOL_MAX).set(pool.max);
            metrics::gauge!(POOL_WAITERS).set(pool.waiters);
        }
        handle.render()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_recorder_is_installed_once_and_shared_with_the_build_info() {
        let first = recorder().unwrap();
        let second = recorder().unwrap();
        metrics::counter!("keystone_test_shared_total").increment(1);
        for handle in [first, second] {
            let rendered = handle.render();
            let build_info = format!(
                r#"keystone_build_info{{version="{}",git_sha="{GIT_SHA}"}} 1"#,
                env!("CARGO_PKG_VERSION")
            );
            assert!(rendered.contains(&build_info), "{rendered}");
            assert!(
                rendered.contains("keystone_test_shared_total 1"),
                "{rendered}"
            );
        }
    }

    #[test]
    fn latency_histograms_have_buckets() {
        let handle = recorder().unwrap();
        metrics::histogram!("keystone_test_wait_seconds").record(0.2);
        let rendered = handle.render();
        assert!(
            rendered.contains(r#"keystone_test_wait_seconds_bucket{le="0.25"} 1"#),
            "{rendered}"
        );
    }
}
