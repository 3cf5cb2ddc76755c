//! Bad input gets a precise problem+json error and changes nothing.

use actix_web::http::StatusCode;
use keystone_tests::{PASSWORD, TestApp, spawn_app};
use serde_json::json;

async fn user_count(app: &TestApp, token: &str) -> usize {
    let list = app
        .get("/api/v1/users?include_deleted=true&limit=100", token)
        .await;
    list.body["items"].as_array().unwrap().len()
}

fn fields(response: &keystone_tests::TestResponse) -> Vec<String> {
    let mut fields: Vec<String> = response.body["errors"]
        .as_array()
        .unwrap_or(&Vec::new())
        .iter()
        .map(|e| e["field"].as_str().unwrap().to_owned())
        .collect();
    fields.sort();
    fields
}

#[actix_web::test]
async fn malformed_json_is_a_400_problem() {
    let app = spawn_app().await;
    let admin = app.register("admin@example.com").await;
    let response = app
        .send_raw(
            "POST",
            "/api/v1/users",
            Some(&admin.access_token),
            Some("application/json"),
            b"{\"email\": ".to_vec(),
        )
        .await;
    assert_eq!(response.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        response.header("content-type"),
        Some("application/problem+json")
    );
    assert_eq!(response.code(), "malformed_json");
    for key in ["type", "title", "status", "detail"] {
        assert!(!response.body[key].is_null(), "{key} present");
    }
    assert_eq!(user_count(&app, &admin.access_token).await, 1);
}

#[actix_web::test]
async fn a_wrong_content_type_is_a_415() {
    let app = spawn_app().await;
    let body = json!({"email": "a@example.com", "password": PASSWORD})
        .to_string()
        .into_bytes();
    let response = app
        .send_raw(
            "POST",
            "/api/v1/auth/login",
            None,
            Some("text/plain"),
            body.clone(),
        )
        .await;
    assert_eq!(response.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(response.code(), "unsupported_media_type");
    let missing = app
        .send_raw("POST", "/api/v1/auth/login", None, None, body)
        .await;
    assert_eq!(missing.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

#[actix_web::test]
async fn a_body_over_64_kib_is_a_413() {
    let app = spawn_app().await;
    let big = json!({"tenant_name": "x".repeat(70 * 1024), "email": "a@example.com", "username": "abc", "password": PASSWORD});
    let response = app.post("/api/v1/auth/register", None, &big).await;
    assert_eq!(response.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(response.code(), "payload_too_large");
}

#[actix_web::test]
async fn a_non_uuid_id_in_the_path_is_a_400() {
    let app = spawn_app().await;
    let admin = app.register("admin@example.com").await;
    let response = app
        .get("/api/v1/users/not-a-uuid", &admin.access_token)
        .await;
    assert_eq!(response.status, StatusCode::BAD_REQUEST);
    assert_eq!(response.code(), "invalid_path");
}

#[actix_web::test]
async fn every_invalid_field_is_listed_in_one_422_and_nothing_is_written() {
    let app = spawn_app().await;
    let admin = app.register("admin@example.com").await;
    let body =
        json!({"email": "not-an-email", "username": "X", "password": "short", "role": "owner"});
    let response = app
        .post("/api/v1/users", Some(&admin.access_token), &body)
        .await;
    assert_eq!(
        response.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        response.text
    );
    assert_eq!(response.code(), "validation_failed");
    assert_eq!(fields(&response), ["email", "password", "role", "username"]);
    assert!(
        response.body["errors"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["message"].is_string())
    );
    assert_eq!(user_count(&app, &admin.access_token).await, 1);
}

#[actix_web::test]
async fn an_unknown_field_is_a_422_naming_it() {
    let app = spawn_app().await;
    let body = json!({"tenant_name": "Acme", "email": "a@example.com", "username": "abc", "password": PASSWORD, "is_admin": true});
    let response = app.post("/api/v1/auth/register", None, &body).await;
    assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fields(&response), ["is_admin"]);
    let login = app
        .request(
            "POST",
            "/api/v1/auth/login",
            None,
            Some(&json!({"email": "a@example.com", "password": PASSWORD})),
        )
        .await;
    assert_eq!(
        login.status,
        StatusCode::UNAUTHORIZED,
        "the tenant was not created"
    );
}

#[actix_web::test]
async fn a_missing_or_mistyped_field_is_a_422_naming_it() {
    let app = spawn_app().await;
    let missing = app
        .post(
            "/api/v1/auth/login",
            None,
            &json!({"email": "a@example.com"}),
        )
        .await;
    assert_eq!(missing.status, StatusCode::UNPROCESSABLE_ENTITY);
    let mistyped = app
        .post(
            "/api/v1/auth/login",
            None,
            &json!({"email": 42, "password": PASSWORD}),
        )
        .await;
    assert_eq!(mistyped.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fields(&mistyped), ["email"]);
}

#[actix_web::test]
async fn registration_validates_every_field() {
    let app = spawn_app().await;
    let body = json!({"tenant_name": "  ", "email": "@", "username": "ab", "password": "1234567"});
    let response = app.post("/api/v1/auth/register", None, &body).await;
    assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        fields(&response),
        ["email", "password", "tenant_name", "username"]
    );
}

#[actix_web::test]
async fn out_of_range_limits_and_bad_cursors_are_422() {
    let app = spawn_app().await;
    let admin = app.register("admin@example.com").await;
    for (path, field) in [
        ("/api/v1/users?limit=0", "limit"),
        ("/api/v1/users?limit=101", "limit"),
        ("/api/v1/users?cursor=garbage", "cursor"),
    ] {
        let response = app.get(path, &admin.access_token).await;
        assert_eq!(
            response.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{path}: {}",
            response.text
        );
        assert_eq!(fields(&response), [field], "{path}");
    }
    let max = app
        .get("/api/v1/users?limit=100", &admin.access_token)
        .await;
    assert_eq!(max.status, StatusCode::OK);
}

#[actix_web::test]
async fn a_patch_with_an_invalid_field_changes_nothing() {
    let app = spawn_app().await;
    let admin = app.register("admin@example.com").await;
    let path = format!("/api/v1/users/{}", admin.user_id);
    let body = json!({"username": "valid-name", "email": "broken"});
    let response = app
        .request("PATCH", &path, Some(&admin.access_token), Some(&body))
        .await;
    assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fields(&response), ["email"]);
    let me = app.get("/api/v1/users/me", &admin.access_token).await;
    assert_eq!(me.body["username"], "admin");
}
