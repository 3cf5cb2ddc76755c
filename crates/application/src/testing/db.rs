//! An in-memory database: tenants, a table per aggregate, the outbox, refresh tokens
//! and idempotent responses. A fake transaction stages its writes on a copy of the
//! state and applies them on commit, with the version and uniqueness checks the real
//! database makes. It stores what the code gives it and nothing more: events reach the
//! outbox only when a use case appends them, so a use-case test that finds them there
//! tests the use case.

use std::any::{Any, TypeId};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::{
    ActiveAdmins, Aggregate, AggregateId, DomainEvent, Role, Tenant, TenantId, User, UserId,
};
use uuid::Uuid;

use crate::ports::{
    Accounts, Claim, ClaimToken, IdempotencyKey, IdempotencyKeys, Lookup, RecordedResponse,
    RefreshOutcome, RefreshTokens, RepositoryError, SessionId, Store, Transaction, UnitOfWork,
};

/// One table per aggregate type, keyed by id (UUIDv7, so in creation order). Kept as
/// `Any`, so that a new aggregate needs nothing here; copied on write, so that staging
/// a transaction copies only the tables it writes.
#[derive(Default, Clone)]
struct Tables(HashMap<TypeId, Arc<dyn Any + Send + Sync>>);

impl Tables {
    fn table<A: Aggregate>(&self) -> Option<&BTreeMap<Uuid, A>> {
        self.0
            .get(&TypeId::of::<A>())
            .and_then(|table| table.downcast_ref())
    }

    fn table_mut<A: Aggregate>(&mut self) -> &mut BTreeMap<Uuid, A> {
        let table = self
            .0
            .entry(TypeId::of::<A>())
            .or_insert_with(|| Arc::new(BTreeMap::<Uuid, A>::new()));
        if Arc::get_mut(table).is_none() {
            let copy = table
                .downcast_ref::<BTreeMap<Uuid, A>>()
                .expect("a table holds its own aggregates")
                .clone();
            *table = Arc::new(copy);
        }
        Arc::get_mut(table)
            .and_then(|table| table.downcast_mut())
            .expect("a table just made unique")
    }

    fn get<A: Aggregate>(&self, tenant: TenantId, id: A::Id) -> Option<A> {
        self.table::<A>()?
            .get(&id.as_uuid())
            .filter(|aggregate| aggregate.tenant_id() == tenant)
            .cloned()
    }

    fn all<A: Aggregate>(&self) -> Vec<A> {
        self.table::<A>()
            .map(|table| table.values().cloned().collect())
            .unwrap_or_default()
    }
}

/// An event as the use case appended it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    pub event: DomainEvent,
    pub aggregate_version: i64,
}

/// A refresh token: whose, in which sign-in, and whether it is spent.
struct Refresh {
    user: UserId,
    tenant: TenantId,
    session: SessionId,
    used: bool,
    revoked: bool,
}

#[derive(Default, Clone)]
struct State {
    tenants: Vec<Tenant>,
    tables: Tables,
    outbox: Vec<Appended>,
    responses: Vec<(IdempotencyKey, RecordedResponse)>,
    sessions: Arc<BTreeMap<String, Arc<Mutex<Refresh>>>>,
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
    /// Claims are not transactional: they live beside the state.
    claims: Mutex<HashMap<(TenantId, String), FakeClaim>>,
    revocations: Mutex<Vec<(String, DateTime<Utc>)>>,
    /// When expired refresh tokens and idempotency keys were purged; the fake keeps no
    /// expiries, so it records the calls and removes nothing.
    purges: Mutex<Vec<(&'static str, DateTime<Utc>)>>,
    fail_next_commit: AtomicBool,
    fail_next_write: AtomicBool,
    /// Simulates another writer saving between our read and our write.
    concurrent_write: AtomicBool,
}

impl FakeDb {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap()
    }

    /// What was purged of expired entries, and when.
    pub fn purges(&self) -> Vec<(&'static str, DateTime<Utc>)> {
        self.purges.lock().unwrap().clone()
    }

    /// Every committed aggregate of type `A`, in id order.
    pub fn all<A: Aggregate>(&self) -> Vec<A> {
        self.state().tables.all()
    }

    /// The committed user `id`; panics when there is none.
    pub fn user(&self, id: UserId) -> User {
        self.all::<User>()
            .into_iter()
            .find(|user| user.id() == id)
            .expect("the user exists")
    }

    pub fn tenant_count(&self) -> usize {
        self.state().tenants.len()
    }

    /// The names of the committed events, in the order they were appended.
    pub fn outbox_names(&self) -> Vec<&'static str> {
        self.state()
            .outbox
            .iter()
            .map(|appended| appended.event.name())
            .collect()
    }

    /// The committed events of one aggregate, with the version each was stamped with.
    pub fn outbox_of(&self, aggregate: Uuid) -> Vec<(&'static str, i64)> {
        self.state()
            .outbox
            .iter()
            .filter(|appended| appended.event.aggregate().1 == aggregate)
            .map(|appended| (appended.event.name(), appended.aggregate_version))
            .collect()
    }

    /// Every token `revoke` was asked to end, and when.
    pub fn revocations(&self) -> Vec<(String, DateTime<Utc>)> {
        self.revocations.lock().unwrap().clone()
    }

    pub fn fail_next_commit(&self) {
        self.fail_next_commit.store(true, Ordering::SeqCst);
    }

    /// Makes the next write outside a transaction (a refresh token's) fail.
    pub fn fail_next_write(&self) {
        self.fail_next_write.store(true, Ordering::SeqCst);
    }

    pub fn write_concurrently_before_next_save(&self) {
        self.concurrent_write.store(true, Ordering::SeqCst);
    }

    fn write(&self) -> Result<(), RepositoryError> {
        if self.fail_next_write.swap(false, Ordering::SeqCst) {
            return Err(RepositoryError::Unexpected(anyhow::anyhow!(
                "injected write failure"
            )));
        }
        Ok(())
    }
}

/// One fake transaction: a copy of the state, written back whole on commit. Use-case
/// tests run one transaction at a time; conflicts are simulated with
/// `write_concurrently_before_next_save`.
pub struct FakeTransaction {
    db: Arc<FakeDb>,
    staged: State,
    /// Sessions ended in this transaction, applied on commit.
    ended: Vec<UserId>,
}

#[async_trait]
impl UnitOfWork for Arc<FakeDb> {
    async fn begin(&self) -> Result<Box<dyn Transaction>, RepositoryError> {
        let staged = self.state().clone();
        Ok(Box::new(FakeTransaction {
            db: self.clone(),
            staged,
            ended: Vec::new(),
        }))
    }
}

/// Whether `aggregate` would break a unique index of its table: the users' emails.
fn clashes<A: Aggregate>(tables: &Tables, aggregate: &A) -> bool {
    let Some(user) = (aggregate as &dyn Any).downcast_ref::<User>() else {
        return false;
    };
    tables
        .all::<User>()
        .iter()
        .any(|other| other.id() != user.id() && other.email() == user.email())
}

#[async_trait]
impl<A: Aggregate> Store<A> for FakeTransaction {
    async fn get(&mut self, tenant: TenantId, id: A::Id) -> Result<Option<A>, RepositoryError> {
        Ok(self.staged.tables.get(tenant, id))
    }

    async fn add(&mut self, aggregate: &A) -> Result<(), RepositoryError> {
        if clashes(&self.staged.tables, aggregate) {
            return Err(RepositoryError::EmailTaken);
        }
        let table = self.staged.tables.table_mut::<A>();
        if table.contains_key(&aggregate.id().as_uuid()) {
            return Err(RepositoryError::Unexpected(anyhow::anyhow!(
                "duplicate key {}",
                aggregate.id()
            )));
        }
        table.insert(aggregate.id().as_uuid(), aggregate.clone());
        Ok(())
    }

    async fn save(&mut self, aggregate: &mut A) -> Result<(), RepositoryError> {
        let stored = self
            .staged
            .tables
            .get::<A>(aggregate.tenant_id(), aggregate.id())
            .map(|stored| stored.version());
        let concurrent = self.db.concurrent_write.swap(false, Ordering::SeqCst);
        if concurrent || stored != Some(aggregate.version()) {
            return Err(RepositoryError::Stale);
        }
        if clashes(&self.staged.tables, aggregate) {
            return Err(RepositoryError::EmailTaken);
        }
        aggregate.saved();
        let table = self.staged.tables.table_mut::<A>();
        table.insert(aggregate.id().as_uuid(), aggregate.clone());
        Ok(())
    }
}

#[async_trait]
impl Accounts for FakeTransaction {
    async fn add_tenant(&mut self, tenant: &Tenant) -> Result<(), RepositoryError> {
        self.staged.tenants.push(tenant.clone());
        Ok(())
    }

    async fn active_admins(&mut self, tenant: TenantId) -> Result<ActiveAdmins, RepositoryError> {
        let count = self
            .staged
            .tables
            .all::<User>()
            .iter()
            .filter(|u| u.tenant_id() == tenant && u.role() == Role::Admin && u.can_sign_in())
            .count();
        Ok(ActiveAdmins(count as u64))
    }

    async fn can_act(&mut self, tenant: TenantId, user: UserId) -> Result<bool, RepositoryError> {
        Ok(self
            .staged
            .tables
            .get::<User>(tenant, user)
            .is_some_and(|user| user.can_sign_in()))
    }

    async fn end_sessions(
        &mut self,
        _tenant: TenantId,
        user: UserId,
        _now: DateTime<Utc>,
    ) -> Result<(), RepositoryError> {
        self.ended.push(user);
        Ok(())
    }
}

#[async_trait]
impl Transaction for FakeTransaction {
    async fn append_events(
        &mut self,
        events: Vec<DomainEvent>,
        aggregate_version: i64,
    ) -> Result<(), RepositoryError> {
        self.staged
            .outbox
            .extend(events.into_iter().map(|event| Appended {
                event,
                aggregate_version,
            }));
        Ok(())
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
            .claims
            .lock()
            .unwrap()
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
        let Self { db, staged, ended } = *self;
        for session in staged.sessions.values() {
            let mut session = session.lock().unwrap();
            if ended.contains(&session.user) {
                session.revoked = true;
            }
        }
        *db.state() = staged;
        Ok(())
    }
}

#[async_trait]
impl<A: Aggregate> Lookup<A> for Arc<FakeDb> {
    async fn get(&self, tenant: TenantId, id: A::Id) -> Result<Option<A>, RepositoryError> {
        Ok(self.state().tables.get(tenant, id))
    }
}

#[async_trait]
impl IdempotencyKeys for Arc<FakeDb> {
    async fn claim(
        &self,
        key: &IdempotencyKey,
        now: DateTime<Utc>,
    ) -> Result<Claim, RepositoryError> {
        let completed = self
            .state()
            .responses
            .iter()
            .find(|(stored, _)| stored.tenant == key.tenant && stored.key == key.key)
            .cloned();
        if let Some((stored, response)) = completed {
            return Ok(if stored.fingerprint == key.fingerprint {
                Claim::Replay(response)
            } else {
                Claim::KeyReused
            });
        }
        let mut claims = self.claims.lock().unwrap();
        let slot = (key.tenant, key.key.clone());
        match claims.get(&slot) {
            Some(claim) if claim.locked_until > now => {
                Ok(if claim.fingerprint == key.fingerprint {
                    Claim::InProgress
                } else {
                    Claim::KeyReused
                })
            }
            // New, or lapsed and taken over: a new holder with a new token.
            _ => {
                let token = ClaimToken(Uuid::now_v7());
                claims.insert(
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
        let mut claims = self.claims.lock().unwrap();
        let slot = (key.tenant, key.key.clone());
        if claims
            .get(&slot)
            .is_some_and(|claim| claim.token == token && claim.fingerprint == key.fingerprint)
        {
            claims.remove(&slot);
        }
        Ok(())
    }

    async fn purge_expired(&self, now: DateTime<Utc>) -> Result<u64, RepositoryError> {
        self.purges.lock().unwrap().push(("idempotency keys", now));
        Ok(0)
    }
}

#[async_trait]
impl RefreshTokens for Arc<FakeDb> {
    async fn issue(
        &self,
        user: &User,
        session: Option<SessionId>,
        _now: DateTime<Utc>,
    ) -> Result<String, RepositoryError> {
        self.write()?;
        let token = Uuid::now_v7().to_string();
        let mut state = self.state();
        Arc::make_mut(&mut state.sessions).insert(
            token.clone(),
            Arc::new(Mutex::new(Refresh {
                user: user.id(),
                tenant: user.tenant_id(),
                session: session.unwrap_or(SessionId(Uuid::now_v7())),
                used: false,
                revoked: false,
            })),
        );
        Ok(token)
    }

    async fn consume(
        &self,
        token: &str,
        _now: DateTime<Utc>,
    ) -> Result<RefreshOutcome, RepositoryError> {
        self.write()?;
        let Some(stored) = self.state().sessions.get(token).cloned() else {
            return Ok(RefreshOutcome::Invalid);
        };
        let mut stored = stored.lock().unwrap();
        Ok(if stored.used {
            RefreshOutcome::Reused {
                session: stored.session,
            }
        } else if stored.revoked {
            RefreshOutcome::Invalid
        } else {
            stored.used = true;
            RefreshOutcome::Consumed {
                user: stored.user,
                tenant: stored.tenant,
                session: stored.session,
            }
        })
    }

    async fn revoke(&self, token: &str, now: DateTime<Utc>) -> Result<(), RepositoryError> {
        self.write()?;
        self.revocations
            .lock()
            .unwrap()
            .push((token.to_owned(), now));
        let session = self
            .state()
            .sessions
            .get(token)
            .map(|stored| stored.lock().unwrap().session);
        if let Some(session) = session {
            self.revoke_session(session, now).await?;
        }
        Ok(())
    }

    async fn purge_expired(&self, now: DateTime<Utc>) -> Result<u64, RepositoryError> {
        self.purges.lock().unwrap().push(("refresh tokens", now));
        Ok(0)
    }

    async fn revoke_session(
        &self,
        session: SessionId,
        _now: DateTime<Utc>,
    ) -> Result<(), RepositoryError> {
        for stored in self.state().sessions.values() {
            let mut stored = stored.lock().unwrap();
            if stored.session == session {
                stored.revoked = true;
            }
        }
        Ok(())
    }
}
