//! tinynode: a tiny peer-to-peer node.
//!
//! Members of a *meeting* (everyone who joins with the same code) find each
//! other through the BitTorrent Mainline DHT and through tinynode's own
//! small Kademlia DHT, and talk over direct, encrypted WebRTC data
//! channels, all on one UDP socket per address family. The protocol
//! logic is a sans-IO [`Node`]: it takes `(now, input)` and yields datagrams
//! to send, events and its next deadline, so it runs the same under the mio
//! driver (the default `driver` feature) and in tests with virtual time.
//! Only the driver touches sockets, the clock and OS randomness.
//! `protocol-spec.md` is the wire contract; [`wire`] exposes the codecs for
//! tools and tests.
//!
//! Three nodes in memory: a bootstrap node and two members who find each
//! other, connect (the connection is automatic once a member is found),
//! exchange a message, and move bytes over a stream (the third member takes
//! pipe streams; the second opens one, writes and finishes it):
//!
//! ```
//! use std::net::SocketAddr;
//! use std::time::{Duration, Instant};
//! use tinynode::{Command, Event, Identity, Input, Meeting, Node, NodeConfig, Output, PeerStatus, WallClock};
//! use tinynode::{StreamHeader, StreamKind};
//!
//! let start = Instant::now();
//! let clock = WallClock { at: start, unix_ms: 1_800_000_000_000 };
//! let addrs: Vec<SocketAddr> = (1..=3).map(|i| SocketAddr::from(([127, 0, 0, i], 4000))).collect();
//! let mut nodes: Vec<Node> = (0..3u8)
//!     .map(|i| {
//!         let mut config = NodeConfig::new(addrs[usize::from(i)], Identity::from_seed([i + 1; 32]), clock);
//!         if i > 0 {
//!             config.bootstrap = vec![addrs[0]];
//!         }
//!         Node::new(start, config, [i + 1; 32])
//!     })
//!     .collect();
//! nodes[2].set_stream_kinds(&[StreamKind::PIPE]);
//! let meeting = Meeting::derive("library example").unwrap();
//! for member in &mut nodes[1..] {
//!     member.handle_input(start, Input::Command(Command::Join(meeting.clone())));
//! }
//!
//! // A perfect network: every datagram arrives at once; time moves in 10 ms steps.
//! let mut now = start;
//! let mut heard = None;
//! let (mut streamed, mut finished) = (Vec::new(), false);
//! while !(heard.is_some() && finished) && now < start + Duration::from_secs(30) {
//!     now += Duration::from_millis(10);
//!     let mut wire = Vec::new();
//!     for node in &mut nodes {
//!         node.handle_input(now, Input::Timeout);
//!     }
//!     loop {
//!         for (i, node) in nodes.iter_mut().enumerate() {
//!             let outputs: Vec<Output> = node.drain().collect();
//!             for output in outputs {
//!                 match output {
//!                     Output::Transmit(t) => wire.push(t),
//!                     Output::Event(Event::Connected { peer, .. }) if i == 1 => {
//!                         node.handle_input(now, Input::Command(Command::Send("hello".into())));
//!                         let header = StreamHeader { kind: StreamKind::PIPE, name: String::new() };
//!                         let stream = node.open_stream(now, peer, header).unwrap();
//!                         assert_eq!(node.stream_write(now, stream, b"bytes, in order"), Ok(15));
//!                         node.stream_finish(now, stream).unwrap();
//!                     }
//!                     Output::Event(Event::Message { text, .. }) => heard = Some(text),
//!                     Output::Event(Event::StreamData { stream, bytes }) => {
//!                         streamed.extend_from_slice(&bytes);
//!                         // Consumed: the sender may send as much more.
//!                         node.stream_consumed(now, stream, bytes.len()).unwrap();
//!                     }
//!                     Output::Event(Event::StreamFinished { .. }) => finished = true,
//!                     _ => {}
//!                 }
//!             }
//!         }
//!         if wire.is_empty() {
//!             break;
//!         }
//!         for t in wire.drain(..) {
//!             if let Some(to) = addrs.iter().position(|a| *a == t.destination) {
//!                 let input = Input::Receive { source: t.source, destination: t.destination, data: &t.payload };
//!                 nodes[to].handle_input(now, input);
//!             }
//!         }
//!     }
//! }
//! assert_eq!(heard.as_deref(), Some("hello"));
//! assert_eq!(streamed, b"bytes, in order");
//! // The member that found the other first lists it as connected.
//! let connected = |a: &Node, b: &Node| {
//!     a.known_peers().iter().any(|p| p.node_id == b.node_id() && p.status == PeerStatus::Connected)
//! };
//! assert!(connected(&nodes[1], &nodes[2]) || connected(&nodes[2], &nodes[1]));
//! ```
//!
//! # Layers
//!
//! Top to bottom; a module imports only from modules below it (or beside
//! it inside its own directory), never from one that imports it:
//!
//! | layer | modules |
//! |---|---|
//! | driver (feature `driver`), fuzz helpers (feature `fuzzing`) | `driver/`, `fuzzing` |
//! | the node: routing and glue | `node/` |
//! | connections, membership, member sources (`dht`, `mainline`), reachability | `rtc/`, `membership`, `sources/`, `reach` |
//! | the Mainline client (reuses `dht/`'s lookup and table) | `mainline/` |
//! | protocol engines and codecs | `stun/`, `dht/`, `relay/`, `demux`, `hello`, `beacon`, `ratelimit`, `record`, `signal`, `transfer/` (its `disk` with the driver), `code` |
//! | the public vocabulary: the events, reasons and config the engines report and obey | `api/` |
//! | signed-then-sealed payloads | `sealed` |
//! | keys and meetings | `identity`, `meeting` |
//! | leaves: no crate imports but `hex` | `addr`, `codec`, `ct`, `id`, `transmit`, `limits`, `backoff`, `rng`, `hex`, `nat`, `stream`, `throttle` |

#![deny(unsafe_code)]
#![warn(missing_docs)]

mod addr;
mod api;
mod backoff;
mod beacon;
pub mod code;
mod codec;
mod ct;
mod demux;
mod dht;
mod hello;
mod hex;
mod id;
mod identity;
mod limits;
mod mainline;
mod meeting;
mod membership;
mod nat;
mod node;
mod ratelimit;
mod reach;
mod record;
mod relay;
mod rng;
mod rtc;
mod sealed;
mod signal;
mod sources;
mod stream;
mod stun;
mod throttle;
pub mod transfer;
mod transmit;

#[cfg(feature = "driver")]
#[allow(unsafe_code)]
pub mod driver;
#[cfg(any(fuzzing, feature = "fuzzing"))]
pub mod fuzzing;

pub use addr::Family;
pub use api::{
    AddressSource, Command, ConnectionReason, Event, FailureReason, Input, LostReason, NatClass,
    NodeConfig, Output, ReachResult, RelayLimits, RelayRefusal, RelayRole, ResetCode,
    RetransmitConfig, ServerFailure, StreamHeader, StreamId, StreamKind, Via, WallClock,
    WriteError,
};
pub use id::NodeId;
pub use identity::{Identity, InvalidKey};
pub use meeting::Meeting;
pub use membership::{KnownPeer, PeerStatus, SignalPath};
pub use node::{Drain, DropReason, Node, Sizes, Stats};
pub use rtc::MAX_MESSAGE_LEN;
pub use transmit::Transmit;

/// The wire formats, for tools and tests that speak tinynode's protocols
/// byte for byte (`protocol-spec.md`): codecs, the lengths and limits that
/// decide whether bytes are well formed, and the labels of the key
/// derivations. How the node *behaves* (timers, rates, caps) is policy,
/// not format, and is not here.
pub mod wire {
    pub use crate::codec::{Blob, BoundedList, CodecError, WireAddr};
    pub use crate::demux::{DHT_FRAME_TAG, Protocol, classify};
    pub use crate::hex::hex;
    pub use crate::limits::MAX_DATAGRAM_LEN;
    pub use crate::meeting::normalize as normalize_meeting_code;
    pub use crate::meeting::{PBKDF2_ITERATIONS, PBKDF2_SALT};

    /// STUN messages (RFC 5389) and the Binding server's answers.
    pub mod stun {
        pub use crate::stun::attribute::{Attribute, ErrorCode};
        pub use crate::stun::message::{
            Class, DecodeError, Header, IntegrityKey, Message, MessageEncoder, Method,
            TransactionId,
        };
        pub use crate::stun::server::answer;
    }

    /// tinynode DHT frames (spec §3) and signed announces.
    pub mod dht {
        pub use crate::codec::{Blob, BoundedList, WireAddr};
        pub use crate::dht::announce::{ANNOUNCE_LABEL, signed_announce, signing_input};
        pub use crate::dht::rpc::{
            FIND_NODE_REQUEST_LEN, GET_PEERS_REQUEST_LEN, REACH_ME_REQUEST_LEN,
        };
        pub use crate::dht::wire::{
            Contact, ErrorCode, FrameError, K, MAX_PADDING, MAX_RECORD_LEN, MAX_RECORDS_PER_REPLY,
            MAX_SIGNAL_LEN, Message, Request, Response, TOKEN_LEN, TxId, WIRE_VERSION,
            decode_frame, encode_frame,
        };
    }

    /// Stream frames (`protocol-spec.md` §6.7).
    pub mod stream {
        pub use crate::stream::{
            Frame, FrameError, MAX_DATA, MAX_NAME, MAX_REASON, STREAM_VERSION, STREAM_WINDOW,
        };
    }

    /// Sealed meeting records.
    pub mod record {
        pub use crate::record::{NetworkFacts, PeerRecord, RECORD_TTL, RecordError, open, seal};
    }

    /// The Mainline DHT's bencode and KRPC as tinynode speaks them, and
    /// the infohash windows.
    pub mod mainline {
        pub use crate::mainline::bencode::{self, DecodeError, MAX_DEPTH, MAX_ITEMS, Value};
        pub use crate::mainline::krpc::{
            CompactNode, ID_LEN, Id, KrpcError, MAX_NODES, MAX_TOKEN_LEN, MAX_VALUES, Message,
            Query, Response, TXID_LEN, compact, compact_addr, decode, encode_error, encode_query,
            encode_response,
        };
        pub use crate::meeting::{INFOHASH_LABEL, MAINLINE_INFO};
        pub use crate::sources::mainline::{WINDOW, window_at};
    }

    /// Link reports and the loss meter's reading of DTLS record numbers
    /// (spec §6.6).
    pub mod link {
        pub use crate::rtc::copies::copies_for;
        pub use crate::rtc::link::{
            BLOCK, LINK_LABEL, LINK_STREAM, LinkReport, SentBlocks, record_number,
        };
    }

    /// Relay frames, pairing tokens' inputs and synthetic relayed addresses.
    pub mod relay {
        pub use crate::api::RelayRefusal;
        pub use crate::meeting::{RELAY_INFO, RELAY_TOKEN_LABEL};
        pub use crate::relay::cookie::{COOKIE_LABEL, cookie};
        pub use crate::relay::wire::{
            BIND_LEN, BOUND_LEN, Bind, CHALLENGE_LEN, COOKIE_BIND_LEN, COOKIE_LEN, Cookie,
            DATA_HEADER_LEN, Frame, FrameError, MAX_PAYLOAD, REFUSED_LEN, RELAY_TAG, RELEASE_LEN,
            Token, data_frame,
        };
        pub use crate::relay::{
            RELAY_INFOHASH_LABEL, SYNTHETIC_LABEL, is_synthetic, relay_infohash, synthetic_addr,
        };
    }

    /// Hellos: sealed records sent straight to an address.
    pub mod hello {
        pub use crate::hello::{
            HELLO_LEN, HELLO_TAG, Hello, HelloError, HelloKind, HelloNonce, MAC_LEN,
            MAX_HELLO_RECORD, NONCE_LEN, decode, encode, verify,
        };
    }

    /// LAN beacons: sealed records multicast on the local link.
    pub mod beacon {
        pub use crate::beacon::{
            BEACON_TAG, Beacon, BeaconError, LAN_GROUP, LAN_GROUP_V6, MAX_BEACON_RECORD,
            MEETING_TAG_LEN, decode, encode, group_for,
        };
        pub use crate::meeting::{LAN_INFO, LAN_TAG_LABEL, LAN_WINDOW};
    }

    /// Sealed signals (offers, answers, closes).
    pub mod signal {
        pub use crate::signal::{
            Envelope, MAX_RELAYS, RelayHint, SessionParams, Signal, SignalKind, open, seal,
        };
    }
}

/// Policy: the timers, rates and caps the node applies, which tests and
/// benchmarks check behaviour against. Not part of the API: any release
/// may change them (quinn-proto keeps such items out of its face the same
/// way).
#[doc(hidden)]
pub mod tuning {
    pub use crate::dht::RECORD_BYTES_PER_REPLY;
    pub use crate::dht::budget::{REMOTE_TRIGGERED_RATE, SIGNATURE_CHECKS};
    pub use crate::dht::rpc::{MAX_PENDING, REMOTE_TRIGGERED_ROOM};
    pub use crate::dht::store::{MAX_PER_TOPIC, RECORD_TTL as DHT_RECORD_TTL};
    pub use crate::limits::AMPLIFICATION_FACTOR;
    pub use crate::mainline::engine::{PACING, QUERY_TIMEOUT};
    pub use crate::ratelimit::{BURST as RATE_BURST, RATE_PER_SECOND};
    pub use crate::relay::cookie::COOKIE_ROTATION;
    pub use crate::relay::probes::PROBE_TIMEOUT;
    pub use crate::relay::server::UNPAIRED_GRACE;
    pub use crate::rtc::copies::{COPY_SHARE_PERCENT, UNMEASURED_COPIES};
    pub use crate::rtc::link::MAX_COPIES;
    pub use crate::rtc::window::{MAX_WINDOW, MIN_WINDOW};
    pub use crate::rtc::{OUTBOX_LIMIT, OUTBOX_PAUSE};
    pub use crate::sources::lan::{ANSWER_INTERVAL, BEACON_BACKOFF, MAX_ANSWERED};
    pub use crate::sources::mainline::{HELLO_SCHEDULE, MAX_CANDIDATES, MAX_NEW_CANDIDATES};
    pub use crate::stream::{SEND_QUEUE, STREAM_LINGER};
}
