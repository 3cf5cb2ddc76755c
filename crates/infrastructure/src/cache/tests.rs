//! The decorator on real databases (`SQLite`, and `PostgreSQL` when the run includes
//! the tests that need it) and real caches (in memory, and Redis likewise): after any
//! write, no read by id returns the old state, whatever the cache does.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::anyhow;
use application::ports::{Lookup, RepositoryError, Store, Transaction, UnitOfWork};
use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use domain::{
    ActiveAdmins, Actor, Aggregate, ChecklistItemId, ChecklistText, Email, NewTask, PasswordHash,
    Priority, Role, Task, TaskDescription, TaskEdit, TaskId, TaskTitle, TenantId, User, UserId,
    Username,
};
use tokio::sync::oneshot;
use uuid::Uuid;

use super::codec::EntryKey;
use super::port::{Cache, CacheEntry, CacheError};
use super::{
    CacheAside, CacheConfig, CachedLookup, InMemoryCache, InvalidatingUnitOfWork, RedisCache,
};
use crate::database::Database;
use crate::testing;
use crate::{SqlLookup, SqlUnitOfWork};

const TTL: Duration = Duration::from_mins(1);

fn at(minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 12, minute, 0).unwrap()
}

fn email(raw: &str) -> Email {
    Email::parse(raw).unwrap()
}

fn actor(user: &User) -> Actor {
    Actor {
        id: user.id(),
        role: user.role(),
    }
}

/// Declares each listed `async fn name(world: World)` four times: on `SQLite` and
/// `PostgreSQL`, each with the in-memory cache and with Redis. All but the first are
/// ignored (with the reason) unless the run includes ignored tests.
macro_rules! on_every_backend_and_cache {
    ($($test:ident),+ $(,)?) => {
        on_every_backend_and_cache!(@variant sqlite_in_memory, false, false, ""; $($test),+);
        on_every_backend_and_cache!(@variant sqlite_redis, false, true,
            "needs Redis: TEST_REDIS_URL, run by `just test-all`"; $($test),+);
        on_every_backend_and_cache!(@variant postgres_in_memory, true, false,
            "needs PostgreSQL: TEST_DATABASE_URL, run by `just test-all`"; $($test),+);
        on_every_backend_and_cache!(@variant postgres_redis, true, true,
            "needs PostgreSQL and Redis, run by `just test-all`"; $($test),+);
    };
    (@variant $module:ident, $postgres:tt, $redis:tt, $reason:literal; $($test:ident),+) => {
        mod $module {
            $(
                #[tokio::test]
                #[cfg_attr(any($postgres, $redis), ignore = $reason)]
                async fn $test() {
                    let backend = if $postgres {
                        crate::testing::Backend::postgres()
                    } else {
                        crate::testing::Backend::Sqlite
                    };
                    let database = backend.fresh_database().await;
                    let redis = if $redis {
                        Some(crate::testing::TestRedis::new().await)
                    } else {
                        None
                    };
                    let cache = super::cache_on(redis.as_ref());
                    super::$test(super::World::new(database.db(), cache).await).await;
                }
            )+
        }
    };
}

/// The in-memory cache, or the Redis one under the test's namespace.
fn cache_on(redis: Option<&testing::TestRedis>) -> Arc<dyn Cache> {
    match redis {
        Some(redis) => Arc::new(RedisCache::new(
            redis.redis.clone(),
            redis.namespace.clone(),
            TTL,
        )),
        None => Arc::new(InMemoryCache::new(1000, TTL)),
    }
}

/// A tenant with an admin and a member, the decorated ports over a database and a
/// cache, and the plain SQL adapters to look behind them.
#[derive(Clone)]
struct World {
    cache: Arc<dyn Cache>,
    aside: CacheAside,
    users: CachedLookup<User>,
    tasks: CachedLookup<Task>,
    uow: InvalidatingUnitOfWork,
    /// Writes that invalidate nothing, to change the database behind the cache's back.
    sql_uow: SqlUnitOfWork,
    sql_users: Arc<SqlLookup<User>>,
    sql_tasks: Arc<SqlLookup<Task>>,
    admin: User,
    member: User,
}

impl World {
    async fn new(db: Database, cache: Arc<dyn Cache>) -> Self {
        let aside = CacheAside::new(Arc::clone(&cache), CacheConfig::default());
        let sql_uow = SqlUnitOfWork::new(db.clone());
        let uow = InvalidatingUnitOfWork::new(Arc::new(sql_uow.clone()), aside.clone());
        let (admin, member) = register(&uow, "admin@example.com", "member@example.com").await;
        let sql_users = Arc::new(SqlLookup::<User>::new(db.clone()));
        let sql_tasks = Arc::new(SqlLookup::<Task>::new(db));
        Self {
            users: CachedLookup::new(sql_users.clone(), aside.clone()),
            tasks: CachedLookup::new(sql_tasks.clone(), aside.clone()),
            sql_users,
            sql_tasks,
            cache,
            aside,
            uow,
            sql_uow,
            admin,
            member,
        }
    }

    fn tenant(&self) -> TenantId {
        self.admin.tenant_id()
    }

    async fn user(&self, id: UserId) -> Option<User> {
        self.users.get(self.tenant(), id).await.unwrap()
    }

    async fn stored_user(&self, id: UserId) -> Option<User> {
        self.sql_users.get(self.tenant(), id).await.unwrap()
    }

    async fn task(&self, id: TaskId) -> Option<Task> {
        self.tasks.get(self.tenant(), id).await.unwrap()
    }

    async fn stored_task(&self, id: TaskId) -> Option<Task> {
        self.sql_tasks.get(self.tenant(), id).await.unwrap()
    }

    /// `aggregate` as saved through `uow`.
    async fn save_with<A>(uow: &dyn UnitOfWork, aggregate: &A) -> Result<A, RepositoryError>
    where
        A: Aggregate,
        dyn Transaction: Store<A>,
    {
        let mut aggregate = aggregate.clone();
        let mut tx = uow.begin().await?;
        Store::<A>::save(tx.as_mut(), &mut aggregate).await?;
        tx.commit().await?;
        // Its events went nowhere: a store writes state, the use case appends events.
        aggregate.take_events();
        Ok(aggregate)
    }

    /// `aggregate` as added through `uow`.
    async fn add_with<A>(uow: &dyn UnitOfWork, aggregate: &A) -> A
    where
        A: Aggregate,
        dyn Transaction: Store<A>,
    {
        let mut aggregate = aggregate.clone();
        aggregate.take_events();
        let mut tx = uow.begin().await.unwrap();
        Store::<A>::add(tx.as_mut(), &aggregate).await.unwrap();
        tx.commit().await.unwrap();
        aggregate
    }

    async fn save_user(&self, user: &User) -> User {
        Self::save_with(&self.uow, user).await.unwrap()
    }

    async fn add_user(&self, address: &str) -> User {
        Self::add_with(&self.uow, &new_user(self.tenant(), address, Role::Member)).await
    }

    async fn save_task(&self, task: &Task) -> Task {
        Self::save_with(&self.uow, task).await.unwrap()
    }

    fn new_task(&self, title: &str) -> Task {
        let new = NewTask {
            title: TaskTitle::parse(title).unwrap(),
            description: TaskDescription::default(),
            priority: Priority::Medium,
            due_date: None,
            assignee: None,
            checklist: vec![(
                ChecklistItemId::from_uuid(Uuid::now_v7()),
                ChecklistText::parse("check").unwrap(),
            )],
        };
        let id = TaskId::from_uuid(Uuid::now_v7());
        Task::create(id, self.tenant(), actor(&self.admin), new, at(0)).unwrap()
    }

    async fn add_task(&self, title: &str) -> Task {
        Self::add_with(&self.uow, &self.new_task(title)).await
    }
}

fn new_user(tenant: TenantId, address: &str, role: Role) -> User {
    let id = UserId::from_uuid(Uuid::now_v7());
    User::register(
        id,
        id,
        tenant,
        email(address),
        Username::parse("someone").unwrap(),
        PasswordHash::new("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".to_owned()),
        role,
        at(0),
    )
}

/// A new tenant with an admin and a member of these emails, as stored.
async fn register(uow: &dyn UnitOfWork, admin: &str, member: &str) -> (User, User) {
    let mut users = crate::persistence::fixtures::register(uow, admin, Some(member)).await;
    let member = users.pop().unwrap();
    (users.pop().unwrap(), member)
}

// ---- Reads are cached, and never of the wrong thing ------------------------------

async fn reads_by_id_are_served_from_the_cache_once_filled(world: World) {
    let member = world.member.clone();
    let task = world.add_task("Cached").await;
    assert_eq!(world.user(member.id()).await.as_ref(), Some(&member));
    assert_eq!(world.task(task.id()).await.as_ref(), Some(&task));

    // Changed behind the cache's back: the cache still answers with what it holds.
    let mut renamed = member.clone();
    renamed
        .rename(member.id(), Username::parse("renamed").unwrap(), at(1))
        .unwrap();
    World::save_with(&world.sql_uow, &renamed).await.unwrap();
    let mut edited = task.clone();
    let edit = TaskEdit {
        title: Some(TaskTitle::parse("Edited").unwrap()),
        ..TaskEdit::default()
    };
    edited.edit(actor(&world.admin), edit, at(1)).unwrap();
    World::save_with(&world.sql_uow, &edited).await.unwrap();

    assert_eq!(world.user(member.id()).await, Some(member));
    assert_eq!(world.task(task.id()).await, Some(task));
}

async fn nothing_is_cached_for_a_user_or_task_that_does_not_exist_yet(world: World) {
    let user = new_user(world.tenant(), "late@example.com", Role::Member);
    let task = world.new_task("Late");
    assert_eq!(world.user(user.id()).await, None);
    assert_eq!(world.task(task.id()).await, None);

    // Added without any invalidation: found all the same.
    let stored_user = World::add_with(&world.sql_uow, &user).await;
    let stored_task = World::add_with(&world.sql_uow, &task).await;
    assert_eq!(world.user(user.id()).await, Some(stored_user));
    assert_eq!(world.task(task.id()).await, Some(stored_task));
}

async fn a_cached_user_or_task_is_not_found_through_another_tenant(world: World) {
    let task = world.add_task("Ours").await;
    assert!(world.user(world.member.id()).await.is_some());
    assert!(world.task(task.id()).await.is_some());
    let (theirs, _) = register(
        &world.uow,
        "their-admin@example.com",
        "their-member@example.com",
    )
    .await;
    let elsewhere = theirs.tenant_id();
    let user = world.users.get(elsewhere, world.member.id()).await.unwrap();
    assert_eq!(user, None);
    assert_eq!(world.tasks.get(elsewhere, task.id()).await.unwrap(), None);
}

async fn a_cached_value_that_does_not_decode_is_a_miss_and_is_replaced(world: World) {
    let member = world.member.clone();
    let entry = EntryKey::of::<User>(member.tenant_id(), member.id());
    let generation = world
        .cache
        .lookup(&entry.key, &entry.guard)
        .await
        .unwrap()
        .generation;
    let garbage = world
        .cache
        .fill(&entry.key, b"\x00{not json", &entry.guard, generation);
    assert!(garbage.await.unwrap());
    assert_eq!(world.user(member.id()).await, Some(member.clone()));
    let cached = world.cache.lookup(&entry.key, &entry.guard).await.unwrap();
    let cached = super::codec::unpack::<User>(&cached.value.unwrap()).unwrap();
    assert_eq!(cached, member);
}

// ---- After any write, no read by any key returns the old state ------------------

/// Reads the user (filling the cache), applies `change`, saves it through the
/// invalidating unit of work, and checks the read by id returns what was saved.
async fn change_user_and_check(world: &World, change: impl FnOnce(&mut User)) -> User {
    let before = world.stored_user(world.member.id()).await.unwrap();
    assert_eq!(world.user(before.id()).await.as_ref(), Some(&before));
    let mut changed = before.clone();
    change(&mut changed);
    let saved = world.save_user(&changed).await;
    assert_eq!(world.stored_user(saved.id()).await.as_ref(), Some(&saved));
    assert_eq!(world.user(saved.id()).await.as_ref(), Some(&saved));
    saved
}

async fn after_every_kind_of_user_write_a_read_by_id_returns_the_new_state(world: World) {
    let admin = world.admin.id();
    let renamed = change_user_and_check(&world, |user| {
        user.rename(admin, Username::parse("renamed").unwrap(), at(1))
            .unwrap();
    })
    .await;
    assert_eq!(renamed.username().as_str(), "renamed");
    let promoted = change_user_and_check(&world, |user| {
        user.change_role(admin, Role::Admin, ActiveAdmins(1), at(2))
            .unwrap();
    })
    .await;
    assert_eq!(promoted.role(), Role::Admin);
    let demoted = change_user_and_check(&world, |user| {
        user.change_role(admin, Role::Member, ActiveAdmins(2), at(3))
            .unwrap();
    })
    .await;
    assert_eq!(demoted.role(), Role::Member);
    let deactivated = change_user_and_check(&world, |user| {
        user.deactivate(admin, ActiveAdmins(1), at(4)).unwrap();
    })
    .await;
    assert!(!deactivated.is_active());
    let activated =
        change_user_and_check(&world, |user| user.activate(admin, at(5)).unwrap()).await;
    assert!(activated.is_active());
    let deleted = change_user_and_check(&world, |user| {
        user.delete(admin, ActiveAdmins(1), at(6)).unwrap();
    })
    .await;
    assert!(deleted.is_deleted());
    let restored = change_user_and_check(&world, |user| user.restore(admin, at(7)).unwrap()).await;
    assert!(!restored.is_deleted());
    let moved = change_user_and_check(&world, |user| {
        user.change_email(admin, email("moved@example.com"), at(8))
            .unwrap();
    })
    .await;
    assert_eq!(moved.email().as_str(), "moved@example.com");
    assert!(!restored.is_deleted());
}

/// Reads the task (filling the cache), applies `change`, saves it through the
/// invalidating unit of work, and checks the read by id returns what was saved.
async fn change_task_and_check(
    world: &World,
    task: TaskId,
    change: impl FnOnce(&mut Task),
) -> Task {
    let before = world.stored_task(task).await.unwrap();
    assert_eq!(world.task(task).await.as_ref(), Some(&before));
    let mut changed = before.clone();
    change(&mut changed);
    let saved = world.save_task(&changed).await;
    assert_eq!(world.stored_task(task).await.as_ref(), Some(&saved));
    assert_eq!(world.task(task).await.as_ref(), Some(&saved));
    saved
}

async fn after_every_kind_of_task_write_a_read_by_id_returns_the_new_state(world: World) {
    let id = world.add_task("Write me").await.id();
    let by = actor(&world.admin);
    let member = world.member.id();
    let edited = change_task_and_check(&world, id, |task| {
        let edit = TaskEdit {
            title: Some(TaskTitle::parse("Edited").unwrap()),
            priority: Some(Priority::Urgent),
            ..TaskEdit::default()
        };
        task.edit(by, edit, at(1)).unwrap();
    })
    .await;
    assert_eq!(edited.snapshot().title.as_str(), "Edited");
    let assigned = change_task_and_check(&world, id, |task| {
        task.assign(by, Some(member), at(2)).unwrap();
    })
    .await;
    assert_eq!(assigned.assignee(), Some(member));
    change_task_and_check(&world, id, |task| task.start(by, at(3)).unwrap()).await;
    let item = ChecklistItemId::from_uuid(Uuid::now_v7());
    let extended = change_task_and_check(&world, id, |task| {
        let text = ChecklistText::parse("more").unwrap();
        task.add_checklist_item(by, item, text, at(4)).unwrap();
    })
    .await;
    assert_eq!(extended.checklist().len(), 2);
    let ticked = change_task_and_check(&world, id, |task| {
        let items: Vec<_> = task
            .checklist()
            .iter()
            .map(domain::ChecklistItem::id)
            .collect();
        for item in items {
            task.update_checklist_item(by, item, None, Some(true), at(5))
                .unwrap();
        }
    })
    .await;
    assert!(
        ticked
            .checklist()
            .iter()
            .all(domain::ChecklistItem::is_done)
    );
    let done = change_task_and_check(&world, id, |task| task.complete(by, at(6)).unwrap()).await;
    assert_eq!(done.status(), domain::TaskStatus::Done);
    change_task_and_check(&world, id, |task| task.reopen(by, at(7)).unwrap()).await;
    let trimmed = change_task_and_check(&world, id, |task| {
        task.remove_checklist_item(by, item, at(8)).unwrap();
    })
    .await;
    assert_eq!(trimmed.checklist().len(), 1);
    let deleted = change_task_and_check(&world, id, |task| task.delete(by, at(9)).unwrap()).await;
    assert!(deleted.is_deleted());
    let restored =
        change_task_and_check(&world, id, |task| task.restore(by, at(10)).unwrap()).await;
    assert!(!restored.is_deleted());
}

async fn a_transaction_dropped_without_commit_invalidates_nothing_and_changes_nothing(
    world: World,
) {
    let member = world.member.clone();
    assert_eq!(world.user(member.id()).await.as_ref(), Some(&member));
    let entry = EntryKey::of::<User>(member.tenant_id(), member.id());
    let before = world.cache.lookup(&entry.key, &entry.guard).await.unwrap();
    let mut renamed = member.clone();
    renamed
        .rename(member.id(), Username::parse("never").unwrap(), at(1))
        .unwrap();
    let mut tx = world.uow.begin().await.unwrap();
    Store::<User>::save(tx.as_mut(), &mut renamed)
        .await
        .unwrap();
    drop(tx);
    assert_eq!(
        world.cache.lookup(&entry.key, &entry.guard).await.unwrap(),
        before
    );
    assert_eq!(world.user(member.id()).await, Some(member));
}

// ---- The stale-fill race ---------------------------------------------------------

/// Users read from the database that, on the first `get`, stop after the read until
/// told to go on: the window in which a writer commits behind a reader's back.
struct PausingLookup {
    inner: Arc<SqlLookup<User>>,
    pause: Mutex<Option<(oneshot::Sender<()>, oneshot::Receiver<()>)>>,
}

#[async_trait]
impl Lookup<User> for PausingLookup {
    async fn get(&self, tenant: TenantId, id: UserId) -> Result<Option<User>, RepositoryError> {
        let read = self.inner.get(tenant, id).await;
        let pause = self.pause.lock().unwrap().take();
        if let Some((has_read, go_on)) = pause {
            has_read.send(()).unwrap();
            go_on.await.unwrap();
        }
        read
    }
}

/// A reader misses, reads the member, and pauses; a writer renames the member and
/// commits (invalidating through `world.uow`); then the reader goes on and fills the
/// cache through `reader_cache`. The reader's answer and the member as saved.
async fn race_a_reader_against_a_writer(world: &World, reader_cache: CacheAside) -> (User, User) {
    let (has_read, reader_has_read) = oneshot::channel();
    let (go_on, reader_go_on) = oneshot::channel();
    let pausing = PausingLookup {
        inner: world.sql_users.clone(),
        pause: Mutex::new(Some((has_read, reader_go_on))),
    };
    let reader = CachedLookup::new(Arc::new(pausing), reader_cache);
    let member = world.member.clone();
    let reading = reader.get(member.tenant_id(), member.id());
    let writing = async {
        reader_has_read.await.unwrap();
        let mut renamed = member.clone();
        renamed
            .rename(member.id(), Username::parse("renamed").unwrap(), at(1))
            .unwrap();
        let saved = world.save_user(&renamed).await;
        go_on.send(()).unwrap();
        saved
    };
    let (read, saved) = tokio::join!(reading, writing);
    (read.unwrap().unwrap(), saved)
}

async fn a_reader_that_read_before_a_write_cannot_fill_the_cache_with_the_old_state(world: World) {
    let (read, saved) = race_a_reader_against_a_writer(&world, world.aside.clone()).await;
    assert_eq!(read, world.member, "the reader read before the write");
    assert_ne!(saved, world.member);
    assert_eq!(world.user(saved.id()).await, Some(saved.clone()));
    let entry = EntryKey::of::<User>(saved.tenant_id(), saved.id());
    let cached = world
        .cache
        .lookup(&entry.key, &entry.guard)
        .await
        .unwrap()
        .value;
    let cached = super::codec::unpack::<User>(&cached.unwrap()).unwrap();
    assert_eq!(cached, saved, "only the new state was cached");
}

/// A cache whose fills ignore the guard: cache-aside without the guards.
struct Unguarded(Arc<dyn Cache>);

#[async_trait]
impl Cache for Unguarded {
    async fn lookup(&self, key: &str, guard: &str) -> Result<CacheEntry, CacheError> {
        self.0.lookup(key, guard).await
    }

    /// Fills whatever generation the guard is at now.
    async fn fill(&self, key: &str, value: &[u8], guard: &str, _: u64) -> Result<bool, CacheError> {
        let now = self.0.lookup(key, guard).await?.generation;
        self.0.fill(key, value, guard, now).await
    }

    async fn invalidate(&self, guards: &[String], keys: &[String]) -> Result<(), CacheError> {
        self.0.invalidate(guards, keys).await
    }
}

async fn without_the_guard_the_same_interleaving_leaves_the_old_state_cached(world: World) {
    let unguarded = Arc::new(Unguarded(Arc::clone(&world.cache)));
    let reader_cache = CacheAside::new(unguarded, CacheConfig::default());
    let (read, saved) = race_a_reader_against_a_writer(&world, reader_cache).await;
    assert_eq!(read, world.member);
    assert_eq!(
        world.user(saved.id()).await,
        Some(world.member.clone()),
        "the old state was put back after the invalidation"
    );
}

// ---- A cache that fails ------------------------------------------------------------

async fn with_redis_down_every_read_is_served_from_the_database_and_every_write_commits(
    db: Database,
) {
    let dead = RedisCache::new(testing::dead_redis(), "dead".to_owned(), TTL);
    let world = World::new(db, Arc::new(dead)).await;
    let member = world.member.clone();
    assert_eq!(world.user(member.id()).await.as_ref(), Some(&member));
    let task = world.add_task("Down").await;
    assert_eq!(world.task(task.id()).await.as_ref(), Some(&task));

    let mut moved = member.clone();
    moved
        .change_email(member.id(), email("moved@example.com"), at(1))
        .unwrap();
    let moved = world.save_user(&moved).await;
    let mut started = task.clone();
    started.start(actor(&world.admin), at(1)).unwrap();
    let started = world.save_task(&started).await;

    assert_eq!(world.stored_user(member.id()).await.as_ref(), Some(&moved));
    assert_eq!(world.user(member.id()).await.as_ref(), Some(&moved));
    assert_eq!(world.task(task.id()).await, Some(started));
}

/// An in-memory cache whose operations can be made to fail, one by one.
struct Flaky {
    inner: InMemoryCache,
    failing: Mutex<HashSet<&'static str>>,
}

impl Flaky {
    fn new() -> Self {
        Self {
            inner: InMemoryCache::new(100, TTL),
            failing: Mutex::new(HashSet::new()),
        }
    }

    fn fail(&self, operations: &[&'static str]) {
        self.failing.lock().unwrap().extend(operations);
    }

    fn recover(&self) {
        self.failing.lock().unwrap().clear();
    }

    fn check(&self, operation: &str) -> Result<(), CacheError> {
        if self.failing.lock().unwrap().contains(operation) {
            return Err(CacheError::Unavailable(anyhow!(
                "{operation} is switched off"
            )));
        }
        Ok(())
    }
}

#[async_trait]
impl Cache for Flaky {
    async fn lookup(&self, key: &str, guard: &str) -> Result<CacheEntry, CacheError> {
        self.check("lookup")?;
        self.inner.lookup(key, guard).await
    }

    async fn fill(
        &self,
        key: &str,
        value: &[u8],
        guard: &str,
        generation: u64,
    ) -> Result<bool, CacheError> {
        self.check("fill")?;
        self.inner.fill(key, value, guard, generation).await
    }

    async fn invalidate(&self, guards: &[String], keys: &[String]) -> Result<(), CacheError> {
        self.check("invalidate")?;
        self.inner.invalidate(guards, keys).await
    }
}

/// What the flaky cache holds for the user, bypassing its switches.
async fn cached_user(flaky: &Flaky, user: &User) -> Option<User> {
    let entry = EntryKey::of::<User>(user.tenant_id(), user.id());
    let found = flaky.inner.lookup(&entry.key, &entry.guard).await.unwrap();
    found
        .value
        .map(|packed| super::codec::unpack(&packed).unwrap())
}

async fn an_invalidation_that_failed_is_delivered_before_the_next_read_once_the_cache_is_back(
    db: Database,
) {
    let flaky = Arc::new(Flaky::new());
    let world = World::new(db, Arc::clone(&flaky) as Arc<dyn Cache>).await;
    let member = world.member.clone();
    assert_eq!(world.user(member.id()).await.as_ref(), Some(&member));
    assert_eq!(cached_user(&flaky, &member).await.as_ref(), Some(&member));

    flaky.fail(&["lookup", "fill", "invalidate"]);
    let mut renamed = member.clone();
    renamed
        .rename(member.id(), Username::parse("renamed").unwrap(), at(1))
        .unwrap();
    let saved = world.save_user(&renamed).await;
    assert_eq!(
        world.user(member.id()).await.as_ref(),
        Some(&saved),
        "from the database"
    );
    assert_eq!(
        cached_user(&flaky, &member).await.as_ref(),
        Some(&member),
        "still stale"
    );

    flaky.recover();
    assert_eq!(world.user(member.id()).await.as_ref(), Some(&saved));
    assert_eq!(cached_user(&flaky, &member).await, Some(saved));
}

async fn while_an_owed_invalidation_cannot_be_delivered_reads_bypass_the_cache(db: Database) {
    let flaky = Arc::new(Flaky::new());
    let world = World::new(db, Arc::clone(&flaky) as Arc<dyn Cache>).await;
    let member = world.member.clone();
    let task = world.add_task("Owed").await;
    assert_eq!(world.user(member.id()).await.as_ref(), Some(&member));
    assert_eq!(world.task(task.id()).await.as_ref(), Some(&task));

    // Lookups would still find the old state; only invalidations fail.
    flaky.fail(&["invalidate"]);
    let mut renamed = member.clone();
    renamed
        .rename(member.id(), Username::parse("renamed").unwrap(), at(1))
        .unwrap();
    let saved = world.save_user(&renamed).await;
    for _ in 0..2 {
        assert_eq!(world.user(member.id()).await.as_ref(), Some(&saved));
        // Another aggregate too: what is owed may be anywhere.
        assert_eq!(world.task(task.id()).await.as_ref(), Some(&task));
    }
    assert_eq!(
        cached_user(&flaky, &member).await.as_ref(),
        Some(&member),
        "nothing filled"
    );

    flaky.recover();
    assert_eq!(world.user(member.id()).await.as_ref(), Some(&saved));
    assert_eq!(cached_user(&flaky, &member).await, Some(saved));
}

async fn a_commit_delivers_the_invalidations_owed_by_earlier_ones(db: Database) {
    let flaky = Arc::new(Flaky::new());
    let world = World::new(db, Arc::clone(&flaky) as Arc<dyn Cache>).await;
    let member = world.member.clone();
    assert_eq!(world.user(member.id()).await.as_ref(), Some(&member));
    flaky.fail(&["invalidate"]);
    let mut renamed = member.clone();
    renamed
        .rename(member.id(), Username::parse("renamed").unwrap(), at(1))
        .unwrap();
    world.save_user(&renamed).await;
    flaky.recover();
    world.add_task("Unrelated").await;
    assert_eq!(
        cached_user(&flaky, &member).await,
        None,
        "delivered by the commit"
    );
}

// ---- Under load --------------------------------------------------------------------

/// Saves a change to the task as the task use cases do, reading it in the transaction;
/// retries when another writer came first.
async fn keep_changing_task(world: &World, id: TaskId, change: impl Fn(&mut Task)) {
    loop {
        let mut tx = world.uow.begin().await.unwrap();
        let mut task = Store::<Task>::get(tx.as_mut(), world.tenant(), id)
            .await
            .unwrap()
            .unwrap();
        change(&mut task);
        match Store::<Task>::save(tx.as_mut(), &mut task).await {
            Ok(()) => return tx.commit().await.unwrap(),
            Err(RepositoryError::Stale) => {}
            Err(error) => panic!("saving a task: {error:?}"),
        }
    }
}

/// Saves a change to the user as the user use cases do, reading it through the cached
/// repository; retries when another writer came first. A cache that kept serving an
/// old version would make every retry stale, so the attempts are bounded.
async fn keep_changing_user(world: &World, id: UserId, change: impl Fn(&mut User)) {
    for _ in 0..100 {
        let mut user = world.user(id).await.unwrap();
        change(&mut user);
        match World::save_with(&world.uow, &user).await {
            Ok(_) => return,
            Err(RepositoryError::Stale) => tokio::task::yield_now().await,
            Err(error) => panic!("saving a user: {error:?}"),
        }
    }
    panic!("the cached user stayed stale through 100 attempts");
}

async fn after_concurrent_writers_and_readers_every_cached_read_equals_the_database(world: World) {
    const WRITERS: usize = 4;
    const ROUNDS: usize = 8;
    const READERS: usize = 4;
    {
        let mut tasks = Vec::new();
        for n in 0..3 {
            tasks.push(world.add_task(&format!("Task {n}")).await.id());
        }
        let mut users = vec![world.member.id()];
        users.push(world.add_user("third@example.com").await.id());
        let world = Arc::new(world);
        let tasks = Arc::new(tasks);
        let users = Arc::new(users);

        let mut jobs = tokio::task::JoinSet::new();
        for writer in 0..WRITERS {
            let (world, tasks, users) =
                (Arc::clone(&world), Arc::clone(&tasks), Arc::clone(&users));
            jobs.spawn(async move {
                let by = actor(&world.admin);
                for round in 0..ROUNDS {
                    let title = format!("w{writer} r{round}");
                    let task = tasks[(writer + round) % tasks.len()];
                    keep_changing_task(&world, task, |task| {
                        let edit = TaskEdit {
                            title: Some(TaskTitle::parse(&title).unwrap()),
                            ..TaskEdit::default()
                        };
                        task.edit(by, edit, at(1)).unwrap();
                    })
                    .await;
                    let user = users[(writer + round) % users.len()];
                    let address =
                        format!("w{writer}r{round}-{}@example.com", user.as_uuid().simple());
                    keep_changing_user(&world, user, |user| {
                        let id = user.id();
                        user.change_email(id, email(&address), at(1)).unwrap();
                    })
                    .await;
                }
            });
        }
        for reader in 0..READERS {
            let (world, tasks, users) =
                (Arc::clone(&world), Arc::clone(&tasks), Arc::clone(&users));
            jobs.spawn(async move {
                for read in 0..ROUNDS * 3 {
                    let task = world.task(tasks[(reader + read) % tasks.len()]).await;
                    assert!(task.is_some());
                    let user = world.user(users[(reader + read) % users.len()]).await;
                    assert!(user.is_some());
                    tokio::task::yield_now().await;
                }
            });
        }
        while let Some(job) = jobs.join_next().await {
            job.unwrap();
        }

        for &task in tasks.iter() {
            let stored = world.stored_task(task).await;
            assert!(stored.as_ref().is_some_and(|task| task.version() > 0));
            assert_eq!(world.task(task).await, stored);
        }
        for &user in users.iter() {
            let stored = world.stored_user(user).await.unwrap();
            assert_eq!(world.user(user).await.as_ref(), Some(&stored));
        }
        let mut edits = 0;
        for &task in tasks.iter() {
            edits += world.stored_task(task).await.unwrap().version();
        }
        assert_eq!(
            edits,
            i64::try_from(WRITERS * ROUNDS).unwrap(),
            "every edit was saved"
        );
    }
}

on_every_backend_and_cache!(
    reads_by_id_are_served_from_the_cache_once_filled,
    nothing_is_cached_for_a_user_or_task_that_does_not_exist_yet,
    a_cached_user_or_task_is_not_found_through_another_tenant,
    a_cached_value_that_does_not_decode_is_a_miss_and_is_replaced,
    after_every_kind_of_user_write_a_read_by_id_returns_the_new_state,
    after_every_kind_of_task_write_a_read_by_id_returns_the_new_state,
    a_transaction_dropped_without_commit_invalidates_nothing_and_changes_nothing,
    a_reader_that_read_before_a_write_cannot_fill_the_cache_with_the_old_state,
    without_the_guard_the_same_interleaving_leaves_the_old_state_cached,
    after_concurrent_writers_and_readers_every_cached_read_equals_the_database,
);

crate::on_every_backend!(
    with_redis_down_every_read_is_served_from_the_database_and_every_write_commits,
    an_invalidation_that_failed_is_delivered_before_the_next_read_once_the_cache_is_back,
    while_an_owed_invalidation_cannot_be_delivered_reads_bypass_the_cache,
    a_commit_delivers_the_invalidations_owed_by_earlier_ones,
);
