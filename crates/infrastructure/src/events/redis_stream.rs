//! `RedisStreamBus`: the production transport, one Redis stream that every event goes
//! to and every consumer group reads.
//!
//! - Publishing is one atomic pipeline of `XADD stream MAXLEN ~ n * envelope <json>`,
//!   one entry per event in order: a batch is in the stream whole or not at all, and
//!   the stream stays about `max_len` long (`~` lets Redis trim whole nodes, cheaply).
//! - A group is created on its first `receive` (`XGROUP CREATE … 0 MKSTREAM`), from the
//!   oldest entry still in the stream, so a new consumer sees what the stream retains.
//! - `receive` first claims entries another consumer of the group left unacknowledged
//!   longer than `claim_idle` (`XAUTOCLAIM`), marked redelivered; only when there are
//!   none does it read new entries (`XREADGROUP … >`), blocking up to `wait`. The
//!   blocking read has a deadline of its own (`wait` plus the pool's per-call timeout),
//!   so a Redis that stops answering costs a bounded wait, never a hang.
//! - An entry whose envelope does not decode is delivered with no envelope, for the
//!   consumer to acknowledge and report: no retry will make it readable.
//!
//! A blocked read holds one pooled connection for up to `wait`: size the pool for the
//! consumers plus the cache and the rate limiters.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::Context;
use application::ports::{Delivery, EventEnvelope, EventPublisher, EventSubscriber};
use async_trait::async_trait;
use redis::streams::{StreamAutoClaimReply, StreamId, StreamInfoGroupsReply, StreamReadReply};

use super::{count_redelivered, envelope};
use crate::redis_pool::Redis;

/// The field of a stream entry that holds the envelope.
const ENVELOPE_FIELD: &str = "envelope";

/// Where the events go and how long an unacknowledged one waits before another
/// consumer may claim it.
#[derive(Debug, Clone)]
pub struct StreamConfig {
    /// The stream's key, e.g. `keystone:events`.
    pub stream: String,
    /// About how many entries the stream keeps (`MAXLEN ~`). Beyond the longest outage
    /// of a consumer group, or that group misses what was trimmed.
    pub max_len: usize,
    /// How long a delivered, unacknowledged entry is left to its consumer before
    /// another consumer of the group claims it. Longer than a handler ever takes.
    pub claim_idle: Duration,
}

/// The event bus on a Redis stream. Cloning it is cheap and shares the pool.
#[derive(Debug, Clone)]
pub struct RedisStreamBus {
    redis: Redis,
    config: Arc<StreamConfig>,
    /// Groups known to exist, so `XGROUP CREATE` is sent once per group and process.
    groups: Arc<Mutex<HashSet<String>>>,
}

impl RedisStreamBus {
    /// How many messages `group` was handed and has not acknowledged (`XPENDING`).
    #[cfg(any(test, feature = "testing"))]
    pub async fn pending(&self, group: &str) -> u64 {
        let (stream, group) = (self.config.stream.clone(), group.to_owned());
        let summary: redis::streams::StreamPendingReply = self
            .redis
            .run(|mut connection| async move {
                redis::cmd("XPENDING")
                    .arg(&stream)
                    .arg(&group)
                    .query_async(&mut connection)
                    .await
            })
            .await
            .expect("reading the pending messages");
        summary.count() as u64
    }

    #[must_use]
    pub fn new(redis: Redis, config: StreamConfig) -> Self {
        Self {
            redis,
            config: Arc::new(config),
            groups: Arc::default(),
        }
    }

    /// How many entries of the stream `group` has not been handed yet (`XINFO GROUPS`);
    /// `None` when the group does not exist or Redis cannot tell (after trimming).
    ///
    /// # Errors
    /// When Redis does not answer in time.
    pub async fn lag(&self, group: &str) -> anyhow::Result<Option<u64>> {
        let stream = self.config.stream.clone();
        let groups: Option<StreamInfoGroupsReply> = self
            .redis
            .run(|mut connection| async move {
                let exists: bool = redis::cmd("EXISTS")
                    .arg(&stream)
                    .query_async(&mut connection)
                    .await?;
                if !exists {
                    return Ok(None);
                }
                redis::cmd("XINFO")
                    .arg("GROUPS")
                    .arg(&stream)
                    .query_async(&mut connection)
                    .await
                    .map(Some)
            })
            .await
            .context("reading the consumer groups of the event stream")?;
        Ok(groups
            .into_iter()
            .flat_map(|groups| groups.groups)
            .find(|info| info.name == group)
            .and_then(|info| info.lag)
            .map(|lag| lag as u64))
    }

    /// Creates `group` unless this process knows it exists; one that exists already
    /// (`BUSYGROUP`) is fine.
    async fn ensure_group(&self, group: &str) -> anyhow::Result<()> {
        if self.known_groups().contains(group) {
            return Ok(());
        }
        let stream = self.config.stream.clone();
        let name = group.to_owned();
        self.redis
            .run(|mut connection| async move {
                let created: redis::RedisResult<()> = redis::cmd("XGROUP")
                    .arg("CREATE")
                    .arg(&stream)
                    .arg(&name)
                    .arg("0")
                    .arg("MKSTREAM")
                    .query_async(&mut connection)
                    .await;
                match created {
                    Err(error) if error.code() == Some("BUSYGROUP") => Ok(()),
                    other => other,
                }
            })
            .await
            .with_context(|| format!("creating the consumer group {group}"))?;
        self.known_groups().insert(group.to_owned());
        Ok(())
    }

    fn known_groups(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.groups.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Entries idle past `claim_idle` at any consumer of `group`, now `consumer`'s.
    async fn claim(
        &self,
        group: &str,
        consumer: &str,
        max: usize,
    ) -> anyhow::Result<Vec<StreamId>> {
        let stream = self.config.stream.clone();
        let (group, consumer) = (group.to_owned(), consumer.to_owned());
        let min_idle = millis(self.config.claim_idle);
        let reply: StreamAutoClaimReply = self
            .redis
            .run(|mut connection| async move {
                redis::cmd("XAUTOCLAIM")
                    .arg(&stream)
                    .arg(&group)
                    .arg(&consumer)
                    .arg(min_idle)
                    .arg("0-0")
                    .arg("COUNT")
                    .arg(max)
                    .query_async(&mut connection)
                    .await
            })
            .await
            .context("claiming idle events")?;
        Ok(reply.claimed)
    }

    /// New entries for `consumer` of `group`, waiting up to `wait` for some.
    /// New entries for `consumer`, polled every [`POLL_INTERVAL`] until some arrive or
    /// `wait` is over. Not `XREADGROUP ... BLOCK`: a blocked read would hold a pooled
    /// connection for the whole wait and outlast the client's response timeout, and a
    /// reply lost to that timeout leaves its entries pending on this consumer until the
    /// claim timeout. A poll is one cheap round trip under the per-call deadline.
    async fn read_new(
        &self,
        group: &str,
        consumer: &str,
        max: usize,
        wait: Duration,
    ) -> anyhow::Result<Vec<StreamId>> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let entries = self.read_new_once(group, consumer, max).await?;
            let now = tokio::time::Instant::now();
            if !entries.is_empty() || now >= deadline {
                return Ok(entries);
            }
            tokio::time::sleep(POLL_INTERVAL.min(deadline - now)).await;
        }
    }

    async fn read_new_once(
        &self,
        group: &str,
        consumer: &str,
        max: usize,
    ) -> anyhow::Result<Vec<StreamId>> {
        let stream = self.config.stream.clone();
        let (group, consumer) = (group.to_owned(), consumer.to_owned());
        let reply: Option<StreamReadReply> = self
            .redis
            .run(|mut connection| async move {
                redis::cmd("XREADGROUP")
                    .arg("GROUP")
                    .arg(&group)
                    .arg(&consumer)
                    .arg("COUNT")
                    .arg(max)
                    .arg("STREAMS")
                    .arg(&stream)
                    .arg(">")
                    .query_async(&mut connection)
                    .await
            })
            .await
            .context("reading new events")?;
        Ok(reply
            .into_iter()
            .flat_map(|reply| reply.keys)
            .flat_map(|key| key.ids)
            .collect())
    }
}

/// How often a waiting consumer asks the stream for new entries.
const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// A duration in whole milliseconds, as Redis takes it.
fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// The delivery of a stream entry; with no envelope when it holds none this version
/// can read.
fn delivery(entry: StreamId, redelivered: bool) -> Delivery {
    let envelope = entry
        .get::<String>(ENVELOPE_FIELD)
        .context("the entry has no envelope")
        .and_then(|json| envelope::decode(&json));
    let envelope = match envelope {
        Ok(envelope) => Some(envelope),
        Err(error) => {
            tracing::warn!(
                message_id = %entry.id,
                error = format!("{error:#}"),
                "a message on the event stream holds no event this version can read"
            );
            None
        }
    };
    Delivery {
        id: entry.id,
        envelope,
        redelivered,
    }
}

#[async_trait]
impl EventPublisher for RedisStreamBus {
    #[tracing::instrument(skip_all, fields(events = events.len()))]
    async fn publish(&self, events: &[EventEnvelope]) -> anyhow::Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        let entries: Vec<String> = events
            .iter()
            .map(|envelope| {
                envelope::encode(envelope.id, envelope.aggregate_version, &envelope.event)
            })
            .collect();
        let stream = self.config.stream.clone();
        let max_len = self.config.max_len;
        self.redis
            .run(|mut connection| async move {
                let mut pipe = redis::pipe();
                pipe.atomic();
                for entry in &entries {
                    pipe.cmd("XADD")
                        .arg(&stream)
                        .arg("MAXLEN")
                        .arg("~")
                        .arg(max_len)
                        .arg("*")
                        .arg(ENVELOPE_FIELD)
                        .arg(entry)
                        .ignore();
                }
                pipe.query_async::<()>(&mut connection).await
            })
            .await
            .context("adding events to the event stream")
    }
}

#[async_trait]
impl EventSubscriber for RedisStreamBus {
    #[tracing::instrument(skip_all, fields(group = group, consumer = consumer))]
    async fn receive(
        &self,
        group: &str,
        consumer: &str,
        max: usize,
        wait: Duration,
    ) -> anyhow::Result<Vec<Delivery>> {
        self.ensure_group(group).await?;
        if max == 0 {
            return Ok(Vec::new());
        }
        let received = async {
            let claimed = self.claim(group, consumer, max).await?;
            if !claimed.is_empty() {
                return Ok((claimed, true));
            }
            Ok::<_, anyhow::Error>((self.read_new(group, consumer, max, wait).await?, false))
        }
        .await;
        let (entries, redelivered) = match received {
            Ok(received) => received,
            Err(error) => {
                // The stream may have been deleted with its groups (NOGROUP): the next
                // receive creates the group again.
                self.known_groups().remove(group);
                return Err(error);
            }
        };
        let deliveries: Vec<Delivery> = entries
            .into_iter()
            .map(|entry| delivery(entry, redelivered))
            .collect();
        count_redelivered(group, &deliveries);
        Ok(deliveries)
    }

    #[tracing::instrument(skip_all, fields(group = group, messages = ids.len()))]
    async fn ack(&self, group: &str, ids: &[String]) -> anyhow::Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let stream = self.config.stream.clone();
        let group = group.to_owned();
        let ids = ids.to_vec();
        self.redis
            .run(|mut connection| async move {
                redis::cmd("XACK")
                    .arg(&stream)
                    .arg(&group)
                    .arg(&ids)
                    .query_async::<u64>(&mut connection)
                    .await
            })
            .await
            .context("acknowledging events")?;
        Ok(())
    }

    async fn lag(&self, group: &str) -> anyhow::Result<Option<u64>> {
        RedisStreamBus::lag(self, group).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::tests::{delete, envelopes};
    use crate::testing::TestRedis;

    fn config(stream: String) -> StreamConfig {
        StreamConfig {
            stream,
            max_len: 1000,
            claim_idle: Duration::from_mins(1),
        }
    }

    #[tokio::test]
    #[ignore = "needs Redis: TEST_REDIS_URL, run by `just test-all`"]
    async fn a_message_that_holds_no_event_is_delivered_without_one() {
        let test = TestRedis::new().await;
        let (redis, prefix) = (test.redis.clone(), test.namespace.clone());
        let stream = format!("{prefix}:events");
        let bus = RedisStreamBus::new(redis.clone(), config(stream.clone()));
        let added = stream.clone();
        redis
            .run(|mut connection| async move {
                redis::pipe()
                    .cmd("XADD")
                    .arg(&added)
                    .arg("*")
                    .arg(ENVELOPE_FIELD)
                    .arg("{not json")
                    .cmd("XADD")
                    .arg(&added)
                    .arg("*")
                    .arg("something")
                    .arg("else")
                    .query_async::<()>(&mut connection)
                    .await
            })
            .await
            .unwrap();
        let events = envelopes(1);
        bus.publish(&events).await.unwrap();
        let received = bus
            .receive("g", "c", 10, Duration::from_millis(10))
            .await
            .unwrap();
        let envelopes: Vec<Option<EventEnvelope>> =
            received.iter().map(|d| d.envelope.clone()).collect();
        assert_eq!(envelopes, [None, None, Some(events[0].clone())]);
        delete(&redis, stream).await;
    }

    #[tokio::test]
    #[ignore = "needs Redis: TEST_REDIS_URL, run by `just test-all`"]
    async fn the_lag_counts_what_a_group_has_not_been_handed() {
        let test = TestRedis::new().await;
        let (redis, prefix) = (test.redis.clone(), test.namespace.clone());
        let stream = format!("{prefix}:events");
        let bus = RedisStreamBus::new(redis.clone(), config(stream.clone()));
        assert_eq!(bus.lag("g").await.unwrap(), None, "no stream yet");
        bus.publish(&envelopes(3)).await.unwrap();
        bus.receive("g", "c", 1, Duration::ZERO).await.unwrap();
        assert_eq!(bus.lag("g").await.unwrap(), Some(2));
        assert_eq!(bus.lag("other").await.unwrap(), None);
        delete(&redis, stream).await;
    }

    #[tokio::test]
    #[ignore = "needs Redis: TEST_REDIS_URL, run by `just test-all`"]
    async fn a_group_deleted_with_its_stream_is_created_again() {
        let test = TestRedis::new().await;
        let (redis, prefix) = (test.redis.clone(), test.namespace.clone());
        let stream = format!("{prefix}:events");
        let bus = RedisStreamBus::new(redis.clone(), config(stream.clone()));
        bus.receive("g", "c", 1, Duration::ZERO).await.unwrap();
        delete(&redis, stream.clone()).await;
        assert!(bus.receive("g", "c", 1, Duration::ZERO).await.is_err());
        let events = envelopes(1);
        bus.publish(&events).await.unwrap();
        let received = bus.receive("g", "c", 1, Duration::ZERO).await.unwrap();
        assert_eq!(received[0].envelope.as_ref(), Some(&events[0]));
        delete(&redis, stream).await;
    }
}
