//! A database that goes away and comes back. PostgreSQL only (`TEST_DATABASE_URL`): the
//! application reaches it through a TCP proxy in this test, which can drop every
//! connection and refuse new ones, like a database server that restarts.

use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use keystone_tests::proxy::Proxy;
use keystone_tests::{TestApp, TestResponse, eventually, postgres_settings, spawn_app_with};
use server::settings::Secret;

/// A read that always needs the database: lists are never cached (a read by id may be
/// answered from the cache while the database is away).
async fn list_users(app: &TestApp, token: &str) -> (TestResponse, Duration) {
    let started = Instant::now();
    let response = app.get("/api/v1/users", token).await;
    (response, started.elapsed())
}

/// How long a request may wait for a connection; the 503s below are bounded by it, and
/// an answer within a few times it is no hang (the client gives up after 30 s).
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(1);
const NO_HANG: Duration = Duration::from_secs(8);

#[actix_web::test]
#[ignore = "needs PostgreSQL, run by `just test-all`"]
async fn a_database_that_goes_away_is_a_fast_503_and_is_used_again_once_it_is_back() {
    let mut settings = postgres_settings().await;
    let (proxy, url) = Proxy::in_front_of(settings.database.url.expose(), 5432).await;
    settings.database.url = Secret::new(url);
    settings.database.acquire_timeout_ms = u64::try_from(ACQUIRE_TIMEOUT.as_millis()).unwrap();
    let app = spawn_app_with(settings).await;
    let account = app.register("ada@example.com").await;
    assert_eq!(
        list_users(&app, &account.access_token).await.0.status,
        StatusCode::OK
    );

    proxy.go_down();
    let (response, took) = list_users(&app, &account.access_token).await;
    assert_eq!(
        response.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        response.text
    );
    assert_eq!(
        response.header("content-type"),
        Some("application/problem+json")
    );
    assert_eq!(response.code(), "service_unavailable");
    assert!(took < NO_HANG, "the 503 took {took:?}");
    let started = Instant::now();
    let ready = app.request("GET", "/health/ready", None, None).await;
    assert_eq!(
        ready.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        ready.text
    );
    assert_ne!(ready.body["checks"]["database"], "ok");
    let took = started.elapsed();
    assert!(took < NO_HANG, "readiness took {took:?}");

    proxy.come_back();
    eventually(
        "the database is used again",
        Duration::from_secs(20),
        || async {
            let (response, _) = list_users(&app, &account.access_token).await;
            (response.status == StatusCode::OK).then_some(())
        },
    )
    .await;
    let ready = app.request("GET", "/health/ready", None, None).await;
    assert_eq!(ready.status, StatusCode::OK, "{}", ready.text);
}
