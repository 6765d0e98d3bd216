//! A small Kademlia DHT over the node's sockets: the wire format, the
//! routing table, lookups, the record store, announce tokens, and the
//! engine that ties them (requests in `rpc`, answers in `server`, joining
//! in `bootstrap`, what floods may cost in `budget`). DHT nodes store and forward opaque blobs: nothing here
//! knows what a meeting record or a signal says.

pub mod announce;
pub mod bootstrap;
pub mod budget;
pub mod engine;
mod event;
pub mod lookup;
pub mod requests;
pub mod routing;
pub mod rpc;
mod server;
pub mod store;
pub mod token;
mod verified;
pub mod wire;

pub use server::RECORD_BYTES_PER_REPLY;
