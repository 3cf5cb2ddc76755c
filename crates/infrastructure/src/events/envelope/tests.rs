use std::path::PathBuf;

use chrono::{NaiveDate, TimeZone, Utc};
use domain::{
    EventMeta, Priority, Role, TaskEvent, TaskFact, TaskId, TenantId, UserEvent, UserFact, UserId,
};
use serde_json::{Value, json};

use super::*;

fn id(n: u128) -> Uuid {
    Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0000 + n)
}

fn meta() -> EventMeta {
    EventMeta {
        tenant_id: TenantId::from_uuid(id(1)),
        actor: UserId::from_uuid(id(2)),
        occurred_at: Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap(),
    }
}

fn task(fact: TaskFact) -> DomainEvent {
    DomainEvent::from(TaskEvent {
        meta: meta(),
        task_id: TaskId::from_uuid(id(3)),
        fact,
    })
}

fn user(fact: UserFact) -> DomainEvent {
    DomainEvent::from(UserEvent {
        meta: meta(),
        user_id: UserId::from_uuid(id(4)),
        fact,
    })
}

/// One event of every kind, with every optional fact set where it has one.
fn one_of_each() -> Vec<DomainEvent> {
    let mut events = task_examples();
    events.extend(user_examples());
    events
}

fn task_examples() -> Vec<DomainEvent> {
    let someone = Some(UserId::from_uuid(id(5)));
    let due = NaiveDate::from_ymd_opt(2026, 2, 28);
    vec![
        task(TaskFact::Created {
            title: "Ship \"it\"".to_owned(),
            creator: UserId::from_uuid(id(2)),
            assignee: someone,
            priority: Priority::High,
            due_date: due,
        }),
        task(TaskFact::Edited {
            title: "Ship it".to_owned(),
            priority: Priority::Urgent,
            due_date: None,
        }),
        task(TaskFact::Assigned {
            assignee: None,
            previous: someone,
        }),
        task(TaskFact::Started),
        task(TaskFact::Completed),
        task(TaskFact::Reopened),
        task(TaskFact::Deleted),
        task(TaskFact::Restored),
    ]
}

fn user_examples() -> Vec<DomainEvent> {
    vec![
        user(UserFact::Registered { role: Role::Admin }),
        user(UserFact::RoleChanged {
            role: Role::Member,
            previous: Role::Admin,
        }),
        user(UserFact::Renamed {
            username: "grace".to_owned(),
        }),
        user(UserFact::EmailChanged),
        user(UserFact::Activated),
        user(UserFact::Deactivated),
        user(UserFact::Deleted),
        user(UserFact::Restored),
        user(UserFact::PasswordChanged),
    ]
}

/// Fails to compile when an event kind is added without an example above: add one, then
/// its golden file (`KEYSTONE_BLESS_GOLDEN=1 cargo test golden` writes the missing
/// ones; review them before committing).
#[allow(dead_code)]
fn every_kind_has_an_example(event: &DomainEvent) {
    match event {
        DomainEvent::Task(TaskEvent { fact, .. }) => match fact {
            TaskFact::Created { .. }
            | TaskFact::Edited { .. }
            | TaskFact::Assigned { .. }
            | TaskFact::Started
            | TaskFact::Completed
            | TaskFact::Reopened
            | TaskFact::Deleted
            | TaskFact::Restored => {}
        },
        DomainEvent::User(UserEvent { fact, .. }) => match fact {
            UserFact::Registered { .. }
            | UserFact::RoleChanged { .. }
            | UserFact::Renamed { .. }
            | UserFact::EmailChanged
            | UserFact::PasswordChanged
            | UserFact::Activated
            | UserFact::Deactivated
            | UserFact::Deleted
            | UserFact::Restored => {}
        },
    }
}

fn golden_folder() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden/events")
}

#[test]
fn every_kind_of_event_is_pinned_by_its_golden_file() {
    let bless = std::env::var_os("KEYSTONE_BLESS_GOLDEN").is_some();
    let mut names = Vec::new();
    for (n, event) in one_of_each().iter().enumerate() {
        let encoded = encode(id(100 + n as u128), 3, event);
        let file = golden_folder().join(format!("{}.json", event.name()));
        // Blessing writes only missing files: a golden file that no longer matches is a
        // break of stored or in-flight events, never rewritten by accident.
        if bless && !file.exists() {
            let value: Value = serde_json::from_str(&encoded).unwrap();
            let pretty = serde_json::to_string_pretty(&value).unwrap();
            std::fs::write(&file, pretty + "\n").unwrap();
        }
        let golden = std::fs::read_to_string(&file)
            .unwrap_or_else(|error| panic!("{}: {error}", file.display()));
        let golden: Value = serde_json::from_str(&golden).unwrap();
        let written: Value = serde_json::from_str(&encoded).unwrap();
        assert_eq!(
            written,
            golden,
            "{} no longer writes its golden file",
            event.name()
        );
        let read = decode(&golden.to_string()).unwrap();
        assert_eq!(
            &read.event,
            event,
            "{} no longer reads its golden file",
            event.name()
        );
        assert_eq!(read.aggregate_version, 3);
        names.push(format!("{}.json", event.name()));
    }
    let mut files: Vec<String> = std::fs::read_dir(golden_folder())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    names.sort();
    assert_eq!(
        files, names,
        "a golden file without an event kind, or the reverse"
    );
}

#[test]
fn a_golden_file_reads_as_the_json_the_docs_describe() {
    let file = golden_folder().join("task.assigned.json");
    let golden: Value = serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
    assert_eq!(golden["schema_version"], SCHEMA_VERSION);
    assert_eq!(golden["type"], "task.assigned");
    assert_eq!(golden["event"]["task"]["fact"]["type"], "assigned");
    assert_eq!(golden["event"]["task"]["fact"]["assignee"], Value::Null);
    assert_eq!(
        golden["event"]["task"]["meta"]["occurred_at"],
        "2026-01-01T12:00:00Z"
    );
}

#[test]
fn an_event_grown_by_facts_this_version_does_not_know_still_reads() {
    let mut json: Value =
        serde_json::from_str(&encode(id(7), 1, &task(TaskFact::Started))).unwrap();
    json["event"]["task"]["fact"]["reason"] = json!("a newer version says why");
    json["routed_by"] = json!("a newer relay");
    let read = decode(&json.to_string()).unwrap();
    assert_eq!(read.event, task(TaskFact::Started));
}

#[test]
fn a_message_of_another_schema_or_that_contradicts_itself_is_refused() {
    assert!(decode("not json").is_err());
    assert!(decode("{}").is_err());
    let json: Value = serde_json::from_str(&encode(id(7), 1, &task(TaskFact::Started))).unwrap();
    let mut newer = json.clone();
    newer["schema_version"] = json!(2);
    assert!(decode(&newer.to_string()).is_err());
    let mut lying = json.clone();
    lying["type"] = json!("task.completed");
    assert!(decode(&lying.to_string()).is_err());
    let mut unknown = json;
    unknown["event"]["task"]["fact"]["type"] = json!("archived");
    assert!(decode(&unknown.to_string()).is_err());
}
