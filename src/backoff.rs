//! Exponential backoff, the one schedule every retry in the node uses:
//! connection retries, DHT bootstrap attempts and the topic lookups after
//! joining.
//!
//! A leaf: imports nothing from the crate.

use std::time::Duration;

/// Waits that start at `first`, double after every attempt and stop
/// growing at `max`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// The wait after the first failure.
    pub first: Duration,
    /// The longest wait.
    pub max: Duration,
}

impl Backoff {
    /// A schedule from `first` doubling up to `max`.
    pub const fn new(first: Duration, max: Duration) -> Self {
        Self { first, max }
    }

    /// The wait before attempt `retry` (0 for the first retry): `first ×
    /// 2^retry`, at most `max`.
    pub fn delay(&self, retry: u32) -> Duration {
        self.first
            .saturating_mul(1u32 << retry.min(31))
            .min(self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_from_first_and_stops_at_max() {
        let backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(30));
        let waits: Vec<u64> = (0..8).map(|n| backoff.delay(n).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 30, 30, 30]);
        assert_eq!(backoff.delay(u32::MAX), Duration::from_secs(30));
    }
}
