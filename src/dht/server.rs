//! The answering side of the DHT: what a node says to each request, as
//! functions of its routing table, store and tokens, with no transaction
//! state, so they are unit-tested on encoded frames below.
//!
//! - `Ping` → `Pong`; `FindNode` → the k closest contacts (the requester
//!   left out).
//! - `GetPeers` → a token for the source address, up to
//!   [`RECORD_BYTES_PER_REPLY`] bytes of stored records in a seeded random
//!   order (the requester's own left out), and the k closest contacts.
//! - `SignedAnnounce` → dropped unheard ([`DhtDrop::ForgedAnnounce`]) unless
//!   the sender ID is SHA-256 of the key and the signature verifies
//!   ([`super::announce`]); then stored (`Announced`) if the token is valid
//!   for the source address. A new announcer's record is pushed to the other
//!   announcers of the topic and reported as [`DhtEvent::Stored`].
//! - the retired unauthenticated `Announce` → `Error(Unsupported)`.
//! - `ReachMe` → a `Probe` to a contact at another IP than the requester's,
//!   and `Pong` (`UnknownTarget` with no such contact); `Probe` → one
//!   `Pong` response with the given transaction ID to the target, and
//!   `Pong`.
//! - `Signal` to us → [`DhtEvent::Delivered`] (the requester is the signal's
//!   sender, reaching us directly); to an announcer we store or a node we
//!   know → `Deliver` to its addresses; otherwise `UnknownTarget`.
//!
//! [`response_frame`] then shortens the lists until the answer fits the
//! amplification budget of a requester that has not proved its address.

use crate::addr::{Family, source_key};
use std::net::SocketAddr;
use std::time::Instant;

use log::debug;

use super::announce;
use super::event::{DhtDrop, DhtEvent};
use super::routing::RoutingTable;
use super::store::{Put, Refused, Store};
use super::token::Tokens;
use super::wire::{
    Blob, BoundedList, Contact, ErrorCode, K, MAX_RECORD_LEN, MAX_RECORDS_PER_REPLY, Message,
    Request, Response, TxId, WireAddr, encode_frame,
};
use crate::id::NodeId;
use crate::ratelimit::RateLimiter;
use crate::rng::Rng;

/// Third nodes asked to probe one `ReachMe` requester: two, so that one
/// that has gone away does not make a reachable node look filtered; their
/// two `Pong`s (at most 126 bytes) stay below the padded request (128).
pub const PROBES_PER_REACH_ME: usize = 2;

/// Bytes of sealed records in one `Peers` reply: with the token and eight
/// IPv6 contacts the answer to an IPv6 address stays within 1,232 bytes,
/// the UDP payload of one 1,280-byte IPv6 minimum-MTU packet.
pub const RECORD_BYTES_PER_REPLY: usize = 720;

/// What answering a request produced.
#[derive(Debug)]
pub(super) struct Answer {
    /// The response to the requester.
    pub(super) response: Response,
    /// Frames for third parties: `Deliver` to a signal's recipient, `Push`
    /// to a topic's other announcers, a probe's `Pong`.
    pub(super) sends: Vec<(SocketAddr, Vec<u8>)>,
    /// Requests to a third party (a `Probe` for a `ReachMe`), sent by the
    /// engine with their own transactions.
    pub(super) requests: Vec<(SocketAddr, NodeId, Request)>,
    /// What the engine reports.
    pub(super) events: Vec<DhtEvent>,
}

/// The state a node answers from.
pub(super) struct Server<'a> {
    /// Our node ID.
    pub(super) local: NodeId,
    /// The routing table, for contacts and known addresses.
    pub(super) table: &'a RoutingTable,
    /// The records we store.
    pub(super) store: &'a mut Store,
    /// Announce tokens.
    pub(super) tokens: &'a Tokens,
    /// Randomness for the order of records.
    pub(super) rng: &'a mut Rng,
    /// The node's budget of Ed25519 checks.
    pub(super) signature_checks: &'a mut RateLimiter<()>,
}

impl Server<'_> {
    /// The answer to `body` from `sender` at `source`, or why the request
    /// is dropped without one.
    pub(super) fn answer(
        &mut self,
        now: Instant,
        source: SocketAddr,
        txid: TxId,
        sender: NodeId,
        body: Request,
    ) -> Result<Answer, DhtDrop> {
        let mut answer = Answer {
            response: Response::Pong,
            sends: Vec::new(),
            requests: Vec::new(),
            events: Vec::new(),
        };
        // Contacts go only to requesters of their own family, which can
        // reach them (`protocol-spec.md` §5.2).
        let family = Family::of(source);
        answer.response = match body {
            Request::Ping => Response::Pong,
            Request::FindNode { target } => Response::Nodes {
                nodes: self.contacts_near(&target, &sender, family),
            },
            Request::GetPeers { topic } => Response::Peers {
                token: self.tokens.issue(source),
                records: self.records_for(now, &topic, &sender),
                nodes: self.contacts_near(&topic, &sender, family),
            },
            Request::Announce { .. } => Response::Error(ErrorCode::Unsupported),
            Request::SignedAnnounce {
                topic,
                token,
                record,
                public_key,
                signature,
            } => {
                // The token (one HMAC) before the signature (Ed25519): a
                // source that does not receive where it claims to be, or
                // a flood beyond the node's budget, costs no verification.
                if !self.tokens.check(source, &token) {
                    debug!("dht: announce from {source} with a bad token");
                    return Ok(Answer {
                        response: Response::Error(ErrorCode::BadToken),
                        ..answer
                    });
                }
                if !self.signature_checks.allow(now, (), 1) {
                    debug!("dht: announce from {source} dropped: signature checks over budget");
                    return Err(DhtDrop::OverBudget);
                }
                if !announce::is_genuine(
                    &sender,
                    &topic,
                    &token,
                    &record.0,
                    &public_key,
                    &signature.0,
                ) {
                    debug!(
                        "dht: announce from {source} does not prove it is {}",
                        sender.short()
                    );
                    return Err(DhtDrop::ForgedAnnounce);
                }
                self.store_announce(now, source, sender, topic, record, &mut answer)
            }
            Request::ReachMe => {
                // A third node at another IP than the requester's, from a
                // random part of the key space: not one of the nodes
                // closest to the requester, which its own lookups ask.
                // Two of them, at two IPs, in case one has gone away.
                let region = NodeId(self.rng.bytes());
                let mut sources = vec![source_key(source.ip())];
                for contact in self.contacts_near(&region, &sender, family).0 {
                    let addr = SocketAddr::from(contact.addr);
                    let key = source_key(addr.ip());
                    if sources.len() > PROBES_PER_REACH_ME || sources.contains(&key) {
                        continue;
                    }
                    sources.push(key);
                    let probe = Request::Probe {
                        target: WireAddr::from(source),
                        txid,
                    };
                    answer.requests.push((addr, contact.id, probe));
                }
                if answer.requests.is_empty() {
                    Response::Error(ErrorCode::UnknownTarget)
                } else {
                    Response::Pong
                }
            }
            Request::Probe { target, txid } => {
                let pong = encode_frame(&Message::Response {
                    txid,
                    sender: self.local,
                    observed: target,
                    body: Response::Pong,
                });
                answer.sends.push((SocketAddr::from(target), pong));
                Response::Pong
            }
            Request::Signal { to, payload } if to == self.local => {
                // We are the recipient, and the requester reached us directly.
                answer.events.push(DhtEvent::Delivered {
                    from: sender,
                    relay: source,
                    direct: true,
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
                    answer
                        .sends
                        .extend(targets.into_iter().map(|addr| (addr, deliver.clone())));
                    Response::Relayed
                }
            }
        };
        Ok(answer)
    }

    fn store_announce(
        &mut self,
        now: Instant,
        source: SocketAddr,
        sender: NodeId,
        topic: NodeId,
        record: Blob<MAX_RECORD_LEN>,
        answer: &mut Answer,
    ) -> Response {
        match self.store.put(now, topic, sender, source, record.0.clone()) {
            Ok(Put::New) => {
                self.push_to_members(now, topic, sender, &record, answer);
                answer.events.push(DhtEvent::Stored {
                    topic,
                    announcer: source,
                    record: record.0,
                });
                Response::Announced
            }
            Ok(Put::Refreshed) => Response::Announced,
            Err(Refused::Full) => Response::Error(ErrorCode::StoreFull),
        }
    }

    /// Stored records under `topic` except `requester`'s, shuffled, within
    /// the reply's byte and count budgets.
    fn records_for(
        &mut self,
        now: Instant,
        topic: &NodeId,
        requester: &NodeId,
    ) -> BoundedList<Blob<MAX_RECORD_LEN>, MAX_RECORDS_PER_REPLY> {
        let mut stored: Vec<Vec<u8>> = self
            .store
            .get(now, topic)
            .into_iter()
            .filter(|(announcer, _)| announcer != requester)
            .map(|(_, s)| s.record.clone())
            .collect();
        shuffle(self.rng, &mut stored);
        let mut budget = RECORD_BYTES_PER_REPLY;
        BoundedList(
            stored
                .into_iter()
                .filter(|r| {
                    let fits = r.len() <= budget;
                    budget = budget.saturating_sub(r.len());
                    fits
                })
                .take(MAX_RECORDS_PER_REPLY)
                .map(Blob)
                .collect(),
        )
    }

    /// Tells the other announcers under `topic` about a new member's record.
    fn push_to_members(
        &self,
        now: Instant,
        topic: NodeId,
        newcomer: NodeId,
        record: &Blob<MAX_RECORD_LEN>,
        answer: &mut Answer,
    ) {
        let push = encode_frame(&Message::Push {
            sender: self.local,
            topic,
            record: record.clone(),
        });
        answer.sends.extend(
            self.store
                .get(now, &topic)
                .into_iter()
                .filter(|(announcer, _)| *announcer != newcomer)
                .map(|(_, stored)| (stored.source, push.clone())),
        );
    }

    /// The `K` contacts of `family` nearest `target`, `exclude` left out.
    fn contacts_near(
        &self,
        target: &NodeId,
        exclude: &NodeId,
        family: Family,
    ) -> BoundedList<Contact, K> {
        BoundedList(
            self.table
                .closest_of(target, K + 1, Some(family))
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
}

/// The response datagram from `local` to `to`, its lists shortened (records
/// first, then contacts) until it fits `limit` bytes when one is given.
pub(super) fn response_frame(
    local: NodeId,
    to: SocketAddr,
    txid: TxId,
    mut body: Response,
    limit: Option<usize>,
) -> Vec<u8> {
    let frame = |body: &Response| {
        encode_frame(&Message::Response {
            txid,
            sender: local,
            observed: WireAddr::from(to),
            body: body.clone(),
        })
    };
    let mut payload = frame(&body);
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
        payload = frame(&body);
    }
    payload
}

/// Fisher–Yates with the node's seeded generator.
fn shuffle<T>(rng: &mut Rng, items: &mut [T]) {
    for i in (1..items.len()).rev() {
        let j = (u64::from_be_bytes(rng.bytes()) % (i as u64 + 1)) as usize;
        items.swap(i, j);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dht::budget::SIGNATURE_CHECKS;
    use crate::dht::routing::Peer;
    use crate::dht::wire::decode_frame;
    use crate::identity::Identity;
    use std::time::Duration;

    const LOCAL: NodeId = NodeId([0x80; 32]);

    struct World {
        now: Instant,
        table: RoutingTable,
        store: Store,
        tokens: Tokens,
        rng: Rng,
        signature_checks: RateLimiter<()>,
    }

    impl World {
        fn new() -> Self {
            let now = Instant::now();
            let mut table = RoutingTable::new(LOCAL);
            for i in 1..=12u8 {
                table.on_answered(
                    now,
                    Peer {
                        id: node(i),
                        addr: addr(i),
                    },
                );
            }
            Self {
                now,
                table,
                store: Store::default(),
                tokens: Tokens::new(now, [1; 32], [2; 32]),
                rng: Rng::from_seed([3; 32]),
                signature_checks: RateLimiter::new(crate::dht::budget::SIGNATURE_CHECKS),
            }
        }

        /// Answers the request in `frame` (bytes, as received) from `source`.
        fn answer(&mut self, source: SocketAddr, frame: &[u8]) -> Answer {
            self.try_answer(source, frame).expect("answered")
        }

        fn try_answer(&mut self, source: SocketAddr, frame: &[u8]) -> Result<Answer, DhtDrop> {
            let Ok(Message::Request {
                txid, sender, body, ..
            }) = decode_frame(frame)
            else {
                panic!("not a request frame");
            };
            Server {
                local: LOCAL,
                table: &self.table,
                store: &mut self.store,
                tokens: &self.tokens,
                rng: &mut self.rng,
                signature_checks: &mut self.signature_checks,
            }
            .answer(self.now, source, txid, sender, body)
        }
    }

    /// Node `i`: close to us in the low bits, so twelve of them fit the
    /// routing table's buckets.
    fn node(i: u8) -> NodeId {
        let mut bytes = LOCAL.0;
        bytes[31] ^= i;
        NodeId(bytes)
    }

    fn addr(last: u8) -> SocketAddr {
        SocketAddr::from(([192, 0, last, 1], 4000))
    }

    fn request(sender: u8, body: Request) -> Vec<u8> {
        encode_frame(&Message::Request {
            txid: [sender; 8],
            sender: node(sender),
            body,
            padding: Blob::default(),
        })
    }

    /// Announcer `i`'s key; it announces from `addr(i)`.
    fn member(i: u8) -> Identity {
        Identity::from_seed([i; 32])
    }

    fn signed_request(sender: NodeId, body: Request) -> Vec<u8> {
        encode_frame(&Message::Request {
            txid: [1; 8],
            sender,
            body,
            padding: Blob::default(),
        })
    }

    fn announce(world: &mut World, i: u8, record: &[u8]) -> Answer {
        let token = world.tokens.issue(addr(i));
        let body = announce::signed_announce(&member(i), NodeId([9; 32]), token, record);
        world.answer(addr(i), &signed_request(member(i).node_id(), body))
    }

    #[test]
    fn find_node_answers_the_k_closest_without_the_requester() {
        let mut world = World::new();
        let frame = request(3, Request::FindNode { target: node(3) });
        let Response::Nodes { nodes } = world.answer(addr(3), &frame).response else {
            panic!("expected Nodes");
        };
        assert_eq!(nodes.0.len(), K);
        assert!(nodes.0.iter().all(|c| c.id != node(3)));
        let ids: Vec<NodeId> = nodes.0.iter().map(|c| c.id).collect();
        let mut sorted = ids.clone();
        sorted.sort_by_key(|id| id.distance(&node(3)));
        assert_eq!(ids, sorted, "nearest first");
    }

    #[test]
    fn contacts_go_only_to_requesters_of_their_family() {
        let mut world = World::new();
        // Node 20 is known at an IPv6 address; the other twelve at IPv4.
        let v6_node = Peer {
            id: node(20),
            addr: "[2001:db8::20]:4000".parse().unwrap(),
        };
        world.table.on_answered(world.now, v6_node);
        let frame = request(3, Request::FindNode { target: node(20) });
        let Response::Nodes { nodes } = world.answer(addr(3), &frame).response else {
            panic!("expected Nodes");
        };
        assert!(
            nodes.0.iter().all(|c| SocketAddr::from(c.addr).is_ipv4()),
            "an IPv4 requester gets IPv4 contacts only: {nodes:?}"
        );
        let v6_requester: SocketAddr = "[2001:db8::3]:4000".parse().unwrap();
        let Response::Peers { nodes, .. } = world
            .answer(
                v6_requester,
                &request(3, Request::GetPeers { topic: node(20) }),
            )
            .response
        else {
            panic!("expected Peers");
        };
        let ids: Vec<NodeId> = nodes.0.iter().map(|c| c.id).collect();
        assert_eq!(ids, [node(20)], "an IPv6 requester gets the IPv6 contact");
    }

    #[test]
    fn announces_must_prove_their_sender_and_the_old_form_is_unsupported() {
        let mut world = World::new();
        let token = world.tokens.issue(addr(6));
        let topic = NodeId([9; 32]);
        // Mallory (6) signs with its own key but claims Alice's (4) ID.
        let forged = signed_request(
            member(4).node_id(),
            announce::signed_announce(&member(6), topic, token, b"evil"),
        );
        assert_eq!(
            world.try_answer(addr(6), &forged).err(),
            Some(DhtDrop::ForgedAnnounce)
        );
        let unsigned = signed_request(
            member(4).node_id(),
            Request::Announce {
                topic,
                token,
                record: Blob(b"evil".to_vec()),
            },
        );
        assert_eq!(
            world.answer(addr(6), &unsigned).response,
            Response::Error(ErrorCode::Unsupported)
        );
        assert_eq!(world.store.len(), 0, "nothing stored");
    }

    #[test]
    fn the_token_is_checked_before_the_signature_and_signatures_have_a_budget() {
        let mut world = World::new();
        let topic = NodeId([9; 32]);
        // Forged and without a token of its source: answered BadToken,
        // with no signature check spent.
        let forged = signed_request(
            member(4).node_id(),
            announce::signed_announce(&member(6), topic, world.tokens.issue(addr(5)), b"evil"),
        );
        for _ in 0..2 * SIGNATURE_CHECKS.burst {
            assert_eq!(
                world.answer(addr(6), &forged).response,
                Response::Error(ErrorCode::BadToken)
            );
        }
        // Forged with a valid token: each costs a check, until the budget
        // is spent; then even a genuine one waits for the next second.
        let token = world.tokens.issue(addr(6));
        let forged = signed_request(
            member(4).node_id(),
            announce::signed_announce(&member(6), topic, token, b"evil"),
        );
        for _ in 0..SIGNATURE_CHECKS.burst {
            assert_eq!(
                world.try_answer(addr(6), &forged).err(),
                Some(DhtDrop::ForgedAnnounce),
                "within the budget"
            );
        }
        assert_eq!(
            world.try_answer(addr(6), &forged).err(),
            Some(DhtDrop::OverBudget)
        );
        let genuine = announce::signed_announce(&member(6), topic, token, b"ok");
        let genuine = signed_request(member(6).node_id(), genuine);
        assert_eq!(
            world.try_answer(addr(6), &genuine).err(),
            Some(DhtDrop::OverBudget)
        );
        world.now += Duration::from_secs(1);
        assert_eq!(
            world.answer(addr(6), &genuine).response,
            Response::Announced
        );
    }

    #[test]
    fn announces_need_the_token_of_their_source_and_push_to_members() {
        let mut world = World::new();
        let body = announce::signed_announce(
            &member(4),
            NodeId([9; 32]),
            world.tokens.issue(addr(5)),
            b"1",
        );
        assert_eq!(
            world
                .answer(addr(4), &signed_request(member(4).node_id(), body))
                .response,
            Response::Error(ErrorCode::BadToken)
        );
        let first = announce(&mut world, 4, b"first");
        assert_eq!(first.response, Response::Announced);
        assert!(first.sends.is_empty(), "nobody to tell yet");
        assert!(
            matches!(&first.events[..], [DhtEvent::Stored { record, .. }] if record == b"first")
        );
        let second = announce(&mut world, 5, b"second");
        assert_eq!(second.sends.len(), 1);
        let (to, push) = &second.sends[0];
        assert_eq!(*to, addr(4));
        assert!(matches!(
            decode_frame(push),
            Ok(Message::Push { record, .. }) if record.0 == b"second"
        ));
        let again = announce(&mut world, 5, b"second");
        assert!(
            again.sends.is_empty() && again.events.is_empty(),
            "a refresh is quiet"
        );
    }

    #[test]
    fn get_peers_returns_others_records_and_a_token_for_the_source() {
        let mut world = World::new();
        announce(&mut world, 4, b"four");
        announce(&mut world, 5, b"five");
        let frame = signed_request(
            member(4).node_id(),
            Request::GetPeers {
                topic: NodeId([9; 32]),
            },
        );
        let Response::Peers { token, records, .. } = world.answer(addr(4), &frame).response else {
            panic!("expected Peers");
        };
        assert!(world.tokens.check(addr(4), &token));
        assert_eq!(
            records.0,
            [Blob(b"five".to_vec())],
            "not the requester's own"
        );
    }

    #[test]
    fn reach_me_asks_a_contact_at_another_ip_to_probe_the_requester() {
        let mut world = World::new();
        // A requester at a new IP: any contact will do, the closest first.
        let stranger = SocketAddr::from(([198, 51, 100, 9], 5000));
        let answer = world.answer(stranger, &request(3, Request::ReachMe));
        assert_eq!(answer.response, Response::Pong);
        assert_eq!(answer.requests.len(), PROBES_PER_REACH_ME);
        let mut ips = Vec::new();
        for (to, id, body) in &answer.requests {
            let Request::Probe { target, txid } = body else {
                panic!("a Probe: {body:?}");
            };
            assert_eq!(SocketAddr::from(*target), stranger, "the address we saw");
            assert_eq!(*txid, [3; 8], "the ReachMe's transaction");
            assert_ne!(to.ip(), stranger.ip());
            assert!(!ips.contains(&to.ip()), "two different IPs");
            ips.push(to.ip());
            assert_eq!(world.table.address_of(id), Some(*to));
        }
        assert!(answer.sends.is_empty());
        // Every contact shares the requester's IP: nobody to ask.
        let mut alone = World::new();
        alone.table = RoutingTable::new(LOCAL);
        alone.table.on_answered(
            alone.now,
            Peer {
                id: node(1),
                addr: SocketAddr::from(([198, 51, 100, 9], 6000)),
            },
        );
        let answer = alone.answer(stranger, &request(3, Request::ReachMe));
        assert_eq!(answer.response, Response::Error(ErrorCode::UnknownTarget));
        assert!(answer.requests.is_empty());
    }

    #[test]
    fn a_probe_sends_one_pong_with_the_given_transaction_to_the_target() {
        let mut world = World::new();
        let target = SocketAddr::from(([198, 51, 100, 9], 5000));
        let probe = request(
            2,
            Request::Probe {
                target: WireAddr::from(target),
                txid: [0xAB; 8],
            },
        );
        let answer = world.answer(addr(2), &probe);
        assert_eq!(answer.response, Response::Pong);
        let [(to, pong)] = &answer.sends[..] else {
            panic!("one datagram");
        };
        assert_eq!(*to, target);
        assert!(
            pong.len() < probe.len(),
            "never more than it was asked with"
        );
        assert_eq!(
            decode_frame(pong),
            Ok(Message::Response {
                txid: [0xAB; 8],
                sender: LOCAL,
                observed: WireAddr::from(target),
                body: Response::Pong,
            })
        );
    }

    #[test]
    fn signals_are_delivered_here_forwarded_or_refused() {
        let mut world = World::new();
        announce(&mut world, 4, b"four");
        let to_us = request(
            6,
            Request::Signal {
                to: LOCAL,
                payload: Blob(vec![7]),
            },
        );
        let answer = world.answer(addr(6), &to_us);
        assert_eq!(answer.response, Response::Relayed);
        assert!(matches!(
            &answer.events[..],
            [DhtEvent::Delivered { direct: true, relay, .. }] if *relay == addr(6)
        ));
        let to_member = request(
            6,
            Request::Signal {
                to: member(4).node_id(),
                payload: Blob(vec![8]),
            },
        );
        let answer = world.answer(addr(6), &to_member);
        assert_eq!(answer.response, Response::Relayed);
        let [(to, deliver)] = &answer.sends[..] else {
            panic!("one Deliver");
        };
        assert_eq!(*to, addr(4));
        assert!(matches!(
            decode_frame(deliver),
            Ok(Message::Deliver { from, payload, .. }) if from == node(6) && payload.0 == [8]
        ));
        let to_stranger = request(
            6,
            Request::Signal {
                to: NodeId([0x55; 32]),
                payload: Blob(vec![9]),
            },
        );
        assert_eq!(
            world.answer(addr(6), &to_stranger).response,
            Response::Error(ErrorCode::UnknownTarget)
        );
    }

    #[test]
    fn answers_shrink_to_the_amplification_budget() {
        let mut world = World::new();
        let frame = request(3, Request::FindNode { target: node(3) });
        let body = world.answer(addr(3), &frame).response;
        let full = response_frame(LOCAL, addr(3), [3; 8], body.clone(), None);
        let limited = response_frame(LOCAL, addr(3), [3; 8], body, Some(full.len() - 1));
        assert!(limited.len() < full.len());
        let Ok(Message::Response {
            body: Response::Nodes { nodes },
            observed,
            ..
        }) = decode_frame(&limited)
        else {
            panic!("expected Nodes");
        };
        assert_eq!(nodes.0.len(), K - 1, "one contact fewer");
        assert_eq!(
            observed,
            WireAddr::from(addr(3)),
            "the requester learns its address"
        );
    }

    #[test]
    fn length_constants_match_the_real_encoding() {
        use crate::dht::engine::MIN_RESPONSE_LEN;
        use crate::dht::rpc::{FIND_NODE_REQUEST_LEN, GET_PEERS_REQUEST_LEN, PING_FRAME_LEN};
        use crate::limits::AMPLIFICATION_FACTOR;
        let v6: SocketAddr = "[2001:db8::1]:4000".parse().unwrap();
        let pong = response_frame(LOCAL, v6, [0; 8], Response::Pong, None);
        assert_eq!(pong.len(), MIN_RESPONSE_LEN, "the largest Pong");
        let v4_low_port = SocketAddr::from(([192, 0, 2, 1], 9));
        assert!(
            response_frame(LOCAL, v4_low_port, [0; 8], Response::Pong, None).len() < pong.len()
        );

        // The worst case a padded request must pay for: the verification
        // ping plus a full answer of eight IPv6 contacts to an IPv6 address.
        let contacts = || {
            BoundedList(
                (0..K as u8)
                    .map(|i| Contact {
                        id: NodeId([i; 32]),
                        addr: WireAddr::V6([i; 16], 65535),
                    })
                    .collect(),
            )
        };
        let nodes = response_frame(
            LOCAL,
            v6,
            [0; 8],
            Response::Nodes { nodes: contacts() },
            None,
        );
        assert!(PING_FRAME_LEN + nodes.len() <= AMPLIFICATION_FACTOR * FIND_NODE_REQUEST_LEN);
        assert!(
            PING_FRAME_LEN + nodes.len() + AMPLIFICATION_FACTOR
                > AMPLIFICATION_FACTOR * FIND_NODE_REQUEST_LEN,
            "the padding is the least that pays for it ({} + {})",
            PING_FRAME_LEN,
            nodes.len()
        );
        // Records within the reply's byte budget, in the most length
        // prefixes that budget allows (eight records, the most per reply).
        let records = BoundedList(
            (0..MAX_RECORDS_PER_REPLY)
                .map(|_| Blob(vec![0; RECORD_BYTES_PER_REPLY / MAX_RECORDS_PER_REPLY]))
                .collect(),
        );
        let peers = Response::Peers {
            token: [0; 16],
            records,
            nodes: contacts(),
        };
        let peers = response_frame(LOCAL, v6, [0; 8], peers, None);
        assert!(PING_FRAME_LEN + peers.len() <= AMPLIFICATION_FACTOR * GET_PEERS_REQUEST_LEN);
        assert!(
            peers.len() <= 1280 - 48,
            "a full Peers answer fits one minimum-MTU IPv6 packet"
        );
    }
}
