use actix_web::http::StatusCode;
use keystone_tests::spawn_app;
use serde_json::json;

#[actix_web::test]
async fn head_answers_every_get_with_its_headers_and_no_body() {
    let app = spawn_app().await;
    let admin = app.register("admin@example.com").await;
    let token = admin.access_token.as_str();
    let task = app.create_task(&admin, &json!({"title": "Heads up"})).await;
    let id = task["id"].as_str().unwrap();
    for path in [
        format!("/api/v1/tasks/{id}"),
        "/api/v1/tasks".to_owned(),
        "/api/v1/users/me".to_owned(),
        "/health/live".to_owned(),
    ] {
        let get = app.get(&path, token).await;
        let head = app.request("HEAD", &path, Some(token), None).await;
        assert_eq!(head.status, get.status, "{path}");
        assert!(head.text.is_empty(), "{path}: {}", head.text);
        for name in ["content-type", "etag", "cache-control"] {
            assert_eq!(head.header(name), get.header(name), "{path}: {name}");
        }
    }
    let path = format!("/api/v1/tasks/{id}");
    let etag = task_etag(&app, &path, token).await;
    let revalidated = app
        .request_with("HEAD", &path, token, &[("if-none-match", &etag)], None)
        .await;
    assert_eq!(revalidated.status, StatusCode::NOT_MODIFIED);
}

async fn task_etag(app: &keystone_tests::TestApp, path: &str, token: &str) -> String {
    let response = app.get(path, token).await;
    response.header("etag").unwrap().to_owned()
}

#[actix_web::test]
async fn options_says_which_methods_a_path_allows() {
    let app = spawn_app().await;
    let admin = app.register("admin@example.com").await;
    let token = Some(admin.access_token.as_str());
    let cases = [
        ("/api/v1/tasks", "GET, HEAD, POST, OPTIONS"),
        (
            "/api/v1/tasks/0190aaaa-0000-7000-8000-000000000000",
            "GET, HEAD, PATCH, DELETE, OPTIONS",
        ),
        ("/api/v1/auth/login", "POST, OPTIONS"),
    ];
    for (path, allowed) in cases {
        let response = app.request("OPTIONS", path, token, None).await;
        assert_eq!(response.status, StatusCode::NO_CONTENT, "{path}");
        assert_eq!(response.header("allow"), Some(allowed), "{path}");
        let anonymous = app.request("OPTIONS", path, None, None).await;
        assert_eq!(
            anonymous.header("allow"),
            Some(allowed),
            "{path}: no token needed"
        );
    }
}
