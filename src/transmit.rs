//! The one thing the core asks the driver to send.
//!
//! A leaf: imports nothing from the crate.

use std::net::SocketAddr;

/// A datagram the node wants sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// The local address to send from: the driver sends on the socket bound
    /// there.
    pub source: SocketAddr,
    /// Where to send it.
    pub destination: SocketAddr,
    /// The bytes of the datagram.
    pub payload: Vec<u8>,
}

/// The node's local addresses, and which one a datagram to a destination
/// leaves from: the first of the destination's address family, else the
/// first of all.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalAddrs(Vec<SocketAddr>);

impl LocalAddrs {
    /// The addresses, in order of preference; at least one.
    pub fn new(addrs: Vec<SocketAddr>) -> Self {
        debug_assert!(!addrs.is_empty(), "a node has at least one socket");
        Self(addrs)
    }

    /// Every local address.
    pub fn all(&self) -> &[SocketAddr] {
        &self.0
    }

    /// The first address, for logs and the record's host address.
    pub fn primary(&self) -> SocketAddr {
        self.0
            .first()
            .copied()
            .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)))
    }

    /// True if a socket of `destination`'s address family exists to send
    /// to it from.
    pub fn reach(&self, destination: SocketAddr) -> bool {
        self.0.iter().any(|a| a.is_ipv4() == destination.is_ipv4())
    }

    /// The address to send to `destination` from.
    pub fn toward(&self, destination: SocketAddr) -> SocketAddr {
        self.0
            .iter()
            .copied()
            .find(|a| a.is_ipv4() == destination.is_ipv4())
            .unwrap_or_else(|| self.primary())
    }

    /// A datagram to `destination` from the matching local address.
    pub fn transmit(&self, destination: SocketAddr, payload: Vec<u8>) -> Transmit {
        Transmit {
            source: self.toward(destination),
            destination,
            payload,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datagrams_leave_from_the_address_of_their_family() {
        let v4: SocketAddr = "192.0.2.1:4000".parse().unwrap();
        let v6: SocketAddr = "[2001:db8::1]:4000".parse().unwrap();
        let locals = LocalAddrs::new(vec![v4, v6]);
        assert_eq!(locals.toward("198.51.100.7:1".parse().unwrap()), v4);
        assert_eq!(locals.toward("[2001:db8::9]:1".parse().unwrap()), v6);
        let only_v4 = LocalAddrs::new(vec![v4]);
        assert_eq!(only_v4.toward("[2001:db8::9]:1".parse().unwrap()), v4);
    }
}
