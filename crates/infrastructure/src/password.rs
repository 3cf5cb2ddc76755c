//! Password hashing with Argon2id.

use std::num::NonZeroUsize;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context, anyhow};
use application::ports::{HashError, PasswordHasher};
use argon2::password_hash::{self, SaltString};
use argon2::{Algorithm, Argon2, PasswordHasher as _, PasswordVerifier as _, Version};
use async_trait::async_trait;
use domain::{Password, PasswordHash};
use tokio::sync::Semaphore;

use crate::system::random_bytes;

/// Argon2id cost parameters (memory in KiB, passes, lanes). OWASP's current minimum is
/// 19 MiB, 2 passes, 1 lane; tests use far less to stay fast.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Argon2Params {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

/// Hashes new passwords with the configured parameters and verifies stored PHC strings
/// with the parameters they carry, so raising the cost does not lock anyone out.
///
/// Hashing is deliberately slow CPU work, so it runs on tokio's blocking pool instead of
/// stalling the async workers. Each hash also holds `memory_kib` of memory while it runs,
/// and the blocking pool would start hundreds at once, so at most one per CPU runs at a
/// time and the rest wait their turn: a burst of sign-ins costs latency, not the memory
/// limit of the container. The queue is bounded too: beyond `max_waiting` callers, a
/// caller is turned away at once (`HashError::Busy`, a 503 with `Retry-After`) rather
/// than queued behind minutes of work. `keystone_password_hashes_waiting` shows it.
#[derive(Clone)]
pub struct Argon2Hasher {
    argon2: Argon2<'static>,
    /// One permit per hash allowed to run at once; `at_once` of them.
    running: Arc<Semaphore>,
    at_once: usize,
    /// Callers waiting for a permit, and how many may.
    waiting: Arc<AtomicUsize>,
    max_waiting: usize,
    /// Verified against when there is no user, so an unknown email costs as much time as
    /// a wrong password.
    dummy_hash: String,
}

impl std::fmt::Debug for Argon2Hasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Argon2Hasher")
            .field("params", self.argon2.params())
            .field("at_once", &self.at_once())
            .finish_non_exhaustive()
    }
}

impl Argon2Hasher {
    /// A hasher that runs as many hashes at once as the process may use CPUs (which, in a
    /// container, is what its CPU limit allows).
    ///
    /// # Errors
    /// When the parameters are outside what Argon2 accepts, or the system has no
    /// randomness for the dummy hash.
    pub fn new(params: Argon2Params, max_waiting: usize) -> anyhow::Result<Self> {
        let cpus = std::thread::available_parallelism().unwrap_or(NonZeroUsize::MIN);
        Self::with_limit(params, cpus, max_waiting)
    }

    /// A hasher that runs at most `at_once` hashes at the same time, with at most
    /// `max_waiting` callers waiting.
    ///
    /// # Errors
    /// As [`Argon2Hasher::new`].
    fn with_limit(
        params: Argon2Params,
        at_once: NonZeroUsize,
        max_waiting: usize,
    ) -> anyhow::Result<Self> {
        let params = argon2::Params::new(
            params.memory_kib,
            params.iterations,
            params.parallelism,
            None,
        )
        .map_err(|error| anyhow!("invalid Argon2 parameters: {error}"))?;
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let password: [u8; 32] = random_bytes().context("drawing a dummy password")?;
        let dummy_hash = hash_with(&argon2, &password).context("making the dummy hash")?;
        Ok(Self {
            argon2,
            running: Arc::new(Semaphore::new(at_once.get())),
            at_once: at_once.get(),
            waiting: Arc::default(),
            max_waiting,
            dummy_hash,
        })
    }

    /// How many hashes may run at the same time.
    #[must_use]
    pub fn at_once(&self) -> usize {
        self.at_once
    }
}

/// Hashes waiting for their turn, as a gauge.
pub const HASHES_WAITING: &str = "keystone_password_hashes_waiting";

/// Gives the hasher's gauge its help text.
pub fn describe_metrics() {
    metrics::describe_gauge!(
        HASHES_WAITING,
        metrics::Unit::Count,
        "Password hashes waiting for one of the permits to run"
    );
}

impl Argon2Hasher {
    /// Runs `work` on the blocking pool once a permit is free, and holds the permit until
    /// `work` is done (even if the caller stops waiting, the thread keeps computing).
    /// `Busy` at once when `max_waiting` callers wait already.
    async fn limited<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, HashError> {
        let permit = if let Ok(permit) = Arc::clone(&self.running).try_acquire_owned() {
            permit
        } else {
            let _waiting = Waiting::join(&self.waiting, self.max_waiting).ok_or(HashError::Busy)?;
            Arc::clone(&self.running)
                .acquire_owned()
                .await
                .map_err(|_| HashError::Failed(anyhow!("the hashing limiter is closed")))?
        };
        tokio::task::spawn_blocking(move || {
            let result = work();
            drop(permit);
            result
        })
        .await
        .map_err(|error| HashError::Failed(anyhow!("the hashing task failed: {error}")))
    }
}

/// A caller counted among the waiting while it lives.
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    /// Joins the waiting callers, unless `max` wait already.
    fn join(waiting: &'a AtomicUsize, max: usize) -> Option<Self> {
        let joined = waiting
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |now| {
                (now < max).then_some(now + 1)
            })
            .is_ok();
        joined.then(|| {
            gauge(waiting);
            Self(waiting)
        })
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
        gauge(self.0);
    }
}

#[allow(clippy::cast_precision_loss, reason = "a queue fits a float")]
fn gauge(waiting: &AtomicUsize) {
    metrics::gauge!(HASHES_WAITING).set(waiting.load(Ordering::SeqCst) as f64);
}

/// A PHC string for `password` with a fresh random salt.
fn hash_with(argon2: &Argon2<'_>, password: &[u8]) -> anyhow::Result<String> {
    let salt: [u8; 16] = random_bytes().context("drawing a salt")?;
    let salt =
        SaltString::encode_b64(&salt).map_err(|error| anyhow!("encoding a salt: {error}"))?;
    let hash = argon2
        .hash_password(password, &salt)
        .map_err(|error| anyhow!("hashing a password: {error}"))?;
    Ok(hash.to_string())
}

/// Whether `password` matches the PHC string `phc`. The error never quotes the hash.
fn verify_with(argon2: &Argon2<'_>, password: &[u8], phc: &str) -> anyhow::Result<bool> {
    let hash = password_hash::PasswordHash::new(phc)
        .map_err(|error| anyhow!("the stored password hash is not a PHC string: {error}"))?;
    match argon2.verify_password(password, &hash) {
        Ok(()) => Ok(true),
        Err(password_hash::Error::Password) => Ok(false),
        Err(error) => Err(anyhow!("verifying a password: {error}")),
    }
}

#[async_trait]
impl PasswordHasher for Argon2Hasher {
    async fn hash(&self, password: &Password) -> Result<PasswordHash, HashError> {
        let argon2 = self.argon2.clone();
        let password = password.expose().to_owned();
        let phc = self
            .limited(move || hash_with(&argon2, password.as_bytes()))
            .await?
            .map_err(HashError::Failed)?;
        Ok(PasswordHash::new(phc))
    }

    async fn verify(&self, password: &str, hash: Option<&PasswordHash>) -> Result<bool, HashError> {
        let argon2 = self.argon2.clone();
        let password = password.to_owned();
        let (phc, known) = match hash {
            Some(hash) => (hash.as_str().to_owned(), true),
            None => (self.dummy_hash.clone(), false),
        };
        let matches = self
            .limited(move || verify_with(&argon2, password.as_bytes(), &phc))
            .await?
            .map_err(HashError::Failed)?;
        Ok(known && matches)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHEAP: Argon2Params = Argon2Params {
        memory_kib: 1024,
        iterations: 1,
        parallelism: 1,
    };

    fn hasher() -> Argon2Hasher {
        Argon2Hasher::new(CHEAP, 64).unwrap()
    }

    fn password(raw: &str) -> Password {
        Password::parse(raw).unwrap()
    }

    #[tokio::test]
    async fn a_hashed_password_verifies_and_the_hash_is_argon2id_with_the_configured_cost() {
        let hasher = hasher();
        let hash = hasher
            .hash(&password("correct horse battery"))
            .await
            .unwrap();
        assert!(
            hash.as_str().starts_with("$argon2id$v=19$m=1024,t=1,p=1$"),
            "{:?}",
            hash.as_str()
        );
        assert!(
            hasher
                .verify("correct horse battery", Some(&hash))
                .await
                .unwrap()
        );
    }

    #[tokio::test]
    async fn a_wrong_password_does_not_verify() {
        let hasher = hasher();
        let hash = hasher
            .hash(&password("correct horse battery"))
            .await
            .unwrap();
        assert!(
            !hasher
                .verify("correct horse batterY", Some(&hash))
                .await
                .unwrap()
        );
    }

    #[tokio::test]
    async fn two_hashes_of_one_password_differ_by_their_salt() {
        let hasher = hasher();
        let first = hasher.hash(&password("same password")).await.unwrap();
        let second = hasher.hash(&password("same password")).await.unwrap();
        assert_ne!(first.as_str(), second.as_str());
    }

    #[tokio::test]
    async fn without_a_hash_nothing_verifies() {
        assert!(!hasher().verify("anything at all", None).await.unwrap());
    }

    #[tokio::test]
    async fn a_hash_made_with_other_parameters_still_verifies() {
        let old = Argon2Hasher::new(
            Argon2Params {
                memory_kib: 2048,
                iterations: 2,
                parallelism: 1,
            },
            64,
        )
        .unwrap();
        let hash = old.hash(&password("kept across upgrades")).await.unwrap();
        assert!(
            hasher()
                .verify("kept across upgrades", Some(&hash))
                .await
                .unwrap()
        );
    }

    #[tokio::test]
    async fn a_corrupt_stored_hash_is_an_error_that_does_not_quote_it() {
        let corrupt = PasswordHash::new("stored in plain text: secretvalue".to_owned());
        let error = hasher()
            .verify("whatever it is", Some(&corrupt))
            .await
            .unwrap_err();
        assert!(!format!("{error:#}").contains("secretvalue"), "{error:#}");
    }

    #[tokio::test]
    async fn no_more_hashes_run_at_once_than_the_limit_allows() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::time::Duration;

        let hasher = Argon2Hasher::with_limit(CHEAP, NonZeroUsize::new(2).unwrap(), 64).unwrap();
        let (now, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let jobs: Vec<_> = (0..8)
            .map(|_| {
                let (now, most) = (now.clone(), most.clone());
                let hasher = hasher.clone();
                tokio::spawn(async move {
                    hasher
                        .limited(move || {
                            let current = now.fetch_add(1, Ordering::SeqCst) + 1;
                            most.fetch_max(current, Ordering::SeqCst);
                            // Holds its permit until two ran at once (or long enough to
                            // show they cannot), so the overlap is not left to timing.
                            for _ in 0..1000 {
                                if most.load(Ordering::SeqCst) >= 2 {
                                    break;
                                }
                                std::thread::sleep(Duration::from_millis(10));
                            }
                            now.fetch_sub(1, Ordering::SeqCst);
                        })
                        .await
                })
            })
            .collect();
        for job in jobs {
            job.await.unwrap().unwrap();
        }
        assert_eq!(most.load(Ordering::SeqCst), 2);
    }

    /// Waits until `hasher` counts `n` callers waiting.
    async fn until_waiting(hasher: &Argon2Hasher, n: usize) {
        for _ in 0..1000 {
            if hasher.waiting.load(Ordering::SeqCst) == n {
                return;
            }
            tokio::task::yield_now().await;
        }
        panic!("never {n} waiting");
    }

    #[tokio::test]
    async fn a_hash_waits_counted_while_every_permit_is_taken_and_runs_once_one_is_free() {
        use std::time::Duration;

        let hasher = Argon2Hasher::with_limit(CHEAP, NonZeroUsize::MIN, 64).unwrap();
        let taken = hasher.running.clone().acquire_owned().await.unwrap();
        let password = password("waits for its turn");
        let hashing = {
            let hasher = hasher.clone();
            tokio::spawn(async move { hasher.hash(&password).await })
        };
        until_waiting(&hasher, 1).await;
        drop(taken);
        let hash = tokio::time::timeout(Duration::from_secs(30), hashing)
            .await
            .expect("the hash runs once a permit is free")
            .unwrap()
            .unwrap();
        assert!(hash.as_str().starts_with("$argon2id$"));
        assert_eq!(hasher.waiting.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn beyond_its_bound_the_queue_turns_a_caller_away_at_once() {
        let hasher = Argon2Hasher::with_limit(CHEAP, NonZeroUsize::MIN, 1).unwrap();
        let taken = hasher.running.clone().acquire_owned().await.unwrap();
        let first = {
            let hasher = hasher.clone();
            tokio::spawn(async move { hasher.verify("first in line", None).await })
        };
        until_waiting(&hasher, 1).await;
        let turned_away = hasher.verify("second in line", None).await;
        assert!(
            matches!(turned_away, Err(HashError::Busy)),
            "{turned_away:?}"
        );
        drop(taken);
        assert!(
            !first.await.unwrap().unwrap(),
            "the first still ran, with no hash"
        );
    }

    #[test]
    fn by_default_as_many_hashes_run_at_once_as_there_are_cpus() {
        let cpus = std::thread::available_parallelism().unwrap().get();
        assert_eq!(hasher().at_once(), cpus);
    }

    #[test]
    fn parameters_argon2_refuses_are_an_error() {
        let error = Argon2Hasher::new(
            Argon2Params {
                memory_kib: 1,
                iterations: 0,
                parallelism: 1,
            },
            64,
        )
        .unwrap_err();
        assert!(error.to_string().contains("Argon2"), "{error}");
    }
}
