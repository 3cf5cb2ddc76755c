//! The HTTP shape every aggregate's resource shares, so that clients learn it once: its
//! version as a strong `ETag` on every answer that carries it, revalidation with
//! `If-None-Match` (304), and deleted ones readable by admins who ask for them
//! (`include_deleted`). Changes take `If-Match` (`conditional`), creates take
//! `Idempotency-Key` (`idempotency`).

use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, HttpResponseBuilder};
use domain::AggregateId;
use garde::Validate;
use serde::{Deserialize, Serialize};
use utoipa::IntoParams;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::schema::{Object, Type};
use uuid::Uuid;

use crate::conditional::{IfNoneMatch, etag};
use crate::extract::from_text;

/// Reading one resource.
#[derive(Debug, Default, Deserialize, Validate, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct ReadParams {
    /// Admins only: a deleted resource is answered too (without it, it is 404; a
    /// member asking is 403).
    #[serde(default, deserialize_with = "from_text")]
    #[garde(skip)]
    include_deleted: Option<bool>,
}

impl ReadParams {
    pub(crate) fn include_deleted(&self) -> bool {
        self.include_deleted.unwrap_or(false)
    }
}

/// The cursor of a list paged by id: opaque to clients, so paging can change; today
/// it is the id of the last item of the page, in simple (unhyphenated) hex.
pub(crate) fn encode_cursor<I: AggregateId>(last: I) -> String {
    last.as_uuid().simple().to_string()
}

/// The id a cursor of [`encode_cursor`] names.
pub(crate) fn decode_cursor<I: AggregateId>(cursor: &str) -> Result<I, &'static str> {
    let uuid = (cursor.len() == 32)
        .then(|| Uuid::try_parse(cursor).ok())
        .flatten()
        .ok_or("is not a cursor this API issued")?;
    Ok(I::from_uuid(uuid))
}

/// A response of `status` with `version` as its `ETag`.
pub(crate) fn versioned(status: StatusCode, version: i64) -> HttpResponseBuilder {
    let mut response = HttpResponse::build(status);
    response.insert_header((header::ETAG, etag(version)));
    response
}

/// 200 with the resource at `version` as `body`.
pub(crate) fn current(version: i64, body: &impl Serialize) -> HttpResponse {
    versioned(StatusCode::OK, version).json(body)
}

/// 304 without a body when the client holds `version` already, else 200 with `body`.
pub(crate) fn revalidated(
    if_none_match: &IfNoneMatch,
    version: i64,
    body: impl FnOnce() -> HttpResponse,
) -> HttpResponse {
    if if_none_match.matches(version) {
        versioned(StatusCode::NOT_MODIFIED, version).finish()
    } else {
        body()
    }
}

/// Declares the response of the routes that return a resource: its JSON (the schema
/// `$schema`) and its version as `ETag`. For `(status = 200, response = $name)`.
macro_rules! versioned_response {
    ($name:ident, $schema:literal, $description:literal) => {
        #[doc = $description]
        pub(crate) enum $name {}

        impl<'r> utoipa::ToResponse<'r> for $name {
            fn response() -> (&'r str, utoipa::openapi::RefOr<utoipa::openapi::Response>) {
                let response = utoipa::openapi::response::ResponseBuilder::new()
                    .description($description)
                    .content(
                        "application/json",
                        utoipa::openapi::Content::new(Some(
                            utoipa::openapi::Ref::from_schema_name($schema),
                        )),
                    )
                    .header("ETag", $crate::resource::etag_header("Its version"));
                (stringify!($name), response.build().into())
            }
        }
    };
}

pub(crate) use versioned_response;

/// The documentation of an `ETag` response header.
pub(crate) fn etag_header(description: &str) -> utoipa::openapi::header::Header {
    HeaderBuilder::new()
        .schema(Some(Object::with_type(Type::String)))
        .description(Some(format!(
            "{description}, as `\"<version>\"`: send it back in `If-Match` or `If-None-Match`"
        )))
        .build()
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_cursor_decodes_to_the_id_it_was_encoded_from() {
        let id = domain::UserId::from_uuid(uuid::Uuid::now_v7());
        let cursor = super::encode_cursor(id);
        assert_eq!(cursor.len(), 32);
        assert!(cursor.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(super::decode_cursor(&cursor), Ok(id));
    }

    #[test]
    fn a_cursor_the_api_did_not_issue_is_refused() {
        let hyphenated = uuid::Uuid::now_v7().to_string();
        for cursor in ["", "abc", "zz".repeat(16).as_str(), hyphenated.as_str()] {
            assert!(
                super::decode_cursor::<domain::UserId>(cursor).is_err(),
                "{cursor:?}"
            );
        }
    }

    use actix_web::test::TestRequest;
    use actix_web::{FromRequest, web};

    use super::*;

    #[actix_web::test]
    async fn include_deleted_is_off_unless_asked_for() {
        let read = |query: &str| {
            let request = TestRequest::get()
                .uri(&format!("/things/1?{query}"))
                .to_http_request();
            web::Query::<ReadParams>::extract(&request)
        };
        assert!(!read("").await.unwrap().include_deleted());
        assert!(
            read("include_deleted=true")
                .await
                .unwrap()
                .include_deleted()
        );
        assert!(
            read("other=1").await.is_err(),
            "unknown parameters are refused"
        );
    }

    #[test]
    fn a_client_holding_the_version_gets_304_without_a_body_and_the_same_etag() {
        let request = TestRequest::default()
            .insert_header((header::IF_NONE_MATCH, "\"3\""))
            .to_http_request();
        let held = IfNoneMatch::extract(&request).into_inner().unwrap();
        let response = revalidated(&held, 3, || current(3, &"body"));
        assert_eq!(response.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(response.headers().get(header::ETAG).unwrap(), "\"3\"");
        let response = revalidated(&held, 4, || current(4, &"body"));
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers().get(header::ETAG).unwrap(), "\"4\"");
    }
}
