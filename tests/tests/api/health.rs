use actix_web::http::StatusCode;
use keystone_tests::spawn_app;

#[actix_web::test]
async fn liveness_answers_ok() {
    let app = spawn_app().await;
    let response = app.request("GET", "/health/live", None, None).await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.body["status"], "ok");
}

#[actix_web::test]
async fn readiness_reports_the_database_as_ok() {
    let app = spawn_app().await;
    let response = app.request("GET", "/health/ready", None, None).await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text);
    assert_eq!(response.body["checks"]["database"], "ok");
}

#[actix_web::test]
async fn the_api_root_names_the_service_and_its_version() {
    let app = spawn_app().await;
    let response = app.request("GET", "/api/v1", None, None).await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.body["name"], "keystone");
    assert_eq!(response.body["version"], env!("CARGO_PKG_VERSION"));
}

#[actix_web::test]
async fn every_response_carries_a_request_id_and_echoes_a_sane_one() {
    let app = spawn_app().await;
    let generated = app.request("GET", "/health/live", None, None).await;
    assert!(
        !generated
            .header("x-request-id")
            .unwrap_or_default()
            .is_empty()
    );
    let response = app
        .client
        .get(app.url("/health/live"))
        .insert_header(("x-request-id", "abc-123"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers().get("x-request-id").unwrap(), "abc-123");
}

#[actix_web::test]
async fn an_unknown_route_is_a_404_problem() {
    let app = spawn_app().await;
    let response = app.request("GET", "/api/v1/nothing-here", None, None).await;
    assert_eq!(response.status, StatusCode::NOT_FOUND);
    assert_eq!(
        response.header("content-type"),
        Some("application/problem+json")
    );
    assert_eq!(response.body["status"], 404);
}
