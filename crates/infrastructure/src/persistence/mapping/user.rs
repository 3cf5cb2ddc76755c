//! Tenants and users.

use anyhow::Context;
use domain::{Email, PasswordHash, Role, Tenant, TenantId, User, UserId, UserSnapshot, Username};
use sea_orm::ActiveValue::{NotSet, Set};

use crate::persistence::entity::{tenants, users};

pub(in crate::persistence) fn tenant_row(tenant: &Tenant) -> tenants::ActiveModel {
    tenants::ActiveModel {
        id: Set(tenant.id().as_uuid()),
        name: Set(tenant.name().as_str().to_owned()),
        created_at: Set(tenant.created_at()),
    }
}

/// Every column of a new user's row.
pub(crate) fn user_row(user: &User) -> users::ActiveModel {
    let user = user.snapshot();
    users::ActiveModel {
        id: Set(user.id.as_uuid()),
        tenant_id: Set(user.tenant_id.as_uuid()),
        version: Set(user.version),
        created_at: Set(user.created_at),
        ..user_changes(user)
    }
}

/// The columns a saved change may touch. Id, tenant and creation time never change;
/// the version is bumped by the UPDATE itself.
pub(in crate::persistence) fn user_changes(user: &UserSnapshot) -> users::ActiveModel {
    users::ActiveModel {
        id: NotSet,
        tenant_id: NotSet,
        email: Set(user.email.as_str().to_owned()),
        username: Set(user.username.as_str().to_owned()),
        password_hash: Set(user.password_hash.as_str().to_owned()),
        role: Set(user.role.as_str().to_owned()),
        is_active: Set(user.is_active),
        version: NotSet,
        created_at: NotSet,
        updated_at: Set(user.updated_at),
        deleted_at: Set(user.deleted_at),
    }
}

/// # Errors
/// When a stored value no longer parses; the message names the user and the column,
/// never the value.
pub(crate) fn user_from_row(row: users::Model) -> anyhow::Result<User> {
    let id = row.id;
    Ok(User::reconstitute(UserSnapshot {
        id: UserId::from_uuid(row.id),
        tenant_id: TenantId::from_uuid(row.tenant_id),
        email: Email::parse(&row.email).with_context(|| format!("user {id}: stored email"))?,
        username: Username::parse(&row.username)
            .with_context(|| format!("user {id}: stored username"))?,
        password_hash: PasswordHash::new(row.password_hash),
        role: Role::parse(&row.role).with_context(|| format!("user {id}: stored role"))?,
        is_active: row.is_active,
        version: row.version,
        created_at: row.created_at,
        updated_at: row.updated_at,
        deleted_at: row.deleted_at,
    }))
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use sea_orm::{ActiveModelTrait, Iterable};
    use uuid::Uuid;

    use super::*;

    fn user() -> User {
        let at = Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap();
        let id = UserId::from_uuid(Uuid::now_v7());
        let mut user = User::register(
            id,
            id,
            TenantId::from_uuid(Uuid::now_v7()),
            Email::parse("ada@example.com").unwrap(),
            Username::parse("ada").unwrap(),
            PasswordHash::new("$argon2id$hash".to_owned()),
            Role::Member,
            at,
        );
        user.delete(
            UserId::from_uuid(Uuid::now_v7()),
            domain::ActiveAdmins(1),
            at,
        )
        .unwrap();
        user
    }

    fn row_of(user: &User) -> users::Model {
        let snapshot = user.snapshot();
        users::Model {
            id: snapshot.id.as_uuid(),
            tenant_id: snapshot.tenant_id.as_uuid(),
            email: snapshot.email.as_str().to_owned(),
            username: snapshot.username.as_str().to_owned(),
            password_hash: snapshot.password_hash.as_str().to_owned(),
            role: snapshot.role.as_str().to_owned(),
            is_active: snapshot.is_active,
            version: 7,
            created_at: snapshot.created_at,
            updated_at: snapshot.updated_at,
            deleted_at: snapshot.deleted_at,
        }
    }

    #[test]
    fn a_user_survives_the_trip_through_a_row() {
        let user = user();
        let read = user_from_row(row_of(&user)).unwrap();
        assert_eq!(read.version(), 7);
        assert_eq!(
            read.snapshot(),
            &UserSnapshot {
                version: 7,
                ..user.snapshot().clone()
            }
        );
    }

    #[test]
    fn a_new_users_row_sets_every_column() {
        let row = user_row(&user());
        for column in users::Column::iter() {
            assert!(row.get(column).is_set(), "{column:?}");
        }
    }

    #[test]
    fn a_saved_change_sets_every_column_but_identity_tenant_version_and_creation_time() {
        let changes = user_changes(user().snapshot());
        for column in users::Column::iter() {
            let fixed = matches!(
                column,
                users::Column::Id
                    | users::Column::TenantId
                    | users::Column::Version
                    | users::Column::CreatedAt
            );
            assert_eq!(changes.get(column).is_set(), !fixed, "{column:?}");
        }
    }

    #[test]
    fn a_stored_row_that_breaks_a_rule_is_an_error_naming_the_column_not_the_value() {
        let mut row = row_of(&user());
        row.role = "superuser".to_owned();
        let error = user_from_row(row).unwrap_err();
        let message = format!("{error:#}");
        assert!(message.contains("stored role"), "{message}");
        assert!(!message.contains("superuser"), "{message}");
    }
}
