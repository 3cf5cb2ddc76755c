//! The read models as the use cases see them: figures set by the test, an audit log
//! the test records into, and what each was asked.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use domain::{Aggregate, TenantId, User, UserId};
use uuid::Uuid;

use crate::ports::{AuditEntry, AuditLog, RepositoryError, TaskStats, TaskStatsQueries};

/// Figures per user (zeros for any other), and every question asked.
#[derive(Default)]
pub struct FakeTaskStats {
    figures: Mutex<HashMap<UserId, TaskStats>>,
    questions: Mutex<Vec<(TenantId, UserId, NaiveDate)>>,
}

impl FakeTaskStats {
    pub fn set(&self, user: UserId, stats: TaskStats) {
        self.figures.lock().unwrap().insert(user, stats);
    }

    pub fn questions(&self) -> Vec<(TenantId, UserId, NaiveDate)> {
        self.questions.lock().unwrap().clone()
    }
}

#[async_trait]
impl TaskStatsQueries for FakeTaskStats {
    async fn stats(
        &self,
        tenant: TenantId,
        user: UserId,
        today: NaiveDate,
    ) -> Result<TaskStats, RepositoryError> {
        self.questions.lock().unwrap().push((tenant, user, today));
        Ok(self
            .figures
            .lock()
            .unwrap()
            .get(&user)
            .copied()
            .unwrap_or_default())
    }
}

/// Entries per tenant, listed as the port promises: newest first, before a cursor.
#[derive(Default)]
pub struct FakeAuditLog {
    entries: Mutex<Vec<(TenantId, AuditEntry)>>,
    limits: Mutex<Vec<u64>>,
}

impl FakeAuditLog {
    /// Records that `actor` did `action` to itself at `at`; returns the entry's id.
    pub fn record(&self, actor: &User, action: &str, at: DateTime<Utc>) -> Uuid {
        let id = Uuid::now_v7();
        let entry = AuditEntry {
            id,
            actor: actor.id(),
            action: action.to_owned(),
            aggregate_type: "user".to_owned(),
            aggregate_id: actor.id().as_uuid(),
            occurred_at: at,
        };
        self.entries
            .lock()
            .unwrap()
            .push((actor.tenant_id(), entry));
        id
    }

    /// The `limit` of every call to `list`.
    pub fn limits_asked(&self) -> Vec<u64> {
        self.limits.lock().unwrap().clone()
    }
}

#[async_trait]
impl AuditLog for FakeAuditLog {
    async fn list(
        &self,
        tenant: TenantId,
        before: Option<Uuid>,
        limit: u64,
    ) -> Result<Vec<AuditEntry>, RepositoryError> {
        self.limits.lock().unwrap().push(limit);
        let mut entries: Vec<AuditEntry> = self
            .entries
            .lock()
            .unwrap()
            .iter()
            .filter(|(owner, entry)| *owner == tenant && before.is_none_or(|b| entry.id < b))
            .map(|(_, entry)| entry.clone())
            .collect();
        entries.sort_by_key(|entry| std::cmp::Reverse(entry.id));
        entries.truncate(usize::try_from(limit).unwrap());
        Ok(entries)
    }
}
