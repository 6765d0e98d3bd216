//! LAN beacons: a member's sealed record, multicast on the local link so
//! members on one network meet with no internet (`protocol-spec.md` §10).
//!
//! ```text
//! beacon = 0x0C | meeting tag (8 bytes) | sealed record (1..=MAX_BEACON_RECORD bytes)
//! ```
//!
//! The meeting tag (`Meeting::lan_tag`) changes every
//! [`LAN_WINDOW`](crate::meeting::LAN_WINDOW), so a receiver drops other
//! meetings' beacons with one comparison (no cryptography) and an onlooker
//! cannot follow one meeting's beacons from window to window.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

/// Where beacons go: an administratively scoped group (RFC 2365
/// 239.255.0.0/16, never routed beyond a site, and sent with TTL 1 so not
/// beyond the link), on a port clear of mDNS (5353), SSDP (1900), LLMNR
/// (5355) and WS-Discovery (3702).
pub const LAN_GROUP: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(239, 255, 70, 77), 41677);

/// Where IPv6 beacons go: `ff02::114`, the link-local scope of the group
/// IANA reserves for any private experiment (RFC 4291's variable-scope
/// `ff0X::114`; link-local scope never leaves the link), on the same
/// port, sent with hop limit 1.
pub const LAN_GROUP_V6: SocketAddrV6 =
    SocketAddrV6::new(Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x114), 41677, 0, 0);

/// The beacon group of `local`'s address family.
pub fn group_for(local: SocketAddr) -> SocketAddr {
    match local {
        SocketAddr::V4(_) => SocketAddr::V4(LAN_GROUP),
        SocketAddr::V6(_) => SocketAddr::V6(LAN_GROUP_V6),
    }
}

/// First byte of a beacon: in 4–15, beside the DHT and hello tags.
pub const BEACON_TAG: u8 = 0x0C;
/// Length of the meeting tag.
pub const MEETING_TAG_LEN: usize = 8;
/// Longest sealed record a beacon carries.
pub const MAX_BEACON_RECORD: usize = 400;
/// Bytes before the record.
const HEADER_LEN: usize = 1 + MEETING_TAG_LEN;

/// A decoded beacon.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Beacon<'a> {
    /// The meeting tag of the sender's window.
    pub tag: [u8; MEETING_TAG_LEN],
    /// The sealed record.
    pub record: &'a [u8],
}

/// Why bytes are not a beacon.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BeaconError {
    /// Not the beacon tag, or too short to hold a tag and a record.
    Truncated,
    /// A record longer than [`MAX_BEACON_RECORD`].
    Oversized,
}

impl fmt::Display for BeaconError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Truncated => "not a beacon or truncated",
            Self::Oversized => "beacon record too long",
        })
    }
}

impl std::error::Error for BeaconError {}

/// The beacon datagram (`record` at most [`MAX_BEACON_RECORD`] bytes).
pub fn encode(tag: [u8; MEETING_TAG_LEN], record: &[u8]) -> Vec<u8> {
    debug_assert!(!record.is_empty() && record.len() <= MAX_BEACON_RECORD);
    let mut out = Vec::with_capacity(HEADER_LEN + record.len());
    out.push(BEACON_TAG);
    out.extend_from_slice(&tag);
    out.extend_from_slice(record);
    out
}

/// Decodes a beacon datagram; the record is not opened here.
pub fn decode(datagram: &[u8]) -> Result<Beacon<'_>, BeaconError> {
    let Some((&BEACON_TAG, rest)) = datagram.split_first() else {
        return Err(BeaconError::Truncated);
    };
    let Some((tag, record)) = rest.split_first_chunk::<MEETING_TAG_LEN>() else {
        return Err(BeaconError::Truncated);
    };
    if record.is_empty() {
        return Err(BeaconError::Truncated);
    }
    if record.len() > MAX_BEACON_RECORD {
        return Err(BeaconError::Oversized);
    }
    Ok(Beacon { tag: *tag, record })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_what_is_not_a_beacon() {
        let bytes = encode([7; 8], b"sealed");
        assert_eq!(bytes[0], BEACON_TAG);
        assert_eq!(
            decode(&bytes),
            Ok(Beacon {
                tag: [7; 8],
                record: b"sealed"
            })
        );
        assert_eq!(decode(&bytes[..9]), Err(BeaconError::Truncated));
        assert_eq!(decode(&[]), Err(BeaconError::Truncated));
        assert_eq!(decode(&[0x0B; 20]), Err(BeaconError::Truncated));
        let long = [&[BEACON_TAG][..], &[0; 8], &[1; MAX_BEACON_RECORD + 1]].concat();
        assert_eq!(decode(&long), Err(BeaconError::Oversized));
    }
}
