//! Requests we send and the matching of their responses: transaction IDs,
//! destinations, deadlines, and the padding that earns a full answer.
//!
//! Every request has a random transaction ID, a destination and a deadline
//! ([`REQUEST_TIMEOUT`]); a response counts only if it echoes an ID in
//! flight and comes from that destination. An unanswered request to an
//! address that has answered before is sent again, the same bytes,
//! [`REQUEST_RESENDS`] times at [`RESEND_INTERVAL`] before its deadline,
//! so a lossy path costs a third of a second rather than a failed request
//! (and, for a signal, a demoted signal path). The engine chooses which
//! requests may be resent: never one to an unproven address, which would
//! multiply what a forged source or a fake contact makes us send. At most [`MAX_PENDING`] requests
//! are in flight. `FindNode` and `GetPeers` are padded with zero bytes so
//! that [`AMPLIFICATION_FACTOR`](crate::limits::AMPLIFICATION_FACTOR) times
//! their size covers a full answer to an address the responder has not yet
//! seen answer (`protocol-spec.md` §5.3).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::event::{DhtDrop, LookupId};
use super::lookup::REQUEST_TIMEOUT;
use super::requests::{Requests, Unmatched};
use super::wire::{Blob, Message, Request, TxId, encode_frame};
use crate::id::NodeId;

/// Times an unanswered request is sent again before its deadline.
pub const REQUEST_RESENDS: u8 = 2;
/// Time between sends of one request: the timeout split evenly between
/// the first send and its resends.
pub const RESEND_INTERVAL: Duration = REQUEST_TIMEOUT
    .checked_div(1 + REQUEST_RESENDS as u32)
    .expect("nonzero");

/// Requests in flight at once; further requests are not sent.
pub const MAX_PENDING: usize = 512;
/// Requests that others' requests made us send (verification pings,
/// probes for a `ReachMe`) are sent only while fewer than this many
/// requests of any kind are in flight: the rest of the table is kept for
/// the node's own work, whatever a flood does (`protocol-spec.md` §7.2).
pub const REMOTE_TRIGGERED_ROOM: usize = MAX_PENDING / 4;
/// Size of a `Ping` request datagram.
pub const PING_FRAME_LEN: usize = 2 + 1 + 8 + 32 + 1 + 1;
/// `FindNode` requests are padded to this size, so that 3 × it covers a
/// full answer (8 IPv6 contacts) and a verification ping.
pub const FIND_NODE_REQUEST_LEN: usize = 176;
/// `GetPeers` requests are padded to this size, so that 3 × it covers a
/// full answer ([`RECORD_BYTES_PER_REPLY`](super::RECORD_BYTES_PER_REPLY)
/// of records, 8 IPv6 contacts) and a ping.
pub const GET_PEERS_REQUEST_LEN: usize = 480;
/// `ReachMe` requests are padded to this size, and shorter ones are not
/// forwarded: the probe `Pong` it makes a third node send (at most 63
/// bytes, to an IPv6 target) is then smaller than the request, even when
/// the request's source is forged.
pub const REACH_ME_REQUEST_LEN: usize = 128;

/// Why we sent a request: what its answer or failure feeds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Purpose {
    /// A ping: to a bootstrap node, or to check a node before it becomes
    /// an entry.
    Ping {
        /// To a bootstrap node.
        bootstrap: bool,
    },
    /// A ping to a stranger that sent us a request: it becomes an entry
    /// only if it answers.
    Verify,
    /// A step of a lookup.
    Lookup(LookupId),
    /// An announce of our record.
    Announce,
    /// A signal for this recipient.
    Signal(NodeId),
    /// Our `ReachMe`: its answer says whether a third node was asked.
    ReachMe,
    /// A `Probe` we sent for another node's `ReachMe`.
    Probe,
}

/// A request in flight.
pub(super) type Pending = super::requests::Pending<Purpose>;

/// What resending a request in flight takes.
struct Resend {
    frame: Vec<u8>,
    resends_left: u8,
    resend_at: Instant,
}

/// The requests in flight, by transaction ID.
#[derive(Default)]
pub(super) struct Rpc {
    pending: Requests<TxId, Purpose, Resend>,
}

impl Rpc {
    /// Requests in flight.
    pub(super) fn len(&self) -> usize {
        self.pending.len()
    }

    /// True if a request to `addr` is in flight.
    pub(super) fn awaits(&self, addr: SocketAddr) -> bool {
        self.pending.awaits(addr)
    }

    /// True if a request of lookup `id` is in flight.
    pub(super) fn lookup_in_flight(&self, id: LookupId) -> bool {
        self.pending.any(|purpose| *purpose == Purpose::Lookup(id))
    }

    /// The frame for `body` from `sender` under `txid`, remembered as in
    /// flight and sent again up to `resends` times; `None` (a failure to
    /// report) when [`MAX_PENDING`] requests are already out.
    pub(super) fn request(
        &mut self,
        now: Instant,
        txid: TxId,
        sender: NodeId,
        pending: Pending,
        body: Request,
        resends: u8,
    ) -> Option<Vec<u8>> {
        if self.pending.len() >= MAX_PENDING {
            return None;
        }
        let frame = padded_frame(txid, sender, body);
        self.pending.insert(
            txid,
            Pending {
                deadline: now + REQUEST_TIMEOUT,
                ..pending
            },
            Resend {
                frame: frame.clone(),
                resends_left: resends,
                resend_at: now + RESEND_INTERVAL,
            },
        );
        Some(frame)
    }

    /// Requests due to be sent again at `now`: where to, and the bytes.
    pub(super) fn take_resends(&mut self, now: Instant) -> Vec<(SocketAddr, Vec<u8>)> {
        let mut due = Vec::new();
        for (pending, resend) in self.pending.iter_mut() {
            if resend.resends_left > 0 && now >= resend.resend_at {
                resend.resends_left -= 1;
                resend.resend_at += RESEND_INTERVAL;
                due.push((pending.to, resend.frame.clone()));
            }
        }
        due
    }

    /// The request a response from `source` under `txid` answers, taken out
    /// of flight.
    pub(super) fn take_answered(
        &mut self,
        txid: &TxId,
        source: SocketAddr,
    ) -> Result<Pending, DhtDrop> {
        self.pending
            .take_answered(txid, source)
            .map_err(|unmatched| match unmatched {
                Unmatched::UnknownTransaction => DhtDrop::UnknownTransaction,
                Unmatched::WrongSource => DhtDrop::WrongSource,
            })
    }

    /// Requests past their deadline at `now`, taken out of flight in
    /// transaction-ID order.
    pub(super) fn take_expired(&mut self, now: Instant) -> Vec<Pending> {
        self.pending.take_expired(now)
    }

    /// The earliest deadline or resend in flight.
    pub(super) fn poll_timeout(&self) -> Option<Instant> {
        self.pending
            .iter()
            .map(|(pending, resend)| {
                if resend.resends_left > 0 {
                    resend.resend_at.min(pending.deadline)
                } else {
                    pending.deadline
                }
            })
            .min()
    }
}

/// The request frame, padded for `FindNode` and `GetPeers`.
fn padded_frame(txid: TxId, sender: NodeId, body: Request) -> Vec<u8> {
    let padded_len = match body {
        Request::FindNode { .. } => FIND_NODE_REQUEST_LEN,
        Request::GetPeers { .. } => GET_PEERS_REQUEST_LEN,
        Request::ReachMe => REACH_ME_REQUEST_LEN,
        Request::Ping
        | Request::Probe { .. }
        | Request::Announce { .. }
        | Request::Signal { .. }
        | Request::SignedAnnounce { .. } => 0,
    };
    let mut message = Message::Request {
        txid,
        sender,
        body,
        padding: Blob::default(),
    };
    // The unpadded frame holds the empty padding's one-byte length prefix;
    // a padding of 251 bytes or more takes a three-byte prefix (bincode
    // varint), so pick the length whose prefix makes the sum exact.
    let base = encode_frame(&message).len() - 1;
    let padding_len = [1, 3]
        .into_iter()
        .filter_map(|prefix| padded_len.checked_sub(base + prefix))
        .find(|&n| varint_len(n) + n + base == padded_len)
        .unwrap_or(0);
    if let Message::Request { padding, .. } = &mut message {
        padding.0 = vec![0; padding_len];
    }
    encode_frame(&message)
}

/// Bytes of bincode's varint encoding of a length below 2^16.
fn varint_len(n: usize) -> usize {
    if n < 251 { 1 } else { 3 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dht::wire::decode_frame;

    fn addr(last: u8) -> SocketAddr {
        SocketAddr::from(([192, 0, 2, last], 4000))
    }

    fn ping_to(to: SocketAddr) -> Pending {
        Pending {
            to,
            id: None,
            purpose: Purpose::Ping { bootstrap: false },
            deadline: Instant::now(),
        }
    }

    #[test]
    fn responses_match_by_id_and_source_once() {
        let now = Instant::now();
        let mut rpc = Rpc::default();
        let frame = rpc
            .request(
                now,
                [1; 8],
                NodeId([2; 32]),
                ping_to(addr(1)),
                Request::Ping,
                REQUEST_RESENDS,
            )
            .unwrap();
        assert!(matches!(
            decode_frame(&frame),
            Ok(Message::Request {
                txid: [1, 1, 1, 1, 1, 1, 1, 1],
                body: Request::Ping,
                ..
            })
        ));
        assert!(rpc.awaits(addr(1)));
        assert_eq!(rpc.poll_timeout(), Some(now + RESEND_INTERVAL));
        assert_eq!(
            rpc.take_answered(&[9; 8], addr(1)).unwrap_err(),
            DhtDrop::UnknownTransaction
        );
        assert_eq!(
            rpc.take_answered(&[1; 8], addr(2)).unwrap_err(),
            DhtDrop::WrongSource
        );
        assert_eq!(rpc.take_answered(&[1; 8], addr(1)).unwrap().to, addr(1));
        assert_eq!(
            rpc.take_answered(&[1; 8], addr(1)).unwrap_err(),
            DhtDrop::UnknownTransaction
        );
    }

    #[test]
    fn unanswered_requests_expire_at_their_deadline() {
        let now = Instant::now();
        let mut rpc = Rpc::default();
        for i in 0..3u8 {
            rpc.request(
                now,
                [i; 8],
                NodeId([0; 32]),
                ping_to(addr(i)),
                Request::Ping,
                0,
            )
            .unwrap();
        }
        assert!(rpc.take_expired(now).is_empty());
        let expired = rpc.take_expired(now + REQUEST_TIMEOUT);
        assert_eq!(
            expired.iter().map(|p| p.to).collect::<Vec<_>>(),
            [addr(0), addr(1), addr(2)]
        );
        assert_eq!(rpc.len(), 0);
    }

    #[test]
    fn an_unanswered_request_is_sent_again_twice_then_expires() {
        let now = Instant::now();
        let mut rpc = Rpc::default();
        let frame = rpc
            .request(
                now,
                [5; 8],
                NodeId([0; 32]),
                ping_to(addr(5)),
                Request::Ping,
                REQUEST_RESENDS,
            )
            .unwrap();
        let mut resent = Vec::new();
        let mut at = now;
        while let Some(next) = rpc.poll_timeout() {
            at = next;
            for (to, bytes) in rpc.take_resends(at) {
                assert_eq!(
                    (to, &bytes),
                    (addr(5), &frame),
                    "the same bytes, same place"
                );
                resent.push(at - now);
            }
            if !rpc.take_expired(at).is_empty() {
                break;
            }
        }
        assert_eq!(resent, [RESEND_INTERVAL, 2 * RESEND_INTERVAL]);
        assert_eq!(at - now, REQUEST_TIMEOUT);
        assert!(RESEND_INTERVAL * u32::from(REQUEST_RESENDS) < REQUEST_TIMEOUT);
    }

    #[test]
    fn a_request_without_resends_is_sent_once() {
        let now = Instant::now();
        let mut rpc = Rpc::default();
        rpc.request(
            now,
            [7; 8],
            NodeId([0; 32]),
            ping_to(addr(7)),
            Request::Ping,
            0,
        )
        .unwrap();
        assert_eq!(rpc.poll_timeout(), Some(now + REQUEST_TIMEOUT));
        assert!(rpc.take_resends(now + REQUEST_TIMEOUT).is_empty());
    }

    #[test]
    fn an_answered_request_is_not_sent_again() {
        let now = Instant::now();
        let mut rpc = Rpc::default();
        rpc.request(
            now,
            [6; 8],
            NodeId([0; 32]),
            ping_to(addr(6)),
            Request::Ping,
            REQUEST_RESENDS,
        )
        .unwrap();
        rpc.take_answered(&[6; 8], addr(6)).unwrap();
        assert!(rpc.take_resends(now + REQUEST_TIMEOUT).is_empty());
        assert_eq!(rpc.poll_timeout(), None);
    }

    #[test]
    fn in_flight_requests_are_capped() {
        let now = Instant::now();
        let mut rpc = Rpc::default();
        for i in 0..MAX_PENDING {
            let txid = (i as u64).to_be_bytes();
            assert!(
                rpc.request(
                    now,
                    txid,
                    NodeId([0; 32]),
                    ping_to(addr(1)),
                    Request::Ping,
                    0
                )
                .is_some()
            );
        }
        let refused = rpc.request(
            now,
            [0xff; 8],
            NodeId([0; 32]),
            ping_to(addr(9)),
            Request::Ping,
            0,
        );
        assert!(refused.is_none());
        assert!(!rpc.awaits(addr(9)));
    }

    #[test]
    fn lookup_requests_are_padded() {
        let find = padded_frame(
            [0; 8],
            NodeId([0; 32]),
            Request::FindNode {
                target: NodeId([1; 32]),
            },
        );
        let get = padded_frame(
            [0; 8],
            NodeId([0; 32]),
            Request::GetPeers {
                topic: NodeId([1; 32]),
            },
        );
        assert_eq!(
            (find.len(), get.len()),
            (FIND_NODE_REQUEST_LEN, GET_PEERS_REQUEST_LEN)
        );
        let ping = padded_frame([0; 8], NodeId([0; 32]), Request::Ping);
        assert_eq!(ping.len(), PING_FRAME_LEN);
    }
}
