//! Liveness and readiness, for orchestrators and load balancers.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::rt::time::timeout;
use actix_web::{HttpResponse, web};
use futures_util::future::join_all;
use serde::Serialize;
use utoipa::ToSchema;

use crate::AppState;
use crate::error::Problem;

/// How long one probe may take before its dependency counts as down.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Raised once the server begins to shut down. From then on readiness answers 503 without
/// asking any dependency, so load balancers send no new work while the requests in
/// flight finish. Clones share one flag.
#[derive(Debug, Clone, Default)]
pub struct ShutdownFlag(Arc<AtomicBool>);

impl ShutdownFlag {
    pub fn raise(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    #[must_use]
    pub fn is_raised(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// The process is up.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Live {
    /// Always `ok`.
    #[schema(examples("ok"))]
    status: &'static str,
}

/// Every required dependency answered.
#[derive(Debug, Serialize, ToSchema)]
#[schema(examples(json!({"status": "ok", "checks": {"database": "ok", "redis": "ok"}})))]
pub(crate) struct Ready {
    /// `ok`, or `degraded` when a dependency the service can do without (Redis) is
    /// down: the replica still serves, from the database.
    status: &'static str,
    /// Each dependency and how its probe went: `ok`, `failed` or `timed_out`.
    checks: BTreeMap<String, String>,
}

/// How one probe went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Check {
    Ok,
    Failed,
    TimedOut,
}

impl Check {
    fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Failed => "failed",
            Self::TimedOut => "timed_out",
        }
    }
}

#[utoipa::path(
    get, operation_id = "liveness", path = "/health/live", tag = "health",
    summary = "Liveness: the process answers; no dependency is touched",
    responses((status = 200, description = "Alive", body = Live)),
)]
pub(crate) async fn live() -> web::Json<Live> {
    web::Json(Live { status: "ok" })
}

#[utoipa::path(
    get, operation_id = "readiness", path = "/health/ready", tag = "health",
    summary = "Readiness: every required dependency answers its probe within 2 seconds",
    responses(
        (status = 200, description = "Ready to serve; `degraded` when Redis is down", body = Ready),
        (status = 503, description = "A required dependency is down, or the server is \
            shutting down; `checks` says which",
            body = Problem, content_type = "application/problem+json"),
    ),
)]
pub(crate) async fn ready(state: web::Data<AppState>) -> HttpResponse {
    if state.shutdown.is_raised() {
        return shutting_down();
    }
    let optional: Vec<&str> = state
        .probes
        .iter()
        .filter(|probe| !probe.required())
        .map(|probe| probe.component())
        .collect();
    let probes = state
        .probes
        .iter()
        .map(|probe| (probe.component(), probe.check()));
    readiness(check_all(probes, PROBE_TIMEOUT).await, &optional)
}

/// 200 when every required check is ok (`degraded` when an optional one is not), else
/// a 503 problem naming the failing required components.
fn readiness(checks: BTreeMap<String, Check>, optional: &[&str]) -> HttpResponse {
    let failing = |required: bool| -> Vec<&str> {
        checks
            .iter()
            .filter(|(component, check)| {
                **check != Check::Ok && optional.contains(&component.as_str()) != required
            })
            .map(|(component, _)| component.as_str())
            .collect()
    };
    let failing_required = failing(true);
    let degraded = !failing(false).is_empty();
    let detail = format!("not ready: {}", failing_required.join(", "));
    let ready = failing_required.is_empty();
    let checks = checks
        .into_iter()
        .map(|(component, check)| (component, check.as_str().to_owned()))
        .collect();
    if ready {
        return HttpResponse::Ok().json(Ready {
            status: if degraded { "degraded" } else { "ok" },
            checks,
        });
    }
    let mut problem = Problem::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "service_unavailable",
        "Service unavailable",
        detail,
    );
    problem.checks = Some(checks);
    problem.into_response()
}

/// 503 while draining, naming `shutdown` as the reason; no dependency is asked.
fn shutting_down() -> HttpResponse {
    let mut problem = Problem::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "service_unavailable",
        "Service unavailable",
        "not ready: shutdown in progress".to_owned(),
    );
    problem.checks = Some(BTreeMap::from([(
        "shutdown".to_owned(),
        "in_progress".to_owned(),
    )]));
    problem.into_response()
}

/// Runs every probe at once, each bounded by `limit`, so one hung dependency costs the
/// orchestrator `limit`, not `limit` times the number of probes. A failure is logged
/// here, with its cause chain (`{:#}` is anyhow's), because the response names only the
/// component. It takes each probe's name and check rather than the probe, so its tests
/// can drive it with plain futures.
async fn check_all<E: fmt::Display>(
    probes: impl IntoIterator<Item = (&'static str, impl Future<Output = Result<(), E>>)>,
    limit: Duration,
) -> BTreeMap<String, Check> {
    let checks = probes.into_iter().map(|(component, check)| async move {
        let check = match timeout(limit, check).await {
            Ok(Ok(())) => Check::Ok,
            Ok(Err(error)) => {
                tracing::error!(
                    component,
                    error = format!("{error:#}"),
                    "readiness probe failed"
                );
                Check::Failed
            }
            Err(_elapsed) => {
                tracing::error!(component, timeout = ?limit, "readiness probe timed out");
                Check::TimedOut
            }
        };
        (component.to_owned(), check)
    });
    join_all(checks).await.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use actix_web::body::to_bytes;
    use actix_web::http::header;
    use serde_json::{Value, json};

    use super::*;

    async fn answer(checks: &[(&str, Check)]) -> (StatusCode, String, Value) {
        let checks = checks
            .iter()
            .map(|(name, check)| ((*name).to_owned(), *check))
            .collect();
        let response = readiness(checks, &["redis"]);
        let status = response.status();
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        let body = to_bytes(response.into_body()).await.unwrap();
        (status, content_type, serde_json::from_slice(&body).unwrap())
    }

    #[actix_web::test]
    async fn the_service_is_ready_when_every_check_is_ok() {
        let (status, _, body) = answer(&[("database", Check::Ok), ("cache", Check::Ok)]).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            body,
            json!({"status": "ok", "checks": {"database": "ok", "cache": "ok"}})
        );
    }

    #[actix_web::test]
    async fn a_failing_or_slow_dependency_makes_the_service_unavailable_and_is_named() {
        let (status, content_type, body) = answer(&[
            ("database", Check::Failed),
            ("cache", Check::TimedOut),
            ("queue", Check::Ok),
        ])
        .await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(content_type, "application/problem+json");
        assert_eq!(body["code"], "service_unavailable");
        assert_eq!(body["detail"], "not ready: cache, database");
        assert_eq!(
            body["checks"],
            json!({"database": "failed", "cache": "timed_out", "queue": "ok"})
        );
    }

    #[actix_web::test]
    async fn an_optional_dependency_that_is_down_degrades_the_service_without_taking_it_out() {
        let (status, _, body) =
            answer(&[("database", Check::Ok), ("redis", Check::TimedOut)]).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            body,
            json!({"status": "degraded", "checks": {"database": "ok", "redis": "timed_out"}})
        );
        let (status, _, body) =
            answer(&[("database", Check::Failed), ("redis", Check::Failed)]).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body["detail"], "not ready: database");
    }

    /// How a probe in these tests behaves. `Meet` answers only once all `Meet` probes
    /// have started, which cannot happen unless the probes run at the same time.
    #[derive(Clone)]
    enum Behaviour {
        Answer,
        Fail,
        Hang,
        Meet(Arc<AtomicUsize>, usize),
    }

    async fn checks(
        probes: Vec<(&'static str, Behaviour)>,
        limit: Duration,
    ) -> BTreeMap<String, Check> {
        let probes = probes.into_iter().map(|(component, behaviour)| {
            let check = async move {
                match behaviour {
                    Behaviour::Answer => Ok(()),
                    Behaviour::Fail => Err("connection refused"),
                    Behaviour::Hang => std::future::pending().await,
                    Behaviour::Meet(started, all) => {
                        started.fetch_add(1, Ordering::SeqCst);
                        while started.load(Ordering::SeqCst) < all {
                            actix_web::rt::task::yield_now().await;
                        }
                        Ok(())
                    }
                }
            };
            (component, check)
        });
        check_all(probes, limit).await
    }

    #[actix_web::test]
    async fn a_failing_or_hanging_probe_is_reported_and_cut_off_at_the_timeout() {
        let probes = vec![
            ("database", Behaviour::Answer),
            ("cache", Behaviour::Fail),
            ("queue", Behaviour::Hang),
        ];
        let checks = checks(probes, Duration::from_millis(50)).await;
        let expected = [
            ("cache".to_owned(), Check::Failed),
            ("database".to_owned(), Check::Ok),
            ("queue".to_owned(), Check::TimedOut),
        ];
        assert_eq!(checks, BTreeMap::from(expected));
    }

    #[actix_web::test]
    async fn probes_run_at_the_same_time() {
        let meet = Behaviour::Meet(Arc::new(AtomicUsize::new(0)), 3);
        let probes = vec![("a", meet.clone()), ("b", meet.clone()), ("c", meet)];
        let checks = checks(probes, Duration::from_secs(5)).await;
        assert_eq!(checks.len(), 3);
        assert!(
            checks.values().all(|check| *check == Check::Ok),
            "{checks:?}"
        );
    }

    #[test]
    fn the_documented_probe_timeout_is_the_enforced_one() {
        let document = serde_json::to_value(crate::openapi()).unwrap();
        let summary = document["paths"]["/health/ready"]["get"]["summary"]
            .as_str()
            .unwrap();
        let seconds = format!("{} seconds", PROBE_TIMEOUT.as_secs());
        assert!(summary.contains(&seconds), "{summary}");
    }

    #[actix_web::test]
    async fn once_shutdown_begins_readiness_is_a_503_naming_it() {
        let response = shutting_down();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body: Value =
            serde_json::from_slice(&to_bytes(response.into_body()).await.unwrap()).unwrap();
        assert_eq!(body["code"], "service_unavailable");
        assert_eq!(body["checks"], json!({"shutdown": "in_progress"}));
    }

    #[test]
    fn a_raised_flag_is_seen_by_every_clone() {
        let flag = ShutdownFlag::default();
        let seen_by_readiness = flag.clone();
        assert!(!seen_by_readiness.is_raised());
        flag.raise();
        assert!(seen_by_readiness.is_raised());
    }

    #[actix_web::test]
    async fn liveness_touches_nothing_and_says_ok() {
        let web::Json(live) = live().await;
        assert_eq!(live.status, "ok");
    }
}
