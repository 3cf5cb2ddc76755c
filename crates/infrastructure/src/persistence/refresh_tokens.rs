//! `SqlRefreshTokens`: opaque, one-time refresh tokens stored as hashes.
//!
//! A token is 32 random bytes, base64url-encoded; only its SHA-256 is stored, so a copy
//! of the table grants nothing. Each token belongs to a session (one sign-in): rotation
//! issues the successor in the same session, and reuse of a spent token ends it. A token
//! expires `ttl` after it is issued, but never after its session ends, `session_lifetime`
//! after the sign-in: rotating does not keep a session alive for ever.

use std::time::Duration;

use application::ports::{RefreshOutcome, RefreshTokens, RepositoryError, SessionId};
use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use domain::{Aggregate, TenantId, User, UserId};
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::{Expr, Query};
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::entity::refresh_tokens::{self, Column};
use super::repository_error;
use crate::database::{Access, Database, Scope};
use crate::system::random_bytes;

/// Refresh tokens in the `refresh_tokens` table.
#[derive(Debug, Clone)]
pub struct SqlRefreshTokens {
    db: Database,
    ttl: Duration,
    session_lifetime: Duration,
}

impl SqlRefreshTokens {
    /// Tokens issued here expire `ttl` after they are issued, and at the latest
    /// `session_lifetime` after their session's sign-in.
    #[must_use]
    pub fn new(db: Database, ttl: Duration, session_lifetime: Duration) -> Self {
        Self {
            db,
            ttl,
            session_lifetime,
        }
    }

    /// When `session` ends: a new one `session_lifetime` from now, an existing one when
    /// its tokens say (a session nobody knows ends now, so its token is born expired).
    async fn session_end(
        &self,
        db: &impl ConnectionTrait,
        session: Option<SessionId>,
        now: DateTime<Utc>,
    ) -> Result<DateTime<Utc>, RepositoryError> {
        let Some(session) = session else {
            return Ok(now + lifetime(self.session_lifetime)?);
        };
        let row = refresh_tokens::Entity::find()
            .filter(Column::SessionId.eq(session.0))
            .one(db)
            .await
            .map_err(|error| repository_error(error, "reading a refresh session"))?;
        Ok(row.map_or(now, |row| row.session_expires_at.unwrap_or(row.expires_at)))
    }

    async fn revoke_where(
        &self,
        which: Expr,
        now: DateTime<Utc>,
        doing: &'static str,
    ) -> Result<(), RepositoryError> {
        // By a token or a session id, secrets that name no tenant.
        let db = self.db.session(Scope::AllTenants, Access::Write).await?;
        refresh_tokens::Entity::update_many()
            .col_expr(Column::RevokedAt, Expr::value(now))
            .filter(which)
            .filter(Column::RevokedAt.is_null())
            .exec(&*db)
            .await
            .map_err(|error| repository_error(error, doing))?;
        db.commit().await
    }
}

fn lifetime(duration: Duration) -> Result<chrono::Duration, RepositoryError> {
    chrono::Duration::from_std(duration).map_err(|error| {
        RepositoryError::Unexpected(anyhow::Error::new(error).context("a refresh lifetime"))
    })
}

/// A new token: 256 random bits, base64url without padding (43 characters).
fn new_token() -> anyhow::Result<String> {
    Ok(URL_SAFE_NO_PAD.encode(random_bytes::<32>()?))
}

/// What is stored instead of the token: its SHA-256, in lower-case hex.
fn token_hash(token: &str) -> String {
    format!("{:x}", Sha256::digest(token.as_bytes()))
}

#[async_trait]
impl RefreshTokens for SqlRefreshTokens {
    #[tracing::instrument(skip_all, fields(user_id = %user.id()))]
    async fn issue(
        &self,
        user: &User,
        session: Option<SessionId>,
        now: DateTime<Utc>,
    ) -> Result<String, RepositoryError> {
        let token = new_token().map_err(|error| error.context("making a refresh token"))?;
        let db = self
            .db
            .session(Scope::Tenant(user.tenant_id()), Access::Write)
            .await?;
        let session_end = self.session_end(&*db, session, now).await?;
        let expires_at = (now + lifetime(self.ttl)?).min(session_end);
        let session = session.unwrap_or(SessionId(Uuid::now_v7()));
        refresh_tokens::Entity::insert(refresh_tokens::ActiveModel {
            id: Set(Uuid::now_v7()),
            tenant_id: Set(user.tenant_id().as_uuid()),
            user_id: Set(user.id().as_uuid()),
            session_id: Set(session.0),
            token_hash: Set(token_hash(&token)),
            expires_at: Set(expires_at),
            created_at: Set(now),
            used_at: Set(None),
            revoked_at: Set(None),
            session_expires_at: Set(Some(session_end)),
        })
        .exec_without_returning(&*db)
        .await
        .map_err(|error| repository_error(error, "storing a refresh token"))?;
        db.commit().await?;
        Ok(token)
    }

    /// One conditional UPDATE marks the token used only if it is still usable, so of two
    /// concurrent uses exactly one succeeds, and returns the row it marked. Only a token
    /// it did not mark costs a second query, to tell a replayed one from an unknown one.
    #[tracing::instrument(skip_all)]
    async fn consume(
        &self,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<RefreshOutcome, RepositoryError> {
        let hash = token_hash(token);
        // The token is what tells whose it is.
        let db = self.db.session(Scope::AllTenants, Access::Write).await?;
        let consumed = refresh_tokens::Entity::update_many()
            .col_expr(Column::UsedAt, Expr::value(now))
            .filter(Column::TokenHash.eq(&hash))
            .filter(Column::UsedAt.is_null())
            .filter(Column::RevokedAt.is_null())
            .filter(Column::ExpiresAt.gt(now))
            .exec_with_returning(&*db)
            .await
            .map_err(|error| repository_error(error, "marking a refresh token used"))?;
        if let Some(row) = consumed.into_iter().next() {
            db.commit().await?;
            return Ok(RefreshOutcome::Consumed {
                user: UserId::from_uuid(row.user_id),
                tenant: TenantId::from_uuid(row.tenant_id),
                session: SessionId(row.session_id),
            });
        }
        let spent = refresh_tokens::Entity::find()
            .filter(Column::TokenHash.eq(hash))
            .filter(Column::UsedAt.is_not_null())
            .one(&*db)
            .await
            .map_err(|error| repository_error(error, "reading a refresh token"))?;
        db.commit().await?;
        Ok(
            spent.map_or(RefreshOutcome::Invalid, |row| RefreshOutcome::Reused {
                session: SessionId(row.session_id),
            }),
        )
    }

    /// One statement: the session is found from the token's hash in a subquery.
    #[tracing::instrument(skip_all)]
    async fn revoke(&self, token: &str, now: DateTime<Utc>) -> Result<(), RepositoryError> {
        let session = Query::select()
            .column(Column::SessionId)
            .from(refresh_tokens::Entity)
            .and_where(Column::TokenHash.eq(token_hash(token)))
            .to_owned();
        self.revoke_where(
            Column::SessionId.in_subquery(session),
            now,
            "revoking a refresh token's session",
        )
        .await
    }

    /// Tokens past their expiry are of no use, not even to tell a replay: they go.
    #[tracing::instrument(skip_all)]
    async fn purge_expired(&self, now: DateTime<Utc>) -> Result<u64, RepositoryError> {
        let db = self.db.session(Scope::AllTenants, Access::Write).await?;
        let deleted = refresh_tokens::Entity::delete_many()
            .filter(Column::ExpiresAt.lte(now))
            .exec(&*db)
            .await
            .map_err(|error| repository_error(error, "purging expired refresh tokens"))?;
        db.commit().await?;
        Ok(deleted.rows_affected)
    }

    #[tracing::instrument(skip_all, fields(session = %session.0))]
    async fn revoke_session(
        &self,
        session: SessionId,
        now: DateTime<Utc>,
    ) -> Result<(), RepositoryError> {
        self.revoke_where(
            Column::SessionId.eq(session.0),
            now,
            "revoking a session's refresh tokens",
        )
        .await
    }
}

/// Revokes every refresh token of `user`, on `db`: a use case ends a user's sessions in
/// the transaction of the change that calls for it.
pub(super) async fn revoke_user(
    db: &impl ConnectionTrait,
    user: UserId,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    refresh_tokens::Entity::update_many()
        .col_expr(Column::RevokedAt, Expr::value(now))
        .filter(Column::UserId.eq(user.as_uuid()))
        .filter(Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::database::Database;
    use chrono::TimeZone;
    use domain::Aggregate;

    use super::*;
    use crate::persistence::SqlUnitOfWork;
    use crate::persistence::fixtures::register;
    use crate::testing::open_two_connections;

    const TTL: Duration = Duration::from_hours(1);
    const SESSION: Duration = Duration::from_hours(3);

    fn at(minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 12, minute, 0).unwrap()
    }

    /// A new tenant and its admin, stored.
    async fn stored_user(db: &Database, email: &str) -> User {
        register(&SqlUnitOfWork::new(db.clone()), email, None)
            .await
            .remove(0)
    }

    async fn consume(tokens: &SqlRefreshTokens, token: &str, now: DateTime<Utc>) -> RefreshOutcome {
        tokens.consume(token, now).await.unwrap()
    }

    fn session_of(outcome: &RefreshOutcome) -> SessionId {
        match outcome {
            RefreshOutcome::Consumed { session, .. } | RefreshOutcome::Reused { session } => {
                *session
            }
            RefreshOutcome::Invalid => panic!("the token was invalid"),
        }
    }

    async fn a_token_is_consumed_once_then_reported_as_reused_and_its_successor_keeps_the_session(
        db: Database,
    ) {
        {
            let tokens = SqlRefreshTokens::new(db.clone(), TTL, SESSION);
            let user = stored_user(&db, "a@example.com").await;
            let first = tokens.issue(&user, None, at(0)).await.unwrap();

            let consumed = consume(&tokens, &first, at(1)).await;
            let session = session_of(&consumed);
            assert_eq!(
                consumed,
                RefreshOutcome::Consumed {
                    user: user.id(),
                    tenant: user.tenant_id(),
                    session
                }
            );
            assert_eq!(
                consume(&tokens, &first, at(2)).await,
                RefreshOutcome::Reused { session }
            );

            let second = tokens.issue(&user, Some(session), at(1)).await.unwrap();
            assert_ne!(second, first);
            assert_eq!(session_of(&consume(&tokens, &second, at(2)).await), session);
        }
    }

    async fn only_the_sha256_of_a_token_is_stored(db: Database) {
        let tokens = SqlRefreshTokens::new(db.clone(), TTL, SESSION);
        let user = stored_user(&db, "a@example.com").await;
        let token = tokens.issue(&user, None, at(0)).await.unwrap();
        assert_eq!(token.len(), 43);
        assert!(
            token
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );

        let rows = refresh_tokens::Entity::find()
            .all(db.ungated())
            .await
            .unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].token_hash, token_hash(&token));
        assert_eq!(rows[0].token_hash.len(), 64);
        assert!(!format!("{:?}", rows[0]).contains(&token));
    }

    async fn an_expired_or_unknown_token_is_invalid(db: Database) {
        let tokens = SqlRefreshTokens::new(db.clone(), TTL, SESSION);
        let user = stored_user(&db, "a@example.com").await;
        let token = tokens.issue(&user, None, at(0)).await.unwrap();
        let after_expiry = at(0) + chrono::Duration::hours(1);
        assert_eq!(
            consume(&tokens, &token, after_expiry).await,
            RefreshOutcome::Invalid
        );
        assert_eq!(
            consume(&tokens, "never-issued", at(1)).await,
            RefreshOutcome::Invalid
        );
        tokens.revoke("never-issued", at(1)).await.unwrap();
    }

    async fn revoking_a_token_ends_every_token_of_its_session_and_no_other(db: Database) {
        let tokens = SqlRefreshTokens::new(db.clone(), TTL, SESSION);
        let user = stored_user(&db, "a@example.com").await;
        let first = tokens.issue(&user, None, at(0)).await.unwrap();
        let session = session_of(&consume(&tokens, &first, at(1)).await);
        let successor = tokens.issue(&user, Some(session), at(1)).await.unwrap();
        let other_sign_in = tokens.issue(&user, None, at(1)).await.unwrap();

        // Logging out with the spent token still finds its session.
        tokens.revoke(&first, at(2)).await.unwrap();
        assert_eq!(
            consume(&tokens, &successor, at(3)).await,
            RefreshOutcome::Invalid
        );
        let other = consume(&tokens, &other_sign_in, at(3)).await;
        assert!(
            matches!(other, RefreshOutcome::Consumed { .. }),
            "{other:?}"
        );
    }

    async fn revoking_a_user_ends_all_their_sessions_and_nobody_elses(db: Database) {
        let tokens = SqlRefreshTokens::new(db.clone(), TTL, SESSION);
        let user = stored_user(&db, "a@example.com").await;
        let someone_else = stored_user(&db, "b@example.com").await;
        let laptop = tokens.issue(&user, None, at(0)).await.unwrap();
        let phone = tokens.issue(&user, None, at(0)).await.unwrap();
        let theirs = tokens.issue(&someone_else, None, at(0)).await.unwrap();

        revoke_user(db.ungated(), user.id(), at(1)).await.unwrap();
        assert_eq!(
            consume(&tokens, &laptop, at(2)).await,
            RefreshOutcome::Invalid
        );
        assert_eq!(
            consume(&tokens, &phone, at(2)).await,
            RefreshOutcome::Invalid
        );
        let other = consume(&tokens, &theirs, at(2)).await;
        assert!(
            matches!(other, RefreshOutcome::Consumed { .. }),
            "{other:?}"
        );
    }

    async fn a_spent_token_is_still_reported_as_reused_after_its_session_is_revoked(db: Database) {
        let tokens = SqlRefreshTokens::new(db.clone(), TTL, SESSION);
        let user = stored_user(&db, "a@example.com").await;
        let token = tokens.issue(&user, None, at(0)).await.unwrap();
        let session = session_of(&consume(&tokens, &token, at(1)).await);
        tokens.revoke_session(session, at(2)).await.unwrap();
        assert_eq!(
            consume(&tokens, &token, at(3)).await,
            RefreshOutcome::Reused { session }
        );
    }

    async fn of_two_concurrent_uses_of_a_token_exactly_one_succeeds(db: Database) {
        let tokens = SqlRefreshTokens::new(db.clone(), TTL, SESSION);
        let user = stored_user(&db, "a@example.com").await;
        let token = tokens.issue(&user, None, at(0)).await.unwrap();
        open_two_connections(&db).await;
        let (first, second) =
            tokio::join!(tokens.consume(&token, at(1)), tokens.consume(&token, at(1)));
        let outcomes = [first.unwrap(), second.unwrap()];
        let consumed = outcomes
            .iter()
            .filter(|outcome| matches!(outcome, RefreshOutcome::Consumed { .. }))
            .count();
        assert_eq!(consumed, 1, "{outcomes:?}");
    }

    #[test]
    fn the_stored_hash_is_the_hex_sha256_of_the_token() {
        assert_eq!(
            token_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    /// The time `hours` and `minutes` after `at(0)`.
    fn later(hours: i64, minutes: i64) -> DateTime<Utc> {
        at(0) + chrono::TimeDelta::hours(hours) + chrono::TimeDelta::minutes(minutes)
    }

    async fn rotating_never_keeps_a_session_past_its_lifetime_from_sign_in(db: Database) {
        let tokens = SqlRefreshTokens::new(db.clone(), TTL, SESSION);
        let user = stored_user(&db, "a@example.com").await;
        let mut token = tokens.issue(&user, None, at(0)).await.unwrap();
        // Rotated every 50 minutes, each token within its hour: the session still ends
        // three hours after the sign-in.
        let mut rotations = 0;
        for step in 1..10 {
            let now = later(0, 50 * step);
            match consume(&tokens, &token, now).await {
                RefreshOutcome::Consumed { session, .. } => {
                    token = tokens.issue(&user, Some(session), now).await.unwrap();
                    rotations += 1;
                }
                RefreshOutcome::Invalid => break,
                RefreshOutcome::Reused { .. } => panic!("a fresh token was reported reused"),
            }
        }
        // Rotated at 50, 100, 150 minutes; the token of 150 minutes ends with the
        // session at 180, before its own hour is up, and is spent by 200.
        assert_eq!(rotations, 3);
    }

    async fn expired_tokens_are_purged_and_live_ones_kept(db: Database) {
        let tokens = SqlRefreshTokens::new(db.clone(), TTL, SESSION);
        let user = stored_user(&db, "a@example.com").await;
        let old = tokens.issue(&user, None, at(0)).await.unwrap();
        let fresh = tokens.issue(&user, None, later(1, 30)).await.unwrap();
        assert_eq!(tokens.purge_expired(later(1, 30)).await.unwrap(), 1);
        assert_eq!(
            consume(&tokens, &old, later(1, 31)).await,
            RefreshOutcome::Invalid
        );
        assert!(matches!(
            consume(&tokens, &fresh, later(1, 31)).await,
            RefreshOutcome::Consumed { .. }
        ));
    }

    crate::on_every_backend!(
        rotating_never_keeps_a_session_past_its_lifetime_from_sign_in,
        expired_tokens_are_purged_and_live_ones_kept,
        a_token_is_consumed_once_then_reported_as_reused_and_its_successor_keeps_the_session,
        only_the_sha256_of_a_token_is_stored,
        an_expired_or_unknown_token_is_invalid,
        revoking_a_token_ends_every_token_of_its_session_and_no_other,
        revoking_a_user_ends_all_their_sessions_and_nobody_elses,
        a_spent_token_is_still_reported_as_reused_after_its_session_is_revoked,
        of_two_concurrent_uses_of_a_token_exactly_one_succeeds,
    );
}
