//! The database's lifecycle: connecting, applying migrations, and the readiness probe;
//! and the gate in front of the pool, which counts the callers waiting for a connection.

mod gate;
mod scope;
pub(crate) mod wake;

use std::ops::Deref;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow, ensure};
use application::ports::{HealthProbe, ProbeError, RepositoryError};
use async_trait::async_trait;
use migrations::Migrator;
use sea_orm::sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use sea_orm::{
    ConnectOptions, ConnectionTrait, DatabaseConnection, DbBackend, DbErr, RuntimeErr,
    SqlxSqliteConnector,
};
use sea_orm_migration::{MigrationStatus, MigratorTrait};
use tokio::sync::OwnedSemaphorePermit;

use self::gate::Gate;
pub use self::scope::row_security_exemption;
pub(crate) use self::scope::{Access, Scope, Session};
use self::wake::Wake;

/// A pool of connections to the database, behind a gate that lets in as many
/// operations as the pool has connections and counts the callers waiting for a turn.
/// Cloning it is cheap and shares both.
#[derive(Debug, Clone)]
pub struct Database {
    pool: DatabaseConnection,
    gate: Gate,
    /// Wakes the relay when events are written.
    wake: Arc<Wake>,
}

impl Database {
    /// Waits for a turn at the pool, for one operation of an adapter. The pool is used
    /// through the returned turn, and no other way while the service serves. Its
    /// statements name no tenant, so on `PostgreSQL` they see no tenant's rows: an
    /// adapter reads and writes those in a [`Session`] (`session`), or in the unit of
    /// work's transaction.
    ///
    /// # Errors
    /// `Unavailable` when no turn came free within the acquire timeout, or the pool is
    /// closed.
    pub(crate) async fn acquire(&self) -> Result<Turn, RepositoryError> {
        let permit = self.gate.enter().await?;
        Ok(Turn {
            pool: self.pool.clone(),
            _permit: permit,
        })
    }

    /// The signal that events were written to this database's outbox.
    pub(crate) fn wake(&self) -> &Arc<Wake> {
        &self.wake
    }

    /// The pool without the gate, its use uncounted: for migrations, which run before
    /// the service serves, and for tests.
    #[must_use]
    pub fn ungated(&self) -> &DatabaseConnection {
        &self.pool
    }

    /// Closes the gate and the pool: callers waiting for a turn, and every operation
    /// from now on, fail as `Unavailable`.
    ///
    /// # Errors
    /// When the pool does not close cleanly.
    pub async fn close(&self) -> Result<(), DbErr> {
        self.gate.close();
        self.pool.close_by_ref().await
    }

    /// For tests that watch the statements an adapter runs: only this handle reports
    /// them, not the clones made before.
    #[cfg(test)]
    pub(crate) fn set_metric_callback(
        &mut self,
        callback: impl Fn(&sea_orm::metric::Info<'_>) + Send + Sync + 'static,
    ) {
        self.pool.set_metric_callback(callback);
    }
}

/// One turn at the pool, and the pool to use while holding it; dropping it gives the
/// turn back. An operation holds its turn throughout, between statements too, and runs
/// one statement at a time, so it never needs more than the one connection a turn
/// stands for.
pub(crate) struct Turn {
    pool: DatabaseConnection,
    _permit: OwnedSemaphorePermit,
}

impl Deref for Turn {
    type Target = DatabaseConnection;

    fn deref(&self) -> &DatabaseConnection {
        &self.pool
    }
}

/// How long a `SQLite` statement waits for another connection's write lock before it
/// fails. Writers are serialised by `SQLite`; under load they queue instead of erroring.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Where the database is and how the pool behaves.
#[derive(Clone)]
pub struct DatabaseConfig {
    /// `postgres://user:password@host:5432/db` or `sqlite://path/to/file.db`.
    pub url: String,
    pub max_connections: u32,
    /// How long a request waits for a pooled connection (or a new one to be opened)
    /// before the database counts as unavailable.
    pub acquire_timeout: Duration,
}

impl std::fmt::Debug for DatabaseConfig {
    /// The URL may hold a password, so it never prints.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseConfig")
            .field("url", &"<redacted>")
            .field("max_connections", &self.max_connections)
            .field("acquire_timeout", &self.acquire_timeout)
            .finish()
    }
}

/// Opens a pool and checks that the database answers.
///
/// Every operation first waits for a turn at the pool's gate, at most `acquire_timeout`
/// too, then takes a connection, which is free or free to open since there are as many
/// turns as connections.
///
/// The pool outlives a database that goes away: every connection is pinged before it is
/// handed out, so one that broke while the database was gone is dropped and replaced
/// instead of failing a request, and a request that finds no live connection within
/// `acquire_timeout` fails (as `RepositoryError::Unavailable`, a 503) rather than wait.
/// Once the database is back, new connections open on demand: no restart is needed.
///
/// `SQLite` files are created if missing, with their folder; they use write-ahead logging
/// (readers never wait for the writer), enforce foreign keys, and wait for a busy lock
/// rather than fail. Statement logging is off: requests are traced by the adapters.
///
/// # Errors
/// When the URL is invalid or the database does not answer within `acquire_timeout`.
/// Messages never repeat the URL, which may hold a password.
pub async fn connect(config: &DatabaseConfig) -> anyhow::Result<Database> {
    ensure!(
        config.max_connections > 0,
        "max_connections must be at least 1"
    );
    let mut options = ConnectOptions::new(config.url.clone());
    options
        .max_connections(config.max_connections)
        .min_connections(1)
        .connect_timeout(config.acquire_timeout)
        .acquire_timeout(config.acquire_timeout)
        // sea-orm's default today, stated because recovery depends on it.
        .test_before_acquire(true)
        .sqlx_logging(false);
    if config.url.starts_with("sqlite:") {
        create_sqlite_folder(&config.url)?;
        // `create_if_missing` is what `?mode=rwc` asks for in the URL.
        options.map_sqlx_sqlite_opts(|sqlite| {
            sqlite
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .foreign_keys(true)
                .busy_timeout(SQLITE_BUSY_TIMEOUT)
        });
    }
    let pool = sea_orm::Database::connect(options)
        .await
        .map_err(|error| match error {
            // sea-orm quotes the whole URL when it cannot parse it or knows no driver for it.
            DbErr::Conn(RuntimeErr::Internal(_)) => {
                anyhow!("the database URL is invalid or names an unsupported database")
            }
            error => anyhow::Error::new(error).context("connecting to the database"),
        })?;
    Ok(Database {
        pool,
        gate: Gate::new(config.max_connections, config.acquire_timeout),
        wake: Arc::default(),
    })
}

/// Creates the folder of a `SQLite` database file, so a fresh checkout can start.
fn create_sqlite_folder(url: &str) -> anyhow::Result<()> {
    let options = SqliteConnectOptions::from_str(url).context("the SQLite URL is invalid")?;
    if let Some(folder) = options
        .get_filename()
        .parent()
        .filter(|folder| !folder.as_os_str().is_empty())
    {
        std::fs::create_dir_all(folder)
            .with_context(|| format!("creating {} for the SQLite database", folder.display()))?;
    }
    Ok(())
}

/// Applies every pending migration.
///
/// # Errors
/// When a migration fails; it is rolled back, and the ones before it stay applied.
pub async fn migrate_up(db: &Database) -> anyhow::Result<()> {
    Migrator::up(db.ungated(), None)
        .await
        .context("applying pending migrations")
}

/// Rolls back the last `steps` applied migrations.
///
/// # Errors
/// When a rollback fails.
pub async fn migrate_down(db: &Database, steps: u32) -> anyhow::Result<()> {
    Migrator::down(db.ungated(), Some(steps))
        .await
        .with_context(|| format!("rolling back {steps} migration(s)"))
}

/// Drops every table, whatever created it, then applies all migrations. Destroys data.
///
/// # Errors
/// When dropping or a migration fails.
pub async fn migrate_fresh(db: &Database) -> anyhow::Result<()> {
    let db = db.ungated();
    if db.get_database_backend() != DbBackend::Sqlite {
        return Migrator::fresh(db)
            .await
            .context("dropping every table and applying all migrations");
    }
    // sea-orm-migration drops SQLite tables after `PRAGMA foreign_keys = OFF`, which holds
    // only for the connection that ran it; from a pool, the drops may run on others and
    // trip over the foreign keys. So the whole operation gets one connection of its own.
    let options = db.get_sqlite_connection_pool().connect_options();
    let single = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with((*options).clone())
        .await
        .context("opening a connection to drop every table")?;
    let single = SqlxSqliteConnector::from_sqlx_sqlite_pool(single);
    let fresh = Migrator::fresh(&single)
        .await
        .context("dropping every table and applying all migrations");
    single.close().await.context("closing the connection")?;
    fresh
}

/// Rolls back every applied migration, leaving an empty schema. Destroys data.
///
/// # Errors
/// When a rollback fails.
pub async fn migrate_reset(db: &Database) -> anyhow::Result<()> {
    Migrator::reset(db.ungated())
        .await
        .context("rolling back every migration")
}

/// A migration and whether the database has applied it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationState {
    pub name: String,
    pub applied: bool,
}

/// Every migration, oldest first, with its state. Reads only: it works for a database
/// user without DDL rights and creates no bookkeeping table.
///
/// # Errors
/// When the database cannot be read, or has applied a migration this build lacks.
pub async fn migration_status(db: &Database) -> anyhow::Result<Vec<MigrationState>> {
    let migrations = Migrator::get_migration_with_status_read_only(db.ungated())
        .await
        .context("reading which migrations are applied")?;
    Ok(migrations
        .iter()
        .map(|migration| MigrationState {
            name: migration.name().to_owned(),
            applied: migration.status() == MigrationStatus::Applied,
        })
        .collect())
}

/// The names of the migrations not applied yet, oldest first.
///
/// # Errors
/// As `migration_status`.
pub async fn pending_migrations(db: &Database) -> anyhow::Result<Vec<String>> {
    Ok(migration_status(db)
        .await?
        .into_iter()
        .filter(|migration| !migration.applied)
        .map(|migration| migration.name)
        .collect())
}

/// How full the connection pool is, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStatus {
    /// Open connections, in use or idle.
    pub size: u32,
    /// Open connections nobody is using.
    pub idle: u32,
    /// The most connections the pool opens (`max_connections`).
    pub max: u32,
    /// Callers waiting for a connection, at the gate: sqlx does not count its own.
    pub waiters: u32,
}

/// The pool's current state; `None` for a backend this build does not pool.
#[must_use]
pub fn pool_status(db: &Database) -> Option<PoolStatus> {
    let waiters = db.gate.waiting();
    let pool = &db.pool;
    match pool.get_database_backend() {
        DbBackend::Postgres => Some(status_of(pool.get_postgres_connection_pool(), waiters)),
        DbBackend::Sqlite => Some(status_of(pool.get_sqlite_connection_pool(), waiters)),
        _ => None,
    }
}

fn status_of<DB: sea_orm::sqlx::Database>(
    pool: &sea_orm::sqlx::Pool<DB>,
    waiters: u32,
) -> PoolStatus {
    PoolStatus {
        size: pool.size(),
        idle: u32::try_from(pool.num_idle()).unwrap_or(u32::MAX),
        max: pool.options().get_max_connections(),
        waiters,
    }
}

/// Readiness: the database answers `SELECT 1`.
#[derive(Debug, Clone)]
pub struct DatabaseProbe {
    db: Database,
}

impl DatabaseProbe {
    #[must_use]
    pub fn new(db: Database) -> Self {
        Self { db }
    }
}

#[async_trait]
impl HealthProbe for DatabaseProbe {
    fn component(&self) -> &'static str {
        "database"
    }

    async fn check(&self, limit: Duration) -> Result<(), ProbeError> {
        crate::within(limit, async {
            let db = self.db.acquire().await?;
            db.execute_unprepared("SELECT 1")
                .await
                .context("the database did not answer SELECT 1")?;
            Ok(())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use crate::database::Database;
    use application::ports::UnitOfWork;
    use sea_orm::Statement;
    use uuid::Uuid;

    use super::*;
    use crate::SqlUnitOfWork;
    use crate::testing::{self, Backend};

    fn names(states: &[MigrationState]) -> Vec<&str> {
        states.iter().map(|state| state.name.as_str()).collect()
    }

    fn all_migrations() -> Vec<String> {
        Migrator::migrations()
            .iter()
            .map(|migration| migration.name().to_owned())
            .collect()
    }

    async fn has_table(db: &Database, table: &str) -> bool {
        db.ungated()
            .execute_unprepared(&format!("SELECT COUNT(*) FROM {table}"))
            .await
            .is_ok()
    }

    fn sqlite_url(folder: &str) -> String {
        let file = std::env::temp_dir()
            .join("keystone-tests")
            .join(Uuid::now_v7().simple().to_string())
            .join(folder)
            .join("keystone.db");
        format!("sqlite://{}", file.display())
    }

    async fn a_new_database_has_every_migration_pending_until_up_applies_them(backend: Backend) {
        {
            let (url, _place) = backend.fresh_database_url().await;
            let db = testing::connect(url).await;
            assert_eq!(pending_migrations(&db).await.unwrap(), all_migrations());
            migrate_up(&db).await.unwrap();
            let status = migration_status(&db).await.unwrap();
            assert_eq!(names(&status), all_migrations());
            assert!(status.iter().all(|migration| migration.applied));
            assert!(pending_migrations(&db).await.unwrap().is_empty());
            for table in [
                "tenants",
                "users",
                "refresh_tokens",
                "tasks",
                "task_checklist_items",
                "outbox",
                "idempotency_keys",
            ] {
                assert!(has_table(&db, table).await, "{table}");
            }
        }
    }

    /// Every table with its columns, and every index, by name, sorted.
    async fn schema(db: &Database) -> Vec<String> {
        let backend = db.ungated().get_database_backend();
        let sql = match backend {
            DbBackend::Postgres => {
                "SELECT table_name || '.' || column_name AS item FROM information_schema.columns \
                 WHERE table_schema = 'public' \
                 UNION SELECT 'index ' || indexname FROM pg_indexes WHERE schemaname = 'public' \
                 UNION SELECT 'trigger ' || tgname FROM pg_trigger WHERE NOT tgisinternal"
            }
            _ => {
                "SELECT m.name || '.' || p.name AS item FROM sqlite_master m \
                 JOIN pragma_table_info(m.name) p WHERE m.type = 'table' \
                 UNION SELECT type || ' ' || name FROM sqlite_master \
                 WHERE type IN ('index', 'trigger')"
            }
        };
        let statement = Statement::from_string(backend, sql);
        let mut items: Vec<String> = db
            .ungated()
            .query_all_raw(statement)
            .await
            .unwrap()
            .iter()
            .map(|row| row.try_get::<String>("", "item").unwrap())
            .collect();
        items.sort();
        items
    }

    /// Whichever migrations are the last, back to the first that changes this
    /// backend's schema (a migration may be for `PostgreSQL` only): they undo what they
    /// did, and redo it the same.
    async fn rolling_back_the_last_migrations_and_applying_them_again_round_trips(db: Database) {
        let applied = schema(&db).await;
        let mut undone = 0;
        while schema(&db).await == applied {
            assert!(undone < 3, "the last {undone} migrations undid nothing");
            migrate_down(&db, 1).await.unwrap();
            undone += 1;
        }
        let all = all_migrations();
        assert_eq!(
            pending_migrations(&db).await.unwrap(),
            all[all.len() - undone..]
        );
        assert!(has_table(&db, "tenants").await);
        migrate_up(&db).await.unwrap();
        assert!(pending_migrations(&db).await.unwrap().is_empty());
        assert_eq!(schema(&db).await, applied);
    }

    async fn a_reset_rolls_every_migration_back(db: Database) {
        migrate_reset(&db).await.unwrap();
        assert_eq!(pending_migrations(&db).await.unwrap(), all_migrations());
        assert!(!has_table(&db, "tenants").await);
    }

    async fn fresh_drops_the_data_and_applies_every_migration(db: Database) {
        let backend = db.ungated().get_database_backend();
        let insert = Statement::from_sql_and_values(
            backend,
            match backend {
                DbBackend::Postgres => {
                    "INSERT INTO tenants (id, name, created_at) VALUES ($1, 'Acme', now())"
                }
                _ => {
                    "INSERT INTO tenants (id, name, created_at) VALUES (?, 'Acme', '2026-01-01T00:00:00+00:00')"
                }
            },
            [Uuid::now_v7().into()],
        );
        db.ungated().execute_raw(insert).await.unwrap();
        migrate_fresh(&db).await.unwrap();
        assert!(pending_migrations(&db).await.unwrap().is_empty());
        let count = Statement::from_string(backend, "SELECT COUNT(*) AS n FROM tenants");
        let row = db.ungated().query_one_raw(count).await.unwrap().unwrap();
        assert_eq!(row.try_get::<i64>("", "n").unwrap(), 0);
    }

    /// A probe's limit no test here comes near.
    const LIMIT: Duration = Duration::from_secs(30);

    async fn the_probe_passes_on_a_live_database_and_fails_once_it_is_closed(db: Database) {
        let probe = DatabaseProbe::new(db.clone());
        assert_eq!(probe.component(), "database");
        probe.check(LIMIT).await.unwrap();
        db.close().await.unwrap();
        assert!(probe.check(LIMIT).await.is_err());
    }

    async fn the_pool_status_counts_open_idle_and_most_connections(db: Database) {
        let transaction = sea_orm::TransactionTrait::begin(db.ungated())
            .await
            .unwrap();
        let busy = pool_status(&db).unwrap();
        assert_eq!(busy.max, 5);
        assert_eq!(busy.waiters, 0);
        assert!((1..=5).contains(&busy.size), "{busy:?}");
        assert!(busy.size - busy.idle >= 1, "{busy:?}");
        transaction.rollback().await.unwrap();
        // A connection goes back to the pool on a task of its own, so not at once.
        let mut idle = pool_status(&db).unwrap();
        for _ in 0..100 {
            if idle.idle == idle.size {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
            idle = pool_status(&db).unwrap();
        }
        assert_eq!(idle.idle, idle.size, "{idle:?}");
    }

    /// The pool's one turn is held by a transaction until it ends, so the probe waits
    /// at the gate meanwhile, counted among the waiters.
    async fn a_caller_beyond_the_pools_size_waits_counted_until_a_transaction_ends(
        backend: Backend,
    ) {
        {
            let (url, _place) = backend.fresh_database_url().await;
            let db = connect(&DatabaseConfig {
                url,
                max_connections: 1,
                acquire_timeout: Duration::from_secs(2),
            })
            .await
            .unwrap();
            let uow = SqlUnitOfWork::new(db.clone());
            let probe = DatabaseProbe::new(db.clone());
            drop(uow.begin().await.unwrap());
            probe
                .check(LIMIT)
                .await
                .expect("a dropped transaction gives its turn back");

            let transaction = uow.begin().await.unwrap();
            let mut check = std::pin::pin!(probe.check(LIMIT));
            let early = tokio::time::timeout(Duration::from_millis(100), &mut check).await;
            assert!(early.is_err(), "the probe went past a busy pool");
            assert_eq!(pool_status(&db).unwrap().waiters, 1);
            transaction.commit().await.unwrap();
            check.await.unwrap();
            assert_eq!(pool_status(&db).unwrap().waiters, 0);
        }
    }

    /// `url` with its TLS mode set to `mode` (whatever it said), and the CA file to
    /// verify the server with, if any.
    /// `url` asking for `sslmode=verify-full` against the CA in `ca`, as
    /// `docs/deploy.md` shows it. (sqlx's own `to_url_lossy` writes the CA as
    /// `file: <path>`, which names no file.)
    fn verify_full(url: &str, ca: &std::path::Path) -> String {
        format!("{url}?sslmode=verify-full&sslrootcert={}", ca.display())
    }

    async fn connect_to(url: String) -> anyhow::Result<Database> {
        connect(&DatabaseConfig {
            url,
            max_connections: 1,
            acquire_timeout: Duration::from_secs(5),
        })
        .await
    }

    /// A `PostgreSQL` of the test's own, whose certificate the test's CA signed:
    /// `verify-full` with that CA connects, over TLS; with another CA it is refused.
    #[tokio::test]
    #[ignore = "needs PostgreSQL's initdb and pg_ctl; run by `just test-all`"]
    async fn postgres_is_reached_over_tls_when_the_url_asks_and_its_certificate_is_verified() {
        let certificates = crate::test_tls::Certificates::new();
        let postgres = crate::test_tls::TlsPostgres::start(&certificates);
        let server = format!("postgres://postgres@127.0.0.1:{}/postgres", postgres.port);
        let db = connect_to(verify_full(&server, &certificates.ca()))
            .await
            .unwrap();
        let sql = "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()";
        let row = db
            .ungated()
            .query_one_raw(Statement::from_string(DbBackend::Postgres, sql))
            .await
            .unwrap()
            .unwrap();
        assert!(
            row.try_get::<bool>("", "ssl").unwrap(),
            "the session is encrypted"
        );
        db.close().await.unwrap();

        // verify-full trusts only the CA it is given: one that did not sign the
        // server's certificate is refused.
        let stranger = crate::test_tls::Certificates::new();
        let Err(refused) = connect_to(verify_full(&server, &stranger.ca())).await else {
            panic!("a server the CA did not vouch for was trusted");
        };
        assert!(
            format!("{refused:#}").contains("certificate"),
            "refused for its certificate: {refused:#}"
        );
    }

    #[tokio::test]
    async fn a_sqlite_database_gets_its_folder_and_uses_wal_and_foreign_keys() {
        let db = testing::connect(sqlite_url("nested/deeper")).await;
        let db = db.ungated();
        let pragma =
            |name: &str| Statement::from_string(DbBackend::Sqlite, format!("PRAGMA {name}"));
        let journal = db
            .query_one_raw(pragma("journal_mode"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            journal.try_get::<String>("", "journal_mode").unwrap(),
            "wal"
        );
        let foreign_keys = db
            .query_one_raw(pragma("foreign_keys"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(foreign_keys.try_get::<i32>("", "foreign_keys").unwrap(), 1);
        let busy = db
            .query_one_raw(pragma("busy_timeout"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(busy.try_get::<i32>("", "timeout").unwrap(), 5000);
    }

    #[tokio::test]
    async fn a_database_nobody_listens_for_fails_without_quoting_the_password() {
        let config = DatabaseConfig {
            url: "postgres://keystone:hunter2@127.0.0.1:1/keystone".to_owned(),
            max_connections: 2,
            acquire_timeout: Duration::from_millis(500),
        };
        let error = connect(&config).await.unwrap_err();
        assert!(
            !format!("{error:#} {error:?}").contains("hunter2"),
            "{error:#}"
        );
        assert!(!format!("{config:?}").contains("hunter2"));
    }

    #[tokio::test]
    async fn an_unparseable_url_is_refused_without_being_quoted() {
        let config = DatabaseConfig {
            url: "postgres://keystone:hunter2@[::1".to_owned(),
            max_connections: 2,
            acquire_timeout: Duration::from_millis(500),
        };
        let error = connect(&config).await.unwrap_err();
        assert!(error.to_string().contains("invalid"), "{error:#}");
        assert!(
            !format!("{error:#} {error:?}").contains("hunter2"),
            "{error:#}"
        );
    }

    #[tokio::test]
    async fn a_pool_of_zero_connections_is_refused() {
        let config = DatabaseConfig {
            url: sqlite_url("zero"),
            max_connections: 0,
            acquire_timeout: Duration::from_secs(1),
        };
        assert!(connect(&config).await.is_err());
    }

    crate::on_every_backend!(
        rolling_back_the_last_migrations_and_applying_them_again_round_trips,
        a_reset_rolls_every_migration_back,
        fresh_drops_the_data_and_applies_every_migration,
        the_probe_passes_on_a_live_database_and_fails_once_it_is_closed,
        the_pool_status_counts_open_idle_and_most_connections,
    );

    crate::on_every_server!(
        a_new_database_has_every_migration_pending_until_up_applies_them,
        a_caller_beyond_the_pools_size_waits_counted_until_a_transaction_ends,
    );
}
