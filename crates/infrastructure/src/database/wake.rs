//! Wakes the relay when events are written, so that a drained relay waits instead of
//! polling: in process when this process committed them, and through `PostgreSQL`'s
//! `LISTEN`/`NOTIFY` when another replica did (a trigger on the outbox notifies
//! `outbox_written` at the commit of every transaction that wrote events).

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use sea_orm::sqlx::postgres::{PgListener, PgPool};
use sea_orm::{DatabaseConnection, DbBackend};
use tokio::sync::{Notify, watch};

/// The channel the outbox trigger notifies.
pub(crate) const CHANNEL: &str = "outbox_written";

/// How long the listener waits before listening again after its connection failed.
const RELISTEN_AFTER: Duration = Duration::from_secs(1);

/// The signal that events were written. A write signalled while nobody waits is kept
/// for the next wait, so none is missed between a relay's step and its wait.
#[derive(Debug, Default)]
pub(crate) struct Wake {
    notify: Arc<Notify>,
    /// Set once a listener runs. Dropped with the last clone of the database, which
    /// stops the listener and closes its connection.
    listener: OnceLock<watch::Sender<()>>,
}

impl Wake {
    /// This process committed events.
    pub(crate) fn written(&self) {
        self.notify.notify_one();
    }

    /// Returns once events may have been written since the last return, or after
    /// `at_most`. On `PostgreSQL` the first wait starts the listener.
    pub(crate) async fn wait(&self, pool: &DatabaseConnection, at_most: Duration) {
        if pool.get_database_backend() == DbBackend::Postgres {
            self.listener.get_or_init(|| {
                let (stop, stopped) = watch::channel(());
                let pool = pool.get_postgres_connection_pool().clone();
                tokio::spawn(listen(pool, Arc::clone(&self.notify), stopped));
                stop
            });
        }
        let _ = tokio::time::timeout(at_most, self.notify.notified()).await;
    }
}

/// Turns every notification on `CHANNEL` into a wake-up, until `stopped` says the
/// database is gone. The connection is one of its own, outside the pool's gate.
async fn listen(pool: PgPool, notify: Arc<Notify>, mut stopped: watch::Receiver<()>) {
    loop {
        let listening = async {
            let mut listener = PgListener::connect_with(&pool).await?;
            listener.listen(CHANNEL).await?;
            // What was written while nobody listened is the next step's to find.
            notify.notify_one();
            loop {
                // A lost connection is reconnected inside `recv`; notifications sent
                // meanwhile are lost, and the relay's fallback interval finds their events.
                listener.recv().await?;
                notify.notify_one();
            }
            #[allow(unreachable_code, reason = "the error type of the loop's `?`")]
            Ok::<(), sea_orm::sqlx::Error>(())
        };
        tokio::select! {
            _ = stopped.changed() => return,
            Err(error) = listening => {
                tracing::warn!(error = %error, "cannot listen for outbox writes; the relay polls");
            }
        }
        tokio::select! {
            _ = stopped.changed() => return,
            () = tokio::time::sleep(RELISTEN_AFTER) => {}
        }
    }
}
