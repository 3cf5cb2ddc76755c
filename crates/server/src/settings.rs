//! The one typed `Settings`, loaded by figment: built-in defaults, then
//! `config/default.toml` and `config/<environment>.toml` when present, then `APP_*`
//! environment variables with `__` between levels (`APP_DATABASE__URL`).

use std::fmt;
use std::path::Path;

use anyhow::{Context, bail};
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

/// The signing secret used when none is configured. Fine on a laptop; production
/// refuses to start with it.
pub const DEVELOPMENT_JWT_SECRET: &str = "keystone-development-secret-do-not-use-in-production";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    Development,
    Test,
    Production,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Settings {
    pub environment: Environment,
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub auth: AuthSettings,
    pub log: LogSettings,
    pub telemetry: TelemetrySettings,
    pub metrics: MetricsSettings,
    pub redis: RedisSettings,
    pub cache: CacheSettings,
    pub events: EventSettings,
    pub rate_limit: RateLimitSettings,
}

/// Redis, when configured, holds the cache, carries the events and keeps the rate
/// limits shared by every replica. Unset, in-process adapters do all three: right for
/// one process, wrong for several (production refuses to start without it).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RedisSettings {
    /// `redis://[:password@]host:6379/0`; `rediss://` for TLS.
    pub url: Option<Secret>,
    /// The PEM file of the CA that signed Redis's certificate, when the system's roots
    /// do not (a private CA); only with a `rediss://` URL.
    pub ca_file: Option<std::path::PathBuf>,
    pub pool_size: usize,
    /// The deadline of one Redis call; past it the cache is bypassed, the limiter
    /// falls back to its in-process copy and the relay retries later.
    pub timeout_ms: u64,
    /// Prefix of every key and stream, so services can share a Redis.
    pub namespace: String,
}

impl RedisSettings {
    /// The URL, unless unset or empty.
    #[must_use]
    pub fn url(&self) -> Option<&str> {
        self.url
            .as_ref()
            .map(Secret::expose)
            .filter(|url| !url.trim().is_empty())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CacheSettings {
    /// How long a cached user or task lives without being invalidated.
    pub ttl_secs: u64,
    /// Cached values larger than this are compressed with zstd.
    pub compress_above_bytes: usize,
    /// Entries the in-process cache holds (without Redis).
    pub memory_capacity: usize,
}

/// The outbox relay, the event bus and the consumers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EventSettings {
    /// Whether `serve` also runs the relay and the consumers, as `server worker` does.
    /// Off when they run in a deployment of their own.
    pub run_in_server: bool,
    /// Events the relay publishes per transaction.
    pub relay_batch: u64,
    /// The longest a drained relay waits before it looks again; a write wakes it at
    /// once (in process, and through `LISTEN`/`NOTIFY` on `PostgreSQL`).
    pub relay_interval_ms: u64,
    /// The first wait after the bus failed; it doubles up to `relay_max_backoff_ms`.
    pub relay_initial_backoff_ms: u64,
    /// The longest wait between relay attempts while the bus is failing.
    pub relay_max_backoff_ms: u64,
    /// Published events are kept this long, then purged (and the consumers' records of
    /// the events they applied with them).
    pub retention_hours: u64,
    /// The Redis stream's approximate length bound (`XADD MAXLEN ~`), and the
    /// in-process bus's.
    pub stream_max_len: usize,
    /// How long a message may stay unacknowledged by a consumer before another
    /// consumer of its group takes it over.
    pub claim_idle_secs: u64,
}

/// Limits every authenticated request counts against, per tenant.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RateLimitSettings {
    /// Requests a tenant may make per window; 0 turns the budget off.
    pub tenant_requests: u32,
    pub window_secs: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServerSettings {
    pub host: String,
    pub port: u16,
    /// HTTP worker threads; 0 means one per CPU core.
    pub workers: usize,
    /// After SIGTERM or SIGINT, how long requests in flight may take to finish before
    /// they are cut off; below the orchestrator's grace period (Kubernetes' is 30 s).
    pub shutdown_timeout_secs: u64,
    /// Addresses or CIDR ranges of the reverse proxies in front of the service (an
    /// ingress): from them, and only from them, `Forwarded` and `X-Forwarded-For` name
    /// the client. Empty by default: the peer of the connection is the client. As an
    /// environment variable, a list: `APP_SERVER__TRUSTED_PROXIES=[10.0.0.0/8]`.
    pub trusted_proxies: Vec<String>,
    /// Sends `Strict-Transport-Security`; turn on when clients reach the service only
    /// over HTTPS (the ingress terminates TLS).
    pub hsts: bool,
    /// Origins whose browser code may call the API (`https://app.example.com`); none
    /// by default.
    pub cors_origins: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MetricsSettings {
    /// Serves `/metrics` on this port (on `server.host`) and not on the API's, so it
    /// need not be public; unset, it is on the API's port. 0 picks a free port.
    pub port: Option<u16>,
    /// Production refuses `/metrics` on the API's port unless this says it is meant to
    /// be (an ingress that blocks the path, say).
    pub public: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DatabaseSettings {
    /// `sqlite://path/to/file.db` or `postgres://user:password@host/db`.
    pub url: Secret,
    pub max_connections: u32,
    /// How long a request waits for a pooled connection before answering 503.
    pub acquire_timeout_ms: u64,
    /// Lets production serve as a `PostgreSQL` role that row-level security does not
    /// bind (a superuser, `BYPASSRLS`, the tables' owner); refused otherwise.
    pub allow_exempt_role: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuthSettings {
    /// HS256 key that signs new access tokens; at least 32 bytes in production.
    pub jwt_secret: Secret,
    /// The `kid` header of tokens signed with `jwt_secret`.
    pub jwt_key_id: String,
    /// Keys that no longer sign but still verify, while their tokens expire.
    pub previous_keys: Vec<PreviousKey>,
    pub issuer: String,
    pub audience: String,
    pub access_token_ttl_secs: u64,
    /// How long a refresh token is good for if not used: the session's idle limit.
    pub refresh_token_ttl_secs: u64,
    /// How long a session lasts from sign-in, however often its token is rotated.
    pub session_lifetime_secs: u64,
    pub password_hash: PasswordHashSettings,
    pub login_throttle: LoginThrottleSettings,
    pub registration_throttle: RegistrationThrottleSettings,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PreviousKey {
    pub kid: String,
    pub secret: Secret,
}

/// argon2id cost; the defaults are OWASP's minimum recommendation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PasswordHashSettings {
    /// Argon2id memory per hash; production refuses less than 19 MiB (OWASP's minimum).
    pub memory_kib: u32,
    /// Argon2id passes; production refuses fewer than 2.
    pub iterations: u32,
    pub parallelism: u32,
    /// Hashes that may wait for a CPU (one runs per CPU at a time); beyond them a
    /// sign-in or registration gets 503 with `Retry-After` at once.
    pub max_waiting: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoginThrottleSettings {
    /// Failed sign-ins per email within the window; each attempt is counted before the
    /// password is checked, and a success is given back. 0 turns it off.
    pub max_failures_per_email: u32,
    /// Failed sign-ins per client address within the window. 0 turns it off.
    pub max_failures_per_client: u32,
    pub window_secs: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RegistrationThrottleSettings {
    /// Registrations per client address within the window, kept or not. 0 turns it off.
    pub max_per_client: u32,
    pub window_secs: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Pretty,
    Json,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogSettings {
    /// Defaults to pretty in development and test, JSON in production.
    pub format: Option<LogFormat>,
    /// An `EnvFilter` directive; `RUST_LOG` wins when set.
    pub filter: String,
}

/// Where spans go. Unset endpoint: nowhere, and no exporter runs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TelemetrySettings {
    /// Base URL of an OpenTelemetry collector's OTLP/HTTP receiver
    /// (`http://collector:4318`); spans are posted to `<endpoint>/v1/traces`.
    pub otlp_endpoint: Option<String>,
    /// Share of the traces this service starts that are kept, from 0.0 to 1.0. A caller's
    /// `traceparent` decision wins: its sampled traces are kept, its dropped ones dropped.
    pub sampling_ratio: f64,
}

impl TelemetrySettings {
    /// The OTLP/HTTP traces URL, when an endpoint is configured (an empty one is not).
    #[must_use]
    pub fn traces_url(&self) -> Option<String> {
        let endpoint = self.otlp_endpoint.as_deref()?.trim_end_matches('/');
        (!endpoint.is_empty()).then(|| format!("{endpoint}/v1/traces"))
    }

    fn validate(&self) -> anyhow::Result<()> {
        if !(0.0..=1.0).contains(&self.sampling_ratio) {
            bail!("telemetry.sampling_ratio must be between 0.0 and 1.0");
        }
        // The exporter is built without TLS, to keep the build small: spans go to a
        // collector beside the service (a sidecar or node agent), which forwards them.
        if let Some(url) = self.traces_url()
            && !url.starts_with("http://")
        {
            bail!("telemetry.otlp_endpoint must be an http:// URL of a nearby collector");
        }
        Ok(())
    }
}

/// A string that never prints: connection URLs carry passwords, keys are keys.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    #[must_use]
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"<redacted>\"")
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            environment: Environment::Development,
            server: ServerSettings {
                host: "127.0.0.1".to_owned(),
                port: 8080,
                workers: 0,
                shutdown_timeout_secs: 25,
                trusted_proxies: Vec::new(),
                hsts: false,
                cors_origins: Vec::new(),
            },
            database: DatabaseSettings {
                url: Secret::new("sqlite://data/keystone.db"),
                max_connections: 10,
                acquire_timeout_ms: 3_000,
                allow_exempt_role: false,
            },
            auth: AuthSettings {
                jwt_secret: Secret::new(DEVELOPMENT_JWT_SECRET),
                jwt_key_id: "dev".to_owned(),
                previous_keys: Vec::new(),
                issuer: "keystone".to_owned(),
                audience: "keystone-api".to_owned(),
                access_token_ttl_secs: 15 * 60,
                refresh_token_ttl_secs: 7 * 24 * 60 * 60,
                session_lifetime_secs: 30 * 24 * 60 * 60,
                password_hash: PasswordHashSettings {
                    memory_kib: 19 * 1024,
                    iterations: 2,
                    parallelism: 1,
                    max_waiting: 32,
                },
                login_throttle: LoginThrottleSettings {
                    max_failures_per_email: 5,
                    max_failures_per_client: 20,
                    window_secs: 15 * 60,
                },
                registration_throttle: RegistrationThrottleSettings {
                    max_per_client: 10,
                    window_secs: 60 * 60,
                },
            },
            log: LogSettings {
                format: None,
                filter: "info".to_owned(),
            },
            telemetry: TelemetrySettings {
                otlp_endpoint: None,
                sampling_ratio: 1.0,
            },
            metrics: MetricsSettings {
                port: None,
                public: false,
            },
            redis: RedisSettings {
                url: None,
                ca_file: None,
                pool_size: 16,
                timeout_ms: 250,
                namespace: "keystone".to_owned(),
            },
            cache: CacheSettings {
                ttl_secs: 300,
                compress_above_bytes: 1024,
                memory_capacity: 10_000,
            },
            events: EventSettings {
                run_in_server: true,
                relay_batch: 100,
                relay_interval_ms: 30_000,
                relay_initial_backoff_ms: 200,
                relay_max_backoff_ms: 30_000,
                retention_hours: 7 * 24,
                stream_max_len: 100_000,
                claim_idle_secs: 30,
            },
            rate_limit: RateLimitSettings {
                tenant_requests: 0,
                window_secs: 60,
            },
        }
    }
}

impl Settings {
    /// Loads settings from defaults, `config_dir` and the process environment, and
    /// checks them.
    ///
    /// # Errors
    /// When a value does not parse, or production is configured with development secrets.
    pub fn load(config_dir: &Path) -> anyhow::Result<Self> {
        Self::from_figment(&Self::figment(config_dir))
    }

    /// The layered sources, exposed so tests can add their own on top.
    #[must_use]
    pub fn figment(config_dir: &Path) -> Figment {
        let environment = Figment::from(Env::prefixed("APP_").split("__"))
            .extract_inner::<Environment>("environment")
            .unwrap_or(Environment::Development);
        let environment_file = match environment {
            Environment::Development => "development.toml",
            Environment::Test => "test.toml",
            Environment::Production => "production.toml",
        };
        Figment::from(Serialized::defaults(Self::default()))
            .merge(Toml::file(config_dir.join("default.toml")))
            .merge(Toml::file(config_dir.join(environment_file)))
            .merge(Env::prefixed("APP_").split("__"))
    }

    /// # Errors
    /// When a value does not parse or the settings are unsafe for their environment.
    pub fn from_figment(figment: &Figment) -> anyhow::Result<Self> {
        let settings: Self = figment.extract().context("reading settings")?;
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> anyhow::Result<()> {
        self.telemetry.validate()?;
        presentation::TrustedProxies::parse(&self.server.trusted_proxies)
            .map_err(|error| anyhow::anyhow!("server.trusted_proxies: {error}"))?;
        if self.environment != Environment::Production {
            return Ok(());
        }
        let keys = std::iter::once(&self.auth.jwt_secret)
            .chain(self.auth.previous_keys.iter().map(|key| &key.secret));
        for key in keys {
            if key.expose() == DEVELOPMENT_JWT_SECRET {
                bail!("production refuses the development JWT secret: set APP_AUTH__JWT_SECRET");
            }
            if key.expose().len() < 32 {
                bail!("production needs JWT secrets of at least 32 bytes");
            }
        }
        // In-process cache, bus and limits are per replica: with several, a write on
        // one would leave the others' caches stale and every limit multiplied.
        if self.redis.url().is_none() {
            bail!("production needs Redis: set APP_REDIS__URL");
        }
        if self.metrics.port.is_none() && !self.metrics.public {
            bail!(
                "production refuses /metrics on the public API port: set APP_METRICS__PORT \
                 (or APP_METRICS__PUBLIC=true if the path is blocked in front of the service)"
            );
        }
        let hash = &self.auth.password_hash;
        if hash.memory_kib < 19 * 1024 || hash.iterations < 2 {
            bail!(
                "production refuses an Argon2id cost below 19 MiB and 2 passes (OWASP's \
                 minimum): raise auth.password_hash"
            );
        }
        Ok(())
    }

    #[must_use]
    pub fn log_format(&self) -> LogFormat {
        self.log.format.unwrap_or(match self.environment {
            Environment::Production => LogFormat::Json,
            Environment::Development | Environment::Test => LogFormat::Pretty,
        })
    }
}

#[cfg(test)]
// figment's `Jail` closures must return `figment::Error`, which is large by design.
#[allow(clippy::result_large_err)]
mod tests {
    use figment::Jail;

    use super::*;

    #[test]
    fn defaults_serve_sqlite_on_localhost_8080() {
        Jail::expect_with(|jail| {
            let settings = Settings::load(jail.directory()).unwrap();
            assert_eq!(settings.environment, Environment::Development);
            assert_eq!(settings.server.port, 8080);
            assert!(settings.database.url.expose().starts_with("sqlite://"));
            assert_eq!(settings.log_format(), LogFormat::Pretty);
            Ok(())
        });
    }

    #[test]
    fn environment_variables_override_files_which_override_defaults() {
        Jail::expect_with(|jail| {
            jail.create_file("default.toml", "[server]\nport = 9000\nhost = \"0.0.0.0\"")?;
            jail.set_env("APP_SERVER__PORT", "9100");
            jail.set_env("APP_DATABASE__MAX_CONNECTIONS", "3");
            let settings = Settings::load(jail.directory()).unwrap();
            assert_eq!(settings.server.port, 9100);
            assert_eq!(settings.server.host, "0.0.0.0");
            assert_eq!(settings.database.max_connections, 3);
            Ok(())
        });
    }

    #[test]
    fn the_environment_file_is_chosen_by_app_environment() {
        Jail::expect_with(|jail| {
            jail.create_file("test.toml", "[log]\nfilter = \"debug\"")?;
            jail.set_env("APP_ENVIRONMENT", "test");
            let settings = Settings::load(jail.directory()).unwrap();
            assert_eq!(settings.log.filter, "debug");
            Ok(())
        });
    }

    #[test]
    fn trusted_proxies_are_a_list_in_the_environment_and_a_bad_entry_is_refused() {
        Jail::expect_with(|jail| {
            jail.set_env("APP_SERVER__TRUSTED_PROXIES", "[10.0.0.0/8, 192.168.1.7]");
            let settings = Settings::load(jail.directory()).unwrap();
            assert_eq!(
                settings.server.trusted_proxies,
                ["10.0.0.0/8", "192.168.1.7"]
            );
            jail.set_env("APP_SERVER__TRUSTED_PROXIES", "[the-ingress]");
            let error = Settings::load(jail.directory()).unwrap_err();
            assert!(error.to_string().contains("the-ingress"), "{error:#}");
            Ok(())
        });
    }

    #[test]
    fn production_refuses_to_start_with_the_development_secret() {
        Jail::expect_with(|jail| {
            jail.set_env("APP_ENVIRONMENT", "production");
            let error = Settings::load(jail.directory()).unwrap_err();
            assert!(
                error.to_string().contains("development JWT secret"),
                "{error}"
            );
            Ok(())
        });
    }

    #[test]
    fn production_refuses_a_short_secret_and_accepts_a_long_one() {
        Jail::expect_with(|jail| {
            jail.set_env("APP_ENVIRONMENT", "production");
            jail.set_env("APP_AUTH__JWT_SECRET", "short");
            assert!(Settings::load(jail.directory()).is_err());
            jail.set_env("APP_AUTH__JWT_SECRET", "x".repeat(32));
            jail.set_env("APP_REDIS__URL", "redis://cache:6379");
            jail.set_env("APP_METRICS__PORT", "9090");
            let settings = Settings::load(jail.directory()).unwrap();
            assert_eq!(settings.log_format(), LogFormat::Json);
            Ok(())
        });
    }

    #[test]
    fn the_drain_timeout_and_the_metrics_port_come_from_the_environment() {
        Jail::expect_with(|jail| {
            let settings = Settings::load(jail.directory()).unwrap();
            assert_eq!(settings.server.shutdown_timeout_secs, 25);
            assert_eq!(settings.metrics.port, None);
            jail.set_env("APP_SERVER__SHUTDOWN_TIMEOUT_SECS", "10");
            jail.set_env("APP_METRICS__PORT", "9090");
            let settings = Settings::load(jail.directory()).unwrap();
            assert_eq!(settings.server.shutdown_timeout_secs, 10);
            assert_eq!(settings.metrics.port, Some(9090));
            Ok(())
        });
    }

    #[test]
    fn production_refuses_public_metrics_and_a_weak_password_hash_unless_told_otherwise() {
        Jail::expect_with(|jail| {
            jail.set_env("APP_ENVIRONMENT", "production");
            jail.set_env("APP_AUTH__JWT_SECRET", "x".repeat(32));
            jail.set_env("APP_REDIS__URL", "redis://cache:6379");
            let error = Settings::load(jail.directory()).unwrap_err();
            assert!(error.to_string().contains("/metrics"), "{error}");
            jail.set_env("APP_METRICS__PUBLIC", "true");
            Settings::load(jail.directory()).unwrap();
            jail.set_env("APP_AUTH__PASSWORD_HASH__MEMORY_KIB", "4096");
            let error = Settings::load(jail.directory()).unwrap_err();
            assert!(error.to_string().contains("Argon2id"), "{error}");
            jail.set_env("APP_AUTH__PASSWORD_HASH__MEMORY_KIB", "19456");
            jail.set_env("APP_AUTH__PASSWORD_HASH__ITERATIONS", "1");
            assert!(Settings::load(jail.directory()).is_err());
            Ok(())
        });
    }

    #[test]
    fn the_shipped_production_config_turns_each_tenants_request_budget_on() {
        Jail::expect_with(|jail| {
            jail.set_env("APP_ENVIRONMENT", "production");
            jail.set_env("APP_AUTH__JWT_SECRET", "x".repeat(32));
            jail.set_env("APP_REDIS__URL", "redis://cache:6379");
            jail.set_env("APP_METRICS__PORT", "9090");
            let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config");
            let settings = Settings::load(&shipped).unwrap();
            assert!(settings.rate_limit.tenant_requests > 0);
            Ok(())
        });
    }

    #[test]
    fn production_refuses_to_start_without_redis() {
        Jail::expect_with(|jail| {
            jail.set_env("APP_ENVIRONMENT", "production");
            jail.set_env("APP_AUTH__JWT_SECRET", "x".repeat(32));
            jail.set_env("APP_METRICS__PORT", "9090");
            let error = Settings::load(jail.directory()).unwrap_err();
            assert!(error.to_string().contains("APP_REDIS__URL"), "{error}");
            jail.set_env("APP_REDIS__URL", "");
            assert!(Settings::load(jail.directory()).is_err());
            jail.set_env("APP_REDIS__URL", "redis://cache:6379");
            let settings = Settings::load(jail.directory()).unwrap();
            assert_eq!(settings.redis.url(), Some("redis://cache:6379"));
            Ok(())
        });
    }

    #[test]
    fn without_redis_the_embedded_adapters_serve_and_workers_run_in_the_server() {
        Jail::expect_with(|jail| {
            let settings = Settings::load(jail.directory()).unwrap();
            assert_eq!(settings.redis.url(), None);
            assert!(settings.events.run_in_server);
            assert_eq!(settings.cache.ttl_secs, 300);
            assert_eq!(settings.rate_limit.tenant_requests, 0);
            jail.set_env("APP_EVENTS__RUN_IN_SERVER", "false");
            jail.set_env("APP_RATE_LIMIT__TENANT_REQUESTS", "600");
            let settings = Settings::load(jail.directory()).unwrap();
            assert!(!settings.events.run_in_server);
            assert_eq!(settings.rate_limit.tenant_requests, 600);
            Ok(())
        });
    }

    #[test]
    fn secrets_never_print() {
        let mut settings = Settings::default();
        settings.redis.url = Some(Secret::new("redis://:hunter2@cache:6379"));
        let printed = format!("{settings:?}");
        assert!(!printed.contains("hunter2"));
        assert!(!printed.contains(DEVELOPMENT_JWT_SECRET));
        assert!(!printed.contains("data/keystone.db"));
    }

    #[test]
    fn a_malformed_value_is_an_error_naming_the_setting() {
        Jail::expect_with(|jail| {
            jail.set_env("APP_SERVER__PORT", "eighty");
            let error = format!("{:#}", Settings::load(jail.directory()).unwrap_err());
            assert!(error.to_lowercase().contains("server.port"), "{error}");
            Ok(())
        });
    }

    #[test]
    fn traces_are_off_until_an_otlp_endpoint_is_set() {
        Jail::expect_with(|jail| {
            let settings = Settings::load(jail.directory()).unwrap();
            assert_eq!(settings.telemetry.traces_url(), None);
            assert!((settings.telemetry.sampling_ratio - 1.0).abs() < f64::EPSILON);
            jail.set_env("APP_TELEMETRY__OTLP_ENDPOINT", "");
            let settings = Settings::load(jail.directory()).unwrap();
            assert_eq!(settings.telemetry.traces_url(), None);
            jail.set_env("APP_TELEMETRY__OTLP_ENDPOINT", "http://collector:4318/");
            jail.set_env("APP_TELEMETRY__SAMPLING_RATIO", "0.25");
            let settings = Settings::load(jail.directory()).unwrap();
            assert_eq!(
                settings.telemetry.traces_url().as_deref(),
                Some("http://collector:4318/v1/traces")
            );
            assert!((settings.telemetry.sampling_ratio - 0.25).abs() < f64::EPSILON);
            Ok(())
        });
    }

    #[test]
    fn a_sampling_ratio_outside_zero_to_one_or_a_tls_endpoint_is_refused() {
        Jail::expect_with(|jail| {
            jail.set_env("APP_TELEMETRY__SAMPLING_RATIO", "1.5");
            let error = Settings::load(jail.directory()).unwrap_err();
            assert!(error.to_string().contains("sampling_ratio"), "{error}");
            jail.set_env("APP_TELEMETRY__SAMPLING_RATIO", "1");
            jail.set_env("APP_TELEMETRY__OTLP_ENDPOINT", "https://collector:4318");
            let error = Settings::load(jail.directory()).unwrap_err();
            assert!(error.to_string().contains("http://"), "{error}");
            Ok(())
        });
    }
}
