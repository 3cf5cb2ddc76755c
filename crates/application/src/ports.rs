//! The ports: what the use cases need from the outside world, in the domain's words.
//!
//! Each has a real adapter in `infrastructure`, an in-memory fake (in `testing`, or
//! beside the queries of an aggregate), and a caller in this crate. They are object-safe (`async_trait`) so the composition root
//! can hand out `Arc<dyn Port>` without generic parameters spreading through every
//! handler (docs/adr/0003). The ports every aggregate shares are generic over it
//! (`Store<A>`, `Lookup<A>`); the queries that differ per aggregate live in the
//! aggregate's module (`tasks::TaskQueries`, `users::UserQueries`).

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::{Aggregate, Password, PasswordHash, TenantId, User, UserId};
use uuid::Uuid;

use crate::auth::Principal;

mod events;
mod idempotency;
mod read_models;
mod unit_of_work;

pub use events::{
    Delivery, EventEnvelope, EventHandler, EventPublisher, EventSubscriber, Inbox, Outbox,
    OutboxBacklog, RelayError,
};
pub use idempotency::{Claim, ClaimToken, IdempotencyKey, IdempotencyKeys, RecordedResponse};
pub use read_models::{AuditEntry, AuditLog, TaskStats, TaskStatsQueries};
pub use unit_of_work::{Accounts, Store, Transaction, UnitOfWork};

/// Why a repository call failed, in terms a use case can act on.
#[derive(Debug, thiserror::Error)]
pub enum RepositoryError {
    #[error("the email address is already taken")]
    EmailTaken,
    /// The stored version is not the one the aggregate was loaded with.
    #[error("the record was changed since it was read")]
    Stale,
    #[error("the database is unavailable")]
    Unavailable(#[source] anyhow::Error),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// Reads one aggregate by id, outside any transaction: the read side of every
/// aggregate, which the cache decorates once for all of them.
#[async_trait]
pub trait Lookup<A: Aggregate>: Send + Sync {
    /// The aggregate with this id in this tenant, deleted or not; an aggregate of
    /// another tenant is simply not there.
    async fn get(&self, tenant: TenantId, id: A::Id) -> Result<Option<A>, RepositoryError>;
}

#[async_trait]
pub trait PasswordHasher: Send + Sync {
    async fn hash(&self, password: &Password) -> Result<PasswordHash, HashError>;

    /// Whether `password` matches `hash`. With no hash (unknown user) it spends the
    /// same time as a real check and answers false, so timing does not reveal which
    /// emails exist.
    async fn verify(&self, password: &str, hash: Option<&PasswordHash>) -> Result<bool, HashError>;
}

/// Why a password could not be hashed or checked.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// As many hashes as allowed are running and as many wait as may: the caller is
    /// told to come back shortly rather than queued without end.
    #[error("too many passwords are being checked; retry shortly")]
    Busy,
    #[error(transparent)]
    Failed(anyhow::Error),
}

/// A signed access token and its lifetime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessToken {
    pub token: String,
    pub expires_in: Duration,
}

/// Why an access token was refused. All of them answer 401; the reason is for logs and
/// for the `error_description` clients may show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenRejection {
    #[error("no bearer token was sent")]
    Missing,
    #[error("the token is malformed")]
    Malformed,
    #[error("the token is signed with an algorithm this service does not accept")]
    Algorithm,
    #[error("the token's signing key is unknown")]
    UnknownKey,
    #[error("the token's signature is invalid")]
    Signature,
    #[error("the token has expired")]
    Expired,
    #[error("the token was issued by another issuer")]
    Issuer,
    #[error("the token is meant for another audience")]
    Audience,
    /// Checked against the present on every request, not the token's claims.
    #[error("the token's user may no longer act: deactivated, deleted or gone")]
    Revoked,
}

pub trait AccessTokens: Send + Sync {
    fn issue(&self, user: &User, now: DateTime<Utc>) -> anyhow::Result<AccessToken>;

    /// # Errors
    /// The reason the token is not acceptable.
    fn verify(&self, token: &str) -> Result<Principal, TokenRejection>;
}

/// One sign-in: the chain of refresh tokens that rotation descends from one login.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionId(pub Uuid);

/// What presenting a refresh token led to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshOutcome {
    /// The token was valid and is now used up.
    Consumed {
        user: UserId,
        tenant: TenantId,
        session: SessionId,
    },
    /// The token was used before: someone replays it, so the session must end.
    Reused { session: SessionId },
    /// Unknown, expired or revoked.
    Invalid,
}

#[async_trait]
pub trait RefreshTokens: Send + Sync {
    /// Issues a new opaque refresh token for `user`, in `session` or a new one.
    /// Only a hash of it is stored.
    async fn issue(
        &self,
        user: &User,
        session: Option<SessionId>,
        now: DateTime<Utc>,
    ) -> Result<String, RepositoryError>;

    /// Atomically marks the token used, so two concurrent uses cannot both succeed.
    async fn consume(
        &self,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<RefreshOutcome, RepositoryError>;

    /// Ends the session the token belongs to, if any.
    async fn revoke(&self, token: &str, now: DateTime<Utc>) -> Result<(), RepositoryError>;

    /// Deletes the tokens that have expired; how many went.
    async fn purge_expired(&self, now: DateTime<Utc>) -> Result<u64, RepositoryError>;

    async fn revoke_session(
        &self,
        session: SessionId,
        now: DateTime<Utc>,
    ) -> Result<(), RepositoryError>;
}

/// What sign-in and registration attempts are counted against.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ThrottleKey {
    /// Sign-ins for an email.
    Email(String),
    /// Sign-ins from a client address.
    Client(String),
    /// Registrations from a client address.
    Registration(String),
}

/// An attempt the throttle let through, to give back if it succeeds. Opaque: only the
/// throttle that made it reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt(pub String);

/// Whether an attempt may go ahead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    Admitted(Attempt),
    /// A key has had its attempts within its window; nothing was counted. Try again
    /// after this long.
    Wait(Duration),
}

/// Attempts per key within a sliding window: a key that has had its limit waits until
/// the oldest of them leaves the window.
#[async_trait]
pub trait Throttle: Send + Sync {
    /// Counts one attempt against every key, all of them or none, before the attempt's
    /// work is done: a burst of attempts at once lets at most the limit through, each
    /// of them to hash a password, and refuses the rest at once.
    async fn attempt(&self, keys: &[ThrottleKey]) -> anyhow::Result<Admission>;

    /// Takes back an attempt that succeeded, so that only failures count.
    async fn give_back(&self, keys: &[ThrottleKey], attempt: &Attempt) -> anyhow::Result<()>;

    /// Forgets every attempt of a key (an email after a successful sign-in).
    async fn reset(&self, key: &ThrottleKey) -> anyhow::Result<()>;
}

/// A budget of requests per tenant and time window, shared by every replica when the
/// adapter is.
#[async_trait]
pub trait RequestBudget: Send + Sync {
    /// Spends one request of `tenant`'s budget; `Some(wait)` when it is spent and the
    /// request must be refused until the window turns.
    async fn spend(&self, tenant: TenantId) -> anyhow::Result<Option<Duration>>;
}

pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

pub trait IdGenerator: Send + Sync {
    /// A new UUIDv7 (time-ordered, so ids sort by creation).
    fn new_id(&self) -> Uuid;
}

/// A dependency readiness asks about (database, Redis).
#[async_trait]
pub trait HealthProbe: Send + Sync {
    fn component(&self) -> &'static str;

    /// Whether the service cannot serve without it. A dependency it only degrades
    /// without (Redis: reads fall back to the database, limits to the replica, events
    /// wait in the outbox) is reported, but does not take the replica out of rotation:
    /// that would turn a cache outage into an outage of every replica at once.
    fn required(&self) -> bool {
        true
    }

    /// Whether the dependency answers within `limit`. The probe cuts itself off at the
    /// limit (this crate has no timer), so one hung dependency costs readiness `limit`.
    async fn check(&self, limit: std::time::Duration) -> Result<(), ProbeError>;
}

/// Why a dependency failed its probe.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error(transparent)]
    Failed(anyhow::Error),
    #[error("no answer in time")]
    TimedOut,
}
