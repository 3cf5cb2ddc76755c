//! `/api/v1/users`: the users of the caller's tenant. Every answer that carries a user
//! carries its version as `ETag`, and every change takes `If-Match`, as for every
//! resource (`resource`, `conditional`); every change goes through `ChangeUser`.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use application::users::{CreateUserCommand, ListUsersQuery, UserChange, UserEdit, UserFilter};
use chrono::{DateTime, Utc};
use domain::{Aggregate, Email, Password, Role, UserError, UserId, Username};
use garde::Validate;
use serde::{Deserialize, Serialize};
use utoipa::openapi::schema::{Object, ObjectBuilder, SchemaType, Type};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::AppState;
use crate::client::ClientAddress;
use crate::conditional::{IfMatch, IfNoneMatch};
use crate::error::{ApiError, FieldError, FieldErrors, Problem, Refusal};
use crate::extract::{
    Authenticated, DEFAULT_PAGE_SIZE, MAX_CURSOR_LEN, MAX_PAGE_SIZE, ValidJson, ValidQuery,
    from_text,
};
use crate::idempotency::{IdempotentJson, RequestKey, created, respond};
use crate::openapi::{Forbidden, NotFound, TooManyRequests, ValidationFailed};
use crate::resource::{ReadParams, current, decode_cursor, encode_cursor, revalidated, versioned};
use crate::routing::Routes;
use crate::schema;

/// Every route of users, in the order the router tries them (`/users/me` first).
pub(crate) fn routes(routes: Routes) -> Routes {
    routes
        .response::<UserWithETag>()
        .response::<UserConflict>()
        .route(__path_me, me)
        .route(__path_list, list)
        .route(__path_create, create)
        .route(__path_get, get)
        .route(__path_update, update)
        .route(__path_delete, delete)
        .route(__path_activate, activate)
        .route(__path_deactivate, deactivate)
        .route(__path_restore, restore)
}

/// How each user rule is told to clients: 409 with its own code.
pub(crate) fn refusal(error: &UserError) -> Refusal {
    let (code, title) = match error {
        UserError::CannotDeactivateSelf => ("cannot_deactivate_self", "Cannot deactivate yourself"),
        UserError::CannotDemoteSelf => ("cannot_demote_self", "Cannot change your own role"),
        UserError::CannotDeleteSelf => ("cannot_delete_self", "Cannot delete yourself"),
        UserError::CannotActivateSelf => ("cannot_activate_self", "Cannot activate yourself"),
        UserError::CannotRestoreSelf => ("cannot_restore_self", "Cannot restore yourself"),
        UserError::LastActiveAdmin => ("last_active_admin", "Last active administrator"),
        UserError::Deleted => ("user_deleted", "User is deleted"),
        UserError::NotDeleted => ("user_not_deleted", "User is not deleted"),
    };
    Refusal::conflict(code, title)
}

/// A user as clients see it. The password hash never leaves the server.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct User {
    id: Uuid,
    tenant_id: Uuid,
    email: String,
    username: String,
    /// `admin` or `member`.
    role: &'static str,
    /// Inactive users cannot sign in.
    is_active: bool,
    /// Grows with every change; the `ETag` is this number in quotes.
    version: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    /// When the user was (softly) deleted; `null` otherwise.
    #[schema(required = true)]
    deleted_at: Option<DateTime<Utc>>,
}

impl From<&domain::User> for User {
    fn from(user: &domain::User) -> Self {
        Self {
            id: user.id().as_uuid(),
            tenant_id: user.tenant_id().as_uuid(),
            email: user.email().as_str().to_owned(),
            username: user.username().as_str().to_owned(),
            role: user.role().as_str(),
            is_active: user.is_active(),
            version: user.version(),
            created_at: user.created_at(),
            updated_at: user.updated_at(),
            deleted_at: user.deleted_at(),
        }
    }
}

/// One page of users, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct UserPage {
    items: Vec<User>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    #[schema(required = true)]
    next_cursor: Option<String>,
}

/// Filters and paging for `GET /api/v1/users`.
#[derive(Debug, Deserialize, Validate, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListParams {
    /// Users per page.
    #[serde(default, deserialize_with = "from_text")]
    #[garde(range(min = 1, max = MAX_PAGE_SIZE))]
    #[param(minimum = 1, maximum = 100, default = 20)]
    limit: Option<u32>,
    /// The `next_cursor` of the previous page. Opaque: one the server did not issue is
    /// 422 `validation_failed` on `cursor`.
    #[garde(length(chars, max = MAX_CURSOR_LEN))]
    #[param(max_length = 256)]
    cursor: Option<String>,
    /// Part of the email or username, case-insensitive. At most as long as an email.
    #[garde(length(chars, max = Email::MAX_LEN))]
    #[param(max_length = 254)]
    q: Option<String>,
    /// Only active (`true`) or only inactive (`false`) users.
    #[serde(default, deserialize_with = "from_text")]
    #[garde(skip)]
    is_active: Option<bool>,
    /// Admins only: include deleted users.
    #[serde(default, deserialize_with = "from_text")]
    #[garde(skip)]
    include_deleted: Option<bool>,
}

impl ListParams {
    fn into_query(self) -> Result<ListUsersQuery, ApiError> {
        let after = self
            .cursor
            .as_deref()
            .map(decode_cursor)
            .transpose()
            .map_err(|message| ApiError::Validation(vec![FieldError::new("cursor", message)]))?;
        Ok(ListUsersQuery {
            filter: UserFilter {
                q: self.q.filter(|q| !q.is_empty()),
                is_active: self.is_active,
                include_deleted: self.include_deleted.unwrap_or(false),
            },
            after,
            limit: u64::from(self.limit.unwrap_or(DEFAULT_PAGE_SIZE)),
        })
    }
}

/// A new user of the caller's tenant.
// No `Debug`: it holds a password.
#[derive(Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
// Every field is parsed by its domain value object; garde has nothing to add.
#[garde(allow_unvalidated)]
pub(crate) struct NewUser {
    #[schema(schema_with = schema::email)]
    email: String,
    #[schema(schema_with = schema::username)]
    username: String,
    #[schema(schema_with = schema::new_password)]
    password: String,
    #[schema(schema_with = role_schema)]
    role: String,
}

impl NewUser {
    fn into_command(self) -> Result<CreateUserCommand, ApiError> {
        let mut errors = FieldErrors::default();
        let email = errors.check("email", Email::parse(&self.email));
        let username = errors.check("username", Username::parse(&self.username));
        let password = errors.check("password", Password::parse(&self.password));
        let role = errors.check("role", Role::parse(&self.role));
        let (Some(email), Some(username), Some(password), Some(role)) =
            (email, username, password, role)
        else {
            return Err(errors.into());
        };
        Ok(CreateUserCommand {
            email,
            username,
            password,
            role,
        })
    }
}

/// The fields to change; absent or `null` ones stay as they are. Members may change
/// their own username and email; everything else is for admins. Changing one's own
/// email takes one's current password.
// No `Debug`: it may hold a password.
#[derive(Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
// Every field is parsed by its domain value object; garde has nothing to add.
#[garde(allow_unvalidated)]
pub(crate) struct UserChanges {
    #[schema(schema_with = schema::username_or_null)]
    username: Option<String>,
    #[schema(schema_with = schema::email_or_null)]
    email: Option<String>,
    #[schema(schema_with = role_or_null_schema)]
    role: Option<String>,
    #[schema(schema_with = current_password_schema)]
    current_password: Option<String>,
}

// `schema_with` drops the field's doc comment, so these carry their own descriptions.

fn role_builder() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some([Role::Admin, Role::Member].map(Role::as_str)))
        .examples(["member"])
}

fn role_schema() -> Object {
    role_builder().build()
}

fn role_or_null_schema() -> Object {
    role_builder()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .build()
}

fn current_password_schema() -> Object {
    let mut schema = schema::given_password_or_null();
    schema.description = Some(
        "The caller's current password: required when they change their own email \
         (`current_password_required`), checked like a sign-in (`wrong_password`, 429)."
            .to_owned(),
    );
    schema
}

impl UserChanges {
    /// The edit, without the password proof, which the handler adds.
    fn into_edit(self) -> Result<UserEdit, ApiError> {
        let mut errors = FieldErrors::default();
        let username = self
            .username
            .map(|raw| errors.check("username", Username::parse(&raw)));
        let email = self
            .email
            .map(|raw| errors.check("email", Email::parse(&raw)));
        let role = self.role.map(|raw| errors.check("role", Role::parse(&raw)));
        errors.finish()?;
        Ok(UserEdit {
            username: username.flatten(),
            email: email.flatten(),
            role: role.flatten(),
            confirmed: None,
        })
    }
}

// The answer of the routes that return a user: the user, and its version as `ETag`.
crate::resource::versioned_response!(UserWithETag, "User", "The user as it is now");

// 409 for users: a rule of theirs, or another change that came first.
crate::openapi::problem_responses! {
    UserConflict => "The change breaks a rule: `email_taken`, `cannot_deactivate_self`, \
        `cannot_demote_self`, `cannot_delete_self`, `cannot_activate_self`, \
        `cannot_restore_self`, `last_active_admin`, `user_deleted` or `user_not_deleted`; \
        or another change came first (`concurrent_modification`)";
}

fn location(user: UserId) -> String {
    format!("/api/v1/users/{user}")
}

/// 200 with the user and its `ETag`.
fn user_response(user: &domain::User) -> HttpResponse {
    current(user.version(), &User::from(user))
}

/// Applies one change to the user `id`, at the version `If-Match` expects.
async fn change(
    state: &AppState,
    principal: &application::Principal,
    id: &web::Path<Uuid>,
    if_match: &IfMatch,
    change: UserChange,
) -> Result<domain::User, ApiError> {
    let id = UserId::from_uuid(**id);
    Ok(state
        .users
        .change
        .execute(principal, id, if_match.check(), change)
        .await?)
}

#[utoipa::path(
    get, operation_id = "get_current_user", path = "/api/v1/users/me", tag = "users",
    security(("bearer" = [])),
    summary = "The caller",
    params(IfNoneMatch),
    responses(
        (status = 200, response = UserWithETag),
        (status = 304, description = "The caller is still at the version `If-None-Match` \
            names; no body",
            headers(("ETag" = String, description = "The caller's version"))),
        (status = 404, response = NotFound),
    ),
)]
pub(crate) async fn me(
    state: web::Data<AppState>,
    Authenticated(principal): Authenticated,
    if_none_match: IfNoneMatch,
) -> Result<HttpResponse, ApiError> {
    let user = state
        .users
        .get
        .execute(&principal, principal.user_id, false)
        .await?;
    Ok(revalidated(&if_none_match, user.version(), || {
        user_response(&user)
    }))
}

#[utoipa::path(
    get, operation_id = "list_users", path = "/api/v1/users", tag = "users",
    security(("bearer" = [])),
    summary = "List the users of the caller's tenant, a page at a time",
    params(ListParams),
    responses(
        (status = 200, description = "One page of users", body = UserPage),
        (status = 403, response = Forbidden),
        (status = 422, response = ValidationFailed),
    ),
)]
pub(crate) async fn list(
    state: web::Data<AppState>,
    Authenticated(principal): Authenticated,
    ValidQuery(params): ValidQuery<ListParams>,
) -> Result<web::Json<UserPage>, ApiError> {
    let page = state
        .users
        .list
        .execute(&principal, params.into_query()?)
        .await?;
    Ok(web::Json(UserPage {
        items: page.items.iter().map(User::from).collect(),
        next_cursor: page.next.map(encode_cursor),
    }))
}

#[utoipa::path(
    post, operation_id = "create_user", path = "/api/v1/users", tag = "users",
    security(("bearer" = [])),
    summary = "Add a user to the caller's tenant (admins only)",
    params(RequestKey),
    request_body = NewUser,
    responses(
        (status = 201, description = "Created; a replay when `Idempotent-Replayed` is \
            `true`, whose `ETag` names the version in its body, as first created", body = User,
            headers(
                ("Location" = String, description = "The new user's URL"),
                ("ETag" = String, description = "The version of the user in the body, as `\"<version>\"`"),
                ("Idempotent-Replayed" = String,
                    description = "`true` when this is the answer to an earlier request"),
            )),
        (status = 403, response = Forbidden),
        (status = 409, description = "The email address is taken (`email_taken`), or a \
            request with this `Idempotency-Key` is still running \
            (`idempotency_request_in_progress`)",
            body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Fields are missing, unknown, mistyped or invalid \
            (`validation_failed`), or the `Idempotency-Key` was used for another request \
            (`idempotency_key_reused`)",
            body = Problem, content_type = "application/problem+json"),
    ),
)]
pub(crate) async fn create(
    state: web::Data<AppState>,
    Authenticated(principal): Authenticated,
    IdempotentJson { body, key }: IdempotentJson<NewUser>,
) -> Result<HttpResponse, ApiError> {
    let command = body.into_command()?;
    let render = |user: &domain::User| created(location(user.id()), &User::from(user));
    let idempotent = key.map(|key| key.ignoring("password").scoped(&principal, &render));
    let outcome = state
        .users
        .create
        .execute(&principal, command, idempotent.as_ref())
        .await?;
    Ok(respond(&outcome, render))
}

#[utoipa::path(
    get, operation_id = "get_user", path = "/api/v1/users/{id}", tag = "users",
    security(("bearer" = [])),
    summary = "One user of the caller's tenant",
    params(("id" = Uuid, Path, description = "The user's id"), ReadParams, IfNoneMatch),
    responses(
        (status = 200, response = UserWithETag),
        (status = 304, description = "The user is still at the version `If-None-Match` \
            names; no body",
            headers(("ETag" = String, description = "The user's version"))),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
    ),
)]
pub(crate) async fn get(
    state: web::Data<AppState>,
    Authenticated(principal): Authenticated,
    id: web::Path<Uuid>,
    ValidQuery(params): ValidQuery<ReadParams>,
    if_none_match: IfNoneMatch,
) -> Result<HttpResponse, ApiError> {
    let user = state
        .users
        .get
        .execute(&principal, UserId::from_uuid(*id), params.include_deleted())
        .await?;
    Ok(revalidated(&if_none_match, user.version(), || {
        user_response(&user)
    }))
}

#[utoipa::path(
    patch, operation_id = "update_user", path = "/api/v1/users/{id}", tag = "users",
    security(("bearer" = [])),
    summary = "Change a user's username, email or role",
    params(("id" = Uuid, Path, description = "The user's id"), IfMatch),
    request_body = UserChanges,
    responses(
        (status = 200, response = UserWithETag),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = UserConflict),
        (status = 422, description = "A field is invalid (`validation_failed`), or the \
            caller changes their own email without their current password \
            (`current_password_required`) or with a wrong one (`wrong_password`)",
            body = Problem, content_type = "application/problem+json"),
        (status = 429, response = TooManyRequests),
    ),
)]
pub(crate) async fn update(
    state: web::Data<AppState>,
    Authenticated(principal): Authenticated,
    ClientAddress(client): ClientAddress,
    id: web::Path<Uuid>,
    if_match: IfMatch,
    ValidJson(mut body): ValidJson<UserChanges>,
) -> Result<HttpResponse, ApiError> {
    let password = body.current_password.take();
    let mut edit = body.into_edit()?;
    // Checked only when the change needs it: a password check costs a hash, and
    // counts against the caller's sign-in attempts.
    let own_email = edit.email.is_some() && *id == principal.user_id.as_uuid();
    if let Some(password) = password.filter(|_| own_email) {
        let confirm = &state.auth.confirm_password;
        edit.confirmed = Some(confirm.execute(&principal, &password, client).await?);
    }
    let user = change(&state, &principal, &id, &if_match, UserChange::Edit(edit)).await?;
    Ok(user_response(&user))
}

#[utoipa::path(
    post, operation_id = "activate_user", path = "/api/v1/users/{id}/activate", tag = "users",
    security(("bearer" = [])),
    summary = "Let a user sign in again (admins only)",
    params(("id" = Uuid, Path, description = "The user's id"), IfMatch),
    responses(
        (status = 200, response = UserWithETag),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = UserConflict),
    ),
)]
pub(crate) async fn activate(
    state: web::Data<AppState>,
    Authenticated(principal): Authenticated,
    id: web::Path<Uuid>,
    if_match: IfMatch,
) -> Result<HttpResponse, ApiError> {
    let user = change(&state, &principal, &id, &if_match, UserChange::Activate).await?;
    Ok(user_response(&user))
}

#[utoipa::path(
    post, operation_id = "deactivate_user", path = "/api/v1/users/{id}/deactivate", tag = "users",
    security(("bearer" = [])),
    summary = "Stop a user from signing in and end their sessions (admins only)",
    params(("id" = Uuid, Path, description = "The user's id"), IfMatch),
    responses(
        (status = 200, response = UserWithETag),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = UserConflict),
    ),
)]
pub(crate) async fn deactivate(
    state: web::Data<AppState>,
    Authenticated(principal): Authenticated,
    id: web::Path<Uuid>,
    if_match: IfMatch,
) -> Result<HttpResponse, ApiError> {
    let user = change(&state, &principal, &id, &if_match, UserChange::Deactivate).await?;
    Ok(user_response(&user))
}

#[utoipa::path(
    delete, operation_id = "delete_user", path = "/api/v1/users/{id}", tag = "users",
    security(("bearer" = [])),
    summary = "Delete a user softly and end their sessions (admins only)",
    params(("id" = Uuid, Path, description = "The user's id"), IfMatch),
    responses(
        (status = 204, description = "Deleted",
            headers(("ETag" = String, description = "The user's new version"))),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = UserConflict),
    ),
)]
pub(crate) async fn delete(
    state: web::Data<AppState>,
    Authenticated(principal): Authenticated,
    id: web::Path<Uuid>,
    if_match: IfMatch,
) -> Result<HttpResponse, ApiError> {
    let user = change(&state, &principal, &id, &if_match, UserChange::Delete).await?;
    Ok(versioned(StatusCode::NO_CONTENT, user.version()).finish())
}

#[utoipa::path(
    post, operation_id = "restore_user", path = "/api/v1/users/{id}/restore", tag = "users",
    security(("bearer" = [])),
    summary = "Bring a deleted user back (admins only)",
    params(("id" = Uuid, Path, description = "The user's id"), IfMatch),
    responses(
        (status = 200, response = UserWithETag),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = UserConflict),
    ),
)]
pub(crate) async fn restore(
    state: web::Data<AppState>,
    Authenticated(principal): Authenticated,
    id: web::Path<Uuid>,
    if_match: IfMatch,
) -> Result<HttpResponse, ApiError> {
    let user = change(&state, &principal, &id, &if_match, UserChange::Restore).await?;
    Ok(user_response(&user))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_cursor_is_a_validation_error_on_the_cursor_field() {
        let params = ListParams {
            limit: None,
            cursor: Some("nope".to_owned()),
            q: None,
            is_active: None,
            include_deleted: None,
        };
        let Some(ApiError::Validation(errors)) = params.into_query().err() else {
            panic!("expected a validation error");
        };
        assert_eq!(errors[0].field, "cursor");
    }

    #[test]
    fn listing_defaults_to_twenty_active_and_inactive_users_without_deleted_ones() {
        let params = ListParams {
            limit: None,
            cursor: None,
            q: Some(String::new()),
            is_active: None,
            include_deleted: None,
        };
        let query = params.into_query().unwrap();
        assert_eq!(query.limit, 20);
        assert_eq!(query.after, None);
        assert_eq!(query.filter, UserFilter::default());
    }

    #[test]
    fn every_invalid_field_of_a_new_user_is_reported_at_once() {
        let body = NewUser {
            email: "not an email".to_owned(),
            username: "Grace Hopper".to_owned(),
            password: "short".to_owned(),
            role: "owner".to_owned(),
        };
        let Some(ApiError::Validation(errors)) = body.into_command().err() else {
            panic!("expected a validation error");
        };
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["email", "username", "password", "role"]);
        assert_eq!(errors[3].message, "must be one of: admin, member");
    }

    #[test]
    fn only_the_fields_sent_are_changed() {
        let changes = UserChanges {
            username: Some("grace".to_owned()),
            email: None,
            role: None,
            current_password: None,
        };
        let command = changes.into_edit().unwrap();
        assert_eq!(command.username.unwrap().as_str(), "grace");
        assert!(command.email.is_none() && command.role.is_none());
    }

    #[test]
    fn the_user_json_has_the_documented_fields_and_no_hash() {
        let id = UserId::from_uuid(Uuid::now_v7());
        let user = domain::User::register(
            id,
            id,
            domain::TenantId::from_uuid(Uuid::now_v7()),
            Email::parse("grace@example.com").unwrap(),
            Username::parse("grace").unwrap(),
            domain::PasswordHash::new("$argon2id$secret".to_owned()),
            Role::Member,
            Utc::now(),
        );
        let json = serde_json::to_value(User::from(&user)).unwrap();
        let mut keys: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "created_at",
                "deleted_at",
                "email",
                "id",
                "is_active",
                "role",
                "tenant_id",
                "updated_at",
                "username",
                "version"
            ]
        );
        assert_eq!(json["role"], "member");
        assert!(!json.to_string().contains("argon2"));
    }
}
