//! Running a create at most once per idempotency key.

use std::future::Future;

use chrono::{DateTime, Utc};

use crate::Error;
use crate::ports::{Claim, IdempotencyKey, IdempotencyKeys, RecordedResponse};

/// An idempotent request: its key, and how to turn its result into the response
/// that is stored and replayed.
pub struct Idempotent<'a, T> {
    pub key: IdempotencyKey,
    pub respond: &'a (dyn Fn(&T) -> RecordedResponse + Sync),
}

/// What an idempotent create produced.
#[derive(Debug)]
pub enum Outcome<T> {
    /// The request ran now.
    Created(T),
    /// An earlier request with the same key and body ran; this is its response.
    Replayed(RecordedResponse),
}

/// What the work must store in its transaction when the request is idempotent.
pub(crate) struct Completion<'a, T> {
    pub key: &'a IdempotencyKey,
    pub respond: &'a (dyn Fn(&T) -> RecordedResponse + Sync),
}

/// Claims the key (if any), runs `work`, and releases the claim when `work` fails so a
/// retry can run again. `work` records the response in its own transaction through the
/// `Completion`, so the response is stored exactly when the resource is.
pub(crate) async fn run_once<'a, T, W, F>(
    keys: &dyn IdempotencyKeys,
    request: Option<&'a Idempotent<'a, T>>,
    now: DateTime<Utc>,
    work: W,
) -> Result<Outcome<T>, Error>
where
    W: FnOnce(Option<Completion<'a, T>>) -> F,
    F: Future<Output = Result<T, Error>>,
{
    let Some(request) = request else {
        return work(None).await.map(Outcome::Created);
    };
    match keys.claim(&request.key, now).await? {
        Claim::Claimed => {}
        Claim::Replay(response) => return Ok(Outcome::Replayed(response)),
        Claim::InProgress => return Err(Error::IdempotencyInProgress),
        Claim::KeyReused => return Err(Error::IdempotencyKeyReused),
    }
    let completion = Completion {
        key: &request.key,
        respond: request.respond,
    };
    let result = work(Some(completion)).await;
    if result.is_err()
        && let Err(error) = keys.release(&request.key).await
    {
        // The claim lapses by itself after a short while; say why retries wait.
        tracing::warn!(error = %error, "could not release an idempotency claim");
    }
    result.map(Outcome::Created)
}

#[cfg(test)]
impl<T> Outcome<T> {
    /// The created value; panics on a replay.
    pub fn created(self) -> T {
        match self {
            Self::Created(value) => value,
            Self::Replayed(_) => panic!("expected a new resource, got a replay"),
        }
    }
}
