//! A database that goes away and comes back. PostgreSQL only (`TEST_DATABASE_URL`): the
//! application reaches it through a TCP proxy in this test, which can drop every
//! connection and refuse new ones, like a database server that restarts.

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use infrastructure::testing::Backend;
use keystone_tests::{TestApp, TestResponse, spawn_app_with, test_settings};
use server::settings::Secret;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// Forwards connections to `target` while up; while down, drops every connection it
/// carries and closes new ones as soon as they arrive.
struct Proxy {
    port: u16,
    up: watch::Sender<bool>,
}

impl Proxy {
    async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (up, watching) = watch::channel(true);
        actix_web::rt::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if !*watching.borrow() {
                    continue;
                }
                let mut down = watching.clone();
                actix_web::rt::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = down.wait_for(|up| !*up) => {}
                    }
                });
            }
        });
        Self { port, up }
    }

    fn go_down(&self) {
        self.up.send_replace(false);
    }

    fn come_back(&self) {
        self.up.send_replace(true);
    }
}

/// Splits a `postgres://user@host:port/db` URL into what comes before the host, the
/// host and port, and what comes after.
fn around_host(url: &str) -> (&str, &str, &str) {
    let authority = url.find("://").expect("a URL") + 3;
    let path = url[authority..]
        .find('/')
        .map_or(url.len(), |at| authority + at);
    let host = url[authority..path]
        .rfind('@')
        .map_or(authority, |at| authority + at + 1);
    (&url[..host], &url[host..path], &url[path..])
}

async fn me(app: &TestApp, token: &str) -> (TestResponse, Duration) {
    let started = Instant::now();
    let response = app.get("/api/v1/users/me", token).await;
    (response, started.elapsed())
}

#[actix_web::test]
async fn a_database_that_goes_away_is_a_fast_503_and_is_used_again_once_it_is_back() {
    if !matches!(Backend::preferred(), Backend::Postgres { .. }) {
        eprintln!("skipped: set TEST_DATABASE_URL to run the database outage test");
        return;
    }
    let mut settings = test_settings().await;
    let url = settings.database.url.expose().to_owned();
    let (before, host, after) = around_host(&url);
    let host = if host.contains(':') {
        host.to_owned()
    } else {
        format!("{host}:5432")
    };
    let database = host
        .to_socket_addrs()
        .unwrap()
        .next()
        .expect("a TCP address");
    let proxy = Proxy::start(database).await;
    settings.database.url = Secret::new(format!("{before}127.0.0.1:{}{after}", proxy.port));
    settings.database.acquire_timeout_ms = 1_000;
    let app = spawn_app_with(settings).await;
    let account = app.register("ada@example.com").await;
    assert_eq!(
        me(&app, &account.access_token).await.0.status,
        StatusCode::OK
    );

    proxy.go_down();
    let (response, took) = me(&app, &account.access_token).await;
    assert_eq!(
        response.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        response.text
    );
    assert_eq!(
        response.header("content-type"),
        Some("application/problem+json")
    );
    assert_eq!(response.code(), "service_unavailable");
    assert!(took < Duration::from_secs(2), "the 503 took {took:?}");
    let started = Instant::now();
    let ready = app.request("GET", "/health/ready", None, None).await;
    assert_eq!(
        ready.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        ready.text
    );
    assert_ne!(ready.body["checks"]["database"], "ok");
    assert!(started.elapsed() < Duration::from_secs(3));

    proxy.come_back();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (response, _) = me(&app, &account.access_token).await;
        if response.status == StatusCode::OK {
            break;
        }
        assert!(Instant::now() < deadline, "not back: {}", response.text);
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
    let ready = app.request("GET", "/health/ready", None, None).await;
    assert_eq!(ready.status, StatusCode::OK, "{}", ready.text);
}
