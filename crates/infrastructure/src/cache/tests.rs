//! The decorators on real databases (`SQLite` always, `PostgreSQL` when configured) and
//! real caches (in memory always, Redis when configured): after any write, no read by
//! any key returns the old state, whatever the cache does.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::anyhow;
use application::ports::{
    Cache, CacheError, Lookup, RepositoryError, TaskCursor, TaskFilter, TaskOrder, TaskQueries,
    TaskSort, UnitOfWork, UserFilter, UserRepository,
};
use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use domain::{
    ActiveAdmins, Actor, ChecklistItemId, ChecklistText, Email, NewTask, PasswordHash, Priority,
    Role, Task, TaskDescription, TaskEdit, TaskId, TaskTitle, Tenant, TenantId, TenantName, User,
    UserId, Username,
};
use tokio::sync::oneshot;
use uuid::Uuid;

use super::codec::EntryKey;
use super::{
    CacheAside, CacheConfig, CachedTaskQueries, CachedUsers, InMemoryCache, InvalidatingUnitOfWork,
    RedisCache,
};
use crate::database::Database;
use crate::testing::{self, Backend};
use crate::{SqlTaskQueries, SqlUnitOfWork, SqlUsers};

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

/// The caches to run against: in memory always, Redis when `TEST_REDIS_URL` is set.
fn caches() -> Vec<(&'static str, Arc<dyn Cache>)> {
    let mut caches: Vec<(&'static str, Arc<dyn Cache>)> =
        vec![("in-memory", Arc::new(InMemoryCache::new(1000, TTL)))];
    match testing::redis() {
        Some((redis, namespace)) => {
            caches.push(("Redis", Arc::new(RedisCache::new(redis, namespace, TTL))));
        }
        None => eprintln!("the Redis cache is skipped: TEST_REDIS_URL is not set"),
    }
    caches
}

/// A tenant with an admin and a member, the decorated ports over a database and a
/// cache, and the plain SQL adapters to look behind them.
#[derive(Clone)]
struct World {
    cache: Arc<dyn Cache>,
    aside: CacheAside,
    users: CachedUsers,
    tasks: CachedTaskQueries,
    uow: InvalidatingUnitOfWork,
    /// Writes that invalidate nothing, to change the database behind the cache's back.
    sql_uow: SqlUnitOfWork,
    sql_users: SqlUsers,
    sql_tasks: SqlTaskQueries,
    admin: User,
    member: User,
}

impl World {
    async fn new(db: Database, cache: Arc<dyn Cache>) -> Self {
        let aside = CacheAside::new(Arc::clone(&cache), CacheConfig::default());
        let sql_uow = SqlUnitOfWork::new(db.clone());
        let uow = InvalidatingUnitOfWork::new(Arc::new(sql_uow.clone()), aside.clone());
        let (admin, member) = register(&uow, "admin@example.com", "member@example.com").await;
        Self {
            users: CachedUsers::new(Arc::new(SqlUsers::new(db.clone())), aside.clone()),
            tasks: CachedTaskQueries::new(Arc::new(SqlTaskQueries::new(db.clone())), aside.clone()),
            sql_users: SqlUsers::new(db.clone()),
            sql_tasks: SqlTaskQueries::new(db),
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

    async fn user_by_email(&self, address: &str) -> Option<User> {
        self.users.find_by_email(&email(address)).await.unwrap()
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

    /// `user` as saved through `uow`.
    async fn save_user_with(uow: &dyn UnitOfWork, user: &User) -> Result<User, RepositoryError> {
        let mut user = user.clone();
        let mut tx = uow.begin().await?;
        tx.users().save(&mut user).await?;
        tx.commit().await?;
        Ok(user)
    }

    async fn save_user(&self, user: &User) -> User {
        Self::save_user_with(&self.uow, user).await.unwrap()
    }

    async fn add_user(&self, address: &str) -> User {
        let mut user = new_user(self.tenant(), address, Role::Member);
        let mut tx = self.uow.begin().await.unwrap();
        tx.users().add(&mut user).await.unwrap();
        tx.commit().await.unwrap();
        user
    }

    async fn save_task_with(uow: &dyn UnitOfWork, task: &Task) -> Result<Task, RepositoryError> {
        let mut task = task.clone();
        let mut tx = uow.begin().await?;
        tx.tasks().save(&mut task).await?;
        tx.commit().await?;
        Ok(task)
    }

    async fn save_task(&self, task: &Task) -> Task {
        Self::save_task_with(&self.uow, task).await.unwrap()
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

    async fn add_task_with(uow: &dyn UnitOfWork, task: &Task) -> Task {
        let mut task = task.clone();
        let mut tx = uow.begin().await.unwrap();
        tx.tasks().add(&mut task).await.unwrap();
        tx.commit().await.unwrap();
        task
    }

    async fn add_task(&self, title: &str) -> Task {
        Self::add_task_with(&self.uow, &self.new_task(title)).await
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
    let tenant = Tenant::create(
        TenantId::from_uuid(Uuid::now_v7()),
        TenantName::parse("Acme").unwrap(),
        at(0),
    );
    let mut admin = new_user(tenant.id(), admin, Role::Admin);
    let mut member = new_user(tenant.id(), member, Role::Member);
    let mut tx = uow.begin().await.unwrap();
    tx.users().add_tenant(&tenant).await.unwrap();
    tx.users().add(&mut admin).await.unwrap();
    tx.users().add(&mut member).await.unwrap();
    tx.commit().await.unwrap();
    (admin, member)
}

/// Runs `test` on every backend with every cache, each time on a new database.
async fn on_every_backend_and_cache<F, Fut>(test: F)
where
    F: Fn(World) -> Fut,
    Fut: Future<Output = ()>,
{
    for backend in Backend::all() {
        for (name, cache) in caches() {
            eprintln!("-- on {backend} with the {name} cache");
            test(World::new(backend.fresh_database().await, cache).await).await;
        }
    }
}

// ---- Reads are cached, and never of the wrong thing ------------------------------

#[tokio::test]
async fn reads_by_id_and_by_email_are_served_from_the_cache_once_filled() {
    on_every_backend_and_cache(|world| async move {
        let member = world.member.clone();
        let task = world.add_task("Cached").await;
        assert_eq!(world.user(member.id()).await.as_ref(), Some(&member));
        assert_eq!(
            world.user_by_email("member@example.com").await.as_ref(),
            Some(&member)
        );
        assert_eq!(world.task(task.id()).await.as_ref(), Some(&task));

        // Changed behind the cache's back: the cache still answers with what it holds.
        let mut renamed = member.clone();
        renamed
            .rename(Username::parse("renamed").unwrap(), at(1))
            .unwrap();
        World::save_user_with(&world.sql_uow, &renamed)
            .await
            .unwrap();
        let mut edited = task.clone();
        let edit = TaskEdit {
            title: Some(TaskTitle::parse("Edited").unwrap()),
            ..TaskEdit::default()
        };
        edited.edit(actor(&world.admin), edit, at(1)).unwrap();
        World::save_task_with(&world.sql_uow, &edited)
            .await
            .unwrap();

        assert_eq!(world.user(member.id()).await, Some(member.clone()));
        assert_eq!(
            world.user_by_email("member@example.com").await,
            Some(member)
        );
        assert_eq!(world.task(task.id()).await, Some(task));
    })
    .await;
}

#[tokio::test]
async fn nothing_is_cached_for_a_user_or_task_that_does_not_exist_yet() {
    on_every_backend_and_cache(|world| async move {
        let user = new_user(world.tenant(), "late@example.com", Role::Member);
        let task = world.new_task("Late");
        assert_eq!(world.user(user.id()).await, None);
        assert_eq!(world.user_by_email("late@example.com").await, None);
        assert_eq!(world.task(task.id()).await, None);

        // Added without any invalidation: found all the same.
        let mut tx = world.sql_uow.begin().await.unwrap();
        let mut stored_user = user.clone();
        tx.users().add(&mut stored_user).await.unwrap();
        tx.commit().await.unwrap();
        let stored_task = World::add_task_with(&world.sql_uow, &task).await;
        assert_eq!(world.user(user.id()).await, Some(stored_user.clone()));
        assert_eq!(
            world.user_by_email("late@example.com").await,
            Some(stored_user)
        );
        assert_eq!(world.task(task.id()).await, Some(stored_task));
    })
    .await;
}

#[tokio::test]
async fn a_cached_user_or_task_is_not_found_through_another_tenant() {
    on_every_backend_and_cache(|world| async move {
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
    })
    .await;
}

#[tokio::test]
async fn lists_and_counts_are_always_read_from_the_database() {
    on_every_backend_and_cache(|world| async move {
        let task = world.add_task("Listed").await;
        let (all_tasks, all_users) = (TaskFilter::default(), UserFilter::default());
        let sort = TaskSort {
            order: TaskOrder::CreatedAt,
            descending: false,
        };
        let list_tasks = |after| {
            world
                .tasks
                .list(world.tenant(), &all_tasks, sort, after, 10)
        };
        let roles = || async {
            let users = world.users.list(world.tenant(), &all_users, None, 10);
            let users = users.await.unwrap();
            users.iter().map(User::role).collect::<Vec<_>>()
        };
        assert_eq!(list_tasks(None).await.unwrap(), vec![task.clone()]);
        assert_eq!(roles().await, [Role::Admin, Role::Member]);
        assert_eq!(
            world
                .users
                .count_active_admins(world.tenant())
                .await
                .unwrap(),
            1
        );

        let mut edited = task.clone();
        let edit = TaskEdit {
            title: Some(TaskTitle::parse("Renamed").unwrap()),
            ..TaskEdit::default()
        };
        edited.edit(actor(&world.admin), edit, at(1)).unwrap();
        let edited = World::save_task_with(&world.sql_uow, &edited)
            .await
            .unwrap();
        let mut promoted = world.member.clone();
        let admin = world.admin.id();
        promoted
            .change_role(admin, Role::Admin, ActiveAdmins(1), at(1))
            .unwrap();
        World::save_user_with(&world.sql_uow, &promoted)
            .await
            .unwrap();

        assert_eq!(list_tasks(None).await.unwrap(), vec![edited]);
        assert_eq!(roles().await, [Role::Admin, Role::Admin]);
        assert_eq!(
            world
                .users
                .count_active_admins(world.tenant())
                .await
                .unwrap(),
            2
        );
        let after = Some(TaskCursor::after(&task, TaskOrder::CreatedAt));
        assert!(list_tasks(after).await.unwrap().is_empty());
    })
    .await;
}

#[tokio::test]
async fn a_cached_value_that_does_not_decode_is_a_miss_and_is_replaced() {
    on_every_backend_and_cache(|world| async move {
        let member = world.member.clone();
        let entry = EntryKey::user(member.tenant_id(), member.id());
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
    })
    .await;
}

// ---- After any write, no read by any key returns the old state ------------------

/// Reads the user by id and by its email (filling the cache), applies `change`, saves
/// it through the invalidating unit of work, and checks every read returns what was
/// saved.
async fn change_user_and_check(world: &World, change: impl FnOnce(&mut User)) -> User {
    let before = world.stored_user(world.member.id()).await.unwrap();
    assert_eq!(world.user(before.id()).await.as_ref(), Some(&before));
    assert_eq!(
        world.user_by_email(before.email().as_str()).await.as_ref(),
        Some(&before)
    );
    let mut changed = before.clone();
    change(&mut changed);
    let saved = world.save_user(&changed).await;
    assert_eq!(world.stored_user(saved.id()).await.as_ref(), Some(&saved));
    assert_eq!(world.user(saved.id()).await.as_ref(), Some(&saved), "by id");
    let by_email = world.user_by_email(saved.email().as_str()).await;
    assert_eq!(by_email.as_ref(), Some(&saved), "by email");
    saved
}

#[tokio::test]
async fn after_every_kind_of_user_write_reads_by_id_and_by_email_return_the_new_state() {
    on_every_backend_and_cache(|world| async move {
        let admin = world.admin.id();
        let renamed = change_user_and_check(&world, |user| {
            user.rename(Username::parse("renamed").unwrap(), at(1))
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
        let activated = change_user_and_check(&world, |user| user.activate(at(5)).unwrap()).await;
        assert!(activated.is_active());
        let deleted = change_user_and_check(&world, |user| {
            user.delete(admin, ActiveAdmins(1), at(6)).unwrap();
        })
        .await;
        assert!(deleted.is_deleted());
        let restored = change_user_and_check(&world, |user| user.restore(at(7)).unwrap()).await;
        assert!(!restored.is_deleted());
    })
    .await;
}

#[tokio::test]
async fn after_an_email_change_the_old_email_finds_nobody_and_the_new_one_finds_the_user() {
    on_every_backend_and_cache(|world| async move {
        let moved = change_user_and_check(&world, |user| {
            user.change_email(email("moved@example.com"), at(1))
                .unwrap();
        })
        .await;
        assert_eq!(world.user_by_email("member@example.com").await, None);
        assert_eq!(
            world.user_by_email("moved@example.com").await,
            Some(moved.clone())
        );

        // The old address taken by someone else leads to them, not to the user who left it.
        let mut admin = world.admin.clone();
        admin
            .change_email(email("member@example.com"), at(2))
            .unwrap();
        let admin = world.save_user(&admin).await;
        assert_eq!(world.user_by_email("member@example.com").await, Some(admin));
        assert_eq!(world.user_by_email("admin@example.com").await, None);
        assert_eq!(world.user_by_email("moved@example.com").await, Some(moved));
    })
    .await;
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

#[tokio::test]
async fn after_every_kind_of_task_write_a_read_by_id_returns_the_new_state() {
    on_every_backend_and_cache(|world| async move {
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
        let done =
            change_task_and_check(&world, id, |task| task.complete(by, at(6)).unwrap()).await;
        assert_eq!(done.status(), domain::TaskStatus::Done);
        change_task_and_check(&world, id, |task| task.reopen(by, at(7)).unwrap()).await;
        let trimmed = change_task_and_check(&world, id, |task| {
            task.remove_checklist_item(by, item, at(8)).unwrap();
        })
        .await;
        assert_eq!(trimmed.checklist().len(), 1);
        let deleted =
            change_task_and_check(&world, id, |task| task.delete(by, at(9)).unwrap()).await;
        assert!(deleted.is_deleted());
        let restored =
            change_task_and_check(&world, id, |task| task.restore(by, at(10)).unwrap()).await;
        assert!(!restored.is_deleted());
    })
    .await;
}

#[tokio::test]
async fn a_transaction_dropped_without_commit_invalidates_nothing_and_changes_nothing() {
    on_every_backend_and_cache(|world| async move {
        let member = world.member.clone();
        assert_eq!(world.user(member.id()).await.as_ref(), Some(&member));
        let entry = EntryKey::user(member.tenant_id(), member.id());
        let before = world.cache.lookup(&entry.key, &entry.guard).await.unwrap();
        let mut renamed = member.clone();
        renamed
            .rename(Username::parse("never").unwrap(), at(1))
            .unwrap();
        let mut tx = world.uow.begin().await.unwrap();
        tx.users().save(&mut renamed).await.unwrap();
        drop(tx);
        assert_eq!(
            world.cache.lookup(&entry.key, &entry.guard).await.unwrap(),
            before
        );
        assert_eq!(world.user(member.id()).await, Some(member));
    })
    .await;
}

// ---- The stale-fill race ---------------------------------------------------------

/// Users read from the database that, on the first `get`, stop after the read until
/// told to go on: the window in which a writer commits behind a reader's back.
struct PausingUsers {
    inner: SqlUsers,
    pause: Mutex<Option<(oneshot::Sender<()>, oneshot::Receiver<()>)>>,
}

#[async_trait]
impl UserRepository for PausingUsers {
    async fn get(&self, tenant: TenantId, id: UserId) -> Result<Option<User>, RepositoryError> {
        let read = self.inner.get(tenant, id).await;
        let pause = self.pause.lock().unwrap().take();
        if let Some((has_read, go_on)) = pause {
            has_read.send(()).unwrap();
            go_on.await.unwrap();
        }
        read
    }

    async fn find_by_email(&self, email: &Email) -> Result<Option<User>, RepositoryError> {
        self.inner.find_by_email(email).await
    }

    async fn count_active_admins(&self, tenant: TenantId) -> Result<u64, RepositoryError> {
        self.inner.count_active_admins(tenant).await
    }

    async fn list(
        &self,
        tenant: TenantId,
        filter: &UserFilter,
        after: Option<UserId>,
        limit: u64,
    ) -> Result<Vec<User>, RepositoryError> {
        self.inner.list(tenant, filter, after, limit).await
    }
}

/// A reader misses, reads the member, and pauses; a writer renames the member and
/// commits (invalidating through `world.uow`); then the reader goes on and fills the
/// cache through `reader_cache`. The reader's answer and the member as saved.
async fn race_a_reader_against_a_writer(world: &World, reader_cache: CacheAside) -> (User, User) {
    let (has_read, reader_has_read) = oneshot::channel();
    let (go_on, reader_go_on) = oneshot::channel();
    let pausing = PausingUsers {
        inner: world.sql_users.clone(),
        pause: Mutex::new(Some((has_read, reader_go_on))),
    };
    let reader = CachedUsers::new(Arc::new(pausing), reader_cache);
    let member = world.member.clone();
    let reading = reader.get(member.tenant_id(), member.id());
    let writing = async {
        reader_has_read.await.unwrap();
        let mut renamed = member.clone();
        renamed
            .rename(Username::parse("renamed").unwrap(), at(1))
            .unwrap();
        let saved = world.save_user(&renamed).await;
        go_on.send(()).unwrap();
        saved
    };
    let (read, saved) = tokio::join!(reading, writing);
    (read.unwrap().unwrap(), saved)
}

#[tokio::test]
async fn a_reader_that_read_before_a_write_cannot_fill_the_cache_with_the_old_state() {
    on_every_backend_and_cache(|world| async move {
        let (read, saved) = race_a_reader_against_a_writer(&world, world.aside.clone()).await;
        assert_eq!(read, world.member, "the reader read before the write");
        assert_ne!(saved, world.member);
        assert_eq!(world.user(saved.id()).await, Some(saved.clone()));
        let entry = EntryKey::user(saved.tenant_id(), saved.id());
        let cached = world
            .cache
            .lookup(&entry.key, &entry.guard)
            .await
            .unwrap()
            .value;
        let cached = super::codec::unpack::<User>(&cached.unwrap()).unwrap();
        assert_eq!(cached, saved, "only the new state was cached");
    })
    .await;
}

/// A cache whose fills ignore the guard: cache-aside without the guards.
struct Unguarded(Arc<dyn Cache>);

#[async_trait]
impl Cache for Unguarded {
    async fn lookup(&self, key: &str, guard: &str) -> Result<Lookup, CacheError> {
        self.0.lookup(key, guard).await
    }

    async fn fill(&self, key: &str, value: &[u8], _: &str, _: u64) -> Result<bool, CacheError> {
        self.0.put(key, value).await.map(|()| true)
    }

    async fn put(&self, key: &str, value: &[u8]) -> Result<(), CacheError> {
        self.0.put(key, value).await
    }

    async fn invalidate(&self, guards: &[String], keys: &[String]) -> Result<(), CacheError> {
        self.0.invalidate(guards, keys).await
    }
}

#[tokio::test]
async fn without_the_guard_the_same_interleaving_leaves_the_old_state_cached() {
    on_every_backend_and_cache(|world| async move {
        let unguarded = Arc::new(Unguarded(Arc::clone(&world.cache)));
        let reader_cache = CacheAside::new(unguarded, CacheConfig::default());
        let (read, saved) = race_a_reader_against_a_writer(&world, reader_cache).await;
        assert_eq!(read, world.member);
        assert_eq!(
            world.user(saved.id()).await,
            Some(world.member.clone()),
            "the old state was put back after the invalidation"
        );
    })
    .await;
}

// ---- A cache that fails ------------------------------------------------------------

#[tokio::test]
async fn with_redis_down_every_read_is_served_from_the_database_and_every_write_commits() {
    testing::on_every_backend(|db| async move {
        let dead = RedisCache::new(testing::dead_redis(), "dead".to_owned(), TTL);
        let world = World::new(db, Arc::new(dead)).await;
        let member = world.member.clone();
        assert_eq!(world.user(member.id()).await.as_ref(), Some(&member));
        assert_eq!(
            world.user_by_email("member@example.com").await.as_ref(),
            Some(&member)
        );
        let task = world.add_task("Down").await;
        assert_eq!(world.task(task.id()).await.as_ref(), Some(&task));

        let mut moved = member.clone();
        moved
            .change_email(email("moved@example.com"), at(1))
            .unwrap();
        let moved = world.save_user(&moved).await;
        let mut started = task.clone();
        started.start(actor(&world.admin), at(1)).unwrap();
        let started = world.save_task(&started).await;

        assert_eq!(world.stored_user(member.id()).await.as_ref(), Some(&moved));
        assert_eq!(world.user(member.id()).await.as_ref(), Some(&moved));
        assert_eq!(
            world.user_by_email("moved@example.com").await.as_ref(),
            Some(&moved)
        );
        assert_eq!(world.user_by_email("member@example.com").await, None);
        assert_eq!(world.task(task.id()).await, Some(started));
    })
    .await;
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
    async fn lookup(&self, key: &str, guard: &str) -> Result<Lookup, CacheError> {
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

    async fn put(&self, key: &str, value: &[u8]) -> Result<(), CacheError> {
        self.check("put")?;
        self.inner.put(key, value).await
    }

    async fn invalidate(&self, guards: &[String], keys: &[String]) -> Result<(), CacheError> {
        self.check("invalidate")?;
        self.inner.invalidate(guards, keys).await
    }
}

/// What the flaky cache holds for the user, bypassing its switches.
async fn cached_user(flaky: &Flaky, user: &User) -> Option<User> {
    let entry = EntryKey::user(user.tenant_id(), user.id());
    let found = flaky.inner.lookup(&entry.key, &entry.guard).await.unwrap();
    found
        .value
        .map(|packed| super::codec::unpack(&packed).unwrap())
}

#[tokio::test]
async fn an_invalidation_that_failed_is_delivered_before_the_next_read_once_the_cache_is_back() {
    testing::on_every_backend(|db| async move {
        let flaky = Arc::new(Flaky::new());
        let world = World::new(db, Arc::clone(&flaky) as Arc<dyn Cache>).await;
        let member = world.member.clone();
        assert_eq!(world.user(member.id()).await.as_ref(), Some(&member));
        assert_eq!(cached_user(&flaky, &member).await.as_ref(), Some(&member));

        flaky.fail(&["lookup", "fill", "put", "invalidate"]);
        let mut renamed = member.clone();
        renamed
            .rename(Username::parse("renamed").unwrap(), at(1))
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
    })
    .await;
}

#[tokio::test]
async fn while_an_owed_invalidation_cannot_be_delivered_reads_bypass_the_cache() {
    testing::on_every_backend(|db| async move {
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
            .rename(Username::parse("renamed").unwrap(), at(1))
            .unwrap();
        let saved = world.save_user(&renamed).await;
        for _ in 0..2 {
            assert_eq!(world.user(member.id()).await.as_ref(), Some(&saved));
            assert_eq!(
                world.user_by_email("member@example.com").await.as_ref(),
                Some(&saved)
            );
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
    })
    .await;
}

#[tokio::test]
async fn a_commit_delivers_the_invalidations_owed_by_earlier_ones() {
    testing::on_every_backend(|db| async move {
        let flaky = Arc::new(Flaky::new());
        let world = World::new(db, Arc::clone(&flaky) as Arc<dyn Cache>).await;
        let member = world.member.clone();
        assert_eq!(world.user(member.id()).await.as_ref(), Some(&member));
        flaky.fail(&["invalidate"]);
        let mut renamed = member.clone();
        renamed
            .rename(Username::parse("renamed").unwrap(), at(1))
            .unwrap();
        world.save_user(&renamed).await;
        flaky.recover();
        world.add_task("Unrelated").await;
        assert_eq!(
            cached_user(&flaky, &member).await,
            None,
            "delivered by the commit"
        );
    })
    .await;
}

// ---- Under load --------------------------------------------------------------------

/// Saves a change to the task as the task use cases do, reading it in the transaction;
/// retries when another writer came first.
async fn keep_changing_task(world: &World, id: TaskId, change: impl Fn(&mut Task)) {
    loop {
        let mut tx = world.uow.begin().await.unwrap();
        let mut task = tx.tasks().get(world.tenant(), id).await.unwrap().unwrap();
        change(&mut task);
        match tx.tasks().save(&mut task).await {
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
        match World::save_user_with(&world.uow, &user).await {
            Ok(_) => return,
            Err(RepositoryError::Stale) => tokio::task::yield_now().await,
            Err(error) => panic!("saving a user: {error:?}"),
        }
    }
    panic!("the cached user stayed stale through 100 attempts");
}

#[tokio::test]
async fn after_concurrent_writers_and_readers_every_cached_read_equals_the_database() {
    const WRITERS: usize = 4;
    const ROUNDS: usize = 8;
    const READERS: usize = 4;
    let backend = Backend::preferred();
    for (name, cache) in caches() {
        eprintln!("-- on {backend} with the {name} cache");
        let world = World::new(backend.fresh_database().await, cache).await;
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
                        user.change_email(email(&address), at(1)).unwrap();
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
                    let user = world
                        .user(users[(reader + read) % users.len()])
                        .await
                        .unwrap();
                    // An email read may miss the user whose email just changed; that is
                    // fine, but what it finds must have that email.
                    if let Some(found) = world.user_by_email(user.email().as_str()).await {
                        assert_eq!(found.email(), user.email());
                    }
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
            let by_email = world.user_by_email(stored.email().as_str()).await;
            assert_eq!(by_email, Some(stored));
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
