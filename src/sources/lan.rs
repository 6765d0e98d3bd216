//! The local network as a member source: when to multicast our beacon,
//! and whom to greet when a beacon is heard.
//!
//! A beacon goes out at join, then on [`BEACON_BACKOFF`] (1 s doubling to
//! 30 s, where it stays), and again soon after our addresses change. A
//! verified beacon of a member we did not know yet (or are not connected
//! to: it restarted, or moved) is answered at once
//! with a unicast hello to its source (so the beacon's sender learns us
//! within one round trip), at most once per [`ANSWER_INTERVAL`] per
//! address and for at most [`MAX_ANSWERED`] addresses at a time.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use log::debug;

use crate::backoff::Backoff;

/// Waits between beacons: 1 s doubling to 30 s.
pub const BEACON_BACKOFF: Backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(30));
/// One answer per address in this long.
pub const ANSWER_INTERVAL: Duration = Duration::from_secs(30);
/// Addresses remembered as answered.
pub const MAX_ANSWERED: usize = 256;
/// Beacons sent without hearing anyone before the quiet is logged.
const QUIET_AFTER: u32 = 4;

/// The LAN source of one meeting.
pub struct LanSource {
    next_beacon_at: Instant,
    last_beacon_at: Option<Instant>,
    beacons_sent: u32,
    heard_anyone: bool,
    answered: BTreeMap<SocketAddr, Instant>,
    /// The tags of the window a beacon was last checked in and of its
    /// neighbours: three HMACs per window, not per beacon.
    tags: Option<(u64, [[u8; 8]; 3])>,
}

impl LanSource {
    /// The source of a meeting joined at `now`; the first beacon is due then.
    pub fn new(now: Instant) -> Self {
        Self {
            next_beacon_at: now,
            last_beacon_at: None,
            beacons_sent: 0,
            heard_anyone: false,
            answered: BTreeMap::new(),
            tags: None,
        }
    }

    /// True if `tag` is the meeting's for `window` or a neighbouring one
    /// (`tag_of(w)` computes window `w`'s), computed once per window.
    pub fn tag_matches(
        &mut self,
        window: u64,
        tag: &[u8; 8],
        tag_of: impl Fn(u64) -> [u8; 8],
    ) -> bool {
        let tags = match self.tags {
            Some((cached, tags)) if cached == window => tags,
            _ => {
                let tags = [
                    tag_of(window.saturating_sub(1)),
                    tag_of(window),
                    tag_of(window + 1),
                ];
                self.tags = Some((window, tags));
                tags
            }
        };
        tags.contains(tag)
    }

    /// True when a beacon is due at `now`; schedules the next.
    pub fn beacon_due(&mut self, now: Instant) -> bool {
        if now < self.next_beacon_at {
            return false;
        }
        self.last_beacon_at = Some(now);
        self.next_beacon_at = now + BEACON_BACKOFF.delay(self.beacons_sent);
        self.beacons_sent = self.beacons_sent.saturating_add(1);
        if self.beacons_sent == QUIET_AFTER && !self.heard_anyone {
            debug!(
                "lan: {QUIET_AFTER} beacons sent and none heard: no other member on this \
                 network yet, or it drops multicast"
            );
        }
        true
    }

    /// Our addresses changed: the next beacon goes at most a second after
    /// the last one, then the schedule backs off anew.
    pub fn addresses_changed(&mut self) {
        self.beacons_sent = 0;
        if let Some(last) = self.last_beacon_at {
            self.next_beacon_at = self.next_beacon_at.min(last + BEACON_BACKOFF.first);
        }
    }

    /// A verified beacon came from `from`; true if it should be answered
    /// with a hello now (the caller knows whether its sender is new).
    pub fn heard(&mut self, now: Instant, from: SocketAddr) -> bool {
        self.heard_anyone = true;
        self.answered
            .retain(|_, at| now.saturating_duration_since(*at) < ANSWER_INTERVAL);
        if self.answered.contains_key(&from) || self.answered.len() >= MAX_ANSWERED {
            return false;
        }
        self.answered.insert(from, now);
        true
    }

    /// When the next beacon is due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        Some(self.next_beacon_at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn beacons_back_off_to_thirty_seconds_and_restart_on_a_new_address() {
        let now = Instant::now();
        let mut lan = LanSource::new(now);
        let mut t = now;
        let mut sent_at = Vec::new();
        while t < now + Duration::from_secs(100) {
            if lan.beacon_due(t) {
                sent_at.push((t - now).as_secs());
            }
            t = lan.poll_timeout().unwrap();
        }
        assert_eq!(sent_at, [0, 1, 3, 7, 15, 31, 61, 91]);
        lan.addresses_changed();
        let last = now + Duration::from_secs(91);
        assert_eq!(lan.poll_timeout(), Some(last + Duration::from_secs(1)));
    }

    #[test]
    fn answers_once_per_address_and_interval_bounded() {
        let now = Instant::now();
        let mut lan = LanSource::new(now);
        let a: SocketAddr = "10.0.0.2:4000".parse().unwrap();
        assert!(lan.heard(now, a));
        assert!(!lan.heard(now + Duration::from_secs(1), a));
        assert!(lan.heard(now + ANSWER_INTERVAL, a));
        for port in 0..2 * MAX_ANSWERED as u16 {
            lan.heard(
                now + ANSWER_INTERVAL,
                SocketAddr::from(([10, 0, 0, 3], port)),
            );
        }
        assert!(lan.answered.len() <= MAX_ANSWERED);
    }
}
