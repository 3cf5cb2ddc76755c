//! Password hashing with Argon2id.

use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use anyhow::{Context, anyhow};
use application::ports::{HashError, PasswordHasher};
use argon2::password_hash::{self, Output, ParamsString, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
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
///
/// The memory a hash works in is kept and reused (`Memory`), one area per permit, so
/// resident memory stays `at_once` areas however many threads have hashed
/// (docs/adr/0016-argon2-memory-is-reused.md).
#[derive(Clone)]
pub struct Argon2Hasher {
    params: Params,
    /// One permit per hash allowed to run at once; `at_once` of them.
    running: Arc<Semaphore>,
    at_once: usize,
    /// Callers waiting for a permit, and how many may.
    waiting: Arc<AtomicUsize>,
    max_waiting: usize,
    /// The areas hashes work in, each taken by one hash at a time.
    memory: Arc<Memory>,
    /// Verified against when there is no user, so an unknown email costs as much time as
    /// a wrong password.
    dummy_hash: String,
}

impl std::fmt::Debug for Argon2Hasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Argon2Hasher")
            .field("params", &self.params)
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
        let params = Params::new(
            params.memory_kib,
            params.iterations,
            params.parallelism,
            None,
        )
        .map_err(|error| anyhow!("invalid Argon2 parameters: {error}"))?;
        let password: [u8; 32] = random_bytes().context("drawing a dummy password")?;
        // Its memory is given back at once: an idle service holds no hashing memory.
        let dummy_hash =
            hash_with(&params, &password, &mut Vec::new()).context("making the dummy hash")?;
        Ok(Self {
            params,
            running: Arc::new(Semaphore::new(at_once.get())),
            at_once: at_once.get(),
            waiting: Arc::default(),
            max_waiting,
            memory: Arc::default(),
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
    /// Runs `work` on the blocking pool once a permit is free, with a memory area of its
    /// own, and holds the permit until `work` is done (even if the caller stops waiting,
    /// the thread keeps computing). `Busy` at once when `max_waiting` callers wait
    /// already.
    async fn limited<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Vec<Block>) -> T + Send + 'static,
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
        let memory = Arc::clone(&self.memory);
        tokio::task::spawn_blocking(move || {
            let mut area = memory.take();
            let result = work(&mut area);
            memory.give_back(area);
            drop(permit);
            result
        })
        .await
        .map_err(|error| HashError::Failed(anyhow!("the hashing task failed: {error}")))
    }
}

/// The memory areas hashes work in. Freed memory of this size is not returned to the
/// system by the allocator, but kept in the arena of whichever thread freed it; a
/// burst of sign-ins on the blocking pool's many threads would leave one area behind
/// per thread. Kept here instead, taken by a hash and given back after, there are never
/// more areas than permits.
#[derive(Default)]
struct Memory {
    free: Mutex<Vec<Vec<Block>>>,
}

impl Memory {
    /// A free area, or a new empty one (grown by the hash to the size it needs).
    fn take(&self) -> Vec<Block> {
        self.free
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop()
            .unwrap_or_default()
    }

    fn give_back(&self, area: Vec<Block>) {
        self.free
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(area);
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

/// The Argon2 output for `password`, computed in `memory` (grown to the size the
/// parameters need, and kept for the next hash).
fn compute(
    argon2: &Argon2<'_>,
    params: &Params,
    password: &[u8],
    salt: &[u8],
    memory: &mut Vec<Block>,
) -> anyhow::Result<Output> {
    let blocks = params.block_count();
    if memory.len() < blocks {
        memory.resize(blocks, Block::default());
    }
    let length = params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN);
    Output::init_with(length, |out| {
        argon2
            .hash_password_into_with_memory(password, salt, out, &mut memory[..blocks])
            .map_err(password_hash::Error::from)
    })
    .map_err(|error| anyhow!("hashing a password: {error}"))
}

/// A PHC string for `password` with a fresh random salt.
fn hash_with(params: &Params, password: &[u8], memory: &mut Vec<Block>) -> anyhow::Result<String> {
    let salt: [u8; 16] = random_bytes().context("drawing a salt")?;
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let output = compute(&argon2, params, password, &salt, memory)?;
    let salt =
        SaltString::encode_b64(&salt).map_err(|error| anyhow!("encoding a salt: {error}"))?;
    let phc = password_hash::PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(params)
            .map_err(|error| anyhow!("encoding the parameters: {error}"))?,
        salt: Some(salt.as_salt()),
        hash: Some(output),
    };
    Ok(phc.to_string())
}

/// Whether `password` matches the PHC string `phc`, computed with the algorithm,
/// version and parameters it carries. The error never quotes the hash.
fn verify_with(password: &[u8], phc: &str, memory: &mut Vec<Block>) -> anyhow::Result<bool> {
    let not_phc = |error: password_hash::Error| {
        anyhow!("the stored password hash is not a usable PHC string: {error}")
    };
    let hash = password_hash::PasswordHash::new(phc).map_err(not_phc)?;
    let algorithm = Algorithm::try_from(hash.algorithm).map_err(not_phc)?;
    let version = hash
        .version
        .map(Version::try_from)
        .transpose()
        .map_err(|error| not_phc(error.into()))?
        .unwrap_or_default();
    let params = Params::try_from(&hash).map_err(not_phc)?;
    let (Some(salt), Some(expected)) = (hash.salt, hash.hash) else {
        return Err(anyhow!("the stored password hash has no salt or no output"));
    };
    let mut salt_bytes = [0; 64];
    let salt = salt.decode_b64(&mut salt_bytes).map_err(not_phc)?;
    let argon2 = Argon2::new(algorithm, version, params.clone());
    let computed = compute(&argon2, &params, password, salt, memory)?;
    // `Output` compares in constant time.
    Ok(computed == expected)
}

#[async_trait]
impl PasswordHasher for Argon2Hasher {
    async fn hash(&self, password: &Password) -> Result<PasswordHash, HashError> {
        let params = self.params.clone();
        let password = password.expose().to_owned();
        let phc = self
            .limited(move |memory| hash_with(&params, password.as_bytes(), memory))
            .await?
            .map_err(HashError::Failed)?;
        Ok(PasswordHash::new(phc))
    }

    async fn verify(&self, password: &str, hash: Option<&PasswordHash>) -> Result<bool, HashError> {
        let password = password.to_owned();
        let (phc, known) = match hash {
            Some(hash) => (hash.as_str().to_owned(), true),
            None => (self.dummy_hash.clone(), false),
        };
        let matches = self
            .limited(move |memory| verify_with(password.as_bytes(), &phc, memory))
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
    async fn hashes_agree_with_the_reference_implementation_both_ways() {
        use argon2::{PasswordHasher as _, PasswordVerifier as _};

        let params =
            Params::new(CHEAP.memory_kib, CHEAP.iterations, CHEAP.parallelism, None).unwrap();
        let reference = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let salt = SaltString::encode_b64(b"sixteen byte salt").unwrap();
        let theirs = reference
            .hash_password(b"stored before", &salt)
            .unwrap()
            .to_string();
        let hasher = hasher();
        let stored = PasswordHash::new(theirs);
        assert!(hasher.verify("stored before", Some(&stored)).await.unwrap());
        assert!(!hasher.verify("stored beforE", Some(&stored)).await.unwrap());

        let ours = hasher.hash(&password("stored after")).await.unwrap();
        let parsed = password_hash::PasswordHash::new(ours.as_str()).unwrap();
        reference
            .verify_password(b"stored after", &parsed)
            .expect("the reference implementation verifies our hash");
    }

    #[tokio::test]
    async fn a_burst_of_hashes_keeps_no_more_memory_areas_than_permits() {
        let hasher = Argon2Hasher::with_limit(CHEAP, NonZeroUsize::new(2).unwrap(), 64).unwrap();
        let burst: Vec<_> = (0..16)
            .map(|_| {
                let hasher = hasher.clone();
                tokio::spawn(async move { hasher.verify("guess", None).await })
            })
            .collect();
        for verification in burst {
            assert!(!verification.await.unwrap().unwrap());
        }
        let areas = hasher.memory.free.lock().unwrap();
        assert!((1..=2).contains(&areas.len()), "{} areas kept", areas.len());
        let blocks = usize::try_from(CHEAP.memory_kib).unwrap();
        assert!(areas.iter().all(|area| area.len() == blocks));
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
                        .limited(move |_| {
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
