//! The sorts a task list offers, and the opaque cursor that continues one.
//!
//! A cursor is base64url (unpadded) of `<sort>|<key>|<id>`: the sort it was made for,
//! then the sort key and id of the page's last task. The sort travels along so that a
//! cursor cannot continue another sort, whose pages it would skip or repeat.

use application::tasks::{TaskCursor, TaskOrder, TaskSort};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, SecondsFormat, Utc};
use domain::{Priority, TaskId};
use uuid::Uuid;

/// Every sort a list may ask for, by its name in `sort`; `-` means descending.
pub(super) const SORTS: [(&str, TaskSort); 6] = [
    ("created_at", sort(TaskOrder::CreatedAt, false)),
    ("-created_at", sort(TaskOrder::CreatedAt, true)),
    ("due_date", sort(TaskOrder::DueDate, false)),
    ("-due_date", sort(TaskOrder::DueDate, true)),
    ("priority", sort(TaskOrder::Priority, false)),
    ("-priority", sort(TaskOrder::Priority, true)),
];

/// Newest first.
pub(super) const DEFAULT_SORT: &str = "-created_at";

const NOT_OURS: &str = "is not a cursor this API issued";

const fn sort(order: TaskOrder, descending: bool) -> TaskSort {
    TaskSort { order, descending }
}

/// # Errors
/// When `name` is none of `SORTS`.
pub(super) fn parse_sort(name: &str) -> Result<TaskSort, &'static str> {
    SORTS
        .iter()
        .find(|(known, _)| *known == name)
        .map(|(_, sort)| *sort)
        .ok_or("must be one of: created_at, -created_at, due_date, -due_date, priority, -priority")
}

fn sort_name(sort: TaskSort) -> &'static str {
    SORTS
        .iter()
        .find(|(_, known)| *known == sort)
        .map_or(DEFAULT_SORT, |(name, _)| name)
}

/// The cursor of the page after `last`, in `sort`.
pub(super) fn encode(sort: TaskSort, last: TaskCursor) -> String {
    let (key, id) = match last {
        TaskCursor::CreatedAt(at, id) => (at.to_rfc3339_opts(SecondsFormat::Nanos, true), id),
        TaskCursor::DueDate(due, id) => (due.map(|day| day.to_string()).unwrap_or_default(), id),
        TaskCursor::Priority(priority, id) => (priority.as_str().to_owned(), id),
    };
    let text = format!("{}|{key}|{}", sort_name(sort), id.as_uuid().simple());
    URL_SAFE_NO_PAD.encode(text)
}

/// # Errors
/// When `cursor` is not one `encode` made, or was made for another sort.
pub(super) fn decode(sort: TaskSort, cursor: &str) -> Result<TaskCursor, &'static str> {
    let text = URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or(NOT_OURS)?;
    let mut parts = text.split('|');
    let (Some(made_for), Some(key), Some(id), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(NOT_OURS);
    };
    if parse_sort(made_for).map_err(|_| NOT_OURS)? != sort {
        return Err("was issued for another sort; start again without a cursor");
    }
    let id = (id.len() == 32)
        .then(|| Uuid::try_parse(id).ok())
        .flatten()
        .map(TaskId::from_uuid)
        .ok_or(NOT_OURS)?;
    let cursor = match sort.order {
        TaskOrder::CreatedAt => DateTime::parse_from_rfc3339(key)
            .ok()
            .map(|at| TaskCursor::CreatedAt(at.with_timezone(&Utc), id)),
        TaskOrder::DueDate if key.is_empty() => Some(TaskCursor::DueDate(None, id)),
        TaskOrder::DueDate => crate::values::parse_date(key)
            .ok()
            .map(|day| TaskCursor::DueDate(Some(day), id)),
        TaskOrder::Priority => Priority::parse(key)
            .ok()
            .map(|priority| TaskCursor::Priority(priority, id)),
    };
    cursor.ok_or(NOT_OURS)
}

#[cfg(test)]
mod tests {
    use chrono::{NaiveDate, TimeZone};

    use super::*;

    fn id() -> TaskId {
        TaskId::from_uuid(Uuid::now_v7())
    }

    fn cursor_for(order: TaskOrder, id: TaskId) -> Vec<TaskCursor> {
        match order {
            TaskOrder::CreatedAt => vec![TaskCursor::CreatedAt(
                Utc.timestamp_opt(1_750_000_000, 123_456_789).unwrap(),
                id,
            )],
            TaskOrder::DueDate => vec![
                TaskCursor::DueDate(NaiveDate::from_ymd_opt(2025, 6, 30), id),
                TaskCursor::DueDate(None, id),
            ],
            TaskOrder::Priority => vec![TaskCursor::Priority(Priority::Urgent, id)],
        }
    }

    #[test]
    fn every_sort_is_parsed_from_its_name_and_the_default_is_newest_first() {
        for (name, sort) in SORTS {
            assert_eq!(parse_sort(name), Ok(sort));
            assert_eq!(sort_name(sort), name);
        }
        let newest_first = parse_sort(DEFAULT_SORT).unwrap();
        assert_eq!(newest_first.order, TaskOrder::CreatedAt);
        assert!(newest_first.descending);
        assert!(parse_sort("title").is_err());
    }

    #[test]
    fn a_cursor_decodes_to_what_it_was_encoded_from_in_every_sort() {
        for (name, sort) in SORTS {
            for last in cursor_for(sort.order, id()) {
                let cursor = encode(sort, last);
                assert!(
                    cursor
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
                    "{cursor} is not URL-safe"
                );
                assert_eq!(decode(sort, &cursor), Ok(last), "{name}");
                assert!(cursor.len() <= crate::extract::MAX_CURSOR_LEN, "{cursor}");
            }
        }
    }

    #[test]
    fn a_cursor_made_for_another_sort_is_refused() {
        let newest_first = parse_sort("-created_at").unwrap();
        let last = cursor_for(TaskOrder::CreatedAt, id())[0];
        let cursor = encode(newest_first, last);
        for other in ["created_at", "due_date", "-priority"] {
            let error = decode(parse_sort(other).unwrap(), &cursor).unwrap_err();
            assert!(error.contains("another sort"), "{other}: {error}");
        }
    }

    #[test]
    fn a_cursor_the_api_did_not_issue_is_refused() {
        let sort = parse_sort("due_date").unwrap();
        let forged = |text: &str| URL_SAFE_NO_PAD.encode(text);
        let id = id().as_uuid().simple().to_string();
        for cursor in [
            String::new(),
            "not base64!".to_owned(),
            forged("due_date"),
            forged(&format!("due_date|2025-02-30|{id}")),
            forged(&format!("due_date|2025-06-30|{id}|extra")),
            forged("due_date|2025-06-30|42"),
            forged(&format!("newest|2025-06-30|{id}")),
        ] {
            assert_eq!(decode(sort, &cursor), Err(NOT_OURS), "{cursor}");
        }
    }
}
