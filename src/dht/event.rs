//! What the DHT engine reports, and the IDs it hands out: shared by the
//! engine and its parts (requests, answers) without a cycle between them.

use std::net::SocketAddr;
use std::time::Duration;

use super::routing::Peer;
use super::wire::{TOKEN_LEN, TxId};
use crate::id::NodeId;

/// Identifies one lookup started by the node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LookupId(pub u64);

/// What a lookup is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LookupKind {
    /// Find the nodes closest to a key.
    FindNode,
    /// Find the records under a topic and the nodes that store them.
    GetPeers,
}

/// Something the engine reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DhtEvent {
    /// A response that the caller's policy calls a third node's
    /// reachability probe (`protocol-spec.md` §5.8) arrived from `from`.
    ProbeArrived {
        /// The transaction it carries (one of our `ReachMe`s).
        txid: TxId,
        /// Where it came from.
        from: SocketAddr,
    },
    /// `by` saw our request come from `addr`.
    Observed {
        /// Our address as seen by `by`.
        addr: SocketAddr,
        /// The responder.
        by: SocketAddr,
    },
    /// No bootstrap node answered; the next attempt is in `retry_in`.
    BootstrapFailed {
        /// Attempts so far.
        attempt: u32,
        /// Wait before the next one.
        retry_in: Duration,
    },
    /// A bootstrap node answered and the self-lookup finished.
    Bootstrapped {
        /// Entries in the routing table.
        nodes: usize,
    },
    /// A lookup finished.
    LookupDone {
        /// Which.
        id: LookupId,
        /// The key looked up.
        target: NodeId,
        /// Closest nodes that answered, nearest first.
        closest: Vec<Peer>,
        /// For get_peers: the announce token each of them gave.
        tokens: Vec<(Peer, [u8; TOKEN_LEN])>,
        /// Depth of the lookup.
        rounds: u32,
        /// Requests it sent.
        requests: u32,
    },
    /// Sealed records under `topic`: in a `Peers` answer to one of our own
    /// lookups, or in a `Push` (which the node accepts only from the nodes
    /// it announced to, before the engine sees it).
    Records {
        /// The topic.
        topic: NodeId,
        /// The node that holds them (a relay towards their announcers).
        relay: SocketAddr,
        /// The sealed records.
        records: Vec<Vec<u8>>,
    },
    /// A record from a new announcer (or a new address of one) was stored
    /// here; a member of that meeting reads it like a pushed record.
    Stored {
        /// The topic.
        topic: NodeId,
        /// The address the announce came from (the announcer's socket, as
        /// its NAT maps it towards us): a signal sent there reaches it.
        announcer: std::net::SocketAddr,
        /// The sealed record.
        record: Vec<u8>,
    },
    /// The node our `ReachMe` went to answered, or did not: `forwarded`
    /// when it asked a third node to probe us.
    ReachAnswered {
        /// The node asked.
        via: std::net::SocketAddr,
        /// True when a third node was asked.
        forwarded: bool,
    },
    /// A signal addressed to us arrived.
    Delivered {
        /// Who sent it.
        from: NodeId,
        /// The address it came from.
        relay: SocketAddr,
        /// True when `relay` is the sender itself (it sent its `Signal`
        /// request straight to us); false for a relay's `Deliver`.
        direct: bool,
        /// The sealed payload.
        payload: Vec<u8>,
    },
    /// A signal we sent could not be relayed.
    SignalFailed {
        /// The intended recipient.
        to: NodeId,
        /// Where it was sent.
        via: SocketAddr,
        /// Why.
        reason: &'static str,
    },
}

/// Why a DHT datagram was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DhtDrop {
    /// Not a DHT frame of any version we read.
    Malformed,
    /// A push from a node we did not announce to.
    UnsolicitedPush,
    /// A response for no request in flight.
    UnknownTransaction,
    /// A response from an address the request did not go to.
    WrongSource,
    /// A `SignedAnnounce` whose key does not hash to its sender ID, or
    /// whose signature does not verify.
    ForgedAnnounce,
    /// A `SignedAnnounce` beyond the node's budget of signature checks.
    OverBudget,
}
