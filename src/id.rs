//! 256-bit identifiers of the Kademlia key space and the XOR metric.
//!
//! Node IDs (SHA-256 of a node's public key) and meeting topics live in the
//! same space; a lookup for a topic finds the nodes whose IDs are closest to
//! it. Distances compare as 256-bit big-endian integers.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::hex::{hex, unhex};

/// Number of bits in an ID.
pub const ID_BITS: usize = 256;

/// A node's ID, or any key in the DHT's key space.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct NodeId(pub [u8; 32]);

/// XOR distance between two IDs; smaller is closer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Distance(pub [u8; 32]);

impl NodeId {
    /// XOR distance to `other`.
    pub fn distance(&self, other: &NodeId) -> Distance {
        let mut out = [0u8; 32];
        for (o, (a, b)) in out.iter_mut().zip(self.0.iter().zip(other.0.iter())) {
            *o = a ^ b;
        }
        Distance(out)
    }

    /// First 8 hex digits, for human-readable output.
    pub fn short(&self) -> String {
        hex(&self.0[..4])
    }

    /// The ID written as 64 hex digits (either case), as `Display` prints
    /// it; `None` for anything else.
    pub fn from_hex(text: &str) -> Option<Self> {
        unhex(text)?.try_into().ok().map(Self)
    }
}

impl Distance {
    /// Index of the k-bucket a node at this distance belongs to: 255 minus the
    /// number of leading zero bits (so bucket 255 holds the far half of the
    /// space), or `None` for distance zero (ourselves).
    pub fn bucket_index(&self) -> Option<usize> {
        let leading = self.leading_zeros();
        (leading < ID_BITS).then(|| ID_BITS - 1 - leading)
    }

    /// Number of leading zero bits.
    pub fn leading_zeros(&self) -> usize {
        let mut zeros = 0;
        for byte in self.0 {
            if byte == 0 {
                zeros += 8;
            } else {
                return zeros + byte.leading_zeros() as usize;
            }
        }
        zeros
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex(&self.0))
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeId({})", self.short())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_hex_reads_display_and_only_a_whole_id() {
        let id = id(0xab, 0x01);
        assert_eq!(NodeId::from_hex(&id.to_string()), Some(id));
        assert_eq!(NodeId::from_hex(&id.to_string().to_uppercase()), Some(id));
        assert_eq!(NodeId::from_hex(&id.to_string()[..62]), None);
        assert_eq!(NodeId::from_hex(&format!("{id}00")), None);
        assert_eq!(NodeId::from_hex(&id.short()), None);
    }

    fn id(first: u8, last: u8) -> NodeId {
        let mut bytes = [0u8; 32];
        bytes[0] = first;
        bytes[31] = last;
        NodeId(bytes)
    }

    #[test]
    fn xor_metric_and_buckets() {
        let zero = id(0, 0);
        assert_eq!(zero.distance(&zero).bucket_index(), None);
        assert_eq!(zero.distance(&id(0, 1)).bucket_index(), Some(0));
        assert_eq!(zero.distance(&id(0x80, 0)).bucket_index(), Some(255));
        assert_eq!(zero.distance(&id(0x01, 0)).bucket_index(), Some(248));
        let (a, b) = (id(3, 9), id(200, 1));
        assert_eq!(a.distance(&b), b.distance(&a));
        assert!(zero.distance(&id(0, 1)) < zero.distance(&id(1, 0)));
    }
}
