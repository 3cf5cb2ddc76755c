use chrono::TimeZone;
use proptest::prelude::*;

use super::*;
use crate::event::AggregateEvent;

fn at(minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 9, minute, 0).unwrap()
}

fn new_id() -> uuid::Uuid {
    uuid::Uuid::now_v7()
}

fn member() -> Actor {
    Actor {
        id: UserId::from_uuid(new_id()),
        role: Role::Member,
    }
}

fn admin() -> Actor {
    Actor {
        id: UserId::from_uuid(new_id()),
        role: Role::Admin,
    }
}

fn item(text: &str) -> (ChecklistItemId, ChecklistText) {
    (
        ChecklistItemId::from_uuid(new_id()),
        ChecklistText::parse(text).unwrap(),
    )
}

fn task_by(creator: Actor, checklist: usize) -> Task {
    Task::create(
        TaskId::from_uuid(new_id()),
        TenantId::from_uuid(new_id()),
        creator,
        NewTask {
            title: TaskTitle::parse("Write the release notes").unwrap(),
            description: TaskDescription::default(),
            priority: Priority::default(),
            due_date: None,
            assignee: None,
            checklist: (0..checklist).map(|n| item(&format!("step {n}"))).collect(),
        },
        at(0),
    )
    .unwrap()
}

#[test]
fn a_new_task_is_todo_and_records_task_created() {
    let creator = member();
    let mut task = task_by(creator, 2);
    assert_eq!(task.status(), TaskStatus::Todo);
    assert_eq!(task.creator(), creator.id);
    assert_eq!(task.checklist().len(), 2);
    let events = task.take_events();
    assert!(matches!(
        events.as_slice(),
        [TaskEvent {
            fact: TaskFact::Created { .. },
            ..
        }]
    ));
    assert!(task.events().is_empty(), "taking events leaves none behind");
}

#[test]
fn a_task_with_51_checklist_items_cannot_be_created() {
    let result = Task::create(
        TaskId::from_uuid(new_id()),
        TenantId::from_uuid(new_id()),
        member(),
        NewTask {
            title: TaskTitle::parse("Too much").unwrap(),
            description: TaskDescription::default(),
            priority: Priority::Low,
            due_date: None,
            assignee: None,
            checklist: (0..51).map(|n| item(&format!("{n}"))).collect(),
        },
        at(0),
    );
    assert_eq!(result.unwrap_err(), TaskError::ChecklistFull);
}

#[test]
fn the_happy_path_goes_todo_in_progress_done_and_back_to_todo() {
    let creator = member();
    let mut task = task_by(creator, 0);
    task.start(creator, at(1)).unwrap();
    assert_eq!(task.status(), TaskStatus::InProgress);
    task.complete(creator, at(2)).unwrap();
    assert_eq!(task.status(), TaskStatus::Done);
    assert_eq!(task.snapshot().completed_at, Some(at(2)));
    task.reopen(creator, at(3)).unwrap();
    assert_eq!(task.status(), TaskStatus::Todo);
    assert_eq!(task.snapshot().completed_at, None);
    let names: Vec<&str> = task.events().iter().map(AggregateEvent::name).collect();
    assert_eq!(
        names,
        [
            "task.created",
            "task.started",
            "task.completed",
            "task.reopened"
        ]
    );
}

#[test]
fn transitions_out_of_order_are_invalid() {
    let creator = member();
    let mut task = task_by(creator, 0);
    assert_eq!(
        task.complete(creator, at(1)),
        Err(TaskError::InvalidTransition {
            from: TaskStatus::Todo,
            to: TaskStatus::Done
        })
    );
    assert_eq!(
        task.reopen(creator, at(1)),
        Err(TaskError::InvalidTransition {
            from: TaskStatus::Todo,
            to: TaskStatus::Todo
        })
    );
    task.start(creator, at(1)).unwrap();
    assert!(matches!(
        task.start(creator, at(2)),
        Err(TaskError::InvalidTransition { .. })
    ));
}

#[test]
fn completing_a_task_with_open_checklist_items_is_rejected() {
    let creator = member();
    let mut task = task_by(creator, 2);
    task.start(creator, at(1)).unwrap();
    assert_eq!(
        task.complete(creator, at(2)),
        Err(TaskError::ChecklistIncomplete)
    );
    let ids: Vec<ChecklistItemId> = task.checklist().iter().map(ChecklistItem::id).collect();
    for id in ids {
        task.update_checklist_item(creator, id, None, Some(true), at(3))
            .unwrap();
    }
    task.complete(creator, at(4)).unwrap();
    assert_eq!(task.status(), TaskStatus::Done);
}

#[test]
fn a_done_task_cannot_be_edited_reassigned_or_have_its_checklist_changed() {
    let creator = member();
    let mut task = task_by(creator, 1);
    let item_id = task.checklist()[0].id();
    task.update_checklist_item(creator, item_id, None, Some(true), at(1))
        .unwrap();
    task.start(creator, at(1)).unwrap();
    task.complete(creator, at(2)).unwrap();
    let edit = TaskEdit {
        priority: Some(Priority::Urgent),
        ..TaskEdit::default()
    };
    assert_eq!(
        task.edit(creator, edit, at(3)),
        Err(TaskError::DoneIsReadOnly)
    );
    assert_eq!(
        task.assign(creator, Some(creator.id), at(3)),
        Err(TaskError::DoneIsReadOnly)
    );
    let (new_item, text) = item("one more");
    assert_eq!(
        task.add_checklist_item(creator, new_item, text, at(3)),
        Err(TaskError::DoneIsReadOnly)
    );
    assert_eq!(
        task.update_checklist_item(creator, item_id, None, Some(false), at(3)),
        Err(TaskError::DoneIsReadOnly)
    );
    assert_eq!(
        task.remove_checklist_item(creator, item_id, at(3)),
        Err(TaskError::DoneIsReadOnly)
    );
    task.reopen(creator, at(4)).unwrap();
    task.remove_checklist_item(creator, item_id, at(5)).unwrap();
}

#[test]
fn members_act_only_on_tasks_they_created_or_are_assigned_to() {
    let creator = member();
    let stranger = member();
    let assignee = member();
    let mut task = task_by(creator, 0);
    assert_eq!(task.start(stranger, at(1)), Err(TaskError::NotAllowed));
    assert_eq!(task.delete(stranger, at(1)), Err(TaskError::NotAllowed));
    task.assign(creator, Some(assignee.id), at(1)).unwrap();
    task.start(assignee, at(2)).unwrap();
    assert!(task.may_be_changed_by(admin()));
    assert!(!task.may_be_changed_by(stranger));
}

#[test]
fn assigning_records_the_previous_and_new_assignee_once() {
    let creator = member();
    let assignee = UserId::from_uuid(new_id());
    let mut task = task_by(creator, 0);
    task.take_events();
    task.assign(creator, Some(assignee), at(1)).unwrap();
    task.assign(creator, Some(assignee), at(2)).unwrap();
    task.assign(creator, None, at(3)).unwrap();
    let events = task.take_events();
    assert_eq!(
        events.len(),
        2,
        "re-assigning the same user records nothing"
    );
    assert!(matches!(
        events[1].fact,
        TaskFact::Assigned { assignee: None, previous: Some(p) } if p == assignee
    ));
}

#[test]
fn an_edit_that_changes_nothing_records_nothing() {
    let creator = member();
    let mut task = task_by(creator, 0);
    task.take_events();
    let same = TaskEdit {
        priority: Some(Priority::Medium),
        ..TaskEdit::default()
    };
    task.edit(creator, same, at(1)).unwrap();
    assert!(task.events().is_empty());
    assert_eq!(task.snapshot().updated_at, at(0));
    let clear_due = TaskEdit {
        due_date: Some(Some(NaiveDate::from_ymd_opt(2026, 4, 1).unwrap())),
        ..TaskEdit::default()
    };
    task.edit(creator, clear_due, at(2)).unwrap();
    assert_eq!(task.events().len(), 1);
}

#[test]
fn the_checklist_holds_at_most_50_items() {
    let creator = member();
    let mut task = task_by(creator, 49);
    let (id, text) = item("fiftieth");
    task.add_checklist_item(creator, id, text, at(1)).unwrap();
    let (id, text) = item("fifty-first");
    assert_eq!(
        task.add_checklist_item(creator, id, text, at(2)),
        Err(TaskError::ChecklistFull)
    );
}

#[test]
fn an_unknown_checklist_item_is_reported() {
    let creator = member();
    let mut task = task_by(creator, 1);
    let missing = ChecklistItemId::from_uuid(new_id());
    assert_eq!(
        task.update_checklist_item(creator, missing, None, Some(true), at(1)),
        Err(TaskError::ChecklistItemNotFound)
    );
    assert_eq!(
        task.remove_checklist_item(creator, missing, at(1)),
        Err(TaskError::ChecklistItemNotFound)
    );
}

#[test]
fn a_deleted_task_refuses_changes_and_only_an_admin_restores_it() {
    let creator = member();
    let mut task = task_by(creator, 0);
    task.delete(creator, at(1)).unwrap();
    assert!(task.is_deleted());
    assert_eq!(task.start(creator, at(2)), Err(TaskError::Deleted));
    assert_eq!(task.delete(creator, at(2)), Err(TaskError::Deleted));
    assert_eq!(task.restore(creator, at(2)), Err(TaskError::NotAllowed));
    task.restore(admin(), at(3)).unwrap();
    assert!(!task.is_deleted());
    assert_eq!(task.restore(admin(), at(4)), Err(TaskError::NotDeleted));
}

/// What a client may try on a task, for the property tests.
#[derive(Debug, Clone)]
enum Action {
    Start,
    Complete,
    Reopen,
    AddItem,
    ToggleItem(usize),
    RemoveItem(usize),
    Edit,
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        Just(Action::Start),
        Just(Action::Complete),
        Just(Action::Reopen),
        Just(Action::AddItem),
        (0..60usize).prop_map(Action::ToggleItem),
        (0..60usize).prop_map(Action::RemoveItem),
        Just(Action::Edit),
    ]
}

fn apply(task: &mut Task, actor: Actor, action: &Action) -> Result<(), TaskError> {
    let nth = |task: &Task, n: usize| {
        let list = task.checklist();
        (!list.is_empty()).then(|| list[n % list.len()].id())
    };
    match action {
        Action::Start => task.start(actor, at(1)),
        Action::Complete => task.complete(actor, at(1)),
        Action::Reopen => task.reopen(actor, at(1)),
        Action::AddItem => {
            let (id, text) = item("added");
            task.add_checklist_item(actor, id, text, at(1))
        }
        Action::ToggleItem(n) => match nth(task, *n) {
            Some(id) => {
                let done = !task.checklist().iter().any(|i| i.id() == id && i.is_done());
                task.update_checklist_item(actor, id, None, Some(done), at(1))
            }
            None => Ok(()),
        },
        Action::RemoveItem(n) => match nth(task, *n) {
            Some(id) => task.remove_checklist_item(actor, id, at(1)),
            None => Ok(()),
        },
        Action::Edit => {
            let edit = TaskEdit {
                priority: Some(Priority::High),
                ..TaskEdit::default()
            };
            task.edit(actor, edit, at(1))
        }
    }
}

proptest! {
    /// Whatever a client tries, in any order: completed_at is set exactly when the task
    /// is done, a done task has a finished checklist, the checklist never exceeds 50,
    /// and a refused action changes nothing.
    #[test]
    fn no_sequence_of_actions_breaks_the_task_invariants(
        initial in 0..=50usize,
        actions in proptest::collection::vec(action(), 1..80),
    ) {
        let creator = member();
        let mut task = task_by(creator, initial);
        for action in &actions {
            let before = task.snapshot().clone();
            let events_before = task.events().len();
            if apply(&mut task, creator, action).is_err() {
                prop_assert_eq!(task.snapshot(), &before);
                prop_assert_eq!(task.events().len(), events_before);
            }
            let state = task.snapshot();
            prop_assert_eq!(state.completed_at.is_some(), state.status == TaskStatus::Done);
            if state.status == TaskStatus::Done {
                prop_assert!(state.checklist.iter().all(ChecklistItem::is_done));
            }
            prop_assert!(state.checklist.len() <= Task::MAX_CHECKLIST_ITEMS);
        }
    }
}
