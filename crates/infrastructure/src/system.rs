//! What the operating system provides: the clock, time-ordered ids and randomness.

use anyhow::anyhow;
use application::ports::{Clock, IdGenerator};
use chrono::{DateTime, SubsecRound, Utc};
use uuid::Uuid;

/// The wall clock, in UTC.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    /// Truncated to microseconds, the precision `PostgreSQL` stores: a timestamp read back
    /// from the database equals the one that was written.
    fn now(&self) -> DateTime<Utc> {
        Utc::now().trunc_subsecs(6)
    }
}

/// `UUIDv7` ids: time-ordered, so ids sort by creation and keyset pagination is cheap.
#[derive(Debug, Clone, Copy, Default)]
pub struct UuidV7Ids;

impl IdGenerator for UuidV7Ids {
    fn new_id(&self) -> Uuid {
        Uuid::now_v7()
    }
}

/// `N` bytes from the operating system's secure random source.
pub(crate) fn random_bytes<const N: usize>() -> anyhow::Result<[u8; N]> {
    let mut bytes = [0_u8; N];
    getrandom::fill(&mut bytes).map_err(|error| anyhow!("reading system randomness: {error}"))?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use chrono::Timelike;

    use super::*;

    #[test]
    fn the_clock_reads_whole_microseconds() {
        assert_eq!(SystemClock.now().nanosecond() % 1_000, 0);
    }

    #[test]
    fn ids_are_version_7_and_increase() {
        let first = UuidV7Ids.new_id();
        let second = UuidV7Ids.new_id();
        assert_eq!(first.get_version_num(), 7);
        assert!(first < second);
    }

    #[test]
    fn random_bytes_differ_between_draws() {
        let first: [u8; 32] = random_bytes().unwrap();
        let second: [u8; 32] = random_bytes().unwrap();
        assert_ne!(first, second);
    }
}
