//! The node's public vocabulary: what goes in ([`Input`], [`Command`]),
//! what comes out ([`Output`], [`Event`]) and why things end (small reason
//! enums with `Display`).
//!
//! A leaf for the layers that report to the user: the connections and
//! membership build [`Event`]s from here without importing the node, as
//! quinn-proto's endpoint and connections share only `shared.rs`. Every
//! public enum is `#[non_exhaustive]`, so new events, commands and reasons
//! are additions, not breaking changes.

use crate::addr::Family;
use std::fmt;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::id::NodeId;
use crate::identity::Identity;
use crate::meeting::Meeting;
pub use crate::nat::NatClass;
pub use crate::stream::{ResetCode, StreamHeader, StreamKind, WriteError};
use crate::stun::client::{RetransmitConfig, ServerFailure};
pub use crate::transmit::Transmit;

/// A reading of the wall clock paired with the monotonic instant it was
/// taken at, so the node can compute Unix time from `now` without a clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WallClock {
    /// The monotonic instant of the reading.
    pub at: Instant,
    /// Milliseconds since the Unix epoch at that instant.
    pub unix_ms: u64,
}

impl WallClock {
    /// Unix time in milliseconds at `now`.
    pub fn unix_ms(&self, now: Instant) -> u64 {
        let since = now.saturating_duration_since(self.at).as_millis() as u64;
        self.unix_ms.saturating_add(since)
    }
}

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

/// What a node needs to know at start.
#[non_exhaustive]
pub struct NodeConfig {
    /// The concrete addresses of the node's sockets (one per address
    /// family; never a wildcard, since str0m must know its host candidates).
    /// Datagrams arrive on one of them ([`Input::Receive::destination`]) and
    /// leave from one of them ([`Transmit::source`]).
    pub local_addrs: Vec<SocketAddr>,
    /// The node's key and ID.
    pub identity: Identity,
    /// The wall clock at start.
    pub clock: WallClock,
    /// DHT nodes to bootstrap from.
    pub bootstrap: Vec<SocketAddr>,
    /// The Mainline DHT: `None` leaves it off; `Some(addrs)` turns it on,
    /// bootstrapping from `addrs` (which may be empty and come later, with
    /// [`Command::MainlineBootstrap`], once host names are resolved).
    /// Needs an IPv4 socket.
    pub mainline_bootstrap: Option<Vec<SocketAddr>>,
    /// Multicast LAN beacons from the IPv4 socket while in a meeting (the
    /// driver's listener delivers others' beacons).
    pub lan: bool,
    /// STUN retransmission numbers for address discovery.
    pub retransmit: RetransmitConfig,
    /// SOFTWARE value in STUN answers.
    pub software: String,
    /// Whether this node relays for others, and for whom.
    pub relay: RelayRole,
    /// The limits of an open relay ([`RelayRole::Open`], `serve --relay`):
    /// the defaults suit a relay that strangers find in the Mainline
    /// directory; an operator's own relay may allow far more.
    pub open_relay_limits: RelayLimits,
}

/// The numbers a relay keeps to: pairs, bindings per source, bytes a
/// second per pair and in all (`protocol-spec.md` §12.5).
pub use crate::relay::server::RelayConfig as RelayLimits;

/// Why a node would not relay for us (`protocol-spec.md` §12.2).
pub use crate::relay::wire::RefuseReason as RelayRefusal;

/// What a reachability probe (`protocol-spec.md` §5.8) found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReachResult {
    /// A third node's datagram got in unasked, from this address, which
    /// we had never sent to: unsolicited datagrams reach us.
    Reached(SocketAddr),
    /// It got in, but from an address we had sent to, whose mapping our
    /// own datagram may have opened: nothing learned.
    Inconclusive(SocketAddr),
    /// The node asked no third node (it knows none, is too old, or did
    /// not answer).
    NotForwarded,
}

/// Whom a node relays for (`protocol-spec.md` §12).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RelayRole {
    /// Nobody (`join --no-relay`, and `serve` without `--relay`).
    Off,
    /// Members of its own meeting, whose tokens it can verify (`join`).
    Members,
    /// Anyone who pairs two bindings with one token, blindly
    /// (`serve --relay`).
    Open,
}

impl NodeConfig {
    /// A node with one socket at `local_addr`, `identity`, no bootstrap
    /// nodes, Mainline and LAN beacons off, RFC 5389 retransmission defaults and `tinynode VERSION` as
    /// SOFTWARE.
    pub fn new(local_addr: SocketAddr, identity: Identity, clock: WallClock) -> Self {
        Self {
            local_addrs: vec![local_addr],
            identity,
            clock,
            bootstrap: Vec::new(),
            mainline_bootstrap: None,
            lan: false,
            retransmit: RetransmitConfig::default(),
            software: concat!("tinynode ", env!("CARGO_PKG_VERSION")).to_owned(),
            relay: RelayRole::Members,
            open_relay_limits: crate::relay::server::SERVE_RELAY,
        }
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

/// Who told us our public address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AddressSource {
    /// A STUN server's Binding response.
    Stun {
        /// The server.
        server: SocketAddr,
    },
    /// A DHT peer's response.
    Dht {
        /// The peer.
        by: SocketAddr,
    },
    /// A Mainline node's answer (BEP 42 `ip`).
    Mainline {
        /// The node.
        by: SocketAddr,
    },
}

impl AddressSource {
    /// The name used in logs and JSON (`"via":"stun"`, `"via":"dht"`,
    /// `"via":"mainline"`).
    pub fn name(&self) -> &'static str {
        match self {
            Self::Stun { .. } => "stun",
            Self::Dht { .. } => "dht",
            Self::Mainline { .. } => "mainline",
        }
    }

    /// Who reported the address.
    pub fn reporter(&self) -> SocketAddr {
        match self {
            Self::Stun { server } => *server,
            Self::Dht { by } | Self::Mainline { by } => *by,
        }
    }
}

/// Where a member was found: the member source whose record revealed it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Via {
    /// tinynode's own DHT: a `Peers` reply, a push or a stored announce.
    Dht,
    /// The Mainline DHT: an address it listed answered a hello.
    Mainline,
    /// The local network: a beacon, or a hello answering ours.
    Lan,
    /// No source had found it: it reached us first, with an offer (a
    /// connection's `via` only).
    Offer,
}

impl Via {
    /// The name used in logs and JSON (`"via":"dht"`, `"via":"mainline"`,
    /// `"via":"lan"`, `"via":"offer"`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Dht => "dht",
            Self::Mainline => "mainline",
            Self::Lan => "lan",
            Self::Offer => "offer",
        }
    }
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a member is no longer a member.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LostReason {
    /// Its newest record expired and no fresher one arrived.
    RecordExpired,
}

impl fmt::Display for LostReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::RecordExpired => "record expired",
        })
    }
}

/// Why a connection attempt failed or an open connection ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectionReason {
    /// The offer got no answer before the connect timeout.
    NoAnswer,
    /// Answered, but ICE or DTLS did not complete before the connect timeout.
    NotEstablished,
    /// Not established, and the attempt needed a relay (a NAT that maps
    /// by destination, or an earlier failure) but no relay bound it.
    NoRelay,
    /// Not established, and no address pair could have worked: one side
    /// offered no candidate (IPv6 link-local addresses are never offered)
    /// and no relay bound it.
    NoAddress,
    /// The data channel closed.
    ChannelClosed,
    /// ICE consent checks stopped getting answers.
    IceLost,
    /// The peer said it is leaving.
    PeerLeft,
    /// Our address changed (another network): the connection's path used
    /// the old one, so it is made again.
    AddressChanged,
    /// The peer offered a new connection in place of this one (it
    /// restarted, or its address changed).
    Replaced,
    /// str0m reported an error (logged at debug level).
    WebRtcError,
}

impl fmt::Display for ConnectionReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NoAnswer => "no answer to the offer",
            Self::NotEstablished => "no data channel: ICE or DTLS did not complete",
            Self::NoRelay => "needs a relay, none available",
            Self::NoAddress => {
                "no address to connect on: one side has only IPv6 link-local addresses, which \
                 tinynode does not use; give the hosts an IPv4 or a global IPv6 address"
            }
            Self::ChannelClosed => "data channel closed",
            Self::IceLost => "ICE connection lost",
            Self::PeerLeft => "peer left",
            Self::AddressChanged => "our address changed; connecting again",
            Self::Replaced => "the peer started a new connection",
            Self::WebRtcError => "WebRTC error",
        })
    }
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
    /// What became of a [`Command::ProbeReach`] to `via` (a probe that
    /// was forwarded but never arrived gives no event: the caller decides
    /// how long to wait).
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
