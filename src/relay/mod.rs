//! Relays inside the meeting and on opt-in `serve --relay` nodes,
//! `protocol-spec.md` §12: a member whose NAT maps by destination (or a
//! pair of members whose NATs filter each other) still connects, through a
//! third node both can reach.
//!
//! The relay is blind and TURN-like, but on the node's one socket: each of
//! the two members *binds* at the relay with a token both derive from the
//! meeting key ([`Meeting::relay_token`](crate::meeting::Meeting::relay_token)),
//! the relay pairs the two bindings of one token and forwards data frames
//! between them byte for byte. Each member gives str0m a *relayed*
//! candidate whose address is synthetic ([`synthetic_addr`]): str0m sends
//! from it, the node wraps those datagrams for the relay, and frames from
//! the relay are fed to str0m as coming from the peer's synthetic address.
//! Relayed candidates have ICE's lowest type preference, so a direct pair
//! wins whenever one works.
//!
//! | file | job |
//! |---|---|
//! | `wire.rs` | the frames |
//! | `server.rs` | the relaying side: bindings, pairing, quotas |
//! | `client.rs` | one connection's binding at one relay |
//! | `cookie.rs` | the stateless return-routability check of binds |
//! | `service.rs` | a node's relaying side: role, table and cookies |
//! | `probes.rs` | our probes of whether an address relays for us |
//!
//! The rest of relaying lives where its layer puts it: a connection's
//! relayed candidates and bindings in `rtc/relayed.rs`, which relays an
//! attempt proposes in `rtc/relay_choice.rs`, relay frames arriving at the
//! node in `node/relay.rs`, and the Mainline DHT as a directory of open
//! relays in `sources/relays.rs`. The limits are
//! [`RelayLimits`](crate::RelayLimits) (`api/config.rs`).

pub mod client;
pub mod cookie;
pub mod probes;
pub mod server;
pub mod service;
pub mod wire;

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

use ring::digest::{SHA256, digest};

use crate::id::NodeId;

/// Domain-separation label of synthetic relayed addresses.
pub const SYNTHETIC_LABEL: &[u8] = b"tinynode relay addr v1";

/// The relayed address of `member` at the relay signaled as `hint`, for
/// attempt `session`: an IPv4 address in 240.0.0.0/4 less 255.0.0.0/8
/// (reserved, never routed, so no datagram from the network can carry it as
/// a real source) and a port, both from SHA-256([`SYNTHETIC_LABEL`] ||
/// hint || u64be(session) || member). Both members compute both
/// addresses, so signals carry only the relay's address.
pub fn synthetic_addr(hint: SocketAddr, session: u64, member: &NodeId) -> SocketAddr {
    let mut input = Vec::with_capacity(SYNTHETIC_LABEL.len() + 19 + 8 + 32);
    input.extend_from_slice(SYNTHETIC_LABEL);
    input.extend_from_slice(&addr_bytes(hint));
    input.extend_from_slice(&session.to_be_bytes());
    input.extend_from_slice(&member.0);
    let hash = digest(&SHA256, &input);
    let h = hash.as_ref();
    let first = 240 + h[0] % 15;
    let port = u16::from_be_bytes([h[4], h[5]]).max(1);
    SocketAddr::V4(SocketAddrV4::new(
        Ipv4Addr::new(first, h[1], h[2], h[3]),
        port,
    ))
}

/// Label hashed into the Mainline infohash relay nodes announce under.
pub const RELAY_INFOHASH_LABEL: &[u8] = b"tinynode relay infohash v1";

/// The Mainline DHT infohash under which `serve --relay` nodes announce
/// themselves: the first 20 bytes of SHA-256([`RELAY_INFOHASH_LABEL`]),
/// the same for everyone (`protocol-spec.md` §12.6).
pub fn relay_infohash() -> [u8; 20] {
    let hash = digest(&SHA256, RELAY_INFOHASH_LABEL);
    let mut out = [0u8; 20];
    out.copy_from_slice(&hash.as_ref()[..20]);
    out
}

/// True for an address [`synthetic_addr`] can return.
pub fn is_synthetic(addr: SocketAddr) -> bool {
    matches!(addr, SocketAddr::V4(v4) if (240..255).contains(&v4.ip().octets()[0]))
}

/// An address as hashed: 4 or 6, the IP's bytes, the port big-endian.
fn addr_bytes(addr: SocketAddr) -> Vec<u8> {
    let mut out = Vec::with_capacity(19);
    match addr {
        SocketAddr::V4(v4) => {
            out.push(4);
            out.extend_from_slice(&v4.ip().octets());
        }
        SocketAddr::V6(v6) => {
            out.push(6);
            out.extend_from_slice(&v6.ip().octets());
        }
    }
    out.extend_from_slice(&addr.port().to_be_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_addresses_are_reserved_distinct_and_agreed() {
        let hint: SocketAddr = "198.51.100.1:3478".parse().unwrap();
        let a = synthetic_addr(hint, 7, &NodeId([1; 32]));
        let b = synthetic_addr(hint, 7, &NodeId([2; 32]));
        assert_ne!(a, b);
        assert_eq!(a, synthetic_addr(hint, 7, &NodeId([1; 32])));
        assert_ne!(a, synthetic_addr(hint, 8, &NodeId([1; 32])));
        for addr in [a, b] {
            assert!(is_synthetic(addr), "{addr}");
            assert!(str0m::Candidate::relayed(addr, hint, "udp").is_ok());
        }
        assert!(!is_synthetic(hint));
        assert!(!is_synthetic("255.255.255.255:1".parse().unwrap()));
    }
}
