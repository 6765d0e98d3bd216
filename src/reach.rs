//! Whether unsolicited datagrams reach this node (`protocol-spec.md`
//! §5.8), as a small pure state machine: the reachability probes we asked
//! for, the IPs we have sent to (a probe from one of those proves
//! nothing: our own datagram may have opened the NAT for it), and the
//! verdict our record then carries.
//!
//! The IP set is bounded: after [`MAX_CONTACTED`] IPs it stops growing and
//! says so, and every probe after that is inconclusive.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};

use crate::addr::source_key;
use crate::api::ReachResult;
use crate::dht::wire::TxId;

/// IPs remembered.
pub const MAX_CONTACTED: usize = 4096;

/// Probes asked for, IPs contacted, and the verdict.
#[derive(Debug, Default)]
pub struct Reach {
    /// Our `ReachMe` requests whose probe may still come: transaction →
    /// the node asked.
    probes: BTreeMap<TxId, SocketAddr>,
    contacted: BTreeSet<IpAddr>,
    last_contacted: Option<IpAddr>,
    contacted_full: bool,
    asked_once: bool,
    reachable: bool,
}

impl Reach {
    /// A datagram went to `ip`.
    pub fn sent_to(&mut self, ip: IpAddr) {
        // An IPv6 host owns its whole /64: a probe from anywhere in it is
        // one from a host we sent to.
        let ip = source_key(ip);
        // Most datagrams go where the one before went.
        if self.last_contacted == Some(ip) {
            return;
        }
        self.last_contacted = Some(ip);
        if self.contacted.len() < MAX_CONTACTED {
            self.contacted.insert(ip);
        } else if !self.contacted.contains(&ip) {
            self.contacted_full = true;
        }
    }

    /// True the first time only: the node asks for its own probe once per
    /// run.
    pub fn ask_once(&mut self) -> bool {
        !std::mem::replace(&mut self.asked_once, true)
    }

    /// A `ReachMe` with transaction `txid` went to `via`.
    pub fn asked(&mut self, txid: TxId, via: SocketAddr) {
        self.probes.insert(txid, via);
    }

    /// True if a response with `txid` from `from` is a third node's probe
    /// (one of our `ReachMe` transactions, from someone other than the
    /// node asked).
    pub fn is_probe(&self, txid: &TxId, from: SocketAddr) -> bool {
        self.probes.get(txid).is_some_and(|via| *via != from)
    }

    /// A probe (see [`is_probe`](Self::is_probe)) arrived from `from`: the
    /// node asked and what it proves, or `None` if it was not one. A
    /// conclusive probe ends its transaction; after an inconclusive one
    /// the other third node may still prove it.
    pub fn on_probe(&mut self, txid: &TxId, from: SocketAddr) -> Option<(SocketAddr, ReachResult)> {
        let via = *self.probes.get(txid).filter(|via| **via != from)?;
        let result = if self.maybe_sent_to(from.ip()) {
            ReachResult::Inconclusive(from)
        } else {
            self.probes.remove(txid);
            self.reachable = true;
            ReachResult::Reached(from)
        };
        Some((via, result))
    }

    /// The node `via` answered that it asked no third node: its probes
    /// will not come.
    pub fn not_forwarded(&mut self, via: SocketAddr) {
        self.probes.retain(|_, v| *v != via);
    }

    /// True once a probe showed that unsolicited datagrams reach us.
    pub fn is_reachable(&self) -> bool {
        self.reachable
    }

    /// IPs remembered.
    pub fn contacted_len(&self) -> usize {
        self.contacted.len()
    }

    /// True unless we know we never sent to `ip`.
    fn maybe_sent_to(&self, ip: IpAddr) -> bool {
        self.contacted_full || self.contacted.contains(&source_key(ip))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(i: u32) -> SocketAddr {
        SocketAddr::from((std::net::Ipv4Addr::from(i), 4000))
    }

    #[test]
    fn a_probe_from_an_ip_never_sent_to_proves_reach() {
        let mut reach = Reach::default();
        let txid = [1; 8];
        reach.asked(txid, addr(1));
        reach.sent_to(addr(1).ip());
        reach.sent_to(addr(2).ip());
        assert!(!reach.is_probe(&txid, addr(1)), "the node asked answers");
        assert!(!reach.is_probe(&[2; 8], addr(3)), "not our ReachMe");
        assert_eq!(
            reach.on_probe(&txid, addr(2)),
            Some((addr(1), ReachResult::Inconclusive(addr(2))))
        );
        assert!(!reach.is_reachable());
        assert_eq!(
            reach.on_probe(&txid, addr(3)),
            Some((addr(1), ReachResult::Reached(addr(3))))
        );
        assert!(reach.is_reachable());
        assert_eq!(reach.on_probe(&txid, addr(4)), None, "concluded");
    }

    #[test]
    fn a_node_that_forwarded_nothing_has_no_probe_waiting() {
        let mut reach = Reach::default();
        reach.asked([1; 8], addr(1));
        reach.not_forwarded(addr(1));
        assert!(!reach.is_probe(&[1; 8], addr(3)));
        assert!(reach.ask_once());
        assert!(!reach.ask_once());
    }

    #[test]
    fn contacted_ips_are_remembered_until_full_then_everything_is_doubted() {
        let mut reach = Reach::default();
        let ip = |i: u32| IpAddr::from(std::net::Ipv4Addr::from(i));
        reach.sent_to(ip(1));
        reach.sent_to(ip(1));
        assert!(reach.maybe_sent_to(ip(1)));
        assert!(!reach.maybe_sent_to(ip(2)));
        for i in 0..MAX_CONTACTED as u32 + 10 {
            reach.sent_to(ip(i + 100));
        }
        assert_eq!(reach.contacted_len(), MAX_CONTACTED);
        assert!(reach.maybe_sent_to(ip(2)), "full: no longer sure");
    }
}
