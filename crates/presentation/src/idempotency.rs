//! `Idempotency-Key` on creates: a client that retries a `POST` with the same key gets
//! the first answer again, marked `Idempotent-Replayed: true`, instead of a second
//! resource. The application layer claims the key and stores the answer; this module
//! reads the key, fingerprints the request and renders the answer it stores.

use std::fmt::Write as _;
use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header::{self, HeaderName};
use actix_web::http::{Method, StatusCode};
use actix_web::{FromRequest, HttpRequest, HttpResponse, mime, web};
use application::ports::{IdempotencyKey, RecordedResponse};
use application::{Idempotent, Outcome, Principal};
use garde::Validate;
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use utoipa::IntoParams;

use crate::error::{ApiError, FieldError};
use crate::extract::{json_body, parse_json};

pub(crate) const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
const IDEMPOTENT_REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");
const MAX_KEY_LEN: usize = 255;

/// A JSON body, read and checked like `ValidJson`, and the `Idempotency-Key` it came
/// with. A key that is not 1 to 255 visible ASCII characters is 422.
// No `Debug`, here or in `RequestKey`: the raw body may hold a password.
pub(crate) struct IdempotentJson<T> {
    pub body: T,
    pub key: Option<RequestKey>,
}

/// The client's key and what makes its request this request: method, path and the
/// body's raw bytes. It documents the header it is read from.
#[derive(IntoParams)]
#[into_params(parameter_in = Header)]
pub(crate) struct RequestKey {
    /// 1 to 255 visible ASCII characters, unique per request the client means to make
    /// once (a UUID does). A retry with the same key, body and caller within 24 hours
    /// gets the first answer again, marked `Idempotent-Replayed: true`; the same key
    /// with another body (passwords aside, which are not fingerprinted) or from another
    /// user is 422 `idempotency_key_reused`.
    #[param(
        rename = "Idempotency-Key",
        required = false,
        min_length = 1,
        max_length = 255,
        pattern = "^[!-~]+$",
        example = "0b5c1c9e-9f4c-4a4e-8a57-4ee4c8e2c1a3"
    )]
    key: String,
    #[param(ignore)]
    method: Method,
    #[param(ignore)]
    path: String,
    #[param(ignore)]
    body: web::Bytes,
}

impl<T> FromRequest for IdempotentJson<T>
where
    T: DeserializeOwned + Validate + 'static,
    T::Context: Default,
{
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let key = client_key(req);
        let (method, path) = (req.method().clone(), req.path().to_owned());
        let body = json_body(req, payload);
        Box::pin(async move {
            let key = key?;
            let bytes = body.await?;
            Ok(Self {
                body: parse_json(&bytes)?,
                key: key.map(|key| RequestKey {
                    key,
                    method,
                    path,
                    body: canonical(&bytes),
                }),
            })
        })
    }
}

/// The body as the fingerprint sees it: the same JSON however its keys are ordered or
/// spaced, so a client that re-serializes its retry still gets the replay.
fn canonical(bytes: &[u8]) -> web::Bytes {
    // serde_json's maps are sorted, so writing a parsed value back is canonical.
    match serde_json::from_slice::<serde_json::Value>(bytes) {
        Ok(value) => value.to_string().into(),
        Err(_) => web::Bytes::copy_from_slice(bytes),
    }
}

/// The `Idempotency-Key` header, if sent once and well formed.
fn client_key(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    let refuse = |message| ApiError::Validation(vec![FieldError::new("Idempotency-Key", message)]);
    let mut values = req.headers().get_all(IDEMPOTENCY_KEY);
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(refuse("must be given at most once"));
    }
    let key = value
        .to_str()
        .ok()
        .filter(|key| (1..=MAX_KEY_LEN).contains(&key.len()))
        .filter(|key| key.bytes().all(|b| b.is_ascii_graphic()))
        .ok_or_else(|| refuse("must be 1 to 255 visible ASCII characters"))?;
    Ok(Some(key.to_owned()))
}

impl RequestKey {
    /// The key as the use case takes it: scoped to the caller's tenant, with how to
    /// render the resource it creates.
    pub(crate) fn scoped<'a, T>(
        self,
        principal: &Principal,
        respond: &'a (dyn Fn(&T) -> RecordedResponse + Sync),
    ) -> Idempotent<'a, T> {
        Idempotent {
            key: IdempotencyKey {
                tenant: principal.tenant_id,
                fingerprint: self.fingerprint(principal),
                key: self.key,
            },
            respond,
        }
    }

    /// Leaves a secret top-level field of the body out of the fingerprint. The
    /// fingerprint is stored, and a fast hash over a password is a cheap way to guess
    /// it; so a retry that differs only in this field replays the first answer.
    pub(crate) fn ignoring(mut self, field: &str) -> Self {
        if let Ok(serde_json::Value::Object(mut body)) = serde_json::from_slice(&self.body) {
            body.remove(field);
            self.body = serde_json::Value::Object(body).to_string().into();
        }
        self
    }

    /// Hex SHA-256 of method, path, caller and body. The caller is part of it so that
    /// another user of the tenant who sends the same key is told the key is taken
    /// (422) rather than handed the first user's answer as their own.
    fn fingerprint(&self, principal: &Principal) -> String {
        let mut hasher = Sha256::new();
        // Method, path and id hold no newline, so the parts cannot run into each other.
        for part in [
            self.method.as_str(),
            &self.path,
            &principal.user_id.to_string(),
        ] {
            hasher.update(part.as_bytes());
            hasher.update(b"\n");
        }
        hasher.update(&self.body);
        hasher
            .finalize()
            .iter()
            .fold(String::with_capacity(64), |mut hex, byte| {
                let _ = write!(hex, "{byte:02x}");
                hex
            })
    }
}

/// The 201 of a create: the new resource's URL and JSON, as sent now and as recorded
/// for replays.
pub(crate) fn created(location: String, body: &impl Serialize) -> RecordedResponse {
    RecordedResponse {
        status: StatusCode::CREATED.as_u16(),
        location: Some(location),
        // The DTOs hold strings, numbers and dates only: serializing them cannot fail.
        body: serde_json::to_vec(body).unwrap_or_default(),
    }
}

/// The answer to an idempotent create: the new resource as `render` shows it, or the
/// recorded answer of the first request with the key, marked as a replay.
pub(crate) fn respond<T>(
    outcome: &Outcome<T>,
    render: impl Fn(&T) -> RecordedResponse,
) -> HttpResponse {
    let (recorded, replayed) = match outcome {
        Outcome::Created(value) => (render(value), false),
        Outcome::Replayed(recorded) => (recorded.clone(), true),
    };
    let status = StatusCode::from_u16(recorded.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = HttpResponse::build(status);
    response.content_type(mime::APPLICATION_JSON);
    if let Some(location) = recorded.location {
        response.insert_header((header::LOCATION, location));
    }
    if replayed {
        response.insert_header((IDEMPOTENT_REPLAYED, "true"));
    }
    // The ETag names the version in the body, new or replayed: a replay's body is the
    // resource as it was created, so its ETag is that version too.
    let version = serde_json::from_slice::<serde_json::Value>(&recorded.body)
        .ok()
        .and_then(|body| body["version"].as_i64());
    if let Some(version) = version {
        response.insert_header((header::ETAG, crate::conditional::etag(version)));
    }
    response.body(recorded.body)
}

#[cfg(test)]
mod tests {
    use actix_web::body::to_bytes;
    use actix_web::test::TestRequest;
    use domain::{Role, TenantId, UserId};
    use serde::Deserialize;
    use uuid::Uuid;

    use super::*;

    #[derive(Debug, Deserialize, Validate)]
    #[serde(deny_unknown_fields)]
    struct Thing {
        #[garde(length(min = 1))]
        name: String,
    }

    fn principal() -> Principal {
        Principal {
            user_id: UserId::from_uuid(Uuid::now_v7()),
            tenant_id: TenantId::from_uuid(Uuid::now_v7()),
            role: Role::Member,
        }
    }

    async fn extract(request: TestRequest, body: &str) -> Result<IdempotentJson<Thing>, ApiError> {
        let (request, mut payload) = request
            .uri("/api/v1/things")
            .insert_header((header::CONTENT_TYPE, "application/json"))
            .set_payload(body.to_owned())
            .to_http_parts();
        IdempotentJson::<Thing>::from_request(&request, &mut payload).await
    }

    fn key(method: Method, path: &str, body: &str) -> RequestKey {
        RequestKey {
            key: "k".to_owned(),
            method,
            path: path.to_owned(),
            body: web::Bytes::from(body.to_owned()),
        }
    }

    fn rejected_field(result: Result<IdempotentJson<Thing>, ApiError>) -> String {
        match result.err() {
            Some(ApiError::Validation(errors)) => errors[0].field.clone(),
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[actix_web::test]
    async fn the_key_and_the_body_are_read_together() {
        let request = TestRequest::post().insert_header((IDEMPOTENCY_KEY, "retry-1"));
        let Ok(extracted) = extract(request, r#"{"name":"a"}"#).await else {
            panic!("the request is valid");
        };
        assert_eq!(extracted.body.name, "a");
        let key = extracted.key.unwrap();
        assert_eq!(
            (key.key.as_str(), key.path.as_str()),
            ("retry-1", "/api/v1/things")
        );
        assert_eq!(key.body, r#"{"name":"a"}"#.as_bytes());
        let without = extract(TestRequest::post(), r#"{"name":"a"}"#).await;
        assert!(without.is_ok_and(|extracted| extracted.key.is_none()));
    }

    #[actix_web::test]
    async fn a_key_must_be_1_to_255_visible_ascii_characters_sent_once() {
        for bad in ["", "with space", &"k".repeat(256)] {
            let request = TestRequest::post().insert_header((IDEMPOTENCY_KEY, bad));
            let result = extract(request, r#"{"name":"a"}"#).await;
            assert_eq!(rejected_field(result), "Idempotency-Key", "{bad:?}");
        }
        let twice = TestRequest::post()
            .append_header((IDEMPOTENCY_KEY, "a"))
            .append_header((IDEMPOTENCY_KEY, "b"));
        let result = extract(twice, r#"{"name":"a"}"#).await;
        assert_eq!(rejected_field(result), "Idempotency-Key");
        let longest = TestRequest::post().insert_header((IDEMPOTENCY_KEY, "~".repeat(255)));
        assert!(extract(longest, r#"{"name":"a"}"#).await.is_ok());
    }

    #[actix_web::test]
    async fn the_body_is_still_validated_when_a_key_is_sent() {
        let request = TestRequest::post().insert_header((IDEMPOTENCY_KEY, "k"));
        assert_eq!(
            rejected_field(extract(request, r#"{"name":""}"#).await),
            "name"
        );
    }

    #[test]
    fn the_fingerprint_is_hex_sha256_and_changes_with_every_part_of_the_request() {
        let caller = principal();
        let base = key(Method::POST, "/api/v1/tasks", "{}").fingerprint(&caller);
        assert_eq!(base.len(), 64);
        assert!(
            base.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        assert_eq!(
            base,
            key(Method::POST, "/api/v1/tasks", "{}").fingerprint(&caller)
        );
        for other in [
            key(Method::PUT, "/api/v1/tasks", "{}").fingerprint(&caller),
            key(Method::POST, "/api/v1/users", "{}").fingerprint(&caller),
            key(Method::POST, "/api/v1/tasks", "{ }").fingerprint(&caller),
            key(Method::POST, "/api/v1/tasks", "{}").fingerprint(&principal()),
        ] {
            assert_ne!(base, other);
        }
    }

    #[test]
    fn the_same_json_with_other_key_order_or_spacing_has_the_same_fingerprint() {
        assert_eq!(
            canonical(br#"{"title": "a", "priority": "low"}"#),
            canonical(br#"{"priority":"low","title":"a"}"#)
        );
        assert_ne!(
            canonical(br#"{"title":"a"}"#),
            canonical(br#"{"title":"b"}"#)
        );
    }

    #[test]
    fn an_ignored_field_does_not_reach_the_fingerprint() {
        let caller = principal();
        let fingerprint = |body: &str| {
            key(Method::POST, "/api/v1/users", body)
                .ignoring("password")
                .fingerprint(&caller)
        };
        let with_password = fingerprint(r#"{"email":"a@b.c","password":"hunter22"}"#);
        assert_eq!(
            with_password,
            fingerprint(r#"{"email":"a@b.c","password":"other"}"#)
        );
        assert_eq!(with_password, fingerprint(r#"{"email":"a@b.c"}"#));
        assert_ne!(
            with_password,
            fingerprint(r#"{"email":"x@b.c","password":"hunter22"}"#)
        );
    }

    #[test]
    fn a_scoped_key_belongs_to_the_callers_tenant() {
        let caller = principal();
        let respond = |name: &String| created(format!("/things/{name}"), name);
        let idempotent = key(Method::POST, "/things", "{}").scoped(&caller, &respond);
        assert_eq!(idempotent.key.tenant, caller.tenant_id);
        assert_eq!(idempotent.key.key, "k");
        let recorded = (idempotent.respond)(&"a".to_owned());
        assert_eq!(recorded.status, 201);
        assert_eq!(recorded.location.as_deref(), Some("/things/a"));
        assert_eq!(recorded.body, b"\"a\"");
    }

    #[actix_web::test]
    async fn a_replay_answers_what_was_recorded_and_says_so() {
        let render = |name: &String| created(format!("/things/{name}"), name);
        let fresh = respond(&Outcome::Created("a".to_owned()), render);
        assert_eq!(fresh.status(), StatusCode::CREATED);
        assert!(!fresh.headers().contains_key(IDEMPOTENT_REPLAYED));
        let recorded = render(&"b".to_owned());
        let replay = respond(&Outcome::Replayed(recorded), render);
        assert_eq!(replay.status(), StatusCode::CREATED);
        let headers = replay.headers().clone();
        assert_eq!(headers.get(IDEMPOTENT_REPLAYED).unwrap(), "true");
        assert_eq!(headers.get(header::LOCATION).unwrap(), "/things/b");
        assert_eq!(
            headers.get(header::CONTENT_TYPE).unwrap(),
            "application/json"
        );
        assert_eq!(to_bytes(replay.into_body()).await.unwrap(), "\"b\"");
    }
}
