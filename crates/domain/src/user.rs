//! The user aggregate: a person who belongs to one tenant, with a role and a lifecycle
//! (active, deactivated, soft-deleted) guarded by the rules that keep every tenant
//! administrable.

mod email;
mod password;
mod username;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use email::{Email, EmailError};
pub use password::{Password, PasswordError, PasswordHash};
pub use username::{Username, UsernameError};

use crate::aggregate::Aggregate;
use crate::event::{AggregateEvent, EventMeta};
use crate::id::id_type;
use crate::tenant::TenantId;

id_type!(
    /// Identifies a user.
    UserId
);

/// What a user may do within their tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    Member,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be one of: admin, member")]
pub struct RoleError;

impl Role {
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Member => "member",
        }
    }

    /// # Errors
    /// When `raw` is neither `admin` nor `member`.
    pub fn parse(raw: &str) -> Result<Self, RoleError> {
        match raw {
            "admin" => Ok(Self::Admin),
            "member" => Ok(Self::Member),
            _ => Err(RoleError),
        }
    }
}

/// The number of active, not deleted admins in the user's tenant, counting the user
/// itself. The use case reads it; the aggregate decides with it. The database adapter
/// checks the same rule again inside the write transaction, so two admins demoting
/// each other at the same instant cannot both succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActiveAdmins(pub u64);

/// The rules a user change can break.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserError {
    #[error("administrators cannot deactivate themselves")]
    CannotDeactivateSelf,
    #[error("administrators cannot change their own role")]
    CannotDemoteSelf,
    #[error("administrators cannot delete themselves")]
    CannotDeleteSelf,
    #[error("administrators cannot activate themselves")]
    CannotActivateSelf,
    #[error("administrators cannot restore themselves")]
    CannotRestoreSelf,
    #[error("the last active administrator of a tenant cannot be removed, deactivated or demoted")]
    LastActiveAdmin,
    #[error("the user is deleted")]
    Deleted,
    #[error("the user is not deleted")]
    NotDeleted,
}

/// Something that happened to a user. Every change that matters for security is told,
/// so that the audit log holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserEvent {
    pub meta: EventMeta,
    pub user_id: UserId,
    pub fact: UserFact,
}

/// What happened to the user. An email address is personal data and stays out of the
/// events, which travel and are kept for days; `EmailChanged` says only that it changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum UserFact {
    Registered {
        role: Role,
    },
    RoleChanged {
        role: Role,
        previous: Role,
    },
    Renamed {
        username: String,
    },
    EmailChanged,
    /// The password changed; the hash stays out of the event.
    PasswordChanged,
    Activated,
    Deactivated,
    Deleted,
    Restored,
}

impl AggregateEvent for UserEvent {
    fn aggregate_name(&self) -> &'static str {
        User::NAME
    }

    fn aggregate_id(&self) -> uuid::Uuid {
        self.user_id.as_uuid()
    }

    fn meta(&self) -> &EventMeta {
        &self.meta
    }

    fn name(&self) -> &'static str {
        match self.fact {
            UserFact::Registered { .. } => "user.registered",
            UserFact::RoleChanged { .. } => "user.role_changed",
            UserFact::Renamed { .. } => "user.renamed",
            UserFact::EmailChanged => "user.email_changed",
            UserFact::PasswordChanged => "user.password_changed",
            UserFact::Activated => "user.activated",
            UserFact::Deactivated => "user.deactivated",
            UserFact::Deleted => "user.deleted",
            UserFact::Restored => "user.restored",
        }
    }
}

/// A user's whole state, as persistence adapters store and load it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserSnapshot {
    pub id: UserId,
    pub tenant_id: TenantId,
    pub email: Email,
    pub username: Username,
    pub password_hash: PasswordHash,
    pub role: Role,
    pub is_active: bool,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
}

/// The user aggregate. Fields are private; state changes only through the methods
/// below, which enforce the rules and record the events worth telling others about.
/// `version` is the one read from storage: saving succeeds only while storage still
/// holds it (optimistic concurrency).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    state: UserSnapshot,
    events: Vec<UserEvent>,
}

impl User {
    /// A new, active user, registered by `actor` (an admin, or the user itself when
    /// signing up a tenant).
    #[must_use]
    // Each argument is a distinct fact about the new user; a struct would only name them twice.
    #[allow(clippy::too_many_arguments)]
    pub fn register(
        actor: UserId,
        id: UserId,
        tenant_id: TenantId,
        email: Email,
        username: Username,
        password_hash: PasswordHash,
        role: Role,
        now: DateTime<Utc>,
    ) -> Self {
        let mut user = Self {
            state: UserSnapshot {
                id,
                tenant_id,
                email,
                username,
                password_hash,
                role,
                is_active: true,
                version: 0,
                created_at: now,
                updated_at: now,
                deleted_at: None,
            },
            events: Vec::new(),
        };
        user.record(actor, now, UserFact::Registered { role });
        user
    }

    /// Rebuilds a user from stored state; only persistence adapters call this.
    #[must_use]
    pub fn reconstitute(snapshot: UserSnapshot) -> Self {
        Self {
            state: snapshot,
            events: Vec::new(),
        }
    }

    #[must_use]
    pub fn snapshot(&self) -> &UserSnapshot {
        &self.state
    }

    /// Notes `fact` as done by `actor` at `now`, and moves `updated_at` on.
    fn record(&mut self, actor: UserId, now: DateTime<Utc>, fact: UserFact) {
        self.state.updated_at = now;
        self.events.push(UserEvent {
            meta: EventMeta {
                tenant_id: self.state.tenant_id,
                actor,
                occurred_at: now,
            },
            user_id: self.state.id,
            fact,
        });
    }

    #[must_use]
    pub fn email(&self) -> &Email {
        &self.state.email
    }

    #[must_use]
    pub fn username(&self) -> &Username {
        &self.state.username
    }

    #[must_use]
    pub fn password_hash(&self) -> &PasswordHash {
        &self.state.password_hash
    }

    #[must_use]
    pub fn role(&self) -> Role {
        self.state.role
    }

    #[must_use]
    pub fn is_active(&self) -> bool {
        self.state.is_active
    }

    /// Whether this user may sign in and act: active and not deleted.
    #[must_use]
    pub fn can_sign_in(&self) -> bool {
        self.is_active() && !self.is_deleted()
    }

    #[must_use]
    pub fn created_at(&self) -> DateTime<Utc> {
        self.state.created_at
    }

    #[must_use]
    pub fn updated_at(&self) -> DateTime<Utc> {
        self.state.updated_at
    }

    #[must_use]
    pub fn deleted_at(&self) -> Option<DateTime<Utc>> {
        self.state.deleted_at
    }

    fn is_active_admin(&self) -> bool {
        self.state.role == Role::Admin && self.can_sign_in()
    }

    fn ensure_not_deleted(&self) -> Result<(), UserError> {
        if self.is_deleted() {
            return Err(UserError::Deleted);
        }
        Ok(())
    }

    /// Refuses a change that would leave the tenant without an active admin.
    fn ensure_not_last_active_admin(&self, admins: ActiveAdmins) -> Result<(), UserError> {
        if self.is_active_admin() && admins.0 <= 1 {
            return Err(UserError::LastActiveAdmin);
        }
        Ok(())
    }

    /// # Errors
    /// `Deleted` when the user is deleted.
    pub fn rename(
        &mut self,
        actor: UserId,
        username: Username,
        now: DateTime<Utc>,
    ) -> Result<(), UserError> {
        self.ensure_not_deleted()?;
        if self.state.username != username {
            let fact = UserFact::Renamed {
                username: username.as_str().to_owned(),
            };
            self.state.username = username;
            self.record(actor, now, fact);
        }
        Ok(())
    }

    /// # Errors
    /// `Deleted` when the user is deleted.
    pub fn change_email(
        &mut self,
        actor: UserId,
        email: Email,
        now: DateTime<Utc>,
    ) -> Result<(), UserError> {
        self.ensure_not_deleted()?;
        if self.state.email != email {
            self.state.email = email;
            self.record(actor, now, UserFact::EmailChanged);
        }
        Ok(())
    }

    /// Sets a new password hash. Who may (the user, having given the current password)
    /// is the use case's to check.
    ///
    /// # Errors
    /// `Deleted` when the user is deleted.
    pub fn change_password(
        &mut self,
        actor: UserId,
        hash: PasswordHash,
        now: DateTime<Utc>,
    ) -> Result<(), UserError> {
        self.ensure_not_deleted()?;
        self.state.password_hash = hash;
        self.record(actor, now, UserFact::PasswordChanged);
        Ok(())
    }

    /// # Errors
    /// `Deleted`; `CannotDemoteSelf` when `actor` is this user; `LastActiveAdmin` when
    /// demoting the tenant's only active admin.
    pub fn change_role(
        &mut self,
        actor: UserId,
        role: Role,
        admins: ActiveAdmins,
        now: DateTime<Utc>,
    ) -> Result<(), UserError> {
        self.ensure_not_deleted()?;
        let previous = self.state.role;
        if previous == role {
            return Ok(());
        }
        if actor == self.id() {
            return Err(UserError::CannotDemoteSelf);
        }
        if role == Role::Member {
            self.ensure_not_last_active_admin(admins)?;
        }
        self.state.role = role;
        self.record(actor, now, UserFact::RoleChanged { role, previous });
        Ok(())
    }

    /// # Errors
    /// `Deleted` when the user is deleted; `CannotActivateSelf` when `actor` is this
    /// user (a deactivated admin is not brought back by their own old token).
    pub fn activate(&mut self, actor: UserId, now: DateTime<Utc>) -> Result<(), UserError> {
        self.ensure_not_deleted()?;
        if actor == self.id() {
            return Err(UserError::CannotActivateSelf);
        }
        if !self.state.is_active {
            self.state.is_active = true;
            self.record(actor, now, UserFact::Activated);
        }
        Ok(())
    }

    /// # Errors
    /// `Deleted`; `CannotDeactivateSelf` when `actor` is this user; `LastActiveAdmin`.
    pub fn deactivate(
        &mut self,
        actor: UserId,
        admins: ActiveAdmins,
        now: DateTime<Utc>,
    ) -> Result<(), UserError> {
        self.ensure_not_deleted()?;
        if actor == self.id() {
            return Err(UserError::CannotDeactivateSelf);
        }
        if !self.state.is_active {
            return Ok(());
        }
        self.ensure_not_last_active_admin(admins)?;
        self.state.is_active = false;
        self.record(actor, now, UserFact::Deactivated);
        Ok(())
    }

    /// Soft delete: the row stays, hidden from everything but admins who ask for it.
    ///
    /// # Errors
    /// `Deleted` when already deleted; `CannotDeleteSelf`; `LastActiveAdmin`.
    pub fn delete(
        &mut self,
        actor: UserId,
        admins: ActiveAdmins,
        now: DateTime<Utc>,
    ) -> Result<(), UserError> {
        self.ensure_not_deleted()?;
        if actor == self.id() {
            return Err(UserError::CannotDeleteSelf);
        }
        self.ensure_not_last_active_admin(admins)?;
        self.state.deleted_at = Some(now);
        self.record(actor, now, UserFact::Deleted);
        Ok(())
    }

    /// # Errors
    /// `CannotRestoreSelf` when `actor` is this user; `NotDeleted` when the user is not
    /// deleted.
    pub fn restore(&mut self, actor: UserId, now: DateTime<Utc>) -> Result<(), UserError> {
        if actor == self.id() {
            return Err(UserError::CannotRestoreSelf);
        }
        if !self.is_deleted() {
            return Err(UserError::NotDeleted);
        }
        self.state.deleted_at = None;
        self.record(actor, now, UserFact::Restored);
        Ok(())
    }
}

impl Aggregate for User {
    const NAME: &'static str = "user";
    type Id = UserId;
    type Event = UserEvent;

    fn id(&self) -> UserId {
        self.state.id
    }

    fn tenant_id(&self) -> TenantId {
        self.state.tenant_id
    }

    fn version(&self) -> i64 {
        self.state.version
    }

    fn is_deleted(&self) -> bool {
        self.state.deleted_at.is_some()
    }

    fn events(&self) -> &[UserEvent] {
        &self.events
    }

    fn take_events(&mut self) -> Vec<UserEvent> {
        std::mem::take(&mut self.events)
    }

    fn saved(&mut self) {
        self.state.version += 1;
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn at(minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 12, minute, 0).unwrap()
    }

    fn user(role: Role) -> User {
        let id = UserId::from_uuid(uuid::Uuid::now_v7());
        User::register(
            id,
            id,
            TenantId::from_uuid(uuid::Uuid::now_v7()),
            Email::parse("someone@example.com").unwrap(),
            Username::parse("someone").unwrap(),
            PasswordHash::new("hash".to_owned()),
            role,
            at(0),
        )
    }

    fn other() -> UserId {
        UserId::from_uuid(uuid::Uuid::now_v7())
    }

    #[test]
    fn a_registered_user_is_active_not_deleted_and_announced() {
        let user = user(Role::Member);
        assert!(user.can_sign_in());
        assert!(matches!(
            user.events(),
            [UserEvent {
                fact: UserFact::Registered { role: Role::Member },
                ..
            }]
        ));
        assert_eq!(user.created_at(), user.updated_at());
        assert_eq!(user.version(), 0);
    }

    #[test]
    fn renaming_updates_the_username_and_the_timestamp() {
        let mut user = user(Role::Member);
        user.rename(other(), Username::parse("renamed").unwrap(), at(5))
            .unwrap();
        assert_eq!(user.username().as_str(), "renamed");
        assert_eq!(user.updated_at(), at(5));
    }

    #[test]
    fn changing_the_email_to_the_same_address_changes_nothing() {
        let mut user = user(Role::Member);
        user.change_email(other(), Email::parse("SOMEONE@example.com").unwrap(), at(5))
            .unwrap();
        assert_eq!(user.updated_at(), at(0));
    }

    #[test]
    fn an_admin_cannot_demote_themself() {
        let mut admin = user(Role::Admin);
        let id = admin.id();
        assert_eq!(
            admin.change_role(id, Role::Member, ActiveAdmins(3), at(1)),
            Err(UserError::CannotDemoteSelf)
        );
        assert_eq!(admin.role(), Role::Admin);
    }

    #[test]
    fn the_last_active_admin_cannot_be_demoted() {
        let mut admin = user(Role::Admin);
        assert_eq!(
            admin.change_role(other(), Role::Member, ActiveAdmins(1), at(1)),
            Err(UserError::LastActiveAdmin)
        );
    }

    #[test]
    fn an_admin_can_be_demoted_while_another_admin_remains() {
        let mut admin = user(Role::Admin);
        admin
            .change_role(other(), Role::Member, ActiveAdmins(2), at(1))
            .unwrap();
        assert_eq!(admin.role(), Role::Member);
    }

    #[test]
    fn a_member_can_be_promoted_whatever_the_admin_count() {
        let mut member = user(Role::Member);
        member
            .change_role(other(), Role::Admin, ActiveAdmins(1), at(1))
            .unwrap();
        assert_eq!(member.role(), Role::Admin);
    }

    #[test]
    fn an_admin_cannot_deactivate_themself() {
        let mut admin = user(Role::Admin);
        let id = admin.id();
        assert_eq!(
            admin.deactivate(id, ActiveAdmins(5), at(1)),
            Err(UserError::CannotDeactivateSelf)
        );
        assert!(admin.is_active());
    }

    #[test]
    fn an_admin_cannot_activate_or_restore_themself() {
        let mut admin = user(Role::Admin);
        let id = admin.id();
        admin.deactivate(other(), ActiveAdmins(2), at(1)).unwrap();
        assert_eq!(
            admin.activate(id, at(2)),
            Err(UserError::CannotActivateSelf)
        );
        assert!(!admin.is_active());
        admin.activate(other(), at(2)).unwrap();
        admin.delete(other(), ActiveAdmins(2), at(3)).unwrap();
        assert_eq!(admin.restore(id, at(4)), Err(UserError::CannotRestoreSelf));
        assert!(admin.is_deleted());
    }

    #[test]
    fn the_last_active_admin_cannot_be_deactivated() {
        let mut admin = user(Role::Admin);
        assert_eq!(
            admin.deactivate(other(), ActiveAdmins(1), at(1)),
            Err(UserError::LastActiveAdmin)
        );
    }

    #[test]
    fn deactivating_and_activating_a_member_toggles_sign_in() {
        let mut member = user(Role::Member);
        member.take_events();
        let admin = other();
        member.deactivate(admin, ActiveAdmins(1), at(1)).unwrap();
        assert!(matches!(
            member.take_events().as_slice(),
            [UserEvent { meta, fact: UserFact::Deactivated, .. }] if meta.actor == admin
        ));
        assert!(!member.can_sign_in());
        member.activate(admin, at(2)).unwrap();
        assert!(member.can_sign_in());
        assert_eq!(member.updated_at(), at(2));
    }

    #[test]
    fn an_inactive_admin_does_not_count_as_the_last_active_admin() {
        let mut admin = user(Role::Admin);
        admin.deactivate(other(), ActiveAdmins(2), at(1)).unwrap();
        admin
            .change_role(other(), Role::Member, ActiveAdmins(1), at(2))
            .unwrap();
        assert_eq!(admin.role(), Role::Member);
    }

    #[test]
    fn an_admin_cannot_delete_themself() {
        let mut admin = user(Role::Admin);
        let id = admin.id();
        assert_eq!(
            admin.delete(id, ActiveAdmins(5), at(1)),
            Err(UserError::CannotDeleteSelf)
        );
    }

    #[test]
    fn the_last_active_admin_cannot_be_deleted() {
        let mut admin = user(Role::Admin);
        assert_eq!(
            admin.delete(other(), ActiveAdmins(1), at(1)),
            Err(UserError::LastActiveAdmin)
        );
        assert!(!admin.is_deleted());
    }

    #[test]
    fn a_deleted_user_cannot_sign_in_or_be_changed_until_restored() {
        let mut member = user(Role::Member);
        member.delete(other(), ActiveAdmins(1), at(1)).unwrap();
        assert!(!member.can_sign_in());
        assert_eq!(member.deleted_at(), Some(at(1)));
        assert_eq!(
            member.rename(other(), Username::parse("again").unwrap(), at(2)),
            Err(UserError::Deleted)
        );
        assert_eq!(
            member.delete(other(), ActiveAdmins(1), at(2)),
            Err(UserError::Deleted)
        );
        member.restore(other(), at(3)).unwrap();
        assert!(member.can_sign_in());
        assert_eq!(member.deleted_at(), None);
    }

    #[test]
    fn restoring_a_user_that_is_not_deleted_is_rejected() {
        let mut member = user(Role::Member);
        assert_eq!(member.restore(other(), at(1)), Err(UserError::NotDeleted));
    }

    #[test]
    fn roles_parse_from_and_print_to_their_wire_names() {
        for role in [Role::Admin, Role::Member] {
            assert_eq!(Role::parse(role.as_str()), Ok(role));
        }
        assert_eq!(Role::parse("owner"), Err(RoleError));
    }

    #[test]
    fn every_change_that_matters_for_security_is_recorded_with_its_actor() {
        let mut member = user(Role::Member);
        member.take_events();
        let admin = other();
        member
            .rename(admin, Username::parse("renamed").unwrap(), at(1))
            .unwrap();
        member
            .change_email(admin, Email::parse("new@example.com").unwrap(), at(2))
            .unwrap();
        member
            .change_role(admin, Role::Admin, ActiveAdmins(1), at(3))
            .unwrap();
        member.deactivate(admin, ActiveAdmins(2), at(4)).unwrap();
        member.activate(admin, at(5)).unwrap();
        member.delete(admin, ActiveAdmins(2), at(6)).unwrap();
        member.restore(admin, at(7)).unwrap();
        let events = member.take_events();
        let facts: Vec<&UserFact> = events.iter().map(|event| &event.fact).collect();
        assert_eq!(
            facts,
            [
                &UserFact::Renamed {
                    username: "renamed".to_owned()
                },
                &UserFact::EmailChanged,
                &UserFact::RoleChanged {
                    role: Role::Admin,
                    previous: Role::Member
                },
                &UserFact::Deactivated,
                &UserFact::Activated,
                &UserFact::Deleted,
                &UserFact::Restored,
            ]
        );
        assert!(events.iter().all(|event| event.meta.actor == admin));
        assert_eq!(member.updated_at(), at(7));
    }

    #[test]
    fn a_change_that_changes_nothing_records_nothing() {
        let mut member = user(Role::Member);
        member.take_events();
        member
            .rename(other(), Username::parse("someone").unwrap(), at(1))
            .unwrap();
        member.activate(other(), at(2)).unwrap();
        member
            .change_role(other(), Role::Member, ActiveAdmins(1), at(3))
            .unwrap();
        assert!(member.events().is_empty());
        assert_eq!(member.updated_at(), at(0));
    }
}
