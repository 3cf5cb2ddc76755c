//! The one way every aggregate is written and read on SQL: a `Store` for writes in a
//! transaction, a `Lookup` for reads by id, both generic over [`Persisted`], which each
//! aggregate's module implements with its table and its mapping.
//!
//! Every aggregate's root table has `id`, `tenant_id`, `version` and `created_at`
//! columns. A read filters by id and tenant; a save is one `UPDATE` of every other
//! column that also bumps the version, and matches only the version the aggregate was
//! read at, so of two concurrent saves the second matches nothing (`Stale`) instead of
//! overwriting. Rows of other tables that belong to the aggregate (a task's checklist)
//! are its children, read and written by hooks the aggregate may fill in.

use std::future::Future;
use std::marker::PhantomData;
use std::str::FromStr;

use application::ports::{Lookup, RepositoryError, Store};
use async_trait::async_trait;
use domain::{Aggregate, AggregateId, TenantId};
use sea_orm::sea_query::{Expr, ExprTrait, LockType};
use sea_orm::{
    ActiveModelBehavior, ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseTransaction,
    DbBackend, DbErr, EntityTrait, FromQueryResult, IntoActiveModel, ModelTrait, QueryFilter,
    QuerySelect,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::repository_error;
use super::unit_of_work::SqlTransaction;
use crate::database::{Access, Database, Scope};

/// An aggregate as SQL stores it: its root table, the rows of other tables that belong
/// to it, and the mapping between those rows and the aggregate. The mapping is the one
/// seam between the database and the domain, and the cache keeps the same rows.
pub(crate) trait Persisted: Aggregate {
    /// The root table.
    type Entity: EntityTrait<Model = Self::Row, ActiveModel = Self::Active>;
    /// A row of the root table.
    type Row: ModelTrait<Entity = Self::Entity>
        + FromQueryResult
        + IntoActiveModel<Self::Active>
        + Serialize
        + DeserializeOwned
        + Clone
        + PartialEq
        + Send
        + Sync;
    type Active: ActiveModelTrait<Entity = Self::Entity> + ActiveModelBehavior + Send;
    /// Rows of other tables that belong to the aggregate; `()` for none.
    type Children: Serialize + DeserializeOwned + PartialEq + Default + Send + Sync;

    /// The aggregate's rows as they are now.
    fn to_rows(&self) -> (Self::Row, Self::Children);

    /// The aggregate its rows hold.
    ///
    /// # Errors
    /// When a stored value breaks a rule of the domain (edited by hand, written by an
    /// older version): an error, never a guessed aggregate. The message names the
    /// aggregate and the column, never the value.
    fn from_rows(row: Self::Row, children: Self::Children) -> anyhow::Result<Self>;

    /// The children of the aggregate whose root row is `row`.
    fn read_children(
        _db: &impl ConnectionTrait,
        _row: &Self::Row,
    ) -> impl Future<Output = Result<Self::Children, DbErr>> + Send {
        async { Ok(Self::Children::default()) }
    }

    /// Inserts the children of a new aggregate.
    fn add_children(
        _db: &DatabaseTransaction,
        _children: &Self::Children,
    ) -> impl Future<Output = Result<(), DbErr>> + Send {
        async { Ok(()) }
    }

    /// Writes the children of a saved aggregate, after its root row's `UPDATE` (whose
    /// lock keeps them still meanwhile).
    fn save_children(
        _db: &DatabaseTransaction,
        _row: &Self::Row,
        _children: &Self::Children,
    ) -> impl Future<Output = Result<(), DbErr>> + Send {
        async { Ok(()) }
    }

    /// The aggregate's rows, read in a transaction of their tenant. Several statements
    /// must see one state (a read snapshot), which an aggregate with children arranges
    /// by overriding this.
    fn lookup(
        db: &DatabaseTransaction,
        tenant: TenantId,
        id: Self::Id,
    ) -> impl Future<Output = Result<Option<Rows<Self>>, DbErr>> + Send {
        read::<Self>(db, tenant, id, false)
    }

    /// What a failed write means to a use case: a clash on a unique column may be a
    /// business fact (a taken email).
    fn write_error(error: DbErr, doing: &'static str) -> RepositoryError {
        repository_error(error, doing)
    }
}

/// An aggregate's root row and its children, as read.
type Rows<A> = (<A as Persisted>::Row, <A as Persisted>::Children);

/// The column of `A`'s root table named `name`, one of those every root table has.
fn column<A: Persisted>(name: &str) -> <A::Entity as EntityTrait>::Column {
    <A::Entity as EntityTrait>::Column::from_str(name).unwrap_or_else(|_| {
        panic!("the {} table has no `{name}` column", A::NAME);
    })
}

/// The rows of `id` in `tenant`. With `lock`, the root row stays locked until the
/// transaction ends (`PostgreSQL`; `SQLite`'s write transaction holds the whole database
/// from its start and needs none).
pub(crate) async fn read<A: Persisted>(
    db: &impl ConnectionTrait,
    tenant: TenantId,
    id: A::Id,
    lock: bool,
) -> Result<Option<Rows<A>>, DbErr> {
    let mut query = A::Entity::find()
        .filter(column::<A>("id").eq(id.as_uuid()))
        .filter(column::<A>("tenant_id").eq(tenant.as_uuid()));
    if lock && db.get_database_backend() == DbBackend::Postgres {
        query = query.lock(LockType::NoKeyUpdate);
    }
    let Some(row) = query.one(db).await? else {
        return Ok(None);
    };
    let children = A::read_children(db, &row).await?;
    Ok(Some((row, children)))
}

fn into_aggregate<A: Persisted>(rows: Option<Rows<A>>) -> Result<Option<A>, RepositoryError> {
    rows.map(|(row, children)| {
        A::from_rows(row, children).map_err(|error| {
            RepositoryError::Unexpected(error.context(format!("reading a {}", A::NAME)))
        })
    })
    .transpose()
}

#[async_trait]
impl<A: Persisted> Store<A> for SqlTransaction {
    /// Locks the aggregate's row until the transaction ends, so the version the use case
    /// checks against `If-Match` stays current until its save: a concurrent writer waits
    /// instead of slipping in between (which would turn a 412 into a 409).
    #[tracing::instrument(skip_all, fields(aggregate = A::NAME, tenant_id = %tenant, id = %id))]
    async fn get(&mut self, tenant: TenantId, id: A::Id) -> Result<Option<A>, RepositoryError> {
        let transaction = self.enter(tenant).await?;
        let rows = read::<A>(transaction, tenant, id, true)
            .await
            .map_err(|error| repository_error(error, "loading an aggregate to change it"))?;
        into_aggregate(rows)
    }

    #[tracing::instrument(skip_all, fields(aggregate = A::NAME, id = %aggregate.id()))]
    async fn add(&mut self, aggregate: &A) -> Result<(), RepositoryError> {
        let (row, children) = aggregate.to_rows();
        let transaction = self.enter(aggregate.tenant_id()).await?;
        A::Entity::insert(row.into_active_model())
            .exec_without_returning(transaction)
            .await
            .map_err(|error| A::write_error(error, "inserting an aggregate"))?;
        A::add_children(transaction, &children)
            .await
            .map_err(|error| A::write_error(error, "inserting an aggregate's children"))
    }

    /// `aggregate` moves on to its saved version only once every statement has
    /// succeeded; on an error it is left as it was.
    #[tracing::instrument(skip_all, fields(aggregate = A::NAME, id = %aggregate.id()))]
    async fn save(&mut self, aggregate: &mut A) -> Result<(), RepositoryError> {
        let (row, children) = aggregate.to_rows();
        // A model converts to unchanged values, which an update skips: mark each as set.
        let mut changes = row.clone().into_active_model().reset_all();
        for fixed in ["id", "tenant_id", "version", "created_at"] {
            changes.not_set(column::<A>(fixed));
        }
        let version = column::<A>("version");
        let transaction = self.enter(aggregate.tenant_id()).await?;
        let updated = A::Entity::update_many()
            .set(changes)
            .col_expr(version, Expr::col(version).add(1))
            .filter(column::<A>("id").eq(aggregate.id().as_uuid()))
            .filter(column::<A>("tenant_id").eq(aggregate.tenant_id().as_uuid()))
            .filter(version.eq(aggregate.version()))
            .exec(transaction)
            .await
            .map_err(|error| A::write_error(error, "updating an aggregate"))?;
        if updated.rows_affected == 0 {
            return Err(RepositoryError::Stale);
        }
        A::save_children(transaction, &row, &children)
            .await
            .map_err(|error| A::write_error(error, "writing an aggregate's children"))?;
        aggregate.saved();
        Ok(())
    }
}

/// Reads of one kind of aggregate by id, on the pool.
pub struct SqlLookup<A> {
    db: Database,
    aggregate: PhantomData<fn() -> A>,
}

impl<A> SqlLookup<A> {
    #[must_use]
    pub fn new(db: Database) -> Self {
        Self {
            db,
            aggregate: PhantomData,
        }
    }
}

impl<A> std::fmt::Debug for SqlLookup<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlLookup")
            .field("db", &self.db)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl<A: Persisted> Lookup<A> for SqlLookup<A> {
    #[tracing::instrument(skip_all, fields(aggregate = A::NAME, tenant_id = %tenant, id = %id))]
    async fn get(&self, tenant: TenantId, id: A::Id) -> Result<Option<A>, RepositoryError> {
        let db = self.db.session(Scope::Tenant(tenant), Access::Read).await?;
        let rows = A::lookup(&db, tenant, id)
            .await
            .map_err(|error| repository_error(error, "reading an aggregate"))?;
        db.commit().await?;
        into_aggregate(rows)
    }
}
