//! An `AppState` whose ports are stubs, for tests that send requests through the real
//! routes, extractors and error mapping. The stubs answer what the reports and the
//! authentication need (two principals of one tenant, a user, figures, an audit log, a
//! budget); every other call fails loudly, so a test that strays is seen to.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::test::{TestRequest, call_service, init_service, read_body};
use actix_web::web;
use application::Principal;
use application::auth::{Authenticate, Login, Logout, Refresh, RegisterTenant};
use application::ports::{
    AccessToken, AccessTokens, AuditEntry, AuditLog, Claim, ClaimToken, Clock, IdGenerator,
    IdempotencyKey, IdempotencyKeys, LoginThrottle, PasswordHasher, RefreshOutcome, RefreshTokens,
    RepositoryError, RequestBudget, SessionId, TaskCursor, TaskFilter, TaskQueries, TaskSort,
    TaskStats, TaskStatsQueries, ThrottleKey, TokenRejection, Transaction, UnitOfWork, UserFilter,
    UserRepository,
};
use application::reports::{GetTaskStats, ListAuditEntries};
use application::tasks::{ChangeTask, CreateTask, GetTask, ListTasks};
use application::users::{CreateUser, GetUser, ListUsers, UpdateUser, UserLifecycle};
use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use domain::{Email, Password, PasswordHash, Role, Task, TaskId, TenantId, User, UserId, Username};
use serde_json::Value;
use uuid::Uuid;

use crate::{AppState, ShutdownFlag};

/// The bearer token of the tenant's admin.
pub(crate) const ADMIN_TOKEN: &str = "admin-token";
/// The bearer token of a member of the same tenant.
pub(crate) const MEMBER_TOKEN: &str = "member-token";

/// What the stubbed ports hold. Tests fill in what they need before sending requests.
pub(crate) struct Stubs {
    pub admin: User,
    pub member: User,
    /// Any user of the tenant has these figures.
    pub stats: TaskStats,
    /// The tenant's audit log, oldest first.
    pub audit: Mutex<Vec<AuditEntry>>,
    /// `Some` when the tenant's request budget is spent.
    pub budget_wait: Mutex<Option<Duration>>,
    /// The day every stats question was asked for.
    pub days_asked: Mutex<Vec<NaiveDate>>,
}

impl Stubs {
    pub(crate) fn new() -> Self {
        let tenant = TenantId::from_uuid(Uuid::now_v7());
        Self {
            admin: user(tenant, "admin@example.com", Role::Admin),
            member: user(tenant, "member@example.com", Role::Member),
            stats: TaskStats::default(),
            audit: Mutex::default(),
            budget_wait: Mutex::default(),
            days_asked: Mutex::default(),
        }
    }

    /// Appends an entry to the audit log; returns its id.
    pub(crate) fn record(&self, action: &str) -> Uuid {
        let id = Uuid::now_v7();
        self.audit.lock().unwrap().push(AuditEntry {
            id,
            actor: self.admin.id(),
            action: action.to_owned(),
            aggregate_type: "task".to_owned(),
            aggregate_id: Uuid::now_v7(),
            occurred_at: now(),
        });
        id
    }

    /// Sends `request` to the whole app on these stubs, with the request budget on or
    /// off; returns the status, the headers and the body as JSON (`Null` when not JSON).
    pub(crate) async fn send(
        self: &Arc<Self>,
        request: TestRequest,
        with_budget: bool,
    ) -> (
        actix_web::http::StatusCode,
        actix_web::http::header::HeaderMap,
        Value,
    ) {
        let app = init_service(crate::app(web::Data::new(self.state(with_budget)))).await;
        let response = call_service(&app, request.to_request()).await;
        let (status, headers) = (response.status(), response.headers().clone());
        let body = serde_json::from_slice(&read_body(response).await).unwrap_or(Value::Null);
        (status, headers, body)
    }

    fn state(self: &Arc<Self>, with_budget: bool) -> AppState {
        let stubs = self.clone();
        let budget = with_budget.then(|| stubs.clone() as Arc<dyn RequestBudget>);
        AppState {
            service_name: "keystone".to_owned(),
            version: "0.0.0".to_owned(),
            register_tenant: RegisterTenant {
                uow: stubs.clone(),
                hasher: stubs.clone(),
                clock: stubs.clone(),
                ids: stubs.clone(),
            },
            login: Login {
                users: stubs.clone(),
                hasher: stubs.clone(),
                access_tokens: stubs.clone(),
                refresh_tokens: stubs.clone(),
                throttle: stubs.clone(),
                clock: stubs.clone(),
            },
            refresh: Refresh {
                users: stubs.clone(),
                access_tokens: stubs.clone(),
                refresh_tokens: stubs.clone(),
                clock: stubs.clone(),
            },
            logout: Logout {
                refresh_tokens: stubs.clone(),
                clock: stubs.clone(),
            },
            authenticate: Authenticate {
                tokens: stubs.clone(),
                budget,
            },
            get_user: GetUser {
                users: stubs.clone(),
            },
            list_users: ListUsers {
                users: stubs.clone(),
            },
            create_user: CreateUser {
                uow: stubs.clone(),
                keys: stubs.clone(),
                hasher: stubs.clone(),
                clock: stubs.clone(),
                ids: stubs.clone(),
            },
            update_user: UpdateUser {
                users: stubs.clone(),
                uow: stubs.clone(),
                refresh_tokens: stubs.clone(),
                clock: stubs.clone(),
            },
            user_lifecycle: UserLifecycle {
                users: stubs.clone(),
                uow: stubs.clone(),
                refresh_tokens: stubs.clone(),
                clock: stubs.clone(),
            },
            create_task: CreateTask {
                uow: stubs.clone(),
                keys: stubs.clone(),
                clock: stubs.clone(),
                ids: stubs.clone(),
            },
            change_task: ChangeTask {
                uow: stubs.clone(),
                clock: stubs.clone(),
                ids: stubs.clone(),
            },
            get_task: GetTask {
                queries: stubs.clone(),
            },
            list_tasks: ListTasks {
                queries: stubs.clone(),
            },
            get_task_stats: GetTaskStats {
                users: stubs.clone(),
                stats: stubs.clone(),
                clock: stubs.clone(),
            },
            list_audit_entries: ListAuditEntries { audit: stubs },
            probes: Vec::new(),
            shutdown: ShutdownFlag::default(),
            metrics: None,
        }
    }

    fn principal(user: &User) -> Principal {
        Principal {
            user_id: user.id(),
            tenant_id: user.tenant_id(),
            role: user.role(),
        }
    }
}

/// The stubs' clock: 2026-03-10, late in the evening UTC.
pub(crate) fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 10, 23, 30, 0).unwrap()
}

fn user(tenant: TenantId, email: &str, role: Role) -> User {
    let id = UserId::from_uuid(Uuid::now_v7());
    User::register(
        id,
        id,
        tenant,
        Email::parse(email).unwrap(),
        Username::parse(&email[..email.find('@').unwrap()]).unwrap(),
        PasswordHash::new("hash".to_owned()),
        role,
        now(),
    )
}

fn unused(port: &str) -> anyhow::Error {
    anyhow::anyhow!("the stub {port} was called; the test should not reach it")
}

impl AccessTokens for Stubs {
    fn issue(&self, _user: &User, _now: DateTime<Utc>) -> anyhow::Result<AccessToken> {
        Err(unused("AccessTokens::issue"))
    }

    fn verify(&self, token: &str) -> Result<Principal, TokenRejection> {
        match token {
            ADMIN_TOKEN => Ok(Self::principal(&self.admin)),
            MEMBER_TOKEN => Ok(Self::principal(&self.member)),
            _ => Err(TokenRejection::Signature),
        }
    }
}

#[async_trait]
impl RequestBudget for Stubs {
    async fn spend(&self, _tenant: TenantId) -> anyhow::Result<Option<Duration>> {
        Ok(*self.budget_wait.lock().unwrap())
    }
}

#[async_trait]
impl UserRepository for Stubs {
    async fn get(&self, tenant: TenantId, id: UserId) -> Result<Option<User>, RepositoryError> {
        Ok([&self.admin, &self.member]
            .into_iter()
            .find(|user| user.tenant_id() == tenant && user.id() == id)
            .cloned())
    }

    async fn find_by_email(&self, _email: &Email) -> Result<Option<User>, RepositoryError> {
        Err(unused("UserRepository::find_by_email").into())
    }

    async fn count_active_admins(&self, _tenant: TenantId) -> Result<u64, RepositoryError> {
        Err(unused("UserRepository::count_active_admins").into())
    }

    async fn list(
        &self,
        _tenant: TenantId,
        _filter: &UserFilter,
        _after: Option<UserId>,
        _limit: u64,
    ) -> Result<Vec<User>, RepositoryError> {
        Err(unused("UserRepository::list").into())
    }
}

#[async_trait]
impl TaskStatsQueries for Stubs {
    async fn stats(
        &self,
        _tenant: TenantId,
        _user: UserId,
        today: NaiveDate,
    ) -> Result<TaskStats, RepositoryError> {
        self.days_asked.lock().unwrap().push(today);
        Ok(self.stats)
    }
}

#[async_trait]
impl AuditLog for Stubs {
    async fn list(
        &self,
        tenant: TenantId,
        before: Option<Uuid>,
        limit: u64,
    ) -> Result<Vec<AuditEntry>, RepositoryError> {
        if tenant != self.admin.tenant_id() {
            return Ok(Vec::new());
        }
        let audit = self.audit.lock().unwrap();
        Ok(audit
            .iter()
            .rev()
            .filter(|entry| before.is_none_or(|before| entry.id < before))
            .take(usize::try_from(limit).unwrap())
            .cloned()
            .collect())
    }
}

impl Clock for Stubs {
    fn now(&self) -> DateTime<Utc> {
        now()
    }
}

impl IdGenerator for Stubs {
    fn new_id(&self) -> Uuid {
        Uuid::now_v7()
    }
}

#[async_trait]
impl UnitOfWork for Stubs {
    async fn begin(&self) -> Result<Box<dyn Transaction>, RepositoryError> {
        Err(unused("UnitOfWork::begin").into())
    }
}

#[async_trait]
impl IdempotencyKeys for Stubs {
    async fn claim(
        &self,
        _key: &IdempotencyKey,
        _now: DateTime<Utc>,
    ) -> Result<Claim, RepositoryError> {
        Err(unused("IdempotencyKeys::claim").into())
    }

    async fn release(
        &self,
        _key: &IdempotencyKey,
        _token: ClaimToken,
    ) -> Result<(), RepositoryError> {
        Err(unused("IdempotencyKeys::release").into())
    }
}

#[async_trait]
impl TaskQueries for Stubs {
    async fn get(&self, _tenant: TenantId, _id: TaskId) -> Result<Option<Task>, RepositoryError> {
        Err(unused("TaskQueries::get").into())
    }

    async fn list(
        &self,
        _tenant: TenantId,
        _filter: &TaskFilter,
        _sort: TaskSort,
        _after: Option<TaskCursor>,
        _limit: u64,
    ) -> Result<Vec<Task>, RepositoryError> {
        Err(unused("TaskQueries::list").into())
    }
}

#[async_trait]
impl PasswordHasher for Stubs {
    async fn hash(&self, _password: &Password) -> anyhow::Result<PasswordHash> {
        Err(unused("PasswordHasher::hash"))
    }

    async fn verify(&self, _password: &str, _hash: Option<&PasswordHash>) -> anyhow::Result<bool> {
        Err(unused("PasswordHasher::verify"))
    }
}

#[async_trait]
impl LoginThrottle for Stubs {
    async fn blocked_for(&self, _keys: &[ThrottleKey]) -> anyhow::Result<Option<Duration>> {
        Err(unused("LoginThrottle::blocked_for"))
    }

    async fn record_failure(&self, _keys: &[ThrottleKey]) -> anyhow::Result<()> {
        Err(unused("LoginThrottle::record_failure"))
    }

    async fn reset(&self, _key: &ThrottleKey) -> anyhow::Result<()> {
        Err(unused("LoginThrottle::reset"))
    }
}

#[async_trait]
impl RefreshTokens for Stubs {
    async fn issue(
        &self,
        _user: &User,
        _session: Option<SessionId>,
        _now: DateTime<Utc>,
    ) -> Result<String, RepositoryError> {
        Err(unused("RefreshTokens::issue").into())
    }

    async fn consume(
        &self,
        _token: &str,
        _now: DateTime<Utc>,
    ) -> Result<RefreshOutcome, RepositoryError> {
        Err(unused("RefreshTokens::consume").into())
    }

    async fn revoke(&self, _token: &str, _now: DateTime<Utc>) -> Result<(), RepositoryError> {
        Err(unused("RefreshTokens::revoke").into())
    }

    async fn revoke_session(
        &self,
        _session: SessionId,
        _now: DateTime<Utc>,
    ) -> Result<(), RepositoryError> {
        Err(unused("RefreshTokens::revoke_session").into())
    }

    async fn revoke_user(&self, _user: UserId, _now: DateTime<Utc>) -> Result<(), RepositoryError> {
        Err(unused("RefreshTokens::revoke_user").into())
    }
}
