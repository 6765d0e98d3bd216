//! The DHT engine: Kademlia RPCs over the node's socket, sans-IO.
//!
//! It answers requests (ping, find_node, get_peers, announce, signal), runs
//! lookups for the node, keeps the routing table and the record store, and
//! bootstraps from configured addresses with exponential backoff. Every
//! response it sends tells the requester the address its request came from.
//!
//! Invariants: a node enters the routing table only after answering one of
//! our requests (requesters we do not know are pinged first); every request
//! we send has a transaction ID, a destination and a deadline, and a
//! response counts only if it echoes the ID and comes from that destination;
//! all state is bounded (routing table, store caps, lookup candidate caps,
//! [`MAX_PENDING`] requests in flight).

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use log::{debug, info, warn};

use super::lookup::{Lookup, REQUEST_TIMEOUT};
use super::routing::{Offer, Peer, RoutingTable};
use super::store::{Put, Refused, Store};
use super::token::Tokens;
use super::wire::{
    Blob, BoundedList, Contact, ErrorCode, K, MAX_RECORDS_PER_REPLY, Message, Request, Response,
    TOKEN_LEN, TxId, WireAddr, encode_frame,
};
use crate::id::NodeId;
use crate::limits::AMPLIFICATION_FACTOR;
use crate::rng::Rng;
use crate::transmit::Transmit;

/// Requests in flight at once; further requests are not sent.
pub const MAX_PENDING: usize = 512;
/// Lookups under way at once; further lookups finish at once, empty.
pub const MAX_LOOKUPS: usize = 64;
/// Addresses remembered as proven (they answered one of our requests).
pub const MAX_VERIFIED: usize = 1024;
/// `FindNode` requests are padded to this size, so that 3 × it covers a
/// full answer (8 IPv6 contacts) and a verification ping.
pub const FIND_NODE_REQUEST_LEN: usize = 176;
/// `GetPeers` requests are padded to this size, so that 3 × it covers a
/// full answer (800 bytes of records, 8 IPv6 contacts) and a ping.
pub const GET_PEERS_REQUEST_LEN: usize = 480;
/// Size of a `Ping` request datagram.
const PING_FRAME_LEN: usize = 2 + 1 + 8 + 32 + 1 + 1;
/// Size of the smallest response datagram (`Pong` to an IPv6 address).
const MIN_RESPONSE_LEN: usize = 2 + 1 + 8 + 32 + 1 + 16 + 3 + 1;
/// First wait before retrying a bootstrap that got no answer; it doubles.
pub const BOOTSTRAP_RETRY_FIRST: Duration = Duration::from_secs(1);
/// Longest wait between bootstrap attempts.
pub const BOOTSTRAP_RETRY_MAX: Duration = Duration::from_secs(60);
/// How often buckets are checked for staleness.
pub const REFRESH_CHECK: Duration = Duration::from_secs(5 * 60);
/// A bucket with no activity for this long is refreshed by a lookup.
pub const BUCKET_STALE: Duration = Duration::from_secs(15 * 60);
/// Bytes of sealed records in one `Peers` reply, so it fits one 1,280-byte
/// IPv6 minimum-MTU packet with the contacts.
pub const RECORD_BYTES_PER_REPLY: usize = 800;

/// The most recent addresses that answered our requests, bounded.
#[derive(Default)]
struct VerifiedAddresses {
    order: VecDeque<SocketAddr>,
    set: std::collections::BTreeSet<SocketAddr>,
}

impl VerifiedAddresses {
    fn insert(&mut self, addr: SocketAddr) {
        if self.set.insert(addr) {
            self.order.push_back(addr);
            if self.order.len() > MAX_VERIFIED {
                if let Some(old) = self.order.pop_front() {
                    self.set.remove(&old);
                }
            }
        }
    }

    fn contains(&self, addr: &SocketAddr) -> bool {
        self.set.contains(addr)
    }
}

/// Identifies one lookup started by the node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LookupId(pub u64);

/// What a lookup is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LookupKind {
    /// Find the nodes closest to a key.
    FindNode,
    /// Find the records under a topic and the nodes that store them.
    GetPeers,
}

/// Something the engine reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DhtEvent {
    /// `by` saw our request come from `addr`.
    Observed {
        /// Our address as seen by `by`.
        addr: SocketAddr,
        /// The responder.
        by: SocketAddr,
    },
    /// No bootstrap node answered; the next attempt is in `retry_in`.
    BootstrapFailed {
        /// Attempts so far.
        attempt: u32,
        /// Wait before the next one.
        retry_in: Duration,
    },
    /// A bootstrap node answered and the self-lookup finished.
    Bootstrapped {
        /// Entries in the routing table.
        nodes: usize,
    },
    /// A lookup finished.
    LookupDone {
        /// Which.
        id: LookupId,
        /// The key looked up.
        target: NodeId,
        /// Closest nodes that answered, nearest first.
        closest: Vec<Peer>,
        /// For get_peers: the announce token each of them gave.
        tokens: Vec<(Peer, [u8; TOKEN_LEN])>,
        /// Depth of the lookup.
        rounds: u32,
        /// Requests it sent.
        requests: u32,
    },
    /// Sealed records under `topic`, from a `Peers` reply or a `Push`.
    Records {
        /// The topic.
        topic: NodeId,
        /// The node that holds them (a relay towards their announcers).
        relay: SocketAddr,
        /// The sealed records.
        records: Vec<Vec<u8>>,
    },
    /// A record from a new announcer (or a new address of one) was stored
    /// here; a member of that meeting reads it like a pushed record.
    Stored {
        /// The topic.
        topic: NodeId,
        /// The sealed record.
        record: Vec<u8>,
    },
    /// A signal addressed to us arrived through `relay`.
    Delivered {
        /// Who sent it.
        from: NodeId,
        /// Through which node.
        relay: SocketAddr,
        /// The sealed payload.
        payload: Vec<u8>,
    },
    /// A signal we sent could not be relayed.
    SignalFailed {
        /// The intended recipient.
        to: NodeId,
        /// Why.
        reason: &'static str,
    },
}

/// Why a DHT datagram was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DhtDrop {
    /// A response for no request in flight.
    UnknownTransaction,
    /// A response from an address the request did not go to.
    WrongSource,
}

#[derive(Clone, Copy, Debug)]
enum Purpose {
    Ping { bootstrap: bool },
    Lookup(LookupId),
    Announce,
    Signal(NodeId),
}

struct Pending {
    to: SocketAddr,
    id: Option<NodeId>,
    purpose: Purpose,
    deadline: Instant,
}

struct LookupState {
    lookup: Lookup,
    kind: LookupKind,
    tokens: Vec<(Peer, [u8; TOKEN_LEN])>,
}

struct Bootstrap {
    addrs: Vec<SocketAddr>,
    attempt: u32,
    next_at: Option<Instant>,
    outstanding: usize,
    answered: bool,
    self_lookup: Option<LookupId>,
}

/// The Kademlia node.
pub struct Dht {
    local: NodeId,
    rng: Rng,
    table: RoutingTable,
    store: Store,
    tokens: Tokens,
    pending: BTreeMap<TxId, Pending>,
    lookups: BTreeMap<LookupId, LookupState>,
    next_lookup: u64,
    verified: VerifiedAddresses,
    bootstrap: Bootstrap,
    next_refresh: Instant,
    transmits: VecDeque<Transmit>,
    events: VecDeque<DhtEvent>,
}

impl Dht {
    /// A DHT node with ID `local` that bootstraps from `bootstrap` at once.
    pub fn new(now: Instant, local: NodeId, mut rng: Rng, bootstrap: Vec<SocketAddr>) -> Self {
        let tokens = Tokens::new(now, rng.bytes(), rng.bytes());
        let next_at = (!bootstrap.is_empty()).then_some(now);
        Self {
            local,
            rng,
            table: RoutingTable::new(local),
            store: Store::default(),
            tokens,
            pending: BTreeMap::new(),
            lookups: BTreeMap::new(),
            next_lookup: 0,
            verified: VerifiedAddresses::default(),
            bootstrap: Bootstrap {
                addrs: bootstrap,
                attempt: 0,
                next_at,
                outstanding: 0,
                answered: false,
                self_lookup: None,
            },
            next_refresh: now + REFRESH_CHECK,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// Our node ID.
    pub fn local(&self) -> NodeId {
        self.local
    }

    /// Entries in the routing table.
    pub fn routing_len(&self) -> usize {
        self.table.len()
    }

    /// Records stored for others.
    pub fn store_len(&self) -> usize {
        self.store.len()
    }

    /// Requests in flight.
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// Lookups under way.
    pub fn lookups_len(&self) -> usize {
        self.lookups.len()
    }

    /// Acts on a decoded DHT message from `source` that arrived in a
    /// datagram of `datagram_len` bytes.
    pub fn handle_message(
        &mut self,
        now: Instant,
        source: SocketAddr,
        datagram_len: usize,
        message: Message,
    ) -> Result<(), DhtDrop> {
        match message {
            Message::Request {
                txid, sender, body, ..
            } => {
                self.answer(now, source, datagram_len, txid, sender, body);
                Ok(())
            }
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
        let expired: Vec<TxId> = self
            .pending
            .iter()
            .filter(|(_, p)| now >= p.deadline)
            .map(|(txid, _)| *txid)
            .collect();
        for txid in expired {
            if let Some(pending) = self.pending.remove(&txid) {
                self.on_request_failed(now, pending);
            }
        }
        if self.bootstrap.next_at.is_some_and(|at| now >= at) {
            self.start_bootstrap(now);
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

    /// Announces `record` under `topic` to each node with the token it gave.
    pub fn announce(
        &mut self,
        now: Instant,
        topic: NodeId,
        targets: &[(Peer, [u8; TOKEN_LEN])],
        record: &[u8],
    ) {
        for (peer, token) in targets {
            let body = Request::Announce {
                topic,
                token: *token,
                record: Blob(record.to_vec()),
            };
            self.request(now, peer.addr, Some(peer.id), Purpose::Announce, body);
        }
    }

    /// Asks the node at `relay` to forward `payload` to `to`.
    pub fn signal(&mut self, now: Instant, relay: SocketAddr, to: NodeId, payload: Vec<u8>) {
        let body = Request::Signal {
            to,
            payload: Blob(payload),
        };
        self.request(now, relay, None, Purpose::Signal(to), body);
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
            self.pending.values().map(|p| p.deadline).min(),
            self.bootstrap.next_at,
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
        let next = state.lookup.next_requests(now);
        for peer in next {
            let body = match kind {
                LookupKind::FindNode => Request::FindNode { target },
                LookupKind::GetPeers => Request::GetPeers { topic: target },
            };
            self.request(now, peer.addr, Some(peer.id), Purpose::Lookup(id), body);
        }
        let Some(state) = self.lookups.get(&id) else {
            return;
        };
        let in_flight = self
            .pending
            .values()
            .any(|p| matches!(p.purpose, Purpose::Lookup(l) if l == id));
        if !state.lookup.is_finished() && in_flight {
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
        if self.bootstrap.self_lookup == Some(id) {
            self.bootstrap.self_lookup = None;
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

    fn request(
        &mut self,
        now: Instant,
        to: SocketAddr,
        id: Option<NodeId>,
        purpose: Purpose,
        body: Request,
    ) {
        if self.pending.len() >= MAX_PENDING {
            warn!("dht: {MAX_PENDING} requests in flight; not sending to {to}");
            self.on_request_failed(
                now,
                Pending {
                    to,
                    id,
                    purpose,
                    deadline: now,
                },
            );
            return;
        }
        let txid: TxId = self.rng.bytes();
        let padded_len = match body {
            Request::FindNode { .. } => FIND_NODE_REQUEST_LEN,
            Request::GetPeers { .. } => GET_PEERS_REQUEST_LEN,
            Request::Ping | Request::Announce { .. } | Request::Signal { .. } => 0,
        };
        let mut message = Message::Request {
            txid,
            sender: self.local,
            body,
            padding: Blob::default(),
        };
        let unpadded = encode_frame(&message).len();
        if let Message::Request { padding, .. } = &mut message {
            // The padding's own length prefix takes one byte.
            padding.0 = vec![0; padded_len.saturating_sub(unpadded + 1)];
        }
        self.transmits.push_back(Transmit {
            destination: to,
            payload: encode_frame(&message),
        });
        self.pending.insert(
            txid,
            Pending {
                to,
                id,
                purpose,
                deadline: now + REQUEST_TIMEOUT,
            },
        );
    }

    /// Sends `body` to `to`, first shortening its lists so the datagram
    /// fits `limit` bytes when one is given.
    fn respond(&mut self, to: SocketAddr, txid: TxId, mut body: Response, limit: Option<usize>) {
        let frame = |body: Response| {
            encode_frame(&Message::Response {
                txid,
                sender: self.local,
                observed: WireAddr::from(to),
                body,
            })
        };
        let mut payload = frame(body.clone());
        while limit.is_some_and(|limit| payload.len() > limit) {
            let shortened = match &mut body {
                Response::Nodes { nodes } => nodes.0.pop().is_some(),
                Response::Peers { records, nodes, .. } => {
                    records.0.pop().is_some() || nodes.0.pop().is_some()
                }
                _ => false,
            };
            if !shortened {
                break;
            }
            payload = frame(body.clone());
        }
        self.transmits.push_back(Transmit {
            destination: to,
            payload,
        });
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
    ) {
        // An address that has not proved it receives gets at most
        // AMPLIFICATION_FACTOR times the request's size back, the
        // verification ping included.
        let mut budget = (!self.is_proven(source, &sender))
            .then(|| request_len.saturating_mul(AMPLIFICATION_FACTOR));
        if sender != self.local && self.table.address_of(&sender) != Some(source) {
            // Unknown requester: it becomes an entry only if it answers a ping.
            let verifying = self.pending.values().any(|p| p.to == source);
            let ping_len = PING_FRAME_LEN;
            let affordable = budget.is_none_or(|b| b >= ping_len + MIN_RESPONSE_LEN);
            if !verifying && affordable {
                self.request(
                    now,
                    source,
                    Some(sender),
                    Purpose::Ping { bootstrap: false },
                    Request::Ping,
                );
                budget = budget.map(|b| b - ping_len);
            }
        }
        let response = match body {
            Request::Ping => Response::Pong,
            Request::FindNode { target } => Response::Nodes {
                nodes: self.contacts_near(&target, &sender),
            },
            Request::GetPeers { topic } => {
                let mut stored: Vec<Vec<u8>> = self
                    .store
                    .get(now, &topic)
                    .into_iter()
                    .filter(|(announcer, _)| *announcer != sender)
                    .map(|(_, s)| s.record.clone())
                    .collect();
                self.shuffle(&mut stored);
                let mut budget = RECORD_BYTES_PER_REPLY;
                let records: Vec<Blob<_>> = stored
                    .into_iter()
                    .filter(|r| {
                        let fits = r.len() <= budget;
                        budget = budget.saturating_sub(r.len());
                        fits
                    })
                    .take(MAX_RECORDS_PER_REPLY)
                    .map(Blob)
                    .collect();
                Response::Peers {
                    token: self.tokens.issue(source),
                    records: BoundedList(records),
                    nodes: self.contacts_near(&topic, &sender),
                }
            }
            Request::Announce {
                topic,
                token,
                record,
            } => {
                if !self.tokens.check(source, &token) {
                    debug!("dht: announce from {source} with a bad token");
                    Response::Error(ErrorCode::BadToken)
                } else {
                    match self.store.put(now, topic, sender, source, record.0.clone()) {
                        Ok(put) => {
                            if put == Put::New {
                                self.push_to_members(now, topic, sender, &record);
                                self.events.push_back(DhtEvent::Stored {
                                    topic,
                                    record: record.0.clone(),
                                });
                            }
                            Response::Announced
                        }
                        Err(Refused::Full) => Response::Error(ErrorCode::StoreFull),
                    }
                }
            }
            Request::Signal { to, payload } if to == self.local => {
                // We are the recipient: the requester is its own relay's
                // other end (we relayed to it, or it stores our record).
                self.events.push_back(DhtEvent::Delivered {
                    from: sender,
                    relay: source,
                    payload: payload.0,
                });
                Response::Relayed
            }
            Request::Signal { to, payload } => {
                let mut targets = self.store.sources_of(now, &to);
                if targets.is_empty() {
                    targets.extend(self.table.address_of(&to));
                }
                if targets.is_empty() {
                    Response::Error(ErrorCode::UnknownTarget)
                } else {
                    let deliver = encode_frame(&Message::Deliver {
                        sender: self.local,
                        from: sender,
                        payload,
                    });
                    for addr in targets {
                        self.transmits.push_back(Transmit {
                            destination: addr,
                            payload: deliver.clone(),
                        });
                    }
                    Response::Relayed
                }
            }
        };
        self.respond(source, txid, response, budget);
    }

    /// Tells the other announcers under `topic` about a new member's record.
    fn push_to_members(
        &mut self,
        now: Instant,
        topic: NodeId,
        newcomer: NodeId,
        record: &Blob<{ super::wire::MAX_RECORD_LEN }>,
    ) {
        let members: Vec<SocketAddr> = self
            .store
            .get(now, &topic)
            .into_iter()
            .filter(|(announcer, _)| *announcer != newcomer)
            .map(|(_, stored)| stored.source)
            .collect();
        for member in members {
            let push = Message::Push {
                sender: self.local,
                topic,
                record: record.clone(),
            };
            self.transmits.push_back(Transmit {
                destination: member,
                payload: encode_frame(&push),
            });
        }
    }

    fn contacts_near(&self, target: &NodeId, exclude: &NodeId) -> BoundedList<Contact, K> {
        BoundedList(
            self.table
                .closest(target, K + 1)
                .into_iter()
                .filter(|p| p.id != *exclude)
                .take(K)
                .map(|p| Contact {
                    id: p.id,
                    addr: WireAddr::from(p.addr),
                })
                .collect(),
        )
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
        let pending = self.pending.get(&txid).ok_or(DhtDrop::UnknownTransaction)?;
        if pending.to != source {
            return Err(DhtDrop::WrongSource);
        }
        let Some(pending) = self.pending.remove(&txid) else {
            return Err(DhtDrop::UnknownTransaction);
        };
        if pending.id.is_some_and(|expected| expected != sender) {
            debug!(
                "dht: {source} answered as {} instead of the expected node",
                sender.short()
            );
            self.on_request_failed(now, pending);
            return Ok(());
        }
        self.verified.insert(source);
        self.events.push_back(DhtEvent::Observed {
            addr: SocketAddr::from(observed),
            by: source,
        });
        if sender != self.local {
            if let Offer::Probe(oldest) = self.table.on_answered(
                now,
                Peer {
                    id: sender,
                    addr: source,
                },
            ) {
                self.request(
                    now,
                    oldest.addr,
                    Some(oldest.id),
                    Purpose::Ping { bootstrap: false },
                    Request::Ping,
                );
            }
        }
        let peer = Peer {
            id: sender,
            addr: source,
        };
        match pending.purpose {
            Purpose::Ping { bootstrap: true } => {
                self.bootstrap.outstanding = self.bootstrap.outstanding.saturating_sub(1);
                if !self.bootstrap.answered {
                    self.bootstrap.answered = true;
                    self.bootstrap.attempt = 0;
                    let id = self.find_node(now, self.local);
                    self.bootstrap.self_lookup = Some(id);
                }
            }
            Purpose::Ping { bootstrap: false } => {}
            Purpose::Announce => match body {
                Response::Error(code) => debug!("dht: {source} refused the announce: {code:?}"),
                _ => debug!("dht: announced to {source}"),
            },
            Purpose::Signal(to) => {
                if let Response::Error(_) = body {
                    self.events.push_back(DhtEvent::SignalFailed {
                        to,
                        reason: "the relay does not know the recipient",
                    });
                }
            }
            Purpose::Lookup(id) => {
                let (nodes, token, records) = match body {
                    Response::Nodes { nodes } => (nodes.0, None, Vec::new()),
                    Response::Peers {
                        token,
                        records,
                        nodes,
                    } => (nodes.0, Some(token), records.0),
                    _ => (Vec::new(), None, Vec::new()),
                };
                let closer: Vec<Peer> = nodes
                    .into_iter()
                    .map(|c| Peer {
                        id: c.id,
                        addr: SocketAddr::from(c.addr),
                    })
                    .collect();
                if let Some(state) = self.lookups.get_mut(&id) {
                    state.lookup.on_answer(&sender, &closer);
                    if let Some(token) = token {
                        state.tokens.push((peer, token));
                    }
                    if !records.is_empty() {
                        self.events.push_back(DhtEvent::Records {
                            topic: state.lookup.target(),
                            relay: source,
                            records: records.into_iter().map(|b| b.0).collect(),
                        });
                    }
                }
                self.advance(now, id);
            }
        }
        Ok(())
    }

    fn on_request_failed(&mut self, now: Instant, pending: Pending) {
        if let Some(id) = pending.id {
            self.table.on_failed(&id);
        }
        match pending.purpose {
            Purpose::Ping { bootstrap: true } => {
                self.bootstrap.outstanding = self.bootstrap.outstanding.saturating_sub(1);
                if self.bootstrap.outstanding == 0 && !self.bootstrap.answered {
                    self.bootstrap.attempt += 1;
                    let retry_in = BOOTSTRAP_RETRY_FIRST
                        .saturating_mul(1 << self.bootstrap.attempt.saturating_sub(1).min(16))
                        .min(BOOTSTRAP_RETRY_MAX);
                    warn!(
                        "dht: no bootstrap node answered (attempt {}); retrying in {:.0} s",
                        self.bootstrap.attempt,
                        retry_in.as_secs_f64()
                    );
                    self.bootstrap.next_at = Some(now + retry_in);
                    self.events.push_back(DhtEvent::BootstrapFailed {
                        attempt: self.bootstrap.attempt,
                        retry_in,
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
                reason: "the relay did not answer",
            }),
            Purpose::Ping { bootstrap: false } | Purpose::Announce => {}
        }
        if self.table.is_empty() && self.bootstrap.answered && !self.bootstrap.addrs.is_empty() {
            info!("dht: routing table empty; bootstrapping again");
            self.bootstrap.answered = false;
            self.bootstrap.next_at = Some(now);
        }
    }

    fn start_bootstrap(&mut self, now: Instant) {
        self.bootstrap.next_at = None;
        let addrs = self.bootstrap.addrs.clone();
        debug!(
            "dht: bootstrap attempt {} via {addrs:?}",
            self.bootstrap.attempt + 1
        );
        self.bootstrap.outstanding = addrs.len();
        for addr in addrs {
            self.request(
                now,
                addr,
                None,
                Purpose::Ping { bootstrap: true },
                Request::Ping,
            );
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
        for index in first + 1..crate::id::ID_BITS {
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

    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = (u64::from_be_bytes(self.rng.bytes()) % (i as u64 + 1)) as usize;
            items.swap(i, j);
        }
    }
}
