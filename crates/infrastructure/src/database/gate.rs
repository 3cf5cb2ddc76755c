//! The gate in front of the connection pool. sqlx queues the callers that wait for a
//! connection but does not say how many there are. The gate has one turn per pooled
//! connection and every database operation takes one first, so a caller with a turn
//! finds a connection free or free to open, and the callers beyond the pool's size queue
//! here instead, where they are counted.
//!
//! One moment escapes the count: sqlx takes a connection back on a task of its own,
//! after a ping, so the caller handed the turn of an operation that just ended may
//! wait that round trip inside sqlx, uncounted.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use anyhow::anyhow;
use application::ports::RepositoryError;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, TryAcquireError};

/// Turns at the pool and how many callers wait for one. Cloning it shares both.
#[derive(Debug, Clone)]
pub(super) struct Gate {
    turns: Arc<Semaphore>,
    waiting: Arc<AtomicU32>,
    /// How long a caller waits for a turn: the pool's acquire timeout.
    timeout: Duration,
}

impl Gate {
    pub(super) fn new(turns: u32, timeout: Duration) -> Self {
        Self {
            // Only a 16-bit target could not count to a u32.
            turns: Arc::new(Semaphore::new(
                usize::try_from(turns).unwrap_or(Semaphore::MAX_PERMITS),
            )),
            waiting: Arc::default(),
            timeout,
        }
    }

    /// A turn, held until the permit is dropped: at once if one is free; otherwise the
    /// caller counts as waiting until one comes free, for at most the timeout. Turns go
    /// to waiting callers first come, first served.
    ///
    /// # Errors
    /// `Unavailable` when no turn came free in time or the gate is closed: the same
    /// fast 503 that the pool's own acquire timeout gives.
    pub(super) async fn enter(&self) -> Result<OwnedSemaphorePermit, RepositoryError> {
        match Arc::clone(&self.turns).try_acquire_owned() {
            Ok(turn) => return Ok(turn),
            Err(TryAcquireError::Closed) => return Err(closed()),
            Err(TryAcquireError::NoPermits) => {}
        }
        let _waiting = Waiting::start(&self.waiting);
        let turn = Arc::clone(&self.turns).acquire_owned();
        match tokio::time::timeout(self.timeout, turn).await {
            Ok(Ok(turn)) => Ok(turn),
            Ok(Err(_)) => Err(closed()),
            Err(_) => Err(RepositoryError::Unavailable(anyhow!(
                "no database connection came free within {} ms",
                self.timeout.as_millis()
            ))),
        }
    }

    /// How many callers wait for a turn right now.
    pub(super) fn waiting(&self) -> u32 {
        self.waiting.load(Ordering::Relaxed)
    }

    /// Refuses every turn from now on, and the callers waiting get `Unavailable` at once.
    pub(super) fn close(&self) {
        self.turns.close();
    }
}

fn closed() -> RepositoryError {
    RepositoryError::Unavailable(anyhow!("the database pool is closed"))
}

/// Counts a caller as waiting until dropped: also when the caller gives up first and
/// drops the future (a client that went away, a readiness check that timed out).
struct Waiting<'a>(&'a AtomicU32);

impl<'a> Waiting<'a> {
    fn start(count: &'a AtomicU32) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        Self(count)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use std::pin::pin;

    use super::*;

    /// Polls `future` for a moment: long enough to start waiting, too short to finish.
    async fn poll_briefly<F: Future>(future: std::pin::Pin<&mut F>) -> Option<F::Output> {
        tokio::time::timeout(Duration::from_millis(50), future)
            .await
            .ok()
    }

    #[tokio::test]
    async fn callers_beyond_the_turns_count_as_waiting_until_they_get_one_or_give_up() {
        let gate = Gate::new(1, Duration::from_secs(10));
        let first = gate.enter().await.unwrap();
        assert_eq!(gate.waiting(), 0, "a free turn is taken without waiting");

        let mut second = pin!(gate.enter());
        assert!(poll_briefly(second.as_mut()).await.is_none());
        // Boxed, so that dropping it drops the waiting caller.
        let mut third = Box::pin(gate.enter());
        assert!(poll_briefly(third.as_mut()).await.is_none());
        assert_eq!(gate.waiting(), 2);

        drop(first);
        let second = second.await.unwrap();
        assert_eq!(gate.waiting(), 1, "the first to wait is served first");
        drop(third);
        assert_eq!(gate.waiting(), 0, "a caller that gives up no longer waits");
        drop(second);
        assert!(gate.enter().await.is_ok(), "every turn was given back");
    }

    #[tokio::test]
    async fn a_caller_that_gets_no_turn_in_time_finds_the_database_unavailable() {
        let gate = Gate::new(1, Duration::from_millis(100));
        let _busy = gate.enter().await.unwrap();
        let error = gate.enter().await.unwrap_err();
        assert!(
            matches!(error, RepositoryError::Unavailable(_)),
            "{error:?}"
        );
        assert_eq!(gate.waiting(), 0);
    }

    #[tokio::test]
    async fn a_closed_gate_turns_waiting_and_later_callers_away() {
        let gate = Gate::new(1, Duration::from_secs(10));
        let _busy = gate.enter().await.unwrap();
        let mut waiting = pin!(gate.enter());
        assert!(poll_briefly(waiting.as_mut()).await.is_none());
        gate.close();
        assert!(matches!(
            waiting.await,
            Err(RepositoryError::Unavailable(_))
        ));
        assert!(matches!(
            gate.enter().await,
            Err(RepositoryError::Unavailable(_))
        ));
        assert_eq!(gate.waiting(), 0);
    }
}
