//! The real binary, started the way a container starts it and stopped the way Kubernetes
//! stops it. Everything here is bounded in time: a hung server fails the test, it does not
//! hang it.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// The `server` binary on a free port with a fresh SQLite database, and its log.
struct Server {
    child: Child,
    port: u16,
    folder: TempDir,
}

impl Server {
    /// Starts the server with `env` on top of test settings, and waits until it is ready.
    fn start(env: &[(&str, &str)]) -> Self {
        let folder = tempfile::tempdir().unwrap();
        let port = free_port();
        let log = File::create(folder.path().join("server.log")).unwrap();
        let child = command(folder.path(), &["serve"])
            .env("APP_SERVER__PORT", port.to_string())
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let server = Self {
            child,
            port,
            folder,
        };
        server.wait_until_ready(Duration::from_mins(1));
        server
    }

    fn wait_until_ready(&self, within: Duration) {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if matches!(self.send("GET", "/health/ready", None), Ok((200, _))) {
                return;
            }
            thread::sleep(Duration::from_millis(100));
        }
        panic!("the server was not ready in time:\n{}", self.log());
    }

    fn send(&self, method: &str, path: &str, body: Option<&str>) -> std::io::Result<(u16, String)> {
        send(self.port, method, path, body)
    }

    /// `server healthcheck` against this server's port.
    fn healthcheck(&self) -> ExitStatus {
        Command::new(env!("CARGO_BIN_EXE_server"))
            .arg("healthcheck")
            .current_dir(self.folder.path())
            .env("APP_SERVER__PORT", self.port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap()
    }

    /// What `kubectl delete pod` ends with.
    fn terminate(&self) {
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success(), "kill -TERM failed");
    }

    fn wait_for_exit(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            thread::sleep(Duration::from_millis(50));
        }
        panic!("the server did not exit in time:\n{}", self.log());
    }

    /// The value of an unlabelled gauge on `/metrics`.
    fn gauge(&self, name: &str) -> f64 {
        let (_, body) = self.send("GET", "/metrics", None).unwrap();
        body.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
            .and_then(|value| value.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {name} in:\n{body}"))
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.folder.path().join("server.log")).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The binary with `args`, run in `folder` (no config/ folder there: built-in defaults,
/// then the variables below) on the SQLite database in it.
fn command(folder: &Path, args: &[&str]) -> Command {
    let database = format!("sqlite://{}", folder.join("keystone.db").display());
    let mut command = Command::new(env!("CARGO_BIN_EXE_server"));
    command
        .args(args)
        .current_dir(folder)
        .env("APP_ENVIRONMENT", "test")
        .env("APP_SERVER__HOST", "127.0.0.1")
        .env("APP_DATABASE__URL", database);
    command
}

/// A port nothing listens on right now. The server binds it a moment later; port 0 would
/// be safer, but the port the server picked is not visible from outside the process.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One HTTP/1.1 request on a connection of its own; the status and the body.
fn send(port: u16, method: &str, path: &str, body: Option<&str>) -> std::io::Result<(u16, String)> {
    send_as(port, method, path, body, None)
}

/// `send` with a bearer token.
fn send_as(
    port: u16,
    method: &str,
    path: &str,
    body: Option<&str>,
    token: Option<&str>,
) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    stream.set_write_timeout(Some(Duration::from_secs(5)))?;
    let body = body.unwrap_or_default();
    let authorization = token
        .map(|token| format!("authorization: Bearer {token}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\
         {authorization}content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|status| status.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP answer: {response:?}")))?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

const SIGN_IN: &str = r#"{"email": "ada@example.com", "password": "correct horse battery"}"#;

#[test]
fn sigterm_lets_the_requests_in_flight_finish_then_the_process_exits_0() {
    // Argon2 this expensive makes each sign-in take a few hundred milliseconds, and only
    // one hash per CPU runs at a time, so the sign-ins are still running (or waiting for
    // their turn) when the signal arrives.
    let mut server = Server::start(&[
        ("APP_AUTH__PASSWORD_HASH__MEMORY_KIB", "65536"),
        ("APP_AUTH__PASSWORD_HASH__ITERATIONS", "10"),
        ("APP_SERVER__SHUTDOWN_TIMEOUT_SECS", "20"),
    ]);
    let register = r#"{"tenant_name": "Acme", "email": "ada@example.com",
        "username": "ada", "password": "correct horse battery"}"#;
    let (status, body) = server
        .send("POST", "/api/v1/auth/register", Some(register))
        .unwrap();
    assert_eq!(status, 201, "{body}");

    let port = server.port;
    let sign_ins: Vec<_> = (0..4)
        .map(|_| thread::spawn(move || send(port, "POST", "/api/v1/auth/login", Some(SIGN_IN))))
        .collect();
    // Every sign-in has reached the server (the scrape itself is the fifth request).
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.gauge("keystone_http_requests_in_flight") < 5.0 {
        assert!(Instant::now() < deadline, "the sign-ins never arrived");
        thread::sleep(Duration::from_millis(20));
    }
    server.terminate();

    // Readiness says no once the server has seen the signal, while the sign-ins still
    // run, or, as actix closes the listener at once, nothing answers any more. The bound
    // is the drain itself: still ready once every sign-in was answered is a failure.
    loop {
        match server.send("GET", "/health/ready", None) {
            Ok((200, _)) => assert!(
                !sign_ins.iter().all(thread::JoinHandle::is_finished),
                "still ready after SIGTERM, with the requests in flight done"
            ),
            Ok((status, body)) => {
                assert_eq!(status, 503, "{body}");
                assert!(body.contains("shutdown"), "{body}");
                break;
            }
            Err(_refused_or_reset) => break,
        }
        thread::sleep(Duration::from_millis(5));
    }
    for sign_in in sign_ins {
        let (status, body) = sign_in.join().unwrap().expect("the sign-in was answered");
        assert_eq!(status, 200, "{body}\n{}", server.log());
        assert!(body.contains("access_token"), "{body}");
    }
    let exit = server.wait_for_exit(Duration::from_secs(30));
    assert_eq!(exit.code(), Some(0), "{}", server.log());
    assert!(!server.healthcheck().success());
}

#[test]
fn the_healthcheck_passes_against_a_ready_server() {
    let server = Server::start(&[]);
    assert!(server.healthcheck().success(), "{}", server.log());
}

/// The string value of `"field":"..."` in a JSON body.
fn json_string<'a>(body: &'a str, field: &str) -> &'a str {
    let key = format!("\"{field}\":\"");
    let start = body
        .find(&key)
        .unwrap_or_else(|| panic!("no {field} in {body}"))
        + key.len();
    &body[start..start + body[start..].find('"').unwrap()]
}

/// `server worker` applies the events an API without workers stored, and drains on
/// SIGTERM; `server projections rebuild` rebuilds the statistics beside them.
#[test]
fn the_worker_applies_what_the_api_stored_and_stops_on_sigterm() {
    let api = Server::start(&[("APP_EVENTS__RUN_IN_SERVER", "false")]);
    let register = r#"{"tenant_name": "Acme", "email": "ada@example.com",
        "username": "ada", "password": "correct horse battery"}"#;
    let (status, body) = api
        .send("POST", "/api/v1/auth/register", Some(register))
        .unwrap();
    assert_eq!(status, 201, "{body}");
    let (status, body) = api
        .send("POST", "/api/v1/auth/login", Some(SIGN_IN))
        .unwrap();
    assert_eq!(status, 200, "{body}");
    let token = json_string(&body, "access_token").to_owned();
    let audit = || send_as(api.port, "GET", "/api/v1/audit", None, Some(&token)).unwrap();
    let (status, body) = audit();
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains(r#""items":[]"#),
        "nothing applies events yet: {body}"
    );

    let log = File::create(api.folder.path().join("worker.log")).unwrap();
    let mut worker = command(api.folder.path(), &["worker"])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let worker_log = || std::fs::read_to_string(api.folder.path().join("worker.log")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, body) = audit();
        if body.contains("user.registered") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not applied: {body}\n{}",
            worker_log()
        );
        thread::sleep(Duration::from_millis(100));
    }

    let sent = Command::new("kill")
        .args(["-TERM", &worker.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let deadline = Instant::now() + Duration::from_secs(15);
    let exit = loop {
        if let Some(status) = worker.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the worker did not stop:\n{}",
            worker_log()
        );
        thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(exit.code(), Some(0), "{}", worker_log());
    assert!(worker_log().contains("workers stopped"), "{}", worker_log());

    let rebuilt = command(api.folder.path(), &["projections", "rebuild"])
        .output()
        .unwrap();
    assert!(
        rebuilt.status.success(),
        "{}",
        String::from_utf8_lossy(&rebuilt.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&rebuilt.stdout).trim(),
        "rebuilt the task statistics of 1 tenant(s)"
    );
}
