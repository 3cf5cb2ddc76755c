//! The whole app on the application's in-memory fakes, for tests that send requests
//! through the real routes, extractors and error mapping: one tenant with an admin and
//! a member, signed in.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderMap};
use actix_web::test::{TestRequest, call_service, init_service, read_body};
use actix_web::web;
use application::testing::Fakes;
use chrono::{DateTime, TimeZone, Utc};
use domain::User;
use serde_json::Value;

use crate::{AppState, ShutdownFlag};

/// The fakes, and the tenant the tests act in.
pub(crate) struct TestApp {
    pub fakes: Fakes,
    pub admin: User,
    pub member: User,
    /// Whether authenticated requests spend the fake request budget.
    pub with_budget: bool,
}

/// The fakes' clock in these tests: 2026-03-10, late in the evening UTC.
pub(crate) fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 10, 23, 30, 0).unwrap()
}

impl TestApp {
    pub(crate) async fn new() -> Self {
        let fakes = Fakes::new();
        fakes.clock.set(now());
        let admin = fakes.seed_admin("admin@example.com").await;
        let member = fakes.seed_member(&admin, "member@example.com").await;
        Self {
            fakes,
            admin,
            member,
            with_budget: false,
        }
    }

    /// A request of `user`, with their bearer token.
    pub(crate) fn as_user(request: TestRequest, user: &User) -> TestRequest {
        let token = Fakes::access_token(user);
        request.insert_header((header::AUTHORIZATION, format!("Bearer {token}")))
    }

    /// Sends `request` to the whole app; returns the status, the headers and the body as
    /// JSON (`Null` when not JSON).
    pub(crate) async fn send(&self, request: TestRequest) -> (StatusCode, HeaderMap, Value) {
        let app = init_service(crate::app(web::Data::new(self.state()))).await;
        let response = call_service(&app, request.to_request()).await;
        let (status, headers) = (response.status(), response.headers().clone());
        let body = serde_json::from_slice(&read_body(response).await).unwrap_or(Value::Null);
        (status, headers, body)
    }

    fn state(&self) -> AppState {
        AppState {
            service_name: "keystone".to_owned(),
            version: "0.0.0".to_owned(),
            auth: self.fakes.auth_with(self.with_budget),
            users: self.fakes.users(),
            tasks: self.fakes.tasks(),
            reports: self.fakes.reports(),
            readiness: application::health::CheckReadiness::new(Vec::new()),
            trusted_proxies: crate::TrustedProxies::default(),
            response_policy: crate::ResponsePolicy::default(),
            shutdown: ShutdownFlag::default(),
            metrics: None,
        }
    }
}
