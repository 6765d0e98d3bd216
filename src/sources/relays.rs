//! The Mainline DHT as a directory of `serve --relay` nodes
//! (`protocol-spec.md` §12.6): relay nodes announce themselves under one
//! fixed infohash ([`relay_infohash`](crate::relay::relay_infohash)); a
//! member whose meeting names no serve node looks there, so two members
//! who meet through Mainline alone still find a relay when their NATs need
//! one.
//!
//! Sans-IO like the member sources: [`RelayDirectory::due`] says when to
//! look the infohash up, the node reports the lookup's values and end, and
//! the directory answers with the addresses to probe and, for a relay
//! node, whom to announce to.
//!
//! Anyone can list any address under the infohash, so each lookup gathers
//! every listed address (up to [`MAX_LISTED`]), then probes a random
//! sample of [`MAX_FOUND`] of those not known already; an address that did
//! not relay is left out for [`FORGET_NON_RELAY`]. Planted addresses can
//! then no longer shut out the real relays for the life of the process.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::addr::{Scope, wide_network};
use crate::mainline::engine::LookupId;
use crate::rng::Rng;

/// How often a relay node announces itself (Mainline peers expire after
/// about 30 minutes on common implementations).
pub const ANNOUNCE_EVERY: Duration = Duration::from_secs(15 * 60);
/// How soon a relay node tries again when its announce reached nobody
/// (no storing node gave a token, or the pace of every one was spent):
/// soon, but not in a loop.
pub const ANNOUNCE_RETRY: Duration = Duration::from_secs(60);
/// How often a member looks for relays.
pub const LOOK_EVERY: Duration = Duration::from_secs(30 * 60);
/// Listed addresses probed per lookup.
pub const MAX_FOUND: usize = 8;
/// Listed addresses gathered per lookup, to sample from.
pub const MAX_LISTED: usize = 256;
/// How long a listed address that did not relay is left out.
pub const FORGET_NON_RELAY: Duration = Duration::from_secs(2 * 60 * 60);
/// Non-relays remembered at once.
const MAX_NON_RELAYS: usize = 1024;

/// What the directory does for this node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// A relay: announce ourselves.
    Announce,
    /// A member: look for relays.
    Look,
}

/// What to do when a directory lookup ends.
#[derive(Debug, PartialEq, Eq)]
pub enum Done {
    /// Announce ourselves to these storing nodes, with their tokens.
    AnnounceTo(Vec<(SocketAddr, Vec<u8>)>),
    /// Probe these listed addresses.
    Probe(Vec<SocketAddr>),
}

/// The directory's schedule and findings.
pub struct RelayDirectory {
    role: Role,
    next: Instant,
    lookup: Option<LookupId>,
    /// Addresses listed during the current lookup.
    listed: Vec<SocketAddr>,
    /// Addresses already probed and found relaying.
    relays: Vec<SocketAddr>,
    /// Addresses that did not relay, until when they are left out.
    non_relays: BTreeMap<SocketAddr, Instant>,
    rng: Rng,
}

impl RelayDirectory {
    /// A directory whose first lookup is due once Mainline is ready; its
    /// samples come from `rng`.
    pub fn new(now: Instant, role: Role, rng: Rng) -> Self {
        Self {
            role,
            next: now,
            lookup: None,
            listed: Vec::new(),
            relays: Vec::new(),
            non_relays: BTreeMap::new(),
            rng,
        }
    }

    /// True if the lookup is due at `now` (Mainline being `ready`, and for
    /// a member, a meeting `joined`: relays serve meetings); the caller
    /// starts it and reports [`lookup_started`](Self::lookup_started).
    pub fn due(&self, now: Instant, ready: bool, joined: bool) -> bool {
        let wanted = self.role == Role::Announce || joined;
        wanted && ready && self.lookup.is_none() && now >= self.next
    }

    /// The lookup `id` is under way.
    pub fn lookup_started(&mut self, id: LookupId) {
        self.lookup = Some(id);
        self.listed.clear();
    }

    /// True if `id` is our lookup.
    pub fn owns(&self, id: LookupId) -> bool {
        self.lookup == Some(id)
    }

    /// Peers a node listed under the infohash: gathered (other than `ours`)
    /// for the sample taken when the lookup ends.
    pub fn on_values(&mut self, peers: &[SocketAddr], ours: &[SocketAddr]) {
        if self.role != Role::Look {
            return;
        }
        for peer in peers {
            if self.listed.len() >= MAX_LISTED {
                break;
            }
            if !self.listed.contains(peer) && !ours.contains(peer) {
                self.listed.push(*peer);
            }
        }
    }

    /// The probe of `addr` showed it relays (`true`) or not.
    pub fn probed(&mut self, now: Instant, addr: SocketAddr, relays: bool) {
        if relays {
            if !self.relays.contains(&addr) {
                self.relays.push(addr);
            }
            return;
        }
        self.non_relays.retain(|_, until| *until > now);
        if self.non_relays.len() < MAX_NON_RELAYS {
            self.non_relays.insert(addr, now + FORGET_NON_RELAY);
        }
    }

    /// The directory relays a member may join the tinynode DHT through:
    /// none until two relays of different /16s (IPv6: /32s) have bound, so
    /// that one relay anyone can run and list does not become a member's
    /// whole view of the DHT; a relay in a private network (a lab, a LAN)
    /// counts alone.
    pub fn dht_bootstrap(&self) -> Vec<SocketAddr> {
        let (private, public): (Vec<SocketAddr>, Vec<SocketAddr>) = self
            .relays
            .iter()
            .partition(|a| Scope::of(a.ip()) < Scope::Public);
        let mut networks: Vec<u128> = public.iter().map(|a| wide_network(a.ip())).collect();
        networks.sort_unstable();
        networks.dedup();
        if networks.len() >= 2 {
            self.relays.clone()
        } else {
            private
        }
    }

    /// Up to [`MAX_FOUND`] of this lookup's listed addresses, drawn at
    /// random from those neither known to relay nor left out.
    fn sample(&mut self, now: Instant) -> Vec<SocketAddr> {
        let mut pool: Vec<SocketAddr> = self
            .listed
            .drain(..)
            .filter(|a| !self.relays.contains(a))
            .filter(|a| self.non_relays.get(a).is_none_or(|until| *until <= now))
            .collect();
        let mut picked = Vec::new();
        while picked.len() < MAX_FOUND && !pool.is_empty() {
            let index = (u64::from_be_bytes(self.rng.bytes()) % pool.len() as u64) as usize;
            picked.push(pool.swap_remove(index));
        }
        picked
    }

    /// The lookup ended at `now` with these storing nodes (and tokens):
    /// whom to announce to (a relay node) or which listed addresses to
    /// probe (a member).
    pub fn lookup_done(&mut self, now: Instant, storers: Vec<(SocketAddr, Vec<u8>)>) -> Done {
        self.lookup = None;
        match self.role {
            Role::Announce => {
                self.next = now + ANNOUNCE_EVERY;
                Done::AnnounceTo(storers)
            }
            Role::Look => {
                self.next = now + LOOK_EVERY;
                Done::Probe(self.sample(now))
            }
        }
    }

    /// The announce that [`lookup_done`](Self::lookup_done) asked for
    /// reached nobody: a relay node looks again after [`ANNOUNCE_RETRY`],
    /// not [`ANNOUNCE_EVERY`], so that a relay that started before its
    /// network was up is listed within minutes.
    pub fn announce_unsent(&mut self, now: Instant) {
        if self.role == Role::Announce && self.lookup.is_none() {
            self.next = self.next.min(now + ANNOUNCE_RETRY);
        }
    }

    /// When the next lookup is due, while none runs and one is wanted
    /// (see [`due`](Self::due)).
    pub fn poll_timeout(&self, joined: bool) -> Option<Instant> {
        let wanted = self.role == Role::Announce || joined;
        (wanted && self.lookup.is_none()).then_some(self.next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(i: u8) -> SocketAddr {
        SocketAddr::from(([198, 51, 100, i], 3478))
    }

    fn directory(now: Instant, role: Role) -> RelayDirectory {
        RelayDirectory::new(now, role, Rng::from_seed([9; 32]))
    }

    #[test]
    fn a_relay_announces_to_the_storers_every_fifteen_minutes() {
        let now = Instant::now();
        let mut directory = directory(now, Role::Announce);
        assert!(!directory.due(now, false, false), "waits for Mainline");
        assert!(directory.due(now, true, false), "a relay needs no meeting");
        directory.lookup_started(7);
        assert!(!directory.due(now, true, false), "one lookup at a time");
        directory.on_values(&[addr(1)], &[]);
        let storers = vec![(addr(2), vec![1, 2])];
        assert_eq!(
            directory.lookup_done(now, storers.clone()),
            Done::AnnounceTo(storers)
        );
        assert_eq!(directory.poll_timeout(false), Some(now + ANNOUNCE_EVERY));
    }

    #[test]
    fn a_relay_whose_announce_reached_nobody_looks_again_within_a_minute() {
        let now = Instant::now();
        let mut directory = directory(now, Role::Announce);
        directory.lookup_started(1);
        assert_eq!(
            directory.lookup_done(now, Vec::new()),
            Done::AnnounceTo(Vec::new())
        );
        directory.announce_unsent(now);
        assert_eq!(directory.poll_timeout(false), Some(now + ANNOUNCE_RETRY));
        assert!(!directory.due(now + ANNOUNCE_RETRY / 2, true, false));
        assert!(directory.due(now + ANNOUNCE_RETRY, true, false));
        // A member's schedule is its own: nothing to retry.
        let mut member = self::directory(now, Role::Look);
        member.lookup_started(2);
        let _ = member.lookup_done(now, Vec::new());
        member.announce_unsent(now);
        assert_eq!(member.poll_timeout(true), Some(now + LOOK_EVERY));
    }

    #[test]
    fn each_lookup_samples_all_listed_addresses_and_leaves_out_non_relays() {
        let now = Instant::now();
        let mut directory = directory(now, Role::Look);
        assert!(
            !directory.due(now, true, false),
            "a member looks for a meeting"
        );
        assert!(directory.due(now, true, true));
        directory.lookup_started(1);
        assert!(directory.owns(1) && !directory.owns(2));
        // Eight planted addresses listed first, twelve more after them.
        let peers: Vec<SocketAddr> = (1..=20).map(addr).collect();
        directory.on_values(&peers, &[addr(3)]);
        let Done::Probe(first) = directory.lookup_done(now, vec![(addr(2), vec![1])]) else {
            panic!("a member probes");
        };
        assert_eq!(first.len(), MAX_FOUND);
        assert!(!first.contains(&addr(3)), "not ourselves");
        assert!(
            first.iter().any(|a| *a > addr(8)),
            "not only the first eight listed"
        );
        assert_eq!(directory.poll_timeout(true), Some(now + LOOK_EVERY));
        assert_eq!(directory.poll_timeout(false), None, "no meeting, no wakeup");
        // None of them relayed: the next lookup probes the others.
        for a in &first {
            directory.probed(now, *a, false);
        }
        directory.lookup_started(2);
        directory.on_values(&peers, &[addr(3)]);
        let Done::Probe(second) = directory.lookup_done(now, Vec::new()) else {
            panic!("a member probes");
        };
        assert_eq!(second.len(), MAX_FOUND);
        assert!(
            second.iter().all(|a| !first.contains(a)),
            "{first:?} {second:?}"
        );
        // Two hours on, they may be tried again.
        directory.lookup_started(3);
        directory.on_values(&first, &[]);
        let later = now + FORGET_NON_RELAY;
        let Done::Probe(mut again) = directory.lookup_done(later, Vec::new()) else {
            panic!("a member probes");
        };
        let mut first = first;
        again.sort();
        first.sort();
        assert_eq!(again, first);
    }

    #[test]
    fn directory_relays_bootstrap_the_dht_only_two_networks_at_a_time() {
        let now = Instant::now();
        let mut directory = directory(now, Role::Look);
        directory.probed(now, addr(1), true);
        directory.probed(now, addr(2), true);
        assert!(directory.dht_bootstrap().is_empty(), "one /16");
        let other: SocketAddr = "203.0.113.5:3478".parse().unwrap();
        directory.probed(now, other, true);
        assert_eq!(directory.dht_bootstrap().len(), 3);
        let mut lab = self::directory(now, Role::Look);
        let private: SocketAddr = "198.18.0.3:3478".parse().unwrap();
        lab.probed(now, private, true);
        assert_eq!(
            lab.dht_bootstrap(),
            [private],
            "a private network's relay counts alone"
        );
    }
}
