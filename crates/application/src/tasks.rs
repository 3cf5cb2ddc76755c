//! Tasks: creating, reading, listing and changing them. Every change runs the one flow
//! of `command::change`; what this module adds is what tasks are made of, who may
//! change them and how their lists are filtered and sorted.

mod change;
mod create;
mod queries;
mod read;

use std::sync::Arc;

use domain::{Actor, Task, TenantId, UserId};

pub use change::{ChangeTask, TaskChange};
pub use create::{CreateTask, CreateTaskCommand};
pub use queries::{TaskCursor, TaskFilter, TaskOrder, TaskQueries, TaskSort};
pub use read::{GetTask, ListTasks, ListTasksQuery};

use crate::ports::{Lookup, Transaction};
use crate::{Error, Ports, Principal};

/// Every task use case, built once from the ports they share.
pub struct Tasks {
    pub create: CreateTask,
    pub get: GetTask,
    pub list: ListTasks,
    pub change: ChangeTask,
}

impl Tasks {
    #[must_use]
    pub fn new(
        ports: &Ports,
        lookup: Arc<dyn Lookup<Task>>,
        queries: Arc<dyn TaskQueries>,
    ) -> Self {
        Self {
            create: CreateTask {
                uow: ports.uow.clone(),
                keys: ports.keys.clone(),
                clock: ports.clock.clone(),
                ids: ports.ids.clone(),
            },
            get: GetTask::new(lookup),
            list: ListTasks { queries },
            change: ChangeTask::new(ports),
        }
    }
}

impl Principal {
    #[must_use]
    pub fn actor(&self) -> Actor {
        Actor {
            id: self.user_id,
            role: self.role,
        }
    }
}

/// The assignee must be an active, not deleted user of the caller's tenant. Checked in
/// the transaction, so a concurrent deactivation cannot slip in before the commit.
async fn ensure_assignable(
    tx: &mut dyn Transaction,
    tenant: TenantId,
    assignee: UserId,
) -> Result<(), Error> {
    if tx.can_act(tenant, assignee).await? {
        Ok(())
    } else {
        Err(Error::AssigneeInvalid)
    }
}
