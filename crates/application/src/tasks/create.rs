use std::sync::Arc;

use chrono::NaiveDate;
use domain::{
    ChecklistItemId, ChecklistText, NewTask, Priority, Task, TaskDescription, TaskId, TaskTitle,
    UserId,
};

use crate::command;
use crate::idempotency::{Idempotent, Outcome};
use crate::ports::{Clock, IdGenerator, IdempotencyKeys, UnitOfWork};
use crate::{Error, Principal};

pub struct CreateTaskCommand {
    pub title: TaskTitle,
    pub description: TaskDescription,
    pub priority: Priority,
    pub due_date: Option<NaiveDate>,
    pub assignee: Option<UserId>,
    pub checklist: Vec<ChecklistText>,
}

/// Any user of a tenant creates a task there, at most once per idempotency key.
pub struct CreateTask {
    pub uow: Arc<dyn UnitOfWork>,
    pub keys: Arc<dyn IdempotencyKeys>,
    pub clock: Arc<dyn Clock>,
    pub ids: Arc<dyn IdGenerator>,
}

impl CreateTask {
    /// # Errors
    /// `AssigneeInvalid` when the assignee is not an active user of the tenant;
    /// `Task(ChecklistFull)`; `IdempotencyInProgress` / `IdempotencyKeyReused`.
    #[tracing::instrument(skip_all)]
    pub async fn execute(
        &self,
        principal: &Principal,
        command: CreateTaskCommand,
        idempotent: Option<&Idempotent<'_, Task>>,
    ) -> Result<Outcome<Task>, Error> {
        let now = self.clock.now();
        let ids = self.ids.as_ref();
        command::create(
            self.uow.as_ref(),
            self.keys.as_ref(),
            now,
            idempotent,
            async |tx| {
                if let Some(assignee) = command.assignee {
                    super::ensure_assignable(tx, principal.tenant_id, assignee).await?;
                }
                let new = NewTask {
                    title: command.title,
                    description: command.description,
                    priority: command.priority,
                    due_date: command.due_date,
                    assignee: command.assignee,
                    checklist: command
                        .checklist
                        .into_iter()
                        .map(|text| (ChecklistItemId::from_uuid(ids.new_id()), text))
                        .collect(),
                };
                let id = TaskId::from_uuid(ids.new_id());
                Ok(Task::create(
                    id,
                    principal.tenant_id,
                    principal.actor(),
                    new,
                    now,
                )?)
            },
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use domain::Aggregate;

    use super::*;
    use crate::ports::{IdempotencyKey, IdempotencyKeys, RecordedResponse};
    use crate::testing::Fakes;

    fn command(title: &str, assignee: Option<UserId>) -> CreateTaskCommand {
        CreateTaskCommand {
            title: TaskTitle::parse(title).unwrap(),
            description: TaskDescription::default(),
            priority: Priority::High,
            due_date: None,
            assignee,
            checklist: vec![ChecklistText::parse("first step").unwrap()],
        }
    }

    fn respond(task: &Task) -> RecordedResponse {
        RecordedResponse {
            status: 201,
            location: None,
            body: task.id().to_string().into_bytes(),
        }
    }

    fn key(principal: &Principal, fingerprint: &str) -> IdempotencyKey {
        IdempotencyKey {
            tenant: principal.tenant_id,
            key: "retry-me".to_owned(),
            fingerprint: fingerprint.to_owned(),
        }
    }

    #[tokio::test]
    async fn a_created_task_and_its_event_are_committed_together() {
        let fakes = Fakes::new();
        let admin = fakes.seed_admin("a@example.com").await;
        let member = fakes.seed_member(&admin, "m@example.com").await;
        let principal = Fakes::principal(&member);
        let task = fakes
            .tasks()
            .create
            .execute(&principal, command("Plan", Some(admin.id())), None)
            .await
            .unwrap()
            .created();
        assert_eq!(task.creator(), member.id());
        assert_eq!(task.assignee(), Some(admin.id()));
        assert!(task.events().is_empty(), "the events went to the outbox");
        assert_eq!(fakes.db.all::<Task>(), std::slice::from_ref(&task));
        assert_eq!(
            fakes.db.outbox_of(task.id().as_uuid()),
            [("task.created", 0)]
        );
    }

    #[tokio::test]
    async fn when_the_commit_fails_neither_the_task_nor_its_event_exists() {
        let fakes = Fakes::new();
        let admin = fakes.seed_admin("a@example.com").await;
        let events_before = fakes.db.outbox_names().len();
        fakes.db.fail_next_commit();
        let result = fakes
            .tasks()
            .create
            .execute(&Fakes::principal(&admin), command("Plan", None), None)
            .await;
        assert!(matches!(result, Err(Error::Unexpected(_))));
        assert!(fakes.db.all::<Task>().is_empty());
        assert_eq!(fakes.db.outbox_names().len(), events_before);
    }

    #[tokio::test]
    async fn an_assignee_from_another_tenant_or_deactivated_is_invalid() {
        let fakes = Fakes::new();
        let admin = fakes.seed_admin("a@example.com").await;
        let stranger = fakes.seed_admin("b@example.com").await;
        let inactive = fakes.seed_member(&admin, "m@example.com").await;
        fakes.deactivate(&admin, &inactive).await;
        for assignee in [stranger.id(), inactive.id()] {
            let result = fakes
                .tasks()
                .create
                .execute(
                    &Fakes::principal(&admin),
                    command("Plan", Some(assignee)),
                    None,
                )
                .await;
            assert!(matches!(result, Err(Error::AssigneeInvalid)));
        }
        assert!(fakes.db.all::<Task>().is_empty());
    }

    #[tokio::test]
    async fn a_retry_with_the_same_key_and_body_replays_and_creates_nothing() {
        let fakes = Fakes::new();
        let admin = fakes.seed_admin("a@example.com").await;
        let principal = Fakes::principal(&admin);
        let request = Idempotent {
            key: key(&principal, "body-1"),
            respond: &respond,
        };
        let first = fakes
            .tasks()
            .create
            .execute(&principal, command("Plan", None), Some(&request))
            .await
            .unwrap()
            .created();
        let again = fakes
            .tasks()
            .create
            .execute(&principal, command("Plan", None), Some(&request))
            .await
            .unwrap();
        let Outcome::Replayed(response) = again else {
            panic!("expected a replay");
        };
        assert_eq!(response.body, first.id().to_string().into_bytes());
        assert_eq!(fakes.db.all::<Task>().len(), 1);
    }

    #[tokio::test]
    async fn the_same_key_with_another_body_is_refused() {
        let fakes = Fakes::new();
        let admin = fakes.seed_admin("a@example.com").await;
        let principal = Fakes::principal(&admin);
        let first = Idempotent {
            key: key(&principal, "body-1"),
            respond: &respond,
        };
        fakes
            .tasks()
            .create
            .execute(&principal, command("Plan", None), Some(&first))
            .await
            .unwrap();
        let other = Idempotent {
            key: key(&principal, "body-2"),
            respond: &respond,
        };
        let result = fakes
            .tasks()
            .create
            .execute(&principal, command("Other", None), Some(&other))
            .await;
        assert!(matches!(result, Err(Error::IdempotencyKeyReused)));
        assert_eq!(fakes.db.all::<Task>().len(), 1);
    }

    #[tokio::test]
    async fn a_retry_while_the_first_request_runs_is_refused() {
        let fakes = Fakes::new();
        let admin = fakes.seed_admin("a@example.com").await;
        let principal = Fakes::principal(&admin);
        let request = Idempotent {
            key: key(&principal, "body-1"),
            respond: &respond,
        };
        // The first request has claimed the key and not finished.
        fakes
            .db
            .claim(&request.key, fakes.clock.now())
            .await
            .unwrap();
        let result = fakes
            .tasks()
            .create
            .execute(&principal, command("Plan", None), Some(&request))
            .await;
        assert!(matches!(result, Err(Error::IdempotencyInProgress)));
        assert!(fakes.db.all::<Task>().is_empty());
    }
}
