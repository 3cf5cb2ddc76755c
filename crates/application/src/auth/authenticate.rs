use std::sync::Arc;
use std::time::Duration;

use domain::{Aggregate, User};

use crate::ports::{AccessTokens, Lookup, RequestBudget, TokenRejection};
use crate::{Error, Principal};

/// Turns a bearer token into the caller's principal, and spends one request of the
/// tenant's budget when requests are budgeted. Every authenticated request passes here,
/// so this is the one place the budget is enforced, and the one place authority is
/// checked against the present: the token says who calls, the stored user says whether
/// they still may, and with which role (a read by id, served from the cache).
pub struct Authenticate {
    pub tokens: Arc<dyn AccessTokens>,
    pub users: Arc<dyn Lookup<User>>,
    /// The per-tenant request budget; `None` when requests are not limited.
    pub budget: Option<Arc<dyn RequestBudget>>,
}

impl Authenticate {
    /// # Errors
    /// `InvalidAccessToken` with the reason the token was refused (`Revoked` when its
    /// user is deactivated, deleted or gone); `RequestBudgetExhausted` when the caller's
    /// tenant has spent its budget.
    pub async fn execute(&self, bearer: Option<&str>) -> Result<Principal, Error> {
        let token = bearer.ok_or(Error::InvalidAccessToken(TokenRejection::Missing))?;
        let claimed = self
            .tokens
            .verify(token)
            .map_err(Error::InvalidAccessToken)?;
        let user = self
            .users
            .get(claimed.tenant_id, claimed.user_id)
            .await?
            .filter(|user| user.is_active() && !user.is_deleted())
            .ok_or(Error::InvalidAccessToken(TokenRejection::Revoked))?;
        // The role the user has now: a demoted admin acts as a member from their next
        // request on, whatever their token says.
        let principal = Principal {
            role: user.role(),
            ..claimed
        };
        // Only after the token is verified: the tenant to charge comes from it, and a
        // stranger with forged tokens must not spend a tenant's budget.
        if let Some(budget) = &self.budget
            && let Some(wait) = budget
                .spend(principal.tenant_id)
                .await
                .map_err(Error::Unexpected)?
        {
            tracing::info!(tenant_id = %principal.tenant_id, "request budget spent");
            return Err(Error::RequestBudgetExhausted {
                retry_after_secs: whole_seconds(wait),
            });
        }
        Ok(principal)
    }
}

/// `Retry-After` counts whole seconds: rounded up, so a client that waits as told is
/// not refused again, and never 0.
fn whole_seconds(wait: Duration) -> u64 {
    let rounded_up = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    rounded_up.max(1)
}

#[cfg(test)]
mod tests {
    use domain::Aggregate;

    use super::*;
    use crate::testing::Fakes;

    #[tokio::test]
    async fn a_request_without_a_token_is_refused_before_the_budget_is_spent() {
        let fakes = Fakes::new();
        let admin = fakes.seed_admin("a@example.com").await;
        let error = fakes
            .authenticate(Fakes::principal(&admin), true)
            .execute(None)
            .await
            .unwrap_err();
        assert!(matches!(
            error,
            Error::InvalidAccessToken(TokenRejection::Missing)
        ));
        assert!(fakes.budget.spent_by().is_empty());
    }

    #[tokio::test]
    async fn a_token_of_a_user_deactivated_deleted_or_gone_since_is_revoked() {
        let fakes = Fakes::new();
        let admin = fakes.seed_admin("a@example.com").await;
        let member = fakes.seed_member(&admin, "m@example.com").await;
        let other = fakes.seed_member(&admin, "o@example.com").await;
        // Tokens issued while each could still act.
        let (as_member, as_other) = (Fakes::principal(&member), Fakes::principal(&other));
        fakes.deactivate(&admin, &member).await;
        fakes.delete(&admin, &other).await;
        let mut gone = Fakes::principal(&admin);
        gone.user_id = domain::UserId::from_uuid(uuid::Uuid::now_v7());
        for principal in [as_member, as_other, gone] {
            let refused = fakes
                .authenticate(principal, true)
                .execute(Some("token"))
                .await;
            assert!(
                matches!(
                    refused,
                    Err(Error::InvalidAccessToken(TokenRejection::Revoked))
                ),
                "{refused:?}"
            );
        }
        assert!(
            fakes.budget.spent_by().is_empty(),
            "a refused caller spends nothing"
        );
    }

    #[tokio::test]
    async fn a_demoted_admin_acts_with_the_role_they_have_now_not_the_one_in_their_token() {
        let fakes = Fakes::new();
        let admin = fakes.seed_admin("a@example.com").await;
        let second = fakes.seed_member(&admin, "b@example.com").await;
        fakes.promote(&admin, &second).await;
        let token_of_an_admin = Principal {
            role: domain::Role::Admin,
            ..Fakes::principal(&second)
        };
        assert!(token_of_an_admin.is_admin());
        fakes.demote(&admin, &second).await;
        let principal = fakes
            .authenticate(token_of_an_admin, false)
            .execute(Some("token"))
            .await
            .unwrap();
        assert_eq!(principal.role, domain::Role::Member);
    }

    #[tokio::test]
    async fn each_authenticated_request_spends_its_tenants_budget() {
        let fakes = Fakes::new();
        let admin = fakes.seed_admin("a@example.com").await;
        let authenticate = fakes.authenticate(Fakes::principal(&admin), true);
        for _ in 0..2 {
            let principal = authenticate.execute(Some("token")).await.unwrap();
            assert_eq!(principal.user_id, admin.id());
        }
        assert_eq!(
            fakes.budget.spent_by(),
            [admin.tenant_id(), admin.tenant_id()]
        );
    }

    #[tokio::test]
    async fn a_spent_budget_refuses_the_request_and_says_when_to_retry() {
        let fakes = Fakes::new();
        let admin = fakes.seed_admin("a@example.com").await;
        fakes.budget.exhaust_for(Duration::from_secs(12));
        let error = fakes
            .authenticate(Fakes::principal(&admin), true)
            .execute(Some("token"))
            .await
            .unwrap_err();
        assert!(matches!(
            error,
            Error::RequestBudgetExhausted {
                retry_after_secs: 12
            }
        ));
    }

    #[tokio::test]
    async fn without_a_budget_nothing_is_spent_and_nothing_is_refused() {
        let fakes = Fakes::new();
        let admin = fakes.seed_admin("a@example.com").await;
        fakes.budget.exhaust_for(Duration::from_secs(12));
        let principal = fakes
            .authenticate(Fakes::principal(&admin), false)
            .execute(Some("token"))
            .await
            .unwrap();
        assert_eq!(principal.tenant_id, admin.tenant_id());
        assert!(fakes.budget.spent_by().is_empty());
    }

    #[test]
    fn the_wait_is_rounded_up_to_whole_seconds_and_never_zero() {
        assert_eq!(whole_seconds(Duration::from_millis(1_100)), 2);
        assert_eq!(whole_seconds(Duration::from_secs(3)), 3);
        assert_eq!(whole_seconds(Duration::ZERO), 1);
        assert_eq!(whole_seconds(Duration::from_millis(1)), 1);
    }
}
