//! The BitTorrent Mainline DHT (BEP 5), as a polite read-only client
//! (BEP 43) on the node's one socket: the bencode codec, KRPC messages and
//! the client engine. It reuses the tinynode DHT's lookup, routing table
//! and bootstrap over padded 160-bit IDs, so it sits one layer above
//! `dht/`; nothing in `dht/` imports it. What meetings do with it lives in
//! `sources/mainline.rs` and `node/mainline.rs`.

pub mod bencode;
pub mod bep42;
pub mod engine;
pub mod krpc;
