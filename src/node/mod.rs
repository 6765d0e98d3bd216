//! The sans-IO node: everything tinynode does, driven by `(now, input)`.
//!
//! The driver feeds a [`Node`] with received datagrams, timeouts and user
//! commands through [`Node::handle_input`], then drains
//! [`Node::poll_output`] (or [`Node::drain`]) until it returns
//! [`Output::Wait`], which carries the next instant the node must be woken
//! at (or `None` for "only on input"). The node never reads a clock,
//! touches a socket or asks the OS for random bytes, so the same code runs
//! under the mio driver and in tests with virtual time; wall-clock time for
//! record timestamps comes from a [`WallClock`](crate::WallClock) reading taken by the driver
//! at start.
//!
//! One file per job, as smoltcp splits its interface by protocol:
//!
//! | file | job |
//! |---|---|
//! | `mod.rs` | the node, its inputs and outputs, commands |
//! | `route.rs` | the one decision per datagram, and the rate-limit cost |
//! | `stun.rs` | our STUN client's responses and the Binding server |
//! | `dht.rs` | DHT frames, DHT events, the DHT member source |
//! | `mainline.rs` | KRPC, Mainline events, the Mainline member source |
//! | `lan.rs` | LAN beacons sent and heard |
//! | `hello.rs` | hellos sent and opened (Mainline and LAN) |
//! | `members.rs` | the joined meeting: membership and its changes |
//! | `signaling.rs` | sealing, sending and opening signals; signal paths |
//! | `rtc.rs` | datagrams and events of the WebRTC connections |
//! | `streams.rs` | the stream API: open, write, finish, reset, consume |
//! | `relay.rs` | relay frames: relaying for others, our own bindings |
//! | `address.rs` | our public address as others report it |
//! | `stats.rs` | counters and state sizes |

mod address;
mod dht;
mod hello;
mod lan;
mod mainline;
mod members;
mod relay;
mod route;
mod rtc;
mod signaling;
mod stats;
mod streams;
mod stun;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Instant;

use log::debug;

use crate::addr::{Family, PerFamily};
use crate::api::{Command, Event, Input, NatClass, NodeConfig, Output, RelayRole};
use crate::dht::engine::{Dht, LookupId};
use crate::id::NodeId;
use crate::limits::MAX_DATAGRAM_LEN;
use crate::mainline::engine::Mainline;
use crate::membership::{KnownPeer, PeerStatus};
use crate::ratelimit::{InboundLimiter, RateLimiter};
use crate::reach::Reach;
use crate::relay::probes::{ProbeBy, RelayProbes};
use crate::relay::service::RelayService;
use crate::rng::Rng;
use crate::sources::relays::{RelayDirectory, Role as DirectoryRole};
use crate::stun::client::StunClient;
use crate::transmit::{LocalAddrs, Transmit};
use address::PublicAddrs;
use members::Joined;
use route::Route;
use signaling::Signaling;
pub use stats::{DropReason, Sizes, Stats};

/// A tinynode, without IO.
pub struct Node {
    config: NodeConfig,
    locals: LocalAddrs,
    rng: Rng,
    /// Our STUN client of each family we have a socket of.
    stun_clients: PerFamily<StunClient>,
    dht: Dht,
    /// The Mainline client of each family we have a socket of (BEP 32),
    /// when Mainline is on.
    mainline: PerFamily<Mainline>,
    joined: Option<Joined>,
    signaling: Signaling,
    limiter: InboundLimiter,
    /// WebRTC datagrams were fed to connections at this time and their
    /// str0m instances not polled yet (see [`Node::handle_input`]).
    unsettled: Option<Instant>,
    /// What the application asked of streams (`streams.rs`), applied to
    /// each meeting's connections.
    stream_policy: streams::StreamPolicy,
    /// The STUN servers of the last discovery, asked again when our
    /// addresses change.
    stun_servers: Vec<SocketAddr>,
    hello_replies: RateLimiter<SocketAddr>,
    /// The nonces of the hellos we sent, for their echoes (§9.6).
    hello_nonces: hello::SentNonces,
    /// Relaying for others: role, table, cookies (`relay/service.rs`).
    relay: RelayService,
    /// The Mainline DHT as a directory of relays, when Mainline is on:
    /// a relay node announces itself there, a member whose meeting names
    /// no serve node looks there.
    relay_directory: Option<RelayDirectory>,
    /// Whether unsolicited datagrams reach us: probes, contacted IPs,
    /// verdict (`reach.rs`).
    reach: Reach,
    /// Our relay probes waiting for answers, by relay and token.
    relay_probes: RelayProbes,
    public: PublicAddrs,
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
        let locals = LocalAddrs::new(config.local_addrs.clone());
        let dht = Dht::new(
            now,
            config.identity.node_id(),
            locals.clone(),
            rng.fork(),
            config.bootstrap.clone(),
        );
        let mut mainline = PerFamily::default();
        if let Some(bootstrap) = &config.mainline_bootstrap {
            for family in Family::ALL {
                let Some(local) = locals
                    .all()
                    .iter()
                    .copied()
                    .find(|l| Family::of(*l) == family)
                else {
                    continue;
                };
                let ours = bootstrap
                    .iter()
                    .copied()
                    .filter(|a| Family::of(*a) == family);
                mainline.set(
                    family,
                    Some(Mainline::new(now, local, rng.fork(), ours.collect())),
                );
            }
            let dual_stack = mainline.iter().count() == 2;
            for (_, client) in mainline.iter_mut() {
                client.want_other_family(dual_stack);
            }
        }
        let relay = RelayService::new(config.relay, config.open_relay_limits, &mut rng);
        let mainline_on = mainline.iter().next().is_some();
        let relay_directory = match (config.relay, mainline_on) {
            (RelayRole::Open, true) => Some(RelayDirectory::new(
                now,
                DirectoryRole::Announce,
                rng.fork(),
            )),
            (RelayRole::Members | RelayRole::Off, true) if config.bootstrap.is_empty() => {
                Some(RelayDirectory::new(now, DirectoryRole::Look, rng.fork()))
            }
            _ => None,
        };
        Self {
            relay,
            relay_directory,
            relay_probes: RelayProbes::default(),
            reach: Reach::default(),
            stun_clients: {
                let mut clients = PerFamily::default();
                for family in Family::ALL {
                    if locals.all().iter().any(|l| Family::of(*l) == family) {
                        clients.set(family, Some(StunClient::new(config.retransmit, rng.fork())));
                    }
                }
                clients
            },
            dht,
            mainline,
            signaling: Signaling::new(config.clock.unix_ms(now)),
            public: PublicAddrs::new(&locals),
            locals,
            rng,
            config,
            joined: None,
            limiter: InboundLimiter::default(),
            unsettled: None,
            stream_policy: streams::StreamPolicy::default(),
            stun_servers: Vec::new(),
            hello_replies: RateLimiter::new(hello::HELLO_REPLIES),
            hello_nonces: hello::SentNonces::default(),
            user_lookups: Vec::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            stats: Stats::default(),
        }
    }

    /// The address of the node's first socket.
    pub fn local_addr(&self) -> SocketAddr {
        self.locals.primary()
    }

    /// The addresses of all the node's sockets.
    pub fn local_addrs(&self) -> &[SocketAddr] {
        self.locals.all()
    }

    /// The node's ID.
    pub fn node_id(&self) -> NodeId {
        self.config.identity.node_id()
    }

    /// The public address of the first socket's family, once known.
    pub fn public_addr(&self) -> Option<SocketAddr> {
        self.public.current(Family::of(self.locals.primary()))
    }

    /// The public address of `family`, once known.
    pub fn public_addr_of(&self, family: Family) -> Option<SocketAddr> {
        self.public.current(family)
    }

    /// What the reports of our public address say about the NAT of the
    /// first socket's family so far.
    pub fn nat_class(&self) -> NatClass {
        self.public.class(Family::of(self.locals.primary()))
    }

    /// What the reports say about the NAT (or firewall) of `family`.
    pub fn nat_class_of(&self, family: Family) -> NatClass {
        self.public.class(family)
    }

    /// Up to `count` good Mainline nodes (answered recently), for a node
    /// cache that spares the bootstrap routers next time; empty when
    /// Mainline is off.
    pub fn mainline_nodes(&self, count: usize) -> Vec<SocketAddr> {
        self.mainline
            .iter()
            .flat_map(|(_, m)| m.good_nodes(count))
            .take(count)
            .collect()
    }

    /// True while the node takes more [`Command::Send`] messages without
    /// queueing more than [`OUTBOX_PAUSE`](crate::rtc::OUTBOX_PAUSE)
    /// bytes for any connected member. A driver reading a stream (standard
    /// input) pauses while this is false, so a fast source is slowed to the
    /// slowest member instead of losing messages. In a meeting with no
    /// channel open yet it is false: input waits for the first member.
    pub fn ready_to_send(&self) -> bool {
        self.joined
            .as_ref()
            .is_none_or(|j| j.connections.ready_to_send())
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
            peers: self.joined.as_ref().map_or(0, |j| j.membership.len()),
            signaling: self.signaling.len(),
            connections: self.joined.as_ref().map_or(0, |j| j.connections.len()),
            rate_limited_sources: self.limiter.sources(),
            mainline_routing: self.mainline.iter().map(|(_, m)| m.routing_len()).sum(),
            mainline_pending: self.mainline.iter().map(|(_, m)| m.pending_len()).sum(),
            relay_bindings: self.relay_bindings(),
            contacted_ips: self.reach.contacted_len(),
            hello_nonces: self.hello_nonces.len(),
            send_window: self
                .joined
                .as_ref()
                .map_or(0, |j| j.connections.send_window()),
        }
    }

    /// Members of the joined meeting found so far, by node ID.
    pub fn known_peers(&self) -> Vec<KnownPeer> {
        let Some(joined) = self.joined.as_ref() else {
            return Vec::new();
        };
        joined
            .membership
            .known_peers()
            .map(|peer| {
                let mut peer = peer.clone();
                if joined.connections.is_connected(&peer.node_id) {
                    peer.status = PeerStatus::Connected;
                }
                peer
            })
            .collect()
    }

    /// Acts on one input at `now`. Drain [`poll_output`](Self::poll_output)
    /// afterwards; several received datagrams may be given before one
    /// drain: the WebRTC connections they reach are polled once, at the
    /// drain or the next other input, because each poll costs SCTP a walk
    /// over everything in flight.
    pub fn handle_input(&mut self, now: Instant, input: Input<'_>) {
        if !matches!(input, Input::Receive { .. }) {
            self.settle_connections();
        }
        match input {
            Input::Receive {
                source,
                destination,
                data,
            } => self.handle_datagram(now, source, destination, data),
            Input::Timeout => {
                for (_, client) in self.stun_clients.iter_mut() {
                    client.handle_timeout(now);
                }
                self.dht.handle_timeout(now);
                for (_, mainline) in self.mainline.iter_mut() {
                    mainline.handle_timeout(now);
                }
                self.relay_directory_timeout(now);
                self.meeting_timeout(now);
            }
            Input::Command(command) => self.handle_command(now, command),
        }
        self.process_events(now);
    }

    /// Polls the connections that received datagrams since they were
    /// last polled, and takes in their events.
    fn settle_connections(&mut self) {
        let Some(at) = self.unsettled.take() else {
            return;
        };
        if let Some(joined) = self.joined.as_mut() {
            joined.connections.settle(at);
        }
        self.process_connections(at);
    }

    /// The next thing to do; [`Output::Wait`] when there is nothing left.
    pub fn poll_output(&mut self) -> Output {
        self.settle_connections();
        while let Some(transmit) = self
            .transmits
            .pop_front()
            .or_else(|| {
                self.stun_clients
                    .iter_mut()
                    .find_map(|(_, c)| c.poll_transmit())
            })
            .or_else(|| self.dht.poll_transmit())
            .or_else(|| {
                self.mainline
                    .iter_mut()
                    .find_map(|(_, m)| m.poll_transmit())
            })
            .or_else(|| {
                self.joined
                    .as_mut()
                    .and_then(|j| j.connections.poll_transmit())
            })
        {
            if !self.locals.reach(transmit.destination) {
                let family = Family::of(transmit.destination);
                debug!(
                    "no {family} socket: datagram to {} not sent",
                    transmit.destination
                );
                self.stats.unsendable += 1;
                continue;
            }
            self.reach.sent_to(transmit.destination.ip());
            return Output::Transmit(transmit);
        }
        if let Some(event) = self.events.pop_front() {
            return Output::Event(event);
        }
        let mainline_ready = self.mainline_ready();
        let deadline = [
            self.stun_clients
                .iter()
                .filter_map(|(_, c)| c.poll_timeout())
                .min(),
            self.dht.poll_timeout(),
            self.mainline
                .iter()
                .filter_map(|(_, m)| m.poll_timeout())
                .min(),
            self.relay_directory
                .as_ref()
                .filter(|_| mainline_ready)
                .and_then(|d| d.poll_timeout(self.joined.is_some())),
            self.joined
                .as_ref()
                .and_then(|j| j.poll_timeout(mainline_ready)),
        ]
        .into_iter()
        .flatten()
        .min();
        Output::Wait(deadline)
    }

    /// Everything the node has to say until it waits: an iterator over
    /// [`Output::Transmit`] and [`Output::Event`], whose
    /// [`deadline`](Drain::deadline) afterwards is the wait's. str0m's rule
    /// "drain after every mutation" applied to the whole node, written once.
    pub fn drain(&mut self) -> Drain<'_> {
        Drain {
            node: self,
            deadline: None,
        }
    }

    fn handle_command(&mut self, now: Instant, command: Command) {
        match command {
            Command::DiscoverPublicAddress { servers } => self.discover_public(now, servers),
            Command::Join(meeting) => self.join(now, meeting),
            Command::FindNode(target) => {
                let id = self.dht.find_node(now, target);
                self.user_lookups.push(id);
            }
            Command::Send(text) => self.send_texts(now, &[text]),
            Command::SendMany(texts) => self.send_texts(now, &texts),
            Command::SendTo { peer, bytes } => self.send_to_command(now, peer, &bytes),
            Command::MainlineBootstrap(addrs) => {
                for (family, mainline) in self.mainline.iter_mut() {
                    let ours: Vec<SocketAddr> = addrs
                        .iter()
                        .copied()
                        .filter(|a| Family::of(*a) == family)
                        .collect();
                    if !ours.is_empty() {
                        mainline.set_bootstrap(now, ours);
                        mainline.handle_timeout(now);
                    }
                }
            }
            Command::ProbeRelays(relays) => self.probe_relays(now, relays, ProbeBy::User),
            Command::ProbeReach(nodes) => {
                for via in nodes {
                    let txid = self.dht.reach_me(now, via);
                    self.reach.asked(txid, via);
                }
            }
            Command::Bootstrap(addrs) => self.dht.set_bootstrap(now, addrs),
            Command::SampleNat => {
                self.dht.find_node(now, NodeId(self.rng.bytes()));
                let target = self.rng.bytes();
                for (_, mainline) in self.mainline.iter_mut() {
                    mainline.get_peers(now, target);
                }
            }
            Command::Leave => self.leave(now),
        }
    }

    /// Turns engine events into user events and membership actions.
    fn process_events(&mut self, now: Instant) {
        self.process_stun_events();
        self.process_dht_events(now);
        self.process_mainline_events(now);
        self.process_connections(now);
    }

    fn handle_datagram(
        &mut self,
        now: Instant,
        source: SocketAddr,
        destination: SocketAddr,
        data: &[u8],
    ) {
        self.stats.received += 1;
        if data.len() > MAX_DATAGRAM_LEN {
            return self.drop_datagram(source, DropReason::Oversized);
        }
        // The beacon listener hears the group: beacons are all that is
        // spoken there, and nothing can be answered from a group address.
        let datagram = route::Datagram::new(data);
        if destination.ip().is_multicast() && datagram.protocol() != crate::demux::Protocol::Beacon
        {
            return self.drop_datagram(source, DropReason::UnknownProtocol);
        }
        let cost = datagram.cost(source, &self.known());
        if !self.limiter.allow(now, source.ip(), cost) {
            return self.drop_datagram(source, DropReason::RateLimited);
        }
        match datagram.route(source, &self.known()) {
            Route::StunResponse(response) => self.on_stun_response(now, source, &response),
            Route::BindingRequest(request) => self.answer_binding(source, destination, &request),
            Route::MalformedRequest(header) => {
                self.answer_malformed(source, destination, &header, data.len())
            }
            Route::Ice(peer) | Route::Dtls(peer) => {
                self.deliver_to_connection(now, peer, source, destination, data)
            }
            Route::Dht => self.on_dht_datagram(now, source, data),
            Route::Mainline => self.on_mainline_datagram(now, source, data),
            Route::Hello => self.on_hello(now, source, data),
            Route::Beacon => self.on_beacon(now, source, destination, data),
            Route::Relay => self.on_relay_frame(now, source, destination, data),
            Route::Drop(reason) => self.drop_datagram(source, reason),
        }
        // The connections' output is taken with every engine's by
        // `handle_input`'s `process_events`.
    }

    fn drop_datagram(&mut self, source: SocketAddr, reason: DropReason) {
        debug!("dropped datagram from {source}: {}", reason.name());
        self.stats.count_drop(reason);
    }
}

/// The outputs of a [`Node`] until it waits; see [`Node::drain`].
pub struct Drain<'a> {
    node: &'a mut Node,
    deadline: Option<Option<Instant>>,
}

impl Drain<'_> {
    /// When the node wants to be woken (`None`: only on input); valid once
    /// the iterator has ended.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline.flatten()
    }
}

impl Iterator for Drain<'_> {
    type Item = Output;

    fn next(&mut self) -> Option<Output> {
        if self.deadline.is_some() {
            return None;
        }
        match self.node.poll_output() {
            Output::Wait(deadline) => {
                self.deadline = Some(deadline);
                None
            }
            output => Some(output),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::api::{AddressSource, WallClock};
    use crate::identity::Identity;
    use crate::stun::attribute::Attribute;
    use crate::stun::message::{Class, MessageEncoder, Method, TransactionId};

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
        let mut outputs = node.drain();
        for output in &mut outputs {
            match output {
                Output::Transmit(t) => transmits.push(t),
                Output::Event(e) => events.push(e),
                Output::Wait(_) => unreachable!("drain ends at Wait"),
            }
        }
        (transmits, events, outputs.deadline())
    }

    #[test]
    fn a_new_local_address_is_reported_used_as_the_source_and_forgets_the_public_one() {
        let now = Instant::now();
        let clock = WallClock {
            at: now,
            unix_ms: 1_800_000_000_000,
        };
        let mut config =
            NodeConfig::new(addr("10.0.0.1:4000"), Identity::from_seed([3; 32]), clock);
        config.bootstrap = vec![addr("192.0.2.9:3478")];
        let mut node = Node::new(now, config, [3; 32]);
        node.set_public(addr("198.51.100.7:4000"));
        drain(&mut node);
        // The same addresses again: nothing happens.
        node.set_local_addrs(now, vec![addr("10.0.0.1:4000")]);
        let (_, events, _) = drain(&mut node);
        assert!(events.is_empty(), "{events:?}");
        node.set_local_addrs(now, vec![addr("10.0.0.2:4000")]);
        let (_, events, _) = drain(&mut node);
        assert_eq!(
            events,
            [Event::LocalAddresses {
                addrs: vec![addr("10.0.0.2:4000")]
            }]
        );
        assert_eq!(node.local_addrs(), [addr("10.0.0.2:4000")]);
        assert_eq!(
            node.public_addr(),
            None,
            "the old network's public address is gone"
        );
        // The DHT's next datagrams leave from the new address.
        let later = now + Duration::from_secs(600);
        node.handle_input(later, Input::Timeout);
        let (transmits, _, _) = drain(&mut node);
        assert!(!transmits.is_empty());
        assert!(
            transmits.iter().all(|t| t.source == addr("10.0.0.2:4000")),
            "{transmits:?}"
        );
    }

    fn receive(node: &mut Node, now: Instant, source: SocketAddr, data: &[u8]) {
        let destination = node.local_addr();
        node.handle_input(
            now,
            Input::Receive {
                source,
                destination,
                data,
            },
        );
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
        assert_eq!(requests[0].source, a_addr);
        receive(&mut b, now, a_addr, &requests[0].payload);
        let (answers, _, _) = drain(&mut b);
        assert_eq!(answers[0].destination, a_addr);
        assert_eq!(answers[0].source, b_addr, "answered from where it arrived");
        receive(&mut a, now, b_addr, &answers[0].payload);
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
            receive(&mut n, now, source, data);
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

    #[test]
    fn a_request_of_a_newer_kind_is_answered_unsupported() {
        use crate::dht::wire::{ErrorCode, Message, Response, decode_frame};
        let now = Instant::now();
        let mut n = node_at(now, "10.0.0.1:5000", 1);
        let source = addr("192.0.2.1:1");
        // Tag, version, Request, txid, sender, then variant 9 and a body
        // this version cannot read.
        let mut frame = vec![0x0a, 1, 0];
        frame.extend_from_slice(&[7; 8]);
        frame.extend_from_slice(&[1; 32]);
        frame.extend_from_slice(&[9, 1, 2, 3]);
        receive(&mut n, now, source, &frame);
        let (transmits, _, _) = drain(&mut n);
        let [answer] = &transmits[..] else {
            panic!("one answer, got {transmits:?}");
        };
        assert_eq!(answer.destination, source);
        assert!(answer.payload.len() <= 3 * frame.len());
        assert!(matches!(
            decode_frame(&answer.payload),
            Ok(Message::Response {
                txid,
                body: Response::Error(ErrorCode::Unsupported),
                ..
            }) if txid == [7; 8]
        ));
        assert_eq!(n.stats().dht_messages, 1);
        assert_eq!(n.stats().dropped_total(), 0);
    }

    #[test]
    fn requests_are_rate_limited_before_they_are_parsed() {
        let now = Instant::now();
        let mut n = node_at(now, "10.0.0.1:5000", 1);
        let source = addr("192.0.2.1:1");
        // Malformed DHT requests: each still costs a token.
        for _ in 0..crate::ratelimit::BURST + 10 {
            receive(&mut n, now, source, &[0x0a, 1, 0, 0xff]);
        }
        let stats = n.stats();
        assert_eq!(
            stats.dropped(DropReason::DhtMalformed),
            crate::ratelimit::BURST
        );
        assert_eq!(stats.dropped(DropReason::RateLimited), 10);
    }
}
