//! Member sources: the ways a node finds the sealed records of its
//! meeting's members and makes its own record findable.
//!
//! Each source is a small sans-IO state machine that the node drives and
//! whose findings it hands to [`Membership`](crate::membership::Membership)
//! as [`Found`](crate::membership::Found) records tagged with
//! [`Via`](crate::api::Via) and a [`SignalPath`](crate::membership::SignalPath).
//! [`Sources`] holds the meeting's sources and is the one place that
//! names each of them: it creates them, finds their earliest deadline and
//! tells them when our addresses change. Adding a source means a file
//! here, a field of [`Sources`], a `Via` variant, and its glue in `node/`
//! (one file: what its schedule asks for, called from
//! `Node::sources_timeout`); membership and the connections do not change.
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

use std::time::Instant;

use crate::id::NodeId;
use crate::mainline::krpc::Id;
use dht::DhtSource;
use lan::LanSource;
use mainline::MainlineSource;

/// The member sources of one meeting.
pub struct Sources {
    /// tinynode's DHT (always on: it is also how signals travel).
    pub dht: DhtSource,
    /// The Mainline DHT, when the node runs a Mainline client.
    pub mainline: Option<MainlineSource>,
    /// The local network, when LAN beacons are on.
    pub lan: Option<LanSource>,
}

impl Sources {
    /// The sources of the meeting whose DHT topic is `topic`: Mainline
    /// with `infohash` (the meeting's infohash of each window) when given,
    /// LAN beacons when `lan`.
    pub fn new(
        now: Instant,
        topic: NodeId,
        infohash: Option<Box<dyn Fn(u64) -> Id>>,
        lan: bool,
    ) -> Self {
        Self {
            dht: DhtSource::new(now, topic),
            mainline: infohash.map(|infohash| MainlineSource::new(now, infohash)),
            lan: lan.then(|| LanSource::new(now)),
        }
    }

    /// The earliest deadline of any source; Mainline lookups count once
    /// its client is bootstrapped (`mainline_ready`).
    pub fn poll_timeout(&self, mainline_ready: bool) -> Option<Instant> {
        [
            self.dht.poll_timeout(),
            self.mainline
                .as_ref()
                .and_then(|m| m.poll_timeout(mainline_ready)),
            self.lan.as_ref().and_then(LanSource::poll_timeout),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Our addresses changed: every source announces again.
    pub fn addresses_changed(&mut self) {
        self.dht.addresses_changed();
        if let Some(mainline) = self.mainline.as_mut() {
            mainline.addresses_changed();
        }
        if let Some(lan) = self.lan.as_mut() {
            lan.addresses_changed();
        }
    }
}
