//! The cached shape of users and tasks, and the keys they are kept under.
//!
//! Domain types know nothing of serde, so an aggregate is cached as the rows the
//! database holds for it, made and read back by the same mapping as the database's
//! (`persistence::mapping`): an entry that breaks a rule is an error (and the decorators
//! treat it as a miss), never an aggregate, and a rule lives in one place. A value is
//! one header byte, then JSON, zstd-compressed when it is large.

use anyhow::{Context, anyhow, bail};
use domain::{Email, Task, TaskId, TenantId, User, UserId};
use sea_orm::TryIntoModel;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::persistence::entity::{task_checklist_items, tasks, users};
use crate::persistence::{checklist_rows, task_from_rows, task_row, user_from_row, user_row};

/// The version of the cached shape, part of every key. Bump it whenever the `users`,
/// `tasks` or `task_checklist_items` rows or `CachedTask` change: a deploy then reads
/// and writes keys of its own and never decodes what an older one wrote; the old
/// entries expire with their TTL.
pub(super) const SCHEMA_VERSION: u32 = 2;

/// The header byte of a value stored as it is.
const PLAIN: u8 = 0;
/// The header byte of a zstd-compressed value.
const ZSTD: u8 = 1;
/// A fast level: values are small and read far more often than written.
const ZSTD_LEVEL: i32 = 3;

/// An entry and the guard that protects it from stale fills.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) struct EntryKey {
    pub key: String,
    pub guard: String,
}

impl EntryKey {
    fn of(tenant: TenantId, kind: &str, id: Uuid) -> Self {
        let key = format!("v{SCHEMA_VERSION}:t:{tenant}:{kind}:{id}");
        let guard = format!("{key}:gen");
        Self { key, guard }
    }

    pub fn user(tenant: TenantId, id: UserId) -> Self {
        Self::of(tenant, "user", id.as_uuid())
    }

    pub fn task(tenant: TenantId, id: TaskId) -> Self {
        Self::of(tenant, "task", id.as_uuid())
    }

    /// The index entry from an email to its user. Its guard is never bumped: the index
    /// is checked on use instead (see the module docs of `cache`).
    pub fn email(email: &Email) -> Self {
        let hash = Sha256::digest(email.as_str().as_bytes());
        let key = format!("v{SCHEMA_VERSION}:email:{hash:x}");
        let guard = format!("{key}:gen");
        Self { key, guard }
    }
}

/// An aggregate the decorators cache, with its cached shape.
pub(super) trait Cacheable: Sized + Send + Sync {
    /// The `entity` label of the cache metrics.
    const ENTITY: &'static str;

    fn to_json(&self) -> anyhow::Result<Vec<u8>>;

    /// # Errors
    /// When the JSON is not this shape, or a value breaks a domain rule.
    fn from_json(json: &[u8]) -> anyhow::Result<Self>;
}

/// `value` as stored: a header byte, then its JSON, compressed when longer than
/// `compress_above` bytes.
pub(super) fn pack<T: Cacheable>(value: &T, compress_above: usize) -> anyhow::Result<Vec<u8>> {
    let json = value.to_json().context("serialising a cached value")?;
    let (header, body) = if json.len() > compress_above {
        let compressed =
            zstd::bulk::compress(&json, ZSTD_LEVEL).context("compressing a cached value")?;
        (ZSTD, compressed)
    } else {
        (PLAIN, json)
    };
    let mut packed = Vec::with_capacity(body.len() + 1);
    packed.push(header);
    packed.extend_from_slice(&body);
    Ok(packed)
}

/// The value `pack` stored.
///
/// # Errors
/// When the header is unknown, the body does not decompress, or `T::from_json` fails.
pub(super) fn unpack<T: Cacheable>(packed: &[u8]) -> anyhow::Result<T> {
    let Some((&header, body)) = packed.split_first() else {
        bail!("the cached value is empty");
    };
    match header {
        PLAIN => T::from_json(body),
        ZSTD => {
            let json = zstd::stream::decode_all(body).context("decompressing a cached value")?;
            T::from_json(&json)
        }
        other => Err(anyhow!("the cached value has an unknown header {other}")),
    }
}

/// The value of an email's index entry: where its user was.
pub(super) fn pack_user_ref(tenant: TenantId, id: UserId) -> Vec<u8> {
    format!("{tenant}/{id}").into_bytes()
}

/// The tenant and user an email's index entry points at, if it is well-formed.
pub(super) fn unpack_user_ref(packed: &[u8]) -> Option<(TenantId, UserId)> {
    let (tenant, id) = std::str::from_utf8(packed).ok()?.split_once('/')?;
    Some((
        TenantId::from_uuid(Uuid::parse_str(tenant).ok()?),
        UserId::from_uuid(Uuid::parse_str(id).ok()?),
    ))
}

impl Cacheable for User {
    const ENTITY: &'static str = "user";

    fn to_json(&self) -> anyhow::Result<Vec<u8>> {
        let row = user_row(self).try_into_model().context("a user's row")?;
        Ok(serde_json::to_vec(&row)?)
    }

    fn from_json(json: &[u8]) -> anyhow::Result<Self> {
        let row: users::Model = serde_json::from_slice(json).context("a cached user")?;
        user_from_row(row)
    }
}

/// A task as cached: its row and its checklist's rows, in checklist order.
#[derive(Serialize, Deserialize)]
struct CachedTask {
    task: tasks::Model,
    checklist: Vec<task_checklist_items::Model>,
}

impl Cacheable for Task {
    const ENTITY: &'static str = "task";

    fn to_json(&self) -> anyhow::Result<Vec<u8>> {
        let cached = CachedTask {
            task: task_row(self).try_into_model().context("a task's row")?,
            checklist: checklist_rows(self),
        };
        Ok(serde_json::to_vec(&cached)?)
    }

    fn from_json(json: &[u8]) -> anyhow::Result<Self> {
        let cached: CachedTask = serde_json::from_slice(json).context("a cached task")?;
        task_from_rows(&cached.task, cached.checklist)
    }
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, NaiveDate, TimeZone, Utc};
    use domain::{
        Actor, ChecklistItemId, ChecklistText, NewTask, PasswordHash, Priority, Role,
        TaskDescription, TaskTitle, Username,
    };

    use super::*;

    fn at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap()
    }

    fn user() -> User {
        let id = UserId::from_uuid(Uuid::now_v7());
        let mut user = User::register(
            id,
            id,
            TenantId::from_uuid(Uuid::now_v7()),
            Email::parse("ada@example.com").unwrap(),
            Username::parse("ada").unwrap(),
            PasswordHash::new("$argon2id$hash".to_owned()),
            Role::Member,
            at(),
        );
        user.delete(
            UserId::from_uuid(Uuid::now_v7()),
            domain::ActiveAdmins(1),
            at(),
        )
        .unwrap();
        User::reconstitute(user.snapshot().clone())
    }

    /// A task with every optional field set, and `description` as its description.
    fn task(description: &str) -> Task {
        let actor = Actor {
            id: UserId::from_uuid(Uuid::now_v7()),
            role: Role::Admin,
        };
        let mut task = Task::create(
            TaskId::from_uuid(Uuid::now_v7()),
            TenantId::from_uuid(Uuid::now_v7()),
            actor,
            NewTask {
                title: TaskTitle::parse("Ship it").unwrap(),
                description: TaskDescription::parse(description).unwrap(),
                priority: Priority::Urgent,
                due_date: NaiveDate::from_ymd_opt(2026, 2, 1),
                assignee: Some(UserId::from_uuid(Uuid::now_v7())),
                checklist: ["first", "second"]
                    .map(|text| {
                        (
                            ChecklistItemId::from_uuid(Uuid::now_v7()),
                            ChecklistText::parse(text).unwrap(),
                        )
                    })
                    .into(),
            },
            at(),
        )
        .unwrap();
        let second = task.checklist()[1].id();
        task.update_checklist_item(actor, second, None, Some(true), at())
            .unwrap();
        task.start(actor, at()).unwrap();
        task.delete(actor, at()).unwrap();
        Task::reconstitute(task.snapshot().clone())
    }

    #[test]
    fn a_user_survives_the_trip_through_the_cache_format() {
        let user = user();
        let packed = pack(&user, 1024).unwrap();
        assert_eq!(packed[0], PLAIN);
        assert_eq!(unpack::<User>(&packed).unwrap(), user);
    }

    #[test]
    fn a_task_and_its_checklist_survive_the_trip_through_the_cache_format() {
        let task = task("All of it");
        assert_eq!(unpack::<Task>(&pack(&task, 1024).unwrap()).unwrap(), task);
    }

    #[test]
    fn a_value_above_the_threshold_is_compressed_and_reads_back_the_same() {
        let task = task(&"a long description ".repeat(200));
        let plain = pack(&task, usize::MAX).unwrap();
        let packed = pack(&task, 1024).unwrap();
        assert_eq!(plain[0], PLAIN);
        assert_eq!(packed[0], ZSTD);
        assert!(packed.len() < plain.len() / 4, "{} bytes", packed.len());
        assert_eq!(unpack::<Task>(&packed).unwrap(), task);
    }

    #[test]
    fn a_value_that_is_not_the_cached_shape_does_not_decode() {
        assert!(unpack::<User>(&[]).is_err());
        assert!(unpack::<User>(&[7, b'{', b'}']).is_err());
        assert!(unpack::<User>(&[ZSTD, 1, 2, 3]).is_err());
        let task = pack(&task("x"), 1024).unwrap();
        assert!(unpack::<User>(&task).is_err());
    }

    #[test]
    fn a_cached_value_that_breaks_a_rule_does_not_decode_and_the_error_names_no_value() {
        let json = user().to_json().unwrap();
        let json = String::from_utf8(json)
            .unwrap()
            .replace("\"member\"", "\"superuser\"");
        let mut packed = vec![PLAIN];
        packed.extend_from_slice(json.as_bytes());
        let message = format!("{:#}", unpack::<User>(&packed).unwrap_err());
        assert!(message.contains("role"), "{message}");
        assert!(!message.contains("superuser"), "{message}");
    }

    #[test]
    fn keys_carry_the_schema_version_and_the_tenant_and_emails_are_hashed() {
        let tenant = TenantId::from_uuid(Uuid::now_v7());
        let id = UserId::from_uuid(Uuid::now_v7());
        let entry = EntryKey::user(tenant, id);
        assert_eq!(entry.key, format!("v{SCHEMA_VERSION}:t:{tenant}:user:{id}"));
        assert_eq!(entry.guard, format!("{}:gen", entry.key));
        let task = TaskId::from_uuid(id.as_uuid());
        assert_ne!(EntryKey::task(tenant, task).key, entry.key);

        let email = EntryKey::email(&Email::parse("Ada@Example.com").unwrap());
        assert!(!email.key.contains("ada"), "{}", email.key);
        assert_eq!(
            email,
            EntryKey::email(&Email::parse("ada@example.com").unwrap())
        );
        let hex = email.key.rsplit(':').next().unwrap();
        assert_eq!(hex.len(), 64);
    }

    #[test]
    fn an_email_index_value_points_back_at_the_tenant_and_user() {
        let tenant = TenantId::from_uuid(Uuid::now_v7());
        let id = UserId::from_uuid(Uuid::now_v7());
        assert_eq!(
            unpack_user_ref(&pack_user_ref(tenant, id)),
            Some((tenant, id))
        );
        assert_eq!(unpack_user_ref(b"not/ids"), None);
        assert_eq!(unpack_user_ref(b""), None);
    }
}
