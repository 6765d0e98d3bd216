//! One WebRTC connection: a str0m [`Rtc`] with its pre-negotiated data
//! channel, the phase machine around it and its connect deadline.
//!
//! ```text
//! offerer:  new(controlling) → local_params ─offer─▶ … ─answer─▶ start(client) → Connecting → Open
//! answerer: new(controlled) → start(offer, server) → local_params ─answer─▶ Connecting → Open
//! ```
//!
//! The attempt's phase, deadline and offer resends are their own small
//! machine (`attempt.rs`); an attempt past its deadline ends with
//! [`ConnectionReason::NoAnswer`], `NotEstablished`, `NoRelay` or
//! `NoAddress` (str0m has no ICE "failed" state). Every input is followed by a drain of
//! str0m's output into [`ConnEvent`]s, str0m's rule "poll after each
//! mutation", written once here. Beside the chat channel each connection
//! has the link channel: its reports measure loss and the round trip
//! (`link.rs`), which set how many copies of each datagram go out
//! (`copies.rs`) and how much str0m may hold for sending (`window.rs`,
//! spec §6.6). Sans-IO like the rest of the core; the
//! registry (`rtc/mod.rs`) owns the connections and their index.
//!
//! About 920 lines before its tests, kept as one file: what is left is the
//! one state machine around one `Rtc` (feeding it, the path the open
//! channel takes, and the translation of its output into datagrams and
//! events), which every other part goes through. The parts with a state of
//! their own have their own files and tests: the attempt (`attempt.rs`),
//! the link measurement (`link_state.rs`), streams, flows, the outbox and
//! the relayed candidates.

use crate::addr::shareable;
use crate::demux::{Protocol, classify};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use log::{debug, warn};
use str0m::channel::{ChannelConfig, ChannelId, Reliability};
use str0m::crypto::CryptoProvider;
use str0m::crypto::dtls::DtlsCert;
use str0m::net::{Protocol as NetProtocol, Receive};
use str0m::{
    Candidate, Event as RtcEvent, IceConnectionState, Input as RtcInput, Output as RtcOutput, Rtc,
};

use super::attempt::{Attempt, Phase};
use super::flows::{Flows, is_flow};
use super::link::{LINK_LABEL, LINK_STREAM, LinkReport};
use super::link_state::LinkState;
use super::outbox::Outbox;
use super::params::{ParamsError, apply_remote, local_params};
use super::relayed::{RelayPaths, Routed};
use super::streams::{Streams, TableEvent};
use super::window::{MAX_WINDOW, SendWindow};
use crate::api::ConnectionReason;
use crate::api::RelayRefusal;
use crate::relay::client::{RelayAnswer, RelayPath};
use crate::signal::{RelayHint, SessionParams};
use crate::stream::{ResetCode, StreamHeader, StreamKind, WriteError};
use crate::transmit::{LocalAddrs, Transmit};

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

/// SCTP stream of the pre-negotiated data channel.
pub const CHANNEL_STREAM: u16 = 0;
/// Label of the data channel.
pub const CHANNEL_LABEL: &str = "tinynode";
/// Most datagrams fed to str0m between two polls (dimpl queues 30 records).
pub const MAX_UNPOLLED: usize = 16;
/// Longest message sent or accepted, in bytes.
pub const MAX_MESSAGE_LEN: usize = 16 * 1024;

/// What a connection reports after an input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConnEvent {
    /// Send this datagram (to the peer, indexed by its destination).
    Transmit(Transmit),
    /// Send this datagram to a relay (not the peer's address: not indexed).
    RelayTransmit(Transmit),
    /// The data channel opened; the peer's traffic comes from `addr`
    /// (the relay's address when `relay`).
    Opened {
        /// The working path's remote address.
        addr: SocketAddr,
        /// True when the path goes through the relay at `addr`.
        relay: bool,
    },
    /// The open channel's traffic moved to another path.
    PathChanged {
        /// The new path's remote address.
        addr: SocketAddr,
        /// True when it goes through the relay at `addr`.
        relay: bool,
    },
    /// A text message arrived (a chat line).
    Text(String),
    /// A binary message arrived (bytes for us alone).
    Bytes(Vec<u8>),
    /// The connection ended, or the attempt failed.
    Ended(ConnectionReason),
    /// No answer yet: send the offer again.
    ResendOffer,
    /// A stream opened or changed (`streams.rs`).
    Stream(TableEvent),
    /// The peer reported losing some of our datagrams (a link report
    /// with a loss above zero).
    LossReported,
    /// This many copies of data datagrams went out beyond the first, on
    /// the open channel (loss-adaptive redundancy, spec §6.6).
    ExtraCopies(u64),
}

/// Why a connection could not start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartError {
    /// The peer's parameters are unusable.
    Params(ParamsError),
    /// str0m refused to start DTLS.
    Dtls,
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Params(error) => error.fmt(f),
            Self::Dtls => f.write_str("DTLS did not start"),
        }
    }
}

/// The DTLS side every connection of a registry shares: str0m's crypto
/// provider and one certificate, made once rather than per attempt (its
/// fingerprint travels in our signed signals, so reusing it across
/// sessions reveals nothing the signals do not; browsers do the same).
pub struct Crypto {
    provider: Arc<CryptoProvider>,
    cert: Option<DtlsCert>,
}

impl Crypto {
    /// `provider` and a fresh certificate from it (str0m makes one per
    /// connection should that fail).
    pub fn new(provider: Arc<CryptoProvider>) -> Self {
        let cert = provider.dtls_provider.generate_certificate();
        if cert.is_none() {
            warn!("webrtc: no DTLS certificate; each connection makes its own");
        }
        Self { provider, cert }
    }
}

/// One connection.
pub struct Conn {
    rtc: Rtc,
    /// Our candidate addresses, as signaled.
    candidates: Vec<SocketAddr>,
    /// How many candidates the peer signaled.
    remote_candidates: usize,
    ufrag: String,
    session: u64,
    attempt: Attempt,
    channel: ChannelId,
    /// The link channel: loss reports both ways (`link.rs`).
    link: ChannelId,
    /// Datagram flows, a channel each (`flows.rs`).
    flows: Flows,
    /// Byte streams, a channel each (`streams.rs`).
    streams: Streams,
    /// How much str0m may hold for sending.
    window: SendWindow,
    /// This connection's share of the node's total window.
    window_share: usize,
    /// Bytes the data channel accepted in all.
    written: u64,
    /// The time of the latest input (str0m's events carry none).
    last_input: Instant,
    /// Datagrams fed to str0m since it was last polled.
    unpolled: usize,
    /// Loss and round trip measured, reports, copies (`link_state.rs`).
    link_state: LinkState,
    wake: Option<Instant>,
    remote: Option<SocketAddr>,
    /// The open channel's path: (remote address, through a relay).
    path: Option<(SocketAddr, bool)>,
    locals: LocalAddrs,
    relays: RelayPaths,
    /// This attempt needs a relay to work (our NAT maps by destination, or
    /// an earlier attempt failed): failing without one says so.
    wants_relay: bool,
    outbox: Outbox,
    out: VecDeque<ConnEvent>,
}

impl Conn {
    /// A connection for attempt `session`, with a host candidate for each
    /// local address a peer could use and a server-reflexive one for each
    /// address of `public` (one per family) that is not a local one; the
    /// offerer controls ICE.
    pub fn new(
        now: Instant,
        crypto: &Crypto,
        locals: &LocalAddrs,
        public: &[SocketAddr],
        session: u64,
        controlling: bool,
    ) -> Self {
        // str0m holds at most the largest window for sending, and the
        // receive budget matches it (a message as large is refused by
        // the reader at MAX_MESSAGE_LEN; the budget only bounds memory).
        let mut config = Rtc::builder()
            .set_crypto_provider(Arc::clone(&crypto.provider))
            .set_sctp_max_buffered_amount(MAX_WINDOW)
            .set_sctp_max_message_size(u32::try_from(MAX_WINDOW).unwrap_or(u32::MAX));
        if let Some(cert) = &crypto.cert {
            config = config.set_dtls_cert(cert.clone());
        }
        config.set_max_stun_retransmits(ICE_MAX_RETRANSMITS);
        config.set_max_stun_rto(ICE_KEEPALIVE);
        let mut rtc = config.build(now);
        let mut candidates = Vec::new();
        for &host in locals.all().iter().filter(|h| shareable(h.ip())) {
            if let Ok(candidate) = Candidate::host(host, "udp") {
                rtc.add_local_candidate(candidate);
                candidates.push(host);
            }
        }
        for &public in public.iter().filter(|p| !locals.all().contains(p)) {
            let base = locals.toward(public);
            if base.is_ipv4() == public.is_ipv4()
                && let Ok(reflexive) = Candidate::server_reflexive(public, base, "udp")
            {
                rtc.add_local_candidate(reflexive);
                candidates.push(public);
            }
        }
        let channel = rtc.direct_api().create_data_channel(ChannelConfig {
            label: CHANNEL_LABEL.into(),
            negotiated: Some(CHANNEL_STREAM),
            ..Default::default()
        });
        let link = rtc.direct_api().create_data_channel(ChannelConfig {
            label: LINK_LABEL.into(),
            negotiated: Some(LINK_STREAM),
            ordered: false,
            reliability: Reliability::MaxRetransmits { retransmits: 0 },
            ..Default::default()
        });
        rtc.direct_api().set_ice_controlling(controlling);
        let ufrag = rtc.direct_api().local_ice_credentials().ufrag;
        Self {
            rtc,
            candidates,
            remote_candidates: 0,
            ufrag,
            session,
            attempt: Attempt::new(now),
            channel,
            link,
            streams: Streams::default(),
            flows: Flows::default(),
            window: SendWindow::default(),
            window_share: MAX_WINDOW,
            written: 0,
            last_input: now,
            unpolled: 0,
            link_state: LinkState::new(now),
            wake: Some(now),
            remote: None,
            path: None,
            locals: locals.clone(),
            relays: RelayPaths::default(),
            wants_relay: false,
            outbox: Outbox::default(),
            out: VecDeque::new(),
        }
    }

    /// Our parameters, to signal to the peer.
    pub fn local_params(&mut self) -> SessionParams {
        let mut params = local_params(&mut self.rtc, &self.candidates);
        params.relays = self.relays.hints();
        params
    }

    /// This attempt needs a relay (see [`ConnectionReason::NoRelay`]).
    pub fn set_wants_relay(&mut self) {
        self.wants_relay = true;
    }

    /// Adds a relay path: a relayed candidate, and a binding at the relay
    /// starting now. `ours` is the hint to list in our parameters when we
    /// chose the relay (`None` for one the peer proposed).
    pub fn add_relay(&mut self, path: RelayPath, ours: Option<RelayHint>) {
        let host = self.locals.toward(path.relay);
        self.relays.add(&mut self.rtc, path, host, ours);
    }

    /// The open channel's remote address when it is a direct path: where
    /// this peer can relay for others (§12.3).
    pub fn direct_addr(&self) -> Option<SocketAddr> {
        match self.path {
            Some((addr, false)) if self.attempt.is_open() => Some(addr),
            _ => None,
        }
    }

    /// The relay paths, for the registry's index.
    pub fn relays(&self) -> &RelayPaths {
        &self.relays
    }

    /// A relay at `relay` answered our bind with `token`; the reason, if it
    /// refused a bind that carried our cookie (which ends that path).
    pub fn on_relay_answer(
        &mut self,
        now: Instant,
        relay: SocketAddr,
        token: [u8; 16],
        answer: RelayAnswer,
    ) -> Option<RelayRefusal> {
        let transmit = match answer {
            RelayAnswer::Bound {
                channel,
                lifetime_s,
            } => self
                .relays
                .on_bound(now, relay, token, (channel, lifetime_s), &self.locals),
            RelayAnswer::Challenge(cookie) => {
                self.relays.on_challenge(relay, token, cookie, &self.locals)
            }
            RelayAnswer::Refused { cookie, reason } => {
                let ended = self.relays.on_refused(relay, token, cookie, reason);
                return ended.then_some(reason);
            }
        };
        if let Some(transmit) = transmit {
            self.out.push_back(ConnEvent::RelayTransmit(transmit));
        }
        None
    }

    /// A data frame from `relay` on `channel`: feeds its payload to str0m
    /// as from the peer's relayed address; false if no path has it.
    pub fn receive_relayed(
        &mut self,
        now: Instant,
        relay: SocketAddr,
        channel: u32,
        data: &[u8],
    ) -> bool {
        match self.relays.receive(relay, channel) {
            Some((source, destination)) => {
                self.receive(now, source, destination, data);
                true
            }
            None => false,
        }
    }

    /// Our ICE username fragment: the first half of the USERNAME in the
    /// peer's checks, by which they are routed here.
    pub fn ufrag(&self) -> &str {
        &self.ufrag
    }

    /// The attempt this connection belongs to.
    pub fn session(&self) -> u64 {
        self.session
    }

    /// Where it is.
    pub fn phase(&self) -> Phase {
        self.attempt.phase()
    }

    /// Sets this connection's share of the node's total window.
    pub fn set_window_share(&mut self, share: usize) {
        self.window_share = share;
    }

    /// Bytes str0m may hold for this connection now: its window within
    /// its share.
    pub fn window_limit(&self) -> usize {
        self.window.limit().min(self.window_share)
    }

    /// Bytes waiting for room in the channel.
    pub fn queued_bytes(&self) -> usize {
        self.outbox.bytes()
    }

    /// Applies the peer's parameters and starts DTLS and SCTP, as client
    /// (the offerer) or server (the answerer).
    pub fn start(&mut self, remote: &SessionParams, client: bool) -> Result<(), StartError> {
        apply_remote(&mut self.rtc, remote).map_err(StartError::Params)?;
        self.remote_candidates = remote.candidates.0.len();
        self.relays.add_remote_candidates(&mut self.rtc);
        self.rtc
            .direct_api()
            .start_dtls(client)
            .map_err(|_| StartError::Dtls)?;
        self.rtc.direct_api().start_sctp(client);
        self.attempt.start();
        self.drain();
        Ok(())
    }

    /// A datagram str0m handles (an ICE check or response, DTLS) from
    /// `source`, received on our `destination`. str0m is polled at the
    /// next [`settle`](Self::settle) or other input.
    pub fn receive(
        &mut self,
        now: Instant,
        source: SocketAddr,
        destination: SocketAddr,
        data: &[u8],
    ) {
        self.remote = Some(source);
        self.attempt.heard_from_peer(now);
        self.link_state.on_datagram(now, data);
        match Receive::new(NetProtocol::Udp, source, destination, data) {
            Ok(receive) => {
                self.last_input = now;
                if let Err(error) = self.rtc.handle_input(RtcInput::Receive(now, receive)) {
                    debug!("webrtc: input rejected: {error}");
                }
                self.unpolled += 1;
            }
            Err(error) => debug!("webrtc: unusable datagram from {source}: {error}"),
        }
    }

    /// Advances timers; ends the attempt when it is past its deadline.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.attempt.expired(now) {
            let reason = match self.attempt.phase() {
                Phase::AwaitingAnswer => ConnectionReason::NoAnswer,
                _ if (self.candidates.is_empty() || self.remote_candidates == 0)
                    && !self.relays.ever_bound() =>
                {
                    ConnectionReason::NoAddress
                }
                _ if self.wants_relay && !self.relays.ever_bound() => ConnectionReason::NoRelay,
                _ => ConnectionReason::NotEstablished,
            };
            self.out.push_back(ConnEvent::Ended(reason));
            return;
        }
        if self.attempt.take_resend(now) {
            self.out.push_back(ConnEvent::ResendOffer);
        }
        for bind in self.relays.handle_timeout(now, &self.locals) {
            self.out.push_back(ConnEvent::RelayTransmit(bind));
        }
        self.report(now);
        if self.streams.poll_timeout().is_some_and(|at| now >= at) {
            self.streams.handle_timeout(now, &mut self.rtc);
            self.drain();
        }
        if self.wake.is_some_and(|w| now >= w) {
            self.feed(now, RtcInput::Timeout(now));
        }
    }

    /// Sends the peer a link report when one is due (`link_state.rs`).
    fn report(&mut self, now: Instant) {
        let Some(report) = self.link_state.take_report(now, self.attempt.is_open()) else {
            return;
        };
        let sent = self
            .rtc
            .channel(self.link)
            .is_some_and(|mut link| link.write(true, &report.encode()).is_ok());
        if sent {
            self.drain();
        }
    }

    /// The peer's link report: it sets our copies (`link_state.rs`).
    fn on_report(&mut self, now: Instant, data: &[u8]) {
        let Some(report) = LinkReport::decode(data) else {
            debug!("webrtc: unreadable link report ({} bytes)", data.len());
            return;
        };
        let dropped = self.outbox.dropped > 0;
        let Some(news) = self.link_state.on_report(now, &report, dropped) else {
            return;
        };
        if news.loss > 0 {
            self.out.push_back(ConnEvent::LossReported);
        }
        debug!(
            "webrtc: peer lost {}.{} % of our datagrams: sending each {} time(s) at most \
             (round trip {:?}, smallest {:?}{}, window {} KiB)",
            news.loss / 10,
            news.loss % 10,
            news.copies,
            self.link_state.rtt_latest(),
            self.link_state.rtt_min(),
            if news.congested { ", congested" } else { "" },
            self.window.limit() / 1024
        );
    }

    /// How many times datagrams to the peer may go out now (tests only;
    /// the debug log reports changes).
    #[cfg(test)]
    pub fn copies(&self) -> u8 {
        self.link_state.wanted()
    }

    /// When [`handle_timeout`](Self::handle_timeout) must next run.
    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.wake,
            self.attempt.poll_timeout(),
            self.relays.poll_timeout(),
            self.link_state.poll_timeout(),
            self.streams.poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// The next thing the connection reports.
    pub fn poll_event(&mut self) -> Option<ConnEvent> {
        self.out
            .pop_front()
            .or_else(|| self.streams.poll_event().map(ConnEvent::Stream))
            .or_else(|| self.flows.poll_event().map(ConnEvent::Stream))
    }

    /// Streams of these kinds from the peer are taken, others refused.
    pub fn set_accepted_kinds(&mut self, kinds: &[StreamKind]) {
        self.streams.set_accepted_kinds(kinds);
        self.flows.set_accepted(kinds.contains(&StreamKind::UDP));
    }

    /// The peer's address of an open, direct connection, and when a
    /// datagram last came on it (for spotting a peer that restarted).
    pub fn direct_path(&self) -> Option<(SocketAddr, Instant)> {
        match self.path {
            Some((addr, false)) if self.attempt.is_open() => Some((addr, self.last_input)),
            _ => None,
        }
    }

    /// Whether to keep a stream channel open ahead of need; one is opened
    /// now if the connection is open.
    pub fn set_stream_spare(&mut self, keep: bool) {
        self.streams.set_keep_spare(keep);
        if self.attempt.is_open() {
            self.streams.ensure_spare(&mut self.rtc);
        }
    }

    /// Whether the peer may open streams and have them opened to it.
    pub fn set_peer_allowed(&mut self, allowed: bool) {
        self.streams.set_peer_allowed(allowed);
        self.flows.set_peer_allowed(allowed);
    }

    /// Opens a stream for `header` on the open connection: its number.
    pub fn open_stream(&mut self, header: StreamHeader) -> Result<u32, WriteError> {
        if !self.attempt.is_open() {
            return Err(WriteError::NotConnected);
        }
        let number = if header.kind == StreamKind::UDP {
            self.flows.open(&mut self.rtc, &header.name)?
        } else {
            self.streams.open(&mut self.rtc, header)?
        };
        self.flush_streams();
        Ok(number)
    }

    /// Writes to stream `number`: how much it took.
    pub fn stream_write(&mut self, number: u32, bytes: &[u8]) -> Result<usize, WriteError> {
        let taken = if is_flow(number) {
            self.flows.send(&mut self.rtc, number, bytes)?
        } else {
            self.streams.with(number, |s| s.write(bytes))?
        };
        self.flush_streams();
        Ok(taken)
    }

    /// Finishes our half of stream `number`.
    pub fn stream_finish(&mut self, number: u32) -> Result<(), WriteError> {
        if is_flow(number) {
            self.flows.close(number)?;
        } else {
            self.streams.with(number, |s| s.finish())?;
        }
        self.flush_streams();
        Ok(())
    }

    /// Resets stream `number`, telling the peer `reason`.
    pub fn stream_reset(&mut self, number: u32, reason: &str) -> Result<(), WriteError> {
        if is_flow(number) {
            self.flows.close(number)?;
            self.flush_streams();
            return Ok(());
        }
        self.streams.with(number, |s| {
            s.reset(ResetCode::Aborted, reason);
            Ok(())
        })?;
        self.flush_streams();
        Ok(())
    }

    /// The application took `count` more received bytes of stream `number`.
    pub fn stream_consumed(&mut self, number: u32, count: usize) -> Result<(), WriteError> {
        if is_flow(number) {
            // Flows have no credit.
            return Ok(());
        }
        self.streams.with(number, |s| {
            s.consumed(count);
            Ok(())
        })?;
        self.flush_streams();
        Ok(())
    }

    /// The connection ended: its streams are reset.
    pub fn lose_streams(&mut self) {
        self.streams.on_connection_lost();
        self.flows.on_connection_lost();
    }

    fn flush_streams(&mut self) {
        let room = self.stream_room();
        self.streams.flush(&mut self.rtc, room, self.last_input);
        self.flows.flush(&mut self.rtc);
        self.drain();
    }

    /// What the streams may hold in str0m together: the window, less what
    /// the message channel holds.
    fn stream_room(&mut self) -> usize {
        let limit = self.window_limit();
        let held = self
            .rtc
            .channel(self.channel)
            .map_or(0, |mut channel| channel.buffered_amount());
        limit.saturating_sub(held)
    }

    /// Queues a message (text or binary, at most [`MAX_MESSAGE_LEN`]
    /// bytes: the caller refuses longer ones) for an open channel; false
    /// when the outbox is full.
    pub fn queue(&mut self, binary: bool, message: &[u8]) -> bool {
        debug_assert!(message.len() <= MAX_MESSAGE_LEN);
        self.outbox.push(binary, message)
    }

    /// Messages refused since the last one accepted.
    pub fn refused(&self) -> u64 {
        self.outbox.dropped
    }

    /// Moves queued messages into str0m while the channel has room, then
    /// drains.
    pub fn flush(&mut self) {
        if self.flush_outbox() > 0 {
            self.drain();
        }
    }

    /// Closes the data channel (we are leaving).
    pub fn close(&mut self) {
        self.rtc.direct_api().close_data_channel(self.channel);
        self.drain();
    }

    /// Stops str0m for good.
    pub fn disconnect(&mut self) {
        self.rtc.disconnect();
    }

    /// The path to a remote address str0m uses: the relay's address for
    /// a synthetic one.
    fn path_of(&self, remote: SocketAddr) -> (SocketAddr, bool) {
        match self.relays.by_remote(remote) {
            Some(path) => (path.relay, true),
            None => (remote, false),
        }
    }

    /// Follows the open channel's path by the DTLS records str0m sends
    /// (they leave on the nominated pair only): reports a change, and
    /// releases the relays once a direct path carries the traffic.
    fn note_path(&mut self, transmit: &Transmit) {
        let dtls = matches!(classify(&transmit.payload), Protocol::Dtls);
        let Some(current) = self.path.filter(|_| dtls && self.attempt.is_open()) else {
            return;
        };
        let now_on = self.path_of(transmit.destination);
        if now_on != current {
            debug!(
                "webrtc: path changed to {} (relayed: {})",
                now_on.0, now_on.1
            );
            self.path = Some(now_on);
            self.out.push_back(ConnEvent::PathChanged {
                addr: now_on.0,
                relay: now_on.1,
            });
            if !now_on.1 {
                self.release_relays();
            }
        }
    }

    fn release_relays(&mut self) {
        for release in self.relays.release_all(&mut self.rtc, &self.locals) {
            self.out.push_back(ConnEvent::RelayTransmit(release));
        }
    }

    /// Writes queued messages into str0m while the send window has room.
    fn flush_outbox(&mut self) -> usize {
        if !self.attempt.is_open() || self.outbox.is_empty() {
            return 0;
        }
        let limit = self.window_limit();
        let Some(mut channel) = self.rtc.channel(self.channel) else {
            return 0;
        };
        let written = &mut self.written;
        self.outbox.flush(|message| {
            if channel.buffered_amount() >= limit {
                return false;
            }
            match channel.write(message.binary, &message.bytes) {
                Ok(accepted) => {
                    if accepted {
                        *written += message.bytes.len() as u64;
                    }
                    accepted
                }
                Err(error) => {
                    warn!("webrtc: send failed: {error}");
                    false
                }
            }
        })
    }

    /// Polls str0m after the datagrams [`receive`](Self::receive) fed it
    /// since the last poll: once per batch, because each poll makes SCTP
    /// walk every chunk in flight (`BENCHMARKS.md`, "Real paths").
    pub fn settle(&mut self) {
        if self.unpolled > 0 {
            self.after_input(self.last_input);
        }
    }

    /// True when str0m must be polled before it is fed more: DTLS (dimpl)
    /// queues at most 30 received records between polls and drops more.
    pub fn must_settle(&self) -> bool {
        self.unpolled >= MAX_UNPOLLED
    }

    fn feed(&mut self, now: Instant, input: RtcInput<'_>) {
        self.last_input = now;
        if let Err(error) = self.rtc.handle_input(input) {
            debug!("webrtc: input rejected: {error}");
        }
        self.after_input(now);
    }

    /// After input: measures progress, fills the send window, polls.
    fn after_input(&mut self, now: Instant) {
        // Acknowledgements free send-buffer room and measure the path.
        if self.attempt.is_open()
            && let Some(mut channel) = self.rtc.channel(self.channel)
        {
            let delivered = self
                .written
                .saturating_sub(channel.buffered_amount() as u64);
            self.window
                .on_progress(now, delivered, self.link_state.rtt_min());
        }
        self.flush_outbox();
        if self.attempt.is_open() {
            let room = self.stream_room();
            self.streams.flush(&mut self.rtc, room, self.last_input);
            self.flows.flush(&mut self.rtc);
        }
        self.drain();
    }

    /// Polls str0m until it asks to be woken, then sends what it put out.
    fn drain(&mut self) {
        self.unpolled = 0;
        let mut burst = Vec::new();
        self.poll_rtc(&mut burst);
        // What arrived may have made stream frames (a grant, an accept, a
        // reset, room freed by acknowledgements): hand them over now.
        if self.attempt.is_open() && self.streams.has_frames() {
            let room = self.stream_room();
            self.streams.flush(&mut self.rtc, room, self.last_input);
            self.poll_rtc(&mut burst);
        }
        self.send_burst(burst);
    }

    /// Sends one burst of str0m's datagrams, each as many times as the
    /// copy policy says (`copies.rs`), and notes our records for the
    /// declarations in our reports.
    fn send_burst(&mut self, burst: Vec<Transmit>) {
        let last_dtls = burst
            .iter()
            .rposition(|t| matches!(classify(&t.payload), Protocol::Dtls));
        let mut extra_copies = 0;
        for (i, transmit) in burst.into_iter().enumerate() {
            let dtls = matches!(classify(&transmit.payload), Protocol::Dtls);
            let open = self.attempt.is_open();
            let relayed = self.path_of(transmit.destination).1;
            let last = Some(i) == last_dtls;
            let copies = self.link_state.copies_of(
                &transmit.payload,
                dtls,
                last,
                relayed,
                open,
                self.last_input,
            );
            if open && dtls {
                extra_copies += u64::from(copies.saturating_sub(1));
            }
            let (event, transmit): (fn(Transmit) -> ConnEvent, _) =
                match self.relays.route(transmit, &self.locals) {
                    Routed::Direct(t) => (ConnEvent::Transmit, t),
                    Routed::Relayed(t) => (ConnEvent::RelayTransmit, t),
                    Routed::Dropped => continue,
                };
            for _ in 1..copies {
                self.out.push_back(event(transmit.clone()));
            }
            self.out.push_back(event(transmit));
        }
        if extra_copies > 0 {
            self.out.push_back(ConnEvent::ExtraCopies(extra_copies));
        }
    }

    /// Polls str0m until it asks to be woken: datagrams into `burst`,
    /// events into our queue.
    fn poll_rtc(&mut self, burst: &mut Vec<Transmit>) {
        loop {
            match self.rtc.poll_output() {
                Ok(RtcOutput::Timeout(at)) => {
                    self.wake = Some(at);
                    return;
                }
                Ok(RtcOutput::Transmit(transmit)) => {
                    let transmit = Transmit {
                        source: transmit.source,
                        destination: transmit.destination,
                        payload: transmit.contents.to_vec(),
                    };
                    self.note_path(&transmit);
                    burst.push(transmit);
                }
                Ok(RtcOutput::Event(event)) => match event {
                    RtcEvent::ChannelData(data) if data.id == self.link => {
                        self.on_report(self.last_input, &data.data);
                    }
                    RtcEvent::ChannelOpen(id, _) | RtcEvent::ChannelClose(id)
                        if id == self.link => {}
                    RtcEvent::ChannelOpen(id, label)
                        if id != self.channel
                            && !self.flows.on_channel_open(id, &label)
                            && !self.streams.on_channel_open(id, &label) =>
                    {
                        debug!("webrtc: unexpected channel {label:?}; closing it");
                        self.rtc.direct_api().close_data_channel(id);
                    }
                    RtcEvent::ChannelOpen(id, _) if id != self.channel => {}
                    RtcEvent::ChannelData(data) if self.flows.owns(data.id) => {
                        self.flows.on_channel_data(data.id, &data.data);
                    }
                    RtcEvent::ChannelClose(id) if self.flows.owns(id) => {
                        self.flows.on_channel_close(id);
                    }
                    RtcEvent::ChannelData(data) if self.streams.owns(data.id) => {
                        self.streams.on_channel_data(data.id, &data.data);
                    }
                    RtcEvent::ChannelClose(id) if self.streams.owns(id) => {
                        self.streams.on_channel_close(id);
                    }
                    RtcEvent::ChannelOpen(..) => {
                        self.attempt.open();
                        self.streams.ensure_spare(&mut self.rtc);
                        let remote = self.remote.unwrap_or(self.locals.primary());
                        let (addr, relay) = self.path_of(remote);
                        debug!("webrtc: channel open to {addr} (relayed: {relay})");
                        self.path = Some((addr, relay));
                        self.out.push_back(ConnEvent::Opened { addr, relay });
                        if !relay {
                            self.release_relays();
                        }
                    }
                    RtcEvent::ChannelData(data) if data.data.len() > MAX_MESSAGE_LEN => {
                        debug!(
                            "webrtc: dropped a {}-byte message (at most {MAX_MESSAGE_LEN})",
                            data.data.len()
                        );
                    }
                    RtcEvent::ChannelData(data) => {
                        let bytes = &data.data[..];
                        self.out.push_back(if data.binary {
                            ConnEvent::Bytes(bytes.to_vec())
                        } else {
                            ConnEvent::Text(String::from_utf8_lossy(bytes).into_owned())
                        });
                    }
                    RtcEvent::ChannelClose(_) => self
                        .out
                        .push_back(ConnEvent::Ended(ConnectionReason::ChannelClosed)),
                    RtcEvent::IceConnectionStateChange(IceConnectionState::Disconnected)
                        if self.attempt.is_open() =>
                    {
                        self.out
                            .push_back(ConnEvent::Ended(ConnectionReason::IceLost))
                    }
                    _ => {}
                },
                Err(error) => {
                    debug!("webrtc: failed: {error}");
                    self.wake = None;
                    self.out
                        .push_back(ConnEvent::Ended(ConnectionReason::WebRtcError));
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtc::attempt::{CONNECT_TIMEOUT, OFFER_RESENDS};
    use crate::rtc::link::{FIRST_REPORT_AFTER, REPORT_INTERVAL, record_number};

    /// Two connections wired back to back, clock jumping to the next
    /// deadline, as quinn-proto's tests pair endpoints.
    struct Pair {
        now: Instant,
        a: Conn,
        b: Conn,
        a_addr: SocketAddr,
        b_addr: SocketAddr,
        heard: Vec<(char, ConnEvent)>,
        /// Drops every n-th datagram from a to b (0: none).
        lose_every: usize,
        a_sent: usize,
        /// The highest DTLS record number a sent to b (what an onlooker sees).
        a_high: u64,
    }

    impl Pair {
        fn new() -> Self {
            let now = Instant::now();
            let crypto = Crypto::new(Arc::new(str0m::crypto::from_feature_flags()));
            let a_addr: SocketAddr = "10.0.0.1:4000".parse().unwrap();
            let b_addr: SocketAddr = "10.0.0.2:4000".parse().unwrap();
            let mut a = Conn::new(now, &crypto, &LocalAddrs::new(vec![a_addr]), &[], 1, true);
            let mut b = Conn::new(now, &crypto, &LocalAddrs::new(vec![b_addr]), &[], 1, false);
            let offer = a.local_params();
            b.start(&offer, false).unwrap();
            let answer = b.local_params();
            a.start(&answer, true).unwrap();
            Self {
                now,
                a,
                b,
                a_addr,
                b_addr,
                heard: Vec::new(),
                lose_every: 0,
                a_sent: 0,
                a_high: 0,
            }
        }

        /// Steps until both channels are open.
        fn open(&mut self) {
            for _ in 0..500 {
                if self.a.phase() == Phase::Open && self.b.phase() == Phase::Open {
                    return;
                }
                self.step();
            }
            panic!("the pair did not open");
        }

        /// Moves datagrams until both are quiet, then jumps to the next deadline.
        fn step(&mut self) {
            loop {
                let mut moved = false;
                while let Some(event) = self.a.poll_event() {
                    moved = true;
                    match event {
                        ConnEvent::Transmit(t) => {
                            assert_eq!(t.destination, self.b_addr);
                            self.a_sent += 1;
                            self.a_high = self.a_high.max(record_number(&t.payload).unwrap_or(0));
                            if self.lose_every == 0 || !self.a_sent.is_multiple_of(self.lose_every)
                            {
                                self.b
                                    .receive(self.now, self.a_addr, self.b_addr, &t.payload);
                                if self.b.must_settle() {
                                    self.b.settle();
                                }
                            }
                        }
                        other => self.heard.push(('a', other)),
                    }
                }
                while let Some(event) = self.b.poll_event() {
                    moved = true;
                    match event {
                        ConnEvent::Transmit(t) => {
                            self.a
                                .receive(self.now, self.b_addr, self.a_addr, &t.payload);
                            if self.a.must_settle() {
                                self.a.settle();
                            }
                        }
                        other => self.heard.push(('b', other)),
                    }
                }
                // Polled once per batch, as the registry does.
                self.a.settle();
                self.b.settle();
                if !moved {
                    break;
                }
            }
            let next = [self.a.poll_timeout(), self.b.poll_timeout()]
                .into_iter()
                .flatten()
                .min()
                .expect("a connection always has a timer");
            self.now = next.max(self.now);
            self.a.handle_timeout(self.now);
            self.b.handle_timeout(self.now);
        }
    }

    #[test]
    fn a_pair_opens_and_carries_text_and_bytes() {
        let mut pair = Pair::new();
        let start = pair.now;
        for _ in 0..500 {
            if pair.a.phase() == Phase::Open && pair.b.phase() == Phase::Open {
                break;
            }
            pair.step();
        }
        assert_eq!((pair.a.phase(), pair.b.phase()), (Phase::Open, Phase::Open));
        assert!(
            pair.now - start < CONNECT_TIMEOUT,
            "opened in {:?}",
            pair.now - start
        );
        assert!(pair.heard.contains(&(
            'a',
            ConnEvent::Opened {
                addr: pair.b_addr,
                relay: false
            }
        )));
        assert!(pair.heard.contains(&(
            'b',
            ConnEvent::Opened {
                addr: pair.a_addr,
                relay: false
            }
        )));

        assert!(pair.a.queue(false, b"hello"));
        assert!(pair.a.queue(true, &[0, 159, 146, 150]));
        pair.a.flush();
        for _ in 0..50 {
            pair.step();
        }
        let received: Vec<&ConnEvent> = pair
            .heard
            .iter()
            .filter(|(who, e)| *who == 'b' && matches!(e, ConnEvent::Text(_) | ConnEvent::Bytes(_)))
            .map(|(_, e)| e)
            .collect();
        assert_eq!(
            received,
            [
                &ConnEvent::Text("hello".into()),
                &ConnEvent::Bytes(vec![0, 159, 146, 150])
            ]
        );
    }

    #[test]
    fn an_unanswered_offer_is_resent_then_ends_at_its_deadline() {
        let now = Instant::now();
        let crypto = Crypto::new(Arc::new(str0m::crypto::from_feature_flags()));
        let locals = LocalAddrs::new(vec!["10.0.0.1:4000".parse().unwrap()]);
        let mut conn = Conn::new(now, &crypto, &locals, &[], 7, true);
        let _offer = conn.local_params();
        let mut at = now;
        let mut ended = None;
        let mut resent = Vec::new();
        while ended.is_none() && at <= now + CONNECT_TIMEOUT {
            at = conn.poll_timeout().unwrap().max(at);
            conn.handle_timeout(at);
            while let Some(event) = conn.poll_event() {
                match event {
                    ConnEvent::Ended(reason) => ended = Some(reason),
                    ConnEvent::ResendOffer => resent.push(at - now),
                    _ => {}
                }
            }
        }
        assert_eq!(ended, Some(ConnectionReason::NoAnswer));
        assert_eq!(at, now + CONNECT_TIMEOUT);
        assert_eq!(
            resent, OFFER_RESENDS,
            "the offer is sent again while unanswered"
        );
    }

    /// Texts b has received so far.
    fn texts_at_b(pair: &Pair) -> usize {
        pair.heard
            .iter()
            .filter(|(who, e)| *who == 'b' && matches!(e, ConnEvent::Text(_)))
            .count()
    }

    /// Sends `count` messages from a and steps until b has them all.
    fn carry(pair: &mut Pair, count: usize) {
        let before = texts_at_b(pair);
        for i in 0..count {
            assert!(pair.a.queue(
                false,
                format!("line {i:04} {}", "x".repeat(1000)).as_bytes()
            ));
        }
        pair.a.flush();
        for _ in 0..5000 {
            if texts_at_b(pair) - before == count {
                return;
            }
            pair.step();
        }
        panic!("not every message arrived");
    }

    #[test]
    fn a_clean_link_drops_to_one_copy_after_the_first_report() {
        let mut pair = Pair::new();
        assert_eq!(
            pair.a.copies(),
            crate::rtc::copies::UNMEASURED_COPIES,
            "unmeasured"
        );
        pair.open();
        carry(&mut pair, 100);
        // b compares a's datagrams once a declared them (a's first report,
        // 250 ms after it heard from b), and says so in its next report.
        let until = pair.now + FIRST_REPORT_AFTER + 2 * REPORT_INTERVAL;
        while pair.now < until {
            pair.step();
        }
        assert_eq!(
            pair.a.copies(),
            1,
            "the first figure comes within a second or two"
        );
    }

    #[test]
    fn forged_dtls_headers_do_not_raise_the_copies_of_a_clean_link() {
        let mut pair = Pair::new();
        pair.open();
        carry(&mut pair, 100);
        let until = pair.now + 3 * REPORT_INTERVAL;
        let mut forged = 0u64;
        while pair.now < until {
            // A third party spoofing a's address, who sees a's record
            // numbers: records just past and far past what a sent (the old
            // meter widened its count by the first kind), and replays.
            let high = pair.a_high;
            for number in [high + 40, high + 200, (1 << 48) + 3, (7 << 48) + forged] {
                let mut datagram = vec![23, 0xFE, 0xFD];
                datagram.extend_from_slice(&number.to_be_bytes());
                datagram.extend_from_slice(&[0, 8, 0, 0, 0, 0, 0, 0, 0, 0]);
                let (now, from, to) = (pair.now, pair.a_addr, pair.b_addr);
                pair.b.receive(now, from, to, &datagram);
            }
            forged += 1;
            carry(&mut pair, 20);
        }
        assert!(forged > 10, "forgeries went in");
        assert_eq!(pair.a.copies(), 1, "forged headers are no loss");
    }

    #[test]
    fn a_link_losing_a_quarter_sends_three_copies_and_loses_nothing() {
        let mut pair = Pair::new();
        pair.open();
        pair.lose_every = 4;
        carry(&mut pair, 100);
        let until = pair.now + 3 * REPORT_INTERVAL;
        while pair.now < until {
            pair.step();
        }
        assert_eq!(
            pair.a.copies(),
            3,
            "25 % lost: three copies keep it near 1.6 %"
        );
        let texts: Vec<String> = pair
            .heard
            .iter()
            .filter_map(|(who, e)| match e {
                ConnEvent::Text(t) if *who == 'b' => Some(t[..9].to_owned()),
                _ => None,
            })
            .collect();
        let sent: Vec<String> = (0..100).map(|i| format!("line {i:04}")).collect();
        assert_eq!(texts, sent, "complete and in order");
        // What the node counts (Stats::loss_reports, extra_copies).
        assert!(pair.heard.contains(&('a', ConnEvent::LossReported)));
        let copies_after_open: u64 = pair
            .heard
            .iter()
            .filter_map(|(who, e)| match e {
                ConnEvent::ExtraCopies(n) if *who == 'a' => Some(*n),
                _ => None,
            })
            .sum();
        assert!(copies_after_open > 0, "{copies_after_open} copies");
    }

    fn pipe() -> StreamHeader {
        StreamHeader {
            kind: StreamKind::PIPE,
            name: String::new(),
        }
    }

    /// Stream events `side` heard, taking them out.
    fn stream_events(pair: &mut Pair, side: char) -> Vec<TableEvent> {
        let (mine, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut pair.heard)
            .into_iter()
            .partition(|(s, e)| *s == side && matches!(e, ConnEvent::Stream(_)));
        pair.heard = rest;
        mine.into_iter()
            .filter_map(|(_, e)| match e {
                ConnEvent::Stream(event) => Some(event),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_stream_carries_megabytes_to_a_reader_that_consumes_and_closes_cleanly() {
        use crate::stream::StreamEvent;
        let mut pair = Pair::new();
        pair.b.set_accepted_kinds(&[StreamKind::PIPE]);
        pair.open();
        let stream = pair.a.open_stream(pipe()).unwrap();
        let payload: Vec<u8> = (0..3 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
        let (mut written, mut received) = (0, Vec::new());
        let mut b_stream = None;
        let mut b_closed = false;
        let mut a_closed = false;
        for _ in 0..5000 {
            if written < payload.len() {
                match pair.a.stream_write(stream, &payload[written..]) {
                    Ok(n) => written += n,
                    Err(WriteError::Blocked) => {}
                    Err(other) => panic!("{other}"),
                }
                if written == payload.len() {
                    pair.a.stream_finish(stream).unwrap();
                }
            }
            pair.step();
            for event in stream_events(&mut pair, 'b') {
                match event {
                    TableEvent::Incoming { number, header } => {
                        assert_eq!(header, pipe());
                        b_stream = Some(number);
                    }
                    TableEvent::Stream {
                        number,
                        event: StreamEvent::Data(bytes),
                    } => {
                        received.extend_from_slice(&bytes);
                        pair.b.stream_consumed(number, bytes.len()).unwrap();
                    }
                    TableEvent::Stream {
                        number,
                        event: StreamEvent::Finished,
                    } => pair.b.stream_finish(number).unwrap(),
                    TableEvent::Stream {
                        event: StreamEvent::Closed,
                        ..
                    } => b_closed = true,
                    _ => {}
                }
            }
            for event in stream_events(&mut pair, 'a') {
                if let TableEvent::Stream {
                    event: StreamEvent::Closed,
                    ..
                } = event
                {
                    a_closed = true;
                }
            }
            if a_closed && b_closed {
                break;
            }
        }
        assert!(b_stream.is_some(), "b heard the stream open");
        assert_eq!(received.len(), payload.len());
        assert!(received == payload, "the bytes arrive intact and in order");
        assert!(a_closed && b_closed, "both ends closed cleanly");
    }

    #[test]
    fn a_stream_of_a_kind_not_taken_is_refused() {
        use crate::stream::{ResetCode, StreamEvent};
        let mut pair = Pair::new();
        pair.open();
        let stream = pair.a.open_stream(pipe()).unwrap();
        for _ in 0..50 {
            pair.step();
        }
        assert_eq!(
            stream_events(&mut pair, 'b'),
            [TableEvent::Refused {
                header: pipe(),
                reason: "no pipe here".into()
            }],
            "b reports only the refusal"
        );
        let heard = stream_events(&mut pair, 'a');
        assert!(
            heard.contains(&TableEvent::Stream {
                number: stream,
                event: StreamEvent::Reset {
                    code: ResetCode::Refused,
                    reason: "no pipe here".into()
                }
            }),
            "{heard:?}"
        );
        assert_eq!(
            pair.a.stream_write(stream, b"x"),
            Err(WriteError::NotConnected)
        );
    }

    #[test]
    fn a_flow_carries_datagrams_both_ways_and_is_refused_where_not_taken() {
        use crate::stream::StreamEvent;
        let udp = |name: &str| StreamHeader {
            kind: StreamKind::UDP,
            name: name.into(),
        };
        let mut pair = Pair::new();
        pair.b.set_accepted_kinds(&[StreamKind::UDP]);
        pair.open();
        let flow = pair.a.open_stream(udp("wg")).unwrap();
        assert!(super::is_flow(flow));
        // Written before the channel is open: held, then sent.
        assert_eq!(pair.a.stream_write(flow, b"one"), Ok(3));
        for _ in 0..50 {
            pair.step();
        }
        assert_eq!(pair.a.stream_write(flow, b"two"), Ok(3));
        assert_eq!(
            pair.a
                .stream_write(flow, &vec![0; super::super::flows::MAX_DATAGRAM + 1]),
            Err(WriteError::TooLong)
        );
        for _ in 0..50 {
            pair.step();
        }
        let heard = stream_events(&mut pair, 'b');
        let Some(TableEvent::Incoming { number, header }) = heard.first().cloned() else {
            panic!("b hears the flow first: {heard:?}");
        };
        assert_eq!(header, udp("wg"));
        let data: Vec<Vec<u8>> = heard
            .iter()
            .filter_map(|e| match e {
                TableEvent::Stream {
                    event: StreamEvent::Data(d),
                    ..
                } => Some(d.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(data, [b"one".to_vec(), b"two".to_vec()]);
        assert_eq!(pair.b.stream_write(number, b"back"), Ok(4));
        for _ in 0..50 {
            pair.step();
        }
        assert!(stream_events(&mut pair, 'a').contains(&TableEvent::Stream {
            number: flow,
            event: StreamEvent::Data(b"back".to_vec())
        }));
        // Ending it closes the channel; the other side hears the close.
        pair.a.stream_finish(flow).unwrap();
        for _ in 0..50 {
            pair.step();
        }
        assert!(stream_events(&mut pair, 'b').contains(&TableEvent::Stream {
            number,
            event: StreamEvent::Closed
        }));
        assert_eq!(
            pair.a.stream_write(flow, b"late"),
            Err(WriteError::NotConnected)
        );
        // b takes no flows from itself to a: a refuses, naming why.
        let refused = pair.b.open_stream(udp("game")).unwrap();
        for _ in 0..50 {
            pair.step();
        }
        assert_eq!(
            stream_events(&mut pair, 'a')
                .into_iter()
                .filter(|e| matches!(e, TableEvent::Refused { .. }))
                .collect::<Vec<_>>(),
            [TableEvent::Refused {
                header: udp("game"),
                reason: "no udp here".into()
            }]
        );
        assert!(
            stream_events(&mut pair, 'b').contains(&TableEvent::Stream {
                number: refused,
                event: StreamEvent::Closed
            }),
            "the opener hears its flow closed"
        );
    }

    #[test]
    fn a_peer_not_allowed_is_refused_before_its_kind_and_is_not_opened_to() {
        use crate::stream::{ResetCode, StreamEvent};
        let mut pair = Pair::new();
        pair.b.set_accepted_kinds(&[StreamKind::PIPE]);
        pair.b.set_peer_allowed(false);
        pair.open();
        let stream = pair.a.open_stream(pipe()).unwrap();
        pair.a.stream_write(stream, b"secret").unwrap();
        for _ in 0..50 {
            pair.step();
        }
        let reason = "not on the allow-list".to_owned();
        assert_eq!(
            stream_events(&mut pair, 'b'),
            [TableEvent::Refused {
                header: pipe(),
                reason: reason.clone()
            }],
            "b takes none of a's bytes"
        );
        let heard = stream_events(&mut pair, 'a');
        assert!(
            heard.contains(&TableEvent::Stream {
                number: stream,
                event: StreamEvent::Reset {
                    code: ResetCode::Refused,
                    reason
                }
            }),
            "{heard:?}"
        );
        assert_eq!(pair.b.open_stream(pipe()), Err(WriteError::NotAllowed));
    }

    #[test]
    fn a_member_with_only_link_local_addresses_fails_saying_why() {
        let now = Instant::now();
        let crypto = Crypto::new(Arc::new(str0m::crypto::from_feature_flags()));
        let normal: SocketAddr = "10.0.0.1:4000".parse().unwrap();
        let link_local: SocketAddr = "[fe80::1%2]:4000".parse().unwrap();
        let mut a = Conn::new(now, &crypto, &LocalAddrs::new(vec![normal]), &[], 1, true);
        let mut b = Conn::new(
            now,
            &crypto,
            &LocalAddrs::new(vec![link_local]),
            &[],
            1,
            false,
        );
        assert!(
            b.local_params().candidates.0.is_empty(),
            "link-local is never offered"
        );
        b.start(&a.local_params(), false).unwrap();
        a.start(&b.local_params(), true).unwrap();
        let late = now + CONNECT_TIMEOUT + Duration::from_secs(1);
        for conn in [&mut a, &mut b] {
            conn.handle_timeout(late);
            let ended = std::iter::from_fn(|| conn.poll_event()).find_map(|e| match e {
                ConnEvent::Ended(reason) => Some(reason),
                _ => None,
            });
            assert_eq!(ended, Some(ConnectionReason::NoAddress));
        }
    }

    #[test]
    fn the_connections_of_one_registry_share_one_certificate() {
        let now = Instant::now();
        let crypto = Crypto::new(Arc::new(str0m::crypto::from_feature_flags()));
        let locals = LocalAddrs::new(vec!["10.0.0.1:4000".parse().unwrap()]);
        let mut first = Conn::new(now, &crypto, &locals, &[], 1, true);
        let mut second = Conn::new(now, &crypto, &locals, &[], 2, true);
        let (a, b) = (first.local_params(), second.local_params());
        assert_eq!(a.fingerprint, b.fingerprint);
        assert_ne!(a.ice_ufrag, b.ice_ufrag, "ICE credentials stay per attempt");
        let other = Crypto::new(Arc::new(str0m::crypto::from_feature_flags()));
        let mut third = Conn::new(now, &other, &locals, &[], 3, true);
        assert_ne!(third.local_params().fingerprint, a.fingerprint);
    }
}
