//! The API describing itself: the document at `/openapi.json` (`OpenAPI` 3.1), Swagger
//! UI at `/docs/` (its files built into the binary), and the service's name and version
//! at `/api/v1`.

use std::sync::Arc;

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use application::Error;
use serde::Serialize;
use utoipa::openapi::extensions::Extensions;
use utoipa::openapi::link::Link;
use utoipa::openapi::path::{Operation, Parameter, ParameterIn, PathItem};
use utoipa::openapi::schema::{ArrayItems, KnownFormat, Schema, SchemaFormat};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::server::Server;
use utoipa::openapi::{Ref, RefOr, Response};
use utoipa::{Modify, OpenApi, ToResponse, ToSchema};
use utoipa_swagger_ui::Config;

use crate::AppState;
use crate::error::{ApiError, FieldError, Problem};
use crate::routing::Routes;

/// What the document says besides the operations, which the routes bring
/// (`routing::Routes`): the service, the shared schemas and responses, the tags.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Keystone",
        description = "A multi-tenant REST service. Every error is an RFC 9457 problem \
            (`application/problem+json`) with a stable `code`.",
    ),
    components(
        schemas(Problem, FieldError),
        responses(
            BadRequest,
            Unauthorized,
            Forbidden,
            NotFound,
            PreconditionFailed,
            PayloadTooLarge,
            UnsupportedMediaType,
            ValidationFailed,
            TooManyRequests,
            RequestBudgetExhausted,
            InternalError,
            ServiceUnavailable,
        ),
    ),
    tags(
        (name = "auth", description = "Signing up, signing in and out, refreshing tokens"),
        (name = "users", description = "The users of the caller's tenant; their `ETag` is \
            their version"),
        (name = "tasks", description = "The tasks of the caller's tenant; their `ETag` is \
            their version"),
        (name = "reports", description = "Read models kept from the domain events: \
            eventually consistent, a moment behind the latest change"),
        (name = "health", description = "Probes for orchestrators and load balancers"),
        (name = "meta", description = "The API describing itself"),
    ),
)]
struct ApiDoc;

/// The document served at `/openapi.json`: every route's operation (`crate::routes`)
/// and what they share. Deterministic: paths, schemas and responses are sorted maps, so
/// the same build always yields the same JSON.
#[must_use]
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut document = crate::routes().document(ApiDoc::openapi());
    document.servers = Some(vec![this_server()]);
    BearerAuth.modify(&mut document);
    CommonResponses.modify(&mut document);
    Links.modify(&mut document);
    FormatLengths.modify(&mut document);
    document
}

/// The server that serves the document, wherever it runs; public (`x-internal: false`).
fn this_server() -> Server {
    let mut server = Server::new("/");
    server.description =
        Some("The server that serves this document: local, staging or production alike".to_owned());
    server.extensions = Some(Extensions::builder().add("x-internal", false).build());
    server
}

/// The routes of the document itself.
pub(crate) fn routes(routes: Routes) -> Routes {
    routes
        .route(__path_document, document)
        .route(__path_docs, docs)
        .route(__path_about, about)
}

/// The `bearer` security scheme the secured operations name. The token's format is the
/// token adapter's business, so it is not stated.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let scheme = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .description(Some("An access token from /api/v1/auth/login or /refresh."))
            .build();
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme("bearer", SecurityScheme::Http(scheme));
    }
}

/// Adds the answers whole families of operations share, unless an operation documents
/// its own: 400, 413, 415 and 422 wherever a JSON body is read (`ValidJson`), 422
/// wherever query parameters are read (`ValidQuery`: a value given twice), 400
/// wherever a path parameter is parsed (`web::Path`), 401 and 429 wherever a bearer
/// token is required (`Authenticated`, which also spends the request budget), 412 wherever `If-Match` is taken (`IfMatch`), and 500
/// and 503 on every route that runs a use case (those under `/api/v1/`). Deriving them
/// from the operation keeps a new route from forgetting them.
struct CommonResponses;

/// The header `conditional::IfMatch` documents itself as.
const IF_MATCH: &str = "If-Match";

impl Modify for CommonResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, item) in &mut openapi.paths.paths {
            let runs_use_case = path.starts_with("/api/v1/");
            for operation in operations_mut(item) {
                let mut common = Vec::new();
                if operation.request_body.is_some() || has_path_parameter(operation) {
                    common.push(("400", reference::<BadRequest>()));
                }
                if operation.request_body.is_some() {
                    common.push(("413", reference::<PayloadTooLarge>()));
                    common.push(("415", reference::<UnsupportedMediaType>()));
                }
                if operation.request_body.is_some() || has_query_parameter(operation) {
                    common.push(("422", reference::<ValidationFailed>()));
                }
                if operation.security.is_some() {
                    common.push(("401", reference::<Unauthorized>()));
                    common.push(("429", reference::<RequestBudgetExhausted>()));
                }
                if has_header_parameter(operation, IF_MATCH) {
                    common.push(("412", reference::<PreconditionFailed>()));
                }
                if runs_use_case {
                    common.push(("500", reference::<InternalError>()));
                    common.push(("503", reference::<ServiceUnavailable>()));
                }
                for (status, response) in common {
                    operation
                        .responses
                        .responses
                        .entry(status.to_owned())
                        .or_insert(response);
                }
            }
        }
    }
}

/// Links, so a client (or a stateful test) can go from what it has to what it can do
/// next: from a create's 201 to every operation on what it created, its id from the
/// body and, where the operation takes `If-Match`, its version from `ETag`; and from a
/// page of a collection to the first item on it. Derived from the paths, so a new
/// aggregate's routes get theirs: an item path is its collection's path plus one
/// parameter (`/api/v1/tasks` and `/api/v1/tasks/{id}`, `/api/v1/tasks/{id}/checklist`
/// and `/api/v1/tasks/{id}/checklist/{item_id}`).
struct Links;

/// One operation a link may point at.
struct Target {
    path: String,
    operation_id: String,
    takes_if_match: bool,
    is_get: bool,
}

impl Modify for Links {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let mut targets = Vec::new();
        for (path, item) in &openapi.paths.paths {
            let operations = [
                (&item.get, true),
                (&item.put, false),
                (&item.post, false),
                (&item.delete, false),
                (&item.patch, false),
            ];
            for (operation, is_get) in operations {
                let Some(operation) = operation else { continue };
                let Some(operation_id) = operation.operation_id.clone() else {
                    continue;
                };
                targets.push(Target {
                    path: path.clone(),
                    operation_id,
                    takes_if_match: has_header_parameter(operation, IF_MATCH),
                    is_get,
                });
            }
        }
        for (path, item) in &mut openapi.paths.paths {
            if let Some(response) = item.post.as_mut().and_then(|op| answer(op, "201")) {
                for target in &targets {
                    let Some(parameter) = item_parameter(path, &target.path) else {
                        continue;
                    };
                    let mut link = link_from(path, target, parameter, "$response.body#/id");
                    if target.takes_if_match {
                        link.parameters
                            .insert(format!("header.{IF_MATCH}"), "$response.header.ETag".into());
                    }
                    response
                        .links
                        .insert(target.operation_id.clone(), link.into());
                }
            }
            if let Some(response) = item.get.as_mut().and_then(|op| answer(op, "200")) {
                for target in targets.iter().filter(|target| target.is_get) {
                    let Some(parameter) =
                        item_parameter(path, &target.path).filter(|_| target.path.ends_with('}'))
                    else {
                        continue;
                    };
                    let link = link_from(path, target, parameter, "$response.body#/items/0/id");
                    response
                        .links
                        .insert(target.operation_id.clone(), link.into());
                }
            }
        }
    }
}

/// Gives every string whose format fixes its length that length as `maxLength`, so the
/// document bounds it wherever it appears: a UUID (hyphenated, as the server writes and
/// its paths and bodies take it) is 36 characters, a date (`YYYY-MM-DD`) 10.
struct FormatLengths;

impl Modify for FormatLengths {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let mut schemas: Vec<&mut RefOr<Schema>> = Vec::new();
        for item in openapi.paths.paths.values_mut() {
            for operation in operations_mut(item) {
                for parameter in operation.parameters.iter_mut().flatten() {
                    if let RefOr::T(parameter) = parameter {
                        schemas.extend(parameter.schema.as_mut());
                    }
                }
            }
        }
        if let Some(components) = &mut openapi.components {
            schemas.extend(components.schemas.values_mut());
        }
        for schema in schemas {
            bound_formats(schema);
        }
    }
}

fn bound_formats(schema: &mut RefOr<Schema>) {
    let RefOr::T(schema) = schema else { return };
    match schema {
        Schema::Object(object) => {
            let length = match &object.format {
                Some(SchemaFormat::KnownFormat(KnownFormat::Uuid)) => Some(36),
                Some(SchemaFormat::KnownFormat(KnownFormat::Date)) => Some(10),
                _ => None,
            };
            if object.max_length.is_none() {
                object.max_length = length;
            }
            object.properties.values_mut().for_each(bound_formats);
        }
        Schema::Array(array) => {
            if let ArrayItems::RefOrSchema(items) = &mut array.items {
                bound_formats(items);
            }
        }
        Schema::OneOf(one_of) => one_of.items.iter_mut().for_each(bound_formats),
        Schema::AllOf(all_of) => all_of.items.iter_mut().for_each(bound_formats),
        Schema::AnyOf(any_of) => any_of.items.iter_mut().for_each(bound_formats),
        _ => {}
    }
}

/// The documented answer of `operation` with `status`.
fn answer<'a>(operation: &'a mut Operation, status: &str) -> Option<&'a mut Response> {
    match operation.responses.responses.get_mut(status)? {
        RefOr::T(response) => Some(response),
        RefOr::Ref(_) => None,
    }
}

/// The parameter `target` adds to `collection`, when `target` is an operation on one of
/// its items: the collection's path, one more parameter, then perhaps more literal
/// segments (`/api/v1/tasks/{id}/start`).
fn item_parameter<'a>(collection: &str, target: &'a str) -> Option<&'a str> {
    let rest = target.strip_prefix(collection)?.strip_prefix("/{")?;
    let (parameter, tail) = rest.split_once('}')?;
    (!tail.contains('{')).then_some(parameter)
}

/// A link to `target` that passes on the collection's own path parameters as they were
/// sent, and its item's from `value`.
fn link_from(collection: &str, target: &Target, parameter: &str, value: &str) -> Link {
    let mut link = Link::builder()
        .operation_id(&target.operation_id)
        .description(format!("`{}` on the item", target.operation_id))
        .parameter(format!("path.{parameter}"), value)
        .build();
    for outer in collection
        .split('/')
        .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
    {
        link.parameters.insert(
            format!("path.{outer}"),
            format!("$request.path.{outer}").into(),
        );
    }
    link
}

/// The operations of a path, whatever their method.
fn operations_mut(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        &mut item.get,
        &mut item.put,
        &mut item.post,
        &mut item.delete,
        &mut item.patch,
    ]
    .into_iter()
    .flatten()
}

fn has_path_parameter(operation: &Operation) -> bool {
    parameters(operation).any(|parameter| parameter.parameter_in == ParameterIn::Path)
}

fn has_query_parameter(operation: &Operation) -> bool {
    parameters(operation).any(|parameter| parameter.parameter_in == ParameterIn::Query)
}

fn has_header_parameter(operation: &Operation, name: &str) -> bool {
    parameters(operation)
        .any(|parameter| parameter.parameter_in == ParameterIn::Header && parameter.name == name)
}

fn parameters(operation: &Operation) -> impl Iterator<Item = &Parameter> {
    operation
        .parameters
        .iter()
        .flatten()
        .filter_map(|parameter| match parameter {
            RefOr::T(parameter) => Some(parameter),
            RefOr::Ref(_) => None,
        })
}

fn reference<'r, R: ToResponse<'r>>() -> RefOr<Response> {
    Ref::from_response_name(R::response().0).into()
}

/// Declares reusable problem+json responses, for `(status = …, response = Name)` in
/// `#[utoipa::path]`. Each is an uninhabited type: it only names a response.
macro_rules! problem_responses {
    ($(
        $name:ident => $description:literal $(, header $header:literal: $header_doc:literal)?;
    )+) => {$(
        #[doc = $description]
        pub(crate) enum $name {}

        impl<'r> utoipa::ToResponse<'r> for $name {
            fn response() -> (
                &'r str,
                utoipa::openapi::RefOr<utoipa::openapi::Response>,
            ) {
                let response = utoipa::openapi::response::ResponseBuilder::new()
                    .description($description)
                    .content(
                        $crate::error::PROBLEM_JSON,
                        utoipa::openapi::Content::new(Some(
                            utoipa::openapi::Ref::from_schema_name("Problem"),
                        )),
                    );
                $(
                    let header = utoipa::openapi::header::HeaderBuilder::new()
                        .schema(Some(utoipa::openapi::schema::Object::with_type(
                            utoipa::openapi::schema::Type::String,
                        )))
                        .description(Some($header_doc))
                        .build();
                    let response = response.header($header, header);
                )?
                (stringify!($name), response.build().into())
            }
        }
    )+};
}

pub(crate) use problem_responses;

problem_responses! {
    BadRequest => "The body is not JSON (`malformed_json`), or a path parameter does not \
        parse (`invalid_path`)";
    Unauthorized => "No valid access token (`invalid_token`)",
        header "WWW-Authenticate": "`Bearer`, plus `error=\"invalid_token\"` and an \
            `error_description` when a token was sent";
    Forbidden => "The caller may not do this (`forbidden`)";
    NotFound => "No such resource in the caller's tenant, or it is deleted (`not_found`)";
    PreconditionFailed => "The resource is no longer at the version `If-Match` names, or \
        `If-Match` does not parse (`precondition_failed`)",
        header "ETag": "The resource's current version, as `\"<version>\"`";
    PayloadTooLarge => "The body is larger than 64 KiB (`payload_too_large`)";
    UnsupportedMediaType => "The body is not sent as `application/json` or another \
        `+json` type (`unsupported_media_type`)";
    ValidationFailed => "Fields are missing, unknown, mistyped or invalid \
        (`validation_failed`); `errors` lists every one";
    TooManyRequests => "Too many failed sign-ins for this email or client \
        (`too_many_requests`)",
        header "Retry-After": "Seconds to wait before trying again";
    RequestBudgetExhausted => "The caller's tenant has spent its budget of requests for \
        the current window (`request_budget_exhausted`); only when the service budgets \
        requests",
        header "Retry-After": "Seconds until the window turns and requests are accepted again";
    InternalError => "An unexpected error; details are logged, not returned \
        (`internal_error`)";
    ServiceUnavailable => "A dependency is unavailable; try again later \
        (`service_unavailable`)";
}

/// Which service answers, and which version of it.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct About {
    #[schema(examples("keystone"))]
    name: String,
    #[schema(examples("0.1.0"))]
    version: String,
}

#[utoipa::path(
    get, operation_id = "about", path = "/api/v1", tag = "meta",
    summary = "The service's name and version",
    responses((status = 200, description = "Name and version", body = About)),
)]
pub(crate) async fn about(state: web::Data<AppState>) -> web::Json<About> {
    web::Json(About {
        name: state.service_name.clone(),
        version: state.version.clone(),
    })
}

#[utoipa::path(
    get, operation_id = "openapi_document", path = "/openapi.json", tag = "meta",
    summary = "This document",
    responses((status = 200, description = "The OpenAPI 3.1 document", body = Object)),
)]
pub(crate) async fn document() -> HttpResponse {
    HttpResponse::Ok().json(openapi())
}

/// What the reference page may load: its own files and this document, nothing from
/// another origin. Swagger UI sets some styles inline and draws its icons as data URIs.
const DOCS_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' \
    'unsafe-inline'; img-src 'self' data:; connect-src 'self'; font-src 'self'; \
    frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

#[utoipa::path(
    get, operation_id = "api_reference", path = "/docs", tag = "meta",
    summary = "Interactive API reference (Swagger UI), served from the binary",
    responses((status = 308, description = "To the reference page, `/docs/`",
        headers(("Location" = String, description = "`/docs/`")))),
)]
pub(crate) async fn docs() -> HttpResponse {
    HttpResponse::PermanentRedirect()
        .insert_header((header::LOCATION, "/docs/"))
        .finish()
}

/// The files of the reference page under `/docs/`: Swagger UI's, built into the binary,
/// pointed at `/openapi.json`. Not in the document: they are the page, not the API.
pub(crate) async fn docs_file(file: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let config = Arc::new(Config::new(["/openapi.json"]).validator_url("none"));
    match utoipa_swagger_ui::serve(&file, config) {
        Ok(Some(found)) => Ok(HttpResponse::Ok()
            .content_type(found.content_type)
            .insert_header((header::CONTENT_SECURITY_POLICY, DOCS_CSP))
            .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
            .body(found.bytes.into_owned())),
        Ok(None) => Err(ApiError::RouteNotFound),
        Err(error) => {
            let error = std::io::Error::other(format!("serving the reference page: {error}"));
            Err(Error::Unexpected(error.into()).into())
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;
    use crate::extract;

    fn document() -> Value {
        serde_json::to_value(openapi()).unwrap()
    }

    fn operations(document: &Value) -> impl Iterator<Item = (String, &Value)> {
        document["paths"]
            .as_object()
            .unwrap()
            .iter()
            .flat_map(|(path, item)| {
                item.as_object()
                    .unwrap()
                    .iter()
                    .map(move |(method, operation)| (format!("{method} {path}"), operation))
            })
    }

    #[test]
    fn the_document_is_openapi_3_1_and_the_same_every_time() {
        let first = openapi().to_pretty_json().unwrap();
        assert_eq!(first, openapi().to_pretty_json().unwrap());
        assert_eq!(document()["openapi"], "3.1.0");
    }

    fn header_parameters(operation: &Value) -> Vec<&str> {
        operation["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|parameter| parameter["in"] == "header")
            .map(|parameter| parameter["name"].as_str().unwrap())
            .collect()
    }

    #[test]
    fn every_change_of_a_resource_takes_if_match_and_documents_412_and_the_new_etag() {
        let document = document();
        let changes: Vec<(String, &Value)> = operations(&document)
            .filter(|(name, _)| {
                let resource = ["/api/v1/tasks/{id}", "/api/v1/users/{id}"]
                    .iter()
                    .any(|path| name.contains(path));
                resource && !name.starts_with("get") && !name.contains("task-stats")
            })
            .collect();
        assert_eq!(
            changes.len(),
            15,
            "{:?}",
            changes.iter().map(|c| &c.0).collect::<Vec<_>>()
        );
        for (name, operation) in changes {
            assert_eq!(header_parameters(operation), [IF_MATCH], "{name}");
            let responses = &operation["responses"];
            assert_eq!(
                responses["412"]["$ref"], "#/components/responses/PreconditionFailed",
                "{name}"
            );
            let success = responses
                .as_object()
                .unwrap()
                .iter()
                .find(|(status, _)| status.starts_with('2'))
                .unwrap()
                .1;
            let etag = match success["$ref"].as_str() {
                Some(reference) => {
                    let name = reference.rsplit('/').next().unwrap();
                    &document["components"]["responses"][name]["headers"]["ETag"]
                }
                None => &success["headers"]["ETag"],
            };
            assert!(!etag.is_null(), "{name} does not document its ETag");
        }
        let precondition_failed = &document["components"]["responses"]["PreconditionFailed"];
        assert!(!precondition_failed["headers"]["ETag"].is_null());
    }

    #[test]
    fn reading_a_task_or_a_user_documents_if_none_match_and_304() {
        let document = document();
        for path in [
            "/api/v1/tasks/{id}",
            "/api/v1/users/{id}",
            "/api/v1/users/me",
        ] {
            let get = &document["paths"][path]["get"];
            assert_eq!(header_parameters(get), ["If-None-Match"], "{path}");
            assert!(
                !get["responses"]["304"]["headers"]["ETag"].is_null(),
                "{path}"
            );
        }
    }

    #[test]
    fn creates_document_the_idempotency_key_and_its_errors() {
        let document = document();
        for path in ["/api/v1/users", "/api/v1/tasks"] {
            let create = &document["paths"][path]["post"];
            assert_eq!(header_parameters(create), ["Idempotency-Key"], "{path}");
            let responses = &create["responses"];
            let description = |status: &str| responses[status]["description"].to_string();
            assert!(description("409").contains("idempotency_request_in_progress"));
            assert!(description("422").contains("idempotency_key_reused"));
            assert!(
                !responses["201"]["headers"]["Idempotent-Replayed"].is_null(),
                "{path}"
            );
        }
    }

    #[test]
    fn the_task_schema_lists_the_statuses_and_priorities_the_domain_knows() {
        let document = document();
        let task = &document["components"]["schemas"]["Task"]["properties"];
        let names = |schema: &Value| schema["enum"].clone();
        assert_eq!(
            names(&task["status"]),
            serde_json::json!(domain::TaskStatus::ALL.map(domain::TaskStatus::as_str))
        );
        assert_eq!(
            names(&task["priority"]),
            serde_json::json!(domain::Priority::ALL.map(domain::Priority::as_str))
        );
    }

    #[test]
    fn operation_ids_are_unique_so_generated_clients_compile() {
        let document = document();
        let mut ids: Vec<&str> = operations(&document)
            .map(|(_, operation)| operation["operationId"].as_str().unwrap())
            .collect();
        let count = ids.len();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), count);
    }

    #[test]
    fn every_referenced_response_and_schema_exists() {
        let document = document();
        let text = document.to_string();
        for reference in text.split("\"$ref\":\"#/components/").skip(1) {
            let pointer = reference.split('"').next().unwrap();
            let (kind, name) = pointer.split_once('/').unwrap();
            assert!(
                !document["components"][kind][name].is_null(),
                "#/components/{pointer} is referenced but not defined"
            );
        }
    }

    #[test]
    fn body_path_and_bearer_operations_document_their_shared_errors() {
        let document = document();
        for (name, operation) in operations(&document) {
            let responses = &operation["responses"];
            if operation.get("requestBody").is_some() {
                for status in ["400", "413", "415", "422"] {
                    assert!(!responses[status].is_null(), "{name} lacks {status}");
                }
            }
            if operation.get("security").is_some() {
                assert!(!responses["401"].is_null(), "{name} lacks 401");
                assert!(!responses["429"].is_null(), "{name} lacks 429");
            }
            let parameters = operation["parameters"].as_array();
            if parameters.is_some_and(|list| list.iter().any(|p| p["in"] == "path")) {
                assert!(!responses["400"].is_null(), "{name} lacks 400");
            }
        }
        assert!(!document["components"]["securitySchemes"]["bearer"].is_null());
    }

    fn list_parameter(document: &Value, path: &str, name: &str) -> Value {
        document["paths"][path]["get"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|parameter| parameter["name"] == name)
            .unwrap()["schema"]
            .clone()
    }

    #[test]
    fn the_documented_query_bounds_are_the_enforced_ones() {
        let document = document();
        for path in ["/api/v1/users", "/api/v1/tasks", "/api/v1/audit"] {
            let limit = list_parameter(&document, path, "limit");
            assert_eq!(limit["minimum"], 1);
            assert_eq!(limit["maximum"], u64::from(extract::MAX_PAGE_SIZE));
            assert_eq!(limit["default"], u64::from(extract::DEFAULT_PAGE_SIZE));
            let cursor = list_parameter(&document, path, "cursor");
            assert_eq!(cursor["maxLength"], extract::MAX_CURSOR_LEN);
        }
        assert_eq!(
            list_parameter(&document, "/api/v1/users", "q")["maxLength"],
            domain::Email::MAX_LEN
        );
        assert_eq!(
            list_parameter(&document, "/api/v1/tasks", "q")["maxLength"],
            domain::TaskTitle::MAX_CHARS
        );
        let sort = list_parameter(&document, "/api/v1/tasks", "sort");
        assert_eq!(sort["default"], "-created_at");
        assert_eq!(sort["enum"].as_array().unwrap().len(), 6);
    }

    #[test]
    fn task_stats_document_that_they_are_eventually_consistent_and_not_cached() {
        let document = document();
        let get = &document["paths"]["/api/v1/users/{id}/task-stats"]["get"];
        let description = get["description"].as_str().unwrap();
        assert!(
            description.contains("eventually consistent"),
            "{description}"
        );
        assert!(description.contains("`as_of`"), "{description}");
        let ok = &get["responses"]["200"];
        assert!(!ok["headers"]["Cache-Control"].is_null());
        let schema = &document["components"]["schemas"]["TaskStats"];
        let mut required: Vec<&str> = schema["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|name| name.as_str().unwrap())
            .collect();
        required.sort_unstable();
        assert_eq!(
            required,
            [
                "as_of",
                "assigned_total",
                "done",
                "in_progress",
                "open",
                "overdue",
                "updated_at"
            ]
        );
    }

    #[test]
    fn the_budget_429_is_not_described_as_failed_sign_ins() {
        let document = document();
        let responses = &document["components"]["responses"];
        let budget = responses["RequestBudgetExhausted"]["description"].to_string();
        assert!(budget.contains("request_budget_exhausted"), "{budget}");
        assert!(!budget.contains("sign-in"), "{budget}");
        assert!(!responses["RequestBudgetExhausted"]["headers"]["Retry-After"].is_null());
        let audit = &document["paths"]["/api/v1/audit"]["get"]["responses"]["429"];
        assert_eq!(
            audit["$ref"],
            "#/components/responses/RequestBudgetExhausted"
        );
    }

    /// Every operation on an item is reached from the create that makes it, with the
    /// id from the body and, where it takes `If-Match`, the version from `ETag`.
    #[test]
    fn each_create_links_to_every_operation_on_what_it_made() {
        let document = document();
        let operations_under = |prefix: &str| -> Vec<(String, bool)> {
            let mut found = Vec::new();
            for (path, item) in document["paths"].as_object().unwrap() {
                let Some(rest) = path.strip_prefix(prefix) else {
                    continue;
                };
                if rest.contains('{') {
                    continue;
                }
                for operation in item.as_object().unwrap().values() {
                    let takes_if_match = operation["parameters"]
                        .as_array()
                        .is_some_and(|list| list.iter().any(|p| p["name"] == IF_MATCH));
                    found.push((
                        operation["operationId"].as_str().unwrap().to_owned(),
                        takes_if_match,
                    ));
                }
            }
            found
        };
        for (collection, item, parameters) in [
            (
                "/api/v1/tasks",
                "/api/v1/tasks/{id}",
                vec![("path.id", "$response.body#/id")],
            ),
            (
                "/api/v1/users",
                "/api/v1/users/{id}",
                vec![("path.id", "$response.body#/id")],
            ),
            (
                "/api/v1/tasks/{id}/checklist",
                "/api/v1/tasks/{id}/checklist/{item_id}",
                vec![
                    ("path.id", "$request.path.id"),
                    ("path.item_id", "$response.body#/id"),
                ],
            ),
        ] {
            let links = &document["paths"][collection]["post"]["responses"]["201"]["links"];
            let targets = operations_under(item);
            assert!(targets.len() >= 3, "{item}");
            assert_eq!(
                links.as_object().unwrap().len(),
                targets.len(),
                "{collection}"
            );
            for (operation, takes_if_match) in targets {
                let link = &links[&operation];
                assert_eq!(link["operationId"], operation.as_str());
                for (name, value) in &parameters {
                    assert_eq!(link["parameters"][name], *value, "{operation}");
                }
                let version = &link["parameters"]["header.If-Match"];
                assert_eq!(!version.is_null(), takes_if_match, "{operation}");
            }
        }
        for (list, get) in [("/api/v1/tasks", "get_task"), ("/api/v1/users", "get_user")] {
            let link = &document["paths"][list]["get"]["responses"]["200"]["links"][get];
            assert_eq!(link["parameters"]["path.id"], "$response.body#/items/0/id");
        }
    }
}
