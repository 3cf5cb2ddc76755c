//! The command line: `server [serve]`, `server worker`, `server migrate ...`,
//! `server projections rebuild`, `server openapi`, `server healthcheck`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use domain::TenantId;
use infrastructure::SqlTaskStats;
use infrastructure::database;

use crate::settings::{Environment, Settings};
use crate::startup::connect;

#[derive(Debug, Parser)]
#[command(
    name = "server",
    version,
    about = "Keystone: a multi-tenant REST service"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the HTTP API (the default), with the outbox relay and the event consumers
    /// unless `events.run_in_server` is off.
    Serve,
    /// Run the outbox relay and the event consumers, without the HTTP API.
    Worker,
    /// Manage the database schema.
    Migrate {
        #[command(subcommand)]
        action: MigrateAction,
    },
    /// Manage the read models kept by events.
    Projections {
        #[command(subcommand)]
        action: ProjectionsAction,
    },
    /// Print the OpenAPI document to standard output.
    Openapi,
    /// Exit 0 when the server on this machine is ready, 1 otherwise (for container
    /// health checks where the image has no curl).
    Healthcheck,
}

#[derive(Debug, Clone, Copy, Subcommand)]
pub enum MigrateAction {
    /// Apply every pending migration.
    Up,
    /// Roll back the last `steps` migrations.
    Down {
        #[arg(long, default_value_t = 1)]
        steps: u32,
    },
    /// List applied and pending migrations.
    Status,
    /// Drop every table, then apply all migrations.
    Fresh {
        /// Required in production: this destroys all data.
        #[arg(long)]
        force: bool,
    },
    /// Roll back every migration, leaving an empty schema.
    Reset {
        /// Required in production: this destroys all data.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Debug, Clone, Copy, Subcommand)]
pub enum ProjectionsAction {
    /// Rebuild the task statistics from the tasks table, for one tenant or all. Safe
    /// while the service runs: events still in flight apply on top only when newer.
    Rebuild {
        /// The tenant's id; every tenant when absent.
        #[arg(long)]
        tenant: Option<uuid::Uuid>,
    },
}

/// # Errors
/// When the database is unreachable or a migration fails.
pub async fn migrate(settings: &Settings, action: MigrateAction) -> anyhow::Result<()> {
    let db = connect(settings).await?;
    let destructive_force = match action {
        MigrateAction::Fresh { force } | MigrateAction::Reset { force } => Some(force),
        _ => None,
    };
    if destructive_force == Some(false) && settings.environment == Environment::Production {
        bail!("refusing to drop production data without --force");
    }
    match action {
        MigrateAction::Up => database::migrate_up(&db).await?,
        MigrateAction::Down { steps } => database::migrate_down(&db, steps).await?,
        MigrateAction::Fresh { .. } => database::migrate_fresh(&db).await?,
        MigrateAction::Reset { .. } => database::migrate_reset(&db).await?,
        MigrateAction::Status => {
            let mut out = std::io::stdout().lock();
            for migration in database::migration_status(&db).await? {
                let state = if migration.applied {
                    "applied"
                } else {
                    "pending"
                };
                writeln!(out, "{state:<8} {}", migration.name)?;
            }
        }
    }
    Ok(())
}

/// # Errors
/// When the database is unreachable or the rebuild fails.
pub async fn projections(settings: &Settings, action: ProjectionsAction) -> anyhow::Result<()> {
    let db = connect(settings).await?;
    match action {
        ProjectionsAction::Rebuild { tenant } => {
            let rebuilt = SqlTaskStats::new(db.clone())
                .rebuild(tenant.map(TenantId::from_uuid))
                .await
                .context("rebuilding the task statistics")?;
            writeln!(
                std::io::stdout().lock(),
                "rebuilt the task statistics of {rebuilt} tenant(s)"
            )?;
        }
    }
    db.close().await?;
    Ok(())
}

/// # Errors
/// When standard output is closed.
pub fn print_openapi() -> anyhow::Result<()> {
    let document = presentation::openapi().to_pretty_json()?;
    writeln!(std::io::stdout().lock(), "{document}")?;
    Ok(())
}

/// How long `server healthcheck` waits for the answer, connecting included.
const HEALTHCHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// Asks `GET /health/ready` of the server listening on `server.port` of this machine's
/// loopback address (it listens there with the default `127.0.0.1` and production's
/// `0.0.0.0`). Plain HTTP/1.1 over a socket: the image has no curl, and this needs no
/// HTTP client.
///
/// # Errors
/// When the server does not answer 200 in time; the error says what happened instead.
pub fn healthcheck(settings: &Settings) -> anyhow::Result<()> {
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, settings.server.port));
    check_ready(address, HEALTHCHECK_TIMEOUT)
}

/// `timeout` bounds the whole exchange, so that it fits the container's own health-check
/// timeout (3 s in the Dockerfile and Compose).
fn check_ready(address: SocketAddr, timeout: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    let mut stream = TcpStream::connect_timeout(&address, timeout)
        .with_context(|| format!("connecting to {address}"))?;
    // A zero timeout means none to the socket, so at least a millisecond.
    let remaining = || {
        Some(
            deadline
                .saturating_duration_since(Instant::now())
                .max(Duration::from_millis(1)),
        )
    };
    stream.set_write_timeout(remaining())?;
    let request =
        format!("GET /health/ready HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .context("sending the request")?;
    stream.set_read_timeout(remaining())?;
    let mut status_line = String::new();
    BufReader::new(stream.take(1024))
        .read_line(&mut status_line)
        .context("reading the answer")?;
    let status_line = status_line.trim_end();
    match status_line.split(' ').nth(1) {
        Some("200") => Ok(()),
        Some(_) => bail!("not ready: {status_line}"),
        None => bail!("no HTTP answer from {address}"),
    }
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;
    use std::thread::JoinHandle;

    use super::*;

    /// A one-shot server that answers `reply` (or nothing, when `None`) and returns the
    /// request line it received.
    fn answer_once(reply: Option<&'static str>) -> (SocketAddr, JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(stream);
            let mut request_line = String::new();
            reader.read_line(&mut request_line).unwrap();
            // Read the whole request before answering: closing a socket with unread
            // bytes resets it, and the client would see its write fail instead.
            let mut header = String::new();
            while reader.read_line(&mut header).unwrap() > 2 {
                header.clear();
            }
            if let Some(reply) = reply {
                reader.get_mut().write_all(reply.as_bytes()).unwrap();
            } else {
                // No answer until the client hangs up, or for 30 s: a client whose
                // timeout failed would wait that long.
                let stream = reader.get_ref();
                stream
                    .set_read_timeout(Some(Duration::from_secs(30)))
                    .unwrap();
                let _ = (&*stream).read(&mut [0; 1]);
            }
            request_line
        });
        (address, server)
    }

    #[test]
    fn a_ready_server_passes_the_healthcheck() {
        let (address, server) = answer_once(Some("HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"));
        check_ready(address, HEALTHCHECK_TIMEOUT).unwrap();
        assert_eq!(server.join().unwrap(), "GET /health/ready HTTP/1.1\r\n");
    }

    #[test]
    fn a_server_that_is_not_ready_fails_it_and_says_so() {
        let (address, server) = answer_once(Some(
            "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n",
        ));
        let error = check_ready(address, HEALTHCHECK_TIMEOUT).unwrap_err();
        assert!(error.to_string().contains("503"), "{error}");
        server.join().unwrap();
    }

    #[test]
    fn a_server_that_does_not_answer_in_time_fails_it() {
        let (address, server) = answer_once(None);
        let started = Instant::now();
        assert!(check_ready(address, Duration::from_millis(100)).is_err());
        // The server answers nothing for 30 s, so only the timeout ends the check
        // sooner: any bound well under that shows it held, however loaded the machine.
        let took = started.elapsed();
        assert!(took < Duration::from_secs(10), "the check took {took:?}");
        server.join().unwrap();
    }

    #[test]
    fn no_server_fails_it() {
        let address = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let error = check_ready(address, HEALTHCHECK_TIMEOUT).unwrap_err();
        assert!(error.to_string().contains("connecting"), "{error}");
    }
}
