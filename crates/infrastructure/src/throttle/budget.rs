//! The per-tenant request budget: at most `limit` requests per tenant in each fixed
//! window of time, counted in this process or in Redis.
//!
//! Windows are aligned on the Unix epoch (window `n` covers `[n * window, (n + 1) *
//! window)`), so every replica and both adapters agree on when a window turns without
//! talking to each other; a refused request is told to wait until then. A fixed window
//! lets a tenant burst up to twice its limit across a boundary, which a budget (unlike
//! the login throttle) can afford in exchange for one counter per tenant.
//!
//! In Redis the counter of a window is one key, `<namespace>:budget:<tenant>:<window>`,
//! incremented and given its expiry in one atomic script. When Redis fails, the request
//! is counted by the in-process budget held as a fallback (see the parent module).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use application::ports::RequestBudget;
use async_trait::async_trait;
use domain::TenantId;
use redis::Script;

use super::{degraded, millis};
use crate::redis_pool::{Redis, RedisError};

/// Counts one request in the window's counter; returns the count. KEYS[1]: the counter.
/// ARGV[1]: its expiry in ms.
const SPEND: &str = r"
local count = redis.call('INCR', KEYS[1])
if count == 1 then
    redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return count
";

/// Where the budgets read the time; replaced in tests to stand at a chosen instant.
type Now = Arc<dyn Fn() -> SystemTime + Send + Sync>;

fn system_now() -> Now {
    Arc::new(SystemTime::now)
}

/// The limit and window both adapters share, and the arithmetic of windows.
#[derive(Clone, Copy, Debug)]
struct Rule {
    /// 0 turns the budget off.
    limit: u32,
    /// In ms, at least 1.
    window_ms: u64,
}

/// A fixed window: its number since the epoch, and the time left until it ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Window {
    index: u64,
    left: Duration,
}

impl Rule {
    fn new(limit: u32, window: Duration) -> Self {
        Self {
            limit,
            window_ms: millis(window),
        }
    }

    fn window_at(self, now: SystemTime) -> Window {
        // A clock before 1970 is broken; counting it as the first window is harmless.
        let since_epoch = now.duration_since(UNIX_EPOCH).unwrap_or_default();
        let now_ms = u64::try_from(since_epoch.as_millis()).unwrap_or(u64::MAX);
        let index = now_ms / self.window_ms;
        let end_ms = (index + 1).saturating_mul(self.window_ms);
        Window {
            index,
            left: Duration::from_millis(end_ms - now_ms),
        }
    }

    /// `Some(wait)` when `count` requests in `window` are more than the budget.
    fn verdict(self, count: u64, window: Window) -> Option<Duration> {
        (self.limit > 0 && count > u64::from(self.limit)).then_some(window.left)
    }
}

/// The in-process `RequestBudget`: each replica counts its own requests.
pub struct InMemoryRequestBudget {
    rule: Rule,
    now: Now,
    /// The current window and each tenant's requests in it. When the window turns every
    /// count starts again, so memory holds one window's tenants at most.
    spent: Mutex<(u64, HashMap<TenantId, u64>)>,
}

impl std::fmt::Debug for InMemoryRequestBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InMemoryRequestBudget")
            .field("rule", &self.rule)
            .finish_non_exhaustive()
    }
}

impl InMemoryRequestBudget {
    /// At most `limit` requests per tenant in each `window` (0 turns the budget off; a
    /// window under a millisecond counts as one).
    #[must_use]
    pub fn new(limit: u32, window: Duration) -> Self {
        Self {
            rule: Rule::new(limit, window),
            now: system_now(),
            spent: Mutex::new((0, HashMap::new())),
        }
    }

    fn spend_in(&self, tenant: TenantId, window: Window) -> Option<Duration> {
        if self.rule.limit == 0 {
            return None;
        }
        // Counting cannot be left half done by a panic, so a poisoned lock is usable.
        let mut spent = self.spent.lock().unwrap_or_else(PoisonError::into_inner);
        let (current, counts) = &mut *spent;
        if *current != window.index {
            *current = window.index;
            counts.clear();
        }
        let count = counts.entry(tenant).or_insert(0);
        *count += 1;
        self.rule.verdict(*count, window)
    }
}

#[async_trait]
impl RequestBudget for InMemoryRequestBudget {
    async fn spend(&self, tenant: TenantId) -> anyhow::Result<Option<Duration>> {
        Ok(self.spend_in(tenant, self.rule.window_at((self.now)())))
    }
}

/// The `RequestBudget` shared by every replica through Redis.
pub struct RedisRequestBudget {
    redis: Redis,
    namespace: String,
    rule: Rule,
    now: Now,
    fallback: InMemoryRequestBudget,
    /// Calls the fallback answered, for tests that must reach Redis.
    fallbacks: AtomicU64,
    spend: Script,
}

impl std::fmt::Debug for RedisRequestBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisRequestBudget")
            .field("namespace", &self.namespace)
            .field("rule", &self.rule)
            .finish_non_exhaustive()
    }
}

impl RedisRequestBudget {
    /// At most `limit` requests per tenant in each `window`, counted in Redis under
    /// `<namespace>:budget:` (0 turns the budget off).
    #[must_use]
    pub fn new(redis: Redis, namespace: String, limit: u32, window: Duration) -> Self {
        Self {
            redis,
            namespace,
            rule: Rule::new(limit, window),
            now: system_now(),
            fallback: InMemoryRequestBudget::new(limit, window),
            fallbacks: AtomicU64::new(0),
            spend: Script::new(SPEND),
        }
    }

    async fn count_in_redis(&self, tenant: TenantId, window: Window) -> Result<u64, RedisError> {
        let key = format!("{}:budget:{tenant}:{}", self.namespace, window.index);
        let mut invocation = self.spend.prepare_invoke();
        // The counter is dead once its window ends; one window is a ceiling on that.
        invocation.key(key).arg(self.rule.window_ms);
        self.redis
            .run(|mut connection| async move { invocation.invoke_async(&mut connection).await })
            .await
    }
}

#[async_trait]
impl RequestBudget for RedisRequestBudget {
    async fn spend(&self, tenant: TenantId) -> anyhow::Result<Option<Duration>> {
        if self.rule.limit == 0 {
            return Ok(None);
        }
        let window = self.rule.window_at((self.now)());
        match self.count_in_redis(tenant, window).await {
            Ok(count) => Ok(self.rule.verdict(count, window)),
            Err(error) => {
                self.fallbacks.fetch_add(1, Ordering::Relaxed);
                degraded("request_budget", error);
                Ok(self.fallback.spend_in(tenant, window))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;
    use crate::testing::{self, TestRedis};

    const WINDOW: Duration = Duration::from_mins(1);

    /// A clock the test moves by hand, in ms since the epoch.
    #[derive(Clone, Default)]
    struct HandClock(Arc<AtomicU64>);

    impl HandClock {
        /// `into` ms into window number `index`.
        fn at(index: u64, into: u64) -> Self {
            let clock = Self::default();
            clock.set(index, into);
            clock
        }

        fn set(&self, index: u64, into: u64) {
            let window_ms = millis(WINDOW);
            self.0.store(index * window_ms + into, Ordering::SeqCst);
        }

        fn now(&self) -> Now {
            let ms = self.0.clone();
            Arc::new(move || UNIX_EPOCH + Duration::from_millis(ms.load(Ordering::SeqCst)))
        }
    }

    fn in_memory(limit: u32, clock: &HandClock) -> InMemoryRequestBudget {
        let mut budget = InMemoryRequestBudget::new(limit, WINDOW);
        budget.now = clock.now();
        budget
    }

    fn in_redis(
        redis: Redis,
        namespace: String,
        limit: u32,
        clock: &HandClock,
    ) -> RedisRequestBudget {
        let mut budget = RedisRequestBudget::new(redis, namespace, limit, WINDOW);
        budget.now = clock.now();
        budget.fallback.now = clock.now();
        budget
    }

    /// Makes budgets of one adapter, on a clock: in process, or in Redis under a test
    /// namespace.
    struct Makers {
        redis: Option<TestRedis>,
    }

    /// A budget, and its Redis adapter when it has one, to check it answered itself.
    struct Budgets {
        all: Vec<Arc<dyn RequestBudget>>,
        redis: Option<Arc<RedisRequestBudget>>,
    }

    impl Makers {
        fn make(&self, limit: u32, clock: &HandClock) -> Budgets {
            match &self.redis {
                Some(test) => {
                    let budget = Arc::new(in_redis(
                        test.redis.clone(),
                        test.namespace.clone(),
                        limit,
                        clock,
                    ));
                    Budgets {
                        all: vec![budget.clone()],
                        redis: Some(budget),
                    }
                }
                None => Budgets {
                    all: vec![Arc::new(in_memory(limit, clock))],
                    redis: None,
                },
            }
        }
    }

    impl Budgets {
        /// A fallback would pass these tests in place of a broken Redis script.
        fn assert_redis_answered(&self) {
            if let Some(budget) = &self.redis {
                assert_eq!(budget.fallbacks.load(Ordering::Relaxed), 0);
            }
        }
    }

    fn tenant() -> TenantId {
        TenantId::from_uuid(Uuid::now_v7())
    }

    async fn spend_times(budget: &dyn RequestBudget, tenant: TenantId, times: u32) {
        for n in 0..times {
            let verdict = budget.spend(tenant).await.unwrap();
            assert_eq!(verdict, None, "request {n} was refused");
        }
    }

    async fn a_tenant_spends_its_limit_then_waits_until_the_window_turns(makers: Makers) {
        // 45 s into a one-minute window: 15 s are left.
        let clock = HandClock::at(29_000_000, 45_000);
        let budgets = makers.make(3, &clock);
        for budget in &budgets.all {
            let tenant = tenant();
            spend_times(budget.as_ref(), tenant, 3).await;
            let wait = budget.spend(tenant).await.unwrap();
            assert_eq!(wait, Some(Duration::from_secs(15)));
        }
        budgets.assert_redis_answered();
    }

    async fn each_tenant_has_a_budget_of_its_own(makers: Makers) {
        let clock = HandClock::at(29_000_000, 0);
        let budgets = makers.make(2, &clock);
        for budget in &budgets.all {
            let spender = tenant();
            spend_times(budget.as_ref(), spender, 2).await;
            assert!(budget.spend(spender).await.unwrap().is_some());
            spend_times(budget.as_ref(), tenant(), 2).await;
        }
        budgets.assert_redis_answered();
    }

    async fn a_new_window_brings_a_whole_budget(makers: Makers) {
        let clock = HandClock::at(29_000_000, 59_000);
        let budgets = makers.make(1, &clock);
        for budget in &budgets.all {
            let tenant = tenant();
            clock.set(29_000_000, 59_000);
            spend_times(budget.as_ref(), tenant, 1).await;
            assert_eq!(
                budget.spend(tenant).await.unwrap(),
                Some(Duration::from_secs(1))
            );
            clock.set(29_000_001, 0);
            spend_times(budget.as_ref(), tenant, 1).await;
            assert!(budget.spend(tenant).await.unwrap().is_some());
        }
        budgets.assert_redis_answered();
    }

    async fn a_limit_of_zero_never_refuses(makers: Makers) {
        let clock = HandClock::at(29_000_000, 0);
        let budgets = makers.make(0, &clock);
        for budget in &budgets.all {
            spend_times(budget.as_ref(), tenant(), 50).await;
        }
        budgets.assert_redis_answered();
    }

    crate::with_and_without!(
        in_memory = Makers { redis: None },
        on_redis = Makers { redis: Some(TestRedis::new().await) };
        a_tenant_spends_its_limit_then_waits_until_the_window_turns,
        each_tenant_has_a_budget_of_its_own,
        a_new_window_brings_a_whole_budget,
        a_limit_of_zero_never_refuses,
    );

    #[tokio::test]
    #[ignore = "needs Redis: TEST_REDIS_URL, run by `just test-all`"]
    async fn two_replicas_on_the_same_redis_and_namespace_share_one_budget() {
        let test = TestRedis::new().await;
        let (redis, namespace) = (test.redis.clone(), test.namespace.clone());
        let clock = HandClock::at(29_000_000, 0);
        let first = in_redis(redis.clone(), namespace.clone(), 2, &clock);
        let second = in_redis(redis, namespace, 2, &clock);
        let tenant = tenant();
        spend_times(&first, tenant, 1).await;
        spend_times(&second, tenant, 1).await;
        assert!(first.spend(tenant).await.unwrap().is_some());
        assert!(second.spend(tenant).await.unwrap().is_some());
    }

    #[tokio::test]
    #[ignore = "needs Redis: TEST_REDIS_URL, run by `just test-all`"]
    async fn the_redis_counter_expires_with_its_window() {
        let test = TestRedis::new().await;
        let (redis, namespace) = (test.redis.clone(), test.namespace.clone());
        let clock = HandClock::at(29_000_000, 0);
        let budget = in_redis(redis.clone(), namespace.clone(), 5, &clock);
        let tenant = tenant();
        spend_times(&budget, tenant, 1).await;
        let key = format!("{namespace}:budget:{tenant}:29000000");
        let ttl_ms: i64 = redis
            .run(|mut connection| async move {
                redis::cmd("PTTL")
                    .arg(&key)
                    .query_async(&mut connection)
                    .await
            })
            .await
            .unwrap();
        let window_ms = i64::try_from(millis(WINDOW)).unwrap();
        assert!(ttl_ms > 0 && ttl_ms <= window_ms, "{ttl_ms}");
    }

    #[tokio::test]
    async fn with_redis_down_it_still_limits_in_process() {
        let clock = HandClock::at(29_000_000, 30_000);
        let budget = in_redis(testing::dead_redis(), "dead".to_owned(), 2, &clock);
        let tenant = tenant();
        spend_times(&budget, tenant, 2).await;
        assert_eq!(
            budget.spend(tenant).await.unwrap(),
            Some(Duration::from_secs(30))
        );
        assert_eq!(budget.fallbacks.load(Ordering::Relaxed), 3);
    }

    #[test]
    fn windows_are_aligned_on_the_epoch() {
        let rule = Rule::new(1, WINDOW);
        let at = |ms: u64| rule.window_at(UNIX_EPOCH + Duration::from_millis(ms));
        assert_eq!(
            at(0),
            Window {
                index: 0,
                left: WINDOW
            }
        );
        assert_eq!(at(59_999).index, 0);
        assert_eq!(at(59_999).left, Duration::from_millis(1));
        assert_eq!(at(60_000).index, 1);
    }
}
