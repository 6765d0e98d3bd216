//! One datagram, one decision: a [`Datagram`] is classified once by its
//! first byte (`demux`, RFC 7983); [`Datagram::cost`] says what it costs
//! the sender's rate limit before anything is parsed, and
//! [`Datagram::route`] what it is and who handles it.
//!
//! Both are pure functions of the bytes, the source and what the node
//! knows ([`Known`]: our STUN transactions and the connections' index by
//! address and by ICE username fragment), so they are unit-tested on byte
//! arrays below. [`Datagram::cost`] reads only fixed offsets (the STUN
//! class bits, the DHT message and request variants), so the one
//! rate-limit point runs before any decoding (`protocol-spec.md` §7.2).
//! STUN is decided from its header first: a response is decoded only when
//! it answers one of our transactions, a request's USERNAME is found
//! without decoding the rest (an ICE check goes to str0m, which decodes it
//! anyway), and only a Binding request is decoded whole here; the decoded
//! view goes to its handler:
//!
//! | datagram | route |
//! |---|---|
//! | STUN response to one of our transactions | [`Route::StunResponse`] |
//! | other STUN response from a connection's address | [`Route::Ice`] |
//! | STUN request whose USERNAME starts with a connection's ufrag | [`Route::Ice`] |
//! | STUN request without USERNAME | [`Route::BindingRequest`] |
//! | STUN request whose body does not decode | [`Route::MalformedRequest`] (400) |
//! | DHT frame | [`Route::Dht`] (decoded by the DHT handler) |
//! | KRPC (`d`) | [`Route::Mainline`] (decoded by the Mainline client) |
//! | hello | [`Route::Hello`] |
//! | LAN beacon | [`Route::Beacon`] |
//! | relay frame | [`Route::Relay`] (decoded by the relay handler) |
//! | DTLS from a connection's address | [`Route::Dtls`] |
//! | anything else | [`Route::Drop`] with the reason |

use std::net::SocketAddr;

use super::stats::DropReason;
use crate::demux::{self, Protocol};
use crate::id::NodeId;
use crate::stun::message::{Class, Header, Message, TransactionId, find_username};

/// What the node knows that routing depends on.
pub trait Known {
    /// True if our STUN client has a transaction with this ID outstanding.
    fn our_stun_transaction(&self, txid: &TransactionId) -> bool;
    /// The connection that sends to or receives from `addr`.
    fn peer_at(&self, addr: SocketAddr) -> Option<NodeId>;
    /// The connection whose local ICE username fragment is `ufrag`.
    fn peer_with_ufrag(&self, ufrag: &str) -> Option<NodeId>;
    /// True if our Mainline client has a query out to `addr`.
    fn mainline_awaits(&self, addr: SocketAddr) -> bool;
}

/// Where a datagram goes.
#[derive(Debug)]
pub enum Route<'a> {
    /// A response to our STUN client.
    StunResponse(Message<'a>),
    /// An ICE check, or a check's response, for the connection to this peer.
    Ice(NodeId),
    /// A Binding request for our STUN server.
    BindingRequest(Message<'a>),
    /// A STUN request whose body does not decode: the server answers 400.
    MalformedRequest(Header),
    /// A DHT frame.
    Dht,
    /// A Mainline KRPC message.
    Mainline,
    /// A hello.
    Hello,
    /// A LAN beacon.
    Beacon,
    /// A relay frame.
    Relay,
    /// DTLS for the connection to this peer.
    Dtls(NodeId),
    /// Nobody's: drop and count.
    Drop(DropReason),
}

/// A received datagram and its protocol, read once from the first byte.
#[derive(Clone, Copy, Debug)]
pub struct Datagram<'a> {
    data: &'a [u8],
    protocol: Protocol,
}

impl<'a> Datagram<'a> {
    /// Classifies `data` (the caller has dropped oversized datagrams).
    pub fn new(data: &'a [u8]) -> Self {
        Self {
            data,
            protocol: demux::classify(data),
        }
    }

    /// The protocol its first byte names.
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// Rate-limit tokens the datagram costs its source, read from fixed
    /// offsets only: requests that cost work or bytes cost 1 (a DHT
    /// `Signal`, which makes us send to a third party, 2); responses, STUN
    /// from an address a connection uses and KRPC from a Mainline node we
    /// queried are free.
    pub fn cost(&self, source: SocketAddr, known: &impl Known) -> u64 {
        let data = self.data;
        match self.protocol {
            Protocol::Stun => match stun_class(data) {
                Some(Class::Request | Class::Indication) if known.peer_at(source).is_none() => 1,
                _ => 0,
            },
            Protocol::Dht => dht_cost(data),
            Protocol::Mainline => u64::from(!known.mainline_awaits(source)),
            Protocol::Hello | Protocol::Beacon => 1,
            Protocol::Relay => relay_cost(data),
            _ => 0,
        }
    }

    /// Where the datagram goes.
    pub fn route(&self, source: SocketAddr, known: &impl Known) -> Route<'a> {
        match self.protocol {
            Protocol::Stun => route_stun(self.data, source, known),
            Protocol::Dht => Route::Dht,
            Protocol::Mainline => Route::Mainline,
            Protocol::Hello => Route::Hello,
            Protocol::Beacon => Route::Beacon,
            Protocol::Relay => Route::Relay,
            Protocol::Dtls => match known.peer_at(source) {
                Some(peer) => Route::Dtls(peer),
                None => Route::Drop(DropReason::WebrtcUnmatched),
            },
            Protocol::Zrtp
            | Protocol::TurnChannel
            | Protocol::Quic
            | Protocol::Rtp
            | Protocol::Unassigned
            | Protocol::Empty => Route::Drop(DropReason::UnknownProtocol),
        }
    }
}

/// Offset of the DHT message variant: after the tag and version bytes.
const DHT_MESSAGE_VARIANT: usize = 2;
/// Offset of a request's body variant: after the message variant, the
/// 8-byte transaction ID and the 32-byte sender ID.
const DHT_REQUEST_VARIANT: usize = DHT_MESSAGE_VARIANT + 1 + 8 + 32;
/// `Message::Response` (`protocol-spec.md` §5.1).
const DHT_RESPONSE: u8 = 1;
/// `Message::Request`.
const DHT_REQUEST: u8 = 0;
/// `Request::Signal`.
const DHT_SIGNAL: u8 = 4;
/// `Request::ReachMe`.
const DHT_REACH_ME: u8 = 6;
/// `Request::Probe`.
const DHT_PROBE: u8 = 7;

/// Requests that make us send to a third party (`Signal`, `ReachMe`,
/// `Probe`) cost 2.
fn dht_cost(data: &[u8]) -> u64 {
    match data.get(DHT_MESSAGE_VARIANT) {
        Some(&DHT_RESPONSE) => 0,
        Some(&DHT_REQUEST)
            if matches!(
                data.get(DHT_REQUEST_VARIANT),
                Some(&(DHT_SIGNAL | DHT_REACH_ME | DHT_PROBE))
            ) =>
        {
            2
        }
        _ => 1,
    }
}

/// Offset of a relay frame's kind.
const RELAY_KIND: usize = 1;
/// Relay frame kind `data`.
const RELAY_DATA: u8 = 0;
/// Relay frame kind `bind`.
const RELAY_BIND: u8 = 1;

/// Data frames are free (a relay meters them per pair, §12.5; our own
/// connections' data must not starve); a bind, which makes a relay keep
/// state and answer, costs 2; other relay frames 1.
fn relay_cost(data: &[u8]) -> u64 {
    match data.get(RELAY_KIND) {
        Some(&RELAY_DATA) => 0,
        Some(&RELAY_BIND) => 2,
        _ => 1,
    }
}

/// The class bits of a STUN message type (RFC 5389 §6), if the header is there.
fn stun_class(data: &[u8]) -> Option<Class> {
    let [high, low] = *data.first_chunk::<2>()?;
    let kind = u16::from_be_bytes([high, low]);
    Some(match ((kind >> 7) & 0b10) | ((kind >> 4) & 0b01) {
        0 => Class::Request,
        1 => Class::Indication,
        2 => Class::SuccessResponse,
        _ => Class::ErrorResponse,
    })
}

/// Decides what `data` from `source` is.
fn route_stun<'a>(data: &'a [u8], source: SocketAddr, known: &impl Known) -> Route<'a> {
    let Ok(header) = Header::parse(data) else {
        return Route::Drop(DropReason::StunMalformed);
    };
    match header.class {
        Class::SuccessResponse | Class::ErrorResponse => {
            if known.our_stun_transaction(&header.transaction_id) {
                match Message::decode(data) {
                    Ok(message) => Route::StunResponse(message),
                    Err(_) => Route::Drop(DropReason::StunMalformed),
                }
            } else if let Some(peer) = known.peer_at(source) {
                Route::Ice(peer)
            } else {
                Route::Drop(DropReason::StunUnknownTransaction)
            }
        }
        Class::Request => match find_username(&header, data) {
            // RFC 8445 §7.2.2: USERNAME is "receiver's ufrag:sender's ufrag".
            Ok(Some(name)) => match known.peer_with_ufrag(name.split(':').next().unwrap_or("")) {
                Some(peer) => Route::Ice(peer),
                None => Route::Drop(DropReason::WebrtcUnmatched),
            },
            Ok(None) => match Message::decode(data) {
                Ok(message) => Route::BindingRequest(message),
                Err(_) => Route::MalformedRequest(header),
            },
            Err(_) => Route::MalformedRequest(header),
        },
        Class::Indication => Route::Drop(DropReason::StunIgnored),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dht::wire::{Blob, Message as DhtMessage, Request, encode_frame};
    use crate::stun::attribute::Attribute;
    use crate::stun::message::{MessageEncoder, Method};

    struct Fake {
        txid: TransactionId,
        peer_addr: SocketAddr,
        ufrag: &'static str,
    }

    const PEER: NodeId = NodeId([7; 32]);

    impl Known for Fake {
        fn our_stun_transaction(&self, txid: &TransactionId) -> bool {
            *txid == self.txid
        }
        fn peer_at(&self, addr: SocketAddr) -> Option<NodeId> {
            (addr == self.peer_addr).then_some(PEER)
        }
        fn peer_with_ufrag(&self, ufrag: &str) -> Option<NodeId> {
            (ufrag == self.ufrag).then_some(PEER)
        }
        fn mainline_awaits(&self, addr: SocketAddr) -> bool {
            addr == self.peer_addr
        }
    }

    fn fake() -> Fake {
        Fake {
            txid: TransactionId([1; 12]),
            peer_addr: "192.0.2.7:5000".parse().unwrap(),
            ufrag: "mine",
        }
    }

    fn stranger() -> SocketAddr {
        "198.51.100.1:6000".parse().unwrap()
    }

    fn stun(class: Class, txid: u8, username: Option<&str>) -> Vec<u8> {
        let mut encoder = MessageEncoder::new(class, Method::Binding, TransactionId([txid; 12]));
        if let Some(name) = username {
            encoder.push(&Attribute::Username(name));
        }
        encoder.finish()
    }

    fn request(body: Request) -> Vec<u8> {
        encode_frame(&DhtMessage::Request {
            txid: [0; 8],
            sender: NodeId([3; 32]),
            body,
            padding: Blob::default(),
        })
    }

    fn route<'a>(data: &'a [u8], source: SocketAddr, known: &Fake) -> Route<'a> {
        Datagram::new(data).route(source, known)
    }

    fn cost(data: &[u8], source: SocketAddr, known: &Fake) -> u64 {
        Datagram::new(data).cost(source, known)
    }

    #[test]
    fn stun_goes_to_the_client_a_connection_or_the_server() {
        let known = fake();
        let ours = stun(Class::SuccessResponse, 1, None);
        assert!(matches!(
            route(&ours, stranger(), &known),
            Route::StunResponse(_)
        ));
        let ice_response = stun(Class::SuccessResponse, 2, None);
        assert!(matches!(
            route(&ice_response, known.peer_addr, &known),
            Route::Ice(PEER)
        ));
        assert!(matches!(
            route(&ice_response, stranger(), &known),
            Route::Drop(DropReason::StunUnknownTransaction)
        ));
        let check = stun(Class::Request, 3, Some("mine:theirs"));
        assert!(matches!(
            route(&check, stranger(), &known),
            Route::Ice(PEER)
        ));
        let foreign_check = stun(Class::Request, 3, Some("other:theirs"));
        assert!(matches!(
            route(&foreign_check, stranger(), &known),
            Route::Drop(DropReason::WebrtcUnmatched)
        ));
        let binding = stun(Class::Request, 4, None);
        assert!(matches!(
            route(&binding, stranger(), &known),
            Route::BindingRequest(_)
        ));
        let indication = stun(Class::Indication, 5, None);
        assert!(matches!(
            route(&indication, stranger(), &known),
            Route::Drop(DropReason::StunIgnored)
        ));
    }

    #[test]
    fn malformed_stun_is_answered_only_when_it_is_a_request() {
        let known = fake();
        let mut bad_request = stun(Class::Request, 6, None);
        // Claim a 4-byte attribute that is not there.
        bad_request[3] = 4;
        bad_request.extend_from_slice(&[0x80, 0x22, 0x00, 0x09]);
        assert!(matches!(
            route(&bad_request, stranger(), &known),
            Route::MalformedRequest(h) if h.class == Class::Request
        ));
        // A response is decoded only when it answers our transaction.
        let mut bad_response = stun(Class::SuccessResponse, 1, None);
        bad_response[3] = 4;
        bad_response.extend_from_slice(&[0x80, 0x22, 0x00, 0x09]);
        assert!(matches!(
            route(&bad_response, stranger(), &known),
            Route::Drop(DropReason::StunMalformed)
        ));
        let mut unknown_response = stun(Class::SuccessResponse, 6, None);
        unknown_response[3] = 4;
        unknown_response.extend_from_slice(&[0x80, 0x22, 0x00, 0x09]);
        assert!(matches!(
            route(&unknown_response, stranger(), &known),
            Route::Drop(DropReason::StunUnknownTransaction)
        ));
        assert!(matches!(
            route(&[0x00, 0x01], stranger(), &known),
            Route::Drop(DropReason::StunMalformed)
        ));
    }

    #[test]
    fn dtls_goes_by_source_and_the_rest_is_dropped() {
        let known = fake();
        let dtls = [0x16, 0xfe, 0xfd, 0, 0];
        assert!(matches!(
            route(&dtls, known.peer_addr, &known),
            Route::Dtls(PEER)
        ));
        assert!(matches!(
            route(&dtls, stranger(), &known),
            Route::Drop(DropReason::WebrtcUnmatched)
        ));
        for (data, reason) in [
            (&[][..], DropReason::UnknownProtocol),
            (&[0x80, 1, 2][..], DropReason::UnknownProtocol),
            (&[0x05, 1][..], DropReason::UnknownProtocol),
            (&[0x40, 0, 0, 0][..], DropReason::UnknownProtocol),
        ] {
            assert!(
                matches!(route(data, stranger(), &known), Route::Drop(r) if r == reason),
                "{data:?}"
            );
        }
        assert!(matches!(
            route(&request(Request::Ping), stranger(), &known),
            Route::Dht
        ));
    }

    #[test]
    fn costs_are_read_from_fixed_offsets() {
        let known = fake();
        assert_eq!(cost(&request(Request::Ping), stranger(), &known), 1);
        let signal = request(Request::Signal {
            to: NodeId([1; 32]),
            payload: Blob(vec![0; 10]),
        });
        assert_eq!(cost(&signal, stranger(), &known), 2);
        assert_eq!(cost(&request(Request::ReachMe), stranger(), &known), 2);
        let probe = request(Request::Probe {
            target: crate::codec::WireAddr::V4([1; 4], 1),
            txid: [5; 8],
        });
        assert_eq!(cost(&probe, stranger(), &known), 2);
        let bind = crate::relay::wire::Frame::Bind(crate::relay::wire::Bind {
            token: [1; 16],
            session: 1,
            low: NodeId([1; 32]),
            high: NodeId([2; 32]),
            cookie: None,
        })
        .encode();
        assert_eq!(cost(&bind, stranger(), &known), 2);
        let relayed = crate::relay::wire::data_frame(7, b"dtls");
        assert_eq!(
            cost(&relayed, stranger(), &known),
            0,
            "metered by the relay"
        );
        assert!(matches!(route(&relayed, stranger(), &known), Route::Relay));
        let response = encode_frame(&DhtMessage::Response {
            txid: [0; 8],
            sender: NodeId([3; 32]),
            observed: crate::codec::WireAddr::V4([1; 4], 1),
            body: crate::dht::wire::Response::Pong,
        });
        assert_eq!(cost(&response, stranger(), &known), 0);
        let push = encode_frame(&DhtMessage::Push {
            sender: NodeId([3; 32]),
            topic: NodeId([4; 32]),
            record: Blob(vec![1]),
        });
        assert_eq!(cost(&push, stranger(), &known), 1);
        assert_eq!(
            cost(&[0x0a, 1], stranger(), &known),
            1,
            "truncated frames pay"
        );
        let binding = stun(Class::Request, 4, None);
        assert_eq!(cost(&binding, stranger(), &known), 1);
        assert_eq!(
            cost(&binding, known.peer_addr, &known),
            0,
            "a connection's checks"
        );
        let indication = stun(Class::Indication, 4, None);
        assert_eq!(cost(&indication, stranger(), &known), 1);
        assert_eq!(
            cost(&stun(Class::SuccessResponse, 1, None), stranger(), &known),
            0
        );
        assert_eq!(cost(&[0x16, 0xfe], stranger(), &known), 0);
        let krpc = b"d1:rd2:id20:abcdefghij0123456789e1:t4:aaaa1:y1:re";
        assert_eq!(cost(krpc, known.peer_addr, &known), 0, "a node we queried");
        assert_eq!(cost(krpc, stranger(), &known), 1);
        assert!(matches!(route(krpc, stranger(), &known), Route::Mainline));
        let hello = crate::hello::encode(
            &crate::hello::Hello {
                kind: crate::hello::HelloKind::Hello,
                record: b"x",
                to: stranger(),
                nonce: [1; 8],
                echo: [0; 8],
            },
            |_| [0; 16],
        );
        assert_eq!(cost(&hello, known.peer_addr, &known), 1);
        assert!(matches!(route(&hello, stranger(), &known), Route::Hello));
    }
}
