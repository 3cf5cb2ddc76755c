//! In-memory fakes of every port, and a `Fakes` bundle that builds use cases on them.
//! They model the behaviour the use cases rely on (tenant scoping, unique emails,
//! version checks, transactions, one-time refresh tokens) and nothing more.

mod db;
mod read_models;

pub use db::FakeDb;
pub use read_models::{FakeAuditLog, FakeTaskStats};

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use domain::{Email, Password, PasswordHash, Role, TenantId, TenantName, User, UserId, Username};
use uuid::Uuid;

use crate::Principal;
use crate::auth::{Authenticate, Login, Logout, Refresh, RegisterTenant, RegisterTenantCommand};
use crate::ports::{
    AccessToken, AccessTokens, Clock, IdGenerator, LoginThrottle, PasswordHasher, RefreshOutcome,
    RefreshTokens, RepositoryError, RequestBudget, SessionId, ThrottleKey, TokenRejection,
};
use crate::reports::{GetTaskStats, ListAuditEntries};
use crate::tasks::{ChangeTask, CreateTask, GetTask, ListTasks};
use crate::users::{
    CreateUser, CreateUserCommand, GetUser, ListUsers, UpdateUser, UpdateUserCommand, UserLifecycle,
};

/// "Hashes" by prefixing, and counts verifications so tests can see every path pays.
#[derive(Default)]
pub struct FakeHasher {
    verifications: AtomicU64,
}

impl FakeHasher {
    pub fn verifications(&self) -> u64 {
        self.verifications.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl PasswordHasher for FakeHasher {
    async fn hash(&self, password: &Password) -> anyhow::Result<PasswordHash> {
        Ok(PasswordHash::new(format!("hashed:{}", password.expose())))
    }

    async fn verify(&self, password: &str, hash: Option<&PasswordHash>) -> anyhow::Result<bool> {
        self.verifications.fetch_add(1, Ordering::SeqCst);
        Ok(hash.is_some_and(|hash| hash.as_str() == format!("hashed:{password}")))
    }
}

pub struct FakeAccessTokens;

impl AccessTokens for FakeAccessTokens {
    fn issue(&self, user: &User, _now: DateTime<Utc>) -> anyhow::Result<AccessToken> {
        Ok(AccessToken {
            token: format!("access:{}", user.id()),
            expires_in: Duration::from_mins(15),
        })
    }

    fn verify(&self, _token: &str) -> Result<Principal, TokenRejection> {
        Err(TokenRejection::Malformed)
    }
}

struct StoredRefresh {
    user: UserId,
    tenant: TenantId,
    session: SessionId,
    used: bool,
    revoked: bool,
}

#[derive(Default)]
pub struct FakeRefreshTokens {
    tokens: Mutex<HashMap<String, StoredRefresh>>,
}

#[async_trait]
impl RefreshTokens for FakeRefreshTokens {
    async fn issue(
        &self,
        user: &User,
        session: Option<SessionId>,
        _now: DateTime<Utc>,
    ) -> Result<String, RepositoryError> {
        let token = Uuid::now_v7().to_string();
        self.tokens.lock().unwrap().insert(
            token.clone(),
            StoredRefresh {
                user: user.id(),
                tenant: user.tenant_id(),
                session: session.unwrap_or(SessionId(Uuid::now_v7())),
                used: false,
                revoked: false,
            },
        );
        Ok(token)
    }

    async fn consume(
        &self,
        token: &str,
        _now: DateTime<Utc>,
    ) -> Result<RefreshOutcome, RepositoryError> {
        let mut tokens = self.tokens.lock().unwrap();
        Ok(match tokens.get_mut(token) {
            Some(stored) if stored.used => RefreshOutcome::Reused {
                session: stored.session,
            },
            Some(stored) if !stored.revoked => {
                stored.used = true;
                RefreshOutcome::Consumed {
                    user: stored.user,
                    tenant: stored.tenant,
                    session: stored.session,
                }
            }
            _ => RefreshOutcome::Invalid,
        })
    }

    async fn revoke(&self, token: &str, now: DateTime<Utc>) -> Result<(), RepositoryError> {
        let session = self.tokens.lock().unwrap().get(token).map(|t| t.session);
        if let Some(session) = session {
            self.revoke_session(session, now).await?;
        }
        Ok(())
    }

    async fn revoke_session(
        &self,
        session: SessionId,
        _now: DateTime<Utc>,
    ) -> Result<(), RepositoryError> {
        for stored in self.tokens.lock().unwrap().values_mut() {
            if stored.session == session {
                stored.revoked = true;
            }
        }
        Ok(())
    }

    async fn revoke_user(&self, user: UserId, _now: DateTime<Utc>) -> Result<(), RepositoryError> {
        for stored in self.tokens.lock().unwrap().values_mut() {
            if stored.user == user {
                stored.revoked = true;
            }
        }
        Ok(())
    }
}

#[derive(Default)]
pub struct FakeThrottle {
    blocked_secs: AtomicU64,
    failures: Mutex<Vec<ThrottleKey>>,
    resets: Mutex<Vec<ThrottleKey>>,
}

impl FakeThrottle {
    pub fn block_for_secs(&self, secs: u64) {
        self.blocked_secs.store(secs, Ordering::SeqCst);
    }

    pub fn failures(&self) -> Vec<ThrottleKey> {
        self.failures.lock().unwrap().clone()
    }

    pub fn resets(&self) -> Vec<ThrottleKey> {
        self.resets.lock().unwrap().clone()
    }
}

#[async_trait]
impl LoginThrottle for FakeThrottle {
    async fn blocked_for(&self, _keys: &[ThrottleKey]) -> anyhow::Result<Option<Duration>> {
        let secs = self.blocked_secs.load(Ordering::SeqCst);
        Ok((secs > 0).then(|| Duration::from_secs(secs)))
    }

    async fn record_failure(&self, keys: &[ThrottleKey]) -> anyhow::Result<()> {
        self.failures.lock().unwrap().extend_from_slice(keys);
        Ok(())
    }

    async fn reset(&self, key: &ThrottleKey) -> anyhow::Result<()> {
        self.resets.lock().unwrap().push(key.clone());
        Ok(())
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

/// A budget that is spent or not as the test says, and remembers who spent it.
#[derive(Default)]
pub struct FakeBudget {
    wait_secs: AtomicU64,
    spent_by: Mutex<Vec<TenantId>>,
}

impl FakeBudget {
    pub fn exhaust_for(&self, wait: Duration) {
        self.wait_secs.store(wait.as_secs(), Ordering::SeqCst);
    }

    pub fn spent_by(&self) -> Vec<TenantId> {
        self.spent_by.lock().unwrap().clone()
    }
}

#[async_trait]
impl RequestBudget for FakeBudget {
    async fn spend(&self, tenant: TenantId) -> anyhow::Result<Option<Duration>> {
        self.spent_by.lock().unwrap().push(tenant);
        let secs = self.wait_secs.load(Ordering::SeqCst);
        Ok((secs > 0).then(|| Duration::from_secs(secs)))
    }
}

pub struct FixedClock(DateTime<Utc>);

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        self.0
    }
}

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
    pub refresh_tokens: Arc<FakeRefreshTokens>,
    pub throttle: Arc<FakeThrottle>,
    pub clock: Arc<FixedClock>,
    pub task_stats: Arc<FakeTaskStats>,
    pub audit: Arc<FakeAuditLog>,
    pub budget: Arc<FakeBudget>,
}

impl Fakes {
    pub fn new() -> Self {
        Self {
            db: Arc::default(),
            hasher: Arc::default(),
            refresh_tokens: Arc::default(),
            throttle: Arc::default(),
            clock: Arc::new(FixedClock(
                Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
            )),
            task_stats: Arc::default(),
            audit: Arc::default(),
            budget: Arc::default(),
        }
    }

    pub fn principal(user: &User) -> Principal {
        Principal {
            user_id: user.id(),
            tenant_id: user.tenant_id(),
            role: user.role(),
        }
    }

    pub fn register_tenant(&self) -> RegisterTenant {
        RegisterTenant {
            uow: Arc::new(self.db.clone()),
            hasher: self.hasher.clone(),
            clock: self.clock.clone(),
            ids: Arc::new(V7Ids),
        }
    }

    pub fn login(&self) -> Login {
        Login {
            users: Arc::new(self.db.clone()),
            hasher: self.hasher.clone(),
            access_tokens: Arc::new(FakeAccessTokens),
            refresh_tokens: self.refresh_tokens.clone(),
            throttle: self.throttle.clone(),
            clock: self.clock.clone(),
        }
    }

    pub fn refresh(&self) -> Refresh {
        Refresh {
            users: Arc::new(self.db.clone()),
            access_tokens: Arc::new(FakeAccessTokens),
            refresh_tokens: self.refresh_tokens.clone(),
            clock: self.clock.clone(),
        }
    }

    pub fn logout(&self) -> Logout {
        Logout {
            refresh_tokens: self.refresh_tokens.clone(),
            clock: self.clock.clone(),
        }
    }

    /// Authenticates every token as `principal`, spending `budget` when there is one.
    pub fn authenticate(&self, principal: Principal, with_budget: bool) -> Authenticate {
        Authenticate {
            tokens: Arc::new(FakeVerifier(principal)),
            budget: with_budget.then(|| self.budget.clone() as Arc<dyn RequestBudget>),
        }
    }

    pub fn get_task_stats(&self) -> GetTaskStats {
        GetTaskStats {
            users: Arc::new(self.db.clone()),
            stats: self.task_stats.clone(),
            clock: self.clock.clone(),
        }
    }

    pub fn list_audit_entries(&self) -> ListAuditEntries {
        ListAuditEntries {
            audit: self.audit.clone(),
        }
    }

    pub fn get_user(&self) -> GetUser {
        GetUser {
            users: Arc::new(self.db.clone()),
        }
    }

    pub fn list_users(&self) -> ListUsers {
        ListUsers {
            users: Arc::new(self.db.clone()),
        }
    }

    pub fn create_user(&self) -> CreateUser {
        CreateUser {
            uow: Arc::new(self.db.clone()),
            keys: Arc::new(self.db.clone()),
            hasher: self.hasher.clone(),
            clock: self.clock.clone(),
            ids: Arc::new(V7Ids),
        }
    }

    pub fn update_user(&self) -> UpdateUser {
        UpdateUser {
            users: Arc::new(self.db.clone()),
            uow: Arc::new(self.db.clone()),
            refresh_tokens: self.refresh_tokens.clone(),
            clock: self.clock.clone(),
        }
    }

    pub fn lifecycle(&self) -> UserLifecycle {
        UserLifecycle {
            users: Arc::new(self.db.clone()),
            uow: Arc::new(self.db.clone()),
            refresh_tokens: self.refresh_tokens.clone(),
            clock: self.clock.clone(),
        }
    }

    pub fn create_task(&self) -> CreateTask {
        CreateTask {
            uow: Arc::new(self.db.clone()),
            keys: Arc::new(self.db.clone()),
            clock: self.clock.clone(),
            ids: Arc::new(V7Ids),
        }
    }

    pub fn change_task(&self) -> ChangeTask {
        ChangeTask {
            uow: Arc::new(self.db.clone()),
            clock: self.clock.clone(),
            ids: Arc::new(V7Ids),
        }
    }

    pub fn get_task(&self) -> GetTask {
        GetTask {
            queries: Arc::new(self.db.clone()),
        }
    }

    pub fn list_tasks(&self) -> ListTasks {
        ListTasks {
            queries: Arc::new(self.db.clone()),
        }
    }

    /// A new tenant with its admin, whose password is `password123`.
    pub async fn seed_admin(&self, email: &str) -> User {
        let (_, admin) = self
            .register_tenant()
            .execute(RegisterTenantCommand {
                tenant_name: TenantName::parse("Tenant").unwrap(),
                email: Email::parse(email).unwrap(),
                username: Username::parse("admin").unwrap(),
                password: Password::parse("password123").unwrap(),
            })
            .await
            .unwrap();
        admin
    }

    /// A member of the admin's tenant, whose password is `password123`.
    pub async fn seed_member(&self, admin: &User, email: &str) -> User {
        let command = CreateUserCommand {
            email: Email::parse(email).unwrap(),
            username: Username::parse("member").unwrap(),
            password: Password::parse("password123").unwrap(),
            role: Role::Member,
        };
        self.create_user()
            .execute(&Self::principal(admin), command, None)
            .await
            .unwrap()
            .created()
    }

    pub async fn deactivate(&self, admin: &User, user: &User) {
        self.lifecycle()
            .deactivate(&Self::principal(admin), user.id())
            .await
            .unwrap();
    }

    pub async fn delete(&self, admin: &User, user: &User) {
        self.lifecycle()
            .delete(&Self::principal(admin), user.id())
            .await
            .unwrap();
    }

    pub async fn promote(&self, admin: &User, user: &User) {
        let command = UpdateUserCommand {
            role: Some(Role::Admin),
            ..UpdateUserCommand::default()
        };
        self.update_user()
            .execute(&Self::principal(admin), user.id(), command)
            .await
            .unwrap();
    }
}
