//! tinynode: a tiny peer-to-peer node.

pub mod demux;
pub mod driver;
pub mod fuzzing;
pub mod hex;
pub mod node;
pub mod rng;
pub mod stun;
pub mod transmit;
