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
use std::marker::PhantomData;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::ser::{SerializeSeq, Serializer};
use serde::{Deserialize, Serialize};

use super::id::NodeId;
use crate::demux::DHT_FRAME_TAG;
use crate::node::MAX_DATAGRAM_LEN;

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

/// A UDP endpoint on the wire: IPv4 or IPv6 address bytes and a port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum WireAddr {
    /// IPv4 address (4 bytes) and port.
    V4([u8; 4], u16),
    /// IPv6 address (16 bytes) and port.
    V6([u8; 16], u16),
}

impl From<SocketAddr> for WireAddr {
    fn from(addr: SocketAddr) -> Self {
        match addr.ip() {
            IpAddr::V4(ip) => Self::V4(ip.octets(), addr.port()),
            IpAddr::V6(ip) => Self::V6(ip.octets(), addr.port()),
        }
    }
}

impl From<WireAddr> for SocketAddr {
    fn from(addr: WireAddr) -> Self {
        match addr {
            WireAddr::V4(ip, port) => SocketAddr::new(IpAddr::V4(Ipv4Addr::from(ip)), port),
            WireAddr::V6(ip, port) => SocketAddr::new(IpAddr::V6(Ipv6Addr::from(ip)), port),
        }
    }
}

/// A DHT node: its ID and the address it was seen at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    /// The node's ID.
    pub id: NodeId,
    /// Where it answers.
    pub addr: WireAddr,
}

/// An opaque byte string of at most `MAX` bytes.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Blob<const MAX: usize>(pub Vec<u8>);

impl<const MAX: usize> fmt::Debug for Blob<MAX> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Blob({} bytes)", self.0.len())
    }
}

impl<const MAX: usize> Serialize for Blob<MAX> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(&self.0)
    }
}

impl<'de, const MAX: usize> Deserialize<'de> for Blob<MAX> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct BlobVisitor<const MAX: usize>;
        impl<const MAX: usize> Visitor<'_> for BlobVisitor<MAX> {
            type Value = Blob<MAX>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "at most {MAX} bytes")
            }
            fn visit_bytes<E: de::Error>(self, bytes: &[u8]) -> Result<Self::Value, E> {
                if bytes.len() > MAX {
                    return Err(E::invalid_length(bytes.len(), &self));
                }
                Ok(Blob(bytes.to_vec()))
            }
        }
        deserializer.deserialize_bytes(BlobVisitor::<MAX>)
    }
}

/// A list of at most `MAX` items; decoding fails past the cap and never
/// reserves room for more than `MAX` items.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BoundedList<T, const MAX: usize>(pub Vec<T>);

impl<T, const MAX: usize> Default for BoundedList<T, MAX> {
    fn default() -> Self {
        Self(Vec::new())
    }
}

impl<T: Serialize, const MAX: usize> Serialize for BoundedList<T, MAX> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.0.len()))?;
        for item in &self.0 {
            seq.serialize_element(item)?;
        }
        seq.end()
    }
}

impl<'de, T: Deserialize<'de>, const MAX: usize> Deserialize<'de> for BoundedList<T, MAX> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ListVisitor<T, const MAX: usize>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>, const MAX: usize> Visitor<'de> for ListVisitor<T, MAX> {
            type Value = BoundedList<T, MAX>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "a list of at most {MAX} items")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                if let Some(claimed) = seq.size_hint().filter(|&n| n > MAX) {
                    return Err(de::Error::invalid_length(claimed, &self));
                }
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    if items.len() == MAX {
                        return Err(de::Error::invalid_length(MAX + 1, &self));
                    }
                    items.push(item);
                }
                Ok(BoundedList(items))
            }
        }
        deserializer.deserialize_seq(ListVisitor::<T, MAX>(PhantomData))
    }
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
    /// Store `record` under `topic` for the sender.
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
}

/// Why a request failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ErrorCode {
    /// Announce token missing, expired or for another address.
    BadToken,
    /// Signal target unknown to this relay.
    UnknownTarget,
    /// A storage cap was reached.
    StoreFull,
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
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// Shorter than the two-byte prefix, or not starting with the tag.
    NotDht,
    /// A version this node does not speak.
    UnknownVersion(u8),
    /// The bincode body did not decode.
    Body(String),
    /// Bytes left after the message.
    TrailingBytes(usize),
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotDht => f.write_str("not a DHT frame"),
            Self::UnknownVersion(version) => write!(f, "unknown DHT wire version {version}"),
            Self::Body(error) => write!(f, "bad DHT message: {error}"),
            Self::TrailingBytes(n) => write!(f, "{n} bytes after the DHT message"),
        }
    }
}

impl std::error::Error for FrameError {}

fn config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<MAX_DATAGRAM_LEN>()
}

/// Encodes any serde value with the DHT's bincode configuration.
pub fn encode_value<T: Serialize>(value: &T) -> Vec<u8> {
    // Encoding into a Vec fails only past the size limit, which no message
    // this node builds reaches (lists and blobs are capped far below it).
    bincode::serde::encode_to_vec(value, config()).unwrap_or_default()
}

/// Decodes a serde value that must fill `bytes` exactly.
pub fn decode_value<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, FrameError> {
    let (value, used) = bincode::serde::borrow_decode_from_slice(bytes, config())
        .map_err(|error| FrameError::Body(error.to_string()))?;
    match bytes.len() - used {
        0 => Ok(value),
        extra => Err(FrameError::TrailingBytes(extra)),
    }
}

/// The datagram for `message`.
pub fn encode_frame(message: &Message) -> Vec<u8> {
    let mut frame = vec![DHT_FRAME_TAG, WIRE_VERSION];
    frame.extend_from_slice(&encode_value(message));
    frame
}

/// The message in a datagram.
pub fn decode_frame(datagram: &[u8]) -> Result<Message, FrameError> {
    match datagram {
        [DHT_FRAME_TAG, WIRE_VERSION, body @ ..] => decode_value(body),
        [DHT_FRAME_TAG, version, ..] => Err(FrameError::UnknownVersion(*version)),
        _ => Err(FrameError::NotDht),
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
        assert_eq!(decode_frame(&frame), Err(FrameError::TrailingBytes(1)));
        assert_eq!(
            decode_frame(&[DHT_FRAME_TAG, 9, 0]),
            Err(FrameError::UnknownVersion(9))
        );
        assert_eq!(decode_frame(&[0x00, 1]), Err(FrameError::NotDht));
        assert_eq!(decode_frame(&[DHT_FRAME_TAG]), Err(FrameError::NotDht));

        let too_many = BoundedList::<Contact, 9>((0..9).map(contact).collect());
        let bytes = encode_value(&too_many);
        assert!(decode_value::<BoundedList<Contact, K>>(&bytes).is_err());
        let too_long = Blob::<500>(vec![0; 401]);
        assert!(decode_value::<Blob<MAX_RECORD_LEN>>(&encode_value(&too_long)).is_err());
    }

    #[test]
    fn a_huge_claimed_length_fails_without_allocating_it() {
        // Nodes list claiming u32::MAX entries (varint marker 252 + 4 bytes).
        let bytes = [252, 0xff, 0xff, 0xff, 0xff];
        assert!(decode_value::<BoundedList<Contact, K>>(&bytes).is_err());
        let bytes = [252, 0xff, 0xff, 0xff, 0x00];
        assert!(decode_value::<Blob<MAX_RECORD_LEN>>(&bytes).is_err());
    }

    #[test]
    fn addresses_convert_both_ways() {
        for text in ["192.0.2.1:5", "[2001:db8::1]:65535"] {
            let addr: SocketAddr = text.parse().unwrap();
            assert_eq!(SocketAddr::from(WireAddr::from(addr)), addr);
        }
    }
}
