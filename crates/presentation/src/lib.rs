//! Keystone's HTTP API: routes, the JSON wire format, problem+json errors, request
//! ids and the API's self-description at `/openapi.json`.
//!
//! Presentation owns everything a client can see: the request and response DTOs
//! (`Deserialize`/`Serialize`, `garde::Validate`, `utoipa::ToSchema`), how input is
//! checked and parsed into domain values, how every `application::Error` becomes a
//! status code, and the document at `/openapi.json`. Handlers extract, parse, call one
//! use case and map its result; nothing else.
//!
//! Each aggregate's resource is one module (`users`, `tasks`): its DTOs, its handlers,
//! its routes and how its rules read as problems. What every resource shares is written
//! once: `resource` (`ETag`, 304, `include_deleted`), `conditional` (`If-Match`),
//! `idempotency` (`Idempotency-Key`), `routing` (one declaration per route, for the
//! router and the document alike).
//!
//! It does not know how anything is stored, hashed, signed or configured: no SQL, no JWT
//! library, no password hashing, no settings. It sees the use cases and the ports'
//! vocabulary only; the server crate builds the adapters and hands them in as
//! [`AppState`].

mod auth;
mod client;
mod conditional;
mod error;
mod extract;
mod headers;
mod health;
mod idempotency;
mod metrics;
mod openapi;
mod patch;
mod reports;
mod resource;
mod routing;
pub mod schema;
mod tasks;
mod telemetry;
#[cfg(test)]
mod testing;
mod users;
mod values;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::middleware::{ErrorHandlers, from_fn};
use actix_web::{App, web};
use application::auth::Auth;
use application::health::CheckReadiness;
use application::reports::Reports;
use application::tasks::Tasks;
use application::users::Users;
use tracing_actix_web::TracingLogger;

use crate::routing::Routes;

pub use client::TrustedProxies;
pub use headers::ResponsePolicy;
pub use health::ShutdownFlag;
pub use metrics::{MetricsRenderer, describe as describe_metrics};
pub use openapi::openapi;

/// What the handlers need: the service's identity, the use cases of each aggregate,
/// readiness and the shutdown flag it answers to, and `/metrics` when it is
/// served here. Built once by the server and shared by every worker.
pub struct AppState {
    pub service_name: String,
    pub version: String,
    pub auth: Auth,
    pub users: Users,
    pub tasks: Tasks,
    pub reports: Reports,
    pub readiness: CheckReadiness,
    /// The proxies whose forwarded headers name the client (`client`).
    pub trusted_proxies: TrustedProxies,
    /// HSTS and the origins allowed to read responses (`headers`).
    pub response_policy: ResponsePolicy,
    pub shutdown: ShutdownFlag,
    /// Serves `/metrics` on this app's port; `None` when the server serves it on a port
    /// of its own, with [`metrics_app`].
    pub metrics: Option<MetricsRenderer>,
}

/// The whole HTTP application: every route, the request-id and tracing middleware, and
/// problem+json answers for bad input, unknown routes (404) and wrong methods (405).
/// JSON bodies are limited to 64 KiB by the `ValidJson` extractor that reads them.
#[must_use]
pub fn app(
    state: web::Data<AppState>,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    around(move |config| {
        if let Some(renderer) = &state.metrics {
            config
                .app_data(web::Data::new(renderer.clone()))
                .service(web::resource("/metrics").get(metrics::scrape));
        }
        config.app_data(state);
        configure(config);
    })
}

/// `/metrics` alone, for a port of its own that the public never reaches. Requests to it
/// are not counted: they are the scraper's, not the service's.
#[must_use]
pub fn metrics_app(
    renderer: MetricsRenderer,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    App::new()
        .app_data(web::Data::new(renderer))
        .service(web::resource("/metrics").get(metrics::scrape))
        .default_service(web::to(error::route_not_found))
}

/// Everything around the routes, shared by `app` and the tests of this crate.
fn around(
    routes: impl FnOnce(&mut web::ServiceConfig),
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    App::new()
        .app_data(extract::path_config())
        .configure(routes)
        .default_service(web::to(error::route_not_found))
        .wrap(
            ErrorHandlers::new().handler(StatusCode::METHOD_NOT_ALLOWED, |response| {
                Ok(error::method_not_allowed(response))
            }),
        )
        .wrap(from_fn(headers::mark))
        // Inside the request span, which gives the request the ids this echoes.
        .wrap(from_fn(telemetry::correlation_ids))
        .wrap(TracingLogger::<telemetry::RequestSpan>::new())
        .wrap(from_fn(metrics::record))
}

/// Every route of the application, each declared once for the router and the document
/// (`routing`), in the order the router tries them. A new aggregate's resource adds its
/// module's `routes` here.
pub(crate) fn routes() -> Routes {
    Routes::default()
        .with(health::routes)
        .with(openapi::routes)
        .with(auth::routes)
        .with(users::routes)
        .with(reports::routes)
        .with(tasks::routes)
}

fn configure(config: &mut web::ServiceConfig) {
    routes().register(config);
    config.route("/docs/{file:.*}", web::get().to(openapi::docs_file));
}

#[cfg(test)]
mod tests {
    use actix_web::http::{Method, header};
    use actix_web::test::{TestRequest, call_service, init_service, read_body};
    use actix_web::{HttpResponse, web};
    use serde_json::Value;
    use uuid::Uuid;

    use super::*;
    use crate::error::ApiError;
    use crate::telemetry::X_REQUEST_ID;

    async fn thing(id: web::Path<Uuid>) -> HttpResponse {
        HttpResponse::Ok().body(id.to_string())
    }

    async fn conflict() -> Result<HttpResponse, ApiError> {
        Err(application::Error::EmailTaken.into())
    }

    /// Sends `request` through the real middleware stack around two tiny routes; returns
    /// the status, the headers and the body as JSON (`Null` when it is not JSON).
    async fn send(request: TestRequest) -> (StatusCode, header::HeaderMap, Value) {
        let app = init_service(around(|config| {
            config
                .service(web::resource("/things/{id}").get(thing))
                .service(web::resource("/conflict").post(conflict));
        }))
        .await;
        let response = call_service(&app, request.to_request()).await;
        let (status, headers) = (response.status(), response.headers().clone());
        let body = serde_json::from_slice(&read_body(response).await).unwrap_or(Value::Null);
        (status, headers, body)
    }

    #[actix_web::test]
    async fn an_unknown_path_is_a_404_problem() {
        let (status, headers, body) = send(TestRequest::get().uri("/nowhere")).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(
            headers.get(header::CONTENT_TYPE).unwrap(),
            "application/problem+json"
        );
        assert_eq!(body["code"], "not_found");
    }

    #[actix_web::test]
    async fn a_wrong_method_is_a_405_problem_that_says_what_is_allowed() {
        let (status, headers, body) = send(TestRequest::delete().uri("/conflict")).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(headers.get(header::ALLOW).unwrap(), "POST");
        assert_eq!(
            headers.get(header::CONTENT_TYPE).unwrap(),
            "application/problem+json"
        );
        assert_eq!(body["code"], "method_not_allowed");
    }

    #[actix_web::test]
    async fn a_path_id_that_is_not_a_uuid_is_a_400_problem() {
        let (status, _, body) = send(TestRequest::get().uri("/things/42")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["code"], "invalid_path");
        let (status, _, _) =
            send(TestRequest::get().uri(&format!("/things/{}", Uuid::now_v7()))).await;
        assert_eq!(status, StatusCode::OK);
    }

    #[actix_web::test]
    async fn every_documented_operation_is_routed() {
        let app = init_service(around(configure)).await;
        let document = serde_json::to_value(openapi()).unwrap();
        for (path, item) in document["paths"].as_object().unwrap() {
            let uri = path
                .replace("{id}", &Uuid::now_v7().to_string())
                .replace("{item_id}", &Uuid::now_v7().to_string());
            for method in item.as_object().unwrap().keys() {
                let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
                let request = TestRequest::default().method(method).uri(&uri);
                // Without an `AppState` the handlers fail, but only once routed to.
                let status = call_service(&app, request.to_request()).await.status();
                let unrouted = [StatusCode::NOT_FOUND, StatusCode::METHOD_NOT_ALLOWED];
                assert!(!unrouted.contains(&status), "{path}: {status}");
            }
        }
    }

    #[actix_web::test]
    async fn error_responses_carry_the_request_id_too() {
        let request = TestRequest::post()
            .uri("/conflict")
            .insert_header((X_REQUEST_ID, "abc-123"));
        let (status, headers, body) = send(request).await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(body["code"], "email_taken");
        assert_eq!(headers.get(X_REQUEST_ID).unwrap(), "abc-123");
        let (_, headers, _) = send(TestRequest::get().uri("/nowhere")).await;
        assert!(headers.contains_key(X_REQUEST_ID));
    }
}
