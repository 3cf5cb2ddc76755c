//! Builds the running service from settings: database, adapters, use cases, HTTP server.

use std::net::TcpListener;
use std::time::Duration;

use actix_web::{HttpServer, web};
use anyhow::{Context, bail};
use infrastructure::database::{self, Database, DatabaseConfig};

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
        let state = web::Data::new(crate::wiring::app_state(settings, &db)?);
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
