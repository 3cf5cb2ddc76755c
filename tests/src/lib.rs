//! Helpers shared by the black-box API tests: start the real application on port 0
//! with a database of its own, and talk to it over HTTP like any client would.
//!
//! The suite runs on the embedded default (`SQLite`, in-process cache, bus and limits).
//! With `KEYSTONE_TEST_STACK=services` (`just test-all` sets it) it runs on
//! `PostgreSQL` and Redis instead, which it then requires (`TEST_DATABASE_URL`,
//! `TEST_REDIS_URL`). The few tests that need a service whatever the stack are ignored,
//! with the reason, unless the run includes ignored tests.

pub mod proxy;

use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::time::Duration;

use actix_web::http::StatusCode;
use awc::Client;
use infrastructure::testing::{Backend, Place, TestRedis};
use serde_json::{Value, json};
use server::settings::{DatabaseSettings, Environment, Secret, ServerSettings, Settings};
use server::startup::Application;

/// The variable that puts the suite on `PostgreSQL` and Redis: `services`.
pub const TEST_STACK: &str = "KEYSTONE_TEST_STACK";

/// The database and the Redis namespace of one test's settings, removed once nothing
/// holds them.
/// Held only to be dropped.
#[derive(Default)]
struct Resources {
    _database: Option<Place>,
    _redis: Option<TestRedis>,
}

/// Settings for one test, and what they name: cloning them shares it, and the last
/// clone dropped (with the apps that run on them) removes the database and the keys.
#[derive(Clone)]
pub struct TestSettings {
    settings: Settings,
    _resources: Arc<Resources>,
}

impl Deref for TestSettings {
    type Target = Settings;

    fn deref(&self) -> &Settings {
        &self.settings
    }
}

impl DerefMut for TestSettings {
    fn deref_mut(&mut self) -> &mut Settings {
        &mut self.settings
    }
}

/// A running application and a client pointed at it.
pub struct TestApp {
    pub address: String,
    /// Where `/metrics` is served when `metrics.port` is set.
    pub metrics_address: Option<String>,
    pub client: Client,
    pub settings: TestSettings,
}

/// A response with its body read and parsed (null when empty or not JSON).
#[derive(Debug)]
pub struct TestResponse {
    pub status: StatusCode,
    pub headers: actix_web::http::header::HeaderMap,
    pub body: Value,
    pub text: String,
}

impl TestResponse {
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    /// The `code` of a problem+json body.
    #[must_use]
    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or_default()
    }
}

/// Whether the suite runs on `PostgreSQL` and Redis (`KEYSTONE_TEST_STACK=services`).
///
/// # Panics
/// When the variable holds anything else: a typo must not quietly test the embedded
/// stack instead.
#[must_use]
pub fn on_services() -> bool {
    match std::env::var(TEST_STACK) {
        Ok(stack) if stack == "services" => true,
        Ok(stack) if stack.is_empty() || stack == "embedded" => false,
        Ok(stack) => panic!("{TEST_STACK} is {stack:?}: use `services` or `embedded`"),
        Err(_) => false,
    }
}

/// Settings for one test: port 0, a fresh database, cheap password hashing, on the
/// stack the run asked for (see the module docs).
///
/// # Panics
/// When no fresh database can be made, or the services stack lacks a service.
pub async fn test_settings() -> TestSettings {
    if on_services() {
        services_settings().await
    } else {
        embedded_settings().await
    }
}

/// Settings for the embedded default whatever the run: a fresh `SQLite` database and
/// in-process cache, bus and limits.
pub async fn embedded_settings() -> TestSettings {
    settings_on(Backend::Sqlite, false).await
}

/// Settings on `PostgreSQL` and Redis whatever the run, each required.
pub async fn services_settings() -> TestSettings {
    settings_on(Backend::postgres(), true).await
}

/// Settings on `PostgreSQL`, required, with the in-process cache, bus and limits.
pub async fn postgres_settings() -> TestSettings {
    settings_on(Backend::postgres(), false).await
}

/// Settings for the stack the run asked for, on a database no migration has touched,
/// which the service migrates as it starts (outside production); on `PostgreSQL` it
/// connects as the server's superuser, the one role that may.
pub async fn unmigrated_settings() -> TestSettings {
    let backend = if on_services() {
        Backend::postgres()
    } else {
        Backend::Sqlite
    };
    let database = backend.fresh_database_url().await;
    settings_on_database(database, on_services()).await
}

async fn settings_on(backend: Backend, with_redis: bool) -> TestSettings {
    settings_on_database(backend.fresh_service_database_url().await, with_redis).await
}

async fn settings_on_database((url, place): (String, Place), with_redis: bool) -> TestSettings {
    let mut settings = embedded_settings_on(url);
    let redis = if with_redis {
        let redis = TestRedis::new().await;
        settings.redis.url = Some(Secret::new(redis.url().to_owned()));
        settings.redis.namespace.clone_from(&redis.namespace);
        Some(redis)
    } else {
        None
    };
    TestSettings {
        settings,
        _resources: Arc::new(Resources {
            _database: Some(place),
            _redis: redis,
        }),
    }
}

fn embedded_settings_on(database_url: String) -> Settings {
    let defaults = Settings::default();
    let mut settings = Settings {
        environment: Environment::Test,
        server: ServerSettings {
            port: 0,
            workers: 1,
            ..defaults.server
        },
        database: DatabaseSettings {
            url: Secret::new(database_url),
            max_connections: 5,
            ..defaults.database
        },
        ..defaults
    };
    settings.auth.password_hash.memory_kib = 1024;
    settings.auth.password_hash.iterations = 1;
    // Every test registers its tenants from 127.0.0.1; the throttle's own tests lower it.
    settings.auth.registration_throttle.max_per_client = 1_000;
    // Consumers take over a dead one's messages quickly, so tests need not wait long.
    settings.events.claim_idle_secs = 1;
    // The relay keeps its default interval (30 s): commits wake it, so events flow at
    // once, and a test that waits on events shows the wake-up works. A bus that fails
    // is retried soon.
    settings.events.relay_initial_backoff_ms = 50;
    settings
}

/// Polls `check` until it returns `Some`, for at most `within`.
///
/// # Panics
/// When `check` still returns `None` at the deadline; the message names `what`.
pub async fn eventually<T, F, Fut>(what: &str, within: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + within;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{what} did not happen within {within:?}"
        );
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Starts the application with the default test settings.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(test_settings().await).await
}

/// Starts the application with these settings, in the background of this test.
///
/// # Panics
/// When the application cannot start.
pub async fn spawn_app_with(settings: TestSettings) -> TestApp {
    let app = Application::build(&settings)
        .await
        .expect("application starts");
    let address = format!("http://127.0.0.1:{}", app.port());
    let metrics_address = app
        .metrics_port()
        .map(|port| format!("http://127.0.0.1:{port}"));
    actix_web::rt::spawn(app.run());
    // Redirects are answers to check, not to follow.
    let client = Client::builder()
        .timeout(Duration::from_secs(30))
        .disable_redirects()
        .finish();
    TestApp {
        address,
        metrics_address,
        client,
        settings,
    }
}

/// A registered tenant admin, signed in.
#[derive(Debug, Clone)]
pub struct Account {
    pub tenant_id: String,
    pub user_id: String,
    pub email: String,
    pub password: String,
    pub access_token: String,
    pub refresh_token: String,
}

pub const PASSWORD: &str = "correct horse battery";

impl TestApp {
    #[must_use]
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// Sends a request; `body` is sent as JSON when present.
    ///
    /// # Panics
    /// When the server cannot be reached.
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> TestResponse {
        let method = actix_web::http::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = self.client.request(method, self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = match body {
            Some(body) => request.send_json(body).await,
            None => request.send().await,
        };
        read(response.expect("the server answers")).await
    }

    /// Sends raw bytes with an explicit content type.
    ///
    /// # Panics
    /// When the server cannot be reached.
    pub async fn send_raw(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> TestResponse {
        let method = actix_web::http::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = self.client.request(method, self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(content_type) = content_type {
            request = request.insert_header(("content-type", content_type));
        }
        read(request.send_body(body).await.expect("the server answers")).await
    }

    pub async fn patch(&self, path: &str, token: &str, body: &Value) -> TestResponse {
        self.request("PATCH", path, Some(token), Some(body)).await
    }

    pub async fn delete(&self, path: &str, token: &str) -> TestResponse {
        self.request("DELETE", path, Some(token), None).await
    }

    /// Sends a request with extra headers (`If-Match`, `Idempotency-Key`, ...).
    ///
    /// # Panics
    /// When the server cannot be reached.
    pub async fn request_with(
        &self,
        method: &str,
        path: &str,
        token: &str,
        headers: &[(&str, &str)],
        body: Option<&Value>,
    ) -> TestResponse {
        let method = actix_web::http::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = self
            .client
            .request(method, self.url(path))
            .bearer_auth(token);
        for (name, value) in headers {
            request = request.insert_header((*name, *value));
        }
        let response = match body {
            Some(body) => request.send_json(body).await,
            None => request.send().await,
        };
        read(response.expect("the server answers")).await
    }

    /// Creates a task and returns its JSON.
    ///
    /// # Panics
    /// When the task is not created.
    pub async fn create_task(&self, account: &Account, body: &Value) -> Value {
        let response = self
            .post("/api/v1/tasks", Some(&account.access_token), body)
            .await;
        assert_eq!(response.status, StatusCode::CREATED, "{}", response.text);
        response.body
    }

    pub async fn get(&self, path: &str, token: &str) -> TestResponse {
        self.request("GET", path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> TestResponse {
        self.request("POST", path, token, Some(body)).await
    }

    /// Registers a new tenant whose admin has `email`, and signs in.
    ///
    /// # Panics
    /// When registration or sign-in fails.
    pub async fn register(&self, email: &str) -> Account {
        let registered = self
            .post(
                "/api/v1/auth/register",
                None,
                &json!({"tenant_name": "Tenant", "email": email, "username": "admin", "password": PASSWORD}),
            )
            .await;
        assert_eq!(
            registered.status,
            StatusCode::CREATED,
            "{}",
            registered.text
        );
        let mut account = self.login(email, PASSWORD).await;
        registered.body["tenant"]["id"]
            .as_str()
            .unwrap()
            .clone_into(&mut account.tenant_id);
        account
    }

    /// Signs in.
    ///
    /// # Panics
    /// When sign-in fails.
    pub async fn login(&self, email: &str, password: &str) -> Account {
        let response = self
            .post(
                "/api/v1/auth/login",
                None,
                &json!({"email": email, "password": password}),
            )
            .await;
        assert_eq!(response.status, StatusCode::OK, "{}", response.text);
        let access_token = response.body["access_token"].as_str().unwrap().to_owned();
        let me = self.get("/api/v1/users/me", &access_token).await;
        Account {
            tenant_id: me.body["tenant_id"].as_str().unwrap_or_default().to_owned(),
            user_id: me.body["id"].as_str().unwrap_or_default().to_owned(),
            email: email.to_owned(),
            password: password.to_owned(),
            access_token,
            refresh_token: response.body["refresh_token"].as_str().unwrap().to_owned(),
        }
    }

    /// An admin creates a user in their tenant and that user signs in.
    ///
    /// # Panics
    /// When creation or sign-in fails.
    pub async fn add_user(&self, admin: &Account, email: &str, role: &str) -> Account {
        let created = self
            .post(
                "/api/v1/users",
                Some(&admin.access_token),
                &json!({"email": email, "username": "someone", "password": PASSWORD, "role": role}),
            )
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
        self.login(email, PASSWORD).await
    }
}

async fn read<S>(mut response: awc::ClientResponse<S>) -> TestResponse
where
    S: futures_util::Stream<Item = Result<actix_web::web::Bytes, awc::error::PayloadError>> + Unpin,
{
    let bytes = response
        .body()
        .limit(1 << 22)
        .await
        .expect("a readable body");
    let text = String::from_utf8_lossy(&bytes).into_owned();
    TestResponse {
        status: response.status(),
        headers: response.headers().clone(),
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        text,
    }
}
