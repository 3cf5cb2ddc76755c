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

/// Every operation the document names is served: sent without credentials, none is
/// answered as an unknown route (404) or an unknown method (405). Routes are declared
/// once, for serving and documenting alike, so the converse holds by construction.
#[actix_web::test]
async fn every_documented_operation_is_served_and_bearer_auth_is_declared() {
    let app = spawn_app().await;
    let document = app.request("GET", "/openapi.json", None, None).await.body;
    assert!(document["openapi"].as_str().unwrap().starts_with("3.1"));
    let mut operations = Vec::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if ["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                operations.push((method.to_uppercase(), path.clone()));
            }
        }
    }
    let prefixes = [
        "/health/",
        "/api/v1/auth/",
        "/api/v1/users",
        "/api/v1/tasks",
        "/api/v1/audit",
    ];
    for prefix in prefixes {
        assert!(
            operations.iter().any(|(_, path)| path.starts_with(prefix)),
            "nothing under {prefix} is documented: {operations:?}"
        );
    }
    for (method, path) in &operations {
        let concrete = path
            .replace("{id}", "00000000-0000-7000-8000-000000000000")
            .replace("{item_id}", "00000000-0000-7000-8000-000000000000");
        let response = app.request(method, &concrete, None, None).await;
        assert!(
            ![StatusCode::NOT_FOUND, StatusCode::METHOD_NOT_ALLOWED].contains(&response.status),
            "{method} {path} is documented but answered {}: {}",
            response.status,
            response.text
        );
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

/// The reference page works without the internet: every file it loads is the
/// service's own, under a policy that lets it load nothing else.
#[actix_web::test]
async fn the_docs_page_and_everything_it_loads_come_from_the_service() {
    let app = spawn_app().await;
    let moved = app.request("GET", "/docs", None, None).await;
    assert_eq!(moved.status, StatusCode::PERMANENT_REDIRECT);
    assert_eq!(moved.header("location"), Some("/docs/"));
    let page = app.request("GET", "/docs/", None, None).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert!(
        page.header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    let csp = page.header("content-security-policy").unwrap();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("connect-src 'self'"),
        "{csp}"
    );
    assert!(!csp.contains("http"), "{csp}");
    // Every script and stylesheet the page names is a file of the service.
    let loaded: Vec<&str> = page
        .text
        .split(['"', '\''])
        .filter(|part| {
            let extension = std::path::Path::new(part).extension();
            extension.is_some_and(|e| e.eq_ignore_ascii_case("js") || e.eq_ignore_ascii_case("css"))
        })
        .collect();
    assert!(loaded.len() >= 3, "{loaded:?}");
    for file in loaded {
        assert!(!file.contains("//"), "{file} is not the service's");
        let path = format!("/docs/{}", file.trim_start_matches("./"));
        let served = app.request("GET", &path, None, None).await;
        assert_eq!(served.status, StatusCode::OK, "{path}");
    }
    let initializer = app
        .request("GET", "/docs/swagger-initializer.js", None, None)
        .await;
    assert!(
        initializer.text.contains("/openapi.json"),
        "{}",
        initializer.text
    );
    let missing = app
        .request("GET", "/docs/nothing-here.js", None, None)
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}
