//! Every way an access token can be wrong is a 401 with `WWW-Authenticate: Bearer`.

use actix_web::http::StatusCode;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use keystone_tests::{Account, TestApp, spawn_app, spawn_app_with, test_settings};
use serde_json::{Value, json};
use server::settings::{PreviousKey, Secret};

fn claims(app: &TestApp, account: &Account) -> Value {
    let now = chrono::Utc::now().timestamp();
    json!({
        "iss": app.settings.auth.issuer,
        "aud": app.settings.auth.audience,
        "sub": account.user_id,
        "tid": account.tenant_id,
        "role": "admin",
        "iat": now,
        "exp": now + 600,
        "jti": uuid::Uuid::now_v7().to_string(),
    })
}

fn sign(claims: &Value, algorithm: Algorithm, kid: &str, secret: &str) -> String {
    let mut header = Header::new(algorithm);
    header.kid = Some(kid.to_owned());
    encode(
        &header,
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

fn sign_with_app_key(app: &TestApp, claims: &Value) -> String {
    let auth = &app.settings.auth;
    sign(
        claims,
        Algorithm::HS256,
        &auth.jwt_key_id,
        auth.jwt_secret.expose(),
    )
}

async fn assert_rejected(app: &TestApp, token: &str) {
    let response = app.get("/api/v1/users/me", token).await;
    assert_eq!(
        response.status,
        StatusCode::UNAUTHORIZED,
        "{token}: {}",
        response.text
    );
    assert_eq!(
        response.header("content-type"),
        Some("application/problem+json")
    );
    assert!(
        response
            .header("www-authenticate")
            .unwrap()
            .starts_with("Bearer"),
        "{:?}",
        response.headers
    );
}

#[actix_web::test]
async fn a_token_signed_by_the_service_is_accepted() {
    let app = spawn_app().await;
    let account = app.register("admin@example.com").await;
    let token = sign_with_app_key(&app, &claims(&app, &account));
    let response = app.get("/api/v1/users/me", &token).await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.body["id"], account.user_id.as_str());
}

#[actix_web::test]
async fn a_missing_token_is_rejected_with_a_bare_bearer_challenge() {
    let app = spawn_app().await;
    let response = app.request("GET", "/api/v1/users/me", None, None).await;
    assert_eq!(response.status, StatusCode::UNAUTHORIZED);
    assert_eq!(response.header("www-authenticate"), Some("Bearer"));
}

#[actix_web::test]
async fn a_non_bearer_authorization_header_is_rejected() {
    let app = spawn_app().await;
    let response = app
        .client
        .get(app.url("/api/v1/users/me"))
        .insert_header(("authorization", "Basic YWRtaW46YWRtaW4="))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[actix_web::test]
async fn a_malformed_token_is_rejected() {
    let app = spawn_app().await;
    assert_rejected(&app, "not-a-jwt").await;
    assert_rejected(&app, "a.b.c").await;
}

#[actix_web::test]
async fn a_token_with_a_bad_signature_is_rejected() {
    let app = spawn_app().await;
    let account = app.register("admin@example.com").await;
    let kid = &app.settings.auth.jwt_key_id;
    let forged = sign(
        &claims(&app, &account),
        Algorithm::HS256,
        kid,
        "another secret entirely, 32+ bytes",
    );
    assert_rejected(&app, &forged).await;
}

#[actix_web::test]
async fn an_alg_none_token_is_rejected() {
    let app = spawn_app().await;
    let account = app.register("admin@example.com").await;
    let header = json!({"alg": "none", "typ": "JWT", "kid": app.settings.auth.jwt_key_id});
    let token = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims(&app, &account).to_string())
    );
    assert_rejected(&app, &token).await;
}

#[actix_web::test]
async fn a_token_with_another_algorithm_and_the_right_key_is_rejected() {
    let app = spawn_app().await;
    let account = app.register("admin@example.com").await;
    let auth = &app.settings.auth;
    let token = sign(
        &claims(&app, &account),
        Algorithm::HS512,
        &auth.jwt_key_id,
        auth.jwt_secret.expose(),
    );
    assert_rejected(&app, &token).await;
}

#[actix_web::test]
async fn an_expired_token_is_rejected() {
    let app = spawn_app().await;
    let account = app.register("admin@example.com").await;
    let mut claims = claims(&app, &account);
    let past = chrono::Utc::now().timestamp() - 3600;
    claims["iat"] = json!(past - 900);
    claims["exp"] = json!(past);
    assert_rejected(&app, &sign_with_app_key(&app, &claims)).await;
}

#[actix_web::test]
async fn a_token_from_another_issuer_or_for_another_audience_is_rejected() {
    let app = spawn_app().await;
    let account = app.register("admin@example.com").await;
    let mut wrong_issuer = claims(&app, &account);
    wrong_issuer["iss"] = json!("someone-else");
    assert_rejected(&app, &sign_with_app_key(&app, &wrong_issuer)).await;
    let mut wrong_audience = claims(&app, &account);
    wrong_audience["aud"] = json!("another-api");
    assert_rejected(&app, &sign_with_app_key(&app, &wrong_audience)).await;
}

#[actix_web::test]
async fn a_token_with_an_unknown_key_id_is_rejected() {
    let app = spawn_app().await;
    let account = app.register("admin@example.com").await;
    let secret = app.settings.auth.jwt_secret.expose();
    let token = sign(
        &claims(&app, &account),
        Algorithm::HS256,
        "retired-long-ago",
        secret,
    );
    assert_rejected(&app, &token).await;
}

#[actix_web::test]
async fn a_token_signed_with_a_previous_key_still_verifies_during_rotation() {
    let old_secret = "the previous signing secret, still 32 bytes long";
    let mut settings = test_settings().await;
    settings.auth.previous_keys = vec![PreviousKey {
        kid: "2025".to_owned(),
        secret: Secret::new(old_secret),
    }];
    let app = spawn_app_with(settings).await;
    let account = app.register("admin@example.com").await;
    let token = sign(
        &claims(&app, &account),
        Algorithm::HS256,
        "2025",
        old_secret,
    );
    assert_eq!(
        app.get("/api/v1/users/me", &token).await.status,
        StatusCode::OK
    );
}
