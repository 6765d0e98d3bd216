//! Our public addresses as others report them, one per address family:
//! from STUN servers (trusted at once: the user named them) or from DHT
//! and Mainline responders' reports (a change needs two different
//! responders to agree), and what those reports say about the NAT or
//! firewall of each family (`nat.rs`).

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use log::debug;

use super::Node;
use crate::addr::{Family, PerFamily, Scope, canonical, canonical_ip, diversity_key, usable_from};
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
    /// An address one voter reported that is not current yet, and that
    /// voter's key ([`voter_key`]).
    candidate: Option<(SocketAddr, IpAddr)>,
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

    /// Counts `by`'s report that we are `addr`; the address to report if
    /// it became current. A public address becomes current only when two
    /// voters at different keys ([`voter_key`]: different /24s or /64s on
    /// the internet) report it, the first one as much as a change; an
    /// address of a private network, which only hosts of that network can
    /// report, on its first report. A report narrower in scope than our
    /// socket (a private or loopback address for a public socket) is
    /// ignored.
    pub(super) fn observe(&mut self, addr: SocketAddr, by: SocketAddr) -> Option<SocketAddr> {
        if !usable_from(addr, self.local.ip()) {
            return None;
        }
        if self.current == Some(addr) {
            self.candidate = None;
            return None;
        }
        let voter = voter_key(by.ip());
        // Votes for a new IP agree on the IP (behind a NAT that maps by
        // destination every voter sees another port); votes for a new port
        // of the current IP must agree on the port too.
        let port_only = self.current.is_some_and(|c| c.ip() == addr.ip());
        let enough = match self.candidate {
            Some((candidate, first)) if first != voter => {
                if port_only {
                    candidate == addr
                } else {
                    candidate.ip() == addr.ip()
                }
            }
            _ => false,
        };
        let first_of_a_private_network =
            self.current.is_none() && Scope::of(addr.ip()) < Scope::Public;
        if !(enough || first_of_a_private_network) {
            self.candidate = Some((addr, voter));
            return None;
        }
        if self.current.is_some() {
            // A new public address is a new network, or a NAT that
            // changed: learn its class afresh.
            self.sampler = NatSampler::new(self.local);
        }
        self.current = Some(addr);
        self.candidate = None;
        Some(addr)
    }
}

/// What address votes are counted by: a public voter's /24 (IPv4) or /64
/// (IPv6), so one host or network with many addresses is one voter; a
/// voter in a private network by its address.
fn voter_key(ip: IpAddr) -> IpAddr {
    diversity_key(ip).unwrap_or(canonical_ip(ip))
}

impl Node {
    /// The addresses of the node's sockets are now `addrs` (one per
    /// socket, in the order of [`NodeConfig::local_addrs`](crate::NodeConfig::local_addrs)):
    /// the host moved to another network. What we knew of our public
    /// addresses and NATs is forgotten and asked again (the STUN servers
    /// of the last discovery; DHT and Mainline answers), the sources
    /// re-announce, and every connection is made again, since its path
    /// used the old address. The driver calls this when the host's
    /// addresses change; nothing happens if `addrs` are the current ones
    /// or their count is not the sockets'.
    pub fn set_local_addrs(&mut self, now: Instant, addrs: Vec<SocketAddr>) {
        if addrs.as_slice() == self.locals.all() || addrs.len() != self.locals.all().len() {
            return;
        }
        log::info!(
            "our addresses changed from {:?} to {addrs:?}: gathering again",
            self.locals.all()
        );
        self.locals = LocalAddrs::new(addrs.clone());
        self.dht.set_locals(self.locals.clone());
        for &local in self.locals.all() {
            if let Some(mainline) = self.mainline.for_addr_mut(local) {
                mainline.set_local(local);
            }
        }
        self.public = PublicAddrs::new(&self.locals);
        let needed = self.public.best_class().may_need_relay();
        if let Some(joined) = self.joined.as_mut() {
            joined.connections.set_relay_needed(needed);
            joined.connections.restart_all(now, self.locals.clone());
        }
        if !self.stun_servers.is_empty() {
            self.discover_public(now, self.stun_servers.clone());
        }
        self.addresses_changed();
        self.events.push_back(Event::LocalAddresses { addrs });
    }

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
        reports(&mut observed, "198.51.7.7:5000", false);
        assert_eq!(observed.current, Some(addr("198.51.7.7:5000")));
        assert_eq!(
            reports(&mut observed, "198.51.7.7:5000", true),
            Some(NatClass::EndpointDependent { sequential: false })
        );
    }

    #[test]
    fn a_public_address_needs_two_voters_of_different_networks_even_the_first_time() {
        let mut observed = ObservedAddress::new(addr("10.0.0.1:4000"));
        let (a, b) = (addr("203.0.113.1:4000"), addr("203.0.113.2:4000"));
        let (x, x2, y) = (
            addr("192.0.2.1:1"),
            addr("192.0.2.77:2"),
            addr("198.51.100.2:1"),
        );
        assert_eq!(observed.observe(a, x), None, "one voter is not enough");
        assert_eq!(
            observed.observe(a, x2),
            None,
            "nor a second host of its /24"
        );
        assert_eq!(observed.observe(a, y), Some(a));
        assert_eq!(observed.observe(b, x), None);
        assert_eq!(observed.observe(b, x), None, "the same responder twice");
        assert_eq!(observed.observe(b, y), Some(b));
        assert_eq!(observed.current, Some(b));
        assert_eq!(observed.observe(b, x), None, "no change");
    }

    #[test]
    fn a_private_network_address_is_taken_from_one_voter_and_narrower_reports_are_ignored() {
        let mut lan = ObservedAddress::new(addr("10.0.0.1:4000"));
        assert_eq!(
            lan.observe(addr("10.0.0.1:4000"), addr("10.0.0.9:1")),
            Some(addr("10.0.0.1:4000"))
        );
        let mut public = ObservedAddress::new(addr("203.0.113.5:4000"));
        for bogus in ["10.0.0.1:4000", "127.0.0.1:4000", "0.0.0.0:4000"] {
            public.observe(addr(bogus), addr("192.0.2.1:1"));
            assert_eq!(
                public.observe(addr(bogus), addr("198.51.100.1:1")),
                None,
                "{bogus}"
            );
        }
        assert_eq!(public.current, None);
    }
}
