//! The sans-IO node: everything tinynode does, driven by `(now, input)`.
//!
//! The driver feeds a [`Node`] with received datagrams, timeouts and user
//! commands through [`Node::handle_input`], then drains
//! [`Node::poll_output`] until it returns [`Output::Wait`], which carries the
//! next instant the node must be woken at (or `None` for "only on input").
//! The node never reads a clock, touches a socket or asks the OS for random
//! bytes, so the same code runs under the mio driver and in tests with
//! virtual time.
//!
//! Every received datagram goes through [`demux::classify`]; STUN responses
//! go to the address-discovery client, everything else STUN to the Binding
//! server. Datagrams nothing here handles are dropped and counted in
//! [`Stats`], never an error.

use std::collections::VecDeque;
use std::fmt;
use std::net::SocketAddr;
use std::time::Instant;

use log::debug;

use crate::demux::{self, Protocol};
use crate::hex::hex;
use crate::rng::Rng;
use crate::stun::client::{ClientEvent, Rejection, RetransmitConfig, ServerFailure, StunClient};
use crate::stun::message::{Class, Header, Message};
use crate::stun::server::{self, AnswerKind, Silence};
use crate::transmit::Transmit;

/// Largest datagram the node reads; anything longer is dropped unread.
pub const MAX_DATAGRAM_LEN: usize = 2048;

/// What a node needs to know at start.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// The concrete address the socket is bound to.
    pub local_addr: SocketAddr,
    /// STUN retransmission numbers for address discovery.
    pub retransmit: RetransmitConfig,
    /// SOFTWARE value in STUN answers.
    pub software: String,
}

impl NodeConfig {
    /// RFC 5389 retransmission defaults and `tinynode VERSION` as SOFTWARE.
    pub fn new(local_addr: SocketAddr) -> Self {
        Self {
            local_addr,
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
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Ask these STUN servers, in order, for this socket's public address.
    DiscoverPublicAddress {
        /// Servers to try.
        servers: Vec<SocketAddr>,
    },
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

/// Something that happened, for the user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A STUN server reported our public address.
    PublicAddress {
        /// The address as the server sees it.
        address: SocketAddr,
        /// The server that said so.
        server: SocketAddr,
    },
    /// No STUN server gave an address.
    PublicAddressFailed {
        /// Each server tried and why it failed.
        attempts: Vec<ServerFailure>,
    },
}

/// Why a received datagram was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropReason {
    /// Longer than [`MAX_DATAGRAM_LEN`].
    Oversized,
    /// Empty, or a protocol tinynode does not speak (by first byte).
    UnknownProtocol,
    /// A protocol tinynode speaks but this node does not handle yet.
    Unhandled,
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
}

impl DropReason {
    /// Every reason, in the order stats are printed.
    pub const ALL: [DropReason; 9] = [
        Self::Oversized,
        Self::UnknownProtocol,
        Self::Unhandled,
        Self::StunMalformed,
        Self::StunIgnored,
        Self::StunUnknownTransaction,
        Self::StunWrongSource,
        Self::StunBadFingerprint,
        Self::StunAnswerTooLarge,
    ];

    /// Short name for logs and stats lines.
    pub fn name(self) -> &'static str {
        match self {
            Self::Oversized => "oversized",
            Self::UnknownProtocol => "unknown_protocol",
            Self::Unhandled => "unhandled",
            Self::StunMalformed => "stun_malformed",
            Self::StunIgnored => "stun_ignored",
            Self::StunUnknownTransaction => "stun_unknown_transaction",
            Self::StunWrongSource => "stun_wrong_source",
            Self::StunBadFingerprint => "stun_bad_fingerprint",
            Self::StunAnswerTooLarge => "stun_answer_too_large",
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

    fn count_drop(&mut self, reason: DropReason) {
        self.dropped[reason as usize] += 1;
    }
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "received={} stun_answers={} stun_error_answers={} dropped={}",
            self.received,
            self.stun_answers,
            self.stun_error_answers,
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

/// A tinynode, without IO.
pub struct Node {
    config: NodeConfig,
    stun_client: StunClient,
    transmits: VecDeque<Transmit>,
    stats: Stats,
}

impl Node {
    /// A node whose randomness is derived from `seed` (from the OS in the
    /// driver, a constant in tests).
    pub fn new(config: NodeConfig, seed: [u8; 32]) -> Self {
        let mut rng = Rng::from_seed(seed);
        Self {
            stun_client: StunClient::new(config.retransmit, rng.fork()),
            config,
            transmits: VecDeque::new(),
            stats: Stats::default(),
        }
    }

    /// The address the node's socket is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.config.local_addr
    }

    /// What the node has received, answered and dropped so far.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Acts on one input at `now`. Drain [`poll_output`](Self::poll_output) afterwards.
    pub fn handle_input(&mut self, now: Instant, input: Input<'_>) {
        match input {
            Input::Receive { source, data } => self.handle_datagram(now, source, data),
            Input::Timeout => self.stun_client.handle_timeout(now),
            Input::Command(Command::DiscoverPublicAddress { servers }) => {
                self.stun_client.start(now, self.config.local_addr, servers)
            }
        }
    }

    /// The next thing to do; [`Output::Wait`] when there is nothing left.
    pub fn poll_output(&mut self) -> Output {
        if let Some(transmit) = self
            .transmits
            .pop_front()
            .or_else(|| self.stun_client.poll_transmit())
        {
            return Output::Transmit(transmit);
        }
        if let Some(event) = self.stun_client.poll_event() {
            return Output::Event(match event {
                ClientEvent::Discovered { address, server } => {
                    Event::PublicAddress { address, server }
                }
                ClientEvent::Failed { attempts } => Event::PublicAddressFailed { attempts },
            });
        }
        Output::Wait(self.stun_client.poll_timeout())
    }

    fn handle_datagram(&mut self, now: Instant, source: SocketAddr, data: &[u8]) {
        self.stats.received += 1;
        if data.len() > MAX_DATAGRAM_LEN {
            return self.drop_datagram(source, DropReason::Oversized);
        }
        match demux::classify(data) {
            Protocol::Stun => self.handle_stun(now, source, data),
            Protocol::Dht | Protocol::Dtls => self.drop_datagram(source, DropReason::Unhandled),
            Protocol::Zrtp
            | Protocol::TurnChannel
            | Protocol::Quic
            | Protocol::Rtp
            | Protocol::Unassigned
            | Protocol::Empty => self.drop_datagram(source, DropReason::UnknownProtocol),
        }
    }

    fn handle_stun(&mut self, now: Instant, source: SocketAddr, data: &[u8]) {
        let is_response = Header::parse(data)
            .is_ok_and(|h| matches!(h.class, Class::SuccessResponse | Class::ErrorResponse));
        if is_response {
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
            if let Err(reason) = result {
                self.drop_datagram(source, reason);
            }
            return;
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
    use std::time::Duration;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn node(local: &str) -> Node {
        Node::new(NodeConfig::new(addr(local)), [0; 32])
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
    fn idle_node_has_no_deadline() {
        let mut n = node("10.0.0.1:5000");
        let (transmits, events, deadline) = drain(&mut n);
        assert!(transmits.is_empty() && events.is_empty());
        assert_eq!(deadline, None);
    }

    #[test]
    fn two_nodes_discover_addresses_through_each_other() {
        let now = Instant::now();
        let (a_addr, b_addr) = (addr("10.0.0.1:5000"), addr("10.0.0.2:6000"));
        let mut a = node("10.0.0.1:5000");
        let mut b = node("10.0.0.2:6000");
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
                server: b_addr
            }]
        );
        assert_eq!(deadline, None);
        assert_eq!(b.stats().stun_answers, 1);
    }

    #[test]
    fn garbage_is_counted_never_answered() {
        let now = Instant::now();
        let mut n = node("10.0.0.1:5000");
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
        let inputs: [&[u8]; 6] = [
            &[],
            &[0x80, 1, 2],
            &[0x16, 0xfe],
            &[0x00, 0x01],
            &oversized,
            &stray,
        ];
        for data in inputs {
            n.handle_input(now, Input::Receive { source, data });
        }
        let (transmits, events, _) = drain(&mut n);
        assert!(transmits.is_empty() && events.is_empty());
        let stats = n.stats();
        assert_eq!(stats.received, 6);
        assert_eq!(stats.dropped(DropReason::UnknownProtocol), 2);
        assert_eq!(stats.dropped(DropReason::Unhandled), 1);
        assert_eq!(stats.dropped(DropReason::StunMalformed), 1);
        assert_eq!(stats.dropped(DropReason::Oversized), 1);
        assert_eq!(stats.dropped(DropReason::StunUnknownTransaction), 1);
        assert_eq!(stats.dropped_total(), 6);
        assert!(stats.to_string().contains("stun_unknown_transaction=1"));
    }
}
