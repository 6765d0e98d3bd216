//! DHT datagram format: `[DHT_FRAME_TAG, WIRE_VERSION] ++ bincode(Message)`.
//!
//! This module is the only place that knows the encoding (bincode 2.0.1,
//! serde integration, `config::standard()`: little-endian varints, enum
//! variants as varint indices, sequences and byte strings as varint length +
//! items). Decoding borrows the datagram, is limited to
//! [`MAX_DATAGRAM_LEN`] bytes, rejects trailing bytes, and allocates at most
//! what the input holds: byte strings are copied at their exact length and
//! every list has a hard cap checked while reading, never a pre-allocation
//! from a length on the wire.

use std::fmt;

use serde::{Deserialize, Serialize};

pub use crate::codec::{Blob, BoundedList, WireAddr};
use crate::codec::{CodecError, decode_value, encode_value};
use crate::demux::DHT_FRAME_TAG;
use crate::id::NodeId;
use crate::identity::{PUBLIC_KEY_LEN, SIGNATURE_LEN};
use crate::limits::MAX_DATAGRAM_LEN;

/// Version byte after the tag; frames with another version are dropped.
pub const WIRE_VERSION: u8 = 1;
/// Contacts in one reply (Kademlia's k).
pub const K: usize = 8;
/// Sealed records in one `Peers` reply.
pub const MAX_RECORDS_PER_REPLY: usize = 8;
/// Largest sealed record accepted.
pub const MAX_RECORD_LEN: usize = 400;
/// Largest sealed signal payload accepted.
pub const MAX_SIGNAL_LEN: usize = 1200;
/// Length of an announce token.
pub const TOKEN_LEN: usize = 16;
/// Most padding bytes in a request.
pub const MAX_PADDING: usize = 512;

/// A transaction ID pairing a reply with its request.
pub type TxId = [u8; 8];

/// A DHT node: its ID and the address it was seen at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    /// The node's ID.
    pub id: NodeId,
    /// Where it answers.
    pub addr: WireAddr,
}

/// A request; the reply echoes its transaction ID.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// Are you there?
    Ping,
    /// The k nodes you know closest to `target`.
    FindNode {
        /// The key looked up.
        target: NodeId,
    },
    /// The records you store under `topic`, a token for announcing, and the
    /// k nodes you know closest to it.
    GetPeers {
        /// The meeting topic.
        topic: NodeId,
    },
    /// The unauthenticated announce of wire version 1's first release:
    /// still decoded, always answered `Error(Unsupported)` and never stored
    /// (anyone could announce under anyone's ID with it).
    Announce {
        /// The meeting topic.
        topic: NodeId,
        /// Token from a recent `Peers` reply to this source address.
        token: [u8; TOKEN_LEN],
        /// The sealed record.
        record: Blob<MAX_RECORD_LEN>,
    },
    /// Forward `payload` to node `to`, which announced through you.
    Signal {
        /// The recipient.
        to: NodeId,
        /// Sealed signaling payload, opaque to the relay.
        payload: Blob<MAX_SIGNAL_LEN>,
    },
    /// Store `record` under `topic` for the sender, who proves it owns its
    /// node ID: the ID is SHA-256 of `public_key`, and `signature` is that
    /// key's Ed25519 signature over the announce's signing input
    /// (`protocol-spec.md` §5.3).
    SignedAnnounce {
        /// The meeting topic.
        topic: NodeId,
        /// Token from a recent `Peers` reply to this source address.
        token: [u8; TOKEN_LEN],
        /// The sealed record.
        record: Blob<MAX_RECORD_LEN>,
        /// The announcer's Ed25519 public key.
        public_key: [u8; PUBLIC_KEY_LEN],
        /// Its signature; anything but 64 bytes fails to verify.
        signature: Blob<SIGNATURE_LEN>,
    },
    /// Ask a third node to send one datagram, unasked, to the address
    /// this request came from: it arrives only if the sender's NAT lets
    /// unsolicited datagrams in (`protocol-spec.md` §5.8). Answered `Pong`
    /// when a third node was asked, `Error(UnknownTarget)` when there is
    /// none.
    ReachMe,
    /// Send, on behalf of a `ReachMe` requester, one `Pong` response with
    /// transaction ID `txid` to `target`. Answered `Pong`.
    Probe {
        /// Where to send it: the requester's address as the asking node
        /// saw it.
        target: WireAddr,
        /// The `ReachMe` request's transaction ID, by which the requester
        /// knows the datagram.
        txid: TxId,
    },
}

/// Discriminant of the last [`Request`] variant this version knows; a
/// request with a higher one is answered `Error(Unsupported)`.
pub const LAST_REQUEST_VARIANT: u32 = 7;

/// Why a request failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ErrorCode {
    /// Announce token missing, expired or for another address.
    BadToken,
    /// Signal target unknown to this relay.
    UnknownTarget,
    /// A storage cap was reached.
    StoreFull,
    /// The request is of a kind this node does not serve: a variant it does
    /// not know, or the retired unauthenticated `Announce`.
    Unsupported,
}

/// A reply to a [`Request`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    /// Answer to `Ping`.
    Pong,
    /// Answer to `FindNode`.
    Nodes {
        /// Closest known nodes, nearest first.
        nodes: BoundedList<Contact, K>,
    },
    /// Answer to `GetPeers`.
    Peers {
        /// Token for a later `Announce` from the same address.
        token: [u8; TOKEN_LEN],
        /// Sealed records stored under the topic.
        records: BoundedList<Blob<MAX_RECORD_LEN>, MAX_RECORDS_PER_REPLY>,
        /// Closest known nodes to the topic, nearest first.
        nodes: BoundedList<Contact, K>,
    },
    /// Answer to `Announce`: stored.
    Announced,
    /// Answer to `Signal`: forwarded.
    Relayed,
    /// The request failed.
    Error(ErrorCode),
}

/// Everything a DHT datagram can carry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// A request expecting a response.
    Request {
        /// Transaction ID.
        txid: TxId,
        /// The sender's node ID.
        sender: NodeId,
        /// What is asked.
        body: Request,
        /// Zero bytes that make the request large enough to earn a full
        /// answer from a node that has not yet seen this address answer
        /// (answers to unproven addresses are at most 3 × the request).
        padding: Blob<MAX_PADDING>,
    },
    /// The response to a request.
    Response {
        /// The request's transaction ID.
        txid: TxId,
        /// The responder's node ID.
        sender: NodeId,
        /// The address the request came from, as the responder saw it.
        observed: WireAddr,
        /// The answer.
        body: Response,
    },
    /// A signal forwarded by a relay to its recipient (no response).
    Deliver {
        /// The relay's node ID.
        sender: NodeId,
        /// The node that sent the signal.
        from: NodeId,
        /// Sealed signaling payload.
        payload: Blob<MAX_SIGNAL_LEN>,
    },
    /// A storing node tells a member about a record newly stored under a
    /// topic the member announced to (no response).
    Push {
        /// The storing node's ID.
        sender: NodeId,
        /// The meeting topic.
        topic: NodeId,
        /// The new sealed record.
        record: Blob<MAX_RECORD_LEN>,
    },
}

/// Why a datagram is not a valid DHT frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// Shorter than the two-byte prefix, or not starting with the tag.
    NotDht,
    /// A version this node does not speak.
    UnknownVersion(u8),
    /// The bincode body did not decode.
    Body(CodecError),
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotDht => f.write_str("not a DHT frame"),
            Self::UnknownVersion(version) => write!(f, "unknown DHT wire version {version}"),
            Self::Body(error) => write!(f, "bad DHT message: {error}"),
        }
    }
}

impl std::error::Error for FrameError {}

/// The datagram for `message`.
pub fn encode_frame(message: &Message) -> Vec<u8> {
    let mut frame = vec![DHT_FRAME_TAG, WIRE_VERSION];
    frame.extend_from_slice(&encode_value(message));
    frame
}

/// The message in a datagram.
pub fn decode_frame(datagram: &[u8]) -> Result<Message, FrameError> {
    match datagram {
        [DHT_FRAME_TAG, WIRE_VERSION, body @ ..] => {
            decode_value(body, MAX_DATAGRAM_LEN).map_err(FrameError::Body)
        }
        [DHT_FRAME_TAG, version, ..] => Err(FrameError::UnknownVersion(*version)),
        _ => Err(FrameError::NotDht),
    }
}

/// The transaction ID of a request frame whose body is a [`Request`]
/// variant after [`LAST_REQUEST_VARIANT`] (from a newer version), so it can
/// be answered `Error(Unsupported)` rather than left to time out; `None` for
/// any other datagram. A request frame is `[tag, version, 0x00, txid (8),
/// sender (32), body variant (varint), …]`.
pub fn unknown_request_variant(datagram: &[u8]) -> Option<TxId> {
    let [DHT_FRAME_TAG, WIRE_VERSION, 0x00, rest @ ..] = datagram else {
        return None;
    };
    let txid: TxId = rest.get(..8)?.try_into().ok()?;
    let variant = read_varint(rest.get(8 + 32..)?)?;
    (variant > u64::from(LAST_REQUEST_VARIANT)).then_some(txid)
}

/// A bincode varint at the start of `bytes`: one byte below 251, else a
/// marker (251, 252, 253) and a little-endian u16, u32 or u64.
fn read_varint(bytes: &[u8]) -> Option<u64> {
    let (&first, rest) = bytes.split_first()?;
    let wide = |n: usize| -> Option<u64> {
        let mut buf = [0u8; 8];
        buf[..n].copy_from_slice(rest.get(..n)?);
        Some(u64::from_le_bytes(buf))
    };
    match first {
        0..=250 => Some(u64::from(first)),
        251 => wide(2),
        252 => wide(4),
        253 => wide(8),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contact(n: u8) -> Contact {
        Contact {
            id: NodeId([n; 32]),
            addr: WireAddr::V4([192, 0, 2, n], 4000 + u16::from(n)),
        }
    }

    #[test]
    fn every_message_round_trips() {
        let sender = NodeId([9; 32]);
        let messages = [
            Message::Request {
                txid: [1; 8],
                sender,
                body: Request::Ping,
                padding: Blob::default(),
            },
            Message::Request {
                txid: [2; 8],
                sender,
                body: Request::FindNode {
                    target: NodeId([3; 32]),
                },
                padding: Blob::default(),
            },
            Message::Request {
                txid: [2; 8],
                sender,
                body: Request::GetPeers {
                    topic: NodeId([4; 32]),
                },
                padding: Blob::default(),
            },
            Message::Request {
                txid: [3; 8],
                sender,
                body: Request::Announce {
                    topic: NodeId([4; 32]),
                    token: [5; 16],
                    record: Blob(vec![6; 200]),
                },
                padding: Blob::default(),
            },
            Message::Request {
                txid: [4; 8],
                sender,
                body: Request::Signal {
                    to: NodeId([7; 32]),
                    payload: Blob(vec![8; 1000]),
                },
                padding: Blob::default(),
            },
            Message::Response {
                txid: [5; 8],
                sender,
                observed: WireAddr::V6([1; 16], 9),
                body: Response::Peers {
                    token: [1; 16],
                    records: BoundedList(vec![Blob(vec![1, 2, 3]); 8]),
                    nodes: BoundedList((0..8).map(contact).collect()),
                },
            },
            Message::Response {
                txid: [6; 8],
                sender,
                observed: WireAddr::V4([1; 4], 2),
                body: Response::Error(ErrorCode::BadToken),
            },
            Message::Request {
                txid: [4; 8],
                sender,
                body: Request::SignedAnnounce {
                    topic: NodeId([4; 32]),
                    token: [5; 16],
                    record: Blob(vec![6; 200]),
                    public_key: [7; 32],
                    signature: Blob(vec![8; 64]),
                },
                padding: Blob::default(),
            },
            Message::Response {
                txid: [6; 8],
                sender,
                observed: WireAddr::V4([1; 4], 2),
                body: Response::Error(ErrorCode::Unsupported),
            },
            Message::Deliver {
                sender,
                from: NodeId([1; 32]),
                payload: Blob(vec![2; 10]),
            },
            Message::Push {
                sender,
                topic: NodeId([1; 32]),
                record: Blob(vec![3; 10]),
            },
        ];
        for message in messages {
            let frame = encode_frame(&message);
            assert_eq!(frame[..2], [DHT_FRAME_TAG, WIRE_VERSION]);
            assert_eq!(decode_frame(&frame), Ok(message));
        }
    }

    #[test]
    fn caps_tags_versions_and_trailing_bytes_are_enforced() {
        let ping = Message::Request {
            txid: [1; 8],
            sender: NodeId([0; 32]),
            body: Request::Ping,
            padding: Blob::default(),
        };
        let mut frame = encode_frame(&ping);
        frame.push(0);
        assert_eq!(
            decode_frame(&frame),
            Err(FrameError::Body(CodecError::TrailingBytes(1)))
        );
        assert_eq!(
            decode_frame(&[DHT_FRAME_TAG, 9, 0]),
            Err(FrameError::UnknownVersion(9))
        );
        assert_eq!(decode_frame(&[0x00, 1]), Err(FrameError::NotDht));
        assert_eq!(decode_frame(&[DHT_FRAME_TAG]), Err(FrameError::NotDht));

        let too_many = BoundedList::<Contact, 9>((0..9).map(contact).collect());
        let bytes = encode_value(&too_many);
        assert!(decode_value::<BoundedList<Contact, K>>(&bytes, MAX_DATAGRAM_LEN).is_err());
    }

    #[test]
    fn longer_varints_are_accepted_and_re_encode_shorter() {
        let ping = Message::Request {
            txid: [1; 8],
            sender: NodeId([0; 32]),
            body: Request::Ping,
            padding: Blob::default(),
        };
        let canonical = encode_frame(&ping);
        // The Ping variant index, 0, as a three-byte varint.
        let mut long_form = canonical[..43].to_vec();
        long_form.extend_from_slice(&[251, 0, 0]);
        long_form.extend_from_slice(&canonical[44..]);
        let decoded = decode_frame(&long_form).expect("accepted");
        assert_eq!(decoded, ping);
        assert!(encode_frame(&decoded).len() < long_form.len());
    }

    #[test]
    fn requests_of_unknown_variants_are_recognised_by_their_discriminant() {
        let known = encode_frame(&Message::Request {
            txid: [7; 8],
            sender: NodeId([1; 32]),
            body: Request::Ping,
            padding: Blob::default(),
        });
        assert_eq!(unknown_request_variant(&known), None);
        let mut newer = known[..2 + 1 + 8 + 32].to_vec();
        newer.push(LAST_REQUEST_VARIANT as u8 + 1);
        assert_eq!(unknown_request_variant(&newer), Some([7; 8]));
        assert!(decode_frame(&newer).is_err());
        let mut wide = newer[..43].to_vec();
        wide.extend_from_slice(&[251, 0x00, 0x01]);
        assert_eq!(unknown_request_variant(&wide), Some([7; 8]));
        let mut last_known = newer[..43].to_vec();
        last_known.push(LAST_REQUEST_VARIANT as u8);
        assert_eq!(unknown_request_variant(&last_known), None);
        assert_eq!(unknown_request_variant(&newer[..42]), None);
        assert_eq!(
            unknown_request_variant(&[DHT_FRAME_TAG, WIRE_VERSION, 0x01]),
            None
        );
    }
}
