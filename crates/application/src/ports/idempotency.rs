//! Idempotency keys: a client may retry a create with the same `Idempotency-Key` and
//! get the first answer back instead of a second resource.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::TenantId;

use super::RepositoryError;

/// A client's key, scoped to its tenant, and a fingerprint of the request it came with
/// (so the same key cannot be reused for a different request).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey {
    pub tenant: TenantId,
    pub key: String,
    pub fingerprint: String,
}

/// The answer to the first request with a key: opaque to this layer, produced by the
/// caller (the HTTP layer) and replayed byte for byte.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedResponse {
    pub status: u16,
    pub location: Option<String>,
    pub body: Vec<u8>,
}

/// Who holds a claim: a fresh token for every claim and take-over, so a request whose
/// claim was taken over can neither release nor complete the new holder's claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClaimToken(pub uuid::Uuid);

/// What claiming a key found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The key is new (or its claim expired): the caller runs the request, holding
    /// the claim with this token.
    Claimed(ClaimToken),
    /// A request with this key and fingerprint completed: here is its answer.
    Replay(RecordedResponse),
    /// A request with this key is still running.
    InProgress,
    /// The key was used for a different request.
    KeyReused,
}

#[async_trait]
pub trait IdempotencyKeys: Send + Sync {
    /// Claims the key outside any transaction, so a concurrent retry sees the claim at
    /// once. A claim left by a crashed request lapses after a short while; a completed
    /// answer is kept for 24 hours.
    async fn claim(
        &self,
        key: &IdempotencyKey,
        now: DateTime<Utc>,
    ) -> Result<Claim, RepositoryError>;

    /// Gives up a claim whose request failed, so a retry runs it again; only while
    /// `token` still holds it.
    async fn release(&self, key: &IdempotencyKey, token: ClaimToken)
    -> Result<(), RepositoryError>;

    /// Deletes every tenant's expired keys (a claim purges its own tenant's; this
    /// reaches the tenants that stopped making requests); how many went.
    async fn purge_expired(&self, now: DateTime<Utc>) -> Result<u64, RepositoryError>;
}
