//! WebRTC connections to meeting members: one str0m [`Rtc`] per peer, all on
//! the node's one socket, driven by the node's time and datagrams.
//!
//! Roles follow from node IDs: the lower ID offers, controls ICE and is the
//! DTLS and SCTP client; the higher ID answers. Offers and answers travel as
//! [`SignalKind`] payloads through the DHT (see `signal.rs`). Each side
//! creates the same pre-negotiated, reliable, ordered data channel (SCTP
//! stream [`CHANNEL_STREAM`]), so no in-band channel negotiation is needed.
//!
//! Candidates are the socket's concrete local address (host) and the public
//! address learned from STUN or DHT peers (server-reflexive, same socket, so
//! it is the NAT mapping peers saw). str0m has no ICE "failed" state, so a
//! connection that is not open [`CONNECT_TIMEOUT`] after its offer fails; the
//! offerer retries with a fresh `Rtc` (fresh credentials and candidates)
//! after a backoff of [`RETRY_FIRST`] doubling to [`RETRY_MAX`], as long as
//! the peer is still a known member. A connection whose ICE state becomes
//! disconnected, or whose channel closes, is dropped and retried the same way.
//!
//! str0m draws its own randomness for ICE credentials and DTLS keys; that is
//! the one source of randomness in the core not derived from the node seed.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use log::{debug, info, warn};
use str0m::channel::{ChannelConfig, ChannelId};
use str0m::crypto::{CryptoProvider, Fingerprint};
use str0m::net::{Protocol as NetProtocol, Receive};
use str0m::{
    Candidate, Event as RtcEvent, IceConnectionState, IceCreds, Input as RtcInput,
    Output as RtcOutput, Rtc,
};

use crate::codec::{Blob, BoundedList, WireAddr};
use crate::id::NodeId;
use crate::node::Event;
use crate::signal::{MAX_CANDIDATES, SessionParams, Signal, SignalKind};
use crate::transmit::Transmit;

/// Time from an offer to an open data channel before the attempt fails.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// First wait before retrying a failed or lost connection.
pub const RETRY_FIRST: Duration = Duration::from_secs(2);
/// Longest wait between retries.
pub const RETRY_MAX: Duration = Duration::from_secs(60);
/// STUN retransmissions before ICE declares a pair dead. With str0m's
/// schedule (250 ms doubling, capped at [`ICE_KEEPALIVE`]) a silent peer is
/// noticed 12 to 16 s after it went quiet, instead of str0m's default 30 s.
pub const ICE_MAX_RETRANSMITS: usize = 5;
/// Interval of the ICE consent checks on an open connection: str0m's
/// largest STUN retransmission timeout, which its schedule reaches after
/// [`ICE_MAX_RETRANSMITS`] doublings. str0m's default is 3 s; each check
/// wakes both peers twice (request and response), so this interval sets most
/// of an idle member's wakeups. RFC 7675 asks for about 5 s.
pub const ICE_KEEPALIVE: Duration = Duration::from_secs(4);
/// Most simultaneous connections (str0m instances).
pub const MAX_CONNECTIONS: usize = 32;
/// SCTP stream of the pre-negotiated data channel.
pub const CHANNEL_STREAM: u16 = 0;
/// Label of the data channel.
pub const CHANNEL_LABEL: &str = "tinynode";
/// Longest chat message sent or accepted, in bytes.
pub const MAX_MESSAGE_LEN: usize = 16 * 1024;
/// Bytes of messages queued for one peer above which the connections stop
/// being [`ready to send`](Connections::ready_to_send): the caller pauses
/// its input (standard input) until the peer's channel drains.
pub const OUTBOX_PAUSE: usize = 64 * 1024;
/// Most bytes queued for one peer; a message that would exceed it is dropped
/// for that peer (only a caller that ignores readiness gets there).
pub const OUTBOX_LIMIT: usize = 256 * 1024;

/// A signal to send to a peer through the DHT.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutgoingSignal {
    /// The recipient.
    pub to: NodeId,
    /// The connection attempt it belongs to.
    pub session: u64,
    /// What to say.
    pub kind: SignalKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    AwaitingAnswer,
    Connecting,
    Open,
}

struct Conn {
    rtc: Rtc,
    /// Our candidate addresses, as signaled.
    candidates: Vec<SocketAddr>,
    session: u64,
    phase: Phase,
    channel: ChannelId,
    deadline: Instant,
    wake: Option<Instant>,
    remote: Option<SocketAddr>,
    /// Messages waiting for room in the channel's SCTP send buffer.
    outbox: Outbox,
}

/// Messages for one peer that str0m's send buffer has no room for yet, in
/// order, bounded by [`OUTBOX_LIMIT`] bytes.
#[derive(Default)]
struct Outbox {
    messages: VecDeque<Vec<u8>>,
    bytes: usize,
    /// Messages refused since the last one accepted.
    dropped: u64,
}

impl Outbox {
    /// Queues `message`; false (and nothing queued) when it would exceed the limit.
    fn push(&mut self, message: &[u8]) -> bool {
        if self.bytes + message.len() > OUTBOX_LIMIT {
            self.dropped += 1;
            return false;
        }
        self.dropped = 0;
        self.bytes += message.len();
        self.messages.push_back(message.to_vec());
        true
    }

    /// Hands messages to `write` in order until it refuses one (returns
    /// false); returns how many it took.
    fn flush(&mut self, mut write: impl FnMut(&[u8]) -> bool) -> usize {
        let mut taken = 0;
        while let Some(message) = self.messages.front() {
            if !write(message) {
                break;
            }
            self.bytes -= message.len();
            self.messages.pop_front();
            taken += 1;
        }
        taken
    }
}

#[derive(Clone, Copy, Debug)]
struct Retry {
    failures: u32,
    at: Instant,
}

/// Why a datagram was not taken by any connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NotAccepted;

/// All WebRTC connections of a node.
pub struct Connections {
    crypto: Arc<CryptoProvider>,
    local: NodeId,
    host: SocketAddr,
    next_session: u64,
    conns: BTreeMap<NodeId, Conn>,
    by_addr: BTreeMap<SocketAddr, NodeId>,
    retries: BTreeMap<NodeId, Retry>,
    members: BTreeSet<NodeId>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    signals: VecDeque<OutgoingSignal>,
}

impl fmt::Debug for Connections {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Connections({} peers)", self.conns.len())
    }
}

impl Connections {
    /// Connections for node `local`, whose socket's concrete address is
    /// `host`; session numbers start at `first_session`.
    pub fn new(
        crypto: Arc<CryptoProvider>,
        local: NodeId,
        host: SocketAddr,
        first_session: u64,
    ) -> Self {
        Self {
            crypto,
            local,
            host,
            next_session: first_session,
            conns: BTreeMap::new(),
            by_addr: BTreeMap::new(),
            retries: BTreeMap::new(),
            members: BTreeSet::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            signals: VecDeque::new(),
        }
    }

    /// Number of str0m instances.
    pub fn len(&self) -> usize {
        self.conns.len()
    }

    /// True when there is no connection.
    pub fn is_empty(&self) -> bool {
        self.conns.is_empty()
    }

    /// True if the channel to `peer` is open.
    pub fn is_connected(&self, peer: &NodeId) -> bool {
        self.conns.get(peer).is_some_and(|c| c.phase == Phase::Open)
    }

    /// `peer` is a member of the meeting: connect to it (if we offer).
    pub fn add_member(&mut self, now: Instant, peer: NodeId, public: Option<SocketAddr>) {
        self.members.insert(peer);
        if self.local < peer && !self.conns.contains_key(&peer) {
            self.offer(now, peer, public);
        }
    }

    /// `peer` is no longer a member: stop retrying, and drop an unopened attempt.
    pub fn remove_member(&mut self, peer: &NodeId) {
        self.members.remove(peer);
        self.retries.remove(peer);
        if self.conns.get(peer).is_some_and(|c| c.phase != Phase::Open) {
            self.drop_conn(peer);
        }
    }

    /// Acts on a verified signal from a member.
    pub fn on_signal(&mut self, now: Instant, signal: Signal, public: Option<SocketAddr>) {
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
                self.drop_conn(&peer);
                self.members.insert(peer);
                let mut conn = self.new_conn(now, signal.session, public);
                if let Err(reason) = apply_remote(&mut conn.rtc, &params) {
                    warn!("webrtc: bad offer from {}: {reason}", peer.short());
                    return;
                }
                conn.rtc.direct_api().set_ice_controlling(false);
                if let Err(error) = conn.rtc.direct_api().start_dtls(false) {
                    warn!("webrtc: cannot start DTLS for {}: {error}", peer.short());
                    return;
                }
                conn.rtc.direct_api().start_sctp(false);
                conn.phase = Phase::Connecting;
                let answer = local_params(&mut conn.rtc, &conn.candidates);
                debug!(
                    "webrtc: answering {} (session {})",
                    peer.short(),
                    signal.session
                );
                self.signals.push_back(OutgoingSignal {
                    to: peer,
                    session: signal.session,
                    kind: SignalKind::Answer(answer),
                });
                self.conns.insert(peer, conn);
                self.drain(now, peer);
            }
            SignalKind::Answer(params) => {
                let Some(conn) = self.conns.get_mut(&peer) else {
                    return;
                };
                if conn.session != signal.session || conn.phase != Phase::AwaitingAnswer {
                    debug!("webrtc: stale answer from {}", peer.short());
                    return;
                }
                if let Err(reason) = apply_remote(&mut conn.rtc, &params) {
                    warn!("webrtc: bad answer from {}: {reason}", peer.short());
                    return;
                }
                if let Err(error) = conn.rtc.direct_api().start_dtls(true) {
                    warn!("webrtc: cannot start DTLS for {}: {error}", peer.short());
                    return;
                }
                conn.rtc.direct_api().start_sctp(true);
                conn.phase = Phase::Connecting;
                debug!("webrtc: {} answered; connecting", peer.short());
                self.drain(now, peer);
            }
            SignalKind::Close => {
                if self.conns.contains_key(&peer) {
                    self.lost(now, peer, "peer left".into());
                }
            }
        }
    }

    /// Offers a STUN datagram (an ICE check or its response) to the
    /// connections; `Err` if none takes it.
    pub fn handle_stun(
        &mut self,
        now: Instant,
        source: SocketAddr,
        data: &[u8],
    ) -> Result<(), NotAccepted> {
        self.route(now, source, data, false)
    }

    /// Offers a DTLS datagram, routed by its source address first: a peer's
    /// first ClientHello can arrive before this side's ICE pair is confirmed.
    pub fn handle_dtls(
        &mut self,
        now: Instant,
        source: SocketAddr,
        data: &[u8],
    ) -> Result<(), NotAccepted> {
        self.route(now, source, data, true)
    }

    fn route(
        &mut self,
        now: Instant,
        source: SocketAddr,
        data: &[u8],
        by_source: bool,
    ) -> Result<(), NotAccepted> {
        let receive =
            Receive::new(NetProtocol::Udp, source, self.host, data).map_err(|_| NotAccepted)?;
        let input = RtcInput::Receive(now, receive);
        let known = by_source
            .then(|| self.by_addr.get(&source).copied())
            .flatten()
            .filter(|peer| self.conns.contains_key(peer));
        let peer = match known {
            Some(peer) => peer,
            None => self
                .conns
                .iter()
                .find(|(_, conn)| conn.rtc.accepts(&input))
                .map(|(peer, _)| *peer)
                .ok_or(NotAccepted)?,
        };
        self.by_addr.insert(source, peer);
        self.received_from(peer, source);
        self.feed(now, peer, input);
        Ok(())
    }

    /// Remembers where `peer`'s traffic last came from: the address reported
    /// when its channel opens (the working path, not a candidate tried first).
    fn received_from(&mut self, peer: NodeId, source: SocketAddr) {
        if let Some(conn) = self.conns.get_mut(&peer) {
            conn.remote = Some(source);
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
            .filter(|(_, c)| c.phase == Phase::Open)
            .map(|(p, _)| *p)
            .collect();
        let mut reached = 0;
        for peer in open {
            let Some(conn) = self.conns.get_mut(&peer) else {
                continue;
            };
            let mut queued = 0;
            for text in texts {
                let bytes = text.as_ref().as_bytes();
                if conn.outbox.push(&bytes[..bytes.len().min(MAX_MESSAGE_LEN)]) {
                    queued += 1;
                } else if conn.outbox.dropped == 1 {
                    warn!(
                        "webrtc: {OUTBOX_LIMIT} bytes already queued for {}; dropping messages until it drains",
                        peer.short()
                    );
                }
            }
            reached += usize::from(queued > 0);
            if self.flush_outbox(peer) > 0 {
                self.drain(now, peer);
            }
        }
        reached
    }

    /// True while every open channel has fewer than [`OUTBOX_PAUSE`] bytes
    /// queued: the caller may hand over more messages.
    pub fn ready_to_send(&self) -> bool {
        self.conns
            .values()
            .all(|c| c.phase != Phase::Open || c.outbox.bytes < OUTBOX_PAUSE)
    }

    /// Moves queued messages into the peer's SCTP send buffer while it has
    /// room; returns how many.
    fn flush_outbox(&mut self, peer: NodeId) -> usize {
        let Some(conn) = self.conns.get_mut(&peer) else {
            return 0;
        };
        if conn.phase != Phase::Open || conn.outbox.messages.is_empty() {
            return 0;
        }
        let Conn {
            rtc,
            channel,
            outbox,
            ..
        } = conn;
        let Some(mut channel) = rtc.channel(*channel) else {
            return 0;
        };
        outbox.flush(|message| match channel.write(false, message) {
            Ok(accepted) => accepted,
            Err(error) => {
                warn!("webrtc: send to {} failed: {error}", peer.short());
                false
            }
        })
    }

    /// Closes every channel (the node is leaving) and tells each peer.
    pub fn close_all(&mut self, now: Instant) {
        let peers: Vec<NodeId> = self.conns.keys().copied().collect();
        for peer in peers {
            if let Some(conn) = self.conns.get_mut(&peer) {
                let (session, channel) = (conn.session, conn.channel);
                conn.rtc.direct_api().close_data_channel(channel);
                self.signals.push_back(OutgoingSignal {
                    to: peer,
                    session,
                    kind: SignalKind::Close,
                });
            }
            self.drain(now, peer);
        }
        self.members.clear();
        self.retries.clear();
    }

    /// Advances every connection to `now`: str0m timers, connect deadlines, retries.
    pub fn handle_timeout(&mut self, now: Instant, public: Option<SocketAddr>) {
        let due: Vec<NodeId> = self
            .conns
            .iter()
            .filter(|(_, c)| c.wake.is_some_and(|w| now >= w) || now >= c.deadline)
            .map(|(p, _)| *p)
            .collect();
        for peer in due {
            let timed_out = self
                .conns
                .get(&peer)
                .is_some_and(|c| c.phase != Phase::Open && now >= c.deadline);
            if timed_out {
                let reason = match self.conns.get(&peer).map(|c| c.phase) {
                    Some(Phase::AwaitingAnswer) => "no answer to the offer",
                    _ => "no data channel: ICE or DTLS did not complete",
                };
                info!("webrtc: connecting to {} failed: {reason}", peer.short());
                self.fail(now, peer, reason.into());
                continue;
            }
            self.feed(now, peer, RtcInput::Timeout(now));
        }
        let retry_now: Vec<NodeId> = self
            .retries
            .iter()
            .filter(|(peer, r)| now >= r.at && !self.conns.contains_key(*peer))
            .map(|(p, _)| *p)
            .collect();
        for peer in retry_now {
            if self.members.contains(&peer) && self.local < peer {
                self.offer(now, peer, public);
            }
        }
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next event: [`Event::Connected`], [`Event::Message`],
    /// [`Event::Disconnected`] or [`Event::ConnectFailed`].
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The next signal to send through the DHT.
    pub fn poll_signal(&mut self) -> Option<OutgoingSignal> {
        self.signals.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) must next run.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let conns = self.conns.values().flat_map(|c| {
            let deadline = (c.phase != Phase::Open).then_some(c.deadline);
            [c.wake, deadline]
        });
        let retries = self
            .retries
            .iter()
            .filter(|(peer, _)| !self.conns.contains_key(*peer) && self.local < **peer)
            .map(|(_, r)| Some(r.at));
        conns.chain(retries).flatten().min()
    }

    fn offer(&mut self, now: Instant, peer: NodeId, public: Option<SocketAddr>) {
        if self.conns.len() >= MAX_CONNECTIONS {
            warn!(
                "webrtc: {MAX_CONNECTIONS} connections; not connecting to {}",
                peer.short()
            );
            return;
        }
        let session = self.next_session;
        self.next_session += 1;
        let mut conn = self.new_conn(now, session, public);
        conn.rtc.direct_api().set_ice_controlling(true);
        let offer = local_params(&mut conn.rtc, &conn.candidates);
        debug!("webrtc: offering to {} (session {session})", peer.short());
        self.signals.push_back(OutgoingSignal {
            to: peer,
            session,
            kind: SignalKind::Offer(offer),
        });
        self.conns.insert(peer, conn);
        self.drain(now, peer);
    }

    fn new_conn(&self, now: Instant, session: u64, public: Option<SocketAddr>) -> Conn {
        let mut config = Rtc::builder().set_crypto_provider(Arc::clone(&self.crypto));
        config.set_max_stun_retransmits(ICE_MAX_RETRANSMITS);
        config.set_max_stun_rto(ICE_KEEPALIVE);
        let mut rtc = config.build(now);
        let mut candidates = Vec::new();
        if let Ok(host) = Candidate::host(self.host, "udp") {
            rtc.add_local_candidate(host);
            candidates.push(self.host);
        }
        if let Some(public) =
            public.filter(|p| *p != self.host && p.is_ipv4() == self.host.is_ipv4())
        {
            if let Ok(reflexive) = Candidate::server_reflexive(public, self.host, "udp") {
                rtc.add_local_candidate(reflexive);
                candidates.push(public);
            }
        }
        let channel = rtc.direct_api().create_data_channel(ChannelConfig {
            label: CHANNEL_LABEL.into(),
            negotiated: Some(CHANNEL_STREAM),
            ..Default::default()
        });
        Conn {
            rtc,
            candidates,
            session,
            phase: Phase::AwaitingAnswer,
            channel,
            deadline: now + CONNECT_TIMEOUT,
            wake: Some(now),
            remote: None,
            outbox: Outbox::default(),
        }
    }

    fn feed(&mut self, now: Instant, peer: NodeId, input: RtcInput<'_>) {
        let Some(conn) = self.conns.get_mut(&peer) else {
            return;
        };
        if let Err(error) = conn.rtc.handle_input(input) {
            debug!("webrtc: {} rejected input: {error}", peer.short());
        }
        // Acknowledgements and timers free send-buffer room.
        let _ = self.flush_outbox(peer);
        self.drain(now, peer);
    }

    /// Drains the peer's `Rtc` until it asks to be woken.
    fn drain(&mut self, now: Instant, peer: NodeId) {
        let mut happened = Vec::new();
        let Some(conn) = self.conns.get_mut(&peer) else {
            return;
        };
        loop {
            match conn.rtc.poll_output() {
                Ok(RtcOutput::Timeout(at)) => {
                    conn.wake = Some(at);
                    break;
                }
                Ok(RtcOutput::Transmit(transmit)) => {
                    self.by_addr.insert(transmit.destination, peer);
                    self.transmits.push_back(Transmit {
                        destination: transmit.destination,
                        payload: transmit.contents.to_vec(),
                    });
                }
                Ok(RtcOutput::Event(event)) => match event {
                    RtcEvent::ChannelOpen(..) => {
                        conn.phase = Phase::Open;
                        let addr = conn.remote.unwrap_or(self.host);
                        info!("webrtc: connected to {} at {addr}", peer.short());
                        happened.push(Event::Connected { peer, addr });
                    }
                    RtcEvent::ChannelData(data) => {
                        let end = data.data.len().min(MAX_MESSAGE_LEN);
                        let text = String::from_utf8_lossy(&data.data[..end]).into_owned();
                        happened.push(Event::Message { peer, text });
                    }
                    RtcEvent::ChannelClose(_) => {
                        happened.push(Event::Disconnected {
                            peer,
                            reason: "data channel closed".into(),
                        });
                    }
                    RtcEvent::IceConnectionStateChange(IceConnectionState::Disconnected)
                        if conn.phase == Phase::Open =>
                    {
                        happened.push(Event::Disconnected {
                            peer,
                            reason: "ICE connection lost".into(),
                        });
                    }
                    _ => {}
                },
                Err(error) => {
                    debug!("webrtc: {} failed: {error}", peer.short());
                    happened.push(Event::ConnectFailed {
                        peer,
                        reason: format!("WebRTC error: {error}"),
                    });
                    break;
                }
            }
        }
        for event in happened {
            match event {
                Event::Disconnected { peer, reason } => self.lost(now, peer, reason),
                Event::ConnectFailed { peer, reason } => self.fail(now, peer, reason),
                other => self.events.push_back(other),
            }
        }
    }

    /// An open connection ended: report, drop, retry later.
    fn lost(&mut self, now: Instant, peer: NodeId, reason: String) {
        let Some(conn) = self.conns.get(&peer) else {
            return;
        };
        if conn.phase != Phase::Open {
            return self.fail(now, peer, reason);
        }
        info!("webrtc: {} disconnected: {reason}", peer.short());
        self.events.push_back(Event::Disconnected { peer, reason });
        self.drop_conn(&peer);
        self.schedule_retry(now, peer, false);
    }

    /// An attempt failed: report, drop, retry later.
    fn fail(&mut self, now: Instant, peer: NodeId, reason: String) {
        if !self.conns.contains_key(&peer) {
            return;
        }
        self.events.push_back(Event::ConnectFailed { peer, reason });
        self.drop_conn(&peer);
        self.schedule_retry(now, peer, true);
    }

    fn schedule_retry(&mut self, now: Instant, peer: NodeId, failed: bool) {
        let failures = self.retries.get(&peer).map_or(0, |r| r.failures) + u32::from(failed);
        let wait = RETRY_FIRST
            .saturating_mul(1 << failures.min(16).saturating_sub(1))
            .min(RETRY_MAX);
        if self.local < peer && self.members.contains(&peer) {
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
            conn.rtc.disconnect();
            if conn.phase == Phase::Open {
                self.retries.remove(peer);
            }
        }
        self.by_addr.retain(|_, p| p != peer);
    }
}

/// Our ICE credentials, DTLS fingerprint and candidates.
fn local_params(rtc: &mut Rtc, candidates: &[SocketAddr]) -> SessionParams {
    let api = rtc.direct_api();
    let creds = api.local_ice_credentials();
    let fingerprint = api.local_dtls_fingerprint().clone();
    let candidates = candidates
        .iter()
        .map(|a| WireAddr::from(*a))
        .take(MAX_CANDIDATES)
        .collect();
    SessionParams {
        ice_ufrag: Blob(creds.ufrag.into_bytes()),
        ice_pwd: Blob(creds.pass.into_bytes()),
        fingerprint_hash: Blob(fingerprint.hash_func.into_bytes()),
        fingerprint: Blob(fingerprint.bytes),
        candidates: BoundedList(candidates),
    }
}

/// Applies the peer's credentials, fingerprint and candidates.
fn apply_remote(rtc: &mut Rtc, params: &SessionParams) -> Result<(), &'static str> {
    let text = |blob: &Blob<{ crate::signal::MAX_TEXT }>| {
        String::from_utf8(blob.0.clone()).map_err(|_| "not UTF-8")
    };
    let creds = IceCreds {
        ufrag: text(&params.ice_ufrag)?,
        pass: text(&params.ice_pwd)?,
    };
    let fingerprint = Fingerprint {
        hash_func: text(&params.fingerprint_hash)?,
        bytes: params.fingerprint.0.clone(),
    };
    let mut api = rtc.direct_api();
    api.set_remote_ice_credentials(creds);
    api.set_remote_fingerprint(fingerprint);
    for addr in params.candidate_addrs() {
        match Candidate::host(addr, "udp") {
            Ok(candidate) => rtc.add_remote_candidate(candidate),
            Err(_) => debug!("webrtc: skipping unusable remote candidate {addr}"),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outbox_flushes_in_order_until_the_writer_refuses() {
        let mut outbox = Outbox::default();
        for message in [&b"one"[..], b"two", b"three"] {
            assert!(outbox.push(message));
        }
        let mut written = Vec::new();
        let taken = outbox.flush(|message| {
            if written.len() == 2 {
                return false;
            }
            written.push(message.to_vec());
            true
        });
        assert_eq!(taken, 2);
        assert_eq!(written, [b"one".to_vec(), b"two".to_vec()]);
        assert_eq!(outbox.bytes, 5, "\"three\" waits");
        assert_eq!(outbox.flush(|_| true), 1);
        assert_eq!(outbox.bytes, 0);
    }

    #[test]
    fn outbox_refuses_what_would_exceed_its_limit() {
        let mut outbox = Outbox::default();
        let message = vec![b'x'; MAX_MESSAGE_LEN];
        let fits = OUTBOX_LIMIT / MAX_MESSAGE_LEN;
        for _ in 0..fits {
            assert!(outbox.push(&message));
        }
        assert!(!outbox.push(&message));
        assert!(!outbox.push(b"y"), "the limit counts bytes, not messages");
        assert_eq!(outbox.bytes, fits * MAX_MESSAGE_LEN);
        assert_eq!(outbox.messages.len(), fits);
    }
}
