//! The background half of the service: the outbox relay and the event consumers.
//!
//! `server worker` runs them alone; `server serve` runs them beside the HTTP API unless
//! `events.run_in_server` is off. Each is a loop on the runtime, stopped through
//! [`WorkersHandle::stop`]: the loop finishes the batch in hand (its effects and its
//! acknowledgements), then returns, so a stop never leaves half a batch applied.
//!
//! - The relay publishes committed outbox events and marks them published. While the
//!   bus fails it backs off, doubling its wait up to `events.relay_max_backoff_ms`;
//!   the events stay in the outbox, so nothing is lost. It also keeps the backlog
//!   gauges and purges published events past their retention.
//! - Each consumer reads its group's messages, hands each to its handler and
//!   acknowledges it once the handler committed. A handler that fails leaves the
//!   message unacknowledged: the bus hands it out again after its claim timeout. There
//!   is no dead-letter stream: an event that always fails comes back every claim
//!   timeout, counted as `failed`, until it is fixed or the stream drops it.

use std::sync::Arc;
use std::time::Duration;

use std::future::Future;
use std::pin::Pin;

use application::ports::{Clock, EventHandler, EventPublisher, EventSubscriber, Outbox};
use chrono::Utc;
use infrastructure::SqlInbox;
use metrics::Unit;
use tokio::sync::watch;

/// Events a consumer took, by outcome: applied, duplicate, failed, undecodable.
pub const CONSUMER_EVENTS: &str = "keystone_consumer_events_total";
/// How long ago the event a consumer last handled occurred.
pub const CONSUMER_LAG: &str = "keystone_consumer_lag_seconds";

/// Gives the worker metrics their help text. The relay's and the buses' own metrics
/// (published, failed, redelivered, backlog, messages behind) are described by
/// `infrastructure::describe_event_metrics`.
pub fn describe_metrics() {
    metrics::describe_counter!(CONSUMER_EVENTS, Unit::Count, "Events handled by consumers");
    metrics::describe_gauge!(
        CONSUMER_LAG,
        Unit::Seconds,
        "Age of the event a consumer handled last"
    );
}

/// How many messages of a group the bus still holds for it, when the bus can tell.
pub type LagProbe =
    Arc<dyn Fn(&'static str) -> Pin<Box<dyn Future<Output = Option<u64>> + Send>> + Send + Sync>;

/// How the loops pace themselves.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    pub relay_batch: u64,
    /// The relay's pause when the outbox is drained.
    pub relay_interval: Duration,
    pub relay_max_backoff: Duration,
    /// Published events older than this are purged.
    pub retention: Duration,
    /// How long a consumer's read waits for messages before looking at the stop flag.
    pub receive_wait: Duration,
    /// This process's name among the consumers of a group.
    pub consumer_name: String,
}

/// What the loops work with.
pub struct Workers {
    pub outbox: Arc<dyn Outbox>,
    pub publisher: Arc<dyn EventPublisher>,
    pub subscriber: Arc<dyn EventSubscriber>,
    pub handlers: Vec<Arc<dyn EventHandler>>,
    /// The consumers' records of the events they applied, purged with the outbox.
    pub inbox: SqlInbox,
    pub clock: Arc<dyn Clock>,
    pub lag: Option<LagProbe>,
    pub config: WorkerConfig,
}

/// Stops the running loops.
pub struct WorkersHandle {
    stop: watch::Sender<bool>,
    loops: Vec<tokio::task::JoinHandle<()>>,
}

impl WorkersHandle {
    /// Asks every loop to stop and waits until each has finished its batch.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for running in self.loops {
            if let Err(error) = running.await {
                tracing::error!(error = %error, "a worker loop panicked");
            }
        }
        tracing::info!("workers stopped");
    }
}

impl Workers {
    /// Starts the relay and one loop per handler on the current runtime.
    #[must_use]
    pub fn spawn(self) -> WorkersHandle {
        let (stop, stopped) = watch::channel(false);
        let Self {
            outbox,
            publisher,
            subscriber,
            handlers,
            inbox,
            clock,
            lag,
            config,
        } = self;
        let groups = handlers.iter().map(|handler| handler.name()).collect();
        let housekeeping = Housekeeping {
            outbox: outbox.clone(),
            inbox,
            clock,
            lag,
            groups,
            retention: config.retention,
        };
        let mut loops = vec![tokio::spawn(relay(
            outbox,
            publisher,
            housekeeping,
            config.clone(),
            stopped.clone(),
        ))];
        for handler in handlers {
            loops.push(tokio::spawn(consume(
                subscriber.clone(),
                handler,
                config.clone(),
                stopped.clone(),
            )));
        }
        tracing::info!(loops = loops.len(), "workers started");
        WorkersHandle { stop, loops }
    }
}

/// Sleeps for `duration` unless a stop comes first; `true` when it did.
async fn pause(stopped: &mut watch::Receiver<bool>, duration: Duration) -> bool {
    if *stopped.borrow() {
        return true;
    }
    tokio::select! {
        _ = stopped.changed() => true,
        () = tokio::time::sleep(duration) => *stopped.borrow(),
    }
}

/// The next wait after a failure: doubled, at most `max`.
fn back_off(current: Duration, initial: Duration, max: Duration) -> Duration {
    current.max(initial).saturating_mul(2).min(max)
}

/// How often the relay refreshes the backlog gauges and purges.
const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(5);
const PURGE_EVERY: Duration = Duration::from_hours(1);

/// What the relay does between batches: gauges and the purge.
struct Housekeeping {
    outbox: Arc<dyn Outbox>,
    inbox: SqlInbox,
    clock: Arc<dyn Clock>,
    lag: Option<LagProbe>,
    groups: Vec<&'static str>,
    retention: Duration,
}

impl Housekeeping {
    async fn record_gauges(&self) {
        match self.outbox.backlog().await {
            Ok(backlog) => infrastructure::record_backlog(&backlog, self.clock.now()),
            Err(error) => tracing::warn!(error = %error, "reading the outbox backlog"),
        }
        if let Some(lag) = &self.lag {
            for group in &self.groups {
                if let Some(behind) = lag(group).await {
                    infrastructure::record_consumer_lag(group, behind);
                }
            }
        }
    }

    async fn purge(&self) {
        let Ok(retention) = chrono::Duration::from_std(self.retention) else {
            return;
        };
        let before = self.clock.now() - retention;
        match self.outbox.purge_published(before).await {
            Ok(0) => {}
            Ok(purged) => tracing::info!(purged, "purged published events past their retention"),
            Err(error) => tracing::warn!(error = %error, "purging published events"),
        }
        match self.inbox.purge_processed(before).await {
            Ok(0) => {}
            Ok(purged) => tracing::info!(purged, "purged consumers' records of old events"),
            Err(error) => tracing::warn!(error = %error, "purging consumers' records"),
        }
    }
}

async fn relay(
    outbox: Arc<dyn Outbox>,
    publisher: Arc<dyn EventPublisher>,
    housekeeping: Housekeeping,
    config: WorkerConfig,
    mut stopped: watch::Receiver<bool>,
) {
    let mut backoff = Duration::ZERO;
    let mut last_gauges = tokio::time::Instant::now() - HOUSEKEEPING_EVERY;
    let mut last_purge = tokio::time::Instant::now() - PURGE_EVERY;
    loop {
        if *stopped.borrow() {
            return;
        }
        if last_gauges.elapsed() >= HOUSEKEEPING_EVERY {
            last_gauges = tokio::time::Instant::now();
            housekeeping.record_gauges().await;
        }
        if last_purge.elapsed() >= PURGE_EVERY {
            last_purge = tokio::time::Instant::now();
            housekeeping.purge().await;
        }
        let wait = match outbox.relay(config.relay_batch, publisher.as_ref()).await {
            Ok(relayed) => {
                if !backoff.is_zero() {
                    tracing::info!("the relay publishes again");
                }
                backoff = Duration::ZERO;
                // A full batch means more may be waiting: go on at once.
                if relayed >= config.relay_batch {
                    Duration::ZERO
                } else {
                    config.relay_interval
                }
            }
            Err(error) => {
                backoff = back_off(backoff, config.relay_interval, config.relay_max_backoff);
                tracing::warn!(
                    error = format!("{:#}", anyhow::Error::new(error)),
                    retry_in_ms = backoff.as_millis(),
                    "the relay could not publish; the events stay in the outbox"
                );
                backoff
            }
        };
        if pause(&mut stopped, wait).await {
            return;
        }
    }
}

async fn consume(
    subscriber: Arc<dyn EventSubscriber>,
    handler: Arc<dyn EventHandler>,
    config: WorkerConfig,
    mut stopped: watch::Receiver<bool>,
) {
    let group = handler.name();
    let mut backoff = Duration::ZERO;
    loop {
        if *stopped.borrow() {
            return;
        }
        let received = subscriber
            .receive(group, &config.consumer_name, 64, config.receive_wait)
            .await;
        let failed = match received {
            Ok(deliveries) => handle_batch(subscriber.as_ref(), handler.as_ref(), deliveries).await,
            Err(error) => {
                tracing::warn!(
                    consumer = group,
                    error = format!("{error:#}"),
                    "receiving events"
                );
                true
            }
        };
        let wait = if failed {
            backoff = back_off(
                backoff,
                Duration::from_millis(200),
                config.relay_max_backoff,
            );
            backoff
        } else {
            backoff = Duration::ZERO;
            Duration::ZERO
        };
        if pause(&mut stopped, wait).await {
            return;
        }
    }
}

/// Handles a batch in order and acknowledges what was handled. A failed event is left
/// unacknowledged for redelivery after the claim timeout, and the rest of the batch
/// goes on (both read models accept events in any order); `true` when one failed.
async fn handle_batch(
    subscriber: &dyn EventSubscriber,
    handler: &dyn EventHandler,
    deliveries: Vec<application::ports::Delivery>,
) -> bool {
    let group = handler.name();
    let mut done = Vec::with_capacity(deliveries.len());
    let mut failed = false;
    for delivery in deliveries {
        let Some(envelope) = &delivery.envelope else {
            // No retry makes it readable: acknowledge it, say so loudly.
            tracing::error!(consumer = group, message = %delivery.id, "skipping an event that cannot be decoded");
            metrics::counter!(CONSUMER_EVENTS, "consumer" => group, "outcome" => "undecodable")
                .increment(1);
            done.push(delivery.id);
            continue;
        };
        match handler.handle(envelope).await {
            Ok(applied) => {
                let outcome = if applied { "applied" } else { "duplicate" };
                metrics::counter!(CONSUMER_EVENTS, "consumer" => group, "outcome" => outcome)
                    .increment(1);
                let lag = Utc::now() - envelope.event.meta().occurred_at;
                #[allow(clippy::cast_precision_loss, reason = "a lag in ms fits a float")]
                metrics::gauge!(CONSUMER_LAG, "consumer" => group)
                    .set(lag.num_milliseconds().max(0) as f64 / 1000.0);
                done.push(delivery.id);
            }
            Err(error) => {
                metrics::counter!(CONSUMER_EVENTS, "consumer" => group, "outcome" => "failed")
                    .increment(1);
                tracing::warn!(
                    consumer = group,
                    event = %envelope.id,
                    error = %error,
                    "handling an event failed; it will be delivered again"
                );
                failed = true;
            }
        }
    }
    if !done.is_empty()
        && let Err(error) = subscriber.ack(group, &done).await
    {
        // Handled but unacknowledged: it comes back, and the inbox makes it a no-op.
        tracing::warn!(consumer = group, error = %error, "acknowledging events");
        failed = true;
    }
    failed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn back_off_doubles_from_the_initial_wait_up_to_the_maximum() {
        let initial = Duration::from_millis(200);
        let max = Duration::from_secs(1);
        let first = back_off(Duration::ZERO, initial, max);
        assert_eq!(first, Duration::from_millis(400));
        assert_eq!(back_off(first, initial, max), Duration::from_millis(800));
        assert_eq!(back_off(Duration::from_millis(800), initial, max), max);
        assert_eq!(back_off(max, initial, max), max);
    }
}
