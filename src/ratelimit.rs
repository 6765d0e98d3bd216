//! Per-source rate limiting for requests that cost work or bytes.
//!
//! A token bucket per source IP address: [`RATE_PER_SECOND`] tokens a
//! second, at most [`BURST`] saved up; each request spends its cost. State
//! is bounded: at most [`MAX_SOURCES`] buckets; when full, buckets that have
//! refilled completely (idle sources) are dropped, and if that frees too
//! little, the least recently used quarter of the buckets goes (a flood
//! from many addresses then resets some sources to a full bucket, which is
//! what they would have with a larger table; the cost stays amortized
//! O(log n) per check). Buckets live in a `BTreeMap`, so which ones are
//! evicted never depends on an OS-seeded hash. Arithmetic is integer
//! milli-tokens, so a check costs a map lookup and a few multiplications.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Instant;

/// Tokens added per second and source.
pub const RATE_PER_SECOND: u64 = 50;
/// Most tokens a source can save up.
pub const BURST: u64 = 100;
/// Most sources tracked.
pub const MAX_SOURCES: usize = 4096;

const MILLI: u64 = 1000;

#[derive(Clone, Copy, Debug)]
struct Bucket {
    milli_tokens: u64,
    touched: Instant,
}

/// Token buckets by source IP.
#[derive(Default)]
pub struct RateLimiter {
    buckets: BTreeMap<IpAddr, Bucket>,
}

impl RateLimiter {
    /// Spends `cost` tokens of `source` at `now`; false (and nothing spent)
    /// when it has too few.
    pub fn allow(&mut self, now: Instant, source: IpAddr, cost: u64) -> bool {
        if !self.buckets.contains_key(&source) && self.buckets.len() >= MAX_SOURCES {
            self.make_room(now);
        }
        let bucket = self.buckets.entry(source).or_insert(Bucket {
            milli_tokens: BURST * MILLI,
            touched: now,
        });
        let elapsed_ms = now.saturating_duration_since(bucket.touched).as_millis() as u64;
        bucket.milli_tokens =
            (bucket.milli_tokens + elapsed_ms.saturating_mul(RATE_PER_SECOND)).min(BURST * MILLI);
        bucket.touched = now;
        let price = cost * MILLI;
        if bucket.milli_tokens < price {
            return false;
        }
        bucket.milli_tokens -= price;
        true
    }

    /// Sources tracked.
    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    fn make_room(&mut self, now: Instant) {
        let full_after_ms = BURST * MILLI / RATE_PER_SECOND;
        self.buckets.retain(|_, bucket| {
            let idle_ms = now.saturating_duration_since(bucket.touched).as_millis() as u64;
            idle_ms < full_after_ms
        });
        if self.buckets.len() > MAX_SOURCES * 3 / 4 {
            let mut by_age: Vec<(Instant, IpAddr)> = self
                .buckets
                .iter()
                .map(|(ip, b)| (b.touched, *ip))
                .collect();
            by_age.sort_unstable();
            for (_, ip) in by_age.into_iter().take(MAX_SOURCES / 4) {
                self.buckets.remove(&ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn ip(n: u32) -> IpAddr {
        IpAddr::from(n.to_be_bytes())
    }

    #[test]
    fn burst_then_steady_rate() {
        let now = Instant::now();
        let mut limiter = RateLimiter::default();
        let allowed = (0..200).filter(|_| limiter.allow(now, ip(1), 1)).count();
        assert_eq!(allowed as u64, BURST);
        assert!(limiter.allow(now, ip(2), 1), "other sources are unaffected");
        let later = now + Duration::from_secs(1);
        let allowed = (0..200).filter(|_| limiter.allow(later, ip(1), 1)).count();
        assert_eq!(allowed as u64, RATE_PER_SECOND);
    }

    #[test]
    fn state_stays_bounded_under_a_flood_of_sources() {
        let now = Instant::now();
        let mut limiter = RateLimiter::default();
        for n in 0..3 * MAX_SOURCES as u32 {
            limiter.allow(now + Duration::from_micros(u64::from(n)), ip(n), 1);
        }
        assert!(limiter.len() <= MAX_SOURCES);
    }
}
