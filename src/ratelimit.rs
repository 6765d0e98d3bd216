//! Per-source rate limiting: for requests that cost work or bytes (by
//! source IP, [`INBOUND`]), and for the pace of our own Mainline queries
//! (by destination IP, with its own [`Limits`]).
//!
//! A token bucket per key: `rate_per_second` tokens a second, at most
//! `burst` saved up; each request spends its cost. State is bounded: at
//! most `max_sources` buckets; when full, buckets that have
//! refilled completely (idle sources) are dropped, and if that frees too
//! little, the least recently used quarter of the buckets goes (a flood
//! from many addresses then resets some sources to a full bucket, which is
//! what they would have with a larger table; the cost stays amortized
//! O(log n) per check). Buckets live in a `BTreeMap`, so which ones are
//! evicted never depends on an OS-seeded hash. Arithmetic is integer
//! milli-tokens, so a check costs a map lookup and a few multiplications.

use std::collections::BTreeMap;

use crate::addr::{prefix_key, source_key};
use std::net::IpAddr;
use std::time::Instant;

/// Tokens added per second and source for inbound requests.
pub const RATE_PER_SECOND: u64 = 50;
/// Most tokens a source can save up for inbound requests.
pub const BURST: u64 = 100;
/// Most inbound sources tracked.
pub const MAX_SOURCES: usize = 4096;
/// The limits on inbound requests per source IP (`protocol-spec.md` §7.2).
pub const INBOUND: Limits = Limits {
    rate_per_second: RATE_PER_SECOND,
    burst: BURST,
    max_sources: MAX_SOURCES,
};

/// The limits on inbound requests per IPv4 /24 and IPv6 /48, the second
/// tier after [`INBOUND`]: four sources' worth (`protocol-spec.md` §7.2).
pub const INBOUND_PER_PREFIX: Limits = Limits {
    rate_per_second: 4 * RATE_PER_SECOND,
    burst: 4 * BURST,
    max_sources: MAX_SOURCES,
};

/// The numbers of one limiter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Tokens added per second and key.
    pub rate_per_second: u64,
    /// Most tokens a key can save up.
    pub burst: u64,
    /// Most keys tracked.
    pub max_sources: usize,
}

const MILLI: u64 = 1000;

#[derive(Clone, Copy, Debug)]
struct Bucket {
    milli_tokens: u64,
    touched: Instant,
}

/// Token buckets by key (a source IP unless said otherwise).
pub struct RateLimiter<K = IpAddr> {
    limits: Limits,
    buckets: BTreeMap<K, Bucket>,
}

impl Default for RateLimiter<IpAddr> {
    fn default() -> Self {
        Self::new(INBOUND)
    }
}

impl<K: Ord + Copy> RateLimiter<K> {
    /// An empty limiter with these limits.
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            buckets: BTreeMap::new(),
        }
    }

    /// Spends `cost` tokens of `source` at `now`; false (and nothing spent)
    /// when it has too few.
    pub fn allow(&mut self, now: Instant, source: K, cost: u64) -> bool {
        let Limits {
            rate_per_second,
            burst,
            max_sources,
        } = self.limits;
        if !self.buckets.contains_key(&source) && self.buckets.len() >= max_sources {
            self.make_room(now);
        }
        let bucket = self.buckets.entry(source).or_insert(Bucket {
            milli_tokens: burst * MILLI,
            touched: now,
        });
        let elapsed_ms = now.saturating_duration_since(bucket.touched).as_millis() as u64;
        bucket.milli_tokens =
            (bucket.milli_tokens + elapsed_ms.saturating_mul(rate_per_second)).min(burst * MILLI);
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
        let Limits {
            rate_per_second,
            burst,
            max_sources,
        } = self.limits;
        let full_after_ms = burst * MILLI / rate_per_second.max(1);
        self.buckets.retain(|_, bucket| {
            let idle_ms = now.saturating_duration_since(bucket.touched).as_millis() as u64;
            idle_ms < full_after_ms
        });
        if self.buckets.len() > max_sources * 3 / 4 {
            let mut by_age: Vec<(Instant, K)> = self
                .buckets
                .iter()
                .map(|(ip, b)| (b.touched, *ip))
                .collect();
            by_age.sort_unstable();
            for (_, ip) in by_age.into_iter().take(max_sources / 4) {
                self.buckets.remove(&ip);
            }
        }
    }
}

/// The one rate-limit point for inbound datagrams (`protocol-spec.md`
/// §7.2): a source is limited by its IP (an IPv6 source by its /64), and a
/// second tier by /24 or /48, so a host or customer with many addresses
/// gets a wider but still bounded share.
pub struct InboundLimiter {
    per_source: RateLimiter,
    per_prefix: RateLimiter,
}

impl Default for InboundLimiter {
    fn default() -> Self {
        Self {
            per_source: RateLimiter::new(INBOUND),
            per_prefix: RateLimiter::new(INBOUND_PER_PREFIX),
        }
    }
}

impl InboundLimiter {
    /// Takes `cost` tokens from `ip`'s source and prefix buckets; false
    /// (the datagram is dropped) when either is short.
    pub fn allow(&mut self, now: Instant, ip: IpAddr, cost: u64) -> bool {
        cost == 0
            || (self.per_source.allow(now, source_key(ip), cost)
                && self.per_prefix.allow(now, prefix_key(ip), cost))
    }

    /// Sources tracked.
    pub fn sources(&self) -> usize {
        self.per_source.len()
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

    #[test]
    fn inbound_datagrams_are_limited_by_source_and_then_by_prefix() {
        let now = Instant::now();
        let mut limiter = InboundLimiter::default();
        let ip = |last: u8| IpAddr::from([192, 0, 2, last]);
        assert!(
            limiter.allow(now, ip(1), 0) && limiter.sources() == 0,
            "free"
        );
        assert!(limiter.allow(now, ip(1), BURST));
        assert!(
            !limiter.allow(now, ip(1), 1),
            "the source's bucket is empty"
        );
        // Three more sources of the /24 use up its four sources' worth.
        for last in 2..=4 {
            assert!(limiter.allow(now, ip(last), BURST));
        }
        assert!(
            !limiter.allow(now, ip(5), 1),
            "the prefix's bucket is empty"
        );
        assert!(limiter.allow(now, IpAddr::from([198, 51, 100, 1]), 1));
        assert_eq!(limiter.sources(), 6, "each source asked is tracked");
    }
}
