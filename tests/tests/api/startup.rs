use keystone_tests::unmigrated_settings;
use server::settings::{Environment, Secret};
use server::startup::Application;

#[actix_web::test]
async fn production_refuses_to_start_while_migrations_are_pending_and_names_them() {
    let mut settings = unmigrated_settings().await;
    settings.environment = Environment::Production;
    settings.auth.jwt_secret = Secret::new("a production secret of at least 32 bytes");
    let Err(error) = Application::build(&settings).await else {
        panic!("production started with an unmigrated database");
    };
    let message = error.to_string();
    assert!(message.contains("pending migration"), "{message}");
    assert!(
        message.contains("m20261121_000001_create_tenants"),
        "{message}"
    );
    assert!(message.contains("migrate up"), "{message}");
}

#[actix_web::test]
async fn outside_production_pending_migrations_are_applied_at_start() {
    let settings = unmigrated_settings().await;
    let app = keystone_tests::spawn_app_with(settings).await;
    let ready = app.request("GET", "/health/ready", None, None).await;
    assert_eq!(ready.status, actix_web::http::StatusCode::OK);
    app.register("admin@example.com").await;
}

/// Production serves as the runtime role of docs/deploy.md, which row-level security
/// binds, and refuses the tables' owner unless told that it is meant.
#[actix_web::test]
#[ignore = "needs PostgreSQL and Redis, run by `just test-all`"]
async fn production_refuses_a_database_role_that_row_level_security_does_not_bind() {
    let mut settings = keystone_tests::services_settings().await;
    settings.environment = Environment::Production;
    settings.auth.jwt_secret = Secret::new("a production secret of at least 32 bytes");
    settings.auth.password_hash.memory_kib = 19 * 1024;
    settings.auth.password_hash.iterations = 2;
    settings.metrics.public = true;
    assert!(
        Application::build(&settings).await.is_ok(),
        "the runtime role"
    );

    let runtime = settings.database.url.expose().to_owned();
    settings.database.url =
        Secret::new(runtime.replace("keystone_test_app", "keystone_test_owner"));
    let Err(error) = Application::build(&settings).await else {
        panic!("production started as the tables' owner");
    };
    let message = error.to_string();
    assert!(
        message.contains("keystone_test_owner owns the tables"),
        "{message}"
    );
    assert!(
        message.contains("APP_DATABASE__ALLOW_EXEMPT_ROLE"),
        "{message}"
    );

    settings.database.allow_exempt_role = true;
    assert!(Application::build(&settings).await.is_ok(), "allowed");
}
