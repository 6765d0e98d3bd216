//! The most recent addresses that answered our requests, bounded: an
//! address here has shown it receives where it claims, so answers to it
//! are not limited by the amplification bound.

use std::collections::{BTreeSet, VecDeque};
use std::net::SocketAddr;

/// Addresses remembered as proven.
pub const MAX_VERIFIED: usize = 1024;

/// The set, oldest forgotten first.
#[derive(Default)]
pub(super) struct VerifiedAddresses {
    order: VecDeque<SocketAddr>,
    set: BTreeSet<SocketAddr>,
}

impl VerifiedAddresses {
    /// `addr` answered one of our requests.
    pub(super) fn insert(&mut self, addr: SocketAddr) {
        if self.set.insert(addr) {
            self.order.push_back(addr);
            if self.order.len() > MAX_VERIFIED
                && let Some(old) = self.order.pop_front()
            {
                self.set.remove(&old);
            }
        }
    }

    /// True if `addr` answered recently enough to be remembered.
    pub(super) fn contains(&self, addr: &SocketAddr) -> bool {
        self.set.contains(addr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_address_is_forgotten_first() {
        let mut verified = VerifiedAddresses::default();
        let addr = |i: usize| SocketAddr::from(([10, 0, (i >> 8) as u8, i as u8], 1));
        for i in 0..=MAX_VERIFIED {
            verified.insert(addr(i));
        }
        assert!(!verified.contains(&addr(0)));
        assert!(verified.contains(&addr(1)) && verified.contains(&addr(MAX_VERIFIED)));
        verified.insert(addr(5));
        assert!(
            verified.contains(&addr(1)),
            "a repeat does not push anyone out"
        );
    }
}
