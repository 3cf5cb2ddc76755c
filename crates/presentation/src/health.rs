//! Liveness and readiness, for orchestrators and load balancers.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use application::health::{Readiness, Verdict};
use serde::Serialize;
use utoipa::ToSchema;

use crate::AppState;
use crate::error::Problem;
use crate::routing::Routes;

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

/// The probes' routes.
pub(crate) fn routes(routes: Routes) -> Routes {
    routes.route(__path_live, live).route(__path_ready, ready)
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
    readiness(state.readiness.execute().await)
}

/// 200 when ready (`degraded` when only an optional dependency is down), else a 503
/// problem naming the required dependencies that are down.
fn readiness(readiness: Readiness) -> HttpResponse {
    let checks = readiness
        .checks
        .into_iter()
        .map(|(component, check)| (component.to_owned(), check.as_str().to_owned()))
        .collect();
    let failing = match readiness.verdict {
        Verdict::Ready => {
            return HttpResponse::Ok().json(Ready {
                status: "ok",
                checks,
            });
        }
        Verdict::Degraded => {
            return HttpResponse::Ok().json(Ready {
                status: "degraded",
                checks,
            });
        }
        Verdict::NotReady(failing) => failing,
    };
    let mut problem = Problem::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "service_unavailable",
        "Service unavailable",
        format!("not ready: {}", failing.join(", ")),
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

#[cfg(test)]
mod tests {
    use actix_web::body::to_bytes;
    use actix_web::http::header;
    use application::health::{Check, PROBE_TIMEOUT};
    use serde_json::{Value, json};

    use super::*;

    async fn answer(
        verdict: Verdict,
        checks: &[(&'static str, Check)],
    ) -> (StatusCode, String, Value) {
        let checks = checks.iter().copied().collect();
        let response = readiness(Readiness { verdict, checks });
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
        let (status, _, body) = answer(
            Verdict::Ready,
            &[("database", Check::Ok), ("cache", Check::Ok)],
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            body,
            json!({"status": "ok", "checks": {"database": "ok", "cache": "ok"}})
        );
    }

    #[actix_web::test]
    async fn a_failing_or_slow_dependency_makes_the_service_unavailable_and_is_named() {
        let (status, content_type, body) = answer(
            Verdict::NotReady(vec!["cache", "database"]),
            &[
                ("database", Check::Failed),
                ("cache", Check::TimedOut),
                ("queue", Check::Ok),
            ],
        )
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
    async fn a_degraded_service_is_ready_and_says_so() {
        let (status, _, body) = answer(
            Verdict::Degraded,
            &[("database", Check::Ok), ("redis", Check::TimedOut)],
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            body,
            json!({"status": "degraded", "checks": {"database": "ok", "redis": "timed_out"}})
        );
    }

    #[test]
    fn the_documented_probe_timeout_is_the_enforced_one() {
        let document = serde_json::to_value(crate::openapi()).unwrap();
        let summary = document["paths"]["/health/ready"]["get"]["summary"]
            .as_str()
            .unwrap();
        let seconds = format!("{} seconds", PROBE_TIMEOUT.as_secs());
        // The limit the application gives every probe.
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
