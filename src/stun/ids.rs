//! The two values every STUN message carries in its header (RFC 5389 §6),
//! shared by the message and attribute codecs (XOR-MAPPED-ADDRESS is
//! XORed with both).

/// The fixed value in bytes 4..8 of every RFC 5389 message.
pub const MAGIC_COOKIE: u32 = 0x2112_A442;

/// The 96-bit transaction ID that pairs a response with its request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TransactionId(pub [u8; 12]);
