//! The outbox: events stored in the transaction that changed their aggregate, for a
//! relay to publish after commit. An event is never published for a change that was
//! rolled back, and never lost for one that committed.

use application::ports::RepositoryError;
use domain::DomainEvent;
use sea_orm::{DatabaseTransaction, EntityTrait};
use uuid::Uuid;

use super::entity::outbox;
use super::mapping::outbox_row;
use super::repository_error;

/// Stores `events` in the outbox. It takes a transaction, not a connection, because
/// events written apart from their aggregate's rows would defeat the point.
pub(super) async fn append(
    transaction: &DatabaseTransaction,
    events: &[DomainEvent],
) -> Result<(), RepositoryError> {
    // UUIDv7 ids made here, in order, keep the events of one change in order.
    let rows = events.iter().map(|event| outbox_row(Uuid::now_v7(), event));
    outbox::Entity::insert_many(rows)
        .exec_without_returning(transaction)
        .await
        .map_err(|error| repository_error(error, "storing events in the outbox"))?;
    Ok(())
}

/// Every stored event, oldest first.
#[cfg(test)]
pub(super) async fn stored(db: &crate::database::Database) -> Vec<outbox::Model> {
    use sea_orm::QueryOrder;

    outbox::Entity::find()
        .order_by_asc(outbox::Column::Id)
        .all(db.ungated())
        .await
        .expect("reading the outbox")
}
