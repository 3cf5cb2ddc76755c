//! Wiring: the adapters, built once from settings, and the use cases of each aggregate
//! made from them. Every use case receives clones of exactly the ports it needs.

use std::sync::Arc;
use std::time::Duration;

use application::Ports;
use application::auth::{Auth, AuthPorts};
use application::events::{Consumer, ConsumerPolicy, Housekeeping, Relay, RelayPolicy};
use application::health::CheckReadiness;
use application::ports::{
    Clock, EventHandler, EventPublisher, EventSubscriber, HealthProbe, IdGenerator, Lookup,
    RequestBudget, Throttle,
};
use application::reports::Reports;
use application::tasks::Tasks;
use application::users::Users;
use infrastructure::database::{Database, DatabaseProbe};
use infrastructure::redis_pool::{Redis, RedisConfig, RedisProbe};
use infrastructure::{
    Argon2Hasher, Argon2Params, CacheAside, CacheConfig, CachedLookup, InMemoryCache,
    InMemoryRequestBudget, InMemoryThrottle, InProcessBus, InvalidatingUnitOfWork, JwtAccessTokens,
    JwtConfig, JwtKey, Limit, RedisCache, RedisRequestBudget, RedisStreamBus, RedisThrottle,
    SqlAuditLog, SqlIdempotencyKeys, SqlInbox, SqlLookup, SqlOutbox, SqlRefreshTokens,
    SqlTaskQueries, SqlTaskStats, SqlUnitOfWork, SqlUsers, StreamConfig, SystemClock,
    ThrottleConfig, UuidV7Ids,
};
use presentation::{AppState, MetricsRenderer, ShutdownFlag};
use presentation::{ResponsePolicy, TrustedProxies};

use crate::settings::Settings;
use crate::worker::Workers;

/// Attempts at signing in and up are counted in Redis when configured, so that the
/// limits hold across replicas.
fn throttle(settings: &Settings, redis: Option<&Redis>) -> Arc<dyn Throttle> {
    let (login, registration) = (
        &settings.auth.login_throttle,
        &settings.auth.registration_throttle,
    );
    let login_window = Duration::from_secs(login.window_secs);
    let config = ThrottleConfig::with_limits(
        Limit::new(login.max_failures_per_email, login_window),
        Limit::new(login.max_failures_per_client, login_window),
        Limit::new(
            registration.max_per_client,
            Duration::from_secs(registration.window_secs),
        ),
    );
    match redis {
        Some(redis) => Arc::new(RedisThrottle::new(
            redis.clone(),
            settings.redis.namespace.clone(),
            config,
        )),
        None => Arc::new(InMemoryThrottle::new(config)),
    }
}

/// Refresh tokens, with their lifetime and their session's.
fn refresh_tokens(settings: &Settings, db: &Database) -> SqlRefreshTokens {
    SqlRefreshTokens::new(
        db.clone(),
        Duration::from_secs(settings.auth.refresh_token_ttl_secs),
        Duration::from_secs(settings.auth.session_lifetime_secs),
    )
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
                ca_file: settings.redis.ca_file.clone(),
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
    match redis {
        Some(redis) => CacheAside::new(
            Arc::new(RedisCache::new(
                redis.clone(),
                settings.redis.namespace.clone(),
                config.ttl,
            )),
            config,
        ),
        None => CacheAside::new(
            Arc::new(InMemoryCache::new(
                settings.cache.memory_capacity,
                config.ttl,
            )),
            config,
        ),
    }
}

/// The reads by id of one kind of aggregate: the database, through the cache.
fn lookup<A>(db: &Database, cache: &CacheAside) -> Arc<dyn Lookup<A>>
where
    A: domain::Aggregate,
    CachedLookup<A>: Lookup<A>,
    SqlLookup<A>: Lookup<A>,
{
    Arc::new(CachedLookup::new(
        Arc::new(SqlLookup::<A>::new(db.clone())),
        cache.clone(),
    ))
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
    let auth = &settings.auth;
    let cache = cache_aside(settings, redis);
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let ports = Ports {
        uow: Arc::new(InvalidatingUnitOfWork::new(
            Arc::new(SqlUnitOfWork::new(db.clone())),
            cache.clone(),
        )),
        keys: Arc::new(SqlIdempotencyKeys::new(db.clone())),
        clock: clock.clone(),
        ids: Arc::new(UuidV7Ids),
    };
    let hasher = Arc::new(Argon2Hasher::new(
        Argon2Params {
            memory_kib: auth.password_hash.memory_kib,
            iterations: auth.password_hash.iterations,
            parallelism: auth.password_hash.parallelism,
        },
        auth.password_hash.max_waiting,
    )?);
    let users = lookup(db, &cache);
    let user_queries = Arc::new(SqlUsers::new(db.clone()));
    let mut probes: Vec<Arc<dyn HealthProbe>> = vec![Arc::new(DatabaseProbe::new(db.clone()))];
    if let Some(redis) = redis {
        probes.push(Arc::new(RedisProbe::new(redis.clone())));
    }
    Ok(AppState {
        service_name: "keystone".to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        auth: Auth::new(
            &ports,
            AuthPorts {
                hasher: hasher.clone(),
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
                refresh_tokens: Arc::new(refresh_tokens(settings, db)),
                throttle: throttle(settings, redis),
                budget: request_budget(settings, redis),
                users: users.clone(),
                user_queries: user_queries.clone(),
            },
        ),
        users: Users::new(&ports, hasher, users.clone(), user_queries),
        tasks: Tasks::new(
            &ports,
            lookup(db, &cache),
            Arc::new(SqlTaskQueries::new(db.clone())),
        ),
        reports: Reports::new(
            clock,
            users,
            Arc::new(SqlTaskStats::new(db.clone())),
            Arc::new(SqlAuditLog::new(db.clone())),
        ),
        readiness: CheckReadiness::new(probes),
        trusted_proxies: TrustedProxies::parse(&settings.server.trusted_proxies)
            .map_err(|error| anyhow::anyhow!("server.trusted_proxies: {error}"))?,
        response_policy: ResponsePolicy {
            hsts: settings.server.hsts,
            cors_origins: settings.server.cors_origins.clone(),
        },
        shutdown,
        metrics,
    })
}

/// The relay, the consumers and the housekeeping, on the Redis stream when Redis is
/// configured, else on one in-process bus (the relay and the consumers must share it).
#[must_use]
pub fn workers(settings: &Settings, db: &Database, redis: Option<&Redis>) -> Workers {
    let events = &settings.events;
    let claim_idle = Duration::from_secs(events.claim_idle_secs);
    let (publisher, subscriber): (Arc<dyn EventPublisher>, Arc<dyn EventSubscriber>) =
        if let Some(redis) = redis {
            let bus = RedisStreamBus::new(
                redis.clone(),
                StreamConfig {
                    stream: format!("{}:events", settings.redis.namespace),
                    max_len: events.stream_max_len,
                    claim_idle,
                },
            );
            (Arc::new(bus.clone()), Arc::new(bus))
        } else {
            let bus = InProcessBus::new(events.stream_max_len, claim_idle);
            (Arc::new(bus.clone()), Arc::new(bus))
        };
    // Stable per pod (Kubernetes sets HOSTNAME to the pod's name), so a restarted
    // container takes its own pending messages back instead of adding a consumer.
    let consumer_name = std::env::var("HOSTNAME")
        .ok()
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| format!("keystone-{}", UuidV7Ids.new_id().simple()));
    let max_backoff = Duration::from_millis(events.relay_max_backoff_ms);
    let handlers: Vec<Arc<dyn EventHandler>> = vec![
        Arc::new(SqlTaskStats::new(db.clone())),
        Arc::new(SqlAuditLog::new(db.clone())),
    ];
    let outbox = Arc::new(SqlOutbox::new(db.clone()));
    let retention = Duration::from_secs(events.retention_hours * 3600);
    Workers {
        relay: Relay::new(
            outbox.clone(),
            publisher,
            RelayPolicy {
                batch: events.relay_batch,
                interval: Duration::from_millis(events.relay_interval_ms),
                initial_backoff: Duration::from_millis(events.relay_initial_backoff_ms),
                max_backoff,
            },
        ),
        housekeeping: Housekeeping {
            outbox,
            inbox: Arc::new(SqlInbox::new(db.clone())),
            refresh_tokens: Arc::new(refresh_tokens(settings, db)),
            keys: Arc::new(SqlIdempotencyKeys::new(db.clone())),
            subscriber: subscriber.clone(),
            clock: Arc::new(SystemClock),
            groups: handlers.iter().map(|handler| handler.name()).collect(),
            retention: chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::MAX),
        },
        consumers: handlers
            .into_iter()
            .map(|handler| {
                let policy = ConsumerPolicy {
                    name: consumer_name.clone(),
                    batch: 64,
                    receive_wait: Duration::from_secs(1),
                    initial_backoff: Duration::from_millis(200),
                    max_backoff,
                };
                Consumer::new(subscriber.clone(), handler, policy)
            })
            .collect(),
    }
}
