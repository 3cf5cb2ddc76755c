//! An in-memory database: users, tenants, tasks, the outbox and idempotent responses.
//! A fake transaction stages its writes and applies them on commit, with the version
//! and uniqueness checks the real database makes, so use-case tests can prove
//! rollback and conflicts.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::{DomainEvent, Email, Role, Task, TaskId, Tenant, TenantId, User, UserId};

use crate::ports::{
    Claim, ClaimToken, IdempotencyKey, IdempotencyKeys, RecordedResponse, RepositoryError,
    TaskCursor, TaskFilter, TaskQueries, TaskSort, TaskStore, Transaction, UnitOfWork, UserFilter,
    UserRepository, UserStore,
};

#[derive(Default, Clone)]
struct State {
    tenants: Vec<Tenant>,
    users: HashMap<UserId, User>,
    tasks: HashMap<TaskId, Task>,
    outbox: Vec<DomainEvent>,
    responses: Vec<(IdempotencyKey, RecordedResponse)>,
    claims: HashMap<(TenantId, String), FakeClaim>,
}

/// An unfinished claim: the request it was made for, who holds it, and until when.
#[derive(Clone)]
struct FakeClaim {
    fingerprint: String,
    token: ClaimToken,
    locked_until: DateTime<Utc>,
}

/// How long a fake claim holds, as the database's does.
const CLAIM_LEASE: chrono::TimeDelta = chrono::TimeDelta::seconds(60);

#[derive(Default)]
pub struct FakeDb {
    state: Mutex<State>,
    fail_next_commit: AtomicBool,
    /// Simulates another writer saving between our read and our write.
    concurrent_write: AtomicBool,
}

impl FakeDb {
    pub fn users(&self) -> Vec<User> {
        let mut users: Vec<User> = self.state.lock().unwrap().users.values().cloned().collect();
        users.sort_by_key(User::id);
        users
    }

    pub fn user(&self, id: UserId) -> User {
        self.state.lock().unwrap().users[&id].clone()
    }

    pub fn tenant_count(&self) -> usize {
        self.state.lock().unwrap().tenants.len()
    }

    pub fn tasks(&self) -> Vec<Task> {
        let mut tasks: Vec<Task> = self.state.lock().unwrap().tasks.values().cloned().collect();
        tasks.sort_by_key(Task::id);
        tasks
    }

    pub fn outbox_names(&self) -> Vec<&'static str> {
        self.state
            .lock()
            .unwrap()
            .outbox
            .iter()
            .map(DomainEvent::name)
            .collect()
    }

    pub fn fail_next_commit(&self) {
        self.fail_next_commit.store(true, Ordering::SeqCst);
    }

    pub fn write_concurrently_before_next_save(&self) {
        self.concurrent_write.store(true, Ordering::SeqCst);
    }
}

/// One fake transaction: a copy of the state, written back whole on commit. Use-case
/// tests run one transaction at a time; conflicts are simulated with
/// `write_concurrently_before_next_save`.
pub struct FakeTransaction {
    db: Arc<FakeDb>,
    staged: State,
}

#[async_trait]
impl UnitOfWork for Arc<FakeDb> {
    async fn begin(&self) -> Result<Box<dyn Transaction>, RepositoryError> {
        let staged = self.state.lock().unwrap().clone();
        Ok(Box::new(FakeTransaction {
            db: self.clone(),
            staged,
        }))
    }
}

impl FakeTransaction {
    fn take_concurrent_write(&self) -> bool {
        self.db.concurrent_write.swap(false, Ordering::SeqCst)
    }
}

#[async_trait]
impl UserStore for FakeTransaction {
    async fn get(&mut self, tenant: TenantId, id: UserId) -> Result<Option<User>, RepositoryError> {
        Ok(self
            .staged
            .users
            .get(&id)
            .filter(|user| user.tenant_id() == tenant)
            .cloned())
    }

    async fn add_tenant(&mut self, tenant: &Tenant) -> Result<(), RepositoryError> {
        self.staged.tenants.push(tenant.clone());
        Ok(())
    }

    async fn add(&mut self, user: &mut User) -> Result<(), RepositoryError> {
        if self
            .staged
            .users
            .values()
            .any(|u| u.email() == user.email())
        {
            return Err(RepositoryError::EmailTaken);
        }
        self.staged.outbox.extend(user.take_events());
        self.staged.users.insert(user.id(), user.clone());
        Ok(())
    }

    async fn save(&mut self, user: &mut User) -> Result<(), RepositoryError> {
        let stored = self.staged.users.get(&user.id()).map(User::version);
        if self.take_concurrent_write() || stored != Some(user.version()) {
            return Err(RepositoryError::Stale);
        }
        if self
            .staged
            .users
            .values()
            .any(|u| u.id() != user.id() && u.email() == user.email())
        {
            return Err(RepositoryError::EmailTaken);
        }
        let tenant = user.tenant_id();
        let admins = self
            .staged
            .users
            .values()
            .map(|u| {
                if u.id() == user.id() {
                    user as &User
                } else {
                    u
                }
            })
            .filter(|u| u.tenant_id() == tenant && u.role() == Role::Admin && u.can_sign_in())
            .count();
        if admins == 0 {
            return Err(RepositoryError::NoActiveAdminLeft);
        }
        self.staged.outbox.extend(user.take_events());
        let mut snapshot = user.snapshot().clone();
        snapshot.version += 1;
        *user = User::reconstitute(snapshot);
        self.staged.users.insert(user.id(), user.clone());
        Ok(())
    }
}

#[async_trait]
impl TaskStore for FakeTransaction {
    async fn get(&mut self, tenant: TenantId, id: TaskId) -> Result<Option<Task>, RepositoryError> {
        Ok(self
            .staged
            .tasks
            .get(&id)
            .filter(|task| task.tenant_id() == tenant)
            .cloned())
    }

    async fn add(&mut self, task: &mut Task) -> Result<(), RepositoryError> {
        self.staged.outbox.extend(task.take_events());
        self.staged.tasks.insert(task.id(), task.clone());
        Ok(())
    }

    async fn save(&mut self, task: &mut Task) -> Result<(), RepositoryError> {
        let stored = self.staged.tasks.get(&task.id()).map(Task::version);
        if self.take_concurrent_write() || stored != Some(task.version()) {
            return Err(RepositoryError::Stale);
        }
        self.staged.outbox.extend(task.take_events());
        let mut snapshot = task.snapshot().clone();
        snapshot.version += 1;
        *task = Task::reconstitute(snapshot);
        self.staged.tasks.insert(task.id(), task.clone());
        Ok(())
    }
}

#[async_trait]
impl Transaction for FakeTransaction {
    fn tasks(&mut self) -> &mut dyn TaskStore {
        self
    }

    fn users(&mut self) -> &mut dyn UserStore {
        self
    }

    async fn complete_idempotent_request(
        &mut self,
        key: &IdempotencyKey,
        token: ClaimToken,
        response: &RecordedResponse,
        _now: DateTime<Utc>,
    ) -> Result<(), RepositoryError> {
        // Claims are not transactional: read the live one, as the database does.
        let held = self
            .db
            .state
            .lock()
            .unwrap()
            .claims
            .get(&(key.tenant, key.key.clone()))
            .is_some_and(|claim| claim.token == token && claim.fingerprint == key.fingerprint);
        if !held {
            return Err(RepositoryError::Stale);
        }
        self.staged.responses.push((key.clone(), response.clone()));
        Ok(())
    }

    async fn commit(self: Box<Self>) -> Result<(), RepositoryError> {
        if self.db.fail_next_commit.swap(false, Ordering::SeqCst) {
            return Err(RepositoryError::Unexpected(anyhow::anyhow!(
                "injected commit failure"
            )));
        }
        let mut state = self.db.state.lock().unwrap();
        // Claims are not transactional: keep whatever was claimed meanwhile.
        let claims = std::mem::take(&mut state.claims);
        *state = self.staged;
        state.claims = claims;
        Ok(())
    }
}

#[async_trait]
impl UserRepository for Arc<FakeDb> {
    async fn get(&self, tenant: TenantId, id: UserId) -> Result<Option<User>, RepositoryError> {
        Ok(self
            .state
            .lock()
            .unwrap()
            .users
            .get(&id)
            .filter(|user| user.tenant_id() == tenant)
            .cloned())
    }

    async fn find_by_email(&self, email: &Email) -> Result<Option<User>, RepositoryError> {
        Ok(self.users().into_iter().find(|u| u.email() == email))
    }

    async fn count_active_admins(&self, tenant: TenantId) -> Result<u64, RepositoryError> {
        Ok(self
            .users()
            .iter()
            .filter(|u| u.tenant_id() == tenant && u.role() == Role::Admin && u.can_sign_in())
            .count() as u64)
    }

    async fn list(
        &self,
        tenant: TenantId,
        filter: &UserFilter,
        after: Option<UserId>,
        limit: u64,
    ) -> Result<Vec<User>, RepositoryError> {
        let mut users: Vec<User> = self
            .users()
            .into_iter()
            .filter(|u| u.tenant_id() == tenant)
            .filter(|u| filter.include_deleted || !u.is_deleted())
            .filter(|u| {
                filter
                    .is_active
                    .is_none_or(|active| u.is_active() == active)
            })
            .filter(|u| after.is_none_or(|after| u.id() > after))
            .collect();
        users.truncate(usize::try_from(limit).unwrap());
        Ok(users)
    }
}

#[async_trait]
impl TaskQueries for Arc<FakeDb> {
    async fn get(&self, tenant: TenantId, id: TaskId) -> Result<Option<Task>, RepositoryError> {
        Ok(self
            .tasks()
            .into_iter()
            .find(|task| task.id() == id && task.tenant_id() == tenant))
    }

    /// Orders by creation time only (the other orders are the database's business and
    /// are tested against it); filters like the adapter does.
    async fn list(
        &self,
        tenant: TenantId,
        filter: &TaskFilter,
        sort: TaskSort,
        after: Option<TaskCursor>,
        limit: u64,
    ) -> Result<Vec<Task>, RepositoryError> {
        let key = |task: &Task| (task.snapshot().created_at, task.id());
        let mut tasks: Vec<Task> = self
            .tasks()
            .into_iter()
            .filter(|task| task.tenant_id() == tenant)
            .filter(|task| filter.include_deleted || !task.is_deleted())
            .filter(|task| filter.status.is_none_or(|status| task.status() == status))
            .filter(|task| {
                filter
                    .assignee
                    .is_none_or(|user| task.assignee() == Some(user))
            })
            .filter(|task| {
                filter
                    .priority
                    .is_none_or(|p| task.snapshot().priority == p)
            })
            .filter(|task| {
                filter
                    .due_before
                    .is_none_or(|date| task.snapshot().due_date.is_some_and(|due| due < date))
            })
            .filter(|task| {
                filter.q.as_ref().is_none_or(|q| {
                    let title = task.snapshot().title.as_str().to_lowercase();
                    title.contains(&q.to_lowercase())
                })
            })
            .collect();
        assert!(
            matches!(after, None | Some(TaskCursor::CreatedAt(..))),
            "the fake pages by creation time only"
        );
        tasks.sort_by_key(key);
        if sort.descending {
            tasks.reverse();
        }
        if let Some(TaskCursor::CreatedAt(at, id)) = after {
            tasks.retain(|task| (key(task) < (at, id)) == sort.descending && key(task) != (at, id));
        }
        tasks.truncate(usize::try_from(limit).unwrap());
        Ok(tasks)
    }
}

#[async_trait]
impl IdempotencyKeys for Arc<FakeDb> {
    async fn claim(
        &self,
        key: &IdempotencyKey,
        now: DateTime<Utc>,
    ) -> Result<Claim, RepositoryError> {
        let mut state = self.state.lock().unwrap();
        let completed = state
            .responses
            .iter()
            .find(|(stored, _)| stored.tenant == key.tenant && stored.key == key.key);
        if let Some((stored, response)) = completed {
            return Ok(if stored.fingerprint == key.fingerprint {
                Claim::Replay(response.clone())
            } else {
                Claim::KeyReused
            });
        }
        let slot = (key.tenant, key.key.clone());
        match state.claims.get(&slot) {
            Some(claim) if claim.locked_until > now => {
                Ok(if claim.fingerprint == key.fingerprint {
                    Claim::InProgress
                } else {
                    Claim::KeyReused
                })
            }
            // New, or lapsed and taken over: a new holder with a new token.
            _ => {
                let token = ClaimToken(uuid::Uuid::now_v7());
                state.claims.insert(
                    slot,
                    FakeClaim {
                        fingerprint: key.fingerprint.clone(),
                        token,
                        locked_until: now + CLAIM_LEASE,
                    },
                );
                Ok(Claim::Claimed(token))
            }
        }
    }

    async fn release(
        &self,
        key: &IdempotencyKey,
        token: ClaimToken,
    ) -> Result<(), RepositoryError> {
        let mut state = self.state.lock().unwrap();
        let slot = (key.tenant, key.key.clone());
        if state
            .claims
            .get(&slot)
            .is_some_and(|claim| claim.token == token && claim.fingerprint == key.fingerprint)
        {
            state.claims.remove(&slot);
        }
        Ok(())
    }
}
