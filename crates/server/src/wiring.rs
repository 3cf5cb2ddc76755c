//! Wiring: the adapters, built once from settings, and the use cases made from them.
//! Every use case receives clones of exactly the ports it needs.

use std::sync::Arc;
use std::time::Duration;

use application::auth::{Authenticate, Login, Logout, Refresh, RegisterTenant};
use application::ports::{
    AccessTokens, Cache, Clock, EventPublisher, EventSubscriber, HealthProbe, IdGenerator,
    IdempotencyKeys, LoginThrottle, PasswordHasher, RefreshTokens, RequestBudget, TaskQueries,
    UnitOfWork, UserRepository,
};
use application::reports::{GetTaskStats, ListAuditEntries};
use application::tasks::{ChangeTask, CreateTask, GetTask, ListTasks};
use application::users::{CreateUser, GetUser, ListUsers, UpdateUser, UserLifecycle};
use infrastructure::database::{Database, DatabaseProbe};
use infrastructure::redis_pool::{Redis, RedisConfig, RedisProbe};
use infrastructure::{
    Argon2Hasher, Argon2Params, CacheAside, CacheConfig, CachedTaskQueries, CachedUsers,
    InMemoryCache, InMemoryLoginThrottle, InMemoryRequestBudget, InProcessBus,
    InvalidatingUnitOfWork, JwtAccessTokens, JwtConfig, JwtKey, RedisCache, RedisLoginThrottle,
    RedisRequestBudget, RedisStreamBus, SqlAuditLog, SqlIdempotencyKeys, SqlInbox, SqlOutbox,
    SqlRefreshTokens, SqlTaskQueries, SqlTaskStats, SqlUnitOfWork, SqlUsers, StreamConfig,
    SystemClock, ThrottleConfig, UuidV7Ids,
};
use presentation::{AppState, MetricsRenderer, ShutdownFlag};

use crate::settings::Settings;
use crate::worker::{LagProbe, WorkerConfig, Workers};

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
    budget: Option<Arc<dyn RequestBudget>>,
    probes: Vec<Arc<dyn HealthProbe>>,
}

/// Failed sign-ins are counted in Redis when configured, so that the limit holds
/// across replicas.
fn login_throttle(settings: &Settings, redis: Option<&Redis>) -> Arc<dyn LoginThrottle> {
    let throttle = &settings.auth.login_throttle;
    let config = ThrottleConfig {
        max_failures_per_email: throttle.max_failures_per_email,
        max_failures_per_client: throttle.max_failures_per_client,
        window: Duration::from_secs(throttle.window_secs),
    };
    match redis {
        Some(redis) => Arc::new(RedisLoginThrottle::new(
            redis.clone(),
            settings.redis.namespace.clone(),
            config,
        )),
        None => Arc::new(InMemoryLoginThrottle::new(config)),
    }
}

/// The per-tenant request budget, when one is set.
fn request_budget(settings: &Settings, redis: Option<&Redis>) -> Option<Arc<dyn RequestBudget>> {
    let limit = settings.rate_limit.tenant_requests;
    if limit == 0 {
        return None;
    }
    let window = Duration::from_secs(settings.rate_limit.window_secs);
    Some(match redis {
        Some(redis) => Arc::new(RedisRequestBudget::new(
            redis.clone(),
            settings.redis.namespace.clone(),
            limit,
            window,
        )),
        None => Arc::new(InMemoryRequestBudget::new(limit, window)),
    })
}

/// The Redis pool, when `redis.url` is set.
///
/// # Errors
/// When the URL is not a Redis URL.
pub fn redis(settings: &Settings) -> anyhow::Result<Option<Redis>> {
    settings
        .redis
        .url()
        .map(|url| {
            Redis::new(&RedisConfig {
                url: url.to_owned(),
                pool_size: settings.redis.pool_size,
                timeout: Duration::from_millis(settings.redis.timeout_ms),
            })
        })
        .transpose()
}

/// The cache shared by the read decorators and the unit of work: Redis when
/// configured, else in-process (right for one process only).
fn cache_aside(settings: &Settings, redis: Option<&Redis>) -> CacheAside {
    let config = CacheConfig {
        ttl: Duration::from_secs(settings.cache.ttl_secs),
        compress_above: settings.cache.compress_above_bytes,
    };
    let cache: Arc<dyn Cache> = match redis {
        Some(redis) => Arc::new(RedisCache::new(
            redis.clone(),
            settings.redis.namespace.clone(),
            config.ttl,
        )),
        None => Arc::new(InMemoryCache::new(
            settings.cache.memory_capacity,
            config.ttl,
        )),
    };
    CacheAside::new(cache, config)
}

impl Adapters {
    fn new(settings: &Settings, db: &Database, redis: Option<&Redis>) -> anyhow::Result<Self> {
        let auth = &settings.auth;
        let cache = cache_aside(settings, redis);
        let mut probes: Vec<Arc<dyn HealthProbe>> = vec![Arc::new(DatabaseProbe::new(db.clone()))];
        if let Some(redis) = redis {
            probes.push(Arc::new(RedisProbe::new(redis.clone())));
        }
        Ok(Self {
            users: Arc::new(CachedUsers::new(
                Arc::new(SqlUsers::new(db.clone())),
                cache.clone(),
            )),
            uow: Arc::new(InvalidatingUnitOfWork::new(
                Arc::new(SqlUnitOfWork::new(db.clone())),
                cache.clone(),
            )),
            keys: Arc::new(SqlIdempotencyKeys::new(db.clone())),
            tasks: Arc::new(CachedTaskQueries::new(
                Arc::new(SqlTaskQueries::new(db.clone())),
                cache,
            )),
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
            throttle: login_throttle(settings, redis),
            budget: request_budget(settings, redis),
            probes,
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
    redis: Option<&Redis>,
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
        budget,
        probes,
    } = Adapters::new(settings, db, redis)?;
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
            budget,
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
            stats: Arc::new(SqlTaskStats::new(db.clone())),
            clock,
        },
        list_audit_entries: ListAuditEntries {
            audit: Arc::new(SqlAuditLog::new(db.clone())),
        },
        probes,
        shutdown,
        metrics,
    })
}

/// The relay and the consumers, on the Redis stream when Redis is configured, else on
/// one in-process bus (the relay and the consumers must share it).
#[must_use]
pub fn workers(settings: &Settings, db: &Database, redis: Option<&Redis>) -> Workers {
    let events = &settings.events;
    let claim_idle = Duration::from_secs(events.claim_idle_secs);
    let (publisher, subscriber, lag) = match redis {
        Some(redis) => redis_bus(settings, redis, claim_idle),
        None => in_process_bus(settings, claim_idle),
    };
    // Stable per pod (Kubernetes sets HOSTNAME to the pod's name), so a restarted
    // container takes its own pending messages back instead of adding a consumer.
    let consumer_name = std::env::var("HOSTNAME")
        .ok()
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| format!("keystone-{}", UuidV7Ids.new_id().simple()));
    Workers {
        outbox: Arc::new(SqlOutbox::new(db.clone())),
        publisher,
        subscriber,
        handlers: vec![
            Arc::new(SqlTaskStats::new(db.clone())),
            Arc::new(SqlAuditLog::new(db.clone())),
        ],
        inbox: SqlInbox::new(db.clone()),
        clock: Arc::new(SystemClock),
        lag: Some(lag),
        config: WorkerConfig {
            relay_batch: events.relay_batch,
            relay_interval: Duration::from_millis(events.relay_interval_ms),
            relay_max_backoff: Duration::from_millis(events.relay_max_backoff_ms),
            retention: Duration::from_secs(events.retention_hours * 3600),
            receive_wait: Duration::from_secs(1),
            consumer_name,
        },
    }
}

type Bus = (Arc<dyn EventPublisher>, Arc<dyn EventSubscriber>, LagProbe);

fn redis_bus(settings: &Settings, redis: &Redis, claim_idle: Duration) -> Bus {
    let bus = RedisStreamBus::new(
        redis.clone(),
        StreamConfig {
            stream: format!("{}:events", settings.redis.namespace),
            max_len: settings.events.stream_max_len,
            claim_idle,
        },
    );
    let probe = bus.clone();
    let lag: LagProbe = Arc::new(move |group| {
        let bus = probe.clone();
        Box::pin(async move { bus.lag(group).await.ok().flatten() })
    });
    (Arc::new(bus.clone()), Arc::new(bus), lag)
}

fn in_process_bus(settings: &Settings, claim_idle: Duration) -> Bus {
    let bus = InProcessBus::new(settings.events.stream_max_len, claim_idle);
    let probe = bus.clone();
    let lag: LagProbe = Arc::new(move |group| {
        let behind = probe.lag(group);
        Box::pin(async move { behind })
    });
    (Arc::new(bus.clone()), Arc::new(bus), lag)
}
