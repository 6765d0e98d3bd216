//! A small Kademlia DHT over the node's UDP socket: IDs, wire format,
//! routing table, lookups, record store and the engine that ties them.

pub mod engine;
pub mod lookup;
pub mod routing;
pub mod store;
pub mod token;
pub mod wire;
