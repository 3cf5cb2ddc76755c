//! The ways into a handler: `ValidJson` for bodies, `ValidQuery` for query strings,
//! `Authenticated` for the caller. Each fails with an `ApiError`, so bad input is
//! answered in problem+json like everything else.
//!
//! Bodies and query strings go through one pipeline: to a `serde_json::Value`, then to
//! the DTO with `serde_path_to_error` (so a wrong type, a missing or an unknown field is
//! reported with its path), then `garde::Validate`. Domain rules are not repeated here:
//! handlers parse the DTO's strings into value objects afterwards.

use std::future::{Future, Ready, ready};
use std::pin::Pin;
use std::str::FromStr;

use actix_web::body::{BodyStream, to_bytes_limited};
use actix_web::dev::Payload;
use actix_web::error::PathError;
use actix_web::http::header;
use actix_web::{FromRequest, HttpMessage, HttpRequest, mime, web};
use application::{Error, Principal};
use garde::Validate;
use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

use crate::AppState;
use crate::error::{ApiError, FieldError};

/// The largest request body accepted: 64 KiB is plenty for every request of this API.
pub(crate) const MAX_BODY_BYTES: usize = 64 * 1024;

/// A JSON body, checked and validated: `Content-Type` must be `application/json` or
/// another `application/*+json` type (415), the body at most 64 KiB whether or not it
/// declares its length (413), syntactically JSON (400), shaped like `T` (422 with the
/// field path) and valid by `T`'s garde rules (422 with every field).
///
/// Any `+json` type is accepted because the suffix promises JSON syntax (RFC 6839) and
/// the DTO decides what the content means; a `charset` parameter is ignored because
/// JSON is UTF-8 (RFC 8259), so a body in another encoding fails as malformed.
#[derive(Debug)]
pub(crate) struct ValidJson<T>(pub T);

impl<T> FromRequest for ValidJson<T>
where
    T: DeserializeOwned + Validate + 'static,
    T::Context: Default,
{
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = json_body(req, payload);
        Box::pin(async move { parse_json(&body.await?).map(Self) })
    }
}

/// The raw bytes of a JSON body, refused as `ValidJson` describes (415, 413) before
/// they are parsed.
pub(crate) fn json_body(
    req: &HttpRequest,
    payload: &mut Payload,
) -> impl Future<Output = Result<web::Bytes, ApiError>> + 'static {
    let headers_ok = check_json_headers(req);
    let payload = payload.take();
    async move {
        headers_ok?;
        match to_bytes_limited(BodyStream::new(payload), MAX_BODY_BYTES).await {
            Err(_limit_exceeded) => Err(ApiError::PayloadTooLarge),
            Ok(Err(error)) => Err(ApiError::MalformedJson(format!(
                "the body could not be read: {error}"
            ))),
            Ok(Ok(bytes)) => Ok(bytes),
        }
    }
}

/// A body read by `json_body`, parsed (400), shaped like `T` and validated (422).
pub(crate) fn parse_json<T>(bytes: &[u8]) -> Result<T, ApiError>
where
    T: DeserializeOwned + Validate,
    T::Context: Default,
{
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|error| ApiError::MalformedJson(error.to_string()))?;
    decode(value)
}

/// Refuses what can be refused before reading a byte: a body that is not declared as
/// JSON (`application/json` or any `application/*+json`), or declared too large.
fn check_json_headers(req: &HttpRequest) -> Result<(), ApiError> {
    let is_json = req.mime_type().ok().flatten().is_some_and(|mime| {
        mime.type_() == mime::APPLICATION
            && (mime.subtype() == mime::JSON || mime.suffix() == Some(mime::JSON))
    });
    if !is_json {
        return Err(ApiError::UnsupportedMediaType);
    }
    let declared_length = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<usize>().ok());
    if declared_length.is_some_and(|length| length > MAX_BODY_BYTES) {
        return Err(ApiError::PayloadTooLarge);
    }
    Ok(())
}

/// The largest page of any list: the use cases' own bound, so the two cannot drift.
/// The documented bounds of `limit` repeat it (a test checks).
pub(crate) const MAX_PAGE_SIZE: u32 = application::MAX_PAGE_SIZE;
pub(crate) const DEFAULT_PAGE_SIZE: u32 = 20;
/// The longest `cursor` a list reads; every cursor the server issues is shorter.
pub(crate) const MAX_CURSOR_LEN: usize = 256;

/// A query string, decoded like a JSON body whose values are all strings: unknown,
/// repeated, mistyped and invalid parameters are all 422 with the parameter's name.
/// Numeric and boolean fields use [`from_text`]. Prefer this to `web::Query`, whose
/// errors do not say which parameter was wrong.
#[derive(Debug)]
pub(crate) struct ValidQuery<T>(pub T);

impl<T> FromRequest for ValidQuery<T>
where
    T: DeserializeOwned + Validate,
    T::Context: Default,
{
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(query_object(req.query_string()).and_then(decode).map(Self))
    }
}

fn query_object(query: &str) -> Result<Value, ApiError> {
    let pairs = web::Query::<Vec<(String, String)>>::from_query(query)
        .map_err(|error| ApiError::Validation(vec![FieldError::new("", error)]))?
        .into_inner();
    let mut object = Map::new();
    let mut repeated = Vec::new();
    for (name, value) in pairs {
        if object.insert(name.clone(), Value::String(value)).is_some() {
            repeated.push(FieldError::new(name, "must be given at most once"));
        }
    }
    if repeated.is_empty() {
        Ok(Value::Object(object))
    } else {
        Err(ApiError::Validation(repeated))
    }
}

/// `#[serde(default, deserialize_with = "from_text")]` for a query parameter that is
/// not a string: parses its text with `FromStr`.
pub(crate) fn from_text<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr<Err: std::fmt::Display>,
{
    Option::<String>::deserialize(deserializer)?
        .map(|text| text.parse().map_err(D::Error::custom))
        .transpose()
}

/// Shapes a JSON value into `T`, then validates it.
fn decode<T>(value: Value) -> Result<T, ApiError>
where
    T: DeserializeOwned + Validate,
    T::Context: Default,
{
    let decoded: T = serde_path_to_error::deserialize(value).map_err(|error| {
        let message = error.inner().to_string();
        ApiError::Validation(vec![FieldError::new(
            field_path(error.path(), &message),
            message,
        )])
    })?;
    decoded.validate().map_err(|report| {
        ApiError::Validation(
            report
                .iter()
                .map(|(path, error)| FieldError::new(path.to_string(), error.message()))
                .collect(),
        )
    })?;
    Ok(decoded)
}

/// The path of a deserialization error, in garde's notation (`a.b[0]`, empty for the
/// root). serde reports a missing field at its parent, naming it only in the message
/// ("missing field `email`"), so the name is taken from there.
fn field_path(path: &serde_path_to_error::Path, message: &str) -> String {
    let parent = match path.to_string() {
        root if root == "." => String::new(),
        parent => parent,
    };
    let missing = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next());
    match missing {
        Some(field) if parent.is_empty() => field.to_owned(),
        Some(field) => format!("{parent}.{field}"),
        None => parent,
    }
}

/// Path segments that do not parse (a non-UUID id) are 400, not actix's plain text.
pub(crate) fn path_config() -> web::PathConfig {
    web::PathConfig::default().error_handler(|error, _| {
        let reason = match error {
            PathError::Deserialize(reason) => reason.to_string(),
            other => other.to_string(),
        };
        ApiError::InvalidPath(reason).into()
    })
}

/// The caller, proven by `Authorization: Bearer <token>`. Anything else is 401 with a
/// `WWW-Authenticate` challenge; a tenant that has spent its request budget is 429.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Authenticated(pub Principal);

impl FromRequest for Authenticated {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let bearer = bearer_token(req).map(str::to_owned);
        Box::pin(async move {
            let Some(state) = state else {
                let wiring = std::io::Error::other("AppState is not registered with the app");
                return Err(Error::Unexpected(wiring.into()).into());
            };
            let principal = state.auth.authenticate.execute(bearer.as_deref()).await?;
            Ok(Self(principal))
        })
    }
}

/// The token of an `Authorization: Bearer` header; `None` when there is no header or
/// it uses another scheme (which RFC 6750 treats as no token at all).
fn bearer_token(req: &HttpRequest) -> Option<&str> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

#[cfg(test)]
mod tests {
    use actix_web::error::PayloadError;
    use actix_web::http::StatusCode;
    use actix_web::test::{TestRequest, call_service, init_service, read_body};
    use actix_web::{App, HttpResponse};
    use futures_util::Stream;
    use serde_json::json;

    use super::*;

    #[derive(Debug, Deserialize, Validate)]
    #[serde(deny_unknown_fields)]
    struct Signup {
        #[garde(length(chars, min = 3, max = 10))]
        name: String,
        #[garde(range(min = 18))]
        age: u32,
        #[garde(dive)]
        address: Address,
    }

    #[derive(Debug, Deserialize, Validate)]
    #[serde(deny_unknown_fields)]
    struct Address {
        #[garde(length(min = 1))]
        city: String,
    }

    async fn signup(ValidJson(body): ValidJson<Signup>) -> HttpResponse {
        HttpResponse::Ok().body(body.name)
    }

    /// Posts `body` with `content_type` to a route taking `ValidJson<Signup>`; returns
    /// the status and, for errors, the problem document.
    async fn post(content_type: Option<&str>, body: impl Into<Vec<u8>>) -> (StatusCode, Value) {
        let app = init_service(App::new().route("/", web::post().to(signup))).await;
        let mut request = TestRequest::post().uri("/").set_payload(body.into());
        if let Some(content_type) = content_type {
            request = request.insert_header((header::CONTENT_TYPE, content_type));
        }
        let response = call_service(&app, request.to_request()).await;
        let status = response.status();
        let bytes = read_body(response).await;
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    fn valid() -> Value {
        json!({"name": "ada", "age": 36, "address": {"city": "London"}})
    }

    fn fields(problem: &Value) -> Vec<&str> {
        problem["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|error| error["field"].as_str().unwrap())
            .collect()
    }

    #[actix_web::test]
    async fn a_valid_body_reaches_the_handler() {
        let (status, _) = post(Some("application/json"), valid().to_string()).await;
        assert_eq!(status, StatusCode::OK);
    }

    #[actix_web::test]
    async fn a_json_suffix_media_type_and_a_charset_are_accepted() {
        for content_type in [
            "application/json; charset=utf-8",
            "application/merge-patch+json",
            "application/problem+json",
        ] {
            let (status, _) = post(Some(content_type), valid().to_string()).await;
            assert_eq!(status, StatusCode::OK, "{content_type}");
        }
    }

    #[actix_web::test]
    async fn a_body_without_a_json_content_type_is_415() {
        for content_type in [
            None,
            Some("text/plain"),
            Some("application/x-www-form-urlencoded"),
        ] {
            let (status, problem) = post(content_type, valid().to_string()).await;
            assert_eq!(
                status,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "{content_type:?}"
            );
            assert_eq!(problem["code"], "unsupported_media_type");
        }
    }

    #[actix_web::test]
    async fn a_body_that_is_not_json_is_400() {
        for body in ["{\"name\": ", "not json", ""] {
            let (status, problem) = post(Some("application/json"), body).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
            assert_eq!(problem["code"], "malformed_json");
        }
    }

    #[actix_web::test]
    async fn a_body_over_64_kib_is_413() {
        let name = "x".repeat(MAX_BODY_BYTES);
        let body = json!({"name": name, "age": 40, "address": {"city": "Paris"}});
        let (status, problem) = post(Some("application/json"), body.to_string()).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(problem["code"], "payload_too_large");
    }

    /// Extracts a `Signup` from `body` as it arrives in chunks without `Content-Length`,
    /// the way a chunked request streams it.
    async fn extract_streamed(body: &Value) -> Result<Signup, ApiError> {
        let (request, _) = TestRequest::post()
            .insert_header((header::CONTENT_TYPE, "application/json"))
            .to_http_parts();
        assert!(!request.headers().contains_key(header::CONTENT_LENGTH));
        let chunks: Vec<Result<web::Bytes, PayloadError>> = body
            .to_string()
            .into_bytes()
            .chunks(8 * 1024)
            .map(|chunk| Ok(web::Bytes::copy_from_slice(chunk)))
            .collect();
        let stream: Pin<Box<dyn Stream<Item = Result<web::Bytes, PayloadError>>>> =
            Box::pin(futures_util::stream::iter(chunks));
        let mut payload = Payload::from(stream);
        ValidJson::<Signup>::from_request(&request, &mut payload)
            .await
            .map(|ValidJson(signup)| signup)
    }

    #[actix_web::test]
    async fn a_streamed_body_is_limited_to_64_kib_too() {
        let small = extract_streamed(&valid()).await.unwrap();
        assert_eq!(small.name, "ada");
        let mut large = valid();
        large["name"] = json!("x".repeat(MAX_BODY_BYTES));
        let error = extract_streamed(&large).await.unwrap_err();
        assert!(matches!(error, ApiError::PayloadTooLarge), "{error:?}");
    }

    #[actix_web::test]
    async fn a_mistyped_field_is_422_with_its_path() {
        let mut body = valid();
        body["address"]["city"] = json!(12);
        let (status, problem) = post(Some("application/json"), body.to_string()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(problem["code"], "validation_failed");
        assert_eq!(fields(&problem), ["address.city"]);
    }

    #[actix_web::test]
    async fn a_missing_field_is_422_naming_the_field() {
        let (_, problem) = post(Some("application/json"), r#"{"name":"ada","age":36}"#).await;
        assert_eq!(fields(&problem), ["address"]);
        let body = r#"{"name":"ada","age":36,"address":{}}"#;
        let (_, problem) = post(Some("application/json"), body).await;
        assert_eq!(fields(&problem), ["address.city"]);
    }

    #[actix_web::test]
    async fn an_unknown_field_is_422_naming_the_field() {
        let mut body = valid();
        body["admin"] = json!(true);
        let (status, problem) = post(Some("application/json"), body.to_string()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(fields(&problem), ["admin"]);
    }

    #[actix_web::test]
    async fn every_rule_a_body_breaks_is_reported_at_once() {
        let body = json!({"name": "al", "age": 12, "address": {"city": ""}});
        let (status, problem) = post(Some("application/json"), body.to_string()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        let mut reported = fields(&problem);
        reported.sort_unstable();
        assert_eq!(reported, ["address.city", "age", "name"]);
    }

    #[actix_web::test]
    async fn a_body_that_is_not_an_object_is_422_at_the_root() {
        for body in ["\"ada\"", "null", "42"] {
            let (status, problem) = post(Some("application/json"), body).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
            assert_eq!(fields(&problem), [""], "{body}");
        }
    }

    #[derive(Debug, Deserialize, Validate)]
    #[serde(deny_unknown_fields)]
    struct Page {
        #[serde(default, deserialize_with = "from_text")]
        #[garde(range(min = 1, max = 100))]
        limit: Option<u32>,
        #[serde(default, deserialize_with = "from_text")]
        #[garde(skip)]
        active: Option<bool>,
        #[garde(length(max = 5))]
        q: Option<String>,
    }

    fn query(query: &str) -> Result<Page, ApiError> {
        let request = TestRequest::get()
            .uri(&format!("/?{query}"))
            .to_http_request();
        ValidQuery::<Page>::extract(&request)
            .into_inner()
            .map(|ValidQuery(page)| page)
    }

    fn query_fields(query_string: &str) -> Vec<String> {
        match query(query_string) {
            Err(ApiError::Validation(errors)) => errors.into_iter().map(|e| e.field).collect(),
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn query_parameters_are_parsed_into_their_types() {
        let page = query("limit=20&active=false&q=ad%20a").unwrap();
        assert_eq!(page.limit, Some(20));
        assert_eq!(page.active, Some(false));
        assert_eq!(page.q.as_deref(), Some("ad a"));
        let empty = query("").unwrap();
        assert_eq!((empty.limit, empty.active, empty.q), (None, None, None));
    }

    #[test]
    fn a_bad_query_parameter_is_reported_by_name() {
        assert_eq!(query_fields("limit=abc"), ["limit"]);
        assert_eq!(query_fields("limit=0"), ["limit"]);
        assert_eq!(query_fields("active=yes"), ["active"]);
        assert_eq!(query_fields("q=toolong"), ["q"]);
        assert_eq!(query_fields("sort=name"), ["sort"]);
        assert_eq!(query_fields("limit=1&limit=2"), ["limit"]);
    }

    #[test]
    fn the_bearer_token_is_read_from_the_authorization_header() {
        let token = |value: &str| {
            let request = TestRequest::default()
                .insert_header((header::AUTHORIZATION, value))
                .to_http_request();
            bearer_token(&request).map(str::to_owned)
        };
        assert_eq!(token("Bearer abc.def").as_deref(), Some("abc.def"));
        assert_eq!(token("bearer  abc ").as_deref(), Some("abc"));
        assert_eq!(token("Basic dXNlcjpwdw=="), None);
        assert_eq!(token("Bearer"), None);
        assert_eq!(
            bearer_token(&TestRequest::default().to_http_request()),
            None
        );
    }
}
