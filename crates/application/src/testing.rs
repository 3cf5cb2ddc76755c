//! In-memory fakes of every port, and a `Fakes` bundle that builds the use cases on
//! them: the one set of fakes every test layer uses (this crate's use-case tests,
//! presentation's handler tests). Behind the `testing` feature, so that nothing else
//! ever links them.
//!
//! They model what the use cases rely on (tenant scoping, unique emails, version
//! checks, transactions, one-time refresh tokens) and store what they are given,
//! nothing more.

mod db;
mod events;
mod read_models;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use domain::{
    Aggregate, Email, Password, PasswordHash, Role, TenantId, TenantName, User, UserId, Username,
};
use uuid::Uuid;

pub use db::{Appended, FakeDb, FakeTransaction};
pub use events::{FakeBus, FakeHandler, FakeInbox, FakeOutbox};
pub use read_models::{FakeAuditLog, FakeTaskStats};

use crate::auth::{Auth, AuthPorts, Authenticate, RegisterTenantCommand};
use crate::ports::{
    AccessToken, AccessTokens, Admission, Attempt, Clock, HashError, IdGenerator, PasswordHasher,
    RefreshTokens, RequestBudget, Throttle, ThrottleKey, TokenRejection,
};
use crate::reports::Reports;
use crate::tasks::Tasks;
use crate::users::{CreateUserCommand, UserChange, UserEdit, Users};
use crate::{Ports, Precondition, Principal};

/// "Hashes" by prefixing, and counts hashes and verifications so tests can see which
/// paths pay.
#[derive(Default)]
pub struct FakeHasher {
    hashes: AtomicU64,
    verifications: AtomicU64,
}

impl FakeHasher {
    pub fn hashes(&self) -> u64 {
        self.hashes.load(Ordering::SeqCst)
    }

    pub fn verifications(&self) -> u64 {
        self.verifications.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl PasswordHasher for FakeHasher {
    async fn hash(&self, password: &Password) -> Result<PasswordHash, HashError> {
        self.hashes.fetch_add(1, Ordering::SeqCst);
        Ok(PasswordHash::new(format!("hashed:{}", password.expose())))
    }

    async fn verify(&self, password: &str, hash: Option<&PasswordHash>) -> Result<bool, HashError> {
        self.verifications.fetch_add(1, Ordering::SeqCst);
        Ok(hash.is_some_and(|hash| hash.as_str() == format!("hashed:{password}")))
    }
}

/// Access tokens that spell out their principal: `access:<user>:<tenant>:<role>`.
pub struct FakeAccessTokens;

impl FakeAccessTokens {
    /// The token `issue` hands `user`.
    #[must_use]
    pub fn token_for(user: &User) -> String {
        format!(
            "access:{}:{}:{}",
            user.id(),
            user.tenant_id(),
            user.role().as_str()
        )
    }
}

impl AccessTokens for FakeAccessTokens {
    fn issue(&self, user: &User, _now: DateTime<Utc>) -> anyhow::Result<AccessToken> {
        Ok(AccessToken {
            token: Self::token_for(user),
            expires_in: Duration::from_mins(15),
        })
    }

    fn verify(&self, token: &str) -> Result<Principal, TokenRejection> {
        let parts: Vec<&str> = token.split(':').collect();
        let ["access", user, tenant, role] = parts.as_slice() else {
            return Err(TokenRejection::Malformed);
        };
        let uuid = |raw: &str| Uuid::parse_str(raw).map_err(|_| TokenRejection::Malformed);
        Ok(Principal {
            user_id: UserId::from_uuid(uuid(user)?),
            tenant_id: TenantId::from_uuid(uuid(tenant)?),
            role: Role::parse(role).map_err(|_| TokenRejection::Malformed)?,
        })
    }
}

/// Accepts any token as the principal it was made with.
pub struct FakeVerifier(pub Principal);

impl AccessTokens for FakeVerifier {
    fn issue(&self, _user: &User, _now: DateTime<Utc>) -> anyhow::Result<AccessToken> {
        anyhow::bail!("the verifier issues no tokens")
    }

    fn verify(&self, _token: &str) -> Result<Principal, TokenRejection> {
        Ok(self.0)
    }
}

/// Blocks the keys a test says, for as long as it says; counts the attempts it lets
/// through (until given back), and how many passwords the hasher it watches had
/// verified at each: what a test needs to see that an attempt is counted first.
pub struct FakeThrottle {
    hasher: Arc<FakeHasher>,
    blocked: Mutex<HashMap<ThrottleKey, Duration>>,
    /// Each attempt let through and not given back, by number.
    counted: Mutex<BTreeMap<u64, Vec<ThrottleKey>>>,
    verifications_when_counted: Mutex<Vec<u64>>,
    resets: Mutex<Vec<ThrottleKey>>,
}

impl FakeThrottle {
    #[must_use]
    pub fn watching(hasher: Arc<FakeHasher>) -> Self {
        Self {
            hasher,
            blocked: Mutex::default(),
            counted: Mutex::default(),
            verifications_when_counted: Mutex::default(),
            resets: Mutex::default(),
        }
    }

    pub fn block(&self, key: ThrottleKey, wait: Duration) {
        self.blocked.lock().unwrap().insert(key, wait);
    }

    /// The keys of the attempts still counted, in the order they were made.
    pub fn counted(&self) -> Vec<ThrottleKey> {
        self.counted
            .lock()
            .unwrap()
            .values()
            .flatten()
            .cloned()
            .collect()
    }

    /// How many passwords had been verified when each attempt was counted.
    pub fn verifications_when_counted(&self) -> Vec<u64> {
        self.verifications_when_counted.lock().unwrap().clone()
    }

    pub fn resets(&self) -> Vec<ThrottleKey> {
        self.resets.lock().unwrap().clone()
    }
}

#[async_trait]
impl Throttle for FakeThrottle {
    /// Waits the longest wait of the keys asked about that are blocked.
    async fn attempt(&self, keys: &[ThrottleKey]) -> anyhow::Result<Admission> {
        let blocked = self.blocked.lock().unwrap();
        if let Some(wait) = keys.iter().filter_map(|key| blocked.get(key)).max() {
            return Ok(Admission::Wait(*wait));
        }
        let mut counted = self.counted.lock().unwrap();
        let number = counted.keys().next_back().map_or(0, |last| last + 1);
        counted.insert(number, keys.to_vec());
        self.verifications_when_counted
            .lock()
            .unwrap()
            .push(self.hasher.verifications());
        Ok(Admission::Admitted(Attempt(number.to_string())))
    }

    async fn give_back(&self, _keys: &[ThrottleKey], attempt: &Attempt) -> anyhow::Result<()> {
        let number: u64 = attempt.0.parse()?;
        self.counted.lock().unwrap().remove(&number);
        Ok(())
    }

    async fn reset(&self, key: &ThrottleKey) -> anyhow::Result<()> {
        self.resets.lock().unwrap().push(key.clone());
        Ok(())
    }
}

/// A budget that is spent or not as the test says, and remembers who spent it.
#[derive(Default)]
pub struct FakeBudget {
    wait: Mutex<Option<Duration>>,
    spent_by: Mutex<Vec<TenantId>>,
}

impl FakeBudget {
    pub fn exhaust_for(&self, wait: Duration) {
        *self.wait.lock().unwrap() = Some(wait);
    }

    pub fn spent_by(&self) -> Vec<TenantId> {
        self.spent_by.lock().unwrap().clone()
    }
}

#[async_trait]
impl RequestBudget for FakeBudget {
    async fn spend(&self, tenant: TenantId) -> anyhow::Result<Option<Duration>> {
        self.spent_by.lock().unwrap().push(tenant);
        Ok(*self.wait.lock().unwrap())
    }
}

/// A clock that stands still until the test moves it.
pub struct FakeClock(Mutex<DateTime<Utc>>);

impl FakeClock {
    pub fn advance(&self, by: TimeDelta) {
        *self.0.lock().unwrap() += by;
    }

    pub fn set(&self, now: DateTime<Utc>) {
        *self.0.lock().unwrap() = now;
    }
}

impl Default for FakeClock {
    fn default() -> Self {
        Self(Mutex::new(
            Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
        ))
    }
}

impl Clock for FakeClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

/// Real `UUIDv7`s: tests compare ids by creation order.
pub struct V7Ids;

impl IdGenerator for V7Ids {
    fn new_id(&self) -> Uuid {
        Uuid::now_v7()
    }
}

/// Every fake, shared by the use cases a test builds from it.
pub struct Fakes {
    pub db: Arc<FakeDb>,
    pub hasher: Arc<FakeHasher>,
    pub throttle: Arc<FakeThrottle>,
    pub clock: Arc<FakeClock>,
    pub task_stats: Arc<FakeTaskStats>,
    pub audit: Arc<FakeAuditLog>,
    pub budget: Arc<FakeBudget>,
}

impl Default for Fakes {
    fn default() -> Self {
        Self::new()
    }
}

impl Fakes {
    #[must_use]
    pub fn new() -> Self {
        let hasher = Arc::<FakeHasher>::default();
        Self {
            db: Arc::default(),
            throttle: Arc::new(FakeThrottle::watching(hasher.clone())),
            hasher,
            clock: Arc::default(),
            task_stats: Arc::default(),
            audit: Arc::default(),
            budget: Arc::default(),
        }
    }

    #[must_use]
    pub fn principal(user: &User) -> Principal {
        Principal {
            user_id: user.id(),
            tenant_id: user.tenant_id(),
            role: user.role(),
        }
    }

    #[must_use]
    pub fn ports(&self) -> Ports {
        Ports {
            uow: Arc::new(self.db.clone()),
            keys: Arc::new(self.db.clone()),
            clock: self.clock.clone(),
            ids: Arc::new(V7Ids),
        }
    }

    /// Signing up and in; every authenticated request spends the fake budget when
    /// `with_budget`.
    #[must_use]
    pub fn auth_with(&self, with_budget: bool) -> Auth {
        Auth::new(
            &self.ports(),
            AuthPorts {
                hasher: self.hasher.clone(),
                access_tokens: Arc::new(FakeAccessTokens),
                refresh_tokens: Arc::new(self.db.clone()),
                throttle: self.throttle.clone(),
                budget: with_budget.then(|| self.budget.clone() as Arc<dyn RequestBudget>),
                users: Arc::new(self.db.clone()),
                user_queries: Arc::new(self.db.clone()),
            },
        )
    }

    #[must_use]
    pub fn auth(&self) -> Auth {
        self.auth_with(false)
    }

    /// Authenticates every token as `principal`, spending the budget when asked to.
    #[must_use]
    pub fn authenticate(&self, principal: Principal, with_budget: bool) -> Authenticate {
        Authenticate {
            tokens: Arc::new(FakeVerifier(principal)),
            users: Arc::new(self.db.clone()),
            budget: with_budget.then(|| self.budget.clone() as Arc<dyn RequestBudget>),
        }
    }

    #[must_use]
    pub fn users(&self) -> Users {
        Users::new(
            &self.ports(),
            self.hasher.clone(),
            Arc::new(self.db.clone()),
            Arc::new(self.db.clone()),
        )
    }

    #[must_use]
    pub fn tasks(&self) -> Tasks {
        Tasks::new(
            &self.ports(),
            Arc::new(self.db.clone()),
            Arc::new(self.db.clone()),
        )
    }

    #[must_use]
    pub fn reports(&self) -> Reports {
        Reports::new(
            self.clock.clone(),
            Arc::new(self.db.clone()),
            self.task_stats.clone(),
            self.audit.clone(),
        )
    }

    /// The access token `user` gets on signing in.
    #[must_use]
    pub fn access_token(user: &User) -> String {
        FakeAccessTokens::token_for(user)
    }

    /// A refresh token of a new session of `user`.
    ///
    /// # Panics
    /// When the fake database was told to fail.
    pub async fn sign_in_token(&self, user: &User) -> String {
        self.db
            .issue(user, None, self.clock.now())
            .await
            .expect("a refresh token is issued")
    }

    /// A new tenant with its admin, whose password is `password123`.
    ///
    /// # Panics
    /// When the registration fails.
    pub async fn seed_admin(&self, email: &str) -> User {
        let (_, admin) = self
            .auth()
            .register
            .execute(RegisterTenantCommand {
                tenant_name: TenantName::parse("Tenant").unwrap(),
                email: Email::parse(email).unwrap(),
                username: Username::parse("admin").unwrap(),
                password: Password::parse("password123").unwrap(),
                client: "192.0.2.1".to_owned(),
            })
            .await
            .unwrap();
        admin
    }

    /// A member of the admin's tenant, whose password is `password123`.
    ///
    /// # Panics
    /// When the creation fails.
    pub async fn seed_member(&self, admin: &User, email: &str) -> User {
        let command = CreateUserCommand {
            email: Email::parse(email).unwrap(),
            username: Username::parse("member").unwrap(),
            password: Password::parse("password123").unwrap(),
            role: Role::Member,
        };
        self.users()
            .create
            .execute(&Self::principal(admin), command, None)
            .await
            .unwrap()
            .created()
    }

    async fn change(&self, admin: &User, user: &User, change: UserChange) {
        self.users()
            .change
            .execute(
                &Self::principal(admin),
                user.id(),
                &Precondition::Any,
                change,
            )
            .await
            .unwrap();
    }

    /// # Panics
    /// When the change is refused.
    pub async fn deactivate(&self, admin: &User, user: &User) {
        self.change(admin, user, UserChange::Deactivate).await;
    }

    /// # Panics
    /// When the change is refused.
    pub async fn delete(&self, admin: &User, user: &User) {
        self.change(admin, user, UserChange::Delete).await;
    }

    /// # Panics
    /// When the change is refused.
    pub async fn promote(&self, admin: &User, user: &User) {
        let edit = UserEdit {
            role: Some(Role::Admin),
            ..UserEdit::default()
        };
        self.change(admin, user, UserChange::Edit(edit)).await;
    }

    /// # Panics
    /// When the change is refused.
    pub async fn demote(&self, admin: &User, user: &User) {
        let edit = UserEdit {
            role: Some(Role::Member),
            ..UserEdit::default()
        };
        self.change(admin, user, UserChange::Edit(edit)).await;
    }
}
