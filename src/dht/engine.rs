//! The DHT engine: Kademlia RPCs over the node's sockets, sans-IO.
//!
//! It ties the parts together: requests and their matching ([`super::rpc`]),
//! the answering side ([`super::server`]), joining ([`super::bootstrap`]),
//! lookups ([`super::lookup`]), the routing table and the record store. It
//! runs lookups for the node and refreshes stale buckets. Every response it
//! sends tells the requester the address its request came from.
//!
//! About 790 lines, kept as one file: it is the one place where requests,
//! answers, lookups and the bootstrap meet (each of those has its own file
//! and tests), and splitting the glue would scatter one event flow.
//!
//! Invariants: a node enters the routing table only after answering one of
//! our requests (requesters we do not know are pinged first); a response
//! counts only if it echoes a transaction in flight and comes from its
//! destination; all state is bounded (routing table, store caps, lookup
//! candidate caps, [`MAX_PENDING`](super::rpc::MAX_PENDING) requests in
//! flight, [`MAX_LOOKUPS`] lookups).

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use log::{debug, info, warn};

use super::announce;
use super::bootstrap::Bootstrap;
use super::budget::Budgets;
pub use super::event::{DhtDrop, DhtEvent, LookupId, LookupKind};
use super::lookup::Lookup;
use super::routing::{Offer, Peer, RoutingTable};
use super::rpc::{PING_FRAME_LEN, Pending, Purpose, REACH_ME_REQUEST_LEN, REQUEST_RESENDS, Rpc};
use super::server::{Server, response_frame};
use super::store::Store;
use super::token::Tokens;
use super::verified::VerifiedAddresses;
use super::wire::{
    Blob, ErrorCode, K, Message, Request, Response, TOKEN_LEN, TxId, WireAddr, decode_frame,
    unknown_request_variant,
};
use crate::addr::usable_from;
use crate::id::{ID_BITS, NodeId};
use crate::identity::Identity;
use crate::limits::AMPLIFICATION_FACTOR;
use crate::rng::Rng;
use crate::transmit::{LocalAddrs, Transmit};

/// Lookups under way at once; further lookups finish at once, empty.
pub const MAX_LOOKUPS: usize = 64;
/// Size of the smallest response datagram (`Pong` to an IPv6 address).
pub const MIN_RESPONSE_LEN: usize = 2 + 1 + 8 + 32 + 1 + 16 + 3 + 1;
/// How often buckets are checked for staleness.
pub const REFRESH_CHECK: Duration = Duration::from_secs(5 * 60);
/// A bucket with no activity for this long is refreshed by a lookup.
pub const BUCKET_STALE: Duration = Duration::from_secs(15 * 60);

struct LookupState {
    lookup: Lookup,
    kind: LookupKind,
    tokens: Vec<(Peer, [u8; TOKEN_LEN])>,
}

/// What the node using the engine decides about a datagram: the rules
/// that depend on its state, not the DHT's.
#[derive(Clone, Copy)]
pub struct DatagramPolicy<'a> {
    /// Whether a push from this address is taken (the node announced to
    /// it).
    pub accept_push: &'a dyn Fn(SocketAddr) -> bool,
    /// Whether a response with this transaction from this address is a
    /// third node's reachability probe (§5.8) rather than an answer.
    pub is_probe: &'a dyn Fn(&TxId, SocketAddr) -> bool,
}

/// The Kademlia node.
pub struct Dht {
    local: NodeId,
    locals: LocalAddrs,
    rng: Rng,
    table: RoutingTable,
    store: Store,
    tokens: Tokens,
    rpc: Rpc,
    lookups: BTreeMap<LookupId, LookupState>,
    next_lookup: u64,
    verified: VerifiedAddresses,
    bootstrap: Bootstrap,
    self_lookup: Option<LookupId>,
    next_refresh: Instant,
    transmits: VecDeque<Transmit>,
    events: VecDeque<DhtEvent>,
    /// What others' requests may cost us (`budget.rs`).
    budgets: Budgets,
}

/// Whether a failed request counts against the routing entry it went to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Charge {
    /// It was sent and went unanswered (or was answered by someone else).
    Entry,
    /// It was never sent (our table was full): nothing about the node.
    Nobody,
}

impl Dht {
    /// Our sockets are now known as `locals` (the host moved to another
    /// network): datagrams leave from them.
    pub fn set_locals(&mut self, locals: LocalAddrs) {
        self.locals = locals;
    }

    /// A DHT node with ID `local` on sockets at `locals` that bootstraps
    /// from `bootstrap` at once.
    pub fn new(
        now: Instant,
        local: NodeId,
        locals: LocalAddrs,
        mut rng: Rng,
        bootstrap: Vec<SocketAddr>,
    ) -> Self {
        let tokens = Tokens::new(now, rng.bytes(), rng.bytes());
        Self {
            local,
            locals,
            rng,
            table: RoutingTable::new(local),
            store: Store::default(),
            tokens,
            rpc: Rpc::default(),
            lookups: BTreeMap::new(),
            next_lookup: 0,
            verified: VerifiedAddresses::default(),
            bootstrap: Bootstrap::new(now, bootstrap),
            self_lookup: None,
            next_refresh: now + REFRESH_CHECK,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            budgets: Budgets::default(),
        }
    }

    /// Entries in the routing table.
    pub fn routing_len(&self) -> usize {
        self.table.len()
    }

    /// The node the routing table knows at `addr` (a bootstrap node's ID
    /// once it has answered).
    pub fn node_at(&self, addr: SocketAddr) -> Option<NodeId> {
        self.table.id_at(addr)
    }

    /// Records stored for others.
    pub fn store_len(&self) -> usize {
        self.store.len()
    }

    /// Requests in flight.
    pub fn pending_len(&self) -> usize {
        self.rpc.len()
    }

    /// Lookups under way.
    pub fn lookups_len(&self) -> usize {
        self.lookups.len()
    }

    /// A datagram that starts with the DHT tag, from `source`: decoded
    /// here, a request of a newer kind answered `Unsupported`, then acted
    /// on under the caller's `policy` (which pushes to take, which
    /// responses are reachability probes).
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        source: SocketAddr,
        datagram: &[u8],
        policy: DatagramPolicy<'_>,
    ) -> Result<(), DhtDrop> {
        let message = match decode_frame(datagram) {
            Ok(message) => message,
            Err(_) if self.answer_unsupported(source, datagram) => {
                debug!("dht: {source} sent a request of a newer kind; answered Unsupported");
                return Ok(());
            }
            Err(error) => {
                debug!("dht: from {source}: {error}");
                return Err(DhtDrop::Malformed);
            }
        };
        match &message {
            Message::Response { txid, .. } if (policy.is_probe)(txid, source) => {
                self.events.push_back(DhtEvent::ProbeArrived {
                    txid: *txid,
                    from: source,
                });
                Ok(())
            }
            Message::Push { .. } if !(policy.accept_push)(source) => {
                debug!("dht: push from {source}, which we did not announce to; dropped");
                Err(DhtDrop::UnsolicitedPush)
            }
            _ => self.handle_message(now, source, datagram.len(), message),
        }
    }

    /// Acts on a decoded DHT message from `source` that arrived in a
    /// datagram of `datagram_len` bytes.
    fn handle_message(
        &mut self,
        now: Instant,
        source: SocketAddr,
        datagram_len: usize,
        message: Message,
    ) -> Result<(), DhtDrop> {
        match message {
            Message::Request {
                txid, sender, body, ..
            } => self.answer(now, source, datagram_len, txid, sender, body),
            Message::Response {
                txid,
                sender,
                observed,
                body,
            } => self.on_response(now, source, txid, sender, observed, body),
            Message::Deliver { from, payload, .. } => {
                debug!("dht: signal from {} via {source}", from.short());
                self.events.push_back(DhtEvent::Delivered {
                    from,
                    relay: source,
                    direct: false,
                    payload: payload.0,
                });
                Ok(())
            }
            Message::Push { topic, record, .. } => {
                self.events.push_back(DhtEvent::Records {
                    topic,
                    relay: source,
                    records: vec![record.0],
                });
                Ok(())
            }
        }
    }

    /// Sends due requests, expires those past their deadline, retries the
    /// bootstrap, refreshes stale buckets, rotates token secrets and expires
    /// stored records.
    pub fn handle_timeout(&mut self, now: Instant) {
        for pending in self.rpc.take_expired(now) {
            self.on_request_failed(now, pending, Charge::Entry);
        }
        for (to, frame) in self.rpc.take_resends(now) {
            self.transmits.push_back(self.locals.transmit(to, frame));
        }
        if let Some(addrs) = self.bootstrap.due(now) {
            debug!(
                "dht: bootstrap attempt {} via {addrs:?}",
                self.bootstrap.attempt()
            );
            for addr in addrs {
                self.ping(now, addr, None, true);
            }
        }
        if now >= self.next_refresh {
            self.next_refresh = now + REFRESH_CHECK;
            self.refresh(now);
        }
        if now >= self.tokens.rotate_at() {
            let fresh = self.rng.bytes();
            self.tokens.rotate(now, fresh);
        }
        if self.store.next_expiry().is_some_and(|at| now >= at) {
            self.store.expire(now);
        }
        let ids: Vec<LookupId> = self.lookups.keys().copied().collect();
        for id in ids {
            self.advance(now, id);
        }
    }

    /// Starts a lookup of the nodes closest to `target`.
    pub fn find_node(&mut self, now: Instant, target: NodeId) -> LookupId {
        self.start_lookup(now, target, LookupKind::FindNode)
    }

    /// Starts a lookup of the records under `topic`.
    pub fn get_peers(&mut self, now: Instant, topic: NodeId) -> LookupId {
        self.start_lookup(now, topic, LookupKind::GetPeers)
    }

    /// Announces `record` under `topic` to each node with the token it
    /// gave, signed by `identity` (whose node ID this engine runs as).
    pub fn announce(
        &mut self,
        now: Instant,
        identity: &Identity,
        topic: NodeId,
        targets: &[(Peer, [u8; TOKEN_LEN])],
        record: &[u8],
    ) {
        for (peer, token) in targets {
            let body = announce::signed_announce(identity, topic, *token, record);
            self.request(now, peer.addr, Some(peer.id), Purpose::Announce, body);
        }
    }

    /// Answers a request frame of a variant this version does not know
    /// ([`unknown_request_variant`]) with `Error(Unsupported)`, within the
    /// amplification budget of an unproven source; true if it was one.
    fn answer_unsupported(&mut self, source: SocketAddr, datagram: &[u8]) -> bool {
        let Some(txid) = unknown_request_variant(datagram) else {
            return false;
        };
        let budget = (!self.verified.contains(&source))
            .then(|| datagram.len().saturating_mul(AMPLIFICATION_FACTOR));
        let body = Response::Error(ErrorCode::Unsupported);
        let frame = response_frame(self.local, source, txid, body, None);
        if budget.is_none_or(|b| frame.len() <= b) {
            self.transmits
                .push_back(self.locals.transmit(source, frame));
        }
        true
    }

    /// Asks the node at `via` to forward `payload` to `to` (or, when `via`
    /// is `to` itself, hands it over directly).
    pub fn signal(&mut self, now: Instant, via: SocketAddr, to: NodeId, payload: Vec<u8>) {
        let body = Request::Signal {
            to,
            payload: Blob(payload),
        };
        self.request(now, via, None, Purpose::Signal(to), body);
    }

    /// Asks the node at `via` to have a third node send us one datagram
    /// unasked (`ReachMe`); the request's transaction ID, which that
    /// datagram carries.
    pub fn reach_me(&mut self, now: Instant, via: SocketAddr) -> TxId {
        self.request(now, via, None, Purpose::ReachMe, Request::ReachMe)
    }

    /// Bootstraps from `addrs` from now on (a node started without any).
    pub fn set_bootstrap(&mut self, now: Instant, addrs: Vec<SocketAddr>) {
        self.bootstrap = Bootstrap::new(now, addrs);
    }

    /// Joins through `addrs` as well (nodes found later, such as relays
    /// from the Mainline relay directory): bootstraps from them with the
    /// others while the routing table is empty, else pings them, so they
    /// become entries once they answer.
    pub fn add_bootstrap(&mut self, now: Instant, addrs: &[SocketAddr]) {
        if self.table.is_empty() {
            let mut all = self.bootstrap.addrs().to_vec();
            all.extend(
                addrs
                    .iter()
                    .filter(|a| !all.contains(a))
                    .copied()
                    .collect::<Vec<_>>(),
            );
            self.bootstrap = Bootstrap::new(now, all);
        } else {
            for addr in addrs {
                self.ping(now, *addr, None, false);
            }
        }
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<DhtEvent> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) must next run.
    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.rpc.poll_timeout(),
            self.bootstrap.poll_timeout(),
            Some(self.next_refresh),
            Some(self.tokens.rotate_at()),
            self.store.next_expiry(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn start_lookup(&mut self, now: Instant, target: NodeId, kind: LookupKind) -> LookupId {
        let id = LookupId(self.next_lookup);
        self.next_lookup += 1;
        if self.lookups.len() >= MAX_LOOKUPS {
            warn!(
                "dht: {MAX_LOOKUPS} lookups under way; lookup of {} not started",
                target.short()
            );
            self.events.push_back(DhtEvent::LookupDone {
                id,
                target,
                closest: Vec::new(),
                tokens: Vec::new(),
                rounds: 0,
                requests: 0,
            });
            return id;
        }
        self.table.touch(now, &target);
        let seeds = self.table.closest(&target, K);
        debug!(
            "dht: lookup {} of {} ({kind:?}) from {} seeds",
            id.0,
            target.short(),
            seeds.len()
        );
        self.lookups.insert(
            id,
            LookupState {
                lookup: Lookup::new(target, self.local, &seeds),
                kind,
                tokens: Vec::new(),
            },
        );
        self.advance(now, id);
        id
    }

    /// Sends the lookup's next requests, or reports it finished.
    fn advance(&mut self, now: Instant, id: LookupId) {
        let Some(state) = self.lookups.get_mut(&id) else {
            return;
        };
        let target = state.lookup.target();
        let kind = state.kind;
        for peer in state.lookup.next_requests(now) {
            let body = match kind {
                LookupKind::FindNode => Request::FindNode { target },
                LookupKind::GetPeers => Request::GetPeers { topic: target },
            };
            self.request(now, peer.addr, Some(peer.id), Purpose::Lookup(id), body);
        }
        let finished = self
            .lookups
            .get(&id)
            .is_some_and(|s| s.lookup.is_finished() || !self.rpc.lookup_in_flight(id));
        if !finished {
            return;
        }
        let Some(state) = self.lookups.remove(&id) else {
            return;
        };
        let closest = state.lookup.closest_answered(K);
        let tokens = state
            .tokens
            .into_iter()
            .filter(|(peer, _)| closest.iter().any(|c| c.id == peer.id))
            .collect();
        debug!(
            "dht: lookup {} of {} done: {} closest, {} rounds, {} requests",
            id.0,
            target.short(),
            closest.len(),
            state.lookup.rounds(),
            state.lookup.requests()
        );
        if self.self_lookup == Some(id) {
            self.self_lookup = None;
            info!(
                "dht: bootstrapped, {} nodes in the routing table",
                self.table.len()
            );
            self.events.push_back(DhtEvent::Bootstrapped {
                nodes: self.table.len(),
            });
            self.refresh_far_buckets(now);
        }
        self.events.push_back(DhtEvent::LookupDone {
            id,
            target,
            closest,
            tokens,
            rounds: state.lookup.rounds(),
            requests: state.lookup.requests(),
        });
    }

    fn ping(&mut self, now: Instant, to: SocketAddr, id: Option<NodeId>, bootstrap: bool) {
        self.request(now, to, id, Purpose::Ping { bootstrap }, Request::Ping);
    }

    fn request(
        &mut self,
        now: Instant,
        to: SocketAddr,
        id: Option<NodeId>,
        purpose: Purpose,
        body: Request,
    ) -> TxId {
        let txid: TxId = self.rng.bytes();
        let pending = Pending {
            to,
            id,
            purpose,
            deadline: now,
        };
        // Resent only where it was answered before (or to a bootstrap
        // node the user named): never multiplied toward a forged source
        // or a contact someone else made up.
        let proven = matches!(purpose, Purpose::Ping { bootstrap: true })
            || self.verified.contains(&to)
            || id.is_some_and(|id| self.table.address_of(&id) == Some(to));
        let resends = if proven { REQUEST_RESENDS } else { 0 };
        match self
            .rpc
            .request(now, txid, self.local, pending, body, resends)
        {
            Some(frame) => self.transmits.push_back(self.locals.transmit(to, frame)),
            None => {
                if let Some(count) = self.budgets.table_full() {
                    warn!(
                        "dht: too many requests in flight; not sending to {to} \
                         ({count} requests not sent so far)"
                    );
                } else {
                    debug!("dht: too many requests in flight; not sending to {to}");
                }
                self.on_request_failed(now, pending, Charge::Nobody);
            }
        }
        txid
    }

    /// True if a request that someone else's request asks of us (a
    /// verification ping, a probe) may go out now (`budget.rs`).
    fn may_send_for_others(&mut self, now: Instant) -> bool {
        self.budgets.may_send_for_others(now, self.rpc.len())
    }

    /// True if `source` has shown it receives at its address: it answered
    /// one of our requests, or sits in the routing table there.
    fn is_proven(&self, source: SocketAddr, sender: &NodeId) -> bool {
        self.verified.contains(&source) || self.table.address_of(sender) == Some(source)
    }

    fn answer(
        &mut self,
        now: Instant,
        source: SocketAddr,
        request_len: usize,
        txid: TxId,
        sender: NodeId,
        body: Request,
    ) -> Result<(), DhtDrop> {
        let body_is_reach_me = body == Request::ReachMe;
        let short_reach = body_is_reach_me && request_len < REACH_ME_REQUEST_LEN;
        // A probe is sent for nodes that proved their address only, so a
        // stranger cannot aim our datagrams at someone.
        let stranger_probe =
            matches!(body, Request::Probe { .. }) && !self.is_proven(source, &sender);
        let mut answer = Server {
            local: self.local,
            table: &self.table,
            store: &mut self.store,
            tokens: &self.tokens,
            rng: &mut self.rng,
            signature_checks: &mut self.budgets.signature_checks,
        }
        .answer(now, source, txid, sender, body)?;
        if short_reach || stranger_probe {
            // Unpadded, a ReachMe could make the third node's probe outweigh
            // it; a stranger's Probe could aim our Pong at anyone.
            answer.requests.clear();
            answer.sends.clear();
            answer.response = Response::Error(ErrorCode::UnknownTarget);
        }
        // An address that has not proved it receives gets at most
        // AMPLIFICATION_FACTOR times the request's size back, the
        // verification ping included.
        let mut budget = (!self.is_proven(source, &sender))
            .then(|| request_len.saturating_mul(AMPLIFICATION_FACTOR));
        // A ReachMe earns no verification ping: with the probe it makes a
        // third node send, the ping would let a forged source draw more
        // bytes than it sent (§5.8).
        let verify = !body_is_reach_me;
        if verify && sender != self.local && self.table.address_of(&sender) != Some(source) {
            // Unknown requester: it becomes an entry only if it answers a
            // ping, sent while our own requests have room and the node's
            // budget allows.
            let affordable = budget.is_none_or(|b| b >= PING_FRAME_LEN + MIN_RESPONSE_LEN);
            if affordable && !self.rpc.awaits(source) && self.may_send_for_others(now) {
                self.request(now, source, Some(sender), Purpose::Verify, Request::Ping);
                budget = budget.map(|b| b - PING_FRAME_LEN);
            }
        }
        self.events.extend(answer.events);
        for (to, frame) in answer.sends {
            self.transmits.push_back(self.locals.transmit(to, frame));
        }
        for (to, id, body) in answer.requests {
            if self.may_send_for_others(now) {
                self.request(now, to, Some(id), Purpose::Probe, body);
            }
        }
        let frame = response_frame(self.local, source, txid, answer.response, budget);
        self.transmits
            .push_back(self.locals.transmit(source, frame));
        Ok(())
    }

    fn on_response(
        &mut self,
        now: Instant,
        source: SocketAddr,
        txid: TxId,
        sender: NodeId,
        observed: WireAddr,
        body: Response,
    ) -> Result<(), DhtDrop> {
        let pending = self.rpc.take_answered(&txid, source)?;
        if pending.id.is_some_and(|expected| expected != sender) {
            debug!(
                "dht: {source} answered as {} instead of the expected node",
                sender.short()
            );
            self.on_request_failed(now, pending, Charge::Entry);
            return Ok(());
        }
        self.verified.insert(source);
        self.events.push_back(DhtEvent::Observed {
            addr: SocketAddr::from(observed),
            by: source,
        });
        let peer = Peer {
            id: sender,
            addr: source,
        };
        if sender != self.local
            && let Offer::Probe(oldest) = self.table.on_answered(now, peer)
        {
            self.ping(now, oldest.addr, Some(oldest.id), false);
        }
        match pending.purpose {
            Purpose::Ping { bootstrap: true } => {
                if self.bootstrap.on_answer() {
                    let id = self.find_node(now, self.local);
                    self.self_lookup = Some(id);
                }
            }
            Purpose::Ping { bootstrap: false } | Purpose::Verify => {}
            Purpose::Announce => match body {
                Response::Error(code) => debug!("dht: {source} refused the announce: {code:?}"),
                _ => debug!("dht: announced to {source}"),
            },
            Purpose::Signal(to) => {
                if let Response::Error(_) = body {
                    self.events.push_back(DhtEvent::SignalFailed {
                        to,
                        via: source,
                        reason: "the relay does not know the recipient",
                    });
                }
            }
            Purpose::Lookup(id) => self.on_lookup_answer(now, id, peer, body),
            Purpose::ReachMe => self.events.push_back(DhtEvent::ReachAnswered {
                via: source,
                forwarded: body == Response::Pong,
            }),
            Purpose::Probe => {}
        }
        Ok(())
    }

    /// A lookup step answered: closer nodes, a token and records, if any.
    /// A mismatched body (say `Pong` to a `FindNode`) counts as an answer
    /// with nothing in it.
    fn on_lookup_answer(&mut self, now: Instant, id: LookupId, peer: Peer, body: Response) {
        let (nodes, token, records) = match body {
            Response::Nodes { nodes } => (nodes.0, None, Vec::new()),
            Response::Peers {
                token,
                records,
                nodes,
            } => (nodes.0, Some(token), records.0),
            _ => (Vec::new(), None, Vec::new()),
        };
        // Contacts of a narrower scope than the node that named them (a
        // public node naming a private or loopback address) are not asked.
        let closer: Vec<Peer> = nodes
            .into_iter()
            .map(|c| Peer {
                id: c.id,
                addr: SocketAddr::from(c.addr),
            })
            .filter(|c| usable_from(c.addr, peer.addr.ip()))
            .collect();
        if let Some(state) = self.lookups.get_mut(&id) {
            state.lookup.on_answer(&peer.id, &closer);
            if let Some(token) = token {
                state.tokens.push((peer, token));
            }
            if !records.is_empty() {
                self.events.push_back(DhtEvent::Records {
                    topic: state.lookup.target(),
                    relay: peer.addr,
                    records: records.into_iter().map(|b| b.0).collect(),
                });
            }
        }
        self.advance(now, id);
    }

    fn on_request_failed(&mut self, now: Instant, pending: Pending, charge: Charge) {
        if let Some(id) = pending.id
            && charge == Charge::Entry
        {
            self.table.on_failed(&id);
        }
        match pending.purpose {
            Purpose::Ping { bootstrap: true } => {
                if let Some(failed) = self.bootstrap.on_failure(now) {
                    warn!(
                        "dht: no bootstrap node answered (attempt {}); retrying in {:.0} s",
                        failed.attempt,
                        failed.retry_in.as_secs_f64()
                    );
                    self.events.push_back(DhtEvent::BootstrapFailed {
                        attempt: failed.attempt,
                        retry_in: failed.retry_in,
                    });
                }
            }
            Purpose::Lookup(id) => {
                if let (Some(state), Some(node)) = (self.lookups.get_mut(&id), pending.id) {
                    state.lookup.on_failure(&node);
                }
                self.advance(now, id);
            }
            Purpose::Signal(to) => self.events.push_back(DhtEvent::SignalFailed {
                to,
                via: pending.to,
                reason: "the relay did not answer",
            }),
            Purpose::ReachMe => self.events.push_back(DhtEvent::ReachAnswered {
                via: pending.to,
                forwarded: false,
            }),
            Purpose::Ping { bootstrap: false }
            | Purpose::Verify
            | Purpose::Announce
            | Purpose::Probe => {}
        }
        if self.table.is_empty() && self.bootstrap.restart(now) {
            info!("dht: routing table empty; bootstrapping again");
        }
    }

    /// After the self-lookup, looks up a key in every bucket farther than
    /// the closest neighbour's (Kademlia paper §2.3), so the far buckets hold
    /// nodes and lookups from here reach every part of the key space.
    fn refresh_far_buckets(&mut self, now: Instant) {
        let nearest = self.table.closest(&self.local, 1);
        let Some(first) = nearest
            .first()
            .and_then(|p| self.local.distance(&p.id).bucket_index())
        else {
            return;
        };
        for index in first + 1..ID_BITS {
            let key = self.table.key_in_bucket(index, self.rng.bytes());
            self.find_node(now, key);
        }
    }

    fn refresh(&mut self, now: Instant) {
        let stale = self
            .table
            .stale_buckets(now.checked_sub(BUCKET_STALE).unwrap_or(now));
        for index in stale {
            let key = self.table.key_in_bucket(index, self.rng.bytes());
            self.find_node(now, key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dht::rpc::MAX_PENDING;

    fn addr(n: u32) -> SocketAddr {
        SocketAddr::from((std::net::Ipv4Addr::from(0xC000_0200 + n), 4000))
    }

    #[test]
    fn a_request_never_sent_is_not_held_against_its_routing_entry() {
        let now = Instant::now();
        let local = NodeId([1; 32]);
        let locals = LocalAddrs::new(vec![addr(0)]);
        let mut dht = Dht::new(now, local, locals, Rng::from_seed([5; 32]), Vec::new());
        let peer = Peer {
            id: NodeId([2; 32]),
            addr: addr(1),
        };
        dht.table.on_answered(now, peer);
        for n in 0..MAX_PENDING as u32 {
            dht.ping(now, addr(100 + n), None, false);
        }
        assert_eq!(dht.rpc.len(), MAX_PENDING);
        for _ in 0..5 {
            dht.ping(now, peer.addr, Some(peer.id), false);
        }
        assert_eq!(
            dht.table.address_of(&peer.id),
            Some(peer.addr),
            "still an entry"
        );
        let logged: Vec<u64> = (0..3).filter_map(|_| dht.budgets.table_full()).collect();
        assert_eq!(
            logged,
            [8],
            "five counted; the 6th and 7th not logged, the 8th is"
        );
    }
}
