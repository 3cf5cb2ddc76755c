//! What every response says about how it may be handled, and who else may read it.
//!
//! Every response: `X-Content-Type-Options: nosniff`, `Referrer-Policy: no-referrer`,
//! framing denied (`X-Frame-Options` and CSP `frame-ancestors`), a Content-Security-Policy
//! that lets an API response load nothing (the docs page sets its own), and
//! `Cache-Control: no-store` on the answers to authenticated requests unless the handler
//! chose otherwise. With HSTS on, `Strict-Transport-Security` too.
//!
//! Cross-origin reads are off unless origins are listed: then a preflight from one of
//! them is answered here, and its requests' answers carry the CORS headers a browser
//! needs. An origin not listed gets none, which browsers treat as a refusal.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{HttpResponse, web};

use crate::AppState;

/// How responses are marked, and which other origins may read them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResponsePolicy {
    /// Sends `Strict-Transport-Security`: turn on when the service is only reached
    /// over HTTPS.
    pub hsts: bool,
    /// Origins (`https://app.example.com`) whose browser code may call the API.
    pub cors_origins: Vec<String>,
}

/// The policy an API response gets when the handler set none: load nothing, be framed
/// by nothing.
const API_CSP: &str = "default-src 'none'; frame-ancestors 'none'";
const HSTS: &str = "max-age=31536000; includeSubDomains";
const CORS_METHODS: &str = "GET, HEAD, POST, PUT, PATCH, DELETE";
const CORS_REQUEST_HEADERS: &str =
    "authorization, content-type, idempotency-key, if-match, if-none-match, x-request-id";
const CORS_EXPOSED_HEADERS: &str =
    "etag, location, retry-after, idempotent-replayed, x-request-id, x-trace-id";

impl ResponsePolicy {
    /// The request's `Origin`, when it is one of the allowed.
    fn allowed_origin(&self, headers: &HeaderMap) -> Option<HeaderValue> {
        let origin = headers.get(header::ORIGIN)?;
        let text = origin.to_str().ok()?;
        self.cors_origins
            .iter()
            .any(|allowed| allowed == text)
            .then(|| origin.clone())
    }
}

/// The middleware: answers allowed preflights, and marks every response.
pub(crate) async fn mark(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let policy = request
        .app_data::<web::Data<AppState>>()
        .map(|state| state.response_policy.clone())
        .unwrap_or_default();
    let origin = policy.allowed_origin(request.headers());
    let authenticated = request.headers().contains_key(header::AUTHORIZATION);
    let preflight = request.method() == Method::OPTIONS
        && request
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    if let (true, Some(origin)) = (preflight, &origin) {
        let mut response = HttpResponse::new(StatusCode::NO_CONTENT);
        let headers = response.headers_mut();
        cors(headers, origin);
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static(CORS_METHODS),
        );
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static(CORS_REQUEST_HEADERS),
        );
        headers.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("600"),
        );
        mark_all(headers, &policy, false);
        return Ok(request.into_response(response).map_into_right_body());
    }
    let mut response = next.call(request).await?;
    let headers = response.headers_mut();
    if let Some(origin) = &origin {
        cors(headers, origin);
        headers.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static(CORS_EXPOSED_HEADERS),
        );
    }
    mark_all(headers, &policy, authenticated);
    Ok(response.map_into_left_body())
}

fn cors(headers: &mut HeaderMap, origin: &HeaderValue) {
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
    headers.append(header::VARY, HeaderValue::from_static("Origin"));
}

fn mark_all(headers: &mut HeaderMap, policy: &ResponsePolicy, authenticated: bool) {
    let unless_set = |headers: &mut HeaderMap, name: HeaderName, value: &'static str| {
        if !headers.contains_key(&name) {
            headers.insert(name, HeaderValue::from_static(value));
        }
    };
    unless_set(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    unless_set(headers, header::REFERRER_POLICY, "no-referrer");
    unless_set(headers, header::X_FRAME_OPTIONS, "DENY");
    unless_set(headers, header::CONTENT_SECURITY_POLICY, API_CSP);
    if authenticated {
        unless_set(headers, header::CACHE_CONTROL, "no-store");
    }
    if policy.hsts {
        unless_set(headers, header::STRICT_TRANSPORT_SECURITY, HSTS);
    }
}
