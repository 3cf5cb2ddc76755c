//! The client a request counts against: the peer, unless the peer is a trusted proxy,
//! whose forwarded headers then name the client. One client's failed sign-ins behind
//! the ingress must not lock out everyone else behind it.

use actix_web::http::StatusCode;
use keystone_tests::{TestApp, TestResponse, spawn_app_with, test_settings};
use serde_json::json;

async fn with_client_limit(trusted: &[&str]) -> TestApp {
    let mut settings = test_settings().await;
    settings.auth.login_throttle.max_failures_per_client = 3;
    settings.server.trusted_proxies = trusted.iter().map(|s| (*s).to_owned()).collect();
    spawn_app_with(settings).await
}

/// A failed sign-in for a new email, from `forwarded_for`.
async fn fail_from(app: &TestApp, n: usize, forwarded_for: &str) -> TestResponse {
    let body = json!({"email": format!("nobody{n}@example.com"), "password": "whatever!"});
    let request = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .insert_header(("x-forwarded-for", forwarded_for));
    let response = request.send_json(&body).await.expect("the server answers");
    TestResponse {
        status: response.status(),
        headers: response.headers().clone(),
        body: serde_json::Value::Null,
        text: String::new(),
    }
}

#[actix_web::test]
async fn behind_a_trusted_proxy_each_client_is_throttled_on_its_own() {
    // The tests connect from 127.0.0.1: here, the ingress.
    let app = with_client_limit(&["127.0.0.1"]).await;
    for n in 0..3 {
        assert_eq!(
            fail_from(&app, n, "203.0.113.1").await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    let blocked = fail_from(&app, 3, "203.0.113.1").await;
    assert_eq!(blocked.status, StatusCode::TOO_MANY_REQUESTS);
    // Another client behind the same proxy is not locked out.
    assert_eq!(
        fail_from(&app, 4, "203.0.113.2").await.status,
        StatusCode::UNAUTHORIZED
    );
    // Nor can the throttled client slip past by claiming another address to the left.
    let claimed = fail_from(&app, 5, "198.51.100.9, 203.0.113.1").await;
    assert_eq!(claimed.status, StatusCode::TOO_MANY_REQUESTS);
}

#[actix_web::test]
async fn without_a_trusted_proxy_a_forwarded_header_changes_nothing() {
    let app = with_client_limit(&[]).await;
    for n in 0..3 {
        let forged = format!("203.0.113.{n}");
        assert_eq!(
            fail_from(&app, n, &forged).await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    let blocked = fail_from(&app, 3, "203.0.113.99").await;
    assert_eq!(blocked.status, StatusCode::TOO_MANY_REQUESTS);
}
