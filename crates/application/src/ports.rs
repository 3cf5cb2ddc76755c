//! The ports: what the use cases need from the outside world, in the domain's words.
//!
//! Each has a real adapter in `infrastructure` and a fake in this crate's tests. They are
//! object-safe (`async_trait`) so the composition root can hand out `Arc<dyn Port>`
//! without generic parameters spreading through every handler (docs/adr/0003).

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::{Email, Password, PasswordHash, Tenant, TenantId, User, UserId};
use uuid::Uuid;

use crate::auth::Principal;

mod cache;
mod events;
mod idempotency;
mod read_models;
mod tasks;
mod unit_of_work;

pub use cache::{Cache, CacheError, Lookup};
pub use events::{
    Delivery, EventEnvelope, EventHandler, EventPublisher, EventSubscriber, Outbox, OutboxBacklog,
    RelayError,
};
pub use idempotency::{Claim, ClaimToken, IdempotencyKey, IdempotencyKeys, RecordedResponse};
pub use read_models::{AuditEntry, AuditLog, Projections, TaskStats, TaskStatsQueries};
pub use tasks::{TaskCursor, TaskFilter, TaskOrder, TaskQueries, TaskSort, TaskStore};
pub use unit_of_work::{Transaction, UnitOfWork};

/// Why a repository call failed, in terms a use case can act on.
#[derive(Debug, thiserror::Error)]
pub enum RepositoryError {
    #[error("the email address is already taken")]
    EmailTaken,
    /// The stored version is not the one the aggregate was loaded with.
    #[error("the record was changed since it was read")]
    Stale,
    /// The write would leave the tenant without an active admin (re-checked in the
    /// write transaction, so concurrent demotions cannot slip past the domain rule).
    #[error("the change would leave the tenant without an active admin")]
    NoActiveAdminLeft,
    #[error("the database is unavailable")]
    Unavailable(#[source] anyhow::Error),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// Filters for listing the users of one tenant.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserFilter {
    /// Matches a substring of the email or the username, case-insensitively.
    pub q: Option<String>,
    pub is_active: Option<bool>,
    pub include_deleted: bool,
}

/// Reads of users. Every method takes the tenant from the caller's principal and
/// filters by it: a user of another tenant is simply not there. Writes go through a
/// `UserStore` in a transaction.
#[async_trait]
pub trait UserRepository: Send + Sync {
    /// The user with this id in this tenant, deleted or not.
    async fn get(&self, tenant: TenantId, id: UserId) -> Result<Option<User>, RepositoryError>;

    /// The user with this email in any tenant: emails are unique across the service,
    /// and sign-in is the one place that does not know the tenant yet.
    async fn find_by_email(&self, email: &Email) -> Result<Option<User>, RepositoryError>;

    async fn count_active_admins(&self, tenant: TenantId) -> Result<u64, RepositoryError>;

    /// Users in id order (UUIDv7, so creation order) after `after`, at most `limit`.
    async fn list(
        &self,
        tenant: TenantId,
        filter: &UserFilter,
        after: Option<UserId>,
        limit: u64,
    ) -> Result<Vec<User>, RepositoryError>;
}

/// Writes of tenants and users inside a transaction. Adding or saving a user also
/// stores the events it recorded, in the same transaction, and leaves it holding none.
#[async_trait]
pub trait UserStore: Send {
    /// The user with this id in this tenant, read in the transaction so that what the
    /// caller decides from it (an assignee is active) still holds at commit.
    async fn get(&mut self, tenant: TenantId, id: UserId) -> Result<Option<User>, RepositoryError>;

    /// A new tenant; its first admin follows with `add` in the same transaction.
    async fn add_tenant(&mut self, tenant: &Tenant) -> Result<(), RepositoryError>;

    /// `EmailTaken` when the email belongs to any user of any tenant.
    async fn add(&mut self, user: &mut User) -> Result<(), RepositoryError>;

    /// Saves a changed user if storage still holds `user.version()`; afterwards `user`
    /// carries the new version. `Stale` when another write came first;
    /// `NoActiveAdminLeft` when the tenant would be left without an active admin.
    async fn save(&mut self, user: &mut User) -> Result<(), RepositoryError>;
}

#[async_trait]
pub trait PasswordHasher: Send + Sync {
    async fn hash(&self, password: &Password) -> anyhow::Result<PasswordHash>;

    /// Whether `password` matches `hash`. With no hash (unknown user) it spends the
    /// same time as a real check and answers false, so timing does not reveal which
    /// emails exist.
    async fn verify(&self, password: &str, hash: Option<&PasswordHash>) -> anyhow::Result<bool>;
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

    async fn revoke_session(
        &self,
        session: SessionId,
        now: DateTime<Utc>,
    ) -> Result<(), RepositoryError>;

    /// Ends every session of the user (deactivated, deleted, role changed).
    async fn revoke_user(&self, user: UserId, now: DateTime<Utc>) -> Result<(), RepositoryError>;
}

/// What failed sign-ins are counted against.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ThrottleKey {
    Email(String),
    Client(String),
}

#[async_trait]
pub trait LoginThrottle: Send + Sync {
    /// `Some(wait)` while any key has too many recent failures.
    async fn blocked_for(&self, keys: &[ThrottleKey]) -> anyhow::Result<Option<Duration>>;

    async fn record_failure(&self, keys: &[ThrottleKey]) -> anyhow::Result<()>;

    /// Forgets the failures of a key after a successful sign-in.
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

    async fn check(&self) -> anyhow::Result<()>;
}
