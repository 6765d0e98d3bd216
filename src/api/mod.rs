//! The node's public vocabulary: what goes in ([`Input`], [`Command`]),
//! what comes out ([`Output`], [`Event`]) and why things end (small reason
//! enums with `Display`).
//!
//! A leaf for the layers that report to the user: the connections and
//! membership build [`Event`]s from here without importing the node, as
//! quinn-proto's endpoint and connections share only `shared.rs`. Every
//! public enum is `#[non_exhaustive]`, so new events, commands and reasons
//! are additions, not breaking changes.
//!
//! The module is a leaf: the reason and configuration types the engines
//! report and obey are defined here (`config.rs`, `reasons.rs`), and the
//! engines import them, never the reverse.

mod config;
mod reasons;

use std::fmt;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::addr::Family;

use crate::id::NodeId;
use crate::meeting::Meeting;
pub use crate::nat::NatClass;
pub use crate::stream::{ResetCode, StreamHeader, StreamKind, WriteError};
pub use crate::transmit::Transmit;
pub use config::{NodeConfig, RelayLimits, RelayRole, RetransmitConfig, WallClock};
pub use reasons::{
    AddressSource, ConnectionReason, FailureReason, LostReason, ReachResult, RelayRefusal,
    ServerFailure, Via,
};

/// One byte stream: the member at the other end, the connection it
/// rides and its number there. A stream never outlives its connection, so
/// an id is never reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamId {
    peer: NodeId,
    session: u64,
    number: u32,
}

impl StreamId {
    pub(crate) fn new(peer: NodeId, session: u64, number: u32) -> Self {
        Self {
            peer,
            session,
            number,
        }
    }

    /// The member at the other end.
    pub fn peer(&self) -> NodeId {
        self.peer
    }

    pub(crate) fn session(&self) -> u64 {
        self.session
    }

    /// Its number on its connection (each side numbers its own).
    pub fn number(&self) -> u32 {
        self.number
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.peer.short(), self.number)
    }
}

/// Something for the node to act on.
#[derive(Debug)]
#[non_exhaustive]
pub enum Input<'a> {
    /// A datagram arrived on one of the node's sockets.
    Receive {
        /// Who sent it.
        source: SocketAddr,
        /// The local address it arrived on (one of
        /// [`NodeConfig::local_addrs`]).
        destination: SocketAddr,
        /// Its bytes.
        data: &'a [u8],
    },
    /// The deadline from the last [`Output::Wait`] has passed (early calls are harmless).
    Timeout,
    /// The user asked for something.
    Command(Command),
}

/// A request from the user of the node.
#[non_exhaustive]
pub enum Command {
    /// Ask these STUN servers, in order, for this socket's public address.
    DiscoverPublicAddress {
        /// Servers to try.
        servers: Vec<SocketAddr>,
    },
    /// Join a meeting: announce under its topic and find its members.
    Join(Meeting),
    /// Look up the nodes closest to a key (reported as [`Event::LookupDone`]).
    FindNode(NodeId),
    /// Send a line of text to every connected member.
    Send(String),
    /// Send several lines, in order, to every connected member: the same as
    /// a [`Command::Send`] for each, with one round of output for all.
    SendMany(Vec<String>),
    /// Send bytes to one connected member (it gets [`Event::Data`]).
    SendTo {
        /// The member.
        peer: NodeId,
        /// The bytes, at most
        /// [`MAX_MESSAGE_LEN`](crate::rtc::MAX_MESSAGE_LEN): longer ones
        /// are refused ([`Event::SendFailed`]), never cut.
        bytes: Vec<u8>,
    },
    /// Leave the meeting: close every data channel, tell the peers, stop
    /// announcing and finding members. A later [`Command::Join`] joins
    /// again; a `Join` while joined leaves the old meeting first.
    Leave,
    /// Bootstrap the Mainline DHT from these addresses (resolved router
    /// names, cached nodes), if it is on and not yet joined.
    MainlineBootstrap(Vec<SocketAddr>),
    /// Ask each of these DHT nodes to have a third node send us one
    /// datagram unasked (`ReachMe`, `protocol-spec.md` §5.8): whether our
    /// NAT lets unsolicited datagrams in ([`Event::ReachProbed`]).
    ProbeReach(Vec<SocketAddr>),
    /// Join the DHT through these nodes from now on (a node started with
    /// none, such as `doctor`'s, which probes reachability first).
    Bootstrap(Vec<SocketAddr>),
    /// Ask observers beyond the bootstrap nodes for our public address (a
    /// DHT lookup and a Mainline lookup of random keys), so the NAT's
    /// mapping can be classified ([`Event::Nat`]) without joining a
    /// meeting.
    SampleNat,
    /// Ask each of these nodes whether it relays for us: a bind with a
    /// fresh token, released at once if bound (answers come as
    /// [`Event::RelayProbed`]; a node that never answers gives none).
    ProbeRelays(Vec<SocketAddr>),
}

impl fmt::Debug for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::DiscoverPublicAddress { servers } => {
                write!(f, "DiscoverPublicAddress({servers:?})")
            }
            Self::Join(meeting) => write!(f, "Join({})", meeting.topic().short()),
            Self::FindNode(target) => write!(f, "FindNode({})", target.short()),
            Self::Send(text) => write!(f, "Send({} bytes)", text.len()),
            Self::SendMany(texts) => write!(f, "SendMany({} lines)", texts.len()),
            Self::SendTo { peer, bytes } => {
                write!(f, "SendTo({}, {} bytes)", peer.short(), bytes.len())
            }
            Self::Leave => f.write_str("Leave"),
            Self::MainlineBootstrap(addrs) => write!(f, "MainlineBootstrap({addrs:?})"),
            Self::ProbeRelays(addrs) => write!(f, "ProbeRelays({addrs:?})"),
            Self::SampleNat => f.write_str("SampleNat"),
            Self::ProbeReach(addrs) => write!(f, "ProbeReach({addrs:?})"),
            Self::Bootstrap(addrs) => write!(f, "Bootstrap({addrs:?})"),
        }
    }
}

/// What the node wants done next.
#[derive(Debug)]
#[non_exhaustive]
pub enum Output {
    /// Send this datagram.
    Transmit(Transmit),
    /// Report this to the user.
    Event(Event),
    /// Nothing more for now: wake the node at this instant, or on input only.
    Wait(Option<Instant>),
}

/// Something that happened, for the user.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// The addresses of our sockets changed (the host moved to another
    /// network): we gather again, re-announce and reconnect
    /// ([`Node::set_local_addrs`](crate::Node::set_local_addrs)).
    LocalAddresses {
        /// The new addresses, one per socket.
        addrs: Vec<SocketAddr>,
    },
    /// Our public address, as a STUN server or DHT peers see it.
    PublicAddress {
        /// The address.
        address: SocketAddr,
        /// Who said so.
        via: AddressSource,
    },
    /// What the reports of our public address of one family say about
    /// our NAT or firewall there (at start, and when it changes).
    Nat {
        /// The mapping class.
        class: NatClass,
        /// Reports it rests on.
        samples: usize,
        /// The address family it is about.
        family: Family,
    },
    /// No STUN server gave an address.
    PublicAddressFailed {
        /// Each server tried and why it failed.
        attempts: Vec<ServerFailure>,
    },
    /// The DHT is joined.
    Bootstrapped {
        /// Nodes in the routing table.
        nodes: usize,
    },
    /// No bootstrap node answered; another attempt follows.
    BootstrapFailed {
        /// Attempts so far.
        attempt: u32,
        /// Wait before the next.
        retry_in: Duration,
    },
    /// The Mainline DHT is joined.
    MainlineBootstrapped {
        /// Nodes in its routing table.
        nodes: usize,
    },
    /// This node, relaying (`serve --relay`), announced itself in the
    /// Mainline relay directory (§12.6), to `nodes` nodes; again on each
    /// refresh.
    RelayListed {
        /// Mainline nodes the announcement went to (those whose pace
        /// let it out).
        nodes: usize,
    },
    /// No Mainline bootstrap node answered; another attempt follows.
    MainlineBootstrapFailed {
        /// Attempts so far.
        attempt: u32,
        /// Wait before the next.
        retry_in: Duration,
    },
    /// A member of our meeting was found.
    PeerDiscovered {
        /// Its node ID.
        peer: NodeId,
        /// Its preferred address.
        addr: SocketAddr,
        /// The source that found it.
        via: Via,
    },
    /// A member of our meeting is gone.
    PeerLost {
        /// Its node ID.
        peer: NodeId,
        /// Why.
        reason: LostReason,
    },
    /// A [`Command::FindNode`] lookup finished.
    LookupDone {
        /// The key.
        target: NodeId,
        /// The closest nodes that answered, nearest first.
        closest: Vec<NodeId>,
        /// Depth of the lookup.
        rounds: u32,
        /// Requests sent.
        requests: u32,
    },
    /// The data channel to a member is open.
    Connected {
        /// The member.
        peer: NodeId,
        /// The address its traffic comes from: the relay's when `relay`.
        addr: SocketAddr,
        /// The source that found it.
        via: Via,
        /// True when the traffic goes through the relay at `addr`.
        relay: bool,
    },
    /// What became of a [`Command::ProbeReach`] to `via`: first
    /// [`ReachResult::Forwarded`] or [`ReachResult::NotForwarded`], and a
    /// probe that arrives, before or after that (a probe that was
    /// forwarded but never arrived gives no event: the caller decides how
    /// long to wait after `Forwarded`).
    ReachProbed {
        /// The DHT node asked.
        via: SocketAddr,
        /// What happened.
        result: ReachResult,
    },
    /// A node answered a [`Command::ProbeRelays`] bind.
    RelayProbed {
        /// The node.
        relay: SocketAddr,
        /// `Ok(rate in KiB/s per pair)` when it bound us, else why not.
        result: Result<u16, RelayRefusal>,
    },
    /// An open connection's traffic moved to another path (a relayed one
    /// went direct, or back).
    PathChanged {
        /// The member.
        peer: NodeId,
        /// The new path's remote address: the relay's when `relay`.
        addr: SocketAddr,
        /// True when the new path goes through the relay at `addr`.
        relay: bool,
    },
    /// A member sent a line of text ([`Command::Send`]).
    Message {
        /// The member.
        peer: NodeId,
        /// The text (invalid UTF-8 replaced).
        text: String,
    },
    /// A member sent bytes to us alone ([`Command::SendTo`]).
    Data {
        /// The member.
        peer: NodeId,
        /// The bytes.
        bytes: Vec<u8>,
    },
    /// An open connection to a member ended.
    Disconnected {
        /// The member.
        peer: NodeId,
        /// Why.
        reason: ConnectionReason,
    },
    /// A [`Command::SendTo`] was not queued.
    SendFailed {
        /// The member.
        peer: NodeId,
        /// Why: too long, not connected, or its outbox full.
        reason: WriteError,
    },
    /// A member opened a stream to us, of a kind we take
    /// ([`Node::set_stream_kinds`](crate::Node::set_stream_kinds)).
    StreamIncoming {
        /// The stream.
        stream: StreamId,
        /// What the opener says it is for.
        header: StreamHeader,
    },
    /// A member opened a stream and we refused it: not on the allow-list
    /// ([`Node::set_stream_peers`](crate::Node::set_stream_peers)), a
    /// kind we do not take, or too many streams. The member got a reset
    /// with `reason`, and none of its bytes were taken.
    StreamRefused {
        /// The member.
        peer: NodeId,
        /// What it said the stream was for.
        header: StreamHeader,
        /// Why.
        reason: String,
    },
    /// The member took a stream we opened.
    StreamAccepted {
        /// The stream.
        stream: StreamId,
    },
    /// Bytes arrived on a stream, in order. Hand their count back with
    /// [`Node::stream_consumed`](crate::Node::stream_consumed) once they
    /// are used: the member may send only so far ahead.
    StreamData {
        /// The stream.
        stream: StreamId,
        /// The bytes.
        bytes: Vec<u8>,
    },
    /// The member finished its half of a stream: no more bytes come.
    StreamFinished {
        /// The stream.
        stream: StreamId,
    },
    /// A stream whose write was blocked has room again.
    StreamWritable {
        /// The stream.
        stream: StreamId,
    },
    /// Both halves of a stream are finished and the member has every
    /// byte we wrote.
    StreamClosed {
        /// The stream.
        stream: StreamId,
    },
    /// A stream ended before both halves finished.
    StreamReset {
        /// The stream.
        stream: StreamId,
        /// Why.
        code: ResetCode,
        /// The member's words (or empty).
        reason: String,
    },
    /// An attempt to connect to a member failed (it is retried).
    ConnectFailed {
        /// The member.
        peer: NodeId,
        /// Why.
        reason: ConnectionReason,
    },
}
