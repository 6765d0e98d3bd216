//! The relaying side, `protocol-spec.md` §12.2 and §12.5: a table of
//! bindings, each an address that presented a token (and proved with a
//! cookie, checked by the caller, that it receives there), paired with the
//! one other address that presented the same token; data from one side
//! goes to the other, byte for byte.
//!
//! Sans-IO and pure: [`RelayTable::bind`] and [`RelayTable::forward`]
//! take `now` and return what to send; expired bindings are swept when
//! the table is touched, so an idle relay has no timer. Every limit
//! refuses or drops; nothing is ever queued. Quotas hold per source (an
//! IPv4 address or IPv6 /64) and per prefix (/24, /48), new bindings are
//! rate-limited per source, and a full table makes room by evicting the
//! oldest binding still waiting for its partner.

use crate::addr::{prefix_key, source_key};
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use super::wire::Token;
use crate::api::{RelayLimits, RelayRefusal};
use crate::ratelimit::{Limits, RateLimiter};
use crate::rng::Rng;

/// An unpaired binding younger than this is never evicted to make room:
/// its partner's bind is usually a round trip behind.
pub const UNPAIRED_GRACE: Duration = Duration::from_secs(10);

/// What the relay says to a bind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bound {
    /// The binder's channel.
    pub channel: u32,
    /// Seconds the binding lives unless bound again.
    pub lifetime_s: u16,
    /// The pair's rate limit in KiB per second.
    pub rate_kib: u16,
}

/// Why a data frame was not forwarded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ForwardDrop {
    /// No binding has this channel at this source address.
    UnknownChannel,
    /// The binding's partner has not bound yet.
    Unpaired,
    /// Over the pair's or the relay's rate.
    RateLimited,
}

#[derive(Clone, Copy, Debug)]
struct Binding {
    addr: SocketAddr,
    token: Token,
    bound_at: Instant,
    active_at: Instant,
}

/// Every binding of one relay.
pub struct RelayTable {
    config: RelayLimits,
    rng: Rng,
    bindings: BTreeMap<u32, Binding>,
    /// The (at most two) channels bound under each token.
    by_token: BTreeMap<Token, Vec<u32>>,
    pair_rate: RateLimiter<Token>,
    total_rate: RateLimiter<()>,
    /// New bindings per source key, in sixtieths of a binding.
    new_bindings: RateLimiter<IpAddr>,
}

impl RelayTable {
    /// An empty table with these limits; channel numbers come from `rng`.
    pub fn new(config: RelayLimits, rng: Rng) -> Self {
        let limits = |rate, burst, max_sources| Limits {
            rate_per_second: rate,
            burst,
            max_sources,
        };
        Self {
            config,
            rng,
            bindings: BTreeMap::new(),
            by_token: BTreeMap::new(),
            pair_rate: RateLimiter::new(limits(
                config.pair_rate,
                config.pair_burst,
                config.max_pairs,
            )),
            total_rate: RateLimiter::new(limits(config.total_rate, config.total_burst, 1)),
            new_bindings: RateLimiter::new(limits(
                config.binds_per_minute,
                config.binds_burst * 60,
                crate::ratelimit::MAX_SOURCES,
            )),
        }
    }

    /// Bindings held.
    pub fn len(&self) -> usize {
        self.bindings.len()
    }

    /// The most pairs this table holds.
    #[cfg(test)]
    pub fn max_pairs(&self) -> usize {
        self.config.max_pairs
    }

    /// Binds `source` under `token`, or refreshes its binding. The caller
    /// has checked the source's cookie, and the token where it can (a
    /// member relay).
    pub fn bind(
        &mut self,
        now: Instant,
        source: SocketAddr,
        token: Token,
    ) -> Result<Bound, RelayRefusal> {
        self.sweep(now);
        let channels = self.by_token.get(&token).cloned().unwrap_or_default();
        if let Some(&channel) = channels.iter().find(|c| self.addr_of(**c) == Some(source)) {
            if let Some(binding) = self.bindings.get_mut(&channel) {
                binding.bound_at = now;
            }
            return Ok(self.bound(channel));
        }
        if channels.len() >= 2 {
            return Err(RelayRefusal::TokenTaken);
        }
        if self.bindings_from(source.ip(), source_key) >= self.config.max_per_ip
            || self.bindings_from(source.ip(), prefix_key) >= self.config.max_per_prefix
        {
            return Err(RelayRefusal::TooManyFromSource);
        }
        if channels.is_empty()
            && self.by_token.len() >= self.config.max_pairs
            && !self.evict_unpaired(now)
        {
            return Err(RelayRefusal::Full);
        }
        if !self.new_bindings.allow(now, source_key(source.ip()), 60) {
            return Err(RelayRefusal::TooFast);
        }
        let channel = self.fresh_channel();
        self.bindings.insert(
            channel,
            Binding {
                addr: source,
                token,
                bound_at: now,
                active_at: now,
            },
        );
        self.by_token.entry(token).or_default().push(channel);
        Ok(self.bound(channel))
    }

    /// Ends `source`'s binding on `channel` under `token`; anything else
    /// is ignored (false).
    pub fn release(&mut self, source: SocketAddr, token: Token, channel: u32) -> bool {
        let theirs = self
            .bindings
            .get(&channel)
            .is_some_and(|b| b.addr == source && b.token == token);
        if theirs {
            self.remove(channel);
        }
        theirs
    }

    /// A data frame of `len` payload bytes from `source` on `channel`:
    /// where to send it, and on which channel.
    pub fn forward(
        &mut self,
        now: Instant,
        source: SocketAddr,
        channel: u32,
        len: usize,
    ) -> Result<(SocketAddr, u32), ForwardDrop> {
        let binding = *self
            .bindings
            .get(&channel)
            .filter(|b| b.addr == source)
            .ok_or(ForwardDrop::UnknownChannel)?;
        if self.expired(now, &binding) {
            self.remove(channel);
            return Err(ForwardDrop::UnknownChannel);
        }
        let partner = self
            .by_token
            .get(&binding.token)
            .and_then(|chs| chs.iter().copied().find(|c| *c != channel))
            .ok_or(ForwardDrop::Unpaired)?;
        let partner_binding = *self.bindings.get(&partner).ok_or(ForwardDrop::Unpaired)?;
        if self.expired(now, &partner_binding) {
            self.remove(partner);
            return Err(ForwardDrop::Unpaired);
        }
        let partner_addr = partner_binding.addr;
        let cost = len as u64;
        if !self.pair_rate.allow(now, binding.token, cost) || !self.total_rate.allow(now, (), cost)
        {
            return Err(ForwardDrop::RateLimited);
        }
        for ch in [channel, partner] {
            if let Some(b) = self.bindings.get_mut(&ch) {
                b.active_at = now;
            }
        }
        Ok((partner_addr, partner))
    }

    fn bound(&self, channel: u32) -> Bound {
        Bound {
            channel,
            lifetime_s: u16::try_from(self.config.lifetime.as_secs()).unwrap_or(u16::MAX),
            rate_kib: u16::try_from(self.config.pair_rate / 1024).unwrap_or(u16::MAX),
        }
    }

    fn addr_of(&self, channel: u32) -> Option<SocketAddr> {
        self.bindings.get(&channel).map(|b| b.addr)
    }

    /// Bindings whose source has `ip`'s key (`source_key`: its IPv4 address
    /// or IPv6 /64; `prefix_key`: its /24 or /48).
    fn bindings_from(&self, ip: IpAddr, key_of: fn(IpAddr) -> IpAddr) -> usize {
        let key = key_of(ip);
        self.bindings
            .values()
            .filter(|b| key_of(b.addr.ip()) == key)
            .count()
    }

    /// Removes the oldest binding still waiting for its partner past
    /// [`UNPAIRED_GRACE`]; false if there is none.
    fn evict_unpaired(&mut self, now: Instant) -> bool {
        let oldest = self
            .by_token
            .values()
            .filter(|channels| channels.len() == 1)
            .filter_map(|channels| {
                channels
                    .first()
                    .and_then(|c| Some((*c, self.bindings.get(c)?)))
            })
            .filter(|(_, b)| now >= b.bound_at.max(b.active_at) + UNPAIRED_GRACE)
            .min_by_key(|(c, b)| (b.bound_at, *c))
            .map(|(c, _)| c);
        match oldest {
            Some(channel) => {
                self.remove(channel);
                true
            }
            None => false,
        }
    }

    fn fresh_channel(&mut self) -> u32 {
        loop {
            let channel = u32::from_be_bytes(self.rng.bytes());
            if channel != 0 && !self.bindings.contains_key(&channel) {
                return channel;
            }
        }
    }

    fn expired(&self, now: Instant, binding: &Binding) -> bool {
        now >= binding.bound_at + self.config.lifetime
            || now >= binding.active_at + self.config.idle
    }

    fn sweep(&mut self, now: Instant) {
        let expired: Vec<u32> = self
            .bindings
            .iter()
            .filter(|(_, b)| self.expired(now, b))
            .map(|(c, _)| *c)
            .collect();
        for channel in expired {
            self.remove(channel);
        }
    }

    fn remove(&mut self, channel: u32) {
        let Some(binding) = self.bindings.remove(&channel) else {
            return;
        };
        if let Some(channels) = self.by_token.get_mut(&binding.token) {
            channels.retain(|c| *c != channel);
            if channels.is_empty() {
                self.by_token.remove(&binding.token);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn table(config: RelayLimits) -> RelayTable {
        RelayTable::new(config, Rng::from_seed([3; 32]))
    }

    const A: &str = "198.51.100.1:4000";
    const B: &str = "203.0.113.9:5000";

    #[test]
    fn two_binders_of_one_token_are_paired_and_forwarded_to_each_other() {
        let now = Instant::now();
        let mut relay = table(RelayLimits::OPEN);
        let a = relay.bind(now, addr(A), [1; 16]).unwrap();
        assert_eq!(
            relay.forward(now, addr(A), a.channel, 100),
            Err(ForwardDrop::Unpaired)
        );
        let b = relay.bind(now, addr(B), [1; 16]).unwrap();
        assert_ne!(a.channel, b.channel);
        assert_eq!(
            relay.forward(now, addr(A), a.channel, 100),
            Ok((addr(B), b.channel))
        );
        assert_eq!(
            relay.forward(now, addr(B), b.channel, 100),
            Ok((addr(A), a.channel))
        );
    }

    #[test]
    fn a_channel_is_only_usable_from_the_address_that_bound_it() {
        let now = Instant::now();
        let mut relay = table(RelayLimits::OPEN);
        let a = relay.bind(now, addr(A), [1; 16]).unwrap();
        relay.bind(now, addr(B), [1; 16]).unwrap();
        let spoofer = addr("192.0.2.66:4000");
        assert_eq!(
            relay.forward(now, spoofer, a.channel, 10),
            Err(ForwardDrop::UnknownChannel)
        );
        assert_eq!(
            relay.forward(now, addr(A), a.channel ^ 1, 10),
            Err(ForwardDrop::UnknownChannel)
        );
    }

    #[test]
    fn binding_again_refreshes_and_a_third_address_is_refused() {
        let now = Instant::now();
        let mut relay = table(RelayLimits::OPEN);
        let a = relay.bind(now, addr(A), [1; 16]).unwrap();
        assert_eq!(relay.bind(now, addr(A), [1; 16]), Ok(a));
        relay.bind(now, addr(B), [1; 16]).unwrap();
        assert_eq!(
            relay.bind(now, addr("192.0.2.66:1"), [1; 16]),
            Err(RelayRefusal::TokenTaken)
        );
        assert_eq!(relay.len(), 2);
    }

    #[test]
    fn pairs_and_bindings_per_ip_are_bounded() {
        let now = Instant::now();
        let config = RelayLimits {
            max_pairs: 3,
            max_per_ip: 2,
            ..RelayLimits::OPEN
        };
        let mut relay = table(config);
        for i in 0..2u8 {
            relay
                .bind(
                    now,
                    addr(&format!("192.0.2.1:{}", 1000 + u16::from(i))),
                    [i; 16],
                )
                .unwrap();
        }
        assert_eq!(
            relay.bind(now, addr("192.0.2.1:2000"), [9; 16]),
            Err(RelayRefusal::TooManyFromSource)
        );
        relay.bind(now, addr("192.0.2.2:1"), [2; 16]).unwrap();
        assert_eq!(
            relay.bind(now, addr("192.0.2.3:1"), [3; 16]),
            Err(RelayRefusal::Full),
            "every unpaired binding is within its grace"
        );
        // The other side of an existing pair still fits.
        assert!(relay.bind(now, addr("192.0.2.4:1"), [2; 16]).is_ok());
    }

    #[test]
    fn a_full_table_evicts_the_oldest_unpaired_binding_past_its_grace() {
        let now = Instant::now();
        let config = RelayLimits {
            max_pairs: 2,
            ..RelayLimits::OPEN
        };
        let mut relay = table(config);
        relay.bind(now, addr(A), [1; 16]).unwrap();
        relay.bind(now, addr(B), [1; 16]).unwrap();
        let lonely = relay.bind(now, addr("192.0.2.9:1"), [2; 16]).unwrap();
        let later = now + UNPAIRED_GRACE;
        let newcomer = relay.bind(later, addr("192.0.2.10:1"), [3; 16]);
        assert!(newcomer.is_ok(), "{newcomer:?}");
        assert_eq!(relay.len(), 3);
        assert_eq!(
            relay.forward(later, addr("192.0.2.9:1"), lonely.channel, 1),
            Err(ForwardDrop::UnknownChannel),
            "the unpaired binding went"
        );
        // Paired bindings are never evicted.
        let c = relay.bind(later, addr("192.0.2.12:1"), [3; 16]).unwrap();
        let much_later = later + UNPAIRED_GRACE;
        assert!(
            relay
                .forward(much_later, addr("192.0.2.12:1"), c.channel, 1)
                .is_ok()
        );
        let a = relay.bind(much_later, addr(A), [1; 16]).unwrap();
        assert!(relay.forward(much_later, addr(A), a.channel, 1).is_ok());
        assert_eq!(
            relay.bind(much_later, addr("192.0.2.11:1"), [4; 16]),
            Err(RelayRefusal::Full)
        );
    }

    #[test]
    fn one_slash_24_or_slash_48_holds_at_most_its_prefix_quota() {
        let now = Instant::now();
        let mut relay = table(RelayLimits::OPEN);
        let mut held = 0;
        // Distinct addresses of one /24, each within its own per-IP quota,
        // each pairing with itself from a second port.
        for host in 1..=100u8 {
            for port in [1, 2] {
                let source = addr(&format!("192.0.2.{host}:{port}"));
                if relay.bind(now, source, [host; 16]).is_ok() {
                    held += 1;
                }
            }
        }
        assert_eq!(held, RelayLimits::OPEN.max_per_prefix);
        let mut held = 0;
        for net in 0..100u16 {
            let source = addr(&format!("[2001:db8:7:{net:x}::1]:1"));
            if relay.bind(now, source, [net as u8 ^ 0x80; 16]).is_ok() {
                held += 1;
            }
        }
        assert_eq!(held, RelayLimits::OPEN.max_per_prefix, "one /48, many /64s");
    }

    #[test]
    fn new_bindings_from_one_source_are_rate_limited() {
        let now = Instant::now();
        let config = RelayLimits {
            max_per_ip: 1000,
            max_per_prefix: 1000,
            lifetime: Duration::from_secs(1),
            ..RelayLimits::OPEN
        };
        let mut relay = table(config);
        let made = (0..100u8)
            .filter(|i| {
                relay
                    .bind(
                        now,
                        addr(&format!("192.0.2.1:{}", 1000 + u16::from(*i))),
                        [*i; 16],
                    )
                    .is_ok()
            })
            .count();
        assert_eq!(made as u64, config.binds_burst);
        assert_eq!(
            relay.bind(now, addr("192.0.2.1:9"), [200; 16]),
            Err(RelayRefusal::TooFast)
        );
        let later = now + Duration::from_secs(60 / config.binds_per_minute);
        assert!(relay.bind(later, addr("192.0.2.1:9"), [200; 16]).is_ok());
    }

    #[test]
    fn a_partner_past_its_lifetime_is_not_forwarded_to() {
        let now = Instant::now();
        let mut relay = table(RelayLimits::OPEN);
        let a = relay.bind(now, addr(A), [1; 16]).unwrap();
        relay.bind(now, addr(B), [1; 16]).unwrap();
        // A refreshes; B does not.
        let late = now + RelayLimits::OPEN.lifetime - Duration::from_secs(1);
        let mut at = now;
        while at < late {
            at += Duration::from_secs(20);
            assert!(relay.forward(at.min(late), addr(A), a.channel, 1).is_ok());
        }
        relay.bind(late, addr(A), [1; 16]).unwrap();
        let after = now + RelayLimits::OPEN.lifetime;
        assert_eq!(
            relay.forward(after, addr(A), a.channel, 1),
            Err(ForwardDrop::Unpaired),
            "B's binding ended"
        );
        assert_eq!(relay.len(), 1);
    }

    #[test]
    fn an_ipv6_slash_64_is_one_source() {
        let now = Instant::now();
        let config = RelayLimits {
            max_per_ip: 2,
            ..RelayLimits::OPEN
        };
        let mut relay = table(config);
        relay
            .bind(now, addr("[2001:db8:0:1::1]:1"), [1; 16])
            .unwrap();
        relay
            .bind(now, addr("[2001:db8:0:1::2]:1"), [2; 16])
            .unwrap();
        assert_eq!(
            relay.bind(now, addr("[2001:db8:0:1:ffff::3]:1"), [3; 16]),
            Err(RelayRefusal::TooManyFromSource),
            "a third address of the same /64"
        );
        assert!(
            relay
                .bind(now, addr("[2001:db8:0:2::1]:1"), [3; 16])
                .is_ok(),
            "another /64 is another source"
        );
    }

    #[test]
    fn a_pair_over_its_rate_is_dropped_not_queued_and_others_are_unaffected() {
        let now = Instant::now();
        let config = RelayLimits {
            pair_rate: 10_000,
            pair_burst: 10_000,
            ..RelayLimits::OPEN
        };
        let mut relay = table(config);
        let a = relay.bind(now, addr(A), [1; 16]).unwrap();
        relay.bind(now, addr(B), [1; 16]).unwrap();
        let c = relay.bind(now, addr("192.0.2.7:1"), [2; 16]).unwrap();
        relay.bind(now, addr("192.0.2.8:1"), [2; 16]).unwrap();
        let sent = (0..20)
            .filter(|_| relay.forward(now, addr(A), a.channel, 1000).is_ok())
            .count();
        assert_eq!(sent, 10);
        assert!(
            relay
                .forward(now, addr("192.0.2.7:1"), c.channel, 1000)
                .is_ok()
        );
        // A second later the pair has 10 000 bytes again.
        let later = now + Duration::from_secs(1);
        assert!(relay.forward(later, addr(A), a.channel, 1000).is_ok());
    }

    #[test]
    fn an_unlimited_relay_forwards_a_burst_of_a_gigabyte_without_a_drop() {
        let now = Instant::now();
        let config = RelayLimits {
            pair_rate: RelayLimits::UNLIMITED_RATE,
            pair_burst: 2 * RelayLimits::UNLIMITED_RATE,
            total_rate: RelayLimits::UNLIMITED_RATE,
            total_burst: 2 * RelayLimits::UNLIMITED_RATE,
            ..RelayLimits::OPEN
        };
        let mut relay = table(config);
        let a = relay.bind(now, addr(A), [1; 16]).unwrap();
        relay.bind(now, addr(B), [1; 16]).unwrap();
        let sent = (0..1_000_000)
            .filter(|_| relay.forward(now, addr(A), a.channel, 1000).is_ok())
            .count();
        assert_eq!(sent, 1_000_000);
        // The default drops most of it.
        let mut relay = table(RelayLimits::OPEN);
        let a = relay.bind(now, addr(A), [1; 16]).unwrap();
        relay.bind(now, addr(B), [1; 16]).unwrap();
        let sent = (0..1_000_000)
            .filter(|_| relay.forward(now, addr(A), a.channel, 1000).is_ok())
            .count();
        assert!(sent <= 600, "{sent}");
    }

    #[test]
    fn bindings_end_when_idle_past_their_lifetime_or_released() {
        let now = Instant::now();
        let mut relay = table(RelayLimits::OPEN);
        let a = relay.bind(now, addr(A), [1; 16]).unwrap();
        relay.bind(now, addr(B), [1; 16]).unwrap();
        // Traffic keeps it alive past the idle timeout...
        let mut at = now;
        while at < now + Duration::from_secs(120) {
            at += Duration::from_secs(10);
            assert!(relay.forward(at, addr(A), a.channel, 10).is_ok());
        }
        // ...until its lifetime ends without a fresh bind.
        let end = now + RelayLimits::OPEN.lifetime;
        assert_eq!(
            relay.forward(end, addr(A), a.channel, 10),
            Err(ForwardDrop::UnknownChannel)
        );
        // Idle bindings go at the next bind.
        relay
            .bind(end + RelayLimits::OPEN.idle, addr(A), [5; 16])
            .unwrap();
        assert_eq!(relay.len(), 1);
        let c = relay
            .bind(end + RelayLimits::OPEN.idle, addr(B), [5; 16])
            .unwrap();
        assert!(
            !relay.release(addr(A), [5; 16], c.channel),
            "not A's channel"
        );
        assert_eq!(relay.len(), 2);
        assert!(relay.release(addr(B), [5; 16], c.channel));
        assert_eq!(relay.len(), 1);
    }
}
