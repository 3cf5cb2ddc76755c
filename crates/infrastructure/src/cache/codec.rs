//! The cached shape of aggregates, and the keys they are kept under.
//!
//! Aggregates do not serialise themselves (only their events and ids do), so an
//! aggregate is cached as the rows the database holds for it, made and read back by the same mapping as the database's
//! (`persistence::store::Persisted`): an entry that breaks a rule is an error (and the
//! decorator treats it as a miss), never an aggregate, and a rule lives in one place.
//! A value is one header byte, then JSON, zstd-compressed when it is large.

use anyhow::{Context, anyhow, bail};
use domain::{Aggregate, AggregateId, TenantId};

use crate::persistence::Persisted;

/// The version of the cached shape, part of every key. Bump it whenever the rows of a
/// cached aggregate change: a deploy then reads and writes keys of its own and never
/// decodes what an older one wrote; the old entries expire with their TTL.
pub(super) const SCHEMA_VERSION: u32 = 3;

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
    /// The entry of the aggregate `id` of type `A` in `tenant`.
    pub fn of<A: Aggregate>(tenant: TenantId, id: A::Id) -> Self {
        let key = format!("v{SCHEMA_VERSION}:t:{tenant}:{}:{}", A::NAME, id.as_uuid());
        let guard = format!("{key}:gen");
        Self { key, guard }
    }
}

/// `aggregate` as stored: a header byte, then the JSON of its rows, compressed when
/// longer than `compress_above` bytes.
pub(super) fn pack<A: Persisted>(aggregate: &A, compress_above: usize) -> anyhow::Result<Vec<u8>> {
    let json = serde_json::to_vec(&aggregate.to_rows())
        .with_context(|| format!("serialising a cached {}", A::NAME))?;
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

/// The aggregate `pack` stored.
///
/// # Errors
/// When the header is unknown, the body does not decompress or is not the rows of an
/// `A`, or the rows break a rule of the domain.
pub(super) fn unpack<A: Persisted>(packed: &[u8]) -> anyhow::Result<A> {
    let Some((&header, body)) = packed.split_first() else {
        bail!("the cached value is empty");
    };
    let json = match header {
        PLAIN => std::borrow::Cow::Borrowed(body),
        ZSTD => std::borrow::Cow::Owned(
            zstd::stream::decode_all(body).context("decompressing a cached value")?,
        ),
        other => return Err(anyhow!("the cached value has an unknown header {other}")),
    };
    let (row, children) = serde_json::from_slice(&json)
        .with_context(|| format!("a cached {} is not its rows", A::NAME))?;
    A::from_rows(row, children)
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, NaiveDate, TimeZone, Utc};
    use domain::{
        Actor, ChecklistItemId, ChecklistText, Email, NewTask, PasswordHash, Priority, Role, Task,
        TaskDescription, TaskId, TaskTitle, User, UserId, Username,
    };
    use uuid::Uuid;

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
        let json = serde_json::to_vec(&user().to_rows()).unwrap();
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
    fn keys_carry_the_schema_version_the_tenant_and_the_aggregate() {
        let tenant = TenantId::from_uuid(Uuid::now_v7());
        let id = UserId::from_uuid(Uuid::now_v7());
        let entry = EntryKey::of::<User>(tenant, id);
        assert_eq!(entry.key, format!("v{SCHEMA_VERSION}:t:{tenant}:user:{id}"));
        assert_eq!(entry.guard, format!("{}:gen", entry.key));
        let task = TaskId::from_uuid(id.as_uuid());
        assert_ne!(EntryKey::of::<Task>(tenant, task).key, entry.key);
    }
}
