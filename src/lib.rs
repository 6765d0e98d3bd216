//! tinynode: a tiny peer-to-peer node.
//!
//! The protocol logic is a sans-IO [`node::Node`]: it takes
//! `(now, input)` and yields datagrams to send, events and its next deadline,
//! so it runs the same under the mio [`driver`] and in tests with virtual
//! time. Only the driver touches sockets, the clock and OS randomness.
//!
//! Two nodes that learn their addresses from each other, with no sockets:
//!
//! ```
//! use std::time::Instant;
//! use tinynode::identity::Identity;
//! use tinynode::node::{Command, Event, Input, Node, NodeConfig, Output, WallClock};
//!
//! let now = Instant::now();
//! let clock = WallClock { at: now, unix_ms: 1_800_000_000_000 };
//! let (a_addr, b_addr) = ("10.0.0.1:4000".parse().unwrap(), "10.0.0.2:4000".parse().unwrap());
//! let mut a = Node::new(now, NodeConfig::new(a_addr, Identity::from_seed([1; 32]), clock), [1; 32]);
//! let mut b = Node::new(now, NodeConfig::new(b_addr, Identity::from_seed([2; 32]), clock), [2; 32]);
//! a.handle_input(now, Input::Command(Command::DiscoverPublicAddress { servers: vec![b_addr] }));
//! let Output::Transmit(request) = a.poll_output() else { panic!() };
//! b.handle_input(now, Input::Receive { source: a_addr, data: &request.payload });
//! let Output::Transmit(answer) = b.poll_output() else { panic!() };
//! a.handle_input(now, Input::Receive { source: b_addr, data: &answer.payload });
//! let Output::Event(Event::PublicAddress { address, .. }) = a.poll_output() else { panic!() };
//! assert_eq!(address, a_addr);
//! ```

pub mod connections;
pub mod demux;
pub mod dht;
pub mod discovery;
pub mod driver;
pub mod fuzzing;
pub mod hex;
pub mod identity;
pub mod meeting;
pub mod node;
pub mod rng;
pub mod signal;
pub mod stun;
pub mod transmit;
