//! Wiring: the adapters, built once from settings, and the use cases made from them.
//! Every use case receives clones of exactly the ports it needs.

use std::sync::Arc;
use std::time::Duration;

use application::auth::{Authenticate, Login, Logout, Refresh, RegisterTenant};
use application::ports::{
    AccessTokens, AuditEntry, AuditLog, Clock, HealthProbe, IdGenerator, IdempotencyKeys,
    LoginThrottle, PasswordHasher, RefreshTokens, RepositoryError, TaskQueries, TaskStats,
    TaskStatsQueries, UnitOfWork, UserRepository,
};
use application::reports::{GetTaskStats, ListAuditEntries};
use application::tasks::{ChangeTask, CreateTask, GetTask, ListTasks};
use application::users::{CreateUser, GetUser, ListUsers, UpdateUser, UserLifecycle};
use infrastructure::database::{Database, DatabaseProbe};
use infrastructure::{
    Argon2Hasher, Argon2Params, InMemoryLoginThrottle, JwtAccessTokens, JwtConfig, JwtKey,
    SqlIdempotencyKeys, SqlRefreshTokens, SqlTaskQueries, SqlUnitOfWork, SqlUsers, SystemClock,
    ThrottleConfig, UuidV7Ids,
};
use presentation::{AppState, MetricsRenderer, ShutdownFlag};

use crate::settings::Settings;

/// One instance of every port, shared by the use cases.
struct Adapters {
    users: Arc<dyn UserRepository>,
    uow: Arc<dyn UnitOfWork>,
    keys: Arc<dyn IdempotencyKeys>,
    tasks: Arc<dyn TaskQueries>,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdGenerator>,
    hasher: Arc<dyn PasswordHasher>,
    access_tokens: Arc<dyn AccessTokens>,
    refresh_tokens: Arc<dyn RefreshTokens>,
    throttle: Arc<dyn LoginThrottle>,
    probes: Vec<Arc<dyn HealthProbe>>,
}

impl Adapters {
    fn new(settings: &Settings, db: &Database) -> anyhow::Result<Self> {
        let auth = &settings.auth;
        Ok(Self {
            users: Arc::new(SqlUsers::new(db.clone())),
            uow: Arc::new(SqlUnitOfWork::new(db.clone())),
            keys: Arc::new(SqlIdempotencyKeys::new(db.clone())),
            tasks: Arc::new(SqlTaskQueries::new(db.clone())),
            clock: Arc::new(SystemClock),
            ids: Arc::new(UuidV7Ids),
            hasher: Arc::new(Argon2Hasher::new(Argon2Params {
                memory_kib: auth.password_hash.memory_kib,
                iterations: auth.password_hash.iterations,
                parallelism: auth.password_hash.parallelism,
            })?),
            access_tokens: Arc::new(JwtAccessTokens::new(JwtConfig {
                issuer: auth.issuer.clone(),
                audience: auth.audience.clone(),
                ttl: Duration::from_secs(auth.access_token_ttl_secs),
                signing_key: JwtKey::new(&auth.jwt_key_id, auth.jwt_secret.expose()),
                verification_keys: auth
                    .previous_keys
                    .iter()
                    .map(|key| JwtKey::new(&key.kid, key.secret.expose()))
                    .collect(),
            })),
            refresh_tokens: Arc::new(SqlRefreshTokens::new(
                db.clone(),
                Duration::from_secs(auth.refresh_token_ttl_secs),
            )),
            throttle: Arc::new(InMemoryLoginThrottle::new(ThrottleConfig {
                max_failures_per_email: auth.login_throttle.max_failures_per_email,
                max_failures_per_client: auth.login_throttle.max_failures_per_client,
                window: Duration::from_secs(auth.login_throttle.window_secs),
            })),
            probes: vec![Arc::new(DatabaseProbe::new(db.clone()))],
        })
    }
}

/// Everything the HTTP layer needs, wired from the settings and the database, with the
/// flag readiness answers to and, when `/metrics` is served on the API's port, its
/// renderer.
///
/// # Errors
/// When an adapter refuses its settings (argon2 parameters out of range).
pub fn app_state(
    settings: &Settings,
    db: &Database,
    shutdown: ShutdownFlag,
    metrics: Option<MetricsRenderer>,
) -> anyhow::Result<AppState> {
    let Adapters {
        users,
        uow,
        keys,
        tasks,
        clock,
        ids,
        hasher,
        access_tokens,
        refresh_tokens,
        throttle,
        probes,
    } = Adapters::new(settings, db)?;
    Ok(AppState {
        service_name: "keystone".to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        register_tenant: RegisterTenant {
            uow: uow.clone(),
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
            // TODO(wiring): `RedisRequestBudget` / `InMemoryRequestBudget` from settings.
            budget: None,
        },
        get_user: GetUser {
            users: users.clone(),
        },
        list_users: ListUsers {
            users: users.clone(),
        },
        create_user: CreateUser {
            uow: uow.clone(),
            keys: keys.clone(),
            hasher,
            clock: clock.clone(),
            ids: ids.clone(),
        },
        update_user: UpdateUser {
            users: users.clone(),
            uow: uow.clone(),
            refresh_tokens: refresh_tokens.clone(),
            clock: clock.clone(),
        },
        user_lifecycle: UserLifecycle {
            users: users.clone(),
            uow: uow.clone(),
            refresh_tokens,
            clock: clock.clone(),
        },
        create_task: CreateTask {
            uow: uow.clone(),
            keys,
            clock: clock.clone(),
            ids: ids.clone(),
        },
        change_task: ChangeTask {
            uow,
            clock: clock.clone(),
            ids,
        },
        get_task: GetTask {
            queries: tasks.clone(),
        },
        list_tasks: ListTasks { queries: tasks },
        // TODO(wiring): the SQL read-model adapters replace `ReadModelsNotWired`.
        get_task_stats: GetTaskStats {
            users: users.clone(),
            stats: Arc::new(ReadModelsNotWired),
            clock,
        },
        list_audit_entries: ListAuditEntries {
            audit: Arc::new(ReadModelsNotWired),
        },
        probes,
        shutdown,
        metrics,
    })
}

/// Stands in for the read-model adapters until they are wired: every read is a 503.
// TODO(wiring): remove with the SQL read-model adapters.
struct ReadModelsNotWired;

fn not_wired() -> RepositoryError {
    RepositoryError::Unavailable(anyhow::anyhow!("the read models are not wired yet"))
}

#[async_trait::async_trait]
impl TaskStatsQueries for ReadModelsNotWired {
    async fn stats(
        &self,
        _tenant: domain::TenantId,
        _user: domain::UserId,
        _today: chrono::NaiveDate,
    ) -> Result<TaskStats, RepositoryError> {
        Err(not_wired())
    }
}

#[async_trait::async_trait]
impl AuditLog for ReadModelsNotWired {
    async fn list(
        &self,
        _tenant: domain::TenantId,
        _before: Option<uuid::Uuid>,
        _limit: u64,
    ) -> Result<Vec<AuditEntry>, RepositoryError> {
        Err(not_wired())
    }
}
