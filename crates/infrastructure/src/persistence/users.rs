//! Users on SQL: `SqlUsers` for reads, and the `UserStore` writes of a `SqlTransaction`.

use application::ports::{RepositoryError, UserFilter, UserRepository, UserStore};
use async_trait::async_trait;
use domain::{Email, Role, Tenant, TenantId, User, UserId};
use sea_orm::sea_query::{Expr, ExprTrait, LockType};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseTransaction, DbBackend, DbErr, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, SqlErr,
};

use super::entity::{tenants, users};
use super::mapping::{tenant_row, user_changes, user_from_row, user_row};
use super::unit_of_work::SqlTransaction;
use super::{contains_pattern, outbox, repository_error};
use crate::database::Database;

/// Reads of the `users` table, on the pool.
#[derive(Debug, Clone)]
pub struct SqlUsers {
    db: Database,
}

impl SqlUsers {
    #[must_use]
    pub fn new(db: Database) -> Self {
        Self { db }
    }
}

/// Translates an error of a statement that writes a user row: a clash on the unique
/// index of emails is `EmailTaken`; any other (a reused id) is a bug and stays one.
fn user_write_error(error: DbErr, doing: &'static str) -> RepositoryError {
    match error.sql_err() {
        // PostgreSQL's message names the index (`idx_users_email`, from the migration),
        // SQLite's names the column.
        Some(SqlErr::UniqueConstraintViolation(message))
            if message.contains("\"idx_users_email\"") || message.contains("users.email") =>
        {
            RepositoryError::EmailTaken
        }
        _ => repository_error(error, doing),
    }
}

fn into_user(row: users::Model) -> Result<User, RepositoryError> {
    user_from_row(row).map_err(|error| RepositoryError::Unexpected(error.context("reading a user")))
}

async fn count_active_admins(db: &impl ConnectionTrait, tenant: TenantId) -> Result<u64, DbErr> {
    users::Entity::find()
        .filter(users::Column::TenantId.eq(tenant.as_uuid()))
        .filter(users::Column::Role.eq(Role::Admin.as_str()))
        .filter(users::Column::IsActive.eq(true))
        .filter(users::Column::DeletedAt.is_null())
        .count(db)
        .await
}

/// Writes `user` over its row if the row still holds the version `user` was loaded with.
async fn update_user(
    transaction: &DatabaseTransaction,
    user: &User,
) -> Result<(), RepositoryError> {
    let updated = users::Entity::update_many()
        .set(user_changes(user.snapshot()))
        .col_expr(
            users::Column::Version,
            Expr::col(users::Column::Version).add(1),
        )
        .filter(users::Column::Id.eq(user.id().as_uuid()))
        .filter(users::Column::TenantId.eq(user.tenant_id().as_uuid()))
        .filter(users::Column::Version.eq(user.version()))
        .exec(transaction)
        .await
        .map_err(|error| user_write_error(error, "updating a user"))?;
    if updated.rows_affected == 0 {
        return Err(RepositoryError::Stale);
    }
    Ok(())
}

/// Holds the tenant's row lock until `transaction` ends, so saves that could remove the
/// tenant's last active admin run one after the other. `FOR NO KEY UPDATE` still lets
/// rows that reference the tenant be inserted meanwhile. `SQLite` has no row locks and
/// needs none: the transaction holds its one write lock from the start.
async fn lock_tenant(
    transaction: &DatabaseTransaction,
    tenant: TenantId,
) -> Result<(), RepositoryError> {
    if transaction.get_database_backend() != DbBackend::Postgres {
        return Ok(());
    }
    tenants::Entity::find_by_id(tenant.as_uuid())
        .lock(LockType::NoKeyUpdate)
        .one(transaction)
        .await
        .map_err(|error| repository_error(error, "locking the user's tenant"))?;
    Ok(())
}

#[async_trait]
impl UserStore for SqlTransaction {
    /// Takes a share lock on `PostgreSQL`, so the user cannot be deactivated or deleted
    /// until this transaction ends (`SQLite`'s write transaction excludes that anyway).
    #[tracing::instrument(skip_all, fields(tenant_id = %tenant, user_id = %id))]
    async fn get(&mut self, tenant: TenantId, id: UserId) -> Result<Option<User>, RepositoryError> {
        let mut query = users::Entity::find_by_id(id.as_uuid())
            .filter(users::Column::TenantId.eq(tenant.as_uuid()));
        if self.transaction.get_database_backend() == DbBackend::Postgres {
            query = query.lock(LockType::Share);
        }
        query
            .one(&self.transaction)
            .await
            .map_err(|error| repository_error(error, "loading a user in a transaction"))?
            .map(into_user)
            .transpose()
    }

    #[tracing::instrument(skip_all, fields(tenant_id = %tenant.id()))]
    async fn add_tenant(&mut self, tenant: &Tenant) -> Result<(), RepositoryError> {
        tenants::Entity::insert(tenant_row(tenant))
            .exec_without_returning(&self.transaction)
            .await
            .map_err(|error| repository_error(error, "inserting a tenant"))?;
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(tenant_id = %user.tenant_id(), user_id = %user.id()))]
    async fn add(&mut self, user: &mut User) -> Result<(), RepositoryError> {
        users::Entity::insert(user_row(user))
            .exec_without_returning(&self.transaction)
            .await
            .map_err(|error| user_write_error(error, "inserting a user"))?;
        outbox::append(&self.transaction, user.events(), user.version()).await?;
        user.take_events();
        Ok(())
    }

    /// A save can leave the tenant without an active admin only when the user ends up
    /// not being one. Such a save locks the tenant before it updates the user, then
    /// re-counts the active admins. The lock serialises those saves within a tenant,
    /// so two admins demoting each other cannot both pass the re-count. A user who is
    /// an active admin once this commits keeps the rule true whatever else happens, so
    /// that save needs neither.
    ///
    /// `user` is replaced by its saved state (new version, no events) only once every
    /// statement has succeeded; on an error it is left as it was.
    #[tracing::instrument(skip_all, fields(tenant_id = %user.tenant_id(), user_id = %user.id()))]
    async fn save(&mut self, user: &mut User) -> Result<(), RepositoryError> {
        let transaction = &self.transaction;
        let tenant = user.tenant_id();
        let stays_active_admin = user.role() == Role::Admin && user.can_sign_in();
        if !stays_active_admin {
            lock_tenant(transaction, tenant).await?;
        }
        update_user(transaction, user).await?;
        if !stays_active_admin {
            let admins = count_active_admins(transaction, tenant)
                .await
                .map_err(|error| repository_error(error, "re-counting the tenant's admins"))?;
            if admins == 0 {
                return Err(RepositoryError::NoActiveAdminLeft);
            }
        }
        outbox::append(transaction, user.events(), user.version() + 1).await?;
        let mut saved = user.snapshot().clone();
        saved.version += 1;
        *user = User::reconstitute(saved);
        Ok(())
    }
}

#[async_trait]
impl UserRepository for SqlUsers {
    #[tracing::instrument(skip_all, fields(tenant_id = %tenant, user_id = %id))]
    async fn get(&self, tenant: TenantId, id: UserId) -> Result<Option<User>, RepositoryError> {
        let db = self.db.acquire().await?;
        users::Entity::find_by_id(id.as_uuid())
            .filter(users::Column::TenantId.eq(tenant.as_uuid()))
            .one(&*db)
            .await
            .map_err(|error| repository_error(error, "loading a user"))?
            .map(into_user)
            .transpose()
    }

    #[tracing::instrument(skip_all)]
    async fn find_by_email(&self, email: &Email) -> Result<Option<User>, RepositoryError> {
        let db = self.db.acquire().await?;
        users::Entity::find()
            .filter(users::Column::Email.eq(email.as_str()))
            .one(&*db)
            .await
            .map_err(|error| repository_error(error, "looking a user up by email"))?
            .map(into_user)
            .transpose()
    }

    #[tracing::instrument(skip_all, fields(tenant_id = %tenant))]
    async fn count_active_admins(&self, tenant: TenantId) -> Result<u64, RepositoryError> {
        let db = self.db.acquire().await?;
        count_active_admins(&*db, tenant)
            .await
            .map_err(|error| repository_error(error, "counting a tenant's active admins"))
    }

    #[tracing::instrument(skip_all, fields(tenant_id = %tenant))]
    async fn list(
        &self,
        tenant: TenantId,
        filter: &UserFilter,
        after: Option<UserId>,
        limit: u64,
    ) -> Result<Vec<User>, RepositoryError> {
        let mut query = users::Entity::find().filter(users::Column::TenantId.eq(tenant.as_uuid()));
        if let Some(after) = after {
            query = query.filter(users::Column::Id.gt(after.as_uuid()));
        }
        if !filter.include_deleted {
            query = query.filter(users::Column::DeletedAt.is_null());
        }
        if let Some(is_active) = filter.is_active {
            query = query.filter(users::Column::IsActive.eq(is_active));
        }
        if let Some(q) = &filter.q {
            // Both columns are stored lower-case, so a lower-case pattern makes LIKE
            // case-insensitive on every backend.
            let pattern = contains_pattern(&q.to_lowercase());
            query = query.filter(
                Condition::any()
                    .add(users::Column::Email.like(pattern.clone()))
                    .add(users::Column::Username.like(pattern)),
            );
        }
        let db = self.db.acquire().await?;
        query
            .order_by_asc(users::Column::Id)
            .limit(limit)
            .all(&*db)
            .await
            .map_err(|error| repository_error(error, "listing users"))?
            .into_iter()
            .map(into_user)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use application::ports::UserFilter;
    use chrono::{DateTime, TimeZone, Utc};
    use domain::{PasswordHash, TenantName, UserSnapshot, Username};
    use sea_orm::PaginatorTrait;
    use uuid::Uuid;

    use super::*;
    use application::ports::UnitOfWork;

    use crate::persistence::SqlUnitOfWork;
    use crate::testing::{on_every_backend, open_two_connections};

    fn at(minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 12, minute, 0).unwrap()
    }

    fn email(raw: &str) -> Email {
        Email::parse(raw).unwrap()
    }

    fn new_user(tenant: TenantId, address: &str, username: &str, role: Role) -> User {
        let id = UserId::from_uuid(Uuid::now_v7());
        User::register(
            id,
            id,
            tenant,
            email(address),
            Username::parse(username).unwrap(),
            PasswordHash::new("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".to_owned()),
            role,
            at(0),
        )
    }

    /// `user` as stored state changed by `change`, bypassing the domain's rules.
    fn altered(user: &User, change: impl FnOnce(&mut UserSnapshot)) -> User {
        let mut snapshot = user.snapshot().clone();
        change(&mut snapshot);
        User::reconstitute(snapshot)
    }

    /// The user adapters of one database: reads on the pool, each write in a
    /// transaction of its own, as a use case makes them.
    struct Users {
        read: SqlUsers,
        uow: SqlUnitOfWork,
    }

    impl Users {
        fn new(db: Database) -> Self {
            Self {
                read: SqlUsers::new(db.clone()),
                uow: SqlUnitOfWork::new(db),
            }
        }

        /// Stores `tenant` and its first admin; the admin as stored.
        async fn register(&self, tenant: &Tenant, admin: &User) -> Result<User, RepositoryError> {
            let mut admin = admin.clone();
            let mut tx = self.uow.begin().await?;
            tx.users().add_tenant(tenant).await?;
            tx.users().add(&mut admin).await?;
            tx.commit().await?;
            Ok(admin)
        }

        /// The user as stored.
        async fn add(&self, user: &User) -> Result<User, RepositoryError> {
            let mut user = user.clone();
            let mut tx = self.uow.begin().await?;
            tx.users().add(&mut user).await?;
            tx.commit().await?;
            Ok(user)
        }

        /// The user as saved.
        async fn save(&self, user: &User) -> Result<User, RepositoryError> {
            let mut user = user.clone();
            let mut tx = self.uow.begin().await?;
            tx.users().save(&mut user).await?;
            tx.commit().await?;
            Ok(user)
        }
    }

    fn acme() -> Tenant {
        Tenant::create(
            TenantId::from_uuid(Uuid::now_v7()),
            TenantName::parse("Acme").unwrap(),
            at(0),
        )
    }

    /// A new tenant and its admin, stored.
    async fn tenant_with_admin(users: &Users, address: &str) -> User {
        let tenant = acme();
        let admin = new_user(tenant.id(), address, "admin", Role::Admin);
        users.register(&tenant, &admin).await.unwrap()
    }

    async fn add(users: &Users, user: User) -> User {
        users.add(&user).await.unwrap()
    }

    async fn member_of(users: &Users, admin: &User, address: &str, username: &str) -> User {
        add(
            users,
            new_user(admin.tenant_id(), address, username, Role::Member),
        )
        .await
    }

    async fn reload(users: &Users, user: &User) -> User {
        users
            .read
            .get(user.tenant_id(), user.id())
            .await
            .unwrap()
            .unwrap()
    }

    async fn ids(users: &Users, tenant: TenantId, filter: UserFilter) -> Vec<UserId> {
        let listed = users.read.list(tenant, &filter, None, 100).await.unwrap();
        listed.iter().map(User::id).collect()
    }

    fn search(q: &str) -> UserFilter {
        UserFilter {
            q: Some(q.to_owned()),
            ..UserFilter::default()
        }
    }

    #[tokio::test]
    async fn a_stored_user_reads_back_unchanged_by_id_and_by_email() {
        on_every_backend(|db| async move {
            let users = Users::new(db);
            let admin = tenant_with_admin(&users, "admin@example.com").await;
            let member = member_of(&users, &admin, "member@example.com", "member").await;
            let by_id = users
                .read
                .get(member.tenant_id(), member.id())
                .await
                .unwrap();
            assert_eq!(by_id.as_ref(), Some(&member));
            let by_email = users
                .read
                .find_by_email(&email("member@example.com"))
                .await
                .unwrap();
            assert_eq!(by_email, Some(member));
            let nobody = users
                .read
                .find_by_email(&email("nobody@example.com"))
                .await
                .unwrap();
            assert_eq!(nobody, None);
        })
        .await;
    }

    #[tokio::test]
    async fn a_user_of_another_tenant_is_not_found_by_id() {
        on_every_backend(|db| async move {
            let users = Users::new(db);
            let ours = tenant_with_admin(&users, "a@example.com").await;
            let theirs = tenant_with_admin(&users, "b@example.com").await;
            assert_eq!(
                users.read.get(ours.tenant_id(), theirs.id()).await.unwrap(),
                None
            );
            assert!(
                users
                    .read
                    .get(theirs.tenant_id(), theirs.id())
                    .await
                    .unwrap()
                    .is_some()
            );
        })
        .await;
    }

    #[tokio::test]
    async fn a_listing_never_shows_another_tenants_users() {
        on_every_backend(|db| async move {
            let users = Users::new(db);
            let ours = tenant_with_admin(&users, "a@example.com").await;
            let colleague = member_of(&users, &ours, "colleague@example.com", "colleague").await;
            let theirs = tenant_with_admin(&users, "b@example.com").await;
            member_of(&users, &theirs, "stranger@example.com", "stranger").await;
            let everyone = UserFilter {
                include_deleted: true,
                ..UserFilter::default()
            };
            assert_eq!(
                ids(&users, ours.tenant_id(), everyone).await,
                vec![ours.id(), colleague.id()]
            );
            assert_eq!(
                users
                    .read
                    .count_active_admins(ours.tenant_id())
                    .await
                    .unwrap(),
                1
            );
        })
        .await;
    }

    #[tokio::test]
    async fn an_email_in_use_in_any_tenant_is_taken_when_adding_or_registering() {
        on_every_backend(|db| async move {
            let users = Users::new(db.clone());
            let first = tenant_with_admin(&users, "a@example.com").await;
            let second = tenant_with_admin(&users, "b@example.com").await;
            let duplicate = new_user(second.tenant_id(), "a@example.com", "copycat", Role::Member);
            assert!(matches!(
                users.add(&duplicate).await,
                Err(RepositoryError::EmailTaken)
            ));

            let tenant = Tenant::create(
                TenantId::from_uuid(Uuid::now_v7()),
                TenantName::parse("Late").unwrap(),
                at(1),
            );
            let admin = new_user(tenant.id(), "b@example.com", "late", Role::Admin);
            let registered = users.register(&tenant, &admin).await;
            assert!(matches!(registered, Err(RepositoryError::EmailTaken)));
            // The tenant row went with the refused admin.
            assert_eq!(
                tenants::Entity::find().count(db.ungated()).await.unwrap(),
                2
            );
            assert_eq!(reload(&users, &first).await, first);
        })
        .await;
    }

    #[tokio::test]
    async fn a_clash_on_a_key_other_than_the_email_is_unexpected_not_a_taken_email() {
        on_every_backend(|db| async move {
            let users = Users::new(db);
            let admin = tenant_with_admin(&users, "admin@example.com").await;
            let same_id = altered(&admin, |user| user.email = email("other@example.com"));
            let added = users.add(&same_id).await;
            assert!(
                matches!(added, Err(RepositoryError::Unexpected(_))),
                "{added:?}"
            );
        })
        .await;
    }

    #[tokio::test]
    async fn changing_an_email_to_one_already_taken_is_refused_on_save() {
        on_every_backend(|db| async move {
            let users = Users::new(db);
            let admin = tenant_with_admin(&users, "admin@example.com").await;
            let mut member = member_of(&users, &admin, "member@example.com", "member").await;
            member
                .change_email(email("admin@example.com"), at(1))
                .unwrap();
            assert!(matches!(
                users.save(&member).await,
                Err(RepositoryError::EmailTaken)
            ));
            assert_eq!(
                reload(&users, &member).await.email().as_str(),
                "member@example.com"
            );
        })
        .await;
    }

    #[tokio::test]
    async fn a_save_bumps_the_version_and_a_save_from_an_older_read_is_stale() {
        on_every_backend(|db| async move {
            let users = Users::new(db);
            let admin = tenant_with_admin(&users, "admin@example.com").await;
            let member = member_of(&users, &admin, "member@example.com", "member").await;
            // A member's save re-counts the admins, an active admin's does not.
            for user in [member, admin] {
                let mut first = reload(&users, &user).await;
                let mut second = reload(&users, &user).await;

                first
                    .rename(Username::parse("first").unwrap(), at(1))
                    .unwrap();
                users.save(&first).await.unwrap();
                let saved = reload(&users, &user).await;
                assert_eq!(saved.version(), 1);
                assert_eq!(saved.updated_at(), at(1));

                second
                    .rename(Username::parse("second").unwrap(), at(2))
                    .unwrap();
                assert!(matches!(
                    users.save(&second).await,
                    Err(RepositoryError::Stale)
                ));
                assert_eq!(reload(&users, &user).await.username().as_str(), "first");
            }
        })
        .await;
    }

    #[tokio::test]
    async fn saving_a_user_with_another_tenant_is_stale_and_changes_nothing() {
        on_every_backend(|db| async move {
            let users = Users::new(db);
            let ours = tenant_with_admin(&users, "a@example.com").await;
            let theirs = tenant_with_admin(&users, "b@example.com").await;
            // Deactivated, then still an admin: the two ways a save can go.
            let hijacked = altered(&theirs, |user| {
                user.tenant_id = ours.tenant_id();
                user.is_active = false;
            });
            assert!(matches!(
                users.save(&hijacked).await,
                Err(RepositoryError::Stale)
            ));
            let renamed = altered(&theirs, |user| {
                user.tenant_id = ours.tenant_id();
                user.username = Username::parse("hijacked").unwrap();
            });
            assert!(matches!(
                users.save(&renamed).await,
                Err(RepositoryError::Stale)
            ));
            assert_eq!(reload(&users, &theirs).await, theirs);
        })
        .await;
    }

    #[tokio::test]
    async fn saving_a_demoted_copy_of_the_only_admin_is_refused_and_changes_nothing() {
        on_every_backend(|db| async move {
            let users = Users::new(db);
            let admin = tenant_with_admin(&users, "admin@example.com").await;
            // Bypasses the domain rule, as a concurrent demotion would slip past it.
            let demoted = altered(&admin, |user| user.role = Role::Member);
            let saved = users.save(&demoted).await;
            assert!(
                matches!(saved, Err(RepositoryError::NoActiveAdminLeft)),
                "{saved:?}"
            );
            assert_eq!(reload(&users, &admin).await, admin);
            // The tenant stays writable: the refused transaction released its locks.
            member_of(&users, &admin, "member@example.com", "member").await;
        })
        .await;
    }

    #[tokio::test]
    async fn an_admin_can_be_demoted_while_another_active_admin_remains() {
        on_every_backend(|db| async move {
            let users = Users::new(db);
            let admin = tenant_with_admin(&users, "admin@example.com").await;
            let other = new_user(admin.tenant_id(), "other@example.com", "other", Role::Admin);
            let other = add(&users, other).await;
            let mut demoted = admin.clone();
            demoted
                .change_role(other.id(), Role::Member, domain::ActiveAdmins(2), at(1))
                .unwrap();
            users.save(&demoted).await.unwrap();
            assert_eq!(reload(&users, &admin).await.role(), Role::Member);
            assert_eq!(
                users
                    .read
                    .count_active_admins(admin.tenant_id())
                    .await
                    .unwrap(),
                1
            );
        })
        .await;
    }

    #[tokio::test]
    async fn of_two_admins_demoting_each_other_at_once_only_one_succeeds() {
        on_every_backend(|db| async move {
            let users = Users::new(db.clone());
            let first = tenant_with_admin(&users, "first@example.com").await;
            let second = new_user(
                first.tenant_id(),
                "second@example.com",
                "second",
                Role::Admin,
            );
            let second = add(&users, second).await;
            // Each read two active admins, so the domain allowed both demotions.
            let mut first_demoted = first.clone();
            first_demoted
                .change_role(second.id(), Role::Member, domain::ActiveAdmins(2), at(1))
                .unwrap();
            let mut second_demoted = second.clone();
            second_demoted
                .change_role(first.id(), Role::Member, domain::ActiveAdmins(2), at(1))
                .unwrap();
            open_two_connections(&db).await;
            let (one, other) =
                tokio::join!(users.save(&first_demoted), users.save(&second_demoted));
            let refused = [&one, &other]
                .iter()
                .filter(|saved| matches!(saved, Err(RepositoryError::NoActiveAdminLeft)))
                .count();
            assert!(one.is_ok() || other.is_ok(), "{one:?} {other:?}");
            assert_eq!(refused, 1, "{one:?} {other:?}");
            assert_eq!(
                users
                    .read
                    .count_active_admins(first.tenant_id())
                    .await
                    .unwrap(),
                1
            );
        })
        .await;
    }

    #[tokio::test]
    async fn only_active_undeleted_admins_of_the_tenant_count_as_active_admins() {
        on_every_backend(|db| async move {
            let users = Users::new(db);
            let admin = tenant_with_admin(&users, "admin@example.com").await;
            let tenant = admin.tenant_id();
            let inactive = new_user(tenant, "inactive@example.com", "inactive", Role::Admin);
            add(&users, altered(&inactive, |user| user.is_active = false)).await;
            let deleted = new_user(tenant, "deleted@example.com", "deleted", Role::Admin);
            add(
                &users,
                altered(&deleted, |user| user.deleted_at = Some(at(1))),
            )
            .await;
            member_of(&users, &admin, "member@example.com", "member").await;
            tenant_with_admin(&users, "elsewhere@example.com").await;
            assert_eq!(users.read.count_active_admins(tenant).await.unwrap(), 1);
        })
        .await;
    }

    #[tokio::test]
    async fn pages_follow_each_other_in_id_order_without_gaps_or_repeats() {
        on_every_backend(|db| async move {
            let users = Users::new(db);
            let admin = tenant_with_admin(&users, "admin@example.com").await;
            let mut expected = vec![admin.id()];
            for n in 0..4 {
                let member =
                    member_of(&users, &admin, &format!("m{n}@example.com"), "member").await;
                expected.push(member.id());
            }
            let filter = UserFilter::default();
            let mut seen = Vec::new();
            let mut after = None;
            loop {
                let page = users
                    .read
                    .list(admin.tenant_id(), &filter, after, 2)
                    .await
                    .unwrap();
                assert!(page.len() <= 2);
                let Some(last) = page.last() else { break };
                after = Some(last.id());
                seen.extend(page.iter().map(User::id));
            }
            assert_eq!(seen, expected);
        })
        .await;
    }

    #[tokio::test]
    async fn the_search_matches_part_of_the_email_or_the_username_in_any_case() {
        on_every_backend(|db| async move {
            let users = Users::new(db);
            let admin = tenant_with_admin(&users, "admin@example.com").await;
            let tenant = admin.tenant_id();
            let grace = member_of(&users, &admin, "grace@hopper.org", "grace_h").await;
            let linus = member_of(&users, &admin, "linus@kernel.org", "torvalds").await;
            assert_eq!(
                ids(&users, tenant, search("HOPPER")).await,
                vec![grace.id()]
            );
            assert_eq!(ids(&users, tenant, search("Torv")).await, vec![linus.id()]);
            assert_eq!(
                ids(&users, tenant, search(".org")).await,
                vec![grace.id(), linus.id()]
            );
        })
        .await;
    }

    #[tokio::test]
    async fn like_wildcards_in_the_search_are_taken_literally() {
        on_every_backend(|db| async move {
            let users = Users::new(db);
            let admin = tenant_with_admin(&users, "admin@example.com").await;
            let tenant = admin.tenant_id();
            let grace = member_of(&users, &admin, "grace@hopper.org", "grace_h").await;
            member_of(&users, &admin, "gracex@hopper.org", "gracexh").await;
            assert_eq!(ids(&users, tenant, search("_")).await, vec![grace.id()]);
            assert_eq!(ids(&users, tenant, search("e_h")).await, vec![grace.id()]);
            assert!(ids(&users, tenant, search("%")).await.is_empty());
            assert!(ids(&users, tenant, search("\\")).await.is_empty());
        })
        .await;
    }

    #[tokio::test]
    async fn deleted_users_are_listed_only_when_asked_for_and_activity_filters_apply() {
        on_every_backend(|db| async move {
            let users = Users::new(db);
            let admin = tenant_with_admin(&users, "admin@example.com").await;
            let tenant = admin.tenant_id();
            let active = member_of(&users, &admin, "active@example.com", "active").await;
            let inactive = new_user(tenant, "inactive@example.com", "inactive", Role::Member);
            let inactive = add(&users, altered(&inactive, |user| user.is_active = false)).await;
            let deleted = new_user(tenant, "deleted@example.com", "deleted", Role::Member);
            let deleted = add(
                &users,
                altered(&deleted, |user| user.deleted_at = Some(at(1))),
            )
            .await;

            let visible = ids(&users, tenant, UserFilter::default()).await;
            assert_eq!(visible, vec![admin.id(), active.id(), inactive.id()]);
            let only_inactive = UserFilter {
                is_active: Some(false),
                ..UserFilter::default()
            };
            assert_eq!(
                ids(&users, tenant, only_inactive).await,
                vec![inactive.id()]
            );
            let active_with_deleted = UserFilter {
                is_active: Some(true),
                include_deleted: true,
                ..UserFilter::default()
            };
            assert_eq!(
                ids(&users, tenant, active_with_deleted).await,
                vec![admin.id(), active.id(), deleted.id()]
            );
        })
        .await;
    }

    #[tokio::test]
    async fn a_tenant_and_its_first_admin_commit_together_with_the_registration_event() {
        on_every_backend(|db| async move {
            let users = Users::new(db.clone());
            let admin = tenant_with_admin(&users, "admin@example.com").await;
            assert!(admin.events().is_empty(), "the events were handed over");
            assert_eq!(admin.version(), 0);
            assert_eq!(reload(&users, &admin).await, admin);
            assert_eq!(
                tenants::Entity::find().count(db.ungated()).await.unwrap(),
                1
            );
            let events = outbox::stored(&db).await;
            assert_eq!(events.len(), 1);
            let registered = &events[0];
            assert_eq!(registered.event_type, "user.registered");
            assert_eq!(registered.aggregate_type, "user");
            assert_eq!(registered.aggregate_id, admin.id().as_uuid());
            assert_eq!(registered.tenant_id, admin.tenant_id().as_uuid());
            assert_eq!(registered.occurred_at, at(0));
            assert_eq!(registered.published_at, None);
            let payload: serde_json::Value = serde_json::from_str(&registered.payload).unwrap();
            assert_eq!(payload["role"], "admin");
            assert_eq!(payload["user_id"], admin.id().to_string());
        })
        .await;
    }

    #[tokio::test]
    async fn a_transaction_dropped_without_commit_stores_nothing_and_frees_the_database() {
        on_every_backend(|db| async move {
            let users = Users::new(db.clone());
            let tenant = acme();
            let mut admin = new_user(tenant.id(), "admin@example.com", "admin", Role::Admin);
            let mut tx = users.uow.begin().await.unwrap();
            tx.users().add_tenant(&tenant).await.unwrap();
            tx.users().add(&mut admin).await.unwrap();
            drop(tx);
            assert_eq!(
                tenants::Entity::find().count(db.ungated()).await.unwrap(),
                0
            );
            assert_eq!(users.read.find_by_email(admin.email()).await.unwrap(), None);
            assert!(outbox::stored(&db).await.is_empty());
            // SQLite's write lock and PostgreSQL's connection were given back.
            tenant_with_admin(&users, "admin@example.com").await;
        })
        .await;
    }

    #[tokio::test]
    async fn a_saved_user_carries_the_new_version_and_its_deactivation_reaches_the_outbox() {
        on_every_backend(|db| async move {
            let users = Users::new(db.clone());
            let admin = tenant_with_admin(&users, "admin@example.com").await;
            let mut member = member_of(&users, &admin, "member@example.com", "member").await;
            member
                .deactivate(admin.id(), domain::ActiveAdmins(1), at(1))
                .unwrap();
            let saved = users.save(&member).await.unwrap();
            assert_eq!(saved.version(), 1);
            assert!(saved.events().is_empty());
            assert_eq!(reload(&users, &member).await, saved);
            let events = outbox::stored(&db).await;
            let names: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
            assert_eq!(
                names,
                ["user.registered", "user.registered", "user.deactivated"]
            );
            let deactivated = &events[2];
            assert_eq!(deactivated.aggregate_id, member.id().as_uuid());
            assert_eq!(deactivated.occurred_at, at(1));
            let payload: serde_json::Value = serde_json::from_str(&deactivated.payload).unwrap();
            assert_eq!(payload["actor_id"], admin.id().to_string());
        })
        .await;
    }

    #[tokio::test]
    async fn a_refused_save_leaves_the_user_and_its_events_as_they_were() {
        on_every_backend(|db| async move {
            let users = Users::new(db.clone());
            let admin = tenant_with_admin(&users, "admin@example.com").await;
            let member = member_of(&users, &admin, "member@example.com", "member").await;
            let mut stale = member.clone();
            users.save(&altered(&member, |_| ())).await.unwrap();
            stale
                .deactivate(admin.id(), domain::ActiveAdmins(1), at(1))
                .unwrap();
            let before = stale.clone();
            let mut tx = users.uow.begin().await.unwrap();
            let saved = tx.users().save(&mut stale).await;
            assert!(matches!(saved, Err(RepositoryError::Stale)), "{saved:?}");
            assert_eq!(stale, before);
            assert_eq!(stale.events().len(), 1);
            drop(tx);
            assert_eq!(outbox::stored(&db).await.len(), 2, "two registrations only");
        })
        .await;
    }

    #[tokio::test]
    async fn every_call_on_a_closed_pool_is_unavailable() {
        on_every_backend(|db| async move {
            let users = Users::new(db.clone());
            let admin = tenant_with_admin(&users, "admin@example.com").await;
            let member = member_of(&users, &admin, "member@example.com", "member").await;
            db.close().await.unwrap();
            let read = users.read.get(admin.tenant_id(), admin.id()).await;
            assert!(
                matches!(read, Err(RepositoryError::Unavailable(_))),
                "{read:?}"
            );
            for user in [&admin, &member] {
                let write = users.save(user).await;
                assert!(
                    matches!(write, Err(RepositoryError::Unavailable(_))),
                    "{write:?}"
                );
            }
        })
        .await;
    }
}
