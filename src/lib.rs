//! tinynode: a tiny peer-to-peer node.

pub mod hex;
pub mod rng;
pub mod stun;
pub mod transmit;
