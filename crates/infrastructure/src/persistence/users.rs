//! Users on SQL: how a user maps to the `users` table (`Persisted`), the queries of
//! user lists and sign-in (`SqlUsers`), and what changes to users need of a transaction
//! besides storing them (`Accounts`: tenants, the count of admins, sessions).

use anyhow::Context;
use application::ports::{Accounts, RepositoryError};
use application::users::{UserFilter, UserQueries};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::{
    ActiveAdmins, Email, PasswordHash, Role, Tenant, TenantId, User, UserId, UserSnapshot, Username,
};
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::LockType;
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DbBackend, DbErr, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, SqlErr,
};

use super::entity::{tenants, users};
use super::store::Persisted;
use super::unit_of_work::SqlTransaction;
use super::{contains_pattern, refresh_tokens, repository_error};
use crate::database::{Access, Database, Scope};

impl Persisted for User {
    type Entity = users::Entity;
    type Row = users::Model;
    type Active = users::ActiveModel;
    type Children = ();

    fn to_rows(&self) -> (users::Model, ()) {
        let user = self.snapshot();
        let row = users::Model {
            id: user.id.as_uuid(),
            tenant_id: user.tenant_id.as_uuid(),
            email: user.email.as_str().to_owned(),
            username: user.username.as_str().to_owned(),
            password_hash: user.password_hash.as_str().to_owned(),
            role: user.role.as_str().to_owned(),
            is_active: user.is_active,
            version: user.version,
            created_at: user.created_at,
            updated_at: user.updated_at,
            deleted_at: user.deleted_at,
        };
        (row, ())
    }

    fn from_rows(row: users::Model, (): ()) -> anyhow::Result<Self> {
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

    /// A clash on the unique index of emails is `EmailTaken`; any other (a reused id) is
    /// a bug and stays one.
    fn write_error(error: DbErr, doing: &'static str) -> RepositoryError {
        match error.sql_err() {
            // PostgreSQL's message names the index (`idx_users_email`, from the
            // migration), SQLite's names the column.
            Some(SqlErr::UniqueConstraintViolation(message))
                if message.contains("\"idx_users_email\"") || message.contains("users.email") =>
            {
                RepositoryError::EmailTaken
            }
            _ => repository_error(error, doing),
        }
    }
}

fn into_user(row: users::Model) -> Result<User, RepositoryError> {
    User::from_rows(row, ())
        .map_err(|error| RepositoryError::Unexpected(error.context("reading a user")))
}

/// Queries of the `users` table, on the pool.
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

#[async_trait]
impl UserQueries for SqlUsers {
    #[tracing::instrument(skip_all)]
    async fn find_by_email(&self, email: &Email) -> Result<Option<User>, RepositoryError> {
        // Before sign-in the email is what tells the tenant (ADR 15: emails are unique
        // across tenants).
        let db = self.db.session(Scope::AllTenants, Access::Read).await?;
        let row = users::Entity::find()
            .filter(users::Column::Email.eq(email.as_str()))
            .one(&*db)
            .await
            .map_err(|error| repository_error(error, "looking a user up by email"))?;
        db.commit().await?;
        row.map(into_user).transpose()
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
        let db = self.db.session(Scope::Tenant(tenant), Access::Read).await?;
        let rows = query
            .order_by_asc(users::Column::Id)
            .limit(limit)
            .all(&*db)
            .await
            .map_err(|error| repository_error(error, "listing users"))?;
        db.commit().await?;
        rows.into_iter().map(into_user).collect()
    }
}

#[async_trait]
impl Accounts for SqlTransaction {
    #[tracing::instrument(skip_all, fields(tenant_id = %tenant.id()))]
    async fn add_tenant(&mut self, tenant: &Tenant) -> Result<(), RepositoryError> {
        let transaction = self.enter(tenant.id()).await?;
        tenants::Entity::insert(tenants::ActiveModel {
            id: Set(tenant.id().as_uuid()),
            name: Set(tenant.name().as_str().to_owned()),
            created_at: Set(tenant.created_at()),
        })
        .exec_without_returning(transaction)
        .await
        .map_err(|error| repository_error(error, "inserting a tenant"))?;
        Ok(())
    }

    /// Locks the tenant's row first (`FOR NO KEY UPDATE`, which still lets rows that
    /// reference the tenant be inserted), so that the changes that count admins run one
    /// after the other and each counts what the one before committed. `SQLite` needs no
    /// lock: its write transaction holds the whole database from its start.
    #[tracing::instrument(skip_all, fields(tenant_id = %tenant))]
    async fn active_admins(&mut self, tenant: TenantId) -> Result<ActiveAdmins, RepositoryError> {
        let transaction = self.enter(tenant).await?;
        if transaction.get_database_backend() == DbBackend::Postgres {
            tenants::Entity::find_by_id(tenant.as_uuid())
                .lock(LockType::NoKeyUpdate)
                .one(transaction)
                .await
                .map_err(|error| repository_error(error, "locking a tenant"))?;
        }
        let count = users::Entity::find()
            .filter(users::Column::TenantId.eq(tenant.as_uuid()))
            .filter(users::Column::Role.eq(Role::Admin.as_str()))
            .filter(users::Column::IsActive.eq(true))
            .filter(users::Column::DeletedAt.is_null())
            .count(transaction)
            .await
            .map_err(|error| repository_error(error, "counting a tenant's active admins"))?;
        Ok(ActiveAdmins(count))
    }

    /// Takes a share lock on `PostgreSQL`, so the user cannot be deactivated or deleted
    /// until this transaction ends (`SQLite`'s write transaction excludes that anyway).
    #[tracing::instrument(skip_all, fields(tenant_id = %tenant, user_id = %user))]
    async fn can_act(&mut self, tenant: TenantId, user: UserId) -> Result<bool, RepositoryError> {
        let transaction = self.enter(tenant).await?;
        let mut query = users::Entity::find_by_id(user.as_uuid())
            .filter(users::Column::TenantId.eq(tenant.as_uuid()));
        if transaction.get_database_backend() == DbBackend::Postgres {
            query = query.lock(LockType::Share);
        }
        let found = query
            .one(transaction)
            .await
            .map_err(|error| repository_error(error, "reading a user in a transaction"))?;
        Ok(found.is_some_and(|row| row.is_active && row.deleted_at.is_none()))
    }

    #[tracing::instrument(skip_all, fields(tenant_id = %tenant, user_id = %user))]
    async fn end_sessions(
        &mut self,
        tenant: TenantId,
        user: UserId,
        now: DateTime<Utc>,
    ) -> Result<(), RepositoryError> {
        let transaction = self.enter(tenant).await?;
        refresh_tokens::revoke_user(transaction, user, now)
            .await
            .map_err(|error| repository_error(error, "ending a user's sessions"))
    }
}

#[cfg(test)]
mod tests {
    use crate::database::Database;
    use application::ports::{Lookup, Store, Transaction, UnitOfWork};
    use chrono::TimeZone;
    use domain::Aggregate;
    use domain::TenantName;
    use uuid::Uuid;

    use super::*;
    use crate::persistence::entity::refresh_tokens;
    use crate::persistence::{SqlLookup, SqlRefreshTokens, SqlUnitOfWork, outbox};
    use crate::testing::open_two_connections;

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
    /// transaction of its own, as a use case makes them (events included).
    struct Users {
        lookup: SqlLookup<User>,
        read: SqlUsers,
        uow: SqlUnitOfWork,
    }

    /// Adds `user` and appends its events, in `tx`, as a use case does.
    async fn add_in(tx: &mut dyn Transaction, user: &mut User) -> Result<(), RepositoryError> {
        let events = user.take_events();
        Store::<User>::add(tx, user).await?;
        let events = events.into_iter().map(Into::into).collect();
        tx.append_events(events, user.version()).await
    }

    impl Users {
        fn new(db: Database) -> Self {
            Self {
                lookup: SqlLookup::new(db.clone()),
                read: SqlUsers::new(db.clone()),
                uow: SqlUnitOfWork::new(db),
            }
        }

        /// Stores `tenant` and its first admin; the admin as stored.
        async fn register(&self, tenant: &Tenant, admin: &User) -> Result<User, RepositoryError> {
            let mut admin = admin.clone();
            let mut tx = self.uow.begin().await?;
            tx.add_tenant(tenant).await?;
            add_in(tx.as_mut(), &mut admin).await?;
            tx.commit().await?;
            Ok(admin)
        }

        /// The user as stored.
        async fn add(&self, user: &User) -> Result<User, RepositoryError> {
            let mut user = user.clone();
            let mut tx = self.uow.begin().await?;
            add_in(tx.as_mut(), &mut user).await?;
            tx.commit().await?;
            Ok(user)
        }

        /// The user as saved, with its events appended.
        async fn save(&self, user: &User) -> Result<User, RepositoryError> {
            let mut user = user.clone();
            let events = user.take_events();
            let mut tx = self.uow.begin().await?;
            Store::<User>::save(tx.as_mut(), &mut user).await?;
            let events = events.into_iter().map(Into::into).collect();
            tx.append_events(events, user.version()).await?;
            tx.commit().await?;
            Ok(user)
        }

        /// The tenant's active admins, counted in a transaction of its own.
        async fn active_admins(&self, tenant: TenantId) -> u64 {
            let mut tx = self.uow.begin().await.unwrap();
            tx.active_admins(tenant).await.unwrap().0
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
            .lookup
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

    async fn a_stored_user_reads_back_unchanged_by_id_and_by_email(db: Database) {
        let users = Users::new(db);
        let admin = tenant_with_admin(&users, "admin@example.com").await;
        let member = member_of(&users, &admin, "member@example.com", "member").await;
        let by_id = users
            .lookup
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
    }

    async fn a_user_of_another_tenant_is_not_found_by_id(db: Database) {
        let users = Users::new(db);
        let ours = tenant_with_admin(&users, "a@example.com").await;
        let theirs = tenant_with_admin(&users, "b@example.com").await;
        assert_eq!(
            users
                .lookup
                .get(ours.tenant_id(), theirs.id())
                .await
                .unwrap(),
            None
        );
        assert!(
            users
                .lookup
                .get(theirs.tenant_id(), theirs.id())
                .await
                .unwrap()
                .is_some()
        );
    }

    async fn a_listing_never_shows_another_tenants_users(db: Database) {
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
        assert_eq!(users.active_admins(ours.tenant_id()).await, 1);
    }

    async fn an_email_in_use_in_any_tenant_is_taken_when_adding_or_registering(db: Database) {
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
    }

    async fn a_clash_on_a_key_other_than_the_email_is_unexpected_not_a_taken_email(db: Database) {
        let users = Users::new(db);
        let admin = tenant_with_admin(&users, "admin@example.com").await;
        let same_id = altered(&admin, |user| user.email = email("other@example.com"));
        let added = users.add(&same_id).await;
        assert!(
            matches!(added, Err(RepositoryError::Unexpected(_))),
            "{added:?}"
        );
    }

    async fn changing_an_email_to_one_already_taken_is_refused_on_save(db: Database) {
        let users = Users::new(db);
        let admin = tenant_with_admin(&users, "admin@example.com").await;
        let mut member = member_of(&users, &admin, "member@example.com", "member").await;
        member
            .change_email(admin.id(), email("admin@example.com"), at(1))
            .unwrap();
        assert!(matches!(
            users.save(&member).await,
            Err(RepositoryError::EmailTaken)
        ));
        assert_eq!(
            reload(&users, &member).await.email().as_str(),
            "member@example.com"
        );
    }

    async fn a_save_bumps_the_version_and_a_save_from_an_older_read_is_stale(db: Database) {
        let users = Users::new(db);
        let admin = tenant_with_admin(&users, "admin@example.com").await;
        let member = member_of(&users, &admin, "member@example.com", "member").await;
        for user in [member, admin] {
            let mut first = reload(&users, &user).await;
            let mut second = reload(&users, &user).await;

            first
                .rename(user.id(), Username::parse("first").unwrap(), at(1))
                .unwrap();
            users.save(&first).await.unwrap();
            let saved = reload(&users, &user).await;
            assert_eq!(saved.version(), 1);
            assert_eq!(saved.updated_at(), at(1));

            second
                .rename(user.id(), Username::parse("second").unwrap(), at(2))
                .unwrap();
            assert!(matches!(
                users.save(&second).await,
                Err(RepositoryError::Stale)
            ));
            assert_eq!(reload(&users, &user).await.username().as_str(), "first");
        }
    }

    async fn saving_a_user_with_another_tenant_is_stale_and_changes_nothing(db: Database) {
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
    }

    async fn an_admin_can_be_demoted_while_another_active_admin_remains(db: Database) {
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
        assert_eq!(users.active_admins(admin.tenant_id()).await, 1);
    }

    /// Each demotes the other if the count of active admins, taken in its transaction,
    /// allows it, as the use case does: the tenant's lock makes the second count what
    /// the first committed.
    async fn of_two_admins_demoting_each_other_at_once_only_one_succeeds(db: Database) {
        let users = Users::new(db.clone());
        let first = tenant_with_admin(&users, "first@example.com").await;
        let second = new_user(
            first.tenant_id(),
            "second@example.com",
            "second",
            Role::Admin,
        );
        let second = add(&users, second).await;
        let demote = |user: User, by: UserId| {
            let uow = &users.uow;
            async move {
                let mut tx = uow.begin().await?;
                let admins = tx.active_admins(user.tenant_id()).await?;
                let mut demoted = user;
                if demoted
                    .change_role(by, Role::Member, admins, at(1))
                    .is_err()
                {
                    return Ok(false);
                }
                Store::<User>::save(tx.as_mut(), &mut demoted).await?;
                tx.commit().await?;
                Ok::<_, RepositoryError>(true)
            }
        };
        open_two_connections(&db).await;
        let (one, other) = tokio::join!(
            demote(first.clone(), second.id()),
            demote(second.clone(), first.id())
        );
        let demoted = [one.unwrap(), other.unwrap()];
        assert_eq!(
            demoted.iter().filter(|done| **done).count(),
            1,
            "{demoted:?}"
        );
        assert_eq!(users.active_admins(first.tenant_id()).await, 1);
    }

    async fn only_active_undeleted_admins_of_the_tenant_count_as_active_admins(db: Database) {
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
        assert_eq!(users.active_admins(tenant).await, 1);
    }

    async fn pages_follow_each_other_in_id_order_without_gaps_or_repeats(db: Database) {
        let users = Users::new(db);
        let admin = tenant_with_admin(&users, "admin@example.com").await;
        let mut expected = vec![admin.id()];
        for n in 0..4 {
            let member = member_of(&users, &admin, &format!("m{n}@example.com"), "member").await;
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
    }

    async fn the_search_matches_part_of_the_email_or_the_username_in_any_case(db: Database) {
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
    }

    async fn like_wildcards_in_the_search_are_taken_literally(db: Database) {
        let users = Users::new(db);
        let admin = tenant_with_admin(&users, "admin@example.com").await;
        let tenant = admin.tenant_id();
        let grace = member_of(&users, &admin, "grace@hopper.org", "grace_h").await;
        member_of(&users, &admin, "gracex@hopper.org", "gracexh").await;
        assert_eq!(ids(&users, tenant, search("_")).await, vec![grace.id()]);
        assert_eq!(ids(&users, tenant, search("e_h")).await, vec![grace.id()]);
        assert!(ids(&users, tenant, search("%")).await.is_empty());
        assert!(ids(&users, tenant, search("\\")).await.is_empty());
    }

    async fn deleted_users_are_listed_only_when_asked_for_and_activity_filters_apply(db: Database) {
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
    }

    async fn a_tenant_and_its_first_admin_commit_together_with_the_registration_event(
        db: Database,
    ) {
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
        assert_eq!(payload["event"]["user"]["fact"]["role"], "admin");
        assert_eq!(payload["event"]["user"]["user_id"], admin.id().to_string());
    }

    async fn a_transaction_dropped_without_commit_stores_nothing_and_frees_the_database(
        db: Database,
    ) {
        let users = Users::new(db.clone());
        let tenant = acme();
        let mut admin = new_user(tenant.id(), "admin@example.com", "admin", Role::Admin);
        let mut tx = users.uow.begin().await.unwrap();
        tx.add_tenant(&tenant).await.unwrap();
        add_in(tx.as_mut(), &mut admin).await.unwrap();
        drop(tx);
        assert_eq!(
            tenants::Entity::find().count(db.ungated()).await.unwrap(),
            0
        );
        assert_eq!(users.read.find_by_email(admin.email()).await.unwrap(), None);
        assert!(outbox::stored(&db).await.is_empty());
        // SQLite's write lock and PostgreSQL's connection were given back.
        tenant_with_admin(&users, "admin@example.com").await;
    }

    async fn a_saved_user_carries_the_new_version_and_its_deactivation_reaches_the_outbox(
        db: Database,
    ) {
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
        assert_eq!(
            payload["event"]["user"]["meta"]["actor"],
            admin.id().to_string()
        );
    }

    async fn a_refused_save_leaves_the_user_and_its_events_as_they_were(db: Database) {
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
        let saved = Store::<User>::save(tx.as_mut(), &mut stale).await;
        assert!(matches!(saved, Err(RepositoryError::Stale)), "{saved:?}");
        assert_eq!(stale, before);
        assert_eq!(stale.events().len(), 1);
        drop(tx);
        assert_eq!(outbox::stored(&db).await.len(), 2, "two registrations only");
    }

    async fn every_call_on_a_closed_pool_is_unavailable(db: Database) {
        let users = Users::new(db.clone());
        let admin = tenant_with_admin(&users, "admin@example.com").await;
        let member = member_of(&users, &admin, "member@example.com", "member").await;
        db.close().await.unwrap();
        let read = users.lookup.get(admin.tenant_id(), admin.id()).await;
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
    }

    async fn ending_a_users_sessions_commits_or_rolls_back_with_the_transaction(db: Database) {
        let users = Users::new(db.clone());
        let admin = tenant_with_admin(&users, "admin@example.com").await;
        let tokens = SqlRefreshTokens::new(
            db.clone(),
            std::time::Duration::from_hours(1),
            std::time::Duration::from_hours(1),
        );
        application::ports::RefreshTokens::issue(&tokens, &admin, None, at(0))
            .await
            .unwrap();
        let live = || async {
            refresh_tokens::Entity::find()
                .filter(refresh_tokens::Column::RevokedAt.is_null())
                .count(db.ungated())
                .await
                .unwrap()
        };
        let mut tx = users.uow.begin().await.unwrap();
        tx.end_sessions(admin.tenant_id(), admin.id(), at(1))
            .await
            .unwrap();
        drop(tx);
        assert_eq!(live().await, 1, "a rolled-back transaction ends nothing");
        let mut tx = users.uow.begin().await.unwrap();
        tx.end_sessions(admin.tenant_id(), admin.id(), at(1))
            .await
            .unwrap();
        tx.commit().await.unwrap();
        assert_eq!(live().await, 0);
    }

    async fn only_an_active_undeleted_user_of_the_tenant_can_act(db: Database) {
        let users = Users::new(db);
        let admin = tenant_with_admin(&users, "admin@example.com").await;
        let inactive = new_user(admin.tenant_id(), "i@example.com", "inactive", Role::Member);
        let inactive = add(&users, altered(&inactive, |user| user.is_active = false)).await;
        let stranger = tenant_with_admin(&users, "s@example.com").await;
        let mut tx = users.uow.begin().await.unwrap();
        let tenant = admin.tenant_id();
        assert!(tx.can_act(tenant, admin.id()).await.unwrap());
        assert!(!tx.can_act(tenant, inactive.id()).await.unwrap());
        assert!(!tx.can_act(tenant, stranger.id()).await.unwrap());
    }

    #[test]
    fn a_user_survives_the_trip_through_its_row() {
        let user = new_user(
            TenantId::from_uuid(Uuid::now_v7()),
            "a@example.com",
            "ada",
            Role::Member,
        );
        let user = User::reconstitute(user.snapshot().clone());
        let (row, ()) = user.to_rows();
        assert_eq!(User::from_rows(row, ()).unwrap(), user);
    }

    #[test]
    fn a_stored_row_that_breaks_a_rule_is_an_error_naming_the_column_not_the_value() {
        let user = new_user(
            TenantId::from_uuid(Uuid::now_v7()),
            "a@example.com",
            "ada",
            Role::Member,
        );
        let (mut row, ()) = user.to_rows();
        row.role = "superuser".to_owned();
        let message = format!("{:#}", User::from_rows(row, ()).unwrap_err());
        assert!(message.contains("stored role"), "{message}");
        assert!(!message.contains("superuser"), "{message}");
    }

    crate::on_every_backend!(
        a_stored_user_reads_back_unchanged_by_id_and_by_email,
        a_user_of_another_tenant_is_not_found_by_id,
        a_listing_never_shows_another_tenants_users,
        an_email_in_use_in_any_tenant_is_taken_when_adding_or_registering,
        a_clash_on_a_key_other_than_the_email_is_unexpected_not_a_taken_email,
        changing_an_email_to_one_already_taken_is_refused_on_save,
        a_save_bumps_the_version_and_a_save_from_an_older_read_is_stale,
        saving_a_user_with_another_tenant_is_stale_and_changes_nothing,
        an_admin_can_be_demoted_while_another_active_admin_remains,
        of_two_admins_demoting_each_other_at_once_only_one_succeeds,
        only_active_undeleted_admins_of_the_tenant_count_as_active_admins,
        pages_follow_each_other_in_id_order_without_gaps_or_repeats,
        the_search_matches_part_of_the_email_or_the_username_in_any_case,
        like_wildcards_in_the_search_are_taken_literally,
        deleted_users_are_listed_only_when_asked_for_and_activity_filters_apply,
        a_tenant_and_its_first_admin_commit_together_with_the_registration_event,
        a_transaction_dropped_without_commit_stores_nothing_and_frees_the_database,
        a_saved_user_carries_the_new_version_and_its_deactivation_reaches_the_outbox,
        a_refused_save_leaves_the_user_and_its_events_as_they_were,
        ending_a_users_sessions_commits_or_rolls_back_with_the_transaction,
        only_an_active_undeleted_user_of_the_tenant_can_act,
        every_call_on_a_closed_pool_is_unavailable,
    );
}
