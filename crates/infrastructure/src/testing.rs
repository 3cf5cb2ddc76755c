//! Fresh databases and Redis namespaces for tests: the contract tests of this crate and
//! the API tests in `tests/` (enable the `testing` feature there).
//!
//! `SQLite` is always available: each database is a new file under the system's temp
//! folder. `PostgreSQL` and Redis are services. A test that needs one is declared so:
//! [`on_every_backend!`](crate::on_every_backend) and
//! [`with_and_without!`](crate::with_and_without) put its service half in a module of its
//! own, ignored with the reason unless the run includes ignored tests. That half then
//! requires the service: an unset variable or a service that does not answer fails the
//! test, it never skips. So `cargo test` says how many tests it did not run, and why;
//! `just test-all` runs them.
//!
//! Every database and namespace a test makes is removed when the test ends, pass or fail
//! ([`TestDatabase`], [`TestRedis`]); a process killed mid-test leaves its own behind, and
//! later runs sweep those older than an hour.

use std::fmt;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use application::ports::HealthProbe;
use redis::Commands as _;
use sea_orm::sqlx::ConnectOptions as _;
use sea_orm::sqlx::postgres::PgConnectOptions;
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use uuid::Uuid;

use crate::database::{self, Database, DatabaseConfig};
use crate::redis_pool::{Redis, RedisConfig, RedisProbe};

/// The variable naming a `PostgreSQL` server for tests, e.g.
/// `postgres://postgres@127.0.0.1:5432/test`. Its database is only used to create others.
pub const TEST_DATABASE_URL: &str = "TEST_DATABASE_URL";

/// The variable naming a Redis server for tests, e.g. `redis://127.0.0.1:6379`.
pub const TEST_REDIS_URL: &str = "TEST_REDIS_URL";

/// How old a leftover test database or namespace must be before it is swept.
const LEFTOVER_AGE: Duration = Duration::from_hours(1);

/// The prefix of test databases and Redis namespaces, followed by a `UUIDv7`.
const PREFIX: &str = "keystone_test_";

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

/// The value of a variable naming a service a test requires.
///
/// # Panics
/// When it is unset or empty: a test that needs the service fails without it rather
/// than pass without testing.
fn required(variable: &str, service: &str) -> String {
    match std::env::var(variable) {
        Ok(url) if !url.trim().is_empty() => url,
        Ok(_) => panic!("{variable} is set but empty"),
        Err(std::env::VarError::NotUnicode(_)) => panic!("{variable} is not UTF-8"),
        Err(std::env::VarError::NotPresent) => {
            panic!("this test needs {service}: set {variable} (`just test-all` does)")
        }
    }
}

impl Backend {
    /// The `PostgreSQL` server of `TEST_DATABASE_URL`.
    ///
    /// # Panics
    /// When the variable is unset or empty.
    #[must_use]
    pub fn postgres() -> Self {
        Self::Postgres {
            server_url: required(TEST_DATABASE_URL, "PostgreSQL"),
        }
    }

    /// The URL of a new, empty database (no migrations applied), and where it lives.
    ///
    /// # Panics
    /// When the database cannot be created.
    pub async fn fresh_database_url(&self) -> (String, Place) {
        match self {
            Self::Sqlite => fresh_sqlite_url(),
            Self::Postgres { server_url } => fresh_postgres_url(server_url).await,
        }
    }

    /// A new database with every migration applied, removed when dropped.
    ///
    /// # Panics
    /// When the database cannot be created, reached or migrated.
    pub async fn fresh_database(&self) -> TestDatabase {
        let (url, place) = self.fresh_database_url().await;
        let db = connect(url.clone()).await;
        database::migrate_up(&db)
            .await
            .expect("migrating the test database");
        TestDatabase {
            db,
            url,
            _place: place,
        }
    }
}

/// The roles of `deploy/postgres/roles.sql`, named for tests. Roles belong to the
/// server, not to a database, so every run shares them and leaves them; they hold
/// nothing once their test databases are dropped. Their password is for servers that
/// do not trust local connections.
const OWNER_ROLE: &str = "keystone_test_owner";
const APP_ROLE: &str = "keystone_test_app";
const ROLE_PASSWORD: &str = "keystone_test";

impl Backend {
    /// The URL of a new database with every migration applied, for the service to run
    /// on as it does in production, and where it lives. On `PostgreSQL` the database is
    /// set up by `deploy/postgres/`, migrated as its owner role, and the URL names the
    /// runtime role, which row-level security binds; on `SQLite` the database is empty,
    /// and the service migrates it as it starts.
    ///
    /// # Panics
    /// When the database cannot be created or migrated.
    pub async fn fresh_service_database_url(&self) -> (String, Place) {
        let (url, place) = self.fresh_database_url().await;
        if matches!(self, Self::Sqlite) {
            return (url, place);
        }
        let superuser = connect(url.clone()).await;
        create_roles(&superuser).await;
        superuser
            .ungated()
            .execute_unprepared(&for_tests(include_str!(
                "../../../deploy/postgres/grants.sql"
            )))
            .await
            .expect("granting the test roles their rights");
        superuser.close().await.expect("closing the connection");
        let owner = connect(as_role(&url, OWNER_ROLE)).await;
        database::migrate_up(&owner)
            .await
            .expect("migrating the test database as its owner");
        owner.close().await.expect("closing the connection");
        (as_role(&url, APP_ROLE), place)
    }
}

/// `sql` from `deploy/postgres/` with the roles of tests.
fn for_tests(sql: &str) -> String {
    sql.replace("keystone_owner", OWNER_ROLE)
        .replace("keystone_app", APP_ROLE)
}

/// Creates the roles of `deploy/postgres/roles.sql`, with the password of tests, unless
/// they exist: each statement on its own, since concurrent tests race to create them.
async fn create_roles(superuser: &Database) {
    let roles = for_tests(include_str!("../../../deploy/postgres/roles.sql"));
    let statements = roles
        .lines()
        .filter(|line| !line.starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n");
    for statement in statements
        .split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        superuser
            .ungated()
            .execute_unprepared(&format!(
                "DO $$ BEGIN EXECUTE $s${statement} PASSWORD '{ROLE_PASSWORD}'$s$; \
                 EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$"
            ))
            .await
            .expect("creating a test role");
    }
}

/// `url` signing in as `role`.
fn as_role(url: &str, role: &str) -> String {
    PgConnectOptions::from_str(url)
        .expect("a PostgreSQL URL")
        .username(role)
        .password(ROLE_PASSWORD)
        .to_url_lossy()
        .to_string()
}

/// Where a test database lives. Dropping it removes the database, and for `SQLite` its
/// journal files; best effort.
#[derive(Debug)]
pub enum Place {
    SqliteFile(PathBuf),
    Postgres { server_url: String, name: String },
}

impl Drop for Place {
    fn drop(&mut self) {
        match self {
            Self::SqliteFile(file) => {
                for suffix in ["", "-wal", "-shm", "-journal"] {
                    let mut path = file.clone().into_os_string();
                    path.push(suffix);
                    let _ = std::fs::remove_file(path);
                }
            }
            Self::Postgres { server_url, name } => {
                // Drop runs inside the test's runtime, which must not be blocked on: a
                // runtime of its own, on a thread of its own, does the work.
                let (server_url, name) = (server_url.clone(), name.clone());
                let dropped = std::thread::spawn(move || {
                    tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .expect("a runtime to drop a test database")
                        .block_on(drop_postgres_database(&server_url, &name));
                });
                let _ = dropped.join();
            }
        }
    }
}

/// A migrated database for one test. Dropping it removes the database (`WITH (FORCE)`
/// on `PostgreSQL`, so an application still connected does not keep it alive).
pub struct TestDatabase {
    db: Database,
    url: String,
    _place: Place,
}

impl TestDatabase {
    /// A handle on the pool; the database lives as long as `self`.
    #[must_use]
    pub fn db(&self) -> Database {
        self.db.clone()
    }

    #[must_use]
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Deref for TestDatabase {
    type Target = Database;

    fn deref(&self) -> &Database {
        &self.db
    }
}

/// Declares database contract tests on both backends. For each `async fn name(db:
/// Database)` listed, `sqlite::name` runs on a new `SQLite` database, and
/// `postgres::name`, on a new `PostgreSQL` database, is ignored (with the reason) unless
/// the run includes ignored tests, and then requires `TEST_DATABASE_URL`. A name that
/// is not an async fn of the module does not compile, and a test fn left unlisted is dead
/// code, which the lints refuse: no test can be forgotten.
#[macro_export]
macro_rules! on_every_backend {
    ($($test:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $test() {
                    let database = $crate::testing::Backend::Sqlite.fresh_database().await;
                    super::$test(database.db()).await;
                }
            )+
        }

        mod postgres {
            $(
                #[tokio::test]
                #[ignore = "needs PostgreSQL: TEST_DATABASE_URL, run by `just test-all`"]
                async fn $test() {
                    let database = $crate::testing::Backend::postgres().fresh_database().await;
                    super::$test(database.db()).await;
                }
            )+
        }
    };
}

/// Declares tests of an empty database on both backends, as `on_every_backend!` does,
/// each handed the `Backend` to make its database on: `on_sqlite::name` and
/// `on_postgres::name`.
#[macro_export]
macro_rules! on_every_server {
    ($($test:ident),+ $(,)?) => {
        mod on_sqlite {
            $(
                #[tokio::test]
                async fn $test() {
                    super::$test($crate::testing::Backend::Sqlite).await;
                }
            )+
        }

        mod on_postgres {
            $(
                #[tokio::test]
                #[ignore = "needs PostgreSQL: TEST_DATABASE_URL, run by `just test-all`"]
                async fn $test() {
                    super::$test($crate::testing::Backend::postgres()).await;
                }
            )+
        }
    };
}

/// Declares tests that run on an in-process adapter and again on its Redis twin. For
/// each `async fn name(fixture)` listed, `$plain::name` is handed `$plain_setup` (an
/// expression, evaluated in the test), and `$service::name`, ignored (with the reason)
/// unless the run includes ignored tests, is handed `$service_setup`, which should
/// require Redis ([`TestRedis::new`]).
#[macro_export]
macro_rules! with_and_without {
    ($plain:ident = $plain_setup:expr, $service:ident = $service_setup:expr; $($test:ident),+ $(,)?) => {
        mod $plain {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[tokio::test]
                async fn $test() {
                    super::$test($plain_setup).await;
                }
            )+
        }

        mod $service {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[tokio::test]
                #[ignore = "needs Redis: TEST_REDIS_URL, run by `just test-all`"]
                async fn $test() {
                    super::$test($service_setup).await;
                }
            )+
        }
    };
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

fn fresh_sqlite_url() -> (String, Place) {
    let folder = std::env::temp_dir().join("keystone-tests");
    std::fs::create_dir_all(&folder).expect("creating the folder of test databases");
    sweep_sqlite_leftovers(&folder);
    let file = folder.join(format!("{}.db", Uuid::now_v7().simple()));
    (
        format!("sqlite://{}", file.display()),
        Place::SqliteFile(file),
    )
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

async fn fresh_postgres_url(server_url: &str) -> (String, Place) {
    let server = connect(server_url.to_owned()).await;
    sweep_postgres_leftovers(&server).await;
    let name = format!("{PREFIX}{}", Uuid::now_v7().simple());
    server
        .ungated()
        .execute_unprepared(&format!(r#"CREATE DATABASE "{name}""#))
        .await
        .expect("creating a test database");
    server.close().await.expect("closing the server connection");
    let url = PgConnectOptions::from_str(server_url)
        .expect("TEST_DATABASE_URL is a PostgreSQL URL")
        .database(&name)
        .to_url_lossy()
        .to_string();
    let place = Place::Postgres {
        server_url: server_url.to_owned(),
        name,
    };
    (url, place)
}

async fn drop_postgres_database(server_url: &str, name: &str) {
    let server = connect(server_url.to_owned()).await;
    let _ = server
        .ungated()
        .execute_unprepared(&format!(r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#))
        .await;
    let _ = server.close().await;
}

/// Whether a `<PREFIX><UUIDv7>…` name was made over an hour ago.
fn is_leftover(name: &str) -> bool {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    name.strip_prefix(PREFIX)
        .and_then(|rest| rest.get(..32))
        .and_then(|id| Uuid::parse_str(id).ok())
        .and_then(|id| id.get_timestamp())
        .map(|timestamp| Duration::from_secs(timestamp.to_unix().0))
        .is_some_and(|created| now.saturating_sub(created) > LEFTOVER_AGE)
}

/// Drops test databases whose `UUIDv7` says they are over an hour old. Best effort: one
/// dropped by another test process meanwhile is simply gone.
async fn sweep_postgres_leftovers(server: &Database) {
    let listing = Statement::from_string(
        DbBackend::Postgres,
        format!("SELECT datname FROM pg_database WHERE datname LIKE '{PREFIX}%'"),
    );
    let server = server.ungated();
    let Ok(rows) = server.query_all_raw(listing).await else {
        return;
    };
    for row in rows {
        let Ok(name) = row.try_get::<String>("", "datname") else {
            continue;
        };
        if is_leftover(&name) {
            let _ = server
                .execute_unprepared(&format!(r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#))
                .await;
        }
    }
}

/// A Redis pool with a key prefix of its own (`keystone_test_<uuid>`), so tests sharing
/// the server never see each other's keys. Dropping it deletes every key under the
/// prefix.
pub struct TestRedis {
    pub redis: Redis,
    pub namespace: String,
    url: String,
}

impl TestRedis {
    /// The Redis of `TEST_REDIS_URL`, under a new namespace.
    ///
    /// # Panics
    /// When the variable is unset or empty, or Redis does not answer.
    pub async fn new() -> Self {
        let url = required(TEST_REDIS_URL, "Redis");
        let redis = Redis::new(&RedisConfig {
            url: url.clone(),
            ca_file: None,
            pool_size: 8,
            timeout: Duration::from_secs(2),
        })
        .expect("TEST_REDIS_URL is a redis URL");
        if let Err(error) = RedisProbe::new(redis.clone())
            .check(Duration::from_secs(5))
            .await
        {
            panic!("Redis at {TEST_REDIS_URL} does not answer: {error:#}");
        }
        sweep_redis_leftovers(&url);
        Self {
            redis,
            namespace: format!("{PREFIX}{}", Uuid::now_v7().simple()),
            url,
        }
    }

    /// The server's URL, for an application that makes a pool of its own.
    #[must_use]
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        let namespace = self.namespace.clone();
        remove_redis_keys(&self.url, &format!("{namespace}*"), |_| true);
    }
}

/// Deletes the keys matching `pattern` that `chosen` accepts; best effort, on a
/// blocking connection of its own (drop cannot await).
fn remove_redis_keys(url: &str, pattern: &str, chosen: impl Fn(&str) -> bool) {
    let Ok(client) = redis::Client::open(url) else {
        return;
    };
    let Ok(mut connection) = client.get_connection_with_timeout(Duration::from_secs(2)) else {
        return;
    };
    let keys: Vec<String> = {
        let Ok(found) = connection.scan_match::<_, String>(pattern) else {
            return;
        };
        found
            .filter_map(Result::ok)
            .filter(|key| chosen(key))
            .collect()
    };
    for chunk in keys.chunks(500) {
        let _: redis::RedisResult<()> = redis::cmd("UNLINK").arg(chunk).query(&mut connection);
    }
}

/// Deletes the keys of test namespaces over an hour old: what a killed test process
/// left behind.
fn sweep_redis_leftovers(url: &str) {
    remove_redis_keys(url, &format!("{PREFIX}*"), is_leftover);
}

/// A Redis pool pointed at a port nothing listens on, for tests of a Redis that is down.
///
/// # Panics
/// Never: the URL is well-formed.
#[must_use]
pub fn dead_redis() -> Redis {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free port");
    Redis::new(&RedisConfig {
        url: format!("redis://127.0.0.1:{port}"),
        ca_file: None,
        pool_size: 2,
        timeout: Duration::from_millis(200),
    })
    .expect("a redis URL")
}
