//! Tenant A never sees, changes or learns of tenant B's users: every such attempt is
//! the same 404 a missing user gets.

use actix_web::http::StatusCode;
use keystone_tests::{PASSWORD, spawn_app};
use serde_json::json;

#[actix_web::test]
async fn another_tenants_user_is_not_found_on_every_route() {
    let app = spawn_app().await;
    let a = app.register("a@example.com").await;
    let b = app.register("b@example.com").await;
    let b_member = app.add_user(&b, "b-member@example.com", "member").await;
    let missing = uuid::Uuid::now_v7();
    let token = Some(a.access_token.as_str());
    for target in [b_member.user_id.clone(), missing.to_string()] {
        let user = format!("/api/v1/users/{target}");
        let responses = [
            app.request("GET", &user, token, None).await,
            app.request(
                "PATCH",
                &user,
                token,
                Some(&json!({"username": "taken-over"})),
            )
            .await,
            app.request("POST", &format!("{user}/deactivate"), token, None)
                .await,
            app.request("POST", &format!("{user}/activate"), token, None)
                .await,
            app.request("DELETE", &user, token, None).await,
            app.request("POST", &format!("{user}/restore"), token, None)
                .await,
        ];
        let mut bodies = Vec::new();
        for response in responses {
            assert_eq!(
                response.status,
                StatusCode::NOT_FOUND,
                "{target}: {}",
                response.text
            );
            assert_eq!(response.code(), "not_found");
            bodies.push(response.body["detail"].clone());
        }
        assert!(bodies.windows(2).all(|pair| pair[0] == pair[1]));
    }
    // Tenant B's user is untouched and still signs in.
    let b_view = app
        .get(
            &format!("/api/v1/users/{}", b_member.user_id),
            &b.access_token,
        )
        .await;
    assert_eq!(b_view.body["username"], "someone");
    assert_eq!(b_view.body["is_active"], true);
    app.login("b-member@example.com", PASSWORD).await;
}

#[actix_web::test]
async fn listing_and_searching_never_show_another_tenant() {
    let app = spawn_app().await;
    let a = app.register("a@example.com").await;
    let b = app.register("b@example.com").await;
    app.add_user(&b, "findme@example.com", "member").await;
    for path in [
        "/api/v1/users",
        "/api/v1/users?q=findme",
        "/api/v1/users?include_deleted=true&limit=100",
    ] {
        let response = app.get(path, &a.access_token).await;
        assert_eq!(response.status, StatusCode::OK);
        let items = response.body["items"].as_array().unwrap();
        assert!(
            items.iter().all(|u| u["tenant_id"] == a.tenant_id.as_str()),
            "{path}"
        );
        assert!(!response.text.contains("findme"), "{path}");
    }
}

#[actix_web::test]
async fn a_created_user_lands_in_the_callers_tenant_whatever_the_body_says() {
    let app = spawn_app().await;
    let a = app.register("a@example.com").await;
    let b = app.register("b@example.com").await;
    let body = json!({"email": "new@example.com", "username": "newbie", "password": PASSWORD, "role": "member", "tenant_id": b.tenant_id});
    let response = app
        .post("/api/v1/users", Some(&a.access_token), &body)
        .await;
    assert_eq!(
        response.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "unknown fields are refused"
    );
    let body = json!({"email": "new@example.com", "username": "newbie", "password": PASSWORD, "role": "member"});
    let response = app
        .client
        .post(app.url("/api/v1/users"))
        .bearer_auth(&a.access_token)
        .insert_header(("x-tenant-id", b.tenant_id.as_str()))
        .send_json(&body)
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let member = app.login("new@example.com", PASSWORD).await;
    assert_eq!(member.tenant_id, a.tenant_id);
}
