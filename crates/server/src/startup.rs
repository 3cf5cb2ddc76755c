//! Builds the running service from settings: database, adapters, use cases, HTTP server.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::{HttpServer, web};
use anyhow::{Context, bail};
use application::auth::{Authenticate, Login, Logout, Refresh, RegisterTenant};
use application::ports::{Clock, HealthProbe, IdGenerator, PasswordHasher, RefreshTokens};
use application::users::{CreateUser, GetUser, ListUsers, UpdateUser, UserLifecycle};
use infrastructure::database::{self, Database, DatabaseConfig, DatabaseProbe};
use infrastructure::{
    Argon2Hasher, Argon2Params, InMemoryLoginThrottle, JwtAccessTokens, JwtConfig, JwtKey,
    SqlRefreshTokens, SqlUsers, SystemClock, ThrottleConfig, UuidV7Ids,
};
use presentation::AppState;

use crate::settings::{Environment, Settings};

/// Connects to the configured database.
///
/// # Errors
/// When the URL is invalid or the database does not answer.
pub async fn connect(settings: &Settings) -> anyhow::Result<Database> {
    database::connect(&DatabaseConfig {
        url: settings.database.url.expose().to_owned(),
        max_connections: settings.database.max_connections,
        acquire_timeout: Duration::from_millis(settings.database.acquire_timeout_ms),
    })
    .await
}

/// A bound, not yet running HTTP server.
pub struct Application {
    port: u16,
    server: actix_web::dev::Server,
}

impl Application {
    /// Connects, brings the schema up to date (or, in production, refuses to start
    /// while migrations are pending), wires everything and binds the listener.
    ///
    /// # Errors
    /// When the database is unreachable, migrations are pending in production, or the
    /// address cannot be bound.
    pub async fn build(settings: &Settings) -> anyhow::Result<Self> {
        let db = connect(settings).await?;
        ensure_schema(settings, &db).await?;
        let state = web::Data::new(app_state(settings, &db)?);
        let address = (settings.server.host.as_str(), settings.server.port);
        let listener = TcpListener::bind(address)
            .with_context(|| format!("binding {}:{}", address.0, address.1))?;
        let port = listener.local_addr()?.port();
        let mut server = HttpServer::new(move || presentation::app(state.clone()));
        if settings.server.workers > 0 {
            server = server.workers(settings.server.workers);
        }
        let server = server.listen(listener)?.run();
        tracing::info!(port, environment = ?settings.environment, "listening");
        Ok(Self { port, server })
    }

    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// # Errors
    /// When the server fails while running.
    pub async fn run(self) -> anyhow::Result<()> {
        self.server.await.context("running the HTTP server")
    }
}

async fn ensure_schema(settings: &Settings, db: &Database) -> anyhow::Result<()> {
    let pending = database::pending_migrations(db).await?;
    if pending.is_empty() {
        return Ok(());
    }
    if settings.environment == Environment::Production {
        bail!(
            "refusing to start: {} pending migration(s): {}; run `server migrate up` first",
            pending.len(),
            pending.join(", ")
        );
    }
    tracing::info!(migrations = ?pending, "applying pending migrations");
    database::migrate_up(db).await
}

fn app_state(settings: &Settings, db: &Database) -> anyhow::Result<AppState> {
    let auth = &settings.auth;
    let users = Arc::new(SqlUsers::new(db.clone()));
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let ids: Arc<dyn IdGenerator> = Arc::new(UuidV7Ids);
    let hasher: Arc<dyn PasswordHasher> = Arc::new(Argon2Hasher::new(Argon2Params {
        memory_kib: auth.password_hash.memory_kib,
        iterations: auth.password_hash.iterations,
        parallelism: auth.password_hash.parallelism,
    })?);
    let access_tokens = Arc::new(JwtAccessTokens::new(JwtConfig {
        issuer: auth.issuer.clone(),
        audience: auth.audience.clone(),
        ttl: Duration::from_secs(auth.access_token_ttl_secs),
        signing_key: JwtKey::new(&auth.jwt_key_id, auth.jwt_secret.expose()),
        verification_keys: auth
            .previous_keys
            .iter()
            .map(|key| JwtKey::new(&key.kid, key.secret.expose()))
            .collect(),
    }));
    let refresh_tokens: Arc<dyn RefreshTokens> = Arc::new(SqlRefreshTokens::new(
        db.clone(),
        Duration::from_secs(auth.refresh_token_ttl_secs),
    ));
    let throttle = Arc::new(InMemoryLoginThrottle::new(ThrottleConfig {
        max_failures_per_email: auth.login_throttle.max_failures_per_email,
        max_failures_per_client: auth.login_throttle.max_failures_per_client,
        window: Duration::from_secs(auth.login_throttle.window_secs),
    }));
    let probes: Vec<Arc<dyn HealthProbe>> = vec![Arc::new(DatabaseProbe::new(db.clone()))];

    Ok(AppState {
        service_name: "keystone".to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        register_tenant: RegisterTenant {
            tenants: users.clone(),
            hasher: hasher.clone(),
            clock: clock.clone(),
            ids: ids.clone(),
        },
        login: Login {
            users: users.clone(),
            hasher: hasher.clone(),
            access_tokens: access_tokens.clone(),
            refresh_tokens: refresh_tokens.clone(),
            throttle,
            clock: clock.clone(),
        },
        refresh: Refresh {
            users: users.clone(),
            access_tokens: access_tokens.clone(),
            refresh_tokens: refresh_tokens.clone(),
            clock: clock.clone(),
        },
        logout: Logout {
            refresh_tokens: refresh_tokens.clone(),
            clock: clock.clone(),
        },
        authenticate: Authenticate {
            tokens: access_tokens,
        },
        get_user: GetUser {
            users: users.clone(),
        },
        list_users: ListUsers {
            users: users.clone(),
        },
        create_user: CreateUser {
            users: users.clone(),
            hasher,
            clock: clock.clone(),
            ids,
        },
        update_user: UpdateUser {
            users: users.clone(),
            refresh_tokens: refresh_tokens.clone(),
            clock: clock.clone(),
        },
        user_lifecycle: UserLifecycle {
            users,
            refresh_tokens,
            clock,
        },
        probes,
    })
}
