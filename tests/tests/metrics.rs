//! `/metrics`. There is one recorder per process, shared by every application in it, so
//! these tests run in a test binary of their own, and the ones that count take turns:
//! a counter then grows by exactly what the test did, which no other test can fake.

use actix_web::http::StatusCode;
use keystone_tests::{TestApp, spawn_app, spawn_app_with, test_settings};
use serde_json::json;
use tokio::sync::Mutex;
use uuid::Uuid;

/// Held by each test while it counts.
static COUNTING: Mutex<()> = Mutex::const_new(());

/// The Prometheus text of `/metrics` on the API's port.
async fn scrape(app: &TestApp) -> String {
    let response = app.request("GET", "/metrics", None, None).await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text);
    assert!(
        response
            .header("content-type")
            .is_some_and(|value| value.starts_with("text/plain; version=0.0.4")),
        "{:?}",
        response.headers
    );
    response.text
}

/// The value of one series (`name{labels}`), 0 when it does not exist yet.
fn value(scraped: &str, series: &str) -> f64 {
    scraped
        .lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map_or(0.0, |value| value.trim().parse().unwrap())
}

fn requests(method: &str, route: &str, status_class: &str) -> String {
    format!(
        r#"keystone_http_requests_total{{method="{method}",route="{route}",status_class="{status_class}"}}"#
    )
}

#[actix_web::test]
async fn requests_are_counted_by_route_pattern_and_status_class_never_by_path() {
    let app = spawn_app().await;
    let account = app.register("ada@example.com").await;
    let task = app
        .create_task(&account, &json!({"title": "Count me"}))
        .await;
    let id = task["id"].as_str().unwrap();
    let found = requests("GET", "/api/v1/tasks/{id}", "2xx");
    let missing = requests("GET", "/api/v1/tasks/{id}", "4xx");
    let duration = r#"keystone_http_request_duration_seconds_count{method="GET",route="/api/v1/tasks/{id}",status_class="2xx"}"#;
    let _turn = COUNTING.lock().await;
    let before = scrape(&app).await;

    for _ in 0..3 {
        let response = app
            .get(&format!("/api/v1/tasks/{id}"), &account.access_token)
            .await;
        assert_eq!(response.status, StatusCode::OK);
    }
    let unknown = Uuid::now_v7();
    let response = app
        .get(&format!("/api/v1/tasks/{unknown}"), &account.access_token)
        .await;
    assert_eq!(response.status, StatusCode::NOT_FOUND);

    let after = scrape(&app).await;
    #[allow(
        clippy::float_cmp,
        reason = "counters are whole numbers, exact as floats"
    )]
    {
        assert_eq!(
            value(&after, &found),
            value(&before, &found) + 3.0,
            "{after}"
        );
        assert_eq!(
            value(&after, &missing),
            value(&before, &missing) + 1.0,
            "{after}"
        );
        assert_eq!(
            value(&after, duration),
            value(&before, duration) + 3.0,
            "{after}"
        );
    }
    assert!(!after.contains(id), "a raw path was recorded:\n{after}");
    assert!(!after.contains(&unknown.to_string()), "{after}");
}

#[actix_web::test]
async fn a_path_no_route_matches_is_counted_as_unmatched() {
    let app = spawn_app().await;
    let unmatched = requests("GET", "unmatched", "4xx");
    let _turn = COUNTING.lock().await;
    let before = scrape(&app).await;
    let path = format!("/api/v1/nothing-{}", Uuid::now_v7());
    let response = app.request("GET", &path, None, None).await;
    assert_eq!(response.status, StatusCode::NOT_FOUND);
    let after = scrape(&app).await;
    #[allow(
        clippy::float_cmp,
        reason = "counters are whole numbers, exact as floats"
    )]
    {
        assert_eq!(
            value(&after, &unmatched),
            value(&before, &unmatched) + 1.0,
            "{after}"
        );
    }
    assert!(!after.contains(&path), "{after}");
}

#[actix_web::test]
async fn the_scrape_shows_requests_in_flight_the_pool_and_the_build() {
    let app = spawn_app().await;
    let scraped = scrape(&app).await;
    // The scrape itself is in flight while it renders.
    assert!(
        value(&scraped, "keystone_http_requests_in_flight") >= 1.0,
        "{scraped}"
    );
    // Read from this application's pool as the scrape renders.
    let max = format!(
        "keystone_db_pool_max_connections {}\n",
        app.settings.database.max_connections
    );
    assert!(scraped.contains(&max), "{scraped}");
    assert!(
        value(&scraped, "keystone_db_pool_connections") >= 1.0,
        "{scraped}"
    );
    assert!(
        scraped.contains("keystone_db_pool_idle_connections "),
        "{scraped}"
    );
    assert!(scraped.contains("\nkeystone_db_pool_waiters "), "{scraped}");
    let build = format!(
        r#"keystone_build_info{{version="{}",git_sha="#,
        env!("CARGO_PKG_VERSION")
    );
    assert!(scraped.contains(&build), "{scraped}");
}

#[actix_web::test]
async fn with_a_metrics_port_metrics_are_served_there_and_not_on_the_api_port() {
    let mut settings = test_settings().await;
    settings.metrics.port = Some(0);
    let app = spawn_app_with(settings).await;
    let on_api_port = app.request("GET", "/metrics", None, None).await;
    assert_eq!(on_api_port.status, StatusCode::NOT_FOUND);

    let metrics = app.metrics_address.clone().expect("a metrics port");
    let mut response = app
        .client
        .get(format!("{metrics}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body = String::from_utf8(response.body().await.unwrap().to_vec()).unwrap();
    assert!(body.contains("keystone_build_info"), "{body}");
    let api = app
        .client
        .get(format!("{metrics}/health/live"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        api.status(),
        StatusCode::NOT_FOUND,
        "only /metrics is there"
    );
}
