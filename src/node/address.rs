//! Our public addresses as others report them, one per address family:
//! from STUN servers (trusted at once: the user named them) or from DHT
//! and Mainline responders' reports (a change needs two different
//! responders to agree), and what those reports say about the NAT or
//! firewall of each family (`nat.rs`).

use std::net::SocketAddr;
use std::time::Instant;

use log::debug;

use super::Node;
use crate::addr::{Family, PerFamily, canonical};
use crate::api::{AddressSource, Event};
use crate::nat::{NatClass, NatSampler};
use crate::transmit::LocalAddrs;

/// The public address and NAT class of each family we have a socket of.
pub(super) struct PublicAddrs(PerFamily<ObservedAddress>);

impl PublicAddrs {
    /// Nothing reported yet, for each socket in `locals`.
    pub(super) fn new(locals: &LocalAddrs) -> Self {
        let mut families = PerFamily::default();
        for &local in locals.all() {
            if families.for_addr(local).is_none() {
                families.set(Family::of(local), Some(ObservedAddress::new(local)));
            }
        }
        Self(families)
    }

    /// The public address of `family`, once known.
    pub(super) fn current(&self, family: Family) -> Option<SocketAddr> {
        self.0.get(family).and_then(|o| o.current)
    }

    /// Every public address known, IPv4 first.
    pub(super) fn all(&self) -> Vec<SocketAddr> {
        self.0.iter().filter_map(|(_, o)| o.current).collect()
    }

    /// The public addresses worth advertising, IPv4 first
    /// ([`ObservedAddress::advertised`]).
    pub(super) fn advertised(&self) -> Vec<SocketAddr> {
        self.0.iter().filter_map(|(_, o)| o.advertised()).collect()
    }

    /// The NAT class of `family` (unknown without a socket of it).
    pub(super) fn class(&self, family: Family) -> NatClass {
        self.0
            .get(family)
            .map_or(NatClass::Unknown, ObservedAddress::class)
    }

    /// The class of the family that connects most easily: what our record
    /// says and what decides whether attempts propose relays from the
    /// start (a member whose IPv6 is open behind a symmetric IPv4 NAT
    /// punches over IPv6). Open, then endpoint-independent, then unknown,
    /// then the rest.
    pub(super) fn best_class(&self) -> NatClass {
        let rank = |class: NatClass| match class {
            NatClass::Open => 0,
            NatClass::EndpointIndependent => 1,
            NatClass::Unknown => 2,
            NatClass::EndpointDependent { sequential: true } => 3,
            NatClass::EndpointDependent { sequential: false } => 4,
            NatClass::MultipleIps => 5,
        };
        self.0
            .iter()
            .map(|(_, o)| o.class)
            .min_by_key(|class| rank(*class))
            .unwrap_or(NatClass::Unknown)
    }

    /// A STUN server reported `address` (trusted: the user named it);
    /// true if it is news.
    pub(super) fn set_current(&mut self, address: SocketAddr) -> bool {
        let address = canonical(address);
        match self.of(address) {
            Some(observed) if observed.current != Some(address) => {
                observed.current = Some(address);
                true
            }
            _ => false,
        }
    }

    /// The tracker of `addr`'s family.
    fn of(&mut self, addr: SocketAddr) -> Option<&mut ObservedAddress> {
        self.0.for_addr_mut(addr)
    }
}

/// Tracks the public address peers report, switching to a new one only when
/// two different peers agree on it, and classifies the NAT from the reports.
pub(super) struct ObservedAddress {
    local: SocketAddr,
    pub(super) current: Option<SocketAddr>,
    candidate: Option<(SocketAddr, SocketAddr)>,
    sampler: NatSampler,
    class: NatClass,
}

impl ObservedAddress {
    /// Reports about the socket at `local`, none yet.
    pub(super) fn new(local: SocketAddr) -> Self {
        Self {
            local,
            current: None,
            candidate: None,
            sampler: NatSampler::new(local),
            class: NatClass::Unknown,
        }
    }

    /// The NAT class the reports show so far.
    pub(super) fn class(&self) -> NatClass {
        self.class
    }

    /// The public address worth advertising (in records and as a
    /// server-reflexive candidate): none behind a mapping that varies by
    /// destination, where the address one responder saw is valid only
    /// towards it.
    pub(super) fn advertised(&self) -> Option<SocketAddr> {
        self.current.filter(|_| !self.class.mapping_varies())
    }

    /// Adds a responder's report to the NAT sample; the new class if it
    /// changed.
    fn sample(&mut self, addr: SocketAddr, by: SocketAddr) -> Option<NatClass> {
        if !self.sampler.observe(by, addr) {
            return None;
        }
        let class = self.sampler.class();
        // A sampler still deciding (after a change of network) keeps the
        // class it replaces until it decides.
        (class != self.class && class != NatClass::Unknown).then(|| {
            self.class = class;
            class
        })
    }

    /// Returns the address to report if it changed.
    pub(super) fn observe(&mut self, addr: SocketAddr, by: SocketAddr) -> Option<SocketAddr> {
        match self.current {
            None => {
                self.current = Some(addr);
                Some(addr)
            }
            Some(current) if current == addr => {
                self.candidate = None;
                None
            }
            Some(_) => match self.candidate {
                Some((candidate, first_by)) if candidate == addr && first_by != by => {
                    self.current = Some(addr);
                    self.candidate = None;
                    // A new public address is a new network, or a NAT that
                    // changed: learn its class afresh.
                    self.sampler = NatSampler::new(self.local);
                    Some(addr)
                }
                _ => {
                    self.candidate = Some((addr, by));
                    None
                }
            },
        }
    }
}

impl Node {
    /// A DHT or Mainline responder (`via`) saw our request come from
    /// `addr`: votes on the public address of `addr`'s family and samples
    /// its NAT.
    pub(super) fn observed(&mut self, now: Instant, addr: SocketAddr, via: AddressSource) {
        let (addr, by) = (canonical(addr), canonical(via.reporter()));
        let family = Family::of(addr);
        let Some(public) = self.public.of(addr) else {
            debug!(
                "{}: {by} reports {addr}, but we have no {family} socket",
                via.name()
            );
            return;
        };
        if let Some(class) = public.sample(addr, by) {
            let samples = public.sampler.samples().len();
            debug!("nat: {family} {class} ({samples} reports)");
            self.events.push_back(Event::Nat {
                class,
                samples,
                family,
            });
            let needed = self.public.best_class().may_need_relay();
            if let Some(joined) = self.joined.as_mut() {
                joined.connections.set_relay_needed(needed);
            }
            // Our record carries the class, and behind a mapping that
            // varies by destination our advertised addresses lose the
            // public one: either way, tell the members again.
            self.addresses_changed();
        }
        if let Some(address) = self.public.of(addr).and_then(|p| p.observe(addr, by)) {
            debug!("{}: {by} sees us as {address}", via.name());
            if let Some(mainline) = self.mainline.for_addr_mut(address) {
                mainline.public_ip(now, address.ip());
            }
            self.addresses_changed();
            self.events.push_back(Event::PublicAddress { address, via });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_class_is_learned_again_when_the_public_address_moves() {
        let mut observed = ObservedAddress::new(addr("10.0.0.1:4000"));
        let reports = |o: &mut ObservedAddress, public: &str, ports: bool| {
            let mut last = None;
            for (i, by) in ["192.0.2.1:1", "198.51.100.1:1", "203.0.113.1:1"]
                .iter()
                .enumerate()
            {
                let mut seen = addr(public);
                if ports {
                    seen.set_port(seen.port() + i as u16 * 1000);
                }
                last = o.sample(seen, addr(by)).or(last);
                o.observe(seen, addr(by));
            }
            last
        };
        assert_eq!(
            reports(&mut observed, "203.0.113.50:4000", false),
            Some(NatClass::EndpointIndependent)
        );
        // Another network, behind a NAT that maps by destination.
        reports(&mut observed, "198.18.7.7:5000", false);
        assert_eq!(observed.current, Some(addr("198.18.7.7:5000")));
        assert_eq!(
            reports(&mut observed, "198.18.7.7:5000", true),
            Some(NatClass::EndpointDependent { sequential: false })
        );
    }

    #[test]
    fn a_change_needs_two_different_responders() {
        let mut observed = ObservedAddress::new(addr("10.0.0.1:4000"));
        let (a, b) = (addr("203.0.113.1:4000"), addr("203.0.113.2:4000"));
        let (x, y) = (addr("192.0.2.1:1"), addr("192.0.2.2:1"));
        assert_eq!(observed.observe(a, x), Some(a));
        assert_eq!(observed.observe(b, x), None);
        assert_eq!(observed.observe(b, x), None, "the same responder twice");
        assert_eq!(observed.observe(b, y), Some(b));
        assert_eq!(observed.current, Some(b));
        assert_eq!(observed.observe(b, x), None, "no change");
    }
}
