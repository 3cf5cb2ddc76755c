use std::sync::Arc;

use uuid::Uuid;

use crate::page::{Page, page_size};
use crate::ports::{AuditEntry, AuditLog};
use crate::{Error, Principal};

pub struct ListAuditQuery {
    /// The id of the last entry of the previous page.
    pub before: Option<Uuid>,
    /// Clamped to 1..=100.
    pub limit: u64,
}

/// Lists the audit log of the caller's tenant, newest first, a page at a time (keyset on
/// the entry id, which is the event's time-ordered id). Admins only.
pub struct ListAuditEntries {
    pub audit: Arc<dyn AuditLog>,
}

impl ListAuditEntries {
    /// # Errors
    /// `Forbidden` unless the caller is an admin.
    #[tracing::instrument(skip_all)]
    pub async fn execute(
        &self,
        principal: &Principal,
        query: ListAuditQuery,
    ) -> Result<Page<AuditEntry, Uuid>, Error> {
        principal.require_admin()?;
        let size = page_size(query.limit);
        let items = self
            .audit
            .list(principal.tenant_id, query.before, size + 1)
            .await?;
        Ok(Page::of(items, size, |entry| entry.id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::Clock;
    use crate::testing::Fakes;

    fn query(before: Option<Uuid>, limit: u64) -> ListAuditQuery {
        ListAuditQuery { before, limit }
    }

    #[tokio::test]
    async fn pages_run_from_newest_to_oldest_without_gaps_or_repeats() {
        let fakes = Fakes::new();
        let admin = fakes.seed_admin("a@example.com").await;
        let recorded: Vec<Uuid> = (0..5)
            .map(|_| {
                fakes
                    .audit
                    .record(&admin, "task.created", fakes.clock.now())
            })
            .collect();
        let principal = Fakes::principal(&admin);
        let mut seen = Vec::new();
        let mut before = None;
        for _ in 0..3 {
            let page = fakes
                .reports()
                .audit
                .execute(&principal, query(before, 2))
                .await
                .unwrap();
            seen.extend(page.items.iter().map(|entry| entry.id));
            before = page.next;
        }
        assert_eq!(before, None);
        let newest_first: Vec<Uuid> = recorded.into_iter().rev().collect();
        assert_eq!(seen, newest_first);
    }

    #[tokio::test]
    async fn a_member_may_not_read_the_audit_log() {
        let fakes = Fakes::new();
        let admin = fakes.seed_admin("a@example.com").await;
        let member = fakes.seed_member(&admin, "m@example.com").await;
        fakes
            .audit
            .record(&admin, "user.created", fakes.clock.now());
        let error = fakes
            .reports()
            .audit
            .execute(&Fakes::principal(&member), query(None, 10))
            .await
            .err();
        assert!(matches!(error, Some(Error::Forbidden)));
    }

    #[tokio::test]
    async fn only_the_callers_tenant_is_listed_and_the_page_size_is_bounded() {
        let fakes = Fakes::new();
        let admin = fakes.seed_admin("a@example.com").await;
        let stranger = fakes.seed_admin("b@example.com").await;
        fakes
            .audit
            .record(&stranger, "task.created", fakes.clock.now());
        let own = fakes
            .audit
            .record(&admin, "task.created", fakes.clock.now());
        let page = fakes
            .reports()
            .audit
            .execute(&Fakes::principal(&admin), query(None, 1_000))
            .await
            .unwrap();
        let ids: Vec<Uuid> = page.items.iter().map(|entry| entry.id).collect();
        assert_eq!(ids, [own]);
        assert_eq!(
            fakes.audit.limits_asked(),
            [u64::from(crate::page::MAX_PAGE_SIZE) + 1]
        );
    }
}
