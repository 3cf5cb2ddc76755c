//! What every response says about how it may be handled, and cross-origin reads.

use actix_web::http::StatusCode;
use keystone_tests::{TestResponse, spawn_app, spawn_app_with, test_settings};

fn assert_marked(response: &TestResponse, what: &str) {
    assert_eq!(
        response.header("x-content-type-options"),
        Some("nosniff"),
        "{what}"
    );
    assert_eq!(
        response.header("referrer-policy"),
        Some("no-referrer"),
        "{what}"
    );
    assert_eq!(response.header("x-frame-options"), Some("DENY"), "{what}");
    let csp = response
        .header("content-security-policy")
        .unwrap_or_default();
    assert!(csp.contains("frame-ancestors 'none'"), "{what}: {csp:?}");
}

#[actix_web::test]
async fn every_response_is_marked_and_authenticated_ones_are_not_stored() {
    let app = spawn_app().await;
    let admin = app.register("ada@example.com").await;
    let public = app.request("GET", "/health/live", None, None).await;
    assert_marked(&public, "a public answer");
    assert_eq!(
        public.header("strict-transport-security"),
        None,
        "HSTS is off by default"
    );
    let missing = app.request("GET", "/nowhere", None, None).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_marked(&missing, "an unknown route");
    let me = app.get("/api/v1/users/me", &admin.access_token).await;
    assert_marked(&me, "an authenticated answer");
    assert_eq!(me.header("cache-control"), Some("no-store"));
    let refused = app
        .request("GET", "/api/v1/users/me", Some("not a token"), None)
        .await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert_eq!(refused.header("cache-control"), Some("no-store"));
    // No other origin may read answers unless told.
    let cross = app
        .client
        .get(app.url("/health/live"))
        .insert_header(("origin", "https://elsewhere.example"))
        .send()
        .await
        .unwrap();
    assert!(cross.headers().get("access-control-allow-origin").is_none());
}

#[actix_web::test]
async fn listed_origins_may_read_and_preflight_and_others_get_nothing() {
    let mut settings = test_settings().await;
    settings.server.hsts = true;
    settings.server.cors_origins = vec!["https://app.example.com".to_owned()];
    let app = spawn_app_with(settings).await;
    let preflight = |origin: &'static str| {
        app.client
            .request(actix_web::http::Method::OPTIONS, app.url("/api/v1/tasks"))
            .insert_header(("origin", origin))
            .insert_header(("access-control-request-method", "POST"))
            .insert_header((
                "access-control-request-headers",
                "authorization, content-type",
            ))
            .send()
    };
    let allowed = preflight("https://app.example.com").await.unwrap();
    assert_eq!(allowed.status(), StatusCode::NO_CONTENT);
    let headers = allowed.headers();
    assert_eq!(
        headers.get("access-control-allow-origin").unwrap(),
        "https://app.example.com"
    );
    assert!(
        headers
            .get("access-control-allow-methods")
            .unwrap()
            .to_str()
            .unwrap()
            .contains("POST")
    );
    assert!(
        headers
            .get("access-control-allow-headers")
            .unwrap()
            .to_str()
            .unwrap()
            .contains("authorization")
    );
    let other = preflight("https://evil.example").await.unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());

    let read = app
        .client
        .get(app.url("/health/live"))
        .insert_header(("origin", "https://app.example.com"))
        .send()
        .await
        .unwrap();
    let headers = read.headers();
    assert_eq!(
        headers.get("access-control-allow-origin").unwrap(),
        "https://app.example.com"
    );
    assert!(
        headers
            .get("access-control-expose-headers")
            .unwrap()
            .to_str()
            .unwrap()
            .contains("etag")
    );
    assert!(
        headers
            .get("strict-transport-security")
            .unwrap()
            .to_str()
            .unwrap()
            .contains("max-age=")
    );
}
