//! tinynode: a tiny peer-to-peer node.

pub mod stun;
