//! BEP 42 node IDs: the first 21 bits of a Mainline node ID tied to its
//! public IP address by CRC-32C, so storing nodes can tell a node that
//! chose its ID near a target from one that did not. IPv4 masks the
//! address with `0x030f3fff`, IPv6 its high 64 bits with
//! `0x0103070f1f3f7fff`; the ID's last byte's low 3 bits go on top.

use std::net::IpAddr;

use super::krpc::{ID_LEN, Id};

/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), as BEP 42 uses.
fn crc32c(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// The first 21 bits BEP 42 derives from `ip` and the ID's last byte `r`.
fn bep42_prefix(ip: IpAddr, r: u8) -> u32 {
    match ip {
        IpAddr::V4(ip) => {
            let masked = (u32::from(ip) & 0x030f_3fff) | (u32::from(r & 7) << 29);
            crc32c(&masked.to_be_bytes())
        }
        IpAddr::V6(ip) => {
            let high = u64::from_be_bytes(ip.octets()[..8].try_into().unwrap_or_default());
            let masked = (high & 0x0103_070f_1f3f_7fff) | (u64::from(r & 7) << 61);
            crc32c(&masked.to_be_bytes())
        }
    }
}

/// `id` made valid for `ip` under BEP 42: the first 21 bits from the CRC
/// of the masked address and the last byte, the other bits kept.
pub fn bep42_id(ip: IpAddr, mut id: Id) -> Id {
    let crc = bep42_prefix(ip, id[ID_LEN - 1]);
    id[0] = (crc >> 24) as u8;
    id[1] = (crc >> 16) as u8;
    id[2] = ((crc >> 8) as u8 & 0xf8) | (id[2] & 0x07);
    id
}

/// True if `id` is valid for `ip` under BEP 42 (first 21 bits).
pub fn bep42_valid(ip: IpAddr, id: &Id) -> bool {
    let crc = bep42_prefix(ip, id[ID_LEN - 1]);
    id[0] == (crc >> 24) as u8
        && id[1] == (crc >> 16) as u8
        && id[2] & 0xf8 == (crc >> 8) as u8 & 0xf8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bep42_ids_match_the_beps_vectors() {
        // BEP 42's table: IP, rand (the ID's last byte), the first bytes.
        let vectors = [
            ("124.31.75.21", 1u8, [0x5f, 0xbf, 0xbf]),
            ("21.75.31.124", 86, [0x5a, 0x3c, 0xe9]),
            ("65.23.51.170", 22, [0xa5, 0xd4, 0x32]),
            ("84.124.73.14", 65, [0x1b, 0x03, 0x21]),
            ("43.213.53.83", 90, [0xe5, 0x6f, 0x6c]),
        ];
        for (ip, r, prefix) in vectors {
            let ip: IpAddr = ip.parse().unwrap();
            let mut id = [0u8; 20];
            id[2] = prefix[2] & 0x07;
            id[19] = r;
            let id = bep42_id(ip, id);
            assert_eq!(id[..3], prefix, "{ip}");
            assert!(bep42_valid(ip, &id));
            assert!(!bep42_valid("198.51.100.1".parse().unwrap(), &id));
        }
    }

    #[test]
    fn ipv6_ids_depend_on_the_masked_high_64_bits_only() {
        let ip: IpAddr = "2001:db8:85a3:1234:aaaa:bbbb:cccc:dddd".parse().unwrap();
        let id = bep42_id(ip, [7; 20]);
        assert!(bep42_valid(ip, &id));
        // The interface identifier (low 64 bits) is not part of it.
        assert!(bep42_valid("2001:db8:85a3:1234::1".parse().unwrap(), &id));
        // Bits the mask keeps are.
        assert!(!bep42_valid("2001:db8:85a3:1235::1".parse().unwrap(), &id));
        assert!(!bep42_valid("203.0.113.1".parse().unwrap(), &id));
    }
}
