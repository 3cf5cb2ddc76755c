//! `Idempotency-Key`: a retried create replays the first answer and creates nothing.

use actix_web::http::StatusCode;
use keystone_tests::{PASSWORD, spawn_app};
use serde_json::json;

#[actix_web::test]
async fn a_retry_with_the_same_key_and_body_replays_the_first_response() {
    let app = spawn_app().await;
    let admin = app.register("admin@example.com").await;
    let token = &admin.access_token;
    let body = json!({"title": "Once"});
    let headers = [("idempotency-key", "create-once-1")];
    let first = app
        .request_with("POST", "/api/v1/tasks", token, &headers, Some(&body))
        .await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
    assert_eq!(first.header("idempotent-replayed"), None);
    let retry = app
        .request_with("POST", "/api/v1/tasks", token, &headers, Some(&body))
        .await;
    assert_eq!(retry.status, StatusCode::CREATED);
    assert_eq!(retry.header("idempotent-replayed"), Some("true"));
    assert_eq!(retry.body, first.body);
    assert_eq!(retry.header("location"), first.header("location"));
    assert_eq!(
        retry.header("etag"),
        first.header("etag"),
        "the ETag of the body's version"
    );
    let list = app.get("/api/v1/tasks", token).await;
    assert_eq!(list.body["items"].as_array().unwrap().len(), 1);
}

#[actix_web::test]
async fn the_same_key_with_a_different_body_is_422() {
    let app = spawn_app().await;
    let admin = app.register("admin@example.com").await;
    let token = &admin.access_token;
    let headers = [("idempotency-key", "k-1")];
    let first = app
        .request_with(
            "POST",
            "/api/v1/tasks",
            token,
            &headers,
            Some(&json!({"title": "One"})),
        )
        .await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
    let other = app
        .request_with(
            "POST",
            "/api/v1/tasks",
            token,
            &headers,
            Some(&json!({"title": "Two"})),
        )
        .await;
    assert_eq!(other.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(other.code(), "idempotency_key_reused");
    let list = app.get("/api/v1/tasks", token).await;
    assert_eq!(list.body["items"].as_array().unwrap().len(), 1);
}

#[actix_web::test]
async fn keys_are_scoped_to_the_tenant() {
    let app = spawn_app().await;
    let a = app.register("a@example.com").await;
    let b = app.register("b@example.com").await;
    let headers = [("idempotency-key", "shared-key")];
    let body = json!({"title": "Same"});
    let first = app
        .request_with(
            "POST",
            "/api/v1/tasks",
            &a.access_token,
            &headers,
            Some(&body),
        )
        .await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
    let second = app
        .request_with(
            "POST",
            "/api/v1/tasks",
            &b.access_token,
            &headers,
            Some(&body),
        )
        .await;
    assert_eq!(second.status, StatusCode::CREATED);
    assert_eq!(second.header("idempotent-replayed"), None);
    assert_ne!(first.body["id"], second.body["id"]);
}

#[actix_web::test]
async fn concurrent_retries_create_exactly_one_task() {
    let app = spawn_app().await;
    let admin = app.register("admin@example.com").await;
    let body = json!({"title": "Racy"});
    let retries = (0..8).map(|_| {
        app.request_with(
            "POST",
            "/api/v1/tasks",
            &admin.access_token,
            &[("idempotency-key", "race-1")],
            Some(&body),
        )
    });
    let responses = futures_util::future::join_all(retries).await;
    for response in &responses {
        assert!(
            response.status == StatusCode::CREATED
                || (response.status == StatusCode::CONFLICT
                    && response.code() == "idempotency_request_in_progress"),
            "{}",
            response.text
        );
    }
    let created: Vec<_> = responses
        .iter()
        .filter(|r| r.status == StatusCode::CREATED)
        .collect();
    assert!(!created.is_empty());
    assert!(
        created
            .iter()
            .all(|r| r.body["id"] == created[0].body["id"])
    );
    let list = app.get("/api/v1/tasks", &admin.access_token).await;
    assert_eq!(list.body["items"].as_array().unwrap().len(), 1);
}

#[actix_web::test]
async fn a_failed_request_does_not_burn_its_key() {
    let app = spawn_app().await;
    let admin = app.register("admin@example.com").await;
    let stranger = app.register("stranger@example.com").await;
    let headers = [("idempotency-key", "after-failure")];
    let body = json!({"title": "Assign", "assignee_id": stranger.user_id});
    let failed = app
        .request_with(
            "POST",
            "/api/v1/tasks",
            &admin.access_token,
            &headers,
            Some(&body),
        )
        .await;
    assert_eq!(failed.status, StatusCode::UNPROCESSABLE_ENTITY);
    let fixed = json!({"title": "Assign"});
    let retried = app
        .request_with(
            "POST",
            "/api/v1/tasks",
            &admin.access_token,
            &headers,
            Some(&fixed),
        )
        .await;
    assert_eq!(retried.status, StatusCode::CREATED, "{}", retried.text);
}

#[actix_web::test]
async fn creating_a_user_is_idempotent_too() {
    let app = spawn_app().await;
    let admin = app.register("admin@example.com").await;
    let body = json!({"email": "new@example.com", "username": "newbie", "password": PASSWORD, "role": "member"});
    let headers = [("idempotency-key", "user-1")];
    let first = app
        .request_with(
            "POST",
            "/api/v1/users",
            &admin.access_token,
            &headers,
            Some(&body),
        )
        .await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
    let retry = app
        .request_with(
            "POST",
            "/api/v1/users",
            &admin.access_token,
            &headers,
            Some(&body),
        )
        .await;
    assert_eq!(
        retry.status,
        StatusCode::CREATED,
        "not a 409 email_taken: {}",
        retry.text
    );
    assert_eq!(retry.header("idempotent-replayed"), Some("true"));
    assert_eq!(retry.body["id"], first.body["id"]);
}

#[actix_web::test]
async fn a_malformed_idempotency_key_is_422() {
    let app = spawn_app().await;
    let admin = app.register("admin@example.com").await;
    let long = "k".repeat(256);
    let response = app
        .request_with(
            "POST",
            "/api/v1/tasks",
            &admin.access_token,
            &[("idempotency-key", &long)],
            Some(&json!({"title": "x"})),
        )
        .await;
    assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY);
}
