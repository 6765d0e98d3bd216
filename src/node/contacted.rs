//! The IPs this node has sent to, so a reachability probe (§5.8) that
//! arrives from one of them is not taken for proof that unsolicited
//! datagrams get in: our own datagram may have opened the NAT for it.
//!
//! Bounded: after [`MAX_CONTACTED`] IPs the set stops growing and says so,
//! and every probe after that is inconclusive.

use crate::addr::source_key;
use std::collections::BTreeSet;
use std::net::IpAddr;

/// IPs remembered.
pub const MAX_CONTACTED: usize = 4096;

/// The IPs sent to so far.
#[derive(Debug, Default)]
pub(super) struct Contacted {
    ips: BTreeSet<IpAddr>,
    last: Option<IpAddr>,
    full: bool,
}

impl Contacted {
    /// A datagram went to `ip`.
    pub(super) fn sent_to(&mut self, ip: IpAddr) {
        // An IPv6 host owns its whole /64: a probe from anywhere in it is
        // one from a host we sent to.
        let ip = source_key(ip);
        // Most datagrams go where the one before went.
        if self.last == Some(ip) {
            return;
        }
        self.last = Some(ip);
        if self.ips.len() < MAX_CONTACTED {
            self.ips.insert(ip);
        } else if !self.ips.contains(&ip) {
            self.full = true;
        }
    }

    /// True unless we know we never sent to `ip`.
    pub(super) fn maybe_sent_to(&self, ip: IpAddr) -> bool {
        self.full || self.ips.contains(&source_key(ip))
    }

    /// IPs remembered.
    pub(super) fn len(&self) -> usize {
        self.ips.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_until_full_then_doubts_everything() {
        let mut contacted = Contacted::default();
        let ip = |i: u32| IpAddr::from(std::net::Ipv4Addr::from(i));
        contacted.sent_to(ip(1));
        contacted.sent_to(ip(1));
        assert!(contacted.maybe_sent_to(ip(1)));
        assert!(!contacted.maybe_sent_to(ip(2)));
        for i in 0..MAX_CONTACTED as u32 + 10 {
            contacted.sent_to(ip(i + 100));
        }
        assert_eq!(contacted.len(), MAX_CONTACTED);
        assert!(contacted.maybe_sent_to(ip(2)), "full: no longer sure");
    }
}
