//! A database that goes away and comes back. PostgreSQL only (`TEST_DATABASE_URL`): the
//! application reaches it through a TCP proxy in this test, which can drop every
//! connection and refuse new ones, like a database server that restarts.

use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use infrastructure::testing::Backend;
use keystone_tests::proxy::Proxy;
use keystone_tests::{TestApp, TestResponse, spawn_app_with, test_settings};
use server::settings::Secret;

/// A read that always needs the database: lists are never cached (a read by id may be
/// answered from the cache while the database is away).
async fn list_users(app: &TestApp, token: &str) -> (TestResponse, Duration) {
    let started = Instant::now();
    let response = app.get("/api/v1/users", token).await;
    (response, started.elapsed())
}

#[actix_web::test]
async fn a_database_that_goes_away_is_a_fast_503_and_is_used_again_once_it_is_back() {
    if !matches!(Backend::preferred(), Backend::Postgres { .. }) {
        eprintln!("skipped: set TEST_DATABASE_URL to run the database outage test");
        return;
    }
    let mut settings = test_settings().await;
    let (proxy, url) = Proxy::in_front_of(settings.database.url.expose(), 5432).await;
    settings.database.url = Secret::new(url);
    settings.database.acquire_timeout_ms = 1_000;
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
    assert!(took < Duration::from_secs(2), "the 503 took {took:?}");
    let started = Instant::now();
    let ready = app.request("GET", "/health/ready", None, None).await;
    assert_eq!(
        ready.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        ready.text
    );
    assert_ne!(ready.body["checks"]["database"], "ok");
    assert!(started.elapsed() < Duration::from_secs(3));

    proxy.come_back();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (response, _) = list_users(&app, &account.access_token).await;
        if response.status == StatusCode::OK {
            break;
        }
        assert!(Instant::now() < deadline, "not back: {}", response.text);
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
    let ready = app.request("GET", "/health/ready", None, None).await;
    assert_eq!(ready.status, StatusCode::OK, "{}", ready.text);
}
