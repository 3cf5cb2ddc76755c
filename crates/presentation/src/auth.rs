//! `/api/v1/auth`: signing up, signing in and out, refreshing tokens.
//!
//! DTOs that hold a password or a token do not derive `Debug`, so they cannot end up
//! in a log line by accident.

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use application::auth::{ChangePasswordCommand, LoginCommand, RegisterTenantCommand, TokenPair};
use chrono::{DateTime, Utc};
use domain::{Email, Password, TenantName, Username};
use garde::Validate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::AppState;
use crate::client::ClientAddress;
use crate::error::{ApiError, FieldErrors, Problem};
use crate::extract::{Authenticated, ValidJson};
use crate::openapi::{TooManyRequests, Unauthorized};
use crate::routing::Routes;
use crate::schema;
use crate::users::User;

/// Every route of signing up and in.
pub(crate) fn routes(routes: Routes) -> Routes {
    routes
        .route(__path_register, register)
        .route(__path_login, login)
        .route(__path_refresh, refresh)
        .route(__path_logout, logout)
        .route(__path_change_password, change_password)
}

/// Refresh tokens are opaque; no sane one is longer than this.
const MAX_REFRESH_TOKEN_LEN: usize = 512;

/// A new tenant and its first user, who becomes its admin.
#[derive(Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
// Every field is parsed by its domain value object; garde has nothing to add.
#[garde(allow_unvalidated)]
pub(crate) struct Registration {
    #[schema(schema_with = schema::tenant_name)]
    tenant_name: String,
    #[schema(schema_with = schema::email)]
    email: String,
    #[schema(schema_with = schema::username)]
    username: String,
    #[schema(schema_with = schema::new_password)]
    password: String,
}

impl Registration {
    fn into_command(self, client: String) -> Result<RegisterTenantCommand, ApiError> {
        let mut errors = FieldErrors::default();
        let tenant_name = errors.check("tenant_name", TenantName::parse(&self.tenant_name));
        let email = errors.check("email", Email::parse(&self.email));
        let username = errors.check("username", Username::parse(&self.username));
        let password = errors.check("password", Password::parse(&self.password));
        let (Some(tenant_name), Some(email), Some(username), Some(password)) =
            (tenant_name, email, username, password)
        else {
            return Err(errors.into());
        };
        Ok(RegisterTenantCommand {
            tenant_name,
            email,
            username,
            password,
            client,
        })
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Tenant {
    id: Uuid,
    name: String,
    created_at: DateTime<Utc>,
}

impl From<&domain::Tenant> for Tenant {
    fn from(tenant: &domain::Tenant) -> Self {
        Self {
            id: tenant.id().as_uuid(),
            name: tenant.name().as_str().to_owned(),
            created_at: tenant.created_at(),
        }
    }
}

/// The tenant just created and its admin.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Registered {
    tenant: Tenant,
    user: User,
}

/// Email and password, as typed when signing up.
// Only lengths are checked here, so nobody can make the server hash megabytes; the use
// case decides the rest and answers every wrong combination alike.
#[derive(Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Credentials {
    #[garde(length(chars, min = 1, max = Email::MAX_LEN))]
    #[schema(schema_with = sign_in_email)]
    email: String,
    #[garde(length(chars, min = 1, max = Password::MAX_CHARS))]
    #[schema(schema_with = schema::given_password)]
    password: String,
}

/// The current password, and the new one.
// No `Debug`: it holds passwords.
#[derive(Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PasswordChange {
    #[garde(length(chars, min = 1, max = Password::MAX_CHARS))]
    #[schema(schema_with = schema::given_password)]
    current_password: String,
    // Parsed by the domain's `Password`, which says what is wrong with it.
    #[garde(skip)]
    #[schema(schema_with = schema::new_password)]
    new_password: String,
}

/// A refresh token, to trade for new tokens or to end its session.
#[derive(Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RefreshToken {
    #[garde(length(chars, min = 1, max = MAX_REFRESH_TOKEN_LEN))]
    #[schema(schema_with = refresh_token_schema)]
    refresh_token: String,
}

// `schema_with` drops the field's doc comment, so these carry their own descriptions.

/// The email of a sign-in: its length only, as garde checks it above. Any other string
/// is a wrong combination, answered like every other (401).
fn sign_in_email() -> utoipa::openapi::schema::Object {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .min_length(Some(1))
        .max_length(Some(Email::MAX_LEN))
        .examples(["ada@example.com"])
        .build()
}

/// As garde checks it above; any other string is a token the server did not issue (401).
fn refresh_token_schema() -> utoipa::openapi::schema::Object {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .min_length(Some(1))
        .max_length(Some(MAX_REFRESH_TOKEN_LEN))
        .build()
}

/// A new access token and the refresh token that replaces the one presented.
#[derive(Serialize, ToSchema)]
pub(crate) struct Tokens {
    /// Send as `Authorization: Bearer <access_token>`.
    access_token: String,
    /// Always `Bearer`.
    #[schema(examples("Bearer"))]
    token_type: &'static str,
    /// Seconds until the access token expires.
    expires_in: u64,
    /// Single use: each refresh hands out a new one.
    refresh_token: String,
}

/// RFC 6749 §5.1: responses carrying tokens must not be cached.
fn tokens_response(pair: TokenPair) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(Tokens {
            access_token: pair.access.token,
            token_type: "Bearer",
            expires_in: pair.access.expires_in.as_secs(),
            refresh_token: pair.refresh_token,
        })
}

#[utoipa::path(
    post, operation_id = "register_tenant", path = "/api/v1/auth/register", tag = "auth",
    summary = "Sign up: create a tenant whose first user is its admin",
    request_body = Registration,
    responses(
        (status = 201, description = "Created", body = Registered),
        (status = 409, description = "The email address is already registered \
            (`email_taken`)",
            body = Problem, content_type = "application/problem+json"),
        (status = 429, response = TooManyRequests),
    ),
)]
pub(crate) async fn register(
    state: web::Data<AppState>,
    ClientAddress(client): ClientAddress,
    ValidJson(body): ValidJson<Registration>,
) -> Result<HttpResponse, ApiError> {
    let command = body.into_command(client)?;
    let (tenant, admin) = state.auth.register.execute(command).await?;
    Ok(HttpResponse::Created().json(Registered {
        tenant: Tenant::from(&tenant),
        user: User::from(&admin),
    }))
}

#[utoipa::path(
    post, operation_id = "login", path = "/api/v1/auth/login", tag = "auth",
    summary = "Sign in with email and password",
    request_body = Credentials,
    responses(
        (status = 200, description = "Signed in", body = Tokens),
        (status = 401, description = "Unknown email, wrong password, or a user who may not \
            sign in, all alike (`invalid_credentials`)",
            body = Problem, content_type = "application/problem+json"),
        (status = 429, response = TooManyRequests),
    ),
)]
pub(crate) async fn login(
    state: web::Data<AppState>,
    ClientAddress(client): ClientAddress,
    ValidJson(body): ValidJson<Credentials>,
) -> Result<HttpResponse, ApiError> {
    let command = LoginCommand {
        email: body.email,
        password: body.password,
        client,
    };
    Ok(tokens_response(state.auth.login.execute(command).await?))
}

#[utoipa::path(
    post, operation_id = "refresh_tokens", path = "/api/v1/auth/refresh", tag = "auth",
    summary = "Trade a refresh token for new tokens; the one presented is used up",
    request_body = RefreshToken,
    responses(
        (status = 200, description = "New tokens", body = Tokens),
        (status = 401, description = "The refresh token is unknown, expired, revoked or \
            already used (`invalid_refresh_token`)",
            body = Problem, content_type = "application/problem+json"),
    ),
)]
pub(crate) async fn refresh(
    state: web::Data<AppState>,
    ValidJson(body): ValidJson<RefreshToken>,
) -> Result<HttpResponse, ApiError> {
    Ok(tokens_response(
        state.auth.refresh.execute(&body.refresh_token).await?,
    ))
}

#[utoipa::path(
    post, operation_id = "logout", path = "/api/v1/auth/logout", tag = "auth",
    summary = "Sign out: end the session of a refresh token (unknown tokens are accepted)",
    request_body = RefreshToken,
    responses((status = 204, description = "Signed out")),
)]
pub(crate) async fn logout(
    state: web::Data<AppState>,
    ValidJson(body): ValidJson<RefreshToken>,
) -> Result<HttpResponse, ApiError> {
    state.auth.logout.execute(&body.refresh_token).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(
    post, operation_id = "change_password", path = "/api/v1/auth/password", tag = "auth",
    security(("bearer" = [])),
    summary = "Change the caller's password, given the current one; every session ends \
        and new tokens are handed out",
    request_body = PasswordChange,
    responses(
        (status = 200, description = "Changed; the caller's new tokens", body = Tokens),
        (status = 401, response = Unauthorized),
        (status = 422, description = "The current password does not match \
            (`wrong_password`), or the new one is invalid (`validation_failed`)",
            body = Problem, content_type = "application/problem+json"),
        (status = 429, response = TooManyRequests),
    ),
)]
pub(crate) async fn change_password(
    state: web::Data<AppState>,
    Authenticated(principal): Authenticated,
    ClientAddress(client): ClientAddress,
    ValidJson(body): ValidJson<PasswordChange>,
) -> Result<HttpResponse, ApiError> {
    let mut errors = FieldErrors::default();
    let new = errors.check("new_password", Password::parse(&body.new_password));
    let Some(new) = new else {
        return Err(errors.into());
    };
    let command = ChangePasswordCommand {
        current: body.current_password,
        new,
        client,
    };
    let pair = state
        .auth
        .change_password
        .execute(&principal, command)
        .await?;
    Ok(tokens_response(pair))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use actix_web::body::to_bytes;
    use application::ports::AccessToken;
    use garde::Validate as _;

    use super::*;

    #[test]
    fn every_invalid_field_of_a_registration_is_reported_at_once() {
        let body = Registration {
            tenant_name: "   ".to_owned(),
            email: "ada@".to_owned(),
            username: "ADA".to_owned(),
            password: "1234567".to_owned(),
        };
        let Some(ApiError::Validation(errors)) = body.into_command("192.0.2.1".to_owned()).err()
        else {
            panic!("expected a validation error");
        };
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["tenant_name", "email", "username", "password"]);
        assert_eq!(errors[3].message, "must be at least 8 characters");
    }

    #[test]
    fn credentials_are_bounded_so_nobody_hashes_megabytes() {
        let credentials = |password: String| Credentials {
            email: "ada@example.com".to_owned(),
            password,
        };
        assert!(credentials("x".repeat(128)).validate().is_ok());
        assert!(credentials("x".repeat(129)).validate().is_err());
        assert!(credentials(String::new()).validate().is_err());
    }

    #[test]
    fn an_oversized_refresh_token_is_refused_before_any_lookup() {
        let token = |length: usize| RefreshToken {
            refresh_token: "t".repeat(length),
        };
        assert!(token(MAX_REFRESH_TOKEN_LEN).validate().is_ok());
        assert!(token(MAX_REFRESH_TOKEN_LEN + 1).validate().is_err());
        assert!(token(0).validate().is_err());
    }

    #[actix_web::test]
    async fn tokens_are_sent_as_a_bearer_pair_that_must_not_be_cached() {
        let response = tokens_response(TokenPair {
            access: AccessToken {
                token: "access".to_owned(),
                expires_in: Duration::from_mins(15),
            },
            refresh_token: "refresh".to_owned(),
        });
        assert_eq!(
            response.headers().get(header::CACHE_CONTROL).unwrap(),
            "no-store"
        );
        let body: serde_json::Value =
            serde_json::from_slice(&to_bytes(response.into_body()).await.unwrap()).unwrap();
        assert_eq!(
            body,
            serde_json::json!({
                "access_token": "access",
                "token_type": "Bearer",
                "expires_in": 900,
                "refresh_token": "refresh"
            })
        );
    }
}
