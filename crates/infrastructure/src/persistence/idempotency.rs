//! `SqlIdempotencyKeys`: claims on idempotency keys, and the responses they recorded.
//!
//! A key's row goes through two states. `in_progress` is a claim: the request holding
//! it is running, and is presumed alive until `locked_until`; after that a retry may
//! take the claim over. Each claim and take-over writes a new `claim_token`, which
//! releasing and completing must match, so a request that outlived its lease cannot
//! touch the claim a retry took over. `completed` holds the response, written in the
//! transaction that created the resource, and is replayed until `expires_at`. A claim
//! is a short transaction of its own, committed before the request goes on, so a
//! concurrent retry sees it at once; every step that depends on what was read is a
//! conditional statement, so two requests racing for a key cannot both win it.

use anyhow::anyhow;
use application::ports::{
    Claim, ClaimToken, IdempotencyKey, IdempotencyKeys, RecordedResponse, RepositoryError,
};
use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{ColumnTrait, DatabaseTransaction, EntityTrait, QueryFilter};
use uuid::Uuid;

use super::entity::idempotency_keys::{self, Column};
use super::repository_error;
use crate::database::{Access, Database, Scope};

/// How long a claim holds without its request finishing. Longer than any request
/// should take; a crashed request's key is free again after it.
const CLAIM_LEASE: TimeDelta = TimeDelta::seconds(60);

/// How long a key is remembered, claimed or completed.
const RETENTION: TimeDelta = TimeDelta::hours(24);

const IN_PROGRESS: &str = "in_progress";
const COMPLETED: &str = "completed";

/// How many times `claim` looks again after another request changed the key between
/// two of its statements. Each change settles the key for a while (claimed, completed
/// or gone), so a second look nearly always decides.
const CLAIM_ATTEMPTS: usize = 3;

/// Idempotency keys in the `idempotency_keys` table.
#[derive(Debug, Clone)]
pub struct SqlIdempotencyKeys {
    db: Database,
}

impl SqlIdempotencyKeys {
    #[must_use]
    pub fn new(db: Database) -> Self {
        Self { db }
    }
}

/// Inserts a new claim held by `token` unless the key has a row; whether it did.
async fn insert_claim(
    db: &DatabaseTransaction,
    key: &IdempotencyKey,
    token: ClaimToken,
    now: DateTime<Utc>,
) -> Result<bool, RepositoryError> {
    let inserted = idempotency_keys::Entity::insert(idempotency_keys::ActiveModel {
        tenant_id: Set(key.tenant.as_uuid()),
        key: Set(key.key.clone()),
        fingerprint: Set(key.fingerprint.clone()),
        state: Set(IN_PROGRESS.to_owned()),
        response_status: Set(None),
        response_location: Set(None),
        response_body: Set(None),
        locked_until: Set(now + CLAIM_LEASE),
        expires_at: Set(now + RETENTION),
        created_at: Set(now),
        claim_token: Set(Some(token.0)),
    })
    .on_conflict(
        OnConflict::columns([Column::TenantId, Column::Key])
            .do_nothing()
            .to_owned(),
    )
    .exec_without_returning(db)
    .await
    .map_err(|error| repository_error(error, "claiming an idempotency key"))?;
    Ok(inserted == 1)
}

async fn find(
    db: &DatabaseTransaction,
    key: &IdempotencyKey,
) -> Result<Option<idempotency_keys::Model>, RepositoryError> {
    idempotency_keys::Entity::find_by_id((key.tenant.as_uuid(), key.key.clone()))
        .one(db)
        .await
        .map_err(|error| repository_error(error, "reading an idempotency key"))
}

/// Deletes the tenant's expired keys, so the table holds about a day of keys per
/// tenant without a sweeper. The primary key starts with the tenant, so this reads
/// only that tenant's keys.
async fn purge_expired(
    db: &DatabaseTransaction,
    key: &IdempotencyKey,
    now: DateTime<Utc>,
) -> Result<(), RepositoryError> {
    idempotency_keys::Entity::delete_many()
        .filter(Column::TenantId.eq(key.tenant.as_uuid()))
        .filter(Column::ExpiresAt.lte(now))
        .exec(db)
        .await
        .map_err(|error| repository_error(error, "purging expired idempotency keys"))?;
    Ok(())
}

/// Deletes the expired row that was read, and nothing another request wrote since.
async fn delete_expired(
    db: &DatabaseTransaction,
    row: &idempotency_keys::Model,
) -> Result<(), RepositoryError> {
    idempotency_keys::Entity::delete_many()
        .filter(Column::TenantId.eq(row.tenant_id))
        .filter(Column::Key.eq(&row.key))
        .filter(Column::ExpiresAt.eq(row.expires_at))
        .exec(db)
        .await
        .map_err(|error| repository_error(error, "deleting an expired idempotency key"))?;
    Ok(())
}

/// Takes over the lapsed claim that was read, if no one else did first: the lease
/// read is the version the UPDATE checks. The new token disowns the old holder.
async fn take_over(
    db: &DatabaseTransaction,
    row: &idempotency_keys::Model,
    key: &IdempotencyKey,
    token: ClaimToken,
    now: DateTime<Utc>,
) -> Result<bool, RepositoryError> {
    let updated = idempotency_keys::Entity::update_many()
        .col_expr(Column::LockedUntil, Expr::value(now + CLAIM_LEASE))
        .col_expr(Column::ClaimToken, Expr::value(Some(token.0)))
        .col_expr(Column::Fingerprint, Expr::value(key.fingerprint.clone()))
        .filter(Column::TenantId.eq(row.tenant_id))
        .filter(Column::Key.eq(&row.key))
        .filter(Column::State.eq(IN_PROGRESS))
        .filter(Column::LockedUntil.eq(row.locked_until))
        .exec(db)
        .await
        .map_err(|error| repository_error(error, "taking over a lapsed idempotency key"))?;
    Ok(updated.rows_affected == 1)
}

/// The response a completed row recorded.
fn recorded(row: idempotency_keys::Model) -> Result<RecordedResponse, RepositoryError> {
    let status = row
        .response_status
        .and_then(|status| u16::try_from(status).ok());
    match (status, row.response_body) {
        (Some(status), Some(body)) => Ok(RecordedResponse {
            status,
            location: row.response_location,
            body,
        }),
        _ => Err(RepositoryError::Unexpected(anyhow!(
            "a completed idempotency key has no valid recorded response"
        ))),
    }
}

#[async_trait]
impl IdempotencyKeys for SqlIdempotencyKeys {
    #[tracing::instrument(skip_all, fields(tenant_id = %key.tenant))]
    async fn claim(
        &self,
        key: &IdempotencyKey,
        now: DateTime<Utc>,
    ) -> Result<Claim, RepositoryError> {
        let db = self
            .db
            .session(Scope::Tenant(key.tenant), Access::Write)
            .await?;
        let claim = claim_in(&db, key, now).await?;
        db.commit().await?;
        Ok(claim)
    }

    /// Only an unfinished claim that `token` still holds is given up: a completed
    /// response stays, and so does a claim another request took over.
    #[tracing::instrument(skip_all, fields(tenant_id = %key.tenant))]
    async fn release(
        &self,
        key: &IdempotencyKey,
        token: ClaimToken,
    ) -> Result<(), RepositoryError> {
        let db = self
            .db
            .session(Scope::Tenant(key.tenant), Access::Write)
            .await?;
        idempotency_keys::Entity::delete_many()
            .filter(Column::TenantId.eq(key.tenant.as_uuid()))
            .filter(Column::Key.eq(&key.key))
            .filter(Column::Fingerprint.eq(&key.fingerprint))
            .filter(Column::State.eq(IN_PROGRESS))
            .filter(Column::ClaimToken.eq(token.0))
            .exec(&*db)
            .await
            .map_err(|error| repository_error(error, "releasing an idempotency key"))?;
        db.commit().await
    }

    #[tracing::instrument(skip_all)]
    async fn purge_expired(&self, now: DateTime<Utc>) -> Result<u64, RepositoryError> {
        let db = self.db.session(Scope::AllTenants, Access::Write).await?;
        let deleted = idempotency_keys::Entity::delete_many()
            .filter(Column::ExpiresAt.lte(now))
            .exec(&*db)
            .await
            .map_err(|error| repository_error(error, "purging expired idempotency keys"))?;
        db.commit().await?;
        Ok(deleted.rows_affected)
    }
}

/// The claim on `key`, made in `db`.
async fn claim_in(
    db: &DatabaseTransaction,
    key: &IdempotencyKey,
    now: DateTime<Utc>,
) -> Result<Claim, RepositoryError> {
    purge_expired(db, key, now).await?;
    let token = ClaimToken(Uuid::now_v7());
    for _ in 0..CLAIM_ATTEMPTS {
        if insert_claim(db, key, token, now).await? {
            return Ok(Claim::Claimed(token));
        }
        let Some(row) = find(db, key).await? else {
            // Released or expired between our two statements.
            continue;
        };
        if row.expires_at <= now {
            delete_expired(db, &row).await?;
            continue;
        }
        let same_request = row.fingerprint == key.fingerprint;
        if row.state == COMPLETED {
            return if same_request {
                recorded(row).map(Claim::Replay)
            } else {
                Ok(Claim::KeyReused)
            };
        }
        if row.locked_until > now {
            return Ok(if same_request {
                Claim::InProgress
            } else {
                Claim::KeyReused
            });
        }
        // The request holding the claim is presumed dead and never answered, so the
        // key is free for this request, whatever the dead one sent.
        if take_over(db, &row, key, token, now).await? {
            return Ok(Claim::Claimed(token));
        }
    }
    Err(RepositoryError::Unexpected(anyhow!(
        "an idempotency key kept changing while it was being claimed"
    )))
}

/// Turns the claim `token` holds on `key` into its recorded response, in
/// `transaction`: the response exists exactly when the resource it describes does.
///
/// # Errors
/// `Stale` when another request holds the key now: it took the claim over after this
/// one's lease lapsed (and may have completed it already). This request lost the race
/// like a write to a stale version does, so it fails the same way: its transaction
/// rolls back, which keeps the resource from being created twice, and the client is
/// told of a concurrent modification (409) and can retry to get the winner's answer.
/// `Unexpected` when this token never held the key, or already completed it: a bug.
pub(super) async fn complete(
    transaction: &DatabaseTransaction,
    key: &IdempotencyKey,
    token: ClaimToken,
    response: &RecordedResponse,
    now: DateTime<Utc>,
) -> Result<(), RepositoryError> {
    let updated = idempotency_keys::Entity::update_many()
        .col_expr(Column::State, Expr::value(COMPLETED))
        .col_expr(
            Column::ResponseStatus,
            Expr::value(i32::from(response.status)),
        )
        .col_expr(
            Column::ResponseLocation,
            Expr::value(response.location.clone()),
        )
        .col_expr(Column::ResponseBody, Expr::value(response.body.clone()))
        .col_expr(Column::ExpiresAt, Expr::value(now + RETENTION))
        .filter(Column::TenantId.eq(key.tenant.as_uuid()))
        .filter(Column::Key.eq(&key.key))
        .filter(Column::Fingerprint.eq(&key.fingerprint))
        .filter(Column::State.eq(IN_PROGRESS))
        .filter(Column::ClaimToken.eq(token.0))
        .exec(transaction)
        .await
        .map_err(|error| repository_error(error, "recording an idempotent response"))?;
    if updated.rows_affected == 1 {
        return Ok(());
    }
    let holder = idempotency_keys::Entity::find_by_id((key.tenant.as_uuid(), key.key.clone()))
        .one(transaction)
        .await
        .map_err(|error| repository_error(error, "reading an idempotency key"))?
        .and_then(|row| row.claim_token);
    match holder {
        Some(holder) if holder != token.0 => Err(RepositoryError::Stale),
        _ => Err(RepositoryError::Unexpected(anyhow!(
            "the idempotency key is not claimed by this request, so its response cannot be recorded"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use crate::database::Database;
    use application::ports::UnitOfWork;
    use chrono::TimeZone;
    use domain::TenantId;
    use uuid::Uuid;

    use super::*;
    use crate::persistence::SqlUnitOfWork;
    use crate::testing::open_two_connections;

    fn at(seconds: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap() + TimeDelta::seconds(seconds)
    }

    fn key(tenant: TenantId, fingerprint: &str) -> IdempotencyKey {
        IdempotencyKey {
            tenant,
            key: "create-7f3a".to_owned(),
            fingerprint: fingerprint.repeat(64 / fingerprint.len()),
        }
    }

    fn tenant() -> TenantId {
        TenantId::from_uuid(Uuid::now_v7())
    }

    fn response() -> RecordedResponse {
        RecordedResponse {
            status: 201,
            location: Some("/api/v1/tasks/0193".to_owned()),
            // Not UTF-8: the body is bytes, replayed as they were.
            body: vec![b'{', 0xff, 0x00, b'}'],
        }
    }

    /// The token of a claim the caller won; panics on any other answer.
    fn claimed(claim: Claim) -> ClaimToken {
        match claim {
            Claim::Claimed(token) => token,
            other => panic!("expected the key to be claimed, got {other:?}"),
        }
    }

    async fn complete_in_transaction(
        uow: &SqlUnitOfWork,
        key: &IdempotencyKey,
        token: ClaimToken,
        now: DateTime<Utc>,
    ) -> Result<(), RepositoryError> {
        let mut tx = uow.begin().await?;
        tx.complete_idempotent_request(key, token, &response(), now)
            .await?;
        tx.commit().await
    }

    async fn a_new_key_is_claimed_once_and_then_in_progress(db: Database) {
        let keys = SqlIdempotencyKeys::new(db);
        let key = key(tenant(), "a");
        claimed(keys.claim(&key, at(0)).await.unwrap());
        assert_eq!(keys.claim(&key, at(1)).await.unwrap(), Claim::InProgress);
        assert_eq!(keys.claim(&key, at(59)).await.unwrap(), Claim::InProgress);
    }

    async fn of_two_claims_of_a_new_key_at_once_exactly_one_wins(db: Database) {
        let keys = SqlIdempotencyKeys::new(db.clone());
        let key = key(tenant(), "a");
        open_two_connections(&db).await;
        let (one, other) = tokio::join!(keys.claim(&key, at(0)), keys.claim(&key, at(0)));
        let mut claims = [one.unwrap(), other.unwrap()];
        claims.sort_by_key(|claim| claim == &Claim::InProgress);
        assert!(
            matches!(claims, [Claim::Claimed(_), Claim::InProgress]),
            "{claims:?}"
        );
    }

    async fn a_key_is_scoped_to_its_tenant(db: Database) {
        let keys = SqlIdempotencyKeys::new(db);
        claimed(keys.claim(&key(tenant(), "a"), at(0)).await.unwrap());
        claimed(keys.claim(&key(tenant(), "a"), at(0)).await.unwrap());
    }

    async fn a_completed_key_replays_its_response_byte_for_byte_to_the_same_request_only(
        db: Database,
    ) {
        let keys = SqlIdempotencyKeys::new(db.clone());
        let uow = SqlUnitOfWork::new(db);
        let key = key(tenant(), "a");
        let token = claimed(keys.claim(&key, at(0)).await.unwrap());
        complete_in_transaction(&uow, &key, token, at(1))
            .await
            .unwrap();
        assert_eq!(
            keys.claim(&key, at(2)).await.unwrap(),
            Claim::Replay(response())
        );
        let other_request = IdempotencyKey {
            fingerprint: "b".repeat(64),
            ..key.clone()
        };
        assert_eq!(
            keys.claim(&other_request, at(2)).await.unwrap(),
            Claim::KeyReused
        );
        // A completed response is not a claim to give up.
        keys.release(&key, token).await.unwrap();
        assert_eq!(
            keys.claim(&key, at(3)).await.unwrap(),
            Claim::Replay(response())
        );
    }

    async fn an_empty_response_body_is_replayed_empty_not_lost(db: Database) {
        let keys = SqlIdempotencyKeys::new(db.clone());
        let key = key(tenant(), "a");
        let token = claimed(keys.claim(&key, at(0)).await.unwrap());
        let empty = RecordedResponse {
            status: 204,
            location: None,
            body: Vec::new(),
        };
        let mut tx = SqlUnitOfWork::new(db).begin().await.unwrap();
        tx.complete_idempotent_request(&key, token, &empty, at(1))
            .await
            .unwrap();
        tx.commit().await.unwrap();
        assert_eq!(keys.claim(&key, at(2)).await.unwrap(), Claim::Replay(empty));
    }

    async fn a_key_in_progress_for_another_request_is_reused_and_keeps_its_claim(db: Database) {
        let keys = SqlIdempotencyKeys::new(db);
        let first = key(tenant(), "a");
        let second = IdempotencyKey {
            fingerprint: "b".repeat(64),
            ..first.clone()
        };
        keys.claim(&first, at(0)).await.unwrap();
        assert_eq!(keys.claim(&second, at(1)).await.unwrap(), Claim::KeyReused);
        keys.release(&second, ClaimToken(Uuid::now_v7()))
            .await
            .unwrap();
        assert_eq!(keys.claim(&first, at(2)).await.unwrap(), Claim::InProgress);
    }

    async fn a_lapsed_claim_is_taken_over_by_one_retry_only(db: Database) {
        let keys = SqlIdempotencyKeys::new(db.clone());
        let key = key(tenant(), "a");
        keys.claim(&key, at(0)).await.unwrap();
        // The first request crashed; its lease ran out at 60 s.
        open_two_connections(&db).await;
        let (one, other) = tokio::join!(keys.claim(&key, at(61)), keys.claim(&key, at(61)));
        let mut claims = [one.unwrap(), other.unwrap()];
        claims.sort_by_key(|claim| claim == &Claim::InProgress);
        assert!(
            matches!(claims, [Claim::Claimed(_), Claim::InProgress]),
            "{claims:?}"
        );
        // The new lease runs from the takeover.
        assert_eq!(keys.claim(&key, at(120)).await.unwrap(), Claim::InProgress);
        claimed(keys.claim(&key, at(122)).await.unwrap());
    }

    async fn a_lapsed_claim_is_free_for_a_corrected_request(db: Database) {
        let keys = SqlIdempotencyKeys::new(db);
        let crashed = key(tenant(), "a");
        let corrected = IdempotencyKey {
            fingerprint: "c".repeat(64),
            ..crashed.clone()
        };
        keys.claim(&crashed, at(0)).await.unwrap();
        claimed(keys.claim(&corrected, at(61)).await.unwrap());
        assert_eq!(
            keys.claim(&crashed, at(62)).await.unwrap(),
            Claim::KeyReused
        );
        assert_eq!(
            keys.claim(&corrected, at(62)).await.unwrap(),
            Claim::InProgress
        );
    }

    async fn claiming_purges_the_tenants_expired_keys(db: Database) {
        let keys = SqlIdempotencyKeys::new(db.clone());
        let tenant = tenant();
        let old = key(tenant, "a");
        keys.claim(&old, at(0)).await.unwrap();
        let day = 24 * 60 * 60;
        let fresh = IdempotencyKey {
            key: "another".to_owned(),
            ..old.clone()
        };
        keys.claim(&fresh, at(day + 1)).await.unwrap();
        let left = idempotency_keys::Entity::find()
            .all(db.ungated())
            .await
            .unwrap();
        assert_eq!(left.len(), 1, "only the fresh key is left");
        assert_eq!(left[0].key, "another");
    }

    async fn the_housekeeping_purges_every_tenants_expired_keys_and_no_live_one(db: Database) {
        let keys = SqlIdempotencyKeys::new(db.clone());
        let day = 24 * 60 * 60;
        for tenant in [tenant(), tenant()] {
            keys.claim(&key(tenant, "a"), at(0)).await.unwrap();
        }
        let fresh = tenant();
        keys.claim(&key(fresh, "a"), at(day)).await.unwrap();
        assert_eq!(keys.purge_expired(at(day + 1)).await.unwrap(), 2);
        let left = idempotency_keys::Entity::find()
            .all(db.ungated())
            .await
            .unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].tenant_id, fresh.as_uuid());
    }

    async fn an_expired_key_is_free_for_any_request(db: Database) {
        let keys = SqlIdempotencyKeys::new(db.clone());
        let uow = SqlUnitOfWork::new(db);
        let key = key(tenant(), "a");
        let token = claimed(keys.claim(&key, at(0)).await.unwrap());
        complete_in_transaction(&uow, &key, token, at(10))
            .await
            .unwrap();
        // Kept for 24 hours from completion.
        let day = 24 * 60 * 60;
        assert!(matches!(
            keys.claim(&key, at(day + 9)).await.unwrap(),
            Claim::Replay(_)
        ));
        let other_request = IdempotencyKey {
            fingerprint: "b".repeat(64),
            ..key
        };
        claimed(keys.claim(&other_request, at(day + 10)).await.unwrap());
        assert_eq!(
            keys.claim(&other_request, at(day + 11)).await.unwrap(),
            Claim::InProgress
        );
    }

    async fn a_released_claim_can_be_claimed_again(db: Database) {
        let keys = SqlIdempotencyKeys::new(db);
        let key = key(tenant(), "a");
        let token = claimed(keys.claim(&key, at(0)).await.unwrap());
        keys.release(&key, token).await.unwrap();
        claimed(keys.claim(&key, at(1)).await.unwrap());
    }

    async fn a_response_recorded_in_a_rolled_back_transaction_is_not_kept(db: Database) {
        let keys = SqlIdempotencyKeys::new(db.clone());
        let uow = SqlUnitOfWork::new(db);
        let key = key(tenant(), "a");
        let token = claimed(keys.claim(&key, at(0)).await.unwrap());
        let mut tx = uow.begin().await.unwrap();
        tx.complete_idempotent_request(&key, token, &response(), at(1))
            .await
            .unwrap();
        drop(tx);
        assert_eq!(keys.claim(&key, at(2)).await.unwrap(), Claim::InProgress);
        keys.release(&key, token).await.unwrap();
        claimed(keys.claim(&key, at(3)).await.unwrap());
    }

    async fn recording_a_response_without_this_requests_claim_is_unexpected(db: Database) {
        let keys = SqlIdempotencyKeys::new(db.clone());
        let uow = SqlUnitOfWork::new(db);
        let key = key(tenant(), "a");
        let unclaimed =
            complete_in_transaction(&uow, &key, ClaimToken(Uuid::now_v7()), at(0)).await;
        assert!(
            matches!(unclaimed, Err(RepositoryError::Unexpected(_))),
            "{unclaimed:?}"
        );
        let token = claimed(keys.claim(&key, at(0)).await.unwrap());
        complete_in_transaction(&uow, &key, token, at(1))
            .await
            .unwrap();
        // Completing the same claim again must not record a second answer.
        let twice = complete_in_transaction(&uow, &key, token, at(2)).await;
        assert!(
            matches!(twice, Err(RepositoryError::Unexpected(_))),
            "{twice:?}"
        );
        assert_eq!(
            keys.claim(&key, at(3)).await.unwrap(),
            Claim::Replay(response())
        );
    }
    async fn a_request_whose_claim_was_taken_over_can_neither_release_nor_complete_it(
        db: Database,
    ) {
        let keys = SqlIdempotencyKeys::new(db.clone());
        let uow = SqlUnitOfWork::new(db);
        let key = key(tenant(), "a");
        let slow = claimed(keys.claim(&key, at(0)).await.unwrap());
        // The slow request runs past its lease; a retry takes the claim over.
        let retry = claimed(keys.claim(&key, at(61)).await.unwrap());
        assert_ne!(slow, retry);
        keys.release(&key, slow).await.unwrap();
        assert_eq!(keys.claim(&key, at(62)).await.unwrap(), Claim::InProgress);
        let late = complete_in_transaction(&uow, &key, slow, at(63)).await;
        assert!(matches!(late, Err(RepositoryError::Stale)), "{late:?}");
        assert_eq!(keys.claim(&key, at(64)).await.unwrap(), Claim::InProgress);
        complete_in_transaction(&uow, &key, retry, at(65))
            .await
            .unwrap();
        assert_eq!(
            keys.claim(&key, at(66)).await.unwrap(),
            Claim::Replay(response())
        );
        // Once the retry has answered, the slow request still cannot record its own.
        let later = complete_in_transaction(&uow, &key, slow, at(67)).await;
        assert!(matches!(later, Err(RepositoryError::Stale)), "{later:?}");
    }

    crate::on_every_backend!(
        a_new_key_is_claimed_once_and_then_in_progress,
        of_two_claims_of_a_new_key_at_once_exactly_one_wins,
        a_key_is_scoped_to_its_tenant,
        a_completed_key_replays_its_response_byte_for_byte_to_the_same_request_only,
        an_empty_response_body_is_replayed_empty_not_lost,
        a_key_in_progress_for_another_request_is_reused_and_keeps_its_claim,
        a_lapsed_claim_is_taken_over_by_one_retry_only,
        a_lapsed_claim_is_free_for_a_corrected_request,
        claiming_purges_the_tenants_expired_keys,
        the_housekeeping_purges_every_tenants_expired_keys_and_no_live_one,
        an_expired_key_is_free_for_any_request,
        a_released_claim_can_be_claimed_again,
        a_response_recorded_in_a_rolled_back_transaction_is_not_kept,
        recording_a_response_without_this_requests_claim_is_unexpected,
        a_request_whose_claim_was_taken_over_can_neither_release_nor_complete_it,
    );
}
