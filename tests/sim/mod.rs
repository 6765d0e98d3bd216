//! A deterministic network simulator for many [`Node`]s in one process.
//!
//! Virtual time only: the clock jumps to the next datagram delivery or node
//! deadline. One seed drives latency, loss and node seeds, so a failing run
//! is reproduced by its seed (printed by [`Sim::new`]); the exception is
//! str0m, which draws its own ICE credentials and DTLS keys, so WebRTC
//! timings vary slightly between runs and tests wait for outcomes rather
//! than assume exact times. Hosts may sit behind
//! a NAT with endpoint-independent mapping (one public port per private
//! socket, whatever the destination) and address-dependent filtering
//! (inbound only from addresses the mapping has sent to), the common
//! home-router behaviour, or behind a symmetric NAT ([`Sim::add_symmetric_nat`]:
//! a new public port for every destination, as mobile carriers and CGNATs
//! do), where only a relay helps.

#![allow(dead_code)] // Each test file uses a different subset.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use tinynode::NodeId;
use tinynode::wire::dht::{
    Blob, Message, Request, Response, TOKEN_LEN, decode_frame, encode_frame,
};
use tinynode::{Command, Event, Input, Node, NodeConfig, Output, WallClock};
use tinynode::{Identity, Meeting};

/// xorshift64*: small, fast and good enough for simulation choices.
pub struct SimRng(u64);

impl SimRng {
    /// A generator for `seed` (zero is replaced).
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// 32 random bytes.
    pub fn bytes32(&mut self) -> [u8; 32] {
        let mut out = [0u8; 32];
        for chunk in out.chunks_mut(8) {
            chunk.copy_from_slice(&self.next_u64().to_le_bytes());
        }
        out
    }
}

struct Nat {
    public_ip: IpAddr,
    next_port: u16,
    /// A new mapping per destination (endpoint-dependent).
    symmetric: bool,
    /// (private socket, destination when symmetric) → public port
    mappings: HashMap<(SocketAddr, Option<SocketAddr>), u16>,
    /// public port → (private socket, remotes it has sent to)
    reverse: HashMap<u16, (SocketAddr, HashSet<SocketAddr>)>,
}

/// How a host's IPv6 socket is set up.
#[derive(Clone, Copy)]
struct V6Socket {
    /// No IPv4 socket at all.
    v6_only: bool,
    /// A stateful firewall in front of it.
    firewall6: bool,
}

/// One simulated host.
pub struct Host {
    /// The node.
    pub node: Node,
    /// Its socket's (private) address.
    pub addr: SocketAddr,
    /// Its IPv6 socket's address, when it has one: public, never
    /// translated (IPv6 has no NAT), and reached directly.
    pub addr6: Option<SocketAddr>,
    /// A stateful firewall in front of its IPv6 address: inbound
    /// datagrams pass only from remotes it has sent to (address- and
    /// port-dependent filtering, as home routers do for IPv6).
    firewall6: Option<HashSet<SocketAddr>>,
    /// False once killed: it receives and sends nothing more.
    pub alive: bool,
    /// Every event it raised, with the virtual time.
    pub events: Vec<(Instant, Event)>,
    /// Inputs it was woken for: datagrams delivered and timers fired (what
    /// a real process would wake up for, at most).
    pub wakeups: u64,
    nat: Option<usize>,
    wake_at: Option<Instant>,
}

/// The simulated network.
pub struct Sim {
    pub seed: u64,
    pub start: Instant,
    pub now: Instant,
    pub rng: SimRng,
    pub hosts: Vec<Host>,
    /// Latency is uniform in this range.
    pub latency: (Duration, Duration),
    /// Probability (0..=1) that a datagram is lost.
    pub loss: f64,
    nats: Vec<Nat>,
    by_addr: HashMap<SocketAddr, usize>,
    deliveries: BinaryHeap<Reverse<(Instant, u64, usize)>>,
    in_flight: HashMap<usize, (SocketAddr, SocketAddr, Vec<u8>)>,
    timers: BinaryHeap<Reverse<(Instant, usize)>>,
    sequence: u64,
    /// Datagrams delivered so far.
    pub delivered: u64,
    /// A running hash of every delivered datagram: (virtual time since the
    /// start, source, destination, bytes). `DefaultHasher::new()` has fixed
    /// keys, so equal runs give equal hashes.
    trace: DefaultHasher,
    /// Datagrams (source, bytes) that arrived at watched addresses with no
    /// host: what an attacker there receives.
    pub sink: HashMap<SocketAddr, Vec<(SocketAddr, Vec<u8>)>>,
}

const UNIX_START_MS: u64 = 1_800_000_000_000;

/// A DHT request frame from `sender` with `padding` zero bytes (a client
/// that wants full answers from a node that does not know it pads).
pub fn request_frame(txid: [u8; 8], sender: NodeId, body: Request, padding: usize) -> Vec<u8> {
    encode_frame(&Message::Request {
        txid,
        sender,
        body,
        padding: Blob(vec![0; padding]),
    })
}

/// The `Peers` answers (token, sealed records) among datagrams received.
pub fn peers_answers(
    received: &[(SocketAddr, Vec<u8>)],
) -> Vec<(SocketAddr, [u8; TOKEN_LEN], Vec<Vec<u8>>)> {
    received
        .iter()
        .filter_map(|(from, datagram)| match decode_frame(datagram) {
            Ok(Message::Response {
                body: Response::Peers { token, records, .. },
                ..
            }) => Some((*from, token, records.0.into_iter().map(|r| r.0).collect())),
            _ => None,
        })
        .collect()
}

impl Sim {
    /// An empty network; prints the seed so a failure can be replayed.
    pub fn new(seed: u64) -> Self {
        println!("simulation seed {seed}");
        let start = Instant::now();
        Self {
            seed,
            start,
            now: start,
            rng: SimRng::new(seed),
            hosts: Vec::new(),
            latency: (Duration::from_millis(10), Duration::from_millis(80)),
            loss: 0.0,
            nats: Vec::new(),
            by_addr: HashMap::new(),
            deliveries: BinaryHeap::new(),
            in_flight: HashMap::new(),
            timers: BinaryHeap::new(),
            sequence: 0,
            delivered: 0,
            trace: DefaultHasher::new(),
            sink: HashMap::new(),
        }
    }

    /// Adds a NAT router with its own public IP; returns its index.
    pub fn add_nat(&mut self) -> usize {
        self.add_nat_of_kind(false)
    }

    /// Adds a symmetric NAT router (a new port per destination, inbound
    /// only from that destination); returns its index.
    pub fn add_symmetric_nat(&mut self) -> usize {
        self.add_nat_of_kind(true)
    }

    fn add_nat_of_kind(&mut self, symmetric: bool) -> usize {
        let index = self.nats.len();
        // Each NAT in a /24 of its own, as on the internet: nodes count
        // sources per /24 too (`protocol-spec.md` §7.2).
        let ip = Ipv4Addr::new(198, 51 + (index >> 8) as u8, index as u8, 1);
        self.nats.push(Nat {
            public_ip: IpAddr::V4(ip),
            next_port: 20_000,
            symmetric,
            mappings: HashMap::new(),
            reverse: HashMap::new(),
        });
        index
    }

    /// Adds a host (behind `nat` if given) that bootstraps from `bootstrap`.
    pub fn add_host(&mut self, nat: Option<usize>, bootstrap: &[SocketAddr]) -> usize {
        let identity = self.rng.bytes32();
        self.add_host_with_identity(nat, bootstrap, identity)
    }

    /// Adds a host whose identity key comes from `identity_seed`: the same
    /// seed again is the same node restarted (at a new address).
    pub fn add_host_with_identity(
        &mut self,
        nat: Option<usize>,
        bootstrap: &[SocketAddr],
        identity_seed: [u8; 32],
    ) -> usize {
        self.add_host_configured(nat, bootstrap, identity_seed, |_| {})
    }

    /// Adds a host whose configuration `configure` adjusts (a relay role,
    /// for example).
    pub fn add_host_configured(
        &mut self,
        nat: Option<usize>,
        bootstrap: &[SocketAddr],
        identity_seed: [u8; 32],
        configure: impl FnOnce(&mut NodeConfig),
    ) -> usize {
        self.add_host_full(nat, None, bootstrap, identity_seed, configure)
    }

    /// Adds a host with an IPv6 socket (`2001:db8:0:INDEX+1::1`, a /64 of its own, port 4000),
    /// behind a stateful IPv6 firewall if `firewall6`, and an IPv4 socket
    /// (behind `nat` if given) unless `v6_only`; `configure` adjusts its
    /// configuration last.
    pub fn add_host_v6(
        &mut self,
        nat: Option<usize>,
        v6_only: bool,
        firewall6: bool,
        bootstrap: &[SocketAddr],
        configure: impl FnOnce(&mut NodeConfig),
    ) -> usize {
        let identity = self.rng.bytes32();
        let v6 = V6Socket { v6_only, firewall6 };
        self.add_host_full(nat, Some(v6), bootstrap, identity, configure)
    }

    fn add_host_full(
        &mut self,
        nat: Option<usize>,
        v6: Option<V6Socket>,
        bootstrap: &[SocketAddr],
        identity_seed: [u8; 32],
        configure: impl FnOnce(&mut NodeConfig),
    ) -> usize {
        let index = self.hosts.len();
        let ip = match nat {
            Some(_) => Ipv4Addr::new(10, (index >> 16) as u8, (index >> 8) as u8, index as u8),
            // Each public host in a /24 of its own (up to 16,384 hosts).
            None => Ipv4Addr::new(100, 64 + (index >> 8) as u8, index as u8, 1),
        };
        let v4 = SocketAddr::new(IpAddr::V4(ip), 4000);
        // Each IPv6 host in a /64 of its own, as on the internet.
        let addr6 = SocketAddr::from(([0x2001, 0xdb8, 0, index as u16 + 1, 0, 0, 0, 1], 4000));
        let (addr, locals) = match v6 {
            None => (v4, vec![v4]),
            Some(V6Socket { v6_only: true, .. }) => (addr6, vec![addr6]),
            Some(_) => (v4, vec![v4, addr6]),
        };
        let clock = WallClock {
            at: self.start,
            unix_ms: UNIX_START_MS,
        };
        let mut config = NodeConfig::new(addr, Identity::from_seed(identity_seed), clock);
        config.local_addrs = locals;
        config.bootstrap = bootstrap.to_vec();
        configure(&mut config);
        let node = Node::new(self.now, config, self.rng.bytes32());
        self.hosts.push(Host {
            node,
            addr,
            addr6: v6.map(|_| addr6),
            firewall6: v6.filter(|v6| v6.firewall6).map(|_| HashSet::new()),
            alive: true,
            events: Vec::new(),
            wakeups: 0,
            nat: nat.filter(|_| addr.is_ipv4()),
            wake_at: None,
        });
        if nat.is_none() || addr.is_ipv6() {
            self.by_addr.insert(addr, index);
        }
        if v6.is_some() {
            self.by_addr.insert(addr6, index);
        }
        self.drain(index);
        index
    }

    /// The address other hosts reach `index` at (its NAT mapping is created
    /// on first use, so only public hosts can be bootstrap nodes).
    pub fn addr(&self, index: usize) -> SocketAddr {
        self.hosts[index].addr
    }

    /// The node ID of host `index`.
    pub fn id(&self, index: usize) -> NodeId {
        self.hosts[index].node.node_id()
    }

    /// Gives host `index` a command now.
    pub fn command(&mut self, index: usize, command: Command) {
        let now = self.now;
        self.hosts[index]
            .node
            .handle_input(now, Input::Command(command));
        self.drain(index);
    }

    /// Calls `action` on host `index`'s node now (its stream and send
    /// API), then moves what it put out.
    pub fn with_node<T>(
        &mut self,
        index: usize,
        action: impl FnOnce(&mut tinynode::Node, std::time::Instant) -> T,
    ) -> T {
        let now = self.now;
        let result = action(&mut self.hosts[index].node, now);
        self.drain(index);
        result
    }

    /// Sends `payload` from `source` (any address, host or not) to
    /// `destination`, with the usual latency and loss.
    pub fn inject(&mut self, source: SocketAddr, destination: SocketAddr, payload: Vec<u8>) {
        let lost = self.loss > 0.0 && (self.rng.below(1_000_000) as f64) < self.loss * 1_000_000.0;
        if lost {
            return;
        }
        let (low, high) = self.latency;
        let spread = (high - low).as_micros() as u64;
        let delay = low + Duration::from_micros(self.rng.below(spread + 1));
        self.sequence += 1;
        let id = self.sequence as usize;
        self.in_flight.insert(id, (source, destination, payload));
        self.deliveries
            .push(Reverse((self.now + delay, self.sequence, id)));
    }

    /// The hash of every datagram delivered so far (see [`Sim::trace`]).
    pub fn trace_hash(&self) -> u64 {
        self.trace.finish()
    }

    /// Collects what is sent to `addr` (where no host lives) in [`Sim::sink`].
    pub fn watch(&mut self, addr: SocketAddr) {
        self.sink.entry(addr).or_default();
    }

    /// Sends `bind` from the watched address `asker` to `relay` as a client
    /// does: first without a cookie, then, if the relay challenged it within
    /// a second, again with the challenge's cookie. The frames the relay
    /// sent `asker` meanwhile, decoded, in arrival order.
    pub fn bind_as_client(
        &mut self,
        asker: SocketAddr,
        relay: SocketAddr,
        mut bind: tinynode::wire::relay::Bind,
    ) -> Vec<Vec<u8>> {
        use tinynode::wire::relay::Frame;
        self.watch(asker);
        let seen = self.sink[&asker].len();
        bind.cookie = None;
        self.inject(asker, relay, Frame::Bind(bind).encode());
        self.run_for(Duration::from_secs(1));
        let cookie = self.sink[&asker][seen..]
            .iter()
            .find_map(|(_, d)| match Frame::decode(d) {
                Ok(Frame::Challenge { token, cookie }) if token == bind.token => Some(cookie),
                _ => None,
            });
        if let Some(cookie) = cookie {
            bind.cookie = Some(cookie);
            self.inject(asker, relay, Frame::Bind(bind).encode());
            self.run_for(Duration::from_secs(1));
        }
        self.sink[&asker][seen..]
            .iter()
            .map(|(_, d)| d.clone())
            .collect()
    }

    /// Stops host `index` for good.
    pub fn kill(&mut self, index: usize) {
        self.hosts[index].alive = false;
    }

    /// Runs until `duration` of virtual time has passed.
    pub fn run_for(&mut self, duration: Duration) {
        let until = self.now + duration;
        loop {
            let next_delivery = self.deliveries.peek().map(|Reverse((at, _, _))| *at);
            let next_timer = self.timers.peek().map(|Reverse((at, _))| *at);
            let next = match (next_delivery, next_timer) {
                (Some(d), Some(t)) => d.min(t),
                (Some(d), None) => d,
                (None, Some(t)) => t,
                (None, None) => break,
            };
            if next > until {
                break;
            }
            self.now = next;
            if next_delivery == Some(next) {
                let Some(Reverse((_, id, _))) = self.deliveries.pop() else {
                    break;
                };
                if let Some((source, destination, payload)) = self.in_flight.remove(&(id as usize))
                {
                    self.deliver(source, destination, &payload);
                }
            } else {
                let Some(Reverse((at, index))) = self.timers.pop() else {
                    break;
                };
                let host = &mut self.hosts[index];
                if host.alive && host.wake_at == Some(at) {
                    host.wake_at = None;
                    host.wakeups += 1;
                    host.node.handle_input(at, Input::Timeout);
                    self.drain(index);
                }
            }
        }
        self.now = until;
    }

    /// Adds `count` public hosts, the first alone and the others
    /// bootstrapping from it, `gap` apart; then runs for `settle`.
    pub fn grow(&mut self, count: usize, gap: Duration, settle: Duration) {
        let first = self.add_host(None, &[]);
        let bootstrap = [self.addr(first)];
        for _ in 1..count {
            self.add_host(None, &bootstrap);
            self.run_for(gap);
        }
        self.run_for(settle);
    }

    /// `count` public hosts (see [`Sim::grow`]), then `members` more that
    /// bootstrap from the first and join `meeting`; runs 30 s.
    pub fn network_with_meeting(
        &mut self,
        count: usize,
        members: usize,
        meeting: &Meeting,
    ) -> Vec<usize> {
        self.grow(count, Duration::from_millis(10), Duration::from_secs(10));
        let bootstrap = [self.addr(0)];
        let members: Vec<usize> = (0..members)
            .map(|_| self.add_host(None, &bootstrap))
            .collect();
        for &member in &members {
            self.command(member, Command::Join(meeting.clone()));
        }
        self.run_for(Duration::from_secs(30));
        members
    }

    /// Datagrams `hosts` together dropped for `reason`.
    pub fn dropped(&self, hosts: &[usize], reason: tinynode::DropReason) -> u64 {
        hosts
            .iter()
            .map(|&h| self.hosts[h].node.stats().dropped(reason))
            .sum()
    }

    /// The `count` hosts whose IDs are closest to `key`: the nodes that
    /// store records under it.
    pub fn closest_hosts(&self, key: &NodeId, count: usize) -> Vec<usize> {
        let mut hosts: Vec<usize> = (0..self.hosts.len()).collect();
        hosts.sort_by_key(|&h| self.id(h).distance(key));
        hosts.truncate(count);
        hosts
    }

    /// Looks up `target` from host `from`, running up to `limit`; the
    /// closest nodes found, the rounds and the requests it took.
    pub fn find_node(
        &mut self,
        from: usize,
        target: NodeId,
        limit: Duration,
    ) -> Option<(Vec<NodeId>, u32, u32)> {
        let before = self.hosts[from].events.len();
        self.command(from, Command::FindNode(target));
        self.run_for(limit);
        self.hosts[from].events[before..]
            .iter()
            .find_map(|(_, e)| match e {
                Event::LookupDone {
                    target: t,
                    closest,
                    rounds,
                    requests,
                } if *t == target => Some((closest.clone(), *rounds, *requests)),
                _ => None,
            })
    }

    /// The `count` host IDs closest to `target`, leaving out `except`.
    pub fn true_closest(&self, target: &NodeId, count: usize, except: &NodeId) -> Vec<NodeId> {
        let mut ids: Vec<NodeId> = (0..self.hosts.len())
            .map(|i| self.id(i))
            .filter(|id| id != except)
            .collect();
        ids.sort_by_key(|id| id.distance(target));
        ids.truncate(count);
        ids
    }

    /// The node IDs of `hosts`.
    pub fn ids(&self, hosts: &[usize]) -> HashSet<NodeId> {
        hosts.iter().map(|&h| self.id(h)).collect()
    }

    /// Asserts every one of `members` sees exactly the others as members.
    pub fn assert_meeting(&self, members: &[usize]) {
        let all = self.ids(members);
        for &member in members {
            let mut expected = all.clone();
            expected.remove(&self.id(member));
            assert_eq!(
                self.members_seen(member),
                expected,
                "member {member} (seed {})",
                self.seed
            );
        }
    }

    /// Events of host `index` matching `pick`.
    pub fn events<T>(&self, index: usize, pick: impl Fn(&Event) -> Option<T>) -> Vec<T> {
        self.hosts[index]
            .events
            .iter()
            .filter_map(|(_, e)| pick(e))
            .collect()
    }

    /// Peers host `index` has an open channel to: connected and not disconnected since.
    pub fn open_connections(&self, index: usize) -> HashSet<NodeId> {
        self.current(index, |event| match event {
            Event::Connected { peer, .. } => Some((*peer, true)),
            Event::Disconnected { peer, .. } => Some((*peer, false)),
            _ => None,
        })
    }

    /// Peers host `index` currently considers members: discovered and not lost since.
    pub fn members_seen(&self, index: usize) -> HashSet<NodeId> {
        self.current(index, |event| match event {
            Event::PeerDiscovered { peer, .. } => Some((*peer, true)),
            Event::PeerLost { peer, .. } => Some((*peer, false)),
            _ => None,
        })
    }

    /// The peers in host `index`'s events that `change` last added (true)
    /// and did not remove (false) since.
    fn current(
        &self,
        index: usize,
        change: impl Fn(&Event) -> Option<(NodeId, bool)>,
    ) -> HashSet<NodeId> {
        let mut peers = HashSet::new();
        for (peer, added) in self.hosts[index]
            .events
            .iter()
            .filter_map(|(_, e)| change(e))
        {
            if added {
                peers.insert(peer);
            } else {
                peers.remove(&peer);
            }
        }
        peers
    }

    fn drain(&mut self, index: usize) {
        let mut outputs = self.hosts[index].node.drain();
        let drained: Vec<Output> = outputs.by_ref().collect();
        let deadline = outputs.deadline();
        for output in drained {
            match output {
                Output::Transmit(transmit) => {
                    let host = &self.hosts[index];
                    assert!(
                        transmit.source == host.addr || Some(transmit.source) == host.addr6,
                        "sent from one of its sockets"
                    );
                    assert_eq!(
                        transmit.source.is_ipv4(),
                        transmit.destination.is_ipv4(),
                        "sent from the socket of the destination's family: {transmit:?}"
                    );
                    if transmit.source.is_ipv6() {
                        self.send6(
                            index,
                            transmit.source,
                            transmit.destination,
                            transmit.payload,
                        );
                    } else {
                        self.send(index, transmit.destination, transmit.payload);
                    }
                }
                Output::Event(event) => self.hosts[index].events.push((self.now, event)),
                other => panic!("drain yielded {other:?}"),
            }
        }
        let host = &mut self.hosts[index];
        host.wake_at = deadline;
        if let Some(at) = deadline {
            self.timers.push(Reverse((at.max(self.now), index)));
            host.wake_at = Some(at.max(self.now));
        }
    }

    fn send(&mut self, index: usize, destination: SocketAddr, payload: Vec<u8>) {
        if !self.hosts[index].alive {
            return;
        }
        let private = self.hosts[index].addr;
        let source = match self.hosts[index].nat {
            None => private,
            Some(nat_index) => {
                let nat = &mut self.nats[nat_index];
                let key = (private, nat.symmetric.then_some(destination));
                let port = match nat.mappings.get(&key) {
                    Some(port) => *port,
                    None => {
                        let port = nat.next_port;
                        nat.next_port += 1;
                        nat.mappings.insert(key, port);
                        nat.reverse.insert(port, (private, HashSet::new()));
                        port
                    }
                };
                if let Some((_, permitted)) = nat.reverse.get_mut(&port) {
                    permitted.insert(destination);
                }
                SocketAddr::new(nat.public_ip, port)
            }
        };
        self.inject(source, destination, payload);
    }

    /// Sends from a host's IPv6 socket: no translation; its firewall, if
    /// any, lets the destination's answers in from now on.
    fn send6(
        &mut self,
        index: usize,
        source: SocketAddr,
        destination: SocketAddr,
        payload: Vec<u8>,
    ) {
        if !self.hosts[index].alive {
            return;
        }
        if let Some(permitted) = self.hosts[index].firewall6.as_mut() {
            permitted.insert(destination);
        }
        self.inject(source, destination, payload);
    }

    fn deliver(&mut self, source: SocketAddr, destination: SocketAddr, payload: &[u8]) {
        let target = if let Some(&index) = self.by_addr.get(&destination) {
            let host = &self.hosts[index];
            let filtered = Some(destination) == host.addr6
                && host
                    .firewall6
                    .as_ref()
                    .is_some_and(|permitted| !permitted.contains(&source));
            (!filtered).then_some(index)
        } else {
            self.nats
                .iter()
                .find(|nat| nat.public_ip == destination.ip())
                .and_then(|nat| nat.reverse.get(&destination.port()))
                .filter(|(_, permitted)| permitted.contains(&source))
                .and_then(|(private, _)| self.hosts.iter().position(|h| h.addr == *private))
        };
        let Some(index) = target else {
            if let Some(received) = self.sink.get_mut(&destination) {
                received.push((source, payload.to_vec()));
            }
            return;
        };
        if !self.hosts[index].alive {
            return;
        }
        self.delivered += 1;
        (self.now - self.start, source, destination, payload).hash(&mut self.trace);
        self.hosts[index].wakeups += 1;
        let now = self.now;
        let host = &mut self.hosts[index];
        let arrived_at = if destination.is_ipv6() {
            host.addr6.unwrap_or(host.addr)
        } else {
            host.addr
        };
        host.node.handle_input(
            now,
            Input::Receive {
                source,
                destination: arrived_at,
                data: payload,
            },
        );
        self.drain(index);
    }
}
