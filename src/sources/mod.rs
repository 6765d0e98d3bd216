//! Member sources: the ways a node finds the sealed records of its
//! meeting's members and makes its own record findable.
//!
//! Each source is a small sans-IO state machine that the node drives and
//! whose findings it hands to [`Membership`](crate::membership::Membership)
//! as [`Found`](crate::membership::Found) records tagged with
//! [`Via`](crate::api::Via) and a [`SignalPath`](crate::membership::SignalPath).
//! Adding a source means a file here, a `Via` variant and its glue in
//! `node/`; membership and the connections do not change.
//!
//! - [`dht`]: tinynode's own Kademlia DHT (`--bootstrap`): topic lookups on
//!   a backing-off schedule and announces to the closest nodes.
//! - [`mainline`]: the BitTorrent Mainline DHT: hourly infohashes looked up
//!   and announced, and hellos to the addresses they list.
//! - [`lan`]: the local network: a beacon on a backing-off schedule, and
//!   a hello to each new member heard.
//!
//! Beside them, [`relays`] finds relays rather than members: the Mainline
//! DHT as a directory of `serve --relay` nodes.

pub mod dht;
pub mod lan;
pub mod mainline;
pub mod relays;
