//! Builds the running service from settings: database, adapters, use cases, HTTP server
//! (and the metrics server, when `/metrics` has a port of its own), and runs it until it
//! is stopped.

use std::net::TcpListener;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::{HttpServer, web};
use anyhow::{Context, bail};
use infrastructure::database::{self, Database, DatabaseConfig};
use infrastructure::redis_pool::Redis;
use presentation::{MetricsRenderer, ShutdownFlag};

use crate::settings::{Environment, Settings};
use crate::shutdown::{self, Shutdown};
use crate::worker::WorkersHandle;

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
    server: Server,
    /// `/metrics` on a port of its own, when `metrics.port` is set.
    metrics: Option<(u16, Server)>,
    shutdown: Shutdown,
    db: Database,
    redis: Option<Redis>,
    /// The relay and the consumers, unless `events.run_in_server` is off.
    workers: Option<WorkersHandle>,
}

impl Application {
    /// Connects, brings the schema up to date (or, in production, refuses to start
    /// while migrations are pending), wires everything and binds the listeners.
    ///
    /// # Errors
    /// When the database is unreachable, migrations are pending in production, an
    /// address cannot be bound, or the metrics recorder cannot be installed.
    pub async fn build(settings: &Settings) -> anyhow::Result<Self> {
        let db = connect(settings).await?;
        ensure_schema(settings, &db).await?;
        let renderer = crate::metrics::renderer(crate::metrics::recorder()?, db.clone());
        let metrics = match settings.metrics.port {
            Some(port) => Some(metrics_server(settings, port, renderer.clone())?),
            None => None,
        };
        let served_here = metrics.is_none().then_some(renderer);
        let flag = ShutdownFlag::default();
        let redis = crate::wiring::redis(settings)?;
        let state =
            crate::wiring::app_state(settings, &db, redis.as_ref(), flag.clone(), served_here)?;
        let workers = settings
            .events
            .run_in_server
            .then(|| crate::wiring::workers(settings, &db, redis.as_ref()).spawn());
        let state = web::Data::new(state);
        let listener = bind(settings, settings.server.port)?;
        let port = listener.local_addr()?.port();
        let mut server = HttpServer::new(move || presentation::app(state.clone()))
            .disable_signals()
            .shutdown_timeout(settings.server.shutdown_timeout_secs);
        if settings.server.workers > 0 {
            server = server.workers(settings.server.workers);
        }
        let server = server.listen(listener)?.run();
        let metrics_port = metrics.as_ref().map(|(port, _)| *port);
        tracing::info!(port, metrics_port, environment = ?settings.environment, "listening");
        let handles = std::iter::once(&server)
            .chain(metrics.as_ref().map(|(_, server)| server))
            .map(Server::handle)
            .collect();
        Ok(Self {
            port,
            server,
            metrics,
            shutdown: Shutdown::new(flag, handles),
            db,
            redis,
            workers,
        })
    }

    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port `/metrics` is served on when it has one of its own.
    #[must_use]
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics.as_ref().map(|(port, _)| *port)
    }

    /// What stops this application gracefully.
    #[must_use]
    pub fn shutdown(&self) -> Shutdown {
        self.shutdown.clone()
    }

    /// Serves until SIGTERM or SIGINT, then drains (see [`Shutdown::begin`]).
    ///
    /// # Errors
    /// When the signal handlers cannot be installed, or as [`Application::run`].
    pub async fn run_until_signalled(self) -> anyhow::Result<()> {
        let signal = shutdown::termination().context("listening for SIGTERM and SIGINT")?;
        let shutdown = self.shutdown();
        actix_web::rt::spawn(async move {
            let signal = signal.await;
            tracing::info!(signal, "shutting down: draining requests in flight");
            shutdown.begin().await;
        });
        self.run().await
    }

    /// Serves until stopped through [`Application::shutdown`], then stops the workers
    /// (after the requests, so the events of the last ones are still relayed when the
    /// relay is quick enough) and closes the pools.
    ///
    /// # Errors
    /// When a server fails while running.
    pub async fn run(self) -> anyhow::Result<()> {
        let served = match self.metrics {
            Some((_, metrics)) => tokio::try_join!(self.server, metrics).map(|_| ()),
            None => self.server.await,
        };
        if let Some(workers) = self.workers {
            workers.stop().await;
        }
        close(&self.db, self.redis.as_ref()).await;
        tracing::info!("stopped");
        served.context("running the HTTP server")
    }
}

async fn close(db: &Database, redis: Option<&Redis>) {
    if let Err(error) = db.close().await {
        tracing::warn!(error = %error, "closing the database pool");
    }
    if let Some(redis) = redis {
        redis.close();
    }
}

/// `server worker`: the relay and the consumers without the HTTP API (and `/metrics`
/// on `metrics.port`, when set), until SIGTERM or SIGINT; then each loop finishes the
/// batch in hand.
///
/// # Errors
/// When the database is unreachable, migrations are pending in production, or the
/// signal handlers or the metrics server cannot be installed.
pub async fn run_worker(settings: &Settings) -> anyhow::Result<()> {
    let db = connect(settings).await?;
    ensure_schema(settings, &db).await?;
    let redis = crate::wiring::redis(settings)?;
    let metrics = match settings.metrics.port {
        Some(port) => {
            let renderer = crate::metrics::renderer(crate::metrics::recorder()?, db.clone());
            Some(metrics_server(settings, port, renderer)?)
        }
        None => None,
    };
    let signal = shutdown::termination().context("listening for SIGTERM and SIGINT")?;
    let workers = crate::wiring::workers(settings, &db, redis.as_ref()).spawn();
    tracing::info!(
        metrics_port = metrics.as_ref().map(|(port, _)| *port),
        "worker running"
    );
    let metrics = metrics.map(|(_, server)| {
        let handle = server.handle();
        (handle, actix_web::rt::spawn(server))
    });
    let signal = signal.await;
    tracing::info!(signal, "shutting down: finishing the batches in hand");
    workers.stop().await;
    if let Some((handle, server)) = metrics {
        handle.stop(true).await;
        let _ = server.await;
    }
    close(&db, redis.as_ref()).await;
    tracing::info!("stopped");
    Ok(())
}

fn bind(settings: &Settings, port: u16) -> anyhow::Result<TcpListener> {
    let host = settings.server.host.as_str();
    TcpListener::bind((host, port)).with_context(|| format!("binding {host}:{port}"))
}

/// A small server for `/metrics` alone, on the API's host and `port`.
fn metrics_server(
    settings: &Settings,
    port: u16,
    renderer: MetricsRenderer,
) -> anyhow::Result<(u16, Server)> {
    let listener = bind(settings, port)?;
    let port = listener.local_addr()?.port();
    let server = HttpServer::new(move || presentation::metrics_app(renderer.clone()))
        .workers(1)
        .disable_signals()
        .shutdown_timeout(settings.server.shutdown_timeout_secs)
        .listen(listener)?
        .run();
    Ok((port, server))
}

/// Applies pending migrations, or in production refuses to start while any are pending,
/// or while row-level security would not bind the database role (docs/deploy.md,
/// "Database roles").
async fn ensure_schema(settings: &Settings, db: &Database) -> anyhow::Result<()> {
    let pending = database::pending_migrations(db).await?;
    if settings.environment == Environment::Production
        && pending.is_empty()
        && !settings.database.allow_exempt_role
        && let Some(exemption) = database::row_security_exemption(db).await?
    {
        bail!(
            "refusing to start: {exemption}, so row-level security does not bind it; \
             connect as the runtime role of docs/deploy.md (or set \
             APP_DATABASE__ALLOW_EXEMPT_ROLE=true)"
        );
    }
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
