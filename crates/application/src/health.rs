//! Readiness: whether this replica should get traffic, from a probe of each dependency.
//! A required dependency that fails takes the replica out of rotation; an optional one
//! (Redis) only degrades it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;

use crate::ports::{HealthProbe, ProbeError};

/// How long one probe may take before its dependency counts as down.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// How one probe went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    Ok,
    Failed,
    TimedOut,
}

impl Check {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Failed => "failed",
            Self::TimedOut => "timed_out",
        }
    }
}

/// The verdict on the replica.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Ready,
    /// An optional dependency is down: the replica still serves.
    Degraded,
    /// These required dependencies are down, in name order.
    NotReady(Vec<&'static str>),
}

/// The verdict and how each probe went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Readiness {
    pub verdict: Verdict,
    pub checks: BTreeMap<&'static str, Check>,
}

pub struct CheckReadiness {
    probes: Vec<Arc<dyn HealthProbe>>,
}

impl CheckReadiness {
    #[must_use]
    pub fn new(probes: Vec<Arc<dyn HealthProbe>>) -> Self {
        Self { probes }
    }

    /// Runs every probe at once, so one hung dependency costs [`PROBE_TIMEOUT`], not
    /// that times the number of probes. A failure is logged here with its cause chain,
    /// because the answer names only the component.
    pub async fn execute(&self) -> Readiness {
        let probes = self.probes.iter().map(|probe| async move {
            let component = probe.component();
            let check = match probe.check(PROBE_TIMEOUT).await {
                Ok(()) => Check::Ok,
                Err(ProbeError::Failed(error)) => {
                    tracing::error!(component, error = format!("{error:#}"), "readiness probe failed");
                    Check::Failed
                }
                Err(ProbeError::TimedOut) => {
                    tracing::error!(component, timeout = ?PROBE_TIMEOUT, "readiness probe timed out");
                    Check::TimedOut
                }
            };
            (component, probe.required(), check)
        });
        let results = join_all(probes).await;
        let mut failing: Vec<&'static str> = results
            .iter()
            .filter(|(_, required, check)| *required && *check != Check::Ok)
            .map(|(component, _, _)| *component)
            .collect();
        failing.sort_unstable();
        let degraded = results.iter().any(|(_, _, check)| *check != Check::Ok);
        let verdict = if !failing.is_empty() {
            Verdict::NotReady(failing)
        } else if degraded {
            Verdict::Degraded
        } else {
            Verdict::Ready
        };
        let checks = results
            .into_iter()
            .map(|(component, _, check)| (component, check))
            .collect();
        Readiness { verdict, checks }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use async_trait::async_trait;

    use super::*;

    /// How a probe in these tests behaves. `Meet` answers only once all `Meet` probes
    /// have started, which cannot happen unless the probes run at the same time.
    enum Behaviour {
        Answer,
        Fail,
        TimeOut,
        Meet(Arc<AtomicUsize>, usize),
    }

    struct Probe {
        component: &'static str,
        required: bool,
        behaviour: Behaviour,
    }

    #[async_trait]
    impl HealthProbe for Probe {
        fn component(&self) -> &'static str {
            self.component
        }

        fn required(&self) -> bool {
            self.required
        }

        async fn check(&self, limit: Duration) -> Result<(), ProbeError> {
            assert_eq!(limit, PROBE_TIMEOUT);
            match &self.behaviour {
                Behaviour::Answer => Ok(()),
                Behaviour::Fail => Err(ProbeError::Failed(anyhow::anyhow!("connection refused"))),
                Behaviour::TimeOut => Err(ProbeError::TimedOut),
                Behaviour::Meet(started, all) => {
                    started.fetch_add(1, Ordering::SeqCst);
                    std::future::poll_fn(|cx| {
                        if started.load(Ordering::SeqCst) < *all {
                            cx.waker().wake_by_ref();
                            std::task::Poll::Pending
                        } else {
                            std::task::Poll::Ready(())
                        }
                    })
                    .await;
                    Ok(())
                }
            }
        }
    }

    fn probe(
        component: &'static str,
        required: bool,
        behaviour: Behaviour,
    ) -> Arc<dyn HealthProbe> {
        Arc::new(Probe {
            component,
            required,
            behaviour,
        })
    }

    #[tokio::test]
    async fn the_replica_is_ready_when_every_probe_answers() {
        let readiness = CheckReadiness::new(vec![
            probe("database", true, Behaviour::Answer),
            probe("redis", false, Behaviour::Answer),
        ])
        .execute()
        .await;
        assert_eq!(readiness.verdict, Verdict::Ready);
        assert_eq!(
            readiness.checks,
            BTreeMap::from([("database", Check::Ok), ("redis", Check::Ok)])
        );
    }

    #[tokio::test]
    async fn a_required_dependency_down_makes_it_not_ready_naming_each_one() {
        let readiness = CheckReadiness::new(vec![
            probe("queue", true, Behaviour::Answer),
            probe("database", true, Behaviour::Fail),
            probe("cache", true, Behaviour::TimeOut),
        ])
        .execute()
        .await;
        assert_eq!(
            readiness.verdict,
            Verdict::NotReady(vec!["cache", "database"])
        );
        assert_eq!(
            readiness.checks,
            BTreeMap::from([
                ("cache", Check::TimedOut),
                ("database", Check::Failed),
                ("queue", Check::Ok)
            ])
        );
    }

    #[tokio::test]
    async fn an_optional_dependency_down_only_degrades_it() {
        let degraded = CheckReadiness::new(vec![
            probe("database", true, Behaviour::Answer),
            probe("redis", false, Behaviour::TimeOut),
        ])
        .execute()
        .await;
        assert_eq!(degraded.verdict, Verdict::Degraded);
        let down = CheckReadiness::new(vec![
            probe("database", true, Behaviour::Fail),
            probe("redis", false, Behaviour::Fail),
        ])
        .execute()
        .await;
        assert_eq!(down.verdict, Verdict::NotReady(vec!["database"]));
    }

    #[tokio::test]
    async fn probes_run_at_the_same_time() {
        let started = Arc::new(AtomicUsize::new(0));
        let meet = || Behaviour::Meet(started.clone(), 3);
        let readiness = CheckReadiness::new(vec![
            probe("a", true, meet()),
            probe("b", true, meet()),
            probe("c", true, meet()),
        ])
        .execute()
        .await;
        assert_eq!(readiness.verdict, Verdict::Ready);
    }
}
