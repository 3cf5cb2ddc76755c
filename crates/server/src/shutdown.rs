//! Graceful shutdown: on SIGTERM or SIGINT, readiness turns 503, the listeners close,
//! requests in flight get up to `server.shutdown_timeout_secs` to finish, then the
//! servers stop. Actix's own signal handling is switched off (`disable_signals`), so
//! that the flag is raised before anything stops, and SIGINT drains like SIGTERM
//! instead of cutting requests off.

use actix_web::dev::ServerHandle;
use presentation::ShutdownFlag;

/// Stops the application gracefully. Clones stop the same application.
#[derive(Clone)]
pub struct Shutdown {
    flag: ShutdownFlag,
    servers: Vec<ServerHandle>,
}

impl Shutdown {
    pub(crate) fn new(flag: ShutdownFlag, servers: Vec<ServerHandle>) -> Self {
        Self { flag, servers }
    }

    /// Raises the flag readiness answers to, then stops every server gracefully, and
    /// returns once they have stopped: their requests finished, or the drain timed out.
    pub async fn begin(&self) {
        self.flag.raise();
        // `stop` asks at once; the futures only wait for the answers.
        let stopping: Vec<_> = self
            .servers
            .iter()
            .map(|server| server.stop(true))
            .collect();
        for stopped in stopping {
            stopped.await;
        }
    }
}

/// Waits for SIGTERM or SIGINT and returns its name. The handlers are installed when this
/// is called, so a signal that arrives before the future is first polled is not lost.
///
/// # Errors
/// When the signal handlers cannot be installed.
#[cfg(unix)]
pub fn termination() -> std::io::Result<impl Future<Output = &'static str>> {
    use tokio::signal::unix::{SignalKind, signal};

    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = terminate.recv() => "SIGTERM",
            _ = interrupt.recv() => "SIGINT",
        }
    })
}

/// Waits for Ctrl-C, the one termination signal outside Unix.
///
/// # Errors
/// Never; the signature matches the Unix one.
#[cfg(not(unix))]
pub fn termination() -> std::io::Result<impl Future<Output = &'static str>> {
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
        "Ctrl-C"
    })
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;
    use std::time::Duration;

    use actix_web::{App, HttpResponse, HttpServer, web};

    use super::*;

    #[actix_web::test]
    async fn beginning_raises_the_flag_and_stops_the_server() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let server = HttpServer::new(|| App::new().route("/", web::get().to(HttpResponse::Ok)))
            .workers(1)
            .disable_signals()
            .listen(listener)
            .unwrap()
            .run();
        let flag = ShutdownFlag::default();
        let shutdown = Shutdown::new(flag.clone(), vec![server.handle()]);
        let serving = actix_web::rt::spawn(server);

        shutdown.begin().await;
        assert!(flag.is_raised());
        actix_web::rt::time::timeout(Duration::from_secs(5), serving)
            .await
            .expect("the server stops")
            .unwrap()
            .unwrap();
        assert!(std::net::TcpStream::connect(address).is_err());
    }
}
