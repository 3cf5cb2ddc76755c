use actix_web::http::StatusCode;
use keystone_tests::spawn_app;
use serde_json::Value;

/// `docs/openapi.json` is what clients generate code from: it must be exactly what the
/// server serves. Regenerate it with `just openapi`.
#[actix_web::test]
async fn the_committed_openapi_document_matches_what_the_server_serves() {
    let app = spawn_app().await;
    let served = app.request("GET", "/openapi.json", None, None).await;
    assert_eq!(served.status, StatusCode::OK);
    let committed_path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/openapi.json");
    let committed: Value = serde_json::from_str(
        &std::fs::read_to_string(committed_path).expect("docs/openapi.json exists"),
    )
    .expect("docs/openapi.json is JSON");
    assert!(
        served.body == committed,
        "docs/openapi.json is out of date: run `just openapi` and commit the result"
    );
}

#[actix_web::test]
async fn the_openapi_document_is_3_1_and_covers_every_route_and_bearer_auth() {
    let app = spawn_app().await;
    let document = app.request("GET", "/openapi.json", None, None).await.body;
    assert!(document["openapi"].as_str().unwrap().starts_with("3.1"));
    for path in [
        "/health/live",
        "/health/ready",
        "/api/v1",
        "/api/v1/auth/register",
        "/api/v1/auth/login",
        "/api/v1/auth/refresh",
        "/api/v1/auth/logout",
        "/api/v1/users",
        "/api/v1/users/me",
        "/api/v1/users/{id}",
        "/api/v1/users/{id}/activate",
        "/api/v1/users/{id}/deactivate",
        "/api/v1/users/{id}/restore",
    ] {
        assert!(document["paths"][path].is_object(), "{path} is documented");
    }
    let schemes = &document["components"]["securitySchemes"];
    assert!(
        schemes
            .as_object()
            .unwrap()
            .values()
            .any(|s| s["scheme"] == "bearer"),
        "a bearer security scheme is declared"
    );
    assert!(document["components"]["schemas"]["Problem"].is_object());
}

#[actix_web::test]
async fn the_docs_page_is_served_as_html() {
    let app = spawn_app().await;
    let response = app.request("GET", "/docs", None, None).await;
    assert_eq!(response.status, StatusCode::OK);
    assert!(
        response
            .header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    assert!(response.text.to_lowercase().contains("scalar"));
}
