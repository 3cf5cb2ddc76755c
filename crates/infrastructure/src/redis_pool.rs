//! The connection to Redis, shared by the cache, the event bus and the rate limiters:
//! a deadpool pool with a deadline on every call, so a slow or absent Redis costs a
//! request a bounded wait, never a hang. `rediss://` URLs connect over TLS (rustls),
//! verifying the server against the system's roots or, when given, a CA file.

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, anyhow};
use application::ports::{HealthProbe, ProbeError};
use async_trait::async_trait;
use deadpool_redis::{Connection, Manager, Pool, PoolConfig, Runtime, Timeouts};
use redis::{IntoConnectionInfo, TlsCertificates};

/// How to reach Redis.
#[derive(Debug, Clone)]
pub struct RedisConfig {
    /// `redis://host:port/db`, or `rediss://` for TLS; credentials in it are never
    /// logged.
    pub url: String,
    /// The PEM file of the CA that signed the server's certificate, for `rediss://`
    /// URLs whose server the system's roots do not vouch for.
    pub ca_file: Option<PathBuf>,
    pub pool_size: usize,
    /// The deadline of one call, connecting included.
    pub timeout: Duration,
}

/// Why a Redis call failed.
#[derive(Debug, thiserror::Error)]
pub enum RedisError {
    #[error("redis did not answer within {0:?}")]
    Timeout(Duration),
    #[error("redis is unavailable")]
    Unavailable(#[source] anyhow::Error),
}

/// A pool of connections to Redis. Cloning it is cheap and shares the pool.
#[derive(Clone)]
pub struct Redis {
    pool: Pool,
    timeout: Duration,
}

impl std::fmt::Debug for Redis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redis")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Redis {
    /// Builds the pool; no connection is made until the first call, so a Redis that is
    /// down at start-up only degrades the service.
    ///
    /// # Errors
    /// When the URL is not a Redis URL, or the CA file cannot be read or is given for
    /// a URL without TLS.
    pub fn new(config: &RedisConfig) -> anyhow::Result<Self> {
        // The URL may hold a password: no error quotes it.
        let invalid = |_| anyhow!("the redis URL is not valid");
        let info = match &config.ca_file {
            None => config
                .url
                .as_str()
                .into_connection_info()
                .map_err(invalid)?,
            Some(ca_file) => {
                anyhow::ensure!(
                    config.url.starts_with("rediss://"),
                    "a redis CA file needs a rediss:// URL"
                );
                let root_cert = std::fs::read(ca_file)
                    .with_context(|| format!("reading the redis CA file {}", ca_file.display()))?;
                let certificates = TlsCertificates {
                    client_tls: None,
                    root_cert: Some(root_cert),
                };
                redis::Client::build_with_tls(config.url.as_str(), certificates)
                    .map_err(invalid)?
                    .get_connection_info()
                    .clone()
            }
        };
        let manager = Manager::new(info).map_err(invalid)?;
        let pool = Pool::builder(manager)
            .config(PoolConfig {
                max_size: config.pool_size,
                timeouts: Timeouts {
                    wait: Some(config.timeout),
                    create: Some(config.timeout),
                    recycle: Some(config.timeout),
                },
                ..PoolConfig::default()
            })
            .runtime(Runtime::Tokio1)
            .build()
            .context("building the redis pool")?;
        Ok(Self {
            pool,
            timeout: config.timeout,
        })
    }

    /// Runs `call` on a pooled connection, within the deadline (waiting for the
    /// connection included).
    ///
    /// # Errors
    /// `Timeout` past the deadline, `Unavailable` when Redis refused or errored.
    pub async fn run<T, F, Fut>(&self, call: F) -> Result<T, RedisError>
    where
        F: FnOnce(Connection) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        let deadline = self.timeout;
        let attempt = async {
            let connection = self
                .pool
                .get()
                .await
                .map_err(|error| RedisError::Unavailable(anyhow!("{error}")))?;
            call(connection)
                .await
                .map_err(|error| RedisError::Unavailable(error.into()))
        };
        tokio::time::timeout(deadline, attempt)
            .await
            .map_err(|_| RedisError::Timeout(deadline))?
    }

    /// Stops handing out connections; calls from now on fail as `Unavailable`.
    pub fn close(&self) {
        self.pool.close();
    }
}

/// Readiness reports Redis when it is configured, as a dependency the service degrades
/// without rather than fails.
#[derive(Debug, Clone)]
pub struct RedisProbe {
    redis: Redis,
}

impl RedisProbe {
    #[must_use]
    pub fn new(redis: Redis) -> Self {
        Self { redis }
    }
}

#[async_trait]
impl HealthProbe for RedisProbe {
    fn component(&self) -> &'static str {
        "redis"
    }

    fn required(&self) -> bool {
        false
    }

    async fn check(&self, limit: Duration) -> Result<(), ProbeError> {
        crate::within(limit, async {
            let pong: String = self
                .redis
                .run(|mut connection| async move {
                    redis::cmd("PING").query_async(&mut connection).await
                })
                .await
                .context("redis did not answer PING")?;
            anyhow::ensure!(pong == "PONG", "redis answered PING with {pong:?}");
            Ok(())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Redis at an address that takes connections and never answers, with a client
    /// timeout of a minute: only the probe's own limit can end its check.
    fn silent_redis() -> (Redis, std::net::TcpListener) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let redis = Redis::new(&RedisConfig {
            url: format!("redis://{}", listener.local_addr().unwrap()),
            ca_file: None,
            pool_size: 1,
            timeout: Duration::from_mins(1),
        })
        .unwrap();
        (redis, listener)
    }

    #[tokio::test]
    async fn a_probe_of_a_redis_that_never_answers_times_out_at_its_limit() {
        let (redis, _listening) = silent_redis();
        let probe = RedisProbe::new(redis);
        let checked = tokio::time::timeout(
            Duration::from_secs(30),
            probe.check(Duration::from_millis(100)),
        )
        .await
        .expect("the probe cut itself off");
        assert!(matches!(checked, Err(ProbeError::TimedOut)), "{checked:?}");
        assert!(!probe.required(), "Redis only degrades the service");
    }

    #[tokio::test]
    async fn a_probe_of_a_redis_that_is_down_fails() {
        let probe = RedisProbe::new(crate::testing::dead_redis());
        let checked = probe.check(Duration::from_secs(30)).await;
        assert!(matches!(checked, Err(ProbeError::Failed(_))), "{checked:?}");
    }

    fn tls_redis(url: String, ca_file: Option<PathBuf>) -> anyhow::Result<Redis> {
        Redis::new(&RedisConfig {
            url,
            ca_file,
            pool_size: 2,
            timeout: Duration::from_secs(5),
        })
    }

    #[tokio::test]
    #[ignore = "needs redis-server with TLS on the PATH; run by `just test-all`"]
    async fn over_rediss_the_server_is_verified_against_the_ca_file() {
        let certificates = crate::test_tls::Certificates::new();
        let server = crate::test_tls::TlsRedis::start(&certificates);
        let url = format!("rediss://127.0.0.1:{}", server.port);

        let redis = tls_redis(url.clone(), Some(certificates.ca())).unwrap();
        let stored: String = redis
            .run(|mut connection| async move {
                redis::cmd("SET")
                    .arg("greeting")
                    .arg("over TLS")
                    .query_async::<()>(&mut connection)
                    .await?;
                redis::cmd("GET")
                    .arg("greeting")
                    .query_async(&mut connection)
                    .await
            })
            .await
            .unwrap();
        assert_eq!(stored, "over TLS");

        // The system's roots do not vouch for this CA: the server is refused.
        let unverified = RedisProbe::new(tls_redis(url, None).unwrap());
        let checked = unverified.check(Duration::from_secs(10)).await;
        assert!(matches!(checked, Err(ProbeError::Failed(_))), "{checked:?}");
        // Without TLS, the TLS port does not answer.
        let plain = format!("redis://127.0.0.1:{}", server.port);
        let plain = RedisProbe::new(tls_redis(plain, None).unwrap());
        assert!(plain.check(Duration::from_secs(10)).await.is_err());
    }

    #[test]
    fn a_ca_file_without_tls_or_that_cannot_be_read_is_refused_at_start() {
        let plain = tls_redis("redis://127.0.0.1:6379".to_owned(), Some("ca.pem".into()));
        let error = plain.err().unwrap().to_string();
        assert!(error.contains("rediss://"), "{error}");
        let missing = tls_redis(
            "rediss://127.0.0.1:6379".to_owned(),
            Some("/nonexistent/ca.pem".into()),
        );
        let error = format!("{:#}", missing.err().unwrap());
        assert!(error.contains("/nonexistent/ca.pem"), "{error}");
    }
}
