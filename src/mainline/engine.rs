//! A read-only Mainline DHT client, sans-IO: bootstrap, iterative
//! `find_node` and `get_peers` lookups, `announce_peer` with tokens.
//!
//! It reuses tinynode's Kademlia pieces rather than a second copy: a
//! 160-bit Mainline ID is padded with zero bytes to a 256-bit
//! [`NodeId`], which keeps XOR order (the padding XORs to zero), so the
//! same [`Lookup`], [`RoutingTable`] and [`Bootstrap`] run over it.
//!
//! Rules it keeps (`protocol-spec.md` §9): every query has its own
//! [`QUERY_TIMEOUT`] and is never retried on the same node (a lookup moves
//! on); at most [`MAX_PENDING`] queries are out and [`MAX_LOOKUPS`]
//! lookups run; queries to one IP are paced by [`PACING`] (libtorrent bans
//! above 5/s); an error answer ends the query without penalty; responses
//! are matched by transaction ID *and* source address; queries to us are
//! dropped (we are read-only, BEP 43). The `ip` of answers (BEP 42) is
//! reported as [`MainlineEvent::Observed`].
//!
//! One client speaks one address family (BEP 32: the IPv4 and IPv6 DHTs
//! are separate networks); a dual-stack node runs one per socket. Their
//! lookup IDs never collide (IPv4's are even, IPv6's odd). While it
//! bootstraps, a client whose node has the other family too asks for both
//! families' contacts (`want`) and hands the other family's to the node
//! ([`MainlineEvent::OtherFamilyNodes`]): the public routers are mostly
//! IPv4, and that is how the IPv6 client finds its first nodes.
//!
//! About 680 lines before its tests, kept as one file: bootstrap, lookups
//! and announces share the table of queries in flight, the per-IP pacing
//! and the routing table, and every answer updates all three. BEP 42 IDs
//! live in `bep42.rs`.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use log::debug;

use super::bep42::{bep42_id, bep42_valid};
use super::krpc::{self, CompactNode, ID_LEN, Id, Message, Query, Response, TXID_LEN};
use crate::addr::Family;
use crate::dht::bootstrap::Bootstrap;
use crate::dht::lookup::Lookup;
use crate::dht::requests::{Requests, Unmatched};
use crate::dht::routing::{Offer, Peer, RoutingTable};
use crate::dht::wire::K;
use crate::id::NodeId;
use crate::ratelimit::{Limits, RateLimiter};
use crate::rng::Rng;
use crate::transmit::Transmit;

/// How long a query waits for its answer.
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(1);
/// Queries in flight per lookup.
pub const ALPHA: usize = 4;
/// How long a lookup waits for one node before it moves on (asks the next
/// candidate, or finishes without it); the query itself stays open for
/// [`QUERY_TIMEOUT`], so a slow answer still reaches the routing table.
/// Nodes that never answer (gone, or read-only nodes other implementations
/// list despite BEP 43) then cost a lookup half a second, not a second.
pub const STRAGGLER_AFTER: Duration = Duration::from_millis(500);
/// Most queries in flight.
pub const MAX_PENDING: usize = 256;
/// Most lookups under way; further ones finish at once, empty.
pub const MAX_LOOKUPS: usize = 8;
/// Pace of our queries to one IP: 2 a second, 4 at once.
pub const PACING: Limits = Limits {
    rate_per_second: 2,
    burst: 4,
    max_sources: 1024,
};

/// Identifies a lookup.
pub type LookupId = u64;

/// What the client reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MainlineEvent {
    /// The first bootstrap node answered.
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
    /// A `get_peers` answer listed peers under the infohash (only peers
    /// this lookup had not reported yet).
    Values {
        /// The lookup.
        id: LookupId,
        /// The storing node that listed them.
        by: SocketAddr,
        /// The peers.
        peers: Vec<SocketAddr>,
    },
    /// A bootstrap answer listed nodes of the other address family (we
    /// asked with `want`): bootstrap addresses for the node's client of
    /// that family.
    OtherFamilyNodes {
        /// Their addresses.
        nodes: Vec<SocketAddr>,
    },
    /// A lookup finished.
    LookupDone {
        /// The lookup.
        id: LookupId,
        /// The closest nodes that answered with a token, nearest first,
        /// and their tokens: where to announce.
        storers: Vec<(SocketAddr, Vec<u8>)>,
    },
    /// `by` saw our query come from `addr` (BEP 42 `ip`).
    Observed {
        /// Our address as seen by `by`.
        addr: SocketAddr,
        /// The responder.
        by: SocketAddr,
    },
}

/// Why a Mainline datagram was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MainlineDrop {
    /// Not a KRPC message we can read.
    Malformed,
    /// A query: a read-only node does not answer.
    Query,
    /// A response or error for no query in flight.
    UnknownTransaction,
    /// A response from an address the query did not go to.
    WrongSource,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Purpose {
    /// A bootstrap query of this generation of addresses.
    Bootstrap(u32),
    Lookup(LookupId),
    Announce,
    Probe,
}

/// A query in flight (`id`: the node we expect to answer, for lookup
/// candidates and probes).
type Pending = crate::dht::requests::Pending<Purpose>;

struct LookupState {
    lookup: Lookup,
    tokens: BTreeMap<NodeId, Vec<u8>>,
    reported: BTreeSet<SocketAddr>,
}

/// The Mainline client.
pub struct Mainline {
    id: Id,
    local: SocketAddr,
    family: Family,
    /// Ask bootstrap nodes for the other family's contacts too.
    want_other_family: bool,
    rng: Rng,
    table: RoutingTable,
    bootstrap: Bootstrap,
    /// Every bootstrap address given so far.
    bootstrap_addrs: Vec<SocketAddr>,
    /// Bumped when the bootstrap addresses are replaced: failures of
    /// earlier queries no longer count against the attempt.
    generation: u32,
    bootstrapped: bool,
    pending: Requests<[u8; TXID_LEN], Purpose>,
    lookups: BTreeMap<LookupId, LookupState>,
    next_lookup: LookupId,
    pacing: RateLimiter<IpAddr>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<MainlineEvent>,
}

/// A Mainline ID as a tinynode ID: the 20 bytes, then zeros.
pub fn padded(id: &Id) -> NodeId {
    let mut out = [0u8; 32];
    out[..ID_LEN].copy_from_slice(id);
    NodeId(out)
}

/// The first `count` of `nodes` (nearest first), those whose IDs are
/// BEP 42-valid for their addresses first: a lookup prefers nodes that
/// could not choose where in the key space they sit (as libtorrent's
/// `dht_prefer_verified_node_ids` and the `mainline` crate do), and falls
/// back on the others only when too few valid ones are known.
fn secure_first(mut nodes: Vec<Peer>, count: usize) -> Vec<Peer> {
    // A stable sort keeps the distance order within each group.
    nodes.sort_by_key(|p| !bep42_valid(p.addr.ip(), &unpadded(&p.id)));
    nodes.truncate(count);
    nodes
}

fn unpadded(id: &NodeId) -> Id {
    let mut out = [0u8; ID_LEN];
    out.copy_from_slice(&id.0[..ID_LEN]);
    out
}

impl Mainline {
    /// A client that sends from `local`, with a random ID, bootstrapping
    /// from `bootstrap` at `now` (later addresses come with
    /// [`set_bootstrap`](Self::set_bootstrap)).
    pub fn new(now: Instant, local: SocketAddr, mut rng: Rng, bootstrap: Vec<SocketAddr>) -> Self {
        let id: Id = rng.bytes();
        let family = Family::of(local);
        debug!("mainline: {family} node ID {}", crate::hex::hex(&id));
        Self {
            id,
            local,
            family,
            want_other_family: false,
            rng,
            table: RoutingTable::new(padded(&id)),
            bootstrap: Bootstrap::new(now, bootstrap.clone()),
            bootstrap_addrs: bootstrap,
            generation: 0,
            bootstrapped: false,
            pending: Requests::default(),
            lookups: BTreeMap::new(),
            next_lookup: match family {
                Family::V4 => 0,
                Family::V6 => 1,
            },
            pacing: RateLimiter::new(PACING),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// Adds bootstrap addresses (resolved router names after the cached
    /// nodes); unless already joined, a new attempt with all of them
    /// starts at `now`.
    pub fn set_bootstrap(&mut self, now: Instant, addrs: Vec<SocketAddr>) {
        let mut new = Vec::new();
        for addr in addrs {
            if !self.bootstrap_addrs.contains(&addr) {
                self.bootstrap_addrs.push(addr);
                new.push(addr);
            }
        }
        if self.bootstrapped {
            // Joined already (through cached nodes): ask the new addresses
            // (the routers) too, so they and the nodes they know stand
            // beside whatever the cache carried over.
            let query = Query::FindNode {
                target: self.id,
                want_both: false,
            };
            for addr in new {
                self.query(now, addr, None, Purpose::Probe, &query);
            }
        } else {
            self.bootstrap = Bootstrap::new(now, self.bootstrap_addrs.clone());
            self.generation += 1;
        }
    }

    /// The family this client speaks.
    pub fn family(&self) -> Family {
        self.family
    }

    /// Makes bootstrap queries ask for the other family's contacts too
    /// (the node has a client of that family to give them to).
    pub fn want_other_family(&mut self, want: bool) {
        self.want_other_family = want;
    }

    /// Bootstrap addresses given so far.
    pub fn bootstrap_len(&self) -> usize {
        self.bootstrap_addrs.len()
    }

    /// True once a bootstrap node answered.
    pub fn is_bootstrapped(&self) -> bool {
        self.bootstrapped
    }

    /// Nodes in the routing table.
    pub fn routing_len(&self) -> usize {
        self.table.len()
    }

    /// True if a query to `addr` is in flight (its answers cost the
    /// sender no rate-limit tokens).
    pub fn awaits(&self, addr: SocketAddr) -> bool {
        self.pending.awaits(addr)
    }

    /// Our public address of this client's family has IP `ip` (the vote
    /// of answers' `ip`): take a node ID that BEP 42 deems valid for it, so
    /// nodes that enforce BEP 42 keep serving us. Addresses BEP 42 exempts
    /// (private, unique-local, loopback, link-local) and the other
    /// family's change nothing. The routing table is rebuilt around the
    /// new ID from the nodes it held.
    /// Our socket of this family is now known as `local` (the host moved
    /// to another network): datagrams leave from it.
    pub fn set_local(&mut self, local: SocketAddr) {
        self.local = local;
    }

    pub fn public_ip(&mut self, now: Instant, ip: IpAddr) {
        let exempt = match ip {
            IpAddr::V4(v4) => v4.is_private() || v4.is_loopback() || v4.is_link_local(),
            IpAddr::V6(v6) => {
                v6.is_loopback() || v6.is_unique_local() || v6.is_unicast_link_local()
            }
        };
        if exempt || Family::of_ip(ip) != self.family || bep42_valid(ip, &self.id) {
            return;
        }
        let id = bep42_id(ip, self.id);
        debug!(
            "mainline: node ID {} (BEP 42, for {ip})",
            crate::hex::hex(&id)
        );
        let nodes = self.table.closest(&padded(&self.id), usize::MAX);
        self.id = id;
        self.table = RoutingTable::new(padded(&id));
        for peer in nodes {
            // Full buckets keep their first entries; no probes are sent.
            let _ = self.table.on_answered(now, peer);
        }
    }

    /// Queries in flight.
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// Addresses of nodes in the routing table for a node cache: a sample
    /// spread over the buckets and networks (`RoutingTable::spread`), not
    /// the nodes closest to our ID, which a Sybil fills first.
    pub fn good_nodes(&self, count: usize) -> Vec<SocketAddr> {
        self.table.spread(count).iter().map(|p| p.addr).collect()
    }

    /// Starts a `get_peers` lookup of `info_hash`.
    pub fn get_peers(&mut self, now: Instant, info_hash: Id) -> LookupId {
        self.start_lookup(now, info_hash)
    }

    /// Sends `announce_peer` (implied port, local port `port`) to each
    /// storing node with its token: how many went out (the others met
    /// their node's pace or the pending cap).
    pub fn announce(
        &mut self,
        now: Instant,
        info_hash: Id,
        storers: &[(SocketAddr, Vec<u8>)],
    ) -> usize {
        let port = self.local.port();
        let mut sent = 0;
        for (addr, token) in storers {
            let query = Query::AnnouncePeer {
                info_hash,
                port,
                token,
            };
            if self.query(now, *addr, None, Purpose::Announce, &query) {
                sent += 1;
            }
        }
        sent
    }

    /// Acts on a datagram from `source` that starts with `d`.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        source: SocketAddr,
        data: &[u8],
    ) -> Result<(), MainlineDrop> {
        let message = krpc::decode(data).map_err(|error| {
            debug!("mainline: from {source}: {error}");
            MainlineDrop::Malformed
        })?;
        let (txid, answer) = match message {
            Message::Query { method } => {
                debug!(
                    "mainline: {source} sent a {} query; read-only, not answered",
                    String::from_utf8_lossy(method)
                );
                return Err(MainlineDrop::Query);
            }
            Message::Response { txid, body } => (txid, Ok(body)),
            Message::Error { txid, code } => (txid, Err(code)),
        };
        let txid: [u8; TXID_LEN] = txid
            .try_into()
            .map_err(|_| MainlineDrop::UnknownTransaction)?;
        let pending =
            self.pending
                .take_answered(&txid, source)
                .map_err(|unmatched| match unmatched {
                    Unmatched::UnknownTransaction => MainlineDrop::UnknownTransaction,
                    Unmatched::WrongSource => MainlineDrop::WrongSource,
                })?;
        match answer {
            Ok(body) => self.on_response(now, source, pending, body),
            Err(code) => {
                debug!("mainline: {source} answered error {code}");
                self.on_unanswered(now, pending, false);
            }
        }
        self.advance_all(now);
        Ok(())
    }

    /// Expires queries and sends what is due.
    pub fn handle_timeout(&mut self, now: Instant) {
        for pending in self.pending.take_expired(now) {
            self.on_unanswered(now, pending, true);
        }
        if let Some(addrs) = self.bootstrap.due(now) {
            debug!(
                "mainline: bootstrapping from {} nodes (attempt {})",
                addrs.len(),
                self.bootstrap.attempt()
            );
            let query = Query::FindNode {
                target: self.id,
                want_both: self.want_other_family,
            };
            for addr in addrs {
                self.query(now, addr, None, Purpose::Bootstrap(self.generation), &query);
            }
        }
        self.advance_all(now);
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<MainlineEvent> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) must next run.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let pending = self.pending.next_deadline();
        let stragglers = self
            .lookups
            .values()
            .filter_map(|l| l.lookup.deadline())
            .min();
        [pending, stragglers, self.bootstrap.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
    }

    fn start_lookup(&mut self, now: Instant, target: Id) -> LookupId {
        let id = self.next_lookup;
        self.next_lookup += 2;
        if self.lookups.len() >= MAX_LOOKUPS {
            debug!("mainline: {MAX_LOOKUPS} lookups under way; this one ends empty");
            self.events.push_back(MainlineEvent::LookupDone {
                id,
                storers: Vec::new(),
            });
            return id;
        }
        let target = padded(&target);
        let seeds = secure_first(self.table.closest(&target, 2 * K), K);
        self.lookups.insert(
            id,
            LookupState {
                lookup: Lookup::tuned(target, padded(&self.id), &seeds, ALPHA, STRAGGLER_AFTER),
                tokens: BTreeMap::new(),
                reported: BTreeSet::new(),
            },
        );
        self.advance(now, id);
        id
    }

    fn advance_all(&mut self, now: Instant) {
        let ids: Vec<LookupId> = self.lookups.keys().copied().collect();
        for id in ids {
            self.advance(now, id);
        }
    }

    fn advance(&mut self, now: Instant, id: LookupId) {
        let Some(state) = self.lookups.get_mut(&id) else {
            return;
        };
        let target = unpadded(&state.lookup.target());
        let query = Query::GetPeers { info_hash: target };
        for peer in state.lookup.next_requests(now) {
            self.query(now, peer.addr, Some(peer.id), Purpose::Lookup(id), &query);
        }
        let Some(state) = self.lookups.get(&id) else {
            return;
        };
        // Stragglers count as failed after STRAGGLER_AFTER, so a lookup
        // can finish while their queries are still open.
        if !state.lookup.is_finished() {
            return;
        }
        let Some(state) = self.lookups.remove(&id) else {
            return;
        };
        let storers = state
            .lookup
            .closest_answered(K)
            .iter()
            .filter_map(|p| state.tokens.get(&p.id).map(|t| (p.addr, t.clone())))
            .collect();
        self.events
            .push_back(MainlineEvent::LookupDone { id, storers });
    }

    /// Joined: reported once per bootstrap.
    fn mark_bootstrapped(&mut self) {
        if self.bootstrapped {
            return;
        }
        self.bootstrapped = true;
        let nodes = self.table.len();
        debug!("mainline: bootstrapped with {nodes} nodes");
        self.events.push_back(MainlineEvent::Bootstrapped { nodes });
    }

    /// Sends `query` to `to` unless its pace or the pending cap says no;
    /// a query not sent fails at once (a lookup moves on). True if sent.
    fn query(
        &mut self,
        now: Instant,
        to: SocketAddr,
        id: Option<NodeId>,
        purpose: Purpose,
        query: &Query<'_>,
    ) -> bool {
        let pending = Pending {
            to,
            id,
            purpose,
            deadline: now + QUERY_TIMEOUT,
        };
        if self.pending.len() >= MAX_PENDING || !self.pacing.allow(now, to.ip(), 1) {
            debug!(
                "mainline: {} to {to} not sent (pace or cap)",
                query.method()
            );
            self.on_unanswered(now, pending, false);
            return false;
        }
        let txid: [u8; TXID_LEN] = self.rng.bytes();
        if self.pending.contains(&txid) {
            self.on_unanswered(now, pending, false);
            return false;
        }
        self.pending.insert(txid, pending, ());
        self.transmits.push_back(Transmit {
            source: self.local,
            destination: to,
            payload: krpc::encode_query(txid, &self.id, query),
        });
        true
    }

    fn on_response(&mut self, now: Instant, source: SocketAddr, pending: Pending, body: Response) {
        if let Some(addr) = body.ip {
            self.events
                .push_back(MainlineEvent::Observed { addr, by: source });
        }
        let responder = Peer {
            id: padded(&body.id),
            addr: source,
        };
        if let Offer::Probe(oldest) = self.table.on_answered(now, responder) {
            self.query(
                now,
                oldest.addr,
                Some(oldest.id),
                Purpose::Probe,
                &Query::Ping,
            );
        }
        let (ours, others) = match self.family {
            Family::V4 => (&body.nodes, &body.nodes6),
            Family::V6 => (&body.nodes6, &body.nodes),
        };
        // Of our family, and not of a narrower scope than the node that
        // named them: a public node cannot make us query loopback or a
        // private network.
        let closer: Vec<Peer> = ours
            .iter()
            .filter(|node| Family::of(node.addr) == self.family)
            .filter(|node| crate::addr::usable_from(node.addr, source.ip()))
            .map(|CompactNode { id, addr }| Peer {
                id: padded(id),
                addr: *addr,
            })
            .collect();
        if self.want_other_family && matches!(pending.purpose, Purpose::Bootstrap(_)) {
            let nodes: Vec<SocketAddr> = others
                .iter()
                .map(|n| n.addr)
                .filter(|a| Family::of(*a) != self.family)
                .collect();
            if !nodes.is_empty() {
                self.events
                    .push_back(MainlineEvent::OtherFamilyNodes { nodes });
            }
        }
        match pending.purpose {
            Purpose::Bootstrap(_) => {
                if self.bootstrap.on_answer() {
                    // No self-lookup: a read-only client needs no
                    // neighbourhood, and get_peers lookups fill the table.
                    self.mark_bootstrapped();
                }
            }
            Purpose::Lookup(id) => {
                let Some(state) = self.lookups.get_mut(&id) else {
                    return;
                };
                // Nodes change IDs (BEP 42); the candidate is the one asked.
                let asked = pending.id.unwrap_or(responder.id);
                state.lookup.on_answer(&asked, &closer);
                if let Some(token) = body.token {
                    state.tokens.insert(asked, token);
                }
                let new: Vec<SocketAddr> = body
                    .values
                    .iter()
                    .copied()
                    .filter(|v| state.reported.insert(*v))
                    .collect();
                if !new.is_empty() {
                    self.events.push_back(MainlineEvent::Values {
                        id,
                        by: source,
                        peers: new,
                    });
                }
            }
            Purpose::Announce => debug!("mainline: {source} stored our announce"),
            Purpose::Probe => {}
        }
    }

    /// A query failed: timed out (`timed_out`, which counts against the
    /// node), answered with an error, or was never sent.
    fn on_unanswered(&mut self, now: Instant, pending: Pending, timed_out: bool) {
        if let (true, Some(id)) = (timed_out, pending.id) {
            self.table.on_failed(&id);
        }
        match pending.purpose {
            Purpose::Bootstrap(generation) if generation != self.generation => {}
            Purpose::Bootstrap(_) => {
                if let Some(failed) = self.bootstrap.on_failure(now) {
                    debug!(
                        "mainline: no bootstrap node answered (attempt {}); retry in {:?}",
                        failed.attempt, failed.retry_in
                    );
                    self.events.push_back(MainlineEvent::BootstrapFailed {
                        attempt: failed.attempt,
                        retry_in: failed.retry_in,
                    });
                }
            }
            Purpose::Lookup(id) => {
                if let (Some(state), Some(node)) = (self.lookups.get_mut(&id), pending.id) {
                    state.lookup.on_failure(&node);
                }
            }
            Purpose::Announce => debug!("mainline: announce to {} not stored", pending.to),
            Purpose::Probe => {}
        }
        if timed_out && self.bootstrapped && self.table.is_empty() && self.bootstrap.restart(now) {
            debug!("mainline: routing table empty; bootstrapping again");
            self.bootstrapped = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mainline::bencode;
    use crate::mainline::krpc::{encode_error, encode_response};

    /// A fake Mainline network in memory: nodes `1..=count` at
    /// 192.0.2.n:6881, with ID `[n; 20]`, each knowing all others and
    /// storing what is announced with the token `b"tok"`.
    struct FakeNet {
        count: u8,
        stored: BTreeMap<u8, Vec<SocketAddr>>,
        answered: usize,
    }

    fn node_addr(n: u8) -> SocketAddr {
        SocketAddr::from(([192, 0, n, 1], 6881))
    }

    impl FakeNet {
        /// `count` nodes, nothing stored yet.
        fn with(count: u8) -> Self {
            Self {
                count,
                stored: BTreeMap::new(),
                answered: 0,
            }
        }

        fn answer(&mut self, t: &Transmit) -> Option<Vec<u8>> {
            let SocketAddr::V4(to) = t.destination else {
                return None;
            };
            let n = to.ip().octets()[2];
            if n == 0 || n > self.count {
                return None;
            }
            let decoded = bencode::decode(&t.payload).unwrap();
            assert!(decoded.canonical, "our queries are canonical bencode");
            let q = decoded.value;
            assert_eq!(q.get(b"ro").and_then(bencode::Value::as_int), Some(1));
            assert!(q.get(b"v").is_none(), "no client version");
            let txid = q.get(b"t").and_then(bencode::Value::as_bytes).unwrap();
            let method = q.get(b"q").and_then(bencode::Value::as_bytes).unwrap();
            self.answered += 1;
            let nodes = (1..=self.count)
                .map(|m| CompactNode {
                    id: [m; 20],
                    addr: node_addr(m),
                })
                .take(8)
                .collect();
            let mut body = Response {
                id: [n; 20],
                nodes,
                ip: Some("203.0.113.9:1234".parse().unwrap()),
                ..Response::default()
            };
            match method {
                b"get_peers" => {
                    body.token = Some(b"tok".to_vec());
                    body.values = self.stored.get(&n).cloned().unwrap_or_default();
                }
                b"announce_peer" => {
                    let a = q.get(b"a").unwrap();
                    if a.get(b"token").and_then(bencode::Value::as_bytes) != Some(b"tok") {
                        return Some(encode_error(txid, 203, "Bad token"));
                    }
                    assert_eq!(
                        a.get(b"implied_port").and_then(bencode::Value::as_int),
                        Some(1)
                    );
                    assert!(a.get(b"port").is_some(), "port goes with implied_port");
                    self.stored.entry(n).or_default().push(t.source);
                    body.nodes.clear();
                }
                _ => {}
            }
            Some(encode_response(txid, &body))
        }

        /// Delivers everything until quiet; returns the events.
        fn run(&mut self, now: Instant, client: &mut Mainline) -> Vec<MainlineEvent> {
            client.handle_timeout(now);
            loop {
                let out: Vec<Transmit> = std::iter::from_fn(|| client.poll_transmit()).collect();
                if out.is_empty() {
                    break;
                }
                for t in out {
                    if let Some(answer) = self.answer(&t) {
                        client
                            .handle_datagram(now, t.destination, &answer)
                            .expect("answers are accepted");
                    }
                }
            }
            std::iter::from_fn(|| client.poll_event()).collect()
        }
    }

    fn client(now: Instant, seed: u8) -> Mainline {
        Mainline::new(
            now,
            SocketAddr::from(([10, 0, 0, seed], 4000)),
            Rng::from_seed([seed; 32]),
            vec![node_addr(1)],
        )
    }

    #[test]
    fn bootstraps_looks_up_announces_and_finds_the_other_member() {
        let now = Instant::now();
        let mut net = FakeNet::with(12);
        let mut a = client(now, 1);
        let events = net.run(now, &mut a);
        assert!(
            events
                .iter()
                .any(|e| matches!(e, MainlineEvent::Bootstrapped { nodes: 1 })),
            "joined on the first answer, without a self-lookup: {events:?}"
        );
        assert_eq!(
            net.answered, 1,
            "one find_node to the bootstrap node, nothing more"
        );
        assert!(
            events
                .iter()
                .any(|e| matches!(e, MainlineEvent::Observed { .. }))
        );
        let info_hash = [0x55; 20];
        let lookup = a.get_peers(now, info_hash);
        let events = net.run(now, &mut a);
        let Some(MainlineEvent::LookupDone { id, storers }) = events.last() else {
            panic!("{events:?}");
        };
        assert_eq!(*id, lookup);
        assert_eq!(storers.len(), K);
        a.announce(now, info_hash, storers);
        net.run(now, &mut a);
        assert_eq!(net.stored.len(), K, "stored on the {K} closest");

        let mut b = client(now, 2);
        net.run(now, &mut b);
        b.get_peers(now, info_hash);
        let events = net.run(now, &mut b);
        let found: BTreeSet<SocketAddr> = events
            .iter()
            .filter_map(|e| match e {
                MainlineEvent::Values { peers, .. } => Some(peers.clone()),
                _ => None,
            })
            .flatten()
            .collect();
        assert_eq!(
            found.into_iter().collect::<Vec<_>>(),
            ["10.0.0.1:4000".parse::<SocketAddr>().unwrap()],
            "each peer reported once"
        );
    }

    #[test]
    fn unreachable_bootstrap_fails_and_retries_with_backoff() {
        let now = Instant::now();
        let mut net = FakeNet::with(0);
        let mut a = client(now, 1);
        net.run(now, &mut a);
        let deadline = a.poll_timeout().unwrap();
        assert_eq!(deadline, now + QUERY_TIMEOUT);
        let events = net.run(deadline, &mut a);
        assert_eq!(
            events,
            [MainlineEvent::BootstrapFailed {
                attempt: 1,
                retry_in: Duration::from_secs(1)
            }]
        );
        let retry = a.poll_timeout().unwrap();
        assert_eq!(retry, deadline + Duration::from_secs(1));
        net.run(retry, &mut a);
        assert_eq!(a.pending_len(), 1, "the retry is out");
    }

    #[test]
    fn a_public_ip_gives_a_bep42_id_and_keeps_the_table() {
        let now = Instant::now();
        let mut net = FakeNet::with(12);
        let mut a = client(now, 1);
        net.run(now, &mut a);
        a.get_peers(now, [0x55; 20]);
        net.run(now, &mut a);
        let before = a.routing_len();
        let ip: IpAddr = "203.0.113.9".parse().unwrap();
        a.public_ip(now, ip);
        assert!(bep42_valid(ip, &a.id));
        assert_eq!(a.routing_len(), before, "the nodes it knew stay known");
        let id = a.id;
        a.public_ip(now, "10.0.0.1".parse().unwrap());
        assert_eq!(a.id, id, "private addresses are exempt");
    }

    #[test]
    fn later_bootstrap_addresses_join_the_earlier_ones_in_a_new_attempt() {
        let now = Instant::now();
        let mut a = client(now, 1);
        a.handle_timeout(now);
        assert_eq!(a.pending_len(), 1, "the cached node is asked");
        let later = now + Duration::from_millis(100);
        a.set_bootstrap(later, vec![node_addr(2)]);
        a.handle_timeout(later);
        let asked: Vec<SocketAddr> = std::iter::from_fn(|| a.poll_transmit())
            .map(|t| t.destination)
            .collect();
        assert_eq!(asked, [node_addr(1), node_addr(1), node_addr(2)]);
        // The first attempt's query expires: it no longer counts.
        a.handle_timeout(now + QUERY_TIMEOUT);
        assert_eq!(a.poll_event(), None);
        a.handle_timeout(later + QUERY_TIMEOUT);
        assert_eq!(
            std::iter::from_fn(|| a.poll_event()).collect::<Vec<_>>(),
            [MainlineEvent::BootstrapFailed {
                attempt: 1,
                retry_in: Duration::from_secs(1)
            }],
            "one failure for the attempt with every address"
        );
    }

    #[test]
    fn stray_wrong_source_and_queries_are_dropped() {
        let now = Instant::now();
        let mut a = client(now, 1);
        a.handle_timeout(now);
        let query = a.poll_transmit().unwrap();
        let decoded = bencode::decode(&query.payload).unwrap();
        let txid = decoded
            .value
            .get(b"t")
            .and_then(bencode::Value::as_bytes)
            .unwrap()
            .to_vec();
        let answer = encode_response(
            &txid,
            &Response {
                id: [9; 20],
                ..Response::default()
            },
        );
        let stranger = node_addr(77);
        assert_eq!(
            a.handle_datagram(now, stranger, &answer),
            Err(MainlineDrop::WrongSource)
        );
        let other = encode_response(b"zzzz", &Response::default());
        assert_eq!(
            a.handle_datagram(now, node_addr(1), &other),
            Err(MainlineDrop::UnknownTransaction)
        );
        let ping = b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe";
        assert_eq!(
            a.handle_datagram(now, stranger, ping),
            Err(MainlineDrop::Query)
        );
        assert_eq!(
            a.handle_datagram(now, stranger, b"d1:xi1e"),
            Err(MainlineDrop::Malformed)
        );
        assert!(a.poll_transmit().is_none(), "nothing is ever answered");
        assert_eq!(a.handle_datagram(now, node_addr(1), &answer), Ok(()));
    }

    #[test]
    fn lookups_start_from_bep42_valid_nodes_first() {
        let ip: IpAddr = "203.0.113.9".parse().unwrap();
        let node = |n: u8, valid: bool| {
            let id = if valid {
                bep42_id(ip, [n; 20])
            } else {
                [n; 20]
            };
            let id = if !valid && bep42_valid(ip, &id) {
                [n ^ 0x80; 20]
            } else {
                id
            };
            Peer {
                id: padded(&id),
                addr: SocketAddr::new(ip, 6881),
            }
        };
        let nodes = vec![
            node(1, false),
            node(2, false),
            node(3, true),
            node(4, false),
            node(5, true),
        ];
        let picked = secure_first(nodes.clone(), 3);
        assert_eq!(picked, [nodes[2], nodes[4], nodes[0]]);
    }

    #[test]
    fn routers_given_after_joining_through_the_cache_are_asked_too() {
        let now = Instant::now();
        let mut net = FakeNet::with(12);
        let mut a = client(now, 1);
        net.run(now, &mut a);
        assert!(a.is_bootstrapped());
        a.set_bootstrap(now, vec![node_addr(5), node_addr(6)]);
        let asked: Vec<SocketAddr> = std::iter::from_fn(|| a.poll_transmit())
            .map(|t| t.destination)
            .collect();
        assert_eq!(asked, [node_addr(5), node_addr(6)]);
    }

    #[test]
    fn queries_to_one_ip_are_paced() {
        let now = Instant::now();
        let mut a = client(now, 1);
        let many: Vec<(SocketAddr, Vec<u8>)> = (0..10u16)
            .map(|port| {
                (
                    SocketAddr::from(([192, 0, 2, 1], 7000 + port)),
                    b"t".to_vec(),
                )
            })
            .collect();
        assert_eq!(a.announce(now, [1; 20], &many) as u64, PACING.burst);
        assert_eq!(a.announce(now, [2; 20], &many), 0, "none of a second");
        // The bootstrap query is due too but not yet sent.
        let sent = std::iter::from_fn(|| a.poll_transmit()).count();
        assert_eq!(sent as u64, PACING.burst);
        assert_eq!(
            a.pending_len() as u64,
            PACING.burst,
            "the rest failed at once"
        );
    }
}
