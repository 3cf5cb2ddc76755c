//! The background half of the service, run on the runtime: the application's relay,
//! consumers and housekeeping (`application::events`), each in a loop of its own.
//!
//! `server worker` runs them alone; `server serve` runs them beside the HTTP API unless
//! `events.run_in_server` is off. The policy (what to publish, acknowledge, retry, back
//! off) is the application's; this module owns only what needs a runtime: spawning,
//! sleeping between steps, the stop signal, and the metrics of what each step reports.
//! A step is one whole batch and a stop is seen only between steps, so a stop never
//! leaves half a batch applied.

use std::time::Duration;

use application::events::{Backlog, BatchReport, Consumer, Housekeeping, Relay};
use application::ports::Clock;
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

/// How often the housekeeping reports the backlog, and purges.
const GAUGES_EVERY: Duration = Duration::from_secs(5);
const PURGE_EVERY: Duration = Duration::from_hours(1);

/// What the loops run.
pub struct Workers {
    pub relay: Relay,
    pub consumers: Vec<Consumer>,
    pub housekeeping: Housekeeping,
}

/// Stops the running loops.
pub struct WorkersHandle {
    stop: watch::Sender<bool>,
    loops: Vec<tokio::task::JoinHandle<()>>,
}

impl WorkersHandle {
    /// Asks every loop to stop and waits until each has finished its step.
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
    /// Starts the relay, one loop per consumer and the housekeeping, on the current
    /// runtime.
    #[must_use]
    pub fn spawn(self) -> WorkersHandle {
        let (stop, stopped) = watch::channel(false);
        let Self {
            relay,
            consumers,
            housekeeping,
        } = self;
        let mut loops = vec![
            tokio::spawn(run_relay(relay, stopped.clone())),
            tokio::spawn(run_housekeeping(housekeeping, stopped.clone())),
        ];
        for consumer in consumers {
            loops.push(tokio::spawn(run_consumer(consumer, stopped.clone())));
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

/// Steps the relay; once the outbox is drained it waits for events to be written
/// (`relay_interval_ms` at most), and while the bus fails it backs off.
async fn run_relay(mut relay: Relay, mut stopped: watch::Receiver<bool>) {
    loop {
        let wait = relay.step().await;
        if *stopped.borrow() {
            return;
        }
        if wait.is_zero() {
            continue;
        }
        let waited = tokio::select! {
            _ = stopped.changed() => return,
            waited = relay.wait_for_events(wait) => waited,
        };
        if !waited && pause(&mut stopped, wait).await {
            return;
        }
    }
}

async fn run_consumer(mut consumer: Consumer, mut stopped: watch::Receiver<bool>) {
    let group = consumer.group();
    loop {
        let (report, wait) = consumer.step().await;
        record(group, &report);
        if pause(&mut stopped, wait).await {
            return;
        }
    }
}

async fn run_housekeeping(housekeeping: Housekeeping, mut stopped: watch::Receiver<bool>) {
    let mut since_purge = PURGE_EVERY;
    loop {
        let backlog = housekeeping.backlog().await;
        record_backlog(&backlog, housekeeping.clock.as_ref());
        if since_purge >= PURGE_EVERY {
            housekeeping.purge().await;
            since_purge = Duration::ZERO;
        }
        since_purge += GAUGES_EVERY;
        if pause(&mut stopped, GAUGES_EVERY).await {
            return;
        }
    }
}

/// Counts what a consumer's step did, and how far behind its last event was.
fn record(group: &'static str, report: &BatchReport) {
    for (outcome, count) in [
        ("applied", report.applied),
        ("duplicate", report.duplicate),
        ("failed", report.failed),
        ("undecodable", report.undecodable),
    ] {
        if count > 0 {
            metrics::counter!(CONSUMER_EVENTS, "consumer" => group, "outcome" => outcome)
                .increment(count);
        }
    }
    if let Some(occurred_at) = report.last_occurred_at {
        let lag = chrono::Utc::now() - occurred_at;
        #[allow(clippy::cast_precision_loss, reason = "a lag in ms fits a float")]
        metrics::gauge!(CONSUMER_LAG, "consumer" => group)
            .set(lag.num_milliseconds().max(0) as f64 / 1000.0);
    }
}

fn record_backlog(backlog: &Backlog, clock: &dyn Clock) {
    if let Some(outbox) = &backlog.outbox {
        infrastructure::record_backlog(outbox, clock.now());
    }
    for (group, behind) in &backlog.behind {
        infrastructure::record_consumer_lag(group, *behind);
    }
}
