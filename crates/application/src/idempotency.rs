//! Running a create at most once per idempotency key.

use std::future::Future;

use chrono::{DateTime, Utc};

use crate::Error;
use crate::ports::{Claim, ClaimToken, IdempotencyKey, IdempotencyKeys, RecordedResponse};

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
    /// The claim this request holds; completing fails once another request took it over.
    pub token: ClaimToken,
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
    let token = match keys.claim(&request.key, now).await? {
        Claim::Claimed(token) => token,
        Claim::Replay(response) => return Ok(Outcome::Replayed(response)),
        Claim::InProgress => return Err(Error::IdempotencyInProgress),
        Claim::KeyReused => return Err(Error::IdempotencyKeyReused),
    };
    let completion = Completion {
        key: &request.key,
        token,
        respond: request.respond,
    };
    let result = work(Some(completion)).await;
    if result.is_err()
        && let Err(error) = keys.release(&request.key, token).await
    {
        // The claim lapses by itself after a short while; say why retries wait.
        tracing::warn!(error = %error, "could not release an idempotency claim");
    }
    result.map(Outcome::Created)
}

#[cfg(any(test, feature = "testing"))]
impl<T> Outcome<T> {
    /// The created value.
    ///
    /// # Panics
    /// On a replay.
    pub fn created(self) -> T {
        match self {
            Self::Created(value) => value,
            Self::Replayed(_) => panic!("expected a new resource, got a replay"),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use chrono::{TimeDelta, TimeZone};
    use domain::TenantId;

    use super::*;
    use crate::ports::UnitOfWork;
    use crate::testing::FakeDb;

    /// What the request creates; nothing here.
    #[derive(Debug)]
    struct Created;

    fn respond(_: &Created) -> RecordedResponse {
        RecordedResponse {
            status: 201,
            location: None,
            body: b"done".to_vec(),
        }
    }

    #[tokio::test]
    async fn a_request_that_fails_after_losing_its_claim_releases_only_its_own() {
        let db = Arc::new(FakeDb::default());
        let now = Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap();
        let request = Idempotent {
            key: IdempotencyKey {
                tenant: TenantId::from_uuid(uuid::Uuid::now_v7()),
                key: "retry-me".to_owned(),
                fingerprint: "body-1".to_owned(),
            },
            respond: &respond,
        };
        let later = now + TimeDelta::seconds(61);
        let failed = run_once(&db, Some(&request), now, |completion| {
            let db = db.clone();
            let key = request.key.clone();
            async move {
                let completion = completion.unwrap();
                // This request runs past its lease, and a retry takes the claim over.
                let Claim::Claimed(retry) = db.claim(&key, later).await? else {
                    panic!("the lapsed claim should be taken over");
                };
                assert_ne!(retry, completion.token);
                // Too late to record an answer: the retry holds the key now.
                let response = respond(&Created);
                let mut tx = db.begin().await?;
                tx.complete_idempotent_request(&key, completion.token, &response, later)
                    .await?;
                tx.commit().await?;
                Ok(Created)
            }
        })
        .await;
        assert!(
            matches!(failed, Err(Error::ConcurrentModification)),
            "{failed:?}"
        );
        // The failure released nothing: the retry's claim holds.
        assert_eq!(
            db.claim(&request.key, later + TimeDelta::seconds(1))
                .await
                .unwrap(),
            Claim::InProgress
        );
    }
}
