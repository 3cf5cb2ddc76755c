//! Fresh databases for tests: the contract tests of this crate and the API tests in
//! `tests/` (enable the `testing` feature there).
//!
//! `SQLite` is always available: each database is a new file under the system's temp
//! folder. `PostgreSQL` is used when `TEST_DATABASE_URL` names a server: each database is
//! a new `keystone_test_<uuid>` on it. Databases are left behind so a failed test can be
//! inspected; every new one sweeps those older than an hour.

use std::fmt;
use std::future::Future;
use std::path::Path;
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use sea_orm::sqlx::ConnectOptions as _;
use sea_orm::sqlx::postgres::PgConnectOptions;
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use uuid::Uuid;

use crate::database::{self, Database, DatabaseConfig};

/// The variable naming a `PostgreSQL` server for tests, e.g.
/// `postgres://postgres@127.0.0.1:5432/test`. Its database is only used to create others.
pub const TEST_DATABASE_URL: &str = "TEST_DATABASE_URL";

/// How old a leftover test database must be before it is swept.
const LEFTOVER_AGE: Duration = Duration::from_hours(1);

const PG_PREFIX: &str = "keystone_test_";

/// A kind of database server tests can run against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres { server_url: String },
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Sqlite => "SQLite",
            Self::Postgres { .. } => "PostgreSQL",
        })
    }
}

impl Backend {
    /// `SQLite`, then `PostgreSQL` if `TEST_DATABASE_URL` is set.
    #[must_use]
    pub fn all() -> Vec<Self> {
        std::iter::once(Self::Sqlite)
            .chain(Self::postgres())
            .collect()
    }

    /// `PostgreSQL` if `TEST_DATABASE_URL` is set, `SQLite` otherwise.
    #[must_use]
    pub fn preferred() -> Self {
        Self::postgres().unwrap_or(Self::Sqlite)
    }

    fn postgres() -> Option<Self> {
        std::env::var(TEST_DATABASE_URL)
            .ok()
            .filter(|url| !url.trim().is_empty())
            .map(|server_url| Self::Postgres { server_url })
    }

    /// The URL of a new, empty database (no migrations applied).
    ///
    /// # Panics
    /// When the database cannot be created.
    pub async fn fresh_database_url(&self) -> String {
        match self {
            Self::Sqlite => fresh_sqlite_url(),
            Self::Postgres { server_url } => fresh_postgres_url(server_url).await,
        }
    }

    /// A connection to a new database with every migration applied.
    ///
    /// # Panics
    /// When the database cannot be created, reached or migrated.
    pub async fn fresh_database(&self) -> Database {
        let db = connect(self.fresh_database_url().await).await;
        database::migrate_up(&db)
            .await
            .expect("migrating the test database");
        db
    }
}

/// The URL of a new, empty database on the preferred backend.
///
/// # Panics
/// When the database cannot be created.
pub async fn fresh_database_url() -> String {
    Backend::preferred().fresh_database_url().await
}

/// Runs `test` once per backend, each time on a new migrated database. The backend is
/// printed first, so the output of a failure says which one failed.
pub async fn on_every_backend<F, Fut>(test: F)
where
    F: Fn(Database) -> Fut,
    Fut: Future<Output = ()>,
{
    for backend in Backend::all() {
        eprintln!("-- on {backend}");
        test(backend.fresh_database().await).await;
    }
}

/// Opens a second pooled connection, for a test that runs two operations at once:
/// otherwise the first finishes on the one idle connection while the second waits for a
/// new one to open, and the two never overlap.
///
/// # Panics
/// When the database does not answer.
pub async fn open_two_connections(db: &Database) {
    let db = db.ungated();
    let (one, two) = tokio::join!(
        db.execute_unprepared("SELECT 1"),
        db.execute_unprepared("SELECT 1")
    );
    one.and(two).expect("opening two connections");
}

/// A pool on `url` sized for one test.
///
/// # Panics
/// When the database does not answer.
pub async fn connect(url: String) -> Database {
    database::connect(&DatabaseConfig {
        url,
        max_connections: 5,
        acquire_timeout: Duration::from_secs(10),
    })
    .await
    .expect("connecting to the test database")
}

fn fresh_sqlite_url() -> String {
    let folder = std::env::temp_dir().join("keystone-tests");
    std::fs::create_dir_all(&folder).expect("creating the folder of test databases");
    sweep_sqlite_leftovers(&folder);
    let file = folder.join(format!("{}.db", Uuid::now_v7().simple()));
    format!("sqlite://{}", file.display())
}

/// Removes files (databases and their WAL) not touched for an hour. Best effort: a file
/// another test process removes first is simply gone.
fn sweep_sqlite_leftovers(folder: &Path) {
    let Ok(entries) = std::fs::read_dir(folder) else {
        return;
    };
    for entry in entries.flatten() {
        let old = entry
            .metadata()
            .and_then(|metadata| metadata.modified())
            .ok()
            .and_then(|modified| SystemTime::now().duration_since(modified).ok())
            .is_some_and(|age| age > LEFTOVER_AGE);
        if old {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

async fn fresh_postgres_url(server_url: &str) -> String {
    let server = connect(server_url.to_owned()).await;
    sweep_postgres_leftovers(&server).await;
    let name = format!("{PG_PREFIX}{}", Uuid::now_v7().simple());
    server
        .ungated()
        .execute_unprepared(&format!(r#"CREATE DATABASE "{name}""#))
        .await
        .expect("creating a test database");
    server.close().await.expect("closing the server connection");
    PgConnectOptions::from_str(server_url)
        .expect("TEST_DATABASE_URL is a PostgreSQL URL")
        .database(&name)
        .to_url_lossy()
        .to_string()
}

/// Drops test databases whose `UUIDv7` says they are over an hour old. Best effort: one
/// still in use, or dropped by another test process, is left alone.
async fn sweep_postgres_leftovers(server: &Database) {
    let listing = Statement::from_string(
        DbBackend::Postgres,
        format!("SELECT datname FROM pg_database WHERE datname LIKE '{PG_PREFIX}%'"),
    );
    let server = server.ungated();
    let Ok(rows) = server.query_all_raw(listing).await else {
        return;
    };
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    for row in rows {
        let Ok(name) = row.try_get::<String>("", "datname") else {
            continue;
        };
        let created = name
            .strip_prefix(PG_PREFIX)
            .and_then(|id| Uuid::parse_str(id).ok())
            .and_then(|id| id.get_timestamp())
            .map(|timestamp| Duration::from_secs(timestamp.to_unix().0));
        if created.is_some_and(|created| now.saturating_sub(created) > LEFTOVER_AGE) {
            let _ = server
                .execute_unprepared(&format!(r#"DROP DATABASE IF EXISTS "{name}""#))
                .await;
        }
    }
}

/// The variable naming a Redis server for tests, e.g. `redis://127.0.0.1:6379`. Tests
/// that need Redis are skipped (they return early, saying so) when it is not set.
pub const TEST_REDIS_URL: &str = "TEST_REDIS_URL";

/// The Redis of `TEST_REDIS_URL`, if set, with a key prefix of its own
/// (`keystone_test_<uuid>`) so tests sharing the server never see each other's keys.
///
/// # Panics
/// When the URL is not a Redis URL.
#[must_use]
pub fn redis() -> Option<(crate::redis_pool::Redis, String)> {
    let url = std::env::var(TEST_REDIS_URL)
        .ok()
        .filter(|url| !url.trim().is_empty())?;
    let redis = crate::redis_pool::Redis::new(&crate::redis_pool::RedisConfig {
        url,
        pool_size: 8,
        timeout: Duration::from_secs(2),
    })
    .expect("TEST_REDIS_URL is a redis URL");
    Some((redis, format!("keystone_test_{}", Uuid::now_v7().simple())))
}

/// A Redis pool pointed at a port nothing listens on, for tests of a Redis that is down.
///
/// # Panics
/// Never: the URL is well-formed.
#[must_use]
pub fn dead_redis() -> crate::redis_pool::Redis {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free port");
    crate::redis_pool::Redis::new(&crate::redis_pool::RedisConfig {
        url: format!("redis://127.0.0.1:{port}"),
        pool_size: 2,
        timeout: Duration::from_millis(200),
    })
    .expect("a redis URL")
}
