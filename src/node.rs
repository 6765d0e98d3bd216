//! The sans-IO node: everything tinynode does, driven by `(now, input)`.
//!
//! The driver feeds a [`Node`] with received datagrams, timeouts and user
//! commands through [`Node::handle_input`], then drains
//! [`Node::poll_output`] until it returns [`Output::Wait`], which carries the
//! next instant the node must be woken at (or `None` for "only on input").
//! The node never reads a clock, touches a socket or asks the OS for random
//! bytes, so the same code runs under the mio driver and in tests with
//! virtual time; wall-clock time for record timestamps comes from a
//! [`WallClock`] reading taken by the driver at start.
//!
//! Every received datagram goes through [`demux::classify`]: STUN responses
//! go to the address-discovery client, other STUN to the Binding server, DHT
//! frames to the [`Dht`] engine. The node turns engine events into
//! user-facing [`Event`]s: the public address (from STUN or from what DHT
//! peers observed), bootstrap progress, and meeting members found and lost.
//! Datagrams nothing handles are dropped and counted in [`Stats`], never an
//! error.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use log::{debug, info};

use crate::connections::{Connections, OutgoingSignal};
use crate::demux::{self, Protocol};
use crate::dht::engine::{Dht, DhtDrop, DhtEvent, LookupId};
use crate::dht::wire::{Message as DhtMessage, Request, decode_frame};
use crate::discovery::{Discovery, DiscoveryAction, KnownPeer, PeerStatus};
use crate::hex::hex;
use crate::id::NodeId;
use crate::identity::Identity;
use crate::meeting::Meeting;
use crate::ratelimit::RateLimiter;
use crate::record;
use crate::rng::Rng;
use crate::signal::{self, Envelope};
use crate::stun::attribute::Attribute;
use crate::stun::client::{ClientEvent, Rejection, RetransmitConfig, ServerFailure, StunClient};
use crate::stun::message::{Class, Header, Message};
use crate::stun::server::{self, AnswerKind, Silence};
use crate::transmit::Transmit;

pub use crate::limits::MAX_DATAGRAM_LEN;

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

/// What a node needs to know at start.
pub struct NodeConfig {
    /// The concrete address the socket is bound to.
    pub local_addr: SocketAddr,
    /// The node's key and ID.
    pub identity: Identity,
    /// The wall clock at start.
    pub clock: WallClock,
    /// DHT nodes to bootstrap from.
    pub bootstrap: Vec<SocketAddr>,
    /// STUN retransmission numbers for address discovery.
    pub retransmit: RetransmitConfig,
    /// SOFTWARE value in STUN answers.
    pub software: String,
}

impl NodeConfig {
    /// A node at `local_addr` with `identity`, no bootstrap nodes, RFC 5389
    /// retransmission defaults and `tinynode VERSION` as SOFTWARE.
    pub fn new(local_addr: SocketAddr, identity: Identity, clock: WallClock) -> Self {
        Self {
            local_addr,
            identity,
            clock,
            bootstrap: Vec::new(),
            retransmit: RetransmitConfig::default(),
            software: concat!("tinynode ", env!("CARGO_PKG_VERSION")).to_owned(),
        }
    }
}

/// Something for the node to act on.
#[derive(Debug)]
pub enum Input<'a> {
    /// A datagram arrived on the socket.
    Receive {
        /// Who sent it.
        source: SocketAddr,
        /// Its bytes.
        data: &'a [u8],
    },
    /// The deadline from the last [`Output::Wait`] has passed (early calls are harmless).
    Timeout,
    /// The user asked for something.
    Command(Command),
}

/// A request from the user of the node.
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
    /// Leave: close every data channel and tell the peers.
    Leave,
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
            Self::Leave => f.write_str("Leave"),
        }
    }
}

/// What the node wants done next.
#[derive(Debug)]
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
}

/// Something that happened, for the user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// Our public address, as a STUN server or DHT peers see it.
    PublicAddress {
        /// The address.
        address: SocketAddr,
        /// Who said so.
        via: AddressSource,
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
    /// A member of our meeting was found.
    PeerDiscovered {
        /// Its node ID.
        peer: NodeId,
        /// Its preferred address.
        addr: SocketAddr,
    },
    /// A member of our meeting is gone.
    PeerLost {
        /// Its node ID.
        peer: NodeId,
        /// Why.
        reason: String,
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
        /// The address its traffic comes from.
        addr: SocketAddr,
    },
    /// A member sent a message.
    Message {
        /// The member.
        peer: NodeId,
        /// The text (invalid UTF-8 replaced).
        text: String,
    },
    /// An open connection to a member ended.
    Disconnected {
        /// The member.
        peer: NodeId,
        /// Why.
        reason: String,
    },
    /// An attempt to connect to a member failed (it is retried).
    ConnectFailed {
        /// The member.
        peer: NodeId,
        /// Why.
        reason: String,
    },
}

/// Why a received datagram (or record) was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropReason {
    /// Longer than [`MAX_DATAGRAM_LEN`].
    Oversized,
    /// Empty, or a protocol tinynode does not speak (by first byte).
    UnknownProtocol,
    /// DTLS, or a STUN ICE check, that no WebRTC connection accepted.
    WebrtcUnmatched,
    /// A request from a source over its rate limit.
    RateLimited,
    /// STUN bytes that do not form a valid message.
    StunMalformed,
    /// A valid STUN indication: nothing to answer.
    StunIgnored,
    /// A STUN response for no outstanding transaction.
    StunUnknownTransaction,
    /// A STUN response from an address the request did not go to.
    StunWrongSource,
    /// A STUN message whose FINGERPRINT does not match.
    StunBadFingerprint,
    /// A STUN request whose answer would exceed the amplification bound.
    StunAnswerTooLarge,
    /// A DHT frame that does not decode.
    DhtMalformed,
    /// A DHT response for no request in flight.
    DhtUnknownTransaction,
    /// A DHT response from an address the request did not go to.
    DhtWrongSource,
}

impl DropReason {
    /// Every reason, in the order stats are printed.
    pub const ALL: [DropReason; 13] = [
        Self::Oversized,
        Self::UnknownProtocol,
        Self::WebrtcUnmatched,
        Self::RateLimited,
        Self::StunMalformed,
        Self::StunIgnored,
        Self::StunUnknownTransaction,
        Self::StunWrongSource,
        Self::StunBadFingerprint,
        Self::StunAnswerTooLarge,
        Self::DhtMalformed,
        Self::DhtUnknownTransaction,
        Self::DhtWrongSource,
    ];

    /// Short name for logs and stats lines.
    pub fn name(self) -> &'static str {
        match self {
            Self::Oversized => "oversized",
            Self::UnknownProtocol => "unknown_protocol",
            Self::WebrtcUnmatched => "webrtc_unmatched",
            Self::RateLimited => "rate_limited",
            Self::StunMalformed => "stun_malformed",
            Self::StunIgnored => "stun_ignored",
            Self::StunUnknownTransaction => "stun_unknown_transaction",
            Self::StunWrongSource => "stun_wrong_source",
            Self::StunBadFingerprint => "stun_bad_fingerprint",
            Self::StunAnswerTooLarge => "stun_answer_too_large",
            Self::DhtMalformed => "dht_malformed",
            Self::DhtUnknownTransaction => "dht_unknown_transaction",
            Self::DhtWrongSource => "dht_wrong_source",
        }
    }
}

/// Counters of what the node received, answered and dropped.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Datagrams offered to the node.
    pub received: u64,
    /// STUN success answers sent.
    pub stun_answers: u64,
    /// STUN error answers (400, 420) sent.
    pub stun_error_answers: u64,
    /// STUN responses accepted by the address-discovery client.
    pub stun_responses: u64,
    /// DHT messages handled.
    pub dht_messages: u64,
    /// Meeting records rejected (forged, foreign, stale, replayed).
    pub records_rejected: u64,
    /// Datagrams taken by a WebRTC connection (ICE, DTLS).
    pub webrtc_datagrams: u64,
    /// Signals rejected (not sealed for our meeting, forged, stale, replayed).
    pub signals_rejected: u64,
    dropped: [u64; DropReason::ALL.len()],
}

impl Stats {
    /// Datagrams dropped for `reason`.
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.dropped[reason as usize]
    }

    /// Datagrams dropped for any reason.
    pub fn dropped_total(&self) -> u64 {
        self.dropped.iter().sum()
    }

    /// Datagrams that were answered or acted on.
    pub fn handled(&self) -> u64 {
        self.stun_answers
            + self.stun_error_answers
            + self.stun_responses
            + self.dht_messages
            + self.webrtc_datagrams
    }

    fn count_drop(&mut self, reason: DropReason) {
        self.dropped[reason as usize] += 1;
    }
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "received={} stun_answers={} stun_error_answers={} stun_responses={} dht_messages={} \
             webrtc_datagrams={} records_rejected={} signals_rejected={} dropped={}",
            self.received,
            self.stun_answers,
            self.stun_error_answers,
            self.stun_responses,
            self.dht_messages,
            self.webrtc_datagrams,
            self.records_rejected,
            self.signals_rejected,
            self.dropped_total()
        )?;
        for reason in DropReason::ALL {
            let count = self.dropped(reason);
            if count > 0 {
                write!(f, " {}={count}", reason.name())?;
            }
        }
        Ok(())
    }
}

/// How much state a node holds, by kind; each is bounded (see
/// [`Sizes::LIMITS`] and `protocol-spec.md` §7.1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sizes {
    /// Routing-table entries.
    pub routing: usize,
    /// Records stored for others.
    pub stored_records: usize,
    /// DHT requests in flight.
    pub pending_requests: usize,
    /// Lookups under way.
    pub lookups: usize,
    /// Members of the meeting known.
    pub peers: usize,
    /// Peers with signaling state.
    pub signaling: usize,
    /// WebRTC connections.
    pub connections: usize,
    /// Sources tracked by the rate limiter.
    pub rate_limited_sources: usize,
}

impl Sizes {
    /// The most each may reach.
    pub const LIMITS: Sizes = Sizes {
        routing: crate::id::ID_BITS * crate::dht::wire::K,
        stored_records: crate::dht::store::MAX_TOTAL,
        pending_requests: crate::dht::engine::MAX_PENDING,
        lookups: crate::dht::engine::MAX_LOOKUPS,
        peers: crate::discovery::MAX_PEERS,
        signaling: MAX_SIGNALING_PEERS,
        connections: crate::connections::MAX_CONNECTIONS,
        rate_limited_sources: crate::ratelimit::MAX_SOURCES,
    };

    /// True if every count is within [`Sizes::LIMITS`].
    pub fn within_limits(&self) -> bool {
        let limits = Self::LIMITS;
        self.routing <= limits.routing
            && self.stored_records <= limits.stored_records
            && self.pending_requests <= limits.pending_requests
            && self.lookups <= limits.lookups
            && self.peers <= limits.peers
            && self.signaling <= limits.signaling
            && self.connections <= limits.connections
            && self.rate_limited_sources <= limits.rate_limited_sources
    }
}

/// Tracks the public address peers report, switching to a new one only when
/// two different peers agree on it.
#[derive(Default)]
struct ObservedAddress {
    current: Option<SocketAddr>,
    candidate: Option<(SocketAddr, SocketAddr)>,
}

impl ObservedAddress {
    /// Returns the address to report if it changed.
    fn observe(&mut self, addr: SocketAddr, by: SocketAddr) -> Option<SocketAddr> {
        match self.current {
            None => {
                self.current = Some(addr);
                Some(addr)
            }
            Some(current) if current == addr => {
                self.candidate = None;
                None
            }
            Some(_) => match self.candidate {
                Some((candidate, first_by)) if candidate == addr && first_by != by => {
                    self.current = Some(addr);
                    self.candidate = None;
                    Some(addr)
                }
                _ => {
                    self.candidate = Some((addr, by));
                    None
                }
            },
        }
    }
}

/// What we know about signaling with one peer.
#[derive(Clone, Copy, Debug)]
struct PeerSignaling {
    /// Highest sequence number accepted from it.
    last_seq: u64,
    /// The relay its last signal came through (a path that reaches it),
    /// until a signal sent through it fails.
    relay: Option<SocketAddr>,
}

/// Peers whose signaling state is remembered.
pub const MAX_SIGNALING_PEERS: usize = 256;

/// A tinynode, without IO.
pub struct Node {
    config: NodeConfig,
    rng: Rng,
    stun_client: StunClient,
    dht: Dht,
    discovery: Option<Discovery>,
    connections: Option<Connections>,
    signaling: BTreeMap<NodeId, PeerSignaling>,
    next_signal_seq: u64,
    limiter: RateLimiter,
    public: ObservedAddress,
    user_lookups: Vec<LookupId>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    stats: Stats,
}

impl Node {
    /// A node whose randomness is derived from `seed` (from the OS in the
    /// driver, a constant in tests). It bootstraps the DHT at `now`.
    pub fn new(now: Instant, config: NodeConfig, seed: [u8; 32]) -> Self {
        let mut rng = Rng::from_seed(seed);
        let dht = Dht::new(
            now,
            config.identity.node_id(),
            rng.fork(),
            config.bootstrap.clone(),
        );
        Self {
            stun_client: StunClient::new(config.retransmit, rng.fork()),
            dht,
            next_signal_seq: config.clock.unix_ms(now),
            rng,
            config,
            discovery: None,
            connections: None,
            signaling: BTreeMap::new(),
            limiter: RateLimiter::default(),
            public: ObservedAddress::default(),
            user_lookups: Vec::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            stats: Stats::default(),
        }
    }

    /// The address the node's socket is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.config.local_addr
    }

    /// The node's ID.
    pub fn node_id(&self) -> NodeId {
        self.config.identity.node_id()
    }

    /// The public address, once known.
    pub fn public_addr(&self) -> Option<SocketAddr> {
        self.public.current
    }

    /// True while the node takes more [`Command::Send`] messages without
    /// queueing more than [`OUTBOX_PAUSE`](crate::connections::OUTBOX_PAUSE)
    /// bytes for any connected member. A driver reading a stream (standard
    /// input) pauses while this is false, so a fast source is slowed to the
    /// slowest member instead of losing messages.
    pub fn ready_to_send(&self) -> bool {
        self.connections
            .as_ref()
            .is_none_or(Connections::ready_to_send)
    }

    /// What the node has received, answered and dropped so far.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// How much state the node holds.
    pub fn sizes(&self) -> Sizes {
        Sizes {
            routing: self.dht.routing_len(),
            stored_records: self.dht.store_len(),
            pending_requests: self.dht.pending_len(),
            lookups: self.dht.lookups_len(),
            peers: self
                .discovery
                .as_ref()
                .map_or(0, |d| d.known_peers().count()),
            signaling: self.signaling.len(),
            connections: self.connections.as_ref().map_or(0, Connections::len),
            rate_limited_sources: self.limiter.len(),
        }
    }

    /// The DHT engine, for inspection.
    pub fn dht(&self) -> &Dht {
        &self.dht
    }

    /// Members of the joined meeting found so far.
    pub fn known_peers(&self) -> Vec<KnownPeer> {
        let Some(discovery) = self.discovery.as_ref() else {
            return Vec::new();
        };
        discovery
            .known_peers()
            .map(|peer| {
                let mut peer = peer.clone();
                if self
                    .connections
                    .as_ref()
                    .is_some_and(|c| c.is_connected(&peer.node_id))
                {
                    peer.status = PeerStatus::Connected;
                }
                peer
            })
            .collect()
    }

    /// Acts on one input at `now`. Drain [`poll_output`](Self::poll_output) afterwards.
    pub fn handle_input(&mut self, now: Instant, input: Input<'_>) {
        match input {
            Input::Receive { source, data } => self.handle_datagram(now, source, data),
            Input::Timeout => {
                self.stun_client.handle_timeout(now);
                self.dht.handle_timeout(now);
                if let Some(discovery) = self.discovery.as_mut() {
                    let actions = discovery.handle_timeout(now);
                    self.apply(now, actions);
                }
                let public = self.public.current;
                if let Some(connections) = self.connections.as_mut() {
                    connections.handle_timeout(now, public);
                }
            }
            Input::Command(command) => self.handle_command(now, command),
        }
        self.process_events(now);
    }

    /// The next thing to do; [`Output::Wait`] when there is nothing left.
    pub fn poll_output(&mut self) -> Output {
        if let Some(transmit) = self
            .transmits
            .pop_front()
            .or_else(|| self.stun_client.poll_transmit())
            .or_else(|| self.dht.poll_transmit())
            .or_else(|| {
                self.connections
                    .as_mut()
                    .and_then(Connections::poll_transmit)
            })
        {
            return Output::Transmit(transmit);
        }
        if let Some(event) = self.events.pop_front() {
            return Output::Event(event);
        }
        let deadline = [
            self.stun_client.poll_timeout(),
            self.dht.poll_timeout(),
            self.discovery.as_ref().and_then(Discovery::poll_timeout),
            self.connections
                .as_ref()
                .and_then(Connections::poll_timeout),
        ]
        .into_iter()
        .flatten()
        .min();
        Output::Wait(deadline)
    }

    fn handle_command(&mut self, now: Instant, command: Command) {
        match command {
            Command::DiscoverPublicAddress { servers } => {
                self.stun_client.start(now, self.config.local_addr, servers)
            }
            Command::Join(meeting) => {
                info!("joining meeting with topic {}", meeting.topic());
                let mut discovery = Discovery::new(now, meeting, self.node_id());
                let actions = discovery.handle_timeout(now);
                self.discovery = Some(discovery);
                let crypto = Arc::new(str0m::crypto::from_feature_flags());
                let first_session = u64::from_be_bytes(self.rng.bytes());
                self.connections = Some(Connections::new(
                    crypto,
                    self.node_id(),
                    self.config.local_addr,
                    first_session,
                ));
                self.apply(now, actions);
            }
            Command::FindNode(target) => {
                let id = self.dht.find_node(now, target);
                self.user_lookups.push(id);
            }
            Command::Send(text) => self.send(now, &[text]),
            Command::SendMany(texts) => self.send(now, &texts),
            Command::Leave => {
                if let Some(connections) = self.connections.as_mut() {
                    connections.close_all(now);
                }
            }
        }
    }

    /// Queues messages for every connected member.
    fn send(&mut self, now: Instant, texts: &[String]) {
        let reached = self
            .connections
            .as_mut()
            .map_or(0, |c| c.send_texts(now, texts));
        debug!("queued {} messages for {reached} peers", texts.len());
    }

    /// Turns engine events into user events and membership actions.
    fn process_events(&mut self, now: Instant) {
        while let Some(event) = self.stun_client.poll_event() {
            match event {
                ClientEvent::Discovered { address, server } => {
                    self.set_public(address);
                    self.events.push_back(Event::PublicAddress {
                        address,
                        via: AddressSource::Stun { server },
                    });
                }
                ClientEvent::Failed { attempts } => self
                    .events
                    .push_back(Event::PublicAddressFailed { attempts }),
            }
        }
        while let Some(event) = self.dht.poll_event() {
            match event {
                DhtEvent::Observed { addr, by } => {
                    if let Some(address) = self.public.observe(addr, by) {
                        debug!("dht: {by} sees us as {address}");
                        if let Some(discovery) = self.discovery.as_mut() {
                            discovery.addresses_changed();
                        }
                        self.events.push_back(Event::PublicAddress {
                            address,
                            via: AddressSource::Dht { by },
                        });
                    }
                }
                DhtEvent::BootstrapFailed { attempt, retry_in } => self
                    .events
                    .push_back(Event::BootstrapFailed { attempt, retry_in }),
                DhtEvent::Bootstrapped { nodes } => {
                    self.events.push_back(Event::Bootstrapped { nodes });
                    if let Some(discovery) = self.discovery.as_mut() {
                        discovery.lookup_now(now);
                        let actions = discovery.handle_timeout(now);
                        self.apply(now, actions);
                    }
                }
                DhtEvent::LookupDone {
                    id,
                    target,
                    closest,
                    tokens,
                    rounds,
                    requests,
                } => {
                    if let Some(position) = self.user_lookups.iter().position(|l| *l == id) {
                        self.user_lookups.swap_remove(position);
                        self.events.push_back(Event::LookupDone {
                            target,
                            closest: closest.iter().map(|p| p.id).collect(),
                            rounds,
                            requests,
                        });
                    }
                    if let Some(discovery) = self.discovery.as_mut().filter(|d| d.owns_lookup(id)) {
                        let actions = discovery.lookup_done(now, tokens);
                        self.apply(now, actions);
                    }
                }
                DhtEvent::Records {
                    topic,
                    relay,
                    records,
                } => self.take_records(now, topic, relay, &records),
                DhtEvent::Stored { topic, record } => {
                    // We store it, so we are a relay towards its announcer:
                    // signals for it can go through our own socket.
                    let local = self.config.local_addr;
                    self.take_records(now, topic, local, &[record]);
                }
                DhtEvent::Delivered { relay, payload, .. } => self.on_signal(now, relay, &payload),
                DhtEvent::SignalFailed { to, reason } => {
                    debug!("signal to {} failed: {reason}", to.short());
                    // The remembered path may lead to where the peer used
                    // to be (a restarted member relayed through itself):
                    // later signals go through the relays discovery knows.
                    if let Some(signaling) = self.signaling.get_mut(&to) {
                        signaling.relay = None;
                    }
                }
            }
        }
        self.process_connections(now);
    }

    /// Hands sealed records under `topic`, held by `relay`, to the meeting
    /// with that topic, if we are in it.
    fn take_records(
        &mut self,
        now: Instant,
        topic: NodeId,
        relay: SocketAddr,
        records: &[Vec<u8>],
    ) {
        let unix_ms = self.config.clock.unix_ms(now);
        let Some(discovery) = self
            .discovery
            .as_mut()
            .filter(|d| d.meeting().topic() == topic)
        else {
            return;
        };
        let (actions, rejected) = discovery.on_records(now, unix_ms, relay, records);
        self.stats.records_rejected += rejected.len() as u64;
        self.apply(now, actions);
    }

    /// Opens a signal relayed to us and hands it to the connections.
    fn on_signal(&mut self, now: Instant, relay: SocketAddr, payload: &[u8]) {
        let unix_ms = self.config.clock.unix_ms(now);
        let local = self.node_id();
        let (Some(discovery), Some(connections)) =
            (self.discovery.as_ref(), self.connections.as_mut())
        else {
            self.stats.signals_rejected += 1;
            return;
        };
        let signal = match signal::open(discovery.meeting(), &local, unix_ms, payload) {
            Ok(signal) => signal,
            Err(error) => {
                debug!("signal via {relay} rejected: {error}");
                self.stats.signals_rejected += 1;
                return;
            }
        };
        let known = self.signaling.get(&signal.from).copied();
        if known.is_some_and(|k| signal.seq <= k.last_seq) {
            debug!(
                "signal from {} replayed (seq {})",
                signal.from.short(),
                signal.seq
            );
            self.stats.signals_rejected += 1;
            return;
        }
        if known.is_none() && self.signaling.len() >= MAX_SIGNALING_PEERS {
            self.stats.signals_rejected += 1;
            return;
        }
        self.signaling.insert(
            signal.from,
            PeerSignaling {
                last_seq: signal.seq,
                relay: Some(relay),
            },
        );
        connections.on_signal(now, signal, self.public.current);
        self.process_connections(now);
    }

    /// Sends the connections' signals and reports their events.
    fn process_connections(&mut self, now: Instant) {
        let Some(connections) = self.connections.as_mut() else {
            return;
        };
        let mut outgoing = Vec::new();
        while let Some(signal) = connections.poll_signal() {
            outgoing.push(signal);
        }
        while let Some(event) = connections.poll_event() {
            self.events.push_back(event);
        }
        for signal in outgoing {
            self.send_signal(now, signal);
        }
    }

    /// Seals a signal and sends it through a relay that reaches the peer.
    fn send_signal(&mut self, now: Instant, outgoing: OutgoingSignal) {
        let Some(discovery) = self.discovery.as_ref() else {
            return;
        };
        let relay = self
            .signaling
            .get(&outgoing.to)
            .and_then(|s| s.relay)
            .or_else(|| {
                discovery
                    .peer(&outgoing.to)
                    .and_then(|p| p.relays.last().copied())
            });
        let Some(relay) = relay else {
            debug!(
                "no relay known for {}; signal not sent",
                outgoing.to.short()
            );
            return;
        };
        let seq = self.next_signal_seq;
        self.next_signal_seq += 1;
        let envelope = Envelope {
            to: outgoing.to,
            seq,
            timestamp_ms: self.config.clock.unix_ms(now),
            session: outgoing.session,
        };
        let blob = signal::seal(
            discovery.meeting(),
            &self.config.identity,
            envelope,
            outgoing.kind,
            self.rng.bytes(),
        );
        self.dht.signal(now, relay, outgoing.to, blob);
    }

    fn apply(&mut self, now: Instant, actions: Vec<DiscoveryAction>) {
        for action in actions {
            match action {
                DiscoveryAction::LookUp(topic) => {
                    let id = self.dht.get_peers(now, topic);
                    if let Some(discovery) = self.discovery.as_mut() {
                        discovery.lookup_started(id);
                    }
                }
                DiscoveryAction::Announce(targets) => {
                    let Some(discovery) = self.discovery.as_ref() else {
                        continue;
                    };
                    let blob = record::seal(
                        discovery.meeting(),
                        &self.config.identity,
                        &self.record_addrs(),
                        self.config.clock.unix_ms(now),
                        self.rng.bytes(),
                    );
                    let topic = discovery.meeting().topic();
                    self.dht.announce(now, topic, &targets, &blob);
                }
                DiscoveryAction::Discovered { peer, addr } => {
                    self.events.push_back(Event::PeerDiscovered { peer, addr });
                    let public = self.public.current;
                    if let Some(connections) = self.connections.as_mut() {
                        connections.add_member(now, peer, public);
                    }
                }
                DiscoveryAction::Lost { peer, reason } => {
                    self.events.push_back(Event::PeerLost { peer, reason });
                    self.signaling.remove(&peer);
                    if let Some(connections) = self.connections.as_mut() {
                        connections.remove_member(&peer);
                    }
                }
            }
        }
    }

    /// Addresses to put in our record: the public one, then the local one
    /// if it is concrete and different.
    fn record_addrs(&self) -> Vec<SocketAddr> {
        let local = self.config.local_addr;
        let mut addrs: Vec<SocketAddr> = self.public.current.into_iter().collect();
        if !local.ip().is_unspecified() && !addrs.contains(&local) {
            addrs.push(local);
        }
        addrs
    }

    fn set_public(&mut self, address: SocketAddr) {
        if self.public.current != Some(address) {
            self.public.current = Some(address);
            if let Some(discovery) = self.discovery.as_mut() {
                discovery.addresses_changed();
            }
        }
    }

    fn handle_datagram(&mut self, now: Instant, source: SocketAddr, data: &[u8]) {
        self.stats.received += 1;
        if data.len() > MAX_DATAGRAM_LEN {
            return self.drop_datagram(source, DropReason::Oversized);
        }
        match demux::classify(data) {
            Protocol::Stun => self.handle_stun(now, source, data),
            Protocol::Dht => self.handle_dht(now, source, data),
            Protocol::Dtls => {
                let taken = self
                    .connections
                    .as_mut()
                    .is_some_and(|c| c.handle_dtls(now, source, data).is_ok());
                self.count_webrtc(source, taken);
            }
            Protocol::Zrtp
            | Protocol::TurnChannel
            | Protocol::Quic
            | Protocol::Rtp
            | Protocol::Unassigned
            | Protocol::Empty => self.drop_datagram(source, DropReason::UnknownProtocol),
        }
        self.process_connections(now);
    }

    fn count_webrtc(&mut self, source: SocketAddr, taken: bool) {
        if taken {
            self.stats.webrtc_datagrams += 1;
        } else {
            self.drop_datagram(source, DropReason::WebrtcUnmatched);
        }
    }

    fn handle_dht(&mut self, now: Instant, source: SocketAddr, data: &[u8]) {
        let message = match decode_frame(data) {
            Ok(message) => message,
            Err(error) => {
                debug!("dht: from {source}: {error}");
                return self.drop_datagram(source, DropReason::DhtMalformed);
            }
        };
        let cost = match &message {
            DhtMessage::Request {
                body: Request::Signal { .. },
                ..
            } => Some(2),
            DhtMessage::Request { .. } | DhtMessage::Deliver { .. } | DhtMessage::Push { .. } => {
                Some(1)
            }
            DhtMessage::Response { .. } => None,
        };
        if cost.is_some_and(|cost| !self.limiter.allow(now, source.ip(), cost)) {
            return self.drop_datagram(source, DropReason::RateLimited);
        }
        match self.dht.handle_message(now, source, data.len(), message) {
            Ok(()) => self.stats.dht_messages += 1,
            Err(DhtDrop::UnknownTransaction) => {
                self.drop_datagram(source, DropReason::DhtUnknownTransaction)
            }
            Err(DhtDrop::WrongSource) => self.drop_datagram(source, DropReason::DhtWrongSource),
        }
    }

    fn handle_stun(&mut self, now: Instant, source: SocketAddr, data: &[u8]) {
        let Ok(header) = Header::parse(data) else {
            return self.drop_datagram(source, DropReason::StunMalformed);
        };
        if matches!(header.class, Class::SuccessResponse | Class::ErrorResponse) {
            let result = match Message::decode(data) {
                Ok(response) => self
                    .stun_client
                    .handle_response(now, source, &response)
                    .map_err(|rejection| match rejection {
                        Rejection::UnknownTransaction => DropReason::StunUnknownTransaction,
                        Rejection::WrongSource => DropReason::StunWrongSource,
                        Rejection::BadFingerprint => DropReason::StunBadFingerprint,
                    }),
                Err(error) => {
                    debug!("stun: malformed response from {source}: {error}");
                    Err(DropReason::StunMalformed)
                }
            };
            match result {
                Ok(()) => self.stats.stun_responses += 1,
                Err(DropReason::StunUnknownTransaction) => {
                    // Not ours: an ICE check response for a WebRTC connection?
                    let taken = self
                        .connections
                        .as_mut()
                        .is_some_and(|c| c.handle_stun(now, source, data).is_ok());
                    if taken {
                        self.stats.webrtc_datagrams += 1;
                    } else {
                        self.drop_datagram(source, DropReason::StunUnknownTransaction);
                    }
                }
                Err(reason) => self.drop_datagram(source, reason),
            }
            return;
        }
        if self
            .connections
            .as_mut()
            .is_some_and(|c| c.handle_stun(now, source, data).is_ok())
        {
            self.stats.webrtc_datagrams += 1;
            return;
        }
        if !self.limiter.allow(now, source.ip(), 1) {
            return self.drop_datagram(source, DropReason::RateLimited);
        }
        let is_ice_check = Message::decode(data)
            .is_ok_and(|m| m.attributes().any(|a| matches!(a, Attribute::Username(_))));
        if is_ice_check {
            return self.drop_datagram(source, DropReason::WebrtcUnmatched);
        }
        match server::answer(data, source, &self.config.software) {
            Ok((payload, kind)) => {
                debug!(
                    "stun: {} to {source} (txid {})",
                    match kind {
                        AnswerKind::Binding => "Binding success",
                        AnswerKind::BadRequest => "400 Bad Request",
                        AnswerKind::UnknownAttribute => "420 Unknown Attribute",
                    },
                    hex(payload.get(8..20).unwrap_or_default())
                );
                match kind {
                    AnswerKind::Binding => self.stats.stun_answers += 1,
                    AnswerKind::BadRequest | AnswerKind::UnknownAttribute => {
                        self.stats.stun_error_answers += 1
                    }
                }
                self.transmits.push_back(Transmit {
                    destination: source,
                    payload,
                });
            }
            Err(silence) => self.drop_datagram(
                source,
                match silence {
                    Silence::Malformed => DropReason::StunMalformed,
                    Silence::NotARequest => DropReason::StunIgnored,
                    Silence::BadFingerprint => DropReason::StunBadFingerprint,
                    Silence::AnswerTooLarge => DropReason::StunAnswerTooLarge,
                },
            ),
        }
    }

    fn drop_datagram(&mut self, source: SocketAddr, reason: DropReason) {
        debug!("dropped datagram from {source}: {}", reason.name());
        self.stats.count_drop(reason);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stun::attribute::Attribute;
    use crate::stun::message::{MessageEncoder, Method, TransactionId};

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn node_at(now: Instant, local: &str, seed: u8) -> Node {
        let clock = WallClock {
            at: now,
            unix_ms: 1_800_000_000_000,
        };
        Node::new(
            now,
            NodeConfig::new(addr(local), Identity::from_seed([seed; 32]), clock),
            [seed; 32],
        )
    }

    fn drain(node: &mut Node) -> (Vec<Transmit>, Vec<Event>, Option<Instant>) {
        let (mut transmits, mut events) = (Vec::new(), Vec::new());
        loop {
            match node.poll_output() {
                Output::Transmit(t) => transmits.push(t),
                Output::Event(e) => events.push(e),
                Output::Wait(deadline) => return (transmits, events, deadline),
            }
        }
    }

    #[test]
    fn idle_node_sleeps_until_its_slow_timers() {
        let now = Instant::now();
        let mut n = node_at(now, "10.0.0.1:5000", 1);
        let (transmits, events, deadline) = drain(&mut n);
        assert!(transmits.is_empty() && events.is_empty());
        let wait = deadline.expect("DHT maintenance timer") - now;
        assert!(wait >= Duration::from_secs(60), "woke after {wait:?}");
    }

    #[test]
    fn two_nodes_discover_addresses_through_each_other() {
        let now = Instant::now();
        let (a_addr, b_addr) = (addr("10.0.0.1:5000"), addr("10.0.0.2:6000"));
        let mut a = node_at(now, "10.0.0.1:5000", 1);
        let mut b = node_at(now, "10.0.0.2:6000", 2);
        a.handle_input(
            now,
            Input::Command(Command::DiscoverPublicAddress {
                servers: vec![b_addr],
            }),
        );
        let (requests, _, deadline) = drain(&mut a);
        assert_eq!(deadline, Some(now + Duration::from_millis(500)));
        b.handle_input(
            now,
            Input::Receive {
                source: a_addr,
                data: &requests[0].payload,
            },
        );
        let (answers, _, _) = drain(&mut b);
        assert_eq!(answers[0].destination, a_addr);
        a.handle_input(
            now,
            Input::Receive {
                source: b_addr,
                data: &answers[0].payload,
            },
        );
        let (_, events, deadline) = drain(&mut a);
        assert_eq!(
            events,
            [Event::PublicAddress {
                address: a_addr,
                via: AddressSource::Stun { server: b_addr }
            }]
        );
        assert!(deadline.is_some_and(|d| d - now >= Duration::from_secs(60)));
        assert_eq!(b.stats().stun_answers, 1);
    }

    #[test]
    fn garbage_is_counted_never_answered() {
        let now = Instant::now();
        let mut n = node_at(now, "10.0.0.1:5000", 1);
        let source = addr("192.0.2.1:1");
        let oversized = vec![0u8; MAX_DATAGRAM_LEN + 1];
        let stray = {
            let mut e = MessageEncoder::new(
                Class::SuccessResponse,
                Method::Binding,
                TransactionId([1; 12]),
            );
            e.push(&Attribute::XorMappedAddress(source));
            e.finish()
        };
        let inputs: [&[u8]; 7] = [
            &[],
            &[0x80, 1, 2],
            &[0x16, 0xfe],
            &[0x00, 0x01],
            &oversized,
            &stray,
            &[0x0a, 1, 0xff],
        ];
        for data in inputs {
            n.handle_input(now, Input::Receive { source, data });
        }
        let (transmits, events, _) = drain(&mut n);
        assert!(transmits.is_empty() && events.is_empty());
        let stats = n.stats();
        assert_eq!(stats.received, 7);
        assert_eq!(stats.dropped(DropReason::UnknownProtocol), 2);
        assert_eq!(stats.dropped(DropReason::WebrtcUnmatched), 1);
        assert_eq!(stats.dropped(DropReason::StunMalformed), 1);
        assert_eq!(stats.dropped(DropReason::Oversized), 1);
        assert_eq!(stats.dropped(DropReason::StunUnknownTransaction), 1);
        assert_eq!(stats.dropped(DropReason::DhtMalformed), 1);
        assert_eq!(stats.dropped_total(), 7);
        assert!(stats.to_string().contains("stun_unknown_transaction=1"));
    }
}
