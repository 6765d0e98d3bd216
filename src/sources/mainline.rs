//! The Mainline DHT as a member source: which infohashes to look up and
//! announce under, when, and which addresses to greet with a hello.
//!
//! Time is cut into UTC windows of [`WINDOW`] (one hour); each has its own
//! infohash (`Meeting::infohash`). A lookup covers every window that
//! overlaps `[now − LOOKUP_SLACK, now + LOOKUP_SLACK]` and an announce
//! every window that overlaps `[now − LOOKUP_SLACK, now + ANNOUNCE_AHEAD]`,
//! so members whose clocks differ by minutes, or who join either side of a
//! boundary, still share a window. Lookups run as soon as Mainline is
//! bootstrapped, then on [`LOOKUP_BACKOFF`] (250 ms doubling to 60 s), so
//! members who join together meet within seconds and an idle meeting
//! costs one lookup a minute. After a lookup the record is announced to
//! the closest nodes that gave a token, when that window was never
//! announced, when our addresses changed, or every [`REANNOUNCE`] (peers
//! live 30–45 min on the strictest storing nodes).
//!
//! Peers from `values` become candidates: at most [`MAX_NEW_CANDIDATES`]
//! new ones per lookup; each is greeted with a hello at each offset of
//! [`HELLO_SCHEDULE`], once per window, unless it answered first. Our
//! own public address, unusable addresses, and addresses narrower in
//! scope than the storing node that listed them (a private address from a
//! public node) are skipped.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use log::debug;

use crate::addr::Family;
use crate::backoff::Backoff;
use crate::mainline::engine::LookupId;
use crate::mainline::krpc::Id;

/// Length of an infohash window.
pub const WINDOW: Duration = Duration::from_secs(3600);
/// Clock difference and boundary slack of lookups.
pub const LOOKUP_SLACK: Duration = Duration::from_secs(5 * 60);
/// Announces start this long before their window does.
pub const ANNOUNCE_AHEAD: Duration = Duration::from_secs(10 * 60);
/// Waits between lookups: 250 ms doubling to 60 s (members who join
/// together announce within a lookup of each other, so the second lookup
/// soon after finds the other).
pub const LOOKUP_BACKOFF: Backoff =
    Backoff::new(Duration::from_millis(250), Duration::from_secs(60));
/// A window's announce is repeated when it is older than this.
pub const REANNOUNCE: Duration = Duration::from_secs(10 * 60);
/// Offsets, from first sight, of the hellos to one candidate.
pub const HELLO_SCHEDULE: [Duration; 3] = [
    Duration::ZERO,
    Duration::from_millis(300),
    Duration::from_secs(1),
];
/// New candidates taken from one lookup.
pub const MAX_NEW_CANDIDATES: usize = 32;
/// Candidates with hellos still to send.
pub const MAX_CANDIDATES: usize = 64;
/// Addresses remembered as greeted in the current windows.
pub const MAX_GREETED: usize = 1024;

/// What the Mainline source asks the node to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Look these infohashes up (one lookup each), for these windows.
    LookUp(Vec<(u64, Id)>),
    /// Announce under this window's infohash to these storing nodes.
    Announce(Id, Vec<(SocketAddr, Vec<u8>)>),
    /// Send a hello to each address.
    Hello(Vec<SocketAddr>),
}

struct Candidate {
    first_seen: Instant,
    sent: usize,
}

/// The Mainline source of one meeting.
pub struct MainlineSource {
    infohash: Box<dyn Fn(u64) -> Id>,
    /// Lookups under way: the family's client and the window.
    lookups: BTreeMap<LookupId, (Family, u64)>,
    next_lookup_at: Option<Instant>,
    lookups_done: u32,
    /// When each family last announced each window (BEP 32: the IPv4 and
    /// IPv6 DHTs each need the announce).
    announced: BTreeMap<(Family, u64), Instant>,
    addresses_changed: bool,
    candidates: BTreeMap<SocketAddr, Candidate>,
    greeted: BTreeSet<(u64, SocketAddr)>,
    new_this_lookup: BTreeMap<LookupId, usize>,
}

/// ⌊Unix seconds / WINDOW⌋ at `unix_ms`.
pub fn window_at(unix_ms: u64) -> u64 {
    unix_ms / WINDOW.as_millis() as u64
}

/// Windows that overlap `[unix_ms − before, unix_ms + after]`.
fn windows(unix_ms: u64, before: Duration, after: Duration) -> Vec<u64> {
    let first = window_at(unix_ms.saturating_sub(before.as_millis() as u64));
    let last = window_at(unix_ms.saturating_add(after.as_millis() as u64));
    (first..=last).collect()
}

/// True if a peer listed by the storing node at `listed_by` is worth a hello.
pub fn usable(peer: SocketAddr, listed_by: SocketAddr) -> bool {
    crate::addr::usable_from(peer, listed_by.ip())
}

impl MainlineSource {
    /// The source for a meeting whose infohash of window `w` is `infohash(w)`;
    /// the first lookup is due at `now`.
    pub fn new(now: Instant, infohash: Box<dyn Fn(u64) -> Id>) -> Self {
        Self {
            infohash,
            lookups: BTreeMap::new(),
            next_lookup_at: Some(now),
            lookups_done: 0,
            announced: BTreeMap::new(),
            addresses_changed: false,
            candidates: BTreeMap::new(),
            greeted: BTreeSet::new(),
            new_this_lookup: BTreeMap::new(),
        }
    }

    /// Mainline just became usable: look up now unless a lookup is under way.
    pub fn lookup_now(&mut self, now: Instant) {
        if self.lookups.is_empty() {
            self.next_lookup_at = Some(now);
        }
    }

    /// Our addresses changed: the next lookup re-announces.
    pub fn addresses_changed(&mut self) {
        self.addresses_changed = true;
    }

    /// The lookup `id` was started in `family`'s DHT for `window`.
    pub fn lookup_started(&mut self, id: LookupId, family: Family, window: u64) {
        self.lookups.insert(id, (family, window));
    }

    /// True if `id` is one of this meeting's lookups.
    pub fn owns_lookup(&self, id: LookupId) -> bool {
        self.lookups.contains_key(&id)
    }

    /// Lookups when due (only while `ready`, i.e. Mainline is bootstrapped)
    /// and the hellos due at `now`.
    pub fn handle_timeout(&mut self, now: Instant, unix_ms: u64, ready: bool) -> Vec<Action> {
        let mut actions = Vec::new();
        if ready && self.next_lookup_at.is_some_and(|at| now >= at) {
            self.next_lookup_at = None;
            let due: Vec<(u64, Id)> = windows(unix_ms, LOOKUP_SLACK, LOOKUP_SLACK)
                .into_iter()
                .map(|w| (w, (self.infohash)(w)))
                .collect();
            debug!("mainline: looking up {} window(s)", due.len());
            actions.push(Action::LookUp(due));
        }
        let hellos = self.due_hellos(now);
        if !hellos.is_empty() {
            actions.push(Action::Hello(hellos));
        }
        actions
    }

    /// A lookup listed `peers` (stored by the node at `listed_by`); `ours`
    /// is our public address, never greeted. Returns hellos due now.
    pub fn on_values(
        &mut self,
        now: Instant,
        id: LookupId,
        listed_by: SocketAddr,
        peers: &[SocketAddr],
        ours: &[SocketAddr],
    ) -> Vec<SocketAddr> {
        let Some(&(_, window)) = self.lookups.get(&id) else {
            return Vec::new();
        };
        for &peer in peers {
            if ours.contains(&peer) || !usable(peer, listed_by) {
                continue;
            }
            let taken = self.new_this_lookup.entry(id).or_default();
            if *taken >= MAX_NEW_CANDIDATES
                || self.candidates.len() >= MAX_CANDIDATES
                || self.greeted.len() >= MAX_GREETED
            {
                debug!("mainline: candidate {peer} over the limits; skipped");
                continue;
            }
            if !self.greeted.insert((window, peer)) || self.candidates.contains_key(&peer) {
                continue;
            }
            *taken += 1;
            debug!("mainline: candidate {peer}");
            self.candidates.insert(
                peer,
                Candidate {
                    first_seen: now,
                    sent: 0,
                },
            );
        }
        self.due_hellos(now)
    }

    /// A verified member answered from `addr`: no more hellos to it.
    pub fn verified(&mut self, addr: SocketAddr) {
        self.candidates.remove(&addr);
    }

    /// A lookup of ours finished; returns the announce it calls for.
    pub fn lookup_done(
        &mut self,
        now: Instant,
        unix_ms: u64,
        id: LookupId,
        storers: Vec<(SocketAddr, Vec<u8>)>,
    ) -> Option<Action> {
        let (family, window) = self.lookups.remove(&id)?;
        self.new_this_lookup.remove(&id);
        if self.lookups.is_empty() {
            self.next_lookup_at = Some(now + LOOKUP_BACKOFF.delay(self.lookups_done));
            self.lookups_done = self.lookups_done.saturating_add(1);
        }
        let current = windows(unix_ms, LOOKUP_SLACK, ANNOUNCE_AHEAD);
        self.announced.retain(|(_, w), _| current.contains(w));
        self.greeted.retain(|(w, _)| current.contains(w));
        if !current.contains(&window) || storers.is_empty() {
            return None;
        }
        let due = self.addresses_changed
            || self
                .announced
                .get(&(family, window))
                .is_none_or(|at| now.saturating_duration_since(*at) >= REANNOUNCE);
        if !due {
            return None;
        }
        if self.lookups.is_empty() {
            self.addresses_changed = false;
        }
        self.announced.insert((family, window), now);
        debug!(
            "mainline: announcing window {window} to {} {family} nodes",
            storers.len()
        );
        Some(Action::Announce((self.infohash)(window), storers))
    }

    /// None of the announce under `info_hash` to `family`'s nodes went
    /// out (each met its node's pace, as when two windows' storers are the
    /// same nodes): it is due again after the next lookup, not only after
    /// [`REANNOUNCE`].
    pub fn announce_unsent(&mut self, family: Family, info_hash: Id) {
        let infohash = &self.infohash;
        self.announced.retain(|(f, window), _| {
            let unsent = *f == family && infohash(*window) == info_hash;
            if unsent {
                debug!(
                    "mainline: announce of window {window} not sent; again after the next lookup"
                );
            }
            !unsent
        });
    }

    /// When [`handle_timeout`](Self::handle_timeout) must next run; a due
    /// lookup counts only when `ready` (else the bootstrap wakes us).
    pub fn poll_timeout(&self, ready: bool) -> Option<Instant> {
        let hello = self
            .candidates
            .values()
            .filter_map(|c| {
                HELLO_SCHEDULE
                    .get(c.sent)
                    .map(|offset| c.first_seen + *offset)
            })
            .min();
        let lookup = self.next_lookup_at.filter(|_| ready);
        [lookup, hello].into_iter().flatten().min()
    }

    fn due_hellos(&mut self, now: Instant) -> Vec<SocketAddr> {
        let mut due = Vec::new();
        for (addr, candidate) in &mut self.candidates {
            if HELLO_SCHEDULE
                .get(candidate.sent)
                .is_some_and(|offset| now >= candidate.first_seen + *offset)
            {
                candidate.sent += 1;
                due.push(*addr);
            }
        }
        self.candidates.retain(|_, c| c.sent < HELLO_SCHEDULE.len());
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR_MS: u64 = 3_600_000;

    fn source(now: Instant) -> MainlineSource {
        MainlineSource::new(now, Box::new(|w| [w as u8; 20]))
    }

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn windows_widen_near_a_boundary() {
        let mid = 10 * HOUR_MS + HOUR_MS / 2;
        assert_eq!(windows(mid, LOOKUP_SLACK, LOOKUP_SLACK), [10]);
        let early = 10 * HOUR_MS + 60_000;
        assert_eq!(windows(early, LOOKUP_SLACK, LOOKUP_SLACK), [9, 10]);
        let late = 11 * HOUR_MS - 8 * 60_000;
        assert_eq!(windows(late, LOOKUP_SLACK, LOOKUP_SLACK), [10]);
        assert_eq!(windows(late, LOOKUP_SLACK, ANNOUNCE_AHEAD), [10, 11]);
    }

    #[test]
    fn lookups_wait_for_bootstrap_then_back_off() {
        let now = Instant::now();
        let mut s = source(now);
        let unix = 10 * HOUR_MS + HOUR_MS / 2;
        assert!(s.handle_timeout(now, unix, false).is_empty(), "not ready");
        let actions = s.handle_timeout(now, unix, true);
        assert_eq!(actions, [Action::LookUp(vec![(10, [10; 20])])]);
        let mut t = now;
        let mut waits = Vec::new();
        for id in 0..10 {
            s.lookup_started(id, Family::V4, 10);
            s.lookup_done(t, unix, id, Vec::new());
            let next = s.poll_timeout(true).unwrap();
            waits.push((next - t).as_millis());
            t = next;
        }
        assert_eq!(
            waits,
            [250, 500, 1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000]
        );
    }

    #[test]
    fn announces_when_due_and_again_after_reannounce() {
        let now = Instant::now();
        let unix = 10 * HOUR_MS + HOUR_MS / 2;
        let mut s = source(now);
        let storers = vec![(addr("192.0.2.1:6881"), b"t".to_vec())];
        s.lookup_started(1, Family::V4, 10);
        assert_eq!(
            s.lookup_done(now, unix, 1, storers.clone()),
            Some(Action::Announce([10; 20], storers.clone()))
        );
        s.lookup_started(2, Family::V4, 10);
        assert_eq!(s.lookup_done(now, unix, 2, storers.clone()), None);
        let later = now + REANNOUNCE;
        s.lookup_started(3, Family::V4, 10);
        assert!(s.lookup_done(later, unix, 3, storers.clone()).is_some());
        s.addresses_changed();
        s.lookup_started(4, Family::V4, 10);
        assert!(s.lookup_done(later, unix, 4, storers).is_some());
    }

    #[test]
    fn an_announce_none_of_which_went_out_is_due_after_the_next_lookup() {
        let now = Instant::now();
        let unix = 10 * HOUR_MS + HOUR_MS / 2;
        let mut s = source(now);
        let storers = vec![(addr("192.0.2.1:6881"), b"t".to_vec())];
        s.lookup_started(1, Family::V4, 10);
        assert!(s.lookup_done(now, unix, 1, storers.clone()).is_some());
        // Another family's, or another window's, failure changes nothing.
        s.announce_unsent(Family::V6, [10; 20]);
        s.announce_unsent(Family::V4, [11; 20]);
        s.lookup_started(2, Family::V4, 10);
        assert_eq!(s.lookup_done(now, unix, 2, storers.clone()), None);
        s.announce_unsent(Family::V4, [10; 20]);
        s.lookup_started(3, Family::V4, 10);
        assert_eq!(
            s.lookup_done(now, unix, 3, storers.clone()),
            Some(Action::Announce([10; 20], storers))
        );
    }

    #[test]
    fn candidates_get_three_hellos_once_per_window_and_bounded() {
        let now = Instant::now();
        let unix = 10 * HOUR_MS + HOUR_MS / 2;
        let mut s = source(now);
        s.handle_timeout(now, unix, true);
        s.lookup_started(1, Family::V4, 10);
        let storer = addr("198.51.100.1:6881");
        let peer = addr("203.0.113.7:4000");
        let ours = addr("203.0.113.8:4000");
        let private = addr("192.168.1.5:4000");
        let first = s.on_values(now, 1, storer, &[peer, ours, private, peer], &[ours]);
        assert_eq!(
            first,
            [peer],
            "own, private-from-public and repeats skipped"
        );
        let mut sent = 1;
        while let Some(at) = s
            .poll_timeout(false)
            .filter(|at| *at < now + Duration::from_secs(10))
        {
            for action in s.handle_timeout(at, unix, false) {
                if let Action::Hello(to) = action {
                    assert_eq!(to, [peer]);
                    sent += 1;
                }
            }
        }
        assert_eq!(sent, HELLO_SCHEDULE.len());
        assert!(
            s.on_values(now, 1, storer, &[peer], &[]).is_empty(),
            "once per window"
        );

        let many: Vec<SocketAddr> = (0..200u16)
            .map(|p| SocketAddr::from(([203, 0, 113, 9], 1000 + p)))
            .collect();
        let greeted = s.on_values(now, 1, storer, &many, &[]);
        assert_eq!(greeted.len(), MAX_NEW_CANDIDATES - 1);
    }

    #[test]
    fn a_verified_member_gets_no_more_hellos_and_scopes_are_judged() {
        let now = Instant::now();
        let mut s = source(now);
        s.lookup_started(1, Family::V4, 10);
        let peer = addr("127.0.0.1:4000");
        assert_eq!(
            s.on_values(now, 1, addr("127.0.0.1:6881"), &[peer], &[]),
            [peer]
        );
        s.verified(peer);
        assert_eq!(s.poll_timeout(true), Some(now), "only the lookup is due");
        assert_eq!(s.poll_timeout(false), None, "not before the bootstrap");
        assert!(usable(addr("10.1.2.3:1"), addr("10.0.0.1:6881")));
        assert!(usable(addr("198.51.100.3:1"), addr("10.0.0.1:6881")));
        assert!(!usable(addr("10.1.2.3:1"), addr("198.51.100.1:6881")));
        assert!(!usable(addr("127.0.0.1:1"), addr("10.0.0.1:6881")));
        assert!(!usable(addr("198.51.100.3:0"), addr("198.51.100.1:6881")));
        assert!(!usable(addr("224.0.0.1:5"), addr("198.51.100.1:6881")));
        assert!(!usable(addr("100.64.0.1:5"), addr("198.51.100.1:6881")));
    }
}
