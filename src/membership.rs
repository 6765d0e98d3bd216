//! Meeting membership: the table of members, fed with sealed records from
//! any member source.
//!
//! A source (today tinynode's DHT: `Peers` replies, pushes and announces
//! stored here; later the Mainline DHT and the LAN beacon) hands over a
//! [`Found`]: the sealed blob, which source it came from ([`Via`]) and the
//! [`SignalPath`] it came along. Membership opens the record with the
//! meeting key and verifies it ([`record::open`]), then drops it if it is
//! our own, stale (older than [`RECORD_TTL`]), from the future (more than
//! [`MAX_CLOCK_SKEW`] ahead) or older than one already accepted from the
//! same member (a replay). A member whose newest record has expired is
//! lost. Membership knows nothing of how sources work: adding one touches
//! neither this file nor the connections.
//!
//! Per member it keeps up to [`MAX_PATHS`] signal paths, newest last; the
//! node's signaling picks one (`node/signaling.rs`). A direct path (a
//! hello, beacon or signal that came straight from the member) is
//! *confirmed* only when its source is one of the addresses the member's
//! signed record lists, or the member proved it receives there (a hello
//! that echoed our nonce); any other is *tentative*, kept apart (at most
//! [`MAX_TENTATIVE`], added only by a record newer than the newest
//! accepted) and used only while no confirmed path is known. Someone who
//! replays a captured record from addresses of their own (which no record
//! of the member lists) can then never push the member's real paths out. Sans-IO: every method
//! takes `now` and the current Unix time.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use log::debug;

use crate::api::{LostReason, Via};
use crate::id::NodeId;
use crate::meeting::Meeting;
use crate::nat::NatClass;
#[cfg(test)]
use crate::record::NetworkFacts;
use crate::record::{self, PeerRecord, RECORD_TTL, RecordError};

/// Records time-stamped further ahead than this are rejected.
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(2 * 60);
/// Signal paths remembered per member.
pub const MAX_PATHS: usize = 4;
/// Tentative direct paths remembered per member (see the module note).
pub const MAX_TENTATIVE: usize = 2;
/// Members remembered per meeting.
pub const MAX_PEERS: usize = 256;

/// How a signal (offer, answer, close) reaches a member.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[non_exhaustive]
pub enum SignalPath {
    /// Through a tinynode DHT node that holds the member's record (or
    /// relayed its last signal) and forwards to it.
    DhtRelay(SocketAddr),
    /// Straight to the member's own address: it sent us a signal from
    /// there, so it receives there.
    Direct(SocketAddr),
}

impl SignalPath {
    /// The address the signal is sent to.
    pub fn addr(self) -> SocketAddr {
        match self {
            Self::DhtRelay(addr) | Self::Direct(addr) => addr,
        }
    }
}

/// Where a member stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PeerStatus {
    /// Found; no open data channel.
    Discovered,
    /// A data channel to it is open.
    Connected,
}

/// A member of the meeting.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct KnownPeer {
    /// Its node ID.
    pub node_id: NodeId,
    /// Its Ed25519 public key.
    pub public_key: [u8; 32],
    /// Addresses from its newest record, most preferred first.
    pub addrs: Vec<SocketAddr>,
    /// Confirmed paths its records came along, newest last.
    pub paths: Vec<SignalPath>,
    /// Tentative direct paths (sources its records do not list), newest
    /// last: used only while `paths` is empty.
    pub tentative: Vec<SignalPath>,
    /// The source that found it first.
    pub via: Via,
    /// When a record of it last arrived.
    pub last_seen: Instant,
    /// Unix time (ms) of its newest record.
    pub record_ms: u64,
    /// Its NAT's mapping class, from its newest record.
    pub nat: NatClass,
    /// Whether its newest record says unsolicited datagrams reach it.
    pub reachable: bool,
    /// When its newest record expires.
    pub expires_at: Instant,
    /// Connection status.
    pub status: PeerStatus,
}

/// A sealed record a member source found.
#[derive(Clone, Copy, Debug)]
pub struct Found<'a> {
    /// The sealed record.
    pub blob: &'a [u8],
    /// The source.
    pub via: Via,
    /// How signals reach its announcer along the way it came.
    pub path: SignalPath,
}

/// A change in membership.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// A new member.
    Discovered {
        /// The member.
        peer: NodeId,
        /// Its first address.
        addr: SocketAddr,
        /// The source that found it.
        via: Via,
        /// Its NAT's mapping class, as its record says.
        nat: NatClass,
        /// True when its record says unsolicited datagrams reach it.
        reachable: bool,
    },
    /// A member is gone.
    Lost {
        /// The member.
        peer: NodeId,
        /// Why.
        reason: LostReason,
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
    /// Older than a record already accepted from the same member.
    Replayed,
    /// The member table is full.
    Full,
}

/// The members of one meeting.
pub struct Membership {
    meeting: Meeting,
    local: NodeId,
    peers: BTreeMap<NodeId, KnownPeer>,
}

impl Membership {
    /// Membership in `meeting` as node `local`, with no member yet.
    pub fn new(meeting: Meeting, local: NodeId) -> Self {
        Self {
            meeting,
            local,
            peers: BTreeMap::new(),
        }
    }

    /// The meeting.
    pub fn meeting(&self) -> &Meeting {
        &self.meeting
    }

    /// The members found so far, by node ID.
    pub fn known_peers(&self) -> impl Iterator<Item = &KnownPeer> {
        self.peers.values()
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        self.peers.len()
    }

    /// A member by ID.
    pub fn peer(&self, id: &NodeId) -> Option<&KnownPeer> {
        self.peers.get(id)
    }

    /// A signal to `peer` sent to `addr` failed or went unanswered: paths
    /// through that address become the oldest, used only when no other
    /// path is left (a lossy path fails now and then but may be the only
    /// one), until a record arrives along one again.
    pub fn demote_path(&mut self, peer: &NodeId, addr: SocketAddr) {
        if let Some(known) = self.peers.get_mut(peer) {
            let (failed, others): (Vec<SignalPath>, Vec<SignalPath>) =
                known.paths.iter().partition(|p| p.addr() == addr);
            known.paths = failed.into_iter().chain(others).collect();
        }
    }

    /// Opens and judges records a source found; `unix_ms` is now's Unix time.
    pub fn on_records(
        &mut self,
        now: Instant,
        unix_ms: u64,
        found: &[Found<'_>],
    ) -> (Vec<Change>, Vec<Rejected>) {
        let mut changes = Vec::new();
        let mut rejected = Vec::new();
        for record in found {
            match self.accept(now, unix_ms, record) {
                Ok(Some(change)) => changes.push(change),
                Ok(None) => {}
                Err(reason) => {
                    debug!(
                        "meeting: record via {} ({:?}) rejected: {reason:?}",
                        record.via, record.path
                    );
                    rejected.push(reason);
                }
            }
        }
        (changes, rejected)
    }

    /// Members whose newest record expired by `now`.
    pub fn handle_timeout(&mut self, now: Instant) -> Vec<Change> {
        let expired: Vec<NodeId> = self
            .peers
            .values()
            .filter(|p| now >= p.expires_at)
            .map(|p| p.node_id)
            .collect();
        expired
            .into_iter()
            .map(|peer| {
                self.peers.remove(&peer);
                debug!("meeting: {} lost: record expired", peer.short());
                Change::Lost {
                    peer,
                    reason: LostReason::RecordExpired,
                }
            })
            .collect()
    }

    /// When [`handle_timeout`](Self::handle_timeout) must next run.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.peers.values().map(|p| p.expires_at).min()
    }

    fn accept(
        &mut self,
        now: Instant,
        unix_ms: u64,
        found: &Found<'_>,
    ) -> Result<Option<Change>, Rejected> {
        let record = record::open(&self.meeting, found.blob).map_err(Rejected::Invalid)?;
        self.accept_opened(now, unix_ms, record, found.via, found.path, false)
    }

    /// Judges a record the caller already opened (a hello or beacon, whose
    /// handler needs the record before it decides what to answer), found
    /// by `via` along `path`: the checks of [`on_records`](Self::on_records)
    /// after opening. A direct path is confirmed when the record lists its
    /// address or the caller `proven` that the member receives there (a
    /// hello that echoed our nonce). `Ok(None)` for our own record or one
    /// that changes no member.
    pub fn accept_opened(
        &mut self,
        now: Instant,
        unix_ms: u64,
        record: PeerRecord,
        via: Via,
        path: SignalPath,
        proven: bool,
    ) -> Result<Option<Change>, Rejected> {
        if record.node_id == self.local {
            return Ok(None);
        }
        let ttl_ms = RECORD_TTL.as_millis() as u64;
        let age_ms = unix_ms.saturating_sub(record.timestamp_ms);
        if age_ms >= ttl_ms {
            return Err(Rejected::Stale);
        }
        if record.timestamp_ms > unix_ms.saturating_add(MAX_CLOCK_SKEW.as_millis() as u64) {
            return Err(Rejected::Future);
        }
        let expires_at = now + Duration::from_millis(ttl_ms - age_ms);
        let confirmed = match path {
            SignalPath::DhtRelay(_) => true,
            SignalPath::Direct(_) if proven => true,
            SignalPath::Direct(source) => record
                .addrs
                .iter()
                .any(|a| crate::addr::canonical(*a) == crate::addr::canonical(source)),
        };
        if let Some(known) = self.peers.get_mut(&record.node_id) {
            if record.timestamp_ms < known.record_ms {
                return Err(Rejected::Replayed);
            }
            if confirmed {
                // The path this record came along is the newest again.
                known.tentative.retain(|p| *p != path);
                known.paths.retain(|p| *p != path);
                if known.paths.len() == MAX_PATHS {
                    known.paths.remove(0);
                }
                known.paths.push(path);
            } else if record.timestamp_ms > known.record_ms && !known.tentative.contains(&path) {
                if known.tentative.len() == MAX_TENTATIVE {
                    known.tentative.remove(0);
                }
                known.tentative.push(path);
            }
            known.last_seen = now;
            if record.timestamp_ms > known.record_ms {
                known.record_ms = record.timestamp_ms;
                known.addrs = record.addrs;
                known.nat = record.nat;
                known.reachable = record.reachable;
                known.expires_at = expires_at;
            }
            return Ok(None);
        }
        if self.peers.len() >= MAX_PEERS {
            return Err(Rejected::Full);
        }
        let addr = record.addrs.first().copied().unwrap_or(path.addr());
        debug!(
            "meeting: discovered {} at {addr} via {}",
            record.node_id.short(),
            via
        );
        self.peers.insert(
            record.node_id,
            KnownPeer {
                node_id: record.node_id,
                public_key: record.public_key,
                addrs: record.addrs,
                paths: if confirmed { vec![path] } else { Vec::new() },
                tentative: if confirmed { Vec::new() } else { vec![path] },
                via,
                last_seen: now,
                record_ms: record.timestamp_ms,
                nat: record.nat,
                reachable: record.reachable,
                expires_at,
                status: PeerStatus::Discovered,
            },
        );
        Ok(Some(Change::Discovered {
            peer: record.node_id,
            addr,
            via,
            nat: record.nat,
            reachable: record.reachable,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Identity;

    const T0_MS: u64 = 1_800_000_000_000;

    fn setup() -> (Meeting, Identity, Membership, Instant) {
        let meeting = Meeting::derive("discovery test").unwrap();
        let me = Identity::from_seed([1; 32]);
        let membership = Membership::new(meeting.clone(), me.node_id());
        (meeting, me, membership, Instant::now())
    }

    fn via_relay(blob: &[u8]) -> Found<'_> {
        Found {
            blob,
            via: Via::Dht,
            path: SignalPath::DhtRelay("192.0.2.9:4000".parse().unwrap()),
        }
    }

    #[test]
    fn fresh_records_discover_once_and_expire() {
        let (meeting, me, mut membership, now) = setup();
        let peer = Identity::from_seed([2; 32]);
        let addr: SocketAddr = "198.51.100.2:5000".parse().unwrap();
        let blob = record::seal(
            &meeting,
            &peer,
            &[addr],
            NetworkFacts::UNKNOWN,
            T0_MS,
            [1; 12],
        );
        let own = record::seal(
            &meeting,
            &me,
            &[addr],
            NetworkFacts::UNKNOWN,
            T0_MS,
            [2; 12],
        );
        let found = [via_relay(&blob), via_relay(&own), via_relay(&blob)];
        let (changes, rejected) = membership.on_records(now, T0_MS, &found);
        assert_eq!(
            changes,
            [Change::Discovered {
                peer: peer.node_id(),
                addr,
                via: Via::Dht,
                nat: NatClass::Unknown,
                reachable: false,
            }]
        );
        assert!(rejected.is_empty());
        assert_eq!(membership.len(), 1);
        assert_eq!(membership.poll_timeout(), Some(now + RECORD_TTL));
        assert_eq!(
            membership.handle_timeout(now + RECORD_TTL),
            [Change::Lost {
                peer: peer.node_id(),
                reason: LostReason::RecordExpired,
            }]
        );
    }

    #[test]
    fn stale_future_replayed_and_foreign_records_are_rejected() {
        let (meeting, _, mut membership, now) = setup();
        let other_meeting = Meeting::derive("another meeting").unwrap();
        let peer = Identity::from_seed([3; 32]);
        let addr: SocketAddr = "198.51.100.3:5000".parse().unwrap();
        let ttl_ms = RECORD_TTL.as_millis() as u64;
        let blobs = [
            record::seal(
                &meeting,
                &peer,
                &[addr],
                NetworkFacts::UNKNOWN,
                T0_MS - ttl_ms,
                [1; 12],
            ),
            record::seal(
                &meeting,
                &peer,
                &[addr],
                NetworkFacts::UNKNOWN,
                T0_MS + 10 * 60_000,
                [2; 12],
            ),
            record::seal(
                &other_meeting,
                &peer,
                &[addr],
                NetworkFacts::UNKNOWN,
                T0_MS,
                [3; 12],
            ),
            record::seal(
                &meeting,
                &peer,
                &[addr],
                NetworkFacts::UNKNOWN,
                T0_MS,
                [4; 12],
            ),
            record::seal(
                &meeting,
                &peer,
                &[addr],
                NetworkFacts::UNKNOWN,
                T0_MS - 1000,
                [5; 12],
            ),
        ];
        let found: Vec<Found<'_>> = blobs.iter().map(|b| via_relay(b)).collect();
        let (_, rejected) = membership.on_records(now, T0_MS, &found);
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
    fn paths_are_remembered_newest_last_and_bounded() {
        let (meeting, _, mut membership, now) = setup();
        let peer = Identity::from_seed([4; 32]);
        let blob = record::seal(
            &meeting,
            &peer,
            &[],
            crate::record::NetworkFacts::UNKNOWN,
            T0_MS,
            [1; 12],
        );
        let paths: Vec<SignalPath> = (1..=6)
            .map(|i| SignalPath::DhtRelay(SocketAddr::from(([192, 0, 2, i], 4000))))
            .collect();
        for path in &paths {
            let found = Found {
                blob: &blob,
                via: Via::Dht,
                path: *path,
            };
            membership.on_records(now, T0_MS, &[found]);
        }
        let known = membership.peer(&peer.node_id()).unwrap();
        assert_eq!(known.paths, paths[2..]);
        membership.demote_path(&peer.node_id(), paths[4].addr());
        let known = membership.peer(&peer.node_id()).unwrap();
        assert_eq!(known.paths, [paths[4], paths[2], paths[3], paths[5]]);
        assert_eq!(known.addrs, [], "no address: the first path stands in");
        let again = Found {
            blob: &blob,
            via: Via::Dht,
            path: paths[4],
        };
        membership.on_records(now, T0_MS, &[again]);
        let known = membership.peer(&peer.node_id()).unwrap();
        assert_eq!(
            known.paths,
            [paths[2], paths[3], paths[5], paths[4]],
            "a record along it makes it the newest again"
        );
    }

    #[test]
    fn direct_paths_the_record_does_not_list_are_tentative_and_never_displace_listed_ones() {
        let (meeting, _, mut membership, now) = setup();
        let peer = Identity::from_seed([4; 32]);
        let home: SocketAddr = "198.51.100.4:4000".parse().unwrap();
        let sealed = |at_ms: u64| {
            record::seal(
                &meeting,
                &peer,
                &[home],
                crate::record::NetworkFacts::UNKNOWN,
                at_ms,
                [1; 12],
            )
        };
        let first = sealed(T0_MS);
        fn direct(blob: &[u8], from: SocketAddr) -> Found<'_> {
            Found {
                blob,
                via: Via::Mainline,
                path: SignalPath::Direct(from),
            }
        }
        membership.on_records(now, T0_MS, &[direct(&first, home)]);
        // The same record replayed from four other addresses.
        for i in 1..=4u8 {
            let replayer = SocketAddr::from(([203, 0, 113, i], 4000));
            membership.on_records(now, T0_MS, &[direct(&first, replayer)]);
        }
        let known = membership.peer(&peer.node_id()).unwrap();
        assert_eq!(known.paths, [SignalPath::Direct(home)]);
        assert!(
            known.tentative.is_empty(),
            "a replay adds no path: {:?}",
            known.tentative
        );
        // A newer record from an unlisted source (a NAT that maps by
        // destination) is a tentative path, beside the listed one.
        let later = sealed(T0_MS + 1000);
        let elsewhere = SocketAddr::from(([203, 0, 113, 9], 4000));
        membership.on_records(now, T0_MS + 1000, &[direct(&later, elsewhere)]);
        let known = membership.peer(&peer.node_id()).unwrap();
        assert_eq!(known.paths, [SignalPath::Direct(home)]);
        assert_eq!(known.tentative, [SignalPath::Direct(elsewhere)]);
    }
}
