//! Tasks: creating, reading, listing and changing them.

mod change;
mod create;
mod list;

use domain::{Actor, Task};

pub use change::{ChangeTask, TaskChange, VersionCheck};
pub use create::{CreateTask, CreateTaskCommand};
pub use list::{GetTask, ListTasks, ListTasksQuery, TaskPage};

use crate::{Error, Principal, Resource};

impl Principal {
    #[must_use]
    pub fn actor(&self) -> Actor {
        Actor {
            id: self.user_id,
            role: self.role,
        }
    }
}

/// Deleted tasks are hidden unless asked for; either way a task of another tenant is
/// simply not found.
fn visible(task: Option<Task>, include_deleted: bool) -> Result<Task, Error> {
    task.filter(|task| include_deleted || !task.is_deleted())
        .ok_or(Error::NotFound(Resource::Task))
}

/// The assignee must be an active, not deleted user of the caller's tenant. Read in
/// the transaction, so a concurrent deactivation cannot slip in before the commit.
async fn ensure_assignable(
    tx: &mut dyn crate::ports::Transaction,
    principal: &Principal,
    assignee: domain::UserId,
) -> Result<(), Error> {
    let user = tx.users().get(principal.tenant_id, assignee).await?;
    if user.is_some_and(|user| user.can_sign_in()) {
        Ok(())
    } else {
        Err(Error::AssigneeInvalid)
    }
}
