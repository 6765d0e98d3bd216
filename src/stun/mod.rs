//! STUN (RFC 5389): the wire codec, the Binding client that discovers this
//! node's public address, and the Binding server every node runs.

pub mod attribute;
pub mod client;
pub mod fingerprint;
pub mod ids;
pub mod message;
pub mod server;
