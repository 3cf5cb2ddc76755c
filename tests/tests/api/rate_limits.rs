//! Limits that hold across replicas: two instances of the application share one Redis,
//! as replicas behind a load balancer do, and a tenant's request budget is spent on
//! both together.

use actix_web::http::StatusCode;
use keystone_tests::{services_settings, spawn_app_with};

#[actix_web::test]
#[ignore = "needs PostgreSQL and Redis, run by `just test-all`"]
async fn a_tenants_request_budget_is_shared_by_replicas_that_share_redis() {
    let mut settings = services_settings().await;
    settings.rate_limit.tenant_requests = 5;
    // Windows are aligned to the clock; an hour makes one turning mid-test unlikely.
    settings.rate_limit.window_secs = 3_600;
    // The same database and the same Redis namespace: two replicas of one service.
    let first = spawn_app_with(settings.clone()).await;
    let second = spawn_app_with(settings).await;
    // Signing in reads `/users/me` once: one request of the five.
    let ada = first.register("ada@example.com").await;

    // Alternating between the replicas, the fifth request is refused: each replica alone
    // would allow five.
    let mut answered = Vec::new();
    for replica in [&first, &second, &first, &second, &first, &second] {
        let response = replica.get("/api/v1/users/me", &ada.access_token).await;
        answered.push(response.status);
        if response.status == StatusCode::TOO_MANY_REQUESTS {
            assert_eq!(
                response.code(),
                "request_budget_exhausted",
                "{}",
                response.text
            );
            let wait: u64 = response.header("retry-after").unwrap().parse().unwrap();
            assert!((1..=3_600).contains(&wait), "Retry-After: {wait}");
        }
    }
    assert_eq!(
        answered,
        [
            StatusCode::OK,
            StatusCode::OK,
            StatusCode::OK,
            StatusCode::OK,
            StatusCode::TOO_MANY_REQUESTS,
            StatusCode::TOO_MANY_REQUESTS,
        ]
    );

    // Per tenant: another tenant's budget is untouched.
    let eve = second.register("eve@example.com").await;
    let response = first.get("/api/v1/users/me", &eve.access_token).await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text);
}
