//! What the tests of the SQL adapters share: a tenant with users, stored.

use application::ports::{Store, UnitOfWork};
use chrono::{TimeZone, Utc};
use domain::{
    Actor, Aggregate, Email, PasswordHash, Role, Tenant, TenantId, TenantName, User, UserId,
    Username,
};
use uuid::Uuid;

/// The actor `user` is.
pub(crate) fn actor(user: &User) -> Actor {
    Actor {
        id: user.id(),
        role: user.role(),
    }
}

/// Stores a new tenant with its admin (`email`) and, if asked, a member; the admin
/// first.
pub(crate) async fn register(uow: &dyn UnitOfWork, email: &str, member: Option<&str>) -> Vec<User> {
    let at = Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap();
    let tenant = Tenant::create(
        TenantId::from_uuid(Uuid::now_v7()),
        TenantName::parse("Acme").unwrap(),
        at,
    );
    let user = |email: &str, role| {
        let id = UserId::from_uuid(Uuid::now_v7());
        User::register(
            id,
            id,
            tenant.id(),
            Email::parse(email).unwrap(),
            Username::parse("someone").unwrap(),
            PasswordHash::new("hash".to_owned()),
            role,
            at,
        )
    };
    let mut users: Vec<User> = std::iter::once(user(email, Role::Admin))
        .chain(member.map(|email| user(email, Role::Member)))
        .collect();
    let mut tx = uow.begin().await.unwrap();
    tx.add_tenant(&tenant).await.unwrap();
    for user in &mut users {
        user.take_events();
        Store::<User>::add(tx.as_mut(), user).await.unwrap();
    }
    tx.commit().await.unwrap();
    users
}
