//! Meeting membership: finding the other members of one meeting through the
//! DHT and keeping the table of discovered peers.
//!
//! After joining, the topic is looked up right away, again as soon as the
//! DHT bootstrap completes, then after 1, 2, 4, 8 and 16 s (so members who
//! join at the same moment meet quickly), then every [`LOOKUP_INTERVAL`].
//! After a lookup, the node announces its record to the closest nodes that
//! answered with a token, when it never announced, when one of them has not
//! had its record yet, when its addresses changed, or when the last announce
//! is older than [`REANNOUNCE_INTERVAL`].
//!
//! Records from `Peers` replies and pushes are opened with the meeting key
//! and verified ([`record::open`]); then dropped if they are our own, stale
//! (older than the store TTL), from the future (more than
//! [`MAX_CLOCK_SKEW`] ahead) or older than one already accepted from the
//! same peer (a replay). A peer whose newest record has expired is lost.
//! Sans-IO: every method takes `now` and the current Unix time.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use log::debug;

use crate::dht::engine::LookupId;
use crate::dht::routing::Peer;
use crate::dht::store::RECORD_TTL;
use crate::dht::wire::TOKEN_LEN;
use crate::id::NodeId;
use crate::meeting::Meeting;
use crate::record::{self, RecordError};

/// Waits between the first topic lookups after joining.
pub const LOOKUP_BACKOFF: [Duration; 5] = [
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(4),
    Duration::from_secs(8),
    Duration::from_secs(16),
];
/// Wait between topic lookups afterwards.
pub const LOOKUP_INTERVAL: Duration = Duration::from_secs(30);
/// A record is re-announced when the last announce is older than this.
pub const REANNOUNCE_INTERVAL: Duration = Duration::from_secs(4 * 60);
/// Records time-stamped further ahead than this are rejected.
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(2 * 60);
/// Relays remembered per peer.
pub const MAX_RELAYS: usize = 4;
/// Peers remembered per meeting.
pub const MAX_PEERS: usize = 256;

/// Where a discovered peer stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeerStatus {
    /// Found in the DHT; no open data channel.
    Discovered,
    /// A data channel to it is open.
    Connected,
}

/// A member of the meeting found in the DHT.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KnownPeer {
    /// Its node ID.
    pub node_id: NodeId,
    /// Its Ed25519 public key.
    pub public_key: [u8; 32],
    /// Addresses from its newest record, most preferred first.
    pub addrs: Vec<SocketAddr>,
    /// DHT nodes that hold its record and can relay signals to it.
    pub relays: Vec<SocketAddr>,
    /// When a record of it last arrived.
    pub last_seen: Instant,
    /// Unix time (ms) of its newest record.
    pub record_ms: u64,
    /// When its newest record expires.
    pub expires_at: Instant,
    /// Connection status.
    pub status: PeerStatus,
}

/// What membership asks of the node or reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DiscoveryAction {
    /// Start a get_peers lookup of the topic.
    LookUp(NodeId),
    /// Announce a fresh record to these nodes.
    Announce(Vec<(Peer, [u8; TOKEN_LEN])>),
    /// A new member was found.
    Discovered {
        /// The member.
        peer: NodeId,
        /// Its first address.
        addr: SocketAddr,
    },
    /// A member's record expired.
    Lost {
        /// The member.
        peer: NodeId,
        /// Why.
        reason: String,
    },
}

/// Why a record was not accepted, for counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rejected {
    /// It failed to open or verify.
    Invalid(RecordError),
    /// Older than the TTL.
    Stale,
    /// Time-stamped in the future.
    Future,
    /// Older than a record already accepted from the same peer.
    Replayed,
    /// The peer table is full.
    Full,
}

/// Membership in one meeting.
pub struct Discovery {
    meeting: Meeting,
    local: NodeId,
    lookup: Option<LookupId>,
    next_lookup_at: Option<Instant>,
    lookups_done: usize,
    last_announce: Option<Instant>,
    announced_to: BTreeSet<NodeId>,
    addresses_changed: bool,
    peers: BTreeMap<NodeId, KnownPeer>,
}

impl Discovery {
    /// Joins `meeting` as node `local`; the first lookup is due at `now`.
    pub fn new(now: Instant, meeting: Meeting, local: NodeId) -> Self {
        Self {
            meeting,
            local,
            lookup: None,
            next_lookup_at: Some(now),
            lookups_done: 0,
            last_announce: None,
            announced_to: BTreeSet::new(),
            addresses_changed: false,
            peers: BTreeMap::new(),
        }
    }

    /// The meeting.
    pub fn meeting(&self) -> &Meeting {
        &self.meeting
    }

    /// The peers found so far.
    pub fn known_peers(&self) -> impl Iterator<Item = &KnownPeer> {
        self.peers.values()
    }

    /// A peer by ID.
    pub fn peer(&self, id: &NodeId) -> Option<&KnownPeer> {
        self.peers.get(id)
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

    /// Due lookups and expired peers.
    pub fn handle_timeout(&mut self, now: Instant) -> Vec<DiscoveryAction> {
        let mut actions = Vec::new();
        if self.next_lookup_at.is_some_and(|at| now >= at) {
            self.next_lookup_at = None;
            debug!("meeting: looking up topic {}", self.meeting.topic().short());
            actions.push(DiscoveryAction::LookUp(self.meeting.topic()));
        }
        let expired: Vec<NodeId> = self
            .peers
            .values()
            .filter(|p| now >= p.expires_at)
            .map(|p| p.node_id)
            .collect();
        for peer in expired {
            self.peers.remove(&peer);
            debug!("meeting: {} lost: record expired", peer.short());
            actions.push(DiscoveryAction::Lost {
                peer,
                reason: "record expired".into(),
            });
        }
        actions
    }

    /// This meeting's lookup finished with these token-bearing closest nodes.
    pub fn lookup_done(
        &mut self,
        now: Instant,
        tokens: Vec<(Peer, [u8; TOKEN_LEN])>,
    ) -> Vec<DiscoveryAction> {
        self.lookup = None;
        let wait = LOOKUP_BACKOFF
            .get(self.lookups_done)
            .copied()
            .unwrap_or(LOOKUP_INTERVAL);
        self.lookups_done += 1;
        self.next_lookup_at = Some(now + wait);
        // Storing nodes that have not had our record (the closest set moved,
        // for example because earlier storers died) get it now.
        let new_storers = tokens
            .iter()
            .any(|(peer, _)| !self.announced_to.contains(&peer.id));
        let due = self.addresses_changed
            || new_storers
            || self
                .last_announce
                .is_none_or(|at| now.saturating_duration_since(at) >= REANNOUNCE_INTERVAL);
        if !due || tokens.is_empty() {
            if tokens.is_empty() {
                debug!("meeting: lookup found no node to announce to");
            }
            return Vec::new();
        }
        self.last_announce = Some(now);
        self.addresses_changed = false;
        self.announced_to = tokens.iter().map(|(peer, _)| peer.id).collect();
        debug!("meeting: announcing to {} nodes", tokens.len());
        vec![DiscoveryAction::Announce(tokens)]
    }

    /// Opens sealed records that arrived via `relay`; `unix_ms` is now's Unix time.
    pub fn on_records(
        &mut self,
        now: Instant,
        unix_ms: u64,
        relay: SocketAddr,
        blobs: &[Vec<u8>],
    ) -> (Vec<DiscoveryAction>, Vec<Rejected>) {
        let mut actions = Vec::new();
        let mut rejected = Vec::new();
        for blob in blobs {
            match self.accept(now, unix_ms, relay, blob) {
                Ok(Some(action)) => actions.push(action),
                Ok(None) => {}
                Err(reason) => {
                    debug!("meeting: record via {relay} rejected: {reason:?}");
                    rejected.push(reason);
                }
            }
        }
        (actions, rejected)
    }

    /// When [`handle_timeout`](Self::handle_timeout) must next run.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let expiry = self.peers.values().map(|p| p.expires_at).min();
        [self.next_lookup_at, expiry].into_iter().flatten().min()
    }

    fn accept(
        &mut self,
        now: Instant,
        unix_ms: u64,
        relay: SocketAddr,
        blob: &[u8],
    ) -> Result<Option<DiscoveryAction>, Rejected> {
        let record = record::open(&self.meeting, blob).map_err(Rejected::Invalid)?;
        if record.node_id == self.local {
            return Ok(None);
        }
        let ttl_ms = RECORD_TTL.as_millis() as u64;
        let age_ms = unix_ms.saturating_sub(record.timestamp_ms);
        if age_ms >= ttl_ms {
            return Err(Rejected::Stale);
        }
        if record.timestamp_ms > unix_ms + MAX_CLOCK_SKEW.as_millis() as u64 {
            return Err(Rejected::Future);
        }
        let expires_at = now + Duration::from_millis(ttl_ms - age_ms);
        if let Some(known) = self.peers.get_mut(&record.node_id) {
            if record.timestamp_ms < known.record_ms {
                return Err(Rejected::Replayed);
            }
            if !known.relays.contains(&relay) {
                if known.relays.len() == MAX_RELAYS {
                    known.relays.remove(0);
                }
                known.relays.push(relay);
            }
            known.last_seen = now;
            if record.timestamp_ms > known.record_ms {
                known.record_ms = record.timestamp_ms;
                known.addrs = record.addrs;
                known.expires_at = expires_at;
            }
            return Ok(None);
        }
        if self.peers.len() >= MAX_PEERS {
            return Err(Rejected::Full);
        }
        let addr = record.addrs.first().copied().unwrap_or(relay);
        debug!("meeting: discovered {} at {addr}", record.node_id.short());
        self.peers.insert(
            record.node_id,
            KnownPeer {
                node_id: record.node_id,
                public_key: record.public_key,
                addrs: record.addrs,
                relays: vec![relay],
                last_seen: now,
                record_ms: record.timestamp_ms,
                expires_at,
                status: PeerStatus::Discovered,
            },
        );
        Ok(Some(DiscoveryAction::Discovered {
            peer: record.node_id,
            addr,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Identity;

    const T0_MS: u64 = 1_800_000_000_000;

    fn setup() -> (Meeting, Identity, Discovery, Instant) {
        let meeting = Meeting::derive("discovery test").unwrap();
        let me = Identity::from_seed([1; 32]);
        let now = Instant::now();
        let discovery = Discovery::new(now, meeting.clone(), me.node_id());
        (meeting, me, discovery, now)
    }

    fn relay() -> SocketAddr {
        "192.0.2.9:4000".parse().unwrap()
    }

    #[test]
    fn fresh_records_discover_once_and_expire() {
        let (meeting, me, mut discovery, now) = setup();
        assert!(matches!(
            discovery.handle_timeout(now)[..],
            [DiscoveryAction::LookUp(_)]
        ));
        let peer = Identity::from_seed([2; 32]);
        let addr: SocketAddr = "198.51.100.2:5000".parse().unwrap();
        let blob = record::seal(&meeting, &peer, &[addr], T0_MS, [1; 12]);
        let own = record::seal(&meeting, &me, &[addr], T0_MS, [2; 12]);
        let (actions, rejected) =
            discovery.on_records(now, T0_MS, relay(), &[blob.clone(), own, blob]);
        assert_eq!(
            actions,
            [DiscoveryAction::Discovered {
                peer: peer.node_id(),
                addr
            }]
        );
        assert!(rejected.is_empty());
        assert_eq!(discovery.known_peers().count(), 1);
        let later = now + RECORD_TTL;
        assert_eq!(
            discovery.handle_timeout(later),
            [DiscoveryAction::Lost {
                peer: peer.node_id(),
                reason: "record expired".into()
            }]
        );
    }

    #[test]
    fn stale_future_replayed_and_foreign_records_are_rejected() {
        let (meeting, _, mut discovery, now) = setup();
        let other_meeting = Meeting::derive("another meeting").unwrap();
        let peer = Identity::from_seed([3; 32]);
        let addr: SocketAddr = "198.51.100.3:5000".parse().unwrap();
        let ttl_ms = RECORD_TTL.as_millis() as u64;
        let stale = record::seal(&meeting, &peer, &[addr], T0_MS - ttl_ms, [1; 12]);
        let future = record::seal(&meeting, &peer, &[addr], T0_MS + 10 * 60_000, [2; 12]);
        let foreign = record::seal(&other_meeting, &peer, &[addr], T0_MS, [3; 12]);
        let current = record::seal(&meeting, &peer, &[addr], T0_MS, [4; 12]);
        let older = record::seal(&meeting, &peer, &[addr], T0_MS - 1000, [5; 12]);
        let (_, rejected) = discovery.on_records(
            now,
            T0_MS,
            relay(),
            &[stale, future, foreign, current, older],
        );
        assert_eq!(
            rejected,
            [
                Rejected::Stale,
                Rejected::Future,
                Rejected::Invalid(RecordError::NotSealedForMeeting),
                Rejected::Replayed
            ]
        );
    }

    #[test]
    fn lookups_back_off_then_settle_and_announce_when_due() {
        let (_, _, mut discovery, now) = setup();
        assert!(matches!(
            discovery.handle_timeout(now)[..],
            [DiscoveryAction::LookUp(_)]
        ));
        let token = (
            Peer {
                id: NodeId([7; 32]),
                addr: relay(),
            },
            [0; 16],
        );
        let mut t = now;
        let mut waits = Vec::new();
        for round in 0..7 {
            let actions = discovery.lookup_done(t, vec![token]);
            assert_eq!(
                actions.len(),
                usize::from(round == 0),
                "announce only the first time"
            );
            let next = discovery.poll_timeout().unwrap();
            waits.push((next - t).as_secs());
            t = next;
        }
        assert_eq!(waits, [1, 2, 4, 8, 16, 30, 30]);
        discovery.addresses_changed();
        assert_eq!(discovery.lookup_done(t, vec![token]).len(), 1);
    }
}
