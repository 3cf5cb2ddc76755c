use keystone_tests::test_settings;
use server::settings::{Environment, Secret};
use server::startup::Application;

#[actix_web::test]
async fn production_refuses_to_start_while_migrations_are_pending_and_names_them() {
    let mut settings = test_settings().await;
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
    let settings = test_settings().await;
    let app = keystone_tests::spawn_app_with(settings).await;
    let ready = app.request("GET", "/health/ready", None, None).await;
    assert_eq!(ready.status, actix_web::http::StatusCode::OK);
    app.register("admin@example.com").await;
}
