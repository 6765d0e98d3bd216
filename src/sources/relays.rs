//! The Mainline DHT as a directory of `serve --relay` nodes
//! (`protocol-spec.md` §12.6): relay nodes announce themselves under one
//! fixed infohash ([`relay_infohash`](crate::relay::relay_infohash)); a
//! member whose meeting names no serve node looks there, so two members
//! who meet through Mainline alone still find a relay when their NATs need
//! one.
//!
//! Sans-IO like the member sources: [`RelayDirectory::handle_timeout`]
//! says when to look the infohash up, the node reports the lookup's values
//! and end, and the directory answers with the relays found and, for a
//! relay node, whom to announce to.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::mainline::engine::LookupId;

/// How often a relay node announces itself (Mainline peers expire after
/// about 30 minutes on common implementations).
pub const ANNOUNCE_EVERY: Duration = Duration::from_secs(15 * 60);
/// How often a member looks for relays.
pub const LOOK_EVERY: Duration = Duration::from_secs(30 * 60);
/// Relays remembered from the directory.
pub const MAX_FOUND: usize = 8;

/// What the directory does for this node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// A relay: announce ourselves.
    Announce,
    /// A member: look for relays.
    Look,
}

/// The directory's schedule and findings.
#[derive(Debug)]
pub struct RelayDirectory {
    role: Role,
    next: Instant,
    lookup: Option<LookupId>,
    found: Vec<SocketAddr>,
}

impl RelayDirectory {
    /// A directory whose first lookup is due once Mainline is ready.
    pub fn new(now: Instant, role: Role) -> Self {
        Self {
            role,
            next: now,
            lookup: None,
            found: Vec::new(),
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
    }

    /// True if `id` is our lookup.
    pub fn owns(&self, id: LookupId) -> bool {
        self.lookup == Some(id)
    }

    /// Peers a node listed under the infohash: the relays not seen
    /// before, at most [`MAX_FOUND`] in all (nobody vouches for them; a
    /// false one costs a bind that is never answered).
    pub fn on_values(&mut self, peers: &[SocketAddr], ours: &[SocketAddr]) -> Vec<SocketAddr> {
        if self.role != Role::Look {
            return Vec::new();
        }
        let mut new = Vec::new();
        for peer in peers {
            if self.found.len() >= MAX_FOUND {
                break;
            }
            if !self.found.contains(peer) && !ours.contains(peer) {
                self.found.push(*peer);
                new.push(*peer);
            }
        }
        new
    }

    /// The lookup ended at `now` with these storing nodes (and tokens):
    /// whom to announce to, for a relay node.
    pub fn lookup_done(
        &mut self,
        now: Instant,
        storers: Vec<(SocketAddr, Vec<u8>)>,
    ) -> Vec<(SocketAddr, Vec<u8>)> {
        self.lookup = None;
        match self.role {
            Role::Announce => {
                self.next = now + ANNOUNCE_EVERY;
                storers
            }
            Role::Look => {
                self.next = now + LOOK_EVERY;
                Vec::new()
            }
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

    #[test]
    fn a_relay_announces_to_the_storers_every_fifteen_minutes() {
        let now = Instant::now();
        let mut directory = RelayDirectory::new(now, Role::Announce);
        assert!(!directory.due(now, false, false), "waits for Mainline");
        assert!(directory.due(now, true, false), "a relay needs no meeting");
        directory.lookup_started(7);
        assert!(!directory.due(now, true, false), "one lookup at a time");
        assert!(directory.on_values(&[addr(1)], &[]).is_empty());
        let storers = vec![(addr(2), vec![1, 2])];
        assert_eq!(directory.lookup_done(now, storers.clone()), storers);
        assert_eq!(directory.poll_timeout(false), Some(now + ANNOUNCE_EVERY));
    }

    #[test]
    fn a_member_keeps_a_bounded_list_of_relays_and_never_announces() {
        let now = Instant::now();
        let mut directory = RelayDirectory::new(now, Role::Look);
        assert!(
            !directory.due(now, true, false),
            "a member looks for a meeting"
        );
        assert!(directory.due(now, true, true));
        directory.lookup_started(1);
        assert!(directory.owns(1) && !directory.owns(2));
        let peers: Vec<SocketAddr> = (1..=20).map(addr).collect();
        let new = directory.on_values(&peers, &[addr(3)]);
        assert_eq!(new.len(), MAX_FOUND);
        assert!(!new.contains(&addr(3)), "not ourselves");
        assert!(directory.on_values(&peers, &[]).is_empty(), "full");
        assert!(
            directory
                .lookup_done(now, vec![(addr(2), vec![1])])
                .is_empty()
        );
        assert_eq!(directory.poll_timeout(true), Some(now + LOOK_EVERY));
        assert_eq!(directory.poll_timeout(false), None, "no meeting, no wakeup");
    }
}
