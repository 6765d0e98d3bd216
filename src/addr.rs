//! Address families, and the one form every address is compared in.
//!
//! tinynode runs one socket per address family (`protocol-spec.md` §1.1).
//! An IPv4 address can still arrive written as IPv6 (`::ffff:a.b.c.d`, a
//! v4-mapped address, from a dual-stack socket of a peer or in a
//! contact list); [`canonical`] turns it into the IPv4 address, and every
//! place that compares, hashes, rate-limits or tokenizes an address uses
//! the canonical form. Rate limits and per-source quotas key IPv6 sources
//! by their /64 ([`source_key`]): one host can use every address of its
//! /64, so counting each address apart would multiply its allowance.
//!
//! A leaf: imports nothing from the crate.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr, SocketAddr, SocketAddrV6};

/// An address family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    /// IPv4.
    V4,
    /// IPv6.
    V6,
}

impl Family {
    /// Both families, IPv4 first.
    pub const ALL: [Family; 2] = [Family::V4, Family::V6];

    /// The family of `addr`, a v4-mapped IPv6 address counting as IPv4.
    pub fn of(addr: SocketAddr) -> Self {
        Self::of_ip(addr.ip())
    }

    /// The family of `ip`, a v4-mapped IPv6 address counting as IPv4.
    pub fn of_ip(ip: IpAddr) -> Self {
        match canonical_ip(ip) {
            IpAddr::V4(_) => Self::V4,
            IpAddr::V6(_) => Self::V6,
        }
    }

    /// `"ipv4"` or `"ipv6"`, as events and `doctor` print it.
    pub fn name(self) -> &'static str {
        match self {
            Self::V4 => "ipv4",
            Self::V6 => "ipv6",
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `ip` with a v4-mapped IPv6 address (`::ffff:a.b.c.d`) written as the
/// IPv4 address it is; any other address unchanged.
pub fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        IpAddr::V4(_) => ip,
    }
}

/// `addr` with its IP in canonical form ([`canonical_ip`]) and no IPv6
/// flow label; the scope ID of a link-local address stays (it names the
/// link the peer is on, needed to answer it), any other is dropped.
pub fn canonical(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V6(v6) if v6.ip().to_ipv4_mapped().is_none() => {
            let scope = if v6.ip().is_unicast_link_local() {
                v6.scope_id()
            } else {
                0
            };
            SocketAddr::V6(SocketAddrV6::new(*v6.ip(), v6.port(), 0, scope))
        }
        _ => SocketAddr::new(canonical_ip(addr.ip()), addr.port()),
    }
}

/// The key a source is rate-limited and counted by: its canonical IPv4
/// address, or the /64 prefix of its IPv6 address (the rest zeroed).
pub fn source_key(ip: IpAddr) -> IpAddr {
    match canonical_ip(ip) {
        IpAddr::V6(v6) => {
            let [a, b, c, d, ..] = v6.segments();
            IpAddr::V6(Ipv6Addr::new(a, b, c, d, 0, 0, 0, 0))
        }
        v4 => v4,
    }
}

/// The key sources are counted by in a second, wider tier: the /24 of an
/// IPv4 address or the /48 of an IPv6 address (the rest zeroed). One host
/// or one customer usually holds a whole /24 or /48, so a quota per
/// [`source_key`] alone would let it multiply its share.
pub fn prefix_key(ip: IpAddr) -> IpAddr {
    match canonical_ip(ip) {
        IpAddr::V6(v6) => {
            let [a, b, c, ..] = v6.segments();
            IpAddr::V6(Ipv6Addr::new(a, b, c, 0, 0, 0, 0, 0))
        }
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            IpAddr::V4(std::net::Ipv4Addr::new(a, b, c, 0))
        }
    }
}

/// The key DHT nodes are kept diverse by (`protocol-spec.md` §5.5): the /24
/// of a public IPv4 address, the /64 of a public IPv6 address; `None` for
/// an address of a private network or loopback, where one host running
/// many nodes is the normal case (a lab, a LAN) and no Sybil from the
/// internet can be.
pub fn diversity_key(ip: IpAddr) -> Option<IpAddr> {
    let ip = canonical_ip(ip);
    if Scope::of(ip) < Scope::Public {
        return None;
    }
    Some(match ip {
        v4 @ IpAddr::V4(_) => prefix_key(v4),
        v6 => source_key(v6),
    })
}

/// The wide network of `ip`, for spreading choices over the internet: its
/// IPv4 /16 or IPv6 /32, as one number (families apart).
pub fn wide_network(ip: IpAddr) -> u128 {
    match canonical_ip(ip) {
        IpAddr::V4(v4) => u128::from(u32::from(v4) >> 16),
        IpAddr::V6(v6) => (u128::from(v6) >> 96) | 1 << 64,
    }
}

/// How widely an address can be reached, narrowest first. An address of a
/// scope is usable (as a peer, a contact, a relay source) only from a
/// vantage point of that scope or a narrower one: a node on the public
/// internet never sends to, or takes from the network, a private or
/// loopback address it was told about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    /// Loopback.
    Loopback,
    /// Private (RFC 1918, shared CGN space 100.64/10, the benchmarking
    /// networks 198.18/15 of RFC 2544, IPv4 and IPv6 link-local, IPv6
    /// unique local): never routed on the internet, so only hosts of the
    /// same network send from or to it.
    Private,
    /// Everything else: the public internet (the documentation ranges
    /// count as public, as the unit tests' stand-in internet).
    Public,
}

impl Scope {
    /// The scope of `ip`, after [`canonical_ip`].
    pub fn of(ip: IpAddr) -> Self {
        match canonical_ip(ip) {
            IpAddr::V4(v4) if v4.is_loopback() => Self::Loopback,
            IpAddr::V4(v4) => {
                let [a, b, ..] = v4.octets();
                let cgnat = a == 100 && (64..128).contains(&b);
                let benchmarking = a == 198 && (b == 18 || b == 19);
                if v4.is_private() || v4.is_link_local() || cgnat || benchmarking {
                    Self::Private
                } else {
                    Self::Public
                }
            }
            IpAddr::V6(v6) if v6.is_loopback() => Self::Loopback,
            IpAddr::V6(v6) if v6.is_unique_local() || v6.is_unicast_link_local() => Self::Private,
            IpAddr::V6(_) => Self::Public,
        }
    }
}

/// True if `addr`, named by or arriving at a node that sees the network
/// from `vantage`, is one it may use: a unicast address with a port, of a
/// scope at least as wide as the vantage point's (a public node ignores
/// private and loopback addresses; a private one ignores loopback). An
/// unspecified vantage point (a wildcard socket with no known public
/// address) allows every scope.
pub fn usable_from(addr: SocketAddr, vantage: IpAddr) -> bool {
    let ip = canonical_ip(addr.ip());
    let broadcast = matches!(ip, IpAddr::V4(v4) if v4.is_broadcast());
    let unicast = addr.port() != 0 && !ip.is_unspecified() && !ip.is_multicast() && !broadcast;
    unicast && (vantage.is_unspecified() || Scope::of(ip) >= Scope::of(vantage))
}

/// True if a peer could use `ip` to reach us: not unspecified, not
/// multicast, not IPv6 link-local (which needs a scope ID no peer shares).
/// Loopback stays (members on one host). What a record or candidate may
/// carry.
pub fn shareable(ip: IpAddr) -> bool {
    let ip = canonical_ip(ip);
    let link_local = matches!(ip, IpAddr::V6(v6) if v6.is_unicast_link_local());
    !(ip.is_unspecified() || ip.is_multicast() || link_local)
}

/// One value per address family, either or both absent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PerFamily<T> {
    v4: Option<T>,
    v6: Option<T>,
}

impl<T> Default for PerFamily<T> {
    fn default() -> Self {
        Self { v4: None, v6: None }
    }
}

impl<T> PerFamily<T> {
    /// The value of `family`.
    pub fn get(&self, family: Family) -> Option<&T> {
        match family {
            Family::V4 => self.v4.as_ref(),
            Family::V6 => self.v6.as_ref(),
        }
    }

    /// The value of `family`, mutable.
    pub fn get_mut(&mut self, family: Family) -> Option<&mut T> {
        match family {
            Family::V4 => self.v4.as_mut(),
            Family::V6 => self.v6.as_mut(),
        }
    }

    /// Sets the value of `family`, returning the one it replaces.
    pub fn set(&mut self, family: Family, value: Option<T>) -> Option<T> {
        match family {
            Family::V4 => std::mem::replace(&mut self.v4, value),
            Family::V6 => std::mem::replace(&mut self.v6, value),
        }
    }

    /// The values present, IPv4 first, with their families.
    pub fn iter(&self) -> impl Iterator<Item = (Family, &T)> {
        let v4 = self.v4.as_ref().map(|v| (Family::V4, v));
        let v6 = self.v6.as_ref().map(|v| (Family::V6, v));
        v4.into_iter().chain(v6)
    }

    /// The values present, IPv4 first, mutable.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (Family, &mut T)> {
        let v4 = self.v4.as_mut().map(|v| (Family::V4, v));
        let v6 = self.v6.as_mut().map(|v| (Family::V6, v));
        v4.into_iter().chain(v6)
    }

    /// The value for `addr`'s family.
    pub fn for_addr(&self, addr: SocketAddr) -> Option<&T> {
        self.get(Family::of(addr))
    }

    /// The value for `addr`'s family, mutable.
    pub fn for_addr_mut(&mut self, addr: SocketAddr) -> Option<&mut T> {
        self.get_mut(Family::of(addr))
    }
}

#[cfg(test)]
mod scope_tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn prefixes_are_slash_24_and_slash_48() {
        assert_eq!(prefix_key(ip("192.0.2.77")), ip("192.0.2.0"));
        assert_eq!(prefix_key(ip("::ffff:192.0.2.77")), ip("192.0.2.0"));
        assert_eq!(prefix_key(ip("2001:db8:7:8:9::1")), ip("2001:db8:7::"));
    }

    #[test]
    fn scopes_order_loopback_private_public() {
        assert_eq!(Scope::of(ip("127.0.0.1")), Scope::Loopback);
        assert_eq!(Scope::of(ip("::1")), Scope::Loopback);
        for private in [
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "100.64.0.1",
            "169.254.1.1",
            "fd00::1",
            "fe80::1",
        ] {
            assert_eq!(Scope::of(ip(private)), Scope::Private, "{private}");
        }
        for public in [
            "8.8.8.8",
            "198.20.0.1",
            "198.51.100.1",
            "2001:db8::1",
            "100.128.0.1",
        ] {
            assert_eq!(Scope::of(ip(public)), Scope::Public, "{public}");
        }
    }

    #[test]
    fn a_public_vantage_point_uses_only_public_unicast_addresses() {
        let public = ip("198.51.100.1");
        let usable = |a: &str| usable_from(a.parse().unwrap(), public);
        assert!(usable("203.0.113.5:1"));
        assert!(!usable("10.0.0.1:1"));
        assert!(!usable("127.0.0.1:1"));
        assert!(!usable("203.0.113.5:0"));
        assert!(!usable("224.0.0.1:1"));
        assert!(!usable("255.255.255.255:1"));
        assert!(!usable("0.0.0.0:1"));
        assert!(usable_from("10.0.0.1:1".parse().unwrap(), ip("10.9.9.9")));
        assert!(!usable_from("127.0.0.1:1".parse().unwrap(), ip("10.9.9.9")));
        assert!(usable_from("127.0.0.1:1".parse().unwrap(), ip("0.0.0.0")));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_v4_mapped_address_is_the_ipv4_address() {
        assert_eq!(
            canonical(addr("[::ffff:192.0.2.7]:4000")),
            addr("192.0.2.7:4000")
        );
        assert_eq!(Family::of(addr("[::ffff:192.0.2.7]:4000")), Family::V4);
        assert_eq!(
            canonical(addr("[2001:db8::1]:4000")),
            addr("[2001:db8::1]:4000")
        );
        assert_eq!(canonical(addr("192.0.2.7:1")), addr("192.0.2.7:1"));
        // The flow label goes; a link-local address keeps its scope (the
        // link to answer on), any other address loses it.
        let scoped = |ip: &str| SocketAddr::V6(SocketAddrV6::new(ip.parse().unwrap(), 9, 7, 3));
        assert_eq!(
            canonical(scoped("fe80::1")),
            SocketAddr::V6(SocketAddrV6::new("fe80::1".parse().unwrap(), 9, 0, 3))
        );
        assert_eq!(canonical(scoped("fd00::1")), addr("[fd00::1]:9"));
    }

    #[test]
    fn an_ipv6_source_counts_by_its_slash_64() {
        let a = source_key("2001:db8:1:2:aaaa::1".parse().unwrap());
        let b = source_key("2001:db8:1:2:ffff:1:2:3".parse().unwrap());
        let other = source_key("2001:db8:1:3::1".parse().unwrap());
        assert_eq!(a, b);
        assert_ne!(a, other);
        assert_eq!(a, "2001:db8:1:2::".parse::<IpAddr>().unwrap());
        assert_eq!(
            source_key("::ffff:10.0.0.1".parse().unwrap()),
            "10.0.0.1".parse::<IpAddr>().unwrap(),
            "a v4-mapped source counts as its IPv4 address, not a /64"
        );
    }

    #[test]
    fn link_local_and_wildcard_addresses_are_not_shared() {
        assert!(!shareable("fe80::1".parse().unwrap()));
        assert!(!shareable("::".parse().unwrap()));
        assert!(!shareable("0.0.0.0".parse().unwrap()));
        assert!(!shareable("ff02::1".parse().unwrap()));
        assert!(shareable("::1".parse().unwrap()));
        assert!(shareable("fd00::1".parse().unwrap()));
        assert!(shareable("2001:db8::1".parse().unwrap()));
        assert!(shareable("10.0.0.1".parse().unwrap()));
    }

    #[test]
    fn per_family_values_are_found_by_address() {
        let mut values = PerFamily::default();
        values.set(Family::V6, Some("six"));
        assert_eq!(values.for_addr(addr("[::1]:1")), Some(&"six"));
        assert_eq!(values.for_addr(addr("[::ffff:1.2.3.4]:1")), None);
        values.set(Family::V4, Some("four"));
        let order: Vec<Family> = values.iter().map(|(f, _)| f).collect();
        assert_eq!(order, [Family::V4, Family::V6]);
    }
}
