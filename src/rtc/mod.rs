//! WebRTC connections to meeting members: a registry of per-peer
//! [`Conn`]s, all on the node's sockets, with an index by remote address
//! and by local ICE username fragment so that the node's router sends each
//! datagram to its connection without asking every one.
//!
//! Roles follow from node IDs: the lower ID offers, controls ICE and is the
//! DTLS and SCTP client; the higher ID answers. Offers and answers travel as
//! [`SignalKind`] payloads along a signal path (see `node/signaling.rs`).
//! Each side creates the same pre-negotiated, reliable, ordered data
//! channel (SCTP stream [`CHANNEL_STREAM`](conn::CHANNEL_STREAM)), so no in-band channel
//! negotiation is needed. Chat lines are text messages, bytes for one peer
//! binary ones (WebRTC string and binary PPIDs).
//!
//! A connection is one per peer, keyed by node ID, however many addresses
//! it is reached at. Candidates are every local address (host) and the
//! public address of each family learned from STUN, DHT or Mainline peers
//! (server-reflexive, same socket, so it is the NAT mapping peers saw). An attempt that fails, and
//! an open connection that ends, is retried by the offerer with a fresh
//! [`Conn`] after [`RETRY_BACKOFF`], as long as the peer is still a member.
//!
//! str0m draws its own randomness for ICE credentials and DTLS keys; that is
//! the one source of randomness in the core not derived from the node seed.
//!
//! About 990 lines, kept as one file: the registry's maps
//! (connections, their index, retries, members) change together on every
//! offer, answer, datagram, relay frame and end, and the layering keeps
//! sibling files from reaching back into it. The pure parts live beside
//! it: relay choice in `relay_choice.rs`, a connection's relay paths in
//! `relayed.rs`, the index in `index.rs`, one connection in `conn.rs`.

mod attempt;
pub mod conn;
pub mod copies;
mod flows;
mod index;
pub mod link;
mod link_state;
mod outbox;
mod params;
mod relay_choice;
mod relayed;
mod streams;
pub mod window;

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use log::{debug, info, warn};
use str0m::crypto::CryptoProvider;

use attempt::Phase;
pub use conn::MAX_MESSAGE_LEN;
use conn::{Conn, ConnEvent, Crypto};
use index::ConnIndex;
pub use outbox::OUTBOX_LIMIT;

use crate::api::RelayRefusal;
use crate::api::{ConnectionReason, Event, StreamId, Via};
use crate::backoff::Backoff;
use crate::id::NodeId;
use crate::meeting::Meeting;
use crate::nat::NatClass;
use crate::relay::client::{RelayAnswer, RelayPath};
use crate::signal::{RelayHint, Signal, SignalKind};
use crate::stream::{StreamHeader, StreamKind, WriteError};
use crate::transmit::{LocalAddrs, Transmit};

/// Waits before retrying a failed or lost connection: 2 s doubling to 60 s.
pub const RETRY_BACKOFF: Backoff = Backoff::new(Duration::from_secs(2), Duration::from_secs(60));
/// How long a direct connection must have been silent before a datagram
/// of its peer from another port of the same IP ends it as stale (an open
/// connection hears ICE consent checks every 4 s, link reports every
/// second while busy).
pub const RESTART_SILENCE: Duration = Duration::from_secs(1);
/// Most simultaneous connections (str0m instances).
pub const MAX_CONNECTIONS: usize = 32;
/// Bytes of messages queued for one peer above which the connections stop
/// ready to send ([`Node::ready_to_send`](crate::Node::ready_to_send)): the caller pauses
/// its input (standard input) until the peer's channel drains.
pub const OUTBOX_PAUSE: usize = 64 * 1024;

/// A signal to send to a peer along a signal path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutgoingSignal {
    /// The recipient.
    pub to: NodeId,
    /// The connection attempt it belongs to.
    pub session: u64,
    /// What to say.
    pub kind: SignalKind,
}

#[derive(Clone, Copy, Debug)]
struct Retry {
    failures: u32,
    at: Instant,
}

/// All WebRTC connections of a node.
pub struct Connections {
    crypto: Crypto,
    meeting: Meeting,
    local: NodeId,
    locals: LocalAddrs,
    next_session: u64,
    conns: BTreeMap<NodeId, Conn>,
    /// Connections fed datagrams since the last [`settle`](Self::settle).
    unsettled: Vec<NodeId>,
    index: ConnIndex,
    retries: BTreeMap<NodeId, Retry>,
    /// Members to keep connected, with what their records say.
    members: BTreeMap<NodeId, Member>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    signals: VecDeque<OutgoingSignal>,
    relays: relay_choice::RelayChoice,
    /// Stream kinds taken from peers.
    accepted_kinds: Vec<StreamKind>,
    /// The members whose streams are taken; `None` for every member.
    stream_peers: Option<Vec<NodeId>>,
    /// Each connection keeps a stream channel open ahead of need.
    stream_spares: bool,
    /// What the links did since [`take_link_counts`](Self::take_link_counts).
    link_counts: LinkCounts,
    /// Peers whose offer got no answer, for the signaling to try another
    /// path ([`poll_unanswered`](Self::poll_unanswered)).
    unanswered: VecDeque<NodeId>,
}

/// What the connections' links did: loss the peers reported and the
/// copies sent to make up for it (spec §6.6), for [`crate::Stats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkCounts {
    /// Link reports from peers with a loss above zero.
    pub loss_reports: u64,
    /// Copies of data datagrams sent beyond the first on open channels.
    pub extra_copies: u64,
}

/// A member, as the registry needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Member {
    /// The source that found it.
    pub via: Via,
    /// Its NAT's mapping class, as its record says.
    pub nat: NatClass,
    /// Where unsolicited datagrams reach it, when its record says they do:
    /// it can relay for us without a channel of ours to it (§12.1).
    pub reachable_at: Option<SocketAddr>,
}

impl fmt::Debug for Connections {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Connections({} peers)", self.conns.len())
    }
}

impl Connections {
    /// Connections for node `local`, whose sockets are at `locals`; session
    /// numbers start at `first_session`.
    pub fn new(
        crypto: Arc<CryptoProvider>,
        meeting: Meeting,
        local: NodeId,
        locals: LocalAddrs,
        first_session: u64,
    ) -> Self {
        Self {
            crypto: Crypto::new(crypto),
            meeting,
            local,
            locals,
            next_session: first_session,
            conns: BTreeMap::new(),
            unsettled: Vec::new(),
            index: ConnIndex::default(),
            retries: BTreeMap::new(),
            members: BTreeMap::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            signals: VecDeque::new(),
            relays: relay_choice::RelayChoice::default(),
            accepted_kinds: Vec::new(),
            stream_spares: false,
            link_counts: LinkCounts::default(),
            unanswered: VecDeque::new(),
            stream_peers: None,
        }
    }

    /// Nodes that may relay for us when no member can (`serve --relay`
    /// nodes among the bootstrap nodes).
    pub fn set_relay_servers(&mut self, servers: Vec<SocketAddr>) {
        self.relays.set_servers(servers);
    }

    /// More relay candidates (found in the Mainline relay directory),
    /// after those known already.
    pub fn add_relay_servers(&mut self, servers: &[SocketAddr]) {
        self.relays.add_servers(servers);
    }

    /// Names the `serve --relay` candidates the DHT knows (`node_at` gives
    /// the node ID at an address): relay hints then carry the ID, so a
    /// peer that knows the same node at an address of its own family
    /// reaches it there.
    pub fn name_relay_servers(&mut self, node_at: impl Fn(SocketAddr) -> Option<NodeId>) {
        self.relays.name_servers(node_at);
    }

    /// Whether our NAT may need a relay for some peers: then every attempt
    /// proposes relays.
    pub fn set_relay_needed(&mut self, needed: bool) {
        self.relays.needed = needed;
    }

    /// The connection with a relay path bound at `relay` on `channel`.
    pub fn peer_at_relay(&self, relay: SocketAddr, channel: u32) -> Option<NodeId> {
        self.conns
            .iter()
            .find(|(_, c)| c.relays().channels().any(|rc| rc == (relay, channel)))
            .map(|(p, _)| *p)
    }

    /// A relay frame for `peer`'s connection from `relay` on `channel`.
    pub fn receive_relayed(
        &mut self,
        now: Instant,
        peer: NodeId,
        relay: SocketAddr,
        channel: u32,
        data: &[u8],
    ) {
        if let Some(conn) = self.conns.get_mut(&peer)
            && conn.receive_relayed(now, relay, channel, data)
        {
            self.after_receive(now, peer);
        }
    }

    /// A relay's answer to a bind; false if no connection is binding there
    /// with `token`.
    pub fn on_relay_answer(
        &mut self,
        now: Instant,
        relay: SocketAddr,
        token: [u8; 16],
        answer: RelayAnswer,
    ) -> bool {
        let Some(peer) = self
            .conns
            .iter()
            .find(|(_, c)| c.relays().tokens().any(|t| t == (relay, token)))
            .map(|(p, _)| *p)
        else {
            return false;
        };
        let refused = self
            .conns
            .get_mut(&peer)
            .and_then(|conn| conn.on_relay_answer(now, relay, token, answer));
        // Only a refusal that echoes our cookie (from the relay's address,
        // which proved itself by challenging us) excludes it for good.
        if refused == Some(RelayRefusal::NotARelay) {
            self.relays.refused(relay);
        }
        self.collect(now, peer);
        true
    }

    /// Number of str0m instances.
    pub fn len(&self) -> usize {
        self.conns.len()
    }

    /// Bytes str0m may hold for sending, over every open connection:
    /// within [`window::TOTAL_WINDOW`].
    pub fn send_window(&self) -> usize {
        self.conns
            .values()
            .filter(|c| c.phase() == Phase::Open)
            .map(Conn::window_limit)
            .sum()
    }

    /// Gives each connection its share of the total window, after the
    /// number of open ones changed.
    fn share_windows(&mut self) {
        let open = self
            .conns
            .values()
            .filter(|c| c.phase() == Phase::Open)
            .count();
        let share = window::SendWindow::share(open);
        for conn in self.conns.values_mut() {
            conn.set_window_share(share);
        }
    }

    /// True if the channel to `peer` is open.
    pub fn is_connected(&self, peer: &NodeId) -> bool {
        self.conns
            .get(peer)
            .is_some_and(|c| c.phase() == Phase::Open)
    }

    /// The connection that sends to or receives from `addr`.
    pub fn peer_at(&self, addr: SocketAddr) -> Option<NodeId> {
        self.index.by_addr.get(&addr).copied()
    }

    /// The connection whose local ICE username fragment is `ufrag`.
    pub fn peer_with_ufrag(&self, ufrag: &str) -> Option<NodeId> {
        self.index.by_ufrag.get(ufrag).copied()
    }

    /// `peer` is a member of the meeting: connect to it (if we offer).
    pub fn add_member(
        &mut self,
        now: Instant,
        peer: NodeId,
        member: Member,
        public: &[SocketAddr],
    ) {
        self.members.insert(peer, member);
        if self.local < peer && !self.conns.contains_key(&peer) {
            self.offer(now, peer, public);
        }
    }

    /// `peer` is no longer a member: stop retrying, and drop an unopened attempt.
    pub fn remove_member(&mut self, peer: &NodeId) {
        self.members.remove(peer);
        self.retries.remove(peer);
        if self
            .conns
            .get(peer)
            .is_some_and(|c| c.phase() != Phase::Open)
        {
            self.drop_conn(peer);
        }
    }

    /// Acts on a verified signal from a member.
    pub fn on_signal(&mut self, now: Instant, signal: Signal, via: Via, public: &[SocketAddr]) {
        let peer = signal.from;
        match signal.kind {
            SignalKind::Offer(params) => {
                if self.local < peer {
                    debug!(
                        "webrtc: ignoring an offer from {}, which should answer",
                        peer.short()
                    );
                    return;
                }
                if self.conns.len() >= MAX_CONNECTIONS && !self.conns.contains_key(&peer) {
                    warn!(
                        "webrtc: {MAX_CONNECTIONS} connections; refusing {}",
                        peer.short()
                    );
                    return;
                }
                if let Some(conn) = self.conns.get_mut(&peer)
                    && conn.session() == signal.session
                {
                    // The offer again: our answer was lost, or is slow.
                    debug!("webrtc: {} offered again; answering again", peer.short());
                    let answer = conn.local_params();
                    return self.signal(peer, signal.session, SignalKind::Answer(answer));
                }
                if self
                    .conns
                    .get(&peer)
                    .is_some_and(|c| c.phase() == Phase::Open)
                {
                    // Its streams end and the application hears of it.
                    self.end(now, peer, ConnectionReason::Replaced);
                }
                self.drop_conn(&peer);
                self.members.entry(peer).or_insert(Member {
                    via,
                    nat: NatClass::Unknown,
                    reachable_at: None,
                });
                let mut conn = Conn::new(
                    now,
                    &self.crypto,
                    &self.locals,
                    public,
                    signal.session,
                    false,
                );
                let hinted = self.hinted_paths(now, peer, signal.session, &params.relays.0);
                let none_usable = hinted.is_empty();
                if !hinted.is_empty() {
                    conn.set_wants_relay();
                }
                for (path, _) in hinted {
                    conn.add_relay(path, None);
                }
                // Relays of our own when we need one and the offer lists
                // none, or lists only relays we cannot reach.
                let asked = !params.relays.0.is_empty();
                if (self.relays.needed || asked) && none_usable {
                    self.propose_relays(now, &mut conn, peer, signal.session, 0);
                }
                if let Err(error) = conn.start(&params, false) {
                    warn!("webrtc: bad offer from {}: {error}", peer.short());
                    return;
                }
                let answer = conn.local_params();
                debug!(
                    "webrtc: answering {} (session {})",
                    peer.short(),
                    signal.session
                );
                self.signal(peer, signal.session, SignalKind::Answer(answer));
                self.insert(peer, conn);
            }
            SignalKind::Answer(params) => {
                let Some(conn) = self.conns.get_mut(&peer) else {
                    return;
                };
                if conn.session() != signal.session || conn.phase() != Phase::AwaitingAnswer {
                    debug!("webrtc: stale answer from {}", peer.short());
                    return;
                }
                let hinted = self.hinted_paths(now, peer, signal.session, &params.relays.0);
                let Some(conn) = self.conns.get_mut(&peer) else {
                    return;
                };
                if !hinted.is_empty() {
                    conn.set_wants_relay();
                }
                for (path, _) in hinted {
                    conn.add_relay(path, None);
                }
                if let Err(error) = conn.start(&params, true) {
                    warn!("webrtc: bad answer from {}: {error}", peer.short());
                    return;
                }
                debug!("webrtc: {} answered; connecting", peer.short());
                self.collect(now, peer);
            }
            SignalKind::Close => {
                if self.conns.contains_key(&peer) {
                    self.end(now, peer, ConnectionReason::PeerLeft);
                }
            }
        }
    }

    /// A datagram the router gave to `peer`'s connection (ICE or DTLS)
    /// from `source`, received on our `destination`.
    pub fn receive(
        &mut self,
        now: Instant,
        peer: NodeId,
        source: SocketAddr,
        destination: SocketAddr,
        data: &[u8],
    ) {
        let Some(conn) = self.conns.get_mut(&peer) else {
            return;
        };
        conn.receive(now, source, destination, data);
        self.index.by_addr.insert(source, peer);
        self.after_receive(now, peer);
    }

    /// Leaves `peer`'s open connection to be polled at the next settle,
    /// or polls it now: while it is being set up (what it sends tells the
    /// index where the next datagrams come from, and a delay costs ICE a
    /// retransmission) or when it may not be fed more first.
    fn after_receive(&mut self, now: Instant, peer: NodeId) {
        match self.conns.get_mut(&peer) {
            Some(conn) if conn.phase() != Phase::Open || conn.must_settle() => {
                conn.settle();
                self.collect(now, peer);
            }
            Some(_) if !self.unsettled.contains(&peer) => self.unsettled.push(peer),
            _ => {}
        }
    }

    /// Polls the connections that received datagrams since the last call
    /// and collects what they put out: the node calls it once per batch
    /// of datagrams (before any other input, and before its outputs are
    /// drained).
    pub fn settle(&mut self, now: Instant) {
        for peer in std::mem::take(&mut self.unsettled) {
            if let Some(conn) = self.conns.get_mut(&peer) {
                conn.settle();
                self.collect(now, peer);
            }
        }
    }

    /// Queues `texts`, in order, for every open channel and sends what the
    /// channels have room for; returns how many peers got at least one of
    /// them. A peer whose outbox is full (see [`OUTBOX_LIMIT`]) misses the
    /// messages that do not fit, with a warning. str0m is polled once per
    /// peer for the whole batch: each poll walks SCTP's in-flight queue, so
    /// polling after every message costs more than the messages.
    pub fn send_texts<T: AsRef<str>>(&mut self, now: Instant, texts: &[T]) -> usize {
        let open: Vec<NodeId> = self
            .conns
            .iter()
            .filter(|(_, c)| c.phase() == Phase::Open)
            .map(|(p, _)| *p)
            .collect();
        let mut reached = 0;
        for peer in open {
            let messages = texts.iter().map(|t| t.as_ref().as_bytes());
            reached += usize::from(self.queue(now, peer, false, messages) > 0);
        }
        reached
    }

    /// Queues `bytes` for `peer` alone, or says why not.
    pub fn send_to(&mut self, now: Instant, peer: NodeId, bytes: &[u8]) -> Result<(), WriteError> {
        if bytes.len() > MAX_MESSAGE_LEN {
            return Err(WriteError::TooLong);
        }
        if !self.is_connected(&peer) {
            return Err(WriteError::NotConnected);
        }
        match self.queue(now, peer, true, [bytes]) {
            1 => Ok(()),
            _ => Err(WriteError::Blocked),
        }
    }

    fn queue<'a>(
        &mut self,
        now: Instant,
        peer: NodeId,
        binary: bool,
        messages: impl IntoIterator<Item = &'a [u8]>,
    ) -> usize {
        let Some(conn) = self.conns.get_mut(&peer) else {
            return 0;
        };
        let mut queued = 0;
        for message in messages {
            if message.len() > MAX_MESSAGE_LEN {
                warn!(
                    "webrtc: a {}-byte message is longer than {MAX_MESSAGE_LEN}; not sent",
                    message.len()
                );
            } else if conn.queue(binary, message) {
                queued += 1;
            } else if conn.refused() == 1 {
                warn!(
                    "webrtc: {OUTBOX_LIMIT} bytes already queued for {}; dropping messages until it drains",
                    peer.short()
                );
            }
        }
        conn.flush();
        self.collect(now, peer);
        queued
    }

    /// Takes streams of `kinds` from peers from now on (others are reset
    /// as refused).
    pub fn set_accepted_kinds(&mut self, kinds: &[StreamKind]) {
        self.accepted_kinds = kinds.to_vec();
        for conn in self.conns.values_mut() {
            conn.set_accepted_kinds(kinds);
        }
    }

    /// Whether every connection keeps a stream channel open ahead of need
    /// (spec §6.7), so a stream opened on it writes at once.
    pub fn set_stream_spares(&mut self, keep: bool) {
        self.stream_spares = keep;
        for conn in self.conns.values_mut() {
            conn.set_stream_spare(keep);
        }
    }

    /// Takes streams only from, and opens them only to, `peers` (every
    /// member when `None`).
    pub fn set_stream_peers(&mut self, peers: Option<&[NodeId]>) {
        self.stream_peers = peers.map(<[NodeId]>::to_vec);
        for (peer, conn) in &mut self.conns {
            conn.set_peer_allowed(self.stream_peers.as_ref().is_none_or(|p| p.contains(peer)));
        }
    }

    /// Opens a stream to `peer` for `header`.
    pub fn open_stream(
        &mut self,
        now: Instant,
        peer: NodeId,
        header: StreamHeader,
    ) -> Result<StreamId, WriteError> {
        let conn = self.conns.get_mut(&peer).ok_or(WriteError::NotConnected)?;
        let session = conn.session();
        let number = conn.open_stream(header);
        self.collect(now, peer);
        Ok(StreamId::new(peer, session, number?))
    }

    /// Runs `action` on the connection of `stream`, then takes its events.
    pub fn with_stream<T>(
        &mut self,
        now: Instant,
        stream: StreamId,
        action: impl FnOnce(&mut Conn, u32) -> Result<T, WriteError>,
    ) -> Result<T, WriteError> {
        let conn = self
            .conns
            .get_mut(&stream.peer())
            .filter(|c| c.session() == stream.session())
            .ok_or(WriteError::NotConnected)?;
        let result = action(conn, stream.number());
        self.collect(now, stream.peer());
        result
    }

    /// True while some channel is open and every open channel has fewer
    /// than [`OUTBOX_PAUSE`] bytes queued: the caller may hand over more
    /// messages.
    pub fn ready_to_send(&self) -> bool {
        // With no channel open, nothing is taken: lines typed before the
        // first member connects wait (in the pipe or terminal) and go to
        // it, rather than to nobody.
        self.conns.values().any(|c| c.phase() == Phase::Open)
            && self
                .conns
                .values()
                .all(|c| c.phase() != Phase::Open || c.queued_bytes() < OUTBOX_PAUSE)
    }

    /// A verified datagram of `peer` (a beacon or a hello) came from
    /// `source`, with a record newer than any we had of it if `fresh`.
    /// If our direct connection to it is at the same IP but another port,
    /// the peer restarted (a node has one socket per family), provided the
    /// record is fresh (a replayed one is not) or the connection has heard
    /// nothing for [`RESTART_SILENCE`]: the old connection is ended at
    /// once, and made again now if we offer, instead of waiting for ICE to
    /// time out (12 to 16 s). True if so.
    pub fn restart_if_stale(
        &mut self,
        now: Instant,
        peer: NodeId,
        source: SocketAddr,
        fresh: bool,
    ) -> bool {
        let stale = self
            .conns
            .get(&peer)
            .and_then(Conn::direct_path)
            .is_some_and(|(remote, heard_at)| {
                remote.ip() == source.ip()
                    && remote.port() != source.port()
                    && (fresh || now.saturating_duration_since(heard_at) >= RESTART_SILENCE)
            });
        if stale {
            info!(
                "webrtc: {} is back at {source}: it restarted; connecting again",
                peer.short()
            );
            self.end(now, peer, ConnectionReason::Replaced);
            if let Some(retry) = self.retries.get_mut(&peer) {
                retry.at = now;
            }
        }
        stale
    }

    /// Our addresses changed to `locals`: every connection's path used
    /// the old ones, so each is ended (its streams reset, the peer told)
    /// and made again, at once by the side that offers; the other side
    /// offers on the peer's next retry. Connections yet to come use the
    /// new addresses.
    pub fn restart_all(&mut self, now: Instant, locals: LocalAddrs) {
        self.locals = locals;
        let peers: Vec<NodeId> = self.conns.keys().copied().collect();
        for peer in peers {
            if let Some(conn) = self.conns.get(&peer) {
                self.signals.push_back(OutgoingSignal {
                    to: peer,
                    session: conn.session(),
                    kind: SignalKind::Close,
                });
            }
            self.end(now, peer, ConnectionReason::AddressChanged);
            if let Some(retry) = self.retries.get_mut(&peer) {
                retry.at = now;
            }
        }
    }

    /// Closes every channel (the node is leaving: its streams are reset)
    /// and tells each peer.
    pub fn close_all(&mut self, now: Instant) {
        let peers: Vec<NodeId> = self.conns.keys().copied().collect();
        for peer in peers {
            if let Some(conn) = self.conns.get_mut(&peer) {
                conn.close();
                conn.lose_streams();
                self.signals.push_back(OutgoingSignal {
                    to: peer,
                    session: conn.session(),
                    kind: SignalKind::Close,
                });
            }
            self.collect(now, peer);
        }
        self.members.clear();
        self.retries.clear();
    }

    /// Advances every connection to `now`: str0m timers, connect deadlines, retries.
    pub fn handle_timeout(&mut self, now: Instant, public: &[SocketAddr]) {
        let due: Vec<NodeId> = self
            .conns
            .iter()
            .filter(|(_, c)| c.poll_timeout().is_some_and(|at| now >= at))
            .map(|(p, _)| *p)
            .collect();
        for peer in due {
            if let Some(conn) = self.conns.get_mut(&peer) {
                conn.handle_timeout(now);
            }
            self.collect(now, peer);
        }
        let retry_now: Vec<NodeId> = self
            .retries
            .iter()
            .filter(|(peer, r)| now >= r.at && !self.conns.contains_key(*peer))
            .map(|(p, _)| *p)
            .collect();
        for peer in retry_now {
            if self.members.contains_key(&peer) && self.local < peer {
                self.offer(now, peer, public);
            }
        }
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next event: [`Event::Connected`], [`Event::Message`],
    /// [`Event::Data`], [`Event::Disconnected`] or [`Event::ConnectFailed`].
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The next peer whose offer got no answer (its offer's signal path
    /// may be the reason; the node's signaling tries another).
    pub fn poll_unanswered(&mut self) -> Option<NodeId> {
        self.unanswered.pop_front()
    }

    /// What the links did since the last call (and resets it).
    pub fn take_link_counts(&mut self) -> LinkCounts {
        std::mem::take(&mut self.link_counts)
    }

    /// The next signal to send.
    pub fn poll_signal(&mut self) -> Option<OutgoingSignal> {
        self.signals.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) must next run.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let conns = self.conns.values().map(Conn::poll_timeout);
        let retries = self
            .retries
            .iter()
            .filter(|(peer, _)| !self.conns.contains_key(*peer) && self.local < **peer)
            .map(|(_, r)| Some(r.at));
        conns.chain(retries).flatten().min()
    }

    fn offer(&mut self, now: Instant, peer: NodeId, public: &[SocketAddr]) {
        if self.conns.len() >= MAX_CONNECTIONS {
            warn!(
                "webrtc: {MAX_CONNECTIONS} connections; not connecting to {}",
                peer.short()
            );
            return;
        }
        let session = self.next_session;
        self.next_session = self.next_session.wrapping_add(1);
        let mut conn = Conn::new(now, &self.crypto, &self.locals, public, session, true);
        let failures = self.retries.get(&peer).map_or(0, |r| r.failures);
        let peer_needs = self
            .members
            .get(&peer)
            .is_some_and(|m| m.nat.mapping_varies());
        if self.relays.needed || peer_needs || failures > 0 {
            self.propose_relays(now, &mut conn, peer, session, failures);
        }
        let offer = conn.local_params();
        debug!("webrtc: offering to {} (session {session})", peer.short());
        self.signal(peer, session, SignalKind::Offer(offer));
        self.insert(peer, conn);
        self.collect(now, peer);
    }

    /// Gives `conn` (attempt `session` with `peer`) the relays we choose
    /// (`relay_choice.rs`).
    fn propose_relays(
        &self,
        now: Instant,
        conn: &mut Conn,
        peer: NodeId,
        session: u64,
        failures: u32,
    ) {
        conn.set_wants_relay();
        let direct = self
            .conns
            .iter()
            .filter_map(|(p, c)| c.direct_addr().map(|a| (*p, a)));
        let reachable = self
            .members
            .iter()
            .filter_map(|(p, m)| m.reachable_at.map(|a| (*p, a)));
        let hints = self.relays.propose(direct, reachable, peer, failures);
        if hints.is_empty() {
            debug!("relay: no relay to propose to {}", peer.short());
        }
        for (path, hint) in self.hinted_paths(now, peer, session, &hints) {
            conn.add_relay(path, Some(hint));
        }
    }

    /// Paths through the relays `hints` name, for attempt `session` with
    /// `peer`; a member relay is reached where our channel to it goes.
    fn hinted_paths(
        &self,
        now: Instant,
        peer: NodeId,
        session: u64,
        hints: &[RelayHint],
    ) -> Vec<(RelayPath, RelayHint)> {
        relay_choice::paths_for(
            &self.meeting,
            (self.local, peer),
            now,
            session,
            hints,
            |node| {
                self.conns
                    .get(&node)
                    .and_then(Conn::direct_addr)
                    .or_else(|| self.relays.server_named(node))
            },
            |relay| self.locals.reach(relay),
        )
    }

    /// Queues a signal of attempt `session` to `peer`.
    fn signal(&mut self, peer: NodeId, session: u64, kind: SignalKind) {
        self.signals.push_back(OutgoingSignal {
            to: peer,
            session,
            kind,
        });
    }

    fn insert(&mut self, peer: NodeId, mut conn: Conn) {
        conn.set_accepted_kinds(&self.accepted_kinds);
        conn.set_stream_spare(self.stream_spares);
        conn.set_peer_allowed(self.stream_peers.as_ref().is_none_or(|p| p.contains(&peer)));
        self.index.by_ufrag.insert(conn.ufrag().to_owned(), peer);
        self.conns.insert(peer, conn);
    }

    /// Takes what `peer`'s connection reported: datagrams (indexed by
    /// destination), user events, and its end.
    fn collect(&mut self, now: Instant, peer: NodeId) {
        while let Some(event) = self.conns.get_mut(&peer).and_then(Conn::poll_event) {
            match event {
                ConnEvent::Transmit(transmit) => {
                    self.index.by_addr.insert(transmit.destination, peer);
                    self.transmits.push_back(transmit);
                }
                ConnEvent::RelayTransmit(transmit) => self.transmits.push_back(transmit),
                ConnEvent::Opened { addr, relay } => {
                    let how = if relay { "through the relay" } else { "at" };
                    info!("webrtc: connected to {} {how} {addr}", peer.short());
                    self.retries.remove(&peer);
                    self.share_windows();
                    let via = self.members.get(&peer).map_or(Via::Offer, |m| m.via);
                    self.events.push_back(Event::Connected {
                        peer,
                        addr,
                        via,
                        relay,
                    });
                }
                ConnEvent::PathChanged { addr, relay } => {
                    info!(
                        "webrtc: {} now {} {addr}",
                        peer.short(),
                        if relay {
                            "through the relay"
                        } else {
                            "direct at"
                        }
                    );
                    self.events
                        .push_back(Event::PathChanged { peer, addr, relay });
                }
                ConnEvent::LossReported => self.link_counts.loss_reports += 1,
                ConnEvent::ExtraCopies(count) => self.link_counts.extra_copies += count,
                ConnEvent::Text(text) => self.events.push_back(Event::Message { peer, text }),
                ConnEvent::Bytes(bytes) => self.events.push_back(Event::Data { peer, bytes }),
                ConnEvent::Ended(reason) => self.end(now, peer, reason),
                ConnEvent::Stream(event) => {
                    let session = self.conns.get(&peer).map_or(0, Conn::session);
                    self.events.push_back(event.into_event(peer, session));
                }
                ConnEvent::ResendOffer => {
                    if let Some(conn) = self.conns.get_mut(&peer) {
                        let (session, offer) = (conn.session(), conn.local_params());
                        debug!("webrtc: no answer from {}; offering again", peer.short());
                        self.signal(peer, session, SignalKind::Offer(offer));
                    }
                }
            }
        }
    }

    /// The connection to `peer` ended (open) or failed (not yet open):
    /// report, drop, retry later.
    fn end(&mut self, now: Instant, peer: NodeId, reason: ConnectionReason) {
        let Some(conn) = self.conns.get(&peer) else {
            return;
        };
        let was_open = conn.phase() == Phase::Open;
        if was_open {
            info!("webrtc: {} disconnected: {reason}", peer.short());
            self.events.push_back(Event::Disconnected { peer, reason });
        } else {
            info!("webrtc: connecting to {} failed: {reason}", peer.short());
            self.events.push_back(Event::ConnectFailed { peer, reason });
            if reason == ConnectionReason::NoAnswer {
                self.unanswered.push_back(peer);
            }
        }
        if let Some(conn) = self.conns.get_mut(&peer) {
            let session = conn.session();
            conn.lose_streams();
            while let Some(event) = conn.poll_event() {
                if let ConnEvent::Stream(event) = event {
                    self.events.push_back(event.into_event(peer, session));
                }
            }
        }
        self.drop_conn(&peer);
        self.schedule_retry(now, peer, !was_open);
    }

    fn schedule_retry(&mut self, now: Instant, peer: NodeId, failed: bool) {
        let failures = self.retries.get(&peer).map_or(0, |r| r.failures) + u32::from(failed);
        let wait = RETRY_BACKOFF.delay(failures.saturating_sub(1));
        if self.local < peer && self.members.contains_key(&peer) {
            debug!(
                "webrtc: retrying {} in {:.0} s",
                peer.short(),
                wait.as_secs_f64()
            );
        }
        self.retries.insert(
            peer,
            Retry {
                failures,
                at: now + wait,
            },
        );
    }

    fn drop_conn(&mut self, peer: &NodeId) {
        if let Some(mut conn) = self.conns.remove(peer) {
            conn.disconnect();
        }
        self.index.forget(peer);
        self.share_windows();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: NodeId = NodeId([1; 32]);
    const B: NodeId = NodeId([2; 32]);

    fn addr(last: u8) -> SocketAddr {
        SocketAddr::from(([10, 0, 0, last], 4000))
    }

    fn member() -> Member {
        Member {
            via: Via::Dht,
            nat: NatClass::Unknown,
            reachable_at: None,
        }
    }

    /// Two registries back to back (A offers: its ID is lower), signals
    /// carried at once, datagrams delivered to the registry at their
    /// destination; the clock jumps to the next deadline.
    struct Net {
        now: Instant,
        a: Connections,
        b: Connections,
        /// Offers and answers carried, and what A heard.
        carried: Vec<(NodeId, SignalKind)>,
        a_events: Vec<(Instant, Event)>,
        /// Carry signals (off: they are lost).
        signals_on: bool,
    }

    impl Net {
        fn new() -> Self {
            let now = Instant::now();
            let crypto = Arc::new(str0m::crypto::from_feature_flags());
            let meeting = Meeting::derive("registry tests").unwrap();
            let registry = |id, at| {
                Connections::new(
                    Arc::clone(&crypto),
                    meeting.clone(),
                    id,
                    LocalAddrs::new(vec![addr(at)]),
                    1,
                )
            };
            Self {
                now,
                a: registry(A, 1),
                b: registry(B, 2),
                carried: Vec::new(),
                a_events: Vec::new(),
                signals_on: true,
            }
        }

        fn signal(from: NodeId, out: OutgoingSignal, seq: u64) -> Signal {
            Signal {
                from,
                seq,
                session: out.session,
                timestamp_ms: 0,
                kind: out.kind,
            }
        }

        /// Carries everything pending, then advances the clock to the next
        /// deadline (at most 1 s on).
        fn step(&mut self) {
            let now = self.now;
            let mut seq = 0;
            while let Some(out) = self.a.poll_signal() {
                seq += 1;
                self.carried.push((A, out.kind.clone()));
                if self.signals_on {
                    self.b
                        .on_signal(now, Self::signal(A, out, seq), Via::Dht, &[]);
                }
            }
            while let Some(out) = self.b.poll_signal() {
                seq += 1;
                self.carried.push((B, out.kind.clone()));
                if self.signals_on {
                    self.a
                        .on_signal(now, Self::signal(B, out, seq), Via::Dht, &[]);
                }
            }
            while let Some(t) = self.a.poll_transmit() {
                self.b.receive(now, A, t.source, t.destination, &t.payload);
            }
            while let Some(t) = self.b.poll_transmit() {
                self.a.receive(now, B, t.source, t.destination, &t.payload);
            }
            self.a.settle(now);
            self.b.settle(now);
            while let Some(event) = self.a.poll_event() {
                self.a_events.push((now, event));
            }
            while self.b.poll_event().is_some() {}
            let next = [self.a.poll_timeout(), self.b.poll_timeout()]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or(now + Duration::from_secs(1))
                .clamp(now + Duration::from_millis(1), now + Duration::from_secs(1));
            self.now = next;
            self.a.handle_timeout(next, &[]);
            self.b.handle_timeout(next, &[]);
        }

        fn offers(&self) -> usize {
            self.carried
                .iter()
                .filter(|(from, k)| *from == A && matches!(k, SignalKind::Offer(_)))
                .count()
        }
    }

    #[test]
    fn the_lower_id_offers_and_both_connect() {
        let mut net = Net::new();
        net.a.add_member(net.now, B, member(), &[]);
        net.b.add_member(net.now, A, member(), &[]);
        for _ in 0..300 {
            if net.a.is_connected(&B) && net.b.is_connected(&A) {
                break;
            }
            net.step();
        }
        assert!(net.a.is_connected(&B) && net.b.is_connected(&A));
        assert_eq!(net.offers(), 1, "only A offers, once");
        assert!(
            net.a_events
                .iter()
                .any(|(_, e)| matches!(e, Event::Connected { peer, .. } if *peer == B))
        );
    }

    #[test]
    fn a_repeated_offer_is_answered_again_and_a_stale_answer_ignored() {
        let mut net = Net::new();
        net.signals_on = false;
        net.a.add_member(net.now, B, member(), &[]);
        // The offer is lost; A sends it again on its schedule.
        while net.offers() < 2 {
            net.step();
        }
        net.signals_on = true;
        let Some((_, SignalKind::Offer(params))) = net
            .carried
            .iter()
            .find(|(f, k)| *f == A && matches!(k, SignalKind::Offer(_)))
        else {
            panic!("an offer")
        };
        let params = params.clone();
        let session = net.a.conns[&B].session();
        let offer = |seq| Signal {
            from: A,
            seq,
            session,
            timestamp_ms: 0,
            kind: SignalKind::Offer(params.clone()),
        };
        net.b.on_signal(net.now, offer(1), Via::Dht, &[]);
        net.b.on_signal(net.now, offer(2), Via::Dht, &[]);
        let answers: Vec<OutgoingSignal> = std::iter::from_fn(|| net.b.poll_signal()).collect();
        assert_eq!(answers.len(), 2, "each offer is answered");
        assert!(answers.iter().all(|a| a.session == session));
        // An answer of another session is stale: A still awaits its own.
        let stale = Signal {
            from: B,
            seq: 3,
            session: session + 1,
            timestamp_ms: 0,
            kind: answers[0].kind.clone(),
        };
        net.a.on_signal(net.now, stale, Via::Dht, &[]);
        assert_eq!(net.a.conns[&B].phase(), Phase::AwaitingAnswer);
    }

    #[test]
    fn an_unanswered_offer_fails_is_reported_and_retried_with_backoff() {
        let mut net = Net::new();
        net.signals_on = false;
        let start = net.now;
        net.a.add_member(net.now, B, member(), &[]);
        let failed_at = loop {
            net.step();
            if let Some((at, event)) = net
                .a_events
                .iter()
                .find(|(_, e)| matches!(e, Event::ConnectFailed { .. }))
            {
                let reason = ConnectionReason::NoAnswer;
                assert_eq!(*event, Event::ConnectFailed { peer: B, reason });
                break *at;
            }
        };
        assert_eq!(
            net.a.poll_unanswered(),
            Some(B),
            "the signaling hears of it"
        );
        assert!(failed_at - start >= attempt::CONNECT_TIMEOUT);
        // The retry comes RETRY_BACKOFF's first delay later, with a new
        // session.
        let first = net.a.conns.get(&B).map(Conn::session);
        assert_eq!(first, None, "the failed attempt is gone");
        while !net.a.conns.contains_key(&B) {
            net.step();
        }
        assert!(net.now - failed_at >= RETRY_BACKOFF.delay(0));
    }

    #[test]
    fn offers_past_the_connection_cap_are_refused() {
        let mut net = Net::new();
        let params = {
            net.a.add_member(net.now, B, member(), &[]);
            let out = net.a.poll_signal().expect("an offer");
            let SignalKind::Offer(params) = out.kind else {
                panic!("an offer")
            };
            params
        };
        // B (a higher ID than every offerer below) already holds the cap.
        let mut b = Connections::new(
            Arc::new(str0m::crypto::from_feature_flags()),
            Meeting::derive("registry tests").unwrap(),
            NodeId([0xff; 32]),
            LocalAddrs::new(vec![addr(9)]),
            1,
        );
        for i in 0..=MAX_CONNECTIONS as u8 {
            let offer = Signal {
                from: NodeId([i; 32]),
                seq: 1,
                session: 1,
                timestamp_ms: 0,
                kind: SignalKind::Offer(params.clone()),
            };
            b.on_signal(net.now, offer, Via::Dht, &[]);
        }
        assert_eq!(b.len(), MAX_CONNECTIONS);
        let answers = std::iter::from_fn(|| b.poll_signal()).count();
        assert_eq!(
            answers, MAX_CONNECTIONS,
            "the one past the cap gets no answer"
        );
    }
}
