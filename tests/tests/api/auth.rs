use actix_web::http::StatusCode;
use keystone_tests::{PASSWORD, spawn_app, spawn_app_with, test_settings};
use serde_json::json;

#[actix_web::test]
async fn registering_creates_a_tenant_and_its_admin_without_exposing_the_hash() {
    let app = spawn_app().await;
    let response = app
        .post(
            "/api/v1/auth/register",
            None,
            &json!({"tenant_name": "Acme", "email": "Founder@Acme.io", "username": "founder", "password": PASSWORD}),
        )
        .await;
    assert_eq!(response.status, StatusCode::CREATED, "{}", response.text);
    assert_eq!(response.body["tenant"]["name"], "Acme");
    let user = &response.body["user"];
    assert_eq!(user["email"], "founder@acme.io");
    assert_eq!(user["role"], "admin");
    assert_eq!(user["is_active"], true);
    assert_eq!(user["tenant_id"], response.body["tenant"]["id"]);
    assert!(
        !response.text.contains("argon2"),
        "no hash in {}",
        response.text
    );
    assert!(user.get("password_hash").is_none());
}

#[actix_web::test]
async fn registering_an_email_twice_is_a_conflict() {
    let app = spawn_app().await;
    app.register("taken@example.com").await;
    let response = app
        .post(
            "/api/v1/auth/register",
            None,
            &json!({"tenant_name": "Other", "email": "TAKEN@example.com", "username": "other", "password": PASSWORD}),
        )
        .await;
    assert_eq!(response.status, StatusCode::CONFLICT);
    assert_eq!(response.code(), "email_taken");
}

#[actix_web::test]
async fn logging_in_returns_a_bearer_token_pair() {
    let app = spawn_app().await;
    app.register("admin@example.com").await;
    let response = app
        .post(
            "/api/v1/auth/login",
            None,
            &json!({"email": "admin@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.body["token_type"], "Bearer");
    assert_eq!(response.body["expires_in"], 900);
    assert!(
        response.body["access_token"]
            .as_str()
            .unwrap()
            .split('.')
            .count()
            == 3
    );
    assert!(!response.body["refresh_token"].as_str().unwrap().is_empty());
}

#[actix_web::test]
async fn unknown_email_wrong_password_and_deactivated_or_deleted_users_get_the_same_401() {
    let app = spawn_app().await;
    let admin = app.register("admin@example.com").await;
    let inactive = app.add_user(&admin, "inactive@example.com", "member").await;
    let deleted = app.add_user(&admin, "deleted@example.com", "member").await;
    let path = format!("/api/v1/users/{}/deactivate", inactive.user_id);
    assert_eq!(
        app.post(&path, Some(&admin.access_token), &json!({}))
            .await
            .status,
        StatusCode::OK
    );
    let path = format!("/api/v1/users/{}", deleted.user_id);
    let removed = app
        .request("DELETE", &path, Some(&admin.access_token), None)
        .await;
    assert_eq!(removed.status, StatusCode::NO_CONTENT);

    let mut bodies = Vec::new();
    for (email, password) in [
        ("nobody@example.com", PASSWORD),
        ("admin@example.com", "wrong password!"),
        ("inactive@example.com", PASSWORD),
        ("deleted@example.com", PASSWORD),
    ] {
        let response = app
            .post(
                "/api/v1/auth/login",
                None,
                &json!({"email": email, "password": password}),
            )
            .await;
        assert_eq!(response.status, StatusCode::UNAUTHORIZED, "{email}");
        assert_eq!(response.code(), "invalid_credentials");
        bodies.push(response.body["detail"].clone());
    }
    assert!(
        bodies.windows(2).all(|pair| pair[0] == pair[1]),
        "{bodies:?}"
    );
}

#[actix_web::test]
async fn repeated_failures_for_one_email_are_throttled_with_retry_after() {
    let mut settings = test_settings().await;
    settings.auth.login_throttle.max_failures_per_email = 3;
    let app = spawn_app_with(settings).await;
    app.register("admin@example.com").await;
    let wrong = json!({"email": "admin@example.com", "password": "wrong password!"});
    for _ in 0..3 {
        let response = app.post("/api/v1/auth/login", None, &wrong).await;
        assert_eq!(response.status, StatusCode::UNAUTHORIZED);
    }
    let right = json!({"email": "admin@example.com", "password": PASSWORD});
    let response = app.post("/api/v1/auth/login", None, &right).await;
    assert_eq!(response.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(response.code(), "too_many_requests");
    let retry_after: u64 = response.header("retry-after").unwrap().parse().unwrap();
    assert!(retry_after > 0);
}

#[actix_web::test]
async fn repeated_failures_from_one_client_are_throttled_across_emails() {
    let mut settings = test_settings().await;
    settings.auth.login_throttle.max_failures_per_client = 3;
    let app = spawn_app_with(settings).await;
    for n in 0..3 {
        let body = json!({"email": format!("nobody{n}@example.com"), "password": "whatever!"});
        let response = app.post("/api/v1/auth/login", None, &body).await;
        assert_eq!(response.status, StatusCode::UNAUTHORIZED);
    }
    let body = json!({"email": "someone-else@example.com", "password": "whatever!"});
    let response = app.post("/api/v1/auth/login", None, &body).await;
    assert_eq!(response.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(response.header("retry-after").is_some());
}

#[actix_web::test]
async fn of_a_burst_of_wrong_passwords_at_once_only_the_limit_are_checked() {
    let mut settings = test_settings().await;
    settings.auth.login_throttle.max_failures_per_email = 3;
    let app = spawn_app_with(settings).await;
    app.register("ada@example.com").await;
    let body = json!({"email": "ada@example.com", "password": "wrong guess"});
    let burst = (0..10).map(|_| app.post("/api/v1/auth/login", None, &body));
    let statuses: Vec<StatusCode> = futures_util::future::join_all(burst)
        .await
        .iter()
        .map(|response| response.status)
        .collect();
    let checked = statuses
        .iter()
        .filter(|status| **status == StatusCode::UNAUTHORIZED)
        .count();
    let refused = statuses
        .iter()
        .filter(|status| **status == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!((checked, refused), (3, 7), "{statuses:?}");
}

#[actix_web::test]
async fn registrations_from_one_client_are_throttled_with_retry_after() {
    let mut settings = test_settings().await;
    settings.auth.registration_throttle.max_per_client = 2;
    let app = spawn_app_with(settings).await;
    app.register("one@example.com").await;
    app.register("two@example.com").await;
    let third = app
        .post(
            "/api/v1/auth/register",
            None,
            &json!({"tenant_name": "Third", "email": "three@example.com", "username": "three", "password": PASSWORD}),
        )
        .await;
    assert_eq!(
        third.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        third.text
    );
    assert!(third.header("retry-after").is_some());
}

#[actix_web::test]
async fn a_refresh_token_is_traded_once_for_a_new_pair() {
    let app = spawn_app().await;
    let account = app.register("admin@example.com").await;
    let body = json!({"refresh_token": account.refresh_token});
    let first = app.post("/api/v1/auth/refresh", None, &body).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text);
    assert_ne!(first.body["refresh_token"], body["refresh_token"]);
    let new_access = first.body["access_token"].as_str().unwrap();
    assert_eq!(
        app.get("/api/v1/users/me", new_access).await.status,
        StatusCode::OK
    );

    let replay = app.post("/api/v1/auth/refresh", None, &body).await;
    assert_eq!(replay.status, StatusCode::UNAUTHORIZED);
    assert_eq!(replay.code(), "invalid_refresh_token");
}

#[actix_web::test]
async fn replaying_a_used_refresh_token_revokes_every_token_descended_from_it() {
    let app = spawn_app().await;
    let account = app.register("admin@example.com").await;
    let original = json!({"refresh_token": account.refresh_token});
    let child = app.post("/api/v1/auth/refresh", None, &original).await;
    let child_token = json!({"refresh_token": child.body["refresh_token"]});
    let grandchild = app.post("/api/v1/auth/refresh", None, &child_token).await;
    assert_eq!(grandchild.status, StatusCode::OK);

    let replay = app.post("/api/v1/auth/refresh", None, &original).await;
    assert_eq!(replay.status, StatusCode::UNAUTHORIZED);
    let descendant = json!({"refresh_token": grandchild.body["refresh_token"]});
    let after = app.post("/api/v1/auth/refresh", None, &descendant).await;
    assert_eq!(
        after.status,
        StatusCode::UNAUTHORIZED,
        "the descendant was revoked"
    );
}

#[actix_web::test]
async fn logout_ends_the_session_and_is_idempotent() {
    let app = spawn_app().await;
    let account = app.register("admin@example.com").await;
    let body = json!({"refresh_token": account.refresh_token});
    let response = app.post("/api/v1/auth/logout", None, &body).await;
    assert_eq!(response.status, StatusCode::NO_CONTENT);
    assert!(response.text.is_empty());
    let again = app.post("/api/v1/auth/logout", None, &body).await;
    assert_eq!(again.status, StatusCode::NO_CONTENT);
    let refresh = app.post("/api/v1/auth/refresh", None, &body).await;
    assert_eq!(refresh.status, StatusCode::UNAUTHORIZED);
}

#[actix_web::test]
async fn other_sessions_survive_a_logout() {
    let app = spawn_app().await;
    let first = app.register("admin@example.com").await;
    let second = app.login("admin@example.com", PASSWORD).await;
    let body = json!({"refresh_token": first.refresh_token});
    let logout = app.post("/api/v1/auth/logout", None, &body).await;
    assert_eq!(logout.status, StatusCode::NO_CONTENT, "{}", logout.text);
    assert_eq!(
        app.post("/api/v1/auth/refresh", None, &body).await.status,
        StatusCode::UNAUTHORIZED,
        "the session logged out is over"
    );
    let other = json!({"refresh_token": second.refresh_token});
    assert_eq!(
        app.post("/api/v1/auth/refresh", None, &other).await.status,
        StatusCode::OK
    );
}

#[actix_web::test]
async fn changing_the_password_ends_every_other_session_and_signs_in_anew() {
    let app = spawn_app().await;
    let account = app.register("admin@example.com").await;
    let other = app.login("admin@example.com", PASSWORD).await;
    let body = json!({"current_password": PASSWORD, "new_password": "a brand new secret"});
    let response = app
        .post("/api/v1/auth/password", Some(&account.access_token), &body)
        .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text);
    assert!(!response.text.contains("a brand new secret"));
    let fresh = response.body["access_token"].as_str().unwrap();
    assert_eq!(
        app.get("/api/v1/users/me", fresh).await.status,
        StatusCode::OK
    );

    for session in [&account.refresh_token, &other.refresh_token] {
        let refresh = json!({"refresh_token": session});
        let traded = app.post("/api/v1/auth/refresh", None, &refresh).await;
        assert_eq!(traded.status, StatusCode::UNAUTHORIZED, "{}", traded.text);
    }
    let kept = json!({"refresh_token": response.body["refresh_token"]});
    let traded = app.post("/api/v1/auth/refresh", None, &kept).await;
    assert_eq!(traded.status, StatusCode::OK, "{}", traded.text);

    let old = json!({"email": "admin@example.com", "password": PASSWORD});
    let refused = app.post("/api/v1/auth/login", None, &old).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    app.login("admin@example.com", "a brand new secret").await;
}

#[actix_web::test]
async fn a_wrong_current_password_changes_nothing() {
    let app = spawn_app().await;
    let account = app.register("admin@example.com").await;
    let body = json!({"current_password": "a guess at it", "new_password": "a brand new secret"});
    let response = app
        .post("/api/v1/auth/password", Some(&account.access_token), &body)
        .await;
    assert_eq!(
        response.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        response.text
    );
    assert_eq!(response.code(), "wrong_password");
    let session = json!({"refresh_token": account.refresh_token});
    let traded = app.post("/api/v1/auth/refresh", None, &session).await;
    assert_eq!(traded.status, StatusCode::OK, "the session lives on");
    app.login("admin@example.com", PASSWORD).await;
}

#[actix_web::test]
async fn a_new_password_that_breaks_the_rules_is_named_and_changes_nothing() {
    let app = spawn_app().await;
    let account = app.register("admin@example.com").await;
    let body = json!({"current_password": PASSWORD, "new_password": "short"});
    let response = app
        .post("/api/v1/auth/password", Some(&account.access_token), &body)
        .await;
    assert_eq!(
        response.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        response.text
    );
    assert_eq!(response.body["errors"][0]["field"], "new_password");
    app.login("admin@example.com", PASSWORD).await;
}

#[actix_web::test]
async fn changing_the_password_takes_a_signed_in_caller() {
    let app = spawn_app().await;
    let body = json!({"current_password": PASSWORD, "new_password": "a brand new secret"});
    let response = app.post("/api/v1/auth/password", None, &body).await;
    assert_eq!(response.status, StatusCode::UNAUTHORIZED);
}
