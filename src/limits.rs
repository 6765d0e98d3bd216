//! Limits shared by several protocols on the node's socket.
//!
//! A leaf: imports nothing from the crate.

/// Largest datagram the node reads; anything longer is dropped unread.
pub const MAX_DATAGRAM_LEN: usize = 2048;

/// Answers to an address that has not proved it receives there (STUN
/// Binding answers, DHT answers) are at most this many times the size of
/// the request (`protocol-spec.md` §7.3).
pub const AMPLIFICATION_FACTOR: usize = 3;
