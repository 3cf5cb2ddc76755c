use std::sync::Arc;

use domain::{Aggregate, User, UserId};

use crate::ports::{Clock, Lookup, TaskStats, TaskStatsQueries};
use crate::{Error, Principal};

/// One user's task figures, from the read model. Any member of the tenant may read them
/// for any colleague, as they may read the colleague's tasks.
pub struct GetTaskStats {
    pub users: Arc<dyn Lookup<User>>,
    pub stats: Arc<dyn TaskStatsQueries>,
    pub clock: Arc<dyn Clock>,
}

impl GetTaskStats {
    /// # Errors
    /// `NotFound` for a missing, deleted or other tenant's user.
    #[tracing::instrument(skip_all, fields(user_id = %id))]
    pub async fn execute(&self, principal: &Principal, id: UserId) -> Result<TaskStats, Error> {
        // The read model knows no users: asked about a stranger it would answer zeros,
        // so the user is looked up first and a stranger is a 404 like everywhere else.
        let known = self
            .users
            .get(principal.tenant_id, id)
            .await?
            .is_some_and(|user| !user.is_deleted());
        if !known {
            return Err(Error::NotFound(User::NAME));
        }
        // "Overdue" is relative to the day the question is asked, in UTC.
        let today = self.clock.now().date_naive();
        Ok(self.stats.stats(principal.tenant_id, id, today).await?)
    }
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;

    use super::*;
    use crate::testing::Fakes;

    #[tokio::test]
    async fn a_member_reads_the_figures_of_a_colleague_as_of_the_clocks_utc_day() {
        let fakes = Fakes::new();
        let admin = fakes.seed_admin("a@example.com").await;
        let member = fakes.seed_member(&admin, "m@example.com").await;
        let figures = TaskStats {
            open: 2,
            overdue: 1,
            assigned_total: 2,
            ..TaskStats::default()
        };
        fakes.task_stats.set(admin.id(), figures);
        let read = fakes
            .reports()
            .task_stats
            .execute(&Fakes::principal(&member), admin.id())
            .await
            .unwrap();
        assert_eq!(read, figures);
        let today = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
        assert_eq!(
            fakes.task_stats.questions(),
            [(admin.tenant_id(), admin.id(), today)]
        );
    }

    #[tokio::test]
    async fn the_figures_of_a_user_of_another_tenant_are_not_found() {
        let fakes = Fakes::new();
        let admin = fakes.seed_admin("a@example.com").await;
        let stranger = fakes.seed_admin("b@example.com").await;
        let error = fakes
            .reports()
            .task_stats
            .execute(&Fakes::principal(&admin), stranger.id())
            .await
            .unwrap_err();
        assert!(matches!(error, Error::NotFound("user")));
        assert!(fakes.task_stats.questions().is_empty());
    }

    #[tokio::test]
    async fn the_figures_of_a_deleted_or_unknown_user_are_not_found() {
        let fakes = Fakes::new();
        let admin = fakes.seed_admin("a@example.com").await;
        let member = fakes.seed_member(&admin, "m@example.com").await;
        fakes.delete(&admin, &member).await;
        let unknown = UserId::from_uuid(uuid::Uuid::now_v7());
        for id in [member.id(), unknown] {
            let error = fakes
                .reports()
                .task_stats
                .execute(&Fakes::principal(&admin), id)
                .await
                .unwrap_err();
            assert!(matches!(error, Error::NotFound("user")));
        }
    }
}
