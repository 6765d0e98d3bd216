//! The tinynode DHT as a member source: when to look the meeting's topic
//! up and when to announce our record.
//!
//! After joining, the topic is looked up right away, again as soon as the
//! DHT bootstrap completes, then on [`LOOKUP_BACKOFF`] (1, 2, 4, 8 and
//! 16 s, so members who join at the same moment meet quickly), then every
//! [`LOOKUP_BACKOFF`]`.max` (30 s). After a lookup the node announces its
//! record to the closest nodes that answered with a token, when it never
//! announced, when one of them has not had its record yet, when its
//! addresses changed, or when the last announce is older than
//! [`REANNOUNCE_INTERVAL`]. The records themselves arrive as DHT events and
//! go to membership (`node/dht.rs`).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use log::debug;

use crate::backoff::Backoff;
use crate::dht::engine::LookupId;
use crate::dht::routing::Peer;
use crate::dht::wire::TOKEN_LEN;
use crate::id::NodeId;

/// Waits between topic lookups: 1 s doubling to 30 s, where it stays.
pub const LOOKUP_BACKOFF: Backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(30));
/// A record is re-announced when the last announce is older than this.
pub const REANNOUNCE_INTERVAL: Duration = Duration::from_secs(4 * 60);

/// A storing node that gave a token, and the token.
pub type Storer = (Peer, [u8; TOKEN_LEN]);

/// What the DHT source asks the node to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Start a get_peers lookup of the topic.
    LookUp(NodeId),
    /// Announce a fresh record to these storing nodes.
    Announce(Vec<Storer>),
}

/// The DHT source of one meeting.
pub struct DhtSource {
    topic: NodeId,
    lookup: Option<LookupId>,
    next_lookup_at: Option<Instant>,
    lookups_done: u32,
    last_announce: Option<Instant>,
    /// The storing nodes of the last announce, by ID: the only nodes whose
    /// pushes are accepted.
    announced_to: BTreeMap<NodeId, SocketAddr>,
    addresses_changed: bool,
}

impl DhtSource {
    /// The source for `topic`; the first lookup is due at `now`.
    pub fn new(now: Instant, topic: NodeId) -> Self {
        Self {
            topic,
            lookup: None,
            next_lookup_at: Some(now),
            lookups_done: 0,
            last_announce: None,
            announced_to: BTreeMap::new(),
            addresses_changed: false,
        }
    }

    /// The DHT just became usable: look the topic up now rather than at the
    /// next scheduled time, unless a lookup is under way.
    pub fn lookup_now(&mut self, now: Instant) {
        if self.lookup.is_none() {
            self.next_lookup_at = Some(now);
        }
    }

    /// Our addresses changed: the next lookup re-announces.
    pub fn addresses_changed(&mut self) {
        self.addresses_changed = true;
    }

    /// The lookup `id` was started for this meeting.
    pub fn lookup_started(&mut self, id: LookupId) {
        self.lookup = Some(id);
    }

    /// True if `id` is this meeting's lookup.
    pub fn owns_lookup(&self, id: LookupId) -> bool {
        self.lookup == Some(id)
    }

    /// A lookup, when one is due.
    pub fn handle_timeout(&mut self, now: Instant) -> Option<Action> {
        if self.next_lookup_at.is_none_or(|at| now < at) {
            return None;
        }
        self.next_lookup_at = None;
        debug!("meeting: looking up topic {}", self.topic.short());
        Some(Action::LookUp(self.topic))
    }

    /// This meeting's lookup finished with these token-bearing closest
    /// nodes: schedules the next and says whether to announce.
    pub fn lookup_done(&mut self, now: Instant, storers: Vec<Storer>) -> Option<Action> {
        self.lookup = None;
        self.next_lookup_at = Some(now + LOOKUP_BACKOFF.delay(self.lookups_done));
        self.lookups_done = self.lookups_done.saturating_add(1);
        if storers.is_empty() {
            debug!("meeting: lookup found no node to announce to");
            return None;
        }
        // Storing nodes that have not had our record (the closest set moved,
        // for example because earlier storers died) get it now.
        let new_storers = storers
            .iter()
            .any(|(peer, _)| !self.announced_to.contains_key(&peer.id));
        let due = self.addresses_changed
            || new_storers
            || self
                .last_announce
                .is_none_or(|at| now.saturating_duration_since(at) >= REANNOUNCE_INTERVAL);
        if !due {
            return None;
        }
        self.last_announce = Some(now);
        self.addresses_changed = false;
        self.announced_to = storers
            .iter()
            .map(|(peer, _)| (peer.id, peer.addr))
            .collect();
        debug!("meeting: announcing to {} nodes", storers.len());
        Some(Action::Announce(storers))
    }

    /// True if the node at `addr` is one our last announce went to: it
    /// stores our record, so its pushes of newcomers' records are wanted
    /// (anyone else's are unsolicited).
    pub fn announced_to(&self, addr: SocketAddr) -> bool {
        self.announced_to.values().any(|a| *a == addr)
    }

    /// When [`handle_timeout`](Self::handle_timeout) must next run.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.next_lookup_at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_back_off_then_settle_and_announce_when_due() {
        let now = Instant::now();
        let mut source = DhtSource::new(now, NodeId([1; 32]));
        assert!(matches!(
            source.handle_timeout(now),
            Some(Action::LookUp(_))
        ));
        let storer = (
            Peer {
                id: NodeId([7; 32]),
                addr: "192.0.2.9:4000".parse().unwrap(),
            },
            [0; 16],
        );
        let mut t = now;
        let mut waits = Vec::new();
        for round in 0..7 {
            let action = source.lookup_done(t, vec![storer]);
            assert_eq!(action.is_some(), round == 0, "announce only the first time");
            let next = source.poll_timeout().unwrap();
            waits.push((next - t).as_secs());
            t = next;
        }
        assert_eq!(waits, [1, 2, 4, 8, 16, 30, 30]);
        assert!(source.announced_to(storer.0.addr));
        assert!(!source.announced_to("192.0.2.10:4000".parse().unwrap()));
        source.addresses_changed();
        assert!(source.lookup_done(t, vec![storer]).is_some());
        let moved = (
            Peer {
                id: NodeId([8; 32]),
                addr: "192.0.2.10:4000".parse().unwrap(),
            },
            [0; 16],
        );
        assert!(
            source.lookup_done(t, vec![moved]).is_some(),
            "a storer that has not had the record gets it"
        );
        assert!(source.announced_to(moved.0.addr) && !source.announced_to(storer.0.addr));
    }
}
