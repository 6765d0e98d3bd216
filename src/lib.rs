//! tinynode: a tiny peer-to-peer node.
//!
//! Members of a *meeting* (everyone who joins with the same code) find each
//! other through a small Kademlia DHT and talk over direct, encrypted WebRTC
//! data channels, all on one UDP socket. The protocol logic is a sans-IO
//! [`node::Node`]: it takes `(now, input)` and yields datagrams to send,
//! events and its next deadline, so it runs the same under the mio
//! [`driver`] and in tests with virtual time. Only the driver touches
//! sockets, the clock and OS randomness. `protocol-spec.md` is the wire
//! contract.
//!
//! Three nodes in memory: a bootstrap node and two members who find each
//! other, connect (the connection is automatic once a member is found),
//! and exchange a message:
//!
//! ```
//! use std::net::SocketAddr;
//! use std::time::{Duration, Instant};
//! use tinynode::discovery::PeerStatus;
//! use tinynode::identity::Identity;
//! use tinynode::meeting::Meeting;
//! use tinynode::node::{Command, Event, Input, Node, NodeConfig, Output, WallClock};
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
//! let meeting = Meeting::derive("library example").unwrap();
//! for member in &mut nodes[1..] {
//!     member.handle_input(start, Input::Command(Command::Join(meeting.clone())));
//! }
//!
//! // A perfect network: every datagram arrives at once; time moves in 10 ms steps.
//! let mut now = start;
//! let mut heard = None;
//! while heard.is_none() && now < start + Duration::from_secs(30) {
//!     now += Duration::from_millis(10);
//!     let mut wire: Vec<(SocketAddr, SocketAddr, Vec<u8>)> = Vec::new();
//!     for node in &mut nodes {
//!         node.handle_input(now, Input::Timeout);
//!     }
//!     loop {
//!         for (i, node) in nodes.iter_mut().enumerate() {
//!             loop {
//!                 match node.poll_output() {
//!                     Output::Transmit(t) => wire.push((addrs[i], t.destination, t.payload)),
//!                     Output::Event(Event::Connected { .. }) if i == 1 => {
//!                         node.handle_input(now, Input::Command(Command::Send("hello".into())))
//!                     }
//!                     Output::Event(Event::Message { text, .. }) => heard = Some(text),
//!                     Output::Event(_) => {}
//!                     Output::Wait(_) => break,
//!                 }
//!             }
//!         }
//!         if wire.is_empty() {
//!             break;
//!         }
//!         for (source, destination, payload) in wire.drain(..) {
//!             if let Some(to) = addrs.iter().position(|a| *a == destination) {
//!                 nodes[to].handle_input(now, Input::Receive { source, data: &payload });
//!             }
//!         }
//!     }
//! }
//! assert_eq!(heard.as_deref(), Some("hello"));
//! // The member that found the other first lists it as connected.
//! let connected = |a: &Node, b: &Node| {
//!     a.known_peers().iter().any(|p| p.node_id == b.node_id() && p.status == PeerStatus::Connected)
//! };
//! assert!(connected(&nodes[1], &nodes[2]) || connected(&nodes[2], &nodes[1]));
//! ```

pub mod codec;
pub mod connections;
pub mod demux;
pub mod dht;
pub mod discovery;
pub mod driver;
pub mod fuzzing;
pub mod hex;
pub mod id;
pub mod identity;
pub mod limits;
pub mod meeting;
pub mod node;
pub mod ratelimit;
pub mod record;
pub mod rng;
pub mod sealed;
pub mod signal;
pub mod stun;
pub mod transmit;
